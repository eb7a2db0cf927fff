//! The engine: ingest with idempotency, incremental rollups, queries, retraction, window closing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::billing::{Bill, BillRequest};
use crate::error::{Error, ErrorKind, Result};
use crate::invoice::Invoice;
use crate::notify::{Event, NoopNotifier, Notifier};
use crate::quota::{Quota, QuotaEntry};
use crate::record::{Quality, UsageRecord};
use crate::rollup::{Accumulator, Aggregation, Bucket, BucketState, RollupSpec, SUBJECT};
use crate::store::{BucketKey, ChangeSet, MemoryStore, Store, StoredBucket};
use crate::tariff::Tariff;
use crate::time::fmt_ts;
use crate::time::{parse_time_zone, Tz, Window};
use crate::vee::{Action, Finding, ValidationConfig, Validator};

pub(crate) mod batch;
mod columns;
mod counters;
mod import;
mod ingest;
mod outbox;
mod readings;
mod stored;
mod text;
pub use counters::CounterOutcome;
pub use import::bill_from_buckets;
pub(crate) mod revise;

/// Metadata key of the instant (Unix seconds) up to which `close_windows` closed a tenant's windows.
const CLOSED_UNTIL: &str = "engine/closed_until";
/// How many times a call is attempted when the store reports a concurrent writer (a
/// [retryable](Error::is_retryable) error) before that error is returned.
const MAX_ATTEMPTS: u32 = 16;

/// The most windows one `fill: zero` query may produce.
pub const MAX_FILLED_WINDOWS: usize = 1_000_000;

/// The most rows (windows × groups) one `fill: zero` query may produce: the rows are counted
/// before any is allocated, and a larger query is refused with [`ErrorKind::InvalidQuery`].
pub const MAX_FILLED_ROWS: usize = 1_000_000;

/// Metadata key prefix marking a tenant whose backfill of a new spec overflowed (see
/// [`Engine::add_spec`]); the spec id follows.
const OVERFLOWED: &str = "engine/overflowed/";

/// Outcome of one [`Engine::ingest`] call.
///
/// JSON: `{"accepted":N,"duplicates":N,"rejected":[{"tenant","id","kind","reason"}],
/// "findings":[...]?}` — `findings` (see [`Finding`]) is omitted when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct IngestReport {
    /// Records stored and rolled up.
    pub accepted: u64,
    /// Records whose idempotency key was already stored (or earlier in the batch) with the same
    /// content; nothing changed for them.
    pub duplicates: u64,
    /// Records not applied, with the reason.
    pub rejected: Vec<Rejection>,
    /// Records of a [`Engine::replace`] that replaced a stored record with other content (the
    /// old version kept in [`Engine::history`]); omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replaced: u64,
    /// Validation findings about the batch's new records, in batch order (see
    /// [`Engine::set_validation`]). A record with a `reject` finding is also in `rejected`
    /// (kind `validation`); one with a `flag` finding is stored with quality `flagged`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A record an ingest did not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Rejection {
    /// Tenant of the record.
    pub tenant: String,
    /// Id of the record.
    pub id: String,
    /// Why, as a kind (`invalid_record`, `conflict`, `validation`).
    pub kind: ErrorKind,
    /// Why, in a sentence.
    pub reason: String,
}

/// Whether a query returns empty windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// Only windows with records.
    #[default]
    None,
    /// Every window in `[from, to)`, empty ones with sum and count 0 (needs `from` and `to`).
    Zero,
}

crate::error::enum_names!(Fill, "fill", [None = "none", Zero = "zero",]);

/// A rollup query: one tenant, one metric, one window kind in one zone.
///
/// Windows are returned whose start lies in `[start of the window containing from, to)`.
/// Filters select records by subject and by dimension values; `group_by` splits the result
/// (`"subject"` groups by subject). The engine answers from a maintained rollup spec that covers
/// the query (of every tenant, or the query tenant's own) in O(buckets). A query no spec covers
/// (an unplanned grouping) is answered from the stored records of its range, in O(records), and
/// **creates nothing**: no spec is added that every later ingest would pay for. To answer such
/// queries from buckets, add the spec explicitly ([`Engine::spec_for_query`] gives it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// The tenant; no other tenant's data is read.
    pub tenant: String,
    /// The metric.
    pub metric: String,
    /// The window kind.
    pub window: Window,
    /// IANA zone of the windows.
    pub time_zone: String,
    /// Only this subject.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub subject: Option<String>,
    /// Only records whose dimensions have these values.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub filters: BTreeMap<String, String>,
    /// Split by these dimensions (`"subject"` allowed).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub group_by: Vec<String>,
    /// Dimensions whose distinct values are counted (`unique_count`).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub unique: Vec<String>,
    /// Start of the range (inclusive, widened to its window's start).
    #[serde(default, with = "crate::time::opt_ts_str")]
    #[cfg_attr(feature = "ts", ts(optional = nullable, type = "Date | Timestamp | null"))]
    pub from: Option<DateTime<Utc>>,
    /// End of the range (exclusive, on window start).
    #[serde(default, with = "crate::time::opt_ts_str")]
    #[cfg_attr(feature = "ts", ts(optional = nullable, type = "Date | Timestamp | null"))]
    pub to: Option<DateTime<Utc>>,
    /// Whether to return empty windows.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub fill: Fill,
}

impl Query {
    /// A query for every window of `metric` in `time_zone`.
    pub fn new(
        tenant: impl Into<String>,
        metric: impl Into<String>,
        window: Window,
        time_zone: impl Into<String>,
    ) -> Self {
        Query {
            tenant: tenant.into(),
            metric: metric.into(),
            window,
            time_zone: time_zone.into(),
            subject: None,
            filters: BTreeMap::new(),
            group_by: Vec::new(),
            unique: Vec::new(),
            from: None,
            to: None,
            fill: Fill::None,
        }
    }

    /// Restrict to one subject.
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Restrict to `[from, to)`.
    #[must_use]
    pub fn range(mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        self.from = Some(from);
        self.to = Some(to);
        self
    }

    /// Split by dimensions.
    #[must_use]
    pub fn group_by<I: IntoIterator<Item = S>, S: Into<String>>(mut self, dims: I) -> Self {
        self.group_by = dims.into_iter().map(Into::into).collect();
        self
    }

    /// Keep only records whose dimension `key` is `value`.
    #[must_use]
    pub fn filter(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.filters.insert(key.into(), value.into());
        self
    }

    /// Count distinct values of a dimension.
    #[must_use]
    pub fn unique(mut self, dim: impl Into<String>) -> Self {
        self.unique.push(dim.into());
        self
    }

    /// Return empty windows too.
    #[must_use]
    pub fn fill(mut self, fill: Fill) -> Self {
        self.fill = fill;
        self
    }

    /// The dimensions a spec must group by to answer this query.
    fn needed_dims(&self) -> Vec<String> {
        let mut dims: Vec<String> = Vec::new();
        let mut push = |d: &str| {
            if !dims.iter().any(|x| x == d) {
                dims.push(d.to_string());
            }
        };
        if self.subject.is_some() {
            push(SUBJECT);
        }
        for d in &self.group_by {
            push(d);
        }
        for d in self.filters.keys() {
            push(d);
        }
        dims
    }
}

/// Totals of the period containing an instant and of the period before it, for KPI cards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Totals {
    /// The period containing the instant.
    pub current: Bucket,
    /// The period before it.
    pub previous: Bucket,
    /// Change of the sum in percent (2 decimal places, half-even); `null` when the previous sum is 0.
    #[serde(with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub change_percent: Option<Decimal>,
}

pub(crate) struct SpecEntry {
    pub(crate) spec: RollupSpec,
    pub(crate) tz: Tz,
    /// Removed by [`Engine::remove_spec`] (here or by another engine sharing the store): kept
    /// for its id, never maintained or read.
    pub(crate) removed: bool,
}

