//! The `Engine` object (the core's engine over an in-memory store or a local SQLite file), the
//! foreign-implemented `Notifier`, and the upload queue (the core's outbox: `Engine::outbox_*`,
//! see `meterkit::outbox` for its markers, retention and count).
//!
//! A server receiving the same batch twice counts it once: ingest is idempotent by
//! `(tenant, id)` (`import_json`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use meterkit::{Decimal, RollupSpec, Store};

use crate::error::{signed, unsigned, MeterkitError};
use crate::field::{Tariff, ValidationConfig};
use crate::types::{
    buckets_from_core, from_system, records_to_core, to_system, Alert, Bill, BillRequest, Bucket, Finding,
    IngestReport, Query, Quota, Timestamp, Totals, UsageRecord,
};

/// Pending records exported for upload ([`Engine::export_pending`]).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingExport {
    /// The ids of the records in `json`, in the same order.
    pub ids: Vec<String>,
    /// The records as the core's JSON array (the upload body).
    pub json: String,
}

/// What happened to a reading (the core's `ReadingStatus`).
#[uniffi::remote(Enum)]
pub enum ReadingStatus {
    /// Stored; its consumption (if any) is billed as is (or as estimated).
    Accepted,
    /// Stored and the new baseline; its consumption is stored with quality `flagged` for review.
    Flagged,
    /// Not used: kept for audit only; the meter's baseline is unchanged.
    Rejected,
}

pub use meterkit::reading::check::ReadingStatus;

/// The outcome of [`Engine::record_reading`] and [`Engine::check_reading`] (the core's
/// `ReadingOutcome`, derived with `uniffi::remote`); [`reading_outcome_to_json`] gives the core's
/// JSON of it (an upload body or a log line).
#[uniffi::remote(Record)]
pub struct ReadingOutcome {
    /// The meter.
    pub meter: String,
    /// When it was read.
    pub timestamp: Timestamp,
    /// The register value read.
    pub reading: Decimal,
    /// The decision.
    pub status: ReadingStatus,
    /// Consumption since the previous reading (metric units), if any.
    pub consumption: Option<Decimal>,
    /// Findings, most decisive first.
    pub findings: Vec<Finding>,
    /// The consumption records stored (one per day; empty for a resent reading).
    pub records: Vec<UsageRecord>,
}

pub use meterkit::reading::check::ReadingOutcome;

/// The outcome of [`Engine::track_counters`]: the ingest report of the deltas, the deltas as
/// dated, and the tracker's findings (`rollover`, `meter_exchange`, `duplicate_reading`,
/// `out_of_order_reading`, `invalid_reading`) in reading order.
#[derive(uniffi::Record)]
pub struct CounterOutcome {
    /// The ingest of the deltas.
    pub report: IngestReport,
    /// The delta records.
    pub records: Vec<UsageRecord>,
    /// The tracker's findings.
    pub findings: Vec<Finding>,
}

/// A reading outcome as the core's JSON (`{"meter","timestamp","reading","status",
/// "consumption","findings","records"}`). Errors: none in practice (`Internal` if serialisation
/// fails).
#[uniffi::export]
pub fn reading_outcome_to_json(outcome: ReadingOutcome) -> Result<String, MeterkitError> {
    crate::types::to_json(&outcome)
}

// ---------------------------------------------------------------------------------------------
// Notifier

/// Receives the engine's events; implemented in Kotlin or Swift. Called after the change is
/// stored, on the thread that made the call. An exception thrown by `notify` never reaches the
/// engine: it is counted (`Engine.notifier_failures`) and the call that emitted the event
/// succeeds.
#[uniffi::export(with_foreign)]
pub trait Notifier: Send + Sync {
    /// Handle one event. Errors: any; they are counted and otherwise ignored.
    fn notify(&self, event: MobileEvent) -> Result<(), MeterkitError>;
}

/// An engine event (the core's `Event`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
#[allow(missing_docs)] // one-to-one with the core's documented `Event`
pub enum MobileEvent {
    /// A record of an ingest batch was rejected (`kind`: `invalid_record`, `conflict`, …).
    RecordRejected { tenant: String, id: String, kind: String, reason: String },
    /// A record landed in a closed window; its bucket was updated.
    LateRecord { tenant: String, id: String, window: String, bucket: Bucket },
    /// Validation raised a warning or error about a new record.
    AnomalyDetected { finding: Finding },
    /// Findings on one series opened an alert.
    AlertRaised { alert: Alert },
    /// An alert ended (the whole alert).
    AlertResolved { alert: Alert },
    /// A window closed (once per bucket).
    WindowClosed { tenant: String, window: String, bucket: Bucket },
    /// A quota level was reached.
    ThresholdCrossed {
        tenant: String,
        quota: String,
        subject: String,
        metric: String,
        period_start: SystemTime,
        period_end: SystemTime,
        level: Decimal,
        used: Decimal,
        limit: Decimal,
    },
    /// An invoice was issued.
    BillIssued {
        tenant: String,
        invoice: String,
        subject: String,
        currency: String,
        total: Decimal,
        due_at: SystemTime,
    },
    /// An invoice passed its due date unpaid.
    InvoiceOverdue { tenant: String, invoice: String, subject: String, total: Decimal, due_at: SystemTime },
    /// An event kind newer than this binding, as the core's JSON.
    Other { json: String },
}

