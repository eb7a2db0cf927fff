//! Immutable Python classes over the core's value types: usage records, rollup specs, queries,
//! buckets, ingest reports, totals and events. Each has a `__repr__`, equality, `to_dict()` (the
//! canonical JSON shape, as plain Python) and `to_json()` (the core's serde_json output).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use meterkit::{engine::Fill, Aggregation, ErrorKind, Window};
use pyo3::prelude::*;

use crate::convert::{
    from_decimal, from_json, from_opt_decimal, from_plain, from_utc, opt_utc, to_decimal, to_json, to_plain, to_utc,
};
use crate::errors::{new_err, IntoPy};

fn hash_of(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// Parse a window (`day`, `minutes:15`, `cycle:15`, …).
pub fn window_of(text: &str) -> PyResult<Window> {
    text.parse::<Window>().py()
}

fn strings(obj: Option<&Bound<'_, PyAny>>, field: &str) -> PyResult<Vec<String>> {
    let Some(obj) = obj else { return Ok(Vec::new()) };
    if obj.is_none() {
        return Ok(Vec::new());
    }
    if obj.is_instance_of::<pyo3::types::PyString>() {
        return Err(new_err(
            ErrorKind::InvalidQuery,
            format!("{field} must be a list of names, not a string."),
            Some(field),
        ));
    }
    obj.try_iter()?.map(|x| x?.extract::<String>()).collect()
}

fn string_map(obj: Option<&Bound<'_, PyAny>>) -> PyResult<BTreeMap<String, String>> {
    match obj {
        None => Ok(BTreeMap::new()),
        Some(o) if o.is_none() => Ok(BTreeMap::new()),
        Some(o) => o.extract(),
    }
}

/// One measured amount of usage: `quantity` of `metric` used by `subject` at `timestamp`.
#[pyclass(module = "meterkit", frozen, eq, hash, name = "UsageRecord")]
#[derive(Clone, PartialEq)]
pub struct PyUsageRecord {
    pub inner: meterkit::UsageRecord,
}

impl Hash for PyUsageRecord {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_of(&serde_json::to_string(&self.inner).unwrap_or_default()).hash(state);
    }
}

#[pymethods]
impl PyUsageRecord {
    #[new]
    #[pyo3(signature = (tenant, id, subject, metric, quantity, timestamp, *, end=None, dimensions=None, quality="actual"))]
    fn new(
        tenant: String,
        id: String,
        subject: String,
        metric: String,
        quantity: &Bound<'_, PyAny>,
        timestamp: &Bound<'_, PyAny>,
        end: Option<&Bound<'_, PyAny>>,
        dimensions: Option<&Bound<'_, PyAny>>,
        quality: &str,
    ) -> PyResult<Self> {
        let q = to_decimal(quantity, "quantity").map_err(|e| with_record(e, &id))?;
        let ts = to_utc(timestamp, "timestamp", ErrorKind::InvalidRecord)?;
        let mut r = meterkit::UsageRecord::new(tenant, id, subject, metric, q, ts);
        r.end = opt_utc(end, "end", ErrorKind::InvalidRecord)?;
        r.dimensions = string_map(dimensions)?;
        r.quality = crate::validation::quality_of(quality)?;
        Ok(PyUsageRecord { inner: r })
    }

