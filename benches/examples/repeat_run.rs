//! A cron job's repeat run (issue 14, item 11): N API-request records (default 979,000, the
//! issue's count) are ingested into a store (`sqlite`, the default, `memory`, or a `postgres://` URL
//! of an empty database) in batches of
//! 10,000 with a monthly spec per portal, then sent again — every record a duplicate:
//!
//! * `same`: in the same batches (the batch probe answers each from one metadata read);
//! * `shifted`: in batches shifted by 5,000 records (the probe misses: every key is checked
//!   against the store — the cost of a duplicate when a job cuts its batches differently; each
//!   further shifted run cuts at another offset);
//! * `cold`: shifted again, from a second engine opened on the same store (a cron job's next
//!   process: no cache of the first engine helps);
//! * `text`: shifted again, each batch as the JSON text Node's `ingest` hands over
//!   (`JSON.stringify` of plain objects) through [`Engine::ingest_json`]; the texts are written
//!   before the clock starts (the core's share of Node's re-cut run).
//!
//! Prints each run and its cost per record, wall and CPU (and, with a PostgreSQL on this machine,
//! the server's CPU). The runs to make are the third
//! argument, comma-separated (default `same,shifted,cold`; a run may repeat, for profiles).
//!
//! `cargo run --release -p meterkit-benches --example repeat_run -- [N] [sqlite|memory|postgres://…] [runs]`

use std::collections::HashMap;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use meterkit::{Decimal, Engine, MemoryStore, RollupSpec, UsageRecord, Window};
use meterkit_sqlite::SqliteStore;

