//! Partial rollup states for scale-out: roll up a partition of the records where it lives
//! (a Spark or Dask partition, a shard), ship the partial states, [`merge`] them in any order and
//! grouping, and [`finalize`] them into exactly the buckets one engine would answer (ADR 0001:
//! bucket states are mergeable).
//!
//! # The partial-state schema (version [`SCHEMA_VERSION`])
//!
//! One row per `(tenant, spec, window, group)` seen in the partition. As columns
//! ([`PartialColumns`]; the Python binding gives them as a `pyarrow.Table` with these Arrow types):
//!
//! | column | Arrow type | meaning |
//! |---|---|---|
//! | `schema_version` | int32 | [`SCHEMA_VERSION`] on every row |
//! | `tenant` | utf8 | key: the tenant |
//! | `spec` | int32 | key: the spec's index in the spec list the partials were made with |
//! | `window_start`, `window_end` | int64 | key: window bounds, Unix seconds (end exclusive) |
//! | `group_<dim>` | utf8, nullable | key: one column per `group_by` dimension, in spec order (`null`: records without it) |
//! | `sum` | utf8 | exact sum of quantities, a decimal string (`"12.500"`) |
//! | `count` | int64 | number of records |
//! | `min`, `max` | utf8 | smallest and largest quantity (decimal strings) |
//! | `min_id`, `max_id` | utf8 | id of the record with the smallest quantity (ties: smallest id) and the largest (ties: greatest id) |
//! | `latest`, `latest_id`, `latest_ts` | utf8, utf8, int64 | quantity, id and timestamp (Unix **nanoseconds**) of the record with the greatest timestamp (ties: greatest id); `latest_ts` is the bucket's `last_at` |
//! | `first_ts` | int64 | timestamp (Unix nanoseconds) of the earliest record: the bucket's `first_at` (version 2) |
//! | `flagged_count`, `flagged_sum`, `estimated_count`, `estimated_sum` | int64, utf8, int64, utf8 | the VEE shares (part of `count` and `sum`) |
//! | `unique_<dim>` | list&lt;utf8&gt; | one column per `unique_count` dimension: the distinct values, sorted |
//!
//! Key columns come first; a partial has at least one record, so only the `group_<dim>` columns
//! are nullable. The version changes when a column is added, removed or changes meaning; a reader
//! refuses any version but its own ([`ErrorKind::Parse`]).
//!
//! # Duplicates
//!
//! A partial carries no record ids beyond its min/max/latest, so a record re-sent into two
//! partitions would count twice. The rule: **every copy of an idempotency key `(tenant, id)` must
//! land in the same partition** — the Spark and Dask helpers repartition by a hash of
//! `(tenant, id)` before [`PartialRollup`] — and [`PartialRollup::add`] counts a repeated key once
//! within its partition (an identical repeat is a duplicate; a repeat with other content is a
//! [`ErrorKind::Conflict`], since a partition has no "first" to keep).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::DateTime;
use rust_decimal::Decimal;

use crate::error::{Error, ErrorKind, Result};
use crate::record::{Quality, UsageRecord};
use crate::rollup::columnar::{ColumnBatch, ColumnarRollup, StrColumn};
use crate::rollup::{dim_value, Bucket, BucketKey, BucketState, Latest, RollupSpec};
use crate::time::WindowClock;

/// The version of the partial-state schema written by [`to_columns`] and read by [`from_columns`].
pub const SCHEMA_VERSION: i32 = 2;

/// The partial state of one bucket: its key, window end (Unix seconds) and mergeable state, plus
/// the ids of its smallest and largest records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partial {
    /// Tenant, spec index, window start and group values.
    pub key: BucketKey,
    /// Window end, Unix seconds (exclusive).
    pub end: i64,
    /// Sum, count, min, max, latest, VEE shares and distinct values.
    pub state: BucketState,
    /// Id of the record with the smallest quantity (ties: the smallest id).
    pub min_id: String,
    /// Id of the record with the largest quantity (ties: the greatest id).
    pub max_id: String,
}

impl Partial {
    /// Combine `other` (same key) into `self`. Associative and commutative: merging partials in
    /// any grouping and order gives the same state.
    ///
    /// # Errors
    /// [`ErrorKind::Overflow`] when a sum leaves the decimal range; [`ErrorKind::Parse`] when the
    /// two partials disagree on the window end (made with different specs).
    pub fn merge(&mut self, other: &Partial) -> Result<()> {
        if self.end != other.end {
            return Err(Error::new(
                ErrorKind::Parse,
                format!(
                    "Two partials of window {} end at {} and {}: were they made with the same spec?",
                    self.key.start, self.end, other.end
                ),
            )
            .with_field("window_end"));
        }
        let (a_min, b_min) = (self.state.min, other.state.min);
        let (a_max, b_max) = (self.state.max, other.state.max);
        self.state.merge(&other.state)?;
        if let (Some(a), Some(b)) = (a_min, b_min) {
            if (b, &other.min_id) < (a, &self.min_id) {
                self.min_id.clone_from(&other.min_id);
            }
        }
        if let (Some(a), Some(b)) = (a_max, b_max) {
            if (b, &other.max_id) > (a, &self.max_id) {
                self.max_id.clone_from(&other.max_id);
            }
        }
        Ok(())
    }
}

