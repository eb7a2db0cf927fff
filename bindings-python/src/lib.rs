//! `meterkit._meterkit`: the compiled module of the Python package `meterkit`.
//!
//! The binding converts types and calls the core; it holds no business logic. Every error is a
//! `meterkit.MeterkitError` subclass with a stable `code`, and no Rust panic crosses into Python
//! (see `errors::detached`).

// Python signatures, not Rust ones: keyword arguments are the Python API (`rollup_arrow` has 13),
// and pyo3 extracts arguments as owned values.
#![allow(clippy::too_many_arguments, clippy::needless_pass_by_value)]
// The `__repr__`s build their text with `push_str(&format!(..))` (left as they were).
#![allow(clippy::format_push_string)]

mod arrow;
mod billing;
mod convert;
mod engine;
mod errors;
mod partial;
mod types;
mod validation;

use meterkit::ErrorKind;
use pyo3::prelude::*;

use crate::errors::detached;

/// Roll up a DataFrame/Arrow table under `spec` without a store (no idempotency checks, no
/// persistence): the core's `ColumnarRollup::run`. Returns a `BucketTable` with a
/// `tenant` column, ordered by tenant, window start and group. `threads > 1` splits the tenants
/// between that many threads (`0` means one per CPU).
#[pyfunction]
#[pyo3(
    text_signature = "(data, spec, *, tenant=None, subject=None, id_column='id', tenant_column='tenant', subject_column='subject', metric_column=None, quantity_column='quantity', timestamp_column='timestamp', dimensions=None, threads=1)"
)]
#[pyo3(signature = (data, spec, *, tenant=None, subject=None, id_column=Some("id".to_string()), tenant_column="tenant", subject_column="subject", metric_column=None, quantity_column="quantity", timestamp_column="timestamp", dimensions=None, threads=1))]
fn rollup_arrow(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    spec: &types::PyRollupSpec,
    tenant: Option<String>,
    subject: Option<String>,
    id_column: Option<String>,
    tenant_column: &str,
    subject_column: &str,
    metric_column: Option<String>,
    quantity_column: &str,
    timestamp_column: &str,
    dimensions: Option<Vec<String>>,
    threads: usize,
) -> PyResult<arrow::PyBucketTable> {
    let spec = spec.inner.clone();
    let columns = ColumnArgs { tenant, subject, id_column, tenant_column, subject_column, metric_column };
    let mapping = column_mapping(&spec, columns, quantity_column, timestamp_column, dimensions);
    let (_, batches) = arrow::read(data)?;
    let table = detached(py, move || arrow::rollup(&batches, &mapping, &spec, threads))?;
    arrow::PyBucketTable::from_table(table)
}

/// The key-column keyword arguments of `rollup_arrow` and `partial_rollup`.
pub(crate) struct ColumnArgs<'a> {
    pub tenant: Option<String>,
    pub subject: Option<String>,
    pub id_column: Option<String>,
    pub tenant_column: &'a str,
    pub subject_column: &'a str,
    pub metric_column: Option<String>,
}

/// The column mapping the keyword arguments of `rollup_arrow` and `partial_rollup` name for
/// `spec` (a fixed tenant or subject overrides its column; no metric column: the spec's metric).
pub(crate) fn column_mapping(
    spec: &meterkit::RollupSpec,
    c: ColumnArgs<'_>,
    quantity_column: &str,
    timestamp_column: &str,
    dimensions: Option<Vec<String>>,
) -> arrow::Mapping {
    arrow::Mapping {
        id: c.id_column,
        tenant: arrow::Source::pick(c.tenant, c.tenant_column),
        subject: subject_override(spec, c.subject)
            .unwrap_or_else(|| arrow::Source::Column(c.subject_column.to_string())),
        metric: match c.metric_column {
            Some(m) => arrow::Source::Column(m),
            None => arrow::Source::Const(spec.metric.clone()),
        },
        quantity: quantity_column.to_string(),
        timestamp: timestamp_column.to_string(),
        end: None,
        dimensions: spec_dimensions(spec, dimensions),
    }
}

/// `dimensions` plus the spec's `group_by` and `unique` dimensions (not `subject`), in order.
pub(crate) fn spec_dimensions(spec: &meterkit::RollupSpec, dimensions: Option<Vec<String>>) -> Vec<String> {
    let mut dims: Vec<String> = dimensions.unwrap_or_default();
    for d in spec.group_by.iter().map(String::as_str).chain(spec.unique_dims()) {
        if d != meterkit::rollup::SUBJECT && !dims.iter().any(|x| x == d) {
            dims.push(d.to_string());
        }
    }
    dims
}

