//! The pending-upload queue of an offline host (a field app on a phone, an edge gateway): which
//! stored records still have to be sent to a server, kept in the store's metadata so that it
//! survives a restart.
//!
//! The queue is a set of typed metadata keys per tenant ([`OutboxKey`]):
//!
//! * `outbox/pending/{id}` — the record `(tenant, id)` waits for upload (value: empty);
//! * `outbox/sent/{id}` — the record was acknowledged by the server at the Unix second in the
//!   value; a record queued again while its sent marker is kept is **not** queued twice. Sent
//!   markers are removed once older than the retention window ([`DEFAULT_RETENTION_SECS`], 30
//!   days) by every acknowledgement and by [`purge`]; a record queued again after that is sent
//!   again, and the server counts it once (ingest is idempotent by `(tenant, id)`);
//! * `outbox/count` — the number of pending markers, so that the pending count is one metadata
//!   read (O(1)), written in the same atomic change as the markers it counts. A store whose write
//!   spans do not exclude other writers (PostgreSQL) may let two concurrent queues miscount;
//!   [`purge`] recounts.
//!
//! The functions here read a [`Store`] and return the metadata changes to apply
//! ([`ChangeSet::meta`](crate::store::ChangeSet::meta) entries); the engine applies them inside
//! its write spans (`Engine::outbox_queue`, `outbox_pending`, `outbox_count`, `outbox_ack`,
//! `outbox_purge`), which is what every binding and the CLI call.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::record::UsageRecord;
use crate::store::Store;

/// How long a sent marker is kept after its acknowledgement, in seconds (30 days): a record
/// queued again within this window is not uploaded twice.
pub const DEFAULT_RETENTION_SECS: i64 = 30 * 86_400;

/// One metadata change: `(tenant, key, Some(value))` sets, `None` removes.
pub type MetaChange = (String, String, Option<String>);

/// A record's idempotency key, `(tenant, id)`.
pub type RecordKey = (String, String);

const PENDING: &str = "outbox/pending/";
const SENT: &str = "outbox/sent/";
const COUNT: &str = "outbox/count";

/// A metadata key of the outbox (per tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxKey<'a> {
    /// `outbox/pending/{id}`: the record waits for upload.
    Pending(&'a str),
    /// `outbox/sent/{id}`: the record was acknowledged (value: Unix seconds).
    Sent(&'a str),
    /// `outbox/count`: how many records are pending (value: decimal integer).
    Count,
}

impl OutboxKey<'_> {
    /// The metadata key text.
    pub fn key(&self) -> String {
        match self {
            OutboxKey::Pending(id) => format!("{PENDING}{id}"),
            OutboxKey::Sent(id) => format!("{SENT}{id}"),
            OutboxKey::Count => COUNT.to_string(),
        }
    }

    /// The key a metadata key text names, `None` when it is not an outbox key.
    pub fn parse(key: &str) -> Option<OutboxKey<'_>> {
        if key == COUNT {
            return Some(OutboxKey::Count);
        }
        key.strip_prefix(PENDING).map(OutboxKey::Pending).or_else(|| key.strip_prefix(SENT).map(OutboxKey::Sent))
    }
}

/// Pending records exported for upload ([`pending`]).
///
/// JSON: `{"ids":["r1",…],"records":[UsageRecord…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PendingExport {
    /// The ids of `records`, in the same order (what to acknowledge after the upload).
    pub ids: Vec<String>,
    /// The pending records, by id.
    pub records: Vec<UsageRecord>,
}

/// The number of records of `tenant` waiting for upload: one metadata read.
///
/// # Errors
/// [`ErrorKind::Store`] when the store fails or the stored count is not a number.
pub fn count(store: &dyn Store, tenant: &str) -> Result<u64> {
    match store.meta(tenant, COUNT)? {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| {
            Error::new(ErrorKind::Store, format!("The outbox count of tenant '{tenant}' is not a number: '{v}'."))
                .with_field(COUNT)
        }),
    }
}

/// Up to `limit` pending records of `tenant`, by id. A marker naming a record that is not stored
/// (a crash between marking and storing) is skipped; [`purge`] removes it.
///
/// # Errors
/// [`ErrorKind::Store`].
pub fn pending(store: &dyn Store, tenant: &str, limit: usize) -> Result<PendingExport> {
    let keys = store.meta_prefix(tenant, PENDING)?;
    let ids: Vec<&str> = keys.iter().filter_map(|(k, _)| k.strip_prefix(PENDING)).take(limit).collect();
    let records: Vec<UsageRecord> = store.get_records(tenant, &ids)?.into_iter().flatten().collect();
    Ok(PendingExport { ids: records.iter().map(|r| r.id.clone()).collect(), records })
}

