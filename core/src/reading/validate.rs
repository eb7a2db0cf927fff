//! The store-less reading check: a new register reading against a history the host holds
//! (a field app without an engine, or one showing the check before it stores anything).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::reading::{MeterReading, RegisterTracker};
use crate::record::UsageRecord;
use crate::vee::{Action, Finding, ValidationConfig, Validator};

/// The outcome of [`validate_reading`] or [`consumption`]: the consumption a reading implies
/// (none for a first reading, a meter exchange or a rejected reading) and every finding (reading
/// rules such as `rollover`, `meter_exchange`, `out_of_order_reading` first, then the VEE rules on
/// the consumption such as `spike`).
///
/// JSON: `{"consumption":UsageRecord|null,"findings":[…],"rejected":bool,"flagged":bool}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadingCheck {
    /// The consumption record (quantity in metric units, `timestamp` = previous reading, `end` =
    /// this reading, id `"{meter}@{end}"`).
    pub consumption: Option<UsageRecord>,
    /// The findings, reading rules first.
    pub findings: Vec<Finding>,
    /// True when a finding rejects the reading or its consumption (do not keep it as is).
    pub rejected: bool,
    /// True when a finding flags it (keep it, marked `flagged`).
    pub flagged: bool,
}

impl ReadingCheck {
    fn new(consumption: Option<UsageRecord>, findings: Vec<Finding>) -> Self {
        let rejected = findings.iter().any(|f| f.action == Action::Reject);
        let flagged = findings.iter().any(|f| f.action == Action::Flag);
        ReadingCheck { consumption, findings, rejected, flagged }
    }
}

/// Check a new register `reading` of `metric` against the meter's `history` (older readings,
/// oldest first; the last ten or so are enough), storing nothing: the register rules of
/// [`RegisterTracker`] (roll-over with `register_digits`, meter exchange, duplicate, out of
/// order, invalid), then a [`Validator`] with `config` (default: [`ValidationConfig::default`]) on
/// the implied consumption, after replaying the history's consumption through it. `now` fixes the
/// clock of the future/age rules (`None`: the wall clock).
///
/// For the engine's stored history and its decisions (backwards readings refused, typos,
/// declared exchanges) use `Engine::check_reading` (store nothing) or `Engine::record_reading`.
///
/// # Errors
/// [`crate::ErrorKind::Validation`] for an invalid `config`.
pub fn validate_reading(
    tenant: &str,
    metric: &str,
    history: &[MeterReading],
    reading: &MeterReading,
    config: Option<ValidationConfig>,
    now: Option<DateTime<Utc>>,
) -> Result<ReadingCheck> {
    let mut tracker = RegisterTracker::new(tenant, metric);
    let (past, _) = tracker.push_all(history);
    let mut validator = Validator::new([(metric, config.unwrap_or_default())])?;
    if let Some(now) = now {
        validator = validator.with_now(now);
    }
    validator.check_all(&past);
    let (record, mut findings) = tracker.push(reading);
    if let Some(r) = &record {
        findings.extend(validator.check(r));
    }
    Ok(ReadingCheck::new(record, findings))
}

/// Consumption between two readings of one meter: (current − previous) × multiplier, or the
/// roll-over amount when the register wrapped (needs `register_digits`), with the register
/// findings. No VEE statistics (see [`validate_reading`]).
pub fn consumption(tenant: &str, metric: &str, previous: &MeterReading, current: &MeterReading) -> ReadingCheck {
    let mut tracker = RegisterTracker::new(tenant, metric);
    let (_, mut findings) = tracker.push(previous);
    let (record, more) = tracker.push(current);
    findings.extend(more);
    ReadingCheck::new(record, findings)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::engine::Engine;
    use crate::reading::check::{ReadingOptions, ReadingStatus};
    use crate::vee::Rule;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, day, 0, 0, 0).unwrap()
    }

    #[test]
    fn a_rolled_over_register_is_consumption_and_a_drop_is_an_exchange() {
        let prev = MeterReading::new("m1", at(1), "99999".parse().unwrap()).digits(5);
        let next = MeterReading::new("m1", at(2), "12".parse().unwrap()).digits(5);
        let check = consumption("t", "kwh", &prev, &next);
        assert_eq!(check.consumption.unwrap().quantity.to_string(), "13");
        assert_eq!((check.findings[0].rule, check.rejected, check.flagged), (Rule::Rollover, false, false));
        let down = MeterReading::new("m1", at(2), "500".parse().unwrap());
        let check = validate_reading("t", "kwh", std::slice::from_ref(&prev), &down, None, Some(at(3))).unwrap();
        assert!(check.consumption.is_none() && check.flagged);
        assert_eq!(check.findings[0].rule, Rule::MeterExchange);
    }

    #[test]
    fn check_reading_decides_like_record_reading_and_stores_nothing() {
        let e = Engine::in_memory();
        let opts = ReadingOptions::default();
        let first = MeterReading::new("m1", at(1), "1000".parse().unwrap()).digits(5);
        e.record_reading("t", "kwh", &first, None, &opts).unwrap();
        let back = MeterReading::new("m1", at(2), "999".parse().unwrap()).digits(5);
        let checked = e.check_reading("t", "kwh", &back, None, &opts).unwrap();
        assert_eq!(checked.status, ReadingStatus::Rejected);
        let up = MeterReading::new("m1", at(3), "1010".parse().unwrap()).digits(5);
        let checked = e.check_reading("t", "kwh", &up, None, &opts).unwrap();
        assert_eq!(checked.consumption.unwrap().to_string(), "10");
        assert_eq!(e.readings("t", "m1").unwrap().len(), 1, "nothing stored");
        assert!(e.records("t", "kwh", None, at(1), at(9)).unwrap().is_empty());
        let recorded = e.record_reading("t", "kwh", &up, None, &opts).unwrap();
        assert_eq!(recorded.records, checked.records);
    }
}
