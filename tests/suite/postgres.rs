//! PostgreSQL: several engines with their own connections ingesting overlapping batches at once
//! give the buckets of one in-memory engine, byte for byte; a connection killed in the middle of
//! a batch leaves nothing of it, and the retried batch lands exactly once. Skipped with a message
//! without `METERKIT_PG_URL`; failed when `METERKIT_REQUIRE_PG=1`.

use std::sync::{Arc, Barrier};

use meterkit::{Aggregation, Engine, ErrorKind, Query, RollupSpec, UsageRecord, Window};
use meterkit_tests::{buckets_json, dec, fresh_schema, pg_store, pg_url};

/// A small deterministic generator (xorshift64*), so that the data set is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// Concurrent writers, each an engine with its own connection.
const WRITERS: usize = 8;

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const CARRIERS: [&str; 4] = ["ee", "o2", "three", "vodafone"];

/// `n` distinct records over 3 tenants, 60 subjects, 4 carriers and 6 days, with quantities of
/// varied scale (min, max, latest and unique counts all have work to do).
fn data_set(n: usize) -> Vec<UsageRecord> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let base = chrono::DateTime::parse_from_rfc3339("2024-03-28T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    (0..n)
        .map(|i| {
            let tenant = TENANTS[rng.below(3) as usize];
            let subject = format!("sim-{}", rng.below(60));
            let at = base + chrono::Duration::milliseconds(rng.below(6 * 86_400_000) as i64);
            let q = dec(&format!("{}.{:0width$}", rng.below(5000), rng.below(1000), width = 3 - (i % 3)));
            let mut r = UsageRecord::new(tenant, format!("r{i:07}"), subject, "bytes", q, at)
                .with_dimension("carrier", CARRIERS[rng.below(4) as usize]);
            if i % 17 == 0 {
                r.dimensions.remove("carrier");
            }
            r
        })
        .collect()
}

fn specs() -> Vec<RollupSpec> {
    vec![
        RollupSpec::new("bytes", Window::Day, "UTC")
            .unwrap()
            .group_by(["carrier"])
            .with(Aggregation::UniqueCount("subject".into())),
        RollupSpec::new("bytes", Window::Hour, "Europe/London").unwrap().group_by(["subject"]),
    ]
}

fn queries(tenant: &str) -> Vec<Query> {
    vec![
        Query::new(tenant, "bytes", Window::Day, "UTC").group_by(["carrier"]).unique("subject"),
        Query::new(tenant, "bytes", Window::Hour, "Europe/London").group_by(["subject"]),
    ]
}

fn answers(engine: &Engine) -> Vec<String> {
    TENANTS.iter().flat_map(|t| queries(t)).map(|q| buckets_json(&engine.query(&q).unwrap())).collect()
}

