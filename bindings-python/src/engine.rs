//! `Engine`: the core engine (in memory or over SQLite) with the GIL released around its work,
//! and a `Notifier` that calls a Python callable with `Event` objects.

use std::sync::Arc;

use chrono::Duration;
use meterkit::{Aggregation, ErrorKind};
use pyo3::prelude::*;
use pyo3::types::PyDelta;

use crate::billing::{PyBill, PyBillRequest, PyInvoice, PyQuota, PyTariff};
use crate::convert::to_utc;
use crate::errors::{detached, IntoPy};
use crate::types::{window_of, PyBucket, PyEvent, PyIngestReport, PyQuery, PyRollupSpec, PyTotals, PyUsageRecord};
use crate::validation::PyValidationConfig;

/// Calls a Python callable with each event. An exception raised by the callable cannot stop a
/// change that is already stored: it is reported through `sys.unraisablehook`.
struct PyNotifier {
    callback: Py<PyAny>,
}

impl meterkit::Notifier for PyNotifier {
    fn notify(&self, event: &meterkit::Event) {
        Python::attach(|py| {
            let ev = PyEvent::new(event);
            let result = Bound::new(py, ev).and_then(|e| self.callback.bind(py).call1((e,)));
            if let Err(err) = result {
                err.write_unraisable(py, Some(self.callback.bind(py)));
            }
        });
    }
}

/// The metering engine: ingest with idempotency, incremental rollups, queries, retraction,
/// window closing. One engine may be used from several threads at once.
#[pyclass(module = "meterkit", frozen, name = "Engine")]
pub struct PyEngine {
    pub inner: Arc<meterkit::Engine>,
    description: String,
}

fn with_notifier(engine: meterkit::Engine, notifier: Option<Py<PyAny>>) -> meterkit::Engine {
    match notifier {
        Some(cb) => engine.with_notifier(Arc::new(PyNotifier { callback: cb })),
        None => engine,
    }
}

fn check_callable(py: Python<'_>, notifier: Option<&Py<PyAny>>) -> PyResult<()> {
    if let Some(n) = notifier {
        if !n.bind(py).is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "notifier must be callable (it receives Event objects)",
            ));
        }
    }
    Ok(())
}

/// `by` through the core's `Aggregation::from_str`: an unknown name is the core's `Parse` error with
/// field `by`, as in Node and Kotlin/Swift.
pub fn parse_aggregation(by: &str) -> PyResult<Aggregation> {
    by.parse().map_err(|e: meterkit::Error| crate::errors::to_py(&e.with_field("by")))
}

/// The `UsageRecord`s of an iterable, as one batch.
/// The reading, declared exchange and options of `record_reading`/`check_reading`.
fn reading_args(
    reading: &Bound<'_, PyAny>,
    exchange: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, PyAny>>,
) -> PyResult<(meterkit::MeterReading, Option<meterkit::Decimal>, meterkit::reading::check::ReadingOptions)> {
    let reading: meterkit::MeterReading = match reading.cast::<crate::validation::PyMeterReading>() {
        Ok(r) => r.get().inner.clone(),
        Err(_) => crate::convert::from_plain(reading, "meter reading")?,
    };
    let exchange = match exchange.filter(|e| !e.is_none()) {
        Some(e) => Some(crate::convert::to_decimal(e, "exchange")?),
        None => None,
    };
    let opts = match options.filter(|o| !o.is_none()) {
        Some(o) => crate::convert::from_plain(o, "reading options")?,
        None => meterkit::reading::check::ReadingOptions::default(),
    };
    Ok((reading, exchange, opts))
}

fn record_batch(records: &Bound<'_, PyAny>) -> PyResult<Vec<meterkit::UsageRecord>> {
    Ok(record_objects(records)?.iter().map(|r| r.get().inner.clone()).collect())
}

/// The `UsageRecord` objects of an iterable (held, so that their records can be borrowed).
fn record_objects<'py>(records: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyUsageRecord>>> {
    let mut batch = Vec::new();
    if let Ok(n) = records.len() {
        batch.reserve(n);
    }
    for r in records.try_iter()? {
        let r = r?;
        let rec = r.cast_into::<PyUsageRecord>().map_err(|e| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "ingest takes UsageRecord objects, not {}",
                e.into_inner().get_type().name().map(|n| n.to_string()).unwrap_or_default()
            ))
        })?;
        batch.push(rec);
    }
    Ok(batch)
}

