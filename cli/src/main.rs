//! `meterkit`: ingest usage files into a meterkit database, query rollups, and print reports.

mod billing;
mod compare;
mod consume;
mod counters;
mod html;
mod ingest;
mod input;
mod invoices;
mod outbox;
mod partial;
mod readings;
mod report;
mod revise;
mod specs;
mod validation;

#[cfg(test)]
#[path = "../../core/src/tests/fuzz_driver.rs"]
mod fuzz_driver;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use meterkit::{decimal::fmt_decimal, engine::Fill, Bucket, Engine, Error, ErrorKind, Query, Result, Window};

use crate::ingest::{ingest_file, Feed, IngestHow, IngestOutcome};
use crate::input::{parse_timestamp, InputArgs};

/// meterkit: usage metering and billing on files.
#[derive(Debug, Parser)]
#[command(name = "meterkit", version, about)]
struct Cli {
    /// The store: a SQLite database file (`:memory:` for a throw-away one) or a PostgreSQL URL
    /// (`postgres://…`, shared by many processes).
    #[arg(long, global = true, default_value = "./meterkit.db")]
    db: String,
    /// The tenant every read and write is for.
    #[arg(long, global = true, default_value = "default")]
    tenant: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read usage records from a file and store them (idempotent: re-running changes nothing).
    Ingest {
        #[command(flatten)]
        input: InputArgs,
        /// How to print the outcome.
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
        /// Records per transaction.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
        batch_size: u32,
        /// JSONL: store each record under its own `tenant` (records without one get --tenant)
        /// instead of refusing records of another tenant.
        #[arg(long)]
        all_tenants: bool,
        /// Name of the feed (a cron job): its watermark (the greatest timestamp stored) is moved
        /// with each batch, and printed.
        #[arg(long)]
        source: Option<String>,
        /// With `--source`: skip the records timestamped before the source's watermark (what an
        /// earlier run sent); records at the watermark itself are checked as usual.
        #[arg(long, requires = "source")]
        skip_seen: bool,
        /// Validate the new records of every metric with these rule settings (JSON, a
        /// `ValidationConfig`, as `meterkit validate --config`): a rejected record is not stored,
        /// a flagged one is stored as flagged.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        /// A quota (JSON, a `Quota`, or an array of them) checked after each batch; the
        /// thresholds crossed are printed (`--output json`: `threshold_crossed`).
        #[arg(long = "quota")]
        quotas: Vec<std::path::PathBuf>,
    },
    /// Print a rollup: one row per window (and group).
    Rollup(RollupArgs),
    /// The main job: ingest a file, then print totals per day and month, the peak day, and a
    /// monthly bill under each `--tariff`.
    Report {
        #[command(flatten)]
        input: InputArgs,
        /// The IANA zone of the days and months.
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Records per transaction.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
        batch_size: u32,
        #[command(flatten)]
        bills: billing::ReportBills,
        /// Also write the report as one self-contained HTML page (inline SVG charts, the bills
        /// with their lines, alerts marked on the daily chart) to this file.
        #[arg(long)]
        html: Option<std::path::PathBuf>,
        /// How to print the report: `table` (readable text) or `json` (every figure, exact).
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Bill a subject's usage for a period under a tariff (TOML, JSON or URDB JSON).
    Bill(billing::BillArgs),
    /// Price one subject's load under many tariffs (files of one or many, URDB `items` too),
    /// month by month, cheapest first.
    Compare(compare::CompareArgs),
    /// Check a file with the validation rules and print the findings; nothing is stored.
    Validate(validation::ValidateArgs),
    /// Store register readings (and their consumption and findings, atomically) and print one
    /// outcome per reading: accepted, rejected or flagged.
    Readings(readings::ReadingsArgs),
    /// Turn cumulative counters (session byte counters, RADIUS/SNMP octets, registers) into
    /// deltas and ingest them; each meter's latest reading is kept in the store, so the next run
    /// continues from it (wraps at 2^bits or 10^digits).
    Counters(counters::CountersArgs),
    /// The pending-upload queue of an offline device database: queue, count, pending, ack, purge.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Ingest from a broker: NATS JetStream (`nats://HOST:PORT`) or MQTT (`mqtt://HOST:PORT`);
    /// each batch is one transaction, acknowledged after the commit.
    Consume(consume::ConsumeArgs),
    /// Print the price of a bare quantity under a tariff: the bill total of a whole billing period
    /// with that many units (charges needing time of use or demand are refused).
    Price(billing::PriceArgs),
    /// Print the stored records of a metric (JSONL, the form `ingest` reads).
    Records(revise::RecordsArgs),
    /// Roll up a file's records (one shard) into partial states under --spec: JSON on stdout, one
    /// entry per tenant, window and group (docs/scale-out.md). Nothing is stored.
    Partial(partial::PartialArgs),
    /// Merge partial-state files (from any shards, any order) into one: JSON on stdout.
    MergePartials(partial::StatesArgs),
    /// Print the buckets of --tenant from partial-state files (merged first), as JSON.
    FinalizePartials(partial::StatesArgs),
    /// Import partial-state files into --db under --spec: each key's merged state is set, so
    /// importing the same files twice changes nothing.
    ImportPartials(partial::StatesArgs),
    /// Remove the records of a file (by id) and their contribution to every rollup.
    Retract {
        #[command(flatten)]
        input: InputArgs,
    },
    /// Store a file's records as revisions in one atomic change: changed records replace the
    /// stored ones (the old versions kept in `history`).
    Replace {
        #[command(flatten)]
        input: InputArgs,
    },
    /// Print the earlier versions of a record that `replace` replaced (JSONL, oldest first).
    History(revise::HistoryArgs),
    /// Close the windows that ended before an instant (each bucket once); prints how many.
    CloseWindows(revise::CloseArgs),
    /// Print the estimated records (quality `estimated`) that fill the gaps of a file's series
    /// (JSONL, ready for `ingest`); nothing is stored.
    Estimate(revise::EstimateArgs),
    /// Invoices: create, issue, pay, void, list, overdue, reminders.
    #[command(subcommand)]
    Invoice(invoices::InvoiceCommand),
    /// The rollup specs maintained: list, add (`--own`: --tenant's own), remove.
    #[command(subcommand)]
    Spec(specs::SpecCommand),
}

#[derive(Debug, clap::Args)]
struct RollupArgs {
    /// The metric.
    #[arg(long)]
    metric: String,
    /// minutes:N, hour, day, week, month, quarter, year or cycle:DAY.
    #[arg(long)]
    window: String,
    /// The IANA zone windows are computed in.
    #[arg(long)]
    tz: String,
    /// Only this subject.
    #[arg(long)]
    subject: Option<String>,
    /// Split by these dimensions (comma-separated; `subject` allowed).
    #[arg(long, value_delimiter = ',')]
    group_by: Vec<String>,
    /// Start (RFC 3339, or a local date/time in --tz).
    #[arg(long)]
    from: Option<String>,
    /// End, exclusive (RFC 3339, or a local date/time in --tz).
    #[arg(long)]
    to: Option<String>,
    /// Only the N groups with the largest --by aggregation over the whole range (each row spans
    /// the range), largest first.
    #[arg(long, requires = "by")]
    top: Option<usize>,
    /// The aggregation --top ranks by: sum, count, min, max, mean, latest.
    #[arg(long, requires = "top")]
    by: Option<String>,
    /// `zero` returns empty windows too (needs --from and --to).
    #[arg(long, value_enum)]
    fill: Option<FillArg>,
    /// How to print.
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FillArg {
    Zero,
    None,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error[{}]: {}", e.kind().code(), e.message());
            ExitCode::FAILURE
        }
    }
}

