//! The columnar path: a minimal Arrow C Data Interface (PyCapsule protocol) consumer and
//! producer, with no Arrow crate. `__arrow_c_stream__` objects (pyarrow tables, polars and
//! pandas ≥ 2.2 DataFrames) are read column by column into usage records; query results are
//! exported as an Arrow stream (`BucketTable`) that pyarrow, polars and pandas can read.
//!
//! Only conversion lives here: records go to `Engine::ingest` or the core's `Accumulator`.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use meterkit::{Decimal, Error, ErrorKind, UsageRecord};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods, PyDict, PyList};

// ---------------------------------------------------------------------------------------------
// The C structs of the Arrow C Data Interface and C Stream Interface.

#[repr(C)]
pub struct FfiSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut FfiSchema,
    dictionary: *mut FfiSchema,
    release: Option<unsafe extern "C" fn(*mut FfiSchema)>,
    private_data: *mut c_void,
}

#[repr(C)]
pub struct FfiArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut FfiArray,
    dictionary: *mut FfiArray,
    release: Option<unsafe extern "C" fn(*mut FfiArray)>,
    private_data: *mut c_void,
}

#[repr(C)]
pub struct FfiStream {
    get_schema: Option<unsafe extern "C" fn(*mut FfiStream, *mut FfiSchema) -> c_int>,
    get_next: Option<unsafe extern "C" fn(*mut FfiStream, *mut FfiArray) -> c_int>,
    get_last_error: Option<unsafe extern "C" fn(*mut FfiStream) -> *const c_char>,
    release: Option<unsafe extern "C" fn(*mut FfiStream)>,
    private_data: *mut c_void,
}

impl FfiSchema {
    fn empty() -> Self {
        FfiSchema {
            format: std::ptr::null(),
            name: std::ptr::null(),
            metadata: std::ptr::null(),
            flags: 0,
            n_children: 0,
            children: std::ptr::null_mut(),
            dictionary: std::ptr::null_mut(),
            release: None,
            private_data: std::ptr::null_mut(),
        }
    }
}

impl FfiArray {
    fn empty() -> Self {
        FfiArray {
            length: 0,
            null_count: 0,
            offset: 0,
            n_buffers: 0,
            n_children: 0,
            buffers: std::ptr::null_mut(),
            children: std::ptr::null_mut(),
            dictionary: std::ptr::null_mut(),
            release: None,
            private_data: std::ptr::null_mut(),
        }
    }
}

impl FfiStream {
    fn empty() -> Self {
        FfiStream {
            get_schema: None,
            get_next: None,
            get_last_error: None,
            release: None,
            private_data: std::ptr::null_mut(),
        }
    }
}

fn parse_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Parse, msg)
}

// ---------------------------------------------------------------------------------------------
// Import.

/// An Arrow stream moved out of a producer's PyCapsule; released on drop.
pub struct ImportedStream {
    raw: FfiStream,
}

// SAFETY: the C stream interface allows a stream to be consumed from any one thread at a time;
// we own it exclusively.
unsafe impl Send for ImportedStream {}

impl Drop for ImportedStream {
    fn drop(&mut self) {
        if let Some(release) = self.raw.release {
            unsafe { release(&raw mut self.raw) };
        }
    }
}

struct OwnedSchema(FfiSchema);
impl Drop for OwnedSchema {
    fn drop(&mut self) {
        if let Some(release) = self.0.release {
            unsafe { release(&raw mut self.0) };
        }
    }
}

struct OwnedArray(FfiArray);
impl Drop for OwnedArray {
    fn drop(&mut self) {
        if let Some(release) = self.0.release {
            unsafe { release(&raw mut self.0) };
        }
    }
}

impl ImportedStream {
    /// Take the stream of any object with `__arrow_c_stream__`.
    pub fn from_py(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        if !data.hasattr("__arrow_c_stream__")? {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "expected an object with __arrow_c_stream__ (a pyarrow Table, a polars DataFrame, a pandas >= 2.2 \
                 DataFrame with pyarrow installed), not {}",
                data.get_type().name()?
            )));
        }
        let capsule = data.call_method1("__arrow_c_stream__", (data.py().None(),))?;
        let capsule = capsule.cast::<PyCapsule>()?;
        let ptr = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
        // SAFETY: the capsule holds an ArrowArrayStream; moving it out and leaving a released
        // (release = NULL) struct behind is how the PyCapsule protocol hands over ownership.
        let raw = unsafe { std::ptr::replace(ptr.as_ptr().cast::<FfiStream>(), FfiStream::empty()) };
        if raw.release.is_none() {
            return Err(pyo3::exceptions::PyValueError::new_err("the Arrow stream was already consumed"));
        }
        Ok(ImportedStream { raw })
    }

    fn last_error(&mut self, what: &str, code: c_int) -> Error {
        let msg = self
            .raw
            .get_last_error
            .map(|f| unsafe { f(&raw mut self.raw) })
            .filter(|p| !p.is_null())
            .map(|p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            .unwrap_or_default();
        parse_err(format!("The Arrow stream failed in {what} (error {code}): {msg}"))
    }

    fn schema(&mut self) -> meterkit::Result<OwnedSchema> {
        let mut out = OwnedSchema(FfiSchema::empty());
        let f = self.raw.get_schema.ok_or_else(|| parse_err("The Arrow stream has no get_schema."))?;
        let code = unsafe { f(&raw mut self.raw, &raw mut out.0) };
        if code != 0 {
            return Err(self.last_error("get_schema", code));
        }
        Ok(out)
    }

    fn next(&mut self) -> meterkit::Result<Option<OwnedArray>> {
        let mut out = OwnedArray(FfiArray::empty());
        let f = self.raw.get_next.ok_or_else(|| parse_err("The Arrow stream has no get_next."))?;
        let code = unsafe { f(&raw mut self.raw, &raw mut out.0) };
        if code != 0 {
            return Err(self.last_error("get_next", code));
        }
        Ok(if out.0.release.is_none() { None } else { Some(out) })
    }
}

struct Field {
    name: String,
    format: String,
    dictionary: bool,
}

fn fields(schema: &OwnedSchema) -> meterkit::Result<Vec<Field>> {
    let s = &schema.0;
    let fmt = unsafe { cstr(s.format) };
    if fmt != "+s" {
        return Err(parse_err(format!("The Arrow data must be a table (struct), not format '{fmt}'.")));
    }
    (0..s.n_children.max(0) as usize)
        .map(|i| {
            let c = unsafe { &**s.children.add(i) };
            Ok(Field {
                name: unsafe { cstr(c.name) },
                format: unsafe { cstr(c.format) },
                dictionary: !c.dictionary.is_null(),
            })
        })
        .collect()
}

