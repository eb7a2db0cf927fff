//! Issue 12, sections 1–3 through the `meterkit` command: an overflowing record is rejected at
//! its file:line while the rest is stored, one tenant's overflow never reaches another, flags are
//! checked before anything is ingested, and two processes share one SQLite file safely.

use std::path::Path;
use std::process::{Command, Output};

const MAX: &str = "79228162514264337593543950335";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meterkit"))
}

fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().expect("meterkit runs");
    assert!(out.status.success(), "meterkit {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// JSON lines of records `(id, subject, quantity, timestamp)` of metric kwh.
fn lines<'a>(records: impl Iterator<Item = (String, &'a str, &'a str, &'a str)>) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    for (id, subject, q, t) in records {
        let _ = writeln!(
            text,
            "{{\"id\":\"{id}\",\"subject\":\"{subject}\",\"metric\":\"kwh\",\"quantity\":\"{q}\",\"timestamp\":\"{t}\"}}"
        );
    }
    text
}

fn jsonl(dir: &Path, name: &str, records: &[(&str, &str, &str)]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, lines(records.iter().map(|(id, q, t)| ((*id).to_string(), "m", *q, *t)))).unwrap();
    path.to_str().unwrap().to_string()
}

fn ingest(db: &str, tenant: &str, file: &str) -> Output {
    bin().args(["--db", db, "--tenant", tenant, "ingest", file, "--output", "json"]).output().unwrap()
}

fn day_sums(db: &str, tenant: &str) -> Output {
    bin()
        .args(["--db", db, "--tenant", tenant, "rollup", "--metric", "kwh", "--window", "day", "--tz", "UTC"])
        .args(["--output", "json"])
        .output()
        .unwrap()
}

fn sums(out: &Output) -> Vec<String> {
    json(out).as_array().unwrap().iter().map(|b| b["sum"].as_str().unwrap().to_string()).collect()
}

/// A record that would overflow a stored bucket is rejected with its file:line; the rest of the
/// file (later batches too) is stored.
#[test]
fn an_overflowing_record_is_rejected_at_its_line_and_the_rest_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let first = jsonl(dir.path(), "first.jsonl", &[("big", MAX, "2024-01-01T00:00:00Z")]);
    assert!(ingest(db, "evil", &first).status.success());
    let spec = ["--db", db, "--tenant", "evil", "spec", "add", "--metric", "kwh", "--window", "day", "--tz", "UTC"];
    assert!(bin().args(spec).output().unwrap().status.success());
    assert_eq!(sums(&day_sums(db, "evil")), [MAX], "the rollup spec exists from here on");
    let second = jsonl(
        dir.path(),
        "second.jsonl",
        &[("a", "2", "2024-01-02T00:00:00Z"), ("one", "1", "2024-01-01T05:00:00Z"), ("b", "3", "2024-01-03T00:00:00Z")],
    );
    let out = bin()
        .args(["--db", db, "--tenant", "evil", "ingest", &second, "--output", "json", "--batch-size", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out), serde_json::json!({"accepted": 2, "duplicates": 0, "rejected": 1}));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("second.jsonl:2:") && err.contains("record 'one'") && err.contains("overflow"), "{err}");
    assert_eq!(sums(&day_sums(db, "evil")), [MAX, "2", "3"]);
}

/// Issue 12's case: `evil` stores 79228162514264337593543950335 and then 1 while no rollup
/// exists; every other tenant's first rollup still works, and `evil`'s fails with E_OVERFLOW
/// naming the record.
#[test]
fn one_tenants_overflow_never_breaks_another_tenants_rollup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let evil =
        jsonl(dir.path(), "evil.jsonl", &[("big", MAX, "2024-01-01T00:00:00Z"), ("one", "1", "2024-01-01T01:00:00Z")]);
    let good = jsonl(dir.path(), "good.jsonl", &[("g", "2.5", "2024-01-01T00:00:00Z")]);
    assert_eq!(json(&ingest(db, "evil", &evil))["accepted"], 2);
    assert_eq!(json(&ingest(db, "good", &good))["accepted"], 1);
    let out = day_sums(db, "good");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sums(&out), ["2.5"]);
    let out = day_sums(db, "evil");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("E_OVERFLOW") && err.contains("'one'"), "{err}");
    // Other windows too: the first rollup by month of `good` is not stopped by `evil`.
    let month = ["--db", db, "--tenant", "good", "rollup", "--metric", "kwh", "--window", "month", "--tz", "UTC"];
    assert!(run(&month).status.success());
}

