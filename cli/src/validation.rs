//! `meterkit validate` and the validation section of `meterkit report`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use meterkit::{
    decimal::fmt_decimal, time::fmt_ts, vee::alert::Alert, vee::alert::AlertBuilder, vee::alert::AlertConfig,
    vee::alert::AlertEvent, vee::ValidationConfig, vee::ValidationSummary, Error, ErrorKind, Finding, Result,
    UsageRecord, Validator,
};

use crate::input::{located, InputArgs};
use crate::{io_err, Output};

/// Flags of `meterkit validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Rule settings as JSON (a `ValidationConfig`; every field optional), for every metric.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// How to print the findings.
    #[arg(long, value_enum, default_value = "table")]
    pub output: Output,
    /// Print alerts (consecutive findings on one series merged: start, end, rules, severity, peak
    /// value and its expected range) instead of the raw findings.
    #[arg(long)]
    pub alerts: bool,
}

/// A validator with `config` (or the defaults) for every metric.
pub fn validator(config: Option<&PathBuf>) -> Result<Validator> {
    let cfg = match config {
        None => ValidationConfig::default(),
        Some(path) => read_config(path)?,
    };
    Validator::new(Vec::<(String, ValidationConfig)>::new())?.with_default(cfg)
}

/// The rule settings of a JSON file (a `ValidationConfig`); errors name the file and line.
pub fn read_config(path: &PathBuf) -> Result<ValidationConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(ErrorKind::Validation, format!("Cannot read {}: {e}.", path.display())).with_field("config")
    })?;
    meterkit::json::check_json(&text).map_err(|e| {
        let at = e.line().map(|l| format!(":{l}")).unwrap_or_default();
        Error::new(ErrorKind::Validation, format!("{}{at}: {}", path.display(), e.message())).with_field("config")
    })?;
    let cfg: ValidationConfig = serde_json::from_str(&text).map_err(|e| {
        Error::new(ErrorKind::Validation, format!("{}:{}: {e}", path.display(), e.line())).with_field("config")
    })?;
    Ok(cfg)
}

/// `meterkit validate`: findings of every record of the file, nothing stored.
pub fn validate(tenant: &str, args: &ValidateArgs) -> Result<()> {
    let mut v = validator(args.config.as_ref())?;
    let mut findings: Vec<Finding> = Vec::new();
    let mut builder = AlertBuilder::new(AlertConfig::default())?;
    let mut alerts: Vec<Alert> = Vec::new();
    let mut malformed = 0u64;
    args.input.read(tenant, &mut |line, parsed| {
        match parsed {
            Ok(records) => {
                for r in &records {
                    let found = v.check(r);
                    if args.alerts {
                        alerts.extend(builder.observe(r, &found).into_iter().filter_map(resolved));
                    } else {
                        findings.extend(found);
                    }
                }
            }
            Err(e) => {
                malformed += 1;
                eprintln!("{}", located(&args.input.file, line, e.message()));
            }
        }
        Ok(())
    })?;
    if args.alerts {
        alerts.extend(builder.finish().into_iter().filter_map(resolved));
        alerts.sort_by(|a, b| (a.start, &a.subject, &a.metric).cmp(&(b.start, &b.subject, &b.metric)));
        return print_alerts(&alerts, args.output, malformed);
    }
    let mut out = std::io::stdout().lock();
    match args.output {
        Output::Json => {
            let json = serde_json::to_string_pretty(&findings)
                .map_err(|e| Error::new(ErrorKind::Validation, format!("Cannot write JSON: {e}.")))?;
            writeln!(out, "{json}").map_err(io_err)?;
        }
        Output::Csv => {
            writeln!(out, "{}", Finding::CSV_HEADER).map_err(io_err)?;
            for f in &findings {
                writeln!(out, "{}", f.to_csv_row()).map_err(io_err)?;
            }
        }
        Output::Table => {
            writeln!(out, "{}", findings_table(&findings, usize::MAX)).map_err(io_err)?;
            write!(out, "{}", ValidationSummary::of(&findings)).map_err(io_err)?;
            if malformed > 0 {
                writeln!(out, "{malformed} malformed lines (see stderr)").map_err(io_err)?;
            }
        }
    }
    Ok(())
}

fn resolved(e: AlertEvent) -> Option<Alert> {
    match e {
        AlertEvent::Resolved(a) => Some(a),
        AlertEvent::Raised(_) => None,
    }
}

/// The CSV header of `validate --alerts --output csv`.
const ALERT_CSV_HEADER: &str =
    "start,end,tenant,subject,metric,rules,severity,peak,expected_low,expected_high,findings";

