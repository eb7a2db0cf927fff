//! `unknown_unit`: a record whose `unit` dimension is not the metric's configured unit (an error;
//! the record is rejected).

use crate::record::UsageRecord;
use crate::vee::{Action, Finding, Rule, Severity};

/// Rejects a record whose `unit` dimension differs from `unit` (when both are given).
pub(in crate::vee) fn check(r: &UsageRecord, unit: Option<&str>, out: &mut Vec<Finding>) {
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
