//! NAB evaluation shared by `tests/nab.rs` and `examples/nab_eval.rs`: plain std CSV parsing,
//! the validator run, and the two figures (labelled windows caught; alerts outside windows per
//! 1000 points, findings within 12 points of each other counted as one alert).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use meterkit::{parse_decimal, Finding, UsageRecord, ValidationConfig, Validator};

/// Findings closer than this many points are one alert.
pub const CLUSTER: usize = 12;

/// The NAB series: file name, key in `labels.json`, metric.
pub const SERIES: [(&str, &str, &str); 2] = [
    ("elb_request_count_8c0756.csv", "realAWSCloudwatch/elb_request_count_8c0756.csv", "requests"),
    ("nyc_taxi.csv", "realKnownCause/nyc_taxi.csv", "passengers"),
];

/// `tests/data/nab` of the repository.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/nab")
}

fn naive_utc(text: &str) -> DateTime<Utc> {
    let t = text.trim();
    let t = t.split('.').next().unwrap_or(t);
    NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").expect("NAB timestamp").and_utc()
}

/// The records of a `timestamp,value` CSV (naive timestamps read as UTC; with `+00:00` too).
pub fn load_csv(path: &Path, subject: &str, metric: &str) -> Vec<UsageRecord> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let (ts, value) = line.split_once(',').expect("two columns");
            let ts = ts.trim().trim_end_matches("+00:00");
            UsageRecord::new(
                "nab",
                format!("{subject}-{i}"),
                subject,
                metric,
                parse_decimal(value).expect("decimal value"),
                naive_utc(ts),
            )
        })
        .collect()
}

/// The labelled windows of a series.
pub fn windows(key: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let text = std::fs::read_to_string(data_dir().join("labels.json")).expect("labels.json");
    let labels: serde_json::Value = serde_json::from_str(&text).expect("labels json");
    labels[key]
        .as_array()
        .expect("windows")
        .iter()
        .map(|w| (naive_utc(w[0].as_str().unwrap()), naive_utc(w[1].as_str().unwrap())))
        .collect()
}

/// Run a validator with `config` over `records` (now = one day after the last record).
pub fn run(records: &[UsageRecord], config: ValidationConfig) -> Vec<Finding> {
    let metric = records[0].metric.clone();
    let now = records.last().unwrap().timestamp + Duration::days(1);
    let mut v = Validator::new([(metric, config)]).expect("config").with_now(now);
    v.check_all(records)
}

/// The evaluation of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// Points in the series.
    pub points: usize,
    /// Labelled windows.
    pub windows: usize,
    /// Windows with at least one warning or error inside.
    pub caught: usize,
    /// Alerts (clusters of warnings/errors within 12 points) outside every window.
    pub outside_alerts: usize,
    /// Warning and error findings in total.
    pub alert_findings: usize,
    /// Info findings in total.
    pub info_findings: usize,
}

impl Score {
    /// Outside alerts per 1000 points.
    pub fn rate(&self) -> f64 {
        self.outside_alerts as f64 * 1000.0 / self.points as f64
    }
}

/// Score `findings` against `windows`.
pub fn score(records: &[UsageRecord], findings: &[Finding], windows: &[(DateTime<Utc>, DateTime<Utc>)]) -> Score {
    let inside = |t: DateTime<Utc>| windows.iter().any(|(a, b)| *a <= t && t <= *b);
    let alerts: Vec<&Finding> = findings.iter().filter(|f| f.is_alert()).collect();
    let caught = windows.iter().filter(|(a, b)| alerts.iter().any(|f| *a <= f.timestamp && f.timestamp <= *b)).count();
    // Point index of each outside finding (its record's position; a gap's first missing slot
    // falls between two records and takes the later one's position).
    let mut idx: Vec<usize> = alerts
        .iter()
        .filter(|f| !inside(f.timestamp))
        .map(|f| records.partition_point(|r| r.timestamp < f.timestamp))
        .collect();
    idx.sort_unstable();
    let mut outside_alerts = 0;
    let mut last: Option<usize> = None;
    for i in idx {
        if last.is_none_or(|l| i - l > CLUSTER) {
            outside_alerts += 1;
        }
        last = Some(i);
    }
    Score {
        points: records.len(),
        windows: windows.len(),
        caught,
        outside_alerts,
        alert_findings: alerts.len(),
        info_findings: findings.len() - alerts.len(),
    }
}

/// Load and score one NAB series under `config`.
pub fn evaluate(file: &str, key: &str, metric: &str, config: ValidationConfig) -> (Score, Vec<Finding>) {
    let records = load_csv(&data_dir().join(file), file.trim_end_matches(".csv"), metric);
    let findings = run(&records, config);
    (score(&records, &findings, &windows(key)), findings)
}
