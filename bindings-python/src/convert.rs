//! Conversions between Python values and the core's types: `datetime` ↔ `DateTime<Utc>`,
//! `Decimal`/`int`/`float` → `Decimal`, and JSON values ↔ Python objects.

use chrono::{DateTime, FixedOffset, Utc};
use meterkit::{Decimal, ErrorKind};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::{new_err, IntoPy};

static DECIMAL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static DATETIME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static UTC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn decimal_class(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    DECIMAL.import(py, "decimal", "Decimal")
}

fn datetime_class(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    DATETIME.import(py, "datetime", "datetime")
}

/// A tz-aware `datetime` as a UTC instant; a naive one (or any other type) is refused with the
/// error `kind` naming `field`.
pub fn to_utc(obj: &Bound<'_, PyAny>, field: &str, kind: ErrorKind) -> PyResult<DateTime<Utc>> {
    let py = obj.py();
    if !obj.is_instance(datetime_class(py)?)? {
        return Err(new_err(
            kind,
            format!("{field} must be a timezone-aware datetime.datetime, not {}.", obj.get_type().name()?),
            Some(field),
        ));
    }
    let utc_tz = UTC.import(py, "datetime", "timezone")?.getattr("utc")?;
    if obj.getattr("tzinfo")?.is(&utc_tz) {
        return obj.extract::<DateTime<Utc>>();
    }
    if obj.call_method0("utcoffset")?.is_none() {
        return Err(new_err(
            kind,
            format!(
                "{field} is a naive datetime ({}); give it a time zone, e.g. datetime(..., tzinfo=timezone.utc) or ZoneInfo(\"Europe/London\").",
                obj.str()?
            ),
            Some(field),
        ));
    }
    // Any tzinfo (ZoneInfo, pytz, fixed offsets): let Python resolve the instant, then read it
    // as a fixed-offset datetime.
    let utc = obj.call_method1("astimezone", (utc_tz,))?;
    let t: DateTime<FixedOffset> = utc.extract()?;
    Ok(t.with_timezone(&Utc))
}

/// An optional tz-aware datetime.
pub fn opt_utc(obj: Option<&Bound<'_, PyAny>>, field: &str, kind: ErrorKind) -> PyResult<Option<DateTime<Utc>>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => to_utc(o, field, kind).map(Some),
    }
}