#[pymethods]
impl PyEngine {
    /// An engine over a new in-memory store.
    #[new]
    #[pyo3(signature = (*, notifier=None))]
    fn new(py: Python<'_>, notifier: Option<Py<PyAny>>) -> PyResult<Self> {
        check_callable(py, notifier.as_ref())?;
        Ok(PyEngine {
            inner: Arc::new(with_notifier(meterkit::Engine::in_memory(), notifier)),
            description: "Engine(in_memory)".to_string(),
        })
    }

    /// An engine over the SQLite database at `path` (created if missing; `":memory:"` works), or
    /// over the PostgreSQL database of a `postgres://` / `postgresql://` URL (shared by every
    /// engine and process that opens it).
    #[staticmethod]
    #[pyo3(signature = (path, *, notifier=None))]
    fn open(py: Python<'_>, path: std::path::PathBuf, notifier: Option<Py<PyAny>>) -> PyResult<Self> {
        check_callable(py, notifier.as_ref())?;
        let text = path.to_string_lossy().into_owned();
        let description = match crate::errors::IntoPy::py(meterkit_open::Location::parse(&text))? {
            meterkit_open::Location::Memory => "Engine(in_memory)".to_string(),
            meterkit_open::Location::Sqlite(p) => format!("Engine(sqlite={p:?})"),
            meterkit_open::Location::Postgres(_) => "Engine(postgres)".to_string(),
        };
        let engine = detached(py, move || meterkit_open::open_engine(&text))?;
        Ok(PyEngine { inner: Arc::new(with_notifier(engine, notifier)), description })
    }

    /// Maintain `spec` from now on (backfilled from stored records); returns its id.
    fn add_spec(&self, py: Python<'_>, spec: &PyRollupSpec) -> PyResult<u32> {
        let spec = spec.inner.clone();
        let e = self.inner.clone();
        detached(py, move || e.add_spec(spec))
    }

    /// Stop maintaining the spec equal to `spec` and delete its buckets; returns its id. Raises
    /// `E_NOT_FOUND` when no such spec is maintained, `E_CONFLICT` when a quota uses it.
    fn remove_spec(&self, py: Python<'_>, spec: &PyRollupSpec) -> PyResult<u32> {
        let spec = spec.inner.clone();
        let e = self.inner.clone();
        detached(py, move || e.remove_spec(&spec))
    }

    /// The spec an unplanned query needs (queries never add one): add it to answer such
    /// queries from buckets instead of the records.
    #[staticmethod]
    fn spec_for_query(query: &PyQuery) -> PyResult<PyRollupSpec> {
        Ok(PyRollupSpec { inner: meterkit::Engine::spec_for_query(&query.inner).py()? })
    }

    /// The rollup specs maintained, in id order.
    fn specs(&self, py: Python<'_>) -> PyResult<Vec<PyRollupSpec>> {
        let e = self.inner.clone();
        Ok(detached(py, move || Ok(e.specs()))?.into_iter().map(|s| PyRollupSpec { inner: s }).collect())
    }

    /// Ingest an iterable of `UsageRecord`s as one all-or-nothing batch.
    fn ingest(&self, py: Python<'_>, records: &Bound<'_, PyAny>) -> PyResult<PyIngestReport> {
        let objects = record_objects(records)?;
        let batch: Vec<&meterkit::UsageRecord> = objects.iter().map(|r| &r.get().inner).collect();
        let e = self.inner.clone();
        let report = detached(py, move || e.ingest_refs(None, &batch))?;
        Ok(PyIngestReport { inner: report })
    }

