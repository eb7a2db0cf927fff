//! Validation throughput: the streaming statistical rules over many records (target ≥ 5M
//! records/s per core) and one new reading checked against its history (target < 10 µs).
//!
//! `cargo bench -p meterkit-benches --bench validate -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use meterkit::{vee::ValidationConfig, Decimal, UsageRecord, Validator};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

/// `n` hourly records per series for `series` series, interleaved by hour: a daily profile with
/// pseudo-random noise (kWh with 3 decimals), and a spike every 997 records.
fn records(series: usize, n: usize) -> Vec<UsageRecord> {
    let mut state = 0x2545_f491_u64;
    let mut out = Vec::with_capacity(series * n);
    for h in 0..n {
        for s in 0..series {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let noise = ((state >> 33) % 200) as i64;
            let base = if (17..22).contains(&(h % 24)) { 1500 } else { 300 };
            let spike = if (h * series + s).is_multiple_of(997) { 20_000 } else { 0 };
            out.push(UsageRecord::new(
                "t",
                format!("r{s}-{h}"),
                format!("meter-{s}"),
                "kwh",
                Decimal::new(base + noise + spike, 3),
                t0() + Duration::hours(h as i64),
            ));
        }
    }
    out
}

fn validator() -> Validator {
    Validator::new([("kwh", ValidationConfig::default())]).unwrap().with_now(t0() + Duration::days(3650))
}

fn streaming(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate_stream");
    for (series, n) in [(1usize, 100_000usize), (1000, 100)] {
        let recs = records(series, n);
        g.throughput(Throughput::Elements(recs.len() as u64));
        g.bench_function(format!("{series}_series_x_{n}"), |b| {
            b.iter_batched(validator, |mut v| black_box(v.check_all(&recs)), BatchSize::LargeInput);
        });
    }
    g.finish();
}

fn single(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate_one");
    // A series with 8 weeks of hourly history (seasonal baseline ready), then one new value.
    let history = records(1, 24 * 56);
    let mut warm = validator();
    warm.check_all(&history);
    let next = UsageRecord::new("t", "next", "meter-0", "kwh", Decimal::new(95, 1), t0() + Duration::hours(24 * 56));
    g.bench_function("check_after_8_weeks", |b| {
        b.iter_batched(|| warm.clone(), |mut v| black_box(v.check(&next)), BatchSize::SmallInput);
    });
    // The field-app case: ten previous readings, one new reading typed in.
    let ten = records(1, 10);
    let mut app = validator();
    app.check_all(&ten);
    let typed = UsageRecord::new("t", "typed", "meter-0", "kwh", Decimal::new(3200, 3), t0() + Duration::hours(10));
    g.bench_function("check_after_10_readings", |b| {
        b.iter_batched(|| app.clone(), |mut v| black_box(v.check(&typed)), BatchSize::SmallInput);
    });
    g.finish();
}

criterion_group!(benches, streaming, single);
criterion_main!(benches);
