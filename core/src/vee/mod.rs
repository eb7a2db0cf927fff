//! Validation of usage records (the V of VEE): rules, [`Finding`]s and the streaming [`Validator`].
//!
//! The long-form description of every rule, its defaults and the evaluation on labelled data is
//! `docs/validation.md`, rendered as [`crate::guide::validation`].

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::decimal::{fmt_decimal, parse_decimal};
use crate::error::{Error, ErrorKind, Result};
use crate::record::{Quality, UsageRecord};
use crate::time::fmt_ts;
use crate::time::parse_time_zone;

pub mod alert;
pub mod estimate;

/// How serious a [`Finding`] is.
///
/// * `info` — worth recording, nothing to do (a rollover, a short gap that was estimated).
/// * `warning` — a person should look (a spike, a stuck meter, a meter exchange).
/// * `error` — the value cannot be right (a negative quantity where the metric forbids it, a
///   timestamp in the future).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Recorded, nothing to do.
    Info,
    /// A person should look.
    Warning,
    /// The value cannot be right.
    Error,
}

impl Severity {
    /// The snake_case name (`info`, `warning`, `error`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What happens to the record a [`Finding`] is about.
///
/// * `accept` — billed as is.
/// * `flag` — billed, marked [`Quality::Flagged`], and counted in the bucket's flagged share.
/// * `reject` — never reaches a rollup (the engine reports it in `IngestReport.rejected` with kind
///   `validation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "FindingAction"))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Billed as is.
    Accept,
    /// Billed, marked flagged.
    Flag,
    /// Not billed.
    Reject,
}

impl Action {
    /// The snake_case name (`accept`, `flag`, `reject`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Flag => "flag",
            Action::Reject => "reject",
        }
    }
}

/// The rule that raised a [`Finding`]. JSON: the snake_case name (`spike`, `rollover`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// A negative quantity on a metric that does not allow one (error, reject).
    NegativeQuantity,
    /// A quantity that does not parse as a finite decimal (error, reject).
    InvalidQuantity,
    /// A timestamp later than now plus the allowed clock skew (error, reject).
    FutureTimestamp,
    /// A timestamp older than the configured horizon (error, reject).
    TooOld,
    /// A metric the validator has no configuration for (error, reject).
    UnknownMetric,
    /// A `unit` dimension other than the metric's configured unit (error, reject).
    UnknownUnit,
    /// A value far above the last N values and above the series' usual range (warning, flag).
    Spike,
    /// A value far below the last N values and below the series' usual range (warning, flag).
    Drop,
    /// A value above the configured absolute high limit (warning, flag).
    HighLimit,
    /// A value below the configured absolute low limit (warning, flag).
    LowLimit,
    /// The same non-zero value repeated for K intervals (warning, flag).
    Stuck,
    /// Zero for K intervals in a row (warning, flag).
    ZeroStreak,
    /// Intervals missing before this record (info when short enough to interpolate, else warning).
    Gap,
    /// A record older than the latest one already seen for its series (info, accept; it does not
    /// feed the statistical rules).
    OutOfOrder,
    /// A register reading lower than the previous one that is a plausible roll-over of a register
    /// with a known digit count (info, accept).
    Rollover,
    /// A register reading lower than the previous one that is not a plausible roll-over: a meter
    /// exchange or a reset (warning, flag).
    MeterExchange,
    /// A second reading of a meter at the same instant (info, reject when equal; warning, reject
    /// when it differs).
    DuplicateReading,
    /// A register reading older than the meter's latest reading (warning, reject).
    OutOfOrderReading,
    /// A register value that is negative or does not fit the register's digits (error, reject).
    InvalidReading,
    /// A sustained shift of the level away from the series' long-run mean: a two-sided CUSUM of
    /// standardised deviations crossed its decision limit (warning, flag).
    LevelShift,
    /// A register reading lower than the meter's previous one that is neither a plausible
    /// roll-over nor a declared meter exchange (error, reject; see [`crate::Engine::record_reading`]).
    BackwardsReading,
    /// A reading that looks like a dropped or an extra digit of a plausible reading (error,
    /// reject; the message names the reading that was probably meant).
    LikelyTypo,
    /// A roll-over whose consumption is not plausible against the meter's history (warning, flag:
    /// the consumption is stored as `flagged` and held for review).
    ImplausibleRollover,
    /// Consumption far above the meter's history (warning, flag).
    ImplausibleConsumption,
    /// A meter's first reading outside the site's typical register range (warning, flag).
    FirstReadingOutOfRange,
}

impl Rule {
    /// The snake_case name, as in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::NegativeQuantity => "negative_quantity",
            Rule::InvalidQuantity => "invalid_quantity",
            Rule::FutureTimestamp => "future_timestamp",
            Rule::TooOld => "too_old",
            Rule::UnknownMetric => "unknown_metric",
            Rule::UnknownUnit => "unknown_unit",
            Rule::Spike => "spike",
            Rule::Drop => "drop",
            Rule::HighLimit => "high_limit",
            Rule::LowLimit => "low_limit",
            Rule::Stuck => "stuck",
            Rule::ZeroStreak => "zero_streak",
            Rule::Gap => "gap",
            Rule::OutOfOrder => "out_of_order",
            Rule::Rollover => "rollover",
            Rule::MeterExchange => "meter_exchange",
            Rule::DuplicateReading => "duplicate_reading",
            Rule::OutOfOrderReading => "out_of_order_reading",
            Rule::InvalidReading => "invalid_reading",
            Rule::LevelShift => "level_shift",
            Rule::BackwardsReading => "backwards_reading",
            Rule::LikelyTypo => "likely_typo",
            Rule::ImplausibleRollover => "implausible_rollover",
            Rule::ImplausibleConsumption => "implausible_consumption",
            Rule::FirstReadingOutOfRange => "first_reading_out_of_range",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing validation found about one record or reading, explained in a sentence.
///
/// JSON (the CLI's `validate --output json`, `IngestReport.findings`, every binding):
/// `{"rule","severity","action","tenant","subject","metric","id"?,"timestamp","value","expected",
/// "score","message"}` — `timestamp` RFC 3339 in UTC, `value` and `score` decimal strings or
/// `null`, `expected` `["low","high"]` or `null`; `id` is the record id and is omitted for
/// findings about something that is not a record (a gap, a reading).
///
/// * `value` is the checked quantity in the metric's unit (for readings: the register value).
/// * `expected` is the range the value was expected in, where the rule has one (spike, drop,
///   limits), rounded to 4 decimal places.
/// * `score` is the rule's strength where it has one: the robust z-score for spike and drop
///   (deviation from the median of the last N values in units of 1.4826 × MAD), rounded to 2
///   decimal places; the run length for stuck and zero streaks; the number of missing intervals
///   for gaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Finding {
    /// The rule that raised it.
    pub rule: Rule,
    /// How serious it is.
    pub severity: Severity,
    /// What happens to the record.
    pub action: Action,
    /// Tenant of the record.
    pub tenant: String,
    /// Subject (meter, SIM, API key) of the record.
    pub subject: String,
    /// Metric of the record.
    pub metric: String,
    /// Id of the record, when the finding is about one record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When: the record's timestamp (for a gap: the start of the first missing interval).
    #[serde(with = "crate::time::ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
    pub timestamp: DateTime<Utc>,
    /// The checked value, in the metric's unit.
    #[serde(default, with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub value: Option<Decimal>,
    /// The range the value was expected in, `(low, high)`.
    #[serde(default, with = "opt_range")]
    #[cfg_attr(feature = "ts", ts(type = "[DecimalString, DecimalString] | null"))]
    pub expected: Option<(Decimal, Decimal)>,
    /// The rule's score (robust z for spike/drop, a count for streaks and gaps).
    #[serde(default, with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub score: Option<Decimal>,
    /// What was found and what to do, in a sentence.
    pub message: String,
}

