//! `meterkit counters`: cumulative counters (session byte counters, RADIUS/SNMP octet counters,
//! registers) from a file turned into deltas and ingested by the engine's register tracker
//! ([`meterkit::Engine::track_counters`]), whose state is kept in the store: a later run over the
//! next file continues from each meter's stored reading.

use std::io::Write as _;
use std::path::PathBuf;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use meterkit::{
    decimal::fmt_decimal, decimal::parse_decimal, engine::CounterOutcome, reading::counter::CounterOptions,
    reading::dating::Dating, Engine, Error, ErrorKind, MeterReading, Result,
};

use crate::input::{located, parse_timestamp, Format};
use crate::readings::{for_each_row, Cells};
use crate::{io_err, Output};

/// Readings sent to the engine per call (bounds memory; each call is one atomic change).
const CHUNK: usize = 10_000;

/// Flags of `meterkit counters`.
#[derive(Debug, clap::Args)]
pub struct CountersArgs {
    /// The input file (CSV with a header row, or one JSON object per line), oldest readings first.
    pub file: PathBuf,
    /// Input format; by default from the extension (.csv, .jsonl/.ndjson/.json).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// The column holding the meter or session id.
    #[arg(long)]
    pub meter_column: String,
    /// The column holding the cumulative counter value.
    #[arg(long)]
    pub reading_column: String,
    /// The column holding the reading time (RFC 3339).
    #[arg(long)]
    pub timestamp_column: String,
    /// A binary counter's width in bits (32 for RADIUS octets and SNMP Counter32, 64 for
    /// Counter64): it wraps at 2^bits.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=95), conflicts_with = "digits")]
    pub bits: Option<u8>,
    /// A decimal register's integer digits (1-28): it rolls over at 10^digits.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=28))]
    pub digits: Option<u8>,
    /// Counter units to metric units.
    #[arg(long, default_value = "1")]
    pub multiplier: String,
    /// The metric of the delta records (bytes, kwh, ...).
    #[arg(long)]
    pub metric: String,
    /// Where each delta is dated: at the reading (`end`), at the previous reading (`start`), or
    /// split over the local days of the interval (`pro-rata`).
    #[arg(long, value_enum, default_value = "pro-rata")]
    pub dating: DatingArg,
    /// IANA zone whose midnights split a `pro-rata` interval.
    #[arg(long, default_value = "UTC")]
    pub time_zone: String,
    /// How to print the outcome.
    #[arg(long, value_enum, default_value = "table")]
    pub output: Output,
}

/// `--dating`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DatingArg {
    /// At the reading's time.
    End,
    /// At the previous reading's time.
    Start,
    /// Split over the local days of the interval.
    ProRata,
}

/// `meterkit counters`: the file's readings through the persisted register tracker, in chunks
/// of 10,000 (each one atomic change); prints the deltas and findings. A malformed row stops the
/// run with `file:line: reason`; the chunks before it stay stored (re-running is idempotent).
pub fn counters(engine: &Engine, tenant: &str, args: &CountersArgs) -> Result<()> {
    if args.output == Output::Csv {
        return Err(Error::new(ErrorKind::Parse, "counters prints table or json.").with_field("output"));
    }
    let dating = match args.dating {
        DatingArg::End => Dating::End,
        DatingArg::Start => Dating::Start,
        DatingArg::ProRata => Dating::ProRata,
    };
    let opts = CounterOptions { dating, time_zone: args.time_zone.clone(), profile: None };
    opts.check()?;
    let multiplier = parse_decimal(&args.multiplier).map_err(|e| e.with_field("multiplier"))?;
    let mut total =
        CounterOutcome { report: meterkit::engine::IngestReport::default(), records: vec![], findings: vec![] };
    let mut chunk = Vec::with_capacity(CHUNK);
    let flush = |chunk: &mut Vec<MeterReading>, total: &mut CounterOutcome| -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let out = engine.track_counters(tenant, &args.metric, chunk, &opts)?;
        chunk.clear();
        total.report.accepted += out.report.accepted;
        total.report.duplicates += out.report.duplicates;
        total.report.rejected.extend(out.report.rejected);
        total.report.findings.extend(out.report.findings);
        total.records.extend(out.records);
        total.findings.extend(out.findings);
        Ok(())
    };
    for_each_row(&args.file, args.format, &mut |line, row| {
        let reading = parse_row(args, multiplier, row)
            .map_err(|e| Error::new(e.kind(), located(&args.file, line, e.message())))?;
        chunk.push(reading);
        if chunk.len() == CHUNK {
            flush(&mut chunk, &mut total)?;
        }
        Ok(())
    })?;
    flush(&mut chunk, &mut total)?;
    print(&total, args.output)
}

fn parse_row(args: &CountersArgs, multiplier: rust_decimal::Decimal, row: &Cells) -> Result<MeterReading> {
    let cell = |col: &str| -> Result<&str> {
        row.get(col).map(String::as_str).filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            Error::new(ErrorKind::Parse, format!("The column '{col}' is missing or empty.")).with_field(col)
        })
    };
    let meter = cell(&args.meter_column)?.trim().to_string();
    let register = parse_decimal(cell(&args.reading_column)?).map_err(|e| e.with_field(&args.reading_column))?;
    let at = parse_timestamp(cell(&args.timestamp_column)?, None).map_err(|e| e.with_field(&args.timestamp_column))?;
    let mut reading = MeterReading::new(meter, at, register).multiplier(multiplier);
    reading.register_bits = args.bits;
    reading.register_digits = args.digits;
    Ok(reading)
}

fn print(outcome: &CounterOutcome, output: Output) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if output == Output::Json {
        let text = serde_json::to_string_pretty(outcome)
            .map_err(|e| Error::new(ErrorKind::Store, format!("Cannot write JSON: {e}.")))?;
        return writeln!(out, "{text}").map_err(io_err);
    }
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header(["id", "meter", "timestamp", "end", "quantity"]);
    for r in &outcome.records {
        table.add_row([
            r.id.clone(),
            r.subject.clone(),
            meterkit::time::fmt_ts(r.timestamp),
            r.end.map_or_else(String::new, meterkit::time::fmt_ts),
            fmt_decimal(r.quantity),
        ]);
    }
    writeln!(out, "{table}").map_err(io_err)?;
    let r = &outcome.report;
    writeln!(out, "accepted {}, duplicates {}, rejected {}", r.accepted, r.duplicates, r.rejected.len())
        .map_err(io_err)?;
    for f in &outcome.findings {
        writeln!(out, "{} {} {}: {}", f.rule, f.subject, meterkit::time::fmt_ts(f.timestamp), f.message)
            .map_err(io_err)?;
    }
    Ok(())
}