/// Rolls up records of one partition under one spec into [`Partial`]s, counting each idempotency
/// key once (see the module's "Duplicates").
///
/// ```
/// use meterkit::{rollup::partial, RollupSpec, UsageRecord, Window};
/// use chrono::{TimeZone, Utc};
/// let spec = RollupSpec::new("kwh", Window::Day, "UTC")?.group_by(["subject"]);
/// let at = Utc.with_ymd_and_hms(2024, 7, 1, 8, 0, 0).unwrap();
/// let r = |id: &str, q: &str| UsageRecord::new("t", id, "m1", "kwh", q.parse().unwrap(), at);
/// let mut a = partial::PartialRollup::new(&spec)?;
/// a.add(&r("r1", "1.5"))?;
/// let mut b = partial::PartialRollup::new(&spec)?;
/// b.add(&r("r2", "2"))?;
/// b.add(&r("r2", "2"))?; // a duplicate: counted once
/// let merged = partial::merge(a.finish().into_iter().chain(b.finish()))?;
/// let buckets = partial::finalize(&merged, &spec)?;
/// assert_eq!((buckets[0].1.sum.to_string(), buckets[0].1.count), ("3.5".to_string(), 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PartialRollup {
    spec: RollupSpec,
    unique: Vec<String>,
    clock: WindowClock,
    seen: HashMap<(String, String), UsageRecord>,
    buckets: HashMap<BucketKey, Partial>,
}

impl PartialRollup {
    /// A partial rollup under `spec` (spec index 0).
    ///
    /// # Errors
    /// As [`RollupSpec::check`].
    pub fn new(spec: &RollupSpec) -> Result<Self> {
        let tz = spec.check()?;
        Ok(PartialRollup {
            spec: spec.clone(),
            unique: spec.unique_dims().map(str::to_string).collect(),
            clock: WindowClock::new(spec.window, tz)?,
            seen: HashMap::new(),
            buckets: HashMap::new(),
        })
    }

    /// Add one record (records of other metrics are ignored). A repeat of an idempotency key
    /// already added with the same content changes nothing.
    ///
    /// # Errors
    /// The errors of [`UsageRecord::check`]; [`ErrorKind::Conflict`] for a repeat of a key with
    /// other content; [`ErrorKind::Overflow`] when a sum leaves the decimal range;
    /// [`ErrorKind::InvalidWindow`] for an instant out of range.
    pub fn add(&mut self, record: &UsageRecord) -> Result<()> {
        if record.metric != self.spec.metric {
            return Ok(());
        }
        record.check()?;
        let id_key = (record.tenant.clone(), record.id.clone());
        if let Some(first) = self.seen.get(&id_key) {
            if first.same_content(record) {
                return Ok(());
            }
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("Record '{}' of tenant '{}' was sent twice with different content.", record.id, record.tenant),
            )
            .with_record_id(&record.id));
        }
        let (start, end) = self.clock.span(record.timestamp.timestamp())?;
        let key = BucketKey {
            tenant: record.tenant.clone(),
            spec: 0,
            start,
            group: self.spec.group_by.iter().map(|d| dim_value(record, d).map(str::to_string)).collect(),
        };
        let mut one = BucketState::default();
        one.add(record, self.unique.iter().map(String::as_str))?;
        let p = Partial { key, end, state: one, min_id: record.id.clone(), max_id: record.id.clone() };
        match self.buckets.get_mut(&p.key) {
            Some(existing) => existing.merge(&p)?,
            None => {
                self.buckets.insert(p.key.clone(), p);
            }
        }
        self.seen.insert(id_key, record.clone());
        Ok(())
    }

    /// The partials, ordered by key.
    pub fn finish(self) -> Vec<Partial> {
        let mut out: Vec<Partial> = self.buckets.into_values().collect();
        crate::order::sort_by(&mut out, |a, b| a.key.cmp(&b.key));
        out
    }
}

/// The columnar form of [`PartialRollup`]: rolls up [`ColumnBatch`]es of one partition under one
/// spec through the columnar kernel ([`ColumnarRollup`]) without building a record per row, and
/// gives exactly the partials [`PartialRollup`] gives for the same rows (the property test
/// `columnar_partials_equal_record_partials`). Rows of other metrics are skipped; every other row
/// is checked as [`UsageRecord::check`] checks a record; a repeated idempotency key
/// `(tenant, id)` counts once (same content as [`UsageRecord::same_content`], quality aside) or is
/// a [`ErrorKind::Conflict`].
///
/// Memory: one entry per distinct key of the partition (its id and its content as interned
/// codes, about 100 bytes), plus the buckets.
#[derive(Debug)]
pub struct ColumnarPartial {
    metric: String,
    kernel: ColumnarRollup,
    intern: rustc_hash::FxHashMap<String, u32>,
    seen: rustc_hash::FxHashMap<(u32, Box<str>), Content>,
}

/// A row's content as interned codes: what [`UsageRecord::same_content`] compares.
#[derive(Debug, PartialEq, Eq)]
struct Content {
    subject: u32,
    at: (i64, u32),
    end: Option<(i64, u32)>,
    quantity: Decimal,
    /// `(dimension name, value)` codes of the non-null dimensions, sorted.
    dims: Box<[(u32, u32)]>,
}

impl ColumnarPartial {
    /// A columnar partial rollup under `spec` (spec index 0).
    ///
    /// # Errors
    /// As [`ColumnarRollup::new`].
    pub fn new(spec: &RollupSpec) -> Result<Self> {
        Ok(ColumnarPartial {
            metric: spec.metric.clone(),
            kernel: ColumnarRollup::new(std::slice::from_ref(spec))?,
            intern: rustc_hash::FxHashMap::default(),
            seen: rustc_hash::FxHashMap::default(),
        })
    }

    fn code(&mut self, s: &str) -> u32 {
        if let Some(&c) = self.intern.get(s) {
            return c;
        }
        let c = self.intern.len() as u32;
        self.intern.insert(s.to_string(), c);
        c
    }