fn event_from_core(e: &meterkit::Event) -> MobileEvent {
    use meterkit::Event as E;
    match e.clone() {
        E::RecordRejected { tenant, id, kind, reason } => {
            MobileEvent::RecordRejected { tenant, id, kind: crate::types::kind_name(kind), reason }
        }
        E::LateRecord { tenant, id, window, bucket } => {
            MobileEvent::LateRecord { tenant, id, window, bucket: bucket.into() }
        }
        E::AnomalyDetected { finding } => MobileEvent::AnomalyDetected { finding },
        E::AlertRaised { alert } => MobileEvent::AlertRaised { alert: Alert::from_core(alert) },
        E::AlertResolved { alert } => MobileEvent::AlertResolved { alert: Alert::from_core(alert) },
        E::WindowClosed { tenant, window, bucket } => {
            MobileEvent::WindowClosed { tenant, window, bucket: bucket.into() }
        }
        E::ThresholdCrossed { tenant, quota, subject, metric, period_start, period_end, level, used, limit } => {
            MobileEvent::ThresholdCrossed {
                tenant,
                quota,
                subject,
                metric,
                period_start: to_system(period_start),
                period_end: to_system(period_end),
                level,
                used,
                limit,
            }
        }
        E::BillIssued { tenant, invoice, subject, currency, total, due_at } => {
            MobileEvent::BillIssued { tenant, invoice, subject, currency, total, due_at: to_system(due_at) }
        }
        E::InvoiceOverdue { tenant, invoice, subject, total, due_at } => {
            MobileEvent::InvoiceOverdue { tenant, invoice, subject, total, due_at: to_system(due_at) }
        }
        _ => MobileEvent::Other { json: serde_json::to_string(e).unwrap_or_default() },
    }
}

/// Adapts a host `Notifier` to the core's: converts the event, calls the host, and counts (never
/// propagates) a failure — an exception, or a panic while converting.
struct HostNotifier {
    host: Arc<dyn Notifier>,
    failures: Arc<AtomicU64>,
}

impl meterkit::Notifier for HostNotifier {
    fn notify(&self, event: &meterkit::Event) {
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.host.notify(event_from_core(event))));
        if !matches!(call, Ok(Ok(()))) {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Engine

/// Usage records in columns (the fast path for big batches): one tenant and metric; row `i` is
/// the record with the `i`-th line of `ids`, of subject `subject_values[subject_codes[i]]`, with
/// quantity `mantissas[i] × 10^-scale` at `timestamps[i]` (Unix **seconds**, UTC).
///
/// The ids are one string column (ids joined by `\n`) rather than a list of strings: a list
/// costs one string conversion per row on the host side, one string crosses as one buffer. A
/// batch whose ids contain a line break goes through `Engine.ingest` instead.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecordColumns {
    /// Tenant of every row.
    pub tenant: String,
    /// Metric of every row.
    pub metric: String,
    /// Record ids, one per row, joined by `\n` (no trailing line break).
    pub ids: String,
    /// Distinct subjects.
    pub subject_values: Vec<String>,
    /// Per row: an index into `subject_values` (0-based).
    pub subject_codes: Vec<i32>,
    /// Per row: the quantity's integer mantissa.
    pub mantissas: Vec<i64>,
    /// Decimal places of every quantity (0–28): `1500` with scale 3 is `1.5`.
    pub scale: i32,
    /// Per row: the timestamp in Unix seconds.
    pub timestamps: Vec<i64>,
}

impl RecordColumns {
    /// The rows as core records. Errors: `InvalidRecord` for columns of different lengths, a
    /// subject code out of range, a scale above 28 or a timestamp out of range.
    pub(crate) fn into_core(self) -> Result<Vec<meterkit::UsageRecord>, MeterkitError> {
        let n = self.mantissas.len();
        let bad = |m: &str| -> MeterkitError { meterkit::Error::new(meterkit::ErrorKind::InvalidRecord, m).into() };
        let ids: Vec<&str> = if n == 0 && self.ids.is_empty() { Vec::new() } else { self.ids.split('\n').collect() };
        if self.subject_codes.len() != n || ids.len() != n || self.timestamps.len() != n {
            return Err(bad("Every column must have one value per row (ids: one line per row)."));
        }
        let scale = match u32::try_from(self.scale) {
            Ok(s) if s <= 28 => s,
            _ => return Err(bad("The scale must be 0–28.")),
        };
        let mut out = Vec::with_capacity(n);
        let columns = ids.into_iter().zip(self.subject_codes).zip(self.mantissas).zip(self.timestamps);
        for (((id, code), mantissa), ts) in columns {
            let subject = usize::try_from(code)
                .ok()
                .and_then(|c| self.subject_values.get(c))
                .ok_or_else(|| bad("A subject code is out of range."))?;
            let timestamp =
                chrono::DateTime::from_timestamp(ts, 0).ok_or_else(|| bad("A timestamp is out of range."))?;
            out.push(meterkit::UsageRecord::new(
                self.tenant.clone(),
                id,
                subject.clone(),
                self.metric.clone(),
                Decimal::new(mantissa, scale),
                timestamp,
            ));
        }
        Ok(out)
    }
}

