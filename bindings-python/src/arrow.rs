//! The columnar path, conversion only: objects with `__arrow_c_stream__` (pyarrow tables, polars
//! and pandas ≥ 2.2 DataFrames) are read through arrow-rs (pyo3-arrow's PyCapsule import) into
//! the core's `ColumnBatch`; query results go out as an Arrow stream (`BucketTable`) that
//! pyarrow, polars and pandas read. Ingest is `Engine::ingest_columns`, the store-less rollup
//! `ColumnarRollup::run`: no business logic here, and no `unsafe` (the FFI is arrow-rs's).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, Decimal128Array, Int64Array, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray, TimestampNanosecondArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use meterkit::record::Quality;
use meterkit::rollup::columnar::{ColumnBatch, ColumnarRollup, Quantities, StrColumn};
use meterkit::rollup::partial::ColumnarPartial;
use meterkit::rollup::BucketState;
use meterkit::store::BucketKey;
use meterkit::{Decimal, Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict, PyList};
use pyo3_arrow::ffi::ArrayIterator;
use pyo3_arrow::PyRecordBatchReader;

fn parse_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Parse, msg)
}

// ---------------------------------------------------------------------------------------------
// Import.

/// The batches of any object with `__arrow_c_stream__`, read through arrow-rs.
///
/// # Errors
/// `TypeError` for an object without `__arrow_c_stream__`; `ValueError` for a stream already
/// consumed; `ParseError` when the stream fails.
pub fn read(data: &Bound<'_, PyAny>) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    if !data.hasattr("__arrow_c_stream__")? {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "expected an object with __arrow_c_stream__ (a pyarrow Table, a polars DataFrame, a pandas >= 2.2 \
             DataFrame with pyarrow installed), not {}",
            data.get_type().name()?
        )));
    }
    let reader = data.extract::<PyRecordBatchReader>()?.into_reader()?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, ArrowError>>()
        .map_err(|e| crate::errors::to_py(&parse_err(format!("The Arrow stream failed: {e}."))))?;
    Ok((schema, batches))
}

/// Where a record field comes from: a constant or a column.
pub enum Source {
    /// The same value on every row.
    Const(String),
    /// The column of this name.
    Column(String),
}

impl Source {
    /// `constant` when given, else the column.
    pub fn pick(constant: Option<String>, column: &str) -> Self {
        match constant {
            Some(c) => Source::Const(c),
            None => Source::Column(column.to_string()),
        }
    }
}

/// How columns map to record fields.
pub struct Mapping {
    /// The id column; `None` only for store-less rollups (the later row wins a tie of `latest`).
    pub id: Option<String>,
    /// Tenant.
    pub tenant: Source,
    /// Subject.
    pub subject: Source,
    /// Metric.
    pub metric: Source,
    /// The quantity column.
    pub quantity: String,
    /// The timestamp column (tz-aware).
    pub timestamp: String,
    /// The end column (tz-aware), if any.
    pub end: Option<String>,
    /// Dimension columns, named as the dimensions.
    pub dimensions: Vec<String>,
}