    /// Add a batch, with the quality of each row (`None`: all `actual`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRecord`] (field `id`) for a batch without ids, and as
    /// [`UsageRecord::check`] for a bad row (naming the field, the record id and the line, row +
    /// 1 of this batch); [`ErrorKind::Parse`] for columns of different lengths, a null tenant,
    /// subject or metric, a bad dictionary code; [`ErrorKind::Conflict`] for a repeated key with
    /// other content; [`ErrorKind::Overflow`]. After an error the rollup should be dropped.
    pub fn add<'a>(&mut self, batch: &ColumnBatch<'a>, qualities: Option<&[Quality]>) -> Result<()> {
        batch.check_lengths()?;
        let Some(ids) = batch.ids else {
            return Err(
                Error::invalid_record("Partial states need an id column (the idempotency key).").with_field("id")
            );
        };
        let mut keep: Vec<u32> = Vec::with_capacity(batch.len());
        for (row, &id) in ids.iter().enumerate() {
            let line = row as u64 + 1;
            let at = |e: Error, field: &str| e.with_field(field).with_line(line).with_record_id(id);
            let required = |col: &StrColumn<'a>, field: &str| -> Result<&'a str> {
                col.get(row).map_err(|e| at(e, field))?.ok_or_else(|| {
                    at(Error::new(ErrorKind::Parse, format!("The {field} of row {line} is null.")), field)
                })
            };
            if required(&batch.metric, "metric")? != self.metric {
                continue;
            }
            let (tenant, subject) = (required(&batch.tenant, "tenant")?, required(&batch.subject, "subject")?);
            let (secs, nanos) = (batch.timestamps[row], batch.nanos.map_or(0, |n| n[row]));
            let timestamp = DateTime::from_timestamp(secs, nanos).ok_or_else(|| {
                at(
                    Error::new(ErrorKind::Parse, format!("The timestamp {secs}.{nanos:09} is out of range.")),
                    "timestamp",
                )
            })?;
            let end = batch.ends.and_then(|e| e[row]);
            crate::record::check_parts(id, tenant, subject, &self.metric, timestamp, end)
                .map_err(|e| e.with_line(line))?;
            let mut dims = Vec::with_capacity(batch.dimensions.len());
            for (name, col) in &batch.dimensions {
                if let Some(v) = col.get(row).map_err(|e| at(e, name))? {
                    dims.push((self.code(name), self.code(v)));
                }
            }
            dims.sort_unstable();
            let content = Content {
                subject: self.code(subject),
                at: (secs, nanos),
                end: end.map(|e| (e.timestamp(), e.timestamp_subsec_nanos())),
                quantity: batch.quantity_at(row).map_err(|e| at(e, "quantity"))?,
                dims: dims.into_boxed_slice(),
            };
            let key = (self.code(tenant), Box::<str>::from(id));
            match self.seen.get(&key) {
                Some(first) if *first == content => {}
                Some(_) => {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("Record '{id}' of tenant '{tenant}' was sent twice with different content."),
                    )
                    .with_record_id(id)
                    .with_line(line))
                }
                None => {
                    self.seen.insert(key, content);
                    keep.push(row as u32);
                }
            }
        }
        self.kernel.add_selected(batch, &keep, qualities)
    }

    /// The partials, ordered by key.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidWindow`] for a timestamp out of range (not reachable after `add`).
    pub fn finish(self) -> Result<Vec<Partial>> {
        let mut out: Vec<Partial> = self
            .kernel
            .finish_with_ids()?
            .into_iter()
            .map(|(key, end, state, (min_id, max_id))| Partial { key, end, state, min_id, max_id })
            .collect();
        crate::order::sort_by(&mut out, |a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// Merge partials of the same spec list: one partial per key, ordered by key. Associative and
/// commutative — `merge(merge(a) ++ merge(b)) = merge(a ++ b)` for any split and order.
///
/// # Errors
/// As [`Partial::merge`].
pub fn merge(parts: impl IntoIterator<Item = Partial>) -> Result<Vec<Partial>> {
    let mut by_key: BTreeMap<BucketKey, Partial> = BTreeMap::new();
    for p in parts {
        match by_key.get_mut(&p.key) {
            Some(existing) => existing.merge(&p)?,
            None => {
                by_key.insert(p.key.clone(), p);
            }
        }
    }
    Ok(by_key.into_values().collect())
}

/// Finalize merged partials of `spec` into `(tenant, bucket)` rows, ordered by tenant, window
/// start and group values — for each tenant exactly the rows of
/// [`Engine::query`](crate::Engine::query) grouped as the spec (`group_by` and `unique` of the
/// spec) over the same records. Partials with the same key are merged first.
///
/// # Errors
/// As [`merge`]; [`ErrorKind::Parse`] for a partial whose group has another length than the
/// spec's `group_by`; [`ErrorKind::InvalidWindow`] for a window out of range.
pub fn finalize(parts: &[Partial], spec: &RollupSpec) -> Result<Vec<(String, Bucket)>> {
    let merged = merge(parts.iter().cloned())?;
    merged
        .iter()
        .map(|p| {
            if p.key.group.len() != spec.group_by.len() {
                return Err(Error::new(
                    ErrorKind::Parse,
                    format!(
                        "A partial has {} group values; the spec groups by {:?}.",
                        p.key.group.len(),
                        spec.group_by
                    ),
                ));
            }
            Ok((p.key.tenant.clone(), to_bucket(spec, p)?))
        })
        .collect()
}

/// The buckets of `tenant` among finalized rows, or — without `tenant` — of the only tenant there
/// is (no rows: no buckets). What the hosts' `finalize_partials` returns.
///
/// # Errors
/// [`ErrorKind::InvalidQuery`] (field `tenant`) when the rows hold several tenants and none is named.
pub fn buckets_of_tenant(rows: Vec<(String, Bucket)>, tenant: Option<&str>) -> Result<Vec<Bucket>> {
    let tenant = match tenant {
        Some(t) => t.to_string(),
        None => {
            let mut tenants: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
            tenants.dedup();
            match tenants.as_slice() {
                [] => return Ok(Vec::new()),
                [one] => (*one).to_string(),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidQuery,
                        format!("The partial states hold {} tenants; name one.", tenants.len()),
                    )
                    .with_field("tenant"))
                }
            }
        }
    };
    Ok(rows.into_iter().filter(|(t, _)| *t == tenant).map(|(_, b)| b).collect())
}

/// A partial as a result row grouped as its spec.
fn to_bucket(spec: &RollupSpec, p: &Partial) -> Result<Bucket> {
    Bucket::of_key(spec, &p.key, p.end, &p.state)
}

