//! Cheap repeat runs: the batch-level idempotency probe and per-source watermarks.
//!
//! A cron job that re-sends what it already sent (an hourly API-usage aggregation re-reading the
//! day's logs) must cost next to nothing. Two mechanisms, both kept in the store's metadata in
//! the same atomic change as the batch itself:
//!
//! * **The batch probe.** A single-tenant batch of at least [`MIN_PROBED_BATCH`] records that was
//!   stored without a rejection is remembered by the SHA-256 digest of its records' idempotent
//!   content (`tenant`, `id`, `subject`, `metric`, quantity by value, `timestamp`, `end`,
//!   `dimensions`; what [`UsageRecord::same_content`] compares, in batch order). The same batch
//!   again is answered "all duplicates" from one metadata read, without looking up each key. A
//!   retraction (or replacement) bumps the tenant's revision, which is part of the key, so a
//!   batch remembered before it is looked up record by record again.
//! * **Per-source watermarks.** [`Engine::ingest_from`](crate::Engine::ingest_from) records,
//!   per tenant, the greatest timestamp of the batch's stored (or duplicate) records under the
//!   source's name; [`Engine::last_ingested_at`](crate::Engine::last_ingested_at) returns it, so
//!   a job sends only what is newer.

use std::borrow::Borrow;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::record::UsageRecord;
use crate::rollup::columnar::{ColumnBatch, StrColumn};
use crate::store::Store;
use crate::time::{fmt_ts, parse_ts};

/// The smallest batch the probe remembers (smaller batches would add one metadata row for a
/// handful of records).
pub const MIN_PROBED_BATCH: usize = 64;

/// Metadata key of a tenant's revision: bumped by every retraction or replacement.
pub(crate) const REVISION: &str = "engine/revision";

/// The longest source name, in bytes.
pub const MAX_SOURCE_LEN: usize = 200;

/// A batch's probe digest: its tenant and the hex SHA-256 of its records' idempotent content,
/// or `None` when the batch is not probed (fewer than [`MIN_PROBED_BATCH`] records, or several
/// tenants). Computed once per call (no store read); [`probe_key`] adds the tenant's revision.
pub(crate) type Digest = (String, String);

/// The [`Digest`] of `batch`.
pub(crate) fn digest<R: Borrow<UsageRecord>>(batch: &[R]) -> Option<Digest> {
    let first = batch.first()?.borrow();
    if batch.len() < MIN_PROBED_BATCH || batch.iter().any(|r| r.borrow().tenant != first.tenant) {
        return None;
    }
    let mut h = Hasher::new();
    for r in batch {
        let r = r.borrow();
        let dims = r.dimensions.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let fields = Fields {
            tenant: &r.tenant,
            id: &r.id,
            subject: &r.subject,
            metric: &r.metric,
            quantity: r.quantity,
            timestamp: r.timestamp,
            end: r.end,
        };
        h.add(&fields, r.dimensions.len(), dims);
    }
    Some(h.finish(&first.tenant))
}

/// The [`Digest`] of the records of `batch` ([`ColumnBatch::records`]), read from its columns
/// without building them: the same bytes as [`digest`] of the records. `None` also for a batch
/// whose records cannot all be built (the caller builds them, and reports the error), and for
/// one with two dimension columns of one name.
pub(crate) fn digest_columns(batch: &ColumnBatch<'_>) -> Option<Digest> {
    let n = batch.len();
    if n < MIN_PROBED_BATCH || batch.check_lengths().is_err() {
        return None;
    }
    let ids = batch.ids?;
    let tenant = batch.tenant.get(0).ok()??;
    // The dimension columns in the order of the record's sorted map; a name twice would keep
    // only the later column's value in a record: left to the record path.
    let mut dims: Vec<&(&str, StrColumn<'_>)> = batch.dimensions.iter().collect();
    dims.sort_by_key(|(k, _)| *k);
    if dims.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    let mut h = Hasher::new();
    let mut values: Vec<(&str, &str)> = Vec::with_capacity(dims.len());
    for row in 0..n {
        if batch.tenant.get(row).ok()? != Some(tenant) {
            return None;
        }
        let nanos = batch.nanos.map_or(0, |v| v[row]);
        let timestamp = DateTime::from_timestamp(batch.timestamps[row], nanos)?;
        values.clear();
        for (k, col) in &dims {
            if let Some(v) = col.get(row).ok()? {
                values.push((k, v));
            }
        }
        let fields = Fields {
            tenant,
            id: ids[row],
            subject: batch.subject.get(row).ok()??,
            metric: batch.metric.get(row).ok()??,
            quantity: batch.quantity_at(row).ok()?,
            timestamp,
            end: batch.ends.and_then(|e| e[row]),
        };
        h.add(&fields, values.len(), values.iter().copied());
    }
    Some(h.finish(tenant))
}

/// The metadata key remembering a batch of digest `digest`: `(tenant, "batch/{revision}/{sha256}")`.
///
/// # Errors
/// [`ErrorKind::Store`] when the revision cannot be read.
pub(crate) fn probe_key(store: &dyn Store, digest: &Digest) -> Result<(String, String)> {
    let (tenant, hex) = digest;
    let revision = store.meta(tenant, REVISION)?.unwrap_or_else(|| "0".to_string());
    Ok((tenant.clone(), format!("batch/{revision}/{hex}")))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The SHA-256 of a batch's records, fed one record at a time. Each record's bytes are gathered
/// first and hashed in one update (many small updates cost more than the hashing); the bytes, so
/// the key, are the same.
struct Hasher {
    h: Sha256,
    buf: Vec<u8>,
}

impl Hasher {
    fn new() -> Self {
        Hasher { h: Sha256::new(), buf: Vec::with_capacity(256) }
    }

    /// Add one record (see [`feed`]).
    fn add<'a>(&mut self, r: &Fields<'_>, count: usize, dims: impl Iterator<Item = (&'a str, &'a str)>) {
        self.buf.clear();
        feed(&mut self.buf, r, count, dims);
        self.h.update(&self.buf);
    }

    /// The digest of the records added, for `tenant`.
    fn finish(self, tenant: &str) -> Digest {
        (tenant.to_string(), hex(&self.h.finalize()))
    }
}

/// A record's idempotent content but its dimensions.
struct Fields<'a> {
    tenant: &'a str,
    id: &'a str,
    subject: &'a str,
    metric: &'a str,
    quantity: Decimal,
    timestamp: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
}