impl Finding {
    /// A finding about `record` (tenant, subject, metric, id, timestamp and value taken from it).
    pub fn about(record: &UsageRecord, rule: Rule, severity: Severity, action: Action, message: String) -> Self {
        Finding {
            rule,
            severity,
            action,
            tenant: record.tenant.clone(),
            subject: record.subject.clone(),
            metric: record.metric.clone(),
            id: Some(record.id.clone()),
            timestamp: record.timestamp,
            value: Some(record.quantity.normalize()),
            expected: None,
            score: None,
            message,
        }
    }

    /// True for warnings and errors (what the NAB evaluation counts as an alert).
    pub fn is_alert(&self) -> bool {
        self.severity >= Severity::Warning
    }

    /// The header of [`to_csv_row`](Finding::to_csv_row), for `validate --output csv`.
    pub const CSV_HEADER: &'static str =
        "timestamp,rule,severity,action,tenant,subject,metric,id,value,expected_low,expected_high,score,message";

    /// One CSV row (RFC 4180 quoting, no line end): the JSON fields in [`CSV_HEADER`] order, empty
    /// cells for `null`.
    ///
    /// [`CSV_HEADER`]: Finding::CSV_HEADER
    ///
    /// ```
    /// use meterkit::{vee::Action, Finding, vee::Rule, vee::Severity, UsageRecord};
    /// use chrono::{TimeZone, Utc};
    /// let r = UsageRecord::new("t", "r1", "m1", "kwh", "-2".parse()?, Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap());
    /// let f = Finding::about(&r, Rule::NegativeQuantity, Severity::Error, Action::Reject, "Negative, \"really\".".into());
    /// assert_eq!(f.to_csv_row(), r#"2024-01-01T00:00:00Z,negative_quantity,error,reject,t,m1,kwh,r1,-2,,,,"Negative, ""really"".""#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_csv_row(&self) -> String {
        fn cell(s: &str) -> String {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        }
        let d = |x: Option<Decimal>| x.map(fmt_decimal).unwrap_or_default();
        [
            fmt_ts(self.timestamp),
            self.rule.as_str().to_string(),
            self.severity.as_str().to_string(),
            self.action.as_str().to_string(),
            cell(&self.tenant),
            cell(&self.subject),
            cell(&self.metric),
            cell(self.id.as_deref().unwrap_or_default()),
            d(self.value),
            d(self.expected.map(|e| e.0)),
            d(self.expected.map(|e| e.1)),
            d(self.score),
            cell(&self.message),
        ]
        .join(",")
    }
}

pub(crate) mod opt_range {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct R(
        #[serde(with = "crate::decimal::decimal_str")] Decimal,
        #[serde(with = "crate::decimal::decimal_str")] Decimal,
    );

    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(r: &Option<(Decimal, Decimal)>, s: S) -> Result<S::Ok, S::Error> {
        r.map(|(a, b)| R(a, b)).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(Decimal, Decimal)>, D::Error> {
        Ok(Option::<R>::deserialize(d)?.map(|R(a, b)| (a, b)))
    }
}

/// The validation rules of one metric and their parameters. Every field has a default, so the
/// JSON form may name only what it changes: `{"allow_negative":true,"high_limit":"50"}`.
///
/// Defaults were tuned on the two labelled NAB series only (see `docs/validation.md`): N = 10 and
/// threshold 3.5 as field billing systems compare a reading with the last ten, a scale floor of
/// 10 % of the median, a long-run range that decays by 0.0002 of its width per value, and the
/// hour-of-week seasonal baseline once a slot has two previous weeks of history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// Allow negative quantities (export, credits). Default `false`: a negative quantity is an
    /// error and the record is rejected.
    pub allow_negative: bool,
    /// The metric's unit; a record whose `unit` dimension differs is rejected. Default: none
    /// (not checked).
    pub unit: Option<String>,
    /// Allowed clock skew, seconds: a timestamp later than now + skew is rejected. Default 300.
    pub future_skew_secs: i64,
    /// Horizon, seconds: a timestamp earlier than now − horizon is rejected. Default: none.
    pub max_age_secs: Option<i64>,
    /// Absolute high limit in the metric's unit (inclusive bound of what is normal). Default: none.
    #[serde(with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub high_limit: Option<Decimal>,
    /// Absolute low limit in the metric's unit. Default: none.
    #[serde(with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub low_limit: Option<Decimal>,
    /// Run the spike/drop rule. Default `true`.
    pub spikes: bool,
    /// N, the number of previous values the robust z-score compares with (3–64). Default 10.
    pub window: usize,
    /// Robust z-score threshold for spike/drop (and the seasonal baseline). Default 3.5.
    pub threshold: f64,
    /// Floor of the z-score's scale as a fraction of |median| (so that a calm run of near-equal
    /// values does not make every small change an outlier). Default 0.1.
    pub min_scale_ratio: f64,
    /// Require a spike or drop to be confirmed: outside the seasonal band when the seasonal
    /// baseline is ready, otherwise outside the series' long-run range. `false` gives the naive
    /// last-N robust z-score. Default `true`.
    pub confirm: bool,
    /// How fast the long-run range `[low, high]` forgets an extreme: each value moves both ends
    /// towards each other by this fraction of the range's width (0 = never). Default 0.0002.
    pub range_decay: f64,
    /// Use the hour-of-week seasonal baseline for interval data. Default `true`; it takes part
    /// only once a slot has `seasonal_min_weeks` previous weeks of history.
    pub seasonal: bool,
    /// Previous weeks a seasonal slot needs before it is used. Default 2.
    pub seasonal_min_weeks: u32,
    /// Weight of a new value in a slot's moving level and spread (0–1]. Default 0.1.
    pub seasonal_alpha: f64,
    /// IANA zone of the hour-of-week slots. Default `UTC`.
    pub time_zone: String,
    /// Values in a row that make a non-zero value stuck (0 = off). Default 8.
    pub stuck_intervals: u32,
    /// Zeros in a row that make a zero streak (0 = off). Default 6.
    pub zero_streak_intervals: u32,
    /// Detect gaps in interval data. Default `true`.
    pub gaps: bool,
    /// The series' cadence in seconds; default: inferred (a step seen three times in a row).
    pub interval_secs: Option<i64>,
    /// Longest gap, in intervals, that estimation fills by linear interpolation; a gap up to this
    /// is an `info` finding, a longer one a `warning`. Default 4.
    pub max_interpolation_intervals: u32,
    /// Values a series needs before its own statistics are trusted: the level-shift rule and the
    /// streak rarity test start after them (and [`AlertConfig::warmup`] raises no alert before
    /// them). Default 288 (one day of 5-minute values, twelve days of hourly ones).
    ///
    /// [`AlertConfig::warmup`]: crate::vee::alert::AlertConfig::warmup
    pub warmup: u32,
    /// Seasonal threshold that adapts to the series' own tail: with at least 200 seasonal scores
    /// seen, the seasonal band uses the larger of `threshold` and the score exceeded by only this
    /// share of the series' past seasonal scores (a 128-bin histogram, 0.25 wide). 0 = off.
    /// Default 0.003.
    pub adaptive_quantile: f64,
    /// Margin of the long-run range as a share of its width (the range is widened by the larger
    /// of one scale and this share). Default 0.1.
    pub range_margin: f64,
    /// Reference value k of the level-shift CUSUM, in units of the reference's mean absolute
    /// deviation × 1.2533 (≈ one standard deviation for normal data). Default 1.5.
    pub cusum_k: f64,
    /// Decision limit h of the level-shift CUSUM (0 = rule off). Default 15.
    pub cusum_h: f64,
    /// Each standardised deviation enters the CUSUM clipped to ±`cusum_clip` (Huber's robust
    /// CUSUM), so one burst cannot cross the limit alone: with the defaults a shift needs at least
    /// six values in a row. Default 4.
    pub cusum_clip: f64,
    /// After warm-up, a stuck or zero run is reported only when it is rarer than this given the
    /// series' own share of repeats (resp. zeros): share^run < `streak_rarity`. A series that is
    /// often zero (night-time solar, idle disks) then raises no zero streaks, one that never is
    /// raises one after `zero_streak_intervals`. 0 = off. Default 1e-6.
    pub streak_rarity: f64,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            allow_negative: false,
            unit: None,
            future_skew_secs: 300,
            max_age_secs: None,
            high_limit: None,
            low_limit: None,
            spikes: true,
            window: 10,
            threshold: 3.5,
            min_scale_ratio: 0.1,
            confirm: true,
            range_decay: 0.0002,
            seasonal: true,
            seasonal_min_weeks: 2,
            seasonal_alpha: 0.1,
            time_zone: "UTC".to_string(),
            stuck_intervals: 8,
            zero_streak_intervals: 6,
            gaps: true,
            interval_secs: None,
            max_interpolation_intervals: 4,
            warmup: 288,
            adaptive_quantile: 0.003,
            range_margin: 0.1,
            cusum_k: 1.5,
            cusum_h: 15.0,
            cusum_clip: 4.0,
            streak_rarity: 1e-6,
        }
    }
}

