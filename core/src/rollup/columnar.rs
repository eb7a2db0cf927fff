//! The columnar path: usage in column batches (Arrow-style: one array per field, strings
//! dictionary-encoded or plain). [`ColumnarRollup`] rolls them up without building a
//! `UsageRecord` per row (also store-less and on several threads, [`ColumnarRollup::run`]);
//! [`ColumnBatch::records`] gives the records for `Engine::ingest_columns`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::error::{Error, ErrorKind, Result};
use crate::record::{Dimensions, Quality, UsageRecord};
use crate::rollup::{BucketKey, BucketState, Latest, RollupSpec, SUBJECT};
use crate::time::WindowClock;

/// A column of optional strings, one value per row (`None` = null: the row lacks it).
#[derive(Debug, Clone, Copy)]
pub enum StrColumn<'a> {
    /// The same value on every row.
    Const(Option<&'a str>),
    /// One value per row.
    Plain(&'a [Option<&'a str>]),
    /// Arrow dictionary layout: row `i` has `values[codes[i]]`; the code `u32::MAX` is null.
    Dict {
        /// Distinct values.
        values: &'a [&'a str],
        /// One code per row.
        codes: &'a [u32],
    },
}

/// Quantities of a column batch.
#[derive(Debug, Clone, Copy)]
pub enum Quantities<'a> {
    /// Exact decimals, one per row.
    Decimal(&'a [Decimal]),
    /// Integers at a fixed scale: row `i` is `mantissas[i] × 10^-scale` (e.g. Wh as kWh with
    /// scale 3, bytes with scale 0). The fast path: sums are exact `i128` additions.
    Scaled {
        /// One integer per row.
        mantissas: &'a [i64],
        /// Decimal places, 0–28.
        scale: u32,
    },
}

/// A batch of usage in columns. Every column has one entry per row (`timestamps.len()` rows);
/// row `i` is the usage record made of entry `i` of every column ([`ColumnBatch::records`]).
/// `ids`, when given, break ties of `latest` exactly as the record path does (greatest id
/// wins); without ids the later row wins a tie. Ingesting needs ids (the idempotency key).
#[derive(Debug, Clone)]
pub struct ColumnBatch<'a> {
    /// The metric of each row (a non-null value on every row).
    pub metric: StrColumn<'a>,
    /// Tenant of each row (a non-null value on every row).
    pub tenant: StrColumn<'a>,
    /// Subject of each row (a non-null value on every row).
    pub subject: StrColumn<'a>,
    /// Timestamps, whole Unix seconds (UTC), rounded down.
    pub timestamps: &'a [i64],
    /// The sub-second part of each timestamp, nanoseconds 0–999,999,999 (`None`: all 0).
    pub nanos: Option<&'a [u32]>,
    /// End instants (`None` for a row without one); only records carry them, rollups ignore them.
    pub ends: Option<&'a [Option<DateTime<Utc>>]>,
    /// Quantities in the metric's unit.
    pub quantities: Quantities<'a>,
    /// Record ids (the idempotency key with the tenant), also `latest`'s tie-break.
    pub ids: Option<&'a [&'a str]>,
    /// Dimension columns by name (a null value: the row lacks the dimension).
    pub dimensions: Vec<(&'a str, StrColumn<'a>)>,
}

impl<'a> StrColumn<'a> {
    /// The value of row `row` (`None` for a null).
    ///
    /// # Errors
    /// [`ErrorKind::Parse`] for a dictionary code out of range.
    pub fn get(&self, row: usize) -> Result<Option<&'a str>> {
        match *self {
            StrColumn::Const(v) => Ok(v),
            StrColumn::Plain(values) => Ok(values[row]),
            StrColumn::Dict { values, codes } => {
                let c = codes[row];
                if c == NULL {
                    return Ok(None);
                }
                values.get(c as usize).copied().map(Some).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Parse,
                        format!("Dictionary code {c} is out of range ({} values).", values.len()),
                    )
                })
            }
        }
    }

    /// Number of values (`None` for a constant).
    fn len(&self) -> Option<usize> {
        match *self {
            StrColumn::Const(_) => None,
            StrColumn::Plain(values) => Some(values.len()),
            StrColumn::Dict { codes, .. } => Some(codes.len()),
        }
    }
}

impl ColumnBatch<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// True for a batch of no rows.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Every column has one value per row.
    ///
    /// # Errors
    /// [`ErrorKind::Parse`] naming the first column (`field`) whose length differs.
    pub fn check_lengths(&self) -> Result<()> {
        let rows = self.len();
        let quantities = match self.quantities {
            Quantities::Decimal(q) => q.len(),
            Quantities::Scaled { mantissas, .. } => mantissas.len(),
        };
        let mut lens: Vec<(&str, Option<usize>)> = vec![
            ("metric", self.metric.len()),
            ("tenant", self.tenant.len()),
            ("subject", self.subject.len()),
            ("quantity", Some(quantities)),
            ("nanos", self.nanos.map(<[u32]>::len)),
            ("end", self.ends.map(<[Option<DateTime<Utc>>]>::len)),
            ("id", self.ids.map(<[&str]>::len)),
        ];
        lens.extend(self.dimensions.iter().map(|(name, col)| (*name, col.len())));
        for (field, len) in lens {
            if let Some(len) = len.filter(|&l| l != rows) {
                return Err(Error::new(
                    ErrorKind::Parse,
                    format!("The {field} column has {len} values for {rows} rows (timestamps)."),
                )
                .with_field(field));
            }
        }
        Ok(())
    }

    /// The quantity of row `row` (`row < len()`).
    ///
    /// # Errors
    /// [`ErrorKind::Parse`] for a scale above 28.
    pub fn quantity_at(&self, row: usize) -> Result<Decimal> {
        Ok(match self.quantities {
            Quantities::Decimal(q) => q[row],
            Quantities::Scaled { mantissas, scale } => Decimal::try_new(mantissas[row], scale)
                .map_err(|e| Error::new(ErrorKind::Parse, format!("Bad quantity scale {scale}: {e}.")))?,
        })
    }

    /// Row `row` as a usage record (quality `actual`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRecord`] (field `id`) for a batch without ids; [`ErrorKind::Parse`]
    /// for a null tenant, subject or metric, a dictionary code out of range, a bad scale or a
    /// timestamp out of range — each naming the field and the line (row + 1).
    pub fn record(&self, row: usize) -> Result<UsageRecord> {
        let line = row as u64 + 1;
        let Some(ids) = self.ids else {
            return Err(Error::invalid_record("Ingesting columns needs an id column.").with_field("id"));
        };
        let id = ids[row];
        let at = |e: Error, field: &str| e.with_field(field).with_line(line).with_record_id(id);
        let required = |col: &StrColumn<'_>, field: &str| -> Result<String> {
            match col.get(row).map_err(|e| at(e, field))? {
                Some(v) => Ok(v.to_string()),
                None => Err(at(Error::new(ErrorKind::Parse, format!("The {field} of row {line} is null.")), field)),
            }
        };
        let nanos = self.nanos.map_or(0, |n| n[row]);
        let t = self.timestamps[row];
        let timestamp = DateTime::from_timestamp(t, nanos).ok_or_else(|| {
            at(Error::new(ErrorKind::Parse, format!("The timestamp {t}.{nanos:09} is out of range.")), "timestamp")
        })?;
        let mut dimensions = Dimensions::new();
        for (name, col) in &self.dimensions {
            if let Some(v) = col.get(row).map_err(|e| at(e, name))? {
                dimensions.insert((*name).to_string(), v.to_string());
            }
        }
        Ok(UsageRecord {
            id: id.to_string(),
            tenant: required(&self.tenant, "tenant")?,
            subject: required(&self.subject, "subject")?,
            metric: required(&self.metric, "metric")?,
            quantity: self.quantity_at(row).map_err(|e| at(e, "quantity"))?,
            timestamp,
            end: self.ends.and_then(|e| e[row]),
            dimensions,
            quality: Quality::default(),
        })
    }

    /// Every row as a usage record ([`ColumnBatch::record`]), in row order: what
    /// `Engine::ingest_columns` ingests.
    ///
    /// # Errors
    /// As [`ColumnBatch::check_lengths`] and [`ColumnBatch::record`] (the first failing row).
    pub fn records(&self) -> Result<Vec<UsageRecord>> {
        self.check_lengths()?;
        (0..self.len()).map(|row| self.record(row)).collect()
    }
}

