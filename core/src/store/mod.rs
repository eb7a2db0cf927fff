//! The `Store` trait — the engine's only path to persistence — and the in-memory [`MemoryStore`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, ErrorKind, Result};
use crate::record::UsageRecord;
pub use crate::rollup::BucketKey;
use crate::rollup::{BucketState, RollupSpec};

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
    /// New rollup specs, appended to the spec list (ids continue from the stored ones).
    pub new_specs: Vec<RollupSpec>,
    /// New usage records (their idempotency keys are not stored yet).
    pub insert: Vec<&'a UsageRecord>,
    /// Records to remove, by `(tenant, id)`; applied before `insert`, so that one change may
    /// delete a record and insert its replacement under the same key.
    pub delete: Vec<(String, String)>,
    /// Bucket deltas to merge into the stored state (created if missing): `(key, end, delta)`.
    pub merge: Vec<(BucketKey, i64, BucketState)>,
    /// Buckets whose state is replaced (`None` or an empty state removes the bucket).
    pub replace: Vec<(BucketKey, i64, Option<BucketState>)>,
    /// Engine metadata to set (`Some`) or remove (`None`), by `(tenant, key)`: quota levels
    /// already notified, invoice documents, per-series validation state, ….
    pub meta: Vec<(String, String, Option<String>)>,
    /// The number of rollup specs the engine computed `merge` for (`None`: not checked). A store
    /// shared by several engines must refuse the change set with a
    /// [retryable](crate::Error::is_retryable) [`ErrorKind::Store`] error when it holds more
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
    /// The rollup specs, in id order (id = position).
    fn specs(&self) -> Result<Vec<RollupSpec>>;

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
    /// another writer is a [retryable](crate::Error::is_retryable) [`ErrorKind::Store`] error.
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

/// The in-memory store: everything in ordered maps, nothing persisted. `apply` validates the
/// whole change set before touching anything, so it is all or nothing.
///
/// Several engines in one process may share one store: [`MemoryStore::handle`] gives another
/// handle on the same data (as several processes open one SQLite file). Writers exclude each
/// other the way SQLite's do: between [`Store::begin_write`] and [`Store::end_write`] a handle
/// holds the writers' lock, and an `apply` or `mark_closed` outside such a span takes it for its
/// own duration. So what an engine call read (the records a new spec is backfilled from, the
/// stored keys of a batch) cannot change before it writes.
#[derive(Debug, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    /// True while this handle holds the writers' lock (between `begin_write` and `end_write`).
    writing: bool,
}

#[derive(Debug, Default)]
struct Shared {
    data: Mutex<Data>,
    /// True while some handle holds the writers' lock.
    writer: Mutex<bool>,
    /// Signalled when the writers' lock is released.
    released: Condvar,
}

#[derive(Debug, Default)]
struct Data {
    specs: Vec<RollupSpec>,
    records: HashMap<(String, String), UsageRecord>,
    /// (tenant, metric, timestamp secs, timestamp nanos, id) → present.
    by_time: BTreeSet<(String, String, i64, u32, String)>,
    /// (tenant, metric, subject, timestamp secs, timestamp nanos, id) → present: one subject's
    /// records read in O(its records), not O(the tenant's).
    by_subject: BTreeSet<(String, String, String, i64, u32, String)>,
    buckets: BTreeMap<BucketKey, (i64, BucketState, bool)>,
    /// (tenant, end, key) of buckets not yet closed.
    open: BTreeSet<(String, i64, BucketKey)>,
    meta: BTreeMap<(String, String), String>,
}

impl Shared {
    fn lock_writer(&self) {
        let mut held = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        while *held {
            held = self.released.wait(held).unwrap_or_else(PoisonError::into_inner);
        }
        *held = true;
    }