/// `rollup --fill zero` refuses windows × groups beyond the bound before allocating.
#[test]
fn fill_zero_over_many_groups_is_refused_not_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let subjects: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
    let text = lines(subjects.iter().map(|s| (format!("r-{s}"), s.as_str(), "1", "2024-01-01T00:00:00Z")));
    let file = dir.path().join("many.jsonl");
    std::fs::write(&file, text).unwrap();
    assert!(ingest(db, "t", file.to_str().unwrap()).status.success());
    let out = bin()
        .args(["--db", db, "--tenant", "t", "rollup", "--metric", "kwh", "--window", "minutes:1", "--tz", "UTC"])
        .args(["--group-by", "subject", "--from", "2024-01-01T00:00:00Z", "--to", "2025-12-31T00:00:00Z"])
        .args(["--fill", "zero"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("E_INVALID_QUERY"), "{err}");
}

/// `report --shared-meter` with a huge flat count or a bad total is refused before the file is
/// ingested (the database is not even created).
#[test]
fn report_flags_are_checked_before_anything_is_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let file = jsonl(dir.path(), "in.jsonl", &[("a", "1", "2024-01-01T00:00:00Z")]);
    let tariff = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tariffs/flat.toml");
    let db = dir.path().join("m.db");
    for (flag, code) in
        [("kwh=90.5/4000000000", "E_INVALID_QUERY"), ("kwh=abc/4", "E_PARSE"), ("kwh=90.5/0", "E_PARSE")]
    {
        let out = bin()
            .args(["--db", db.to_str().unwrap(), "report", &file, "--tariff", tariff.to_str().unwrap()])
            .args(["--shared-meter", flag])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(code) && err.contains("shared-meter"), "{flag}: {err}");
        assert!(!db.exists(), "{flag}: nothing may be stored");
    }
}

/// Two `meterkit` processes on one SQLite file: an ingest in small batches while `rollup`s with
/// new windows run (each creates and backfills a spec). Nothing fails on the other's lock and
/// every window counts every record.
#[test]
fn a_rollup_with_a_new_window_during_an_ingest_counts_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let n = 20_000u32;
    let text = lines((0..n).map(|i| (format!("r{i}"), "m", "1", "2024-01-01T00:00:00Z")));
    let file = dir.path().join("big.jsonl");
    std::fs::write(&file, text).unwrap();
    // A spec from the start, so the ingest merges into buckets as it goes.
    assert!(ingest(db, "t", jsonl(dir.path(), "seed.jsonl", &[]).as_str()).status.success());
    let cycle = ["--db", db, "--tenant", "t", "rollup", "--metric", "kwh", "--tz", "UTC", "--output", "json"];
    run(&[&cycle[..], &["--window", "day"]].concat());
    let mut child = bin()
        .args(["--db", db, "--tenant", "t", "ingest", file.to_str().unwrap(), "--batch-size", "200"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let windows = ["cycle:5", "cycle:6", "cycle:7", "minutes:30", "hour", "week", "month", "cycle:9"];
    for w in windows {
        run(&[&cycle[..], &["--window", w]].concat());
    }
    assert!(child.wait().unwrap().success());
    for w in ["day"].iter().chain(&windows) {
        let out = run(&[&cycle[..], &["--window", w]].concat());
        let total: u64 = json(&out).as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).sum();
        assert_eq!(total, u64::from(n), "window {w} misses records");
    }
}
