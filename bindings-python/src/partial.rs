//! Partial rollup states for Spark and Dask (`meterkit.partial_rollup`, `merge_partials`,
//! `finalize_partials`, `import_partials`, `bill_partials`): type conversion only — the core's
//! `meterkit::rollup::partial` does the work.
//!
//! The input rows of `partial_rollup` come through the Arrow path (`arrow::partials`: arrow-rs →
//! the core's `ColumnBatch` → `ColumnarPartial`); the partial states themselves (one row per
//! bucket, few rows) cross as Python lists (a dict of column name → list) and the Python wrapper
//! (`meterkit/_partial.py`) builds and reads the `pyarrow.Table`s.

use meterkit::rollup::partial::{self, PartialColumns};
use meterkit::ErrorKind;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::arrow::PyBucketTable;
use crate::billing::{PyBill, PyBillRequest, PyTariff};
use crate::engine::PyEngine;
use crate::errors::{detached, new_err};
use crate::types::PyRollupSpec;

/// Partial states of one partition's rows (any object with `__arrow_c_stream__`, read through
/// arrow-rs as `rollup_arrow` reads it, into the core's `ColumnarPartial`), as a dict of schema
/// column → list. The column arguments are `rollup_arrow`'s, plus `quality_column`.
#[pyfunction]
#[pyo3(signature = (data, spec, *, tenant=None, subject=None, id_column="id", tenant_column="tenant", subject_column="subject", metric_column=None, quantity_column="quantity", timestamp_column="timestamp", dimensions=None, quality_column=None))]
#[allow(clippy::too_many_arguments)] // rollup_arrow's keyword arguments
pub fn _partial_rollup<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    spec: &PyRollupSpec,
    tenant: Option<String>,
    subject: Option<String>,
    id_column: &str,
    tenant_column: &str,
    subject_column: &str,
    metric_column: Option<String>,
    quantity_column: &str,
    timestamp_column: &str,
    dimensions: Option<Vec<String>>,
    quality_column: Option<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let spec = spec.inner.clone();
    let columns = crate::ColumnArgs {
        tenant,
        subject,
        id_column: Some(id_column.to_string()),
        tenant_column,
        subject_column,
        metric_column,
    };
    let mapping = crate::column_mapping(&spec, columns, quantity_column, timestamp_column, dimensions);
    let (_, batches) = crate::arrow::read(data)?;
    let cols = detached(py, move || {
        let parts = crate::arrow::partials(&batches, &mapping, quality_column.as_deref(), &spec)?;
        partial::to_columns(&parts, &spec)
    })?;
    to_dict(py, cols)
}

/// Merge partial states (a dict of schema column → list, several partitions concatenated).
#[pyfunction]
pub fn _merge_partials<'py>(
    py: Python<'py>,
    spec: &PyRollupSpec,
    columns: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let cols = from_dict(columns, &spec.inner)?;
    let spec = spec.inner.clone();
    let merged = detached(py, move || partial::to_columns(&partial::merge(partial::from_columns(&cols)?)?, &spec))?;
    to_dict(py, merged)
}

fn finalized(
    py: Python<'_>,
    spec: &PyRollupSpec,
    columns: &Bound<'_, PyDict>,
) -> PyResult<Vec<(String, meterkit::Bucket)>> {
    let cols = from_dict(columns, &spec.inner)?;
    let spec = spec.inner.clone();
    detached(py, move || partial::finalize(&partial::from_columns(&cols)?, &spec))
}

/// Buckets of `tenant` (or of the only tenant) from partial states, as a `BucketTable`.
#[pyfunction]
#[pyo3(signature = (spec, columns, tenant=None))]
pub fn _finalize_partials(
    py: Python<'_>,
    spec: &PyRollupSpec,
    columns: &Bound<'_, PyDict>,
    tenant: Option<String>,
) -> PyResult<PyBucketTable> {
    let rows = finalized(py, spec, columns)?;
    let tenant = match tenant {
        Some(t) => t,
        None => {
            let mut tenants: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
            tenants.dedup();
            match tenants.as_slice() {
                [] => String::new(),
                [one] => (*one).to_string(),
                _ => {
                    return Err(new_err(
                        ErrorKind::InvalidQuery,
                        format!("The partial states hold {} tenants; name one with tenant=.", tenants.len()),
                        Some("tenant"),
                    ))
                }
            }
        }
    };
    let buckets = rows.into_iter().filter(|(t, _)| *t == tenant).map(|(_, b)| b).collect();
    let s = &spec.inner;
    PyBucketTable::new(buckets, s.group_by.clone(), s.unique_dims().map(str::to_string).collect())
}

/// Merge partial states into `engine`'s store under `spec` (see `Engine::import_buckets`).
#[pyfunction]
pub fn _import_partials(
    py: Python<'_>,
    engine: &PyEngine,
    spec: &PyRollupSpec,
    columns: &Bound<'_, PyDict>,
) -> PyResult<u32> {
    let cols = from_dict(columns, &spec.inner)?;
    let (spec, e) = (spec.inner.clone(), engine.inner.clone());
    detached(py, move || {
        let parts = partial::merge(partial::from_columns(&cols)?)?;
        let buckets: Vec<_> = parts.into_iter().map(|p| (p.key, p.end, p.state)).collect();
        e.import_buckets(&spec, &buckets)
    })
}

