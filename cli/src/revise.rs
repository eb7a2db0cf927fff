//! `meterkit records`, `retract`, `replace`, `history`, `close-windows` and `estimate`: thin
//! wrappers over [`Engine::records`], [`Engine::retract`], [`Engine::replace`],
//! [`Engine::history`], [`Engine::close_windows`] and
//! [`meterkit::vee::estimate::estimate_gaps`].

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, Duration, TimeZone, Utc};
use meterkit::{vee::estimate::EstimateConfig, Engine, Error, ErrorKind, Result, UsageRecord};

use crate::input::{located, parse_timestamp, InputArgs};
use crate::io_err;

/// Flags of `meterkit records`.
#[derive(Debug, clap::Args)]
pub struct RecordsArgs {
    /// The metric.
    #[arg(long)]
    metric: String,
    /// Only this subject.
    #[arg(long)]
    subject: Option<String>,
    /// Start (RFC 3339; default: the earliest record).
    #[arg(long)]
    from: Option<String>,
    /// End, exclusive (RFC 3339; default: after the latest record).
    #[arg(long)]
    to: Option<String>,
}

/// Flags of `meterkit history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The record's idempotency key (its id).
    #[arg(long)]
    id: String,
}

/// Flags of `meterkit close-windows`.
#[derive(Debug, clap::Args)]
pub struct CloseArgs {
    /// Close every window that ended at or before this instant minus --lateness (RFC 3339).
    #[arg(long)]
    until: String,
    /// Allowed lateness, seconds: windows ending after `until - lateness` stay open.
    #[arg(long, default_value_t = 0)]
    lateness: u32,
}

/// Flags of `meterkit estimate`.
#[derive(Debug, clap::Args)]
pub struct EstimateArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The series' cadence, seconds (3600 for hourly data).
    #[arg(long)]
    interval_secs: i64,
    /// Estimation settings as JSON (an `EstimateConfig`: max_interpolation_intervals,
    /// max_estimated_intervals, history_weeks, decimals; every key optional).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// The earliest and the end of the latest instant a record may have (years 1678-2261).
fn bounds() -> (DateTime<Utc>, DateTime<Utc>) {
    let lo = Utc.with_ymd_and_hms(1678, 1, 1, 0, 0, 0).single().unwrap_or(DateTime::<Utc>::MIN_UTC);
    let hi = Utc.with_ymd_and_hms(2262, 1, 1, 0, 0, 0).single().unwrap_or(DateTime::<Utc>::MAX_UTC);
    (lo, hi)
}

fn when(flag: &str, v: Option<&String>, default: DateTime<Utc>) -> Result<DateTime<Utc>> {
    v.map_or(Ok(default), |t| parse_timestamp(t, None).map_err(|e| e.with_field(flag.to_string())))
}

/// Print records as JSONL (one record per line, the form `meterkit ingest` reads).
fn print_jsonl(records: &[UsageRecord]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for r in records {
        let line =
            serde_json::to_string(r).map_err(|e| Error::new(ErrorKind::Store, format!("Cannot write JSON: {e}.")))?;
        writeln!(out, "{line}").map_err(io_err)?;
    }
    Ok(())
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    writeln!(std::io::stdout().lock(), "{value}").map_err(io_err)
}

/// `meterkit records`: the stored records of a metric in `[from, to)`, as JSONL.
pub fn records(engine: &Engine, tenant: &str, args: &RecordsArgs) -> Result<()> {
    let (lo, hi) = bounds();
    let (from, to) = (when("from", args.from.as_ref(), lo)?, when("to", args.to.as_ref(), hi)?);
    print_jsonl(&engine.records(tenant, &args.metric, args.subject.as_deref(), from, to)?)
}

/// `meterkit history`: the earlier versions of a record that `replace` replaced, as JSONL.
pub fn history(engine: &Engine, tenant: &str, args: &HistoryArgs) -> Result<()> {
    print_jsonl(&engine.history(tenant, &args.id)?)
}

/// Every record of the file with its line; the first malformed line is an error `file:line`.
fn read_all(input: &InputArgs, tenant: &str) -> Result<Vec<(u64, UsageRecord)>> {
    let mut all = Vec::new();
    input.read(tenant, &mut |line, parsed| {
        let records =
            parsed.map_err(|e| Error::new(e.kind(), located(&input.file, line, e.message())).with_line(line))?;
        all.extend(records.into_iter().map(|r| (line, r)));
        Ok(())
    })?;
    Ok(all)
}

