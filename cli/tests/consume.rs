//! `meterkit consume` against real brokers (nats-server with JetStream, mosquitto) started by the
//! test on free loopback ports: many consumers give one engine's buckets, kill -9 before and after
//! the commit loses and doubles nothing, invalid messages go to the dead-letter subject with their
//! reason, MQTT QoS 1 survives a broker restart.
//!
//! Scale: `METERKIT_STREAM_MESSAGES` distinct records (default 20,000; `scripts/test-stream
//! --full` runs 1,000,000) over `METERKIT_STREAM_CONSUMERS` consumers (default 4), 10 % of them
//! published twice.

#[path = "../../stream/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use meterkit::{Engine, Query, UsageRecord, Window};
use serde_json::Value;
use support::{Mosquitto, Nats};

const BIN: &str = env!("CARGO_BIN_EXE_meterkit");

/// The tests run one at a time: each starts several processes and brokers, and the kill and
/// restart tests wait on broker timers (ack_wait, idle exit) that a loaded machine would stretch.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Record `i`: tenant t0/t1, 50 SIMs, a carrier dimension, quantities with three decimals,
/// timestamps 37 s apart from 2024-03-30 (across the UK's DST change).
fn record_json(i: usize) -> (String, String) {
    let tenant = format!("t{}", i % 2);
    let body = format!(
        r#"{{"id":"r{i}","subject":"sim-{}","metric":"bytes","quantity":"{}.{:03}","timestamp":"{}","dimensions":{{"carrier":"{}"}}}}"#,
        i % 50,
        (i * 7919) % 100_000,
        i % 1000,
        meterkit::time::fmt_ts(chrono::DateTime::from_timestamp(1_711_756_800 + (i as i64) * 37, 0).unwrap()),
        ["vodafone", "ee", "o2"][i % 3],
    );
    (tenant, body)
}

fn records(ids: impl Iterator<Item = usize>) -> Vec<UsageRecord> {
    ids.map(|i| {
        let (tenant, body) = record_json(i);
        let mut v: Value = serde_json::from_str(&body).unwrap();
        v["tenant"] = tenant.into();
        serde_json::from_value(v).unwrap()
    })
    .collect()
}

/// Every bucket of both tenants, day and hour windows by subject and carrier, as JSON text.
fn buckets(engine: &Engine) -> String {
    let mut out = Vec::new();
    for tenant in ["t0", "t1"] {
        for window in [Window::Day, Window::Hour] {
            let q = Query::new(tenant, "bytes", window, "Europe/London").group_by(["subject", "carrier"]);
            out.push(serde_json::to_value(engine.query(&q).unwrap()).unwrap());
        }
    }
    serde_json::to_string(&out).unwrap()
}

fn stored_count(engine: &Engine) -> usize {
    let (from, to) =
        (chrono::DateTime::from_timestamp(0, 0).unwrap(), chrono::DateTime::from_timestamp(4e9 as i64, 0).unwrap());
    ["t0", "t1"].iter().map(|t| engine.records(t, "bytes", None, from, to).unwrap().len()).sum()
}

fn reference(n: usize) -> Engine {
    let engine = Engine::in_memory();
    for chunk in records(0..n).chunks(10_000) {
        engine.ingest(chunk).unwrap();
    }
    engine
}

/// Publish records `ids` to JetStream on `usage.<tenant>.x` (pipelined, waiting for every
/// stream acknowledgement).
async fn publish_nats(url: &str, prefix: &str, ids: &[usize]) {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    for chunk in ids.chunks(2_000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let (tenant, body) = record_json(i);
            acks.push(js.publish(format!("{prefix}.{tenant}.x"), body.into()).await.unwrap());
        }
        for a in acks {
            a.await.unwrap();
        }
    }
}

