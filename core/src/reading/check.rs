//! The reading store: register readings kept per meter by the engine, each checked against the
//! meter's stored history and turned into a decision (accepted, flagged, rejected) and
//! consumption records attributed to the days the interval covers. The engine glue is
//! [`crate::Engine::record_reading`]; this module holds the pure rules.
//!
//! Storage: every reading is one engine metadata entry of its tenant (so every [`crate::Store`]
//! persists it, atomically with the consumption records in the same change set):
//! `reading/{meter}/{UTC time, microseconds}` for accepted and flagged readings (the meter's
//! history) and `rejected-reading/{meter}/{time}/{register}` for rejected ones (kept for audit,
//! never a baseline). `/` and `%` in meter ids are percent-encoded.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::decimal::fmt_decimal;
use crate::error::{Error, ErrorKind, Result};
use crate::reading::dating::{dated_records, Dating, Interval};
use crate::reading::{invalid, MeterReading, ReadingKind, Wrap};
use crate::record::{Quality, UsageRecord};
use crate::time::parse_time_zone;
use crate::time::{fmt_ts, Tz};
use crate::vee::{Action, Finding, Rule, Severity};

/// The most days one reading interval may span (ten years): bounds the consumption records an
/// interval is split into.
pub const MAX_INTERVAL_DAYS: i64 = 3660;

/// Settings of [`crate::Engine::record_reading`].
///
/// JSON: `{"history":10,"time_zone":"UTC","profile":null,"typical_register":null,
/// "max_daily":null,"plausible_factor":"3","dating":"pro_rata"}`; every key optional.
///
/// * `history` — how many of the meter's latest stored readings the checks use (default 10).
/// * `dating` — where the consumption is dated: `pro_rata` (default: split over the local days
///   of the interval), `start` or `end` ([`Dating`]).
/// * `time_zone` — IANA zone whose midnights split a reading interval into days (default `UTC`).
/// * `profile` — 24 hour-of-day weights (local time, ≥ 0, not all 0) to attribute consumption by
///   a load profile instead of pro rata by time.
/// * `typical_register` — `[low, high]`: the site's typical register range, checked on a meter's
///   first reading.
/// * `max_daily` — the most a meter plausibly uses per day (metric units) while its history has
///   no consumption yet.
/// * `plausible_factor` — consumption is plausible up to this many times the meter's highest
///   daily rate in the history (default 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default, deny_unknown_fields)]
pub struct ReadingOptions {
    /// Stored readings the checks look at (the latest N).
    pub history: usize,
    /// Zone of the day boundaries.
    pub time_zone: String,
    /// Hour-of-day weights (24), or `None` for pro rata by time.
    #[serde(with = "opt_decimals")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString[] | null"))]
    pub profile: Option<Vec<Decimal>>,
    /// The site's typical register range `(low, high)`, for first readings.
    #[serde(with = "opt_pair")]
    #[cfg_attr(feature = "ts", ts(type = "[DecimalString, DecimalString] | null"))]
    pub typical_register: Option<(Decimal, Decimal)>,
    /// The most plausible consumption per day without history (metric units).
    #[serde(with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub max_daily: Option<Decimal>,
    /// Multiple of the highest historic daily rate still plausible.
    #[serde(with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub plausible_factor: Decimal,
    /// Where the consumption is dated (default `pro_rata`).
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub dating: Dating,
}

impl Default for ReadingOptions {
    fn default() -> Self {
        ReadingOptions {
            history: 10,
            time_zone: "UTC".into(),
            profile: None,
            typical_register: None,
            max_daily: None,
            plausible_factor: Decimal::from(3),
            dating: Dating::ProRata,
        }
    }
}

