//! The `Store` trait — the engine's only path to persistence — and the in-memory [`MemoryStore`].

use crate::error::Result;
use crate::record::{RecordRef, UsageRecord};
pub use crate::rollup::BucketKey;
use crate::rollup::{BucketState, RollupSpec};

mod memory;

pub use memory::MemoryStore;

/// A bucket as persisted: key, window end (Unix seconds), state and whether `WindowClosed` was
/// emitted for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBucket {
    /// Key.
    pub key: BucketKey,
    /// Window end, Unix seconds.
    pub end: i64,
    /// Aggregation state.
    pub state: BucketState,
    /// True once the window was closed by `close_windows`.
    pub closed: bool,
}

/// Everything one engine call changes, applied by [`Store::apply`] all or nothing.
#[derive(Debug, Default, Clone)]
pub struct ChangeSet<'a> {
    /// New rollup specs, appended to the spec list (ids continue from the stored ones, removed
    /// specs included: an id is never reused).
    pub new_specs: Vec<RollupSpec>,
    /// Rollup specs to remove, by id: the store marks each removed (it stays in
    /// [`Store::specs`] at its position and is listed by [`Store::removed_specs`]) and deletes
    /// its buckets of every tenant. A store must refuse (as [retryable](crate::Error::is_retryable))
    /// a change set that merges into a removed spec: it was computed by an engine that had not
    /// seen the removal.
    pub remove_specs: Vec<u32>,
    /// New usage records (their idempotency keys are not stored yet).
    pub insert: Vec<&'a UsageRecord>,
    /// Records to remove, by `(tenant, id)`; applied before `insert`, so that one change may
    /// delete a record and insert its replacement under the same key.
    pub delete: Vec<(String, String)>,
    /// Bucket deltas to merge into the stored state (created if missing): `(key, end, delta)`.
    pub merge: Vec<(BucketKey, i64, BucketState)>,
    /// Buckets whose state is replaced (`None` or an empty state removes the bucket).
    pub replace: Vec<(BucketKey, i64, Option<BucketState>)>,
    /// Bucket states written as given, replacing any stored state (a bucket keeps its closed
    /// flag): imports of states computed elsewhere ([`Engine::import_buckets`](crate::Engine::import_buckets)),
    /// which no stored record backs — unlike `replace`, a store must not check them against its
    /// records. Applied after `replace`.
    pub set: Vec<(BucketKey, i64, BucketState)>,
    /// Engine metadata to set (`Some`) or remove (`None`), by `(tenant, key)`: quota levels
    /// already notified, invoice documents, per-series validation state, ….
    pub meta: Vec<(String, String, Option<String>)>,
    /// The number of rollup specs the engine computed `merge` for, removed ones included (`None`:
    /// not checked). A store shared by several engines must refuse the change set with a
    /// [retryable](crate::Error::is_retryable) [`ErrorKind::Store`](crate::error::ErrorKind::Store) error when it holds more
    /// specs than this (another engine added one), so that the engine reloads its specs and
    /// recomputes the change. A single-process store may ignore it.
    pub known_specs: Option<u32>,
}

/// Persistence for the engine: usage records by idempotency key, rollup bucket states, rollup
/// specs (ids are positions in the list, added through [`ChangeSet::new_specs`]) and the closed
/// flags of windows.
///
/// Implementations must make [`apply`](Store::apply) atomic — after a crash, either the whole
/// change set is visible or none of it — and must never return data of a tenant other than the
/// one asked for. Times are Unix seconds; ranges are half-open `[from, to)`.
///
/// The trait is object-safe and synchronous; a PostgreSQL store implements it with one
/// transaction per `apply`.
pub trait Store: Send {
    /// The rollup specs, in id order (id = position), removed ones included.
    fn specs(&self) -> Result<Vec<RollupSpec>>;

    /// The ids of the removed rollup specs (see [`ChangeSet::remove_specs`]), ascending.
    fn removed_specs(&self) -> Result<Vec<u32>>;

