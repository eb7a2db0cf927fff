//! Validation (VEE): configurations, findings, the streaming `Validator`, register readings,
//! gap estimation. Every rule runs in the core; the classes convert and call it.

use std::sync::Mutex;

use meterkit::{record::Quality, ErrorKind};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{
    from_decimal, from_json, from_opt_decimal, from_plain, from_utc, json_to_py, opt_utc, py_to_json, to_decimal,
    to_json, to_plain, to_utc,
};
use crate::errors::{detached, new_err, IntoPy};
use crate::types::PyUsageRecord;

fn records_of(records: &Bound<'_, PyAny>) -> PyResult<Vec<meterkit::UsageRecord>> {
    let mut out = Vec::new();
    for r in records.try_iter()? {
        out.push(r?.cast::<PyUsageRecord>().map_err(PyErr::from)?.get().inner.clone());
    }
    Ok(out)
}

/// A record quality from its name.
pub fn quality_of(name: &str) -> PyResult<Quality> {
    crate::convert::enum_from_name(name, ErrorKind::InvalidRecord, "quality", "'actual', 'flagged' or 'estimated'")
}

/// The rules' parameters for one metric; every field is optional (see `docs/validation.md`):
/// `ValidationConfig(spikes=False, high_limit=Decimal("10"), time_zone="Europe/London")`.
#[pyclass(module = "meterkit", frozen, name = "ValidationConfig")]
#[derive(Clone)]
pub struct PyValidationConfig {
    pub inner: meterkit::vee::ValidationConfig,
}

fn checked(c: meterkit::vee::ValidationConfig) -> PyResult<PyValidationConfig> {
    c.check().py()?;
    Ok(PyValidationConfig { inner: c })
}

#[pymethods]
impl PyValidationConfig {
    #[new]
    #[pyo3(signature = (**fields))]
    fn new(fields: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        match fields {
            None => checked(meterkit::vee::ValidationConfig::default()),
            Some(f) => {
                let v = py_to_json(f.as_any())?;
                let c = serde_json::from_value(v).map_err(|e| {
                    new_err(ErrorKind::Validation, format!("Not a valid validation config: {e}."), None)
                })?;
                checked(c)
            }
        }
    }
    /// The naive baseline: the last-N robust z-score alone.
    #[staticmethod]
    fn naive() -> Self {
        PyValidationConfig { inner: meterkit::vee::ValidationConfig::naive() }
    }
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        checked(from_plain(data, "validation config")?)
    }
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        checked(from_json(text, "validation config")?)
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    /// A field of the configuration (`config.window`, `config.time_zone`, …) as plain Python.
    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let v = serde_json::to_value(&self.inner).unwrap_or_default();
        match v.get(name) {
            Some(x) => json_to_py(py, x),
            None => Err(pyo3::exceptions::PyAttributeError::new_err(format!("ValidationConfig has no field '{name}'"))),
        }
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
    fn __repr__(&self) -> String {
        format!("ValidationConfig({})", serde_json::to_string(&self.inner).unwrap_or_default())
    }
}

/// Something a validation rule found about a record (or a gap before it).
#[pyclass(module = "meterkit", frozen, name = "Finding")]
#[derive(Clone)]
pub struct PyFinding {
    pub inner: meterkit::Finding,
}

use crate::convert::enum_name as name_of;

