//! Usage records: the unit of input.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::time::{fmt_ts, MAX_TIMESTAMP_SECS, MIN_TIMESTAMP_SECS};

mod read;
mod read_refs;
mod scan;
mod view;
pub use read::read_records_fast;
pub use read_refs::{read_first_record_ref, read_record_refs, RefBatch};
pub use view::RecordRef;

/// Dimensions of a usage record: a sorted map of string keys to string values
/// (`carrier`, `region`, `direction` = `up`/`down`, `category`, `status`, …).
pub type Dimensions = BTreeMap<String, String>;

/// One measured amount of usage: `quantity` of `metric` used by `subject` at `timestamp`.
///
/// * `(tenant, id)` is the **idempotency key**: ingesting the same key with the same content again
///   is a duplicate and changes nothing; the same key with different content is a conflict.
/// * `quantity` is exact (`rust_decimal::Decimal`) in the metric's unit — kWh, bytes, requests,
///   messages. It may be negative only where the metric allows it (see validation).
/// * `timestamp` is the instant the usage starts (interval data: the start of the interval);
///   `end`, if given, is when it ends and must not be before `timestamp`. Rollups place a record
///   in the window that contains `timestamp`.
/// * `dimensions` hold the attributes rollups can group and filter by.
///
/// JSON shape (the CLI's `jsonl` format and every binding):
/// `{"id","tenant","subject","metric","quantity","timestamp","end"?,"dimensions"?}` with
/// `quantity` a string (a JSON number is accepted on input and read exactly from its text, never
/// through a binary float: `12345678901234567890.5` stays that number) and timestamps in RFC 3339.
///
/// ```
/// use meterkit::UsageRecord;
/// let r: UsageRecord = serde_json::from_str(
///     r#"{"id":"r1","tenant":"t","subject":"sim-1","metric":"bytes","quantity":1024,
///         "timestamp":"2024-03-01T10:00:00+01:00","dimensions":{"carrier":"acme"}}"#,
/// )?;
/// assert_eq!(r.quantity.to_string(), "1024");
/// assert_eq!(r.timestamp.to_rfc3339(), "2024-03-01T09:00:00+00:00");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct UsageRecord {
    /// Caller-chosen id, unique per tenant (the idempotency key with `tenant`).
    pub id: String,
    /// The tenant the record belongs to; no call ever mixes tenants.
    pub tenant: String,
    /// Who or what used it: a meter, a SIM card (ICCID), a customer, an API key.
    pub subject: String,
    /// What was used: `kwh`, `bytes`, `requests`, `messages`, ….
    pub metric: String,
    /// How much, exactly, in the metric's unit.
    #[serde(with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub quantity: Decimal,
    /// When the usage starts (UTC instant; any offset is accepted on input).
    #[serde(with = "crate::time::ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
    pub timestamp: DateTime<Utc>,
    /// When the usage ends, for sessions and intervals.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::opt_ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp | null"))]
    pub end: Option<DateTime<Utc>>,
    /// Attributes to group and filter by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: Dimensions,
    /// Whether the quantity was measured (`actual`, omitted from JSON), measured but flagged by
    /// validation (`flagged`), or estimated (`estimated`). See [`Quality`].
    #[serde(default, skip_serializing_if = "Quality::is_actual")]
    pub quality: Quality,
}

/// The data quality of a usage record, as set by validation and estimation (VEE).
///
/// * `actual` — measured and accepted as is (the default; not written in JSON).
/// * `flagged` — measured, but a validation rule raised a finding with action `flag`; it is
///   billed, and rollups count it in `flagged_count` / `flagged_sum`.
/// * `estimated` — not measured: filled in by estimation (a gap); rollups count it in
///   `estimated_count` / `estimated_sum`, and it is never part of an "actual" total.
///
/// JSON: `"actual"`, `"flagged"`, `"estimated"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Measured and accepted.
    #[default]
    Actual,
    /// Measured, flagged by a validation rule, still billed.
    Flagged,
    /// Estimated (never measured).
    Estimated,
}

