//! Real brokers for the tests: `nats-server` (JetStream) and `mosquitto`, each started on a free
//! loopback port with its data in a temporary directory and stopped when dropped.
//!
//! The binaries come from `METERKIT_NATS_SERVER` / `METERKIT_MOSQUITTO`, then `PATH`, then
//! `/usr/sbin` and `/usr/bin` (Debian's packages; `scripts/brokers` installs them). When a binary
//! is missing the test is skipped with a message — unless `METERKIT_REQUIRE_BROKERS` or `CI` is
//! set, where it fails.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn binary(name: &str, env: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin"])
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file());
    found
}

fn required() -> bool {
    std::env::var_os("METERKIT_REQUIRE_BROKERS").is_some() || std::env::var("CI").is_ok_and(|v| !v.is_empty())
}

fn missing(name: &str) -> Option<PathBuf> {
    assert!(!required(), "{name} is not installed and METERKIT_REQUIRE_BROKERS/CI is set (run scripts/brokers)");
    eprintln!("SKIPPED: {name} is not installed (scripts/brokers installs it from Debian's packages)");
    None
}

fn wait_for_port(port: u16, child: &mut Child, name: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited at start: {status}");
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{name} did not listen on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill").args([sig, &child.id().to_string()]).status();
}

/// A JetStream-enabled nats-server.
pub struct Nats {
    child: Child,
    /// Its port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Nats {
    /// Start one, or `None` (skip) when nats-server is not installed and not required.
    pub fn start() -> Option<Nats> {
        let bin = binary("nats-server", "METERKIT_NATS_SERVER").or_else(|| missing("nats-server"))?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        wait_for_port(port, &mut child, "nats-server");
        Some(Nats { child, port, _dir: dir })
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A mosquitto broker with persistence on (sessions and queued QoS ≥ 1 messages survive a
/// restart), unlimited queues and an in-flight window of 1,000 messages per client.
pub struct Mosquitto {
    child: Child,
    bin: PathBuf,
    /// Its port.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Start one, or `None` (skip) when mosquitto is not installed and not required.
    pub fn start() -> Option<Mosquitto> {
        let bin = binary("mosquitto", "METERKIT_MOSQUITTO").or_else(|| missing("mosquitto"))?;
        let dir = tempfile::tempdir().unwrap();
        let _ = Command::new("chmod").arg("777").arg(dir.path()).status();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
                 max_inflight_messages 1000\nmax_queued_messages 0\nlog_dest stderr\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let child = Self::spawn(&bin, &conf, port);
        Some(Mosquitto { child, bin, port, dir })
    }

    fn spawn(bin: &PathBuf, conf: &std::path::Path, port: u16) -> Child {
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        wait_for_port(port, &mut child, "mosquitto");
        child
    }

    /// Stop it cleanly (SIGTERM: it saves its persistence file), then start it again on the
    /// same port with the same data.
    pub fn restart(&mut self) {
        signal(&self.child, "-TERM");
        let _ = self.child.wait();
        let start = Instant::now();
        while TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "port {} not released", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Self::spawn(&self.bin, &self.dir.path().join("mosquitto.conf"), self.port);
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