/// Partials as columns of the partial-state schema (see the module documentation): one entry per
/// partial in every column; `groups` and `uniques` hold one column per dimension, named by the
/// dimension (the Arrow columns are `group_<dim>` and `unique_<dim>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are the schema's columns, documented in the module table
pub struct PartialColumns {
    pub schema_version: i32,
    pub tenant: Vec<String>,
    pub spec: Vec<u32>,
    pub window_start: Vec<i64>,
    pub window_end: Vec<i64>,
    pub groups: Vec<(String, Vec<Option<String>>)>,
    pub sum: Vec<String>,
    pub count: Vec<u64>,
    pub min: Vec<String>,
    pub min_id: Vec<String>,
    pub max: Vec<String>,
    pub max_id: Vec<String>,
    pub latest: Vec<String>,
    pub latest_id: Vec<String>,
    pub latest_ts: Vec<i64>,
    pub first_ts: Vec<i64>,
    pub flagged_count: Vec<u64>,
    pub flagged_sum: Vec<String>,
    pub estimated_count: Vec<u64>,
    pub estimated_sum: Vec<String>,
    pub uniques: Vec<(String, Vec<Vec<String>>)>,
}

/// The column names of the schema for `spec`, in order.
pub fn column_names(spec: &RollupSpec) -> Vec<String> {
    let mut names: Vec<String> =
        ["schema_version", "tenant", "spec", "window_start", "window_end"].iter().map(|s| (*s).to_string()).collect();
    names.extend(spec.group_by.iter().map(|d| format!("group_{d}")));
    names.extend(
        [
            "sum",
            "count",
            "min",
            "min_id",
            "max",
            "max_id",
            "latest",
            "latest_id",
            "latest_ts",
            "first_ts",
            "flagged_count",
            "flagged_sum",
            "estimated_count",
            "estimated_sum",
        ]
        .iter()
        .map(|s| (*s).to_string()),
    );
    names.extend(spec.unique_dims().map(|d| format!("unique_{d}")));
    names
}

/// Partials of `spec` as columns.
///
/// # Errors
/// [`ErrorKind::InvalidWindow`] for a latest timestamp outside 1677–2262 (not representable in
/// nanoseconds; records are limited to 1678–2261).
pub fn to_columns(parts: &[Partial], spec: &RollupSpec) -> Result<PartialColumns> {
    let n = parts.len();
    let mut c = PartialColumns {
        schema_version: SCHEMA_VERSION,
        groups: spec.group_by.iter().map(|d| (d.clone(), Vec::with_capacity(n))).collect(),
        uniques: spec.unique_dims().map(|d| (d.to_string(), Vec::with_capacity(n))).collect(),
        ..PartialColumns::default()
    };
    let dec = |d: Option<Decimal>| d.unwrap_or_default().to_string();
    for p in parts {
        let s = &p.state;
        c.tenant.push(p.key.tenant.clone());
        c.spec.push(p.key.spec);
        c.window_start.push(p.key.start);
        c.window_end.push(p.end);
        for ((_, col), v) in c.groups.iter_mut().zip(p.key.group.iter().chain(std::iter::repeat(&None))) {
            col.push(v.clone());
        }
        c.sum.push(s.sum.to_string());
        c.count.push(s.count);
        c.min.push(dec(s.min));
        c.min_id.push(p.min_id.clone());
        c.max.push(dec(s.max));
        c.max_id.push(p.max_id.clone());
        let latest = s.latest.as_ref().ok_or_else(|| Error::new(ErrorKind::Parse, "A partial without records."))?;
        c.latest.push(latest.quantity.to_string());
        c.latest_id.push(latest.id.clone());
        c.latest_ts.push(latest.timestamp.timestamp_nanos_opt().ok_or_else(|| {
            Error::new(ErrorKind::InvalidWindow, "A latest timestamp is outside the nanosecond range (1677-2262).")
        })?);
        let first = s.first_at.ok_or_else(|| Error::new(ErrorKind::Parse, "A partial without a first timestamp."))?;
        c.first_ts.push(first.timestamp_nanos_opt().ok_or_else(|| {
            Error::new(ErrorKind::InvalidWindow, "A first timestamp is outside the nanosecond range (1677-2262).")
        })?);
        c.flagged_count.push(s.flagged_count);
        c.flagged_sum.push(s.flagged_sum.to_string());
        c.estimated_count.push(s.estimated_count);
        c.estimated_sum.push(s.estimated_sum.to_string());
        for (d, col) in &mut c.uniques {
            col.push(s.uniques.get(d.as_str()).map(|set| set.iter().cloned().collect()).unwrap_or_default());
        }
    }
    Ok(c)
}