fn open_engine(db: &str) -> Result<Engine> {
    meterkit_open::open_engine(db)
}

/// Open an existing database for a read command (`rollup`, `bill`): a missing file is refused
/// rather than created empty, so a mistyped `--db` is not read as "no usage".
fn open_existing(db: &str) -> Result<Engine> {
    let file = matches!(meterkit_open::Location::parse(db)?, meterkit_open::Location::Sqlite(_));
    if file && !std::path::Path::new(db).exists() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("The database {db} does not exist; check --db (ingest and report create it)."),
        )
        .with_field("db"));
    }
    open_engine(db)
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Ingest { input, output, batch_size, all_tenants, source, skip_seen, config, quotas } => {
            if *output == Output::Csv {
                return Err(Error::new(ErrorKind::Parse, "ingest prints table or json.").with_field("output"));
            }
            let input = &InputArgs { all_tenants: *all_tenants, ..input.clone() };
            let validation = config.as_ref().map(validation::read_config).transpose()?;
            let events = std::sync::Arc::new(meterkit::notify::CollectingNotifier::new());
            let engine = open_engine(&cli.db)?.with_notifier(events.clone());
            for path in quotas {
                for quota in read_quotas(path)? {
                    engine.add_quota(quota).map_err(|e| {
                        Error::new(e.kind(), format!("{}: {}", path.display(), e.message())).with_field("quota")
                    })?;
                }
            }
            let feed = match source {
                Some(name) => {
                    let seen = engine.last_ingested_at(&cli.tenant, name)?;
                    Some(Feed { name, skip_before: if *skip_seen { seen } else { None } })
                }
                None => None,
            };
            let how =
                IngestHow { batch_size: *batch_size as usize, feed: feed.as_ref(), validation: validation.as_ref() };
            let outcome = ingest_file(&engine, input, &cli.tenant, &how)?;
            let watermark = match source {
                Some(name) => engine.last_ingested_at(&cli.tenant, name)?.map(meterkit::time::fmt_ts),
                None => None,
            };
            let crossed: Vec<meterkit::notify::Event> = events
                .take()
                .into_iter()
                .filter(|e| matches!(e, meterkit::notify::Event::ThresholdCrossed { .. }))
                .collect();
            let crossed = (!quotas.is_empty()).then_some(crossed.as_slice());
            print_ingest(*output, &outcome, (source.is_some(), watermark.as_deref()), crossed)
        }
        Command::Rollup(args) => rollup(cli, args),
        Command::Report { input, tz, batch_size, bills, html, output } => {
            meterkit::time::parse_time_zone(tz)?;
            if *output == Output::Csv {
                return Err(
                    Error::new(ErrorKind::InvalidQuery, "report prints --output table or json.").with_field("output")
                );
            }
            let tariffs = bills.load(tz)?;
            let engine = open_engine(&cli.db)?;
            let how = IngestHow { batch_size: *batch_size as usize, feed: None, validation: None };
            let outcome = ingest_file(&engine, input, &cli.tenant, &how)?;
            let made = billing::report_bills(&engine, &cli.tenant, tz, &outcome, bills, &tariffs)?;
            let data = match (html, output) {
                (None, Output::Table) => None,
                _ => Some(html::gather(&engine, &cli.tenant, input, tz, &outcome, &made)?),
            };
            if let (Some(path), Some(data)) = (html, &data) {
                html::write(path, data)?;
            }
            let text = match &data {
                Some(data) if *output == Output::Json => {
                    let mut t =
                        serde_json::to_string_pretty(data).map_err(|e| Error::new(ErrorKind::Store, e.to_string()))?;
                    t.push('\n');
                    t
                }
                _ => {
                    let mut t = report::render(&engine, &cli.tenant, input, tz, &outcome)?;
                    let single = (outcome.subjects.len() == 1).then(|| outcome.subjects.iter().next()).flatten();
                    t.push_str(&billing::render_report_bills(&made, single));
                    t
                }
            };
            std::io::stdout().lock().write_all(text.as_bytes()).map_err(io_err)
        }
        Command::Bill(args) => billing::bill(&open_existing(&cli.db)?, &cli.tenant, args),
        Command::Compare(args) => compare::compare(&open_existing(&cli.db)?, &cli.tenant, args),
        Command::Validate(args) => validation::validate(&cli.tenant, args),
        Command::Readings(args) => readings::readings(&open_engine(&cli.db)?, &cli.tenant, args),
        Command::Counters(args) => counters::counters(&open_engine(&cli.db)?, &cli.tenant, args),
        Command::Outbox(cmd) => outbox::run(&open_engine(&cli.db)?, &cli.tenant, cmd),
        Command::Consume(args) => consume::run(&cli.db, &cli.tenant, args),
        Command::Price(args) => billing::price(args),
        Command::Records(args) => revise::records(&open_existing(&cli.db)?, &cli.tenant, args),
        Command::Partial(args) => partial::partial(&cli.tenant, args),
        Command::MergePartials(args) => partial::merge(args),
        Command::FinalizePartials(args) => partial::finalize(&cli.tenant, args),
        Command::ImportPartials(args) => partial::import(&open_engine(&cli.db)?, args),
        Command::Retract { input } => revise::retract(&open_existing(&cli.db)?, &cli.tenant, input),
        Command::Replace { input } => revise::replace(&open_engine(&cli.db)?, &cli.tenant, input),
        Command::History(args) => revise::history(&open_existing(&cli.db)?, &cli.tenant, args),
        Command::CloseWindows(args) => revise::close_windows(&open_existing(&cli.db)?, &cli.tenant, args),
        Command::Estimate(args) => revise::estimate(&cli.tenant, args),
        Command::Invoice(cmd) => invoices::run(&open_engine(&cli.db)?, &cli.tenant, cmd),
        Command::Spec(cmd) => specs::run(&open_engine(&cli.db)?, &cli.tenant, cmd),
    }
}