impl ReadingOptions {
    /// Check the settings; the time zone they use.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidTimeZone`]; [`ErrorKind::InvalidQuery`] for a history of 0 or over
    /// 1000, a profile that is not 24 non-negative weights with a positive sum, a typical range
    /// with low > high, or a non-positive `max_daily` or `plausible_factor`.
    pub fn check(&self) -> Result<Tz> {
        let bad = |m: &str| Err(Error::new(ErrorKind::InvalidQuery, m.to_string()));
        if self.history == 0 || self.history > 1000 {
            return bad("The reading history must be 1 to 1000 readings.");
        }
        if let Some(p) = &self.profile {
            if p.len() != 24 || p.iter().any(Decimal::is_sign_negative) || p.iter().all(Decimal::is_zero) {
                return bad("A load profile is 24 hour-of-day weights, none negative, not all zero.");
            }
        }
        if self.typical_register.is_some_and(|(lo, hi)| lo > hi) {
            return bad("The typical register range has low above high.");
        }
        if self.max_daily.is_some_and(|m| m <= Decimal::ZERO) || self.plausible_factor <= Decimal::ZERO {
            return bad("max_daily and plausible_factor must be positive.");
        }
        parse_time_zone(&self.time_zone)
    }
}

/// What happened to a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ReadingStatus {
    /// Stored; its consumption (if any) is billed as is (or as estimated).
    Accepted,
    /// Stored and the new baseline; its consumption is stored with quality `flagged` for review.
    Flagged,
    /// Not used: kept for audit only; the meter's baseline is unchanged.
    Rejected,
}

crate::error::enum_names!(
    ReadingStatus,
    "reading status",
    [Accepted = "accepted", Flagged = "flagged", Rejected = "rejected",]
);

/// One stored reading with its decision.
///
/// JSON: `{"reading": MeterReading, "exchange": "old final"|null, "status", "from": RFC 3339|null,
/// "consumption": "…"|null, "findings": [Finding]}` — `from` is the start of the consumption
/// interval (the previous reading), `consumption` the total in metric units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReading {
    /// The reading as given (for an exchange: the new meter's start reading).
    pub reading: MeterReading,
    /// For a declared exchange: the old meter's final reading.
    #[serde(default, with = "crate::decimal::opt_decimal_str")]
    pub exchange: Option<Decimal>,
    /// The decision.
    pub status: ReadingStatus,
    /// Start of the consumption interval (the baseline reading's time).
    #[serde(default, with = "crate::time::opt_ts_str")]
    pub from: Option<DateTime<Utc>>,
    /// Consumption since the baseline, metric units.
    #[serde(default, with = "crate::decimal::opt_decimal_str")]
    pub consumption: Option<Decimal>,
    /// The findings about the reading.
    pub findings: Vec<Finding>,
}

/// The outcome of [`crate::Engine::record_reading`]: the decision, the consumption and the
/// records it was stored as (one per day the interval covers, ids `"{meter}@{reading time}/{day}"`).
///
/// JSON (`meterkit readings --output json`, every binding): `{"meter","timestamp","reading",
/// "status","consumption","findings","records"}` — `reading` and `consumption` decimal strings
/// (`consumption` `null` without one), `findings` as [`Finding`], `records` as [`UsageRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReadingOutcome {
    /// The meter.
    pub meter: String,
    /// When it was read.
    #[serde(with = "crate::time::ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
    pub timestamp: DateTime<Utc>,
    /// The register value read.
    #[serde(with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub reading: Decimal,
    /// The decision.
    pub status: ReadingStatus,
    /// Consumption since the previous reading, metric units.
    #[serde(default, with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub consumption: Option<Decimal>,
    /// Findings, most decisive first.
    pub findings: Vec<Finding>,
    /// The consumption records stored (empty for a resent reading: they were stored the first time).
    pub records: Vec<UsageRecord>,
}

impl ReadingOutcome {
    /// The outcome of a stored reading (without records).
    pub fn from_stored(s: &StoredReading) -> Self {
        ReadingOutcome {
            meter: s.reading.meter.clone(),
            timestamp: s.reading.timestamp,
            reading: s.reading.register.normalize(),
            status: s.status,
            consumption: s.consumption.map(|c| c.normalize()),
            findings: s.findings.clone(),
            records: Vec::new(),
        }
    }
}

