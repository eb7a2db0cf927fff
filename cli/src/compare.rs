//! `meterkit compare`: one subject's load priced under many tariffs, cheapest first.

use std::io::Write as _;
use std::path::PathBuf;

use chrono::NaiveDate;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use meterkit::{
    billing::compare::Comparison, tariff::urdb::DayCount, tariff::urdb::UrdbOptions, time::parse_time_zone,
    BillRequest, Engine, Error, ErrorKind, Result, Tariff,
};

use crate::input::parse_timestamp;
use crate::{io_err, Output};

/// How `$/day` amounts of URDB records are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DayCountArg {
    /// The billing period's actual days.
    Actual,
    /// 365/12 days every month, as NREL PySAM.
    Pysam,
}

/// Flags of `meterkit compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// A tariff file (repeatable): TOML, meterkit JSON, a JSON array of tariffs, or a URDB
    /// record or API response with any number of `items`.
    #[arg(long = "tariff", required = true)]
    tariffs: Vec<PathBuf>,
    /// The subject; may be left out when the period has usage of one subject only.
    #[arg(long)]
    subject: Option<String>,
    /// The metric billed.
    #[arg(long)]
    metric: String,
    /// A calendar year in --tz (12 monthly bills).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    year: Option<i32>,
    /// Start of the compared period (RFC 3339, or a local date/time in --tz).
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// End of the compared period, exclusive.
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// The IANA zone of the bills' months and days.
    #[arg(long)]
    tz: String,
    /// `$/day` amounts of URDB records over actual days (default) or PySAM's 365/12.
    #[arg(long, value_enum, default_value = "actual")]
    day_count: DayCountArg,
    /// Decimal places of each bill line of URDB records (default: cents; PySAM does not round,
    /// 6 comes closest); totals are always rounded to cents.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=12))]
    line_decimals: Option<u32>,
    /// table or json (`[{"tariff","total","periods":[{"period","total"}],"error"}]`).
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
}

/// Every `(name, tariff)` of the files; a file's unreadable rate keeps its error.
fn load(args: &CompareArgs) -> Result<Vec<(String, Result<Tariff>)>> {
    let opts = UrdbOptions {
        day_count: match args.day_count {
            DayCountArg::Actual => DayCount::Actual,
            DayCountArg::Pysam => DayCount::PySam,
        },
        line_decimals: args.line_decimals,
    };
    let mut out = Vec::new();
    for path in &args.tariffs {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(ErrorKind::Tariff, format!("Cannot read the tariff {}: {e}.", path.display()))
                .with_field("tariff")
        })?;
        let many = Tariff::many_from_any(&text, opts)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))?;
        let single = many.len() == 1;
        for (i, (name, t)) in many.into_iter().enumerate() {
            let label = match (name, single) {
                (Some(n), _) => n,
                (None, true) => path.display().to_string(),
                (None, false) => format!("{}[{i}]", path.display()),
            };
            out.push((label, t));
        }
    }
    Ok(out)
}

/// `meterkit compare`.
pub fn compare(engine: &Engine, tenant: &str, args: &CompareArgs) -> Result<()> {
    let tz = parse_time_zone(&args.tz)?;
    let (start, end) = match (args.year, &args.from, &args.to) {
        (Some(y), _, _) => {
            let bad = || Error::new(ErrorKind::InvalidQuery, format!("{y} is not a year.")).with_field("year");
            let a = NaiveDate::from_ymd_opt(y, 1, 1).ok_or_else(bad)?;
            let b = NaiveDate::from_ymd_opt(y + 1, 1, 1).ok_or_else(bad)?;
            (parse_timestamp(&a.to_string(), Some(tz))?, parse_timestamp(&b.to_string(), Some(tz))?)
        }
        (None, Some(f), Some(t)) => (parse_timestamp(f, Some(tz))?, parse_timestamp(t, Some(tz))?),
        _ => return Err(Error::new(ErrorKind::InvalidQuery, "Give --year YYYY or --from and --to.").with_field("year")),
    };
    let subject = match &args.subject {
        Some(s) => s.clone(),
        None => crate::billing::only_subject(engine, tenant, &args.metric, &args.tz, start, end)?,
    };
    let loaded = load(args)?;
    let mut metrics = vec![args.metric.clone()];
    for t in loaded.iter().filter_map(|(_, t)| t.as_ref().ok()) {
        for m in t.metrics(&args.metric) {
            if !metrics.contains(&m) {
                metrics.push(m);
            }
        }
    }
    let mut records = Vec::new();
    for m in &metrics {
        records.extend(engine.records(tenant, m, Some(&subject), start, end)?);
    }
    let req = BillRequest::new(tenant, subject, &args.metric, start, end, &args.tz);
    let good: Vec<(&str, &Tariff)> =
        loaded.iter().filter_map(|(n, t)| t.as_ref().ok().map(|t| (n.as_str(), t))).collect();
    let mut ranked = Tariff::compare(good, &req, &records)?;
    for (n, t) in &loaded {
        if let Err(e) = t {
            ranked.push(Comparison {
                tariff: n.clone(),
                total: None,
                periods: Vec::new(),
                error: Some(e.message().into()),
            });
        }
    }
    print(&ranked, args.output)
}

fn print(ranked: &[Comparison], output: Output) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if output == Output::Json {
        let json = serde_json::to_string_pretty(ranked)
            .map_err(|e| Error::new(ErrorKind::Tariff, format!("Cannot write JSON: {e}.")))?;
        return writeln!(out, "{json}").map_err(io_err);
    }
    if output == Output::Csv {
        return Err(Error::new(ErrorKind::Parse, "compare prints table or json.").with_field("output"));
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_header(["rank", "tariff", "total", "months", "error"]);
    for (i, c) in ranked.iter().enumerate() {
        t.add_row([
            (i + 1).to_string(),
            c.tariff.clone(),
            c.total.map(|d| d.to_string()).unwrap_or_default(),
            c.periods.len().to_string(),
            c.error.clone().unwrap_or_default(),
        ]);
    }
    writeln!(out, "{t}").map_err(io_err)
}