/// A bill rated from partial states (see `meterkit::engine::bill_from_buckets`).
#[pyfunction]
pub fn _bill_partials(
    py: Python<'_>,
    tariff: &PyTariff,
    request: &PyBillRequest,
    spec: &PyRollupSpec,
    columns: &Bound<'_, PyDict>,
) -> PyResult<PyBill> {
    let rows = finalized(py, spec, columns)?;
    let (t, r) = (tariff.inner.clone(), request.inner.clone());
    let inner = detached(py, move || {
        let buckets: Vec<meterkit::Bucket> =
            rows.into_iter().filter(|(tn, _)| *tn == r.tenant).map(|(_, b)| b).collect();
        meterkit::engine::bill_from_buckets(&t, &r, &buckets)
    })?;
    Ok(PyBill { inner })
}

/// The schema's column names for `spec`, in order.
#[pyfunction]
pub fn _partial_columns(spec: &PyRollupSpec) -> Vec<String> {
    partial::column_names(&spec.inner)
}

fn to_dict(py: Python<'_>, c: PartialColumns) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let n = c.tenant.len();
    d.set_item("schema_version", vec![c.schema_version; n])?;
    d.set_item("tenant", c.tenant)?;
    d.set_item("spec", c.spec)?;
    d.set_item("window_start", c.window_start)?;
    d.set_item("window_end", c.window_end)?;
    for (dim, col) in c.groups {
        d.set_item(format!("group_{dim}"), col)?;
    }
    d.set_item("sum", c.sum)?;
    d.set_item("count", c.count)?;
    d.set_item("min", c.min)?;
    d.set_item("min_id", c.min_id)?;
    d.set_item("max", c.max)?;
    d.set_item("max_id", c.max_id)?;
    d.set_item("latest", c.latest)?;
    d.set_item("latest_id", c.latest_id)?;
    d.set_item("latest_ts", c.latest_ts)?;
    d.set_item("first_ts", c.first_ts)?;
    d.set_item("flagged_count", c.flagged_count)?;
    d.set_item("flagged_sum", c.flagged_sum)?;
    d.set_item("estimated_count", c.estimated_count)?;
    d.set_item("estimated_sum", c.estimated_sum)?;
    for (dim, col) in c.uniques {
        d.set_item(format!("unique_{dim}"), PyList::new(py, col)?)?;
    }
    Ok(d)
}

fn col<'py, T: pyo3::conversion::FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, name: &str) -> PyResult<T> {
    match d.get_item(name)? {
        Some(v) => v.extract::<T>().map_err(|e| {
            let e: PyErr = e.into();
            new_err(ErrorKind::Parse, format!("Partial-state column '{name}': {e}"), Some(name))
        }),
        None => Err(new_err(
            ErrorKind::Parse,
            format!("The partial states have no column '{name}' (is this a meterkit partial-state table?)."),
            Some(name),
        )),
    }
}

fn from_dict(d: &Bound<'_, PyDict>, spec: &meterkit::RollupSpec) -> PyResult<PartialColumns> {
    let versions: Vec<i32> = col(d, "schema_version")?;
    let schema_version = match versions.iter().find(|&&v| v != partial::SCHEMA_VERSION) {
        Some(&v) => v,
        None => partial::SCHEMA_VERSION,
    };
    Ok(PartialColumns {
        schema_version,
        tenant: col(d, "tenant")?,
        spec: col(d, "spec")?,
        window_start: col(d, "window_start")?,
        window_end: col(d, "window_end")?,
        groups: spec
            .group_by
            .iter()
            .map(|g| Ok((g.clone(), col(d, &format!("group_{g}"))?)))
            .collect::<PyResult<_>>()?,
        sum: col(d, "sum")?,
        count: col(d, "count")?,
        min: col(d, "min")?,
        min_id: col(d, "min_id")?,
        max: col(d, "max")?,
        max_id: col(d, "max_id")?,
        latest: col(d, "latest")?,
        latest_id: col(d, "latest_id")?,
        latest_ts: col(d, "latest_ts")?,
        first_ts: col(d, "first_ts")?,
        flagged_count: col(d, "flagged_count")?,
        flagged_sum: col(d, "flagged_sum")?,
        estimated_count: col(d, "estimated_count")?,
        estimated_sum: col(d, "estimated_sum")?,
        uniques: spec
            .unique_dims()
            .map(|u| Ok((u.to_string(), col(d, &format!("unique_{u}"))?)))
            .collect::<PyResult<_>>()?,
    })
}

/// Register the functions on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_partial_rollup, m)?)?;
    m.add_function(wrap_pyfunction!(_merge_partials, m)?)?;
    m.add_function(wrap_pyfunction!(_finalize_partials, m)?)?;
    m.add_function(wrap_pyfunction!(_import_partials, m)?)?;
    m.add_function(wrap_pyfunction!(_bill_partials, m)?)?;
    m.add_function(wrap_pyfunction!(_partial_columns, m)?)?;
    Ok(())
}