/// A string column: a constant, one value per row, or an Arrow dictionary's values and codes
/// (passed to the core as they are: `StrColumn::Dict`, no string per row).
enum Strs<'a> {
    Const(&'a str),
    Plain(Vec<Option<&'a str>>),
    Dict(Vec<&'a str>, Vec<u32>),
}

impl<'a> Strs<'a> {
    fn column(&'a self) -> StrColumn<'a> {
        match self {
            Strs::Const(c) => StrColumn::Const(Some(c)),
            Strs::Plain(v) => StrColumn::Plain(v),
            Strs::Dict(values, codes) => StrColumn::Dict { values, codes },
        }
    }

    /// The first null row, if any.
    fn first_null(&self) -> Option<usize> {
        match self {
            Strs::Const(_) => None,
            Strs::Plain(v) => v.iter().position(Option::is_none),
            Strs::Dict(_, codes) => codes.iter().position(|&c| c == DICT_NULL),
        }
    }
}

/// The core's null code in a `StrColumn::Dict`.
const DICT_NULL: u32 = u32::MAX;

/// Quantities: integer mantissas at a scale (borrowed from an `int64` column as they are) or
/// decimals.
enum Qty<'a> {
    Scaled(std::borrow::Cow<'a, [i64]>, u32),
    Decimal(Vec<Decimal>),
}

/// One Arrow batch as the core's columns, borrowing the Arrow strings.
struct Cols<'a> {
    metric: Strs<'a>,
    tenant: Strs<'a>,
    subject: Strs<'a>,
    ids: Option<Vec<&'a str>>,
    secs: Vec<i64>,
    nanos: Option<Vec<u32>>,
    ends: Option<Vec<Option<DateTime<Utc>>>>,
    qty: Qty<'a>,
    dims: Vec<(&'a str, Strs<'a>)>,
}

impl<'a> Cols<'a> {
    /// Read `batch` under `m`; `first_row` (0-based, of the whole stream) numbers error lines.
    fn new(batch: &'a RecordBatch, m: &'a Mapping, first_row: usize) -> meterkit::Result<Self> {
        let col = |name: &'a str| Column::of(batch, name, first_row);
        let strs = |s: &'a Source| -> meterkit::Result<Strs<'a>> {
            Ok(match s {
                Source::Const(c) => Strs::Const(c),
                Source::Column(c) => {
                    let column = col(c)?;
                    let values = column.str_column()?;
                    if let Some(i) = values.first_null() {
                        return Err(column.null_at(i));
                    }
                    values
                }
            })
        };
        let (secs, nanos) = col(&m.timestamp)?.instants()?;
        Ok(Cols {
            metric: strs(&m.metric)?,
            tenant: strs(&m.tenant)?,
            subject: strs(&m.subject)?,
            ids: m.id.as_deref().map(|c| col(c)?.required_strings()).transpose()?,
            secs,
            nanos: nanos.iter().any(|n| *n != 0).then_some(nanos),
            ends: m.end.as_deref().map(|c| col(c)?.optional_instants()).transpose()?,
            qty: col(&m.quantity)?.quantities()?,
            dims: m
                .dimensions
                .iter()
                .map(|d| Ok((d.as_str(), col(d)?.str_column()?)))
                .collect::<meterkit::Result<_>>()?,
        })
    }

    fn batch(&self) -> ColumnBatch<'_> {
        ColumnBatch {
            metric: self.metric.column(),
            tenant: self.tenant.column(),
            subject: self.subject.column(),
            timestamps: &self.secs,
            nanos: self.nanos.as_deref(),
            ends: self.ends.as_deref(),
            quantities: match &self.qty {
                Qty::Scaled(m, scale) => Quantities::Scaled { mantissas: m, scale: *scale },
                Qty::Decimal(d) => Quantities::Decimal(d),
            },
            ids: self.ids.as_deref(),
            dimensions: self.dims.iter().map(|(n, v)| (*n, v.column())).collect(),
        }
    }
}

/// One named column of one batch.
struct Column<'a> {
    name: &'a str,
    array: &'a ArrayRef,
    first_row: usize,
}

impl<'a> Column<'a> {
    fn of(batch: &'a RecordBatch, name: &'a str, first_row: usize) -> meterkit::Result<Self> {
        let array = batch.column_by_name(name).ok_or_else(|| {
            let have: Vec<&str> = batch.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
            Error::new(ErrorKind::InvalidRecord, format!("The data has no column '{name}' (columns: {have:?})."))
                .with_field(name)
        })?;
        Ok(Column { name, array, first_row })
    }

    fn bad(&self, why: &str) -> Error {
        parse_err(format!("Column '{}' has Arrow type {}, {why}.", self.name, self.array.data_type()))
            .with_field(self.name)
    }

    /// An error at row `i` of this batch.
    fn err(&self, i: usize, msg: String) -> Error {
        parse_err(msg).with_field(self.name).with_line((self.first_row + i) as u64 + 1)
    }

    fn null_at(&self, i: usize) -> Error {
        self.err(i, format!("Column '{}' is null in row {}.", self.name, self.first_row + i + 1))
    }

    fn no_nulls(&self) -> meterkit::Result<()> {
        match (0..self.array.len()).find(|&i| self.array.is_null(i)) {
            Some(i) => Err(self.null_at(i)),
            None => Ok(()),
        }
    }