#[test]
fn eight_writers_with_overlapping_batches_count_every_record_once() {
    let Some(url) = pg_url("eight_writers_with_overlapping_batches_count_every_record_once") else { return };
    let n: usize =
        std::env::var("METERKIT_PG_CONCURRENCY_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let records = data_set(n);
    // Each record goes to one writer; 20 % of them also to a second writer (duplicates across
    // processes, arriving in different batches at different times).
    let mut rng = Rng(42);
    let mut shares: Vec<Vec<UsageRecord>> = vec![Vec::new(); WRITERS];
    for r in &records {
        let w = rng.below(WRITERS as u64) as usize;
        shares[w].push(r.clone());
        if rng.below(5) == 0 {
            shares[(w + 1 + rng.below(WRITERS as u64 - 1) as usize) % WRITERS].push(r.clone());
        }
    }
    let total: usize = shares.iter().map(Vec::len).sum();
    for share in &mut shares {
        rng.shuffle(share);
    }
    let schema = fresh_schema();
    // Every engine is opened before any spec exists; they all add the same specs at once.
    let engines: Vec<Engine> = (0..WRITERS).map(|_| Engine::new(pg_store(&url, &schema)).unwrap()).collect();
    let barrier = Arc::new(Barrier::new(WRITERS));
    let reports: Vec<(u64, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = engines
            .iter()
            .zip(&shares)
            .map(|(engine, share)| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    for spec in specs() {
                        engine.add_spec(spec).unwrap();
                    }
                    let (mut accepted, mut duplicates) = (0, 0);
                    for batch in share.chunks(10_000) {
                        let report = engine.ingest(batch).unwrap();
                        assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
                        accepted += report.accepted;
                        duplicates += report.duplicates;
                    }
                    (accepted, duplicates)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted: u64 = reports.iter().map(|r| r.0).sum();
    let duplicates: u64 = reports.iter().map(|r| r.1).sum();
    assert_eq!(accepted, n as u64, "every record accepted exactly once");
    assert_eq!(accepted + duplicates, total as u64);

    let single = Engine::in_memory();
    for spec in specs() {
        single.add_spec(spec).unwrap();
    }
    for batch in records.chunks(10_000) {
        single.ingest(batch).unwrap();
    }
    let expected = answers(&single);
    let fresh = Engine::new(pg_store(&url, &schema)).unwrap();
    assert_eq!(fresh.specs().len(), 2, "the racing add_spec calls stored each spec once");
    for (engine, who) in [(&fresh, "a new engine"), (&engines[3], "a writer")] {
        let got = answers(engine);
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                g == e,
                "{who}: buckets differ from the single in-memory engine's ({} vs {} bytes)",
                g.len(),
                e.len()
            );
        }
    }
    assert!(expected.iter().all(|e| e.len() > 1000), "the comparison is not vacuous");
}

fn kill(url: &str, pid: i32) {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let killed: bool = admin.query_one("SELECT pg_terminate_backend($1)", &[&pid]).unwrap().get(0);
    assert!(killed, "backend {pid} terminated");
}

#[test]
fn a_connection_killed_mid_batch_leaves_nothing_and_the_retry_lands_once() {
    let Some(url) = pg_url("a_connection_killed_mid_batch_leaves_nothing_and_the_retry_lands_once") else { return };
    let schema = fresh_schema();
    let batch = data_set(3_000);
    let mut store = pg_store(&url, &schema);
    let kill_url = url.clone();
    // After the records are written inside the batch's transaction, before the buckets.
    store.set_apply_hook(Box::new(move |pid| kill(&kill_url, pid)));
    let engine = Engine::new(store).unwrap();
    for spec in specs() {
        engine.add_spec(spec).unwrap();
    }
    let err = engine.ingest(&batch).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store, "{err}");
    assert!(!err.is_retryable(), "a lost connection is the host's to retry: {err}");

    let observer = Engine::new(pg_store(&url, &schema)).unwrap();
    let far = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let epoch = chrono::DateTime::UNIX_EPOCH;
    for t in TENANTS {
        assert!(observer.records(t, "bytes", None, epoch, far).unwrap().is_empty(), "no record of the failed batch");
    }
    assert!(answers(&observer).iter().all(|a| a == "[]"), "no bucket of the failed batch");

    // The same engine reconnects; the retried batch lands exactly once.
    let report = engine.ingest(&batch).unwrap();
    assert_eq!((report.accepted, report.duplicates), (3_000, 0));
    let again = engine.ingest(&batch).unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 3_000));
    let single = Engine::in_memory();
    for spec in specs() {
        single.add_spec(spec).unwrap();
    }
    single.ingest(&batch).unwrap();
    assert_eq!(answers(&observer), answers(&single));
    let stored: usize = TENANTS.iter().map(|t| observer.records(t, "bytes", None, epoch, far).unwrap().len()).sum();
    assert_eq!(stored, 3_000);
}