/// [`RecordColumns`] with the numeric columns packed as little-endian bytes (Kotlin `ByteArray`
/// filled through a `ByteBuffer` in `LITTLE_ENDIAN` order, Swift `Data`/`[UInt8]`): a byte
/// array crosses the boundary as one copy, where a `List<Long>` is written value by value.
/// The fastest way to move a big batch.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PackedColumns {
    /// Tenant of every row.
    pub tenant: String,
    /// Metric of every row.
    pub metric: String,
    /// Record ids, one per row, joined by `\n`.
    pub ids: String,
    /// Distinct subjects.
    pub subject_values: Vec<String>,
    /// Per row: an `i32` index into `subject_values`, 4 bytes little-endian.
    pub subject_codes: Vec<u8>,
    /// Per row: the quantity's `i64` mantissa, 8 bytes little-endian.
    pub mantissas: Vec<u8>,
    /// Decimal places of every quantity (0–28).
    pub scale: i32,
    /// Per row: the `i64` timestamp in Unix seconds, 8 bytes little-endian.
    pub timestamps: Vec<u8>,
}

impl PackedColumns {
    /// Unpack into [`RecordColumns`]. Errors: `InvalidRecord` when a byte column's length is not a
    /// whole number of values.
    pub(crate) fn unpack(self) -> Result<RecordColumns, MeterkitError> {
        let bad = || -> MeterkitError {
            meterkit::Error::new(
                meterkit::ErrorKind::InvalidRecord,
                "A packed column's length is not a whole number of values.",
            )
            .into()
        };
        if !self.subject_codes.len().is_multiple_of(4)
            || !self.mantissas.len().is_multiple_of(8)
            || !self.timestamps.len().is_multiple_of(8)
        {
            return Err(bad());
        }
        let i64s = |b: &[u8]| -> Vec<i64> {
            b.chunks_exact(8).map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect()
        };
        Ok(RecordColumns {
            tenant: self.tenant,
            metric: self.metric,
            ids: self.ids,
            subject_values: self.subject_values,
            subject_codes: self
                .subject_codes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            mantissas: i64s(&self.mantissas),
            scale: self.scale,
            timestamps: i64s(&self.timestamps),
        })
    }
}

/// The metering engine (the core's `Engine`) over an in-memory store or a SQLite file on the
/// device. Thread-safe; every method may be called from any thread.
#[derive(uniffi::Object)]
pub struct Engine {
    /// The core's engine; `None` once closed. Each call clones the `Arc` under a short read lock
    /// and runs without the lock, so calls run concurrently and `close` never waits for one: a
    /// call in flight finishes on its clone, and the store is dropped when the last clone is.
    slot: RwLock<Option<Arc<meterkit::Engine>>>,
    notifier_failures: Arc<AtomicU64>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    fn build(store: Box<dyn Store>, notifier: Option<Arc<dyn Notifier>>) -> Result<Arc<Self>, MeterkitError> {
        let failures = Arc::new(AtomicU64::new(0));
        let mut inner = meterkit::Engine::new(store)?;
        if let Some(host) = notifier {
            inner = inner.with_notifier(Arc::new(HostNotifier { host, failures: failures.clone() }));
        }
        Ok(Arc::new(Engine { slot: RwLock::new(Some(Arc::new(inner))), notifier_failures: failures }))
    }

    /// The core's engine. Errors: `Closed` after [`Engine::close`].
    pub(crate) fn engine(&self) -> Result<Arc<meterkit::Engine>, MeterkitError> {
        let slot = self.slot.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.clone().ok_or_else(MeterkitError::closed)
    }
}

#[uniffi::export]
impl Engine {
    /// An engine over a fresh in-memory store (nothing persisted), with an optional notifier.
    /// Errors: none in practice (`Store` in theory).
    #[uniffi::constructor(default(notifier = None))]
    pub fn in_memory(notifier: Option<Arc<dyn Notifier>>) -> Result<Arc<Self>, MeterkitError> {
        Engine::build(Box::new(meterkit::MemoryStore::new()), notifier)
    }

