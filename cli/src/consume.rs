//! `meterkit consume nats://… | mqtt://…`: streaming ingestion through `meterkit-stream`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use meterkit::{Engine, Error, ErrorKind, Result};
use meterkit_stream::{MqttConsumeOptions, NatsNotifier, NatsOptions, Stop, TenantSource};

/// The flags of `consume`.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// The broker: `nats://HOST:PORT` (JetStream) or `mqtt://HOST:PORT`.
    url: String,
    /// NATS: the stream's name.
    #[arg(long)]
    stream: Option<String>,
    /// NATS: the subject filter of the durable consumer (e.g. 'usage.>').
    #[arg(long)]
    subject: Option<String>,
    /// NATS: the durable consumer's name; processes with the same name share the work.
    #[arg(long)]
    durable: Option<String>,
    /// NATS: create the stream (subjects = --subject) when it does not exist.
    #[arg(long)]
    create_stream: bool,
    /// MQTT: the topic filter (e.g. 'sims/+/usage').
    #[arg(long)]
    topic: Option<String>,
    /// MQTT: the subscription's QoS (0, 1 or 2).
    #[arg(long, default_value_t = 1)]
    qos: u8,
    /// MQTT: the client id, i.e. the persistent session's name.
    #[arg(long)]
    client_id: Option<String>,
    /// Most messages per batch; each batch is one store transaction.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch: u32,
    /// Longest wait for a batch to fill (e.g. 1s, 250ms).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    max_wait: Duration,
    /// Subject (NATS) or topic (MQTT) for invalid messages, published with their reason.
    #[arg(long)]
    dead_letter: Option<String>,
    /// Exit 0 after this long without messages (e.g. 5s); otherwise run until SIGTERM/SIGINT.
    #[arg(long, value_parser = parse_duration)]
    idle_exit: Option<Duration>,
    /// Take each message's tenant from token N (1-based) of its subject/topic.
    #[arg(long, conflicts_with = "all_tenants")]
    tenant_from_subject: Option<usize>,
    /// Each record names its own tenant (instead of --tenant).
    #[arg(long)]
    all_tenants: bool,
}

/// A duration: a number with `ms`, `s`, `m` or `h` (`5s`, `250ms`, `2m`).
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("'{text}' is not a duration like 5s, 250ms, 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(n.saturating_mul(3600))),
        _ => Err(format!("'{text}': the unit is ms, s, m or h")),
    }
}

fn missing(flag: &str, scheme: &str) -> Error {
    Error::new(ErrorKind::Parse, format!("consume {scheme}://… needs --{flag}.")).with_field(flag.to_string())
}

/// Open the engine on `db`: a PostgreSQL URL, an SQLite file or `:memory:`
/// ([`meterkit_open::open_engine`]).
fn open_store_engine(db: &str) -> Result<Engine> {
    meterkit_open::open_engine(db)
}

/// Run `consume`: print the run's report as JSON on stdout when it ends.
pub fn run(db: &str, tenant: &str, args: &ConsumeArgs) -> Result<()> {
    let tenant = match (args.all_tenants, args.tenant_from_subject) {
        (true, _) => TenantSource::FromRecord,
        (false, Some(n)) => TenantSource::SubjectToken(n),
        (false, None) => TenantSource::Fixed(tenant.to_string()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::Store, format!("Cannot start the async runtime: {e}.")))?;
    // The store is opened, and finally dropped, outside the async runtime: the PostgreSQL client
    // runs its own runtime on the calling thread.
    let engine = open_store_engine(db)?;
    let mut engine = Some(engine);
    let mut keep: Option<Arc<Engine>> = None;
    let report = runtime.block_on(async {
        let stop = Stop::new();
        stop.on_signals()?;
        if let Some(rest) = args.url.strip_prefix("nats://") {
            let opts = NatsOptions {
                url: format!("nats://{rest}"),
                stream: args.stream.clone().ok_or_else(|| missing("stream", "nats"))?,
                subject: args.subject.clone().ok_or_else(|| missing("subject", "nats"))?,
                durable: args.durable.clone().ok_or_else(|| missing("durable", "nats"))?,
                create_stream: args.create_stream,
                batch: args.batch as usize,
                max_wait: args.max_wait,
                dead_letter: args.dead_letter.clone(),
                idle_exit: args.idle_exit,
                tenant,
            };
            let notifier = NatsNotifier::connect(&opts.url).await?;
            let engine = Arc::new(engine.take().ok_or_else(no_engine)?.with_notifier(Arc::new(notifier)));
            keep = Some(Arc::clone(&engine));
            meterkit_stream::nats::consume(engine, &opts, &stop).await
        } else if let Some(rest) = args.url.strip_prefix("mqtt://") {
            let (host, port) = host_port(rest, 1883)?;
            let opts = MqttConsumeOptions {
                host,
                port,
                topic: args.topic.clone().ok_or_else(|| missing("topic", "mqtt"))?,
                qos: args.qos,
                client_id: args.client_id.clone().ok_or_else(|| missing("client-id", "mqtt"))?,
                batch: args.batch as usize,
                max_wait: args.max_wait,
                dead_letter: args.dead_letter.clone(),
                idle_exit: args.idle_exit,
                tenant,
            };
            let engine = Arc::new(engine.take().ok_or_else(no_engine)?);
            keep = Some(Arc::clone(&engine));
            meterkit_stream::mqtt::consume(engine, &opts, &stop).await
        } else {
            Err(Error::new(
                ErrorKind::Parse,
                format!("'{}': consume reads nats://HOST:PORT or mqtt://HOST:PORT.", args.url),
            )
            .with_field("url"))
        }
    });
    drop(runtime);
    drop(keep);
    let report = report?;
    let json = serde_json::to_string(&report).map_err(|e| Error::new(ErrorKind::Parse, format!("{e}")))?;
    writeln!(std::io::stdout().lock(), "{json}").map_err(crate::io_err)
}

fn no_engine() -> Error {
    Error::new(ErrorKind::Store, "The engine was already taken.")
}

fn host_port(rest: &str, default_port: u16) -> Result<(String, u16)> {
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((h, p)) => {
            let port = p
                .parse()
                .map_err(|_| Error::new(ErrorKind::Parse, format!("'{p}' is not a port number.")).with_field("url"))?;
            Ok((h.to_string(), port))
        }
        None => Ok((rest.to_string(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_addresses() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(host_port("127.0.0.1:1884", 1883).unwrap(), ("127.0.0.1".to_string(), 1884));
        assert_eq!(host_port("broker", 1883).unwrap(), ("broker".to_string(), 1883));
        assert!(host_port("broker:x", 1883).is_err());
    }
}