/// The largest N of the spike/drop rule.
pub const MAX_WINDOW: usize = 64;

impl ValidationConfig {
    /// The naive baseline: the last-N robust z-score alone (no confirmation, no seasonal
    /// baseline, no scale floor), other rules as default.
    pub fn naive() -> Self {
        ValidationConfig {
            confirm: false,
            seasonal: false,
            min_scale_ratio: 0.0,
            adaptive_quantile: 0.0,
            range_margin: 0.0,
            cusum_h: 0.0,
            streak_rarity: 0.0,
            ..ValidationConfig::default()
        }
    }

    /// Check the parameters and return the seasonal time zone.
    ///
    /// # Errors
    /// [`ErrorKind::Validation`] naming the field: `window` outside 3–64, a threshold that is not
    /// a positive finite number, a ratio or decay outside its range, a non-positive interval or
    /// skew; [`ErrorKind::InvalidTimeZone`] for an unknown zone.
    pub fn check(&self) -> Result<Tz> {
        let bad = |field: &str, msg: String| Err(Error::new(ErrorKind::Validation, msg).with_field(field));
        if !(3..=MAX_WINDOW).contains(&self.window) {
            return bad("window", format!("window must be between 3 and {MAX_WINDOW}, not {}.", self.window));
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return bad("threshold", format!("threshold must be a positive number, not {}.", self.threshold));
        }
        if !(self.min_scale_ratio.is_finite() && self.min_scale_ratio >= 0.0) {
            return bad("min_scale_ratio", "min_scale_ratio must be a number ≥ 0.".to_string());
        }
        if !(0.0..1.0).contains(&self.range_decay) {
            return bad("range_decay", "range_decay must be in [0, 1).".to_string());
        }
        if !(self.seasonal_alpha > 0.0 && self.seasonal_alpha <= 1.0) {
            return bad("seasonal_alpha", "seasonal_alpha must be in (0, 1].".to_string());
        }
        if !(0.0..0.5).contains(&self.adaptive_quantile) {
            return bad("adaptive_quantile", "adaptive_quantile must be in [0, 0.5).".to_string());
        }
        if !(self.range_margin.is_finite() && self.range_margin >= 0.0) {
            return bad("range_margin", "range_margin must be a number ≥ 0.".to_string());
        }
        if !(self.cusum_k.is_finite() && self.cusum_k >= 0.0 && self.cusum_h.is_finite() && self.cusum_h >= 0.0) {
            return bad("cusum_h", "cusum_k and cusum_h must be numbers ≥ 0.".to_string());
        }
        if self.cusum_clip.is_nan() || self.cusum_clip <= 0.0 {
            return bad("cusum_clip", "cusum_clip must be a positive number.".to_string());
        }
        if !(0.0..1.0).contains(&self.streak_rarity) {
            return bad("streak_rarity", "streak_rarity must be in [0, 1).".to_string());
        }
        if self.future_skew_secs < 0 {
            return bad("future_skew_secs", "future_skew_secs must not be negative.".to_string());
        }
        if self.max_age_secs.is_some_and(|a| a <= 0) {
            return bad("max_age_secs", "max_age_secs must be positive.".to_string());
        }
        if self.interval_secs.is_some_and(|i| i <= 0) {
            return bad("interval_secs", "interval_secs must be positive.".to_string());
        }
        if let (Some(lo), Some(hi)) = (self.low_limit, self.high_limit) {
            if lo > hi {
                return bad("low_limit", format!("low_limit {lo} is above high_limit {hi}."));
            }
        }
        parse_time_zone(&self.time_zone)
    }
}

/// Findings per rule and severity, for `meterkit report` and dashboards.
///
/// JSON: `{"total":N,"info":N,"warning":N,"error":N,"rejected":N,"flagged":N,
/// "by_rule":{"spike":{"info":0,"warning":2,"error":0},...}}` with rules in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ValidationSummary {
    /// Number of findings.
    pub total: u64,
    /// Findings of severity info.
    pub info: u64,
    /// Findings of severity warning.
    pub warning: u64,
    /// Findings of severity error.
    pub error: u64,
    /// Findings with action reject.
    pub rejected: u64,
    /// Findings with action flag.
    pub flagged: u64,
    /// Counts per rule name.
    pub by_rule: BTreeMap<String, SeverityCounts>,
}

/// Counts of findings by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SeverityCounts {
    /// Info findings.
    pub info: u64,
    /// Warning findings.
    pub warning: u64,
    /// Error findings.
    pub error: u64,
}

impl ValidationSummary {
    /// Summarise `findings`.
    pub fn of(findings: &[Finding]) -> Self {
        let mut s = ValidationSummary::default();
        for f in findings {
            s.total += 1;
            let c = s.by_rule.entry(f.rule.as_str().to_string()).or_default();
            match f.severity {
                Severity::Info => {
                    s.info += 1;
                    c.info += 1;
                }
                Severity::Warning => {
                    s.warning += 1;
                    c.warning += 1;
                }
                Severity::Error => {
                    s.error += 1;
                    c.error += 1;
                }
            }
            match f.action {
                Action::Reject => s.rejected += 1,
                Action::Flag => s.flagged += 1,
                Action::Accept => {}
            }
        }
        s
    }
}