/// A UTC instant as a `datetime` with `tzinfo=timezone.utc`.
pub fn from_utc(py: Python<'_>, t: DateTime<Utc>) -> PyResult<Bound<'_, PyAny>> {
    t.into_pyobject(py).map(Bound::into_any)
}

/// A quantity or amount: `decimal.Decimal`, `int`, `float` (through its shortest repr, so `0.1`
/// is exactly `0.1`) or a decimal string. `bool` and NaN/infinity are refused.
pub fn to_decimal(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Decimal> {
    let py = obj.py();
    let bad = |what: String| new_err(ErrorKind::InvalidRecord, what, Some(field));
    if obj.is_instance_of::<PyBool>() {
        return Err(bad(format!("{field} must be a Decimal, int or float, not bool.")));
    }
    if obj.is_instance_of::<PyFloat>() {
        let f: f64 = obj.extract()?;
        return meterkit::decimal::decimal_from_f64(f).map_err(|e| e.with_field(field)).py();
    }
    if obj.is_instance_of::<PyInt>() || obj.is_instance(decimal_class(py)?)? || obj.is_instance_of::<PyString>() {
        let text: String = obj.str()?.extract()?;
        return meterkit::decimal::parse_decimal(&text).map_err(|e| e.with_field(field)).py();
    }
    Err(bad(format!("{field} must be a Decimal, int or float, not {}.", obj.get_type().name()?)))
}

/// A `Decimal` as `decimal.Decimal`, in its shortest exact form.
pub fn from_decimal(py: Python<'_>, d: Decimal) -> PyResult<Bound<'_, PyAny>> {
    decimal_class(py)?.call1((meterkit::decimal::fmt_decimal(d),))
}

/// An optional `Decimal`.
pub fn from_opt_decimal(py: Python<'_>, d: Option<Decimal>) -> PyResult<Bound<'_, PyAny>> {
    match d {
        Some(d) => from_decimal(py, d),
        None => Ok(py.None().into_bound(py)),
    }
}

/// A JSON value as plain Python (`dict`, `list`, `str`, `int`, `float`, `bool`, `None`).
pub fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let items = a.iter().map(|x| json_to_py(py, x)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// Plain Python as a JSON value: `Decimal` becomes its string, a tz-aware `datetime` its RFC 3339
/// UTC text, tuples become arrays; floats stay numbers (the core parses them through their
/// shortest repr).
pub fn py_to_json(obj: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    use serde_json::Value;
    let py = obj.py();
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(obj.extract()?));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Ok(Value::String(obj.str()?.extract::<String>()?));
    }
    if obj.is_instance_of::<PyFloat>() {
        let f: f64 = obj.extract()?;
        return serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| new_err(ErrorKind::Parse, format!("{f} is not a finite number."), None));
    }
    if obj.is_instance_of::<PyString>() {
        return Ok(Value::String(obj.extract()?));
    }
    if obj.is_instance(decimal_class(py)?)? {
        let d = to_decimal(obj, "value")?;
        return Ok(Value::String(meterkit::decimal::fmt_decimal(d)));
    }
    if obj.is_instance(datetime_class(py)?)? {
        return Ok(Value::String(meterkit::time::fmt_ts(to_utc(obj, "timestamp", ErrorKind::Parse)?)));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = serde_json::Map::new();
        for (k, v) in d.iter() {
            m.insert(k.str()?.extract::<String>()?, py_to_json(&v)?);
        }
        return Ok(Value::Object(m));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for x in obj.try_iter()? {
            out.push(py_to_json(&x?)?);
        }
        return Ok(Value::Array(out));
    }
    if obj.hasattr("to_dict")? {
        return py_to_json(&obj.call_method0("to_dict")?);
    }
    Err(new_err(
        ErrorKind::Parse,
        format!("A value of type {} cannot be converted to JSON.", obj.get_type().name()?),
        None,
    ))
}

/// A serde value of a core type as plain Python (the type's canonical JSON shape).
pub fn to_plain<'py, T: serde::Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(v).map_err(|e| new_err(ErrorKind::Parse, e.to_string(), None))?;
    json_to_py(py, &value)
}

/// A core type from plain Python (its canonical JSON shape).
pub fn from_plain<T: serde::de::DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let value = py_to_json(obj)?;
    serde_json::from_value(value).map_err(|e| new_err(ErrorKind::Parse, format!("Not a valid {what}: {e}."), None))
}

/// A core type as its compact canonical JSON (serde_json, as the CLI prints it).
pub fn to_json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| new_err(ErrorKind::Parse, e.to_string(), None))
}

/// A core type from JSON text (a repeated key is refused: `meterkit::json::check_json`).
pub fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> PyResult<T> {
    meterkit::json::check_json(text).map_err(|e| crate::errors::to_py(&e))?;
    serde_json::from_str(text).map_err(|e| {
        let mut err = meterkit::Error::new(ErrorKind::Parse, format!("Not a valid {what}: {e}."));
        if e.line() > 0 {
            err = err.with_line(e.line() as u64);
        }
        crate::errors::to_py(&err)
    })
}

/// The snake_case name of a core enum value, as in JSON (`Quality::Flagged` → `flagged`): the
/// core's `Display`.
pub fn enum_name<T: std::fmt::Display>(v: &T) -> String {
    v.to_string()
}

/// A core enum value from its snake_case name (the core's `FromStr`), or the error `kind` naming
/// `field` and listing the `expected` names.
pub fn enum_from_name<T: std::str::FromStr>(name: &str, kind: ErrorKind, field: &str, expected: &str) -> PyResult<T> {
    name.parse().map_err(|_| new_err(kind, format!("{field} must be {expected}, not {name:?}."), Some(field)))
}
