//! Rollups: what to aggregate (a [`RollupSpec`]), the mergeable state of one bucket
//! ([`BucketState`]) and the result rows queries return ([`Bucket`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::record::{Quality, UsageRecord};
use crate::time::{parse_time_zone, Tz, Window};

pub mod columnar;
pub mod partial;
mod slot;

/// Identifies one rollup bucket: tenant, spec (index in the store's spec list), window start
/// (Unix seconds) and group values in the spec's `group_by` order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketKey {
    /// Tenant.
    pub tenant: String,
    /// Spec id: the spec's position in the store's list (added through `ChangeSet::new_specs` in the store module).
    pub spec: u32,
    /// Window start, Unix seconds.
    pub start: i64,
    /// Group values in `group_by` order (`None` where a record lacks the dimension).
    pub group: Vec<Option<String>>,
}

/// The pseudo-dimension that groups rollups by the record's subject.
pub const SUBJECT: &str = "subject";

/// One aggregation a rollup maintains.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Sum of quantities.
    Sum,
    /// Number of records.
    Count,
    /// Smallest quantity.
    Min,
    /// Largest quantity.
    Max,
    /// Sum ÷ count, rounded to 12 decimal places (half-even).
    Mean,
    /// Quantity of the record with the greatest timestamp; ties broken by the greatest id.
    Latest,
    /// Exact number of distinct values of a dimension (e.g. distinct SIMs per carrier per day).
    /// Records without the dimension are not counted.
    UniqueCount(String),
}

/// The name of an aggregation as a query's `by` takes it: `sum`, `count`, `min`, `max`, `mean`,
/// `latest`, or `unique_count:DIM`.
impl std::fmt::Display for Aggregation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Aggregation::Sum => f.write_str("sum"),
            Aggregation::Count => f.write_str("count"),
            Aggregation::Min => f.write_str("min"),
            Aggregation::Max => f.write_str("max"),
            Aggregation::Mean => f.write_str("mean"),
            Aggregation::Latest => f.write_str("latest"),
            Aggregation::UniqueCount(dim) => write!(f, "unique_count:{dim}"),
        }
    }
}

/// An aggregation from its [`Display`](std::fmt::Display) name; anything else is an
/// [`ErrorKind::Parse`] error with field `by`.
impl std::str::FromStr for Aggregation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "sum" => Aggregation::Sum,
            "count" => Aggregation::Count,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "mean" => Aggregation::Mean,
            "latest" => Aggregation::Latest,
            other => match other.strip_prefix("unique_count:") {
                Some(dim) => Aggregation::UniqueCount(dim.to_string()),
                None => {
                    return Err(Error::new(
                        ErrorKind::Parse,
                        format!("Unknown aggregation '{other}': expected sum, count, min, max, mean, latest or unique_count:DIM."),
                    )
                    .with_field("by"))
                }
            },
        })
    }
}

/// What to roll up: one metric, cut by one window in one time zone, grouped by dimensions.
///
/// `group_by` names dimensions; the pseudo-dimension `"subject"` groups by the record's subject.
/// A record without a grouped dimension falls in the group whose value for it is `null`.
/// Sum, count, min, max, mean and latest are always maintained; `unique_count` aggregations are
/// listed in `aggregations` (the others may be listed too, for documentation, and are ignored).
///
/// A spec with `tenant` set is that tenant's own (its zone, its billing-cycle day): the engine
/// maintains it for that tenant's records only, so other tenants' ingests never pay for it.
/// Without `tenant` it applies to every tenant.
///
/// JSON: `{"tenant"?:"acme","metric":"bytes","window":"day","time_zone":"Europe/London",
/// "group_by":["carrier"],"aggregations":["sum",{"unique_count":"subject"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RollupSpec {
    /// The one tenant this spec is maintained for; `None` (omitted in JSON): every tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub tenant: Option<String>,
    /// The metric rolled up (`kwh`, `bytes`, …).
    pub metric: String,
    /// The window kind.
    pub window: Window,
    /// IANA zone the windows are computed in.
    pub time_zone: String,
    /// Dimensions (and optionally `"subject"`) to group by, in output order.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub group_by: Vec<String>,
    /// Aggregations; only `unique_count` changes what is stored.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub aggregations: Vec<Aggregation>,
}

impl RollupSpec {
    /// A spec with sum/count/min/max/mean/latest and no grouping.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidTimeZone`] for an unknown zone.
    pub fn new(metric: impl Into<String>, window: Window, time_zone: &str) -> Result<Self> {
        parse_time_zone(time_zone)?;
        Ok(RollupSpec {
            tenant: None,
            metric: metric.into(),
            window: window.check()?,
            time_zone: time_zone.to_string(),
            group_by: Vec::new(),
            aggregations: Vec::new(),
        })
    }

    /// Group by these dimensions (builder style).
    #[must_use]
    pub fn group_by<I: IntoIterator<Item = S>, S: Into<String>>(mut self, dims: I) -> Self {
        self.group_by = dims.into_iter().map(Into::into).collect();
        self
    }