/// The specs still maintained, with their ids (what an accumulator is built from; it skips the
/// specs of other tenants itself).
pub(crate) fn live_specs(specs: &[SpecEntry]) -> impl Iterator<Item = (u32, &RollupSpec)> {
    specs.iter().enumerate().filter(|(_, s)| !s.removed).map(|(i, s)| (i as u32, &s.spec))
}

/// The engine's spec list from the store's: every spec checked, the removed ones marked.
fn load_specs(store: &dyn Store) -> Result<Vec<SpecEntry>> {
    let removed = store.removed_specs()?;
    store
        .specs()?
        .into_iter()
        .enumerate()
        .map(|(i, spec)| Ok(SpecEntry { tz: spec.check()?, spec, removed: removed.contains(&(i as u32)) }))
        .collect()
}

pub(crate) struct Inner {
    pub(crate) store: Box<dyn Store>,
    pub(crate) specs: Vec<SpecEntry>,
    /// Validation of new records (in memory; see [`Engine::set_validation`]).
    validator: Option<Validator>,
}

/// The metering engine: holds a [`Store`], a [`Notifier`] and the rollup specs.
///
/// All methods take `&self`; an `Engine` is `Send + Sync` and serialises writes internally, so one
/// engine may be shared by several threads. Events are emitted after the change is stored and
/// after the engine's lock is released.
///
/// ```
/// use meterkit::{Engine, Query, RollupSpec, UsageRecord, Window};
/// use chrono::{TimeZone, Utc};
/// let engine = Engine::in_memory();
/// engine.add_spec(RollupSpec::new("kwh", Window::Day, "Europe/London")?)?;
/// let at = Utc.with_ymd_and_hms(2024, 1, 15, 8, 0, 0).unwrap();
/// let r = UsageRecord::new("acme", "r1", "meter-1", "kwh", "0.25".parse()?, at);
/// let report = engine.ingest(&[r.clone(), r])?;
/// assert_eq!((report.accepted, report.duplicates), (1, 1));
/// let days = engine.query(&Query::new("acme", "kwh", Window::Day, "Europe/London"))?;
/// assert_eq!(days[0].sum.to_string(), "0.25");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Engine {
    inner: Mutex<Inner>,
    notifier: Arc<dyn Notifier>,
    quotas: Mutex<Vec<QuotaEntry>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `store`, loading the specs it holds.
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the store cannot be read; the errors of [`RollupSpec::check`] for
    /// a stored spec that is no longer valid.
    pub fn new(store: impl Store + 'static) -> Result<Self> {
        let specs = load_specs(&store)?;
        Ok(Engine {
            inner: Mutex::new(Inner { store: Box::new(store), specs, validator: None }),
            notifier: Arc::new(NoopNotifier),
            quotas: Mutex::default(),
        })
    }

    /// An engine over a new [`MemoryStore`].
    pub fn in_memory() -> Self {
        Engine {
            inner: Mutex::new(Inner { store: Box::new(MemoryStore::new()), specs: Vec::new(), validator: None }),
            notifier: Arc::new(NoopNotifier),
            quotas: Mutex::default(),
        }
    }

    /// Send events to `notifier` (builder style).
    #[must_use]
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn emit(&self, events: &[Event]) {
        for e in events {
            self.notifier.notify(e);
        }
    }

    /// Validate the new records of `metric` with `config` in every later [`ingest`](Engine::ingest)
    /// (replacing an earlier configuration of the metric). Records of metrics without a
    /// configuration are not validated.
    ///
    /// Rules run on each batch's new records (after idempotency checks), before rollups: a record
    /// with a `reject` finding is not stored and is reported in `IngestReport.rejected` with kind
    /// `validation`; one with a `flag` finding is stored with quality `flagged` and counted in its
    /// buckets' flagged share; every finding is in `IngestReport.findings`, and warnings and errors
    /// go to the notifier as `AnomalyDetected`.
    ///
    /// The streaming state (last N values, range, seasonal slots per series) is kept **in memory**
    /// and is not persisted: after a restart each series warms up again. A failed ingest leaves it
    /// as it was (the batch is all or nothing).
    ///
    /// # Errors
    /// As [`ValidationConfig::check`].
    pub fn set_validation(&self, metric: &str, config: ValidationConfig) -> Result<()> {
        let mut inner = self.lock();
        match &mut inner.validator {
            Some(v) => v.set_config(metric, config),
            None => {
                inner.validator = Some(Validator::new([(metric, config)])?);
                Ok(())
            }
        }
    }

    /// Validate with a fixed "now" instead of the wall clock (tests, replays of old data).
    pub fn set_validation_now(&self, now: Option<DateTime<Utc>>) {
        if let Some(v) = &mut self.lock().validator {
            v.set_now(now);
        }
    }

    /// The rollup specs maintained, in id order (removed specs are left out).
    pub fn specs(&self) -> Vec<RollupSpec> {
        live_specs(&self.lock().specs).map(|(_, s)| s.clone()).collect()
    }

    /// Stop maintaining the spec equal to `spec` (aggregations in any order) and delete its
    /// buckets of every tenant, in one atomic change; returns its id, which is never reused.
    /// Queries it answered are answered by another spec that covers them, or from the stored
    /// records (see [`Engine::query`]). Engines sharing the store see the removal at their next
    /// write (the store refuses a change into a removed spec; they reload and redo it).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when no such spec is maintained; [`ErrorKind::Conflict`] when a
    /// registered quota ([`Engine::add_quota`]) reads its usage from it; the errors of
    /// [`RollupSpec::check`]; [`ErrorKind::Store`].
    pub fn remove_spec(&self, spec: &RollupSpec) -> Result<u32> {
        let mut spec = spec.clone();
        spec.check()?;
        crate::order::sort_by(&mut spec.aggregations, Ord::cmp);
        spec.aggregations.dedup();
        let quotas: Vec<(String, u32)> = self
            .quotas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|e| e.spec.map(|id| (e.quota.id.clone(), id)))
            .collect();
        Self::write_call(&mut self.lock(), |inner| {
            let Some(id) = live_specs(&inner.specs).find(|(_, s)| **s == spec).map(|(id, _)| id) else {
                return Err(Error::new(ErrorKind::NotFound, "No such rollup spec is maintained.").with_field("spec"));
            };
            if let Some((quota, _)) = quotas.iter().find(|(_, q)| *q == id) {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("Quota '{quota}' reads its usage from this rollup spec; it was not removed."),
                )
                .with_field("spec"));
            }
            let changes = ChangeSet {
                remove_specs: vec![id],
                known_specs: Some(inner.specs.len() as u32),
                ..ChangeSet::default()
            };
            inner.store.apply(&changes)?;
            inner.specs[id as usize].removed = true;
            Ok(id)
        })
    }

    /// Maintain `spec` from now on, backfilled from every stored record of its metric (of its
    /// tenant, for a tenant's own spec), and return its id. Adding a spec equal to one maintained
    /// returns that one's id.
    ///
    /// The spec is added and backfilled in one write span of the store
    /// ([`Store::begin_write`]), so records another engine ingests meanwhile are either in the
    /// backfill or merged by their ingest — never lost. The backfill is per tenant: a tenant
    /// whose records overflow a bucket of the new spec (records stored while no spec covered
    /// them) does not stop the others; that tenant's queries on the spec fail with
    /// [`ErrorKind::Overflow`], naming the record, until the record is retracted.
    ///
    /// # Errors
    /// The errors of [`RollupSpec::check`]; [`ErrorKind::Store`].
    #[allow(clippy::needless_pass_by_value)] // by value: the public signature callers already use
    pub fn add_spec(&self, spec: RollupSpec) -> Result<u32> {
        Self::add_spec_retrying(&mut self.lock(), &spec)
    }

    /// [`Engine::add_spec_locked`], again after reloading the specs when another engine sharing
    /// the store added one meanwhile.
    fn add_spec_retrying(inner: &mut Inner, spec: &RollupSpec) -> Result<u32> {
        Self::write_call(inner, |inner| Self::add_spec_locked(inner, spec))
    }

    fn add_spec_locked(inner: &mut Inner, spec: &RollupSpec) -> Result<u32> {
        let mut spec = spec.clone();
        let tz = spec.check()?;
        crate::order::sort_by(&mut spec.aggregations, Ord::cmp);
        spec.aggregations.dedup();
        if let Some((i, _)) = live_specs(&inner.specs).find(|(_, s)| **s == spec) {
            return Ok(i);
        }
        let id = u32::try_from(inner.specs.len()).map_err(|_| Error::overflow("The number of rollup specs"))?;
        // One accumulator per tenant; a tenant whose records overflow a bucket is set aside.
        let mut per_tenant: HashMap<String, std::result::Result<Accumulator, Error>> = HashMap::new();
        let mut backfill = |r: &UsageRecord| {
            let acc = match per_tenant.get_mut(&r.tenant) {
                Some(a) => a,
                None => per_tenant
                    .entry(r.tenant.clone())
                    .or_insert(Ok(Accumulator::with_ids(&r.tenant, std::iter::once((id, &spec)))?)),
            };
            if let Ok(a) = acc {
                match a.add(r) {
                    Err(e) if e.kind() == ErrorKind::Overflow => *acc = Err(backfill_overflow(&spec, r)),
                    other => other?,
                }
            }
            Ok(())
        };
        match &spec.tenant {
            Some(tenant) => inner.store.scan_tenant_metric(tenant, &spec.metric, &mut backfill)?,
            None => inner.store.scan_metric(&spec.metric, &mut backfill)?,
        }
        let mut changes = ChangeSet { new_specs: vec![spec.clone()], known_specs: Some(id), ..ChangeSet::default() };
        for (tenant, acc) in per_tenant {
            match acc {
                Ok(acc) => changes.merge.extend(acc.into_buckets()),
                Err(e) => changes.meta.push((tenant, format!("{OVERFLOWED}{id}"), Some(overflow_mark(&e)))),
            }
        }
        inner.store.apply(&changes)?;
        inner.specs.push(SpecEntry { spec, tz, removed: false });
        Ok(id)
    }

    /// Fail when `tenant`'s backfill of spec `id` overflowed, unless it now fits (the record
    /// that overflowed was retracted): then rebuild the tenant's buckets of the spec from its
    /// records and clear the mark.
    fn check_overflowed(inner: &mut Inner, tenant: &str, id: u32) -> Result<()> {
        let key = format!("{OVERFLOWED}{id}");
        if inner.store.meta(tenant, &key)?.is_none() {
            return Ok(());
        }
        Self::write_call(inner, |inner| {
            let Some(mark) = inner.store.meta(tenant, &key)? else { return Ok(()) };
            let spec = spec_entry(&inner.specs, id)?.spec.clone();
            let mut acc = Accumulator::with_ids(tenant, std::iter::once((id, &spec)))?;
            for r in inner.store.records(tenant, &spec.metric, None, i64::MIN, i64::MAX)? {
                if let Err(e) = acc.add(&r) {
                    return Err(if e.kind() == ErrorKind::Overflow { from_overflow_mark(&mark) } else { e });
                }
            }
            let mut changes = ChangeSet { known_specs: Some(inner.specs.len() as u32), ..ChangeSet::default() };
            let fresh = acc.into_buckets();
            let keep: std::collections::HashSet<&BucketKey> = fresh.iter().map(|(k, _, _)| k).collect();
            for old in inner.store.buckets(tenant, id, i64::MIN, i64::MAX)? {
                if !keep.contains(&old.key) {
                    changes.replace.push((old.key, old.end, None));
                }
            }
            changes.replace.extend(fresh.iter().map(|(k, end, state)| (k.clone(), *end, Some(state.clone()))));
            changes.meta.push((tenant.to_string(), key.clone(), None));
            inner.store.apply(&changes)?;
            Ok(())
        })
    }

    /// Ingest a batch of usage records.
    ///
    /// Each record is checked ([`UsageRecord::check`]); a record whose idempotency key
    /// `(tenant, id)` is stored (or earlier in the batch) with the same content is a duplicate and
    /// changes nothing; with different content it is rejected as a conflict and never applied.
    /// The accepted records and their contributions to every rollup are stored in one atomic
    /// change: the batch is all or nothing. Rejections are reported (and sent to the notifier as
    /// `RecordRejected`), not returned as errors. With validation configured for a record's metric
    /// ([`Engine::set_validation`]), new records are validated before they reach a rollup: see
    /// `IngestReport.findings`.
    ///
    /// A record that would make a rollup sum of its tenant overflow the decimal range (with the
    /// buckets already stored) is rejected with kind `overflow`, naming its id; the rest of the
    /// batch is stored. Another tenant's records are never affected.
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the store fails; nothing of the batch is stored then.
    pub fn ingest(&self, batch: &[UsageRecord]) -> Result<IngestReport> {
        self.ingest_tracked(None, batch)
    }

    /// [`Engine::ingest`] for a named `source` (a cron job, a feed): also records, in the same
    /// atomic change, per tenant, the greatest timestamp of the batch's stored or duplicate
    /// records as the source's watermark ([`Engine::last_ingested_at`]), so that the next run
    /// sends only what is newer. The watermark never moves back.
    ///
    /// # Errors
    /// As [`Engine::ingest`]; [`ErrorKind::InvalidQuery`] (field `source`) for an empty source
    /// name or one longer than 200 bytes.
    pub fn ingest_from(&self, source: &str, batch: &[UsageRecord]) -> Result<IngestReport> {
        crate::engine::batch::check_source(source)?;
        self.ingest_tracked(Some(source), batch)
    }

    /// The watermark of `source` for `tenant`: the greatest timestamp of the records an
    /// [`Engine::ingest_from`] of that source stored (or found already stored); `None` before
    /// its first ingest.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidQuery`] for an invalid source name; [`ErrorKind::Store`].
    pub fn last_ingested_at(&self, tenant: &str, source: &str) -> Result<Option<DateTime<Utc>>> {
        crate::engine::batch::check_source(source)?;
        crate::engine::batch::read_watermark(self.lock().store.as_ref(), tenant, source)
    }

    fn ingest_tracked(&self, source: Option<&str>, batch: &[UsageRecord]) -> Result<IngestReport> {
        self.ingest_guarded(self.lock(), source, batch, &[], None)
    }

    /// [`Engine::ingest_tracked`] under a lock the caller already holds, with `meta` (tenant, key,
    /// value) written in the same atomic change as the batch (the register tracker's state).
    /// `digest`: the batch's probe digest when the caller has it (else computed here; a call
    /// with `meta` is not probed).
    fn ingest_guarded(
        &self,
        inner: MutexGuard<'_, Inner>,
        source: Option<&str>,
        batch: &[UsageRecord],
        meta: &[(String, String, Option<String>)],
        digest: Option<crate::engine::batch::Digest>,
    ) -> Result<IngestReport> {
        let digest = if meta.is_empty() { digest.or_else(|| crate::engine::batch::digest(batch)) } else { None };
        let digest = digest.as_ref();
        let (report, mut events) = {
            // The lock ends with this block: the quota events and the notifier run without it.
            let mut inner = inner;
            // Another engine may change the store under us (a retryable refusal): the whole batch
            // is redone against the store's new state. A batch that overflows a bucket is redone
            // once, checking each record against the stored buckets.
            let result = Self::write_call(&mut inner, |inner| {
                match Self::ingest_once(inner, batch, false, source, meta, digest) {
                    Err(e) if e.kind() == ErrorKind::Overflow => {
                        Self::ingest_once(inner, batch, true, source, meta, digest)
                    }
                    other => other,
                }
            });
            let Inner { validator, .. } = &mut *inner;
            match (validator.as_mut(), result) {
                (Some(v), Ok((report, mut events, validated))) => {
                    v.commit();
                    // Alerts group findings that are stored: observed only after the commit.
                    for (i, found) in validated {
                        let raised = v.alerts_mut().observe(&batch[i], &report.findings[found]);
                        events.extend(raised.into_iter().map(alert_event));
                    }
                    (report, events)
                }
                (Some(v), Err(e)) => {
                    v.rollback();
                    return Err(e);
                }
                (None, result) => {
                    let (report, events, _) = result?;
                    (report, events)
                }
            }
        };
        if report.accepted > 0 {
            // Only new records change a quota's usage.
            events.extend(self.quota_events(batch));
        }
        self.emit(&events);
        Ok(report)
    }

    /// Run attempt number `attempt` of a call in one write span of the store
    /// ([`Store::begin_write`]); a retry (attempt > 1) runs inside [`Store::exclusive`], so that
    /// concurrent writers cannot refuse it again and again.
    fn attempt<T>(inner: &mut Inner, attempt: u32, f: impl FnOnce(&mut Inner) -> Result<T>) -> Result<T> {
        if attempt == 1 {
            return Self::in_write(inner, f);
        }
        inner.store.exclusive(true)?;
        let result = Self::in_write(inner, f);
        // The attempt's outcome stands either way; a store that cannot release ends its connection.
        let _ = inner.store.exclusive(false);
        result
    }

    /// Run `f` between [`Store::begin_write`] and [`Store::end_write`]; a failed end (the commit)
    /// fails the call, as nothing of it is stored then.
    fn in_write<T>(inner: &mut Inner, f: impl FnOnce(&mut Inner) -> Result<T>) -> Result<T> {
        inner.store.begin_write()?;
        let result = f(inner);
        let ended = inner.store.end_write();
        let value = result?;
        ended?;
        Ok(value)
    }

    /// Run a writing call, retried (with reloaded specs) while the store refuses it as
    /// [retryable](Error::is_retryable), at most [`MAX_ATTEMPTS`] times.
    fn write_call<T>(inner: &mut Inner, mut f: impl FnMut(&mut Inner) -> Result<T>) -> Result<T> {
        let mut attempt = 1;
        loop {
            match Self::attempt(inner, attempt, &mut f) {
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    attempt += 1;
                    Self::reload_specs(inner)?;
                }
                other => return other,
            }
        }
    }

    /// Reload the rollup specs from the store (another engine sharing it may have added or
    /// removed some).
    fn reload_specs(inner: &mut Inner) -> Result<()> {
        inner.specs = load_specs(inner.store.as_ref())?;
        Ok(())
    }

    /// The report of a repeat of the batch of probe digest `digest` (`n` records) when the probe
    /// remembers it — every record a duplicate, as [`Engine::ingest`] answers it — read in a
    /// write span of the store like an ingest's own probe; `None` when it does not.
    ///
    /// # Errors
    /// [`ErrorKind::Store`].
    fn remembered(&self, digest: &crate::engine::batch::Digest, n: usize) -> Result<Option<IngestReport>> {
        let mut inner = self.lock();
        Self::write_call(&mut inner, |inner| {
            let (tenant, key) = crate::engine::batch::probe_key(inner.store.as_ref(), digest)?;
            let known = inner.store.meta(&tenant, &key)?.is_some();
            Ok(known.then(|| IngestReport { duplicates: n as u64, ..IngestReport::default() }))
        })
    }

    /// A batch the probe remembers (see [`crate::engine::batch`]): every record a duplicate, answered
    /// from one metadata read; with a source, its watermark is still moved.
    fn probe_hit(
        inner: &mut Inner,
        batch: &[UsageRecord],
        probe: Option<&(String, String)>,
        source: Option<&str>,
    ) -> Result<Option<IngestReport>> {
        let Some((tenant, key)) = probe else { return Ok(None) };
        if inner.store.meta(tenant, key)?.is_none() {
            return Ok(None);
        }
        if let Some(source) = source {
            let meta = crate::engine::batch::watermark_changes(inner.store.as_ref(), source, batch)?;
            if !meta.is_empty() {
                inner.store.apply(&ChangeSet { meta, ..ChangeSet::default() })?;
            }
        }
        Ok(Some(IngestReport { duplicates: batch.len() as u64, ..IngestReport::default() }))
    }

    /// One attempt of [`Engine::ingest`]: the report, the events to emit and the validated records
    /// (batch index, range of their findings in the report); the stages are in
    /// [`crate::engine::ingest`].
    fn ingest_once(
        inner: &mut Inner,
        batch: &[UsageRecord],
        careful: bool,
        source: Option<&str>,
        meta: &[(String, String, Option<String>)],
        digest: Option<&crate::engine::batch::Digest>,
    ) -> Result<IngestOutcome> {
        crate::engine::ingest::ingest_once(inner, batch, careful, source, meta, digest)
    }

    /// Remove the record `(tenant, id)` and its contribution to every rollup; min, max and latest
    /// are recomputed from the stored records, so a retracted record is as if never ingested.
    /// Returns the removed record.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when no such record is stored; [`ErrorKind::Store`].
    pub fn retract(&self, tenant: &str, id: &str) -> Result<UsageRecord> {
        Self::write_call(&mut self.lock(), |inner| Self::retract_once(inner, tenant, id))
    }

    fn retract_once(inner: &mut Inner, tenant: &str, id: &str) -> Result<UsageRecord> {
        let Some(record) = inner.store.get_records(tenant, &[id])?.pop().flatten() else {
            return Err(Error::new(ErrorKind::NotFound, format!("No record '{id}' is stored for tenant '{tenant}'."))
                .with_record_id(id));
        };
        let mut changes = ChangeSet {
            delete: vec![(tenant.to_string(), id.to_string())],
            meta: vec![crate::engine::batch::next_revision(inner.store.as_ref(), tenant)?],
            known_specs: Some(inner.specs.len() as u32),
            ..ChangeSet::default()
        };
        for (spec_id, entry) in inner.specs.iter().enumerate() {
            if entry.removed || entry.spec.metric != record.metric || !entry.spec.applies_to(tenant) {
                continue;
            }
            let (start, end) = entry.spec.window.span_secs(record.timestamp.timestamp(), entry.tz)?;
            let subject = entry.spec.group_by.iter().any(|d| d == SUBJECT).then_some(record.subject.as_str());
            let group = entry.spec.group_of(&record);
            let mut state = BucketState::default();
            let unique: Vec<&str> = entry.spec.unique_dims().collect();
            let mut overflowed = None;
            for r in inner.store.records(tenant, &record.metric, subject, start, end)? {
                if r.id != record.id && entry.spec.group_of(&r) == group {
                    match state.add(&r, unique.iter().copied()) {
                        Err(e) if e.kind() == ErrorKind::Overflow => {
                            overflowed = Some(backfill_overflow(&entry.spec, &r));
                            break;
                        }
                        other => other?,
                    }
                }
            }
            if let Some(e) = overflowed {
                // The bucket's other records overflow on their own: the tenant's queries on this
                // spec fail (naming the record) until they fit again, as after a backfill.
                changes.meta.push((tenant.to_string(), format!("{OVERFLOWED}{spec_id}"), Some(overflow_mark(&e))));
                continue;
            }
            let key = BucketKey {
                tenant: tenant.to_string(),
                spec: spec_id as u32,
                start,
                group: group.into_iter().map(|g| g.map(str::to_string)).collect(),
            };
            changes.replace.push((key, end, Some(state)));
        }
        inner.store.apply(&changes)?;
        Ok(record)
    }

    /// Store `batch` as revisions, in one atomic change: a record whose idempotency key is not
    /// stored is stored (`accepted`); one stored with the same content is a duplicate; one stored
    /// with other content **replaces** it (`replaced`): the old version's contribution leaves
    /// every rollup and the new one's enters it, and the old version is kept in
    /// [`Engine::history`]. A provider's revised usage (a BSP's corrected analytics, a corrected
    /// common-meter total) is one call, never a retract followed by an ingest that a crash could
    /// separate. Replacement records are not validated ([`Engine::set_validation`]) and raise no
    /// `LateRecord` events; quotas are checked as after an ingest.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRecord`] (with the record id) for an invalid record or a key given
    /// twice in the batch; [`ErrorKind::Store`]; [`ErrorKind::Overflow`]. In every case nothing
    /// of the batch is stored.
    pub fn replace(&self, batch: &[UsageRecord]) -> Result<IngestReport> {
        let report = {
            let mut inner = self.lock();
            let mut attempt = 1;
            loop {
                match Self::attempt(&mut inner, attempt, |inner| crate::engine::revise::replace_once(inner, batch)) {
                    Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                        attempt += 1;
                        Self::reload_specs(&mut inner)?;
                    }
                    other => break other?,
                }
            }
        };
        if report.accepted + report.replaced > 0 {
            let events = self.quota_events(batch);
            self.emit(&events);
        }
        Ok(report)
    }

    /// The earlier versions of the record `(tenant, id)` that [`Engine::replace`] replaced,
    /// oldest first (empty when it was never replaced).
    ///
    /// # Errors
    /// [`ErrorKind::Store`], also for a stored version that no longer reads.
    pub fn history(&self, tenant: &str, id: &str) -> Result<Vec<UsageRecord>> {
        crate::engine::revise::history(self.lock().store.as_ref(), tenant, id)
    }

    /// Stored records of `tenant` and `metric` with timestamp in `[from, to)`, optionally of one
    /// subject, ordered by timestamp then id (what bills need for time-of-use and demand).
    ///
    /// # Errors
    /// [`ErrorKind::Store`].
    pub fn records(
        &self,
        tenant: &str,
        metric: &str,
        subject: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<UsageRecord>> {
        self.lock().store.records(tenant, metric, subject, from.timestamp(), ceil_secs(to))
    }

    /// Answer a rollup query (see [`Query`]). Rows are ordered by window start, then group values.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidQuery`] for `fill: zero` without `from` and `to`, `to` before `from`,
    /// or more than [`MAX_FILLED_WINDOWS`] windows; [`ErrorKind::InvalidTimeZone`];
    /// [`ErrorKind::Store`].
    pub fn query(&self, q: &Query) -> Result<Vec<Bucket>> {
        let mut inner = self.lock();
        if q.fill == Fill::Zero && (q.from.is_none() || q.to.is_none()) {
            return Err(Error::new(ErrorKind::InvalidQuery, "fill: zero needs both from and to.").with_field("fill"));
        }
        let mut merged = Self::answer(&mut inner, q)?;
        let tz = parse_time_zone(&q.time_zone)?;
        if let (Fill::Zero, Some(from), Some(to)) = (q.fill, q.from, q.to) {
            fill_zero(&mut merged, q, tz, from, to)?;
        }
        merged
            .into_iter()
            .map(|((start, group), (end, state))| output_bucket(q, tz, (start, end), &group, &state))
            .collect()
    }

    /// The `n` groups with the largest `by` aggregation over the query's whole range (e.g. top
    /// carriers by sum), largest first, ties by group values. Each row spans the range covered.
    ///
    /// # Errors
    /// As [`Engine::query`]; [`ErrorKind::InvalidQuery`] for `by` = a unique count the query does
    /// not request.
    pub fn top_n(&self, q: &Query, by: &Aggregation, n: usize) -> Result<Vec<Bucket>> {
        let mut inner = self.lock();
        let merged = Self::answer(&mut inner, q)?;
        let tz = parse_time_zone(&q.time_zone)?;
        let mut groups: BTreeMap<Vec<Option<String>>, (i64, i64, BucketState)> = BTreeMap::new();
        for ((start, group), (end, state)) in merged {
            let e = groups.entry(group).or_insert((start, end, BucketState::default()));
            e.0 = e.0.min(start);
            e.1 = e.1.max(end);
            e.2.merge(&state)?;
        }
        let mut rows = groups
            .into_iter()
            .map(|(group, (start, end, state))| output_bucket(q, tz, (start, end), &group, &state))
            .collect::<Result<Vec<_>>>()?;
        let key = |b: &Bucket| -> Result<Option<Decimal>> {
            Ok(match by {
                Aggregation::Sum => Some(b.sum),
                Aggregation::Count => Some(Decimal::from(b.count)),
                Aggregation::Min => b.min,
                Aggregation::Max => b.max,
                Aggregation::Mean => b.mean,
                Aggregation::Latest => b.latest,
                Aggregation::UniqueCount(d) => Some(Decimal::from(*b.unique.get(d).ok_or_else(|| {
                    Error::new(ErrorKind::InvalidQuery, format!("The query does not count distinct '{d}'."))
                })?)),
            })
        };
        let mut keyed = rows.drain(..).map(|b| Ok((key(&b)?, b))).collect::<Result<Vec<_>>>()?;
        crate::order::sort_by(&mut keyed, |(ka, a), (kb, b)| {
            kb.cmp(ka).then_with(|| a.group.cmp(&b.group)).then_with(|| a.subject.cmp(&b.subject))
        });
        Ok(keyed.into_iter().take(n).map(|(_, b)| b).collect())
    }

    /// Totals of `metric` for the `window` (e.g. month in a zone) containing `at` and for the
    /// window before it, with the change in percent — what a KPI card shows.
    ///
    /// # Errors
    /// As [`Engine::query`].
    pub fn totals(
        &self,
        tenant: &str,
        metric: &str,
        window: Window,
        time_zone: &str,
        at: DateTime<Utc>,
    ) -> Result<Totals> {
        let tz = parse_time_zone(time_zone)?;
        let (start, end) = window.span(at, tz)?;
        let before = start
            .checked_sub_signed(Duration::seconds(1))
            .ok_or_else(|| Error::new(ErrorKind::InvalidWindow, "The period before is out of range."))?;
        let (prev_start, _) = window.span(before, tz)?;
        let q = Query::new(tenant, metric, window, time_zone).range(prev_start, end).fill(Fill::Zero);
        let rows = self.query(&q)?;
        let [previous, current] = <[Bucket; 2]>::try_from(rows)
            .map_err(|_| Error::new(ErrorKind::InvalidQuery, "Totals expected exactly two windows."))?;
        let change_percent = if previous.sum.is_zero() {
            None
        } else {
            let change = current
                .sum
                .checked_sub(previous.sum)
                .and_then(|d| d.checked_mul(Decimal::ONE_HUNDRED))
                .and_then(|d| d.checked_div(previous.sum))
                .ok_or_else(|| Error::overflow("The change between the two periods"))?;
            Some(change.round_dp(2).normalize())
        };
        Ok(Totals { current, previous, change_percent })
    }

    /// Close every window of `tenant` that ended at or before `now - allowed_lateness`: emits
    /// `WindowClosed` once per bucket (never again for the same bucket) and returns how many were
    /// closed. Records that arrive later still update their bucket and raise `LateRecord`.
    ///
    /// # Errors
    /// [`ErrorKind::Store`].
    pub fn close_windows(&self, tenant: &str, now: DateTime<Utc>, allowed_lateness: Duration) -> Result<usize> {
        let events =
            Self::write_call(&mut self.lock(), |inner| Self::close_windows_once(inner, tenant, now, allowed_lateness))?;
        self.emit(&events);
        Ok(events.len())
    }

    fn close_windows_once(
        inner: &mut Inner,
        tenant: &str,
        now: DateTime<Utc>,
        allowed_lateness: Duration,
    ) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        {
            let cutoff = now
                .checked_sub_signed(allowed_lateness)
                .ok_or_else(|| Error::new(ErrorKind::InvalidQuery, "now - allowed_lateness is out of range."))?
                .timestamp();
            let open = inner.store.open_buckets_until(tenant, cutoff)?;
            let keys: Vec<BucketKey> = open.iter().map(|b| b.key.clone()).collect();
            for StoredBucket { key, end, state, .. } in &open {
                let spec = &spec_entry(&inner.specs, key.spec)?.spec;
                events.push(Event::WindowClosed {
                    tenant: tenant.to_string(),
                    window: spec.window.to_string(),
                    bucket: to_bucket(spec, key, *end, state)?,
                });
            }
            inner.store.mark_closed(&keys)?;
            let previous = inner.store.meta(tenant, CLOSED_UNTIL)?.and_then(|v| v.parse::<i64>().ok());
            if previous.is_none_or(|p| p < cutoff) {
                let meta = vec![(tenant.to_string(), CLOSED_UNTIL.to_string(), Some(cutoff.to_string()))];
                inner.store.apply(&ChangeSet { meta, ..ChangeSet::default() })?;
            }
        }
        Ok(events)
    }

    /// The windows of `q` by (start, group): from the stored buckets of a spec that covers the
    /// query, or — when none does — from the stored records of the query's range, creating
    /// nothing.
    #[allow(clippy::type_complexity)]
    fn answer(inner: &mut Inner, q: &Query) -> Result<BTreeMap<(i64, Vec<Option<String>>), (i64, BucketState)>> {
        let (spec_id, tz) = Self::spec_for(inner, q)?;
        match spec_id {
            Some(id) => {
                Self::check_overflowed(inner, &q.tenant, id)?;
                Self::collect(inner, id, q, tz)
            }
            None => Self::collect_records(inner, q, tz),
        }
    }

    /// The maintained spec answering `q` (of every tenant, or the query tenant's own) with the
    /// fewest dimensions, if any covers it; and the query's zone.
    fn spec_for(inner: &Inner, q: &Query) -> Result<(Option<u32>, Tz)> {
        let tz = parse_time_zone(&q.time_zone)?;
        q.window.check()?;
        if let (Some(f), Some(t)) = (q.from, q.to) {
            if t < f {
                return Err(Error::new(
                    ErrorKind::InvalidQuery,
                    format!("to ({}) is before from ({}).", fmt_ts(t), fmt_ts(f)),
                )
                .with_field("to"));
            }
        }
        for (i, d) in q.group_by.iter().enumerate() {
            if q.group_by[..i].contains(d) {
                return Err(Error::new(ErrorKind::InvalidQuery, format!("The dimension '{d}' is grouped twice."))
                    .with_field("group_by"));
            }
        }
        let needed = q.needed_dims();
        let best = live_specs(&inner.specs)
            .filter(|(_, s)| {
                s.applies_to(&q.tenant)
                    && s.metric == q.metric
                    && s.window == q.window
                    && s.time_zone == q.time_zone
                    && needed.iter().all(|d| s.group_by.contains(d))
                    && q.unique.iter().all(|d| s.unique_dims().any(|u| u == d))
            })
            .min_by_key(|(_, s)| (s.group_by.len(), s.aggregations.len()))
            .map(|(i, _)| i);
        Ok((best, tz))
    }

    /// The spec an unplanned query would need (`add_spec` it to answer such queries from
    /// buckets): `q`'s metric, window and zone, grouped by the dimensions it filters and groups
    /// by, counting its unique dimensions; of every tenant.
    ///
    /// # Errors
    /// As [`RollupSpec::new`].
    pub fn spec_for_query(q: &Query) -> Result<RollupSpec> {
        let mut spec = RollupSpec::new(q.metric.clone(), q.window, &q.time_zone)?.group_by(q.needed_dims());
        for d in &q.unique {
            spec = spec.with(Aggregation::UniqueCount(d.clone()));
        }
        Ok(spec)
    }

    /// `q` answered from the stored records of its range (no spec covers it): they are rolled
    /// up in memory under [`Engine::spec_for_query`], then filtered and re-grouped like stored
    /// buckets. Costs O(records of the tenant's metric in the range); nothing is stored.
    #[allow(clippy::type_complexity)]
    fn collect_records(
        inner: &Inner,
        q: &Query,
        tz: Tz,
    ) -> Result<BTreeMap<(i64, Vec<Option<String>>), (i64, BucketState)>> {
        let spec = Self::spec_for_query(q)?;
        let (from, to) = Self::bucket_range(q, tz)?;
        // The records of every window starting in [from, to): up to the end of the last one.
        let until = if to == i64::MAX || to <= from { to } else { q.window.span_secs(to - 1, tz)?.1 };
        let mut acc = Accumulator::with_ids(&q.tenant, std::iter::once((0, &spec)))?;
        for r in inner.store.records(&q.tenant, &q.metric, q.subject.as_deref(), from, until.max(from))? {
            if let Err(e) = acc.add(&r) {
                return Err(if e.kind() == ErrorKind::Overflow { query_overflow(&spec, &r) } else { e });
            }
        }
        let buckets = acc.into_buckets().into_iter().map(|(key, end, state)| (key.start, key.group, end, state));
        regroup(&spec, q, buckets)
    }

    /// The window starts `[from, to)` of `q`'s buckets (Unix seconds).
    fn bucket_range(q: &Query, tz: Tz) -> Result<(i64, i64)> {
        let from = match q.from {
            Some(f) => q.window.span_secs(f.timestamp(), tz)?.0,
            None => i64::MIN,
        };
        Ok((from, q.to.map_or(i64::MAX, ceil_secs)))
    }

    /// The spec's buckets in the query's range, filtered and re-grouped by the query.
    #[allow(clippy::type_complexity)]
    fn collect(
        inner: &Inner,
        spec_id: u32,
        q: &Query,
        tz: Tz,
    ) -> Result<BTreeMap<(i64, Vec<Option<String>>), (i64, BucketState)>> {
        let spec = &spec_entry(&inner.specs, spec_id)?.spec;
        let (from, to) = Self::bucket_range(q, tz)?;
        let stored = inner.store.buckets(&q.tenant, spec_id, from, to)?;
        regroup(spec, q, stored.into_iter().map(|b| (b.key.start, b.key.group, b.end, b.state)))
    }

    /// Bill `req`'s scope — `req.subject`, the set `req.subjects`, or (neither) every subject of
    /// the tenant, then `req.filter` — with `tariff` from the stored records of `req.metric` (and
    /// of every metric a charge names) in the period; see [`Tariff::bill`]. One subject or a set
    /// is read through the store's subject index (O(records of those subjects)); the whole
    /// tenant reads the tenant's records of the metric in the period.
    ///
    /// # Errors
    /// As [`Tariff::bill`]; [`ErrorKind::InvalidQuery`] for both `subject` and `subjects`;
    /// [`ErrorKind::Store`].
    pub fn bill(&self, tariff: &Tariff, req: &BillRequest) -> Result<Bill> {
        req.check()?;
        let scope: Vec<Option<&str>> = if req.subjects.is_empty() {
            vec![(!req.subject.is_empty()).then_some(req.subject.as_str())]
        } else {
            // `extend`, not `collect`: a collected set sorts through a stable-sort copy of its own.
            let mut set = std::collections::BTreeSet::new();
            set.extend(req.subjects.iter().map(String::as_str));
            set.into_iter().map(Some).collect()
        };
        let mut records = Vec::new();
        for m in tariff.metrics(&req.metric) {
            for subject in &scope {
                records.extend(self.records(&req.tenant, &m, *subject, req.period_start, req.period_end)?);
            }
        }
        tariff.bill(req, &records)
    }

    /// Check `quota` after every ingest (see [`Quota`]); replaces a registered quota of the same
    /// tenant and id. A units quota adds its rollup spec ([`Quota::spec`]: the tenant's own,
    /// backfilled once from the tenant's stored records of its metric; an equal spec is reused),
    /// from which each check reads the period's usage in one bucket read.
    ///
    /// # Errors
    /// The errors of [`Quota::check`]; as [`Engine::add_spec`] for the quota's spec.
    pub fn add_quota(&self, quota: Quota) -> Result<()> {
        quota.check()?;
        let spec = match quota.tariff {
            Some(_) => None,
            None => Some(self.quota_spec(&quota)?),
        };
        let mut quotas = self.quotas.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        quotas.retain(|e| (e.quota.tenant.as_str(), e.quota.id.as_str()) != (quota.tenant.as_str(), quota.id.as_str()));
        quotas.push(QuotaEntry { quota, spec });
        Ok(())
    }

    /// The id of the spec maintaining `quota`'s usage: an equal spec of every tenant when one is
    /// maintained (a store written before quota specs were the tenant's own), else the tenant's
    /// own [`Quota::spec`], added (and backfilled from the tenant's records) if new.
    fn quota_spec(&self, quota: &Quota) -> Result<u32> {
        let own = quota.spec()?;
        let shared = RollupSpec { tenant: None, ..own.clone() };
        if let Some((id, _)) = live_specs(&self.lock().specs).find(|(_, s)| **s == shared) {
            return Ok(id);
        }
        self.add_spec(own)
    }

    /// `ThresholdCrossed` events for the quota periods `batch` touches (see
    /// [`quota::threshold_events`](crate::quota)); never fails the ingest.
    fn quota_events(&self, batch: &[UsageRecord]) -> Vec<Event> {
        let quotas = self.quotas.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if quotas.is_empty() {
            return Vec::new();
        }
        crate::quota::threshold_events(self.lock().store.as_mut(), &quotas, batch)
    }

    /// Issue `invoice` at `at` and store it (metadata `invoice/{id}` of the bill's tenant);
    /// emits `BillIssued`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidTransition`] unless it is a draft; [`ErrorKind::Conflict`] when an
    /// invoice with its id is stored; [`ErrorKind::Store`].
    pub fn issue_invoice(&self, invoice: &mut Invoice, at: DateTime<Utc>) -> Result<()> {
        let event = crate::invoice::issue_stored(self.lock().store.as_mut(), invoice, at)?;
        self.emit(&[event]);
        Ok(())
    }

    /// The stored invoices of `tenant`, by id.
    ///
    /// # Errors
    /// [`ErrorKind::Store`], also for a stored invoice that no longer reads.
    pub fn invoices(&self, tenant: &str) -> Result<Vec<Invoice>> {
        crate::invoice::load_all(self.lock().store.as_ref(), tenant)
    }

    /// Apply `change` (e.g. `|i| i.pay(at)`) to the stored invoice `id` of `tenant` and store it.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`]; the error of `change` (e.g. [`ErrorKind::InvalidTransition`]),
    /// in which case nothing is stored; [`ErrorKind::Store`].
    pub fn update_invoice(
        &self,
        tenant: &str,
        id: &str,
        change: impl FnOnce(&mut Invoice) -> Result<()>,
    ) -> Result<Invoice> {
        crate::invoice::update_stored(self.lock().store.as_mut(), tenant, id, change)
    }

    /// The stored invoices of `tenant` whose payment reminder is due at `now` (issued, unpaid,
    /// due within `days_before` days; see [`Invoice::reminder_due`]).
    ///
    /// # Errors
    /// As [`Engine::invoices`].
    pub fn reminders_due(&self, tenant: &str, now: DateTime<Utc>, days_before: u32) -> Result<Vec<Invoice>> {
        Ok(self.invoices(tenant)?.into_iter().filter(|i| i.reminder_due(now, days_before)).collect())
    }

    /// Mark every issued invoice of `tenant` whose due date is before `now` overdue, store it
    /// and emit `InvoiceOverdue` for it (once: an overdue invoice is not issued any more).
    /// Returns the invoices that became overdue.
    ///
    /// # Errors
    /// [`ErrorKind::Store`].
    pub fn mark_overdue(&self, tenant: &str, now: DateTime<Utc>) -> Result<Vec<Invoice>> {
        let (changed, events) = crate::invoice::mark_overdue_stored(self.lock().store.as_mut(), tenant, now)?;
        self.emit(&events);
        Ok(changed)
    }
}

