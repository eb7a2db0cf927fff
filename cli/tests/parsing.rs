//! Issue 12, sections 4-6 through the `meterkit` command: silent corruption, double counts and
//! the promises of the CLI's flags. Each test fails on the code before its fix.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meterkit"))
}

fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().expect("meterkit runs");
    assert!(out.status.success(), "meterkit {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn fails(args: &[&str]) -> String {
    let out = bin().args(args).output().expect("meterkit runs");
    assert!(!out.status.success(), "meterkit {args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn counts(out: &Output) -> (u64, u64, u64) {
    let v = json(out);
    (v["accepted"].as_u64().unwrap(), v["duplicates"].as_u64().unwrap(), v["rejected"].as_u64().unwrap())
}

/// The sums of a rollup, as `subject → sum`.
fn sums(db: &str, tenant: &str, metric: &str, group: &str) -> Vec<(String, String)> {
    let out = run(&[
        "--db",
        db,
        "--tenant",
        tenant,
        "rollup",
        "--metric",
        metric,
        "--window",
        "year",
        "--tz",
        "UTC",
        "--group-by",
        group,
        "--output",
        "json",
    ]);
    let rows = json(&out);
    let mut v: Vec<(String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = r["group"][group].as_str().or(r["subject"].as_str()).unwrap_or("").to_string();
            (key, r["sum"].as_str().unwrap().to_string())
        })
        .collect();
    v.sort();
    v
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

fn ingest(db: &str, file: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--db", db, "ingest", file, "--output", "json"];
    args.extend(extra);
    bin().args(&args).output().unwrap()
}

#[test]
fn jsonl_refuses_invalid_utf8_at_its_line_and_accepts_a_bom() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let rec = |id: &str, subject: &[u8]| {
        let mut l = format!(r#"{{"id":"{id}","subject":""#).into_bytes();
        l.extend_from_slice(subject);
        l.extend_from_slice(br#"","metric":"kwh","quantity":"1","timestamp":"2024-01-01T00:00:00Z"}"#);
        l.push(b'\n');
        l
    };
    // Latin-1 Müller and Mýller: both were decoded to M\u{fffd}ller and merged.
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(rec("a", "Schmidt".as_bytes()));
    bytes.extend(rec("b", b"M\xfcller"));
    bytes.extend(rec("c", b"M\xfdller"));
    let file = write(dir.path(), "latin1.jsonl", &bytes);
    let out = ingest(db, &file, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(counts(&out), (1, 0, 2), "the BOM line is read; the two Latin-1 lines are refused");
    let err = stderr(&out);
    assert!(err.contains("latin1.jsonl:2: ") && err.contains("latin1.jsonl:3: "), "{err}");
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert!(!err.contains("latin1.jsonl:1:"), "{err}");
}

#[test]
fn jsonl_numbers_are_exact_and_ambiguous_text_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let line = |id: &str, q: &str| {
        format!(r#"{{"id":"{id}","subject":"s","metric":"kwh","quantity":{q},"timestamp":"2024-01-01T00:00:00Z"}}"#)
    };
    let text = [
        line("big", "12345678901234567890.5"),
        line("tiny", "5e-324"),
        line("places", "\"0.00000000000000000000000000001\""),
        line("underscore", "\"1_000\""),
        r#"{"id":"dup","subject":"s","metric":"kwh","quantity":"1","quantity":"9","timestamp":"2024-01-01T00:00:00Z"}"#
            .to_string(),
        r#"{"id":"dupdim","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-01-01T00:00:00Z","dimensions":{"c":"a","c":"b"}}"#
            .to_string(),
    ]
    .join("\n");
    let file = write(dir.path(), "n.jsonl", text.as_bytes());
    let out = ingest(db, &file, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(counts(&out), (1, 0, 5));
    let err = stderr(&out);
    for (line, what) in [
        (2, "28 decimal places"),
        (3, "28 decimal places"),
        (4, "1_000"),
        (5, "'quantity' appears twice"),
        (6, "'c' appears twice"),
    ] {
        let at = format!("n.jsonl:{line}: ");
        let l = err.lines().find(|l| l.contains(&at));
        assert!(l.is_some_and(|l| l.contains(what)), "line {line} should say {what}: {err}");
    }
    assert_eq!(sums(db, "default", "kwh", "subject"), vec![("s".to_string(), "12345678901234567890.5".to_string())]);
}

#[test]
fn clf_replays_are_duplicates_and_identical_requests_count_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let a = r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET /a HTTP/1.1" 200 100"#;
    let b = r#"1.2.3.4 - - [17/May/2015:10:05:04 +0000] "GET /b HTTP/1.1" 200 5"#;
    let c = r#"1.2.3.4 - - [17/May/2015:10:05:05 +0000] "GET /c HTTP/1.1" 200 200"#;
    // b twice: two identical requests in the same second.
    let first = write(dir.path(), "access.log.1", format!("{a}\n{b}\n{b}\n").as_bytes());
    let out = run(&["--db", db, "ingest", &first, "--format", "clf", "--output", "json"]);
    assert_eq!(counts(&out), (6, 0, 0));
    // The rotated log repeats the same lines at other positions, then a new one.
    let rotated = write(dir.path(), "access.log", format!("{c}\n{a}\n{b}\n{b}\n").as_bytes());
    let out = run(&["--db", db, "ingest", &rotated, "--format", "clf", "--output", "json"]);
    assert_eq!(counts(&out), (2, 6, 0));
    assert_eq!(sums(db, "default", "bytes", "subject"), vec![("1.2.3.4".to_string(), "310".to_string())]);
    assert_eq!(sums(db, "default", "requests", "subject"), vec![("1.2.3.4".to_string(), "4".to_string())]);
}

#[test]
fn csv_derived_ids_include_the_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let file = write(
        dir.path(),
        "sims.csv",
        b"ts,bytes,sim,carrier\n2024-01-01T00:00:00Z,100,sim-1,acme\n2024-01-01T00:00:00Z,7,sim-1,beta\n",
    );
    let flags = [
        "--timestamp-column",
        "ts",
        "--quantity-column",
        "bytes",
        "--subject-column",
        "sim",
        "--metric",
        "bytes",
        "--dimension-columns",
        "carrier",
    ];
    let out = ingest(db, &file, &flags);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(counts(&out), (2, 0, 0), "{}", stderr(&out));
    assert_eq!(counts(&ingest(db, &file, &flags)), (0, 2, 0));
    assert_eq!(
        sums(db, "default", "bytes", "carrier"),
        vec![("acme".to_string(), "100".to_string()), ("beta".to_string(), "7".to_string())]
    );
}

#[test]
fn strict_checks_every_record_and_conflict_before_storing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let ok = |id: &str, q: &str| {
        format!(r#"{{"id":"{id}","subject":"s","metric":"kwh","quantity":"{q}","timestamp":"2024-01-01T00:00:00Z"}}"#)
    };
    for (name, bad, at, what) in [
        ("empty.jsonl", r#"{"id":"x","subject":"","metric":"kwh","quantity":"1","timestamp":"2024-01-01T00:00:00Z"}"#.to_string(), 2, "subject is empty"),
        ("old.jsonl", r#"{"id":"x","subject":"s","metric":"kwh","quantity":"1","timestamp":"1600-01-01T00:00:00Z"}"#.to_string(), 2, "outside years"),
        ("end.jsonl", r#"{"id":"x","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-01-02T00:00:00Z","end":"2024-01-01T00:00:00Z"}"#.to_string(), 2, "before the timestamp"),
        ("conflict.jsonl", ok("a", "2"), 2, "conflicts with line 1"),
    ] {
        let file = write(dir.path(), name, format!("{}\n{bad}\n{}\n", ok("a", "1"), ok("b", "1")).as_bytes());
        let err = fails(&["--db", db, "ingest", &file, "--strict"]);
        assert!(err.contains(&format!("{name}:{at}: ")) && err.contains(what), "{name}: {err}");
    }
    // Nothing was stored by any of them.
    assert!(sums(db, "default", "kwh", "subject").is_empty());
}

#[test]
fn a_conflict_is_reported_at_the_conflicting_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let rec = |q: &str| {
        format!(r#"{{"id":"a","subject":"s","metric":"kwh","quantity":"{q}","timestamp":"2024-01-01T00:00:00Z"}}"#)
    };
    let file = write(dir.path(), "c.jsonl", format!("{}\n{}\n{}\n", rec("1"), rec("2"), rec("1")).as_bytes());
    let out = ingest(db, &file, &[]);
    assert_eq!(counts(&out), (1, 1, 1));
    let err = stderr(&out);
    assert!(err.contains("c.jsonl:2: record 'a'"), "{err}");
    assert!(!err.contains("c.jsonl:3:"), "{err}");
    // Across batches (one record each) the same.
    let db2 = dir.path().join("m2.db");
    let out = ingest(db2.to_str().unwrap(), &file, &["--batch-size", "1"]);
    assert_eq!(counts(&out), (1, 1, 1));
    let err = stderr(&out);
    assert!(err.contains("c.jsonl:2: record 'a'") && !err.contains("c.jsonl:3:"), "{err}");
}

#[test]
fn other_tenants_say_how_and_all_tenants_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let rec = |t: &str, q: &str| {
        format!(
            r#"{{"id":"r","tenant":"{t}","subject":"s","metric":"kwh","quantity":"{q}","timestamp":"2024-01-01T00:00:00Z"}}"#
        )
    };
    let no_tenant = r#"{"id":"n","subject":"s","metric":"kwh","quantity":"5","timestamp":"2024-01-01T00:00:00Z"}"#;
    let file =
        write(dir.path(), "t.jsonl", format!("{}\n{}\n{no_tenant}\n", rec("acme", "1"), rec("beta", "2")).as_bytes());
    let out = ingest(db, &file, &[]);
    assert_eq!(counts(&out), (1, 0, 2));
    let err = stderr(&out);
    assert!(err.contains("t.jsonl:1: ") && err.contains("--tenant acme") && err.contains("--all-tenants"), "{err}");
    let out = ingest(db, &file, &["--all-tenants"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(counts(&out), (2, 1, 0));
    assert_eq!(sums(db, "acme", "kwh", "subject"), vec![("s".to_string(), "1".to_string())]);
    assert_eq!(sums(db, "beta", "kwh", "subject"), vec![("s".to_string(), "2".to_string())]);
    assert_eq!(sums(db, "default", "kwh", "subject"), vec![("s".to_string(), "5".to_string())]);
}

#[test]
fn read_commands_refuse_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    let m = missing.to_str().unwrap();
    let err = fails(&["--db", m, "rollup", "--metric", "kwh", "--window", "day", "--tz", "UTC"]);
    assert!(err.contains("does not exist") && err.contains("--db"), "{err}");
    let tariff = write(
        dir.path(),
        "t.toml",
        b"currency = \"USD\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"1\"\n",
    );
    let err = fails(&[
        "--db",
        m,
        "bill",
        "--tariff",
        &tariff,
        "--metric",
        "kwh",
        "--subject",
        "s",
        "--period",
        "2024-01",
        "--tz",
        "UTC",
    ]);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!missing.exists(), "no empty database was created");
}

#[test]
fn bill_bounds_sub_second_and_impossible_periods() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let rec = |id: &str, q: &str, t: &str| {
        format!(r#"{{"id":"{id}","subject":"s","metric":"kwh","quantity":"{q}","timestamp":"{t}"}}"#)
    };
    let file = write(
        dir.path(),
        "b.jsonl",
        [rec("in", "2", "2024-03-01T00:00:00.5Z"), rec("early", "10", "2024-03-01T00:00:00.1Z")].join("\n").as_bytes(),
    );
    run(&["--db", db, "ingest", &file]);
    let tariff = write(
        dir.path(),
        "t.toml",
        b"currency = \"USD\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"1\"\n",
    );
    let out = run(&[
        "--db",
        db,
        "bill",
        "--tariff",
        &tariff,
        "--metric",
        "kwh",
        "--subject",
        "s",
        "--from",
        "2024-03-01T00:00:00.250Z",
        "--to",
        "2024-03-01T00:00:00.750Z",
        "--tz",
        "UTC",
        "--output",
        "json",
    ]);
    assert_eq!(json(&out)["total"], "2.00");
    for p in ["99999-01", "1600-01", "2024-13"] {
        let err = fails(&[
            "--db",
            db,
            "bill",
            "--tariff",
            &tariff,
            "--metric",
            "kwh",
            "--subject",
            "s",
            "--period",
            p,
            "--tz",
            "UTC",
        ]);
        assert!(err.contains(p), "{p}: {err}");
    }
}

#[test]
fn percentage_cycles_and_repeated_keys_in_tariffs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let file = write(
        dir.path(),
        "r.jsonl",
        br#"{"id":"r","subject":"s","metric":"kwh","quantity":"10","timestamp":"2024-03-02T00:00:00Z"}"#,
    );
    run(&["--db", db, "ingest", &file]);
    let cyclic = write(
        dir.path(),
        "cycle.toml",
        b"currency = \"USD\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"1\"\n\
          [[charges]]\nid = \"a\"\ntype = \"percentage\"\npercent = \"10\"\napplies_to = [\"e\", \"b\"]\n\
          [[charges]]\nid = \"b\"\ntype = \"percentage\"\npercent = \"10\"\napplies_to = [\"a\"]\n",
    );
    let bill =
        |t: &str| fails(&["--db", db, "bill", "--tariff", t, "--metric", "kwh", "--period", "2024-03", "--tz", "UTC"]);
    let err = bill(&cyclic);
    assert!(err.contains("a → b → a") && err.contains("cycle"), "{err}");
    let dup = write(
        dir.path(),
        "dup.json",
        b"{\"currency\":\"USD\",\n\"charges\":[{\"id\":\"e\",\"type\":\"per_unit\",\"rate\":\"1\",\"rate\":\"2\"}]}",
    );
    let err = bill(&dup);
    assert!(err.contains("dup.json:2") && err.contains("'rate' appears twice"), "{err}");
}

/// Issue 14, item 11: a repeat run of a JSON-lines file is answered chunk by chunk in place
/// (each line's content compared with the stored record, no record built). What it reports is
/// what the line-by-line way reports: duplicates; a conflict at its own line even when the key's
/// stored record came from an earlier chunk answered in place; the command's tenant for lines
/// without one; another tenant's lines refused, not counted as duplicates.
#[test]
fn a_repeat_run_is_answered_in_place_as_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let line = |i: u32, q: &str| {
        format!(
            r#"{{"id":"r{i}","subject":"s{}","metric":"kwh","quantity":"{q}","timestamp":"2024-01-01T{:02}:{:02}:00Z","dimensions":{{"k":"v"}}}}"#,
            i % 3,
            i / 60 % 24,
            i % 60
        )
    };
    // 5,000 lines, read in batches of 1,000 (one transaction each).
    let mut lines: Vec<String> = (0..5000).map(|i| line(i, "1")).collect();
    let file = write(dir.path(), "a.jsonl", lines.join("\n").as_bytes());
    let thousand = ["--batch-size", "1000"];
    assert_eq!(counts(&ingest(db, &file, &thousand)), (5000, 0, 0));
    let totals = sums(db, "default", "kwh", "subject");
    for extra in [&thousand[..], &["--batch-size", "7"], &[]] {
        let out = ingest(db, &file, extra);
        assert_eq!(counts(&out), (0, 5000, 0), "{}", stderr(&out));
    }
    assert_eq!(sums(db, "default", "kwh", "subject"), totals);
    // A conflict with a record of the first batch, alone or after a repeat of it.
    for (tail, counted, conflicting) in
        [(vec![line(10, "2")], (0, 5000, 1), 5001), (vec![line(10, "1"), line(10, "2")], (0, 5001, 1), 5002)]
    {
        let mut more = lines.clone();
        more.extend(tail);
        let file = write(dir.path(), "b.jsonl", more.join("\n").as_bytes());
        let out = ingest(db, &file, &thousand);
        assert_eq!(counts(&out), counted);
        let err = stderr(&out);
        assert!(err.contains(&format!("b.jsonl:{conflicting}: record 'r10'")) && err.lines().count() == 1, "{err}");
    }
    // The lines have no tenant: under another tenant they are new.
    assert_eq!(counts(&ingest(db, &file, &["--tenant", "other"])), (5000, 0, 0));
    assert_eq!(sums(db, "other", "kwh", "subject"), totals);
    // Lines naming their tenant: stored under it, refused under another, whatever is stored.
    lines.truncate(50);
    let named: Vec<String> = lines.iter().map(|l| l.replacen('{', r#"{"tenant":"acme","#, 1)).collect();
    let file = write(dir.path(), "c.jsonl", named.join("\n").as_bytes());
    assert_eq!(counts(&ingest(db, &file, &["--all-tenants"])), (50, 0, 0));
    assert_eq!(counts(&ingest(db, &file, &["--tenant", "acme"])), (0, 50, 0));
    let out = ingest(db, &file, &["--tenant", "other"]);
    assert_eq!(counts(&out), (0, 0, 50));
    assert!(stderr(&out).contains("c.jsonl:1: ") && stderr(&out).contains("--tenant acme"), "{}", stderr(&out));
}