/// Whether the record `(tenant, r.id)` is stored (looked up at its metric, subject and second).
fn stored(engine: &Engine, r: &UsageRecord) -> Result<bool> {
    let end = r.timestamp.checked_add_signed(Duration::seconds(1)).unwrap_or(r.timestamp);
    Ok(engine.records(&r.tenant, &r.metric, Some(&r.subject), r.timestamp, end)?.iter().any(|s| s.id == r.id))
}

/// `meterkit retract FILE`: remove each record of the file (by its id) and its contribution to
/// every rollup. Every record is looked up first: one not stored is an error `file:line`
/// and nothing is retracted.
pub fn retract(engine: &Engine, tenant: &str, input: &InputArgs) -> Result<()> {
    let all = read_all(input, tenant)?;
    for (line, r) in &all {
        if !stored(engine, r)? {
            let e = Error::new(ErrorKind::NotFound, format!("record '{}' is not stored; nothing was retracted", r.id));
            return Err(Error::new(e.kind(), located(&input.file, *line, e.message()))
                .with_line(*line)
                .with_record_id(r.id.clone()));
        }
    }
    let mut ids = Vec::with_capacity(all.len());
    for (line, r) in &all {
        engine
            .retract(&r.tenant, &r.id)
            .map_err(|e| Error::new(e.kind(), located(&input.file, *line, e.message())).with_line(*line))?;
        ids.push(r.id.clone());
    }
    print_json(&serde_json::json!({ "retracted": ids.len(), "ids": ids }))
}

/// `meterkit replace FILE`: store the file's records as revisions in one atomic change
/// (new ones accepted, changed ones replaced, the old versions kept in `history`).
pub fn replace(engine: &Engine, tenant: &str, input: &InputArgs) -> Result<()> {
    let batch: Vec<UsageRecord> = read_all(input, tenant)?.into_iter().map(|(_, r)| r).collect();
    let report = engine.replace(&batch)?;
    let json =
        serde_json::to_value(&report).map_err(|e| Error::new(ErrorKind::Store, format!("Cannot write JSON: {e}.")))?;
    print_json(&json)
}

/// `meterkit close-windows`: close the windows ended by `until - lateness`; prints the count.
pub fn close_windows(engine: &Engine, tenant: &str, args: &CloseArgs) -> Result<()> {
    let until = parse_timestamp(&args.until, None).map_err(|e| e.with_field("until"))?;
    let closed = engine.close_windows(tenant, until, Duration::seconds(i64::from(args.lateness)))?;
    print_json(&serde_json::json!({ "closed": closed }))
}

fn estimate_config(args: &EstimateArgs) -> Result<EstimateConfig> {
    let Some(path) = &args.config else { return Ok(EstimateConfig::new(args.interval_secs)) };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(ErrorKind::Validation, format!("Cannot read {}: {e}.", path.display())).with_field("config")
    })?;
    let mut value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::new(ErrorKind::Validation, format!("{}:{}: {e}", path.display(), e.line())).with_field("config")
    })?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert("interval_secs".into(), args.interval_secs.into());
    }
    serde_json::from_value(value)
        .map_err(|e| Error::new(ErrorKind::Validation, format!("{}: {e}", path.display())).with_field("config"))
}

/// `meterkit estimate FILE`: the estimated records (quality `estimated`) that fill the gaps of
/// each series (tenant, subject, metric) of the file, as JSONL ready for `meterkit ingest`.
pub fn estimate(tenant: &str, args: &EstimateArgs) -> Result<()> {
    let cfg = estimate_config(args)?;
    let mut series: BTreeMap<(String, String, String), Vec<UsageRecord>> = BTreeMap::new();
    for (_, r) in read_all(&args.input, tenant)? {
        series.entry((r.tenant.clone(), r.subject.clone(), r.metric.clone())).or_default().push(r);
    }
    let mut filled = Vec::new();
    for records in series.values_mut() {
        records.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then_with(|| a.id.cmp(&b.id)));
        filled.extend(meterkit::vee::estimate::estimate_gaps(records, &cfg)?);
    }
    print_jsonl(&filled)
}