    /// A string column (`None` for nulls), a dictionary's values looked up per row.
    fn strings(&self) -> meterkit::Result<Vec<Option<&'a str>>> {
        Ok(match self.str_column()? {
            Strs::Const(c) => vec![Some(c); self.array.len()],
            Strs::Plain(v) => v,
            Strs::Dict(values, codes) => codes.iter().map(|&c| (c != DICT_NULL).then(|| values[c as usize])).collect(),
        })
    }

    /// A string column as the core takes it: plain values, or a dictionary-encoded (categorical)
    /// column's values and codes as they are (a null key or a null value: the null code).
    fn str_column(&self) -> meterkit::Result<Strs<'a>> {
        let a: &'a ArrayRef = self.array;
        match a.data_type() {
            DataType::Dictionary(_, value_type)
                if matches!(**value_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) =>
            {
                let dict = a.as_any_dictionary();
                let values = plain_strings(dict.values()).ok_or_else(|| self.bad("not a string column"))?;
                if u32::try_from(values.len()).map_or(true, |n| n == DICT_NULL) {
                    return Err(self.bad("a dictionary of more than 2^32-1 values"));
                }
                let keys = dict.normalized_keys();
                let codes = keys
                    .iter()
                    .enumerate()
                    .map(|(i, &k)| if a.is_null(i) || values[k].is_none() { DICT_NULL } else { k as u32 })
                    .collect();
                Ok(Strs::Dict(values.into_iter().map(Option::unwrap_or_default).collect(), codes))
            }
            _ => plain_strings(a).map(Strs::Plain).ok_or_else(|| self.bad("not a string column")),
        }
    }

    /// A string column without nulls.
    fn required_strings(&self) -> meterkit::Result<Vec<&'a str>> {
        let values = self.strings()?;
        values.iter().enumerate().map(|(i, v)| v.ok_or_else(|| self.null_at(i))).collect()
    }

    /// Quantities, exact: integers (and decimal128 values that fit an `i64`) at one scale,
    /// anything else as decimals (floats through their shortest repr, text parsed).
    fn quantities(&self) -> meterkit::Result<Qty<'a>> {
        self.no_nulls()?;
        let a = self.array;
        let at = |i: usize| move |e: Error| e.with_field(self.name).with_line((self.first_row + i) as u64 + 1);
        Ok(match a.data_type() {
            DataType::Int8 => Qty::Scaled(ints::<Int8Type>(a).into(), 0),
            DataType::Int16 => Qty::Scaled(ints::<Int16Type>(a).into(), 0),
            DataType::Int32 => Qty::Scaled(ints::<Int32Type>(a).into(), 0),
            DataType::Int64 => Qty::Scaled(std::borrow::Cow::Borrowed(a.as_primitive::<Int64Type>().values()), 0),
            DataType::UInt8 => Qty::Scaled(ints::<UInt8Type>(a).into(), 0),
            DataType::UInt16 => Qty::Scaled(ints::<UInt16Type>(a).into(), 0),
            DataType::UInt32 => Qty::Scaled(ints::<UInt32Type>(a).into(), 0),
            DataType::UInt64 => {
                let v = a.as_primitive::<UInt64Type>().values();
                match v.iter().map(|&x| i64::try_from(x)).collect::<Result<Vec<_>, _>>() {
                    Ok(small) => Qty::Scaled(small.into(), 0),
                    Err(_) => Qty::Decimal(v.iter().map(|&x| Decimal::from(x)).collect()),
                }
            }
            DataType::Float64 | DataType::Float32 => {
                let floats: Vec<f64> = if let DataType::Float64 = a.data_type() {
                    a.as_primitive::<arrow_array::types::Float64Type>().values().to_vec()
                } else {
                    a.as_primitive::<arrow_array::types::Float32Type>().values().iter().map(|&x| f64::from(x)).collect()
                };
                let decimals =
                    floats.iter().enumerate().map(|(i, &x)| meterkit::decimal::decimal_from_f64(x).map_err(at(i)));
                Qty::Decimal(decimals.collect::<meterkit::Result<_>>()?)
            }
            DataType::Decimal128(_, scale) => {
                let scale = u32::try_from(*scale)
                    .ok()
                    .filter(|s| *s <= 28)
                    .ok_or_else(|| self.bad("a decimal scale outside 0-28"))?;
                let v = a.as_primitive::<arrow_array::types::Decimal128Type>().values();
                match v.iter().map(|&m| i64::try_from(m)).collect::<Result<Vec<_>, _>>() {
                    Ok(small) => Qty::Scaled(small.into(), scale),
                    Err(_) => Qty::Decimal(
                        v.iter()
                            .enumerate()
                            .map(|(i, &m)| {
                                Decimal::try_from_i128_with_scale(m, scale)
                                    .map_err(|e| self.err(i, format!("Column '{}': {e}.", self.name)))
                            })
                            .collect::<meterkit::Result<_>>()?,
                    ),
                }
            }
            DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal256(..) => {
                return Err(self.bad("only 128-bit decimals are supported"))
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
                let text = self.required_strings()?;
                let decimals = text.iter().enumerate().map(|(i, s)| meterkit::decimal::parse_decimal(s).map_err(at(i)));
                Qty::Decimal(decimals.collect::<meterkit::Result<_>>()?)
            }
            DataType::Timestamp(..) => return Err(self.bad("a timestamp, not a number")),
            _ => return Err(self.bad("which is not supported here")),
        })
    }

    /// A quality column: `actual`, `flagged` or `estimated` per row (null: `actual`).
    fn qualities(&self) -> meterkit::Result<Vec<Quality>> {
        self.strings()?
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                None => Ok(Quality::Actual),
                Some(name) => name.parse::<Quality>().map_err(|_| {
                    self.err(
                        i,
                        format!("Column '{}': unknown quality '{name}' (actual, flagged, estimated).", self.name),
                    )
                }),
            })
            .collect()
    }

    /// A tz-aware timestamp column's values and how many of them make a second.
    fn timestamps(&self) -> meterkit::Result<(&'a [i64], i64)> {
        let DataType::Timestamp(unit, tz) = self.array.data_type() else {
            return Err(self.bad("not a timestamp with a time zone"));
        };
        if tz.is_none() {
            return Err(self.bad(
                "a timestamp without a time zone (naive); localize it first, e.g. pandas \
                 .dt.tz_localize(\"Europe/London\") or polars .dt.replace_time_zone(...)",
            ));
        }
        let a: &'a ArrayRef = self.array;
        Ok(match unit {
            TimeUnit::Second => (a.as_primitive::<TimestampSecondType>().values(), 1),
            TimeUnit::Millisecond => (a.as_primitive::<TimestampMillisecondType>().values(), 1_000),
            TimeUnit::Microsecond => (a.as_primitive::<TimestampMicrosecondType>().values(), 1_000_000),
            TimeUnit::Nanosecond => (a.as_primitive::<TimestampNanosecondType>().values(), 1_000_000_000),
        })
    }

    /// A tz-aware timestamp column as instants (`None` for nulls).
    fn optional_instants(&self) -> meterkit::Result<Vec<Option<DateTime<Utc>>>> {
        let (values, per_sec) = self.timestamps()?;
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if self.array.is_null(i) {
                    return Ok(None);
                }
                let (secs, nanos) = split_instant(v, per_sec);
                DateTime::from_timestamp(secs, nanos)
                    .map(Some)
                    .ok_or_else(|| self.err(i, format!("Column '{}': timestamp out of range.", self.name)))
            })
            .collect()
    }

    /// A tz-aware timestamp column without nulls, as Unix seconds and their nanoseconds (split
    /// arithmetically; chrono is asked only about instants far outside ±8·10^12 s).
    fn instants(&self) -> meterkit::Result<(Vec<i64>, Vec<u32>)> {
        let (values, per_sec) = self.timestamps()?;
        self.no_nulls()?;
        let split = |v: &[i64], per: i64| -> (Vec<i64>, Vec<u32>) { v.iter().map(|&x| split_instant(x, per)).unzip() };
        let (secs, nanos) = match per_sec {
            1 => split(values, 1),
            1_000 => split(values, 1_000),
            1_000_000 => split(values, 1_000_000),
            _ => split(values, 1_000_000_000),
        };
        let far = |s: i64| !(-8_000_000_000_000..8_000_000_000_000).contains(&s);
        if let Some(i) = secs.iter().zip(&nanos).position(|(&s, &n)| far(s) && DateTime::from_timestamp(s, n).is_none())
        {
            return Err(self.err(i, format!("Column '{}': timestamp out of range.", self.name)));
        }
        Ok((secs, nanos))
    }
}

