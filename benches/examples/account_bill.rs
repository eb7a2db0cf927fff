//! An account bill (issue 14, item 3): 100,000 records of 1,000 SIMs in SQLite, of which one
//! account of 10 SIMs holds 1 % (1,000 records, dimension `account`). Times, per bill (median
//! of 21 runs): the account billed as a set of subjects (`subjects`: one indexed read per SIM),
//! as a dimension filter (`filter`: the tenant's records of the period), one SIM alone, and the
//! whole tenant — all rated together under a graduated tariff. Before issue 14 an account bill
//! did not exist (records had to be re-labelled to one subject).
//!
//! `cargo run --release -p meterkit-benches --example account_bill -- [N]`

use std::time::Instant;

use chrono::{TimeZone, Utc};
use meterkit::{BillRequest, Decimal, Engine, Tariff, UsageRecord};
use meterkit_sqlite::SqliteStore;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(SqliteStore::open(dir.path().join("acct.db")).unwrap()).unwrap();
    let base = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap().timestamp();
    let records: Vec<UsageRecord> = (0..n)
        .map(|i| {
            let sim = i % 1000; // SIMs 0..9 are account "acct-1": 1 % of the records
            let at = Utc.timestamp_opt(base + (i as i64 * 7) % (30 * 86_400), 0).unwrap();
            UsageRecord::new("op", format!("r{i}"), format!("sim-{sim}"), "bytes", Decimal::from(1000 + i % 97), at)
                .with_dimension(
                    "account",
                    if sim < 10 { "acct-1".to_string() } else { format!("acct-{}", 2 + sim / 10) },
                )
        })
        .collect();
    for chunk in records.chunks(10_000) {
        engine.ingest(chunk).unwrap();
    }
    let tariff = Tariff::from_json(
        r#"{"currency":"USD","charges":[{"id":"data","type":"graduated","tiers":[{"up_to":"500000","rate":"0.00001"},{"rate":"0.000005"}]}]}"#,
    )
    .unwrap();
    let (from, to) = (Utc.timestamp_opt(base, 0).unwrap(), Utc.timestamp_opt(base + 31 * 86_400, 0).unwrap());
    let tenant = BillRequest::new("op", "", "bytes", from, to, "UTC");
    let sims: Vec<String> = (0..10).map(|s| format!("sim-{s}")).collect();
    let cases = [
        ("account as subjects (10 SIMs)", tenant.clone().with_subjects(sims.clone())),
        ("account as filter account=acct-1", tenant.clone().with_filter("account", "acct-1")),
        ("one SIM", BillRequest::new("op", "sim-3", "bytes", from, to, "UTC")),
        ("whole tenant", tenant.clone()),
    ];
    for (what, req) in &cases {
        let mut times: Vec<f64> = (0..21)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(engine.bill(&tariff, req).unwrap());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let bill = engine.bill(&tariff, req).unwrap();
        println!(
            "{what}: {:.2} ms median ({:.2}–{:.2}), total {} {}",
            times[10], times[0], times[20], bill.total, bill.currency
        );
    }
}
