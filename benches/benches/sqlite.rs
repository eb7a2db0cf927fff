//! SQLite ingest throughput: `Engine::ingest` over `SqliteStore` in batches of 10,000 records,
//! with one daily rollup grouped by carrier maintained in the same transaction.
//! Target (foundation issue): >= 200k records/s.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use meterkit::{Decimal, Engine, RollupSpec, UsageRecord, Window};
use meterkit_sqlite::SqliteStore;

const BATCH: usize = 10_000;

fn batch(seq: u64) -> Vec<UsageRecord> {
    let base = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap().timestamp();
    (0..BATCH as u64)
        .map(|i| {
            let n = seq * BATCH as u64 + i;
            let at = Utc.timestamp_opt(base + (n as i64 % (30 * 86_400)), 0).unwrap();
            UsageRecord::new(
                "bench",
                format!("r{n}"),
                format!("sim-{}", n % 10_000),
                "bytes",
                Decimal::new((n % 100_000) as i64, 3),
                at,
            )
            .with_dimension("carrier", ["acme", "globex", "initech"][(n % 3) as usize])
            .with_dimension("region", ["north", "south"][(n % 2) as usize])
            .with_dimension("direction", ["up", "down"][(n / 2 % 2) as usize])
        })
        .collect()
}

fn sqlite_ingest(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(SqliteStore::open(dir.path().join("bench.db")).unwrap()).unwrap();
    engine.add_spec(RollupSpec::new("bytes", Window::Day, "Europe/London").unwrap().group_by(["carrier"])).unwrap();
    let mut seq = 0u64;
    let mut group = c.benchmark_group("sqlite");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.bench_function("ingest_batch_10k_file_wal", |b| {
        b.iter_batched(
            || {
                seq += 1;
                batch(seq)
            },
            |records| black_box(engine.ingest(&records).unwrap()),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, sqlite_ingest);
criterion_main!(benches);