/// Print what `ingest` did; with a source, also the records skipped and the watermark.
/// With `--quota`, the thresholds crossed: `threshold_crossed` (JSON), or a line each.
fn print_ingest(
    output: Output,
    outcome: &IngestOutcome,
    (with_source, watermark): (bool, Option<&str>),
    crossed: Option<&[meterkit::notify::Event]>,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let json_err = |e: serde_json::Error| Error::new(ErrorKind::Store, format!("Cannot write JSON: {e}."));
    if output == Output::Json {
        let mut json = serde_json::json!({
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "rejected": outcome.rejected,
        });
        if with_source {
            json["skipped"] = outcome.skipped.into();
            json["watermark"] = watermark.into();
        }
        if let Some(crossed) = crossed {
            json["threshold_crossed"] = serde_json::to_value(crossed).map_err(json_err)?;
        }
        writeln!(out, "{json}").map_err(io_err)?;
    } else {
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED);
        if with_source {
            t.set_header(["accepted", "duplicates", "rejected", "skipped", "watermark"]);
            let n = |v: u64| v.to_string();
            t.add_row([
                n(outcome.accepted),
                n(outcome.duplicates),
                n(outcome.rejected),
                n(outcome.skipped),
                watermark.unwrap_or("-").to_string(),
            ]);
        } else {
            t.set_header(["accepted", "duplicates", "rejected"]);
            t.add_row([outcome.accepted, outcome.duplicates, outcome.rejected]);
        }
        writeln!(out, "{t}").map_err(io_err)?;
        for e in crossed.unwrap_or_default() {
            writeln!(out, "threshold crossed: {}", serde_json::to_string(e).map_err(json_err)?).map_err(io_err)?;
        }
    }
    Ok(())
}

