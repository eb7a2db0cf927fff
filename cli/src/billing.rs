//! `meterkit bill` and the bills section of `meterkit report`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use meterkit::{
    allocate::SharedMeter, billing::month_period, decimal::parse_decimal, time::parse_time_zone, Bill, BillRequest,
    Decimal, Engine, Error, ErrorKind, Query, Result, Tariff, Window,
};

use crate::input::parse_timestamp;
use crate::{io_err, IngestOutcome, Output};

/// Flags of `meterkit bill`.
#[derive(Debug, clap::Args)]
pub struct BillArgs {
    /// The tariff file: TOML, meterkit JSON or OpenEI URDB JSON (detected from the content).
    #[arg(long)]
    tariff: PathBuf,
    /// The subject to bill; may be left out when the period has usage of one subject only.
    #[arg(long, conflicts_with_all = ["subjects", "all_subjects"])]
    subject: Option<String>,
    /// Bill these subjects together, comma-separated (an account's SIMs): tiers apply to their total.
    #[arg(long, value_delimiter = ',', conflicts_with = "all_subjects")]
    subjects: Vec<String>,
    /// Bill every subject of the tenant together.
    #[arg(long)]
    all_subjects: bool,
    /// Only records with this dimension value, DIM=VALUE (repeatable; all must match). Without
    /// --subject/--subjects it bills every subject with matching records.
    #[arg(long, value_name = "DIM=VALUE")]
    filter: Vec<String>,
    /// Add each subject's usage to the bill (JSON `per_subject`; a table after the bill's).
    #[arg(long)]
    per_subject: bool,
    /// The metric billed (charges may name other metrics too).
    #[arg(long)]
    metric: String,
    /// The calendar month to bill, YYYY-MM, in --tz.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    period: Option<String>,
    /// Start of the billing period (RFC 3339, or a local date/time in --tz).
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// End of the billing period, exclusive.
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// The IANA zone of the billing period.
    #[arg(long)]
    tz: String,
    /// How to print the bill.
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
}

/// The most flats `--shared-meter` splits across (one share each is allocated).
const MAX_FLATS: u32 = 100_000;

/// Flags of `meterkit report` that add bills.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportBills {
    /// A tariff to print a monthly bill under (repeatable).
    #[arg(long = "tariff")]
    tariffs: Vec<PathBuf>,
    /// The month to bill, YYYY-MM (default: the last complete month of the data).
    #[arg(long)]
    bill_period: Option<String>,
    /// A shared meter split equally across flats, as METRIC=TOTAL/FLATS (e.g. motor_kwh=90.5/4):
    /// the report's subject is one of the flats and its share is billed by charges on METRIC.
    #[arg(long)]
    shared_meter: Option<String>,
}

fn read_tariff(path: &PathBuf) -> Result<Tariff> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(ErrorKind::Tariff, format!("Cannot read the tariff {}: {e}.", path.display())).with_field("tariff")
    })?;
    Tariff::from_any(&text).map_err(|e| {
        let at = e.line().map(|l| format!(":{l}")).unwrap_or_default();
        Error::new(e.kind(), format!("{}{at}: {}", path.display(), e.message()))
    })
}

fn period(args: &BillArgs, tz: meterkit::Tz) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    match (&args.period, &args.from, &args.to) {
        (Some(p), _, _) => month_period(p, tz),
        (None, Some(f), Some(t)) => Ok((parse_timestamp(f, Some(tz))?, parse_timestamp(t, Some(tz))?)),
        _ => Err(Error::new(ErrorKind::InvalidQuery, "Give --period YYYY-MM or --from and --to.").with_field("period")),
    }
}

/// The one subject with usage of `metric` in `[start, end)`, or an error asking for --subject.
pub(crate) fn only_subject(
    engine: &Engine,
    tenant: &str,
    metric: &str,
    tz: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<String> {
    let q = Query::new(tenant, metric, Window::Year, tz).group_by(["subject"]).range(start, end);
    let mut subjects: Vec<String> = engine.query(&q)?.into_iter().filter_map(|b| b.subject).collect();
    subjects.sort();
    subjects.dedup();
    match subjects.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::new(ErrorKind::NotFound, "No usage in the period; pass --subject.").with_field("subject")),
        many => Err(Error::new(
            ErrorKind::InvalidQuery,
            format!("{} subjects have usage in the period ({}…); pass --subject.", many.len(), many[0]),
        )
        .with_field("subject")),
    }
}