unsafe fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// One column of one batch, borrowed from the Arrow buffers.
struct Col<'a> {
    name: &'a str,
    len: usize,
    offset: usize,
    validity: Option<&'a [u8]>,
    data: ColData<'a>,
}

enum ColData<'a> {
    Utf8 { offsets: &'a [i32], bytes: &'a [u8] },
    LargeUtf8 { offsets: &'a [i64], bytes: &'a [u8] },
    View { views: &'a [[u8; 16]], bufs: Vec<&'a [u8]> },
    Int(IntData<'a>),
    F64(&'a [f64]),
    F32(&'a [f32]),
    Dec128 { values: &'a [[u8; 16]], scale: u32 },
    Ts { values: &'a [i64], nanos_per: i64, per_sec: i64 },
}

enum IntData<'a> {
    I8(&'a [i8]),
    I16(&'a [i16]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
    U64(&'a [u64]),
}

unsafe fn slice<'a, T>(p: *const c_void, n: usize) -> &'a [T] {
    if p.is_null() || n == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(p.cast::<T>(), n) }
    }
}

impl<'a> Col<'a> {
    /// Borrow column `a` (of a batch) with format `field.format`.
    unsafe fn new(field: &'a Field, a: &'a FfiArray, parent_offset: usize, rows: usize) -> meterkit::Result<Self> {
        let bad = |why: &str| {
            parse_err(format!("Column '{}' has Arrow format '{}', {why}.", field.name, field.format))
                .with_field(&field.name)
        };
        if field.dictionary {
            return Err(bad("dictionary-encoded (categorical) columns are not supported; cast it to string first"));
        }
        let offset = a.offset as usize + parent_offset;
        let end = offset + rows;
        if (a.length as usize) < rows {
            return Err(bad("shorter than its batch"));
        }
        let buf = |i: usize| -> *const c_void {
            if (i as i64) < a.n_buffers {
                unsafe { *a.buffers.add(i) }
            } else {
                std::ptr::null()
            }
        };
        let validity = if a.null_count == 0 || buf(0).is_null() {
            None
        } else {
            Some(unsafe { slice::<u8>(buf(0), end.div_ceil(8)) })
        };
        let f = field.format.as_str();
        let data = match f {
            "u" => {
                let offsets = unsafe { slice::<i32>(buf(1), end + 1) };
                let n = offsets.last().copied().unwrap_or(0).max(0) as usize;
                ColData::Utf8 { offsets, bytes: unsafe { slice::<u8>(buf(2), n) } }
            }
            "U" => {
                let offsets = unsafe { slice::<i64>(buf(1), end + 1) };
                let n = offsets.last().copied().unwrap_or(0).max(0) as usize;
                ColData::LargeUtf8 { offsets, bytes: unsafe { slice::<u8>(buf(2), n) } }
            }
            "vu" => {
                let n_var = (a.n_buffers - 3).max(0) as usize;
                let sizes = unsafe { slice::<i64>(buf(2 + n_var), n_var) };
                let bufs = (0..n_var).map(|i| unsafe { slice::<u8>(buf(2 + i), sizes[i].max(0) as usize) }).collect();
                ColData::View { views: unsafe { slice::<[u8; 16]>(buf(1), end) }, bufs }
            }
            "c" => ColData::Int(IntData::I8(unsafe { slice(buf(1), end) })),
            "s" => ColData::Int(IntData::I16(unsafe { slice(buf(1), end) })),
            "i" => ColData::Int(IntData::I32(unsafe { slice(buf(1), end) })),
            "l" => ColData::Int(IntData::I64(unsafe { slice(buf(1), end) })),
            "C" => ColData::Int(IntData::U8(unsafe { slice(buf(1), end) })),
            "S" => ColData::Int(IntData::U16(unsafe { slice(buf(1), end) })),
            "I" => ColData::Int(IntData::U32(unsafe { slice(buf(1), end) })),
            "L" => ColData::Int(IntData::U64(unsafe { slice(buf(1), end) })),
            "g" => ColData::F64(unsafe { slice(buf(1), end) }),
            "f" => ColData::F32(unsafe { slice(buf(1), end) }),
            _ if f.starts_with("d:") => {
                let parts: Vec<&str> = f[2..].split(',').collect();
                if parts.len() == 3 && parts[2] != "128" {
                    return Err(bad("only 128-bit decimals are supported"));
                }
                let scale: i64 =
                    parts.get(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("a bad decimal format"))?;
                if !(0..=28).contains(&scale) {
                    return Err(bad("a decimal scale outside 0-28"));
                }
                ColData::Dec128 { values: unsafe { slice(buf(1), end) }, scale: scale as u32 }
            }
            _ if f.starts_with("ts") && f.len() >= 4 => {
                let tz = &f[4..];
                if tz.is_empty() {
                    return Err(bad("a timestamp without a time zone (naive); localize it first, e.g. \
                         pandas .dt.tz_localize(\"Europe/London\") or polars .dt.replace_time_zone(...)"));
                }
                let (nanos_per, per_sec) = match &f[2..3] {
                    "s" => (1_000_000_000, 1),
                    "m" => (1_000_000, 1_000),
                    "u" => (1_000, 1_000_000),
                    "n" => (1, 1_000_000_000),
                    _ => return Err(bad("an unknown timestamp unit")),
                };
                ColData::Ts { values: unsafe { slice(buf(1), end) }, nanos_per, per_sec }
            }
            _ => return Err(bad("which is not supported here")),
        };
        Ok(Col { name: &field.name, len: end, offset, validity, data })
    }

    #[inline]
    fn valid(&self, i: usize) -> bool {
        let j = self.offset + i;
        self.validity.is_none_or(|v| v[j / 8] & (1 << (j % 8)) != 0)
    }

    fn err(&self, row: usize, msg: String) -> Error {
        parse_err(msg).with_field(self.name).with_line(row as u64 + 1)
    }

    #[inline]
    fn str(&self, i: usize, row: usize) -> meterkit::Result<Option<&'a str>> {
        if !self.valid(i) {
            return Ok(None);
        }
        let j = self.offset + i;
        let bytes: &[u8] = match &self.data {
            ColData::Utf8 { offsets, bytes } => bytes
                .get(offsets[j] as usize..offsets[j + 1] as usize)
                .ok_or_else(|| self.err(row, "bad offsets".into()))?,
            ColData::LargeUtf8 { offsets, bytes } => bytes
                .get(offsets[j] as usize..offsets[j + 1] as usize)
                .ok_or_else(|| self.err(row, "bad offsets".into()))?,
            ColData::View { views, bufs } => {
                let v = &views[j];
                let n = u32::from_le_bytes([v[0], v[1], v[2], v[3]]) as usize;
                if n <= 12 {
                    &v[4..4 + n]
                } else {
                    let b = u32::from_le_bytes([v[8], v[9], v[10], v[11]]) as usize;
                    let o = u32::from_le_bytes([v[12], v[13], v[14], v[15]]) as usize;
                    bufs.get(b)
                        .and_then(|buf| buf.get(o..o + n))
                        .ok_or_else(|| self.err(row, "bad string view".into()))?
                }
            }
            _ => return Err(self.err(row, format!("Column '{}' is not a string column.", self.name))),
        };
        std::str::from_utf8(bytes).map(Some).map_err(|_| self.err(row, format!("Column '{}' is not UTF-8.", self.name)))
    }

    fn required_str(&self, i: usize, row: usize) -> meterkit::Result<&'a str> {
        self.str(i, row)?.ok_or_else(|| self.err(row, format!("Column '{}' is null in row {}.", self.name, row + 1)))
    }

    #[inline]
    fn decimal(&self, i: usize, row: usize) -> meterkit::Result<Decimal> {
        if !self.valid(i) {
            return Err(self.err(row, format!("Column '{}' is null in row {}.", self.name, row + 1)));
        }
        let j = self.offset + i;
        Ok(match &self.data {
            ColData::Int(d) => match d {
                IntData::I8(v) => Decimal::from(v[j]),
                IntData::I16(v) => Decimal::from(v[j]),
                IntData::I32(v) => Decimal::from(v[j]),
                IntData::I64(v) => Decimal::from(v[j]),
                IntData::U8(v) => Decimal::from(v[j]),
                IntData::U16(v) => Decimal::from(v[j]),
                IntData::U32(v) => Decimal::from(v[j]),
                IntData::U64(v) => Decimal::from(v[j]),
            },
            ColData::F64(v) => meterkit::decimal::decimal_from_f64(v[j])
                .map_err(|e| e.with_field(self.name).with_line(row as u64 + 1))?,
            ColData::F32(v) => meterkit::decimal::decimal_from_f64(f64::from(v[j]))
                .map_err(|e| e.with_field(self.name).with_line(row as u64 + 1))?,
            ColData::Dec128 { values, scale } => {
                let m = i128::from_le_bytes(values[j]);
                Decimal::try_from_i128_with_scale(m, *scale)
                    .map_err(|e| self.err(row, format!("Column '{}': {e}.", self.name)))?
            }
            ColData::Utf8 { .. } | ColData::LargeUtf8 { .. } | ColData::View { .. } => {
                let s = self.required_str(i, row)?;
                meterkit::decimal::parse_decimal(s).map_err(|e| e.with_field(self.name).with_line(row as u64 + 1))?
            }
            ColData::Ts { .. } => {
                return Err(self.err(row, format!("Column '{}' is a timestamp, not a number.", self.name)))
            }
        })
    }

    /// The value as `(mantissa, scale)` when the column holds integers or decimal128 values that
    /// fit an `i64` (the columnar kernel's exact fast path); `None` otherwise.
    #[inline]
    fn scaled(&self, i: usize) -> Option<(i64, u32)> {
        if !self.valid(i) {
            return None;
        }
        let j = self.offset + i;
        match &self.data {
            ColData::Int(d) => Some((
                match d {
                    IntData::I8(v) => i64::from(v[j]),
                    IntData::I16(v) => i64::from(v[j]),
                    IntData::I32(v) => i64::from(v[j]),
                    IntData::I64(v) => v[j],
                    IntData::U8(v) => i64::from(v[j]),
                    IntData::U16(v) => i64::from(v[j]),
                    IntData::U32(v) => i64::from(v[j]),
                    IntData::U64(v) => i64::try_from(v[j]).ok()?,
                },
                0,
            )),
            ColData::Dec128 { values, scale } => Some((i64::try_from(i128::from_le_bytes(values[j])).ok()?, *scale)),
            _ => None,
        }
    }

    #[inline]
    fn ts(&self, i: usize, row: usize) -> meterkit::Result<Option<DateTime<Utc>>> {
        if !self.valid(i) {
            return Ok(None);
        }
        let j = self.offset + i;
        match &self.data {
            ColData::Ts { values, nanos_per, per_sec } => {
                let v = values[j];
                let secs = v.div_euclid(*per_sec);
                let nanos = (v.rem_euclid(*per_sec) * nanos_per) as u32;
                DateTime::from_timestamp(secs, nanos)
                    .map(Some)
                    .ok_or_else(|| self.err(row, format!("Column '{}': timestamp out of range.", self.name)))
            }
            _ => Err(self.err(row, format!("Column '{}' is not a timestamp with a time zone.", self.name))),
        }
    }
}

/// Where a record field comes from: a constant or a column.
pub enum Source {
    Const(String),
    Column(String),
}

impl Source {
    pub fn pick(constant: Option<String>, column: &str) -> Self {
        match constant {
            Some(c) => Source::Const(c),
            None => Source::Column(column.to_string()),
        }
    }
}

/// How columns map to record fields.
pub struct Mapping {
    /// The id column; `None` numbers rows from 1 (only for store-less rollups).
    pub id: Option<String>,
    pub tenant: Source,
    pub subject: Source,
    pub metric: Source,
    pub quantity: String,
    pub timestamp: String,
    pub end: Option<String>,
    /// `(dimension key, column)` pairs.
    pub dimensions: Vec<(String, String)>,
}

/// A stream read into memory: its fields and batches. Arrow buffers are immutable once exported,
/// so several threads may read them; they are released when this is dropped.
pub struct Loaded {
    fields: Vec<Field>,
    batches: Vec<OwnedArray>,
}

// SAFETY: the batches are only read (never written) after `load`, and released once, on drop,
// by the thread that owns the `Loaded`; the C Data Interface allows reading exported arrays from
// any thread.
unsafe impl Send for Loaded {}
unsafe impl Sync for Loaded {}

/// Read every batch of the stream (the producer's data is already in memory for pyarrow, polars
/// and pandas; this keeps the batches alive, it does not copy them).
pub fn load(mut stream: ImportedStream) -> meterkit::Result<Loaded> {
    let schema = stream.schema()?;
    let fields = fields(&schema)?;
    let mut batches = Vec::new();
    while let Some(batch) = stream.next()? {
        if batch.0.n_children as usize != fields.len() {
            return Err(parse_err("An Arrow batch does not match its schema."));
        }
        batches.push(batch);
    }
    Ok(Loaded { fields, batches })
}

/// A cheap, stable hash of a partition key (FNV-1a).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Read the rows into one reused `UsageRecord`, calling `f` for each. With `part = (column, k,
/// n)`, only rows whose `column` value hashes to `k` modulo `n` are read (one thread's share).
pub fn for_each_record(
    data: &Loaded,
    m: &Mapping,
    part: Option<(&str, usize, usize)>,
    mut f: impl FnMut(&UsageRecord) -> meterkit::Result<()>,
) -> meterkit::Result<()> {
    let fields = &data.fields;
    let index = |name: &str| {
        fields.iter().position(|f| f.name == name).ok_or_else(|| {
            let have: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            Error::new(ErrorKind::InvalidRecord, format!("The data has no column '{name}' (columns: {have:?})."))
                .with_field(name)
        })
    };
    let src = |s: &Source| -> meterkit::Result<Result<usize, String>> {
        match s {
            Source::Const(c) => Ok(Err(c.clone())),
            Source::Column(c) => Ok(Ok(index(c)?)),
        }
    };
    let id_i = m.id.as_deref().map(index).transpose()?;
    let tenant_i = src(&m.tenant)?;
    let subject_i = src(&m.subject)?;
    let metric_i = src(&m.metric)?;
    let qty_i = index(&m.quantity)?;
    let ts_i = index(&m.timestamp)?;
    let end_i = m.end.as_deref().map(index).transpose()?;
    let dim_i = m.dimensions.iter().map(|(_, col)| index(col)).collect::<meterkit::Result<Vec<_>>>()?;
    let part_i = part.map(|(col, k, n)| Ok::<_, Error>((index(col)?, k as u64, n.max(1) as u64))).transpose()?;

    let mut rec = UsageRecord::new("", "", "", "", Decimal::ZERO, DateTime::<Utc>::UNIX_EPOCH);
    for (s, target) in [(&tenant_i, &mut rec.tenant), (&subject_i, &mut rec.subject), (&metric_i, &mut rec.metric)] {
        if let Err(c) = s {
            target.clone_from(c);
        }
    }
    let mut row_base = 0usize;
    for batch in &data.batches {
        let a = &batch.0;
        let rows = a.length.max(0) as usize;
        let parent_offset = a.offset.max(0) as usize;
        let child = |i: usize| -> meterkit::Result<Col<'_>> {
            unsafe { Col::new(&fields[i], &**a.children.add(i), parent_offset, rows) }
        };
        let opt_child = |s: &Result<usize, String>| s.as_ref().ok().map(|&i| child(i)).transpose();
        let id_c = id_i.map(child).transpose()?;
        let tenant_c = opt_child(&tenant_i)?;
        let subject_c = opt_child(&subject_i)?;
        let metric_c = opt_child(&metric_i)?;
        let qty_c = child(qty_i)?;
        let ts_c = child(ts_i)?;
        let end_c = end_i.map(child).transpose()?;
        let dim_c = dim_i.iter().map(|&i| child(i)).collect::<meterkit::Result<Vec<_>>>()?;
        let part_c = part_i.map(|(i, k, n)| Ok::<_, Error>((child(i)?, k, n))).transpose()?;
        let _ = qty_c.len;
        for i in 0..rows {
            let row = row_base + i;
            if let Some((c, k, n)) = &part_c {
                if fnv(c.required_str(i, row)?) % n != *k {
                    continue;
                }
            }
            rec.id.clear();
            match &id_c {
                Some(c) => rec.id.push_str(c.required_str(i, row)?),
                None => {
                    use std::fmt::Write;
                    let _ = write!(rec.id, "{}", row + 1);
                }
            }
            for (c, target) in
                [(&tenant_c, &mut rec.tenant), (&subject_c, &mut rec.subject), (&metric_c, &mut rec.metric)]
            {
                if let Some(c) = c {
                    let v = c.required_str(i, row)?;
                    if target != v {
                        target.clear();
                        target.push_str(v);
                    }
                }
            }
            rec.quantity = qty_c.decimal(i, row)?;
            rec.timestamp = ts_c
                .ts(i, row)?
                .ok_or_else(|| ts_c.err(row, format!("Column '{}' is null in row {}.", ts_c.name, row + 1)))?;
            rec.end = match &end_c {
                Some(c) => c.ts(i, row)?,
                None => None,
            };
            for ((d, _), c) in m.dimensions.iter().zip(&dim_c) {
                match c.str(i, row)? {
                    Some(v) => match rec.dimensions.get_mut(d) {
                        Some(old) => {
                            if old != v {
                                old.clear();
                                old.push_str(v);
                            }
                        }
                        None => {
                            rec.dimensions.insert(d.clone(), v.to_string());
                        }
                    },
                    None => {
                        rec.dimensions.remove(d);
                    }
                }
            }
            f(&rec)?;
        }
        row_base += rows;
    }
    Ok(())
}

/// Every row as a `UsageRecord`.
pub fn records(stream: ImportedStream, m: &Mapping) -> meterkit::Result<Vec<UsageRecord>> {
    let data = load(stream)?;
    let mut out = Vec::new();
    for_each_record(&data, m, None, |r| {
        out.push(r.clone());
        Ok(())
    })?;
    Ok(out)
}

/// The pseudo-dimension the tenant column is read into by [`rollup`].
const TENANT_DIM: &str = "\u{0}tenant";

/// Roll the rows up under `spec` with the core's `Accumulator`, without a store.
///
/// A tenant column is read as a leading group dimension of one accumulator (the same partition
/// as one accumulator per tenant, with one shared window cache instead of a thousand cold ones).
/// With `threads > 1` and a tenant column, the tenants are split between threads by a hash of the
/// tenant, each thread with its own accumulator: tenants never share a bucket, so the parts are
/// simply concatenated (and sorted, so the result does not depend on the thread count).
pub fn rollup(
    stream: ImportedStream,
    m: Mapping,
    spec: &meterkit::RollupSpec,
    threads: usize,
) -> meterkit::Result<Table> {
    let (m, tenant_col, run_spec) = match m.tenant {
        Source::Const(t) => (Mapping { tenant: Source::Const(t.clone()), ..m }, Some(t), spec.clone()),
        Source::Column(col) => {
            let mut dims = m.dimensions;
            dims.push((TENANT_DIM.to_string(), col));
            let mut s = spec.clone();
            s.group_by.insert(0, TENANT_DIM.to_string());
            (Mapping { tenant: Source::Const(String::new()), dimensions: dims, ..m }, None, s)
        }
    };
    let acc_tenant = match &m.tenant {
        Source::Const(t) => t.clone(),
        Source::Column(_) => String::new(),
    };
    let data = load(stream)?;
    if let Some(rows) = kernel_path(&data, &m, tenant_col.as_deref(), spec, threads)? {
        return Ok(finish_table(rows, spec));
    }
    let tenant_column = m.dimensions.iter().find(|(k, _)| k == TENANT_DIM).map(|(_, c)| c.clone());
    let n = if tenant_column.is_some() { threads.max(1) } else { 1 };
    let run = |k: usize| -> meterkit::Result<Vec<Row>> {
        let mut acc = meterkit::rollup::Accumulator::new(&acc_tenant, std::slice::from_ref(&run_spec))?;
        let part = tenant_column.as_deref().filter(|_| n > 1).map(|c| (c, k, n));
        for_each_record(&data, &m, part, |r| acc.add(r))?;
        Ok(to_rows(acc, tenant_col.as_deref(), spec))
    };
    let rows: Vec<Row> = if n == 1 {
        run(0)?
    } else {
        let parts: Vec<meterkit::Result<Vec<Row>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n).map(|k| s.spawn(move || run(k))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        let mut all = Vec::new();
        for p in parts {
            all.extend(p?);
        }
        all
    };
    Ok(finish_table(rows, spec))
}

fn finish_table(mut rows: Vec<Row>, spec: &meterkit::RollupSpec) -> Table {
    rows.sort_by(|a, b| (&a.tenant, a.start, &a.group).cmp(&(&b.tenant, b.start, &b.group)));
    Table::new(rows, true, false, spec.group_by.clone(), spec.unique_dims().map(str::to_string).collect())
}

/// The rollup through the core's columnar kernel (`ColumnarRollup`): no `UsageRecord` per row.
/// Used when the metric is a constant; `Ok(None)` when a timestamp has a fraction of a second (the
/// kernel works in whole seconds), so that the caller takes the record path and stays exact.
fn kernel_rollup(
    data: &Loaded,
    m: &Mapping,
    spec: &meterkit::RollupSpec,
    part: Option<(&str, usize, usize)>,
) -> meterkit::Result<Option<Vec<(meterkit::store::BucketKey, i64, meterkit::rollup::BucketState)>>> {
    use meterkit::{rollup::columnar::ColumnBatch, rollup::columnar::Quantities, rollup::columnar::StrColumn};
    let fields = &data.fields;
    let index = |name: &str| {
        fields.iter().position(|f| f.name == name).ok_or_else(|| {
            let have: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            Error::new(ErrorKind::InvalidRecord, format!("The data has no column '{name}' (columns: {have:?})."))
                .with_field(name)
        })
    };
    let col_of = |s: &Source| match s {
        Source::Column(c) => index(c).map(Some),
        Source::Const(_) => Ok(None),
    };
    let const_of = |s: &Source| match s {
        Source::Const(c) => Some(c.clone()),
        Source::Column(_) => None,
    };
    let (tenant_i, subject_i) = (col_of(&m.tenant)?, col_of(&m.subject)?);
    let (tenant_k, subject_k) = (const_of(&m.tenant), const_of(&m.subject));
    let id_i = m.id.as_deref().map(index).transpose()?;
    let (qty_i, ts_i) = (index(&m.quantity)?, index(&m.timestamp)?);
    let dim_i = m.dimensions.iter().map(|(_, c)| index(c)).collect::<meterkit::Result<Vec<_>>>()?;
    let part_i = part.map(|(c, k, n)| Ok::<_, Error>((index(c)?, k as u64, n.max(1) as u64))).transpose()?;
    let mut kernel = meterkit::rollup::columnar::ColumnarRollup::new(std::slice::from_ref(spec))?;
    let mut row_base = 0usize;
    for batch in &data.batches {
        let a = &batch.0;
        let rows = a.length.max(0) as usize;
        let parent_offset = a.offset.max(0) as usize;
        let child = |i: usize| -> meterkit::Result<Col<'_>> {
            unsafe { Col::new(&fields[i], &**a.children.add(i), parent_offset, rows) }
        };
        let tenant_c = tenant_i.map(child).transpose()?;
        let subject_c = subject_i.map(child).transpose()?;
        let id_c = id_i.map(child).transpose()?;
        let (qty_c, ts_c) = (child(qty_i)?, child(ts_i)?);
        let dim_c = dim_i.iter().map(|&i| child(i)).collect::<meterkit::Result<Vec<_>>>()?;
        let part_c = part_i.map(|(i, k, n)| Ok::<_, Error>((child(i)?, k, n))).transpose()?;
        let mut tenants: Vec<Option<&str>> = Vec::new();
        let mut subjects: Vec<Option<&str>> = Vec::new();
        let mut ids: Vec<&str> = Vec::new();
        let mut stamps: Vec<i64> = Vec::with_capacity(rows);
        let mut mantissas: Vec<i64> = Vec::with_capacity(rows);
        let mut scale: Option<u32> = None;
        let mut decimals: Vec<meterkit::Decimal> = Vec::new();
        let mut dims: Vec<Vec<Option<&str>>> = vec![Vec::new(); dim_c.len()];
        for i in 0..rows {
            let row = row_base + i;
            if let Some((c, k, n)) = &part_c {
                if fnv(c.required_str(i, row)?) % n != *k {
                    continue;
                }
            }
            if let Some(c) = &tenant_c {
                tenants.push(Some(c.required_str(i, row)?));
            }
            if let Some(c) = &subject_c {
                subjects.push(Some(c.required_str(i, row)?));
            }
            if let Some(c) = &id_c {
                ids.push(c.required_str(i, row)?);
            }
            let t = ts_c
                .ts(i, row)?
                .ok_or_else(|| ts_c.err(row, format!("Column '{}' is null in row {}.", ts_c.name, row + 1)))?;
            if t.timestamp_subsec_nanos() != 0 {
                return Ok(None);
            }
            stamps.push(t.timestamp());
            // Integers (and decimal128 of one scale) stay exact integers; anything else becomes a
            // Decimal exactly as on the record path.
            match (qty_c.scaled(i), decimals.is_empty()) {
                (Some((v, sc)), true) if scale.is_none_or(|s| s == sc) => {
                    scale = Some(sc);
                    mantissas.push(v);
                }
                _ => {
                    if decimals.is_empty() {
                        let sc = scale.unwrap_or(0);
                        decimals = mantissas.drain(..).map(|v| meterkit::Decimal::new(v, sc)).collect();
                    }
                    decimals.push(qty_c.decimal(i, row)?);
                }
            }
            for (out, c) in dims.iter_mut().zip(&dim_c) {
                out.push(c.str(i, row)?);
            }
        }
        let names: Vec<&str> = m.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let quantities = if decimals.is_empty() {
            Quantities::Scaled { mantissas: &mantissas, scale: scale.unwrap_or(0) }
        } else {
            Quantities::Decimal(&decimals)
        };
        kernel.add(&ColumnBatch {
            metric: &spec.metric,
            tenant: str_col(tenant_k.as_ref(), &tenants),
            subject: str_col(subject_k.as_ref(), &subjects),
            timestamps: &stamps,
            quantities,
            ids: id_c.as_ref().map(|_| ids.as_slice()),
            dimensions: names.iter().zip(&dims).map(|(n, d)| (*n, StrColumn::Plain(d))).collect(),
        })?;
        row_base += rows;
    }
    kernel.finish().map(Some)
}