/// Feed one record's idempotent content (`dims`: its `count` dimensions in key order), each
/// field length-prefixed so no two records feed the same bytes.
fn feed<'a>(h: &mut Vec<u8>, r: &Fields<'_>, count: usize, dims: impl Iterator<Item = (&'a str, &'a str)>) {
    let text = |h: &mut Vec<u8>, s: &str| {
        h.extend_from_slice(&(s.len() as u64).to_le_bytes());
        h.extend_from_slice(s.as_bytes());
    };
    text(h, r.tenant);
    text(h, r.id);
    text(h, r.subject);
    text(h, r.metric);
    // The quantity by value: its normalized form (no trailing zeros, no negative zero) is one
    // scale and one mantissa per value.
    let quantity = r.quantity.normalize();
    h.extend_from_slice(&[1, quantity.scale() as u8]);
    h.extend_from_slice(&quantity.mantissa().to_le_bytes());
    let at = |h: &mut Vec<u8>, t: Option<DateTime<Utc>>| match t {
        Some(t) => {
            h.push(1);
            h.extend_from_slice(&t.timestamp().to_le_bytes());
            h.extend_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
        }
        None => h.push(0),
    };
    at(h, Some(r.timestamp));
    at(h, r.end);
    h.extend_from_slice(&(count as u64).to_le_bytes());
    for (k, v) in dims {
        for s in [k, v] {
            text(h, s);
        }
    }
}

/// The next revision of `tenant` (after a retraction or replacement): `(tenant, key, value)`.
///
/// # Errors
/// [`ErrorKind::Store`].
pub(crate) fn next_revision(store: &dyn Store, tenant: &str) -> Result<(String, String, Option<String>)> {
    let now = store.meta(tenant, REVISION)?.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok((tenant.to_string(), REVISION.to_string(), Some(now.saturating_add(1).to_string())))
}

/// Check a source name: 1 to [`MAX_SOURCE_LEN`] bytes.
///
/// # Errors
/// [`ErrorKind::InvalidQuery`] with field `source`.
pub(crate) fn check_source(source: &str) -> Result<()> {
    if source.is_empty() || source.len() > MAX_SOURCE_LEN {
        return Err(Error::new(
            ErrorKind::InvalidQuery,
            format!("A source name has 1 to {MAX_SOURCE_LEN} bytes, not {}.", source.len()),
        )
        .with_field("source"));
    }
    Ok(())
}

/// Metadata key of a source's watermark.
pub(crate) fn watermark_key(source: &str) -> String {
    format!("source/{source}")
}

/// The watermark changes for `source` after `stored` (the records of a batch stored or found
/// duplicate): per tenant, the greatest timestamp, if greater than the stored watermark.
///
/// # Errors
/// [`ErrorKind::Store`].
pub(crate) fn watermark_changes<'r>(
    store: &dyn Store,
    source: &str,
    stored: impl IntoIterator<Item = &'r UsageRecord>,
) -> Result<Vec<(String, String, Option<String>)>> {
    let mut latest: std::collections::BTreeMap<&str, DateTime<Utc>> = std::collections::BTreeMap::new();
    for r in stored {
        let e = latest.entry(r.tenant.as_str()).or_insert(r.timestamp);
        *e = (*e).max(r.timestamp);
    }
    let mut out = Vec::new();
    for (tenant, at) in latest {
        out.extend(watermark_change(store, source, tenant, at)?);
    }
    Ok(out)
}

/// The watermark change for `source` in `tenant` after records whose greatest timestamp is `at`:
/// none when the stored watermark is not earlier.
///
/// # Errors
/// [`ErrorKind::Store`].
pub(crate) fn watermark_change(
    store: &dyn Store,
    source: &str,
    tenant: &str,
    at: DateTime<Utc>,
) -> Result<Vec<(String, String, Option<String>)>> {
    let newer = read_watermark(store, tenant, source)?.is_none_or(|w| w < at);
    Ok(if newer { vec![(tenant.to_string(), watermark_key(source), Some(fmt_ts(at)))] } else { Vec::new() })
}

/// The stored watermark of `source` for `tenant`.
///
/// # Errors
/// [`ErrorKind::Store`], also for a stored value that does not read as an instant.
pub(crate) fn read_watermark(store: &dyn Store, tenant: &str, source: &str) -> Result<Option<DateTime<Utc>>> {
    store
        .meta(tenant, &watermark_key(source))?
        .map(|v| parse_ts(&v).map_err(|e| Error::new(ErrorKind::Store, format!("A stored watermark is corrupt: {e}"))))
        .transpose()
}