/// A bucket of [`ColumnarRollup::finish_with_ids`]: key, window end (Unix seconds), state, and the
/// ids of its min and max rows.
pub type BucketWithIds = (BucketKey, i64, BucketState, (String, String));

/// The most `group_by` dimensions a spec may have on the columnar path.
pub const MAX_COLUMNAR_GROUPS: usize = 8;

const NULL: u32 = u32::MAX;

/// Rolls up [`ColumnBatch`]es under a set of specs, giving exactly the buckets the record path
/// ([`Accumulator`](crate::rollup::Accumulator)) gives for the same rows: strings are interned to `u32`
/// codes once per batch, bucket keys are `(tenant, window start, codes)`, and each bucket keeps
/// its sum, count and the rows of its min, max and latest until [`finish`](Self::finish).
///
/// ```
/// use meterkit::{rollup::columnar::ColumnBatch, rollup::columnar::ColumnarRollup, rollup::columnar::Quantities, RollupSpec, rollup::columnar::StrColumn, Window};
/// let spec = RollupSpec::new("kwh", Window::Day, "UTC")?.group_by(["subject"]);
/// let mut rollup = ColumnarRollup::new(&[spec])?;
/// let subjects = [Some("m1"), Some("m2"), Some("m1")];
/// rollup.add(&ColumnBatch {
///     metric: StrColumn::Const(Some("kwh")),
///     tenant: StrColumn::Const(Some("t")),
///     subject: StrColumn::Plain(&subjects),
///     timestamps: &[0, 3600, 7200],
///     nanos: None,
///     ends: None,
///     quantities: Quantities::Scaled { mantissas: &[1500, 250, 500], scale: 3 },
///     ids: None,
///     dimensions: vec![],
/// })?;
/// let buckets = rollup.finish()?;
/// assert_eq!(buckets.len(), 2);
/// assert_eq!(buckets[0].2.sum.to_string(), "2.000"); // m1: 1.5 + 0.5
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ColumnarRollup {
    specs: Vec<ColSpec>,
    /// Interned strings: every tenant, subject and dimension value seen.
    strings: Vec<String>,
    intern: FxHashMap<String, u32>,
    /// Codes of recent short strings.
    short: ShortCodes,
    /// `(spec, tenant, group codes)` → series, for specs that group by something (a spec without
    /// `group_by` finds its series by tenant code, [`ColSpec::by_tenant`]).
    series_index: FxHashMap<(u32, u32, [u32; MAX_COLUMNAR_GROUPS]), u32>,
    /// Every series (one bucket sequence over time) with its most recent window.
    series: Vec<Series>,
    /// `(series, window start)` → slot; looked up only when a row leaves its series' cached window.
    index: FxHashMap<(u32, i64), u32>,
    slots: Vec<Slot>,
}

#[derive(Debug)]
struct ColSpec {
    metric: String,
    group_by: Vec<String>,
    unique: Vec<String>,
    clock: WindowClock,
    /// For a spec without `group_by`: the series of each tenant code (`NO_SLOT`: none yet).
    by_tenant: Vec<u32>,
}

/// Marks "no series / no slot yet".
const NO_SLOT: u32 = u32::MAX;

/// One series of buckets: a spec, a tenant and a group, and the window `[start, end)` its last row
/// fell in with that window's slot. Meter feeds are mostly time-ordered per series, so most rows
/// fall in the cached window: no window arithmetic and no bucket lookup for them.
#[derive(Debug, Clone, Copy)]
struct Series {
    spec: u32,
    tenant: u32,
    group: [u32; MAX_COLUMNAR_GROUPS],
    start: i64,
    end: i64,
    slot: u32,
}

#[derive(Debug)]
struct Slot {
    series: u32,
    start: i64,
    end: i64,
    count: u64,
    /// Sum, min, max and latest quantity.
    q: QtyState,
    /// Seconds, nanoseconds and id of the latest row.
    latest_at: (i64, u32),
    latest_id: Option<String>,
    /// Seconds and nanoseconds of the earliest row.
    first: (i64, u32),
    uniques: Vec<rustc_hash::FxHashSet<u32>>,
    /// Ids of the min row (ties: the smallest id) and the max row (ties: the greatest id).
    min_id: Option<String>,
    max_id: Option<String>,
    /// `(count, sum)` of the `flagged` and of the `estimated` rows.
    flagged: (u64, Decimal),
    estimated: (u64, Decimal),
}

/// A slot's sum, min, max and latest quantity: integers at one scale while every row so far was an
/// integer quantity at that scale, else decimals. The integer form holds exactly the values the
/// decimal form would (see [`Slot::add_quantity`]), so the buckets are the same either way.
#[derive(Debug, Clone, Copy)]
enum QtyState {
    /// Mantissas at `scale` (0–9). `sum` is never 0 and below 2^96 in magnitude: the mantissa of
    /// the `Decimal` sum at that scale.
    Int { scale: u32, sum: i128, min: i64, max: i64, latest: i64 },
    /// Exact decimals.
    Dec { sum: Decimal, min: Decimal, max: Decimal, latest: Decimal },
}

/// A row's quantity: an integer mantissa at a scale of 0–9, or a decimal.
#[derive(Debug, Clone, Copy)]
enum RowQ {
    Int(i64, u32),
    Dec(Decimal),
}

impl RowQ {
    fn decimal(self) -> Decimal {
        match self {
            // The scale is at most 9 (`RowQ::Int` is only made so): `Decimal::new` cannot fail.
            RowQ::Int(m, s) => Decimal::new(m, s),
            RowQ::Dec(d) => d,
        }
    }
}

/// A sum mantissa the decimal form holds at its scale as is: not 0 (a zero sum takes the general
/// path of `exact_add`, which decides its scale and sign) and below 2^96 in magnitude.
#[inline]
fn int_sum_fits(m: i128) -> bool {
    m != 0 && m.unsigned_abs() < 1u128 << 96
}

impl QtyState {
    /// The state after a slot's first row.
    fn first(q: RowQ) -> Result<Self> {
        Ok(match q {
            // `exact_add(0, m × 10^-s)` is `m × 10^-s` for m ≠ 0 and s ≤ 9 (its fast path).
            RowQ::Int(m, scale) if m != 0 => QtyState::Int { scale, sum: i128::from(m), min: m, max: m, latest: m },
            _ => {
                let d = q.decimal();
                let sum = crate::decimal::exact_add(Decimal::ZERO, d).ok_or_else(|| Error::overflow("A rollup sum"))?;
                QtyState::Dec { sum, min: d, max: d, latest: d }
            }
        })
    }

    /// The decimal form (the values are the same).
    fn to_dec(self) -> Result<(Decimal, Decimal, Decimal, Decimal)> {
        Ok(match self {
            QtyState::Int { scale, sum, min, max, latest } => (
                Decimal::try_from_i128_with_scale(sum, scale).map_err(|_| Error::overflow("A rollup sum"))?,
                Decimal::new(min, scale),
                Decimal::new(max, scale),
                Decimal::new(latest, scale),
            ),
            QtyState::Dec { sum, min, max, latest } => (sum, min, max, latest),
        })
    }