impl fmt::Display for ValidationSummary {
    /// One line per rule: `spike: 2 warnings`, after a total line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} findings: {} errors, {} warnings, {} info; {} records rejected, {} flagged",
            self.total, self.error, self.warning, self.info, self.rejected, self.flagged
        )?;
        for (rule, c) in &self.by_rule {
            writeln!(f, "  {rule}: {} errors, {} warnings, {} info", c.error, c.warning, c.info)?;
        }
        Ok(())
    }
}

/// Seconds of a week, and of the Monday 1970-01-05 (the epoch was a Thursday).
const WEEK: i64 = 604_800;
const FIRST_MONDAY: i64 = 345_600;
/// Slots of the seasonal baseline: the hours of a week.
const SLOTS: usize = 168;
/// 1.4826 × MAD estimates the standard deviation of normal data.
const MAD_SCALE: f64 = 1.4826;
/// A scale below this is treated as this (a zero MAD over zero values).
const MIN_SCALE: f64 = 1e-9;

/// One hour-of-week slot of the seasonal baseline.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    level: f32,
    spread: f32,
    values: u16,
    weeks: u16,
    last_week: i32,
}

/// The streaming state of one series (tenant, subject, metric).
#[derive(Debug, Clone)]
struct Series {
    /// The last N values (ring).
    ring: Box<[f64]>,
    head: u16,
    len: u16,
    /// Long-run range.
    lo: f64,
    hi: f64,
    seen: u64,
    /// Last timestamp (seconds) and value.
    last_ts: i64,
    last_value: Decimal,
    /// Cadence: established interval, candidate and its confirmations.
    interval: i64,
    candidate: i64,
    confirmations: u32,
    /// Repeats of the last value, zeros in a row.
    run: u32,
    zeros: u32,
    seasonal: Option<Box<[Slot; SLOTS]>>,
    /// Histogram of the seasonal scores (allocated with the seasonal slots).
    scores: Option<Box<ScoreHistogram>>,
    /// Level-shift CUSUM: long-run mean, mean absolute deviation, upper and lower sums.
    mean: f64,
    mad: f64,
    /// Gaps seen.
    gaps: u32,
    /// Mean absolute deviation from the seasonal level (0 until the seasonal baseline is ready).
    seasonal_mad: f64,
    cusum_hi: f64,
    cusum_lo: f64,
    /// Values equal to the previous non-zero value, zeros, and whether the current run was reported.
    repeats: u64,
    zero_count: u64,
    stuck_done: bool,
    zeros_done: bool,
}

/// Histogram of |seasonal score| in bins 0.25 wide (the last bin holds everything from 31.75).
#[derive(Debug, Clone)]
struct ScoreHistogram {
    bins: [u32; SCORE_BINS],
    n: u32,
}

const SCORE_BINS: usize = 128;

impl ScoreHistogram {
    fn add(&mut self, z: f64) {
        let b = ((z.abs() * 4.0) as usize).min(SCORE_BINS - 1);
        self.bins[b] = self.bins[b].saturating_add(1);
        self.n = self.n.saturating_add(1);
    }

    /// The upper edge of the first bin (from the top) above which more than `q` of the scores lie.
    fn quantile(&self, q: f64) -> f64 {
        let allowed = (q * f64::from(self.n)) as u32;
        let mut above = 0u32;
        for b in (0..SCORE_BINS).rev() {
            above = above.saturating_add(self.bins[b]);
            if above > allowed {
                return (b + 1) as f64 / 4.0;
            }
        }
        0.0
    }
}

impl Series {
    fn new(n: usize) -> Self {
        Series {
            ring: vec![0.0; n].into_boxed_slice(),
            head: 0,
            len: 0,
            lo: 0.0,
            hi: 0.0,
            seen: 0,
            last_ts: i64::MIN,
            last_value: Decimal::ZERO,
            interval: 0,
            candidate: 0,
            confirmations: 0,
            run: 0,
            zeros: 0,
            seasonal: None,
            scores: None,
            mean: 0.0,
            mad: 0.0,
            gaps: 0,
            seasonal_mad: 0.0,
            cusum_hi: 0.0,
            cusum_lo: 0.0,
            repeats: 0,
            zero_count: 0,
            stuck_done: false,
            zeros_done: false,
        }
    }

    fn push(&mut self, x: f64) {
        let n = self.ring.len();
        self.ring[self.head as usize] = x;
        self.head += 1;
        if self.head as usize >= n {
            self.head = 0;
        }
        if (self.len as usize) < n {
            self.len += 1;
        }
    }

    /// Median and 1.4826 × MAD of the ring.
    fn median_mad(&self) -> (f64, f64) {
        let mut buf = [0.0f64; MAX_WINDOW];
        let n = self.len as usize;
        buf[..n].copy_from_slice(&self.ring[..n]);
        let m = median(&mut buf[..n]);
        for v in &mut buf[..n] {
            *v = (*v - m).abs();
        }
        (m, median(&mut buf[..n]) * MAD_SCALE)
    }
}

fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    let (left, mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let mid = *mid;
    if n % 2 == 1 {
        mid
    } else {
        let lower = left.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        f64::midpoint(lower, mid)
    }
}

/// Decimal → f64 for the statistics: the mantissa divided by an exact power of ten (correctly
/// rounded for mantissas below 2^53 and scales up to 22; within a few ulps otherwise).
#[inline]
fn to_f64(d: Decimal) -> f64 {
    const POW10: [f64; 29] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28,
    ];
    let m = d.mantissa();
    let mf = i64::try_from(m).map_or_else(|_| m as f64, |m| m as f64);
    mf / POW10[(d.scale() as usize).min(28)]
}

/// Exact equality of two decimals, fast when they have the same scale (the usual case).
#[inline]
fn same_value(a: Decimal, b: Decimal) -> bool {
    if a.scale() == b.scale() {
        a.mantissa() == b.mantissa()
    } else {
        a == b
    }
}

/// f64 → Decimal rounded to `dp` places (bounds and scores only; never a billed amount);
/// `None` outside the decimal range.
fn dec(x: f64, dp: u32) -> Option<Decimal> {
    Decimal::from_f64_retain(x).map(|d| d.round_dp(dp).normalize())
}

#[derive(Debug, Clone)]
struct MetricRules {
    cfg: ValidationConfig,
    params: RuleParams,
    tz: Tz,
    utc: bool,
}