/// The metadata key prefix of a meter's history.
pub(crate) fn history_prefix(meter: &str) -> String {
    format!("reading/{}/", escape(meter))
}

/// The metadata key of a stored reading.
pub(crate) fn key(s: &StoredReading) -> String {
    let t = s.reading.timestamp.format("%Y-%m-%dT%H:%M:%S%.6fZ");
    match s.status {
        ReadingStatus::Rejected => {
            format!("rejected-reading/{}/{t}/{}", escape(&s.reading.meter), fmt_decimal(s.reading.register))
        }
        _ => format!("{}{t}", history_prefix(&s.reading.meter)),
    }
}

fn escape(meter: &str) -> String {
    meter.replace('%', "%25").replace('/', "%2F")
}

/// Parse a stored reading.
pub(crate) fn parse_stored(json: &str) -> Result<StoredReading> {
    serde_json::from_str(json)
        .map_err(|e| Error::new(ErrorKind::Store, format!("A stored reading does not parse ({e}): {json}")))
}

/// The meter's tenant, metric and the engine-facing inputs of one decision.
pub(crate) struct Context<'a> {
    pub tenant: &'a str,
    pub metric: &'a str,
    pub opts: &'a ReadingOptions,
    pub tz: Tz,
}

/// Decide about `reading` (with a declared `exchange`: the old meter's final reading) given the
/// meter's stored `history` (oldest first, accepted and flagged readings only).
pub(crate) fn decide(
    cx: &Context<'_>,
    history: &[StoredReading],
    reading: &MeterReading,
    exchange: Option<Decimal>,
) -> StoredReading {
    let mut out = StoredReading {
        reading: reading.clone(),
        exchange,
        status: ReadingStatus::Accepted,
        from: None,
        consumption: None,
        findings: Vec::new(),
    };
    let reject = |out: &mut StoredReading, rule, severity, msg: String| {
        out.status = ReadingStatus::Rejected;
        out.findings.push(finding(cx, reading, rule, severity, Action::Reject, msg));
    };
    if let Some(msg) = invalid(reading, exchange) {
        reject(&mut out, Rule::InvalidReading, Severity::Error, msg);
        return out;
    }
    let Some(prev) = history.last() else {
        first_reading(cx, reading, &mut out);
        return out;
    };
    let p = &prev.reading;
    if reading.timestamp <= p.timestamp {
        let msg = format!(
            "The reading of meter '{}' at {} is not later than its latest reading ({}); it is not used.",
            reading.meter,
            fmt_ts(reading.timestamp),
            fmt_ts(p.timestamp)
        );
        reject(&mut out, Rule::OutOfOrderReading, Severity::Warning, msg);
        return out;
    }
    out.from = Some(p.timestamp);
    let cap = cap(cx.opts, &history[history.len().saturating_sub(cx.opts.history)..], p.timestamp, reading.timestamp);
    // A declared exchange's final reading is on the old register: its digits (or bits) count.
    let wrap =
        if exchange.is_some() { p.wrap().or_else(|| reading.wrap()) } else { reading.wrap().or_else(|| p.wrap()) };
    // With a declared exchange the old register ends at `exchange`; the new one starts at `register`.
    let end = exchange.unwrap_or(reading.register);
    let Some(raw) = end.checked_sub(p.register) else {
        reject(&mut out, Rule::InvalidReading, Severity::Error, overflow(reading));
        return out;
    };
    let units = if raw.is_sign_negative() && !raw.is_zero() {
        match backwards(cx, p, reading, end, wrap, cap, exchange.is_some(), &mut out) {
            Some(units) => units,
            None => return out,
        }
    } else {
        if let (Some(cap), None) = (cap, exchange) {
            let c = raw.checked_mul(p.multiplier).unwrap_or(Decimal::MAX);
            if c > cap {
                if let Some(meant) = extra_digit(p, reading, cap) {
                    let msg = format!(
                        "Meter '{}' read {} after {}: {} units is far above its usual use; an extra digit? \
                         Did you mean {}? Read the meter again.",
                        reading.meter,
                        fmt_decimal(reading.register),
                        fmt_decimal(p.register),
                        fmt_decimal(raw),
                        fmt_decimal(meant)
                    );
                    reject(&mut out, Rule::LikelyTypo, Severity::Error, msg);
                    return out;
                }
                out.status = ReadingStatus::Flagged;
                let msg = format!(
                    "Meter '{}' used {} since {}, above the plausible {} (from its history); held for review.",
                    reading.meter,
                    fmt_decimal(c),
                    fmt_ts(p.timestamp),
                    fmt_decimal(cap.round_dp(3))
                );
                out.findings.push(finding(
                    cx,
                    reading,
                    Rule::ImplausibleConsumption,
                    Severity::Warning,
                    Action::Flag,
                    msg,
                ));
            }
        }
        raw
    };
    if let Some(old_final) = exchange {
        let msg = format!(
            "Meter exchange at meter '{}': the old register closed at {} ({} units since {}), the new one starts at {}.",
            reading.meter,
            fmt_decimal(old_final),
            fmt_decimal(units),
            fmt_decimal(p.register),
            fmt_decimal(reading.register)
        );
        out.findings.push(finding(cx, reading, Rule::MeterExchange, Severity::Info, Action::Accept, msg));
    }
    // The old register's multiplier applies to the units it counted.
    match units.checked_mul(p.multiplier) {
        Some(c) => out.consumption = Some(c.normalize()),
        None => reject(&mut out, Rule::InvalidReading, Severity::Error, overflow(reading)),
    }
    out
}

