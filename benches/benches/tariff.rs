//! Tariff benchmarks (targets from issue 3):
//! * rating 1M (subject, month) quantities with a 5-tier graduated tariff: ≥ 2M bills/s per core;
//! * a TOU + demand bill from a year of hourly data (8,760 intervals): < 1 ms.
//!
//! Run: `cargo bench -p meterkit-benches --bench tariff -- --warm-up-time 1 --measurement-time 3`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use meterkit::{BillRequest, Tariff, UsageRecord};
use rust_decimal::Decimal;

const GRADUATED: &str = r#"
currency = "USD"
[[charges]]
id = "energy"
type = "graduated"
tiers = [
  { up_to = "100", rate = "0.12" },
  { up_to = "250", rate = "0.10" },
  { up_to = "500", rate = "0.085" },
  { up_to = "1000", rate = "0.0725" },
  { rate = "0.061" },
]
"#;

const TOU_DEMAND: &str = r#"
currency = "USD"
time_zone = "America/Chicago"
[[charges]]
id = "customer"
type = "fixed"
amount = "25"
[[charges]]
id = "energy"
type = "time_of_use"
unit = "kWh"
periods = { offpeak = { rate = "0.061" }, peak = { tiers = [{ up_to = "500", rate = "0.15" }, { rate = "0.18" }] } }
[charges.schedule]
periods = ["offpeak", "peak"]
weekday = [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]]
weekend = [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]
holidays = ["2023-07-04", "2023-12-25"]
[[charges]]
id = "tou_demand"
type = "demand"
periods = { offpeak = { rate = "4.5" }, peak = { rate = "12.75" } }
[charges.schedule]
periods = ["offpeak", "peak"]
weekday = [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]]
[[charges]]
id = "flat_demand"
type = "demand"
tiers = [{ up_to = "10", rate = "8" }, { rate = "6.5" }]
[[charges]]
id = "tax"
type = "percentage"
percent = "6.25"
tax = true
"#;

/// Deterministic quantities 0.000–2,000.000 (a 64-bit LCG).
fn quantities(n: usize) -> Vec<Decimal> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            Decimal::new(((x >> 33) % 2_000_000) as i64, 3)
        })
        .collect()
}

fn graduated(c: &mut Criterion) {
    let rater = Tariff::from_toml(GRADUATED).unwrap().quantity_rater().unwrap();
    let qs = quantities(1_000_000);
    let mut g = c.benchmark_group("tariff");
    g.sample_size(10);
    g.throughput(Throughput::Elements(qs.len() as u64));
    g.bench_function("graduated_5_tier_1M_ratings", |b| {
        b.iter(|| {
            let mut total = Decimal::ZERO;
            for q in &qs {
                total += rater.total(black_box(*q)).unwrap();
            }
            total
        });
    });
    g.finish();
}

fn tou_demand(c: &mut Criterion) {
    let tariff = Tariff::from_toml(TOU_DEMAND).unwrap();
    let start = Utc.with_ymd_and_hms(2023, 1, 1, 6, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2024, 1, 1, 6, 0, 0).unwrap();
    let records: Vec<UsageRecord> = (0..8760)
        .map(|h| {
            let q = Decimal::new((h * 7919) % 4000 + 100, 3);
            UsageRecord::new("t", format!("h{h}"), "meter-1", "kwh", q, start + chrono::Duration::hours(h))
        })
        .collect();
    let req = BillRequest::new("t", "meter-1", "kwh", start, end, "America/Chicago");
    let bill = tariff.bill(&req, &records).unwrap();
    eprintln!("TOU + demand bill: {} lines, total {} {}", bill.lines.len(), bill.total, bill.currency);
    let mut g = c.benchmark_group("tariff");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("tou_demand_bill_8760_hourly", |b| {
        b.iter(|| tariff.bill(black_box(&req), black_box(&records)).unwrap());
    });
    g.finish();
}

criterion_group!(benches, graduated, tou_demand);
criterion_main!(benches);