fn record(n: u64) -> UsageRecord {
    let base = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap().timestamp();
    let at = Utc.timestamp_opt(base + (n as i64 * 2) % (30 * 86_400), 0).unwrap();
    UsageRecord::new("api", format!("req-{n}"), format!("portal-{}", n % 40), "requests", Decimal::ONE, at)
        .with_dimension("status", if n.is_multiple_of(17) { "error" } else { "ok" })
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat` (Linux; 0 elsewhere):
/// the machine the figures come from is shared, so wall time alone overstates the cost.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after_name.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name and state.
    fields.get(10).zip(fields.get(11)).map_or(0.0, |(u, s)| (u + s) / 100.0)
}

/// CPU seconds (user + system) of each running `postgres` process on this machine, by process
/// id (the server's share of a run when the store is a local PostgreSQL; none when there is none
/// or no `/proc`); with `REPEAT_RUN_PG_PID` set to a postmaster's process id, of that server's
/// processes only (the postmaster and its children but autovacuum workers: other servers on a
/// shared machine are not counted, nor the vacuum of the first run's inserts, which starts at a
/// moment of its own).
fn server_cpu() -> HashMap<u32, f64> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return HashMap::new() };
    let only: Option<u32> = std::env::var("REPEAT_RUN_PG_PID").ok().and_then(|p| p.trim().parse().ok());
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        if only.is_some() && std::fs::read(e.path().join("cmdline")).ok()?.starts_with(b"postgres: autovacuum worker") {
            return None;
        }
        Some((pid, std::fs::read_to_string(e.path().join("stat")).ok()?))
    })
    .filter_map(|(pid, stat)| {
        let (head, rest) = stat.rsplit_once(')')?;
        head.contains("(postgres").then_some(())?;
        let f: Vec<f64> = rest.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        // The numbers after the name (the state, first, is not one): utime and stime 11th and 12th.
        let ppid: Option<u32> = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        only.is_none_or(|p| pid == p || ppid == Some(p)).then_some(())?;
        Some((pid, (f.get(10)? + f.get(11)?) / 100.0))
    })
    .collect()
}

/// The server CPU seconds used since `before` (a [`server_cpu`]): by the processes running now,
/// from 0 for one started since (a process that exited meanwhile, such as the backend of an
/// engine dropped at the start of the run, is not counted, rather than counted negative).
fn server_cpu_since(before: &HashMap<u32, f64>) -> f64 {
    server_cpu().iter().map(|(pid, now)| now - before.get(pid).copied().unwrap_or(0.0)).sum()
}

/// Send `records` to `engine` in batches of 10,000 after a first batch of `offset` records, and
/// print the run's cost.
fn run(engine: &Engine, records: &[UsageRecord], what: &str, offset: usize) {
    let n = records.len();
    let (t, cpu, server) = (Instant::now(), cpu_secs(), server_cpu());
    let (mut accepted, mut duplicates) = (0, 0);
    let (head, rest) = records.split_at(offset.min(n));
    for chunk in std::iter::once(head).filter(|h| !h.is_empty()).chain(rest.chunks(10_000)) {
        let r = engine.ingest(chunk).unwrap();
        accepted += r.accepted;
        duplicates += r.duplicates;
    }
    let s = t.elapsed().as_secs_f64();
    let (c, sc) = (cpu_secs() - cpu, server_cpu_since(&server));
    let per = |x: f64| x * 1e6 / n as f64;
    println!(
        "{what:<26}: {n} records in {s:.2} s wall ({:.3} µs/record), {c:.2} s CPU ({:.3} µs/record), \
         server {sc:.2} s CPU ({:.3} µs/record): {accepted} accepted, {duplicates} duplicates",
        per(s),
        per(c),
        per(sc)
    );
}

/// The JSON text `JSON.stringify` gives of records `batch` as plain objects (the Node bench's
/// shape: tenant first, timestamps with milliseconds).
fn js_text(batch: &[UsageRecord]) -> String {
    let objects: Vec<String> = batch
        .iter()
        .map(|r| {
            format!(
                r#"{{"tenant":"{}","id":"{}","subject":"{}","metric":"{}","quantity":"{}","timestamp":"{}","dimensions":{{"status":"{}"}}}}"#,
                r.tenant,
                r.id,
                r.subject,
                r.metric,
                r.quantity,
                r.timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                r.dimensions.get("status").map_or("", String::as_str)
            )
        })
        .collect();
    format!("[{}]", objects.join(","))
}

/// [`run`] of the batches as JSON texts through [`Engine::ingest_json`] (texts written first).
fn run_text(engine: &Engine, records: &[UsageRecord], what: &str, offset: usize) {
    let n = records.len();
    let (head, rest) = records.split_at(offset.min(n));
    let texts: Vec<String> =
        std::iter::once(head).filter(|h| !h.is_empty()).chain(rest.chunks(10_000)).map(js_text).collect();
    let (t, cpu) = (Instant::now(), cpu_secs());
    let (mut accepted, mut duplicates) = (0, 0);
    for text in &texts {
        let r = engine.ingest_json(None, text, |_| panic!("the fast reader reads these texts")).unwrap();
        accepted += r.accepted;
        duplicates += r.duplicates;
    }
    let s = t.elapsed().as_secs_f64();
    let c = cpu_secs() - cpu;
    let per = |x: f64| x * 1e6 / n as f64;
    println!(
        "{what:<26}: {n} records in {s:.2} s wall ({:.3} µs/record), {c:.2} s CPU ({:.3} µs/record): \
         {accepted} accepted, {duplicates} duplicates",
        per(s),
        per(c)
    );
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(979_000);
    let kind = std::env::args().nth(2).unwrap_or_else(|| "sqlite".into());
    let runs = std::env::args().nth(3).unwrap_or_else(|| "same,shifted,cold".into());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repeat.db");
    let memory = MemoryStore::new();
    let open = || match kind.as_str() {
        "memory" => Engine::new(memory.handle()).unwrap(),
        url if meterkit_postgres::is_postgres_url(url) => {
            Engine::new(meterkit_postgres::PgStore::open(url).unwrap()).unwrap()
        }
        _ => Engine::new(SqliteStore::open(&path).unwrap()).unwrap(),
    };
    let engine = open();
    println!("store: {kind}");
    let spec = RollupSpec::new("requests", Window::Month, "UTC").unwrap().group_by(["subject", "status"]);
    engine.add_spec(spec).unwrap();
    let records: Vec<UsageRecord> = (0..n).map(record).collect();
    run(&engine, &records, "first run", 0);
    // Each shifted run cuts its batches at another offset: a batch cut seen before would be
    // answered by the probe.
    let mut offsets = [5_000, 2_500, 7_500, 1_250, 3_750, 6_250, 8_750].into_iter().cycle();
    for what in runs.split(',') {
        match what {
            "same" => run(&engine, &records, "repeat run, same batches", 0),
            "shifted" => run(&engine, &records, "repeat run, shifted", offsets.next().unwrap_or(5_000)),
            "cold" => run(&open(), &records, "repeat run, new engine", offsets.next().unwrap_or(5_000)),
            "text" => run_text(&engine, &records, "repeat run, JSON text", offsets.next().unwrap_or(5_000)),
            other => eprintln!("unknown run {other} (same, shifted, cold, text)"),
        }
    }
}