    /// Switch to the decimal form.
    fn make_dec(&mut self) -> Result<()> {
        if let QtyState::Int { .. } = self {
            let (sum, min, max, latest) = self.to_dec()?;
            *self = QtyState::Dec { sum, min, max, latest };
        }
        Ok(())
    }
}

/// Set an id slot to `id`, reusing its allocation.
#[inline]
fn set_id(slot: &mut Option<String>, id: Option<&str>) {
    match (slot.as_mut(), id) {
        (None, None) => {}
        (Some(s), Some(id)) => {
            s.clear();
            s.push_str(id);
        }
        (_, id) => *slot = id.map(str::to_string),
    }
}

/// Slots of [`ShortCodes`].
const SHORT_SLOTS: usize = 4096;

/// A direct-mapped memo of the codes of short strings (at most 8 bytes: tenants, carriers, region
/// names), keyed by the string's bytes packed into a `u64` with its length: a hit is an exact
/// match without hashing or comparing the string, a miss asks the interning map.
#[derive(Debug)]
struct ShortCodes(Box<[(u64, u32, u32)]>);

impl ShortCodes {
    fn new() -> Self {
        ShortCodes(vec![(0, u32::MAX, NULL); SHORT_SLOTS].into_boxed_slice())
    }

    /// `(packed bytes, length)` of a string of at most 8 bytes.
    #[inline]
    fn key(s: &str) -> Option<(u64, u32)> {
        let b = s.as_bytes();
        if b.len() > 8 {
            return None;
        }
        // A byte loop, not `copy_from_slice` (a call to `memcpy` for a variable length).
        let packed = b.iter().enumerate().fold(0u64, |p, (i, &c)| p | u64::from(c) << (8 * i));
        Some((packed, b.len() as u32))
    }

