//! `stuck` and `zero_streak`: the same non-zero value, or zero, repeated for `stuck_intervals` or
//! `zero_streak_intervals` values in a row — one finding per run, and after warm-up only when such
//! a run is rare for the series (warnings; the record is flagged).

use rust_decimal::Decimal;

use crate::decimal::fmt_decimal;
use crate::record::UsageRecord;
use crate::vee::rules::series::same_value;
use crate::vee::rules::{RuleParams, Series};
use crate::vee::{Action, Finding, Rule, Severity};

/// Counts the runs `rec` extends and reports a stuck value or a zero streak when one is due.
pub(super) fn check(ser: &mut Series, rec: &UsageRecord, cfg: &RuleParams, out: &mut Vec<Finding>) {
    let qty = rec.quantity;
    count(ser, qty);
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
        let message = format!(
            "The value {} has repeated {} times in a row; the meter or its register may be stuck.",
            fmt_decimal(qty),
            ser.run
        );
        out.push(finding(rec, Rule::Stuck, ser.run, message));
    }
    if zero_streak {
        let message = format!(
            "Zero usage for {} values in a row; check for an outage, a disconnected meter or a vacant site.",
            ser.zeros
        );
        out.push(finding(rec, Rule::ZeroStreak, ser.zeros, message));
    }
}

/// Extends or restarts the run of equal values and the run of zeros.
fn count(ser: &mut Series, qty: Decimal) {
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
}

/// A streak finding scored with the run's length.
fn finding(rec: &UsageRecord, rule: Rule, run: u32, message: String) -> Finding {
    let mut f = Finding::about(rec, rule, Severity::Warning, Action::Flag, message);
    f.score = Some(Decimal::from(run));
    f
}