/// Streaming validation with bounded memory per series, usable without a store.
///
/// Records are checked in the order given; each series `(tenant, subject, metric)` keeps the last
/// N values, its long-run range, cadence, streak counters and (once used) 168 hour-of-week slots —
/// see `docs/validation.md` for the bytes per series. [`check_all`](Validator::check_all) is
/// exactly [`check`](Validator::check) applied record by record, so a batch gives the same
/// findings as a stream however it is split.
///
/// Time rules compare with "now": the wall clock, or the instant set with
/// [`with_now`](Validator::with_now) (tests, replays, the CLI's `--now`).
///
/// ```
/// use meterkit::{vee::Rule, UsageRecord, vee::ValidationConfig, Validator};
/// use chrono::{Duration, TimeZone, Utc};
/// let t0 = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
/// let mut v = Validator::new([("kwh", ValidationConfig::default())])?.with_now(t0 + Duration::days(1));
/// let usual = ["1.0", "1.2", "0.9", "1.1", "1.0", "1.3", "0.8", "1.1", "1.0", "1.2"];
/// for (h, q) in usual.iter().enumerate() {
///     let r = UsageRecord::new("t", format!("r{h}"), "meter-1", "kwh", q.parse()?, t0 + Duration::hours(h as i64));
///     assert!(v.check(&r).is_empty());
/// }
/// let typo = UsageRecord::new("t", "r10", "meter-1", "kwh", "11.0".parse()?, t0 + Duration::hours(10));
/// let findings = v.check(&typo);
/// assert_eq!(findings[0].rule, Rule::Spike);
/// // median 1.05, MAD 0.1, scale 1.4826 × 0.1: expected up to 1.05 + 3.5 × 0.14826
/// assert_eq!(findings[0].expected.unwrap().1.to_string(), "1.5689");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Validator {
    rules: Vec<(String, MetricRules)>,
    default: Option<MetricRules>,
    now: Option<DateTime<Utc>>,
    index: rustc_hash::FxHashMap<u64, Vec<u32>>,
    series: Vec<(String, String, String, Series)>,
    last: Option<u32>,
    journal: Option<Vec<(u32, Option<Series>)>>,
    alerts: crate::vee::alert::AlertBuilder,
}

impl Validator {
    /// A validator with one configuration per metric; records of other metrics raise
    /// `unknown_metric` (error, reject) unless a default is set with
    /// [`with_default`](Validator::with_default).
    ///
    /// # Errors
    /// As [`ValidationConfig::check`].
    pub fn new<M: Into<String>>(configs: impl IntoIterator<Item = (M, ValidationConfig)>) -> Result<Self> {
        let mut rules: Vec<(String, MetricRules)> = Vec::new();
        for (m, cfg) in configs {
            let m = m.into();
            let r = MetricRules::new(cfg)?;
            match rules.iter_mut().find(|(k, _)| *k == m) {
                Some(e) => e.1 = r,
                None => rules.push((m, r)),
            }
        }
        Ok(Validator {
            rules,
            default: None,
            now: None,
            index: rustc_hash::FxHashMap::default(),
            series: Vec::new(),
            last: None,
            journal: None,
            alerts: crate::vee::alert::AlertBuilder::default(),
        })
    }

    /// The alert grouping the engine feeds after each stored batch (default [`AlertConfig`]).
    ///
    /// [`AlertConfig`]: crate::vee::alert::AlertConfig
    pub fn alerts_mut(&mut self) -> &mut crate::vee::alert::AlertBuilder {
        &mut self.alerts
    }

    /// Use `config` for every metric without its own configuration (builder style).
    ///
    /// # Errors
    /// As [`ValidationConfig::check`].
    pub fn with_default(mut self, config: ValidationConfig) -> Result<Self> {
        self.default = Some(MetricRules::new(config)?);
        Ok(self)
    }

    /// Compare timestamps with `now` instead of the wall clock (builder style).
    #[must_use]
    pub fn with_now(mut self, now: DateTime<Utc>) -> Self {
        self.now = Some(now);
        self
    }

    /// Set (or with `None` clear) the fixed "now".
    pub fn set_now(&mut self, now: Option<DateTime<Utc>>) {
        self.now = now;
    }

    /// Set or replace the configuration of `metric`; the series of that metric keep their state.
    ///
    /// # Errors
    /// As [`ValidationConfig::check`].
    pub fn set_config(&mut self, metric: &str, config: ValidationConfig) -> Result<()> {
        let r = MetricRules::new(config)?;
        match self.rules.iter_mut().find(|(k, _)| k == metric) {
            Some(e) => e.1 = r,
            None => self.rules.push((metric.to_string(), r)),
        }
        Ok(())
    }

    /// True when `metric` has a configuration (its own or the default).
    pub fn covers(&self, metric: &str) -> bool {
        self.default.is_some() || self.rules.iter().any(|(k, _)| k == metric)
    }

    /// Number of series tracked.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Check one record against its series' history and return the findings (empty for a clean
    /// record), in rule order: record rules, gap, limits, spike/drop, stuck, zero streak. A record
    /// with a `reject` finding does not enter the history; an `estimated` record gets only the
    /// record rules. Never panics.
    pub fn check(&mut self, record: &UsageRecord) -> Vec<Finding> {
        let now = self.now.unwrap_or_else(Utc::now);
        let mut out = Vec::new();
        self.check_at(record, now, &mut out);
        out
    }

    /// Check a batch, record by record in the order given (same findings as calling
    /// [`check`](Validator::check) for each), and return every finding.
    pub fn check_all(&mut self, records: &[UsageRecord]) -> Vec<Finding> {
        let now = self.now.unwrap_or_else(Utc::now);
        let mut out = Vec::new();
        for r in records {
            self.check_at(r, now, &mut out);
        }
        out
    }

    /// Check a record whose quantity is still text (a CSV cell, a field typed in an app): text
    /// that is not a finite decimal (`abc`, `NaN`, `inf`, empty) gives one `invalid_quantity`
    /// finding (error, reject); otherwise as [`check`](Validator::check).
    pub fn check_text(&mut self, record: &UsageRecord, quantity_text: &str) -> Vec<Finding> {
        match parse_decimal(quantity_text) {
            Ok(q) => {
                let mut r = record.clone();
                r.quantity = q;
                self.check(&r)
            }
            Err(e) => {
                let mut f = Finding::about(
                    record,
                    Rule::InvalidQuantity,
                    Severity::Error,
                    Action::Reject,
                    format!(
                        "The quantity '{quantity_text}' is not a finite decimal number ({}); fix the source value.",
                        e.message()
                    ),
                );
                f.value = None;
                vec![f]
            }
        }
    }

    /// Start recording changes so that [`rollback`](Validator::rollback) can undo them (the
    /// engine does this around one ingest, which is all or nothing). A journal still open from an
    /// earlier `begin` that was neither committed nor rolled back (an ingest that failed early) is
    /// rolled back first.
    pub fn begin(&mut self) {
        self.rollback();
        self.journal = Some(Vec::new());
    }

    /// Keep the changes since [`begin`](Validator::begin).
    pub fn commit(&mut self) {
        self.journal = None;
    }

    /// Undo every change since [`begin`](Validator::begin).
    pub fn rollback(&mut self) {
        let Some(journal) = self.journal.take() else { return };
        let mut new_from = self.series.len();
        for (i, old) in journal.into_iter().rev() {
            match old {
                Some(s) => self.series[i as usize].3 = s,
                None => new_from = new_from.min(i as usize),
            }
        }
        if new_from < self.series.len() {
            self.series.truncate(new_from);
            self.index.values_mut().for_each(|v| v.retain(|&i| (i as usize) < new_from));
            self.index.retain(|_, v| !v.is_empty());
        }
        self.last = None;
    }

    fn rules_for(&self, metric: &str) -> Option<&MetricRules> {
        self.rules.iter().find(|(k, _)| k == metric).map(|(_, r)| r).or(self.default.as_ref())
    }