    /// An engine over the SQLite file at `path` (created if missing; the same store as
    /// `meterkit-sqlite` everywhere; `:memory:` is a fresh in-memory store), opened by
    /// `meterkit_open::open_store`. Errors: `Store` when the file cannot be opened; `Parse` for a
    /// URL (this build has no PostgreSQL client).
    #[uniffi::constructor(default(notifier = None))]
    pub fn open(path: String, notifier: Option<Arc<dyn Notifier>>) -> Result<Arc<Self>, MeterkitError> {
        Engine::build(meterkit_open::open_store(&path)?, notifier)
    }

    /// Close the engine: drop its store now (a SQLite file is closed once a call still running on
    /// another thread returns). Every later call fails with `MeterkitException.Closed` /
    /// `MeterkitError.closed` (code `E_CLOSED`); closing twice is allowed. Swift calls this
    /// `close()`; in Kotlin `close()` (`AutoCloseable`, `use { }`) is uniffi's, which frees the
    /// object — later calls throw the same `MeterkitException.Closed` there too (see
    /// `scripts/generate-mobile`).
    pub fn close(&self) {
        self.slot.write().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }

    /// Add a rollup of `metric` by `window` (`day`, `minutes:15`, …) in `time_zone`, grouped by
    /// `group_by` (backfilled from stored records); returns its id. With `tenant`, the spec is
    /// that tenant's own (maintained for its records only). Queries never add a rollup: one no
    /// spec covers is answered from the stored records. Errors: `InvalidWindow`,
    /// `InvalidTimeZone`, `InvalidQuery` (an empty tenant), `Store`.
    #[uniffi::method(default(group_by = [], tenant = None))]
    pub fn add_spec(
        &self,
        metric: String,
        window: String,
        time_zone: String,
        group_by: Vec<String>,
        tenant: Option<String>,
    ) -> Result<i64, MeterkitError> {
        let spec = spec_of(metric, &window, &time_zone, group_by, tenant)?;
        Ok(i64::from(self.engine()?.add_spec(spec)?))
    }

    /// Stop maintaining the rollup named as in `addSpec` and delete its buckets; returns its id.
    /// Errors: `NotFound` when no such rollup is maintained, `Conflict` when a quota uses it,
    /// `InvalidWindow`, `InvalidTimeZone`, `Store`.
    #[uniffi::method(default(group_by = [], tenant = None))]
    pub fn remove_spec(
        &self,
        metric: String,
        window: String,
        time_zone: String,
        group_by: Vec<String>,
        tenant: Option<String>,
    ) -> Result<i64, MeterkitError> {
        let spec = spec_of(metric, &window, &time_zone, group_by, tenant)?;
        Ok(i64::from(self.engine()?.remove_spec(&spec)?))
    }

    /// Ingest a batch of records (idempotent by `(tenant, id)`): duplicates and conflicts are in
    /// the report, not errors. Errors: `Parse` for an instant out of range (nothing stored),
    /// `Store`.
    pub fn ingest(&self, records: Vec<UsageRecord>) -> Result<IngestReport, MeterkitError> {
        let batch = records_to_core(records)?;
        Ok(IngestReport::from_core(self.engine()?.ingest(&batch)?))
    }

    /// [`Engine::ingest`] for a named `source` (a sync job): also moves the source's watermark,
    /// per tenant, to the greatest timestamp stored or found stored, in the same atomic change.
    /// Errors: `InvalidQuery` (field `source`) for an empty source name; as [`Engine::ingest`].
    pub fn ingest_from(&self, source: String, records: Vec<UsageRecord>) -> Result<IngestReport, MeterkitError> {
        let batch = records_to_core(records)?;
        Ok(IngestReport::from_core(self.engine()?.ingest_from(&source, &batch)?))
    }

    /// The watermark of `source` for `tenant`: the greatest timestamp an
    /// [`Engine::ingest_from`] of that source stored or found stored; `None` before its first
    /// ingest. Errors: `InvalidQuery` for an empty source name, `Store`.
    pub fn last_ingested_at(&self, tenant: String, source: String) -> Result<Option<SystemTime>, MeterkitError> {
        Ok(self.engine()?.last_ingested_at(&tenant, &source)?.map(to_system))
    }

    /// Check `quota` after every ingest: a `ThresholdCrossed` event once per level per subject
    /// per period (any window). Replaces a quota of the same tenant and id. Errors:
    /// `InvalidQuery`, `InvalidWindow` (field `period`), `InvalidTimeZone`, `Store`.
    pub fn add_quota(&self, quota: Quota) -> Result<(), MeterkitError> {
        Ok(self.engine()?.add_quota(quota.into_core()?)?)
    }

    /// Store `records` as revisions in one atomic change: a stored record with other content is
    /// replaced (`replaced`; its old version kept in [`Engine::history`]), a new one stored, an
    /// equal one a duplicate. Errors: `InvalidRecord` for an invalid record or a key given twice
    /// (nothing stored), `Store`.
    pub fn replace(&self, records: Vec<UsageRecord>) -> Result<IngestReport, MeterkitError> {
        let batch = records_to_core(records)?;
        Ok(IngestReport::from_core(self.engine()?.replace(&batch)?))
    }

