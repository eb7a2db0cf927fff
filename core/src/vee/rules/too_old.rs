//! `too_old`: a timestamp older than the billing horizon `max_age_secs` before now (an error; the
//! record is rejected).

use chrono::{DateTime, Utc};

use crate::record::UsageRecord;
use crate::time::fmt_ts;
use crate::vee::rules::RuleParams;
use crate::vee::{Action, Finding, Rule, Severity};

/// Rejects a record older than `max_age_secs` seconds before `now` (when a horizon is set).
pub(super) fn check(r: &UsageRecord, cfg: &RuleParams, now: DateTime<Utc>, out: &mut Vec<Finding>) {
    let Some(age) = cfg.max_age_secs else { return };
    if r.timestamp.timestamp() < now.timestamp().saturating_sub(age) {
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
