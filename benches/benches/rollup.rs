//! Rollup throughput: the in-memory incremental rollup kernel (`Accumulator`) and
//! `Engine::ingest` on the in-memory store.
//!
//! Data: 10 million synthetic records (10k subjects, dimensions carrier/region/direction,
//! timestamps over 30 days from 2024-03-01 — across the UK's DST change — mostly in time order,
//! decimal quantities with 0-3 fractional digits) are generated once, deterministically, in a
//! compact 24-byte form (240 MB; ten million full `UsageRecord`s would take ~8 GB). Each timed
//! iteration processes one 1M-record chunk (the iterations rotate through the ten chunks); the
//! chunk is expanded to `UsageRecord`s before the clock starts and dropped after it stops, and so
//! is the accumulator/engine the iteration produced. Samples: 10, flat sampling (one iteration per
//! sample), so `Throughput::Elements(1_000_000)` makes criterion report records/s.
//!
//! Specs (both in Europe/London): hourly grouped by [carrier, region] and daily grouped by
//! [subject].
//!
//! Before the benchmarks run, the memory per bucket of the accumulator is printed (see
//! [`bucket_bytes`] for how it is computed), and the kernel is run once over all ten million
//! records with both wall-clock and on-CPU time (`/proc/thread-self/stat`, Linux), because on a
//! shared machine wall-clock throughput understates what one core does.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use meterkit::{
    rollup::columnar::ColumnBatch, rollup::columnar::ColumnarRollup, rollup::columnar::Quantities,
    rollup::columnar::StrColumn, rollup::Accumulator, rollup::BucketState, rollup::Latest, store::BucketKey, Engine,
    RollupSpec, UsageRecord, Window,
};
use meterkit_benches::{synth, Synth};

const TOTAL: usize = 10_000_000;
const CHUNK: usize = 1_000_000;
const BATCH: usize = 10_000;
const SUBJECTS: u32 = 10_000;
const DAYS: u32 = 30;
const ZONE: &str = "Europe/London";

fn specs() -> Vec<RollupSpec> {
    vec![
        RollupSpec::new("bytes", Window::Hour, ZONE).unwrap().group_by(["carrier", "region"]),
        RollupSpec::new("bytes", Window::Day, ZONE).unwrap().group_by(["subject"]),
    ]
}

fn expand(chunk: &[Synth]) -> Vec<UsageRecord> {
    chunk.iter().map(Synth::record).collect()
}

fn kernel(records: &[UsageRecord]) -> Accumulator {
    let mut acc = Accumulator::new("t", &specs()).unwrap();
    for r in records {
        acc.add(r).unwrap();
    }
    acc
}

fn engine_with_specs() -> Engine {
    let engine = Engine::in_memory();
    for s in specs() {
        engine.add_spec(s).unwrap();
    }
    engine
}

fn ingest(engine: &Engine, records: &[UsageRecord]) {
    for batch in records.chunks(BATCH) {
        let report = engine.ingest(batch).unwrap();
        assert_eq!(report.accepted as usize, batch.len());
    }
}

/// Bytes held per bucket by an accumulator's output, computed (not sampled): the inline size of
/// each `(BucketKey, i64, BucketState)` entry, plus the heap capacity of its strings and vectors
/// (tenant, group values, latest id, unique sets — none here), plus the accumulator's hash index
/// (one `(u64, u32)` slot at hashbrown's 7/8 maximum load with its control byte, and the 4-byte
/// chain link). malloc's own per-allocation overhead (8-16 bytes on glibc) is not included; the
/// number of heap allocations per bucket is returned so it can be added.
fn bucket_bytes(entries: &[(BucketKey, i64, BucketState)]) -> (f64, f64) {
    let inline = std::mem::size_of::<(BucketKey, i64, BucketState)>();
    let index_slot = (std::mem::size_of::<(u64, u32)>() + 1) as f64 * 8.0 / 7.0 + 4.0;
    let mut heap = 0usize;
    let mut allocs = 0usize;
    for (key, _, state) in entries {
        heap += key.tenant.capacity();
        allocs += usize::from(key.tenant.capacity() > 0);
        heap += key.group.capacity() * std::mem::size_of::<Option<String>>();
        allocs += usize::from(key.group.capacity() > 0);
        for v in key.group.iter().flatten() {
            heap += v.capacity();
            allocs += usize::from(v.capacity() > 0);
        }
        if let Some(Latest { id, .. }) = &state.latest {
            heap += id.capacity();
            allocs += usize::from(id.capacity() > 0);
        }
        for (d, set) in &state.uniques {
            heap += d.capacity() + set.iter().map(|s| s.capacity() + 24).sum::<usize>();
        }
    }
    let n = entries.len().max(1) as f64;
    (inline as f64 + index_slot + heap as f64 / n, allocs as f64 / n)
}

