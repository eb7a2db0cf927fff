//! `meterkit readings`: register readings from a file through the engine's reading store
//! ([`meterkit::Engine::record_reading`]), one outcome printed per reading.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use meterkit::{
    decimal::fmt_decimal, decimal::parse_decimal, reading::check::ReadingOptions, reading::check::ReadingOutcome,
    Engine, Error, ErrorKind, MeterReading, Result,
};
use serde_json::Value;

use crate::input::{located, parse_timestamp, Format};
use crate::{io_err, Output};

/// Flags of `meterkit readings`.
#[derive(Debug, clap::Args)]
pub struct ReadingsArgs {
    /// The input file (CSV with a header row, or one JSON object per line).
    pub file: PathBuf,
    /// Input format; by default from the extension (.csv, .jsonl/.ndjson/.json).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// The column holding the meter id.
    #[arg(long)]
    pub meter_column: String,
    /// The column holding the register reading (a decimal number).
    #[arg(long)]
    pub reading_column: String,
    /// The column holding the reading time (RFC 3339).
    #[arg(long)]
    pub timestamp_column: String,
    /// The register's integer digits (1-28): the roll-over point and the first-reading check.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=28))]
    pub digits: u8,
    /// Register units to metric units (a CT ratio, a pulse weight).
    #[arg(long, default_value = "1")]
    pub multiplier: String,
    /// A column whose non-empty cell holds the old meter's final reading: that row's reading is
    /// the new meter's start reading (a declared meter exchange).
    #[arg(long)]
    pub exchange_column: Option<String>,
    /// The metric of the consumption records (kwh, m3, ...).
    #[arg(long)]
    pub metric: String,
    /// Reading-store settings as JSON (a `ReadingOptions`: history, time_zone, profile,
    /// typical_register, max_daily, plausible_factor, dating = pro_rata|start|end; every key
    /// optional).
    #[arg(long)]
    pub options: Option<PathBuf>,
    /// How to print the outcomes.
    #[arg(long, value_enum, default_value = "table")]
    pub output: Output,
    /// Check each reading against the stored history (the same decisions and outcome) but store
    /// nothing (`Engine::check_reading`): the rows of the file do not see each other.
    #[arg(long)]
    pub check_only: bool,
}

/// One input row: column name → cell text.
pub(crate) type Cells = HashMap<String, String>;

/// One row: the reading and the declared exchange.
type Row = (MeterReading, Option<rust_decimal::Decimal>);

/// `meterkit readings`: store each reading (and its consumption and findings, atomically) and
/// print one outcome per reading. A malformed row stops the run with `file:line: reason`;
/// the readings before it stay stored (re-running is idempotent: a resent reading changes nothing).
pub fn readings(engine: &Engine, tenant: &str, args: &ReadingsArgs) -> Result<()> {
    if args.output == Output::Csv {
        return Err(Error::new(ErrorKind::Parse, "readings prints table or json.").with_field("output"));
    }
    let opts = options(args.options.as_ref())?;
    let multiplier = parse_decimal(&args.multiplier).map_err(|e| e.with_field("multiplier"))?;
    let mut outcomes = Vec::new();
    for_each_row(&args.file, args.format, &mut |line, row| {
        let (reading, exchange) = parse_row(args, multiplier, row)
            .map_err(|e| Error::new(e.kind(), located(&args.file, line, e.message())))?;
        let outcome = if args.check_only {
            engine.check_reading(tenant, &args.metric, &reading, exchange, &opts)?
        } else {
            engine.record_reading(tenant, &args.metric, &reading, exchange, &opts)?
        };
        outcomes.push(outcome);
        Ok(())
    })?;
    print(&outcomes, args.output)
}

fn options(path: Option<&PathBuf>) -> Result<ReadingOptions> {
    let Some(path) = path else { return Ok(ReadingOptions::default()) };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(ErrorKind::Parse, format!("Cannot read {}: {e}.", path.display())).with_field("options")
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::new(ErrorKind::Parse, format!("{}:{}: {e}", path.display(), e.line())).with_field("options")
    })
}