/// The spec with id `id`; a store that references an unknown spec is corrupt, not a panic.
fn spec_entry(specs: &[SpecEntry], id: u32) -> Result<&SpecEntry> {
    specs.get(id as usize).ok_or_else(|| {
        Error::new(ErrorKind::Store, format!("The store references rollup spec {id}, which it does not hold."))
    })
}

/// The notifier event of an alert change.
/// What one ingest attempt gives: the report, its events, and (batch index, findings range) of
/// every validated record.
type IngestOutcome = (IngestReport, Vec<Event>, Vec<(usize, std::ops::Range<usize>)>);

fn alert_event(e: crate::vee::alert::AlertEvent) -> Event {
    match e {
        crate::vee::alert::AlertEvent::Raised(alert) => Event::AlertRaised { alert },
        crate::vee::alert::AlertEvent::Resolved(alert) => Event::AlertResolved { alert },
    }
}

/// Run the validator on one new record: its findings go to `findings` (and warnings and errors to
/// `events`); a `reject` finding becomes the error; a `flag` finding marks a copy `flagged`.
fn validate_one<'r>(
    v: &mut Validator,
    r: &'r UsageRecord,
    findings: &mut Vec<Finding>,
    events: &mut Vec<Event>,
    index: usize,
    validated: &mut Vec<(usize, std::ops::Range<usize>)>,
) -> Result<std::borrow::Cow<'r, UsageRecord>> {
    let found = v.check(r);
    validated.push((index, findings.len()..findings.len() + found.len()));
    let reject = found.iter().find(|f| f.action == Action::Reject).map(|f| f.message.clone());
    let flag = found.iter().any(|f| f.action == Action::Flag);
    for f in &found {
        if f.is_alert() {
            events.push(Event::AnomalyDetected { finding: f.clone() });
        }
    }
    findings.extend(found);
    if let Some(message) = reject {
        return Err(Error::new(ErrorKind::Validation, message).with_record_id(r.id.clone()));
    }
    if flag && r.quality == Quality::Actual {
        return Ok(std::borrow::Cow::Owned(r.clone().with_quality(Quality::Flagged)));
    }
    Ok(std::borrow::Cow::Borrowed(r))
}