#[pymethods]
impl PyFinding {
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyFinding { inner: from_plain(data, "finding")? })
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    /// The finding as one CSV row (the CLI's findings file).
    fn to_csv_row(&self) -> String {
        self.inner.to_csv_row()
    }
    /// True for warnings and errors (what goes to the notifier as `anomaly_detected`).
    fn is_alert(&self) -> bool {
        self.inner.is_alert()
    }
    #[getter]
    fn rule(&self) -> String {
        name_of(&self.inner.rule)
    }
    #[getter]
    fn severity(&self) -> String {
        name_of(&self.inner.severity)
    }
    #[getter]
    fn action(&self) -> String {
        name_of(&self.inner.action)
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
    fn id(&self) -> Option<&str> {
        self.inner.id.as_deref()
    }
    #[getter]
    fn timestamp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_utc(py, self.inner.timestamp)
    }
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_opt_decimal(py, self.inner.value)
    }
    /// The expected range `(low, high)`, when the rule has one.
    #[getter]
    fn expected<'py>(&self, py: Python<'py>) -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        self.inner.expected.map(|(a, b)| Ok((from_decimal(py, a)?, from_decimal(py, b)?))).transpose()
    }
    #[getter]
    fn score<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_opt_decimal(py, self.inner.score)
    }
    #[getter]
    fn message(&self) -> &str {
        &self.inner.message
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
    fn __repr__(&self) -> String {
        format!(
            "Finding(rule={:?}, severity={:?}, action={:?}, subject={:?}, id={:?}, timestamp='{}')",
            self.rule(),
            self.severity(),
            self.action(),
            self.inner.subject,
            self.inner.id.as_deref().unwrap_or(""),
            meterkit::time::fmt_ts(self.inner.timestamp)
        )
    }
}

pub fn findings(v: Vec<meterkit::Finding>) -> Vec<PyFinding> {
    v.into_iter().map(|f| PyFinding { inner: f }).collect()
}

/// Findings counted per severity and per rule (for KPI cards and reports).
#[pyclass(module = "meterkit", frozen, name = "ValidationSummary")]
pub struct PyValidationSummary {
    inner: meterkit::vee::ValidationSummary,
}

#[pymethods]
impl PyValidationSummary {
    /// The summary of `findings`.
    #[staticmethod]
    fn of(findings: Vec<Bound<'_, PyFinding>>) -> Self {
        let f: Vec<meterkit::Finding> = findings.iter().map(|x| x.get().inner.clone()).collect();
        PyValidationSummary { inner: meterkit::vee::ValidationSummary::of(&f) }
    }
    #[getter]
    fn total(&self) -> u64 {
        self.inner.total
    }
    #[getter]
    fn info(&self) -> u64 {
        self.inner.info
    }
    #[getter]
    fn warning(&self) -> u64 {
        self.inner.warning
    }
    #[getter]
    fn error(&self) -> u64 {
        self.inner.error
    }
    #[getter]
    fn rejected(&self) -> u64 {
        self.inner.rejected
    }
    #[getter]
    fn flagged(&self) -> u64 {
        self.inner.flagged
    }
    /// `{rule: {"info": n, "warning": n, "error": n}}`.
    #[getter]
    fn by_rule<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner.by_rule)
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "ValidationSummary(total={}, info={}, warning={}, error={}, rejected={}, flagged={})",
            self.inner.total,
            self.inner.info,
            self.inner.warning,
            self.inner.error,
            self.inner.rejected,
            self.inner.flagged
        )
    }
}

/// The streaming validator: keeps per-series state (last N values, ranges, seasonal slots) and
/// checks records one by one or in batches. Safe to share between threads.
#[pyclass(module = "meterkit", frozen, name = "Validator")]
pub struct PyValidator {
    inner: Mutex<meterkit::Validator>,
}

impl PyValidator {
    fn with<T>(&self, f: impl FnOnce(&mut meterkit::Validator) -> T) -> T {
        let mut v = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut v)
    }
}

