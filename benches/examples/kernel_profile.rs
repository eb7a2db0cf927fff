//! A small, single-shot run of the rollup kernel or of engine ingest for profilers (callgrind,
//! perf): `cargo run --release -p meterkit-benches --example kernel_profile -- [kernel|engine|sqlite] 200000`
//! (`engine`: into a `MemoryStore`; `sqlite`: into a SQLite file in a temporary directory).
//! For instruction counts independent of the machine's load:
//! `valgrind --tool=callgrind --toggle-collect=kernel_profile::kernel --toggle-collect=kernel_profile::ingest --toggle-collect=kernel_profile::columnar target/release/examples/kernel_profile MODE N`
//! (the `Ir` total / N is the instructions per record of the measured part only).
//! It expands the records first, then runs the kernel (or ingests in batches of 10k) once and
//! prints the bucket count; compare the profile of `kernel`/`ingest` with the whole run to see
//! where the per-record time goes.

use meterkit::rollup::columnar::{ColumnBatch, ColumnarRollup, Quantities, StrColumn};
use meterkit::{rollup::Accumulator, Engine, RollupSpec, UsageRecord, Window};
use meterkit_benches::{synth, SplitMix, Synth};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "kernel".into());
    let n: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    if let Some(kind) = mode.strip_prefix("columnar-") {
        columnar_mode(kind, n);
        return;
    }
    // Same density as the benchmark: 10M records over 30 days, so n records cover 30*n/10M days.
    let days = ((30 * n) / 10_000_000).max(1) as u32;
    let data = synth(n, 10_000, days, 2024);
    let records: Vec<_> = data.iter().map(Synth::record).collect();
    let specs = [
        RollupSpec::new("bytes", Window::Hour, "Europe/London").unwrap().group_by(["carrier", "region"]),
        RollupSpec::new("bytes", Window::Day, "Europe/London").unwrap().group_by(["subject"]),
    ];
    if mode == "engine" || mode == "sqlite" {
        let dir = tempfile::tempdir().unwrap();
        let engine = if mode == "sqlite" {
            Engine::new(meterkit_sqlite::SqliteStore::open(dir.path().join("p.db")).unwrap()).unwrap()
        } else {
            Engine::in_memory()
        };
        for s in specs {
            engine.add_spec(s).unwrap();
        }
        ingest(&engine, &records);
        println!("{} records ingested", records.len());
    } else {
        let acc = kernel(&specs, &records);
        println!("{} records -> {} buckets", records.len(), acc.len());
    }
}

#[inline(never)]
fn kernel(specs: &[RollupSpec], records: &[UsageRecord]) -> Accumulator {
    let mut acc = Accumulator::new("t", specs).unwrap();
    for r in records {
        acc.add(r).unwrap();
    }
    acc
}

#[inline(never)]
fn ingest(engine: &Engine, records: &[UsageRecord]) {
    for batch in records.chunks(10_000) {
        engine.ingest(batch).unwrap();
    }
}

/// The data of `benches/python/bench.py` (1,000 tenants, sorted timestamps over `days` days from
/// 2024-01-01, quantities 0–4999 Wh) rolled up by `ColumnarRollup::run` on one thread.
/// `kind` is `hourly` or `daily`, with `-dict` for the tenant column as dictionary codes (what a
/// categorical column gives) instead of plain strings.
fn columnar_mode(kind: &str, n: usize) {
    let (kind, dict) = match kind.strip_suffix("-dict") {
        Some(k) => (k, true),
        None => (kind, false),
    };
    let (days, spec) = match kind {
        "hourly" => (30, RollupSpec::new("wh", Window::Hour, "UTC").unwrap()),
        _ => (365, RollupSpec::new("wh", Window::Day, "America/New_York").unwrap()),
    };
    let mut rng = SplitMix::new(42);
    // The benchmark's density (10M rows over `days` days): n rows span n/10M of that time.
    let span = (days * 86_400 * n as u64 / 10_000_000).max(3600);
    let mut ts: Vec<i64> = (0..n).map(|_| 1_704_067_200 + rng.below(span) as i64).collect();
    ts.sort_unstable();
    let names: Vec<String> = (0..1000).map(|i| format!("t{i:04}")).collect();
    let codes: Vec<u32> = (0..n).map(|_| rng.below(1000) as u32).collect();
    let tenants: Vec<Option<&str>> = codes.iter().map(|&c| Some(names[c as usize].as_str())).collect();
    let values: Vec<&str> = names.iter().map(String::as_str).collect();
    let wh: Vec<i64> = (0..n).map(|_| rng.below(5000) as i64).collect();
    let batches: Vec<ColumnBatch<'_>> = (0..n)
        .step_by(65_536)
        .map(|lo| {
            let r = lo..(lo + 65_536).min(n);
            ColumnBatch {
                metric: StrColumn::Const(Some("wh")),
                tenant: if dict {
                    StrColumn::Dict { values: &values, codes: &codes[r.clone()] }
                } else {
                    StrColumn::Plain(&tenants[r.clone()])
                },
                subject: StrColumn::Const(Some("s")),
                timestamps: &ts[r.clone()],
                nanos: None,
                ends: None,
                quantities: Quantities::Scaled { mantissas: &wh[r], scale: 0 },
                ids: None,
                dimensions: vec![],
            }
        })
        .collect();
    let buckets = columnar(&spec, &batches);
    println!("{n} rows -> {buckets} buckets");
}

#[inline(never)]
fn columnar(spec: &RollupSpec, batches: &[ColumnBatch<'_>]) -> usize {
    ColumnarRollup::run(std::slice::from_ref(spec), batches, 1).unwrap().len()
}