    /// Maintain this spec for `tenant` only (builder style): a tenant's own spec.
    #[must_use]
    pub fn for_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Whether this spec is maintained for `tenant`'s records: a spec of every tenant, or
    /// `tenant`'s own.
    pub fn applies_to(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == tenant)
    }

    /// Add an aggregation (builder style).
    #[must_use]
    pub fn with(mut self, aggregation: Aggregation) -> Self {
        if !self.aggregations.contains(&aggregation) {
            self.aggregations.push(aggregation);
        }
        self
    }

    /// The dimensions whose distinct values are counted.
    pub fn unique_dims(&self) -> impl Iterator<Item = &str> {
        self.aggregations.iter().filter_map(|a| match a {
            Aggregation::UniqueCount(d) => Some(d.as_str()),
            _ => None,
        })
    }

    /// Check the spec: a non-empty metric, a valid window and zone, no repeated group dimension,
    /// a non-empty `tenant` when one is given.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidQuery`], [`ErrorKind::InvalidWindow`] or [`ErrorKind::InvalidTimeZone`].
    pub fn check(&self) -> Result<Tz> {
        if self.tenant.as_deref() == Some("") {
            return Err(Error::new(ErrorKind::InvalidQuery, "A tenant's rollup spec needs a non-empty tenant.")
                .with_field("tenant"));
        }
        if self.metric.is_empty() {
            return Err(Error::new(ErrorKind::InvalidQuery, "A rollup spec needs a metric.").with_field("metric"));
        }
        self.window.check()?;
        let mut seen = BTreeSet::new();
        for g in &self.group_by {
            if !seen.insert(g) {
                return Err(Error::new(ErrorKind::InvalidQuery, format!("The dimension '{g}' is grouped twice."))
                    .with_field("group_by"));
            }
        }
        parse_time_zone(&self.time_zone)
    }

    /// The group values of `record` under this spec, in `group_by` order.
    pub fn group_of<'r>(&self, record: &'r UsageRecord) -> Vec<Option<&'r str>> {
        self.group_by.iter().map(|d| dim_value(record, d)).collect()
    }
}

/// The value of dimension `d` of `record`; `"subject"` is the record's subject.
pub(crate) fn dim_value<'r>(record: &'r UsageRecord, d: &str) -> Option<&'r str> {
    if d == SUBJECT {
        Some(record.subject.as_str())
    } else {
        record.dimensions.get(d).map(String::as_str)
    }
}

/// The record of the greatest timestamp (ties: greatest id) seen by a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latest {
    /// Its timestamp.
    #[serde(with = "crate::time::ts_str")]
    pub timestamp: DateTime<Utc>,
    /// Its id.
    pub id: String,
    /// Its quantity.
    #[serde(with = "crate::decimal::decimal_str")]
    pub quantity: Decimal,
}

impl Latest {
    fn newer_than(&self, other: &Latest) -> bool {
        (self.timestamp, &self.id) > (other.timestamp, &other.id)
    }
}

/// The mergeable state of one rollup bucket: enough to answer every aggregation exactly and to
/// combine with another state (`merge` is associative and commutative, which is what makes
/// ingest order and batch splits irrelevant).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketState {
    /// Sum of quantities.
    #[serde(with = "crate::decimal::decimal_str")]
    pub sum: Decimal,
    /// Number of records.
    pub count: u64,
    /// Smallest quantity, if any record.
    #[serde(default, with = "crate::decimal::opt_decimal_str")]
    pub min: Option<Decimal>,
    /// Largest quantity, if any record.
    #[serde(default, with = "crate::decimal::opt_decimal_str")]
    pub max: Option<Decimal>,
    /// The latest record.
    #[serde(default)]
    pub latest: Option<Latest>,
    /// Distinct values per counted dimension.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uniques: BTreeMap<String, BTreeSet<String>>,
    /// Number of records with quality `flagged` (included in `count`).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub flagged_count: u64,
    /// Sum of the quantities of `flagged` records (included in `sum`).
    #[serde(default, skip_serializing_if = "Decimal::is_zero", with = "crate::decimal::decimal_str")]
    pub flagged_sum: Decimal,
    /// Number of records with quality `estimated` (included in `count`).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub estimated_count: u64,
    /// Sum of the quantities of `estimated` records (included in `sum`).
    #[serde(default, skip_serializing_if = "Decimal::is_zero", with = "crate::decimal::decimal_str")]
    pub estimated_sum: Decimal,
    /// Timestamp of the bucket's earliest record (its latest is `latest.timestamp`). `None` for an
    /// empty bucket, and for a bucket a store wrote before meterkit kept it (SQLite files and
    /// PostgreSQL states of earlier versions): then it is unknown, stays `None` through merges
    /// until the bucket is recomputed from its records, and queries give `first_at: null`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::opt_ts_str")]
    pub first_at: Option<DateTime<Utc>>,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