    #[inline]
    fn slot((packed, len): (u64, u32)) -> usize {
        ((packed ^ u64::from(len)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize % SHORT_SLOTS
    }
}

/// Timestamps `DateTime::from_timestamp` certainly accepts (chrono's range is about ±262,000
/// years); others are checked by it.
#[inline]
fn surely_valid(t: i64, nanos: u32) -> bool {
    nanos < 1_000_000_000 && (-8_000_000_000_000..8_000_000_000_000).contains(&t)
}

/// [`ErrorKind::InvalidWindow`] for an instant chrono cannot hold.
#[inline]
fn check_instant(t: i64, nanos: u32) -> Result<()> {
    if !surely_valid(t, nanos) && DateTime::from_timestamp(t, nanos).is_none() {
        return Err(Error::new(ErrorKind::InvalidWindow, format!("The timestamp {t} is out of range.")));
    }
    Ok(())
}

/// What the specialised loop ([`ColumnarRollup::add_int_rows`]) reads besides the batch: the
/// metric and tenant code of each selected row, the metric code of each spec, the scale.
struct IntRows<'a> {
    metrics: &'a [u32],
    tenants: &'a [u32],
    spec_metrics: &'a [u32],
    scale: u32,
}

impl ColumnarRollup {
    /// A kernel for `specs` (output spec ids = positions in `specs`).
    ///
    /// # Errors
    /// As [`RollupSpec::check`]; [`ErrorKind::InvalidQuery`] for a spec grouping by more than
    /// [`MAX_COLUMNAR_GROUPS`] dimensions.
    pub fn new(specs: &[RollupSpec]) -> Result<Self> {
        let specs = specs
            .iter()
            .map(|s| {
                let tz = s.check()?;
                if s.group_by.len() > MAX_COLUMNAR_GROUPS {
                    return Err(Error::new(
                        ErrorKind::InvalidQuery,
                        format!("The columnar path groups by at most {MAX_COLUMNAR_GROUPS} dimensions."),
                    )
                    .with_field("group_by"));
                }
                Ok(ColSpec {
                    metric: s.metric.clone(),
                    group_by: s.group_by.clone(),
                    unique: s.unique_dims().map(str::to_string).collect(),
                    clock: WindowClock::new(s.window, tz)?,
                    by_tenant: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ColumnarRollup {
            specs,
            strings: Vec::new(),
            intern: FxHashMap::default(),
            short: ShortCodes::new(),
            series_index: FxHashMap::default(),
            series: Vec::new(),
            index: FxHashMap::default(),
            slots: Vec::new(),
        })
    }

    fn code(&mut self, s: &str) -> u32 {
        if let Some(c) = self.intern.get(s) {
            return *c;
        }
        let c = self.strings.len() as u32;
        self.strings.push(s.to_string());
        self.intern.insert(s.to_string(), c);
        c
    }

    /// Codes of a string column for the selected rows (`NULL` for nulls).
    fn codes(&mut self, col: &StrColumn<'_>, rows: &Rows<'_>) -> Result<Vec<u32>> {
        Ok(match *col {
            StrColumn::Const(v) => vec![v.map_or(NULL, |s| self.code(s)); rows.count()],
            StrColumn::Plain(values) => {
                let mut short = std::mem::replace(&mut self.short, ShortCodes(Box::new([])));
                let mut last: Option<(&str, u32)> = None;
                let codes = rows
                    .iter()
                    .map(|row| match values[row] {
                        None => NULL,
                        Some(s) => match ShortCodes::key(s) {
                            Some(key) if !short.0.is_empty() => {
                                let slot = &mut short.0[ShortCodes::slot(key)];
                                if (slot.0, slot.1) == key {
                                    slot.2
                                } else {
                                    let c = self.code(s);
                                    *slot = (key.0, key.1, c);
                                    c
                                }
                            }
                            _ => match last {
                                Some((l, c)) if std::ptr::eq(l, s) || l == s => c,
                                _ => {
                                    let c = self.code(s);
                                    last = Some((s, c));
                                    c
                                }
                            },
                        },
                    })
                    .collect();
                self.short = short;
                codes
            }
            StrColumn::Dict { values, codes } => {
                let map: Vec<u32> = values.iter().map(|s| self.code(s)).collect();
                rows.iter()
                    .map(|row| {
                        let c = codes[row];
                        if c == NULL {
                            Ok(NULL)
                        } else {
                            map.get(c as usize).copied().ok_or_else(|| {
                                Error::new(ErrorKind::Parse, format!("Dictionary code {c} is out of range."))
                            })
                        }
                    })
                    .collect::<Result<_>>()?
            }
        })
    }

    /// Add a batch.
    ///
    /// # Errors
    /// [`ErrorKind::Parse`] for columns of different lengths, a null tenant, subject or metric, a
    /// dictionary code out of range or a scale above 28; [`ErrorKind::Overflow`] when a sum
    /// leaves the decimal range; [`ErrorKind::InvalidWindow`] for a timestamp out of range.
    /// After an error the rollup may hold part of the batch and should be dropped.
    pub fn add(&mut self, batch: &ColumnBatch<'_>) -> Result<()> {
        batch.check_lengths()?;
        self.add_rows(batch, &Rows::All(batch.len()), None)
    }

    /// [`add`](Self::add) for the rows `rows` (ascending, each `< batch.len()`) of a batch, with
    /// the quality of every row of the batch (`None`: all `actual`), counted in the flagged and
    /// estimated shares.
    ///
    /// # Errors
    /// As [`add`](Self::add); [`ErrorKind::Parse`] (field `quality`) for a quality column of
    /// another length, or a row index out of range.
    pub fn add_selected(&mut self, batch: &ColumnBatch<'_>, rows: &[u32], qualities: Option<&[Quality]>) -> Result<()> {
        batch.check_lengths()?;
        if let Some(q) = qualities.filter(|q| q.len() != batch.len()) {
            return Err(Error::new(
                ErrorKind::Parse,
                format!("The quality column has {} values for {} rows (timestamps).", q.len(), batch.len()),
            )
            .with_field("quality"));
        }
        if rows.iter().any(|&r| r as usize >= batch.len()) {
            return Err(Error::new(ErrorKind::Parse, format!("A row index is out of range ({} rows).", batch.len())));
        }
        self.add_rows(batch, &Rows::Some(rows), qualities)
    }

    /// [`add`](Self::add) for some rows of a batch whose lengths were checked.
    fn add_rows(&mut self, batch: &ColumnBatch<'_>, rows: &Rows<'_>, qualities: Option<&[Quality]>) -> Result<()> {
        let metrics = self.codes(&batch.metric, rows)?;
        let tenants = self.codes(&batch.tenant, rows)?;
        let subjects = self.codes(&batch.subject, rows)?;
        for (codes, field) in [(&metrics, "metric"), (&tenants, "tenant"), (&subjects, "subject")] {
            if codes.contains(&NULL) {
                return Err(Error::new(ErrorKind::Parse, format!("Every row needs a {field}.")).with_field(field));
            }
        }
        let mut dims: Vec<(&str, Vec<u32>)> = Vec::with_capacity(batch.dimensions.len());
        for (name, col) in &batch.dimensions {
            dims.push((name, self.codes(col, rows)?));
        }
        let spec_metrics: Vec<u32> = (0..self.specs.len()).map(|i| self.code(&self.specs[i].metric.clone())).collect();
        let position = |d: &String| if d == SUBJECT { Some(usize::MAX) } else { dims.iter().position(|(n, _)| n == d) };
        // Column of each spec's group and unique dimensions (None: absent, every row null).
        let wanted: Vec<Vec<Option<usize>>> =
            self.specs.iter().map(|s| s.group_by.iter().map(position).collect()).collect();
        let uniques: Vec<Vec<Option<usize>>> =
            self.specs.iter().map(|s| s.unique.iter().map(position).collect()).collect();
        let col = |c: Option<usize>, j: usize| match c {
            None => NULL,
            Some(usize::MAX) => subjects[j],
            Some(i) => dims[i].1[j],
        };
        let codes = self.strings.len();
        for spec in self.specs.iter_mut().filter(|s| s.group_by.is_empty()) {
            spec.by_tenant.resize(codes, NO_SLOT);
        }
        // Integer quantities at a scale of 0–9 take the integer path; larger (valid) scales are
        // read as decimals; a scale above 28 is reported at the first row, as `quantity_at` does.
        let int_scale = match batch.quantities {
            Quantities::Scaled { scale, .. } if scale <= 9 => Some(scale),
            _ => None,
        };
        if let (Some(scale), None, None) = (int_scale, qualities, batch.ids) {
            if self.specs.iter().all(|s| s.group_by.is_empty() && s.unique.is_empty()) {
                let seen = IntRows { metrics: &metrics, tenants: &tenants, spec_metrics: &spec_metrics, scale };
                return match *rows {
                    Rows::All(n) => self.add_int_rows(batch, &seen, 0..n),
                    Rows::Some(r) => self.add_int_rows(batch, &seen, r.iter().map(|&r| r as usize)),
                };
            }
        }
        for (j, row) in rows.iter().enumerate() {
            let t = batch.timestamps[row];
            let nanos = batch.nanos.map_or(0, |n| n[row]);
            check_instant(t, nanos)?;
            let q = match (batch.quantities, int_scale) {
                (Quantities::Scaled { mantissas, .. }, Some(scale)) => RowQ::Int(mantissas[row], scale),
                _ => RowQ::Dec(batch.quantity_at(row)?),
            };
            let id = batch.ids.map(|ids| ids[row]);
            for (si, group_cols) in wanted.iter().enumerate() {
                if metrics[j] != spec_metrics[si] {
                    continue;
                }
                let series = if group_cols.is_empty() {
                    self.tenant_series(si, tenants[j])?
                } else {
                    let mut group = [NULL; MAX_COLUMNAR_GROUPS];
                    for (g, c) in group.iter_mut().zip(group_cols) {
                        *g = col(*c, j);
                    }
                    match self.series_index.get(&(si as u32, tenants[j], group)) {
                        Some(&s) => s,
                        None => {
                            let s = self.new_series(si, tenants[j], group)?;
                            self.series_index.insert((si as u32, tenants[j], group), s);
                            s
                        }
                    }
                };
                let slot = self.slot_of(si, series, t)?;
                let slot = &mut self.slots[slot as usize];
                slot.add_row(q, id, (t, nanos), qualities.map_or(Quality::Actual, |qs| qs[row]))?;
                for (set, c) in slot.uniques.iter_mut().zip(&uniques[si]) {
                    let v = col(*c, j);
                    if v != NULL {
                        set.insert(v);
                    }
                }
            }
        }
        Ok(())
    }

    /// The specialised loop of [`add_rows`](Self::add_rows) for the common shape: integer
    /// quantities at a scale of 0–9, no ids, no qualities, and specs without `group_by` or unique
    /// counts (the series is the tenant's). A slot in the integer form takes the row in a few
    /// instructions ([`Slot::add_int`]); any other (its first row, another scale, a sum reaching
    /// 0 or 2^96, ids from an earlier batch) takes [`Slot::add_row`], the general update, so the
    /// buckets are the same as the general loop's.
    fn add_int_rows(
        &mut self,
        batch: &ColumnBatch<'_>,
        seen: &IntRows<'_>,
        rows: impl Iterator<Item = usize>,
    ) -> Result<()> {
        let Quantities::Scaled { mantissas, .. } = batch.quantities else {
            return Err(Error::new(ErrorKind::Parse, "Integer quantities expected."));
        };
        let scale = seen.scale;
        for (j, row) in rows.enumerate() {
            let t = batch.timestamps[row];
            let nanos = batch.nanos.map_or(0, |n| n[row]);
            check_instant(t, nanos)?;
            let m = mantissas[row];
            let (metric, tenant) = (seen.metrics[j], seen.tenants[j]);
            for (si, &spec_metric) in seen.spec_metrics.iter().enumerate() {
                if metric != spec_metric {
                    continue;
                }
                // The series' cached window, read in place; anything else takes the slow path.
                let series = self.specs[si].by_tenant.get(tenant as usize).copied().unwrap_or(NO_SLOT);
                let cached = self.series.get(series as usize).filter(|s| s.start <= t && t < s.end).map(|s| s.slot);
                let slot = match cached {
                    Some(slot) => slot,
                    None => self.tenant_slot(si, tenant, t)?,
                };
                let slot = &mut self.slots[slot as usize];
                if !slot.add_int(m, scale, (t, nanos)) {
                    slot.add_row(RowQ::Int(m, scale), None, (t, nanos), Quality::Actual)?;
                }
            }
        }
        Ok(())
    }

    /// The slot of the window containing `t` for `tenant` under spec `si` (without `group_by`):
    /// the slow path of [`add_int_rows`](Self::add_int_rows), a row outside its series' cached window.
    #[cold]
    #[inline(never)]
    fn tenant_slot(&mut self, si: usize, tenant: u32, t: i64) -> Result<u32> {
        let series = self.tenant_series(si, tenant)?;
        self.slot_of(si, series, t)
    }

    /// The series of `tenant` under spec `si` (a spec without `group_by`), new if needed.
    #[inline]
    fn tenant_series(&mut self, si: usize, tenant: u32) -> Result<u32> {
        match self.specs[si].by_tenant[tenant as usize] {
            NO_SLOT => {
                let s = self.new_series(si, tenant, [NULL; MAX_COLUMNAR_GROUPS])?;
                self.specs[si].by_tenant[tenant as usize] = s;
                Ok(s)
            }
            s => Ok(s),
        }
    }

    /// A new series of spec `si`.
    fn new_series(&mut self, si: usize, tenant: u32, group: [u32; MAX_COLUMNAR_GROUPS]) -> Result<u32> {
        let s = u32::try_from(self.series.len())
            .ok()
            .filter(|&s| s != NO_SLOT)
            .ok_or_else(|| Error::new(ErrorKind::Overflow, "A columnar rollup holds at most 2^32-1 series."))?;
        self.series.push(Series { spec: si as u32, tenant, group, start: 0, end: 0, slot: NO_SLOT });
        Ok(s)
    }

    /// The slot of the window containing `t` in series `series` (of spec `si`), new if needed.
    #[inline]
    fn slot_of(&mut self, si: usize, series: u32, t: i64) -> Result<u32> {
        let cached = &self.series[series as usize];
        if cached.start <= t && t < cached.end {
            return Ok(cached.slot);
        }
        let (start, end) = self.specs[si].clock.span(t)?;
        let slot = match self.index.get(&(series, start)) {
            Some(&slot) => slot,
            None => {
                let slot = u32::try_from(self.slots.len()).ok().filter(|&s| s != NO_SLOT).ok_or_else(|| {
                    Error::new(ErrorKind::Overflow, "A columnar rollup holds at most 2^32-1 buckets.")
                })?;
                self.index.insert((series, start), slot);
                self.slots.push(Slot {
                    series,
                    start,
                    end,
                    count: 0,
                    q: QtyState::Dec {
                        sum: Decimal::ZERO,
                        min: Decimal::ZERO,
                        max: Decimal::ZERO,
                        latest: Decimal::ZERO,
                    },
                    latest_at: (i64::MIN, 0),
                    latest_id: None,
                    first: (i64::MAX, u32::MAX),
                    uniques: vec![rustc_hash::FxHashSet::default(); self.specs[si].unique.len()],
                    min_id: None,
                    max_id: None,
                    flagged: (0, Decimal::ZERO),
                    estimated: (0, Decimal::ZERO),
                });
                slot
            }
        };
        let cached = &mut self.series[series as usize];
        (cached.start, cached.end, cached.slot) = (start, end, slot);
        Ok(slot)
    }

    /// Roll `batches` up under `specs` without a store, on `threads` threads (`0`: one per CPU;
    /// one thread when the tenant is a constant), and return the buckets sorted by key (tenant,
    /// spec, window start, group) — the same whatever the thread count.
    ///
    /// With several threads the tenants are split between them by a hash of the tenant, each
    /// thread rolling its share of every batch into its own [`ColumnarRollup`]: tenants never
    /// share a bucket, so the parts are simply concatenated. The threads are scoped: they end
    /// before this returns.
    ///
    /// # Errors
    /// As [`ColumnarRollup::new`] and [`ColumnarRollup::add`].
    pub fn run(
        specs: &[RollupSpec],
        batches: &[ColumnBatch<'_>],
        threads: usize,
    ) -> Result<Vec<(BucketKey, i64, BucketState)>> {
        for b in batches {
            b.check_lengths()?;
        }
        let threads =
            if threads == 0 { std::thread::available_parallelism().map_or(1, std::num::NonZero::get) } else { threads };
        let split = threads > 1 && batches.iter().any(|b| !matches!(b.tenant, StrColumn::Const(_)));
        if split {
            let parts: Vec<Vec<Vec<u32>>> = batches.iter().map(|b| partition(&b.tenant, b.len(), threads)).collect();
            let run_part = |k: usize| -> Result<Vec<(BucketKey, i64, BucketState)>> {
                let mut kernel = ColumnarRollup::new(specs)?;
                for (b, p) in batches.iter().zip(&parts) {
                    kernel.add_rows(b, &Rows::Some(&p[k]), None)?;
                }
                kernel.finish_sorted()
            };
            let results: Vec<Result<Vec<_>>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads).map(|k| s.spawn(move || run_part(k))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
            });
            let mut all = Vec::new();
            for r in results {
                all.extend(r?);
            }
            // Each part is sorted: the stable sort merges the runs.
            all.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(all)
        } else {
            let mut kernel = ColumnarRollup::new(specs)?;
            for b in batches {
                kernel.add_rows(b, &Rows::All(b.len()), None)?;
            }
            kernel.finish_sorted()
        }
    }

    /// Number of buckets so far.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no row matched a spec.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The buckets as `(key, window end, state)`, in first-touched order — the same shape as
    /// [`Accumulator::into_buckets`](crate::rollup::Accumulator::into_buckets), ready for a store.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidWindow`] for a timestamp out of range (not reachable after `add`).
    pub fn finish(self) -> Result<Vec<(BucketKey, i64, BucketState)>> {
        Ok(self.finish_with_ids()?.into_iter().map(|(key, end, state, _)| (key, end, state)).collect())
    }

    /// As [`finish`](Self::finish), sorted by key: the slots are ordered on integer ranks of the
    /// interned strings (the strings' order), not by comparing strings per pair of buckets.
    fn finish_sorted(self) -> Result<Vec<(BucketKey, i64, BucketState)>> {
        let mut by_text: Vec<u32> = (0..self.strings.len() as u32).collect();
        by_text.sort_unstable_by(|&a, &b| self.strings[a as usize].cmp(&self.strings[b as usize]));
        let mut rank = vec![0u32; self.strings.len()];
        for (r, &c) in by_text.iter().enumerate() {
            rank[c as usize] = r as u32 + 1; // 0 is a null group value, first in the order
        }
        let rank_of = |c: u32| if c == NULL { 0 } else { rank[c as usize] };
        let mut order: Vec<(u32, u32, i64, [u32; MAX_COLUMNAR_GROUPS], u32)> = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let series = &self.series[s.series as usize];
                (rank_of(series.tenant), series.spec, s.start, series.group.map(rank_of), i as u32)
            })
            .collect();
        order.sort_unstable();
        order.iter().map(|o| self.bucket(&self.slots[o.4 as usize]).map(|(k, e, s, _)| (k, e, s))).collect()
    }

