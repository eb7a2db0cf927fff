//! Streaming validation throughput in records per CPU-second of the validating thread (Linux:
//! `/proc/thread-self/schedstat`; elsewhere wall-clock time), which stays meaningful on a busy
//! shared machine where criterion's wall-clock figures do not:
//! `cargo run -p meterkit --release --example validate_throughput`.
//! Same data as `benches/benches/validate.rs`.

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use meterkit::{vee::ValidationConfig, Decimal, UsageRecord, Validator};

fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

fn main() {
    let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    for series in [1usize, 1000] {
        let mut state = 0x2545_f491_u64;
        let mut recs = Vec::new();
        for h in 0..100_000 / series {
            for s in 0..series {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let noise = ((state >> 33) % 200) as i64;
                let base = if (17..22).contains(&(h % 24)) { 1500 } else { 300 };
                let spike = if (h * series + s).is_multiple_of(997) { 20_000 } else { 0 };
                recs.push(UsageRecord::new(
                    "t",
                    format!("r{s}-{h}"),
                    format!("meter-{s}"),
                    "kwh",
                    Decimal::new(base + noise + spike, 3),
                    t0 + Duration::hours(h as i64),
                ));
            }
        }
        let mut rates = Vec::new();
        for _ in 0..21 {
            let mut v = Validator::new([("kwh", ValidationConfig::default())])
                .expect("default config")
                .with_now(t0 + Duration::days(36_500));
            let (cpu, wall) = (cpu_ns(), Instant::now());
            let findings = v.check_all(&recs);
            let secs = match (cpu, cpu_ns()) {
                (Some(a), Some(b)) => (b - a) as f64 / 1e9,
                _ => wall.elapsed().as_secs_f64(),
            };
            std::hint::black_box(findings);
            rates.push(recs.len() as f64 / secs / 1e6);
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{series} series x {} records: {:.2} M records per CPU-second (median of 21; min {:.2}, max {:.2})",
            100_000 / series,
            rates[10],
            rates[0],
            rates[20]
        );
    }
}
