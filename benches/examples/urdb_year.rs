//! One URDB tariff-year for profilers (callgrind, perf) and a quick timing: the load and tariff of
//! `benches/benches/urdb.rs` (8,760 hourly records of the real household, the real URDB record),
//! `Tariff::compare` with that one tariff `N` times (12 monthly bills each).
//!
//! `cargo run --release -p meterkit-benches --example urdb_year -- N [ZONE]` prints the median and
//! fastest time per tariff-year (and the first call's, which pays for every cold cache). ZONE is
//! the bill's IANA zone (default `UTC`, as PySAM's hour-of-year; `America/Chicago` tries a zone
//! with DST transitions).
//!
//! `… -- N UTC 1000` also times `Tariff::compare` of 1,000 tariffs (the record with its rates
//! scaled by 0.5–1.5, as the criterion bench) against the same load, 5 runs.
//!
//! Instructions per tariff-year, independent of the machine's load:
//! `valgrind --tool=callgrind --toggle-collect=urdb_year::one target/release/examples/urdb_year N`
//! (the `Ir` total / N; the first of the N calls is included, so run N ≥ 20 for a steady figure).
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use meterkit::billing::compare::Comparison;
use meterkit::{BillRequest, Tariff, UsageRecord};

const REAL: &str = include_str!("../../tests/data/urdb/urdb-539f6a23ec4f024411ec8beb-south-central-ppd-lp1.json");
const LOAD: &str = include_str!("../../examples/data/uk-smart-meter-hourly.csv");

/// 2021's hourly kWh laid on the hours of 2018 (UTC), as the criterion bench.
fn load() -> Vec<UsageRecord> {
    let start = Utc.with_ymd_and_hms(2018, 1, 1, 0, 0, 0).unwrap();
    LOAD.lines()
        .filter(|l| l.starts_with("2021"))
        .enumerate()
        .map(|(h, l)| {
            let q = l.split(',').nth(1).unwrap().parse().unwrap();
            let at = start + chrono::Duration::hours(h as i64);
            UsageRecord::new("t", format!("h{h}"), "house", "kwh", q, at)
        })
        .collect()
}

/// One tariff-year: the 12 monthly bills of the year, by `Tariff::compare` with one tariff.
#[inline(never)]
fn one(t: &Tariff, req: &BillRequest, records: &[UsageRecord]) -> Vec<Comparison> {
    Tariff::compare([("real", t)], req, records).unwrap()
}

/// Scale every `rate` under `v` by `f` (6 decimals), as the criterion bench.
fn walk(v: &mut serde_json::Value, f: f64) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == "rate" {
                    *x = serde_json::json!((x.as_f64().unwrap() * f * 1e6).round() / 1e6);
                } else {
                    walk(x, f);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, f)),
        _ => {}
    }
}

/// 1,000 scaled tariffs against `records`: the median of 5 `Tariff::compare` calls.
fn thousand(req: &BillRequest, records: &[UsageRecord]) {
    let many: Vec<(String, Tariff)> = (0..1000)
        .map(|i| {
            let mut v: serde_json::Value = serde_json::from_str(REAL).unwrap();
            walk(&mut v, 0.5 + f64::from(i) / 1000.0);
            (format!("t{i}"), Tariff::from_urdb_json(&v.to_string()).unwrap())
        })
        .collect();
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            black_box(Tariff::compare(many.iter().map(|(n, t)| (n.as_str(), t)), req, records).unwrap());
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("compare 1000 tariffs: median={:.4} s fastest={:.4} s", times[2], times[0]);
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let zone = std::env::args().nth(2).unwrap_or_else(|| "UTC".into());
    let records = load();
    assert_eq!(records.len(), 8760);
    let (a, b) =
        (Utc.with_ymd_and_hms(2018, 1, 1, 0, 0, 0).unwrap(), Utc.with_ymd_and_hms(2019, 1, 1, 0, 0, 0).unwrap());
    let req = BillRequest::new("t", "house", "kwh", a, b, zone.as_str());
    let tariff = Tariff::from_urdb_json(REAL).unwrap();
    if std::env::args().nth(3).as_deref() == Some("1000") {
        thousand(&req, &records);
    }
    let mut times = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        last = Some(black_box(one(&tariff, &req, black_box(&records))));
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let first = times.first().copied().unwrap_or_default();
    times.sort_by(f64::total_cmp);
    let (median, fastest) = (times.get(n / 2).copied().unwrap_or_default(), times.first().copied().unwrap_or_default());
    let c = last.and_then(|v| v.into_iter().next());
    let total = c.as_ref().and_then(|c| c.total).map(|t| t.to_string()).unwrap_or_default();
    let months = c.as_ref().map_or(0, |c| c.periods.len());
    println!(
        "urdb_year zone={zone} runs={n} first={first:.4} ms median={median:.4} ms fastest={fastest:.4} ms bills={months} total={total}"
    );
}