impl BucketState {
    /// Add one record's quantity (and its distinct values for `unique_dims`).
    ///
    /// # Errors
    /// [`ErrorKind::Overflow`] when the sum leaves the decimal range; the state is unchanged then.
    #[inline]
    pub fn add<'a>(&mut self, record: &UsageRecord, unique_dims: impl Iterator<Item = &'a str>) -> Result<()> {
        let q = record.quantity;
        let sum = crate::decimal::exact_add(self.sum, q).ok_or_else(|| Error::overflow("A rollup sum"))?;
        match record.quality {
            Quality::Actual => {}
            Quality::Flagged => {
                self.flagged_sum =
                    crate::decimal::exact_add(self.flagged_sum, q).ok_or_else(|| Error::overflow("A rollup sum"))?;
                self.flagged_count += 1;
            }
            Quality::Estimated => {
                self.estimated_sum =
                    crate::decimal::exact_add(self.estimated_sum, q).ok_or_else(|| Error::overflow("A rollup sum"))?;
                self.estimated_count += 1;
            }
        }
        self.sum = sum;
        // Known only if every record added so far had it known (see `first_at`).
        self.first_at =
            if self.count == 0 { Some(record.timestamp) } else { self.first_at.map(|f| f.min(record.timestamp)) };
        self.count += 1;
        // Same results as `Decimal::min`/`max` (keep the current value on ties), with a cheaper
        // exact comparison for the common case of scales within 9 digits of each other.
        match self.min {
            Some(m) if cmp_decimal(q, m).is_ge() => {}
            _ => self.min = Some(q),
        }
        match self.max {
            Some(m) if cmp_decimal(q, m).is_le() => {}
            _ => self.max = Some(q),
        }
        match &mut self.latest {
            None => self.latest = Some(Latest { timestamp: record.timestamp, id: record.id.clone(), quantity: q }),
            Some(l) => {
                if (record.timestamp, record.id.as_str()) > (l.timestamp, l.id.as_str()) {
                    // Reuse the id's allocation: in time-ordered input nearly every record is the
                    // new latest, and a fresh String per record was a malloc + free each time.
                    l.timestamp = record.timestamp;
                    l.id.clone_from(&record.id);
                    l.quantity = q;
                }
            }
        }
        for d in unique_dims {
            if let Some(v) = dim_value(record, d) {
                let set = self.uniques.entry(d.to_string()).or_default();
                if !set.contains(v) {
                    set.insert(v.to_string());
                }
            }
        }
        Ok(())
    }

    /// Combine `other` into `self`.
    ///
    /// # Errors
    /// [`ErrorKind::Overflow`] when the sum leaves the decimal range.
    pub fn merge(&mut self, other: &BucketState) -> Result<()> {
        if other.count == 0 {
            return Ok(());
        }
        let overflow = || Error::overflow("A rollup sum");
        let sum = crate::decimal::exact_add(self.sum, other.sum).ok_or_else(overflow)?;
        let flagged_sum = crate::decimal::exact_add(self.flagged_sum, other.flagged_sum).ok_or_else(overflow)?;
        let estimated_sum = crate::decimal::exact_add(self.estimated_sum, other.estimated_sum).ok_or_else(overflow)?;
        self.sum = sum;
        self.flagged_sum = flagged_sum;
        self.estimated_sum = estimated_sum;
        self.first_at = if self.count == 0 {
            other.first_at
        } else {
            match (self.first_at, other.first_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None, // unknown on either side: unknown
            }
        };
        self.count += other.count;
        self.flagged_count += other.flagged_count;
        self.estimated_count += other.estimated_count;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if let Some(o) = &other.latest {
            if self.latest.as_ref().is_none_or(|l| o.newer_than(l)) {
                self.latest = Some(o.clone());
            }
        }
        for (d, vals) in &other.uniques {
            self.uniques.entry(d.clone()).or_default().extend(vals.iter().cloned());
        }
        Ok(())
    }

    /// Sum ÷ count rounded to 12 decimal places, or `None` for an empty bucket.
    pub fn mean(&self) -> Option<Decimal> {
        if self.count == 0 {
            return None;
        }
        self.sum.checked_div(Decimal::from(self.count)).map(|m| m.round_dp(12))
    }
}

/// Exact comparison of two decimals. When their scales differ by at most 9, both mantissas
/// (at most 96 bits) are aligned in `i128` (96 bits + 10^9 < 2^127), which is much cheaper than
/// `Decimal`'s general comparison; otherwise it falls back to `Decimal::cmp`.
#[inline]
fn cmp_decimal(a: Decimal, b: Decimal) -> std::cmp::Ordering {
    const POW10: [i128; 10] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];
    let (sa, sb) = (a.scale(), b.scale());
    let diff = sa.abs_diff(sb) as usize;
    if diff < POW10.len() {
        let (ma, mb) = (a.mantissa(), b.mantissa());
        if sa >= sb {
            ma.cmp(&(mb * POW10[diff]))
        } else {
            (ma * POW10[diff]).cmp(&mb)
        }
    } else {
        a.cmp(&b)
    }
}