fn overflow(r: &MeterReading) -> String {
    format!("The consumption of meter '{}' overflows the decimal range.", r.meter)
}

/// A meter's first reading: the declared digits were checked by `invalid`; the site's typical
/// register range is checked here.
fn first_reading(cx: &Context<'_>, reading: &MeterReading, out: &mut StoredReading) {
    if let Some((lo, hi)) = cx.opts.typical_register {
        if reading.register < lo || reading.register > hi {
            out.status = ReadingStatus::Flagged;
            let msg = format!(
                "The first reading of meter '{}' ({}) is outside the site's typical range {}–{}; check the meter and the digits.",
                reading.meter,
                fmt_decimal(reading.register),
                fmt_decimal(lo),
                fmt_decimal(hi)
            );
            let mut f = finding(cx, reading, Rule::FirstReadingOutOfRange, Severity::Warning, Action::Flag, msg);
            f.expected = Some((lo, hi));
            out.findings.push(f);
        }
    }
}

/// The register went down from `p` to `end`: a roll-over (plausible: accept; implausible: flag),
/// a dropped digit (reject) or a backwards reading (reject). The units to bill, or `None` when
/// rejected.
#[allow(clippy::too_many_arguments)]
fn backwards(
    cx: &Context<'_>,
    p: &MeterReading,
    reading: &MeterReading,
    end: Decimal,
    wrap: Option<Wrap>,
    cap: Option<Decimal>,
    exchange: bool,
    out: &mut StoredReading,
) -> Option<Decimal> {
    let decrease = p.register.checked_sub(end)?;
    let wrapped = wrap.and_then(Wrap::modulus).and_then(|m| m.checked_sub(p.register)).and_then(|d| d.checked_add(end));
    let rollover = wrapped.filter(|w| *w < decrease);
    let plausible = |units: Decimal| match (cap, units.checked_mul(p.multiplier)) {
        (Some(cap), Some(c)) => c <= cap,
        _ => false,
    };
    let what = if exchange { "old meter's final reading" } else { "register" };
    if let Some(w) = rollover.filter(|w| plausible(*w)) {
        let msg = format!(
            "The {} {what} of meter '{}' {} from {} to {}: {} units.",
            match wrap {
                Some(Wrap::Bits(b)) => format!("{b}-bit"),
                Some(Wrap::Digits(d)) => format!("{d}-digit"),
                None => String::new(),
            },
            reading.meter,
            wrap.map_or("rolled over", Wrap::verb),
            fmt_decimal(p.register),
            fmt_decimal(end),
            fmt_decimal(w)
        );
        out.findings.push(finding(cx, reading, Rule::Rollover, Severity::Info, Action::Accept, msg));
        return Some(w);
    }
    if let Some(meant) = dropped_digit(p, end, wrap, cap) {
        let msg = format!(
            "Meter '{}' read {} after {}: a dropped digit? Did you mean {}? Read the meter again.",
            reading.meter,
            fmt_decimal(end),
            fmt_decimal(p.register),
            fmt_decimal(meant)
        );
        reject_into(cx, reading, out, Rule::LikelyTypo, msg);
        return None;
    }
    if let Some(w) = rollover {
        out.status = ReadingStatus::Flagged;
        let why = match cap {
            Some(cap) => format!("above the plausible {} from its history", fmt_decimal(cap.round_dp(3))),
            None => "with no history to check it against".to_string(),
        };
        let msg = format!(
            "The {what} of meter '{}' went from {} to {}: a roll-over of {} units, {why}; held for review.",
            reading.meter,
            fmt_decimal(p.register),
            fmt_decimal(end),
            fmt_decimal(w)
        );
        out.findings.push(finding(cx, reading, Rule::ImplausibleRollover, Severity::Warning, Action::Flag, msg));
        return Some(w);
    }
    let msg = format!(
        "The {what} of meter '{}' went backwards from {} to {}; not used. If the meter was exchanged, \
         declare the exchange with the old meter's final reading.",
        reading.meter,
        fmt_decimal(p.register),
        fmt_decimal(end)
    );
    reject_into(cx, reading, out, Rule::BackwardsReading, msg);
    None
}