/// A constant subject when given; store-less rollups read no subject column unless the spec
/// groups or counts by subject.
pub(crate) fn subject_override(spec: &meterkit::RollupSpec, subject: Option<String>) -> Option<arrow::Source> {
    if let Some(s) = subject {
        return Some(arrow::Source::Const(s));
    }
    let needs = spec.group_by.iter().any(|d| d == meterkit::rollup::SUBJECT)
        || spec.unique_dims().any(|d| d == meterkit::rollup::SUBJECT);
    (!needs).then(|| arrow::Source::Const("-".to_string()))
}

/// Parse a decimal from text (plain or scientific) exactly, as the core does.
#[pyfunction]
fn parse_decimal<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    use crate::errors::IntoPy;
    convert::from_decimal(py, meterkit::decimal::parse_decimal(text).py()?)
}

/// A float as a Decimal through its shortest repr (`0.1` → `Decimal('0.1')`).
#[pyfunction]
fn decimal_from_float(py: Python<'_>, value: f64) -> PyResult<Bound<'_, PyAny>> {
    use crate::errors::IntoPy;
    convert::from_decimal(py, meterkit::decimal::decimal_from_f64(value).py()?)
}

/// Every stable error code, in the core's order.
#[pyfunction]
fn error_codes() -> Vec<&'static str> {
    ErrorKind::ALL.iter().map(|k| k.code()).collect()
}

/// The core's enumerations by name (`error_code`, `error_kind`, `quality`, `severity`, `action`,
/// `rule`): every value, in the core's order — what the stubs' `Literal` types must list.
#[pyfunction]
fn enum_values() -> std::collections::BTreeMap<&'static str, Vec<String>> {
    use meterkit::vee::{Action, Rule, Severity};
    let names = |v: Vec<&str>| v.into_iter().map(str::to_string).collect::<Vec<_>>();
    std::collections::BTreeMap::from([
        ("error_code", names(ErrorKind::ALL.iter().map(|k| k.code()).collect())),
        ("error_kind", ErrorKind::ALL.iter().map(|k| errors::kind_name(*k)).collect()),
        ("quality", names(meterkit::record::Quality::NAMES.iter().map(|(_, n)| *n).collect())),
        ("severity", names(Severity::NAMES.iter().map(|(_, n)| *n).collect())),
        ("action", names(Action::NAMES.iter().map(|(_, n)| *n).collect())),
        ("rule", names(Rule::NAMES.iter().map(|(_, n)| *n).collect())),
    ])
}

#[pyfunction]
#[doc(hidden)]
fn _panic_for_tests(py: Python<'_>) -> PyResult<()> {
    detached(py, || -> meterkit::Result<()> { panic!("deliberate panic to test the FFI boundary") })
}

#[pymodule]
fn _meterkit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<types::PyUsageRecord>()?;
    m.add_class::<types::PyRollupSpec>()?;
    m.add_class::<types::PyQuery>()?;
    m.add_class::<types::PyBucket>()?;
    m.add_class::<types::PyRejection>()?;
    m.add_class::<types::PyIngestReport>()?;
    m.add_class::<types::PyTotals>()?;
    m.add_class::<types::PyEvent>()?;
    m.add_class::<engine::PyEngine>()?;
    m.add_class::<arrow::PyBucketTable>()?;
    m.add_class::<billing::PyTariff>()?;
    m.add_class::<billing::PyBillRequest>()?;
    m.add_class::<billing::PyBillLine>()?;
    m.add_class::<billing::PyBill>()?;
    m.add_class::<billing::PyPreparedLoad>()?;
    m.add_class::<billing::PyInvoice>()?;
    m.add_class::<billing::PyQuota>()?;
    m.add_class::<billing::PySharedMeter>()?;
    m.add_class::<validation::PyValidationConfig>()?;
    m.add_class::<validation::PyFinding>()?;
    m.add_class::<validation::PyValidationSummary>()?;
    m.add_class::<validation::PyValidator>()?;
    m.add_class::<validation::PyMeterReading>()?;
    m.add_class::<validation::PyRegisterTracker>()?;
    m.add_class::<validation::PyEstimateConfig>()?;
    m.add_function(wrap_pyfunction!(validation::estimate_gaps, m)?)?;
    m.add_class::<validation::PyAlert>()?;
    m.add_function(wrap_pyfunction!(validation::alerts_of, m)?)?;
    m.add_function(wrap_pyfunction!(billing::allocate, m)?)?;
    m.add_function(wrap_pyfunction!(billing::month_period, m)?)?;
    m.add_function(wrap_pyfunction!(billing::local_instant, m)?)?;
    m.add_function(wrap_pyfunction!(billing::window_span, m)?)?;
    m.add_function(wrap_pyfunction!(billing::reminders_due, m)?)?;
    m.add_function(wrap_pyfunction!(rollup_arrow, m)?)?;
    partial::register(m)?;
    m.add_function(wrap_pyfunction!(parse_decimal, m)?)?;
    m.add_function(wrap_pyfunction!(decimal_from_float, m)?)?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(enum_values, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
