//! The VEE evaluation shared by `tests/eval_vee.rs` and `examples/eval_vee.rs` (run by
//! `scripts/eval-vee`): the 13 labelled NAB series and the UK household, alerts from
//! [`meterkit::vee::alert::alerts_of`], the NAB convention (an alert is a catch when it starts inside a
//! labelled window, false when it starts outside every window), per-series and
//! leave-one-family-out figures, and the rolling robust z-score baseline.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use meterkit::{
    decimal::parse_decimal, vee::alert::alerts_of, vee::alert::Alert, vee::alert::AlertConfig, vee::Rule,
    vee::ValidationConfig, UsageRecord, Validator,
};

/// The series: file, family (NAB's folder, grouped as the issue names them).
pub const SERIES: [(&str, &str); 13] = [
    ("Twitter_volume_AMZN.csv", "tweets"),
    ("Twitter_volume_FB.csv", "tweets"),
    ("Twitter_volume_KO.csv", "tweets"),
    ("ec2_disk_write_bytes_1ef3de.csv", "cloud"),
    ("ec2_disk_write_bytes_c0d644.csv", "cloud"),
    ("elb_request_count_8c0756.csv", "cloud"),
    ("grok_asg_anomaly.csv", "cloud"),
    ("occupancy_t4013.csv", "traffic"),
    ("machine_temperature_system_failure.csv", "known-cause"),
    ("nyc_taxi.csv", "known-cause"),
    ("art_daily_jumpsup.csv", "artificial"),
    ("art_daily_small_noise.csv", "artificial"),
    ("art_noisy.csv", "artificial"),
];

/// The families, in the order of the tables.
pub const FAMILIES: [&str; 5] = ["tweets", "cloud", "traffic", "known-cause", "artificial"];

/// `tests/data/nab` of the repository.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/nab")
}

/// The UK household file in `examples/data`.
pub fn household_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/uk-smart-meter-hourly.csv")
}

fn naive_utc(text: &str) -> DateTime<Utc> {
    let t = text.trim().trim_end_matches("+00:00");
    let t = t.split('.').next().unwrap_or(t);
    NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").expect("timestamp").and_utc()
}

/// The records of a `timestamp,value` CSV (naive timestamps read as UTC; `+00:00` too).
pub fn load_csv(path: &Path, subject: &str) -> Vec<UsageRecord> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let (ts, value) = line.split_once(',').expect("two columns");
            UsageRecord::new("eval", format!("{i}"), subject, "v", parse_decimal(value).expect("value"), naive_utc(ts))
        })
        .collect()
}

/// The labelled windows of a series (`labels.json` keys are `folder/file`).
pub fn windows(file: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let text = std::fs::read_to_string(data_dir().join("labels.json")).expect("labels.json");
    let labels: serde_json::Value = serde_json::from_str(&text).expect("labels json");
    let (_, ws) = labels
        .as_object()
        .expect("object")
        .iter()
        .find(|(k, _)| k.ends_with(&format!("/{file}")))
        .unwrap_or_else(|| panic!("{file} not in labels.json"));
    ws.as_array()
        .expect("windows")
        .iter()
        .map(|w| (naive_utc(w[0].as_str().expect("start")), naive_utc(w[1].as_str().expect("end"))))
        .collect()
}

/// One loaded series.
pub struct Series {
    /// File name.
    pub file: &'static str,
    /// Family.
    pub family: &'static str,
    /// Records.
    pub records: Vec<UsageRecord>,
    /// Labelled windows.
    pub windows: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

/// Load the 13 series.
pub fn load_all() -> Vec<Series> {
    SERIES
        .iter()
        .map(|&(file, family)| Series {
            file,
            family,
            records: load_csv(&data_dir().join(file), file.trim_end_matches(".csv")),
            windows: windows(file),
        })
        .collect()
}

/// Validate `records` with `config` (now = a day after the last record) and group the findings
/// into alerts with the default [`AlertConfig`].
pub fn alerts(records: &[UsageRecord], config: &ValidationConfig) -> Vec<Alert> {
    let now = records.last().expect("records").timestamp + Duration::days(1);
    let mut v = Validator::new([("v", config.clone())]).expect("config").with_now(now);
    let findings = v.check_all(records);
    alerts_of(records, &findings, AlertConfig::default()).expect("alerts")
}

/// The figures of one series (or a sum of series).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Score {
    /// Points.
    pub points: usize,
    /// Labelled windows.
    pub windows: usize,
    /// Windows in which at least one alert starts.
    pub caught: usize,
    /// Alerts starting outside every window.
    pub false_alerts: usize,
    /// All alerts.
    pub alerts: usize,
}

impl Score {
    /// False alerts per 1000 points.
    pub fn rate(&self) -> f64 {
        self.false_alerts as f64 * 1000.0 / self.points.max(1) as f64
    }

    /// Share of windows caught, percent.
    pub fn recall(&self) -> f64 {
        if self.windows == 0 {
            100.0
        } else {
            self.caught as f64 * 100.0 / self.windows as f64
        }
    }

    /// Sum.
    pub fn add(&mut self, o: Score) {
        self.points += o.points;
        self.windows += o.windows;
        self.caught += o.caught;
        self.false_alerts += o.false_alerts;
        self.alerts += o.alerts;
    }
}

