//! `negative_quantity`: a quantity below zero on a metric that does not allow negative values
//! (an error; the record is rejected).

use crate::decimal::fmt_decimal;
use crate::record::UsageRecord;
use crate::vee::rules::RuleParams;
use crate::vee::{Action, Finding, Rule, Severity};

/// Rejects a negative quantity unless the metric sets `allow_negative`.
pub(super) fn check(r: &UsageRecord, cfg: &RuleParams, out: &mut Vec<Finding>) {
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
}
