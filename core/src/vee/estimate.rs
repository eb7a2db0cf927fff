//! Estimation (the first E of VEE): filling gaps in interval data with records marked
//! `estimated`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::record::{Quality, UsageRecord};
use crate::time::fmt_ts;

/// How [`estimate_gaps`] fills gaps.
///
/// JSON: `{"interval_secs":3600,"max_interpolation_intervals":4,"max_estimated_intervals":336,
/// "history_weeks":4,"decimals":6}` (every field but `interval_secs` optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct EstimateConfig {
    /// The series' cadence, seconds (e.g. 3600 for hourly data).
    pub interval_secs: i64,
    /// Gaps of up to this many missing intervals are filled by linear interpolation between the
    /// values on either side. Default 4.
    #[serde(default = "d_interp")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub max_interpolation_intervals: u32,
    /// Longer gaps of up to this many intervals are filled, interval by interval, with the mean of
    /// the values at the same instant 1, 2, … `history_weeks` weeks (7 × 24 h) earlier; intervals
    /// without any such history, and longer gaps, stay unfilled. Default 336 (two weeks of hours).
    #[serde(default = "d_max")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub max_estimated_intervals: u32,
    /// Weeks of history the same-hour-of-week mean looks back. Default 4.
    #[serde(default = "d_weeks")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub history_weeks: u32,
    /// Decimal places of estimated quantities (half-even). Default 6.
    #[serde(default = "d_decimals")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub decimals: u32,
}

fn d_interp() -> u32 {
    4
}
fn d_max() -> u32 {
    336
}
fn d_weeks() -> u32 {
    4
}
fn d_decimals() -> u32 {
    6
}

impl EstimateConfig {
    /// Defaults for a cadence of `interval_secs`.
    pub fn new(interval_secs: i64) -> Self {
        EstimateConfig {
            interval_secs,
            max_interpolation_intervals: d_interp(),
            max_estimated_intervals: d_max(),
            history_weeks: d_weeks(),
            decimals: d_decimals(),
        }
    }
}

/// The estimated records that fill the gaps of one interval series (same tenant, subject and
/// metric), ordered by timestamp. Records already marked `estimated` are neither used as
/// neighbours nor as history. A gap is a step of more than 1.5 intervals between two records;
/// its missing intervals start at `previous + k × interval`.
///
/// Each estimated record has quality `estimated`, id `"est:{subject}:{metric}:{timestamp}"`, the
/// dimensions of the record before the gap, and an `end` one interval later when that record has
/// an `end`.
///
/// ```
/// use meterkit::{vee::estimate::estimate_gaps, vee::estimate::EstimateConfig, record::Quality, UsageRecord};
/// use chrono::{Duration, TimeZone, Utc};
/// let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// let rec = |h: i64, q: &str| UsageRecord::new("t", format!("r{h}"), "m1", "kwh", q.parse().unwrap(), t0 + Duration::hours(h));
/// let filled = estimate_gaps(&[rec(0, "1"), rec(3, "2.5")], &EstimateConfig::new(3600))?;
/// let values: Vec<String> = filled.iter().map(|r| r.quantity.to_string()).collect();
/// assert_eq!(values, ["1.5", "2"]); // 1 + 1.5 × 1/3, 1 + 1.5 × 2/3
/// assert!(filled.iter().all(|r| r.quality == Quality::Estimated));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Validation`] when the records mix series or `interval_secs` is not positive;
/// [`ErrorKind::Overflow`] when an estimate leaves the decimal range.
pub fn estimate_gaps(records: &[UsageRecord], cfg: &EstimateConfig) -> Result<Vec<UsageRecord>> {
    let interval = cfg.interval_secs;
    if interval <= 0 {
        return Err(Error::new(ErrorKind::Validation, "interval_secs must be positive.").with_field("interval_secs"));
    }
    let mut actual: Vec<&UsageRecord> = records.iter().filter(|r| r.quality != Quality::Estimated).collect();
    let Some(first) = actual.first().copied() else { return Ok(Vec::new()) };
    if let Some(other) =
        actual.iter().find(|r| r.tenant != first.tenant || r.subject != first.subject || r.metric != first.metric)
    {
        return Err(Error::new(
            ErrorKind::Validation,
            format!(
                "estimate_gaps needs one series; record '{}' is of {}/{}/{}, not {}/{}/{}.",
                other.id, other.tenant, other.subject, other.metric, first.tenant, first.subject, first.metric
            ),
        )
        .with_record_id(other.id.clone()));
    }
    actual.sort_by_key(|r| r.timestamp);
    // `extend`, not `collect` (a collected map has a stable sort of its own: ≈ 4 KB of library);
    // the last record of a second wins either way.
    let mut history: BTreeMap<i64, Decimal> = BTreeMap::new();
    history.extend(actual.iter().map(|r| (r.timestamp.timestamp(), r.quantity)));
    let overflow = || Error::overflow("An estimate");
    let mut out = Vec::new();
    for pair in actual.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (ta, tb) = (a.timestamp.timestamp(), b.timestamp.timestamp());
        let step = tb - ta;
        if step.saturating_mul(2) <= interval.saturating_mul(3) {
            continue;
        }
        let missing = (step + interval / 2) / interval - 1;
        if missing < 1 || missing > i64::from(cfg.max_estimated_intervals) {
            continue;
        }
        for k in 1..=missing {
            let t = ta + k * interval;
            let value = if missing <= i64::from(cfg.max_interpolation_intervals) {
                let delta = b.quantity.checked_sub(a.quantity).ok_or_else(overflow)?;
                let part = delta
                    .checked_mul(Decimal::from(k))
                    .and_then(|d| d.checked_div(Decimal::from(missing + 1)))
                    .ok_or_else(overflow)?;
                Some(a.quantity.checked_add(part).ok_or_else(overflow)?)
            } else {
                let mut sum = Decimal::ZERO;
                let mut n = 0i64;
                for w in 1..=i64::from(cfg.history_weeks) {
                    if let Some(q) = history.get(&(t - w * 604_800)) {
                        sum = crate::decimal::exact_add(sum, *q).ok_or_else(overflow)?;
                        n += 1;
                    }
                }
                if n == 0 {
                    None
                } else {
                    Some(sum.checked_div(Decimal::from(n)).ok_or_else(overflow)?)
                }
            };
            let Some(value) = value else { continue };
            let Some(at) = DateTime::from_timestamp(t, 0) else { continue };
            let mut r = UsageRecord::new(
                a.tenant.clone(),
                format!("est:{}:{}:{}", a.subject, a.metric, fmt_ts(at)),
                a.subject.clone(),
                a.metric.clone(),
                value.round_dp(cfg.decimals).normalize(),
                at,
            )
            .with_quality(Quality::Estimated);
            r.dimensions.clone_from(&a.dimensions);
            if a.end.is_some() {
                r.end = Duration::try_seconds(interval).and_then(|d| at.checked_add_signed(d));
            }
            out.push(r);
        }
    }
    Ok(out)
}