fn reject_into(cx: &Context<'_>, reading: &MeterReading, out: &mut StoredReading, rule: Rule, msg: String) {
    out.status = ReadingStatus::Rejected;
    out.findings.push(finding(cx, reading, rule, Severity::Error, Action::Reject, msg));
}

/// The plausible consumption (metric units) between `from` and `to`: `plausible_factor` × the
/// highest daily rate of the history's accepted consumption × the interval in days (at least
/// one); without such history, `max_daily` × days; else unknown.
fn cap(opts: &ReadingOptions, history: &[StoredReading], from: DateTime<Utc>, to: DateTime<Utc>) -> Option<Decimal> {
    let days = |a: DateTime<Utc>, b: DateTime<Utc>| {
        Decimal::from(b.signed_duration_since(a).num_seconds())
            .checked_div(Decimal::from(86_400))
            .map(|d| d.max(Decimal::ONE))
    };
    let rate = history
        .iter()
        .filter(|s| s.status == ReadingStatus::Accepted)
        .filter_map(|s| s.consumption?.checked_div(days(s.from?, s.reading.timestamp)?))
        .max()
        .and_then(|r| r.checked_mul(opts.plausible_factor))
        .or(opts.max_daily)?;
    rate.checked_mul(days(from, to)?)
}

/// A reading with one digit dropped: the smallest reading ≥ `prev` made by inserting one digit
/// into `read`'s integer digits, if its consumption is plausible (within `cap`, or without a cap
/// within a tenth of the previous register).
fn dropped_digit(p: &MeterReading, read: Decimal, wrap: Option<Wrap>, cap: Option<Decimal>) -> Option<Decimal> {
    if !read.fract().is_zero() {
        return None;
    }
    let s = read.trunc().normalize().to_string();
    let limit = wrap.and_then(Wrap::modulus);
    let mut best: Option<Decimal> = None;
    for pos in 0..=s.len() {
        for d in '0'..='9' {
            let cand: String = format!("{}{d}{}", &s[..pos], &s[pos..]);
            let Ok(v) = cand.parse::<Decimal>() else { continue };
            if v < p.register || limit.is_some_and(|m| v >= m) {
                continue;
            }
            if best.is_none_or(|b| v < b) {
                best = Some(v);
            }
        }
    }
    let best = best?;
    let diff = best.checked_sub(p.register)?;
    let ok = match cap {
        Some(cap) => diff.checked_mul(p.multiplier).is_some_and(|c| c <= cap),
        None => diff.checked_mul(Decimal::from(10)).is_some_and(|d| d <= p.register),
    };
    ok.then_some(best)
}