/// The quotas of a JSON file: one `Quota` object or an array of them; errors name the file and
/// line.
fn read_quotas(path: &std::path::Path) -> Result<Vec<meterkit::quota::Quota>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(ErrorKind::Parse, format!("Cannot read {}: {e}.", path.display())).with_field("quota")
    })?;
    let bad = |e: &serde_json::Error| {
        Error::new(ErrorKind::Parse, format!("{}:{}: {e}", path.display(), e.line()))
            .with_line(e.line() as u64)
            .with_field("quota")
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&e))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    items.into_iter().map(|v| serde_json::from_value(v).map_err(|e| bad(&e))).collect()
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(io_err)`
pub(crate) fn io_err(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Store, format!("Cannot write the output: {e}."))
}

fn rollup(cli: &Cli, args: &RollupArgs) -> Result<()> {
    let window: Window = args.window.parse()?;
    let tz = meterkit::time::parse_time_zone(&args.tz)?;
    let mut q = Query::new(&cli.tenant, &args.metric, window, &args.tz).group_by(args.group_by.iter().cloned());
    q.subject.clone_from(&args.subject);
    let when = |flag: &str, v: &Option<String>| {
        v.as_deref().map(|t| parse_timestamp(t, Some(tz)).map_err(|e| e.with_field(flag.to_string()))).transpose()
    };
    q.from = when("from", &args.from)?;
    q.to = when("to", &args.to)?;
    if let Some(FillArg::Zero) = args.fill {
        q.fill = Fill::Zero;
    }
    let engine = open_existing(&cli.db)?;
    let rows = match (args.top, &args.by) {
        (Some(n), Some(by)) => engine.top_n(&q, &by.parse()?, n)?,
        _ => engine.query(&q)?,
    };
    let mut out = std::io::stdout().lock();
    match args.output {
        Output::Json => {
            let json = serde_json::to_string_pretty(&rows)
                .map_err(|e| Error::new(ErrorKind::Parse, format!("Cannot write JSON: {e}.")))?;
            writeln!(out, "{json}").map_err(io_err)?;
        }
        Output::Csv => {
            let mut w = csv::Writer::from_writer(out);
            let (header, cells) = bucket_rows(&rows, &q);
            let csv_err = |e: csv::Error| Error::new(ErrorKind::Store, format!("Cannot write CSV: {e}."));
            w.write_record(&header).map_err(csv_err)?;
            for row in cells {
                w.write_record(&row).map_err(csv_err)?;
            }
            w.flush().map_err(io_err)?;
        }
        Output::Table => {
            let (header, cells) = bucket_rows(&rows, &q);
            let mut t = Table::new();
            t.load_style(UTF8_FULL_CONDENSED).set_header(header);
            for row in cells {
                t.add_row(row);
            }
            writeln!(out, "{t}").map_err(io_err)?;
        }
    }
    Ok(())
}

/// Header and cells of rollup rows for CSV and tables: window bounds in RFC 3339 UTC, group
/// values, aggregations.
fn bucket_rows(rows: &[Bucket], q: &Query) -> (Vec<String>, Vec<Vec<String>>) {
    let dims: Vec<&String> = q.group_by.iter().filter(|d| d.as_str() != meterkit::rollup::SUBJECT).collect();
    let mut header: Vec<String> = vec!["window_start".into(), "window_end".into(), "subject".into(), "metric".into()];
    header.extend(dims.iter().map(|d| (*d).clone()));
    header.extend(["sum", "count", "min", "max", "mean", "latest", "first_at", "last_at"].map(String::from));
    let opt = |d: Option<meterkit::Decimal>| d.map(fmt_decimal).unwrap_or_default();
    let at = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(meterkit::time::fmt_ts).unwrap_or_default();
    let cells = rows
        .iter()
        .map(|b| {
            let mut row = vec![
                meterkit::time::fmt_ts(b.window_start),
                meterkit::time::fmt_ts(b.window_end),
                b.subject.clone().unwrap_or_default(),
                b.metric.clone(),
            ];
            row.extend(dims.iter().map(|d| b.group.get(*d).cloned().flatten().unwrap_or_default()));
            row.extend([fmt_decimal(b.sum), b.count.to_string(), opt(b.min), opt(b.max), opt(b.mean), opt(b.latest)]);
            row.extend([at(b.first_at), at(b.last_at)]);
            row
        })
        .collect();
    (header, cells)
}
