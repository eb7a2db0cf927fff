//! One URDB tariff-year for profilers (callgrind, perf) and a quick timing: the load and tariff of
//! `benches/benches/urdb.rs` (8,760 hourly records of the real household, the real URDB record),
//! `Tariff::compare` with that one tariff `N` times (12 monthly bills each).
//!
//! `cargo run --release -p meterkit-benches --example urdb_year -- N [ZONE] [1000]` prints the
//! median and fastest time per tariff-year (and the first call's, which pays for every cold
//! cache) three ways, each run `N` times in turn:
//!
//! * `prepared`: `PreparedLoad::compare` with the one tariff on a load prepared once (the
//!   analogue of PySAM's `execute()` on a model whose 8,760-value load is already assigned);
//! * `bills`: `PreparedLoad::bills` (the 12 bills with every line's text);
//! * `records`: `Tariff::compare` from the 8,760 `UsageRecord`s (prepares the load every call);
//!
//! and `prepare`: `PreparedLoad::new` alone. ZONE is the bill's IANA zone (default `UTC`, as
//! PySAM's hour-of-year; `America/Chicago` tries a zone with DST transitions).
//!
//! `… -- N UTC 1000` also times `Tariff::compare` of 1,000 tariffs (the record with its rates
//! scaled by 0.5–1.5, as the criterion bench) against the same load, 5 runs.
//!
//! `… -- N UTC only-prepared` (or `only-bills`, `only-records`) times one way only (for
//! `scripts/bench-pysam`).
//!
//! Instructions per tariff-year, independent of the machine's load:
//! `valgrind --tool=callgrind --toggle-collect=urdb_year::one target/release/examples/urdb_year N`
//! (from the records; `urdb_year::one_prepared` for a prepared load; the `Ir` total / N; the
//! first of the N calls is included, so run N ≥ 20 for a steady figure).
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use meterkit::billing::compare::{Comparison, PreparedLoad};
use meterkit::{Bill, BillRequest, Tariff, UsageRecord};

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

/// One tariff-year on a prepared load: the 12 monthly totals.
#[inline(never)]
fn one_prepared(t: &Tariff, load: &PreparedLoad<'_>) -> Vec<Comparison> {
    load.compare([("real", t)])
}

/// One tariff-year's 12 bills with every line's text, on a prepared load.
#[inline(never)]
fn one_bills(t: &Tariff, load: &PreparedLoad<'_>) -> Vec<Bill> {
    load.bills(t).unwrap()
}

/// `PreparedLoad::new` of the year.
#[inline(never)]
fn prepare<'r>(req: &BillRequest, records: &'r [UsageRecord]) -> PreparedLoad<'r> {
    PreparedLoad::new(req, records).unwrap()
}

/// `(first, median, fastest)` in ms of `times` (ms, in run order).
fn stats(mut times: Vec<f64>) -> (f64, f64, f64) {
    let first = times.first().copied().unwrap_or_default();
    times.sort_by(f64::total_cmp);
    (first, times.get(times.len() / 2).copied().unwrap_or_default(), times.first().copied().unwrap_or_default())
}

/// `f` timed `n` times, in ms.
fn timed<T>(n: usize, mut f: impl FnMut() -> T) -> (Vec<f64>, Option<T>) {
    let mut times = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        last = Some(black_box(f()));
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    (times, last)
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
    let only = std::env::args().nth(3).unwrap_or_default();
    let records = load();
    assert_eq!(records.len(), 8760);
    let (a, b) =
        (Utc.with_ymd_and_hms(2018, 1, 1, 0, 0, 0).unwrap(), Utc.with_ymd_and_hms(2019, 1, 1, 0, 0, 0).unwrap());
    let req = BillRequest::new("t", "house", "kwh", a, b, zone.as_str());
    let tariff = Tariff::from_urdb_json(REAL).unwrap();
    if only == "1000" {
        thousand(&req, &records);
    }
    let year = |c: Option<Vec<Comparison>>| {
        let c = c.and_then(|v| v.into_iter().next());
        let total = c.as_ref().and_then(|c| c.total).map(|t| t.to_string()).unwrap_or_default();
        (c.as_ref().map_or(0, |c| c.periods.len()), total)
    };
    let show = |way: &str, times: Vec<f64>, bills: usize, total: &str| {
        let (first, median, fastest) = stats(times);
        println!(
            "urdb_year way={way} zone={zone} runs={n} first={first:.4} ms median={median:.4} ms fastest={fastest:.4} ms bills={bills} total={total}"
        );
    };
    if only == "only-bills" {
        let load = prepare(&req, &records);
        let (times, last) = timed(n, || one_bills(&tariff, black_box(&load)));
        let last = last.unwrap_or_default();
        let total: rust_decimal::Decimal = last.iter().map(|b| b.total).sum();
        show("bills", times, last.len(), &total.to_string());
        return;
    }
    if only != "only-records" {
        let (times, load) = timed(n, || prepare(&req, black_box(&records)));
        let load = load.unwrap();
        show("prepare", times, load.len(), "");
        let (times, last) = timed(n, || one_prepared(&tariff, black_box(&load)));
        let (bills, total) = year(last);
        show("prepared", times, bills, &total);
        if only != "only-prepared" {
            let (times, last) = timed(n, || one_bills(&tariff, black_box(&load)));
            let last = last.unwrap_or_default();
            let total: rust_decimal::Decimal = last.iter().map(|b| b.total).sum();
            show("bills", times, last.len(), &total.to_string());
        }
    }
    if only != "only-prepared" {
        let (times, last) = timed(n, || one(&tariff, &req, black_box(&records)));
        let (bills, total) = year(last);
        show("records", times, bills, &total);
    }
}