    /// Check a register reading (a `MeterReading` or its dict) against the meter's stored
    /// history and store the reading, its consumption (one record per day of the interval) and
    /// its findings atomically (the core's `Engine::record_reading`); the outcome as a dict
    /// `{"meter","timestamp","reading","status","consumption","findings","records"}`.
    /// `exchange` declares a meter exchange (the old meter's final reading); `options` is a
    /// `ReadingOptions` dict. Raises `MeterkitError` (`parse`, `invalid_query`, `conflict`, `store`).
    #[pyo3(signature = (tenant, metric, reading, exchange=None, options=None))]
    fn record_reading<'py>(
        &self,
        py: Python<'py>,
        tenant: String,
        metric: String,
        reading: &Bound<'py, PyAny>,
        exchange: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (reading, exchange, opts) = reading_args(reading, exchange, options)?;
        let e = self.inner.clone();
        let outcome = detached(py, move || e.record_reading(&tenant, &metric, &reading, exchange, &opts))?;
        crate::convert::to_plain(py, &outcome)
    }

    /// Check a register reading exactly as `record_reading` does (same decisions, findings and
    /// consumption records, against the stored history) but store nothing (the core's
    /// `Engine::check_reading`). Same arguments, outcome and errors as `record_reading`.
    #[pyo3(signature = (tenant, metric, reading, exchange=None, options=None))]
    fn check_reading<'py>(
        &self,
        py: Python<'py>,
        tenant: String,
        metric: String,
        reading: &Bound<'py, PyAny>,
        exchange: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (reading, exchange, opts) = reading_args(reading, exchange, options)?;
        let e = self.inner.clone();
        let outcome = detached(py, move || e.check_reading(&tenant, &metric, &reading, exchange, &opts))?;
        crate::convert::to_plain(py, &outcome)
    }

    /// Turn cumulative counter readings of `metric` (`MeterReading`s or their dicts, oldest
    /// first) into deltas and ingest them, keeping each meter's latest reading in the store so
    /// that a restart does not lose the first delta (the core's `Engine::track_counters`).
    /// `options` is a `CounterOptions` dict: `{"dating": "pro_rata"|"start"|"end",
    /// "time_zone": "UTC", "profile": [24 weights]}`, every key optional. Returns
    /// `{"report": {...}, "records": [...], "findings": [...]}` (plain JSON values, decimals as
    /// strings). Raises `MeterkitError` (`parse`, `invalid_time_zone`, `invalid_query`,
    /// `invalid_record`, `store`).
    #[pyo3(signature = (tenant, metric, readings, options=None))]
    fn track_counters<'py>(
        &self,
        py: Python<'py>,
        tenant: String,
        metric: String,
        readings: &Bound<'py, PyAny>,
        options: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut list = Vec::new();
        for r in readings.try_iter()? {
            let r = r?;
            list.push(match r.cast::<crate::validation::PyMeterReading>() {
                Ok(m) => m.get().inner.clone(),
                Err(_) => crate::convert::from_plain(&r, "meter reading")?,
            });
        }
        let opts: meterkit::reading::counter::CounterOptions = match options.filter(|o| !o.is_none()) {
            Some(o) => crate::convert::from_plain(o, "counter options")?,
            None => meterkit::reading::counter::CounterOptions::default(),
        };
        let e = self.inner.clone();
        let outcome = detached(py, move || e.track_counters(&tenant, &metric, &list, &opts))?;
        crate::convert::to_plain(py, &outcome)
    }

    /// The tracker state of `meter` for `metric` of `tenant`: its latest counter reading (the
    /// baseline of its next delta), or `None` (the core's `Engine::counter_state`).
    fn counter_state(
        &self,
        py: Python<'_>,
        tenant: String,
        metric: String,
        meter: String,
    ) -> PyResult<Option<crate::validation::PyMeterReading>> {
        let e = self.inner.clone();
        let state = detached(py, move || e.counter_state(&tenant, &metric, &meter))?;
        Ok(state.map(|inner| crate::validation::PyMeterReading { inner }))
    }

    /// Keep `records` and queue them for upload (the core's outbox, `Engine::outbox_queue`):
    /// ingested like `ingest`; each record not rejected and not uploaded within the retention
    /// window (30 days) is marked pending.
    fn outbox_queue(&self, py: Python<'_>, records: &Bound<'_, PyAny>) -> PyResult<PyIngestReport> {
        let batch = record_batch(records)?;
        let e = self.inner.clone();
        Ok(PyIngestReport { inner: detached(py, move || e.outbox_queue(&batch))? })
    }

    /// Up to `limit` records of `tenant` waiting for upload, by id.
    fn outbox_pending(&self, py: Python<'_>, tenant: String, limit: usize) -> PyResult<Vec<PyUsageRecord>> {
        let e = self.inner.clone();
        let export = detached(py, move || e.outbox_pending(&tenant, limit))?;
        Ok(export.records.into_iter().map(|r| PyUsageRecord { inner: r }).collect())
    }

    /// How many records of `tenant` wait for upload (one metadata read).
    fn outbox_count(&self, py: Python<'_>, tenant: String) -> PyResult<u64> {
        let e = self.inner.clone();
        detached(py, move || e.outbox_count(&tenant))
    }

    /// Acknowledge the upload of `ids` of `tenant` at `now` (default: the wall clock): they leave
    /// the queue; sent markers older than the retention window are removed. Returns how many
    /// were pending.
    #[pyo3(signature = (tenant, ids, now=None))]
    fn outbox_ack(
        &self,
        py: Python<'_>,
        tenant: String,
        ids: Vec<String>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let now = crate::convert::opt_utc(now, "now", ErrorKind::Parse)?.unwrap_or_else(chrono::Utc::now);
        let e = self.inner.clone();
        detached(py, move || e.outbox_ack(&tenant, &ids.iter().map(String::as_str).collect::<Vec<_>>(), now))
    }

    /// Tidy the outbox of `tenant`: remove sent markers acknowledged before `before`, pending
    /// markers naming no stored record, and recount. Returns how many markers were removed.
    fn outbox_purge(&self, py: Python<'_>, tenant: String, before: &Bound<'_, PyAny>) -> PyResult<u64> {
        let before = to_utc(before, "before", ErrorKind::Parse)?;
        let e = self.inner.clone();
        detached(py, move || e.outbox_purge(&tenant, before))
    }

    /// `ingest` for a named source (a cron job): also moves the source's watermark per tenant to
    /// the greatest timestamp stored or found stored, in the same atomic change.
    fn ingest_from(&self, py: Python<'_>, source: String, records: &Bound<'_, PyAny>) -> PyResult<PyIngestReport> {
        let objects = record_objects(records)?;
        let batch: Vec<&meterkit::UsageRecord> = objects.iter().map(|r| &r.get().inner).collect();
        let e = self.inner.clone();
        let report = detached(py, move || e.ingest_refs(Some(&source), &batch))?;
        Ok(PyIngestReport { inner: report })
    }

    /// Store `records` as revisions in one atomic change: a stored record with other content is
    /// replaced (its old version kept in `history`), a new one stored, an equal one a duplicate.
    fn replace(&self, py: Python<'_>, records: &Bound<'_, PyAny>) -> PyResult<PyIngestReport> {
        let batch = record_batch(records)?;
        let e = self.inner.clone();
        Ok(PyIngestReport { inner: detached(py, move || e.replace(&batch))? })
    }

    /// The versions of `(tenant, id)` that `replace` replaced, oldest first.
    fn history(&self, py: Python<'_>, tenant: String, id: String) -> PyResult<Vec<PyUsageRecord>> {
        let e = self.inner.clone();
        Ok(detached(py, move || e.history(&tenant, &id))?.into_iter().map(|r| PyUsageRecord { inner: r }).collect())
    }

    /// The watermark of `source` for `tenant` (a tz-aware UTC `datetime`), or `None`.
    fn last_ingested_at<'py>(&self, py: Python<'py>, tenant: String, source: String) -> PyResult<Bound<'py, PyAny>> {
        let e = self.inner.clone();
        match detached(py, move || e.last_ingested_at(&tenant, &source))? {
            Some(t) => crate::convert::from_utc(py, t),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// Ingest a pandas or polars DataFrame, a pyarrow Table or any object with
    /// `__arrow_c_stream__` as one all-or-nothing batch (see the stubs for the column rules).
    #[pyo3(signature = (data, *, tenant=None, metric=None, subject=None, id_column="id", tenant_column="tenant", subject_column="subject", metric_column="metric", quantity_column="quantity", timestamp_column="timestamp", end_column=None, dimensions=None))]
    fn ingest_arrow(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        tenant: Option<String>,
        metric: Option<String>,
        subject: Option<String>,
        id_column: &str,
        tenant_column: &str,
        subject_column: &str,
        metric_column: &str,
        quantity_column: &str,
        timestamp_column: &str,
        end_column: Option<String>,
        dimensions: Option<Vec<String>>,
    ) -> PyResult<PyIngestReport> {
        let mapping = crate::arrow::Mapping {
            id: Some(id_column.to_string()),
            tenant: crate::arrow::Source::pick(tenant, tenant_column),
            subject: crate::arrow::Source::pick(subject, subject_column),
            metric: crate::arrow::Source::pick(metric, metric_column),
            quantity: quantity_column.to_string(),
            timestamp: timestamp_column.to_string(),
            end: end_column,
            dimensions: dimensions.unwrap_or_default(),
        };
        let (schema, batches) = crate::arrow::read(data)?;
        let e = self.inner.clone();
        let report = detached(py, move || crate::arrow::ingest(&e, schema, &batches, &mapping))?;
        Ok(PyIngestReport { inner: report })
    }

    /// Remove the record `(tenant, id)` and its contribution to every rollup; returns it.
    fn retract(&self, py: Python<'_>, tenant: String, id: String) -> PyResult<PyUsageRecord> {
        let e = self.inner.clone();
        Ok(PyUsageRecord { inner: detached(py, move || e.retract(&tenant, &id))? })
    }

    /// Stored records of `tenant` and `metric` with timestamp in `[start, end)`.
    #[pyo3(signature = (tenant, metric, start, end, *, subject=None))]
    fn records(
        &self,
        py: Python<'_>,
        tenant: String,
        metric: String,
        start: &Bound<'_, PyAny>,
        end: &Bound<'_, PyAny>,
        subject: Option<String>,
    ) -> PyResult<Vec<PyUsageRecord>> {
        let from = to_utc(start, "start", ErrorKind::InvalidQuery)?;
        let to = to_utc(end, "end", ErrorKind::InvalidQuery)?;
        let e = self.inner.clone();
        let rs = detached(py, move || e.records(&tenant, &metric, subject.as_deref(), from, to))?;
        Ok(rs.into_iter().map(|r| PyUsageRecord { inner: r }).collect())
    }

    /// Answer a rollup query: a list of `Bucket`s ordered by window start, then group values.
    fn query(&self, py: Python<'_>, query: &PyQuery) -> PyResult<Vec<PyBucket>> {
        let q = query.inner.clone();
        let e = self.inner.clone();
        Ok(detached(py, move || e.query(&q))?.into_iter().map(|b| PyBucket { inner: b }).collect())
    }

    /// Answer a rollup query as an Arrow-compatible `BucketTable`.
    fn query_arrow(&self, py: Python<'_>, query: &PyQuery) -> PyResult<crate::arrow::PyBucketTable> {
        let q = query.inner.clone();
        let e = self.inner.clone();
        let rows = detached(py, move || e.query(&q))?;
        crate::arrow::PyBucketTable::new(rows, query.inner.group_by.clone(), query.inner.unique.clone())
    }

    /// The `n` groups with the largest `by` aggregation over the query's whole range. Arguments
    /// in the order of every host (`topN(q, by, n)` in Node and Kotlin/Swift, `top_n(&q, &by, n)`
    /// in Rust); both may be given by keyword: `top_n(q, by="sum", n=5)`.
    #[pyo3(signature = (query, by, n))]
    fn top_n(&self, py: Python<'_>, query: &PyQuery, by: &str, n: usize) -> PyResult<Vec<PyBucket>> {
        let agg = parse_aggregation(by)?;
        let q = query.inner.clone();
        let e = self.inner.clone();
        Ok(detached(py, move || e.top_n(&q, &agg, n))?.into_iter().map(|b| PyBucket { inner: b }).collect())
    }

    /// Totals of `metric` for the window containing `at` and the window before it.
    fn totals(
        &self,
        py: Python<'_>,
        tenant: String,
        metric: String,
        window: &str,
        time_zone: String,
        at: &Bound<'_, PyAny>,
    ) -> PyResult<PyTotals> {
        let w = window_of(window)?;
        let at = to_utc(at, "at", ErrorKind::InvalidQuery)?;
        let e = self.inner.clone();
        Ok(PyTotals { inner: detached(py, move || e.totals(&tenant, &metric, w, &time_zone, at))? })
    }

    /// Close every window of `tenant` that ended at or before `now - allowed_lateness`;
    /// returns how many were closed (each raises one `window_closed` event).
    #[pyo3(signature = (tenant, now, allowed_lateness=None))]
    fn close_windows(
        &self,
        py: Python<'_>,
        tenant: String,
        now: &Bound<'_, PyAny>,
        allowed_lateness: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let now = to_utc(now, "now", ErrorKind::InvalidQuery)?;
        let lateness = match allowed_lateness {
            None => Duration::zero(),
            Some(d) if d.is_none() => Duration::zero(),
            Some(d) => {
                if !d.is_instance_of::<PyDelta>() {
                    return Err(pyo3::exceptions::PyTypeError::new_err(
                        "allowed_lateness must be a datetime.timedelta",
                    ));
                }
                d.extract::<Duration>()?
            }
        };
        let e = self.inner.clone();
        detached(py, move || e.close_windows(&tenant, now, lateness))
    }

    /// Bill `request.subject` with `tariff` from the stored records in the period.
    fn bill(&self, py: Python<'_>, tariff: &PyTariff, request: &PyBillRequest) -> PyResult<PyBill> {
        let (t, r) = (tariff.inner.clone(), request.inner.clone());
        let e = self.inner.clone();
        Ok(PyBill { inner: detached(py, move || e.bill(&t, &r))? })
    }

    /// Check `quota` after every ingest (`threshold_crossed` events, once per level per period).
    fn add_quota(&self, py: Python<'_>, quota: &PyQuota) -> PyResult<()> {
        let q = quota.inner.clone();
        let e = self.inner.clone();
        detached(py, move || e.add_quota(q))
    }

    /// Issue `invoice` at `at` and store it (a `bill_issued` event); returns the issued invoice.
    fn issue_invoice(&self, py: Python<'_>, invoice: &PyInvoice, at: &Bound<'_, PyAny>) -> PyResult<PyInvoice> {
        let at = to_utc(at, "at", ErrorKind::InvalidQuery)?;
        let mut inv = invoice.inner.clone();
        let e = self.inner.clone();
        Ok(PyInvoice {
            inner: detached(py, move || {
                e.issue_invoice(&mut inv, at)?;
                Ok(inv)
            })?,
        })
    }

    /// The stored invoices of `tenant`, by id.
    fn invoices(&self, py: Python<'_>, tenant: String) -> PyResult<Vec<PyInvoice>> {
        let e = self.inner.clone();
        Ok(detached(py, move || e.invoices(&tenant))?.into_iter().map(|i| PyInvoice { inner: i }).collect())
    }

    /// Record payment of the stored invoice `id` at `at`; returns it.
    fn pay_invoice(&self, py: Python<'_>, tenant: String, id: String, at: &Bound<'_, PyAny>) -> PyResult<PyInvoice> {
        let at = to_utc(at, "at", ErrorKind::InvalidQuery)?;
        let e = self.inner.clone();
        Ok(PyInvoice { inner: detached(py, move || e.update_invoice(&tenant, &id, |i| i.pay(at)))? })
    }

    /// Void the stored invoice `id` at `at`; returns it.
    fn void_invoice(&self, py: Python<'_>, tenant: String, id: String, at: &Bound<'_, PyAny>) -> PyResult<PyInvoice> {
        let at = to_utc(at, "at", ErrorKind::InvalidQuery)?;
        let e = self.inner.clone();
        Ok(PyInvoice { inner: detached(py, move || e.update_invoice(&tenant, &id, |i| i.void(at)))? })
    }

    /// The stored invoices of `tenant` whose payment reminder is due at `now`.
    fn reminders_due(
        &self,
        py: Python<'_>,
        tenant: String,
        now: &Bound<'_, PyAny>,
        days_before: u32,
    ) -> PyResult<Vec<PyInvoice>> {
        let now = to_utc(now, "now", ErrorKind::InvalidQuery)?;
        let e = self.inner.clone();
        Ok(detached(py, move || e.reminders_due(&tenant, now, days_before))?
            .into_iter()
            .map(|i| PyInvoice { inner: i })
            .collect())
    }

    /// Mark every issued invoice of `tenant` due before `now` overdue (an `invoice_overdue`
    /// event each); returns them.
    fn mark_overdue(&self, py: Python<'_>, tenant: String, now: &Bound<'_, PyAny>) -> PyResult<Vec<PyInvoice>> {
        let now = to_utc(now, "now", ErrorKind::InvalidQuery)?;
        let e = self.inner.clone();
        Ok(detached(py, move || e.mark_overdue(&tenant, now))?.into_iter().map(|i| PyInvoice { inner: i }).collect())
    }

    /// Validate new records of `metric` with `config` in every later ingest (replacing an
    /// earlier configuration of the metric): `reject` findings keep a record out (kind
    /// `validation` in `rejected`), `flag` findings store it with quality `flagged`; every finding
    /// is in `IngestReport.findings` and warnings/errors go to the notifier (`anomaly_detected`).
    fn set_validation(&self, py: Python<'_>, metric: String, config: &PyValidationConfig) -> PyResult<()> {
        let c = config.inner.clone();
        let e = self.inner.clone();
        detached(py, move || e.set_validation(&metric, c))
    }

    /// Fix the clock of the time rules (`None`: the wall clock).
    fn set_validation_now(&self, now: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let now = crate::convert::opt_utc(now, "now", ErrorKind::Validation)?;
        self.inner.set_validation_now(now);
        Ok(())
    }

    fn __repr__(&self) -> String {
        self.description.clone()
    }
}