fn report_memory(data: &[Synth]) {
    let records = expand(&data[..CHUNK]);
    let acc = kernel(&records);
    let entries = acc.into_buckets();
    let hourly = entries.iter().filter(|(k, _, _)| k.spec == 0).count();
    let daily = entries.len() - hourly;
    let (bytes, allocs) = bucket_bytes(&entries);
    println!(
        "rollup kernel on {CHUNK} records: {} buckets ({hourly} hourly carrier x region, {daily} daily per subject); \
         {bytes:.0} bytes per bucket (size_of + heap capacities + index slot, malloc overhead excluded; \
         {allocs:.1} heap allocations per bucket)",
        entries.len()
    );
}

/// User + system CPU time of this thread in seconds (Linux; `USER_HZ` = 100 assumed).
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn kernel_full_pass(data: &[Synth]) {
    let (mut wall, mut cpu, mut cpu_ok, mut buckets) = (Duration::ZERO, 0.0, true, 0usize);
    for chunk in data.chunks(CHUNK) {
        let records = expand(chunk);
        let (c0, t0) = (thread_cpu_secs(), Instant::now());
        let acc = black_box(kernel(black_box(&records)));
        wall += t0.elapsed();
        match (c0, thread_cpu_secs()) {
            (Some(a), Some(b)) => cpu += b - a,
            _ => cpu_ok = false,
        }
        buckets += acc.len();
    }
    let n = data.len() as f64;
    let cpu_text = if cpu_ok && cpu > 0.0 {
        format!("{cpu:.2} s on-CPU = {:.2} M records/s per core", n / cpu / 1e6)
    } else {
        "on-CPU time unavailable".to_string()
    };
    println!(
        "rollup kernel over all {} records (10 accumulators of 1M, {buckets} buckets): {:.2} s wall = {:.2} M records/s; {cpu_text}",
        data.len(),
        wall.as_secs_f64(),
        n / wall.as_secs_f64() / 1e6
    );
}

/// The same data as columns: Unix seconds, quantities as integers at scale 3, strings
/// dictionary-encoded (Arrow's layout). Built once, outside the timed code.
struct Columns {
    ts: Vec<i64>,
    mantissas: Vec<i64>,
    subjects: Vec<String>,
    subject_codes: Vec<u32>,
    carrier_codes: Vec<u32>,
    region_codes: Vec<u32>,
    direction_codes: Vec<u32>,
}

fn columns(data: &[Synth]) -> Columns {
    let pos = |values: &[&str], v: &str| values.iter().position(|x| *x == v).unwrap_or(0) as u32;
    Columns {
        ts: data.iter().map(|r| Synth::EPOCH + i64::from(r.offset_secs)).collect(),
        mantissas: data.iter().map(|r| i64::from(r.mantissa) * 10i64.pow(3 - u32::from(r.scale))).collect(),
        subjects: (0..SUBJECTS).map(|i| format!("sim-{i}")).collect(),
        subject_codes: data.iter().map(|r| r.subject).collect(),
        carrier_codes: data.iter().map(|r| pos(&meterkit_benches::CARRIERS, r.carrier())).collect(),
        region_codes: data.iter().map(|r| pos(&meterkit_benches::REGIONS, r.region())).collect(),
        direction_codes: data.iter().map(|r| u32::from(r.direction)).collect(),
    }
}

fn columnar_kernel(cols: &Columns, range: std::ops::Range<usize>) -> ColumnarRollup {
    let subjects: Vec<&str> = cols.subjects.iter().map(String::as_str).collect();
    let mut rollup = ColumnarRollup::new(&specs()).unwrap();
    rollup
        .add(&ColumnBatch {
            metric: StrColumn::Const(Some("bytes")),
            tenant: StrColumn::Const(Some("t")),
            subject: StrColumn::Dict { values: &subjects, codes: &cols.subject_codes[range.clone()] },
            timestamps: &cols.ts[range.clone()],
            nanos: None,
            ends: None,
            quantities: Quantities::Scaled { mantissas: &cols.mantissas[range.clone()], scale: 3 },
            ids: None,
            dimensions: vec![
                (
                    "carrier",
                    StrColumn::Dict { values: &meterkit_benches::CARRIERS, codes: &cols.carrier_codes[range.clone()] },
                ),
                (
                    "region",
                    StrColumn::Dict { values: &meterkit_benches::REGIONS, codes: &cols.region_codes[range.clone()] },
                ),
                (
                    "direction",
                    StrColumn::Dict { values: &meterkit_benches::DIRECTIONS, codes: &cols.direction_codes[range] },
                ),
            ],
        })
        .unwrap();
    rollup
}