fn conflict(r: &UsageRecord) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!("Record '{}' of tenant '{}' was already ingested with different content.", r.id, r.tenant),
    )
    .with_record_id(r.id.clone())
}

/// Seconds of `t`, rounded up (an exclusive bound with a fraction covers its whole second).
fn ceil_secs(t: DateTime<Utc>) -> i64 {
    t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
}

/// Buckets of `spec` — `(start, group, end, state)` — filtered by `q` and re-grouped by its
/// `group_by`, keyed by (start, group values).
#[allow(clippy::type_complexity)]
fn regroup(
    spec: &RollupSpec,
    q: &Query,
    buckets: impl Iterator<Item = (i64, Vec<Option<String>>, i64, BucketState)>,
) -> Result<BTreeMap<(i64, Vec<Option<String>>), (i64, BucketState)>> {
    let pos = |d: &str| spec.group_by.iter().position(|g| g == d);
    let mut filters: Vec<(usize, &str)> = Vec::new();
    if let Some(s) = &q.subject {
        filters.push((pos(SUBJECT).unwrap_or(usize::MAX), s));
    }
    for (d, v) in &q.filters {
        filters.push((pos(d).unwrap_or(usize::MAX), v));
    }
    let out_pos: Vec<usize> = q.group_by.iter().map(|d| pos(d).unwrap_or(usize::MAX)).collect();
    let mut merged: BTreeMap<(i64, Vec<Option<String>>), (i64, BucketState)> = BTreeMap::new();
    for (start, key_group, end, mut state) in buckets {
        let value = |p: usize| key_group.get(p).cloned().flatten();
        if !filters.iter().all(|(p, v)| value(*p).as_deref() == Some(*v)) {
            continue;
        }
        let group: Vec<Option<String>> = out_pos.iter().map(|&p| value(p)).collect();
        state.uniques.retain(|d, _| q.unique.contains(d));
        match merged.entry((start, group)) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert((end, state));
            }
            std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().1.merge(&state)?,
        }
    }
    Ok(merged)
}