/// A reading with one digit too many: the smallest reading ≥ the previous one made by deleting
/// one digit of the new reading, when its consumption is within `cap`.
fn extra_digit(p: &MeterReading, r: &MeterReading, cap: Decimal) -> Option<Decimal> {
    if !r.register.fract().is_zero() {
        return None;
    }
    let s = r.register.trunc().normalize().to_string();
    let prev_len = p.register.trunc().normalize().to_string().len();
    if s.len() <= prev_len {
        return None;
    }
    (0..s.len())
        .filter_map(|i| format!("{}{}", &s[..i], &s[i + 1..]).parse::<Decimal>().ok())
        .filter(|v| *v >= p.register)
        .filter(|v| v.checked_sub(p.register).and_then(|d| d.checked_mul(p.multiplier)).is_some_and(|c| c <= cap))
        .min()
}

/// A finding about reading `r` of the context's meter (value: the register; no record id).
pub(crate) fn finding(
    cx: &Context<'_>,
    r: &MeterReading,
    rule: Rule,
    severity: Severity,
    action: Action,
    message: String,
) -> Finding {
    Finding {
        rule,
        severity,
        action,
        tenant: cx.tenant.to_string(),
        subject: r.meter.clone(),
        metric: cx.metric.to_string(),
        id: None,
        timestamp: r.timestamp,
        value: Some(r.register.normalize()),
        expected: None,
        score: None,
        message,
    }
}

/// The quality of a reading's consumption: `flagged` when the reading is, `estimated` when either
/// reading is estimated, else `actual`.
pub(crate) fn quality(s: &StoredReading, prev_kind: Option<ReadingKind>) -> Quality {
    if s.status == ReadingStatus::Flagged {
        Quality::Flagged
    } else if s.reading.kind == ReadingKind::Estimated || prev_kind == Some(ReadingKind::Estimated) {
        Quality::Estimated
    } else {
        Quality::Actual
    }
}

/// One day's share of a reading interval: `(start, end, consumption)`.
pub type DayShare = (DateTime<Utc>, DateTime<Utc>, Decimal);