/// One row of a rollup query: a window, a group, and every aggregation.
///
/// JSON (CLI `rollup --output json` and every binding): `{"window_start","window_end","subject",
/// "metric","group":{...},"sum","count","min","max","mean","latest","unique":{...}?}` with
/// decimals as strings (`null` where a bucket has no records) and RFC 3339 timestamps.
///
/// Data quality (VEE): `flagged_count`, `flagged_sum`, `estimated_count`, `estimated_sum` say how
/// many of the bucket's records, and how much of its `sum`, were flagged by validation or
/// estimated. They are part of `count` and `sum`. In JSON each of the four is **omitted when it is
/// zero** (an absent field means 0), so buckets of clean data print exactly as before; the output
/// stays deterministic because a field is present if and only if it is non-zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Bucket {
    /// Window start (inclusive).
    #[serde(with = "crate::time::ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
    pub window_start: DateTime<Utc>,
    /// Window end (exclusive).
    #[serde(with = "crate::time::ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
    pub window_end: DateTime<Utc>,
    /// Window start as a local time with its offset in the query's zone (the spec's, for a
    /// store-less rollup), e.g. `"2025-01-01T00:00:00+05:30"` for an Asia/Kolkata month: the
    /// label a chart wants (the UTC `window_start` of that month is `2024-12-31T18:30:00Z`).
    #[serde(default)]
    pub local_start: String,
    /// The subject, when the query was for one subject or grouped by subject; otherwise `null`.
    pub subject: Option<String>,
    /// The metric.
    pub metric: String,
    /// Group values by dimension name (`null` for records without the dimension), one per
    /// `group_by` entry: grouping by `subject` gives `group.subject` like any other dimension
    /// (and the same value in `subject`).
    pub group: BTreeMap<String, Option<String>>,
    /// Sum of quantities (`"0"` for an empty, zero-filled bucket).
    #[serde(with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub sum: Decimal,
    /// Number of records.
    pub count: u64,
    /// Smallest quantity.
    #[serde(with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub min: Option<Decimal>,
    /// Largest quantity.
    #[serde(with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub max: Option<Decimal>,
    /// Mean quantity (12 decimal places).
    #[serde(with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub mean: Option<Decimal>,
    /// Quantity of the latest record.
    #[serde(with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub latest: Option<Decimal>,
    /// Distinct-value counts per dimension, for `unique_count` aggregations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unique: BTreeMap<String, u64>,
    /// Records flagged by validation (part of `count`); omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub flagged_count: u64,
    /// Quantity of flagged records (part of `sum`); omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "Decimal::is_zero", with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub flagged_sum: Decimal,
    /// Estimated records (part of `count`); omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub estimated_count: u64,
    /// Quantity of estimated records (part of `sum`); omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "Decimal::is_zero", with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub estimated_sum: Decimal,
    /// Timestamp of the bucket's earliest record; `null` for an empty bucket (and for a bucket
    /// stored by a meterkit version before this field, until it is recomputed).
    #[serde(default, with = "crate::time::opt_ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp | null"))]
    pub first_at: Option<DateTime<Utc>>,
    /// Timestamp of the bucket's latest record (the one `latest` is the quantity of), e.g. an API
    /// portal's last request; `null` for an empty bucket.
    #[serde(default, with = "crate::time::opt_ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp | null"))]
    pub last_at: Option<DateTime<Utc>>,
}

impl Bucket {
    /// The measured part of `sum`: `sum - estimated_sum` (flagged records were measured, so they
    /// count as actual).
    ///
    /// # Errors
    /// [`ErrorKind::Overflow`] when the difference leaves the decimal range (a bucket whose
    /// estimated and measured parts have opposite signs near the range's ends).
    pub fn actual_sum(&self) -> Result<Decimal> {
        self.sum.checked_sub(self.estimated_sum).ok_or_else(|| Error::overflow("A bucket's actual (measured) sum"))
    }

    /// The estimated share of `sum` in percent, rounded to 2 decimal places (half-even), e.g.
    /// `3` for "3 % estimated"; `None` when `sum` is 0.
    pub fn estimated_percent(&self) -> Option<Decimal> {
        share_percent(self.estimated_sum, self.sum)
    }

    /// The flagged share of `sum` in percent, rounded to 2 decimal places; `None` when `sum` is 0.
    pub fn flagged_percent(&self) -> Option<Decimal> {
        share_percent(self.flagged_sum, self.sum)
    }
}

fn share_percent(part: Decimal, whole: Decimal) -> Option<Decimal> {
    if whole.is_zero() {
        return None;
    }
    part.checked_mul(Decimal::ONE_HUNDRED).and_then(|p| p.checked_div(whole)).map(|p| p.round_dp(2).normalize())
}