#[test]
fn a_retraction_racing_an_ingest_into_its_bucket_loses_nothing() {
    let Some(url) = pg_url("a_retraction_racing_an_ingest_into_its_bucket_loses_nothing") else { return };
    let schema = fresh_schema();
    let records = data_set(4_000);
    let (first, rest) = records.split_at(2_000);
    let a = Engine::new(pg_store(&url, &schema)).unwrap();
    for spec in specs() {
        a.add_spec(spec).unwrap();
    }
    a.ingest(first).unwrap();
    let b = Engine::new(pg_store(&url, &schema)).unwrap();
    let retracted: Vec<&UsageRecord> = first.iter().step_by(40).collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            for batch in rest.chunks(100) {
                b.ingest(batch).unwrap();
            }
        });
        for r in &retracted {
            a.retract(&r.tenant, &r.id).unwrap();
        }
    });
    let single = Engine::in_memory();
    for spec in specs() {
        single.add_spec(spec).unwrap();
    }
    single.ingest(&records).unwrap();
    for r in &retracted {
        single.retract(&r.tenant, &r.id).unwrap();
    }
    assert_eq!(answers(&Engine::new(pg_store(&url, &schema)).unwrap()), answers(&single));
}

/// Repeat runs in re-cut batches — each answered from the stored records and writing its probe
/// key alone (`PgStore` writes a change of metadata alone in one statement, without the specs'
/// lock) — racing a spec addition and a writer of new records: nothing is refused, lost or
/// counted twice; the buckets (the new spec's too) are those of one in-memory engine; the
/// batches are remembered, and a retraction still defeats what was remembered.
#[test]
fn repeat_runs_racing_a_spec_addition_and_new_records_lose_nothing() {
    use meterkit::Store as _;
    let Some(url) = pg_url("repeat_runs_racing_a_spec_addition_and_new_records_lose_nothing") else { return };
    let schema = fresh_schema();
    let records = data_set(24_000);
    let (old, new) = records.split_at(18_000);
    let first = Engine::new(pg_store(&url, &schema)).unwrap();
    first.add_spec(specs()[0].clone()).unwrap();
    for batch in old.chunks(2_000) {
        first.ingest(batch).unwrap();
    }
    // One tenant's stored records, cut at other places by each repeating engine (single-tenant
    // batches: the probe remembers them).
    let acme: Vec<UsageRecord> = old.iter().filter(|r| r.tenant == "acme").cloned().collect();
    let repeaters: Vec<Engine> = (0..3).map(|_| Engine::new(pg_store(&url, &schema)).unwrap()).collect();
    let (adder, writer) =
        (Engine::new(pg_store(&url, &schema)).unwrap(), Engine::new(pg_store(&url, &schema)).unwrap());
    let barrier = Arc::new(Barrier::new(repeaters.len() + 2));
    std::thread::scope(|s| {
        for (k, engine) in repeaters.iter().enumerate() {
            let (acme, barrier) = (&acme, barrier.clone());
            s.spawn(move || {
                barrier.wait();
                let (head, rest) = acme.split_at(300 * (k + 1));
                for batch in std::iter::once(head).chain(rest.chunks(1_000)) {
                    let report = engine.ingest(batch).unwrap();
                    assert_eq!((report.accepted, report.duplicates), (0, batch.len() as u64));
                    assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
                }
            });
        }
        let b = barrier.clone();
        s.spawn(move || {
            b.wait();
            adder.add_spec(specs()[1].clone()).unwrap();
        });
        barrier.wait();
        for batch in new.chunks(500) {
            let report = writer.ingest(batch).unwrap();
            assert_eq!(report.accepted, batch.len() as u64);
        }
    });
    let single = Engine::in_memory();
    for spec in specs() {
        single.add_spec(spec).unwrap();
    }
    single.ingest(&records).unwrap();
    let fresh = Engine::new(pg_store(&url, &schema)).unwrap();
    assert_eq!(answers(&fresh), answers(&single));
    let remembered = pg_store(&url, &schema).meta_prefix("acme", "batch/").unwrap();
    assert!(remembered.len() >= 3 * acme.len() / 1_000, "{} batches remembered", remembered.len());
    // A remembered batch again: all duplicates. After a retraction of one of its records, the
    // batch is checked record by record again: that record is accepted anew.
    let batch = &acme[300..1_300];
    let report = fresh.ingest(batch).unwrap();
    assert_eq!((report.accepted, report.duplicates), (0, 1_000));
    fresh.retract("acme", &batch[10].id).unwrap();
    let report = fresh.ingest(batch).unwrap();
    assert_eq!((report.accepted, report.duplicates), (1, 999));
    assert_eq!(answers(&fresh), answers(&single));
}
