//! Per-record ingest into a tenant with a monthly quota (issue 14, item 1): one record per
//! `Engine::ingest` call into SQLite, after 0, 20,000 and 40,000 records of the same subject
//! and month are stored, against the same tenant without a quota. Quota usage is maintained
//! incrementally, so the per-record time must not grow with the records already stored.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use meterkit::{quota::Quota, Decimal, Engine, UsageRecord, Window};
use meterkit_sqlite::SqliteStore;

fn record(n: u64) -> UsageRecord {
    let base = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap().timestamp();
    let at = Utc.timestamp_opt(base + (n as i64 % (28 * 86_400)), 0).unwrap();
    UsageRecord::new("hotspot", format!("p{n}"), "sim-1", "bytes", Decimal::from(1000 + n % 500), at)
}

fn engine_with(stored: u64, quota: bool, dir: &std::path::Path) -> Engine {
    let engine = Engine::new(SqliteStore::open(dir.join(format!("q{stored}-{quota}.db"))).unwrap()).unwrap();
    if quota {
        let limit: Decimal = "1000000000000".parse().unwrap();
        let q = Quota::new("cap", "hotspot", "bytes", Window::Month, "UTC", limit, vec![Decimal::from(80)]);
        engine.add_quota(q).unwrap();
    }
    let records: Vec<UsageRecord> = (0..stored).map(record).collect();
    for chunk in records.chunks(10_000) {
        engine.ingest(chunk).unwrap();
    }
    engine
}

fn per_record_ingest(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("quota_ingest_one_record");
    group.sample_size(20);
    for quota in [false, true] {
        for stored in [0u64, 20_000, 40_000] {
            let engine = engine_with(stored, quota, dir.path());
            let mut n = 1_000_000u64;
            let name = if quota { "monthly_quota" } else { "no_quota" };
            group.bench_with_input(BenchmarkId::new(name, stored), &stored, |b, _| {
                b.iter(|| {
                    n += 1;
                    black_box(engine.ingest(&[record(n)]).unwrap())
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, per_record_ingest);
criterion_main!(benches);