    /// The record from its canonical JSON shape (as `to_dict()` returns).
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyUsageRecord { inner: from_plain(data, "usage record")? })
    }

    /// The record from JSON text (one line of the CLI's `jsonl` format).
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        Ok(PyUsageRecord { inner: from_json(text, "usage record")? })
    }

    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    #[getter]
    fn tenant(&self) -> &str {
        &self.inner.tenant
    }
    #[getter]
    fn subject(&self) -> &str {
        &self.inner.subject
    }
    #[getter]
    fn metric(&self) -> &str {
        &self.inner.metric
    }
    #[getter]
    fn quantity<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_decimal(py, self.inner.quantity)
    }
    #[getter]
    fn timestamp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_utc(py, self.inner.timestamp)
    }
    #[getter]
    fn end<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.end.map(|t| from_utc(py, t)).transpose()
    }
    #[getter]
    fn dimensions(&self) -> BTreeMap<String, String> {
        self.inner.dimensions.clone()
    }
    /// `actual`, `flagged` (by validation) or `estimated`.
    #[getter]
    fn quality(&self) -> &'static str {
        self.inner.quality.as_str()
    }

    /// The canonical JSON shape as plain Python (decimals and timestamps as strings).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    /// Compact JSON, as the core serializes it.
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        let r = &self.inner;
        let mut s = format!(
            "UsageRecord(tenant={:?}, id={:?}, subject={:?}, metric={:?}, quantity=Decimal('{}'), timestamp='{}'",
            r.tenant,
            r.id,
            r.subject,
            r.metric,
            meterkit::decimal::fmt_decimal(r.quantity),
            meterkit::time::fmt_ts(r.timestamp)
        );
        if let Some(e) = r.end {
            s.push_str(&format!(", end='{}'", meterkit::time::fmt_ts(e)));
        }
        if !r.dimensions.is_empty() {
            s.push_str(&format!(", dimensions={:?}", r.dimensions));
        }
        if !r.quality.is_actual() {
            s.push_str(&format!(", quality={:?}", r.quality.as_str()));
        }
        s.push(')');
        s
    }
}

fn with_record(e: PyErr, id: &str) -> PyErr {
    Python::attach(|py| {
        let _ = e.value(py).setattr("record_id", id);
    });
    e
}

/// What to roll up: one metric cut by one window in one zone, grouped by dimensions.
#[pyclass(module = "meterkit", frozen, eq, hash, name = "RollupSpec")]
#[derive(Clone, PartialEq, Hash)]
pub struct PyRollupSpec {
    pub inner: meterkit::RollupSpec,
}

#[pymethods]
impl PyRollupSpec {
    #[new]
    #[pyo3(signature = (metric, window, time_zone, *, group_by=None, unique=None, tenant=None))]
    fn new(
        metric: String,
        window: &str,
        time_zone: &str,
        group_by: Option<&Bound<'_, PyAny>>,
        unique: Option<&Bound<'_, PyAny>>,
        tenant: Option<String>,
    ) -> PyResult<Self> {
        let mut spec = meterkit::RollupSpec::new(metric, window_of(window)?, time_zone)
            .py()?
            .group_by(strings(group_by, "group_by")?);
        for d in strings(unique, "unique")? {
            spec = spec.with(Aggregation::UniqueCount(d));
        }
        spec.tenant = tenant;
        spec.check().py()?;
        Ok(PyRollupSpec { inner: spec })
    }
    /// The one tenant this spec is maintained for (a tenant's own spec), or `None`: every tenant.
    #[getter]
    fn tenant(&self) -> Option<&str> {
        self.inner.tenant.as_deref()
    }
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyRollupSpec { inner: from_plain(data, "rollup spec")? })
    }
    #[getter]
    fn metric(&self) -> &str {
        &self.inner.metric
    }
    #[getter]
    fn window(&self) -> String {
        self.inner.window.to_string()
    }
    #[getter]
    fn time_zone(&self) -> &str {
        &self.inner.time_zone
    }
    #[getter]
    fn group_by(&self) -> Vec<String> {
        self.inner.group_by.clone()
    }
    #[getter]
    fn unique(&self) -> Vec<String> {
        self.inner.unique_dims().map(str::to_string).collect()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "RollupSpec(metric={:?}, window={:?}, time_zone={:?}, group_by={:?}, unique={:?})",
            self.inner.metric,
            self.inner.window.to_string(),
            self.inner.time_zone,
            self.inner.group_by,
            self.unique()
        )
    }
}

/// A rollup query: one tenant, one metric, one window kind in one zone.
#[pyclass(module = "meterkit", frozen, eq, hash, name = "Query")]
#[derive(Clone, PartialEq)]
pub struct PyQuery {
    pub inner: meterkit::Query,
}

