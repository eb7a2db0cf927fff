//! Validation of usage records (the V of VEE): rules, [`Finding`]s and the streaming [`Validator`].
//!
//! The long-form description of every rule, its defaults and the evaluation on labelled data is
//! `docs/validation.md`, rendered as [`crate::guide::validation`].

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::decimal::{fmt_decimal, parse_decimal};
use crate::error::{Error, ErrorKind, Result};
use crate::record::{Quality, UsageRecord};
use crate::time::parse_time_zone;
use crate::time::{fmt_ts, Tz};

pub mod alert;
pub mod estimate;
mod rules;

use rules::{record_rules, stream_rules, unit_rule, RuleParams, Series};

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

crate::error::enum_names!(Severity, "severity", [Info = "info", Warning = "warning", Error = "error",]);

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

crate::error::enum_names!(Action, "finding action", [Accept = "accept", Flag = "flag", Reject = "reject",]);

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

crate::error::enum_names!(
    Rule,
    "validation rule",
    [
        NegativeQuantity = "negative_quantity",
        InvalidQuantity = "invalid_quantity",
        FutureTimestamp = "future_timestamp",
        TooOld = "too_old",
        UnknownMetric = "unknown_metric",
        UnknownUnit = "unknown_unit",
        Spike = "spike",
        Drop = "drop",
        HighLimit = "high_limit",
        LowLimit = "low_limit",
        Stuck = "stuck",
        ZeroStreak = "zero_streak",
        Gap = "gap",
        OutOfOrder = "out_of_order",
        Rollover = "rollover",
        MeterExchange = "meter_exchange",
        DuplicateReading = "duplicate_reading",
        OutOfOrderReading = "out_of_order_reading",
        InvalidReading = "invalid_reading",
        LevelShift = "level_shift",
        BackwardsReading = "backwards_reading",
        LikelyTypo = "likely_typo",
        ImplausibleRollover = "implausible_rollover",
        ImplausibleConsumption = "implausible_consumption",
        FirstReadingOutOfRange = "first_reading_out_of_range",
    ]
);

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

impl Validator {
    /// Approximate bytes of state per tracked series for window `n`: the fixed part, the ring of
    /// `n` values, and with the seasonal baseline in use its 168 slots (see `docs/validation.md`).
    pub fn bytes_per_series(n: usize, seasonal: bool) -> usize {
        rules::series::bytes_per_series(n, seasonal)
    }
}
