//! Per-record ingest into a tenant with a quota (issue 14, items 1 and 3): one record per
//! `Engine::ingest` call into SQLite after 0, 20,000 and 40,000 records of the tenant are stored,
//! with a per-subject monthly quota, a pooled account quota over 10 subjects, and none. Prints the
//! median of 200 calls per case (the "before": 0.08 ms → 9.1 ms → 25 ms per record from
//! Node with a per-subject quota).
//!
//! `cargo run --release -p meterkit-benches --example quota_ingest`

use std::time::Instant;

use chrono::{TimeZone, Utc};
use meterkit::{quota::Quota, Decimal, Engine, UsageRecord, Window};
use meterkit_sqlite::SqliteStore;

fn record(n: u64) -> UsageRecord {
    let base = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap().timestamp();
    let at = Utc.timestamp_opt(base + (n as i64 % (28 * 86_400)), 0).unwrap();
    UsageRecord::new("hotspot", format!("p{n}"), format!("sim-{}", n % 10), "bytes", Decimal::from(1000 + n % 500), at)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let limit: Decimal = "1000000000000".parse().unwrap();
    for case in ["none", "per-subject", "pooled-set"] {
        for stored in [0u64, 20_000, 40_000] {
            let engine =
                Engine::new(SqliteStore::open(dir.path().join(format!("{case}-{stored}.db"))).unwrap()).unwrap();
            let q = Quota::new("cap", "hotspot", "bytes", Window::Month, "UTC", limit, vec![Decimal::from(80)]);
            match case {
                "per-subject" => engine.add_quota(q).unwrap(),
                "pooled-set" => {
                    engine.add_quota(q.with_subjects((0..10).map(|i| format!("sim-{i}"))).pooled()).unwrap();
                }
                _ => {}
            }
            let records: Vec<UsageRecord> = (0..stored).map(record).collect();
            for chunk in records.chunks(10_000) {
                engine.ingest(chunk).unwrap();
            }
            let mut times: Vec<f64> = (0..200u64)
                .map(|i| {
                    let r = record(1_000_000 + i);
                    let t = Instant::now();
                    engine.ingest(std::slice::from_ref(&r)).unwrap();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!("quota {case:<11} stored {stored:>6}: median {:.3} ms per record", times[100]);
        }
    }
}