impl Hash for PyQuery {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_of(&serde_json::to_string(&self.inner).unwrap_or_default()).hash(state);
    }
}

#[pymethods]
impl PyQuery {
    #[new]
    #[pyo3(signature = (tenant, metric, window, time_zone, *, subject=None, filters=None, group_by=None, unique=None, from_=None, to=None, fill="none"))]
    fn new(
        tenant: String,
        metric: String,
        window: &str,
        time_zone: String,
        subject: Option<String>,
        filters: Option<&Bound<'_, PyAny>>,
        group_by: Option<&Bound<'_, PyAny>>,
        unique: Option<&Bound<'_, PyAny>>,
        from_: Option<&Bound<'_, PyAny>>,
        to: Option<&Bound<'_, PyAny>>,
        fill: &str,
    ) -> PyResult<Self> {
        let mut q = meterkit::Query::new(tenant, metric, window_of(window)?, time_zone);
        q.subject = subject;
        q.filters = string_map(filters)?;
        q.group_by = strings(group_by, "group_by")?;
        q.unique = strings(unique, "unique")?;
        q.from = opt_utc(from_, "from", ErrorKind::InvalidQuery)?;
        q.to = opt_utc(to, "to", ErrorKind::InvalidQuery)?;
        q.fill = match fill {
            "none" => Fill::None,
            "zero" => Fill::Zero,
            other => {
                return Err(new_err(
                    ErrorKind::InvalidQuery,
                    format!("fill must be 'none' or 'zero', not {other:?}."),
                    Some("fill"),
                ))
            }
        };
        Ok(PyQuery { inner: q })
    }
    /// The query from its canonical JSON shape (keys `from` and `to`, as in `tests/vectors/`).
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyQuery { inner: from_plain(data, "query")? })
    }
    #[getter]
    fn tenant(&self) -> &str {
        &self.inner.tenant
    }
    #[getter]
    fn metric(&self) -> &str {
        &self.inner.metric
    }
    #[getter]
    fn window(&self) -> String {
        self.inner.window.to_string()
    }
    #[getter]
    fn time_zone(&self) -> &str {
        &self.inner.time_zone
    }
    #[getter]
    fn subject(&self) -> Option<&str> {
        self.inner.subject.as_deref()
    }
    #[getter]
    fn filters(&self) -> BTreeMap<String, String> {
        self.inner.filters.clone()
    }
    #[getter]
    fn group_by(&self) -> Vec<String> {
        self.inner.group_by.clone()
    }
    #[getter]
    fn unique(&self) -> Vec<String> {
        self.inner.unique.clone()
    }
    #[getter]
    fn from_<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.from.map(|t| from_utc(py, t)).transpose()
    }
    #[getter]
    fn to<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.to.map(|t| from_utc(py, t)).transpose()
    }
    #[getter]
    fn fill(&self) -> &'static str {
        match self.inner.fill {
            Fill::Zero => "zero",
            Fill::None => "none",
        }
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!("Query({})", serde_json::to_string(&self.inner).unwrap_or_default())
    }
}

/// One row of a rollup query: a window, a group, and every aggregation.
#[pyclass(module = "meterkit", frozen, eq, hash, name = "Bucket")]
#[derive(Clone, PartialEq)]
pub struct PyBucket {
    pub inner: meterkit::Bucket,
}

impl Hash for PyBucket {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_of(&serde_json::to_string(&self.inner).unwrap_or_default()).hash(state);
    }
}

