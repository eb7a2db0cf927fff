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
    index: FxHashMap<(u32, u32, i64, [u32; MAX_COLUMNAR_GROUPS]), u32>,
    slots: Vec<Slot>,
}

#[derive(Debug)]
struct ColSpec {
    metric: String,
    group_by: Vec<String>,
    unique: Vec<String>,
    clock: WindowClock,
}

#[derive(Debug)]
struct Slot {
    spec: u32,
    tenant: u32,
    start: i64,
    end: i64,
    group: [u32; MAX_COLUMNAR_GROUPS],
    sum: Decimal,
    count: u64,
    min: Decimal,
    max: Decimal,
    /// Seconds, nanoseconds, id and quantity of the latest row.
    latest: (i64, u32, Option<String>, Decimal),
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
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ColumnarRollup {
            specs,
            strings: Vec::new(),
            intern: FxHashMap::default(),
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
                let mut last: Option<(&str, u32)> = None;
                rows.iter()
                    .map(|row| match values[row] {
                        None => NULL,
                        Some(s) => match last {
                            Some((l, c)) if std::ptr::eq(l, s) || l == s => c,
                            _ => {
                                let c = self.code(s);
                                last = Some((s, c));
                                c
                            }
                        },
                    })
                    .collect()
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
        for (j, row) in rows.iter().enumerate() {
            let t = batch.timestamps[row];
            let nanos = batch.nanos.map_or(0, |n| n[row]);
            if DateTime::from_timestamp(t, nanos).is_none() {
                return Err(Error::new(ErrorKind::InvalidWindow, format!("The timestamp {t} is out of range.")));
            }
            let q = batch.quantity_at(row)?;
            let id = batch.ids.map(|ids| ids[row]);
            for (si, group_cols) in wanted.iter().enumerate() {
                if metrics[j] != spec_metrics[si] {
                    continue;
                }
                let (start, end) = self.specs[si].clock.span(t)?;
                let mut group = [NULL; MAX_COLUMNAR_GROUPS];
                for (g, c) in group.iter_mut().zip(group_cols) {
                    *g = col(*c, j);
                }
                let slot = self.slot(si, tenants[j], start, end, group, q);
                slot.sum = crate::decimal::exact_add(slot.sum, q).ok_or_else(|| Error::overflow("A rollup sum"))?;
                slot.count += 1;
                match qualities.map_or(Quality::Actual, |qs| qs[row]) {
                    Quality::Actual => {}
                    Quality::Flagged => add_share(&mut slot.flagged, q)?,
                    Quality::Estimated => add_share(&mut slot.estimated, q)?,
                }
                slot.min_max(q, id);
                let (lt, ln) = (slot.latest.0, slot.latest.1);
                let newer = (t, nanos) > (lt, ln)
                    || ((t, nanos) == (lt, ln) && id.is_none_or(|id| slot.latest.2.as_deref().is_none_or(|l| id >= l)));
                if newer {
                    slot.latest = (t, nanos, id.map(str::to_string), q);
                }
                if (t, nanos) < slot.first {
                    slot.first = (t, nanos);
                }
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

    /// The slot of `(spec, tenant, start, group)`, new (empty, `q` as min and max) if needed.
    fn slot(
        &mut self,
        si: usize,
        tenant: u32,
        start: i64,
        end: i64,
        group: [u32; MAX_COLUMNAR_GROUPS],
        q: Decimal,
    ) -> &mut Slot {
        let key = (si as u32, tenant, start, group);
        let n = match self.index.get(&key) {
            Some(&s) => s as usize,
            None => {
                self.index.insert(key, self.slots.len() as u32);
                self.slots.push(Slot {
                    spec: si as u32,
                    tenant,
                    start,
                    end,
                    group,
                    sum: Decimal::ZERO,
                    count: 0,
                    min: q,
                    max: q,
                    latest: (i64::MIN, 0, None, q),
                    first: (i64::MAX, u32::MAX),
                    uniques: vec![rustc_hash::FxHashSet::default(); self.specs[si].unique.len()],
                    min_id: None,
                    max_id: None,
                    flagged: (0, Decimal::ZERO),
                    estimated: (0, Decimal::ZERO),
                });
                self.slots.len() - 1
            }
        };
        &mut self.slots[n]
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
        let mut buckets = if split {
            let parts: Vec<Vec<Vec<u32>>> = batches.iter().map(|b| partition(&b.tenant, b.len(), threads)).collect();
            let run_part = |k: usize| -> Result<Vec<(BucketKey, i64, BucketState)>> {
                let mut kernel = ColumnarRollup::new(specs)?;
                for (b, p) in batches.iter().zip(&parts) {
                    kernel.add_rows(b, &Rows::Some(&p[k]), None)?;
                }
                kernel.finish()
            };
            let results: Vec<Result<Vec<_>>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads).map(|k| s.spawn(move || run_part(k))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
            });
            let mut all = Vec::new();
            for r in results {
                all.extend(r?);
            }
            all
        } else {
            let mut kernel = ColumnarRollup::new(specs)?;
            for b in batches {
                kernel.add_rows(b, &Rows::All(b.len()), None)?;
            }
            kernel.finish()?
        };
        buckets.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(buckets)
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

    /// As [`finish`](Self::finish), with the ids of each bucket's min and max rows (ties: the
    /// smallest id for the min, the greatest for the max; empty without an id column) — what a
    /// partial state carries ([`crate::rollup::partial`]).
    ///
    /// # Errors
    /// As [`finish`](Self::finish).
    pub fn finish_with_ids(self) -> Result<Vec<BucketWithIds>> {
        let name = |c: u32| (c != NULL).then(|| self.strings[c as usize].clone());
        self.slots
            .into_iter()
            .map(|s| {
                let spec = &self.specs[s.spec as usize];
                let latest_ts = DateTime::from_timestamp(s.latest.0, s.latest.1)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidWindow, "A timestamp is out of range."))?;
                let first_at = DateTime::from_timestamp(s.first.0, s.first.1)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidWindow, "A timestamp is out of range."))?;
                let state = BucketState {
                    first_at: Some(first_at),
                    sum: s.sum,
                    count: s.count,
                    min: Some(s.min),
                    max: Some(s.max),
                    latest: Some(Latest {
                        timestamp: latest_ts,
                        id: s.latest.2.unwrap_or_default(),
                        quantity: s.latest.3,
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
                    tenant: self.strings[s.tenant as usize].clone(),
                    spec: s.spec,
                    start: s.start,
                    group: s.group[..spec.group_by.len()].iter().map(|c| name(*c)).collect(),
                };
                Ok((key, s.end, state, (s.min_id.unwrap_or_default(), s.max_id.unwrap_or_default())))
            })
            .collect()
    }
}

impl Slot {
    /// Take `q` (of the row with id `id`; `count` already counts it) into min and max and their
    /// ids: a smaller value (or an equal one with a smaller id) is the new min, a greater value
    /// (or an equal one with a greater id) the new max.
    fn min_max(&mut self, q: Decimal, id: Option<&str>) {
        let own = || id.map(str::to_string);
        if self.count == 1 {
            (self.min, self.max, self.min_id, self.max_id) = (q, q, own(), own());
            return;
        }
        if q < self.min {
            (self.min, self.min_id) = (q, own());
        } else if q == self.min && id.is_some_and(|id| self.min_id.as_deref().is_none_or(|m| id < m)) {
            self.min_id = own();
        }
        if q > self.max {
            (self.max, self.max_id) = (q, own());
        } else if q == self.max && id.is_some_and(|id| self.max_id.as_deref().is_none_or(|m| id > m)) {
            self.max_id = own();
        }
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