    fn unlock_writer(&self) {
        *self.writer.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.released.notify_one();
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Another handle on this store's data, for a second engine in the same process (each engine
    /// owns its store). Writes through either handle are seen by both.
    #[must_use]
    pub fn handle(&self) -> MemoryStore {
        MemoryStore { shared: Arc::clone(&self.shared), writing: false }
    }

    /// Number of stored buckets (all tenants and specs).
    pub fn bucket_count(&self) -> usize {
        self.data().buckets.len()
    }

    /// Number of stored records (all tenants).
    pub fn record_count(&self) -> usize {
        self.data().records.len()
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        self.shared.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run a change under the writers' lock: this handle's if it holds it, else taken for `f`.
    fn write<T>(&mut self, f: impl FnOnce(&mut Data) -> Result<T>) -> Result<T> {
        if self.writing {
            return f(&mut self.data());
        }
        self.shared.lock_writer();
        let result = f(&mut self.data());
        self.shared.unlock_writer();
        result
    }

    fn time_key(r: &UsageRecord) -> (String, String, i64, u32, String) {
        (
            r.tenant.clone(),
            r.metric.clone(),
            r.timestamp.timestamp(),
            r.timestamp.timestamp_subsec_nanos(),
            r.id.clone(),
        )
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        if std::mem::take(&mut self.writing) {
            self.shared.unlock_writer();
        }
    }
}

impl MemoryStore {
    fn subject_key(r: &UsageRecord) -> (String, String, String, i64, u32, String) {
        let (tenant, metric, secs, nanos, id) = Self::time_key(r);
        (tenant, metric, r.subject.clone(), secs, nanos, id)
    }
}

impl Data {
    fn apply(&mut self, changes: &ChangeSet<'_>) -> Result<Vec<bool>> {
        // Validate first so that a failure leaves everything untouched.
        let mut merged: HashMap<&BucketKey, (i64, BucketState)> = HashMap::new();
        for (key, end, delta) in &changes.merge {
            let (_, state) = match merged.get_mut(key) {
                Some(s) => s,
                None => {
                    let base = self.buckets.get(key).map(|b| b.1.clone()).unwrap_or_default();
                    merged.entry(key).or_insert((*end, base))
                }
            };
            state.merge(delta)?;
        }
        for r in &changes.insert {
            let key = (r.tenant.clone(), r.id.clone());
            // `delete` applies first: a replacement deletes and inserts one key in one change.
            if self.records.contains_key(&key) && !changes.delete.contains(&key) {
                return Err(Error::new(ErrorKind::Store, format!("Record '{}' is already stored.", r.id))
                    .with_record_id(r.id.clone()));
            }
        }
        if changes.known_specs.is_some_and(|k| (k as usize) < self.specs.len()) {
            // Another engine sharing the store added a spec: it must reload and recompute.
            return Err(Error::new(
                ErrorKind::Store,
                "Another writer added a rollup spec; the change was not applied.",
            )
            .with_retryable());
        }
        // Commit.
        self.specs.extend(changes.new_specs.iter().cloned());
        for (tenant, key, value) in &changes.meta {
            match value {
                Some(v) => {
                    self.meta.insert((tenant.clone(), key.clone()), v.clone());
                }
                None => {
                    self.meta.remove(&(tenant.clone(), key.clone()));
                }
            }
        }
        for (tenant, id) in &changes.delete {
            if let Some(r) = self.records.remove(&(tenant.clone(), id.clone())) {
                self.by_time.remove(&MemoryStore::time_key(&r));
                self.by_subject.remove(&MemoryStore::subject_key(&r));
            }
        }
        for r in &changes.insert {
            self.by_time.insert(MemoryStore::time_key(r));
            self.by_subject.insert(MemoryStore::subject_key(r));
            self.records.insert((r.tenant.clone(), r.id.clone()), (*r).clone());
        }
        let mut late = Vec::with_capacity(changes.merge.len());
        for (key, _, _) in &changes.merge {
            late.push(self.buckets.get(key).is_some_and(|b| b.2));
        }
        for (key, (end, state)) in merged {
            match self.buckets.get_mut(key) {
                Some(b) => b.1 = state,
                None => {
                    self.open.insert((key.tenant.clone(), end, key.clone()));
                    self.buckets.insert(key.clone(), (end, state, false));
                }
            }
        }
        for (key, end, state) in &changes.replace {
            match state {
                Some(s) if s.count > 0 => {
                    let closed = self.buckets.get(key).is_some_and(|b| b.2);
                    if !closed {
                        self.open.insert((key.tenant.clone(), *end, key.clone()));
                    }
                    self.buckets.insert(key.clone(), (*end, s.clone(), closed));
                }
                _ => {
                    if self.buckets.remove(key).is_some() {
                        self.open.remove(&(key.tenant.clone(), *end, key.clone()));
                    }
                }
            }
        }
        Ok(late)
    }

    fn bucket(&self, key: &BucketKey) -> Option<StoredBucket> {
        self.buckets.get(key).map(|(end, state, closed)| StoredBucket {
            key: key.clone(),
            end: *end,
            state: state.clone(),
            closed: *closed,
        })
    }
}

impl Store for MemoryStore {
    fn specs(&self) -> Result<Vec<RollupSpec>> {
        Ok(self.data().specs.clone())
    }

    fn get_records(&self, tenant: &str, ids: &[&str]) -> Result<Vec<Option<UsageRecord>>> {
        let data = self.data();
        Ok(ids.iter().map(|id| data.records.get(&(tenant.to_string(), (*id).to_string())).cloned()).collect())
    }

    fn records(
        &self,
        tenant: &str,
        metric: &str,
        subject: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<UsageRecord>> {
        let data = self.data();
        if let Some(s) = subject {
            let key = |t: i64| (tenant.to_string(), metric.to_string(), s.to_string(), t, 0, String::new());
            return Ok(data
                .by_subject
                .range((Bound::Included(key(from)), Bound::Excluded(key(to))))
                .filter_map(|(t, _, _, _, _, id)| data.records.get(&(t.clone(), id.clone())))
                .cloned()
                .collect());
        }
        let lo = (tenant.to_string(), metric.to_string(), from, 0, String::new());
        let hi = (tenant.to_string(), metric.to_string(), to, 0, String::new());
        Ok(data
            .by_time
            .range((Bound::Included(lo), Bound::Excluded(hi)))
            .filter_map(|(t, _, _, _, id)| data.records.get(&(t.clone(), id.clone())))
            .filter(|r| subject.is_none_or(|s| r.subject == s))
            .cloned()
            .collect())
    }

    fn scan_metric(&self, metric: &str, f: &mut dyn FnMut(&UsageRecord) -> Result<()>) -> Result<()> {
        let data = self.data();
        for (t, m, _, _, id) in &data.by_time {
            if m == metric {
                if let Some(r) = data.records.get(&(t.clone(), id.clone())) {
                    f(r)?;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, changes: &ChangeSet<'_>) -> Result<Vec<bool>> {
        self.write(|data| data.apply(changes))
    }

    fn buckets(&self, tenant: &str, spec: u32, from: i64, to: i64) -> Result<Vec<StoredBucket>> {
        let lo = BucketKey { tenant: tenant.to_string(), spec, start: from, group: Vec::new() };
        let hi = BucketKey { tenant: tenant.to_string(), spec, start: to, group: Vec::new() };
        Ok(self
            .data()
            .buckets
            .range(lo..hi)
            .map(|(k, (end, state, closed))| StoredBucket {
                key: k.clone(),
                end: *end,
                state: state.clone(),
                closed: *closed,
            })
            .collect())
    }

    fn bucket(&self, key: &BucketKey) -> Result<Option<StoredBucket>> {
        Ok(self.data().bucket(key))
    }

    fn open_buckets_until(&self, tenant: &str, cutoff: i64) -> Result<Vec<StoredBucket>> {
        let lo = (
            tenant.to_string(),
            i64::MIN,
            BucketKey { tenant: String::new(), spec: 0, start: i64::MIN, group: Vec::new() },
        );
        let data = self.data();
        Ok(data
            .open
            .range(lo..)
            .take_while(|(t, end, _)| t == tenant && *end <= cutoff)
            .filter_map(|(_, _, key)| data.bucket(key))
            .collect())
    }

    fn mark_closed(&mut self, keys: &[BucketKey]) -> Result<()> {
        self.write(|data| {
            for key in keys {
                if let Some(b) = data.buckets.get_mut(key) {
                    if !b.2 {
                        b.2 = true;
                        data.open.remove(&(key.tenant.clone(), b.0, key.clone()));
                    }
                }
            }
            Ok(())
        })
    }

    fn meta(&self, tenant: &str, key: &str) -> Result<Option<String>> {
        Ok(self.data().meta.get(&(tenant.to_string(), key.to_string())).cloned())
    }

    fn meta_prefix(&self, tenant: &str, prefix: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .data()
            .meta
            .range((tenant.to_string(), prefix.to_string())..)
            .take_while(|((t, k), _)| t == tenant && k.starts_with(prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }

    fn begin_write(&mut self) -> Result<()> {
        if self.writing {
            return Err(Error::new(ErrorKind::Store, "A write is already in progress on this store handle."));
        }
        self.shared.lock_writer();
        self.writing = true;
        Ok(())
    }

    fn end_write(&mut self) -> Result<()> {
        if std::mem::take(&mut self.writing) {
            self.shared.unlock_writer();
        }
        Ok(())
    }
}

/// A boxed store is a store: hosts and bindings that pick the store at run time (a file path or a
/// `postgres://` URL) hand `Engine::new` a `Box<dyn Store>`.
impl<S: Store + ?Sized> Store for Box<S> {
    fn specs(&self) -> Result<Vec<RollupSpec>> {
        (**self).specs()
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