/// [`kernel_rollup`] for a mapping prepared by [`rollup`] (tenant column moved to the leading
/// group): the kernel reads the tenant column itself, so it gets the original columns back.
/// `Ok(None)` when the record path must be used (a metric column, or sub-second timestamps).
fn kernel_path(
    data: &Loaded,
    m: &Mapping,
    tenant_col: Option<&str>,
    spec: &meterkit::RollupSpec,
    threads: usize,
) -> meterkit::Result<Option<Vec<Row>>> {
    let Source::Const(metric) = &m.metric else { return Ok(None) };
    if metric != &spec.metric {
        return Ok(None);
    }
    let tenant_column = m.dimensions.iter().find(|(k, _)| k == TENANT_DIM).map(|(_, c)| c.clone());
    let mapping = Mapping {
        id: m.id.clone(),
        tenant: match (&tenant_column, tenant_col) {
            (Some(c), _) => Source::Column(c.clone()),
            (None, Some(t)) => Source::Const(t.to_string()),
            (None, None) => Source::Const(String::new()),
        },
        subject: match &m.subject {
            Source::Const(c) => Source::Const(c.clone()),
            Source::Column(c) => Source::Column(c.clone()),
        },
        metric: Source::Const(metric.clone()),
        quantity: m.quantity.clone(),
        timestamp: m.timestamp.clone(),
        end: None,
        dimensions: m.dimensions.iter().filter(|(k, _)| k != TENANT_DIM).cloned().collect(),
    };
    let n = if tenant_column.is_some() { threads.max(1) } else { 1 };
    let run = |k: usize| -> meterkit::Result<Option<Vec<Row>>> {
        let part = tenant_column.as_deref().filter(|_| n > 1).map(|c| (c, k, n));
        Ok(kernel_rollup(data, &mapping, spec, part)?.map(|b| bucket_rows(b, spec)))
    };
    let parts: Vec<meterkit::Result<Option<Vec<Row>>>> = if n == 1 {
        vec![run(0)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..n).map(|k| s.spawn(move || run(k))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        })
    };
    let mut all = Vec::new();
    for p in parts {
        match p? {
            Some(rows) => all.extend(rows),
            None => return Ok(None),
        }
    }
    Ok(Some(all))
}

