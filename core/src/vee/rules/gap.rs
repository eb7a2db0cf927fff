//! `gap`: intervals missing between a record and the previous one of its series, against the
//! configured interval or the cadence inferred from the series (info when short enough to
//! interpolate or usual for the series, else a warning; the record is accepted).

use chrono::DateTime;
use rust_decimal::Decimal;

use crate::record::UsageRecord;
use crate::time::fmt_ts;
use crate::vee::rules::{RuleParams, Series};
use crate::vee::{Action, Finding, Rule, Severity};

/// Reports the intervals missing before `rec` (the series has seen a value).
pub(super) fn check(ser: &mut Series, rec: &UsageRecord, cfg: &RuleParams, out: &mut Vec<Finding>) {
    let step = rec.timestamp.timestamp() - ser.last_ts;
    let interval = cfg.interval_secs.unwrap_or(ser.interval);
    if !cfg.gaps || interval <= 0 || step.saturating_mul(2) <= interval.saturating_mul(3) {
        return;
    }
    let missing = (step + interval / 2) / interval - 1;
    if missing < 1 {
        return;
    }
    let short = missing <= i64::from(cfg.max_interpolation_intervals);
    // After warm-up, a series that often has gaps (more than one step in 1000) gets them as info:
    // they are how it reports, not news.
    let usual = ser.seen >= cfg.warmup && u64::from(ser.gaps) * 1000 > ser.seen;
    ser.gaps = ser.gaps.saturating_add(1);
    let first = DateTime::from_timestamp(ser.last_ts.saturating_add(interval), 0).unwrap_or_default();
    let message = message(rec, first, missing, interval, short, usual, cfg);
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

/// The gap finding's message: how many intervals are missing, and how to estimate them.
fn message(
    rec: &UsageRecord,
    first: DateTime<chrono::Utc>,
    missing: i64,
    interval: i64,
    short: bool,
    usual: bool,
    cfg: &RuleParams,
) -> String {
    let message = if short {
        format!(
            "{missing} interval(s) of {interval} s missing from {} to {}; short enough to estimate by linear interpolation.",
            fmt_ts(first),
            fmt_ts(rec.timestamp)
        )
    } else {
        format!(
            "{missing} intervals of {interval} s missing from {} to {}; longer than {} intervals, so estimate from {} or ask the meter for the data.",
            fmt_ts(first),
            fmt_ts(rec.timestamp),
            cfg.max_interpolation_intervals,
            estimate_from(interval)
        )
    };
    if usual && !short {
        format!("{message} Gaps are usual for this series (more than one step in 1000), so this is info.")
    } else {
        message
    }
}

/// Where a long gap of a series read every `interval` seconds is estimated from, in words that
/// fit its resolution: the same hour of previous weeks (sub-daily), the same weekday of previous
/// weeks (daily), the readings around the gap (weekly or coarser: there is no weekly shape).
fn estimate_from(interval: i64) -> &'static str {
    match interval {
        i if i < 86_400 => "the same hour of previous weeks",
        i if i < 7 * 86_400 => "the same weekday of previous weeks",
        _ => "the readings around the gap",
    }
}

/// Cadence: a step seen three times in a row becomes the interval; once established, only a much
/// finer step (under half of it) starts the inference again. Nothing to infer when the metric
/// configures `interval_secs`.
pub(super) fn infer_cadence(ser: &mut Series, step: i64, cfg: &RuleParams) {
    if step <= 0 || cfg.interval_secs.is_some() {
        return;
    }
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
