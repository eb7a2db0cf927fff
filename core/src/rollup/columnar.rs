//! The columnar rollup kernel: rolls up column batches (Arrow-style: one array per field, strings
//! dictionary-encoded or plain) without building a `UsageRecord` per row.

use chrono::DateTime;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::error::{Error, ErrorKind, Result};
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

/// A batch of usage in columns, all of one metric. Every column has one entry per row
/// (`timestamps.len()` rows); `ids`, when given, break ties of `latest` exactly as the record
/// path does (greatest id wins); without ids the later row wins a tie.
#[derive(Debug, Clone)]
pub struct ColumnBatch<'a> {
    /// The metric of every row.
    pub metric: &'a str,
    /// Tenant of each row (a non-null value on every row).
    pub tenant: StrColumn<'a>,
    /// Subject of each row (a non-null value on every row).
    pub subject: StrColumn<'a>,
    /// Timestamps, Unix seconds (UTC).
    pub timestamps: &'a [i64],
    /// Quantities in the metric's unit.
    pub quantities: Quantities<'a>,
    /// Record ids, for `latest`'s tie-break.
    pub ids: Option<&'a [&'a str]>,
    /// Dimension columns by name.
    pub dimensions: Vec<(&'a str, StrColumn<'a>)>,
}

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
///     metric: "kwh",
///     tenant: StrColumn::Const(Some("t")),
///     subject: StrColumn::Plain(&subjects),
///     timestamps: &[0, 3600, 7200],
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
    latest: (i64, Option<String>, Decimal),
    uniques: Vec<rustc_hash::FxHashSet<u32>>,
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

    /// Codes of a string column, one per row (`NULL` for nulls).
    fn codes(&mut self, col: &StrColumn<'_>, rows: usize) -> Result<Vec<u32>> {
        Ok(match *col {
            StrColumn::Const(v) => vec![v.map_or(NULL, |s| self.code(s)); rows],
            StrColumn::Plain(values) => {
                check_len(values.len(), rows)?;
                let mut last: Option<(&str, u32)> = None;
                values
                    .iter()
                    .map(|v| match v {
                        None => NULL,
                        Some(s) => match last {
                            Some((l, c)) if std::ptr::eq(l, *s) || l == *s => c,
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
                check_len(codes.len(), rows)?;
                let map: Vec<u32> = values.iter().map(|s| self.code(s)).collect();
                codes
                    .iter()
                    .map(|&c| {
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
    /// [`ErrorKind::Parse`] for columns of different lengths, a null tenant or subject, a
    /// dictionary code out of range or a scale above 28; [`ErrorKind::Overflow`] when a sum
    /// leaves the decimal range; [`ErrorKind::InvalidWindow`] for a timestamp out of range.
    /// After an error the rollup may hold part of the batch and should be dropped.
    pub fn add(&mut self, batch: &ColumnBatch<'_>) -> Result<()> {
        let rows = batch.timestamps.len();
        let quantity = |i: usize| -> Result<Decimal> {
            Ok(match batch.quantities {
                Quantities::Decimal(q) => q[i],
                Quantities::Scaled { mantissas, scale } => Decimal::try_new(mantissas[i], scale)
                    .map_err(|e| Error::new(ErrorKind::Parse, format!("Bad quantity scale {scale}: {e}.")))?,
            })
        };
        match batch.quantities {
            Quantities::Decimal(q) => check_len(q.len(), rows)?,
            Quantities::Scaled { mantissas, .. } => check_len(mantissas.len(), rows)?,
        }
        if let Some(ids) = batch.ids {
            check_len(ids.len(), rows)?;
        }
        let tenants = self.codes(&batch.tenant, rows)?;
        let subjects = self.codes(&batch.subject, rows)?;
        if tenants.contains(&NULL) || subjects.contains(&NULL) {
            return Err(Error::new(ErrorKind::Parse, "Every row needs a tenant and a subject."));
        }
        let mut dims: Vec<(&str, Vec<u32>)> = Vec::with_capacity(batch.dimensions.len());
        for (name, col) in &batch.dimensions {
            dims.push((name, self.codes(col, rows)?));
        }
        // Column of each spec's group dimensions (None: absent, every row null).
        let wanted: Vec<Option<Vec<Option<usize>>>> = self
            .specs
            .iter()
            .map(|s| {
                (s.metric == batch.metric).then(|| {
                    s.group_by
                        .iter()
                        .map(|d| if d == SUBJECT { Some(usize::MAX) } else { dims.iter().position(|(n, _)| n == d) })
                        .collect()
                })
            })
            .collect();
        let uniques: Vec<Vec<Option<usize>>> = self
            .specs
            .iter()
            .map(|s| {
                s.unique
                    .iter()
                    .map(|d| if d == SUBJECT { Some(usize::MAX) } else { dims.iter().position(|(n, _)| n == d) })
                    .collect()
            })
            .collect();
        let col = |c: Option<usize>, row: usize| match c {
            None => NULL,
            Some(usize::MAX) => subjects[row],
            Some(i) => dims[i].1[row],
        };
        for row in 0..rows {
            let t = batch.timestamps[row];
            if DateTime::from_timestamp(t, 0).is_none() {
                return Err(Error::new(ErrorKind::InvalidWindow, format!("The timestamp {t} is out of range.")));
            }
            let q = quantity(row)?;
            for (si, group_cols) in wanted.iter().enumerate() {
                let Some(group_cols) = group_cols else { continue };
                let (start, end) = self.specs[si].clock.span(t)?;
                let mut group = [NULL; MAX_COLUMNAR_GROUPS];
                for (g, c) in group.iter_mut().zip(group_cols) {
                    *g = col(*c, row);
                }
                let key = (si as u32, tenants[row], start, group);
                let slot = match self.index.get(&key) {
                    Some(&s) => &mut self.slots[s as usize],
                    None => {
                        self.index.insert(key, self.slots.len() as u32);
                        self.slots.push(Slot {
                            spec: si as u32,
                            tenant: tenants[row],
                            start,
                            end,
                            group,
                            sum: Decimal::ZERO,
                            count: 0,
                            min: q,
                            max: q,
                            latest: (i64::MIN, None, q),
                            uniques: vec![rustc_hash::FxHashSet::default(); uniques[si].len()],
                        });
                        let n = self.slots.len() - 1;
                        &mut self.slots[n]
                    }
                };
                slot.sum = crate::decimal::exact_add(slot.sum, q).ok_or_else(|| Error::overflow("A rollup sum"))?;
                slot.count += 1;
                if q < slot.min {
                    slot.min = q;
                }
                if q > slot.max {
                    slot.max = q;
                }
                let id = batch.ids.map(|ids| ids[row]);
                let newer = t > slot.latest.0
                    || (t == slot.latest.0 && id.is_none_or(|id| slot.latest.1.as_deref().is_none_or(|l| id >= l)));
                if newer {
                    slot.latest = (t, id.map(str::to_string), q);
                }
                for (set, c) in slot.uniques.iter_mut().zip(&uniques[si]) {
                    let v = col(*c, row);
                    if v != NULL {
                        set.insert(v);
                    }
                }
            }
        }
        Ok(())
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
        let name = |c: u32| (c != NULL).then(|| self.strings[c as usize].clone());
        self.slots
            .iter()
            .map(|s| {
                let spec = &self.specs[s.spec as usize];
                let latest_ts = DateTime::from_timestamp(s.latest.0, 0)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidWindow, "A timestamp is out of range."))?;
                let state = BucketState {
                    sum: s.sum,
                    count: s.count,
                    min: Some(s.min),
                    max: Some(s.max),
                    latest: Some(Latest {
                        timestamp: latest_ts,
                        id: s.latest.1.clone().unwrap_or_default(),
                        quantity: s.latest.2,
                    }),
                    uniques: spec
                        .unique
                        .iter()
                        .zip(&s.uniques)
                        .filter(|(_, set)| !set.is_empty())
                        .map(|(d, set)| (d.clone(), set.iter().map(|c| self.strings[*c as usize].clone()).collect()))
                        .collect(),
                    ..BucketState::default()
                };
                let key = BucketKey {
                    tenant: self.strings[s.tenant as usize].clone(),
                    spec: s.spec,
                    start: s.start,
                    group: s.group[..spec.group_by.len()].iter().map(|c| name(*c)).collect(),
                };
                Ok((key, s.end, state))
            })
            .collect()
    }
}

fn check_len(len: usize, rows: usize) -> Result<()> {
    if len == rows {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::Parse, format!("A column has {len} values for {rows} rows.")))
    }
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
                metric: "kwh",
                tenant: StrColumn::Const(Some("t")),
                subject: StrColumn::Plain(&subj),
                timestamps: &ts,
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
                prop_assert_eq!(&gs.uniques, &es.uniques);
            }
        }
    }

    #[test]
    fn bad_columns_are_errors_not_panics() {
        let mut col = ColumnarRollup::new(&specs()).unwrap();
        let batch = |codes: &'static [u32]| ColumnBatch {
            metric: "kwh",
            tenant: StrColumn::Const(Some("t")),
            subject: StrColumn::Const(Some("s")),
            timestamps: &[0, 1],
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