    /// As [`finish`](Self::finish), with the ids of each bucket's min and max rows (ties: the
    /// smallest id for the min, the greatest for the max; empty without an id column) — what a
    /// partial state carries ([`crate::rollup::partial`]).
    ///
    /// # Errors
    /// As [`finish`](Self::finish).
    pub fn finish_with_ids(self) -> Result<Vec<BucketWithIds>> {
        self.slots.iter().map(|s| self.bucket(s)).collect()
    }

    /// The bucket of a slot.
    fn bucket(&self, s: &Slot) -> Result<BucketWithIds> {
        let name = |c: u32| (c != NULL).then(|| self.strings[c as usize].clone());
        let series = &self.series[s.series as usize];
        let spec = &self.specs[series.spec as usize];
        let latest_ts = DateTime::from_timestamp(s.latest_at.0, s.latest_at.1)
            .ok_or_else(|| Error::new(ErrorKind::InvalidWindow, "A timestamp is out of range."))?;
        let first_at = DateTime::from_timestamp(s.first.0, s.first.1)
            .ok_or_else(|| Error::new(ErrorKind::InvalidWindow, "A timestamp is out of range."))?;
        let (sum, min, max, latest) = s.q.to_dec()?;
        let state = BucketState {
            first_at: Some(first_at),
            sum,
            count: s.count,
            min: Some(min),
            max: Some(max),
            latest: Some(Latest {
                timestamp: latest_ts,
                id: s.latest_id.clone().unwrap_or_default(),
                quantity: latest,
            }),
            uniques: spec
                .unique
                .iter()
                .zip(&s.uniques)
                .filter(|(_, set)| !set.is_empty())
                .map(|(d, set)| (d.clone(), set.iter().map(|c| self.strings[*c as usize].clone()).collect()))
                .collect(),
            flagged_count: s.flagged.0,
            flagged_sum: s.flagged.1,
            estimated_count: s.estimated.0,
            estimated_sum: s.estimated.1,
        };
        let key = BucketKey {
            tenant: self.strings[series.tenant as usize].clone(),
            spec: series.spec,
            start: s.start,
            group: series.group[..spec.group_by.len()].iter().map(|c| name(*c)).collect(),
        };
        Ok((key, s.end, state, (s.min_id.clone().unwrap_or_default(), s.max_id.clone().unwrap_or_default())))
    }
}

impl Slot {
    /// Take a row (quantity `q`, id `id`, instant `at` as seconds and nanoseconds, quality
    /// `quality`) into the count, the quality shares, sum, min, max, latest and first instant:
    /// the general update (unique counts are the caller's).
    #[inline]
    fn add_row(&mut self, q: RowQ, id: Option<&str>, at: (i64, u32), quality: Quality) -> Result<()> {
        self.count += 1;
        match quality {
            Quality::Actual => {}
            Quality::Flagged => add_share(&mut self.flagged, q.decimal())?,
            Quality::Estimated => add_share(&mut self.estimated, q.decimal())?,
        }
        self.add_quantity(q, id)?;
        let newer = at > self.latest_at
            || (at == self.latest_at && id.is_none_or(|id| self.latest_id.as_deref().is_none_or(|l| id >= l)));
        if newer {
            self.latest_at = at;
            set_id(&mut self.latest_id, id);
            self.set_latest(q)?;
        }
        if at < self.first {
            self.first = at;
        }
        Ok(())
    }

