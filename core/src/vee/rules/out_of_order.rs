//! `out_of_order`: a record older than the latest record of its series (info; it is billed but
//! the statistical rules skip it).

use chrono::DateTime;

use crate::record::UsageRecord;
use crate::time::fmt_ts;
use crate::vee::rules::Series;
use crate::vee::{Action, Finding, Rule, Severity};

/// Reports a record older than the series' latest; `true` when it did (the stream rules stop).
pub(super) fn check(ser: &Series, rec: &UsageRecord, out: &mut Vec<Finding>) -> bool {
    if ser.seen == 0 || rec.timestamp.timestamp() >= ser.last_ts {
        return false;
    }
    let mut f = Finding::about(
        rec,
        Rule::OutOfOrder,
        Severity::Info,
        Action::Accept,
        format!(
            "The record is older than the latest record of its series ({}); it is billed but not used by the statistical rules.",
            fmt_ts(DateTime::from_timestamp(ser.last_ts, 0).unwrap_or_default())
        ),
    );
    f.value = Some(rec.quantity.normalize());
    out.push(f);
    true
}