    /// The versions of `(tenant, id)` that [`Engine::replace`] replaced, oldest first.
    pub fn history(&self, tenant: String, id: String) -> Result<Vec<UsageRecord>, MeterkitError> {
        Ok(self.engine()?.history(&tenant, &id)?.into_iter().collect())
    }

    /// Ingest one record (the single-reading case of [`Engine::ingest`]).
    pub fn ingest_one(&self, record: UsageRecord) -> Result<IngestReport, MeterkitError> {
        let batch = [record];
        Ok(IngestReport::from_core(self.engine()?.ingest(&batch)?))
    }

    /// Ingest columns (see [`RecordColumns`]): the fast path for big batches. Errors: as
    /// `RecordColumns` (nothing stored) and as [`Engine::ingest`].
    pub fn ingest_columns(&self, columns: RecordColumns) -> Result<IngestReport, MeterkitError> {
        let batch = columns.into_core()?;
        Ok(IngestReport::from_core(self.engine()?.ingest(&batch)?))
    }

    /// Ingest packed columns (see [`PackedColumns`]). Errors: as [`Engine::ingest_columns`].
    pub fn ingest_packed(&self, columns: PackedColumns) -> Result<IngestReport, MeterkitError> {
        let batch = columns.unpack()?.into_core()?;
        Ok(IngestReport::from_core(self.engine()?.ingest(&batch)?))
    }

    /// Remove the record `(tenant, id)` and its contribution to every rollup; returns it.
    /// Errors: `NotFound` when no such record is stored.
    pub fn retract(&self, tenant: String, id: String) -> Result<UsageRecord, MeterkitError> {
        Ok(self.engine()?.retract(&tenant, &id)?)
    }

    /// Stored records of `tenant` and `metric` with timestamp in `[from, to)`, optionally of one
    /// subject, by timestamp then id. Errors: `Parse` for instants out of range, `Store`.
    #[uniffi::method(default(subject = None))]
    pub fn records(
        &self,
        tenant: String,
        metric: String,
        from: SystemTime,
        to: SystemTime,
        subject: Option<String>,
    ) -> Result<Vec<UsageRecord>, MeterkitError> {
        let (from, to) = (from_system(from, "from")?, from_system(to, "to")?);
        let records = self.engine()?.records(&tenant, &metric, subject.as_deref(), from, to)?;
        Ok(records.into_iter().collect())
    }

    /// Answer a rollup query (rows by window start, then group values). Errors: `InvalidWindow`,
    /// `InvalidTimeZone`, `InvalidQuery`, `Store`.
    pub fn query(&self, query: Query) -> Result<Vec<Bucket>, MeterkitError> {
        Ok(buckets_from_core(self.engine()?.query(&query.to_core()?)?))
    }

    /// The `n` groups with the largest `by` aggregation (`sum`, `count`, `min`, `max`, `mean`,
    /// `latest`, or `unique_count:DIM`) over the query's range, largest first. Errors: `Parse`
    /// for an unknown aggregation, and those of [`Engine::query`].
    pub fn top_n(&self, query: Query, by: String, n: i32) -> Result<Vec<Bucket>, MeterkitError> {
        let n: usize = unsigned(n, "n")?;
        let by: meterkit::Aggregation = by.parse()?;
        Ok(buckets_from_core(self.engine()?.top_n(&query.to_core()?, &by, n)?))
    }

    /// Totals of the `window` containing `at` and of the one before, with the change in percent.
    /// Errors: `InvalidWindow`, `InvalidTimeZone`, `Store`.
    pub fn totals(
        &self,
        tenant: String,
        metric: String,
        window: String,
        time_zone: String,
        at: SystemTime,
    ) -> Result<Totals, MeterkitError> {
        let t = self.engine()?.totals(&tenant, &metric, window.parse()?, &time_zone, from_system(at, "at")?)?;
        Ok(Totals { current: t.current.into(), previous: t.previous.into(), change_percent: t.change_percent })
    }

    /// Close every window of `tenant` that ended at or before `now − allowed_lateness_secs`
    /// (emits `WindowClosed` once per bucket); returns how many were closed. Errors:
    /// `InvalidQuery` for a lateness out of range, `Store`.
    #[uniffi::method(default(allowed_lateness_secs = 0))]
    pub fn close_windows(
        &self,
        tenant: String,
        now: SystemTime,
        allowed_lateness_secs: i64,
    ) -> Result<i64, MeterkitError> {
        let lateness = chrono::Duration::try_seconds(allowed_lateness_secs).ok_or_else(|| {
            meterkit::Error::new(meterkit::ErrorKind::InvalidQuery, "allowed_lateness_secs is out of range.")
                .with_field("allowed_lateness_secs")
        })?;
        Ok(signed(self.engine()?.close_windows(&tenant, from_system(now, "now")?, lateness)? as u64))
    }