    fn series_index(&mut self, rec: &UsageRecord, n: usize) -> usize {
        use std::hash::{Hash, Hasher};
        if let Some(i) = self.last {
            let (t, s, m, _) = &self.series[i as usize];
            if *t == rec.tenant && *s == rec.subject && *m == rec.metric {
                self.note(i);
                return i as usize;
            }
        }
        let mut hasher = rustc_hash::FxHasher::default();
        rec.tenant.hash(&mut hasher);
        rec.subject.hash(&mut hasher);
        rec.metric.hash(&mut hasher);
        let chain = self.index.entry(hasher.finish()).or_default();
        let found = chain.iter().copied().find(|&i| {
            let (t, s, m, _) = &self.series[i as usize];
            *t == rec.tenant && *s == rec.subject && *m == rec.metric
        });
        let i = if let Some(i) = found {
            i
        } else {
            let i = self.series.len() as u32;
            chain.push(i);
            self.series.push((rec.tenant.clone(), rec.subject.clone(), rec.metric.clone(), Series::new(n)));
            if let Some(j) = &mut self.journal {
                j.push((i, None));
            }
            i
        };
        self.last = Some(i);
        if found.is_some() {
            self.note(i);
        }
        i as usize
    }

    /// Journal the state of series `i` before its first change in this batch.
    #[inline]
    fn note(&mut self, i: u32) {
        if let Some(j) = &mut self.journal {
            if !j.iter().any(|(k, _)| *k == i) {
                j.push((i, Some(self.series[i as usize].3.clone())));
            }
        }
    }

    fn check_at(&mut self, r: &UsageRecord, now: DateTime<Utc>, out: &mut Vec<Finding>) {
        let before = out.len();
        let (params, tz, utc) = match self.rules_for(&r.metric) {
            None => {
                out.push(Finding::about(
                    r,
                    Rule::UnknownMetric,
                    Severity::Error,
                    Action::Reject,
                    format!("The metric '{}' is not configured for validation; check the metric name.", r.metric),
                ));
                return;
            }
            Some(rules) => {
                record_rules(r, &rules.params, now, out);
                unit_rule(r, rules.cfg.unit.as_deref(), out);
                (rules.params, rules.tz, rules.utc)
            }
        };
        if out[before..].iter().any(|f| f.action == Action::Reject) || r.quality == Quality::Estimated {
            return;
        }
        let i = self.series_index(r, params.window);
        let s = &mut self.series[i].3;
        stream_rules(s, r, &params, tz, utc, out);
    }
}

impl MetricRules {
    fn new(cfg: ValidationConfig) -> Result<Self> {
        let tz = cfg.check()?;
        let c = &cfg;
        let params = RuleParams {
            allow_negative: c.allow_negative,
            future_skew_secs: c.future_skew_secs,
            max_age_secs: c.max_age_secs,
            high_limit: c.high_limit,
            low_limit: c.low_limit,
            spikes: c.spikes,
            window: c.window,
            threshold: c.threshold,
            min_scale_ratio: c.min_scale_ratio,
            confirm: c.confirm,
            range_decay: c.range_decay,
            seasonal: c.seasonal,
            seasonal_min_weeks: c.seasonal_min_weeks,
            seasonal_alpha: c.seasonal_alpha,
            stuck_intervals: c.stuck_intervals,
            zero_streak_intervals: c.zero_streak_intervals,
            gaps: c.gaps,
            interval_secs: c.interval_secs,
            max_interpolation_intervals: c.max_interpolation_intervals,
            warmup: u64::from(c.warmup),
            adaptive_quantile: c.adaptive_quantile,
            range_margin: c.range_margin,
            cusum_k: c.cusum_k,
            cusum_h: c.cusum_h,
            cusum_clip: c.cusum_clip,
            streak_rarity: c.streak_rarity,
        };
        Ok(MetricRules { utc: tz == Tz::UTC, tz, params, cfg })
    }
}

#[derive(Debug, Clone, Copy)]
struct RuleParams {
    allow_negative: bool,
    future_skew_secs: i64,
    max_age_secs: Option<i64>,
    high_limit: Option<Decimal>,
    low_limit: Option<Decimal>,
    spikes: bool,
    window: usize,
    threshold: f64,
    min_scale_ratio: f64,
    confirm: bool,
    range_decay: f64,
    seasonal: bool,
    seasonal_min_weeks: u32,
    seasonal_alpha: f64,
    stuck_intervals: u32,
    zero_streak_intervals: u32,
    gaps: bool,
    interval_secs: Option<i64>,
    max_interpolation_intervals: u32,
    warmup: u64,
    adaptive_quantile: f64,
    range_margin: f64,
    cusum_k: f64,
    cusum_h: f64,
    cusum_clip: f64,
    streak_rarity: f64,
}

fn record_rules(r: &UsageRecord, cfg: &RuleParams, now: DateTime<Utc>, out: &mut Vec<Finding>) {
    if !cfg.allow_negative && r.quantity.is_sign_negative() && !r.quantity.is_zero() {
        out.push(Finding::about(
            r,
            Rule::NegativeQuantity,
            Severity::Error,
            Action::Reject,
            format!(
                "The quantity {} is negative but metric '{}' does not allow negative values; \
                 check the sign or set allow_negative for this metric.",
                fmt_decimal(r.quantity),
                r.metric
            ),
        ));
    }
    let t = r.timestamp.timestamp();
    let now_s = now.timestamp();
    if t > now_s.saturating_add(cfg.future_skew_secs) {
        out.push(Finding::about(
            r,
            Rule::FutureTimestamp,
            Severity::Error,
            Action::Reject,
            format!(
                "The timestamp {} is {} s after now ({}), more than the allowed skew of {} s; check the sender's clock.",
                fmt_ts(r.timestamp),
                t - now_s,
                fmt_ts(now),
                cfg.future_skew_secs
            ),
        ));
    }
    if let Some(age) = cfg.max_age_secs {
        if t < now_s.saturating_sub(age) {
            out.push(Finding::about(
                r,
                Rule::TooOld,
                Severity::Error,
                Action::Reject,
                format!(
                    "The timestamp {} is older than the horizon of {age} s before now ({}); it can no longer be billed.",
                    fmt_ts(r.timestamp),
                    fmt_ts(now)
                ),
            ));
        }
    }
}

fn unit_rule(r: &UsageRecord, unit: Option<&str>, out: &mut Vec<Finding>) {
    let (Some(unit), Some(got)) = (unit, r.dimensions.get("unit")) else { return };
    if got != unit {
        out.push(Finding::about(
            r,
            Rule::UnknownUnit,
            Severity::Error,
            Action::Reject,
            format!(
                "The unit '{got}' is not the unit of metric '{}' ({unit}); convert the value or fix the unit.",
                r.metric
            ),
        ));
    }
}

