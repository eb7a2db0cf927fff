//! The in-memory [`MemoryStore`]: ordered maps, nothing persisted, shareable between engines of
//! one process.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, ErrorKind, Result};
use crate::record::{RecordRef, UsageRecord};
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
    /// Ids of removed specs.
    removed: BTreeSet<u32>,
    /// Every tenant, metric and subject string once; the indexes hold their numbers.
    names: Names,
    /// The records; `None` marks a deleted record's slot (reused by the next insert).
    slots: Vec<Option<UsageRecord>>,
    /// Slots freed by deletions.
    free: Vec<u32>,
    /// tenant → id → slot: a lookup borrows the caller's strings (no key copies).
    ids: FxHashMap<String, FxHashMap<String, u32>>,
    /// (tenant, metric, timestamp secs, timestamp nanos, slot): the records of one metric in
    /// time order (records of one instant are ordered by id when read).
    by_time: BTreeSet<(u32, u32, i64, u32, u32)>,
    /// (tenant, metric, subject, timestamp secs, timestamp nanos, slot): one subject's records
    /// read in O(its records), not O(the tenant's).
    by_subject: BTreeSet<(u32, u32, u32, i64, u32, u32)>,
    buckets: BTreeMap<BucketKey, (i64, BucketState, bool)>,
    /// (tenant, end, key) of buckets not yet closed.
    open: BTreeSet<(String, i64, BucketKey)>,
    meta: BTreeMap<(String, String), String>,
}

/// Interned strings: each distinct tenant, metric or subject gets a number once.
#[derive(Debug, Default)]
struct Names {
    ids: FxHashMap<String, u32>,
}

impl Names {
    /// The number of `s`, if it was ever interned.
    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The number of `s`, interning it when new.
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&n) = self.ids.get(s) {
            return n;
        }
        let n = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        self.ids.insert(s.to_string(), n);
        n
    }
}

/// `records` (already in timestamp order) with the records of one instant ordered by id: the
/// order the `Store` trait gives. A stable sort of nearly sorted input is about linear.
fn by_time_then_id(mut records: Vec<&UsageRecord>) -> Vec<&UsageRecord> {
    records.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
    records
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
        self.data().ids.values().map(FxHashMap::len).sum()
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
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        if std::mem::take(&mut self.writing) {
            self.shared.unlock_writer();
        }
    }
}

/// The sums and counts of `state` only: what can overflow in a merge, without copying its
/// latest id or distinct values.
fn sums_of(state: &BucketState) -> BucketState {
    BucketState {
        sum: state.sum,
        count: state.count,
        flagged_count: state.flagged_count,
        flagged_sum: state.flagged_sum,
        estimated_count: state.estimated_count,
        estimated_sum: state.estimated_sum,
        ..BucketState::default()
    }
}