    /// For each of `records` (all of `tenant`), in order: `None` when its idempotency key is not
    /// stored, `Some(true)` when the stored record has the same content
    /// ([`UsageRecord::same_content`]), `Some(false)` when it differs. This is the duplicate
    /// check of every ingest. The default reads the stored records with
    /// [`get_records`](Store::get_records); a store may compare in place without copying them.
    fn compare_stored(&self, tenant: &str, records: &[&UsageRecord]) -> Result<Vec<Option<bool>>> {
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let stored = self.get_records(tenant, &ids)?;
        Ok(stored.iter().zip(records).map(|(s, r)| s.as_ref().map(|s| s.same_content(r))).collect())
    }

    /// [`compare_stored`](Store::compare_stored) for records given as borrowed content (the rows
    /// of a column batch, checked without building records): for each of `rows` (all of
    /// `tenant`), in order, `None` when its key is not stored, `Some(same content)`
    /// ([`RecordRef::same_content`]) when it is. The default builds the records
    /// ([`RecordRef::to_record`]) and calls `compare_stored`; a store may compare in place.
    fn compare_stored_refs(&self, tenant: &str, rows: &[RecordRef<'_>]) -> Result<Vec<Option<bool>>> {
        let records: Vec<UsageRecord> = rows.iter().map(RecordRef::to_record).collect();
        let refs: Vec<&UsageRecord> = records.iter().collect();
        self.compare_stored(tenant, &refs)
    }

    /// The stored records for `ids` of `tenant`, `None` where unknown, in the order of `ids`.
    fn get_records(&self, tenant: &str, ids: &[&str]) -> Result<Vec<Option<UsageRecord>>>;

    /// Records of `tenant` and `metric` with `timestamp` in `[from, to)`, optionally of one
    /// subject, ordered by timestamp then id.
    fn records(
        &self,
        tenant: &str,
        metric: &str,
        subject: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<UsageRecord>>;

    /// Call `f` for every stored record of `metric` in every tenant (used to backfill a new spec).
    fn scan_metric(&self, metric: &str, f: &mut dyn FnMut(&UsageRecord) -> Result<()>) -> Result<()>;

    /// Call `f` for every stored record of `metric` of `tenant` (used to backfill a tenant's own
    /// spec). A store that checks backfills against concurrent writers (as
    /// [`scan_metric`](Store::scan_metric) may) must do the same here. The default reads the
    /// tenant's records with [`records`](Store::records).
    fn scan_tenant_metric(
        &self,
        tenant: &str,
        metric: &str,
        f: &mut dyn FnMut(&UsageRecord) -> Result<()>,
    ) -> Result<()> {
        for r in self.records(tenant, metric, None, i64::MIN, i64::MAX)? {
            f(&r)?;
        }
        Ok(())
    }

    /// Apply a change set atomically. Returns, for each entry of `changes.merge`, whether its
    /// bucket was already closed before this change (a late record).
    fn apply(&mut self, changes: &ChangeSet<'_>) -> Result<Vec<bool>>;

    /// Buckets of `tenant` and `spec` with window start in `[from, to)`, ordered by start then group.
    fn buckets(&self, tenant: &str, spec: u32, from: i64, to: i64) -> Result<Vec<StoredBucket>>;

    /// The bucket with `key`, if stored.
    fn bucket(&self, key: &BucketKey) -> Result<Option<StoredBucket>>;

    /// Buckets of `tenant` not yet closed whose window ends at or before `cutoff`.
    fn open_buckets_until(&self, tenant: &str, cutoff: i64) -> Result<Vec<StoredBucket>>;

    /// Mark buckets closed (atomically).
    fn mark_closed(&mut self, keys: &[BucketKey]) -> Result<()>;

    /// The metadata value stored under `(tenant, key)`.
    fn meta(&self, tenant: &str, key: &str) -> Result<Option<String>>;

    /// Metadata of `tenant` whose key starts with `prefix`, ordered by key.
    fn meta_prefix(&self, tenant: &str, prefix: &str) -> Result<Vec<(String, String)>>;

    /// Called by the engine around each *retry* of a call the store refused as
    /// [retryable](crate::Error::is_retryable): `true` before the attempt's first read, `false`
    /// after the attempt, whatever its outcome (errors of the `false` call are ignored). A store
    /// shared by several processes may hold off other writers' changes in between, so that a
    /// retried batch cannot be refused again and again by a stream of concurrent writers (no
    /// starvation); it must release on `false`, or when its connection ends. The default does
    /// nothing.
    fn exclusive(&mut self, on: bool) -> Result<()> {
        let _ = on;
        Ok(())
    }

    /// Called by the engine before each attempt of a call that writes (an ingest, a new rollup
    /// spec and its backfill, a retraction, closing windows), before the attempt's first read;
    /// [`end_write`](Store::end_write) follows after its last write, whatever its outcome. A store
    /// shared by several writers makes the span one write transaction that excludes every other
    /// writer (SQLite: `BEGIN IMMEDIATE` … `COMMIT`), so that what the attempt read — the records
    /// a new spec is backfilled from, the stored keys of a batch — cannot change before it
    /// writes. Each [`apply`](Store::apply) inside stays atomic on its own. Waiting too long for
    /// another writer is a [retryable](crate::Error::is_retryable) [`ErrorKind::Store`](crate::error::ErrorKind::Store) error.
    /// The default does nothing (each `apply` is its own transaction, and the store refuses a
    /// stale change as retryable instead, as the PostgreSQL store does).
    fn begin_write(&mut self) -> Result<()> {
        Ok(())
    }

    /// Ends the span [`begin_write`](Store::begin_write) started: makes every `apply` in it
    /// durable and lets other writers in. An error means none of those applies is stored (a
    /// failed commit is rolled back) and the writers' lock is released all the same.
    fn end_write(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A boxed store is a store: hosts and bindings that pick the store at run time (a file path or a
/// `postgres://` URL) hand `Engine::new` a `Box<dyn Store>`.
impl<S: Store + ?Sized> Store for Box<S> {
    fn specs(&self) -> Result<Vec<RollupSpec>> {
        (**self).specs()
    }

    fn removed_specs(&self) -> Result<Vec<u32>> {
        (**self).removed_specs()
    }

    fn compare_stored(&self, tenant: &str, records: &[&UsageRecord]) -> Result<Vec<Option<bool>>> {
        (**self).compare_stored(tenant, records)
    }

    fn compare_stored_refs(&self, tenant: &str, rows: &[RecordRef<'_>]) -> Result<Vec<Option<bool>>> {
        (**self).compare_stored_refs(tenant, rows)
    }

    fn get_records(&self, tenant: &str, ids: &[&str]) -> Result<Vec<Option<UsageRecord>>> {
        (**self).get_records(tenant, ids)
    }

    fn records(
        &self,
        tenant: &str,
        metric: &str,
        subject: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<UsageRecord>> {
        (**self).records(tenant, metric, subject, from, to)
    }

    fn scan_metric(&self, metric: &str, f: &mut dyn FnMut(&UsageRecord) -> Result<()>) -> Result<()> {
        (**self).scan_metric(metric, f)
    }

    fn scan_tenant_metric(
        &self,
        tenant: &str,
        metric: &str,
        f: &mut dyn FnMut(&UsageRecord) -> Result<()>,
    ) -> Result<()> {
        (**self).scan_tenant_metric(tenant, metric, f)
    }

    fn apply(&mut self, changes: &ChangeSet<'_>) -> Result<Vec<bool>> {
        (**self).apply(changes)
    }

    fn buckets(&self, tenant: &str, spec: u32, from: i64, to: i64) -> Result<Vec<StoredBucket>> {
        (**self).buckets(tenant, spec, from, to)
    }

    fn bucket(&self, key: &BucketKey) -> Result<Option<StoredBucket>> {
        (**self).bucket(key)
    }

    fn open_buckets_until(&self, tenant: &str, cutoff: i64) -> Result<Vec<StoredBucket>> {
        (**self).open_buckets_until(tenant, cutoff)
    }

    fn mark_closed(&mut self, keys: &[BucketKey]) -> Result<()> {
        (**self).mark_closed(keys)
    }

    fn meta(&self, tenant: &str, key: &str) -> Result<Option<String>> {
        (**self).meta(tenant, key)
    }

    fn meta_prefix(&self, tenant: &str, prefix: &str) -> Result<Vec<(String, String)>> {
        (**self).meta_prefix(tenant, prefix)
    }

    fn exclusive(&mut self, on: bool) -> Result<()> {
        (**self).exclusive(on)
    }
    fn begin_write(&mut self) -> Result<()> {
        (**self).begin_write()
    }

    fn end_write(&mut self) -> Result<()> {
        (**self).end_write()
    }
}
