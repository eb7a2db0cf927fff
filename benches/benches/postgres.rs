//! PostgreSQL ingest throughput: `Engine::ingest` over `PgStore` in batches of 10,000 records with
//! a daily rollup grouped by carrier and an hourly rollup, from 1, 2 and 4 concurrent writers
//! (threads, each an engine with its own connection, disjoint records), compared in the same run
//! with `MemoryStore` and `SqliteStore` (a WAL file) from one writer.
//!
//! Needs `METERKIT_PG_URL` (e.g. from `source scripts/pg-server; pg_server_start`); prints a
//! message and measures only memory and SQLite without it. Each configuration uses a fresh schema.
//! Target (issue 8): >= 100k records/s from one writer, the server on the same 2-core machine.
//!
//!   METERKIT_PG_URL=postgres://… cargo bench -p meterkit-benches --bench postgres
//!   METERKIT_BENCH_BATCHES=20 …   # batches per writer (default 10)

use std::sync::{Arc, Barrier};
use std::time::Instant;

use chrono::{TimeZone, Utc};
use meterkit::{Decimal, Engine, MemoryStore, RollupSpec, Store, UsageRecord, Window};
use meterkit_postgres::{PgOptions, PgStore};
use meterkit_sqlite::SqliteStore;

const BATCH: usize = 10_000;

fn batch(writer: usize, seq: u64) -> Vec<UsageRecord> {
    let base = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap().timestamp();
    (0..BATCH as u64)
        .map(|i| {
            let n = seq * BATCH as u64 + i;
            let at = Utc.timestamp_opt(base + (n as i64 * 7 % (30 * 86_400)), 0).unwrap();
            UsageRecord::new(
                "bench",
                format!("w{writer}-r{n}"),
                format!("sim-{}", n % 10_000),
                "bytes",
                Decimal::new((n % 100_000) as i64, 3),
                at,
            )
            .with_dimension("carrier", ["acme", "globex", "initech"][(n % 3) as usize])
            .with_dimension("region", ["north", "south"][(n % 2) as usize])
        })
        .collect()
}

fn specs() -> [RollupSpec; 2] {
    [
        RollupSpec::new("bytes", Window::Day, "Europe/London").unwrap().group_by(["carrier"]),
        RollupSpec::new("bytes", Window::Hour, "UTC").unwrap(),
    ]
}

/// Records per second of `writers` engines (made by `open`) each ingesting `batches` batches at
/// once, after one warm-up batch each.
fn run(writers: usize, batches: u64, open: &(dyn Fn() -> Box<dyn Store> + Sync)) -> f64 {
    let engines: Vec<Engine> = (0..writers).map(|_| Engine::new(open()).unwrap()).collect();
    for spec in specs() {
        engines[0].add_spec(spec).unwrap();
    }
    let data: Vec<Vec<Vec<UsageRecord>>> = (0..writers).map(|w| (0..=batches).map(|s| batch(w, s)).collect()).collect();
    let barrier = Arc::new(Barrier::new(writers + 1));
    let elapsed = std::thread::scope(|scope| {
        for (engine, batches) in engines.iter().zip(&data) {
            let barrier = barrier.clone();
            scope.spawn(move || {
                engine.ingest(&batches[0]).unwrap(); // warm-up (and loads the new specs)
                barrier.wait();
                for b in &batches[1..] {
                    assert_eq!(engine.ingest(b).unwrap().accepted, BATCH as u64);
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let t = Instant::now();
        barrier.wait();
        t.elapsed()
    });
    (writers as u64 * batches * BATCH as u64) as f64 / elapsed.as_secs_f64()
}

fn main() {
    let batches: u64 = std::env::var("METERKIT_BENCH_BATCHES").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    println!(
        "ingest, batches of {BATCH} records, {batches} timed batches per writer, 2 rollups (day by carrier, hour)"
    );
    let memory = run(1, batches, &|| Box::new(MemoryStore::new()));
    println!("memory    1 writer : {memory:>9.0} records/s");
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    let sqlite = run(1, batches, &|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::new(SqliteStore::open(dir.path().join(format!("bench{i}.db"))).unwrap())
    });
    println!("sqlite    1 writer : {sqlite:>9.0} records/s  ({:.2} x memory)", sqlite / memory);
    let Ok(url) = std::env::var("METERKIT_PG_URL") else {
        println!("postgres: SKIPPED (set METERKIT_PG_URL to measure it)");
        return;
    };
    let pid = std::process::id();
    for writers in [1, 2, 4] {
        let schema = format!("bench_{pid}_{writers}");
        let rate = run(writers, batches, &|| {
            Box::new(PgStore::open_with(PgOptions::new(url.clone()).schema(schema.clone())).unwrap())
        });
        println!(
            "postgres  {writers} writer{}: {rate:>9.0} records/s  ({:.2} x memory, {:.2} x sqlite)",
            if writers == 1 { " " } else { "s" },
            rate / memory,
            rate / sqlite
        );
    }
}
