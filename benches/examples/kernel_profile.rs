//! A small, single-shot run of the rollup kernel or of engine ingest for profilers (callgrind,
//! perf): `cargo run --release -p meterkit-benches --example kernel_profile -- [kernel|engine|sqlite] 200000`
//! (`engine`: into a `MemoryStore`; `sqlite`: into a SQLite file in a temporary directory).
//! For instruction counts independent of the machine's load:
//! `valgrind --tool=callgrind --toggle-collect=kernel_profile::kernel --toggle-collect=kernel_profile::ingest target/release/examples/kernel_profile MODE N`
//! (the `Ir` total / N is the instructions per record of the measured part only).
//! It expands the records first, then runs the kernel (or ingests in batches of 10k) once and
//! prints the bucket count; compare the profile of `kernel`/`ingest` with the whole run to see
//! where the per-record time goes.

use meterkit::{rollup::Accumulator, Engine, RollupSpec, UsageRecord, Window};
use meterkit_benches::{synth, Synth};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "kernel".into());
    let n: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(200_000);
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