impl Data {
    fn apply(&mut self, changes: &ChangeSet<'_>) -> Result<Vec<bool>> {
        // Validate first so that a failure leaves everything untouched: the only thing a merge
        // can fail on is a sum leaving the decimal range, so the sums alone are merged here
        // (no copy of a stored state, its latest id or its distinct values).
        let mut sums: FxHashMap<&BucketKey, BucketState> =
            FxHashMap::with_capacity_and_hasher(changes.merge.len(), rustc_hash::FxBuildHasher);
        for (key, _, delta) in &changes.merge {
            let state = sums
                .entry(key)
                .or_insert_with(|| self.buckets.get(key).map_or_else(BucketState::default, |b| sums_of(&b.1)));
            state.merge(&sums_of(delta))?;
        }
        for r in &changes.insert {
            // `delete` applies first: a replacement deletes and inserts one key in one change.
            if self.slot_of(&r.tenant, &r.id).is_some()
                && !changes.delete.iter().any(|(t, id)| *t == r.tenant && *id == r.id)
            {
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
        if let Some((key, _, _)) = changes.merge.iter().find(|(k, _, _)| self.removed.contains(&k.spec)) {
            // Another engine sharing the store removed a spec: it must reload and recompute.
            return Err(Error::new(
                ErrorKind::Store,
                format!("Rollup spec {} was removed by another writer; the change was not applied.", key.spec),
            )
            .with_retryable());
        }
        let all = self.specs.len() + changes.new_specs.len();
        if let Some(id) = changes.remove_specs.iter().find(|&&id| id as usize >= all) {
            return Err(Error::new(ErrorKind::Store, format!("There is no rollup spec {id} to remove.")));
        }
        // Commit.
        self.specs.extend(changes.new_specs.iter().cloned());
        if !changes.remove_specs.is_empty() {
            self.removed.extend(changes.remove_specs.iter().copied());
            let removed = &self.removed;
            self.buckets.retain(|k, _| !removed.contains(&k.spec));
            self.open.retain(|(_, _, k)| !removed.contains(&k.spec));
        }
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
            self.delete(tenant, id);
        }
        for r in &changes.insert {
            self.insert(r);
        }
        let mut late = Vec::with_capacity(changes.merge.len());
        for (key, end, delta) in &changes.merge {
            match self.buckets.get_mut(key) {
                Some(b) => {
                    late.push(b.2);
                    // Cannot fail: the same sums were merged above.
                    b.1.merge(delta)?;
                }
                None => {
                    late.push(false);
                    self.open.insert((key.tenant.clone(), *end, key.clone()));
                    let mut state = BucketState::default();
                    state.merge(delta)?;
                    self.buckets.insert(key.clone(), (*end, state, false));
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

    /// The slot of record `id` of `tenant`.
    fn slot_of(&self, tenant: &str, id: &str) -> Option<u32> {
        self.ids.get(tenant).and_then(|m| m.get(id)).copied()
    }

    /// The index entries of the record in `slot`: (by time, by subject).
    #[allow(clippy::type_complexity)]
    fn index_keys(
        &mut self,
        r: &UsageRecord,
        slot: u32,
    ) -> ((u32, u32, i64, u32, u32), (u32, u32, u32, i64, u32, u32)) {
        let (t, m, s) = (self.names.intern(&r.tenant), self.names.intern(&r.metric), self.names.intern(&r.subject));
        let (secs, nanos) = (r.timestamp.timestamp(), r.timestamp.timestamp_subsec_nanos());
        ((t, m, secs, nanos, slot), (t, m, s, secs, nanos, slot))
    }

    fn insert(&mut self, r: &UsageRecord) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(r.clone());
                slot
            }
            None => {
                self.slots.push(Some(r.clone()));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let (time, subject) = self.index_keys(r, slot);
        self.by_time.insert(time);
        self.by_subject.insert(subject);
        let ids = match self.ids.get_mut(r.tenant.as_str()) {
            Some(ids) => ids,
            None => self.ids.entry(r.tenant.clone()).or_default(),
        };
        ids.insert(r.id.clone(), slot);
    }

    fn delete(&mut self, tenant: &str, id: &str) {
        let Some(slot) = self.ids.get_mut(tenant).and_then(|m| m.remove(id)) else { return };
        if let Some(r) = self.slots[slot as usize].take() {
            let (time, subject) = self.index_keys(&r, slot);
            self.by_time.remove(&time);
            self.by_subject.remove(&subject);
        }
        self.free.push(slot);
    }

    fn record(&self, slot: u32) -> Option<&UsageRecord> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    /// The stored record of `tenant` (whose id map is `known`) and `id`, looked for first in slot
    /// `near`, then by hash; `near` becomes the slot after the one found. A batch re-sent in the
    /// order its records were stored finds them one slot after the other (neighbouring memory,
    /// no hash lookup). Exact: a live slot holding `tenant` and `id` is that key's only record.
    fn find_near(
        &self,
        known: &FxHashMap<String, u32>,
        tenant: &str,
        id: &str,
        near: &mut u32,
    ) -> Option<&UsageRecord> {
        let slot = match self.record(*near) {
            Some(r) if r.id == id && r.tenant == tenant => *near,
            _ => *known.get(id)?,
        };
        *near = slot.saturating_add(1);
        self.record(slot)
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

    fn removed_specs(&self) -> Result<Vec<u32>> {
        Ok(self.data().removed.iter().copied().collect())
    }

    /// Compared in place: a duplicate costs one hash lookup and one comparison, no copy. The
    /// lookup matched the tenant and the id already, so the comparison starts with the fields held
    /// in the record itself (timestamp, quantity, end) and reads the strings it points to last
    /// (each a cache miss in a large store).
    fn compare_stored(&self, tenant: &str, records: &[&UsageRecord]) -> Result<Vec<Option<bool>>> {
        let data = self.data();
        let Some(known) = data.ids.get(tenant) else { return Ok(vec![None; records.len()]) };
        let same = |s: &UsageRecord, r: &UsageRecord| {
            s.timestamp == r.timestamp
                && s.quantity == r.quantity
                && s.end == r.end
                && s.subject == r.subject
                && s.metric == r.metric
                && s.dimensions == r.dimensions
        };
        let mut near = 0;
        Ok(records.iter().map(|r| data.find_near(known, tenant, &r.id, &mut near).map(|s| same(s, r))).collect())
    }

    /// As [`compare_stored`](Store::compare_stored), in place: no record is built.
    fn compare_stored_refs(&self, tenant: &str, rows: &[RecordRef<'_>]) -> Result<Vec<Option<bool>>> {
        let data = self.data();
        let Some(known) = data.ids.get(tenant) else { return Ok(vec![None; rows.len()]) };
        let mut near = 0;
        Ok(rows.iter().map(|r| data.find_near(known, tenant, r.id, &mut near).map(|s| r.same_but_keys(s))).collect())
    }

    fn get_records(&self, tenant: &str, ids: &[&str]) -> Result<Vec<Option<UsageRecord>>> {
        let data = self.data();
        let Some(known) = data.ids.get(tenant) else { return Ok(vec![None; ids.len()]) };
        Ok(ids.iter().map(|id| known.get(*id).and_then(|&slot| data.record(slot)).cloned()).collect())
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
        let (Some(t), Some(m)) = (data.names.get(tenant), data.names.get(metric)) else { return Ok(Vec::new()) };
        let found: Vec<&UsageRecord> = match subject {
            Some(s) => {
                let Some(s) = data.names.get(s) else { return Ok(Vec::new()) };
                data.by_subject
                    .range((t, m, s, from, 0, 0)..(t, m, s, to, 0, 0))
                    .filter_map(|&(.., slot)| data.record(slot))
                    .collect()
            }
            None => data
                .by_time
                .range((t, m, from, 0, 0)..(t, m, to, 0, 0))
                .filter_map(|&(.., slot)| data.record(slot))
                .collect(),
        };
        Ok(by_time_then_id(found).into_iter().cloned().collect())
    }

    fn scan_metric(&self, metric: &str, f: &mut dyn FnMut(&UsageRecord) -> Result<()>) -> Result<()> {
        let data = self.data();
        let Some(m) = data.names.get(metric) else { return Ok(()) };
        // Tenants in name order, each tenant's records by timestamp then id.
        let mut tenants: Vec<(&str, u32)> =
            data.ids.keys().filter_map(|t| data.names.get(t).map(|n| (t.as_str(), n))).collect();
        tenants.sort_unstable();
        for (_, t) in tenants {
            let found: Vec<&UsageRecord> = data
                .by_time
                .range((t, m, i64::MIN, 0, 0)..=(t, m, i64::MAX, u32::MAX, u32::MAX))
                .filter_map(|&(.., slot)| data.record(slot))
                .collect();
            for r in by_time_then_id(found) {
                f(r)?;
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::MemoryStore;
    use crate::record::{RecordRef, UsageRecord};
    use crate::store::{ChangeSet, Store};

    fn record(tenant: &str, id: usize, q: u32) -> UsageRecord {
        let at = "2024-03-01T10:00:00Z".parse().unwrap();
        UsageRecord::new(tenant, format!("r{id}"), "s", "kwh", q.into(), at).with_dimension("k", "v")
    }

    proptest! {
        /// The in-place comparisons, which look in the slot after the previous find first, give
        /// what the stored records found by key give — through two tenants sharing ids,
        /// deletions and reused slots, and batches in any order.
        #[test]
        fn comparisons_equal_the_records_found_by_key(
            ops in proptest::collection::vec((proptest::bool::ANY, 0usize..2, 0usize..12, 0u32..2), 1..60),
            batch in proptest::collection::vec((0usize..2, 0usize..14, 0u32..2), 0..30),
        ) {
            let mut s = MemoryStore::new();
            for (insert, t, id, q) in ops {
                let tenant = ["a", "b"][t];
                let r = record(tenant, id, q);
                let change = if insert {
                    ChangeSet { insert: vec![&r], delete: vec![(tenant.to_string(), r.id.clone())], ..ChangeSet::default() }
                } else {
                    ChangeSet { delete: vec![(tenant.to_string(), r.id.clone())], ..ChangeSet::default() }
                };
                s.apply(&change).unwrap();
            }
            for tenant in ["a", "b"] {
                let records: Vec<UsageRecord> = batch.iter().map(|&(t, id, q)| record(["a", "b"][t], id, q)).collect();
                let mine: Vec<&UsageRecord> = records.iter().filter(|r| r.tenant == tenant).collect();
                let ids: Vec<&str> = mine.iter().map(|r| r.id.as_str()).collect();
                let expected: Vec<Option<bool>> = s.get_records(tenant, &ids).unwrap().iter().zip(&mine)
                    .map(|(found, r)| found.as_ref().map(|f| f.same_content(r))).collect();
                prop_assert_eq!(&s.compare_stored(tenant, &mine).unwrap(), &expected);
                let mut pairs = Vec::new();
                let rows = RecordRef::from_records(&mine, &mut pairs);
                prop_assert_eq!(&s.compare_stored_refs(tenant, &rows).unwrap(), &expected);
            }
        }
    }
}