#[allow(clippy::too_many_lines)]
fn stream_rules(ser: &mut Series, rec: &UsageRecord, cfg: &RuleParams, tz: Tz, utc: bool, out: &mut Vec<Finding>) {
    let ts = rec.timestamp.timestamp();
    if ser.seen > 0 && ts < ser.last_ts {
        let mut f = Finding::about(
            rec,
            Rule::OutOfOrder,
            Severity::Info,
            Action::Accept,
            format!(
                "The record is older than the latest record of its series ({}); it is billed but not used by the statistical rules.",
                fmt_ts(DateTime::from_timestamp(ser.last_ts, 0).unwrap_or_default())
            ),
        );
        f.value = Some(rec.quantity.normalize());
        out.push(f);
        return;
    }
    let qty = rec.quantity;
    let val = to_f64(qty);

    // Gap, against the cadence.
    if ser.seen > 0 {
        let step = ts - ser.last_ts;
        let interval = cfg.interval_secs.unwrap_or(ser.interval);
        if cfg.gaps && interval > 0 && step.saturating_mul(2) > interval.saturating_mul(3) {
            let missing = (step + interval / 2) / interval - 1;
            if missing >= 1 {
                let short = missing <= i64::from(cfg.max_interpolation_intervals);
                // After warm-up, a series that often has gaps (more than one step in 1000) gets
                // them as info: they are how it reports, not news.
                let usual = ser.seen >= cfg.warmup && u64::from(ser.gaps) * 1000 > ser.seen;
                ser.gaps = ser.gaps.saturating_add(1);
                let first = DateTime::from_timestamp(ser.last_ts.saturating_add(interval), 0).unwrap_or_default();
                let message = if short {
                    format!(
                        "{missing} interval(s) of {interval} s missing from {} to {}; short enough to estimate by linear interpolation.",
                        fmt_ts(first),
                        fmt_ts(rec.timestamp)
                    )
                } else {
                    format!(
                        "{missing} intervals of {interval} s missing from {} to {}; longer than {} intervals, so estimate from the same hour of previous weeks or ask the meter for the data.",
                        fmt_ts(first),
                        fmt_ts(rec.timestamp),
                        cfg.max_interpolation_intervals
                    )
                };
                let message = if usual && !short {
                    format!("{message} Gaps are usual for this series (more than one step in 1000), so this is info.")
                } else {
                    message
                };
                out.push(Finding {
                    rule: Rule::Gap,
                    severity: if short || usual { Severity::Info } else { Severity::Warning },
                    action: Action::Accept,
                    tenant: rec.tenant.clone(),
                    subject: rec.subject.clone(),
                    metric: rec.metric.clone(),
                    id: None,
                    timestamp: first,
                    value: None,
                    expected: None,
                    score: Some(Decimal::from(missing)),
                    message,
                });
            }
        }
        // Cadence: a step seen three times in a row becomes the interval; once established,
        // only a much finer step (under half of it) starts the inference again.
        if step > 0 && cfg.interval_secs.is_none() {
            if ser.interval > 0 {
                if step.saturating_mul(2) < ser.interval {
                    ser.interval = 0;
                    ser.candidate = step;
                    ser.confirmations = 1;
                }
            } else if step == ser.candidate {
                ser.confirmations += 1;
                if ser.confirmations >= 3 {
                    ser.interval = step;
                }
            } else {
                ser.candidate = step;
                ser.confirmations = 1;
            }
        }
    }

    // Absolute limits.
    if let Some(hi) = cfg.high_limit {
        if qty > hi {
            let mut f = Finding::about(
                rec,
                Rule::HighLimit,
                Severity::Warning,
                Action::Flag,
                format!(
                    "The value {} is above the high limit {}; check the meter or the limit.",
                    fmt_decimal(qty),
                    fmt_decimal(hi)
                ),
            );
            let low = cfg.low_limit.or((!cfg.allow_negative).then_some(Decimal::ZERO));
            f.expected = low.map(|lo| (lo.min(hi).normalize(), hi.normalize()));
            out.push(f);
        }
    }
    if let Some(lo) = cfg.low_limit {
        if qty < lo {
            let mut f = Finding::about(
                rec,
                Rule::LowLimit,
                Severity::Warning,
                Action::Flag,
                format!(
                    "The value {} is below the low limit {}; check the meter or the limit.",
                    fmt_decimal(qty),
                    fmt_decimal(lo)
                ),
            );
            f.expected = cfg.high_limit.map(|hi| (lo.normalize(), hi.normalize()));
            out.push(f);
        }
    }

    // Seasonal slot of this record.
    let (how, week) = if cfg.seasonal {
        let local = if utc { ts } else { ts + crate::time::offset_at(tz, ts) };
        let k = local - FIRST_MONDAY;
        ((k.rem_euclid(WEEK) / 3600) as usize, k.div_euclid(WEEK))
    } else {
        (0, 0)
    };
    let seasonal_band = if cfg.seasonal {
        ser.seasonal.as_ref().and_then(|slots| {
            let sl = &slots[how];
            let previous = u32::from(sl.weeks) - u32::from(i64::from(sl.last_week) == week && sl.weeks > 0);
            (sl.values > 0 && previous >= cfg.seasonal_min_weeks).then(|| {
                let (level, spread) = (f64::from(sl.level), f64::from(sl.spread));
                let scale = (spread * MAD_SCALE).max(cfg.min_scale_ratio * level.abs()).max(MIN_SCALE);
                (level, scale)
            })
        })
    } else {
        None
    };
    let seasonal_level = seasonal_band.map(|(level, _)| level);
    // The seasonal threshold adapts to the series' own tail of seasonal scores.
    let seasonal_band = seasonal_band.map(|(level, scale)| {
        let t = match &ser.scores {
            Some(h) if cfg.adaptive_quantile > 0.0 && h.n >= 200 => {
                cfg.threshold.max(h.quantile(cfg.adaptive_quantile))
            }
            _ => cfg.threshold,
        };
        if cfg.spikes && ser.len as usize == ser.ring.len() {
            ser.scores
                .get_or_insert_with(|| Box::new(ScoreHistogram { bins: [0; SCORE_BINS], n: 0 }))
                .add((val - level) / scale);
        }
        (level - t * scale, level + t * scale)
    });

    // Spike / drop: robust z against the last N, confirmed by the seasonal band or the range.
    if cfg.spikes && ser.len as usize == ser.ring.len() {
        let outside_confirm = if !cfg.confirm {
            true
        } else if let Some((lo, hi)) = seasonal_band {
            val < lo || val > hi
        } else {
            val < ser.lo || val > ser.hi
        };
        if outside_confirm {
            let (m, mad) = ser.median_mad();
            let scale = mad.max(cfg.min_scale_ratio * m.abs()).max(MIN_SCALE);
            let z = (val - m) / scale;
            // The long-run range is widened by one scale unit (or `range_margin` of its width when
            // larger), so that a value equal to a recent extreme (whose end has decayed a little
            // since) is still inside it.
            // Outside the seasonal band is not enough on its own: the value must also leave the
            // long-run range, so that the bursts a series has always had stay quiet.
            let margin = scale.max(cfg.range_margin * (ser.hi - ser.lo));
            let outside_range = !cfg.confirm || val < ser.lo - margin || val > ser.hi + margin;
            if outside_range && z.abs() > cfg.threshold {
                let (mut lo, mut hi) = (m - cfg.threshold * scale, m + cfg.threshold * scale);
                if cfg.confirm {
                    let (clo, chi) = seasonal_band.unwrap_or((ser.lo - margin, ser.hi + margin));
                    lo = lo.min(clo).min(ser.lo - margin);
                    hi = hi.max(chi).max(ser.hi + margin);
                }
                let spike = z > 0.0;
                let against = if !cfg.confirm {
                    String::new()
                } else if seasonal_band.is_some() {
                    " and outside the usual range for this hour of the week".to_string()
                } else {
                    " and outside the series' long-run range".to_string()
                };
                let mut f = Finding::about(
                    rec,
                    if spike { Rule::Spike } else { Rule::Drop },
                    Severity::Warning,
                    Action::Flag,
                    format!(
                        "The value {} is {} the median {} of the last {} values (robust z = {:.1}){against}; \
                         check the meter and the reading.",
                        fmt_decimal(qty),
                        if spike { "far above" } else { "far below" },
                        dec(m, 4).map_or_else(|| format!("{m:e}"), fmt_decimal),
                        ser.ring.len(),
                        z
                    ),
                );
                f.expected = dec(lo, 4).zip(dec(hi, 4));
                f.score = dec(z, 2);
                out.push(f);
            }
        }
    }

    level_shift_rule(ser, rec, val, seasonal_level, cfg, out);

    // Stuck and zero streaks (one finding per run, when it reaches K and, after warm-up, is rare
    // for this series).
    if ser.seen > 0 && same_value(qty, ser.last_value) {
        ser.run += 1;
        if !qty.is_zero() {
            ser.repeats += 1;
        }
    } else {
        ser.run = 1;
        ser.stuck_done = false;
    }
    if qty.is_zero() {
        ser.zeros += 1;
        ser.zero_count += 1;
    } else {
        ser.zeros = 0;
        ser.zeros_done = false;
    }
    let steps = ser.seen as f64 + 2.0;
    let rare = |count: u64, run: u32| {
        let share = (count as f64 + 1.0) / steps;
        ser.seen < cfg.warmup
            || cfg.streak_rarity <= 0.0
            || (share < 0.5 && f64::from(run) * share.ln() < cfg.streak_rarity.ln())
    };
    let stuck = cfg.stuck_intervals > 0
        && !qty.is_zero()
        && !ser.stuck_done
        && ser.run >= cfg.stuck_intervals
        && rare(ser.repeats, ser.run - 1);
    let zero_streak = cfg.zero_streak_intervals > 0
        && !ser.zeros_done
        && ser.zeros >= cfg.zero_streak_intervals
        && rare(ser.zero_count, ser.zeros);
    ser.stuck_done |= stuck;
    ser.zeros_done |= zero_streak;
    if stuck {
        let mut f = Finding::about(
            rec,
            Rule::Stuck,
            Severity::Warning,
            Action::Flag,
            format!(
                "The value {} has repeated {} times in a row; the meter or its register may be stuck.",
                fmt_decimal(qty),
                ser.run
            ),
        );
        f.score = Some(Decimal::from(ser.run));
        out.push(f);
    }
    if zero_streak {
        let mut f = Finding::about(
            rec,
            Rule::ZeroStreak,
            Severity::Warning,
            Action::Flag,
            format!(
                "Zero usage for {} values in a row; check for an outage, a disconnected meter or a vacant site.",
                ser.zeros
            ),
        );
        f.score = Some(Decimal::from(ser.zeros));
        out.push(f);
    }

    // Update the history.
    if ser.seen == 0 {
        ser.lo = val;
        ser.hi = val;
    } else {
        let w = (ser.hi - ser.lo) * cfg.range_decay;
        ser.hi = val.max(ser.hi - w);
        ser.lo = val.min(ser.lo + w);
    }
    ser.push(val);
    if cfg.seasonal {
        let slots = ser.seasonal.get_or_insert_with(|| Box::new([Slot::default(); SLOTS]));
        let sl = &mut slots[how];
        // Kept in f32 (16 bytes a slot): a baseline, not an amount.
        if sl.values == 0 {
            sl.level = val as f32;
            sl.spread = 0.0;
        } else {
            let (level, spread) = (f64::from(sl.level), f64::from(sl.spread));
            let dev = (val - level).abs();
            let spread = if sl.values == 1 { dev } else { spread + cfg.seasonal_alpha * (dev - spread) };
            sl.spread = spread as f32;
            sl.level = (level + cfg.seasonal_alpha * (val - level)) as f32;
        }
        sl.values = sl.values.saturating_add(1);
        let week = week as i32;
        if sl.weeks == 0 || sl.last_week != week {
            sl.weeks = sl.weeks.saturating_add(1);
            sl.last_week = week;
        }
    }
    ser.seen += 1;
    ser.last_ts = ts;
    ser.last_value = qty;
}