#[pymethods]
impl PyValidator {
    /// `configs` maps metrics to their configuration; `default` applies to every other metric
    /// (without it, records of other metrics raise `unknown_metric`); `now` fixes the clock the
    /// time rules compare with (default: the wall clock).
    #[new]
    #[pyo3(signature = (configs=None, *, default=None, now=None))]
    fn new(
        configs: Option<&Bound<'_, PyDict>>,
        default: Option<&PyValidationConfig>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut list: Vec<(String, meterkit::vee::ValidationConfig)> = Vec::new();
        if let Some(c) = configs {
            for (k, v) in c.iter() {
                list.push((k.extract()?, v.cast::<PyValidationConfig>().map_err(PyErr::from)?.get().inner.clone()));
            }
        }
        let mut v = meterkit::Validator::new(list).py()?;
        if let Some(d) = default {
            v = v.with_default(d.inner.clone()).py()?;
        }
        if let Some(now) = opt_utc(now, "now", ErrorKind::Validation)? {
            v = v.with_now(now);
        }
        Ok(PyValidator { inner: Mutex::new(v) })
    }
    /// Check one record (updating the series' state); returns its findings.
    fn check(&self, record: &PyUsageRecord) -> Vec<PyFinding> {
        findings(self.with(|v| v.check(&record.inner)))
    }
    /// Check records in order (the GIL is released); returns every finding in order.
    fn check_all(&self, py: Python<'_>, records: &Bound<'_, PyAny>) -> PyResult<Vec<PyFinding>> {
        let recs = records_of(records)?;
        Ok(findings(detached(py, || Ok(self.with(|v| v.check_all(&recs))))?))
    }
    /// Fix the clock of the time rules (`None`: the wall clock).
    fn set_now(&self, now: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let now = opt_utc(now, "now", ErrorKind::Validation)?;
        self.with(|v| v.set_now(now));
        Ok(())
    }
    /// Configure (or reconfigure) `metric`.
    fn set_config(&self, metric: &str, config: &PyValidationConfig) -> PyResult<()> {
        self.with(|v| v.set_config(metric, config.inner.clone())).py()
    }
    /// True when records of `metric` are validated (a config or a default applies).
    fn covers(&self, metric: &str) -> bool {
        self.with(|v| v.covers(metric))
    }
    /// Number of series (tenant, subject, metric) with state.
    fn series_count(&self) -> usize {
        self.with(|v| v.series_count())
    }
    /// Start a transaction: `rollback()` restores the series state as it was here (a batch the
    /// host then fails to store must not leave its values in the state). A transaction still
    /// open is rolled back first (the core's `Validator::begin`).
    fn begin(&self) {
        self.with(meterkit::Validator::begin);
    }
    /// Keep the state changes since `begin()`.
    fn commit(&self) {
        self.with(meterkit::Validator::commit);
    }
    /// Undo the state changes since `begin()` (nothing without an open transaction).
    fn rollback(&self) {
        self.with(meterkit::Validator::rollback);
    }
    fn __repr__(&self) -> String {
        format!("Validator(series={})", self.series_count())
    }
}

/// One reading of a cumulative register (a meter's index).
#[pyclass(module = "meterkit", frozen, name = "MeterReading")]
#[derive(Clone)]
pub struct PyMeterReading {
    pub inner: meterkit::MeterReading,
}

#[pymethods]
impl PyMeterReading {
    #[new]
    #[pyo3(signature = (meter, timestamp, register, *, register_digits=None, register_bits=None, multiplier=None, kind="actual"))]
    fn new(
        meter: String,
        timestamp: &Bound<'_, PyAny>,
        register: &Bound<'_, PyAny>,
        register_digits: Option<u8>,
        register_bits: Option<u8>,
        multiplier: Option<&Bound<'_, PyAny>>,
        kind: &str,
    ) -> PyResult<Self> {
        let t = to_utc(timestamp, "timestamp", ErrorKind::Validation)?;
        let mut r = meterkit::MeterReading::new(meter, t, to_decimal(register, "register")?);
        r.register_digits = register_digits;
        r.register_bits = register_bits;
        if let Some(m) = multiplier {
            r = r.multiplier(to_decimal(m, "multiplier")?);
        }
        let k: meterkit::reading::ReadingKind =
            crate::convert::enum_from_name(kind, ErrorKind::Validation, "kind", "'actual', 'estimated' or 'customer'")?;
        Ok(PyMeterReading { inner: r.kind(k) })
    }
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyMeterReading { inner: from_plain(data, "meter reading")? })
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    #[getter]
    fn meter(&self) -> &str {
        &self.inner.meter
    }
    #[getter]
    fn timestamp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_utc(py, self.inner.timestamp)
    }
    #[getter]
    fn register<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_decimal(py, self.inner.register)
    }
    #[getter]
    fn register_digits(&self) -> Option<u8> {
        self.inner.register_digits
    }
    /// A binary counter's width in bits (32, 64), if given: it wraps at 2^bits.
    #[getter]
    fn register_bits(&self) -> Option<u8> {
        self.inner.register_bits
    }
    #[getter]
    fn multiplier<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_decimal(py, self.inner.multiplier)
    }
    #[getter]
    fn kind(&self) -> String {
        name_of(&self.inner.kind)
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
    fn __repr__(&self) -> String {
        format!(
            "MeterReading(meter={:?}, timestamp='{}', register=Decimal('{}'), kind={:?})",
            self.inner.meter,
            meterkit::time::fmt_ts(self.inner.timestamp),
            meterkit::decimal::fmt_decimal(self.inner.register),
            self.kind()
        )
    }
}