/// The changes that mark the records of `batch` pending, per tenant: a record already pending,
/// or acknowledged within the retention window, is skipped; the count moves by the number
/// marked. Returns the changes and the `(tenant, id)` keys newly marked.
///
/// # Errors
/// [`ErrorKind::Store`].
pub fn mark_pending(store: &dyn Store, batch: &[UsageRecord]) -> Result<(Vec<MetaChange>, Vec<RecordKey>)> {
    let mut by_tenant: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in batch {
        by_tenant.entry(r.tenant.as_str()).or_default().insert(r.id.as_str());
    }
    let mut changes = Vec::new();
    let mut marked = Vec::new();
    for (tenant, ids) in by_tenant {
        let mut added = 0u64;
        for id in ids {
            let known = store.meta(tenant, &OutboxKey::Pending(id).key())?.is_some()
                || store.meta(tenant, &OutboxKey::Sent(id).key())?.is_some();
            if !known {
                changes.push((tenant.to_string(), OutboxKey::Pending(id).key(), Some(String::new())));
                marked.push((tenant.to_string(), id.to_string()));
                added += 1;
            }
        }
        if added > 0 {
            changes.push(count_change(tenant, count(store, tenant)?.saturating_add(added)));
        }
    }
    Ok((changes, marked))
}

/// The changes that remove the pending markers of `keys` (`(tenant, id)`; those not pending are
/// ignored): records the engine rejected after they were marked.
///
/// # Errors
/// [`ErrorKind::Store`].
pub fn unmark(store: &dyn Store, keys: &[RecordKey]) -> Result<Vec<MetaChange>> {
    let mut by_tenant: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (tenant, id) in keys {
        by_tenant.entry(tenant.as_str()).or_default().insert(id.as_str());
    }
    let mut changes = Vec::new();
    for (tenant, ids) in by_tenant {
        let mut removed = 0u64;
        for id in ids {
            let key = OutboxKey::Pending(id).key();
            if store.meta(tenant, &key)?.is_some() {
                changes.push((tenant.to_string(), key, None));
                removed += 1;
            }
        }
        if removed > 0 {
            changes.push(count_change(tenant, count(store, tenant)?.saturating_sub(removed)));
        }
    }
    Ok(changes)
}

/// The changes that acknowledge the upload of `ids` of `tenant` at `now`: each pending one
/// leaves the queue and gets a sent marker dated `now`; sent markers acknowledged before `now −`
/// [`DEFAULT_RETENTION_SECS`] are removed. Returns the changes and how many ids were pending
/// (ids not pending are ignored).
///
/// # Errors
/// [`ErrorKind::Store`].
pub fn acknowledge(
    store: &dyn Store,
    tenant: &str,
    ids: &[&str],
    now: DateTime<Utc>,
) -> Result<(Vec<MetaChange>, u64)> {
    let at = now.timestamp().to_string();
    // `extend`, not `collect`: a collected set sorts through a stable-sort copy of its own (size).
    let mut ids_set: BTreeSet<&str> = BTreeSet::new();
    ids_set.extend(ids.iter().copied());
    let ids = ids_set;
    let mut changes = Vec::new();
    let mut acked = 0u64;
    for id in &ids {
        let key = OutboxKey::Pending(id).key();
        if store.meta(tenant, &key)?.is_some() {
            changes.push((tenant.to_string(), key, None));
            changes.push((tenant.to_string(), OutboxKey::Sent(id).key(), Some(at.clone())));
            acked += 1;
        }
    }
    if acked > 0 {
        changes.push(count_change(tenant, count(store, tenant)?.saturating_sub(acked)));
    }
    let before = now.timestamp().saturating_sub(DEFAULT_RETENTION_SECS);
    let expired = expired_sent(store, tenant, before)?;
    changes.extend(
        expired
            .into_iter()
            .filter(|(_, k, _)| !matches!(OutboxKey::parse(k), Some(OutboxKey::Sent(id)) if ids.contains(id))),
    );
    Ok((changes, acked))
}

/// The changes that tidy the outbox of `tenant`: sent markers acknowledged before `before` are
/// removed, pending markers naming no stored record (a crash between marking and storing) are
/// removed, and the count is recomputed from the markers. Returns the changes and how many
/// markers they remove.
///
/// # Errors
/// [`ErrorKind::Store`].
pub fn purge(store: &dyn Store, tenant: &str, before: DateTime<Utc>) -> Result<(Vec<MetaChange>, u64)> {
    let mut changes = expired_sent(store, tenant, before.timestamp())?;
    let keys = store.meta_prefix(tenant, PENDING)?;
    let ids: Vec<&str> = keys.iter().filter_map(|(k, _)| k.strip_prefix(PENDING)).collect();
    let stored = store.get_records(tenant, &ids)?;
    let mut left = 0u64;
    for (id, record) in ids.iter().zip(stored) {
        if record.is_some() {
            left += 1;
        } else {
            changes.push((tenant.to_string(), OutboxKey::Pending(id).key(), None));
        }
    }
    let removed = changes.len() as u64;
    if count(store, tenant)? != left {
        changes.push(count_change(tenant, left));
    }
    Ok((changes, removed))
}

/// Removal of the sent markers of `tenant` acknowledged before `before` (Unix seconds). A marker
/// whose value is not a number is removed too (it cannot be dated).
fn expired_sent(store: &dyn Store, tenant: &str, before: i64) -> Result<Vec<MetaChange>> {
    Ok(store
        .meta_prefix(tenant, SENT)?
        .into_iter()
        .filter(|(_, v)| v.parse::<i64>().map_or(true, |at| at < before))
        .map(|(k, _)| (tenant.to_string(), k, None))
        .collect())
}

fn count_change(tenant: &str, n: u64) -> MetaChange {
    let value = if n == 0 { None } else { Some(n.to_string()) };
    (tenant.to_string(), COUNT.to_string(), value)
}
