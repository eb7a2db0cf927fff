//! `high_limit` and `low_limit`: a value outside the metric's absolute limits (warnings; the
//! record is flagged).

use rust_decimal::Decimal;

use crate::decimal::fmt_decimal;
use crate::record::UsageRecord;
use crate::vee::rules::RuleParams;
use crate::vee::{Action, Finding, Rule, Severity};

/// Flags `qty` above `high_limit` or below `low_limit`; the expected range is the two limits
/// (zero as the low end when the metric does not allow negative values).
pub(super) fn check(rec: &UsageRecord, qty: Decimal, cfg: &RuleParams, out: &mut Vec<Finding>) {
    if let Some(hi) = cfg.high_limit.filter(|hi| qty > *hi) {
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
    if let Some(lo) = cfg.low_limit.filter(|lo| qty < *lo) {
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
