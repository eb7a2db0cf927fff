//! The in-memory [`MemoryStore`]: ordered maps, nothing persisted, shareable between engines of
//! one process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, ErrorKind, Result};
use crate::record::UsageRecord;
use crate::rollup::{BucketState, RollupSpec};
use crate::store::{BucketKey, ChangeSet, Store, StoredBucket};

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
        let set = changes.set.iter().map(|(k, e, s)| (k, e, Some(s)));
        for (key, end, state) in changes.replace.iter().map(|(k, e, s)| (k, e, s.as_ref())).chain(set) {
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
