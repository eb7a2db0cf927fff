//! URDB tariffs (targets from issue 15):
//! * one year of hourly load (8,760 records) under one URDB tariff, 12 monthly bills: at least
//!   50× faster than PySAM's `Utilityrate5.execute()` (≈ 11 ms per tariff-year), so < 0.22 ms;
//! * comparing 1,000 tariffs against one load (`Tariff::compare`): < 0.5 s on one core.
//!
//! The load is the real household of `examples/data/uk-smart-meter-hourly.csv` (2021's 8,760
//! hours laid on 2018 in UTC, as `tests/pysam/oracle.py` does); the tariff is the real record in
//! `tests/data/urdb/` (kWh/kW energy tiers on a shared ladder, seasonal tiered flat demand), and
//! the 1,000 tariffs are it with its energy and demand rates scaled by 0.5–1.5.
//! `benches/python/pysam_bench.py` times PySAM on the same load in the same run.
//!
//! Run: `cargo bench -p meterkit-benches --bench urdb -- --warm-up-time 1 --measurement-time 3`.
#![allow(missing_docs)]

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use meterkit::{BillRequest, Tariff, UsageRecord};

const REAL: &str = include_str!("../../tests/data/urdb/urdb-539f6a23ec4f024411ec8beb-south-central-ppd-lp1.json");
const LOAD: &str = include_str!("../../examples/data/uk-smart-meter-hourly.csv");

/// 2021's hourly kWh laid on the hours of 2018 (UTC).
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

fn request() -> BillRequest {
    let (a, b) =
        (Utc.with_ymd_and_hms(2018, 1, 1, 0, 0, 0).unwrap(), Utc.with_ymd_and_hms(2019, 1, 1, 0, 0, 0).unwrap());
    BillRequest::new("t", "house", "kwh", a, b, "UTC")
}

/// Scale every `rate` under `v` by `f` (6 decimals).
fn walk(v: &mut serde_json::Value, f: f64) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == "rate" {
                    let r = (x.as_f64().unwrap() * f * 1e6).round() / 1e6;
                    *x = serde_json::json!(r);
                } else {
                    walk(x, f);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, f)),
        _ => {}
    }
}

/// The real record with every `rate` scaled by `f`.
fn scaled(f: f64) -> Tariff {
    let mut v: serde_json::Value = serde_json::from_str(REAL).unwrap();
    walk(&mut v, f);
    Tariff::from_urdb_json(&v.to_string()).unwrap()
}

fn urdb(c: &mut Criterion) {
    let records = load();
    assert_eq!(records.len(), 8760);
    let req = request();
    let real = Tariff::from_urdb_json(REAL).unwrap();
    let many: Vec<(String, Tariff)> =
        (0..1000).map(|i| (format!("t{i}"), scaled(0.5 + f64::from(i) / 1000.0))).collect();
    let mut g = c.benchmark_group("urdb");
    g.sample_size(10);
    g.bench_function("one_tariff_year_12_bills", |b| {
        b.iter(|| black_box(Tariff::compare([("real", &real)], &req, black_box(&records)).unwrap()));
    });
    g.bench_function("compare_1000_tariffs_one_load", |b| {
        b.iter(|| {
            let ranked = Tariff::compare(many.iter().map(|(n, t)| (n.as_str(), t)), &req, &records).unwrap();
            black_box(ranked)
        });
    });
    g.finish();
}

criterion_group!(benches, urdb);
criterion_main!(benches);