impl Bucket {
    /// The result row of a bucket the store-less rollups give (`columnar::ColumnarRollup::finish`,
    /// `Accumulator::into_buckets`): `key` of `spec`, window end `end` (Unix seconds), grouped as
    /// the spec (every `group_by` dimension in `group`, `subject` too, which is also in its own
    /// field; every `unique_count` dimension present in `unique`; `local_start` in the spec's zone).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidWindow`] for a window bound outside the timestamp range;
    /// [`ErrorKind::InvalidTimeZone`] for a spec with an unknown zone.
    pub fn of_key(spec: &RollupSpec, key: &BucketKey, end: i64, state: &BucketState) -> Result<Bucket> {
        let tz = parse_time_zone(&spec.time_zone)?;
        let group = spec.group_by.iter().zip(&key.group);
        Bucket::grouped((key.start, end), tz, None, group, &spec.metric, state, spec.unique_dims())
    }

    /// A result row: window `[start, end)` (Unix seconds) labelled in `tz` too, the group values
    /// `group` (a `subject` value also fills the `subject` field, else `subject` is kept), every
    /// dimension of `unique` present in `unique` (0 when the bucket has none of its values).
    pub(crate) fn grouped<'g, 'u>(
        (start, end): (i64, i64),
        tz: Tz,
        mut subject: Option<String>,
        group: impl Iterator<Item = (&'g String, &'g Option<String>)>,
        metric: &str,
        state: &BucketState,
        unique: impl Iterator<Item = &'u str>,
    ) -> Result<Bucket> {
        let instant = |t: i64| {
            DateTime::from_timestamp(t, 0)
                .ok_or_else(|| Error::new(ErrorKind::InvalidWindow, format!("The instant {t} is out of range.")))
        };
        let mut map = BTreeMap::new();
        for (d, v) in group {
            if d == SUBJECT {
                subject.clone_from(v);
            }
            map.insert(d.clone(), v.clone());
        }
        let mut b = Bucket::from_state((instant(start)?, instant(end)?), tz, subject, metric, map, state);
        for d in unique {
            b.unique.entry(d.to_string()).or_insert(0);
        }
        Ok(b)
    }

    fn from_state(
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        tz: Tz,
        subject: Option<String>,
        metric: &str,
        group: BTreeMap<String, Option<String>>,
        state: &BucketState,
    ) -> Self {
        Bucket {
            window_start: start,
            window_end: end,
            local_start: start.with_timezone(&tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            subject,
            metric: metric.to_string(),
            group,
            sum: state.sum.normalize(),
            count: state.count,
            min: state.min.map(|d| d.normalize()),
            max: state.max.map(|d| d.normalize()),
            mean: state.mean().map(|d| d.normalize()),
            latest: state.latest.as_ref().map(|l| l.quantity.normalize()),
            // `extend`, not `collect` (a collected map has a stable sort of its own: ≈ 4 KB).
            unique: {
                let mut m = BTreeMap::new();
                m.extend(state.uniques.iter().map(|(d, v)| (d.clone(), v.len() as u64)));
                m
            },
            flagged_count: state.flagged_count,
            flagged_sum: state.flagged_sum.normalize(),
            estimated_count: state.estimated_count,
            estimated_sum: state.estimated_sum.normalize(),
            first_at: state.first_at,
            last_at: state.latest.as_ref().map(|l| l.timestamp),
        }
    }
}

/// Accumulates the bucket deltas of a batch of records under a set of specs: the per-record hot
/// path of ingest, usable on its own (no store) for one-shot rollups of in-memory data.
///
/// Output keys carry the spec's index in the slice given to [`Accumulator::new`].
///
/// How a record finds its bucket: its group values (looked up once per record for all specs)
/// name a **series** (a spec and a group: one bucket per window over time), interned once and
/// found by a hash of the values; each series remembers the window its last record fell in and
/// that window's bucket. Meter feeds are mostly time-ordered per series, so most records fall in
/// the remembered window: no window arithmetic and no bucket lookup for them.
///
/// ```
/// use meterkit::{rollup::Accumulator, RollupSpec, UsageRecord, Window};
/// use chrono::{TimeZone, Utc};
/// let spec = RollupSpec::new("kwh", Window::Day, "Europe/London")?;
/// let mut acc = Accumulator::new("t", &[spec])?;
/// let at = Utc.with_ymd_and_hms(2024, 7, 1, 23, 30, 0).unwrap(); // 00:30 BST on 2 July
/// acc.add(&UsageRecord::new("t", "r1", "m1", "kwh", "1.5".parse()?, at))?;
/// let buckets = acc.into_buckets();
/// assert_eq!(buckets[0].0.start, Utc.with_ymd_and_hms(2024, 7, 1, 23, 0, 0).unwrap().timestamp());
/// assert_eq!(buckets[0].2.sum.to_string(), "1.5");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Accumulator {
    tenant: String,
    specs: Vec<AccSpec>,
    /// The distinct metrics of the specs.
    metrics: Vec<String>,
    /// The distinct dimensions (other than `subject`) the specs group by: looked up once per
    /// record.
    dims: Vec<String>,
    /// Hash of (spec, group values) -> the most recent series with that hash; series with the
    /// same hash are chained through [`AccSeries::next`].
    series_index: rustc_hash::FxHashMap<u64, u32>,
    series: Vec<AccSeries>,
    /// `(series, window start)` -> entry, for records outside their series' remembered window.
    index: rustc_hash::FxHashMap<(u32, i64), u32>,
    /// Per entry: its series and window `[start, end)`; the [`BucketKey`] is built only by
    /// [`into_buckets`](Self::into_buckets).
    windows: Vec<(u32, i64, i64)>,
    /// Per entry: its state, 64 bytes of integers in the common case ([`slot::Slot`]).
    slots: Vec<slot::Slot>,
    /// The states of the slots that left the integer form, and ids longer than 8 bytes.
    side: slot::Side,
}