/// `meterkit bill`.
pub fn bill(engine: &Engine, tenant: &str, args: &BillArgs) -> Result<()> {
    let tz = parse_time_zone(&args.tz)?;
    let tariff = read_tariff(&args.tariff)?;
    let (start, end) = period(args, tz)?;
    let scoped = !args.subjects.is_empty() || args.all_subjects || !args.filter.is_empty();
    let subject = match &args.subject {
        Some(s) => s.clone(),
        None if scoped => String::new(),
        None => only_subject(engine, tenant, &args.metric, &args.tz, start, end)?,
    };
    let mut req = BillRequest::new(tenant, subject, &args.metric, start, end, &args.tz);
    req.subjects.clone_from(&args.subjects);
    req.per_subject = args.per_subject;
    for f in &args.filter {
        let (d, v) = f.split_once('=').ok_or_else(|| {
            Error::new(ErrorKind::Parse, format!("--filter '{f}' is not DIM=VALUE.")).with_field("filter")
        })?;
        req.filter.insert(d.to_string(), v.to_string());
    }
    let bill = engine.bill(&tariff, &req)?;
    let mut out = std::io::stdout().lock();
    match args.output {
        Output::Json => {
            let json = serde_json::to_string_pretty(&bill)
                .map_err(|e| Error::new(ErrorKind::Tariff, format!("Cannot write JSON: {e}.")))?;
            writeln!(out, "{json}").map_err(io_err)
        }
        Output::Csv => {
            let mut w = csv::Writer::from_writer(out);
            let csv_err = |e: csv::Error| Error::new(ErrorKind::Store, format!("Cannot write CSV: {e}."));
            w.write_record(Bill::TABLE_HEADER).map_err(csv_err)?;
            for row in bill.to_table_rows() {
                w.write_record(&row).map_err(csv_err)?;
            }
            w.flush().map_err(io_err)
        }
        Output::Table => {
            writeln!(out, "{}", bill_table(&bill, &tariff)).map_err(io_err)?;
            if !bill.per_subject.is_empty() {
                let mut t = Table::new();
                t.set_header(["subject", "quantity", "records"]);
                for u in &bill.per_subject {
                    t.add_row([u.subject.clone(), meterkit::decimal::fmt_decimal(u.quantity), u.records.to_string()]);
                }
                writeln!(out, "{t}").map_err(io_err)?;
            }
            Ok(())
        }
    }
}

