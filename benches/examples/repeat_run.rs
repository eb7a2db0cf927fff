//! A cron job's repeat run (issue 14, item 11): N API-request records (default 979,000, the
//! issue's count) are ingested into SQLite in batches of 10,000 with a monthly spec per portal,
//! then the same batches are sent again — every record a duplicate — and the second run is timed.
//! Prints the first run, the repeat run and the repeat run's cost per record.
//!
//! `cargo run --release -p meterkit-benches --example repeat_run -- [N]`

use std::time::Instant;

use chrono::{TimeZone, Utc};
use meterkit::{Decimal, Engine, RollupSpec, UsageRecord, Window};
use meterkit_sqlite::SqliteStore;

fn record(n: u64) -> UsageRecord {
    let base = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap().timestamp();
    let at = Utc.timestamp_opt(base + (n as i64 * 2) % (30 * 86_400), 0).unwrap();
    UsageRecord::new("api", format!("req-{n}"), format!("portal-{}", n % 40), "requests", Decimal::ONE, at)
        .with_dimension("status", if n % 17 == 0 { "error" } else { "ok" })
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(979_000);
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(SqliteStore::open(dir.path().join("repeat.db")).unwrap()).unwrap();
    let spec = RollupSpec::new("requests", Window::Month, "UTC").unwrap().group_by(["subject", "status"]);
    engine.add_spec(spec).unwrap();
    let records: Vec<UsageRecord> = (0..n).map(record).collect();
    let run = |what: &str| {
        let t = Instant::now();
        let (mut accepted, mut duplicates) = (0, 0);
        for chunk in records.chunks(10_000) {
            let r = engine.ingest(chunk).unwrap();
            accepted += r.accepted;
            duplicates += r.duplicates;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{what}: {n} records in {s:.2} s ({:.3} µs/record): {accepted} accepted, {duplicates} duplicates",
            s * 1e6 / n as f64
        );
    };
    run("first run ");
    run("repeat run");
}