/// Turns successive register readings of each meter into usage records (differences, with
/// rollover and multiplier) and findings (register went back, implausible rollover, …).
#[pyclass(module = "meterkit", frozen, name = "RegisterTracker")]
pub struct PyRegisterTracker {
    inner: Mutex<meterkit::reading::RegisterTracker>,
}

#[pymethods]
impl PyRegisterTracker {
    #[new]
    fn new(tenant: String, metric: String) -> Self {
        PyRegisterTracker { inner: Mutex::new(meterkit::reading::RegisterTracker::new(tenant, metric)) }
    }
    /// One reading: the usage record since the meter's previous reading (if any) and findings.
    fn push(&self, reading: &PyMeterReading) -> (Option<PyUsageRecord>, Vec<PyFinding>) {
        let (r, f) = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(&reading.inner);
        (r.map(|r| PyUsageRecord { inner: r }), findings(f))
    }
    /// Readings in order: every usage record and every finding.
    fn push_all(&self, readings: Vec<Bound<'_, PyMeterReading>>) -> (Vec<PyUsageRecord>, Vec<PyFinding>) {
        let rs: Vec<meterkit::MeterReading> = readings.iter().map(|r| r.get().inner.clone()).collect();
        let (recs, f) = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push_all(&rs);
        (recs.into_iter().map(|r| PyUsageRecord { inner: r }).collect(), findings(f))
    }
    /// The last reading seen of `meter`.
    fn last_reading(&self, meter: &str) -> Option<PyMeterReading> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .last_reading(meter)
            .map(|r| PyMeterReading { inner: r.clone() })
    }
}

/// How gaps are estimated: the interval, how long a gap may be interpolated, how long estimated
/// from history (same hour of week), and the decimals of estimates.
#[pyclass(module = "meterkit", frozen, name = "EstimateConfig")]
#[derive(Clone)]
pub struct PyEstimateConfig {
    pub inner: meterkit::vee::estimate::EstimateConfig,
}