/// Read partials back from columns (the inverse of [`to_columns`]).
///
/// # Errors
/// [`ErrorKind::Parse`] naming the column (and row) for another schema version, columns of
/// different lengths, a bad decimal, or a count of 0.
pub fn from_columns(c: &PartialColumns) -> Result<Vec<Partial>> {
    if c.schema_version != SCHEMA_VERSION {
        return Err(Error::new(
            ErrorKind::Parse,
            format!("Partial states of schema version {} (this is version {SCHEMA_VERSION}).", c.schema_version),
        )
        .with_field("schema_version"));
    }
    let n = c.tenant.len();
    check_lengths(c, n)?;
    let dec = |col: &str, v: &str, row: usize| {
        crate::decimal::parse_decimal(v).map_err(|e| {
            Error::new(ErrorKind::Parse, format!("Column '{col}', row {row}: {}", e.message())).with_field(col)
        })
    };
    (0..n)
        .map(|i| {
            if c.count[i] == 0 {
                return Err(Error::new(
                    ErrorKind::Parse,
                    format!("Column 'count', row {i}: a partial has no records."),
                )
                .with_field("count"));
            }
            let latest_ts = DateTime::from_timestamp_nanos(c.latest_ts[i]);
            let state = BucketState {
                sum: dec("sum", &c.sum[i], i)?,
                count: c.count[i],
                min: Some(dec("min", &c.min[i], i)?),
                max: Some(dec("max", &c.max[i], i)?),
                latest: Some(Latest {
                    timestamp: latest_ts,
                    id: c.latest_id[i].clone(),
                    quantity: dec("latest", &c.latest[i], i)?,
                }),
                // `extend`, not `collect`: a collected map or set sorts through a copy of the
                // stable sort of its own (≈ 4 KB each in the mobile library); the same contents.
                uniques: {
                    let mut m = BTreeMap::new();
                    m.extend(c.uniques.iter().filter(|(_, col)| !col[i].is_empty()).map(|(d, col)| {
                        let mut set = BTreeSet::new();
                        set.extend(col[i].iter().cloned());
                        (d.clone(), set)
                    }));
                    m
                },
                first_at: Some(DateTime::from_timestamp_nanos(c.first_ts[i])),
                flagged_count: c.flagged_count[i],
                flagged_sum: dec("flagged_sum", &c.flagged_sum[i], i)?,
                estimated_count: c.estimated_count[i],
                estimated_sum: dec("estimated_sum", &c.estimated_sum[i], i)?,
            };
            Ok(Partial {
                key: BucketKey {
                    tenant: c.tenant[i].clone(),
                    spec: c.spec[i],
                    start: c.window_start[i],
                    group: c.groups.iter().map(|(_, col)| col[i].clone()).collect(),
                },
                end: c.window_end[i],
                state,
                min_id: c.min_id[i].clone(),
                max_id: c.max_id[i].clone(),
            })
        })
        .collect()
}

/// Partial states in their JSON form ([`columns_to_json`]): one object of columns, or an array of
/// such objects (from several partitions), for `spec`. The form the CLI's files, Node and the
/// mobile hosts exchange.
///
/// # Errors
/// As [`columns_from_json`] and [`from_columns`].
pub fn from_json(value: &serde_json::Value, spec: &RollupSpec) -> Result<Vec<Partial>> {
    let tables: Vec<&serde_json::Value> = match value {
        serde_json::Value::Array(many) => many.iter().collect(),
        one => vec![one],
    };
    let mut out = Vec::new();
    for t in tables {
        out.extend(from_columns(&columns_from_json(t, spec)?)?);
    }
    Ok(out)
}

/// `parts` of `spec` in their JSON form: [`to_columns`], then [`columns_to_json`].
///
/// # Errors
/// As [`to_columns`].
pub fn to_json(parts: &[Partial], spec: &RollupSpec) -> Result<serde_json::Value> {
    Ok(columns_to_json(&to_columns(parts, spec)?))
}

/// Partial states as JSON — the form the CLI's files and the Node and mobile hosts exchange: one
/// object whose keys are the schema's column names ([`column_names`]), each an array of one value
/// per row: `schema_version`, `spec`, `window_start`, `window_end` and the counts as numbers;
/// decimals and ids as strings; `group_<dim>` strings or `null`; `unique_<dim>` arrays of
/// strings; **`latest_ts` and `first_ts` as strings** of nanoseconds (beyond JavaScript's exact integers).
pub fn columns_to_json(c: &PartialColumns) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let n = c.tenant.len();
    let mut m = Map::new();
    m.insert("schema_version".into(), json!(vec![c.schema_version; n]));
    m.insert("tenant".into(), json!(c.tenant));
    m.insert("spec".into(), json!(c.spec));
    m.insert("window_start".into(), json!(c.window_start));
    m.insert("window_end".into(), json!(c.window_end));
    for (d, col) in &c.groups {
        m.insert(format!("group_{d}"), json!(col));
    }
    let strs: [(&str, &Vec<String>); 6] = [
        ("sum", &c.sum),
        ("min", &c.min),
        ("min_id", &c.min_id),
        ("max", &c.max),
        ("max_id", &c.max_id),
        ("latest", &c.latest),
    ];
    for (name, col) in strs {
        m.insert(name.into(), json!(col));
    }
    m.insert("count".into(), json!(c.count));
    m.insert("latest_id".into(), json!(c.latest_id));
    m.insert("latest_ts".into(), Value::Array(c.latest_ts.iter().map(|t| Value::String(t.to_string())).collect()));
    m.insert("first_ts".into(), Value::Array(c.first_ts.iter().map(|t| Value::String(t.to_string())).collect()));
    m.insert("flagged_count".into(), json!(c.flagged_count));
    m.insert("flagged_sum".into(), json!(c.flagged_sum));
    m.insert("estimated_count".into(), json!(c.estimated_count));
    m.insert("estimated_sum".into(), json!(c.estimated_sum));
    for (d, col) in &c.uniques {
        m.insert(format!("unique_{d}"), json!(col));
    }
    Value::Object(m)
}

