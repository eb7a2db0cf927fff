//! `meterkit validate` and the validation section of `meterkit report`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use meterkit::{
    fmt_decimal, Error, ErrorKind, Finding, Result, UsageRecord, ValidationConfig, ValidationSummary, Validator,
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
}

/// A validator with `config` (or the defaults) for every metric.
pub fn validator(config: Option<&PathBuf>) -> Result<Validator> {
    let cfg = match config {
        None => ValidationConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::new(ErrorKind::Validation, format!("Cannot read {}: {e}.", path.display())).with_field("config")
            })?;
            meterkit::check_json(&text).map_err(|e| {
                let at = e.line().map(|l| format!(":{l}")).unwrap_or_default();
                Error::new(ErrorKind::Validation, format!("{}{at}: {}", path.display(), e.message()))
                    .with_field("config")
            })?;
            serde_json::from_str(&text).map_err(|e| {
                Error::new(ErrorKind::Validation, format!("{}:{}: {e}", path.display(), e.line())).with_field("config")
            })?
        }
    };
    Validator::new(Vec::<(String, ValidationConfig)>::new())?.with_default(cfg)
}

/// `meterkit validate`: findings of every record of the file, nothing stored.
pub fn validate(tenant: &str, args: &ValidateArgs) -> Result<()> {
    let mut v = validator(args.config.as_ref())?;
    let mut findings: Vec<Finding> = Vec::new();
    let mut malformed = 0u64;
    args.input.read(tenant, &mut |line, parsed| {
        match parsed {
            Ok(records) => {
                for r in &records {
                    findings.extend(v.check(r));
                }
            }
            Err(e) => {
                malformed += 1;
                eprintln!("{}", located(&args.input.file, line, e.message()));
            }
        }
        Ok(())
    })?;
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
            meterkit::fmt_ts(f.timestamp),
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

/// The report's validation section: the default rules over `records` (in time order).
pub fn render_summary(records: &[UsageRecord]) -> Result<String> {
    let mut v = validator(None)?;
    let findings = v.check_all(records);
    let mut s = String::new();
    let _ = write!(s, "\nValidation (default rules)\n{}", ValidationSummary::of(&findings));
    let mut worst: Vec<&Finding> = findings.iter().filter(|f| f.is_alert()).collect();
    worst.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.timestamp.cmp(&b.timestamp)));
    if !worst.is_empty() {
        let shown: Vec<Finding> = worst.iter().take(5).map(|f| (*f).clone()).collect();
        let _ = writeln!(s, "First {} alerts (errors first)\n{}", shown.len(), findings_table(&shown, 5));
    }
    Ok(s)
}