/// Score `alerts` on `s` by the NAB convention.
pub fn score(s: &Series, alerts: &[Alert]) -> Score {
    let inside = |t: DateTime<Utc>| s.windows.iter().any(|(a, b)| *a <= t && t <= *b);
    Score {
        points: s.records.len(),
        windows: s.windows.len(),
        caught: s.windows.iter().filter(|(a, b)| alerts.iter().any(|x| *a <= x.start && x.start <= *b)).count(),
        false_alerts: alerts.iter().filter(|x| !inside(x.start)).count(),
        alerts: alerts.len(),
    }
}

/// Score every series under `config`.
pub fn score_all(series: &[Series], config: &ValidationConfig) -> Vec<Score> {
    series.iter().map(|s| score(s, &alerts(&s.records, config))).collect()
}

/// Sum the scores of the series whose family passes `keep`.
pub fn total(series: &[Series], scores: &[Score], keep: impl Fn(&str) -> bool) -> Score {
    let mut t = Score::default();
    for (s, sc) in series.iter().zip(scores) {
        if keep(s.family) {
            t.add(*sc);
        }
    }
    t
}

/// The candidate configurations the leave-one-family-out run chooses from: the defaults and
/// neighbours of the knobs tuned on these series (named for the table).
pub fn candidates() -> Vec<(String, ValidationConfig)> {
    let d = ValidationConfig::default();
    let mut out = Vec::new();
    for q in [0.003, 0.01] {
        for k in [1.25, 1.5] {
            for h in [15.0, 20.0] {
                let c = ValidationConfig { adaptive_quantile: q, cusum_k: k, cusum_h: h, ..d.clone() };
                out.push((format!("q={q} k={k} h={h}"), c));
            }
        }
    }
    out
}

/// Choose on `train`: most windows caught with at most 1.0 false alert per 1000 points, else the
/// fewest false alerts per 1000 points (ties: fewer false alerts, then the earlier candidate).
pub fn choose(train: &[Score]) -> usize {
    let key = |s: &Score| {
        let ok = s.rate() <= 1.0;
        (ok, if ok { s.caught as i64 } else { -(s.false_alerts as i64) }, -(s.false_alerts as i64))
    };
    let mut best = 0;
    for (i, s) in train.iter().enumerate() {
        if key(s) > key(&train[best]) {
            best = i;
        }
    }
    best
}

/// One held-out family: the candidate chosen on the others and its figures on the family.
pub struct Fold {
    /// Held-out family.
    pub family: &'static str,
    /// Name of the chosen candidate.
    pub chosen: String,
    /// Figures on the other families with it.
    pub train: Score,
    /// Figures on the held-out family with it.
    pub held_out: Score,
}

/// Leave-one-family-out over the candidates.
pub fn leave_one_family_out(series: &[Series]) -> Vec<Fold> {
    let cands = candidates();
    let scores: Vec<Vec<Score>> = cands.iter().map(|(_, c)| score_all(series, c)).collect();
    FAMILIES
        .iter()
        .map(|&fam| {
            let train: Vec<Score> = scores.iter().map(|sc| total(series, sc, |f| f != fam)).collect();
            let i = choose(&train);
            Fold {
                family: fam,
                chosen: cands[i].0.clone(),
                train: train[i],
                held_out: total(series, &scores[i], |f| f == fam),
            }
        })
        .collect()
}

/// The baseline: the rolling robust z-score over the last `window` points alone
/// ([`ValidationConfig::naive`]) at `threshold`, streak rules as default.
pub fn baseline(window: usize, threshold: f64) -> ValidationConfig {
    ValidationConfig { window, threshold, ..ValidationConfig::naive() }
}

/// Thresholds the baseline is swept over to reach a given recall.
pub const BASELINE_THRESHOLDS: [f64; 12] = [3.5, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0, 200.0, 500.0];

/// The baseline at equal recall: of the thresholds whose windows caught reach `caught`, the one
/// with the fewest false alerts, with its total score; when none reaches it, the one that catches
/// the most windows.
pub fn baseline_at_recall(series: &[Series], window: usize, caught: usize) -> (f64, Score) {
    let mut runs: Vec<(f64, Score)> = BASELINE_THRESHOLDS
        .iter()
        .map(|&t| (t, total(series, &score_all(series, &baseline(window, t)), |_| true)))
        .collect();
    let reached: Vec<(f64, Score)> = runs.iter().copied().filter(|(_, s)| s.caught >= caught).collect();
    if let Some(best) = reached.iter().min_by_key(|(_, s)| s.false_alerts) {
        return *best;
    }
    runs.sort_by_key(|(_, s)| std::cmp::Reverse(s.caught));
    runs[0]
}

/// The household's alerts and how many of them hold a zero streak.
pub fn household() -> (usize, Vec<Alert>) {
    let records = load_csv(&household_path(), "uk-household");
    let alerts = alerts(&records, &ValidationConfig::default());
    (records.len(), alerts)
}

/// Alerts that involve the zero-streak rule.
pub fn zero_streak_alerts(alerts: &[Alert]) -> Vec<&Alert> {
    alerts.iter().filter(|a| a.rules.contains(&Rule::ZeroStreak)).collect()
}