/// Read the JSON form of [`columns_to_json`] for `spec` (whose `group_by` and `unique` dimensions
/// name the `group_<dim>` and `unique_<dim>` columns). `latest_ts` and `first_ts` may be strings or
/// numbers;
/// `schema_version` an array (one per row) or one number.
///
/// # Errors
/// [`ErrorKind::Parse`] naming the column that is missing or of the wrong JSON type; then as
/// [`from_columns`] (another schema version, lengths, decimals, a count of 0).
pub fn columns_from_json(v: &serde_json::Value, spec: &RollupSpec) -> Result<PartialColumns> {
    fn col<T: serde::de::DeserializeOwned>(v: &serde_json::Value, name: &str) -> Result<T> {
        let Some(x) = v.get(name) else {
            return Err(Error::new(
                ErrorKind::Parse,
                format!("The partial states have no column '{name}' (is this a meterkit partial-state file?)."),
            )
            .with_field(name));
        };
        serde_json::from_value(x.clone())
            .map_err(|e| Error::new(ErrorKind::Parse, format!("Partial-state column '{name}': {e}.")).with_field(name))
    }
    let Some(object) = v.as_object() else {
        return Err(Error::new(ErrorKind::Parse, "Partial states in JSON are one object of columns."));
    };
    let known = column_names(spec);
    if let Some(extra) = object.keys().find(|k| !known.contains(k)) {
        return Err(Error::new(
            ErrorKind::Parse,
            format!("Unknown partial-state column '{extra}' (expected one of: {}).", known.join(", ")),
        )
        .with_field(extra.as_str()));
    }
    let schema_version = match v.get("schema_version") {
        Some(serde_json::Value::Number(_)) => col::<i32>(v, "schema_version")?,
        _ => {
            let all: Vec<i32> = col(v, "schema_version")?;
            all.iter().copied().find(|&x| x != SCHEMA_VERSION).unwrap_or(SCHEMA_VERSION)
        }
    };
    let nanos = |name: &str| -> Result<Vec<i64>> {
        let raw: Vec<serde_json::Value> = col(v, name)?;
        raw.iter()
            .enumerate()
            .map(|(i, t)| {
                t.as_i64().or_else(|| t.as_str().and_then(|s| s.parse().ok())).ok_or_else(|| {
                    Error::new(ErrorKind::Parse, format!("Column '{name}', row {i}: not an integer of nanoseconds."))
                        .with_field(name)
                })
            })
            .collect()
    };
    let latest_ts = nanos("latest_ts")?;
    let first_ts = if schema_version == SCHEMA_VERSION { nanos("first_ts")? } else { Vec::new() };
    Ok(PartialColumns {
        schema_version,
        tenant: col(v, "tenant")?,
        spec: col(v, "spec")?,
        window_start: col(v, "window_start")?,
        window_end: col(v, "window_end")?,
        groups: spec.group_by.iter().map(|g| Ok((g.clone(), col(v, &format!("group_{g}"))?))).collect::<Result<_>>()?,
        sum: col(v, "sum")?,
        count: col(v, "count")?,
        min: col(v, "min")?,
        min_id: col(v, "min_id")?,
        max: col(v, "max")?,
        max_id: col(v, "max_id")?,
        latest: col(v, "latest")?,
        latest_id: col(v, "latest_id")?,
        latest_ts,
        first_ts,
        flagged_count: col(v, "flagged_count")?,
        flagged_sum: col(v, "flagged_sum")?,
        estimated_count: col(v, "estimated_count")?,
        estimated_sum: col(v, "estimated_sum")?,
        uniques: spec
            .unique_dims()
            .map(|u| Ok((u.to_string(), col(v, &format!("unique_{u}"))?)))
            .collect::<Result<_>>()?,
    })
}