/// Level shift: a two-sided CUSUM (Page 1954) of standardised deviations from a reference, each
/// clipped to ±`cusum_clip` (Huber's robust CUSUM). The reference is the series' long-run mean
/// (exponentially weighted, weight 0.01) with its mean absolute deviation × 1.2533 (≈ σ for normal
/// data) as the unit; once the seasonal baseline is ready for the value's hour of the week and fits
/// the series better (its own mean absolute deviation is smaller), the seasonal level is the
/// reference instead. A finding when either sum exceeds `cusum_h` after warm-up; the sums then
/// restart.
fn level_shift_rule(
    ser: &mut Series,
    rec: &UsageRecord,
    val: f64,
    seasonal_level: Option<f64>,
    cfg: &RuleParams,
    out: &mut Vec<Finding>,
) {
    const WEIGHT: f64 = 0.01;
    const SD_PER_MAD: f64 = 1.2533;
    if ser.seen == 0 {
        ser.mean = val;
        ser.mad = 0.0;
        return;
    }
    if cfg.cusum_h > 0.0 {
        if let Some(level) = seasonal_level {
            if ser.seasonal_mad > 0.0 {
                ser.seasonal_mad += WEIGHT * ((val - level).abs() - ser.seasonal_mad);
            } else {
                ser.seasonal_mad = ser.mad.max(MIN_SCALE);
            }
        }
        let (reference, sd) = match seasonal_level {
            Some(level) if ser.seasonal_mad < ser.mad => (level, (ser.seasonal_mad * SD_PER_MAD).max(MIN_SCALE)),
            _ => (ser.mean, (ser.mad * SD_PER_MAD).max(MIN_SCALE)),
        };
        let z = ((val - reference) / sd).clamp(-cfg.cusum_clip, cfg.cusum_clip);
        ser.cusum_hi = (ser.cusum_hi + z - cfg.cusum_k).max(0.0);
        ser.cusum_lo = (ser.cusum_lo - z - cfg.cusum_k).max(0.0);
        if ser.seen >= cfg.warmup && (ser.cusum_hi > cfg.cusum_h || ser.cusum_lo > cfg.cusum_h) {
            let up = ser.cusum_hi > cfg.cusum_h;
            let mut f = Finding::about(
                rec,
                Rule::LevelShift,
                Severity::Warning,
                Action::Flag,
                format!(
                    "The level has shifted {} its usual value {} (CUSUM {:.1} over the limit {}); \
                     check for a changed meter, a new load or a fault.",
                    if up { "above" } else { "below" },
                    dec(reference, 4).map_or_else(|| format!("{reference:e}"), fmt_decimal),
                    ser.cusum_hi.max(ser.cusum_lo),
                    cfg.cusum_h
                ),
            );
            f.expected = dec(reference - cfg.cusum_k * sd, 4).zip(dec(reference + cfg.cusum_k * sd, 4));
            f.score = dec(ser.cusum_hi.max(ser.cusum_lo), 2);
            out.push(f);
            ser.cusum_hi = 0.0;
            ser.cusum_lo = 0.0;
        }
    }
    ser.mad += WEIGHT * ((val - ser.mean).abs() - ser.mad);
    ser.mean += WEIGHT * (val - ser.mean);
}

impl Validator {
    /// Approximate bytes of state per tracked series for window `n`: the fixed part, the ring of
    /// `n` values, and with the seasonal baseline in use its 168 slots (see `docs/validation.md`).
    pub fn bytes_per_series(n: usize, seasonal: bool) -> usize {
        std::mem::size_of::<(String, String, String, Series)>()
            + n * std::mem::size_of::<f64>()
            + if seasonal { std::mem::size_of::<[Slot; SLOTS]>() + std::mem::size_of::<ScoreHistogram>() } else { 0 }
    }
}