    /// Bill `request.subject` with `tariff` from the stored records of the period — on a device,
    /// the estimate of the current period so far. Errors: those of the core's `Engine::bill`.
    pub fn bill(&self, tariff: Arc<Tariff>, request: BillRequest) -> Result<Bill, MeterkitError> {
        Ok(self.engine()?.bill(&tariff.inner, &request.to_core()?)?)
    }

    /// Validate the new records of `metric` in every later ingest with `config` (the core's
    /// `Engine::set_validation`). Errors: `Validation` for an invalid config.
    pub fn set_validation(&self, metric: String, config: Arc<ValidationConfig>) -> Result<(), MeterkitError> {
        Ok(self.engine()?.set_validation(&metric, config.inner.clone())?)
    }

    /// Validate with a fixed clock (`None`: the wall clock). Errors: `Parse` for an instant out
    /// of range.
    #[uniffi::method(default(now = None))]
    pub fn set_validation_now(&self, now: Option<SystemTime>) -> Result<(), MeterkitError> {
        self.engine()?.set_validation_now(now.map(|t| from_system(t, "now")).transpose()?);
        Ok(())
    }

    /// How many notifier calls failed (the host threw, or the event could not be converted).
    pub fn notifier_failures(&self) -> i64 {
        signed(self.notifier_failures.load(Ordering::Relaxed))
    }

    // -- readings -------------------------------------------------------------------------------

    /// Check a register `reading` of `metric` against the meter's stored history and store the
    /// reading, its consumption (one record per day the interval covers) and its findings in one
    /// atomic change (the core's `Engine::record_reading`): `status` is `accepted`, `flagged`
    /// (kept, consumption marked `flagged`, held for review) or `rejected` (not used: a backwards
    /// reading, a likely typo, an invalid value…). `exchange` declares a meter exchange: the old
    /// meter's final reading, with `reading` the new meter's start. `optionsJson` is the core's
    /// `ReadingOptions` JSON (`{"history":10,"time_zone":"UTC","typical_register":["1000","60000"],
    /// "max_daily":"40",…}`; default: the core's defaults). Errors: `Parse` for bad options,
    /// `InvalidQuery`/`InvalidTimeZone` for invalid ones, `Conflict`, `Store`, `Overflow`.
    #[uniffi::method(default(exchange = None, options_json = None))]
    pub fn record_reading(
        &self,
        tenant: String,
        metric: String,
        reading: crate::types::MeterReading,
        exchange: Option<Decimal>,
        options_json: Option<String>,
    ) -> Result<ReadingOutcome, MeterkitError> {
        let opts = reading_options(options_json)?;
        Ok(self.engine()?.record_reading(&tenant, &metric, &reading, exchange, &opts)?)
    }