/// The kernel's buckets (keys carry the tenant) as result rows.
fn bucket_rows(
    buckets: Vec<(meterkit::store::BucketKey, i64, meterkit::rollup::BucketState)>,
    spec: &meterkit::RollupSpec,
) -> Vec<Row> {
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
            latest: state.latest.map(|l| l.quantity),
            unique: spec.unique_dims().map(|d| state.uniques.get(d).map_or(0, |s| s.len() as u64)).collect(),
            quality: (state.flagged_count, state.flagged_sum, state.estimated_count, state.estimated_sum),
        })
        .collect()
}

fn str_col<'a>(konst: Option<&'a String>, plain: &'a [Option<&'a str>]) -> meterkit::rollup::columnar::StrColumn<'a> {
    match konst {
        Some(k) => meterkit::rollup::columnar::StrColumn::Const(Some(k.as_str())),
        None => meterkit::rollup::columnar::StrColumn::Plain(plain),
    }
}

/// An accumulator's buckets as result rows (the tenant taken from the leading group when it
/// was read from a column).
fn to_rows(acc: meterkit::rollup::Accumulator, tenant_const: Option<&str>, spec: &meterkit::RollupSpec) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::with_capacity(acc.len());
    for (key, end, state) in acc.into_buckets() {
        let mut group = key.group;
        let tenant = match tenant_const {
            Some(t) => Some(t.to_string()),
            None => group.remove(0),
        };
        rows.push(Row {
            tenant,
            start: key.start,
            end,
            subject: None,
            group,
            sum: state.sum,
            count: state.count,
            min: state.min,
            max: state.max,
            mean: state.mean(),
            latest: state.latest.map(|l| l.quantity),
            unique: spec.unique_dims().map(|d| state.uniques.get(d).map_or(0, |s| s.len() as u64)).collect(),
            quality: (state.flagged_count, state.flagged_sum, state.estimated_count, state.estimated_sum),
        });
    }
    rows
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
    fn new(
        rows: Vec<Row>,
        with_tenant: bool,
        with_subject_metric: bool,
        group_by: Vec<String>,
        unique: Vec<String>,
    ) -> Self {
        Table { rows, with_tenant, with_subject_metric, metric: String::new(), group_by, unique }
    }

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
                unique: unique.iter().map(|d| b.unique.get(d).copied().unwrap_or(0)).collect(),
                quality: (b.flagged_count, b.flagged_sum, b.estimated_count, b.estimated_sum),
            })
            .collect();
        Table { rows, with_tenant: false, with_subject_metric: true, metric, group_by: dims, unique }
    }

    fn columns(&self) -> Vec<OutCol> {
        let r = &self.rows;
        let mut cols = Vec::new();
        if self.with_tenant {
            cols.push(OutCol::strs("tenant", r.iter().map(|x| x.tenant.clone()).collect()));
        }
        cols.push(OutCol::ts("window_start", r.iter().map(|x| x.start).collect()));
        cols.push(OutCol::ts("window_end", r.iter().map(|x| x.end).collect()));
        if self.with_subject_metric {
            cols.push(OutCol::strs("subject", r.iter().map(|x| x.subject.clone()).collect()));
            cols.push(OutCol::strs("metric", r.iter().map(|_| Some(self.metric.clone())).collect()));
        }
        for (k, d) in self.group_by.iter().enumerate() {
            cols.push(OutCol::strs(d, r.iter().map(|x| x.group.get(k).cloned().flatten()).collect()));
        }
        cols.push(OutCol::decimals("sum", r.iter().map(|x| Some(x.sum)).collect()));
        cols.push(OutCol::ints("count", r.iter().map(|x| x.count as i64).collect()));
        cols.push(OutCol::decimals("min", r.iter().map(|x| x.min).collect()));
        cols.push(OutCol::decimals("max", r.iter().map(|x| x.max).collect()));
        cols.push(OutCol::decimals("mean", r.iter().map(|x| x.mean).collect()));
        cols.push(OutCol::decimals("latest", r.iter().map(|x| x.latest).collect()));
        for (k, d) in self.unique.iter().enumerate() {
            cols.push(OutCol::ints(
                &format!("unique_{d}"),
                r.iter().map(|x| x.unique.get(k).copied().unwrap_or(0) as i64).collect(),
            ));
        }
        cols.push(OutCol::ints("flagged_count", r.iter().map(|x| x.quality.0 as i64).collect()));
        cols.push(OutCol::decimals("flagged_sum", r.iter().map(|x| Some(x.quality.1)).collect()));
        cols.push(OutCol::ints("estimated_count", r.iter().map(|x| x.quality.2 as i64).collect()));
        cols.push(OutCol::decimals("estimated_sum", r.iter().map(|x| Some(x.quality.3)).collect()));
        cols
    }
}