fn print_alerts(alerts: &[Alert], output: Output, malformed: u64) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        Output::Json => {
            let json = serde_json::to_string_pretty(alerts)
                .map_err(|e| Error::new(ErrorKind::Validation, format!("Cannot write JSON: {e}.")))?;
            writeln!(out, "{json}").map_err(io_err)?;
        }
        Output::Csv => {
            writeln!(out, "{ALERT_CSV_HEADER}").map_err(io_err)?;
            let cell = |s: &str| {
                if s.contains([',', '"', '\n']) {
                    format!("\"{}\"", s.replace('"', "\"\""))
                } else {
                    s.to_string()
                }
            };
            let d = |x: Option<meterkit::Decimal>| x.map(fmt_decimal).unwrap_or_default();
            for a in alerts {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    fmt_ts(a.start),
                    fmt_ts(a.end),
                    cell(&a.tenant),
                    cell(&a.subject),
                    cell(&a.metric),
                    cell(&rule_list(a)),
                    a.severity.as_str(),
                    d(a.peak),
                    d(a.expected.map(|e| e.0)),
                    d(a.expected.map(|e| e.1)),
                    a.findings
                )
                .map_err(io_err)?;
            }
        }
        Output::Table => {
            writeln!(out, "{}", alerts_table(alerts, usize::MAX)).map_err(io_err)?;
            writeln!(out, "{} alerts", alerts.len()).map_err(io_err)?;
            if malformed > 0 {
                writeln!(out, "{malformed} malformed lines (see stderr)").map_err(io_err)?;
            }
        }
    }
    Ok(())
}

fn rule_list(a: &Alert) -> String {
    a.rules.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" ")
}

fn alerts_table(alerts: &[Alert], max: usize) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_header(["start", "end", "subject", "rules", "severity", "peak", "expected", "findings"]);
    for a in alerts.iter().take(max) {
        let expected =
            a.expected.map(|(lo, hi)| format!("{} – {}", fmt_decimal(lo), fmt_decimal(hi))).unwrap_or_default();
        t.add_row([
            fmt_ts(a.start),
            fmt_ts(a.end),
            a.subject.clone(),
            rule_list(a),
            a.severity.as_str().to_string(),
            a.peak.map(fmt_decimal).unwrap_or_default(),
            expected,
            a.findings.to_string(),
        ]);
    }
    t
}

fn findings_table(findings: &[Finding], max: usize) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_header([
        "timestamp",
        "subject",
        "rule",
        "severity",
        "action",
        "value",
        "expected",
        "message",
    ]);
    for f in findings.iter().take(max) {
        let expected =
            f.expected.map(|(lo, hi)| format!("{} – {}", fmt_decimal(lo), fmt_decimal(hi))).unwrap_or_default();
        t.add_row([
            meterkit::time::fmt_ts(f.timestamp),
            f.subject.clone(),
            f.rule.as_str().to_string(),
            f.severity.as_str().to_string(),
            f.action.as_str().to_string(),
            f.value.map(fmt_decimal).unwrap_or_default(),
            expected,
            f.message.clone(),
        ]);
    }
    t
}

/// The report's alerts and findings summary: `records` checked with the default rules.
///
/// # Errors
/// A rule configuration error (none with the defaults).
pub fn report_alerts(records: &[UsageRecord]) -> Result<(Vec<Alert>, ValidationSummary)> {
    let mut v = validator(None)?;
    let findings = v.check_all(records);
    let alerts = meterkit::vee::alert::alerts_of(records, &findings, AlertConfig::default())?;
    Ok((alerts, ValidationSummary::of(&findings)))
}

/// The report's validation section: the default rules over `records` (in time order), shown as
/// alerts (consecutive findings on one series merged), not raw findings.
pub fn render_summary(records: &[UsageRecord]) -> Result<String> {
    /// Alerts listed in full; the rest are counted.
    const SHOWN: usize = 20;
    let (alerts, summary) = report_alerts(records)?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nValidation (default rules)\n{} alerts from {} findings ({} errors, {} warnings, {} info; {} records rejected, {} flagged)",
        alerts.len(),
        summary.total,
        summary.error,
        summary.warning,
        summary.info,
        summary.rejected,
        summary.flagged
    );
    if !alerts.is_empty() {
        let _ = writeln!(s, "{}", alerts_table(&alerts, SHOWN));
        if alerts.len() > SHOWN {
            let _ = writeln!(s, "… {} more alerts (meterkit validate --alerts lists them all)", alerts.len() - SHOWN);
        }
    }
    Ok(s)
}