/// Split `total` consumed over `[from, to)` into one record per local day of `tz` the interval
/// touches: pro rata by time, or by `profile` (24 hour-of-day weights, local time) when given.
///
/// Rule: each day's share is `total × w_day / Σ w` where `w_day` is the day's covered seconds
/// (pro rata) or Σ over the day's covered hours of `weight(hour) × covered seconds`; shares are
/// rounded half-even to the total's scale + 3 decimals and the last day takes the remainder, so
/// the shares always sum to `total` exactly. This is linear (pro-rata) apportionment of an
/// accumulation register's advance, the method UK settlement applies to non-half-hourly meters
/// with a flat profile (Elexon BSC, BSCP504 "Annualised Advance"; with a profile class the
/// weights are the profile coefficients).
///
/// # Errors
/// [`ErrorKind::InvalidRecord`] for an interval over [`MAX_INTERVAL_DAYS`]; [`ErrorKind::Overflow`].
pub fn attribute(
    total: Decimal,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
    profile: Option<&[Decimal]>,
) -> Result<Vec<DayShare>> {
    if to.signed_duration_since(from).num_days() > MAX_INTERVAL_DAYS {
        return Err(Error::new(
            ErrorKind::InvalidRecord,
            format!("A reading interval of more than {MAX_INTERVAL_DAYS} days ({} to {}).", fmt_ts(from), fmt_ts(to)),
        ));
    }
    let mut days = Vec::new();
    let mut start = from;
    while start < to {
        let end = next_midnight(start, tz).min(to);
        days.push((start, end, weight(start, end, tz, profile)?));
        start = end;
    }
    let sum = days.iter().try_fold(Decimal::ZERO, |a, d| a.checked_add(d.2)).ok_or_else(overflow_err)?;
    let dp = total.scale() + 3;
    let mut left = total;
    let mut out = Vec::with_capacity(days.len());
    let n = days.len();
    for (i, (s, e, w)) in days.into_iter().enumerate() {
        let share = if i + 1 == n || sum.is_zero() {
            if i + 1 == n {
                left
            } else {
                Decimal::ZERO
            }
        } else {
            total.checked_mul(w).and_then(|x| x.checked_div(sum)).ok_or_else(overflow_err)?.round_dp(dp)
        };
        left = left.checked_sub(share).ok_or_else(overflow_err)?;
        out.push((s, e, share.normalize()));
    }
    Ok(out)
}

fn overflow_err() -> Error {
    Error::new(ErrorKind::Overflow, "The attribution of a reading's consumption overflows.".to_string())
}

/// The first local midnight of `tz` after `t` (a zone without a midnight that day takes the
/// first instant of the next day).
fn next_midnight(t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let local = t.with_timezone(&tz).date_naive();
    let mut day = local;
    loop {
        day = day.succ_opt().unwrap_or(day);
        let candidate = tz.from_local_datetime(&day.and_time(NaiveTime::MIN)).earliest().or_else(|| {
            // Midnight skipped by a DST change (e.g. Santiago): the first hour that exists.
            (1..=3).find_map(|h| tz.from_local_datetime(&day.and_hms_opt(h, 0, 0)?).earliest())
        });
        if let Some(c) = candidate {
            let c = c.with_timezone(&Utc);
            if c > t {
                return c;
            }
        }
        if day == chrono::NaiveDate::MAX {
            return DateTime::<Utc>::MAX_UTC;
        }
    }
}

/// The weight of `[s, e)`: seconds (pro rata) or profile-weighted seconds.
fn weight(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz, profile: Option<&[Decimal]>) -> Result<Decimal> {
    let Some(weights) = profile else { return Ok(Decimal::from(to.signed_duration_since(from).num_seconds())) };
    let mut total = Decimal::ZERO;
    let mut at = from;
    while at < to {
        let local = at.with_timezone(&tz);
        let into_hour = i64::from(local.minute() * 60 + local.second());
        let end = at.checked_add_signed(Duration::seconds(3600 - into_hour)).ok_or_else(overflow_err)?.min(to);
        let part = weights[local.hour() as usize]
            .checked_mul(Decimal::from(end.signed_duration_since(at).num_seconds()))
            .ok_or_else(overflow_err)?;
        total = total.checked_add(part).ok_or_else(overflow_err)?;
        at = end;
    }
    Ok(total)
}

/// The consumption records of a stored reading, dated by `opts.dating` ([`Dating`]): one per day
/// (pro rata, ids `"{meter}@{reading time}/{day start}"`), one at the start or one at the end.
pub(crate) fn records(cx: &Context<'_>, s: &StoredReading, prev_kind: Option<ReadingKind>) -> Result<Vec<UsageRecord>> {
    let (Some(total), Some(from)) = (s.consumption, s.from) else { return Ok(Vec::new()) };
    if s.status == ReadingStatus::Rejected {
        return Ok(Vec::new());
    }
    let interval = Interval {
        tenant: cx.tenant,
        metric: cx.metric,
        meter: &s.reading.meter,
        from,
        to: s.reading.timestamp,
        total,
        quality: quality(s, prev_kind),
    };
    dated_records(&interval, cx.opts.dating, cx.tz, cx.opts.profile.as_deref())
}