fn bill_table(bill: &Bill, tariff: &Tariff) -> String {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_header(Bill::TABLE_HEADER);
    for row in bill.to_table_rows() {
        t.add_row(row);
    }
    for col in [2, 4, 5] {
        if let Some(c) = t.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let tz: Option<meterkit::Tz> = bill.time_zone.parse().ok();
    let day = |d: DateTime<Utc>| {
        tz.map_or_else(|| meterkit::time::fmt_ts(d), |tz| d.with_timezone(&tz).format("%Y-%m-%d").to_string())
    };
    format!(
        "{} — {} {} to {} (end exclusive), {}\n{t}",
        tariff.name.as_deref().unwrap_or("tariff"),
        bill.subject,
        day(bill.period_start),
        day(bill.period_end),
        bill.currency
    )
}

impl ReportBills {
    /// Read every tariff and check `--shared-meter` and `--bill-period` (in zone `tz`) up front, so a bad file or flag fails before
    /// anything is ingested.
    pub fn load(&self, tz: &str) -> Result<Vec<Tariff>> {
        self.shared()?;
        if let Some(p) = &self.bill_period {
            month_period(p, parse_time_zone(tz)?).map_err(|e| e.with_field("bill-period"))?;
        }
        self.tariffs.iter().map(read_tariff).collect()
    }

    fn shared(&self) -> Result<Option<(String, Decimal, u32)>> {
        let Some(spec) = &self.shared_meter else { return Ok(None) };
        let bad = || {
            Error::new(ErrorKind::Parse, format!("--shared-meter '{spec}' is not METRIC=TOTAL/FLATS."))
                .with_field("shared-meter")
        };
        let (metric, rest) = spec.split_once('=').ok_or_else(bad)?;
        let (total, flats) = rest.split_once('/').ok_or_else(bad)?;
        let flats: u32 = flats.parse().map_err(|_| bad())?;
        if flats == 0 || metric.is_empty() {
            return Err(bad());
        }
        if flats > MAX_FLATS {
            // One share per flat is allocated: bound it before allocating.
            return Err(Error::new(
                ErrorKind::InvalidQuery,
                format!("--shared-meter '{spec}' splits across {flats} flats; at most {MAX_FLATS} are supported."),
            )
            .with_field("shared-meter"));
        }
        let total = parse_decimal(total).map_err(|e| {
            Error::new(e.kind(), format!("--shared-meter '{spec}': {}", e.message())).with_field("shared-meter")
        })?;
        Ok(Some((metric.to_string(), total, flats)))
    }
}

/// The report's bills: one per tariff for the chosen month, or why there are none.
pub enum ReportBillsOutcome {
    /// `(tariff, bill)` in the order of the `--tariff` flags, and the shared-meter split used.
    Bills(Vec<(Tariff, Bill)>, Option<(String, Decimal, u32)>),
    /// Why no bill was made (several subjects, no complete month); empty when no tariff was given.
    Skipped(String),
}

/// The bills of the report: one bill per tariff for `--bill-period` (default: the last complete
/// month), for the input's only subject (and its share of `--shared-meter`).
///
/// # Errors
/// The engine's errors reading records, and a tariff's bill errors.
pub fn report_bills(
    engine: &Engine,
    tenant: &str,
    tz_name: &str,
    outcome: &IngestOutcome,
    flags: &ReportBills,
    tariffs: &[Tariff],
) -> Result<ReportBillsOutcome> {
    if tariffs.is_empty() {
        return Ok(ReportBillsOutcome::Skipped(String::new()));
    }
    let (Some(subject), 1) = (outcome.subjects.iter().next(), outcome.subjects.len()) else {
        let why = format!("the input has {} subjects (bills are per subject)", outcome.subjects.len());
        return Ok(ReportBillsOutcome::Skipped(why));
    };
    let Some(metric) = outcome.metrics.iter().next() else { return Ok(ReportBillsOutcome::Skipped(String::new())) };
    let tz = parse_time_zone(tz_name)?;
    let (start, end) = match &flags.bill_period {
        Some(p) => month_period(p, tz)?,
        None => match last_complete_month(engine, tenant, subject, metric, tz_name)? {
            Some(p) => p,
            None => return Ok(ReportBillsOutcome::Skipped("the data holds no complete month".into())),
        },
    };
    let req = BillRequest::new(tenant, subject.as_str(), metric.as_str(), start, end, tz_name);
    let mut records = engine.records(tenant, metric, Some(subject), start, end)?;
    let shared = flags.shared()?;
    if let Some((shared_metric, total, flats)) = &shared {
        let scale = total.scale();
        let mut shares = vec![(subject.clone(), Decimal::ONE)];
        shares.extend((2..=*flats).map(|i| (format!("flat-{i}"), Decimal::ONE)));
        let meter = SharedMeter { meter: "shared-meter".into(), metric: shared_metric.clone(), shares, scale };
        records.extend(meter.split(tenant, *total, start)?.into_iter().filter(|r| &r.subject == subject));
    }
    let bills = tariffs.iter().map(|t| Ok((t.clone(), t.bill(&req, &records)?))).collect::<Result<Vec<_>>>()?;
    Ok(ReportBillsOutcome::Bills(bills, shared))
}

/// The bills section of the report: one bill per tariff for the chosen month.
pub fn render_report_bills(bills: &ReportBillsOutcome, subject: Option<&String>) -> String {
    let mut s = String::new();
    let (bills, shared) = match bills {
        ReportBillsOutcome::Skipped(why) if why.is_empty() => return s,
        ReportBillsOutcome::Skipped(why) => {
            let _ = writeln!(s, "\nBills: skipped, {why}.");
            return s;
        }
        ReportBillsOutcome::Bills(bills, shared) => (bills, shared),
    };
    let _ = writeln!(s, "\nMonthly bills");
    for (tariff, bill) in bills {
        let _ = writeln!(s, "{}", bill_table(bill, tariff));
        if let Some(source) = &tariff.source {
            let _ = writeln!(s, "  source: {source}");
        }
    }
    if let (Some((m, total, flats)), Some(subject)) = (shared, subject) {
        let _ = writeln!(s, "  shared meter: {total} {m} split equally across {flats} flats (largest remainder); {subject} is one of them");
    }
    s
}

/// The last calendar month (in the zone) with usage on every one of its days.
fn last_complete_month(
    engine: &Engine,
    tenant: &str,
    subject: &str,
    metric: &str,
    tz: &str,
) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>> {
    let q = |w| Query::new(tenant, metric, w, tz).subject(subject);
    let months = engine.query(&q(Window::Month))?;
    let days = engine.query(&q(Window::Day))?;
    Ok(months.iter().rev().find_map(|m| {
        let with_data =
            days.iter().filter(|d| d.window_start >= m.window_start && d.window_start < m.window_end).count();
        let length = (m.window_end - m.window_start).num_hours() as f64 / 24.0;
        (with_data as f64 >= length.floor()).then_some((m.window_start, m.window_end))
    }))
}

/// Flags of `meterkit price`.
#[derive(Debug, clap::Args)]
pub struct PriceArgs {
    /// The tariff file: TOML, meterkit JSON or OpenEI URDB JSON (its latest version is used).
    #[arg(long)]
    tariff: PathBuf,
    /// The billing period's quantity of the metric (a decimal number, e.g. 350.5).
    #[arg(long)]
    quantity: String,
}

/// `meterkit price`: the bill total of a whole billing period with `--quantity` units
/// ([`Tariff::quantity_rater`]: the same rounding as a bill), printed as JSON
/// `{"quantity","total","currency"}`.
pub fn price(args: &PriceArgs) -> Result<()> {
    let tariff = read_tariff(&args.tariff)?;
    let quantity = parse_decimal(&args.quantity).map_err(|e| e.with_field("quantity"))?;
    let rater = tariff.quantity_rater().map_err(|e| {
        let mut located = Error::new(e.kind(), format!("{}: {}", args.tariff.display(), e.message()));
        if let Some(field) = e.field() {
            located = located.with_field(field.to_string());
        }
        located
    })?;
    let total = rater.total(quantity)?;
    let json = serde_json::json!({
        "quantity": meterkit::decimal::fmt_decimal(quantity),
        "total": meterkit::decimal::fmt_decimal(total),
        "currency": tariff.currency,
    });
    writeln!(std::io::stdout().lock(), "{json}").map_err(io_err)
}