    /// [`add_row`](Self::add_row) for a row of quality `actual` without an id whose quantity is
    /// the integer `m` at `scale`, when the slot is in the integer form at that scale, already
    /// has a row, holds no ids and the sum stays a non-zero mantissa below 2^96: then it is
    /// exactly what `add_row` does (a tie of `latest` goes to the later row, there being no id;
    /// min/max ids stay `None`). Returns false, changing nothing, otherwise.
    #[inline]
    fn add_int(&mut self, m: i64, scale: u32, at: (i64, u32)) -> bool {
        let QtyState::Int { scale: s, sum, min, max, latest } = &mut self.q else {
            return false;
        };
        let new_sum = *sum + i128::from(m);
        if *s != scale
            || self.count == 0
            || !int_sum_fits(new_sum)
            || self.min_id.is_some()
            || self.max_id.is_some()
            || self.latest_id.is_some()
        {
            return false;
        }
        self.count += 1;
        *sum = new_sum;
        *min = (*min).min(m);
        *max = (*max).max(m);
        if at >= self.latest_at {
            self.latest_at = at;
            *latest = m;
        }
        if at < self.first {
            self.first = at;
        }
        true
    }

    /// Take `q` (of the row with id `id`; `count` already counts it) into the sum, min and max and
    /// their ids: a smaller value (or an equal one with a smaller id) is the new min, a greater
    /// value (or an equal one with a greater id) the new max.
    ///
    /// The integer form adds mantissas in `i128` while the sum stays a non-zero mantissa below
    /// 2^96 at the slot's scale — exactly the `Decimal` `exact_add` gives then (its fast path);
    /// any other row (another scale, a decimal, a sum reaching 0 or 2^96) switches the slot to
    /// decimals, which then go on exactly as before.
    #[inline]
    fn add_quantity(&mut self, q: RowQ, id: Option<&str>) -> Result<()> {
        if self.count == 1 {
            self.q = QtyState::first(q)?;
            set_id(&mut self.min_id, id);
            set_id(&mut self.max_id, id);
            return Ok(());
        }
        let (to_min, to_max) = match (&mut self.q, q) {
            (QtyState::Int { scale, sum, min, max, .. }, RowQ::Int(m, row_scale))
                if *scale == row_scale && int_sum_fits(*sum + i128::from(m)) =>
            {
                *sum += i128::from(m);
                let (below, above) = (m.cmp(min), m.cmp(max));
                if below.is_lt() {
                    *min = m;
                }
                if above.is_gt() {
                    *max = m;
                }
                (below, above)
            }
            _ => {
                self.q.make_dec()?;
                let d = q.decimal();
                let QtyState::Dec { sum, min, max, .. } = &mut self.q else {
                    return Err(Error::overflow("A rollup sum"));
                };
                *sum = crate::decimal::exact_add(*sum, d).ok_or_else(|| Error::overflow("A rollup sum"))?;
                let (below, above) = (super::cmp_decimal(d, *min), super::cmp_decimal(d, *max));
                if below.is_lt() {
                    *min = d;
                }
                if above.is_gt() {
                    *max = d;
                }
                (below, above)
            }
        };
        if to_min.is_lt() || (to_min.is_eq() && id.is_some_and(|id| self.min_id.as_deref().is_none_or(|m| id < m))) {
            set_id(&mut self.min_id, id);
        }
        if to_max.is_gt() || (to_max.is_eq() && id.is_some_and(|id| self.max_id.as_deref().is_none_or(|m| id > m))) {
            set_id(&mut self.max_id, id);
        }
        Ok(())
    }