/// One exported column: format, validity and buffers, 8-byte aligned.
struct OutCol {
    name: CString,
    format: CString,
    len: usize,
    null_count: usize,
    /// validity (or empty), then the data buffers.
    buffers: Vec<Option<Vec<u64>>>,
}

fn aligned(bytes: &[u8]) -> Vec<u64> {
    let mut v = vec![0u64; bytes.len().div_ceil(8).max(1)];
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        v[i] = u64::from_le_bytes(w);
    }
    v
}

fn cname(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

fn validity(valid: impl Iterator<Item = bool>, len: usize) -> (Option<Vec<u64>>, usize) {
    let mut bits = vec![0u8; len.div_ceil(8)];
    let mut nulls = 0;
    for (i, v) in valid.enumerate() {
        if v {
            bits[i / 8] |= 1 << (i % 8);
        } else {
            nulls += 1;
        }
    }
    if nulls == 0 {
        (None, 0)
    } else {
        (Some(aligned(&bits)), nulls)
    }
}

impl OutCol {
    fn ts(name: &str, secs: Vec<i64>) -> Self {
        let bytes: Vec<u8> = secs.iter().flat_map(|s| (s * 1_000_000).to_le_bytes()).collect();
        OutCol {
            name: cname(name),
            format: cname("tsu:UTC"),
            len: secs.len(),
            null_count: 0,
            buffers: vec![None, Some(aligned(&bytes))],
        }
    }

    fn ints(name: &str, vals: Vec<i64>) -> Self {
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        OutCol {
            name: cname(name),
            format: cname("l"),
            len: vals.len(),
            null_count: 0,
            buffers: vec![None, Some(aligned(&bytes))],
        }
    }

    fn strs(name: &str, vals: Vec<Option<String>>) -> Self {
        let (valid, nulls) = validity(vals.iter().map(Option::is_some), vals.len());
        let mut offsets: Vec<u8> = Vec::with_capacity((vals.len() + 1) * 4);
        let mut data: Vec<u8> = Vec::new();
        offsets.extend_from_slice(&0i32.to_le_bytes());
        for v in &vals {
            if let Some(s) = v {
                data.extend_from_slice(s.as_bytes());
            }
            offsets.extend_from_slice(&(data.len() as i32).to_le_bytes());
        }
        OutCol {
            name: cname(name),
            format: cname("u"),
            len: vals.len(),
            null_count: nulls,
            buffers: vec![valid, Some(aligned(&offsets)), Some(aligned(&data))],
        }
    }

    /// Decimal128(38, s) with s the largest scale in the column; as strings if a value does not fit.
    fn decimals(name: &str, vals: Vec<Option<Decimal>>) -> Self {
        let vals: Vec<Option<Decimal>> = vals.into_iter().map(|v| v.map(|d| d.normalize())).collect();
        let scale = vals.iter().flatten().map(Decimal::scale).max().unwrap_or(0);
        let mut bytes: Vec<u8> = Vec::with_capacity(vals.len() * 16);
        for v in &vals {
            let m = match v {
                None => 0i128,
                Some(d) => {
                    let fits = 10i128
                        .checked_pow(scale - d.scale())
                        .and_then(|p| d.mantissa().checked_mul(p))
                        .filter(|m| m.unsigned_abs() < 10u128.pow(38));
                    match fits {
                        Some(m) => m,
                        None => {
                            return OutCol::strs(
                                name,
                                vals.iter().map(|v| v.map(meterkit::decimal::fmt_decimal)).collect(),
                            );
                        }
                    }
                }
            };
            bytes.extend_from_slice(&m.to_le_bytes());
        }
        let (valid, nulls) = validity(vals.iter().map(Option::is_some), vals.len());
        OutCol {
            name: cname(name),
            format: cname(&format!("d:38,{scale}")),
            len: vals.len(),
            null_count: nulls,
            buffers: vec![valid, Some(aligned(&bytes))],
        }
    }
}

struct SchemaPrivate {
    _format: CString,
    _name: CString,
    children: Vec<*mut FfiSchema>,
}

unsafe extern "C" fn release_schema(s: *mut FfiSchema) {
    if s.is_null() {
        return;
    }
    let s = unsafe { &mut *s };
    if s.release.is_none() {
        return;
    }
    let private = unsafe { Box::from_raw(s.private_data.cast::<SchemaPrivate>()) };
    for &c in &private.children {
        unsafe {
            if let Some(r) = (*c).release {
                r(c);
            }
            drop(Box::from_raw(c));
        }
    }
    drop(private);
    s.release = None;
}

fn export_schema(format: &str, name: &str, nullable: bool, children: Vec<FfiSchema>) -> FfiSchema {
    let format = cname(format);
    let name = cname(name);
    let mut private = Box::new(SchemaPrivate {
        children: children.into_iter().map(|c| Box::into_raw(Box::new(c))).collect(),
        _format: format,
        _name: name,
    });
    FfiSchema {
        format: private._format.as_ptr(),
        name: private._name.as_ptr(),
        metadata: std::ptr::null(),
        flags: if nullable { 2 } else { 0 },
        n_children: private.children.len() as i64,
        children: private.children.as_mut_ptr(),
        dictionary: std::ptr::null_mut(),
        release: Some(release_schema),
        private_data: Box::into_raw(private).cast(),
    }
}

struct ArrayPrivate {
    _buffers: Vec<Option<Vec<u64>>>,
    ptrs: Vec<*const c_void>,
    children: Vec<*mut FfiArray>,
}

unsafe extern "C" fn release_array(a: *mut FfiArray) {
    if a.is_null() {
        return;
    }
    let a = unsafe { &mut *a };
    if a.release.is_none() {
        return;
    }
    let private = unsafe { Box::from_raw(a.private_data.cast::<ArrayPrivate>()) };
    for &c in &private.children {
        unsafe {
            if let Some(r) = (*c).release {
                r(c);
            }
            drop(Box::from_raw(c));
        }
    }
    drop(private);
    a.release = None;
}

fn export_array(len: usize, null_count: usize, buffers: Vec<Option<Vec<u64>>>, children: Vec<FfiArray>) -> FfiArray {
    let ptrs: Vec<*const c_void> =
        buffers.iter().map(|b| b.as_ref().map_or(std::ptr::null(), |v| v.as_ptr().cast::<c_void>())).collect();
    let mut private = Box::new(ArrayPrivate {
        _buffers: buffers,
        ptrs,
        children: children.into_iter().map(|c| Box::into_raw(Box::new(c))).collect(),
    });
    FfiArray {
        length: len as i64,
        null_count: null_count as i64,
        offset: 0,
        n_buffers: private.ptrs.len() as i64,
        n_children: private.children.len() as i64,
        buffers: private.ptrs.as_mut_ptr(),
        children: private.children.as_mut_ptr(),
        dictionary: std::ptr::null_mut(),
        release: Some(release_array),
        private_data: Box::into_raw(private).cast(),
    }
}

struct StreamPrivate {
    table: Arc<Table>,
    done: bool,
}

fn table_schema(cols: &[OutCol]) -> FfiSchema {
    let children = cols
        .iter()
        .map(|c| export_schema(c.format.to_str().unwrap_or(""), c.name.to_str().unwrap_or(""), true, Vec::new()))
        .collect();
    export_schema("+s", "", false, children)
}

unsafe extern "C" fn stream_get_schema(s: *mut FfiStream, out: *mut FfiSchema) -> c_int {
    let private = unsafe { &*(*s).private_data.cast::<StreamPrivate>() };
    let cols = private.table.columns();
    unsafe { out.write(table_schema(&cols)) };
    0
}

unsafe extern "C" fn stream_get_next(s: *mut FfiStream, out: *mut FfiArray) -> c_int {
    let private = unsafe { &mut *(*s).private_data.cast::<StreamPrivate>() };
    if private.done {
        unsafe { out.write(FfiArray::empty()) };
        return 0;
    }
    private.done = true;
    let cols = private.table.columns();
    let len = private.table.rows.len();
    let children = cols.into_iter().map(|c| export_array(c.len, c.null_count, c.buffers, Vec::new())).collect();
    unsafe { out.write(export_array(len, 0, vec![None], children)) };
    0
}

unsafe extern "C" fn stream_get_last_error(_s: *mut FfiStream) -> *const c_char {
    std::ptr::null()
}

unsafe extern "C" fn stream_release(s: *mut FfiStream) {
    if s.is_null() {
        return;
    }
    let s = unsafe { &mut *s };
    if s.release.is_none() {
        return;
    }
    drop(unsafe { Box::from_raw(s.private_data.cast::<StreamPrivate>()) });
    s.release = None;
}

struct SendStream(FfiStream);
// SAFETY: the stream's private data (an Arc of plain Rust data) may move between threads.
unsafe impl Send for SendStream {}

/// Query results as an Arrow table: `pyarrow.table(t)`, `polars.DataFrame(t)`, `t.to_pandas()`.
#[pyclass(module = "meterkit", frozen, name = "BucketTable")]
pub struct PyBucketTable {
    table: Arc<Table>,
}

impl PyBucketTable {
    pub fn new(buckets: Vec<meterkit::Bucket>, group_by: Vec<String>, unique: Vec<String>) -> Self {
        PyBucketTable { table: Arc::new(Table::from_buckets(buckets, group_by, unique)) }
    }
    pub fn from_table(table: Table) -> Self {
        PyBucketTable { table: Arc::new(table) }
    }
}

#[pymethods]
impl PyBucketTable {
    /// The Arrow PyCapsule stream protocol (one batch).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let private = Box::new(StreamPrivate { table: self.table.clone(), done: false });
        let stream = FfiStream {
            get_schema: Some(stream_get_schema),
            get_next: Some(stream_get_next),
            get_last_error: Some(stream_get_last_error),
            release: Some(stream_release),
            private_data: Box::into_raw(private).cast(),
        };
        PyCapsule::new_with_value_and_destructor(py, SendStream(stream), c"arrow_array_stream", |mut s, _| {
            if let Some(r) = s.0.release {
                unsafe { r(&raw mut s.0) };
            }
        })
    }

    /// Column names, in order.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.table.columns().iter().map(|c| c.name.to_string_lossy().into_owned()).collect()
    }

    /// Number of rows.
    #[getter]
    fn num_rows(&self) -> usize {
        self.table.rows.len()
    }

    fn __len__(&self) -> usize {
        self.table.rows.len()
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
            out.append(d)?;
        }
        Ok(out)
    }

    /// A pyarrow Table (needs pyarrow).
    fn to_pyarrow<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py().import("pyarrow")?.call_method1("table", (slf,))
    }

    /// A pandas DataFrame (needs pandas and pyarrow).
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::to_pyarrow(slf)?.call_method0("to_pandas")
    }

    /// A polars DataFrame (needs polars).
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py().import("polars")?.call_method1("DataFrame", (slf,))
    }

    fn __repr__(&self) -> String {
        format!("BucketTable(rows={}, columns={:?})", self.table.rows.len(), self.column_names())
    }
}