#[pymethods]
impl PyBucket {
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyBucket { inner: from_plain(data, "bucket")? })
    }
    #[getter]
    fn window_start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_utc(py, self.inner.window_start)
    }
    #[getter]
    fn window_end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_utc(py, self.inner.window_end)
    }
    /// Window start as an aware `datetime` in the query's zone (fixed offset), e.g.
    /// 2025-01-01 00:00+05:30 for an Asia/Kolkata month.
    #[getter]
    fn local_start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("datetime")?.getattr("datetime")?.call_method1("fromisoformat", (&self.inner.local_start,))
    }
    #[getter]
    fn subject(&self) -> Option<&str> {
        self.inner.subject.as_deref()
    }
    #[getter]
    fn metric(&self) -> &str {
        &self.inner.metric
    }
    #[getter]
    fn group(&self) -> BTreeMap<String, Option<String>> {
        self.inner.group.clone()
    }
    #[getter]
    fn sum<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_decimal(py, self.inner.sum)
    }
    #[getter]
    fn count(&self) -> u64 {
        self.inner.count
    }
    #[getter]
    fn min<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_opt_decimal(py, self.inner.min)
    }
    #[getter]
    fn max<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_opt_decimal(py, self.inner.max)
    }
    #[getter]
    fn mean<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_opt_decimal(py, self.inner.mean)
    }
    #[getter]
    fn latest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_opt_decimal(py, self.inner.latest)
    }
    #[getter]
    fn unique(&self) -> BTreeMap<String, u64> {
        self.inner.unique.clone()
    }
    /// Records flagged by validation (part of `count`).
    #[getter]
    fn flagged_count(&self) -> u64 {
        self.inner.flagged_count
    }
    /// Quantity of flagged records (part of `sum`).
    #[getter]
    fn flagged_sum<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_decimal(py, self.inner.flagged_sum)
    }
    /// Estimated records (part of `count`).
    #[getter]
    fn estimated_count(&self) -> u64 {
        self.inner.estimated_count
    }
    /// Quantity of estimated records (part of `sum`).
    #[getter]
    fn estimated_sum<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_decimal(py, self.inner.estimated_sum)
    }
    /// Time of the bucket's earliest record (`None` for an empty bucket).
    #[getter]
    fn first_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.first_at.map(|t| from_utc(py, t)).transpose()
    }
    /// Time of the bucket's latest record (`None` for an empty bucket).
    #[getter]
    fn last_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.last_at.map(|t| from_utc(py, t)).transpose()
    }
    /// The measured part of `sum` (`sum - estimated_sum`).
    fn actual_sum<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_decimal(py, self.inner.actual_sum().py()?)
    }
    /// The estimated share of `sum` in percent (2 places), `None` when `sum` is 0.
    fn estimated_percent<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_opt_decimal(py, self.inner.estimated_percent())
    }
    /// The flagged share of `sum` in percent (2 places), `None` when `sum` is 0.
    fn flagged_percent<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_opt_decimal(py, self.inner.flagged_percent())
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        let b = &self.inner;
        let mut s = format!(
            "Bucket(window_start='{}', window_end='{}', metric={:?}",
            meterkit::time::fmt_ts(b.window_start),
            meterkit::time::fmt_ts(b.window_end),
            b.metric
        );
        if let Some(subj) = &b.subject {
            s.push_str(&format!(", subject={subj:?}"));
        }
        if !b.group.is_empty() {
            s.push_str(&format!(", group={:?}", b.group));
        }
        s.push_str(&format!(", sum=Decimal('{}'), count={})", meterkit::decimal::fmt_decimal(b.sum), b.count));
        s
    }
}

/// A record an ingest did not apply.
#[pyclass(module = "meterkit", frozen, eq, name = "Rejection")]
#[derive(Clone, PartialEq)]
pub struct PyRejection {
    pub inner: meterkit::engine::Rejection,
}

#[pymethods]
impl PyRejection {
    #[getter]
    fn tenant(&self) -> &str {
        &self.inner.tenant
    }
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    /// The error kind in snake_case (`invalid_record`, `conflict`, …).
    #[getter]
    fn kind(&self) -> String {
        crate::errors::kind_name(self.inner.kind)
    }
    /// The stable error code (`E_CONFLICT`, …).
    #[getter]
    fn code(&self) -> &'static str {
        self.inner.kind.code()
    }
    #[getter]
    fn reason(&self) -> &str {
        &self.inner.reason
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "Rejection(tenant={:?}, id={:?}, code={:?}, reason={:?})",
            self.inner.tenant,
            self.inner.id,
            self.inner.kind.code(),
            self.inner.reason
        )
    }
}