pub(crate) mod opt_decimals {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[allow(clippy::ref_option)] // serde's `with` passes `&Option<T>`
    pub fn serialize<S: Serializer>(v: &Option<Vec<Decimal>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().map(|v| v.iter().map(|d| crate::decimal::fmt_decimal(*d)).collect::<Vec<_>>()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Decimal>>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "crate::decimal::decimal_str")] Decimal);
        Ok(Option::<Vec<W>>::deserialize(d)?.map(|v| v.into_iter().map(|w| w.0).collect()))
    }
}

mod opt_pair {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[allow(clippy::ref_option)] // serde's `with` passes `&Option<T>`
    pub fn serialize<S: Serializer>(v: &Option<(Decimal, Decimal)>, s: S) -> Result<S::Ok, S::Error> {
        v.map(|(a, b)| [crate::decimal::fmt_decimal(a), crate::decimal::fmt_decimal(b)]).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(Decimal, Decimal)>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "crate::decimal::decimal_str")] Decimal);
        Ok(Option::<(W, W)>::deserialize(d)?.map(|(a, b)| (a.0, b.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// A load profile that weighs only the afternoon puts a whole day's use in the day whose
    /// afternoon the interval covers; the shares still sum to the total.
    #[test]
    fn a_load_profile_weights_the_hours_covered() {
        let profile: Vec<Decimal> = (0..24).map(|h| if h >= 12 { Decimal::ONE } else { Decimal::ZERO }).collect();
        let utc: Tz = "UTC".parse().unwrap();
        let parts =
            attribute(d("10"), t("2026-01-01T06:00:00Z"), t("2026-01-02T06:00:00Z"), utc, Some(&profile)).unwrap();
        let q: Vec<String> = parts.iter().map(|p| p.2.to_string()).collect();
        assert_eq!(q, ["10", "0"]);
        let even =
            attribute(d("10"), t("2026-01-01T00:00:00Z"), t("2026-01-03T00:00:00Z"), utc, Some(&profile)).unwrap();
        assert_eq!(even.iter().map(|p| p.2.to_string()).collect::<Vec<_>>(), ["5", "5"]);
    }

    /// Days are local days of the zone: in Kolkata (UTC+5:30) a day starts at 18:30 UTC.
    #[test]
    fn days_are_local_days_of_the_time_zone() {
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        let parts = attribute(d("48"), t("2026-11-30T12:30:00Z"), t("2026-12-01T12:30:00Z"), tz, None).unwrap();
        let got: Vec<(String, String)> = parts.iter().map(|p| (fmt_ts(p.1), p.2.to_string())).collect();
        assert_eq!(
            got,
            [
                ("2026-11-30T18:30:00Z".to_string(), "12".to_string()),
                ("2026-12-01T12:30:00Z".to_string(), "36".to_string())
            ]
        );
    }

    #[test]
    fn an_interval_over_ten_years_is_refused_before_allocating() {
        let utc: Tz = "UTC".parse().unwrap();
        let e = attribute(d("1"), t("2000-01-01T00:00:00Z"), t("2020-01-01T00:00:00Z"), utc, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRecord);
    }

    #[test]
    fn invalid_options_are_named() {
        let bad = [
            r#"{"history":0}"#,
            r#"{"profile":["1"]}"#,
            r#"{"typical_register":["5","1"]}"#,
            r#"{"max_daily":"0"}"#,
            r#"{"time_zone":"Mars/Base"}"#,
        ];
        for json in bad {
            let o: ReadingOptions = serde_json::from_str(json).unwrap();
            assert!(o.check().is_err(), "{json}");
        }
        assert!(serde_json::from_str::<ReadingOptions>(r#"{"histroy":3}"#).is_err(), "unknown keys are refused");
        assert_eq!(ReadingOptions::default().check().unwrap(), Tz::UTC);
    }
}