/// End of a hash chain, or "no entry yet", in [`Accumulator`].
const NO_ENTRY: u32 = u32::MAX;

/// Group values of up to this many distinct dimensions are buffered on the stack in
/// [`Accumulator::add`]; more take a heap buffer.
const GROUP_BUF: usize = 8;

/// Where a group value comes from: the record's subject.
const FROM_SUBJECT: usize = usize::MAX;

#[derive(Debug)]
struct AccSpec {
    id: u32,
    /// Index of the spec's metric in [`Accumulator::metrics`].
    metric: usize,
    /// For each `group_by` dimension: `FROM_SUBJECT` or its index in [`Accumulator::dims`].
    sources: Vec<usize>,
    unique: Vec<String>,
    clock: crate::time::WindowClock,
}

/// One series of an accumulator: a spec (its position in `specs`), group values, and the window
/// `[start, end)` its last record fell in with that window's entry.
#[derive(Debug)]
struct AccSeries {
    spec: u32,
    group: Vec<Option<String>>,
    next: u32,
    start: i64,
    end: i64,
    entry: u32,
}

impl Accumulator {
    /// An accumulator for records of `tenant` under `specs` (ids = positions in `specs`; a spec
    /// of another tenant is skipped).
    ///
    /// # Errors
    /// As [`RollupSpec::check`].
    pub fn new(tenant: &str, specs: &[RollupSpec]) -> Result<Self> {
        Self::with_ids(tenant, specs.iter().enumerate().map(|(i, s)| (i as u32, s)))
    }

