//! Quotas and budgets: a limit per subject per period with alert levels.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::billing::BillRequest;
use crate::error::{Error, ErrorKind, Result};
use crate::notify::Event;
use crate::record::UsageRecord;
use crate::rollup::{RollupSpec, SUBJECT};
use crate::store::{BucketKey, ChangeSet, Store};
use crate::tariff::Tariff;
use crate::time::{parse_time_zone, Tz, Window};

/// A quota (units: a 10 GB data plan) or a budget (money: a £50 monthly budget, when `tariff`
/// is set) on one metric, per period, with alert levels in percent of `limit`.
///
/// **Scope** — the records counted, as a bill's ([`BillRequest`]): one `subject`, a set of
/// `subjects`, or (neither) every subject of the tenant; and a dimension `filter` (all must
/// match). **Pooling** — `pooled: false` (the default) gives every subject in scope its own
/// usage and levels (a per-SIM cap); `pooled: true` counts the whole scope as one usage (an
/// account's SIMs, an organisation's channels, the whole tenant), and its events carry an empty
/// `subject`.
///
/// Registered with [`Engine::add_quota`](crate::Engine::add_quota), it is checked after every
/// ingest: for each subject and period the batch touches, the usage so far is compared with each
/// level, and the notifier gets `ThresholdCrossed` **once per level per period** — the levels
/// already notified are stored with the data, so replayed records never re-fire.
///
/// The usage of a units quota is maintained **incrementally at ingest**: registering the quota
/// adds (once, backfilled) the rollup spec [`Quota::spec`] — the tenant's own spec of the metric
/// per `period`, grouped by subject (unless pooled) and by the filter's dimensions, so other
/// tenants never pay for it — and each check reads one bucket of it (one per subject of the set
/// for a pooled set of `subjects`), so an ingest costs the same with 10 or 10 million records
/// already in the period; retracted records leave the bucket as rollups always do. A budget
/// (`tariff` set) bills the period's records in scope with the tariff at each check (time of
/// use and demand need the records), which costs O(records of the scope's period).
///
/// The period is any window: `hour`, `day` (a hotspot plan's daily cap), `week` (ISO, Monday),
/// `month`, `quarter`, `year`, a billing cycle `cycle:DAY` or `minutes:N`, in `time_zone`.
///
/// Unknown keys are refused, naming them.
///
/// JSON: `{"id","tenant","metric","subject"?,"subjects"?,"filter"?,"pooled"?,"period":"month","time_zone",
/// "limit","levels":["80","100"],"tariff"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Identifier, unique per tenant.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Metric counted (`bytes`, `kwh`).
    pub metric: String,
    /// Only this subject; `None`: the subjects of `subjects`, or every subject of the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Only these subjects (with `subject` unset); empty: no restriction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub subjects: Vec<String>,
    /// Only records whose dimensions have these values (e.g. `{"account": "a-17"}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub filter: BTreeMap<String, String>,
    /// Count the whole scope as one usage (`true`) instead of each subject's own (`false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub pooled: bool,
    /// The period: any window (`day`, `week`, `month`, `cycle:DAY`, …).
    pub period: Window,
    /// IANA zone of the periods.
    pub time_zone: String,
    /// The limit: units of the metric, or money in the tariff's currency for a budget.
    #[serde(with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub limit: Decimal,
    /// Alert levels in percent of `limit` (e.g. 80 and 100).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString[]"))]
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
            subjects: Vec::new(),
            filter: BTreeMap::new(),
            pooled: false,
            period,
            time_zone: time_zone.into(),
            limit,
            levels,
            tariff: None,
        }
    }

    /// Count the whole scope as one usage (builder style; see [`Quota`]).
    #[must_use]
    pub fn pooled(mut self) -> Self {
        self.pooled = true;
        self
    }

    /// Only these subjects (builder style; `subject` is cleared).
    #[must_use]
    pub fn with_subjects<I: IntoIterator<Item = S>, S: Into<String>>(mut self, subjects: I) -> Self {
        self.subject = None;
        self.subjects = subjects.into_iter().map(Into::into).collect();
        self
    }

    /// Only records with `dimension` = `value` (builder style; several filters must all match).
    #[must_use]
    pub fn with_filter(mut self, dimension: impl Into<String>, value: impl Into<String>) -> Self {
        self.filter.insert(dimension.into(), value.into());
        self
    }

    /// Whether `record` counts towards this quota: its tenant, metric, subject (one, the set, or
    /// any) and the filter's dimension values (the period is the caller's).
    pub fn covers(&self, record: &UsageRecord) -> bool {
        record.tenant == self.tenant
            && record.metric == self.metric
            && self.subject.as_ref().is_none_or(|s| *s == record.subject)
            && (self.subjects.is_empty() || self.subjects.contains(&record.subject))
            && self.filter.iter().all(|(d, v)| record.dimensions.get(d) == Some(v))
    }

    /// The usage group of `record` (in scope): its subject, or `""` for a pooled quota.
    fn group_of<'r>(&self, record: &'r UsageRecord) -> &'r str {
        if self.pooled {
            ""
        } else {
            record.subject.as_str()
        }
    }

    /// Check the quota and return its zone.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidQuery`] for an empty id or metric, both `subject` and `subjects`, a
    /// filter on `subject` (use `subject`/`subjects`), a limit ≤ 0, no levels, or a level ≤ 0;
    /// [`ErrorKind::InvalidWindow`] for an invalid period (`minutes:0`, `cycle:29`);
    /// [`ErrorKind::InvalidTimeZone`].
    pub fn check(&self) -> Result<Tz> {
        let bad = |field: &str, m: &str| Err(Error::new(ErrorKind::InvalidQuery, m).with_field(field));
        if self.id.is_empty() {
            return bad("id", "A quota needs an id.");
        }
        if self.subject.is_some() && !self.subjects.is_empty() {
            return bad("subjects", "A quota names either one `subject` or a set of `subjects`, not both.");
        }
        if self.filter.contains_key(SUBJECT) {
            return bad("filter", "A quota's filter names dimensions; restrict subjects with `subject` or `subjects`.");
        }
        if self.metric.is_empty() {
            return bad("metric", "A quota needs a metric.");
        }
        self.period.check().map_err(|e| e.with_field("period"))?;
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

    /// The rollup spec that maintains a units quota's usage: the tenant's own spec of `metric`
    /// per `period` in `time_zone`, grouped by subject (unless pooled without a set of
    /// `subjects`) and then by the filter's dimensions (in name order).
    /// [`Engine::add_quota`](crate::Engine::add_quota) adds it.
    ///
    /// # Errors
    /// As [`Quota::check`].
    pub fn spec(&self) -> Result<RollupSpec> {
        self.check()?;
        let mut dims: Vec<String> = Vec::new();
        if self.by_subject() {
            dims.push(SUBJECT.to_string());
        }
        dims.extend(self.filter.keys().cloned());
        Ok(RollupSpec::new(self.metric.clone(), self.period, &self.time_zone)?.group_by(dims).for_tenant(&self.tenant))
    }

    /// Whether the quota's spec groups by subject: per subject, or a pooled set of subjects.
    fn by_subject(&self) -> bool {
        !self.pooled || !self.subjects.is_empty() || self.subject.is_some()
    }

    /// The bucket groups of the quota's spec whose sums make the usage of `group` (a subject, or
    /// `""` when pooled): one, or one per subject of a pooled set.
    fn bucket_groups(&self, group: &str) -> Vec<Vec<Option<String>>> {
        let filter = self.filter.values().map(|v| Some(v.clone()));
        let subjects: Vec<&str> = match (&self.subject, self.pooled, self.subjects.is_empty()) {
            (Some(s), true, _) => vec![s.as_str()],
            (None, true, false) => self.subjects.iter().map(String::as_str).collect(),
            (None, true, true) => return vec![filter.collect()],
            _ => vec![group],
        };
        // `extend`, not `collect`: a collected set sorts through a stable-sort copy of its own (size).
        let mut unique = std::collections::BTreeSet::new();
        unique.extend(subjects);
        unique.into_iter().map(|s| std::iter::once(Some(s.to_string())).chain(filter.clone()).collect()).collect()
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

/// A registered quota and the id of the rollup spec that maintains its usage (`None` for a
/// budget, which bills the period's records).
#[derive(Debug, Clone)]
pub(crate) struct QuotaEntry {
    pub(crate) quota: Quota,
    pub(crate) spec: Option<u32>,
}

/// Usage of `quota` by `group` (a subject, or `""` when pooled) in `[start, end)` (Unix
/// seconds): the sum of the period's bucket(s) of the quota's spec (one read; one per subject
/// of a pooled set), or the bill total of the period's records in scope for a budget.
fn used(store: &dyn Store, entry: &QuotaEntry, group: &str, start: i64, end: i64) -> Result<Decimal> {
    let q = &entry.quota;
    match (&q.tariff, entry.spec) {
        (None, Some(spec)) => {
            let mut sum = Decimal::ZERO;
            for g in q.bucket_groups(group) {
                let key = BucketKey { tenant: q.tenant.clone(), spec, start, group: g };
                let part = store.bucket(&key)?.map_or(Decimal::ZERO, |b| b.state.sum);
                sum = crate::decimal::exact_add(sum, part).ok_or_else(|| Error::overflow("Quota usage"))?;
            }
            Ok(sum)
        }
        (tariff, _) => {
            let subjects: Vec<Option<&str>> = match (q.pooled, &q.subject) {
                (false, _) => vec![Some(group)],
                (true, Some(s)) => vec![Some(s.as_str())],
                (true, None) if q.subjects.is_empty() => vec![None],
                (true, None) => q.subjects.iter().map(|s| Some(s.as_str())).collect(),
            };
            let mut records = Vec::new();
            for s in subjects {
                records.extend(store.records(&q.tenant, &q.metric, s, start, end)?.into_iter().filter(|r| q.covers(r)));
            }
            match tariff {
                Some(t) => {
                    let (s, e) = (secs(start)?, secs(end)?);
                    let req = BillRequest::new(&q.tenant, "", &q.metric, s, e, &q.time_zone);
                    Ok(t.bill(&req, &records)?.total)
                }
                None => records.iter().try_fold(Decimal::ZERO, |a, r| {
                    crate::decimal::exact_add(a, r.quantity).ok_or_else(|| Error::overflow("Quota usage"))
                }),
            }
        }
    }
}

fn secs(t: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp(t, 0)
        .ok_or_else(|| Error::new(ErrorKind::InvalidWindow, format!("The instant {t} is out of range.")))
}

/// `ThresholdCrossed` events for the quota periods `batch` touches. The levels already notified
/// are recorded in the store's metadata (`quota/{id}/{subject}/{period start}/{level}`, applied
/// atomically with nothing else), so no level fires twice for a period, also when records are
/// replayed. A quota whose usage cannot be computed (a store error, an overflow) is skipped: the
/// ingest that called this is stored already, and the levels are checked again at the next
/// ingest into the same period.
pub(crate) fn threshold_events(store: &mut dyn Store, quotas: &[QuotaEntry], batch: &[UsageRecord]) -> Vec<Event> {
    let mut touched: BTreeMap<(usize, &str, i64), i64> = BTreeMap::new();
    for r in batch {
        for (i, q) in quotas.iter().map(|e| &e.quota).enumerate() {
            if q.covers(r) {
                if let Ok((s, e)) = q.period_of(r.timestamp) {
                    touched.insert((i, q.group_of(r), s.timestamp()), e.timestamp());
                }
            }
        }
    }
    let mut events = Vec::new();
    for ((i, subject, start), end) in touched {
        let q = &quotas[i].quota;
        let Ok(used) = used(store, &quotas[i], subject, start, end) else { continue };
        let mut changes = ChangeSet::default();
        let mut fired = Vec::new();
        for level in q.levels_reached(used) {
            let key = format!("quota/{}/{subject}/{start}/{}", q.id, level.normalize());
            if matches!(store.meta(&q.tenant, &key), Ok(None)) {
                changes.meta.push((q.tenant.clone(), key, Some(used.normalize().to_string())));
                fired.push(level);
            }
        }
        let (Ok(period_start), Ok(period_end)) = (secs(start), secs(end)) else { continue };
        if fired.is_empty() || store.apply(&changes).is_err() {
            continue;
        }
        for level in fired {
            events.push(Event::ThresholdCrossed {
                tenant: q.tenant.clone(),
                quota: q.id.clone(),
                subject: subject.to_string(),
                metric: q.metric.clone(),
                period_start,
                period_end,
                level: level.normalize(),
                used,
                limit: q.limit,
            });
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{notify::CollectingNotifier, Engine, Event, UsageRecord};
    use std::sync::Arc;

    fn gb(id: &str, day: u32, month: u32, q: &str) -> UsageRecord {
        let at = format!("2024-{month:02}-{day:02}T12:00:00Z").parse().unwrap();
        UsageRecord::new("t", id, "sim-1", "bytes", q.parse().unwrap(), at)
    }

    fn crossed(events: &[Event]) -> Vec<(String, String, String)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::ThresholdCrossed { quota, level, used, .. } => {
                    Some((quota.clone(), level.to_string(), used.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn data_plan_levels_fire_once_per_period_even_on_replay() {
        let n = Arc::new(CollectingNotifier::new());
        let engine = Engine::in_memory().with_notifier(n.clone());
        let plan = Quota::new(
            "10gb",
            "t",
            "bytes",
            Window::Month,
            "Europe/London",
            "10000000000".parse().unwrap(),
            vec![Decimal::from(80), Decimal::from(100)],
        );
        engine.add_quota(plan).unwrap();
        engine.ingest(&[gb("a", 3, 3, "7000000000")]).unwrap();
        assert!(crossed(&n.take()).is_empty()); // 70 %
        engine.ingest(&[gb("b", 4, 3, "1500000000")]).unwrap(); // 8.5 GB = 85 %
        assert_eq!(crossed(&n.take()), vec![("10gb".into(), "80".into(), "8500000000".into())]);
        engine.ingest(&[gb("b", 4, 3, "1500000000")]).unwrap(); // a duplicate: nothing
        assert!(crossed(&n.take()).is_empty());
        engine.ingest(&[gb("c", 5, 3, "2000000000")]).unwrap(); // 10.5 GB
        assert_eq!(crossed(&n.take()), vec![("10gb".into(), "100".into(), "10500000000".into())]);
        // Replays: the same batch again, and a retracted record ingested again.
        engine
            .ingest(&[gb("a", 3, 3, "7000000000"), gb("b", 4, 3, "1500000000"), gb("c", 5, 3, "2000000000")])
            .unwrap();
        engine.retract("t", "c").unwrap();
        engine.ingest(&[gb("c", 5, 3, "2000000000")]).unwrap();
        assert!(crossed(&n.take()).is_empty());
        // A new month is a new period: 9 GB in April crosses 80 % again.
        engine.ingest(&[gb("d", 1, 4, "9000000000")]).unwrap();
        let events = n.take();
        assert_eq!(crossed(&events), vec![("10gb".into(), "80".into(), "9000000000".into())]);
        let Event::ThresholdCrossed { period_start, period_end, .. } = &events[0] else { panic!() };
        // April in London starts at 23:00 UTC on 31 March (BST).
        assert_eq!(crate::time::fmt_ts(*period_start), "2024-03-31T23:00:00Z");
        assert_eq!(crate::time::fmt_ts(*period_end), "2024-04-30T23:00:00Z");
    }

    #[test]
    fn money_budget_uses_the_tariff() {
        let n = Arc::new(CollectingNotifier::new());
        let engine = Engine::in_memory().with_notifier(n.clone());
        let tariff =
            Tariff::from_toml("currency = \"GBP\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"0.25\"\n")
                .unwrap();
        let mut budget =
            Quota::new("budget", "t", "kwh", Window::Month, "UTC", Decimal::from(50), vec![Decimal::from(80)]);
        budget.tariff = Some(tariff);
        engine.add_quota(budget).unwrap();
        let r = |id: &str, q: i64| {
            UsageRecord::new("t", id, "home", "kwh", Decimal::from(q), "2024-03-02T00:00:00Z".parse().unwrap())
        };
        engine.ingest(&[r("a", 150)]).unwrap(); // 150 x 0.25 = 37.50 = 75 % of 50
        assert!(crossed(&n.take()).is_empty());
        engine.ingest(&[r("b", 10)]).unwrap(); // 160 x 0.25 = 40.00 = 80 %
        assert_eq!(crossed(&n.take()), vec![("budget".into(), "80".into(), "40.00".into())]);
    }

    #[test]
    fn usage_is_read_from_the_quota_spec_backfilled_and_kept_after_retraction() {
        let n = Arc::new(CollectingNotifier::new());
        let engine = Engine::in_memory().with_notifier(n.clone());
        // Records stored before the quota is registered count: the spec is backfilled.
        let other = UsageRecord { subject: "sim-2".into(), ..gb("x", 3, 3, "9000000000") };
        engine.ingest(&[gb("a", 3, 3, "6000000000"), other]).unwrap();
        let limit = "10000000000".parse().unwrap();
        let plan = Quota::new("cap", "t", "bytes", Window::Day, "UTC", limit, vec![Decimal::from(100)]);
        engine.add_quota(plan.clone()).unwrap();
        assert!(engine.specs().contains(&plan.spec().unwrap()));
        engine.add_quota(plan.clone()).unwrap(); // registering again adds no second spec
        assert_eq!(engine.specs().len(), 1);
        // A daily cap: 6 + 3 GB on 3 March is 90 %; sim-2's 9 GB are its own.
        engine.ingest(&[gb("b", 3, 3, "3000000000")]).unwrap();
        assert!(crossed(&n.take()).is_empty());
        // 4 March is a new day: 9.5 GB there stay under the cap.
        engine.ingest(&[gb("c", 4, 3, "9500000000")]).unwrap();
        assert!(crossed(&n.take()).is_empty());
        // Retracting b then ingesting 4 GB on 3 March: 10 GB, the cap.
        engine.retract("t", "b").unwrap();
        engine.ingest(&[gb("d", 3, 3, "4000000000")]).unwrap();
        assert_eq!(crossed(&n.take()), vec![("cap".into(), "100".into(), "10000000000".into())]);
    }

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
        let mut daily = q.clone();
        daily.period = Window::Day;
        assert!(daily.check().is_ok());
        let mut bad = q.clone();
        bad.period = Window::Minutes(0);
        assert_eq!(bad.check().unwrap_err().field(), Some("period"));
    }
}
