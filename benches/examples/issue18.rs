//! Issue 18's Rust rows in one run (called by `scripts/bench`, which writes `RESULTS.md`):
//!
//! * the record-path kernel (`Accumulator`), hourly Europe/London by carrier and region + daily
//!   per subject, and the heap bytes and allocations per bucket it holds;
//! * `Engine::ingest` in batches of 10,000 with the same two specs (idempotency included) into
//!   memory, a SQLite file (WAL) and PostgreSQL (one writer; when `METERKIT_PG_URL` is set);
//!   for each store, the share of the time spent inside the store (a timing wrapper around
//!   every `Store` call) and the store-only rate that implies; the SQLite file's bytes per
//!   stored record.
//!
//! `cargo run --release -p meterkit-benches --example issue18 -- [records]` prints one Markdown
//! table row per measurement: `| path | measured | goal | measured/goal |`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meterkit::store::{BucketKey, ChangeSet, StoredBucket};
use meterkit::{rollup::Accumulator, Engine, MemoryStore, Result, RollupSpec, Store, UsageRecord, Window};
use meterkit_benches::{synth, Synth};

/// Resident set size of this process, bytes (Linux `/proc/self/statm`; 0 elsewhere).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

const BATCH: usize = 10_000;

/// With `ISSUE18_PERF_CTL` set to perf's control fifo (`perf record -D -1 --control
/// fifo:PATH`), switch sampling on (`"enable"`) or off (`"disable"`): `scripts/bench` profiles
/// only the timed part of a row, not the building of its records.
fn perf(command: &str) {
    if let Some(path) = std::env::var_os("ISSUE18_PERF_CTL") {
        use std::io::Write;
        if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(path) {
            let _ = writeln!(fifo, "{command}");
            // perf reads the fifo asynchronously: give it a moment before the timed part starts.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn specs() -> [RollupSpec; 2] {
    [
        RollupSpec::new("bytes", Window::Hour, "Europe/London").unwrap().group_by(["carrier", "region"]),
        RollupSpec::new("bytes", Window::Day, "Europe/London").unwrap().group_by(["subject"]),
    ]
}

/// A store that adds the time of every call to `spent`.
struct Timed<S> {
    inner: S,
    spent: Arc<AtomicU64>,
}

/// Per store method: (calls, nanoseconds), printed with `ISSUE18_METHODS=1`.
static METHODS: std::sync::Mutex<Vec<(&'static str, u64, u64)>> = std::sync::Mutex::new(Vec::new());

impl<S> Timed<S> {
    fn time<T>(spent: &AtomicU64, name: &'static str, call: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let value = call();
        let ns = started.elapsed().as_nanos() as u64;
        spent.fetch_add(ns, Relaxed);
        let mut methods = METHODS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match methods.iter_mut().find(|e| e.0 == name) {
            Some(e) => {
                e.1 += 1;
                e.2 += ns;
            }
            None => methods.push((name, 1, ns)),
        }
        value
    }
}

fn print_methods() {
    if std::env::var_os("ISSUE18_METHODS").is_some() {
        let mut m = METHODS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        eprintln!(
            "{:?}",
            m.iter().map(|(n, c, ns)| format!("{n}: {c} calls {:.3} s", *ns as f64 / 1e9)).collect::<Vec<_>>()
        );
        m.clear();
    }
}

impl<S: Store> Store for Timed<S> {
    fn specs(&self) -> Result<Vec<RollupSpec>> {
        Self::time(&self.spent, "specs", || self.inner.specs())
    }
    fn removed_specs(&self) -> Result<Vec<u32>> {
        self.inner.removed_specs()
    }
    fn compare_stored(&self, tenant: &str, records: &[&UsageRecord]) -> Result<Vec<Option<bool>>> {
        Self::time(&self.spent, "compare_stored", || self.inner.compare_stored(tenant, records))
    }
    fn get_records(&self, tenant: &str, ids: &[&str]) -> Result<Vec<Option<UsageRecord>>> {
        Self::time(&self.spent, "get_records", || self.inner.get_records(tenant, ids))
    }
    fn records(&self, t: &str, m: &str, s: Option<&str>, from: i64, to: i64) -> Result<Vec<UsageRecord>> {
        Self::time(&self.spent, "records", || self.inner.records(t, m, s, from, to))
    }
    fn scan_metric(&self, metric: &str, f: &mut dyn FnMut(&UsageRecord) -> Result<()>) -> Result<()> {
        Self::time(&self.spent, "scan_metric", || self.inner.scan_metric(metric, f))
    }
    fn apply(&mut self, changes: &ChangeSet<'_>) -> Result<Vec<bool>> {
        Self::time(&self.spent.clone(), "apply", || self.inner.apply(changes))
    }
    fn buckets(&self, tenant: &str, spec: u32, from: i64, to: i64) -> Result<Vec<StoredBucket>> {
        Self::time(&self.spent, "buckets", || self.inner.buckets(tenant, spec, from, to))
    }
    fn bucket(&self, key: &BucketKey) -> Result<Option<StoredBucket>> {
        Self::time(&self.spent, "bucket", || self.inner.bucket(key))
    }
    fn open_buckets_until(&self, tenant: &str, cutoff: i64) -> Result<Vec<StoredBucket>> {
        Self::time(&self.spent, "open_buckets_until", || self.inner.open_buckets_until(tenant, cutoff))
    }
    fn mark_closed(&mut self, keys: &[BucketKey]) -> Result<()> {
        Self::time(&self.spent.clone(), "mark_closed", || self.inner.mark_closed(keys))
    }
    fn meta(&self, tenant: &str, key: &str) -> Result<Option<String>> {
        Self::time(&self.spent, "meta", || self.inner.meta(tenant, key))
    }
    fn meta_prefix(&self, tenant: &str, prefix: &str) -> Result<Vec<(String, String)>> {
        Self::time(&self.spent, "meta_prefix", || self.inner.meta_prefix(tenant, prefix))
    }
    fn exclusive(&mut self, on: bool) -> Result<()> {
        Self::time(&self.spent.clone(), "exclusive", || self.inner.exclusive(on))
    }
    fn begin_write(&mut self) -> Result<()> {
        Self::time(&self.spent.clone(), "begin_write", || self.inner.begin_write())
    }
    fn end_write(&mut self) -> Result<()> {
        Self::time(&self.spent.clone(), "end_write", || self.inner.end_write())
    }
}

fn row(path: &str, measured: f64, goal: f64, unit: &str, lower_is_better: bool, note: &str) {
    let ratio = if lower_is_better { goal / measured } else { measured / goal };
    let fmt = |v: f64| if v >= 1000.0 && unit == "rec/s" { format!("{:.0} k", v / 1000.0) } else { format!("{v:.1}") };
    println!("| {path} | {} {unit} | {} {unit} | **{ratio:.2}** | {note} |", fmt(measured), fmt(goal));
}

/// Ingest `records` in batches through a timed `store`: (records/s, store share of the time).
fn ingest<S: Store + 'static>(store: S, records: &[UsageRecord]) -> (f64, f64) {
    let spent = Arc::new(AtomicU64::new(0));
    let engine = Engine::new(Timed { inner: store, spent: spent.clone() }).unwrap();
    for s in specs() {
        engine.add_spec(s).unwrap();
    }
    spent.store(0, Relaxed);
    perf("enable");
    let t = Instant::now();
    for b in records.chunks(BATCH) {
        let r = engine.ingest(b).unwrap();
        assert_eq!(r.accepted as usize, b.len(), "every record is new");
    }
    let elapsed = t.elapsed();
    perf("disable");
    print_methods();
    let share = Duration::from_nanos(spent.load(Relaxed)).as_secs_f64() / elapsed.as_secs_f64();
    (records.len() as f64 / elapsed.as_secs_f64(), share)
}

/// The rows `main` can run alone (`issue18 [records] [row]`): `scripts/bench` profiles each
/// missed row in its own process, and runs `big` in its own process so that its peak RSS is its
/// own.
const ROWS: [&str; 5] = ["kernel", "memory", "sqlite", "pg", "big"];

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let only = std::env::args().nth(2);
    if let Some(row) = only.as_deref().filter(|r| !ROWS.contains(r)) {
        eprintln!("unknown row {row}: one of {ROWS:?}");
        std::process::exit(2);
    }
    if only.as_deref() == Some("big") {
        return big_row();
    }
    let days = ((30 * n) / 10_000_000).max(1) as u32;
    let data = synth(n, 10_000, days, 2024);
    let records: Vec<UsageRecord> = data.iter().map(Synth::record).collect();
    let run = |row: &str| only.as_deref().is_none_or(|o| o == row);
    if only.is_none() {
        println!("{n} records (the kernel rows: ISSUE18_KERNEL_RECORDS, default 10M), 10,000 subjects, 3 dimensions over {days} day(s) per 1M; two specs: hourly Europe/London by carrier+region, daily Europe/London per subject\n");
        println!("| path | measured | goal | measured/goal | note |\n|---|---|---|---|---|");
    }
    if only.as_deref() == Some("kernel") {
        kernel_rows(&records);
    }
    if run("memory") {
        let (rate, share) = ingest(MemoryStore::new(), &records);
        row("`Engine::ingest`, MemoryStore, batches of 10k", rate, 1e6, "rec/s", false, &store_note(rate, share));
    }
    if run("sqlite") {
        sqlite_rows(&records);
    }
    if run("pg") {
        pg_row(&records);
    }
    if only.is_none() {
        // The kernel at the 10M records (ISSUE18_KERNEL_RECORDS), and the 1M-bucket row,
        // each in its own process: neither holds the other's memory.
        let kernel = std::env::var("ISSUE18_KERNEL_RECORDS").unwrap_or_else(|_| "10000000".into());
        for args in [[kernel.as_str(), "kernel"], ["0", "big"]] {
            let exe = std::env::current_exe().expect("the benchmark's own path");
            let status = std::process::Command::new(exe).args(args).status().expect("a row's process");
            assert!(status.success(), "the {} row failed", args[1]);
        }
    }
}

fn kernel_rows(records: &[UsageRecord]) {
    let before = rss();
    perf("enable");
    let t = Instant::now();
    let mut acc = Accumulator::new("t", &specs()).unwrap();
    for r in records {
        acc.add(r).unwrap();
    }
    let rate = records.len() as f64 / t.elapsed().as_secs_f64();
    perf("disable");
    let buckets = acc.len() as f64;
    let bytes = rss().saturating_sub(before) as f64 / buckets;
    drop(acc);
    let note = format!("{} records", records.len());
    row("record-path kernel (`Accumulator`), 1 thread", rate, 10e6, "rec/s", false, &note);
    row(
        "memory per in-memory bucket (Accumulator, RSS growth / buckets)",
        bytes,
        64.0,
        "B",
        true,
        &format!("{buckets} buckets of {} records; an upper bound (allocator slack included)", records.len()),
    );
}

fn sqlite_rows(records: &[UsageRecord]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let (rate, share) = ingest(meterkit_sqlite::SqliteStore::open(&path).unwrap(), records);
    row("`Engine::ingest`, SQLite file (WAL), batches of 10k", rate, 500e3, "rec/s", false, &store_note(rate, share));
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum();
    row(
        "SQLite bytes per stored record (records + both rollups)",
        size as f64 / records.len() as f64,
        100.0,
        "B",
        true,
        "",
    );
}

fn pg_row(records: &[UsageRecord]) {
    match std::env::var("METERKIT_PG_URL") {
        Ok(url) => {
            let schema = format!("issue18_{}", std::process::id());
            let store =
                meterkit_postgres::PgStore::open_with(meterkit_postgres::PgOptions::new(url).schema(schema)).unwrap();
            let (rate, share) = ingest(store, records);
            row("PostgreSQL, one writer, batches of 10k", rate, 300e3, "rec/s", false, &store_note(rate, share));
        }
        Err(_) => println!("| PostgreSQL, one writer | not measured (METERKIT_PG_URL unset) | 300 k rec/s | – | |"),
    }
}

/// Peak resident set size of this process, bytes (Linux `VmHWM`; 0 elsewhere).
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// The "10M records into 1M buckets within 1 GB RSS": 10,000,000 records of 100,000
/// subjects over 10 days (10 per subject and day), built one at a time (never held), into one
/// daily-per-subject Europe/London spec: 1,000,000 buckets. The rows: this process's RSS growth
/// per bucket, and its peak RSS.
fn big_row() {
    const SUBJECTS: u64 = 100_000;
    const N: u64 = 10_000_000;
    let spec = RollupSpec::new("bytes", Window::Day, "Europe/London").unwrap().group_by(["subject"]);
    let before = rss();
    let mut acc = Accumulator::new("t", &[spec]).unwrap();
    let t = Instant::now();
    for i in 0..N {
        let (subject, k) = (i % SUBJECTS, i / SUBJECTS);
        let at = chrono::DateTime::from_timestamp(Synth::EPOCH + (k * 8640) as i64, 0).unwrap_or_default();
        let r = UsageRecord::new(
            "t",
            format!("r{i}"),
            format!("sim-{subject}"),
            "bytes",
            meterkit::Decimal::new(1 + (i % 997) as i64, 0),
            at,
        );
        acc.add(&r).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let buckets = acc.len();
    let peak = peak_rss() as f64;
    let per_bucket = rss().saturating_sub(before) as f64 / buckets as f64;
    row(
        "memory per in-memory bucket at 1M buckets (RSS growth / buckets)",
        per_bucket,
        64.0,
        "B",
        true,
        "the key (tenant, spec, window, subject) and the 64-byte state, with the map's slack",
    );
    row(
        "10M records into 1M buckets (`Accumulator`), peak RSS of the whole process",
        peak / 1e6,
        1000.0,
        "MB",
        true,
        &format!("{buckets} buckets, {secs:.1} s with building each record"),
    );
}

/// "store x% of the time → store alone y rec/s".
fn store_note(rate: f64, share: f64) -> String {
    format!("{:.0}% of the time inside the store; store alone ≈ {:.0} k rec/s", share * 100.0, rate / share / 1000.0)
}