    pub(crate) fn with_ids<'s>(tenant: &str, specs: impl Iterator<Item = (u32, &'s RollupSpec)>) -> Result<Self> {
        let mut dims: Vec<String> = Vec::new();
        let mut metrics: Vec<String> = Vec::new();
        // Another tenant's own spec never sees this tenant's records.
        let specs = specs
            .filter(|(_, s)| s.applies_to(tenant))
            .map(|(id, s)| {
                let tz = s.check()?;
                let sources = s
                    .group_by
                    .iter()
                    .map(|d| {
                        if d == SUBJECT {
                            FROM_SUBJECT
                        } else if let Some(i) = dims.iter().position(|x| x == d) {
                            i
                        } else {
                            dims.push(d.clone());
                            dims.len() - 1
                        }
                    })
                    .collect();
                let metric = metrics.iter().position(|m| *m == s.metric).unwrap_or_else(|| {
                    metrics.push(s.metric.clone());
                    metrics.len() - 1
                });
                Ok(AccSpec {
                    id,
                    metric,
                    sources,
                    unique: s.unique_dims().map(str::to_string).collect(),
                    clock: crate::time::WindowClock::new(s.window, tz)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Accumulator {
            tenant: tenant.to_string(),
            specs,
            metrics,
            dims,
            series_index: rustc_hash::FxHashMap::default(),
            series: Vec::new(),
            index: rustc_hash::FxHashMap::default(),
            windows: Vec::new(),
            slots: Vec::new(),
            side: slot::Side::default(),
        })
    }

    /// Add one record (of this accumulator's tenant) to the buckets of every spec on its metric.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRecord`] for a record of another tenant; [`ErrorKind::Overflow`] when
    /// a sum leaves the decimal range (the accumulator may then hold a partial record and should
    /// be dropped); [`ErrorKind::InvalidWindow`] for an instant out of range.
    pub fn add(&mut self, record: &UsageRecord) -> Result<()> {
        if record.tenant != self.tenant {
            return Err(Error::invalid_record(format!(
                "Record '{}' belongs to tenant '{}', not '{}'.",
                record.id, record.tenant, self.tenant
            ))
            .with_field("tenant"));
        }
        // The record's metric compared once with each distinct metric of the specs.
        let Some(metric) = self.metrics.iter().position(|m| *m == record.metric) else {
            return Ok(());
        };
        if self.dims.len() <= GROUP_BUF {
            let mut buf: [Option<&str>; GROUP_BUF] = [None; GROUP_BUF];
            self.lookup_dims(record, &mut buf[..self.dims.len()]);
            self.add_with(record, metric, &buf)
        } else {
            let mut buf = vec![None; self.dims.len()];
            self.lookup_dims(record, &mut buf);
            self.add_with(record, metric, &buf)
        }
    }

    /// The record's value of each of `self.dims` (`None` where it lacks the dimension).
    #[inline]
    fn lookup_dims<'r>(&self, record: &'r UsageRecord, out: &mut [Option<&'r str>]) {
        // A record with few dimensions is walked once, comparing names by length first; one with
        // many is searched per wanted dimension.
        if record.dimensions.len() <= 4 {
            for (k, v) in &record.dimensions {
                if let Some(i) = self.dims.iter().position(|d| d.len() == k.len() && d == k) {
                    out[i] = Some(v.as_str());
                }
            }
        } else {
            for (slot, d) in out.iter_mut().zip(&self.dims) {
                *slot = record.dimensions.get(d).map(String::as_str);
            }
        }
    }

    /// [`add`](Self::add) for a record of metric `metric` (index in `self.metrics`) with its
    /// dimension values `vals` (in `self.dims` order).
    fn add_with(&mut self, record: &UsageRecord, metric: usize, vals: &[Option<&str>]) -> Result<()> {
        use std::hash::{Hash, Hasher};
        let t = record.timestamp.timestamp();
        let point = slot::Point::of(record);
        for si in 0..self.specs.len() {
            let spec = &self.specs[si];
            if spec.metric != metric {
                continue;
            }
            let value = |s: usize| if s == FROM_SUBJECT { Some(record.subject.as_str()) } else { vals[s] };
            let mut h = rustc_hash::FxHasher::default();
            si.hash(&mut h);
            for &s in &spec.sources {
                value(s).hash(&mut h);
            }
            let hash = h.finish();
            let head = self.series_index.get(&hash).copied().unwrap_or(NO_ENTRY);
            let mut found = head;
            while found != NO_ENTRY {
                let series = &self.series[found as usize];
                if series.spec as usize == si
                    && series.group.iter().zip(&spec.sources).all(|(g, &s)| g.as_deref() == value(s))
                {
                    break;
                }
                found = series.next;
            }
            if found == NO_ENTRY {
                found = u32::try_from(self.series.len())
                    .ok()
                    .filter(|&i| i != NO_ENTRY)
                    .ok_or_else(|| Error::new(ErrorKind::Overflow, "An accumulator holds at most 2^32-1 series."))?;
                let group = spec.sources.iter().map(|&s| value(s).map(str::to_string)).collect();
                self.series.push(AccSeries { spec: si as u32, group, next: head, start: 0, end: 0, entry: NO_ENTRY });
                self.series_index.insert(hash, found);
            }
            let entry = self.entry_of(si, found, t)?;
            let unique = self.specs[si].unique.iter().map(String::as_str);
            self.slots[entry as usize].add(&mut self.side, record, point.as_ref(), unique)?;
        }
        Ok(())
    }

    /// The entry of the window containing `t` in series `series` (of spec `si`), new if needed.
    #[inline]
    fn entry_of(&mut self, si: usize, series: u32, t: i64) -> Result<u32> {
        let s = &self.series[series as usize];
        if s.start <= t && t < s.end {
            return Ok(s.entry);
        }
        let (start, end) = self.specs[si].clock.span(t)?;
        let entry = match self.index.get(&(series, start)) {
            Some(&e) => e,
            None => {
                let e = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i != NO_ENTRY)
                    .ok_or_else(|| Error::new(ErrorKind::Overflow, "An accumulator holds at most 2^32-1 buckets."))?;
                self.windows.push((series, start, end));
                self.slots.push(slot::Slot::default());
                self.index.insert((series, start), e);
                e
            }
        };
        let s = &mut self.series[series as usize];
        (s.start, s.end, s.entry) = (start, end, entry);
        Ok(entry)
    }

    /// Number of distinct buckets touched so far.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no record matched any spec.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The accumulated `(key, window end, state)` triples, in first-touched order.
    pub fn into_buckets(mut self) -> Vec<(BucketKey, i64, BucketState)> {
        let side = &mut self.side;
        self.windows
            .iter()
            .zip(&self.slots)
            .map(|(&(series, start, end), slot)| {
                let s = &self.series[series as usize];
                let key = BucketKey {
                    tenant: self.tenant.clone(),
                    spec: self.specs[s.spec as usize].id,
                    start,
                    group: s.group.clone(),
                };
                (key, end, slot.take_state(side))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::cmp_decimal;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    fn decimal() -> impl Strategy<Value = Decimal> {
        (any::<i64>(), any::<u32>(), any::<bool>(), 0u32..=28)
            .prop_map(|(lo, hi, neg, scale)| Decimal::from_parts(lo as u32, (lo >> 32) as u32, hi, neg, scale))
    }

    proptest! {
        /// The fast comparison agrees with `Decimal::cmp` everywhere, including signed zeros,
        /// equal values of different scales and scale gaps beyond the fast path.
        #[test]
        fn cmp_decimal_agrees_with_decimal_cmp(a in decimal(), b in decimal(), k in 0u32..12) {
            prop_assert_eq!(cmp_decimal(a, b), a.cmp(&b));
            // The same value at a larger scale (when representable) compares equal.
            let mut c = a;
            c.rescale(a.scale() + k);
            if c == a {
                prop_assert_eq!(cmp_decimal(a, c), std::cmp::Ordering::Equal);
                prop_assert_eq!(cmp_decimal(c, a), std::cmp::Ordering::Equal);
            }
        }
    }

    #[test]
    fn cmp_decimal_on_zeros_and_neighbours() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(cmp_decimal(d("0"), d("-0.000")), std::cmp::Ordering::Equal);
        assert_eq!(cmp_decimal(d("1.5"), d("1.50")), std::cmp::Ordering::Equal);
        assert_eq!(cmp_decimal(d("-0.001"), d("0")), std::cmp::Ordering::Less);
        assert_eq!(cmp_decimal(d("2"), d("1.999999999")), std::cmp::Ordering::Greater);
        assert_eq!(cmp_decimal(Decimal::MAX, Decimal::new(1, 28)), std::cmp::Ordering::Greater);
    }
}

#[cfg(test)]
mod exactness_tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    /// Group values are found whether a record has few dimensions (walked once) or many (looked
    /// up by name), with `subject` and a missing dimension (`None`) among them; a record of
    /// another metric touches nothing; records of one series in one window share a bucket and a
    /// record in a later window (the series' remembered window left) gets its own.
    #[test]
    fn group_values_from_few_and_many_dimensions() {
        let at = |h: u32| Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).unwrap();
        let spec = RollupSpec::new("m", crate::time::Window::Day, "UTC").unwrap().group_by(["subject", "b", "zz"]);
        let other = RollupSpec::new("n", crate::time::Window::Hour, "UTC").unwrap().group_by(["a"]);
        let mut acc = Accumulator::new("t", &[spec, other]).unwrap();
        let few = UsageRecord::new("t", "r1", "s", "m", Decimal::ONE, at(1)).with_dimension("b", "x");
        let mut many = UsageRecord::new("t", "r2", "s", "m", Decimal::TWO, at(2));
        for (k, v) in [("a", "1"), ("b", "x"), ("c", "3"), ("d", "4"), ("e", "5"), ("f", "6")] {
            many = many.with_dimension(k, v);
        }
        acc.add(&few).unwrap();
        acc.add(&many).unwrap();
        acc.add(&UsageRecord::new("t", "r3", "s", "m", Decimal::TEN, at(0) + chrono::Duration::days(1))).unwrap();
        acc.add(&UsageRecord::new("t", "r4", "s", "other", Decimal::TEN, at(3))).unwrap();
        let buckets = acc.into_buckets();
        assert_eq!(buckets.len(), 2);
        assert_eq!(buckets[0].0.group, vec![Some("s".to_string()), Some("x".to_string()), None]);
        assert_eq!((buckets[0].2.count, buckets[0].2.sum), (2, Decimal::new(3, 0)));
        assert_eq!(buckets[1].0.group, vec![Some("s".to_string()), None, None]);
        assert_eq!(buckets[1].0.start, at(0).timestamp() + 86_400);
    }

    /// A sum that would need more than 28 significant digits is an overflow, never a rounded
    /// number (rust_decimal's `checked_add` alone would round it).
    #[test]
    fn a_sum_beyond_28_digits_is_an_error_not_a_rounded_number() {
        let at = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let big = UsageRecord::new("t", "a", "s", "m", "79228162514264337593543950".parse().unwrap(), at);
        let tiny = UsageRecord::new("t", "b", "s", "m", "0.000000000001".parse().unwrap(), at);
        let mut state = BucketState::default();
        state.add(&big, std::iter::empty()).unwrap();
        let err = state.add(&tiny, std::iter::empty()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Overflow);
        assert_eq!(state.sum.to_string(), "79228162514264337593543950", "the state is unchanged");
        let mut other = BucketState::default();
        other.add(&tiny, std::iter::empty()).unwrap();
        assert_eq!(state.clone().merge(&other).unwrap_err().kind(), ErrorKind::Overflow);
        // Exact sums with many decimals still work.
        let mut fine = BucketState::default();
        for (i, q) in ["0.028999999999999998", "1234567.000000000000000001"].iter().enumerate() {
            fine.add(&UsageRecord::new("t", i.to_string(), "s", "m", q.parse().unwrap(), at), std::iter::empty())
                .unwrap();
        }
        assert_eq!(fine.sum.to_string(), "1234567.028999999999999999");
    }
}