fn check_lengths(c: &PartialColumns, n: usize) -> Result<()> {
    let lens = [
        ("spec", c.spec.len()),
        ("window_start", c.window_start.len()),
        ("window_end", c.window_end.len()),
        ("sum", c.sum.len()),
        ("count", c.count.len()),
        ("min", c.min.len()),
        ("min_id", c.min_id.len()),
        ("max", c.max.len()),
        ("max_id", c.max_id.len()),
        ("latest", c.latest.len()),
        ("latest_id", c.latest_id.len()),
        ("latest_ts", c.latest_ts.len()),
        ("first_ts", c.first_ts.len()),
        ("flagged_count", c.flagged_count.len()),
        ("flagged_sum", c.flagged_sum.len()),
        ("estimated_count", c.estimated_count.len()),
        ("estimated_sum", c.estimated_sum.len()),
    ];
    let dims = c
        .groups
        .iter()
        .map(|(d, col)| (d.as_str(), col.len()))
        .chain(c.uniques.iter().map(|(d, col)| (d.as_str(), col.len())));
    for (name, len) in lens.into_iter().chain(dims) {
        if len != n {
            return Err(Error::new(ErrorKind::Parse, format!("Column '{name}' has {len} values for {n} rows."))
                .with_field(name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Aggregation, Engine, Query, Window};
    use proptest::prelude::*;

    fn spec() -> RollupSpec {
        RollupSpec::new("kwh", Window::Hour, "America/New_York")
            .unwrap()
            .group_by(["subject", "carrier"])
            .with(Aggregation::UniqueCount("region".into()))
    }

    fn records(rows: &[(i64, i64, usize, usize, u8)]) -> Vec<UsageRecord> {
        let base = 1_710_040_000i64; // around the March 2024 New York DST change
        rows.iter()
            .enumerate()
            .map(|(i, &(dt, m, s, c, q))| {
                let t = DateTime::from_timestamp(base + dt, (dt as u32 % 3) * 250_000_000).unwrap();
                let mut r = UsageRecord::new(
                    ["t1", "t2"][i % 2],
                    format!("id{:03}", i % 37),
                    format!("s{s}"),
                    "kwh",
                    Decimal::new(m, 3),
                    t,
                )
                .with_dimension("region", ["north", "south", "east"][(i / 3) % 3]);
                if c < 2 {
                    r = r.with_dimension("carrier", ["a", "b"][c]);
                }
                r.quality = [
                    crate::record::Quality::Actual,
                    crate::record::Quality::Flagged,
                    crate::record::Quality::Estimated,
                ][q as usize % 3];
                r
            })
            .collect()
    }

    fn engine_json(records: &[UsageRecord], spec: &RollupSpec) -> String {
        let engine = Engine::in_memory();
        engine.add_spec(spec.clone()).unwrap();
        // The engine keeps the first copy of a key; the generated repeats are identical copies.
        engine.ingest(records).unwrap();
        let mut out = Vec::new();
        for tenant in ["t1", "t2"] {
            let mut q = Query::new(tenant, &spec.metric, spec.window, &spec.time_zone).group_by(spec.group_by.clone());
            for d in spec.unique_dims() {
                q = q.unique(d);
            }
            out.push(serde_json::to_string(&engine.query(&q).unwrap()).unwrap());
        }
        out.join("\n")
    }

    fn partial_json(parts: &[Partial], spec: &RollupSpec) -> String {
        let rows = finalize(parts, spec).unwrap();
        ["t1", "t2"]
            .iter()
            .map(|t| {
                let b: Vec<&Bucket> = rows.iter().filter(|(rt, _)| rt == t).map(|(_, b)| b).collect();
                serde_json::to_string(&b).unwrap()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    proptest! {
        /// Any split of the records into partitions (every copy of a key in one partition), any
        /// order, any merge grouping and a round trip through the columns → one engine's query.
        #[test]
        fn partials_merged_equal_one_engine(
            rows in proptest::collection::vec((0i64..20_000, -5000i64..50_000, 0usize..3, 0usize..3, 0u8..3), 1..120),
            parts in 1usize..6,
            seed in any::<u64>(),
        ) {
            let spec = spec();
            let recs = records(&rows);
            // Unique ids per tenant (repeats of an id are identical copies of its first record).
            let mut firsts: HashMap<(String, String), UsageRecord> = HashMap::new();
            let recs: Vec<UsageRecord> = recs.into_iter().map(|r| firsts.entry((r.tenant.clone(), r.id.clone())).or_insert(r).clone()).collect();
            let expected = engine_json(&recs, &spec);
            // Split by a seeded hash of the key, in a seeded permutation.
            let h = |r: &UsageRecord| {
                use std::hash::{Hash, Hasher};
                let mut s = std::collections::hash_map::DefaultHasher::new();
                (seed, &r.tenant, &r.id).hash(&mut s);
                s.finish()
            };
            let mut order: Vec<&UsageRecord> = recs.iter().collect();
            order.sort_by_key(|r| (h(r).rotate_left(7), r.timestamp));
            let mut rollups: Vec<PartialRollup> = (0..parts).map(|_| PartialRollup::new(&spec).unwrap()).collect();
            for r in order {
                rollups[(h(r) % parts as u64) as usize].add(r).unwrap();
            }
            let finished: Vec<Vec<Partial>> = rollups.into_iter().map(PartialRollup::finish).collect();
            // Merge as a tree in a seeded grouping, each level through the columns.
            let mut level: Vec<Vec<Partial>> = finished;
            let turn = (seed % level.len() as u64) as usize;
            level.rotate_left(turn);
            while level.len() > 1 {
                let a = level.remove(0);
                let b = level.remove((seed as usize) % level.len());
                let m = merge(b.into_iter().chain(a)).unwrap();
                let round = from_columns(&to_columns(&m, &spec).unwrap()).unwrap();
                prop_assert_eq!(&round, &m);
                level.push(round);
            }
            prop_assert_eq!(partial_json(&level[0], &spec), expected);
        }
    }

    /// `records` as columns (two batches) through [`ColumnarPartial`].
    fn columnar(recs: &[UsageRecord], spec: &RollupSpec, split: usize) -> Result<Vec<Partial>> {
        use crate::rollup::columnar::Quantities;
        fn opt<'a>(v: &[&'a str]) -> Vec<Option<&'a str>> {
            v.iter().map(|s| Some(*s)).collect()
        }
        let ids: Vec<&str> = recs.iter().map(|r| r.id.as_str()).collect();
        let tenants: Vec<&str> = recs.iter().map(|r| r.tenant.as_str()).collect();
        let subjects: Vec<&str> = recs.iter().map(|r| r.subject.as_str()).collect();
        let metrics: Vec<&str> = recs.iter().map(|r| r.metric.as_str()).collect();
        let (tenants, subjects, metrics) = (opt(&tenants), opt(&subjects), opt(&metrics));
        let secs: Vec<i64> = recs.iter().map(|r| r.timestamp.timestamp()).collect();
        let nanos: Vec<u32> = recs.iter().map(|r| r.timestamp.timestamp_subsec_nanos()).collect();
        let q: Vec<Decimal> = recs.iter().map(|r| r.quantity).collect();
        let quality: Vec<Quality> = recs.iter().map(|r| r.quality).collect();
        let dim = |d: &str| recs.iter().map(|r| r.dimensions.get(d).map(String::as_str)).collect::<Vec<_>>();
        let (region, carrier) = (dim("region"), dim("carrier"));
        let mut p = ColumnarPartial::new(spec)?;
        let split = split.min(recs.len());
        for r in [0..split, split..recs.len()] {
            let batch = ColumnBatch {
                metric: StrColumn::Plain(&metrics[r.clone()]),
                tenant: StrColumn::Plain(&tenants[r.clone()]),
                subject: StrColumn::Plain(&subjects[r.clone()]),
                timestamps: &secs[r.clone()],
                nanos: Some(&nanos[r.clone()]),
                ends: None,
                quantities: Quantities::Decimal(&q[r.clone()]),
                ids: Some(&ids[r.clone()]),
                dimensions: vec![
                    ("region", StrColumn::Plain(&region[r.clone()])),
                    ("carrier", StrColumn::Plain(&carrier[r.clone()])),
                ],
            };
            p.add(&batch, Some(&quality[r]))?;
        }
        p.finish()
    }

    proptest! {
        /// The columnar partial rollup gives exactly the record path's partials (ids of min and
        /// max, VEE shares, repeats of a key counted once, across batches, other metrics skipped).
        #[test]
        fn columnar_partials_equal_record_partials(
            rows in proptest::collection::vec((0i64..20_000, -5000i64..50_000, 0usize..3, 0usize..3, 0u8..3), 1..120),
            split in 0usize..120,
            other_metric in 0usize..7,
        ) {
            let spec = spec();
            let mut firsts: HashMap<(String, String), UsageRecord> = HashMap::new();
            let recs: Vec<UsageRecord> = records(&rows)
                .into_iter()
                .enumerate()
                .map(|(i, mut r)| {
                    if i % 7 == other_metric { r.metric = "other".into(); r.id = format!("o{i}"); }
                    firsts.entry((r.tenant.clone(), r.id.clone())).or_insert(r).clone()
                })
                .collect();
            let mut expected = PartialRollup::new(&spec).unwrap();
            for r in &recs { expected.add(r).unwrap(); }
            prop_assert_eq!(columnar(&recs, &spec, split).unwrap(), expected.finish());
        }
    }

    #[test]
    fn columnar_repeats_with_other_content_and_bad_rows_are_errors() {
        let spec = spec();
        let at = DateTime::from_timestamp(1_710_040_000, 0).unwrap();
        let one = UsageRecord::new("t", "r1", "s", "kwh", Decimal::ONE, at);
        let err =
            columnar(&[one.clone(), UsageRecord { quantity: Decimal::TWO, ..one.clone() }], &spec, 1).unwrap_err();
        assert_eq!((err.kind(), err.record_id()), (ErrorKind::Conflict, Some("r1")));
        let moved = UsageRecord { timestamp: at + chrono::Duration::nanoseconds(1), ..one.clone() };
        assert_eq!(columnar(&[one.clone(), moved], &spec, 2).unwrap_err().kind(), ErrorKind::Conflict);
        let empty = UsageRecord { subject: String::new(), ..one.clone() };
        let err = columnar(&[one.clone(), empty], &spec, 2).unwrap_err();
        assert_eq!((err.kind(), err.field(), err.line()), (ErrorKind::InvalidRecord, Some("subject"), Some(2)));
        // An identical repeat with another quality mark is a duplicate (quality is not content).
        let flagged = one.clone().with_quality(crate::record::Quality::Flagged);
        let parts = columnar(&[one, flagged], &spec, 1).unwrap();
        assert_eq!((parts[0].state.count, parts[0].state.flagged_count), (1, 0));
    }

    #[test]
    fn the_json_form_round_trips_and_names_bad_columns() {
        let spec = spec();
        let recs = records(&[(0, 1500, 0, 0, 1), (4000, -250, 1, 2, 2), (9000, 7, 2, 1, 0)]);
        let mut p = PartialRollup::new(&spec).unwrap();
        for r in &recs {
            p.add(r).unwrap();
        }
        let parts = p.finish();
        let json = columns_to_json(&to_columns(&parts, &spec).unwrap());
        assert!(json["latest_ts"][0].is_string(), "nanoseconds travel as strings");
        let text = serde_json::to_string(&json).unwrap();
        let back = columns_from_json(&serde_json::from_str(&text).unwrap(), &spec).unwrap();
        assert_eq!(from_columns(&back).unwrap(), parts);
        let mut bad = json.clone();
        bad.as_object_mut().unwrap().remove("group_carrier");
        assert_eq!(columns_from_json(&bad, &spec).unwrap_err().field(), Some("group_carrier"));
        let mut bad = json;
        bad["count"] = serde_json::json!(["x"]);
        assert_eq!(columns_from_json(&bad, &spec).unwrap_err().field(), Some("count"));
    }

    #[test]
    fn a_key_resent_with_other_content_is_a_conflict() {
        let spec = spec();
        let at = DateTime::from_timestamp(1_710_040_000, 0).unwrap();
        let mut p = PartialRollup::new(&spec).unwrap();
        p.add(&UsageRecord::new("t", "r1", "s", "kwh", Decimal::ONE, at)).unwrap();
        p.add(&UsageRecord::new("t", "r1", "s", "kwh", Decimal::ONE, at)).unwrap();
        let err = p.add(&UsageRecord::new("t", "r1", "s", "kwh", Decimal::TWO, at)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert_eq!(p.finish()[0].state.count, 1);
    }

    #[test]
    fn bad_columns_are_errors_naming_the_column() {
        let spec = spec();
        let at = DateTime::from_timestamp(1_710_040_000, 0).unwrap();
        let mut p = PartialRollup::new(&spec).unwrap();
        p.add(&UsageRecord::new("t", "r1", "s", "kwh", Decimal::ONE, at)).unwrap();
        let good = to_columns(&p.finish(), &spec).unwrap();
        let mut c = good.clone();
        c.schema_version = 1; // before `first_ts`
        assert_eq!(from_columns(&c).unwrap_err().field(), Some("schema_version"));
        let mut c = good.clone();
        c.first_ts.clear();
        assert_eq!(from_columns(&c).unwrap_err().field(), Some("first_ts"));
        let mut c = good.clone();
        c.sum[0] = "1.2.3".into();
        assert_eq!(from_columns(&c).unwrap_err().field(), Some("sum"));
        let mut c = good.clone();
        c.max_id.clear();
        assert_eq!(from_columns(&c).unwrap_err().field(), Some("max_id"));
        let mut c = good;
        c.count[0] = 0;
        assert_eq!(from_columns(&c).unwrap_err().kind(), ErrorKind::Parse);
    }

    #[test]
    fn min_and_max_ids_break_ties_the_same_way_in_any_order() {
        let spec = RollupSpec::new("kwh", Window::Day, "UTC").unwrap();
        let at = DateTime::from_timestamp(0, 0).unwrap();
        let one = |id: &str, q: i64| {
            let mut p = PartialRollup::new(&spec).unwrap();
            p.add(&UsageRecord::new("t", id, "s", "kwh", Decimal::new(q, 0), at)).unwrap();
            p.finish()
        };
        let parts = [one("b", 1), one("a", 1), one("c", 5), one("d", 5)];
        for perm in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]] {
            let m = merge(perm.iter().flat_map(|&i| parts[i].clone())).unwrap();
            assert_eq!((m[0].min_id.as_str(), m[0].max_id.as_str()), ("a", "d"));
        }
    }

    #[test]
    fn an_unknown_json_column_is_refused_naming_it() {
        let spec = RollupSpec::new("kwh", crate::time::Window::Day, "UTC").unwrap();
        let json = serde_json::json!({"schema_version": SCHEMA_VERSION, "tenant": [], "colour": []});
        let e = columns_from_json(&json, &spec).unwrap_err();
        assert_eq!((e.kind(), e.field()), (ErrorKind::Parse, Some("colour")));
    }
}
