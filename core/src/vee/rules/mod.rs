//! The validation rules, one file per rule (the long-form description of each is
//! `docs/validation.md`).
//!
//! Record rules need only the record and the configuration: [`negative`], [`future`],
//! [`too_old`], [`unit`]. Stream rules need the series' history ([`series::Series`]) and run in
//! [`stream_rules`] in this order: [`out_of_order`] (which stops the rest), [`gap`] (and the
//! cadence it infers), [`limits`], the [`seasonal`] band, [`spike`], [`level_shift`], [`streak`];
//! then the history is updated with the value.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::record::UsageRecord;
use crate::time::Tz;
use crate::vee::Finding;

mod future;
mod gap;
mod level_shift;
mod limits;
mod negative;
mod out_of_order;
mod seasonal;
pub(super) mod series;
mod spike;
mod streak;
mod too_old;
mod unit;

pub(super) use series::Series;
pub(super) use unit::check as unit_rule;

/// The checked settings of one metric's rules, copied out of its
/// [`ValidationConfig`](crate::vee::ValidationConfig) (see that type for each field's meaning and unit).
#[derive(Debug, Clone, Copy)]
pub(in crate::vee) struct RuleParams {
    pub(in crate::vee) allow_negative: bool,
    pub(in crate::vee) future_skew_secs: i64,
    pub(in crate::vee) max_age_secs: Option<i64>,
    pub(in crate::vee) high_limit: Option<Decimal>,
    pub(in crate::vee) low_limit: Option<Decimal>,
    pub(in crate::vee) spikes: bool,
    pub(in crate::vee) window: usize,
    pub(in crate::vee) threshold: f64,
    pub(in crate::vee) min_scale_ratio: f64,
    pub(in crate::vee) confirm: bool,
    pub(in crate::vee) range_decay: f64,
    pub(in crate::vee) seasonal: bool,
    pub(in crate::vee) seasonal_min_weeks: u32,
    pub(in crate::vee) seasonal_alpha: f64,
    pub(in crate::vee) stuck_intervals: u32,
    pub(in crate::vee) zero_streak_intervals: u32,
    pub(in crate::vee) gaps: bool,
    pub(in crate::vee) interval_secs: Option<i64>,
    pub(in crate::vee) max_interpolation_intervals: u32,
    pub(in crate::vee) warmup: u64,
    pub(in crate::vee) adaptive_quantile: f64,
    pub(in crate::vee) range_margin: f64,
    pub(in crate::vee) cusum_k: f64,
    pub(in crate::vee) cusum_h: f64,
    pub(in crate::vee) cusum_clip: f64,
    pub(in crate::vee) streak_rarity: f64,
}

/// The record rules: a negative quantity, a future timestamp, a timestamp past the horizon.
pub(super) fn record_rules(r: &UsageRecord, cfg: &RuleParams, now: DateTime<Utc>, out: &mut Vec<Finding>) {
    negative::check(r, cfg, out);
    future::check(r, cfg, now, out);
    too_old::check(r, cfg, now, out);
}

/// The stream rules of one record against its series' history, then the history update.
pub(super) fn stream_rules(
    ser: &mut Series,
    rec: &UsageRecord,
    cfg: &RuleParams,
    tz: Tz,
    utc: bool,
    out: &mut Vec<Finding>,
) {
    if out_of_order::check(ser, rec, out) {
        return;
    }
    let qty = rec.quantity;
    let val = series::to_f64(qty);
    if ser.seen > 0 {
        gap::check(ser, rec, cfg, out);
        gap::infer_cadence(ser, rec.timestamp.timestamp() - ser.last_ts, cfg);
    }
    limits::check(rec, qty, cfg, out);
    let slot = seasonal::SlotOf::new(rec.timestamp.timestamp(), cfg, tz, utc);
    let (seasonal_level, band) = seasonal::band(ser, slot, val, cfg);
    spike::check(ser, rec, val, band, cfg, out);
    level_shift::check(ser, rec, val, seasonal_level, cfg, out);
    streak::check(ser, rec, cfg, out);
    seasonal::learn(ser, slot, val, cfg);
    ser.remember(rec.timestamp.timestamp(), qty, val, cfg.range_decay);
}

/// The values of a finding's expected range, when both ends fit a decimal.
fn expected_range(lo: f64, hi: f64) -> Option<(Decimal, Decimal)> {
    series::dec(lo, 4).zip(series::dec(hi, 4))
}
