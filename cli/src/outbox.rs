//! `meterkit outbox`: the pending-upload queue of a device database (the core's outbox,
//! [`meterkit::Engine::outbox_queue`] and friends) — queue a file of records, list what waits,
//! acknowledge an upload, tidy. Every subcommand prints one JSON line.

use std::io::Write as _;
use std::path::PathBuf;

use meterkit::{Engine, Error, ErrorKind, Result, UsageRecord};

use crate::input::parse_timestamp;
use crate::io_err;

/// `meterkit outbox` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum OutboxCommand {
    /// Store the records of a JSON file (an array of records, or one record per line) and queue
    /// them for upload; prints the ingest report.
    Queue {
        /// The records file (the core's JSON record format).
        file: PathBuf,
    },
    /// Print how many records of the tenant wait for upload: `{"pending":N}`.
    Count,
    /// Print up to `--limit` pending records, the upload body: `{"ids":[…],"records":[…]}`.
    Pending {
        /// At most this many records.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Acknowledge the upload of records (after the server confirmed them); prints
    /// `{"acknowledged":N}`, the number that were pending.
    Ack {
        /// The record ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// The acknowledgement time (RFC 3339; default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Remove sent markers acknowledged before `--before` and markers of unstored records, and
    /// recount; prints `{"removed":N}`.
    Purge {
        /// RFC 3339 instant.
        #[arg(long)]
        before: String,
    },
}

/// Run one `meterkit outbox` subcommand for `tenant`.
pub fn run(engine: &Engine, tenant: &str, cmd: &OutboxCommand) -> Result<()> {
    let json = match cmd {
        OutboxCommand::Queue { file } => {
            let batch = read_records(file, tenant)?;
            serde_json::to_value(engine.outbox_queue(&batch)?)
                .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?
        }
        OutboxCommand::Count => serde_json::json!({ "pending": engine.outbox_count(tenant)? }),
        OutboxCommand::Pending { limit } => serde_json::to_value(engine.outbox_pending(tenant, *limit)?)
            .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?,
        OutboxCommand::Ack { ids, at } => {
            let at = match at {
                Some(t) => parse_timestamp(t, None).map_err(|e| e.with_field("at"))?,
                None => chrono::Utc::now(),
            };
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            serde_json::json!({ "acknowledged": engine.outbox_ack(tenant, &ids, at)? })
        }
        OutboxCommand::Purge { before } => {
            let before = parse_timestamp(before, None).map_err(|e| e.with_field("before"))?;
            serde_json::json!({ "removed": engine.outbox_purge(tenant, before)? })
        }
    };
    writeln!(std::io::stdout().lock(), "{json}").map_err(io_err)
}

/// Records from a JSON array or JSON lines (a record without `tenant` gets `tenant`; one of
/// another tenant is refused, naming it).
fn read_records(path: &PathBuf, tenant: &str) -> Result<Vec<UsageRecord>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(ErrorKind::Parse, format!("Cannot read {}: {e}.", path.display())).with_field("file")
    })?;
    let bad = |line: usize, e: &dyn std::fmt::Display| {
        Error::new(ErrorKind::Parse, format!("{}:{line}: {e}", path.display())).with_line(line as u64)
    };
    let values: Vec<(usize, serde_json::Value)> = if text.trim_start().starts_with('[') {
        let all: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| bad(e.line(), &e))?;
        all.into_iter().map(|v| (1, v)).collect()
    } else {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            out.push((i + 1, serde_json::from_str(line).map_err(|e| bad(i + 1, &e))?));
        }
        out
    };
    let mut records = Vec::with_capacity(values.len());
    for (line, mut v) in values {
        if let Some(obj) = v.as_object_mut() {
            obj.entry("tenant").or_insert_with(|| tenant.into());
        }
        let r: UsageRecord = serde_json::from_value(v).map_err(|e| bad(line, &e))?;
        if r.tenant != tenant {
            return Err(Error::new(
                ErrorKind::InvalidRecord,
                format!(
                    "{}:{line}: record '{}' is of tenant '{}', not '{tenant}' (--tenant).",
                    path.display(),
                    r.id,
                    r.tenant
                ),
            )
            .with_record_id(r.id.clone()));
        }
        records.push(r);
    }
    Ok(records)
}