/// `(seconds, nanoseconds)` of a timestamp of `per_sec` units a second (1, 10^3, 10^6, 10^9).
#[inline]
fn split_instant(v: i64, per_sec: i64) -> (i64, u32) {
    (v.div_euclid(per_sec), (v.rem_euclid(per_sec) * (1_000_000_000 / per_sec)) as u32)
}

/// The values of a plain string array (`None` for nulls); `None` for another type.
fn plain_strings(a: &ArrayRef) -> Option<Vec<Option<&str>>> {
    match a.data_type() {
        DataType::Utf8 => Some(a.as_string::<i32>().iter().collect()),
        DataType::LargeUtf8 => Some(a.as_string::<i64>().iter().collect()),
        DataType::Utf8View => Some(a.as_string_view().iter().collect()),
        _ => None,
    }
}

/// An integer column widened to `i64`.
fn ints<T: ArrowPrimitiveType>(a: &ArrayRef) -> Vec<i64>
where
    T::Native: Into<i64>,
{
    a.as_primitive::<T>().values().iter().map(|&v| v.into()).collect()
}

/// Ingest the stream's rows as one batch (`Engine::ingest_columns`): all-or-nothing for the
/// conversion, the engine's usual report for the rows.
pub fn ingest(
    engine: &meterkit::Engine,
    schema: SchemaRef,
    batches: &[RecordBatch],
    m: &Mapping,
) -> meterkit::Result<meterkit::engine::IngestReport> {
    let one = arrow_select::concat::concat_batches(&schema, batches)
        .map_err(|e| parse_err(format!("The Arrow batches do not concatenate: {e}.")))?;
    let cols = Cols::new(&one, m, 0)?;
    engine.ingest_columns(&cols.batch())
}