/// The error of an unplanned query whose records overflow a window's sum, at record `r`.
fn query_overflow(spec: &RollupSpec, r: &UsageRecord) -> Error {
    Error::new(
        ErrorKind::Overflow,
        format!(
            "The rollup of '{}' by {} in {} overflows the 96-bit decimal range for tenant '{}' at record '{}'.",
            spec.metric, spec.window, spec.time_zone, r.tenant, r.id
        ),
    )
    .with_record_id(r.id.clone())
}

/// A query result row for group values in the query's `group_by` order, labelled in the
/// query's zone `tz`.
fn output_bucket(
    q: &Query,
    tz: Tz,
    window: (i64, i64),
    group: &[Option<String>],
    state: &BucketState,
) -> Result<Bucket> {
    let unique = q.unique.iter().map(String::as_str);
    Bucket::grouped(window, tz, q.subject.clone(), q.group_by.iter().zip(group), &q.metric, state, unique)
}

/// A stored bucket as a result row, grouped as its spec.
fn to_bucket(spec: &RollupSpec, key: &BucketKey, end: i64, state: &BucketState) -> Result<Bucket> {
    Bucket::of_key(spec, key, end, state)
}

/// Add the empty windows of `[from, to)` to `merged`, one per window and group of the result.
/// The rows are counted first: more than [`MAX_FILLED_WINDOWS`] windows or [`MAX_FILLED_ROWS`]
/// rows (windows × groups) are refused before anything is allocated.
#[allow(clippy::type_complexity)]
fn fill_zero(
    merged: &mut BTreeMap<(i64, Vec<Option<String>>), (i64, BucketState)>,
    q: &Query,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<()> {
    let first = q.window.span_secs(from.timestamp(), tz)?.0;
    let to = ceil_secs(to);
    let mut windows = 0usize;
    let mut start = first;
    while start < to {
        windows = windows.saturating_add(1);
        if windows > MAX_FILLED_WINDOWS {
            return Err(Error::new(
                ErrorKind::InvalidQuery,
                format!("fill: zero would produce more than {MAX_FILLED_WINDOWS} windows."),
            )
            .with_field("fill"));
        }
        start = q.window.span_secs(start, tz)?.1;
    }
    let groups: Vec<Vec<Option<String>>> = if q.group_by.is_empty() {
        vec![Vec::new()]
    } else {
        // `extend`, not `collect`: a collected set sorts through a stable-sort copy of its own.
        let mut set: std::collections::BTreeSet<&Vec<Option<String>>> = std::collections::BTreeSet::new();
        set.extend(merged.keys().map(|(_, g)| g));
        set.into_iter().cloned().collect()
    };
    let rows = windows.saturating_mul(groups.len());
    if rows > MAX_FILLED_ROWS {
        return Err(Error::new(
            ErrorKind::InvalidQuery,
            format!(
                "fill: zero would produce {rows} rows ({windows} windows × {} groups), more than {MAX_FILLED_ROWS}; \
                 narrow the range, the window or the grouping.",
                groups.len()
            ),
        )
        .with_field("fill"));
    }
    let mut start = first;
    while start < to {
        let end = q.window.span_secs(start, tz)?.1;
        for g in &groups {
            merged.entry((start, g.clone())).or_insert_with(|| (end, BucketState::default()));
        }
        start = end;
    }
    Ok(())
}

/// The stored form of a backfill overflow error: `record id` TAB `message`.
fn overflow_mark(e: &Error) -> String {
    format!("{}\t{}", e.record_id().unwrap_or_default(), e.message())
}

/// The error a stored overflow mark stands for.
fn from_overflow_mark(mark: &str) -> Error {
    let (id, message) = mark.split_once('\t').unwrap_or(("", mark));
    let e = Error::new(ErrorKind::Overflow, message);
    if id.is_empty() {
        e
    } else {
        e.with_record_id(id)
    }
}

/// The error marking a tenant whose records overflow a bucket of `spec`, at record `r`.
fn backfill_overflow(spec: &RollupSpec, r: &UsageRecord) -> Error {
    Error::new(
        ErrorKind::Overflow,
        format!(
            "The rollup of '{}' by {} in {} overflows the 96-bit decimal range for tenant '{}' at record '{}' \
             (stored before any rollup covered it); retract that record to repair the rollup.",
            spec.metric, spec.window, spec.time_zone, r.tenant, r.id
        ),
    )
    .with_record_id(r.id.clone())
}

/// The careful pass of an ingest whose batch overflowed a bucket: each new record is checked
/// against the stored state of every bucket it adds to (plus the records admitted before it),
/// and one that would overflow a sum is turned away alone.
struct OverflowGuard<'s> {
    specs: Vec<(u32, &'s RollupSpec)>,
    /// `[sum, flagged_sum, estimated_sum]` per bucket: stored plus admitted so far.
    sums: HashMap<BucketKey, [Decimal; 3]>,
}

impl<'s> OverflowGuard<'s> {
    fn new(specs: &'s [SpecEntry]) -> Self {
        OverflowGuard { specs: live_specs(specs).collect(), sums: HashMap::new() }
    }

    /// `None` when `r` fits (and is counted), else the error rejecting it.
    fn admit(&mut self, store: &dyn Store, r: &UsageRecord) -> Result<Option<Error>> {
        let mut one = Accumulator::with_ids(&r.tenant, self.specs.iter().copied())?;
        one.add(r)?;
        let mut next = Vec::new();
        for (key, _, delta) in one.into_buckets() {
            let base = match self.sums.get(&key) {
                Some(s) => *s,
                None => store
                    .bucket(&key)?
                    .map_or([Decimal::ZERO; 3], |b| [b.state.sum, b.state.flagged_sum, b.state.estimated_sum]),
            };
            let sums = [
                crate::decimal::exact_add(base[0], delta.sum),
                crate::decimal::exact_add(base[1], delta.flagged_sum),
                crate::decimal::exact_add(base[2], delta.estimated_sum),
            ];
            let [Some(a), Some(b), Some(c)] = sums else {
                let spec = self.specs.iter().find(|(id, _)| *id == key.spec).map(|(_, s)| *s);
                let what = spec.map_or_else(String::new, |s| format!(" by {} in {}", s.window, s.time_zone));
                let start = DateTime::from_timestamp(key.start, 0).map_or_else(|| key.start.to_string(), fmt_ts);
                return Ok(Some(
                    Error::new(
                        ErrorKind::Overflow,
                        format!(
                            "Record '{}' would make the rollup sum of '{}'{what} (window from {start}) of tenant '{}' \
                             overflow the 96-bit decimal range; it was not stored.",
                            r.id, r.metric, r.tenant
                        ),
                    )
                    .with_record_id(r.id.clone())
                    .with_field("quantity"),
                ));
            };
            next.push((key, [a, b, c]));
        }
        self.sums.extend(next);
        Ok(None)
    }
}
