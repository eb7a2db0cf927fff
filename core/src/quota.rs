//! Quotas and budgets: a limit per subject per period with alert levels.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::tariff::Tariff;
use crate::window::{parse_time_zone, Window};

/// A quota (units: a 10 GB data plan) or a budget (money: a £50 monthly budget, when `tariff`
/// is set) on one metric, per subject and per period, with alert levels in percent of `limit`.
///
/// Registered with [`Engine::add_quota`](crate::Engine::add_quota), it is checked after every
/// ingest: for each subject and period the batch touches, the usage so far (the sum of the
/// period's records, or the total of their [`Bill`](crate::Bill) under `tariff`) is compared
/// with each level, and the notifier gets `ThresholdCrossed` **once per level per period** —
/// the levels already notified are stored with the data, so replayed records never re-fire.
///
/// JSON: `{"id","tenant","metric","subject"?,"period":"month","time_zone","limit","levels":["80","100"],"tariff"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Identifier, unique per tenant.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Metric counted (`bytes`, `kwh`).
    pub metric: String,
    /// Only this subject; `None` applies the quota to every subject separately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The period: `month` or a billing cycle `cycle:DAY`.
    pub period: Window,
    /// IANA zone of the periods.
    pub time_zone: String,
    /// The limit: units of the metric, or money in the tariff's currency for a budget.
    #[serde(with = "crate::usage::decimal_str")]
    pub limit: Decimal,
    /// Alert levels in percent of `limit` (e.g. 80 and 100).
    pub levels: Vec<Decimal>,
    /// For a budget: the tariff whose bill total is compared with `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff: Option<Tariff>,
}

impl Quota {
    /// A units quota on `metric` per subject, per `period` in `time_zone`.
    pub fn new(
        id: impl Into<String>,
        tenant: impl Into<String>,
        metric: impl Into<String>,
        period: Window,
        time_zone: impl Into<String>,
        limit: Decimal,
        levels: Vec<Decimal>,
    ) -> Self {
        Quota {
            id: id.into(),
            tenant: tenant.into(),
            metric: metric.into(),
            subject: None,
            period,
            time_zone: time_zone.into(),
            limit,
            levels,
            tariff: None,
        }
    }

    /// Check the quota and return its zone.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidQuery`] for an empty id, a period other than `month` or `cycle:DAY`,
    /// a limit ≤ 0, no levels, or a level ≤ 0; [`ErrorKind::InvalidTimeZone`].
    pub fn check(&self) -> Result<Tz> {
        let bad = |field: &str, m: &str| Err(Error::new(ErrorKind::InvalidQuery, m).with_field(field));
        if self.id.is_empty() {
            return bad("id", "A quota needs an id.");
        }
        if !matches!(self.period.check()?, Window::Month | Window::BillingCycle { .. }) {
            return bad("period", "A quota period is `month` or `cycle:DAY`.");
        }
        if self.limit <= Decimal::ZERO {
            return bad("limit", "A quota limit must be positive.");
        }
        if self.levels.is_empty() || self.levels.iter().any(|l| *l <= Decimal::ZERO) {
            return bad("levels", "A quota needs alert levels above 0 %.");
        }
        parse_time_zone(&self.time_zone)
    }

    /// The levels (in the quota's order) that `used` has reached: `used ≥ limit × level ÷ 100`.
    pub fn levels_reached(&self, used: Decimal) -> Vec<Decimal> {
        self.levels
            .iter()
            .copied()
            .filter(|l| {
                self.limit
                    .checked_mul(*l)
                    .is_some_and(|x| used.checked_mul(Decimal::ONE_HUNDRED).is_some_and(|u| u >= x))
            })
            .collect()
    }

    /// The period `[start, end)` containing `at`.
    ///
    /// # Errors
    /// As [`Quota::check`].
    pub fn period_of(&self, at: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
        let tz = self.check()?;
        self.period.span(at, tz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        let q = Quota::new(
            "plan",
            "t",
            "bytes",
            Window::Month,
            "UTC",
            "10000000000".parse().unwrap(),
            vec![Decimal::from(80), Decimal::from(100)],
        );
        assert!(q.check().is_ok());
        assert!(q.levels_reached("7999999999".parse().unwrap()).is_empty());
        assert_eq!(q.levels_reached("8000000000".parse().unwrap()), vec![Decimal::from(80)]);
        assert_eq!(q.levels_reached("10000000000".parse().unwrap()).len(), 2);
        let mut bad = q.clone();
        bad.period = Window::Day;
        assert_eq!(bad.check().unwrap_err().field(), Some("period"));
    }
}
