//! Several engines over one store (what a PostgreSQL store shared by many app servers sees): a
//! spec added by another engine and a record inserted by another engine between an engine's read
//! and its write are refused by the store as retryable, and the engine redoes the batch.

use std::sync::{Arc, Mutex};

use meterkit::{
    store::BucketKey, store::ChangeSet, store::StoredBucket, Engine, Error, ErrorKind, MemoryStore, Query, RollupSpec,
    Store, UsageRecord, Window,
};
use meterkit_tests::{buckets_json, rec};

type Hook = Box<dyn FnMut() + Send>;

/// A `MemoryStore` shared by handles, with the checks a multi-process store makes in `apply`,
/// and a hook that runs once before the next `apply` (another process sneaking in).
#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<MemoryStore>>,
    hook: Arc<Mutex<Option<Hook>>>,
    refused: Arc<Mutex<u32>>,
}

impl Shared {
    fn new() -> Self {
        Shared { inner: Arc::default(), hook: Arc::default(), refused: Arc::default() }
    }
    fn store(&self) -> std::sync::MutexGuard<'_, MemoryStore> {
        self.inner.lock().unwrap()
    }
}

impl Store for Shared {
    fn specs(&self) -> meterkit::Result<Vec<RollupSpec>> {
        self.store().specs()
    }
    fn removed_specs(&self) -> meterkit::Result<Vec<u32>> {
        self.store().removed_specs()
    }
    fn get_records(&self, tenant: &str, ids: &[&str]) -> meterkit::Result<Vec<Option<UsageRecord>>> {
        self.store().get_records(tenant, ids)
    }
    fn records(
        &self,
        tenant: &str,
        metric: &str,
        subject: Option<&str>,
        from: i64,
        to: i64,
    ) -> meterkit::Result<Vec<UsageRecord>> {
        self.store().records(tenant, metric, subject, from, to)
    }
    fn scan_metric(
        &self,
        metric: &str,
        f: &mut dyn FnMut(&UsageRecord) -> meterkit::Result<()>,
    ) -> meterkit::Result<()> {
        self.store().scan_metric(metric, f)
    }
    fn apply(&mut self, changes: &ChangeSet<'_>) -> meterkit::Result<Vec<bool>> {
        let hook = self.hook.lock().unwrap().take();
        if let Some(mut hook) = hook {
            hook();
        }
        let mut store = self.store();
        let stale_specs = changes.known_specs.is_some_and(|k| (k as usize) < store.specs().unwrap().len());
        let ids: Vec<(&str, &str)> = changes.insert.iter().map(|r| (r.tenant.as_str(), r.id.as_str())).collect();
        let raced = ids.iter().any(|(t, id)| store.get_records(t, &[id]).unwrap()[0].is_some());
        if stale_specs || raced {
            *self.refused.lock().unwrap() += 1;
            return Err(Error::new(ErrorKind::Store, "concurrent writer").with_retryable());
        }
        store.apply(changes)
    }
    fn buckets(&self, tenant: &str, spec: u32, from: i64, to: i64) -> meterkit::Result<Vec<StoredBucket>> {
        self.store().buckets(tenant, spec, from, to)
    }
    fn bucket(&self, key: &BucketKey) -> meterkit::Result<Option<StoredBucket>> {
        self.store().bucket(key)
    }
    fn open_buckets_until(&self, tenant: &str, cutoff: i64) -> meterkit::Result<Vec<StoredBucket>> {
        self.store().open_buckets_until(tenant, cutoff)
    }
    fn mark_closed(&mut self, keys: &[BucketKey]) -> meterkit::Result<()> {
        self.store().mark_closed(keys)
    }
    fn meta(&self, tenant: &str, key: &str) -> meterkit::Result<Option<String>> {
        self.store().meta(tenant, key)
    }
    fn meta_prefix(&self, tenant: &str, prefix: &str) -> meterkit::Result<Vec<(String, String)>> {
        self.store().meta_prefix(tenant, prefix)
    }
}

fn batch(ids: std::ops::Range<u32>) -> Vec<UsageRecord> {
    ids.map(|i| rec("acme", &format!("r{i}"), "m1", "kwh", "1.5", &format!("2024-01-{:02}T10:00:00Z", 1 + i % 3)))
        .collect()
}

fn days(engine: &Engine) -> String {
    buckets_json(&engine.query(&Query::new("acme", "kwh", Window::Day, "UTC")).unwrap())
}