crate::error::enum_names!(
    Quality,
    "record quality",
    [Actual = "actual", Flagged = "flagged", Estimated = "estimated",]
);

impl Quality {
    /// Every quality, in declaration order (hosts check their type lists against it).
    pub const ALL: [Quality; 3] = [Quality::Actual, Quality::Flagged, Quality::Estimated];

    /// True for [`Quality::Actual`] (used to omit the field from JSON).
    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub fn is_actual(&self) -> bool {
        *self == Quality::Actual
    }
}

impl UsageRecord {
    /// A record with no `end` and no dimensions.
    pub fn new(
        tenant: impl Into<String>,
        id: impl Into<String>,
        subject: impl Into<String>,
        metric: impl Into<String>,
        quantity: Decimal,
        timestamp: DateTime<Utc>,
    ) -> Self {
        UsageRecord {
            id: id.into(),
            tenant: tenant.into(),
            subject: subject.into(),
            metric: metric.into(),
            quantity,
            timestamp,
            end: None,
            dimensions: Dimensions::new(),
            quality: Quality::Actual,
        }
    }

    /// Add a dimension (builder style).
    #[must_use]
    pub fn with_dimension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.dimensions.insert(key.into(), value.into());
        self
    }

    /// Set `end` (builder style).
    #[must_use]
    pub fn with_end(mut self, end: DateTime<Utc>) -> Self {
        self.end = Some(end);
        self
    }

    /// Check the record's shape: non-empty `id`, `tenant`, `subject` and `metric`; `end` not
    /// before `timestamp`; timestamps within years 1678–2261.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRecord`](crate::ErrorKind::InvalidRecord) naming the field.
    pub fn check(&self) -> Result<()> {
        check_parts(&self.id, &self.tenant, &self.subject, &self.metric, self.timestamp, self.end)
    }

    /// Set the quality (builder style).
    #[must_use]
    pub fn with_quality(mut self, quality: Quality) -> Self {
        self.quality = quality;
        self
    }

    /// True when `other` has the same content (quantities compared by value, so `1.5` = `1.50`).
    /// The [`quality`](UsageRecord::quality) mark is not content: validation may flag a stored
    /// record, and the same record sent again is still a duplicate.
    pub fn same_content(&self, other: &UsageRecord) -> bool {
        self.id == other.id
            && self.tenant == other.tenant
            && self.subject == other.subject
            && self.metric == other.metric
            && self.quantity == other.quantity
            && self.timestamp == other.timestamp
            && self.end == other.end
            && self.dimensions == other.dimensions
    }
}

/// The checks of [`UsageRecord::check`] on a record's parts, for paths that check rows of columns
/// without building records (the columnar partial rollup): non-empty `id`, `tenant`, `subject` and
/// `metric`; `end` not before `timestamp`; timestamps within years 1678–2261.
///
/// # Errors
/// [`ErrorKind::InvalidRecord`](crate::ErrorKind::InvalidRecord) naming the field and the record id.
pub fn check_parts(
    id: &str,
    tenant: &str,
    subject: &str,
    metric: &str,
    timestamp: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
) -> Result<()> {
    let bad = |field: &str, msg: String| Err(Error::invalid_record(msg).with_field(field).with_record_id(id));
    for (field, value) in [("id", id), ("tenant", tenant), ("subject", subject), ("metric", metric)] {
        if value.is_empty() {
            return bad(field, format!("The record's {field} is empty."));
        }
    }
    let in_range = |t: &DateTime<Utc>| (MIN_TIMESTAMP_SECS..MAX_TIMESTAMP_SECS).contains(&t.timestamp());
    if !in_range(&timestamp) {
        return bad("timestamp", format!("The timestamp {} is outside years 1678-2261.", fmt_ts(timestamp)));
    }
    if let Some(end) = end {
        if !in_range(&end) {
            return bad("end", format!("The end {} is outside years 1678-2261.", fmt_ts(end)));
        }
        if end < timestamp {
            return bad("end", format!("The end {} is before the timestamp {}.", fmt_ts(end), fmt_ts(timestamp)));
        }
    }
    Ok(())
}
