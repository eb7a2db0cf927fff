//! What both consumers share: the outcome of a run, the stop signal, ingesting a pulled batch as
//! one engine batch, and the crash points the tests use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meterkit::{Engine, Error, ErrorKind, Result, UsageRecord};
use serde_json::json;

use crate::payload::{decode, TenantSource};

/// What a `consume` run did, printed by the CLI as JSON.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsumeReport {
    /// Messages received (redeliveries included).
    pub messages: u64,
    /// Batches ingested (one store transaction each).
    pub batches: u64,
    /// Records newly stored.
    pub accepted: u64,
    /// Records whose idempotency key was already stored with the same content (redeliveries,
    /// messages published twice).
    pub duplicates: u64,
    /// Messages (or records of a message) sent to the dead-letter subject/topic.
    pub dead_lettered: u64,
    /// Milliseconds from the first message received to the last acknowledgement (0 without
    /// messages): what the stream benchmark divides by.
    pub busy_ms: u64,
    /// When the last acknowledgement was sent, in milliseconds since the Unix epoch (0 without
    /// messages): with several consumers, the benchmark's end of the run.
    pub last_ack_unix_ms: u64,
}

/// A flag set by SIGTERM/SIGINT (or by the embedding program): the consumer finishes the batch in
/// hand, acknowledges it and returns.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag nobody has set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask the consumer to stop after its current batch.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Set this flag on SIGTERM or SIGINT (Unix; must be called inside a Tokio runtime).
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the signal handlers cannot be installed.
    pub fn on_signals(&self) -> Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let err = |e: std::io::Error| Error::new(ErrorKind::Store, format!("Cannot handle signals: {e}."));
        let mut term = signal(SignalKind::terminate()).map_err(err)?;
        let mut int = signal(SignalKind::interrupt()).map_err(err)?;
        let me = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            me.request();
        });
        Ok(())
    }
}

/// A message that is not stored: the index of the message in its batch, the reason, and the
/// offending record when the engine rejected one record of a valid message.
#[derive(Debug)]
pub(crate) struct Dead {
    pub index: usize,
    pub reason: String,
    pub record: Option<String>,
}

/// Decode every message of a batch and ingest their records as one engine batch (one store
/// transaction), on a blocking thread. Returns the messages to dead-letter.
pub(crate) async fn ingest_batch(
    engine: &Arc<Engine>,
    messages: &[(String, bytes::Bytes)],
    tenant: &TenantSource,
    separator: char,
    report: &mut ConsumeReport,
) -> Result<Vec<Dead>> {
    let mut dead = Vec::new();
    let mut records: Vec<UsageRecord> = Vec::with_capacity(messages.len());
    let mut origin: Vec<usize> = Vec::with_capacity(messages.len());
    for (index, (subject, payload)) in messages.iter().enumerate() {
        let decoded = tenant.tenant_for(subject, separator).and_then(|t| decode(payload, t.as_deref()));
        match decoded {
            Ok(rs) => {
                origin.extend(std::iter::repeat_n(index, rs.len()));
                records.extend(rs);
            }
            Err(reason) => dead.push(Dead { index, reason, record: None }),
        }
    }
    crash_point(Stage::BeforeCommit, report.batches + 1);
    let engine = Arc::clone(engine);
    let (records, ingested) = tokio::task::spawn_blocking(move || {
        let r = engine.ingest(&records);
        (records, r)
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Store, format!("The ingest task failed: {e}.")))?;
    let ingested = ingested?;
    report.batches += 1;
    report.accepted += ingested.accepted;
    report.duplicates += ingested.duplicates;
    crash_point(Stage::AfterCommit, report.batches);
    if !ingested.rejected.is_empty() {
        let at: HashMap<(&str, &str), usize> =
            records.iter().enumerate().map(|(i, r)| ((r.tenant.as_str(), r.id.as_str()), i)).collect();
        for rej in &ingested.rejected {
            let Some(&i) = at.get(&(rej.tenant.as_str(), rej.id.as_str())) else { continue };
            dead.push(Dead {
                index: origin[i],
                reason: format!("record '{}' rejected ({}): {}", rej.id, rej.kind.code(), rej.reason),
                record: serde_json::to_string(&records[i]).ok(),
            });
        }
    }
    report.dead_lettered += dead.len() as u64;
    Ok(dead)
}

/// The dead-letter body: `{"reason","subject","payload","record"?}` with the original payload
/// as (lossy) UTF-8 text.
pub(crate) fn dead_letter_body(d: &Dead, subject: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = json!({
        "reason": d.reason,
        "subject": subject,
        "payload": String::from_utf8_lossy(payload),
    });
    if let Some(r) = &d.record {
        v["record"] = serde_json::Value::String(r.clone());
    }
    v.to_string().into_bytes()
}

/// Where the run is when the test hook `METERKIT_STREAM_KILL` may kill the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The batch is pulled and decoded, nothing stored.
    BeforeCommit,
    /// The batch is committed, nothing acknowledged.
    AfterCommit,
}

/// Test hook: with `METERKIT_STREAM_KILL=before-commit:N` or `after-commit:N`, the process sends
/// itself SIGKILL (`kill -9`, no cleanup, no acknowledgement) at that stage of its N-th batch.
/// This is how the crash tests stop a consumer at an exact point; unset, it does nothing.
pub(crate) fn crash_point(stage: Stage, batch: u64) {
    let Ok(spec) = std::env::var("METERKIT_STREAM_KILL") else { return };
    let Some((at, n)) = spec.split_once(':') else { return };
    let want = match at {
        "before-commit" => Stage::BeforeCommit,
        "after-commit" => Stage::AfterCommit,
        _ => return,
    };
    if want == stage && n.parse::<u64>().ok() == Some(batch) {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill").args(["-9", &pid]).status();
        std::thread::sleep(Duration::from_secs(60));
        std::process::abort();
    }
}

/// Idle and busy time bookkeeping.
#[derive(Debug)]
pub(crate) struct Clock {
    last_message: Instant,
    first_message: Option<Instant>,
}

impl Clock {
    pub fn new() -> Self {
        Clock { last_message: Instant::now(), first_message: None }
    }

    pub fn received(&mut self) {
        self.last_message = Instant::now();
        self.first_message.get_or_insert(self.last_message);
    }

    pub fn idle_for(&self) -> Duration {
        self.last_message.elapsed()
    }

    pub fn acked(&self, report: &mut ConsumeReport) {
        if let Some(first) = self.first_message {
            report.busy_ms = first.elapsed().as_millis() as u64;
        }
        report.last_ack_unix_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    }
}

/// A broker error as a retryable [`ErrorKind::Store`] error naming the broker.
pub(crate) fn broker_err(broker: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Store, format!("{broker}: {what}: {e}.")).with_retryable()
}