    /// Make `q` the latest quantity (after [`add_quantity`](Self::add_quantity) took it).
    #[inline]
    fn set_latest(&mut self, q: RowQ) -> Result<()> {
        match (&mut self.q, q) {
            (QtyState::Int { scale, latest, .. }, RowQ::Int(m, s)) if *scale == s => *latest = m,
            _ => {
                self.q.make_dec()?;
                if let QtyState::Dec { latest, .. } = &mut self.q {
                    *latest = q.decimal();
                }
            }
        }
        Ok(())
    }
}

/// Add `q` to a `(count, sum)` share.
fn add_share(share: &mut (u64, Decimal), q: Decimal) -> Result<()> {
    share.1 = crate::decimal::exact_add(share.1, q).ok_or_else(|| Error::overflow("A rollup sum"))?;
    share.0 += 1;
    Ok(())
}

/// The rows of a batch a kernel reads: all of them, or one thread's share.
enum Rows<'a> {
    /// Rows `0..n`.
    All(usize),
    /// These rows, ascending.
    Some(&'a [u32]),
}

impl Rows<'_> {
    fn count(&self) -> usize {
        match self {
            Rows::All(n) => *n,
            Rows::Some(r) => r.len(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let (all, some) = match self {
            Rows::All(n) => (*n, None),
            Rows::Some(r) => (0, Some(r.iter().map(|&r| r as usize))),
        };
        (0..all).chain(some.into_iter().flatten())
    }
}

/// A cheap, stable hash of a tenant (FNV-1a).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The rows of each of `n` parts, a row in part `hash(tenant) % n`.
fn partition(tenant: &StrColumn<'_>, rows: usize, n: usize) -> Vec<Vec<u32>> {
    let mut parts = vec![Vec::new(); n];
    let part = |s: Option<&str>| s.map_or(0, |s| (fnv(s) % n as u64) as usize);
    match *tenant {
        StrColumn::Const(v) => parts[part(v)].extend(0..rows as u32),
        StrColumn::Plain(values) => {
            let mut last: Option<(&str, usize)> = None;
            for (row, v) in values.iter().enumerate() {
                let k = match (last, v) {
                    (Some((l, k)), Some(s)) if std::ptr::eq(l, *s) || l == *s => k,
                    (_, Some(s)) => {
                        let k = part(Some(s));
                        last = Some((s, k));
                        k
                    }
                    (_, None) => 0,
                };
                parts[k].push(row as u32);
            }
        }
        StrColumn::Dict { values, codes } => {
            let of_value: Vec<usize> = values.iter().map(|s| part(Some(s))).collect();
            for (row, &c) in codes.iter().enumerate() {
                // A null or out-of-range code goes to part 0, whose kernel reports it.
                parts[of_value.get(c as usize).copied().unwrap_or(0)].push(row as u32);
            }
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{rollup::Accumulator, UsageRecord, Window};
    use proptest::prelude::*;

    fn specs() -> Vec<RollupSpec> {
        vec![
            RollupSpec::new("kwh", Window::Hour, "Asia/Kolkata").unwrap().group_by(["carrier", "region"]),
            RollupSpec::new("kwh", Window::Day, "America/New_York")
                .unwrap()
                .group_by(["subject"])
                .with(crate::Aggregation::UniqueCount("carrier".into())),
            RollupSpec::new("other", Window::Day, "UTC").unwrap(),
        ]
    }

    proptest! {
        /// The columnar kernel gives exactly the record path's buckets.
        #[test]
        fn columnar_equals_record_path(rows in proptest::collection::vec(
            (0i64..200_000, -500i64..5000, 0usize..4, 0usize..3, 0usize..3, proptest::bool::ANY), 1..200)) {
            let base = 1_710_000_000i64; // around the March 2024 New York DST change
            let subjects = ["s0", "s1", "s2", "s3"];
            let carriers = [Some("a"), Some("b"), None];
            let regions = ["north", "south", "east"];
            let mut records = Vec::new();
            for (i, (dt, m, s, c, r, _)) in rows.iter().enumerate() {
                let mut rec = UsageRecord::new("t", format!("id{:03}", (i * 7) % 50), subjects[*s], "kwh",
                    Decimal::new(*m, 2), DateTime::from_timestamp(base + dt, 0).unwrap())
                    .with_dimension("region", regions[*r]);
                rec.id = format!("id{i:04}");
                if let Some(c) = carriers[*c] { rec = rec.with_dimension("carrier", c); }
                records.push(rec);
            }
            let mut acc = Accumulator::new("t", &specs()).unwrap();
            for r in &records { acc.add(r).unwrap(); }
            let mut expected = acc.into_buckets();

            let ts: Vec<i64> = records.iter().map(|r| r.timestamp.timestamp()).collect();
            let mant: Vec<i64> = rows.iter().map(|x| x.1).collect();
            let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
            let subj: Vec<Option<&str>> = records.iter().map(|r| Some(r.subject.as_str())).collect();
            let car: Vec<Option<&str>> = records.iter().map(|r| r.dimensions.get("carrier").map(String::as_str)).collect();
            let region_values = ["north", "south", "east"];
            let region_codes: Vec<u32> = rows.iter().map(|x| x.4 as u32).collect();
            let decimals: Vec<Decimal> = records.iter().map(|r| r.quantity).collect();
            let use_decimal = rows[0].5;
            let mut col = ColumnarRollup::new(&specs()).unwrap();
            col.add(&ColumnBatch {
                metric: StrColumn::Const(Some("kwh")),
                tenant: StrColumn::Const(Some("t")),
                subject: StrColumn::Plain(&subj),
                timestamps: &ts,
                nanos: None,
                ends: None,
                quantities: if use_decimal { Quantities::Decimal(&decimals) } else { Quantities::Scaled { mantissas: &mant, scale: 2 } },
                ids: Some(&ids),
                dimensions: vec![("carrier", StrColumn::Plain(&car)), ("region", StrColumn::Dict { values: &region_values, codes: &region_codes })],
            }).unwrap();
            let mut got = col.finish().unwrap();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            got.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                prop_assert_eq!(&g.0, &e.0);
                prop_assert_eq!(g.1, e.1);
                let (gs, es) = (&g.2, &e.2);
                prop_assert_eq!((gs.sum, gs.count, gs.min, gs.max), (es.sum, es.count, es.min, es.max));
                prop_assert_eq!(&gs.latest, &es.latest);
                prop_assert_eq!(gs.first_at, es.first_at);
                prop_assert_eq!(&gs.uniques, &es.uniques);
            }
        }
    }

    proptest! {
        /// `run` (store-less, tenants split between threads) gives the record path's buckets of
        /// every tenant, sorted, whatever the thread count — with a metric column (rows of other
        /// metrics skipped) and sub-second timestamps (`latest` by the exact instant).
        #[test]
        fn run_equals_one_accumulator_per_tenant(rows in proptest::collection::vec(
            (0i64..300_000, 0u32..3, -500i64..5000, 0usize..5, 0usize..2, 0usize..3), 1..150), threads in 0usize..4) {
            let base = 1_710_000_000i64;
            let tenants = ["t0", "t1", "t2", "t3", "t4"];
            let metrics = ["kwh", "other"];
            let carriers = [Some("a"), Some("b"), None];
            let mut records = Vec::new();
            for (i, (dt, ns, m, t, me, c)) in rows.iter().enumerate() {
                let at = DateTime::from_timestamp(base + dt, ns * 250_000_000).unwrap();
                let mut rec = UsageRecord::new(tenants[*t], format!("id{:04}", (i * 7919) % 10_000), "s", metrics[*me], Decimal::new(*m, 1), at);
                if let Some(c) = carriers[*c] { rec = rec.with_dimension("carrier", c); }
                records.push(rec);
            }
            let specs = specs();
            let mut expected = Vec::new();
            for t in tenants {
                let mut acc = Accumulator::new(t, &specs).unwrap();
                for r in records.iter().filter(|r| r.tenant == t) { acc.add(r).unwrap(); }
                expected.extend(acc.into_buckets());
            }
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            let ts: Vec<i64> = records.iter().map(|r| r.timestamp.timestamp()).collect();
            let nanos: Vec<u32> = records.iter().map(|r| r.timestamp.timestamp_subsec_nanos()).collect();
            let q: Vec<Decimal> = records.iter().map(|r| r.quantity).collect();
            let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
            let tenant: Vec<Option<&str>> = records.iter().map(|r| Some(r.tenant.as_str())).collect();
            let metric: Vec<Option<&str>> = records.iter().map(|r| Some(r.metric.as_str())).collect();
            let car: Vec<Option<&str>> = records.iter().map(|r| r.dimensions.get("carrier").map(String::as_str)).collect();
            // Two batches, so that every thread reads its share of each.
            let half = records.len() / 2;
            let batch = |r: std::ops::Range<usize>| ColumnBatch {
                metric: StrColumn::Plain(&metric[r.clone()]),
                tenant: StrColumn::Plain(&tenant[r.clone()]),
                subject: StrColumn::Const(Some("s")),
                timestamps: &ts[r.clone()],
                nanos: Some(&nanos[r.clone()]),
                ends: None,
                quantities: Quantities::Decimal(&q[r.clone()]),
                ids: Some(&ids[r.clone()]),
                dimensions: vec![("carrier", StrColumn::Plain(&car[r]))],
            };
            let got = ColumnarRollup::run(&specs, &[batch(0..half), batch(half..records.len())], threads).unwrap();
            prop_assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                prop_assert_eq!(&g.0, &e.0);
                prop_assert_eq!(g.1, e.1);
                let (gs, es) = (&g.2, &e.2);
                prop_assert_eq!((gs.sum, gs.count, gs.min, gs.max), (es.sum, es.count, es.min, es.max));
                prop_assert_eq!(&gs.latest, &es.latest);
                prop_assert_eq!(gs.first_at, es.first_at);
                prop_assert_eq!(&gs.uniques, &es.uniques);
            }
        }
    }

    proptest! {
        /// Integer quantities at changing scales (0–12, so some beyond the integer path's 9),
        /// decimals and zero or negative sums in one bucket: the sums, minima, maxima and latest
        /// quantities are the record path's to the last digit of their scale (the text a partial
        /// state prints), not only equal in value.
        #[test]
        fn columnar_keeps_the_record_paths_scales(batches in proptest::collection::vec(
            (0u32..13, proptest::bool::ANY, proptest::collection::vec((0i64..7200, -3i64..4, 0usize..2), 1..40)), 1..5)) {
            let base = 1_710_000_000i64;
            let specs = vec![RollupSpec::new("kwh", Window::Hour, "UTC").unwrap().group_by(["subject"])];
            let mut acc = Accumulator::new("t", &specs).unwrap();
            let mut col = ColumnarRollup::new(&specs).unwrap();
            let mut n = 0;
            for (scale, as_decimal, rows) in &batches {
                let ts: Vec<i64> = rows.iter().map(|r| base + r.0).collect();
                let mant: Vec<i64> = rows.iter().map(|r| r.1 * 1_000_003).collect();
                let subj: Vec<Option<&str>> = rows.iter().map(|r| Some(["s0", "s1"][r.2])).collect();
                let ids: Vec<String> = rows.iter().map(|_| { n += 1; format!("id{n:05}") }).collect();
                let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                let decimals: Vec<Decimal> = mant.iter().map(|&m| Decimal::new(m, *scale)).collect();
                for (i, d) in decimals.iter().enumerate() {
                    acc.add(&UsageRecord::new("t", ids[i].clone(), subj[i].unwrap(), "kwh", *d,
                        DateTime::from_timestamp(ts[i], 0).unwrap())).unwrap();
                }
                col.add(&ColumnBatch {
                    metric: StrColumn::Const(Some("kwh")),
                    tenant: StrColumn::Const(Some("t")),
                    subject: StrColumn::Plain(&subj),
                    timestamps: &ts,
                    nanos: None,
                    ends: None,
                    quantities: if *as_decimal { Quantities::Decimal(&decimals) } else { Quantities::Scaled { mantissas: &mant, scale: *scale } },
                    ids: Some(&id_refs),
                    dimensions: vec![],
                }).unwrap();
            }
            let mut expected = acc.into_buckets();
            let mut got = col.finish().unwrap();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let text = |s: &BucketState| (s.sum.to_string(), s.min.map(|d| d.to_string()), s.max.map(|d| d.to_string()),
                s.latest.as_ref().map(|l| (l.quantity.to_string(), l.id.clone())), s.count);
            prop_assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                prop_assert_eq!(&g.0, &e.0);
                prop_assert_eq!(text(&g.2), text(&e.2));
            }
        }
    }

    /// One batch of `integer_loop_equals_general_loop`: rows of `(seconds offset, nanos, mantissa,
    /// tenant, metric)`, a scale, with ids or not, with nanoseconds or not, tenants as a dictionary
    /// or plain.
    type LoopBatch = (Vec<(i64, u32, i64, usize, usize)>, u32, bool, bool, bool);

    proptest! {
        /// The specialised loop for integer quantities without ids or qualities gives exactly the
        /// general loop's buckets (forced by a quality column of `actual`): sums reaching 0,
        /// scales beyond the integer form, batches with and without ids or nanoseconds into the
        /// same buckets, ties of `latest`, two specs, any number of threads.
        #[test]
        fn integer_loop_equals_general_loop(batches in proptest::collection::vec((
            proptest::collection::vec((prop_oneof![0i64..30_000, 0i64..20], prop_oneof![Just(0u32), 0u32..3], -3i64..4, 0usize..3, 0usize..3), 1..60),
            prop_oneof![Just(0u32), Just(2u32), Just(9u32), Just(12u32)],
            proptest::bool::weighted(0.2), proptest::bool::ANY, proptest::bool::ANY), 1..5)) {
            let batches: Vec<LoopBatch> = batches;
            let specs = vec![
                RollupSpec::new("kwh", Window::Hour, "UTC").unwrap(),
                RollupSpec::new("kwh", Window::Day, "America/New_York").unwrap(),
                RollupSpec::new("gas", Window::Day, "UTC").unwrap(),
            ];
            let base = 1_710_000_000i64; // around the March 2024 New York DST change
            let (tenants, metrics) = (["t0", "t1", "t2"], ["kwh", "gas", "water"]);
            let cols: Vec<_> = batches.iter().enumerate().map(|(b, (rows, _, _, _, _))| {
                let ts: Vec<i64> = rows.iter().map(|r| base + r.0).collect();
                let nanos: Vec<u32> = rows.iter().map(|r| r.1).collect();
                let mant: Vec<i64> = rows.iter().map(|r| r.2).collect();
                let tenant: Vec<Option<&str>> = rows.iter().map(|r| Some(tenants[r.3])).collect();
                let tenant_codes: Vec<u32> = rows.iter().map(|r| r.3 as u32).collect();
                let metric: Vec<Option<&str>> = rows.iter().map(|r| Some(metrics[r.4])).collect();
                let ids: Vec<String> = (0..rows.len()).map(|i| format!("b{b}r{:02}", (i * 7) % 11)).collect();
                (ts, nanos, mant, tenant, tenant_codes, metric, ids)
            }).collect();
            let ids: Vec<Vec<&str>> = cols.iter().map(|c| c.6.iter().map(String::as_str).collect()).collect();
            let column_batches: Vec<ColumnBatch<'_>> = batches.iter().zip(&cols).zip(&ids).map(|((b, c), ids)| ColumnBatch {
                metric: StrColumn::Plain(&c.5),
                tenant: if b.4 { StrColumn::Dict { values: &tenants, codes: &c.4 } } else { StrColumn::Plain(&c.3) },
                subject: StrColumn::Const(Some("s")),
                timestamps: &c.0,
                nanos: b.3.then_some(c.1.as_slice()),
                ends: None,
                quantities: Quantities::Scaled { mantissas: &c.2, scale: b.1 },
                ids: b.2.then_some(ids.as_slice()),
                dimensions: vec![],
            }).collect();
            let mut general = ColumnarRollup::new(&specs).unwrap();
            let mut fast = ColumnarRollup::new(&specs).unwrap();
            for batch in &column_batches {
                let all: Vec<u32> = (0..batch.len() as u32).collect();
                general.add_selected(batch, &all, Some(&vec![Quality::Actual; batch.len()])).unwrap();
                fast.add(batch).unwrap();
            }
            let text = |b: Vec<BucketWithIds>| format!("{b:?}");
            let expected = general.finish_with_ids().unwrap();
            let mut sorted: Vec<_> = expected.iter().map(|(k, e, s, _)| (k.clone(), *e, s.clone())).collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(text(fast.finish_with_ids().unwrap()), text(expected));
            for threads in [1, 2, 3] {
                let run = ColumnarRollup::run(&specs, &column_batches, threads).unwrap();
                prop_assert_eq!(format!("{run:?}"), format!("{sorted:?}"));
            }
        }
    }

    #[test]
    fn bad_columns_are_errors_not_panics() {
        let mut col = ColumnarRollup::new(&specs()).unwrap();
        let batch = |codes: &'static [u32]| ColumnBatch {
            metric: StrColumn::Const(Some("kwh")),
            tenant: StrColumn::Const(Some("t")),
            subject: StrColumn::Const(Some("s")),
            timestamps: &[0, 1],
            nanos: None,
            ends: None,
            quantities: Quantities::Scaled { mantissas: &[1, 2], scale: 0 },
            ids: None,
            dimensions: vec![("region", StrColumn::Dict { values: &["x"], codes })],
        };
        assert_eq!(col.add(&batch(&[0])).unwrap_err().kind(), ErrorKind::Parse);
        assert_eq!(col.add(&batch(&[0, 5])).unwrap_err().kind(), ErrorKind::Parse);
        let mut col = ColumnarRollup::new(&specs()).unwrap();
        let no_subject = ColumnBatch { subject: StrColumn::Const(None), ..batch(&[0, 0]) };
        assert_eq!(col.add(&no_subject).unwrap_err().kind(), ErrorKind::Parse);
        let bad_scale =
            ColumnBatch { quantities: Quantities::Scaled { mantissas: &[1, 2], scale: 40 }, ..batch(&[0, 0]) };
        assert_eq!(col.add(&bad_scale).unwrap_err().kind(), ErrorKind::Parse);
    }
}
