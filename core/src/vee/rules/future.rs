//! `future_timestamp`: a timestamp later than now plus the allowed clock skew (an error; the
//! record is rejected).

use chrono::{DateTime, Utc};

use crate::record::UsageRecord;
use crate::time::fmt_ts;
use crate::vee::rules::RuleParams;
use crate::vee::{Action, Finding, Rule, Severity};

/// Rejects a record more than `future_skew_secs` seconds after `now`.
pub(super) fn check(r: &UsageRecord, cfg: &RuleParams, now: DateTime<Utc>, out: &mut Vec<Finding>) {
    let t = r.timestamp.timestamp();
    let now_s = now.timestamp();
    if t > now_s.saturating_add(cfg.future_skew_secs) {
        out.push(Finding::about(
            r,
            Rule::FutureTimestamp,
            Severity::Error,
            Action::Reject,
            format!(
                "The timestamp {} is {} s after now ({}), more than the allowed skew of {} s; check the sender's clock.",
                fmt_ts(r.timestamp),
                t - now_s,
                fmt_ts(now),
                cfg.future_skew_secs
            ),
        ));
    }
}