/// Outcome of one ingest call.
#[pyclass(module = "meterkit", frozen, eq, name = "IngestReport")]
#[derive(Clone, PartialEq)]
pub struct PyIngestReport {
    pub inner: meterkit::engine::IngestReport,
}

#[pymethods]
impl PyIngestReport {
    #[getter]
    fn accepted(&self) -> u64 {
        self.inner.accepted
    }
    /// Records of `Engine.replace` that replaced a stored record with other content.
    #[getter]
    fn replaced(&self) -> u64 {
        self.inner.replaced
    }
    #[getter]
    fn duplicates(&self) -> u64 {
        self.inner.duplicates
    }
    #[getter]
    fn rejected(&self) -> Vec<PyRejection> {
        self.inner.rejected.iter().map(|r| PyRejection { inner: r.clone() }).collect()
    }
    /// Validation findings about the batch's new records, in batch order.
    #[getter]
    fn findings(&self) -> Vec<crate::validation::PyFinding> {
        crate::validation::findings(self.inner.findings.clone())
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "IngestReport(accepted={}, duplicates={}, rejected={}, findings={})",
            self.inner.accepted,
            self.inner.duplicates,
            self.inner.rejected.len(),
            self.inner.findings.len()
        )
    }
}

/// Totals of the period containing an instant and of the period before it (KPI cards).
#[pyclass(module = "meterkit", frozen, eq, name = "Totals")]
#[derive(Clone, PartialEq)]
pub struct PyTotals {
    pub inner: meterkit::engine::Totals,
}

#[pymethods]
impl PyTotals {
    #[getter]
    fn current(&self) -> PyBucket {
        PyBucket { inner: self.inner.current.clone() }
    }
    #[getter]
    fn previous(&self) -> PyBucket {
        PyBucket { inner: self.inner.previous.clone() }
    }
    #[getter]
    fn change_percent<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_opt_decimal(py, self.inner.change_percent)
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "Totals(current=Decimal('{}'), previous=Decimal('{}'), change_percent={})",
            meterkit::decimal::fmt_decimal(self.inner.current.sum),
            meterkit::decimal::fmt_decimal(self.inner.previous.sum),
            self.inner
                .change_percent
                .map_or("None".to_string(), |d| format!("Decimal('{}')", meterkit::decimal::fmt_decimal(d)))
        )
    }
}

/// Something the engine tells a notifier about: `type` (`record_rejected`, `late_record`,
/// `window_closed`, …) and the fields of that event (`event.tenant`, `event.bucket`, …).
#[pyclass(module = "meterkit", frozen, eq, name = "Event")]
#[derive(Clone, PartialEq)]
pub struct PyEvent {
    pub json: String,
    pub value: serde_json::Value,
}

impl PyEvent {
    pub fn new(e: &meterkit::Event) -> Self {
        let json = serde_json::to_string(e).unwrap_or_default();
        let value = serde_json::to_value(e).unwrap_or_default();
        PyEvent { json, value }
    }
}

#[pymethods]
impl PyEvent {
    #[getter]
    fn r#type(&self) -> &str {
        self.value.get("type").and_then(serde_json::Value::as_str).unwrap_or("")
    }
    /// A field of the event: `bucket` as a `Bucket`, other fields as plain Python.
    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.value.get(name) {
            Some(v) if name == "bucket" => {
                let b: meterkit::Bucket =
                    serde_json::from_value(v.clone()).map_err(|e| new_err(ErrorKind::Parse, e.to_string(), None))?;
                Ok(Bound::new(py, PyBucket { inner: b })?.into_any())
            }
            Some(v) => crate::convert::json_to_py(py, v),
            None => Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "'{}' event has no field '{name}'",
                self.r#type()
            ))),
        }
    }
    /// The names of this event's fields.
    fn fields(&self) -> Vec<String> {
        self.value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::convert::json_to_py(py, &self.value)
    }
    fn to_json(&self) -> String {
        self.json.clone()
    }
    fn __repr__(&self) -> String {
        format!("Event({})", self.json)
    }
}