    /// Turn cumulative counter `readings` of `metric` (oldest first: session byte counters,
    /// RADIUS/SNMP octets with `registerBits` 32 or 64, registers with `registerDigits`) into
    /// deltas and ingest them, keeping each meter's latest reading in the store so that a restart
    /// does not lose the first delta (the core's `Engine::track_counters`). `optionsJson` is the
    /// core's `CounterOptions` JSON (`{"dating":"pro_rata"|"start"|"end","time_zone":"UTC",
    /// "profile":[24 weights]}`; default: pro rata over UTC days). Errors: `Parse` for bad
    /// options, `InvalidQuery`/`InvalidTimeZone` for invalid ones, `InvalidRecord`, `Store`,
    /// `Overflow`.
    #[uniffi::method(default(options_json = None))]
    pub fn track_counters(
        &self,
        tenant: String,
        metric: String,
        readings: Vec<crate::types::MeterReading>,
        options_json: Option<String>,
    ) -> Result<CounterOutcome, MeterkitError> {
        let opts: meterkit::reading::counter::CounterOptions = match options_json {
            None => meterkit::reading::counter::CounterOptions::default(),
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                meterkit::Error::new(meterkit::ErrorKind::Parse, format!("The counter options are invalid: {e}"))
                    .with_field("options_json")
            })?,
        };
        let out = self.engine()?.track_counters(&tenant, &metric, &readings, &opts)?;
        Ok(CounterOutcome { report: IngestReport::from_core(out.report), records: out.records, findings: out.findings })
    }

    /// The tracker state of `meter` for `metric` of `tenant`: its latest counter reading (the
    /// baseline of its next delta), or `null` (the core's `Engine::counter_state`). Errors:
    /// `Store`.
    pub fn counter_state(
        &self,
        tenant: String,
        metric: String,
        meter: String,
    ) -> Result<Option<crate::types::MeterReading>, MeterkitError> {
        Ok(self.engine()?.counter_state(&tenant, &metric, &meter)?)
    }

    /// Check a register `reading` exactly as [`Engine::record_reading`] does (same decisions,
    /// findings and consumption) but store nothing (the core's `Engine::check_reading`): what the
    /// app shows before the engineer confirms. Errors: as [`Engine::record_reading`].
    #[uniffi::method(default(exchange = None, options_json = None))]
    pub fn check_reading(
        &self,
        tenant: String,
        metric: String,
        reading: crate::types::MeterReading,
        exchange: Option<Decimal>,
        options_json: Option<String>,
    ) -> Result<ReadingOutcome, MeterkitError> {
        let opts = reading_options(options_json)?;
        Ok(self.engine()?.check_reading(&tenant, &metric, &reading, exchange, &opts)?)
    }

    // -- upload queue (the core's outbox) --------------------------------------------------------

    /// Keep `records` on the device and queue them for upload (the core's `Engine::outbox_queue`):
    /// ingested like [`Engine::ingest`] (idempotent), each non-rejected record not yet uploaded is
    /// marked pending. Errors: as [`Engine::ingest`].
    pub fn queue(&self, records: Vec<UsageRecord>) -> Result<IngestReport, MeterkitError> {
        Ok(IngestReport::from_core(self.engine()?.outbox_queue(&records_to_core(records)?)?))
    }

    /// Up to `limit` records of `tenant` queued and not yet uploaded, by id. Errors: `Store`.
    pub fn pending_uploads(&self, tenant: String, limit: i32) -> Result<Vec<UsageRecord>, MeterkitError> {
        let limit: usize = unsigned(limit, "limit")?;
        let export = self.engine()?.outbox_pending(&tenant, limit)?;
        Ok(export.records.into_iter().collect())
    }

    /// How many records of `tenant` wait for upload: one metadata read (O(1)). Errors: `Store`.
    pub fn pending_count(&self, tenant: String) -> Result<i64, MeterkitError> {
        Ok(signed(self.engine()?.outbox_count(&tenant)?))
    }

    /// Mark records of `tenant` uploaded (after the server confirmed them): they leave the queue
    /// and are not queued again within the retention window (30 days; older sent markers are
    /// removed now). Returns how many were pending. Errors: `Store`.
    pub fn mark_uploaded(&self, tenant: String, ids: Vec<String>) -> Result<i64, MeterkitError> {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        Ok(signed(self.engine()?.outbox_ack(&tenant, &ids, chrono::Utc::now())?))
    }

    /// Tidy the upload queue of `tenant` (the core's `Engine::outbox_purge`): remove the sent
    /// markers of uploads confirmed before `before`, the pending markers naming no stored record
    /// (left by a crash), and recount. Returns how many markers were removed. Errors: `Parse` for
    /// an instant out of range, `Store`.
    pub fn purge_uploads(&self, tenant: String, before: SystemTime) -> Result<i64, MeterkitError> {
        Ok(signed(self.engine()?.outbox_purge(&tenant, from_system(before, "before")?)?))
    }

    /// Up to `limit` pending records of `tenant` as the core's JSON array — the body a server
    /// imports (with `import_json`, the CLI, or any binding's ingest). Errors: `Store`.
    pub fn export_pending_json(&self, tenant: String, limit: i32) -> Result<String, MeterkitError> {
        Ok(self.export_pending(tenant, limit)?.json)
    }

    /// Up to `limit` pending records of `tenant` for upload: the JSON body (as
    /// [`Engine::export_pending_json`]) and the ids it holds, to pass to `mark_uploaded` once the
    /// server confirmed the upload (no re-parsing of the body). Errors: `Store`.
    pub fn export_pending(&self, tenant: String, limit: i32) -> Result<PendingExport, MeterkitError> {
        let limit: usize = unsigned(limit, "limit")?;
        let export = self.engine()?.outbox_pending(&tenant, limit)?;
        let json = serde_json::to_string(&export.records).map_err(|e| MeterkitError::internal(e.to_string()))?;
        Ok(PendingExport { ids: export.ids, json })
    }

    /// Ingest a batch exported as the core's JSON (an array of records or one record):
    /// importing the same batch twice counts it once (the second time every record is a
    /// duplicate). Errors: `Parse` for invalid JSON, and those of [`Engine::ingest`].
    pub fn import_json(&self, json: String) -> Result<IngestReport, MeterkitError> {
        let batch = records_to_core(crate::types::records_from_json(json)?)?;
        Ok(IngestReport::from_core(self.engine()?.ingest(&batch)?))
    }
}

/// The core's `ReadingOptions` from its JSON (`None`: the defaults). Errors: `Parse`.
fn reading_options(json: Option<String>) -> Result<meterkit::reading::check::ReadingOptions, MeterkitError> {
    let Some(text) = json else { return Ok(meterkit::reading::check::ReadingOptions::default()) };
    serde_json::from_str(&text).map_err(|e| {
        meterkit::Error::new(meterkit::ErrorKind::Parse, format!("The reading options are invalid: {e}"))
            .with_field("options_json")
            .into()
    })
}