fn columnar_full_pass(cols: &Columns) {
    let n = cols.ts.len();
    let (c0, t0) = (thread_cpu_secs(), Instant::now());
    let rollup = black_box(columnar_kernel(cols, 0..n));
    let wall = t0.elapsed();
    let cpu = match (c0, thread_cpu_secs()) {
        (Some(a), Some(b)) if b > a => {
            format!("{:.2} s on-CPU = {:.2} M records/s per core", b - a, n as f64 / (b - a) / 1e6)
        }
        _ => "on-CPU time unavailable".to_string(),
    };
    println!(
        "columnar kernel over all {n} records (one ColumnarRollup, {} buckets): {:.2} s wall = {:.2} M records/s; {cpu}",
        rollup.len(),
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64() / 1e6
    );
}

fn bench_rollup(c: &mut Criterion, data: &[Synth]) {
    let chunks: Vec<&[Synth]> = data.chunks(CHUNK).collect();
    let next = AtomicUsize::new(0);
    let mut group = c.benchmark_group("rollup");
    group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(CHUNK as u64));

    group.bench_function("kernel_accumulator_1M", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let records = expand(chunks[next.fetch_add(1, Ordering::Relaxed) % chunks.len()]);
                let start = Instant::now();
                let acc = black_box(kernel(black_box(&records)));
                total += start.elapsed();
                drop(acc);
            }
            total
        });
    });

    // Diagnostic: the same kernel on input that stays in cache (10k records, added 100 times,
    // about 6.3k buckets). The 1M-record runs above read every record cold from ~1 GB of heap
    // (strings and a BTreeMap per record); the difference is what that costs.
    let hot = expand(&chunks[0][..BATCH]);
    group.bench_function("kernel_accumulator_hot_10k_records_x100", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let mut acc = Accumulator::new("t", &specs()).unwrap();
                for _ in 0..CHUNK / BATCH {
                    for r in black_box(&hot) {
                        acc.add(r).unwrap();
                    }
                }
                total += start.elapsed();
                drop(black_box(acc));
            }
            total
        });
    });

    let cols = columns(data);
    group.bench_function("kernel_columnar_1M", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let i = next.fetch_add(1, Ordering::Relaxed) % chunks.len();
                let start = Instant::now();
                let rollup = black_box(columnar_kernel(&cols, i * CHUNK..((i + 1) * CHUNK).min(data.len())));
                total += start.elapsed();
                drop(rollup);
            }
            total
        });
    });

    group.bench_function("engine_ingest_memory_1M_in_10k_batches", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let records = expand(chunks[next.fetch_add(1, Ordering::Relaxed) % chunks.len()]);
                let engine = engine_with_specs();
                let start = Instant::now();
                ingest(&engine, black_box(&records));
                total += start.elapsed();
                drop(engine);
            }
            total
        });
    });
    group.finish();
}

fn main() {
    let started = Instant::now();
    let data = synth(TOTAL, SUBJECTS, DAYS, 2024);
    println!("generated {TOTAL} synthetic records in {:.1?}", started.elapsed());
    report_memory(&data);
    kernel_full_pass(&data);
    let mut cols = columns(&data);
    columnar_full_pass(&cols);
    // The same rows in time order, as a meter or SIM stream usually arrives.
    let mut order: Vec<usize> = (0..cols.ts.len()).collect();
    order.sort_by_key(|&i| cols.ts[i]);
    let permute = |v: &[u32]| -> Vec<u32> { order.iter().map(|&i| v[i]).collect() };
    cols = Columns {
        ts: order.iter().map(|&i| cols.ts[i]).collect(),
        mantissas: order.iter().map(|&i| cols.mantissas[i]).collect(),
        subject_codes: permute(&cols.subject_codes),
        carrier_codes: permute(&cols.carrier_codes),
        region_codes: permute(&cols.region_codes),
        direction_codes: permute(&cols.direction_codes),
        subjects: cols.subjects,
    };
    print!("time-ordered input: ");
    columnar_full_pass(&cols);
    let mut c = Criterion::default().configure_from_args();
    bench_rollup(&mut c, &data);
    c.final_summary();
}