#[test]
fn a_spec_added_by_another_engine_is_loaded_and_fed() {
    let shared = Shared::new();
    let a = Engine::new(shared.clone()).unwrap();
    let b = Engine::new(shared.clone()).unwrap(); // opened before A adds the spec
    a.add_spec(RollupSpec::new("kwh", Window::Day, "UTC").unwrap()).unwrap();
    let report = b.ingest(&batch(0..9)).unwrap();
    assert_eq!(report.accepted, 9);
    assert_eq!(*shared.refused.lock().unwrap(), 1, "the store refused B's stale change once");
    assert_eq!(b.specs().len(), 1, "B reloaded the spec");
    // A reads the spec's buckets that B's ingest fed: 3 days x 3 records x 1.5 kWh.
    let single = Engine::in_memory();
    single.ingest(&batch(0..9)).unwrap();
    assert_eq!(days(&a), days(&single));
    assert!(days(&a).contains("\"sum\":\"4.5\""), "{}", days(&a));
}

#[test]
fn a_record_inserted_by_another_engine_mid_batch_counts_once() {
    let shared = Shared::new();
    let a = Engine::new(shared.clone()).unwrap();
    a.add_spec(RollupSpec::new("kwh", Window::Day, "UTC").unwrap()).unwrap();
    // Between A's read of the store and its write, "another process" ingests r3..r6.
    let other = shared.clone();
    *shared.hook.lock().unwrap() = Some(Box::new(move || {
        let b = Engine::new(Shared { hook: Arc::default(), ..other.clone() }).unwrap();
        assert_eq!(b.ingest(&batch(3..7)).unwrap().accepted, 4);
    }));
    let report = a.ingest(&batch(0..9)).unwrap();
    assert_eq!((report.accepted, report.duplicates), (5, 4), "the retry saw B's records as duplicates");
    assert_eq!(*shared.refused.lock().unwrap(), 1);
    let single = Engine::in_memory();
    single.ingest(&batch(0..9)).unwrap();
    assert_eq!(days(&a), days(&single), "no record counted twice");
}

#[test]
fn a_store_that_keeps_refusing_gives_the_error_after_bounded_attempts() {
    struct Busy(MemoryStore, Arc<std::sync::atomic::AtomicU32>);
    impl Store for Busy {
        fn specs(&self) -> meterkit::Result<Vec<RollupSpec>> {
            self.0.specs()
        }
        fn removed_specs(&self) -> meterkit::Result<Vec<u32>> {
            self.0.removed_specs()
        }
        fn get_records(&self, t: &str, ids: &[&str]) -> meterkit::Result<Vec<Option<UsageRecord>>> {
            self.0.get_records(t, ids)
        }
        fn records(&self, t: &str, m: &str, s: Option<&str>, f: i64, to: i64) -> meterkit::Result<Vec<UsageRecord>> {
            self.0.records(t, m, s, f, to)
        }
        fn scan_metric(
            &self,
            m: &str,
            f: &mut dyn FnMut(&UsageRecord) -> meterkit::Result<()>,
        ) -> meterkit::Result<()> {
            self.0.scan_metric(m, f)
        }
        fn apply(&mut self, _: &ChangeSet<'_>) -> meterkit::Result<Vec<bool>> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(Error::new(ErrorKind::Store, "serialization failure").with_retryable())
        }
        fn buckets(&self, t: &str, s: u32, f: i64, to: i64) -> meterkit::Result<Vec<StoredBucket>> {
            self.0.buckets(t, s, f, to)
        }
        fn bucket(&self, k: &BucketKey) -> meterkit::Result<Option<StoredBucket>> {
            self.0.bucket(k)
        }
        fn open_buckets_until(&self, t: &str, c: i64) -> meterkit::Result<Vec<StoredBucket>> {
            self.0.open_buckets_until(t, c)
        }
        fn mark_closed(&mut self, k: &[BucketKey]) -> meterkit::Result<()> {
            self.0.mark_closed(k)
        }
        fn meta(&self, t: &str, k: &str) -> meterkit::Result<Option<String>> {
            self.0.meta(t, k)
        }
        fn meta_prefix(&self, t: &str, p: &str) -> meterkit::Result<Vec<(String, String)>> {
            self.0.meta_prefix(t, p)
        }
    }
    let attempts = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let engine = Engine::new(Busy(MemoryStore::new(), attempts.clone())).unwrap();
    let err = engine.ingest(&batch(0..3)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.is_retryable());
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 16, "bounded attempts");
    assert_eq!(engine.records("acme", "kwh", None, rec_at("2024-01-01"), rec_at("2024-02-01")).unwrap().len(), 0);
}

fn rec_at(day: &str) -> chrono::DateTime<chrono::Utc> {
    meterkit_tests::ts(&format!("{day}T00:00:00Z"))
}