/// The rollup spec `addSpec` and `removeSpec` name: every tenant's, or `tenant`'s own.
fn spec_of(
    metric: String,
    window: &str,
    time_zone: &str,
    group_by: Vec<String>,
    tenant: Option<String>,
) -> Result<RollupSpec, MeterkitError> {
    let spec = RollupSpec::new(metric, window.parse()?, time_zone)?.group_by(group_by);
    Ok(match tenant {
        Some(t) => spec.for_tenant(t),
        None => spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(n: usize) -> RecordColumns {
        RecordColumns {
            tenant: "t".into(),
            metric: "kwh".into(),
            ids: (0..n).map(|i| format!("r{i}")).collect::<Vec<_>>().join("\n"),
            subject_values: vec!["a".into(), "b".into()],
            subject_codes: (0..n).map(|i| (i % 2) as i32).collect(),
            mantissas: (0..n).map(|i| i as i64 - 1).collect(),
            scale: 2,
            timestamps: (0..n).map(|i| 1_700_000_000 + i as i64).collect(),
        }
    }

    #[test]
    fn columns_become_the_records_they_describe() {
        let records = cols(3).into_core().unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!((records[1].id.as_str(), records[1].subject.as_str()), ("r1", "b"));
        assert_eq!(records[0].quantity.to_string(), "-0.01");
        assert_eq!(records[2].timestamp.timestamp(), 1_700_000_002);
        assert!(cols(0).into_core().unwrap().is_empty());
    }

    #[test]
    fn bad_columns_are_invalid_records() {
        let mut short = cols(3);
        short.ids = "r0\nr1".into();
        assert!(matches!(short.into_core(), Err(MeterkitError::InvalidRecord { .. })));
        let mut code = cols(3);
        code.subject_codes[2] = 9;
        assert!(matches!(code.into_core(), Err(MeterkitError::InvalidRecord { .. })));
        let mut scale = cols(1);
        scale.scale = 29;
        assert!(matches!(scale.into_core(), Err(MeterkitError::InvalidRecord { .. })));
    }

    #[test]
    fn packed_columns_unpack_little_endian() {
        let c = cols(2);
        let packed = PackedColumns {
            tenant: c.tenant.clone(),
            metric: c.metric.clone(),
            ids: c.ids.clone(),
            subject_values: c.subject_values.clone(),
            subject_codes: c.subject_codes.iter().flat_map(|v| v.to_le_bytes()).collect(),
            mantissas: c.mantissas.iter().flat_map(|v| v.to_le_bytes()).collect(),
            scale: c.scale,
            timestamps: c.timestamps.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        assert_eq!(packed.clone().unpack().unwrap(), c);
        let mut ragged = packed;
        ragged.mantissas.pop();
        assert!(matches!(ragged.unpack(), Err(MeterkitError::InvalidRecord { .. })));
    }

    #[test]
    fn calls_after_close_are_closed_errors() {
        let engine = Engine::in_memory(None).unwrap();
        let batch = cols(2).into_core().unwrap();
        assert_eq!(engine.queue(batch.clone()).unwrap().accepted, 2);
        engine.close();
        engine.close(); // twice is allowed
        let e = engine.pending_count("t".into()).unwrap_err();
        assert!(matches!(e, MeterkitError::Closed { .. }), "{e:?}");
        assert_eq!((e.code(), e.kind(), e.retryable()), ("E_CLOSED".into(), "closed".into(), false));
        assert!(matches!(engine.queue(batch), Err(MeterkitError::Closed { .. })));
        assert!(matches!(engine.invoices("t".into()), Err(MeterkitError::Closed { .. })), "billing.rs too");
    }

    #[test]
    fn negative_sizes_name_their_argument() {
        let engine = Engine::in_memory(None).unwrap();
        assert_eq!(engine.pending_uploads("t".into(), -1).unwrap_err().field(), Some("limit".into()));
        assert_eq!(engine.export_pending("t".into(), -3).unwrap_err().field(), Some("limit".into()));
        let mut neg = cols(1);
        neg.scale = -1;
        assert!(matches!(neg.into_core(), Err(MeterkitError::InvalidRecord { .. })));
        let mut code = cols(1);
        code.subject_codes[0] = -1;
        assert!(matches!(code.into_core(), Err(MeterkitError::InvalidRecord { .. })));
    }

    #[test]
    fn the_queue_marks_pending_and_uploaded_records() {
        let engine = Engine::in_memory(None).unwrap();
        let batch = cols(3).into_core().unwrap().into_iter().collect::<Vec<_>>();
        assert_eq!(engine.queue(batch.clone()).unwrap().accepted, 3);
        assert_eq!(engine.pending_count("t".into()).unwrap(), 3);
        assert_eq!(engine.mark_uploaded("t".into(), vec!["r0".into(), "r1".into()]).unwrap(), 2);
        assert_eq!(engine.pending_uploads("t".into(), 10).unwrap().len(), 1);
        assert_eq!(engine.queue(batch).unwrap().duplicates, 3);
        assert_eq!(engine.pending_count("t".into()).unwrap(), 1, "uploaded records are not queued again");
    }
}