/// Create the stream `name` on `<prefix>.>` and its durable consumer `work` with a short
/// `ack_wait` (so redeliveries come within the test).
async fn create_stream(url: &str, name: &str, prefix: &str, ack_wait: Option<Duration>) {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let s = js
        .get_or_create_stream(stream::Config {
            name: name.into(),
            subjects: vec![format!("{prefix}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    let Some(ack_wait) = ack_wait else { return };
    s.create_consumer(pull::Config {
        durable_name: Some("work".into()),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait,
        max_ack_pending: 10_000,
        filter_subject: format!("{prefix}.>"),
        ..Default::default()
    })
    .await
    .unwrap();
}

fn consume_nats(db: &str, url: &str, name: &str, prefix: &str, extra: &[&str], kill: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["--db", db, "consume", url, "--stream", name, "--subject", &format!("{prefix}.>"), "--durable", "work"])
        .args(["--tenant-from-subject", "2"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = kill {
        cmd.env("METERKIT_STREAM_KILL", k);
    }
    cmd
}

fn report(out: &Output) -> Value {
    assert!(out.status.success(), "consume failed: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(out.stdout.trim_ascii()).unwrap()
}

fn many_consumers(db: &str, open: &dyn Fn() -> Engine) {
    let Some(nats) = Nats::start() else { return };
    let n = env_usize("METERKIT_STREAM_MESSAGES", 20_000);
    let consumers = env_usize("METERKIT_STREAM_CONSUMERS", 4);
    let rt = rt();
    // Every record once, then 10 % of them again (as a redelivery or a retrying producer would).
    let mut ids: Vec<usize> = (0..n).collect();
    ids.extend((0..n).filter(|i| i % 10 == 3));
    rt.block_on(create_stream(&nats.url(), "USAGE", "usage", None));
    rt.block_on(publish_nats(&nats.url(), "usage", &ids));
    let children: Vec<Child> = (0..consumers)
        .map(|_| {
            consume_nats(
                db,
                &nats.url(),
                "USAGE",
                "usage",
                &["--create-stream", "--batch", "2000", "--idle-exit", "3s"],
                None,
            )
            .spawn()
            .unwrap()
        })
        .collect();
    let t = std::time::Instant::now();
    let reports: Vec<Value> = children.into_iter().map(|c| report(&c.wait_with_output().unwrap())).collect();
    eprintln!("consumers done in {:?}: {reports:?}", t.elapsed());
    let sum = |k: &str| reports.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("messages"), ids.len() as u64, "{reports:?}");
    assert_eq!(sum("accepted"), n as u64, "{reports:?}");
    assert_eq!(sum("duplicates"), (ids.len() - n) as u64, "{reports:?}");
    if consumers > 1 {
        assert!(reports.iter().filter(|r| r["messages"].as_u64().unwrap() > 0).count() > 1, "{reports:?}");
    }
    let stored = open();
    assert_eq!(stored_count(&stored), n);
    eprintln!("counted at {:?}", t.elapsed());
    let got = buckets(&stored);
    eprintln!("store buckets at {:?}", t.elapsed());
    assert_eq!(got, buckets(&reference(n)));
    eprintln!("reference at {:?}", t.elapsed());
}

#[test]
fn many_consumers_into_one_sqlite_file_give_one_engines_buckets() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.db");
    many_consumers(db.to_str().unwrap(), &|| Engine::new(meterkit_sqlite::SqliteStore::open(&db).unwrap()).unwrap());
}

fn pg_url(schema: &str) -> Option<String> {
    let Ok(url) = std::env::var("METERKIT_PG_URL") else {
        assert!(std::env::var_os("METERKIT_REQUIRE_PG").is_none(), "METERKIT_REQUIRE_PG without METERKIT_PG_URL");
        eprintln!("SKIPPED: no METERKIT_PG_URL (scripts/pg-server starts a server)");
        return None;
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}schema={schema}_{}", std::process::id()))
}

#[test]
fn many_consumers_into_one_postgres_store_give_one_engines_buckets() {
    let _serial = serial();
    let Some(url) = pg_url("stream_many") else { return };
    many_consumers(&url, &|| Engine::new(meterkit_postgres::PgStore::open(&url).unwrap()).unwrap());
}

/// Kill -9 a consumer at `point` of its 2nd batch of 500, restart it: every record stored once.
/// Returns the restarted run's report.
fn killed_and_restarted(point: &str) -> Option<Value> {
    let nats = Nats::start()?;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.db");
    let db = db.to_str().unwrap();
    let n = 3_000;
    let rt = rt();
    rt.block_on(create_stream(&nats.url(), "KILL", "kill", Some(Duration::from_secs(2))));
    rt.block_on(publish_nats(&nats.url(), "kill", &(0..n).collect::<Vec<_>>()));
    let args = ["--batch", "500", "--idle-exit", "5s"];
    let out = consume_nats(db, &nats.url(), "KILL", "kill", &args, Some(&format!("{point}:2"))).output().unwrap();
    assert_eq!(
        out.status.code(),
        None,
        "killed by a signal: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let after_kill = stored_count(&Engine::new(meterkit_sqlite::SqliteStore::open(db).unwrap()).unwrap());
    assert_eq!(after_kill, if point == "after-commit" { 1000 } else { 500 });
    let second = report(&consume_nats(db, &nats.url(), "KILL", "kill", &args, None).output().unwrap());
    let stored = Engine::new(meterkit_sqlite::SqliteStore::open(db).unwrap()).unwrap();
    assert_eq!(stored_count(&stored), n);
    assert_eq!(buckets(&stored), buckets(&reference(n)));
    Some(second)
}

#[test]
fn kill_9_after_the_commit_before_the_ack_then_restart_doubles_nothing() {
    let _serial = serial();
    let Some(second) = killed_and_restarted("after-commit") else { return };
    // The 2nd batch was stored but not acknowledged: redelivered, its 500 records are duplicates.
    assert_eq!((second["accepted"].as_u64(), second["duplicates"].as_u64()), (Some(2000), Some(500)), "{second}");
}

#[test]
fn kill_9_before_the_commit_then_restart_loses_nothing() {
    let _serial = serial();
    let Some(second) = killed_and_restarted("before-commit") else { return };
    assert_eq!((second["accepted"].as_u64(), second["duplicates"].as_u64()), (Some(2500), Some(0)), "{second}");
}

#[test]
fn invalid_messages_go_to_the_dead_letter_subject_with_their_reason() {
    let _serial = serial();
    let Some(nats) = Nats::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.db");
    let rt = rt();
    let url = nats.url();
    let (dead, info) = rt.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let mut dl = client.subscribe("dl.usage").await.unwrap();
        client.flush().await.unwrap();
        create_stream(&url, "DL", "bad", Some(Duration::from_secs(30))).await;
        let js = jetstream::new(client.clone());
        let (_, good) = record_json(1);
        let conflicting = good.replace("\"quantity\":\"", "\"quantity\":\"9");
        let bodies = [
            good.clone(),
            "{not json".to_string(),
            good.replace("\"quantity\"", "\"qty\""),
            good.replace("{\"id\"", "{\"tenant\":\"t9\",\"id\""),
            format!("[{}, 7]", record_json(3).1),
            conflicting,
        ];
        for b in bodies {
            js.publish("bad.t1.x", b.into()).await.unwrap().await.unwrap();
        }
        let out = consume_nats(
            db.to_str().unwrap(),
            &url,
            "DL",
            "bad",
            &["--dead-letter", "dl.usage", "--idle-exit", "2s"],
            None,
        )
        .output()
        .unwrap();
        let r = report(&out);
        assert_eq!(
            (r["messages"].as_u64(), r["accepted"].as_u64(), r["dead_lettered"].as_u64()),
            (Some(6), Some(1), Some(5)),
            "{r}"
        );
        let mut dead = Vec::new();
        for _ in 0..5 {
            let m = tokio::time::timeout(Duration::from_secs(5), dl.next()).await.unwrap().unwrap();
            let reason = m.headers.as_ref().unwrap().get("Meterkit-Reason").unwrap().to_string();
            let body: Value = serde_json::from_slice(&m.payload).unwrap();
            assert_eq!(body["reason"].as_str().unwrap(), reason);
            assert_eq!(body["subject"], "bad.t1.x");
            dead.push(reason);
        }
        let mut consumer: jetstream::consumer::Consumer<pull::Config> =
            js.get_stream("DL").await.unwrap().get_consumer("work").await.unwrap();
        let info = consumer.info().await.unwrap().clone();
        (dead, info)
    });
    let expect = [
        "invalid JSON",
        "unknown field `qty`",
        "tenant 't9' is not the tenant 't1'",
        "record 1 of the array",
        "E_CONFLICT",
    ];
    for (reason, want) in dead.iter().zip(expect) {
        assert!(reason.contains(want), "{reason:?} should say {want:?}");
    }
    // Everything acknowledged: nothing blocks the stream.
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0));
}

/// Publish records `ids` with QoS 1 on `sims/<tenant>/usage` through a persistent session,
/// restarting the broker once half of them are acknowledged; returns when all are acknowledged.
async fn publish_mqtt_across_restart(broker: &mut Mosquitto, ids: &[usize]) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut mo = MqttOptions::new("publisher", "127.0.0.1", broker.port);
    mo.set_clean_session(false).set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(mo, 100_000);
    let (tx, mut acked) = tokio::sync::watch::channel(0usize);
    let poller = tokio::spawn(async move {
        let mut n = 0usize;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    n += 1;
                    if tx.send(n).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    let half = ids.len() / 2;
    for (k, &i) in ids.iter().enumerate() {
        if k == half {
            tokio::time::timeout(Duration::from_secs(60), acked.wait_for(|&n| n >= half)).await.unwrap().unwrap();
            tokio::task::block_in_place(|| broker.restart());
        }
        let (tenant, body) = record_json(i);
        client.publish(format!("sims/{tenant}/usage"), QoS::AtLeastOnce, false, body).await.unwrap();
    }
    // Resent publishes may be acknowledged twice (once before, once after the restart).
    tokio::time::timeout(Duration::from_secs(120), acked.wait_for(|&n| n >= ids.len())).await.unwrap().unwrap();
    poller.abort();
}

#[test]
fn mqtt_qos_1_across_a_broker_restart_loses_nothing() {
    let _serial = serial();
    let Some(mut broker) = Mosquitto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.db");
    let db = db.to_str().unwrap().to_string();
    let url = broker.url();
    let consume = |idle: &str| {
        Command::new(BIN)
            .args(["--db", &db, "consume", &url, "--topic", "sims/+/usage", "--qos", "1", "--client-id", "meter-1"])
            .args(["--tenant-from-subject", "2", "--batch", "1000", "--idle-exit", idle])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // First run: creates the persistent session and its subscription; the broker then queues
    // messages for it while no consumer is connected.
    report(&consume("1s").wait_with_output().unwrap());
    let n = env_usize("METERKIT_STREAM_MQTT_MESSAGES", 10_000);
    let ids: Vec<usize> = (0..n).collect();
    let running = consume("8s");
    rt().block_on(publish_mqtt_across_restart(&mut broker, &ids));
    let first = report(&running.wait_with_output().unwrap());
    // Whatever the broker kept for the session while the first consumer ended is taken now.
    let second = report(&consume("3s").wait_with_output().unwrap());
    let accepted = first["accepted"].as_u64().unwrap() + second["accepted"].as_u64().unwrap();
    assert_eq!(accepted, n as u64, "{first} {second}");
    let stored = Engine::new(meterkit_sqlite::SqliteStore::open(Path::new(&db)).unwrap()).unwrap();
    assert_eq!(stored_count(&stored), n);
    assert_eq!(buckets(&stored), buckets(&reference(n)));
}

/// SIGTERM while messages keep arriving: the consumer finishes the batch it holds, acknowledges
/// it and exits 0. A restart then finds no duplicate (every committed batch was acknowledged)
/// and the store ends with every published record once.
#[test]
fn sigterm_mid_stream_finishes_the_batch_acknowledges_and_exits_0() {
    let _serial = serial();
    let Some(nats) = Nats::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.db");
    let db = db.to_str().unwrap();
    let (n, chunk) = (12_000, 1_000);
    let rt = rt();
    rt.block_on(create_stream(&nats.url(), "TERM", "term", Some(Duration::from_secs(30))));
    rt.block_on(publish_nats(&nats.url(), "term", &(0..chunk).collect::<Vec<_>>()));
    let child = consume_nats(db, &nats.url(), "TERM", "term", &["--batch", "200", "--max-wait", "200ms"], None)
        .spawn()
        .unwrap();
    let open = || Engine::new(meterkit_sqlite::SqliteStore::open(db).unwrap()).unwrap();
    // Keep publishing while the consumer runs; signal it once it has committed something.
    let mut next = chunk;
    while stored_count(&open()) == 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    while next < n / 2 {
        rt.block_on(publish_nats(&nats.url(), "term", &(next..next + chunk).collect::<Vec<_>>()));
        next += chunk;
    }
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    rt.block_on(publish_nats(&nats.url(), "term", &(next..n).collect::<Vec<_>>()));
    let first = report(&child.wait_with_output().unwrap());
    assert!(first["accepted"].as_u64().unwrap() > 0, "{first}");
    assert_eq!(first["accepted"], first["messages"], "every message taken was stored: {first}");
    let second = report(&consume_nats(db, &nats.url(), "TERM", "term", &["--idle-exit", "3s"], None).output().unwrap());
    assert_eq!(second["duplicates"].as_u64(), Some(0), "nothing taken before SIGTERM came back: {second}");
    assert_eq!(first["accepted"].as_u64().unwrap() + second["accepted"].as_u64().unwrap(), n as u64);
    let stored = open();
    assert_eq!(stored_count(&stored), n);
    assert_eq!(buckets(&stored), buckets(&reference(n)));
}