#[pymethods]
impl PyEstimateConfig {
    #[new]
    #[pyo3(signature = (interval_secs, *, max_interpolation_intervals=None, max_estimated_intervals=None, history_weeks=None, decimals=None))]
    fn new(
        interval_secs: i64,
        max_interpolation_intervals: Option<u32>,
        max_estimated_intervals: Option<u32>,
        history_weeks: Option<u32>,
        decimals: Option<u32>,
    ) -> Self {
        let mut c = meterkit::vee::estimate::EstimateConfig::new(interval_secs);
        if let Some(x) = max_interpolation_intervals {
            c.max_interpolation_intervals = x;
        }
        if let Some(x) = max_estimated_intervals {
            c.max_estimated_intervals = x;
        }
        if let Some(x) = history_weeks {
            c.history_weeks = x;
        }
        if let Some(x) = decimals {
            c.decimals = x;
        }
        PyEstimateConfig { inner: c }
    }
    #[getter]
    fn interval_secs(&self) -> i64 {
        self.inner.interval_secs
    }
    #[getter]
    fn max_interpolation_intervals(&self) -> u32 {
        self.inner.max_interpolation_intervals
    }
    #[getter]
    fn max_estimated_intervals(&self) -> u32 {
        self.inner.max_estimated_intervals
    }
    #[getter]
    fn history_weeks(&self) -> u32 {
        self.inner.history_weeks
    }
    #[getter]
    fn decimals(&self) -> u32 {
        self.inner.decimals
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
    fn __repr__(&self) -> String {
        format!("EstimateConfig({})", serde_json::to_string(&self.inner).unwrap_or_default())
    }
}

/// Estimated records (quality `estimated`) filling the gaps in `records` (one series, in time
/// order): interpolation for short gaps, the same hour of previous weeks for longer ones.
#[pyfunction]
pub fn estimate_gaps(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    config: &PyEstimateConfig,
) -> PyResult<Vec<PyUsageRecord>> {
    let recs = records_of(records)?;
    let cfg = config.inner.clone();
    Ok(detached(py, move || meterkit::vee::estimate::estimate_gaps(&recs, &cfg))?
        .into_iter()
        .map(|r| PyUsageRecord { inner: r })
        .collect())
}

/// An alert: consecutive warning and error findings on one series merged (the core's `Alert`).
#[pyclass(module = "meterkit", frozen, name = "Alert")]
#[derive(Clone)]
pub struct PyAlert {
    pub inner: meterkit::vee::alert::Alert,
}

#[pymethods]
impl PyAlert {
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
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
    fn start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_utc(py, self.inner.start)
    }
    #[getter]
    fn end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_utc(py, self.inner.end)
    }
    /// Rule names, in the order they first fired.
    #[getter]
    fn rules(&self) -> Vec<String> {
        self.inner.rules.iter().map(|r| r.as_str().to_string()).collect()
    }
    #[getter]
    fn severity(&self) -> String {
        name_of(&self.inner.severity)
    }
    /// Value of the strongest finding (`Decimal`), in the metric's unit.
    #[getter]
    fn peak<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_opt_decimal(py, self.inner.peak)
    }
    /// Expected range `(low, high)` of the strongest finding.
    #[getter]
    fn expected<'py>(&self, py: Python<'py>) -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        self.inner.expected.map(|(a, b)| Ok((from_decimal(py, a)?, from_decimal(py, b)?))).transpose()
    }
    /// Number of findings merged.
    #[getter]
    fn findings(&self) -> u32 {
        self.inner.findings
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
    fn __repr__(&self) -> String {
        format!(
            "Alert(subject={:?}, start='{}', end='{}', rules={:?}, severity={:?})",
            self.inner.subject,
            meterkit::time::fmt_ts(self.inner.start),
            meterkit::time::fmt_ts(self.inner.end),
            self.rules(),
            self.severity()
        )
    }
}

/// The alerts of a batch: `findings` (from `Validator.check_all(records)`) merged per series —
/// findings within `gap` values of each other are one alert, none in a series' first `warmup`
/// values. Ordered by start.
#[pyfunction]
#[pyo3(signature = (records, findings, *, gap=72, warmup=288))]
pub fn alerts_of(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    findings: &Bound<'_, PyAny>,
    gap: u32,
    warmup: u32,
) -> PyResult<Vec<PyAlert>> {
    let recs = records_of(records)?;
    let mut found = Vec::new();
    for f in findings.try_iter()? {
        found.push(f?.cast::<PyFinding>().map_err(PyErr::from)?.get().inner.clone());
    }
    let cfg = meterkit::vee::alert::AlertConfig { gap, warmup };
    Ok(detached(py, move || meterkit::vee::alert::alerts_of(&recs, &found, cfg))?
        .into_iter()
        .map(|a| PyAlert { inner: a })
        .collect())
}