/// Roll the stream up under `spec` without a store (`ColumnarRollup::run`, `threads` threads).
pub fn rollup(
    batches: &[RecordBatch],
    m: &Mapping,
    spec: &meterkit::RollupSpec,
    threads: usize,
) -> meterkit::Result<Table> {
    let mut first_row = 0;
    let mut cols = Vec::with_capacity(batches.len());
    for b in batches {
        cols.push(Cols::new(b, m, first_row)?);
        first_row += b.num_rows();
    }
    let column_batches: Vec<ColumnBatch<'_>> = cols.iter().map(Cols::batch).collect();
    let buckets = ColumnarRollup::run(std::slice::from_ref(spec), &column_batches, threads)?;
    let unique = spec.unique_dims().map(str::to_string).collect();
    Ok(Table {
        rows: bucket_rows(buckets, spec),
        with_tenant: true,
        with_subject_metric: false,
        metric: String::new(),
        group_by: spec.group_by.clone(),
        unique,
    })
}

/// Partial states of the stream's rows under `spec` (the core's `ColumnarPartial`, batch by
/// batch): `quality`, when given, names a string column of `actual`/`flagged`/`estimated` (null:
/// `actual`). Error lines count rows of the whole stream.
pub fn partials(
    batches: &[RecordBatch],
    m: &Mapping,
    quality: Option<&str>,
    spec: &meterkit::RollupSpec,
) -> meterkit::Result<Vec<meterkit::rollup::partial::Partial>> {
    let mut kernel = ColumnarPartial::new(spec)?;
    let mut first_row = 0;
    for b in batches {
        let cols = Cols::new(b, m, first_row)?;
        let qualities = quality.map(|c| Column::of(b, c, first_row)?.qualities()).transpose()?;
        kernel.add(&cols.batch(), qualities.as_deref()).map_err(|e| match e.line() {
            Some(line) => e.with_line(line + first_row as u64),
            None => e,
        })?;
        first_row += b.num_rows();
    }
    kernel.finish()
}