/// Call `f(line, row)` for every data row of `file` (CSV with a header or JSON lines; `format`
/// or by the extension), as column name → cell text.
pub(crate) fn for_each_row(
    file: &std::path::Path,
    format: Option<Format>,
    f: &mut dyn FnMut(u64, &Cells) -> Result<()>,
) -> Result<()> {
    let open_err = |e: std::io::Error| {
        Error::new(ErrorKind::Parse, format!("Cannot read {}: {e}.", file.display())).with_field("file")
    };
    let format = match format {
        Some(f) => f,
        None => match file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => Format::Csv,
            Some("jsonl" | "ndjson" | "json") => Format::Jsonl,
            _ => {
                return Err(Error::new(
                    ErrorKind::Parse,
                    format!("Cannot tell the format of {}; pass --format csv|jsonl.", file.display()),
                )
                .with_field("format"))
            }
        },
    };
    let path = file;
    let file = std::fs::File::open(path).map_err(open_err)?;
    match format {
        Format::Csv => {
            let mut rdr = csv::Reader::from_reader(file);
            let bad = |e: csv::Error| Error::new(ErrorKind::Parse, format!("{}: {e}", path.display()));
            let header: Vec<String> = rdr.headers().map_err(bad)?.iter().map(str::to_string).collect();
            for rec in rdr.records() {
                let rec = rec.map_err(bad)?;
                let line = rec.position().map_or(0, csv::Position::line);
                let row = header.iter().cloned().zip(rec.iter().map(str::to_string)).collect();
                f(line, &row)?;
            }
        }
        Format::Jsonl => {
            for (i, text) in BufReader::new(file).lines().enumerate() {
                let line = i as u64 + 1;
                let text = text.map_err(open_err)?;
                if text.trim().is_empty() {
                    continue;
                }
                let value: Value = serde_json::from_str(&text).map_err(|e| {
                    Error::new(ErrorKind::Parse, located(path, line, &format!("not a JSON object ({e})")))
                })?;
                let Value::Object(map) = value else {
                    return Err(Error::new(ErrorKind::Parse, located(path, line, "not a JSON object")));
                };
                let row = map
                    .into_iter()
                    .map(|(k, v)| {
                        let cell = match v {
                            Value::String(s) => s,
                            Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        (k, cell)
                    })
                    .collect();
                f(line, &row)?;
            }
        }
        Format::Clf => {
            return Err(Error::new(ErrorKind::Parse, "readings and counters read csv or jsonl.").with_field("format"));
        }
    }
    Ok(())
}

fn parse_row(args: &ReadingsArgs, multiplier: rust_decimal::Decimal, row: &HashMap<String, String>) -> Result<Row> {
    let cell = |col: &str| -> Result<&str> {
        row.get(col).map(String::as_str).filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            Error::new(ErrorKind::Parse, format!("The column '{col}' is missing or empty.")).with_field(col)
        })
    };
    let meter = cell(&args.meter_column)?.trim().to_string();
    let register = parse_decimal(cell(&args.reading_column)?).map_err(|e| e.with_field(&args.reading_column))?;
    let at = parse_timestamp(cell(&args.timestamp_column)?, None).map_err(|e| e.with_field(&args.timestamp_column))?;
    let exchange = match &args.exchange_column {
        Some(col) => match row.get(col).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            Some(text) => Some(parse_decimal(text).map_err(|e| e.with_field(col))?),
            None => None,
        },
        None => None,
    };
    let reading = MeterReading::new(meter, at, register).digits(args.digits).multiplier(multiplier);
    Ok((reading, exchange))
}

/// The JSON shape of one outcome: `{"meter","timestamp","reading","status","consumption",
/// "findings":[{"rule","severity","message"}]}`.
fn outcome_json(o: &ReadingOutcome) -> Value {
    serde_json::json!({
        "meter": o.meter,
        "timestamp": meterkit::time::fmt_ts(o.timestamp),
        "reading": fmt_decimal(o.reading),
        "status": o.status.as_str(),
        "consumption": o.consumption.map(fmt_decimal),
        "findings": o.findings.iter().map(|f| serde_json::json!({
            "rule": f.rule.as_str(),
            "severity": f.severity.as_str(),
            "message": f.message,
        })).collect::<Vec<_>>(),
    })
}

fn print(outcomes: &[ReadingOutcome], output: Output) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if output == Output::Json {
        let json = Value::Array(outcomes.iter().map(outcome_json).collect());
        let text = serde_json::to_string_pretty(&json)
            .map_err(|e| Error::new(ErrorKind::Store, format!("Cannot write JSON: {e}.")))?;
        return writeln!(out, "{text}").map_err(io_err);
    }
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_header(["meter", "timestamp", "reading", "status", "consumption", "findings"]);
    for o in outcomes {
        let findings: Vec<String> = o.findings.iter().map(|f| format!("{}: {}", f.rule, f.message)).collect();
        table.add_row([
            o.meter.clone(),
            meterkit::time::fmt_ts(o.timestamp),
            fmt_decimal(o.reading),
            o.status.as_str().to_string(),
            o.consumption.map_or_else(String::new, fmt_decimal),
            findings.join("\n"),
        ]);
    }
    writeln!(out, "{table}").map_err(io_err)
}