/// The kernel's buckets (keys carry the tenant) as result rows.
fn bucket_rows(buckets: Vec<(BucketKey, i64, BucketState)>, spec: &meterkit::RollupSpec) -> Vec<Row> {
    buckets
        .into_iter()
        .map(|(key, end, state)| Row {
            tenant: Some(key.tenant),
            start: key.start,
            end,
            subject: None,
            group: key.group,
            sum: state.sum,
            count: state.count,
            min: state.min,
            max: state.max,
            mean: state.mean(),
            at: (state.first_at, state.latest.as_ref().map(|l| l.timestamp)),
            latest: state.latest.map(|l| l.quantity),
            unique: spec.unique_dims().map(|d| state.uniques.get(d).map_or(0, |s| s.len() as u64)).collect(),
            quality: (state.flagged_count, state.flagged_sum, state.estimated_count, state.estimated_sum),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Export.

/// One result row (a bucket).
pub struct Row {
    tenant: Option<String>,
    start: i64,
    end: i64,
    subject: Option<String>,
    group: Vec<Option<String>>,
    sum: Decimal,
    count: u64,
    min: Option<Decimal>,
    max: Option<Decimal>,
    mean: Option<Decimal>,
    latest: Option<Decimal>,
    /// `(first_at, last_at)`: the times of the earliest and latest records.
    at: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    unique: Vec<u64>,
    /// `(flagged_count, flagged_sum, estimated_count, estimated_sum)`.
    quality: (u64, Decimal, u64, Decimal),
}

/// Result rows and their column layout.
pub struct Table {
    rows: Vec<Row>,
    with_tenant: bool,
    with_subject_metric: bool,
    metric: String,
    group_by: Vec<String>,
    unique: Vec<String>,
}

impl Table {
    fn from_buckets(buckets: Vec<meterkit::Bucket>, group_by: Vec<String>, unique: Vec<String>) -> Self {
        let dims: Vec<String> = group_by.into_iter().filter(|d| d != meterkit::rollup::SUBJECT).collect();
        let metric = buckets.first().map(|b| b.metric.clone()).unwrap_or_default();
        let rows = buckets
            .into_iter()
            .map(|b| Row {
                tenant: None,
                start: b.window_start.timestamp(),
                end: b.window_end.timestamp(),
                subject: b.subject.clone(),
                group: dims.iter().map(|d| b.group.get(d).cloned().flatten()).collect(),
                sum: b.sum,
                count: b.count,
                min: b.min,
                max: b.max,
                mean: b.mean,
                latest: b.latest,
                at: (b.first_at, b.last_at),
                unique: unique.iter().map(|d| b.unique.get(d).copied().unwrap_or(0)).collect(),
                quality: (b.flagged_count, b.flagged_sum, b.estimated_count, b.estimated_sum),
            })
            .collect();
        Table { rows, with_tenant: false, with_subject_metric: true, metric, group_by: dims, unique }
    }

    /// The columns, in order: `(name, array)`.
    fn columns(&self) -> Result<Vec<(String, ArrayRef)>, ArrowError> {
        let r = &self.rows;
        let mut cols: Vec<(String, ArrayRef)> = Vec::new();
        let mut push = |name: &str, a: ArrayRef| cols.push((name.to_string(), a));
        if self.with_tenant {
            push("tenant", strs(r.iter().map(|x| x.tenant.clone())));
        }
        push("window_start", ts(r.iter().map(|x| x.start))?);
        push("window_end", ts(r.iter().map(|x| x.end))?);
        if self.with_subject_metric {
            push("subject", strs(r.iter().map(|x| x.subject.clone())));
            push("metric", strs(r.iter().map(|_| Some(self.metric.clone()))));
        }
        for (k, d) in self.group_by.iter().enumerate() {
            push(d, strs(r.iter().map(|x| x.group.get(k).cloned().flatten())));
        }
        push("sum", decimals(r.iter().map(|x| Some(x.sum)).collect())?);
        push("count", ints_out(r.iter().map(|x| x.count)));
        push("min", decimals(r.iter().map(|x| x.min).collect())?);
        push("max", decimals(r.iter().map(|x| x.max).collect())?);
        push("mean", decimals(r.iter().map(|x| x.mean).collect())?);
        push("latest", decimals(r.iter().map(|x| x.latest).collect())?);
        for (k, d) in self.unique.iter().enumerate() {
            push(&format!("unique_{d}"), ints_out(r.iter().map(|x| x.unique.get(k).copied().unwrap_or(0))));
        }
        push("flagged_count", ints_out(r.iter().map(|x| x.quality.0)));
        push("flagged_sum", decimals(r.iter().map(|x| Some(x.quality.1)).collect())?);
        push("estimated_count", ints_out(r.iter().map(|x| x.quality.2)));
        push("estimated_sum", decimals(r.iter().map(|x| Some(x.quality.3)).collect())?);
        push("first_at", ts_nanos(r.iter().map(|x| x.at.0))?);
        push("last_at", ts_nanos(r.iter().map(|x| x.at.1))?);
        Ok(cols)
    }

    /// The table as one Arrow record batch (every column nullable).
    fn record_batch(&self) -> Result<RecordBatch, ArrowError> {
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) =
            self.columns()?.into_iter().map(|(name, a)| (Field::new(name, a.data_type().clone(), true), a)).unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
    }
}

fn strs(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn ts(secs: impl Iterator<Item = i64>) -> Result<ArrayRef, ArrowError> {
    let micros =
        secs.map(|s| s.checked_mul(1_000_000).ok_or_else(|| ArrowError::ComputeError("timestamp out of range".into())));
    Ok(Arc::new(TimestampMicrosecondArray::from(micros.collect::<Result<Vec<_>, _>>()?).with_timezone("UTC")))
}

/// Import `module`, or a `ModuleNotFoundError` saying that `call` needs it and how to install it.
fn needs<'py>(py: Python<'py>, module: &str, call: &str) -> PyResult<Bound<'py, pyo3::types::PyModule>> {
    py.import(module).map_err(|e| {
        if e.is_instance_of::<pyo3::exceptions::PyModuleNotFoundError>(py) {
            pyo3::exceptions::PyModuleNotFoundError::new_err(format!(
                "{call} needs the '{module}' package, which is not installed: pip install {module}"
            ))
        } else {
            e
        }
    })
}

/// Nullable UTC nanosecond timestamps (exact for every record instant, 1678–2261).
fn ts_nanos(times: impl Iterator<Item = Option<DateTime<Utc>>>) -> Result<ArrayRef, ArrowError> {
    let nanos = times.map(|t| {
        t.map(|t| t.timestamp_nanos_opt().ok_or_else(|| ArrowError::ComputeError("timestamp out of range".into())))
            .transpose()
    });
    Ok(Arc::new(TimestampNanosecondArray::from(nanos.collect::<Result<Vec<_>, _>>()?).with_timezone("UTC")))
}

fn ints_out(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(values.map(|v| i64::try_from(v).unwrap_or(i64::MAX)).collect::<Int64Array>())
}

/// Decimal128(38, s) with s the largest scale in the column; exact strings if a value does not fit.
fn decimals(vals: Vec<Option<Decimal>>) -> Result<ArrayRef, ArrowError> {
    let vals: Vec<Option<Decimal>> = vals.into_iter().map(|v| v.map(|d| d.normalize())).collect();
    let scale = vals.iter().flatten().map(Decimal::scale).max().unwrap_or(0);
    let fit = |d: &Decimal| {
        10i128
            .checked_pow(scale - d.scale())
            .and_then(|p| d.mantissa().checked_mul(p))
            .filter(|m| m.unsigned_abs() < 10u128.pow(38))
    };
    let mantissas: Option<Vec<Option<i128>>> =
        vals.iter().map(|v| v.as_ref().map_or(Some(None), |d| fit(d).map(Some))).collect();
    Ok(match mantissas {
        Some(m) => Arc::new(Decimal128Array::from(m).with_precision_and_scale(38, scale as i8)?),
        None => strs(vals.iter().map(|v| v.map(meterkit::decimal::fmt_decimal))),
    })
}

/// Query results as an Arrow table: `pyarrow.table(t)`, `polars.DataFrame(t)`, `t.to_pandas()`.
#[pyclass(module = "meterkit", frozen, name = "BucketTable")]
pub struct PyBucketTable {
    table: Table,
    batch: RecordBatch,
}

impl PyBucketTable {
    /// A store query's buckets.
    pub fn new(buckets: Vec<meterkit::Bucket>, group_by: Vec<String>, unique: Vec<String>) -> PyResult<Self> {
        Self::from_table(Table::from_buckets(buckets, group_by, unique))
    }

    /// A store-less rollup's table.
    pub fn from_table(table: Table) -> PyResult<Self> {
        let batch = table
            .record_batch()
            .map_err(|e| crate::errors::to_py(&Error::new(ErrorKind::Overflow, format!("The result table: {e}."))))?;
        Ok(PyBucketTable { table, batch })
    }
}

#[pymethods]
impl PyBucketTable {
    /// The Arrow PyCapsule stream protocol (one batch).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let field = Field::new_struct("", self.batch.schema_ref().fields().clone(), false);
        let array: ArrayRef = Arc::new(StructArray::from(self.batch.clone()));
        let reader = ArrayIterator::new(std::iter::once(Ok(array)), Arc::new(field));
        Ok(pyo3_arrow::ffi::to_stream_pycapsule(py, Box::new(reader), requested_schema)?)
    }

    /// Column names, in order.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.batch.schema_ref().fields().iter().map(|f| f.name().clone()).collect()
    }

    /// Number of rows.
    #[getter]
    fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    fn __len__(&self) -> usize {
        self.batch.num_rows()
    }

    /// The rows as dicts of native values (`datetime`, `Decimal`, `int`, `str`, `None`).
    fn to_pylist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        use crate::convert::{from_decimal, from_opt_decimal, from_utc};
        let t = &self.table;
        let out = PyList::empty(py);
        let secs = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or_default();
        for r in &t.rows {
            let d = PyDict::new(py);
            if t.with_tenant {
                d.set_item("tenant", r.tenant.as_deref())?;
            }
            d.set_item("window_start", from_utc(py, secs(r.start))?)?;
            d.set_item("window_end", from_utc(py, secs(r.end))?)?;
            if t.with_subject_metric {
                d.set_item("subject", r.subject.as_deref())?;
                d.set_item("metric", &t.metric)?;
            }
            for (k, g) in t.group_by.iter().enumerate() {
                d.set_item(g, r.group.get(k).cloned().flatten())?;
            }
            d.set_item("sum", from_decimal(py, r.sum.normalize())?)?;
            d.set_item("count", r.count)?;
            d.set_item("min", from_opt_decimal(py, r.min.map(|x| x.normalize()))?)?;
            d.set_item("max", from_opt_decimal(py, r.max.map(|x| x.normalize()))?)?;
            d.set_item("mean", from_opt_decimal(py, r.mean.map(|x| x.normalize()))?)?;
            d.set_item("latest", from_opt_decimal(py, r.latest.map(|x| x.normalize()))?)?;
            for (k, u) in t.unique.iter().enumerate() {
                d.set_item(format!("unique_{u}"), r.unique.get(k).copied().unwrap_or(0))?;
            }
            d.set_item("flagged_count", r.quality.0)?;
            d.set_item("flagged_sum", from_decimal(py, r.quality.1.normalize())?)?;
            d.set_item("estimated_count", r.quality.2)?;
            d.set_item("estimated_sum", from_decimal(py, r.quality.3.normalize())?)?;
            d.set_item("first_at", r.at.0.map(|t| from_utc(py, t)).transpose()?)?;
            d.set_item("last_at", r.at.1.map(|t| from_utc(py, t)).transpose()?)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// A pyarrow Table (needs pyarrow; `ModuleNotFoundError` naming it otherwise).
    fn to_pyarrow<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        needs(slf.py(), "pyarrow", "to_pyarrow()")?.call_method1("table", (slf,))
    }

    /// A pandas DataFrame (needs pandas and pyarrow; `ModuleNotFoundError` naming the missing one).
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        needs(slf.py(), "pandas", "to_pandas()")?;
        needs(slf.py(), "pyarrow", "to_pandas()")?.call_method1("table", (slf,))?.call_method0("to_pandas")
    }

    /// A polars DataFrame (needs polars; `ModuleNotFoundError` naming it otherwise).
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        needs(slf.py(), "polars", "to_polars()")?.call_method1("DataFrame", (slf,))
    }

    fn __repr__(&self) -> String {
        format!("BucketTable(rows={}, columns={:?})", self.batch.num_rows(), self.column_names())
    }
}
