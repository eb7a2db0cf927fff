//! The subcommands that give the CLI every capability of the core (docs/bindings.md's CLI
//! column): each asserted by its real outcome through the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;

use rust_decimal::Decimal;

fn run_in(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meterkit")).arg("--db").arg(db).args(args).output().expect("meterkit runs")
}

fn ok(db: &str, args: &[&str]) -> String {
    let out = run_in(db, args);
    assert!(out.status.success(), "meterkit {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("JSON output")
}

fn jsonl(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(json).collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn rec(id: &str, subject: &str, qty: &str, ts: &str) -> String {
    format!(r#"{{"id":"{id}","subject":"{subject}","metric":"kwh","quantity":"{qty}","timestamp":"{ts}"}}"#)
}

/// A database with three records of `kwh`: a (10), b (5) of subject s1, c (7) of s2.
fn setup() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db").to_str().unwrap().to_string();
    let lines = [
        rec("a", "s1", "10", "2024-01-01T00:00:00Z"),
        rec("b", "s1", "5", "2024-01-01T01:00:00Z"),
        rec("c", "s2", "7", "2024-01-02T00:00:00Z"),
    ];
    let file = write(dir.path(), "in.jsonl", &(lines.join("\n") + "\n"));
    let out = json(&ok(&db, &["ingest", file.to_str().unwrap(), "--output", "json"]));
    assert_eq!(out["accepted"], 3);
    (dir, db)
}

fn ids(db: &str) -> Vec<String> {
    jsonl(&ok(db, &["records", "--metric", "kwh"])).iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn records_lists_the_stored_records_in_a_range() {
    let (_dir, db) = setup();
    assert_eq!(ids(&db), ["a", "b", "c"]);
    let some = jsonl(&ok(
        &db,
        &["records", "--metric", "kwh", "--from", "2024-01-01T01:00:00Z", "--to", "2024-01-02T00:00:00Z"],
    ));
    assert_eq!(some.len(), 1);
    assert_eq!((some[0]["id"].as_str(), some[0]["quantity"].as_str()), (Some("b"), Some("5")));
    let s2 = jsonl(&ok(&db, &["records", "--metric", "kwh", "--subject", "s2"]));
    assert_eq!(s2.len(), 1);
}

#[test]
fn retract_removes_a_record_from_records_and_rollups() {
    let (dir, db) = setup();
    let file = write(dir.path(), "gone.jsonl", &(rec("b", "s1", "5", "2024-01-01T01:00:00Z") + "\n"));
    let out = json(&ok(&db, &["retract", file.to_str().unwrap()]));
    assert_eq!(out["retracted"], 1);
    assert_eq!(ids(&db), ["a", "c"]);
    let rows = json(&ok(&db, &["rollup", "--metric", "kwh", "--window", "month", "--tz", "UTC", "--output", "json"]));
    assert_eq!(rows[0]["sum"], "17");
    // Again: b is not stored any more, and the error names the file and line.
    let again = run_in(&db, &["retract", file.to_str().unwrap()]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("gone.jsonl:1") && err.contains("'b'"), "{err}");
}

#[test]
fn replace_revises_a_record_and_history_keeps_the_old_version() {
    let (dir, db) = setup();
    let file = write(dir.path(), "fix.jsonl", &(rec("a", "s1", "12.5", "2024-01-01T00:00:00Z") + "\n"));
    let report = json(&ok(&db, &["replace", file.to_str().unwrap()]));
    assert_eq!(report["replaced"], 1, "{report}");
    let a: Vec<_> = jsonl(&ok(&db, &["records", "--metric", "kwh", "--subject", "s1"]));
    assert_eq!(a[0]["quantity"], "12.5");
    let history = jsonl(&ok(&db, &["history", "--id", "a"]));
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["quantity"], "10");
    assert!(jsonl(&ok(&db, &["history", "--id", "c"])).is_empty());
}

#[test]
fn rollup_top_ranks_groups_by_an_aggregation() {
    let (_dir, db) = setup();
    let base = ["rollup", "--metric", "kwh", "--window", "day", "--tz", "UTC", "--group-by", "subject"];
    let top = |by: &str| {
        let mut args = base.to_vec();
        args.extend(["--top", "1", "--by", by, "--output", "json"]);
        json(&ok(&db, &args))
    };
    let by_sum = top("sum");
    assert_eq!(by_sum.as_array().unwrap().len(), 1);
    assert_eq!((by_sum[0]["subject"].as_str(), by_sum[0]["sum"].as_str()), (Some("s1"), Some("15")));
    let by_count = top("count");
    assert_eq!(by_count[0]["subject"], "s1");
    let by_min = top("min");
    assert_eq!((by_min[0]["subject"].as_str(), by_min[0]["min"].as_str()), (Some("s2"), Some("7")));
}

#[test]
fn close_windows_closes_each_ended_window_once() {
    let (_dir, db) = setup();
    // The day spec, added explicitly (backfilled): two day buckets. (A rollup adds no spec.)
    ok(&db, &["spec", "add", "--metric", "kwh", "--window", "day", "--tz", "UTC"]);
    let first = json(&ok(&db, &["close-windows", "--until", "2024-01-02T00:00:00Z"]));
    let rest = json(&ok(&db, &["close-windows", "--until", "2024-01-10T00:00:00Z"]));
    let again = json(&ok(&db, &["close-windows", "--until", "2024-01-10T00:00:00Z"]));
    assert_eq!(first["closed"], 1, "the day of 2024-01-01 ended: {first}");
    assert_eq!(rest["closed"], 1, "then the day of 2024-01-02: {rest}");
    assert_eq!(again["closed"], 0);
}

const TARIFF: &str = r#"
name = "slab"
currency = "INR"
time_zone = "UTC"

[[charges]]
id = "fixed"
type = "fixed"
amount = "60"

[[charges]]
id = "energy"
type = "graduated"
unit = "kWh"
tiers = [{ up_to = "100", rate = "3.50" }, { up_to = "200", rate = "4.75" }, { rate = "8.00" }]

[[charges]]
id = "duty"
type = "percentage"
percent = "6"
tax = true
"#;

#[test]
fn price_of_a_quantity_equals_the_bill_of_a_record_with_that_quantity() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db").to_str().unwrap().to_string();
    let tariff = write(dir.path(), "slab.toml", TARIFF);
    let tariff = tariff.to_str().unwrap();
    let file = write(dir.path(), "one.jsonl", &(rec("x", "flat-1", "257.3", "2024-03-10T12:00:00Z") + "\n"));
    ok(&db, &["ingest", file.to_str().unwrap()]);
    let bill = json(&ok(
        &db,
        &["bill", "--tariff", tariff, "--metric", "kwh", "--period", "2024-03", "--tz", "UTC", "--output", "json"],
    ));
    let price = json(&ok(&db, &["price", "--tariff", tariff, "--quantity", "257.3"]));
    let dec = |v: &serde_json::Value| Decimal::from_str(v.as_str().unwrap()).unwrap();
    assert_eq!(dec(&price["total"]), dec(&bill["total"]), "{price} vs {bill}");
    // 60 + 350 + 475 + 57.3 × 8 = 1343.40; duty 6% = 80.60 (80.604); total 1424.00.
    assert_eq!(dec(&price["total"]), Decimal::from_str("1424.00").unwrap());
    assert_eq!(price["currency"], "INR");
    let bad = run_in(&db, &["price", "--tariff", tariff, "--quantity", "ten"]);
    assert!(!bad.status.success());
}

#[test]
fn an_invoice_issued_then_paid_is_stored_paid() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("i.db").to_str().unwrap().to_string();
    let tariff = write(dir.path(), "slab.toml", TARIFF);
    let file = write(dir.path(), "one.jsonl", &(rec("x", "flat-1", "50", "2024-03-10T12:00:00Z") + "\n"));
    ok(&db, &["ingest", file.to_str().unwrap()]);
    let bill = ok(
        &db,
        &[
            "bill",
            "--tariff",
            tariff.to_str().unwrap(),
            "--metric",
            "kwh",
            "--period",
            "2024-03",
            "--tz",
            "UTC",
            "--output",
            "json",
        ],
    );
    let bill = write(dir.path(), "bill.json", &bill);
    let draft = ok(&db, &["invoice", "create", "--bill", bill.to_str().unwrap(), "--id", "inv-1", "--terms", "14"]);
    assert_eq!(json(&draft)["status"], "draft");
    assert!(json(&ok(&db, &["invoice", "list"])).as_array().unwrap().is_empty(), "a draft is not stored");
    let draft = write(dir.path(), "inv-1.json", &draft);
    let issued = json(&ok(&db, &["invoice", "issue", draft.to_str().unwrap(), "--at", "2024-04-01T09:00:00Z"]));
    assert_eq!((issued["status"].as_str(), issued["due_at"].as_str()), (Some("issued"), Some("2024-04-15T09:00:00Z")));
    let reminders = json(&ok(&db, &["invoice", "reminders", "--now", "2024-04-13T00:00:00Z", "--days-before", "3"]));
    assert_eq!(reminders[0]["id"], "inv-1");
    // Issuing the same invoice twice is refused.
    assert!(!run_in(&db, &["invoice", "issue", draft.to_str().unwrap()]).status.success());
    let paid = json(&ok(&db, &["invoice", "pay", "--id", "inv-1", "--at", "2024-04-10T00:00:00Z"]));
    assert_eq!(paid["status"], "paid");
    let list = json(&ok(&db, &["invoice", "list"]));
    assert_eq!((list[0]["id"].as_str(), list[0]["status"].as_str()), (Some("inv-1"), Some("paid")));
    // Paid is final: void fails and nothing changes.
    let void = run_in(&db, &["invoice", "void", "--id", "inv-1"]);
    assert!(!void.status.success());
    assert!(String::from_utf8_lossy(&void.stderr).contains("E_"));
    assert!(json(&ok(&db, &["invoice", "overdue", "--now", "2024-06-01T00:00:00Z"])).as_array().unwrap().is_empty());
}

#[test]
fn an_unpaid_invoice_becomes_overdue_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.db").to_str().unwrap().to_string();
    let bill = r#"{"tenant":"default","subject":"s","period_start":"2024-01-01T00:00:00Z","period_end":"2024-02-01T00:00:00Z","time_zone":"UTC","currency":"GBP","lines":[],"subtotal":"0.00","taxes":"0.00","total":"0.00"}"#;
    let bill = write(dir.path(), "bill.json", bill);
    let draft = ok(&db, &["invoice", "create", "--bill", bill.to_str().unwrap(), "--id", "inv-9", "--terms", "7"]);
    let draft = write(dir.path(), "d.json", &draft);
    ok(&db, &["invoice", "issue", draft.to_str().unwrap(), "--at", "2024-02-01T00:00:00Z"]);
    assert!(json(&ok(&db, &["invoice", "overdue", "--now", "2024-02-05T00:00:00Z"])).as_array().unwrap().is_empty());
    let overdue = json(&ok(&db, &["invoice", "overdue", "--now", "2024-02-09T00:00:00Z"]));
    assert_eq!((overdue[0]["id"].as_str(), overdue[0]["status"].as_str()), (Some("inv-9"), Some("overdue")));
    assert!(json(&ok(&db, &["invoice", "overdue", "--now", "2024-02-10T00:00:00Z"])).as_array().unwrap().is_empty());
    let void = json(&ok(&db, &["invoice", "void", "--id", "inv-9", "--at", "2024-02-11T00:00:00Z"]));
    assert_eq!(void["status"], "void");
}

#[test]
fn ingest_with_a_quota_prints_the_thresholds_crossed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db").to_str().unwrap().to_string();
    let quota = r#"{"id":"cap","tenant":"default","metric":"kwh","period":"month","time_zone":"UTC","limit":"20","levels":["50","100"]}"#;
    let quota = write(dir.path(), "quota.json", quota);
    let lines = [rec("a", "s1", "12", "2024-01-01T00:00:00Z"), rec("b", "s2", "3", "2024-01-01T00:00:00Z")];
    let file = write(dir.path(), "in.jsonl", &(lines.join("\n") + "\n"));
    let out =
        json(&ok(&db, &["ingest", file.to_str().unwrap(), "--quota", quota.to_str().unwrap(), "--output", "json"]));
    let crossed = out["threshold_crossed"].as_array().unwrap();
    assert_eq!(crossed.len(), 1, "{out}");
    let text = crossed[0].to_string();
    assert!(text.contains("\"s1\"") && text.contains("cap"), "{text}");
    // A quota file that is not a quota names the file.
    let bad = write(dir.path(), "bad.json", "{\"id\":\"x\"}");
    let failed = run_in(&db, &["ingest", file.to_str().unwrap(), "--quota", bad.to_str().unwrap()]);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("bad.json"));
}

#[test]
fn ingest_with_a_validation_config_rejects_out_of_range_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db").to_str().unwrap().to_string();
    let config = write(dir.path(), "rules.json", r#"{"allow_negative": false}"#);
    let lines = [rec("ok", "s1", "12", "2024-01-01T00:00:00Z"), rec("neg", "s1", "-5", "2024-01-01T01:00:00Z")];
    let file = write(dir.path(), "in.jsonl", &(lines.join("\n") + "\n"));
    let out =
        run_in(&db, &["ingest", file.to_str().unwrap(), "--config", config.to_str().unwrap(), "--output", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!((report["accepted"].as_u64(), report["rejected"].as_u64()), (Some(1), Some(1)), "{report}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("in.jsonl:2"));
    assert_eq!(ids(&db), ["ok"]);
    // Without --config nothing is validated: the negative record is stored.
    let plain = dir.path().join("plain.db").to_str().unwrap().to_string();
    assert_eq!(json(&ok(&plain, &["ingest", file.to_str().unwrap(), "--output", "json"]))["accepted"], 2);
}

#[test]
fn estimate_fills_a_gap_by_interpolation() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e.db").to_str().unwrap().to_string();
    let lines = [rec("h0", "m1", "1", "2024-01-01T00:00:00Z"), rec("h3", "m1", "2.5", "2024-01-01T03:00:00Z")];
    let file = write(dir.path(), "in.jsonl", &(lines.join("\n") + "\n"));
    let filled = jsonl(&ok(&db, &["estimate", file.to_str().unwrap(), "--interval-secs", "3600"]));
    let got: Vec<(&str, &str)> =
        filled.iter().map(|r| (r["timestamp"].as_str().unwrap(), r["quantity"].as_str().unwrap())).collect();
    assert_eq!(got, [("2024-01-01T01:00:00Z", "1.5"), ("2024-01-01T02:00:00Z", "2")]);
    assert!(filled.iter().all(|r| r["quality"] == "estimated"));
    assert!(!Path::new(&db).exists(), "estimate stores nothing");
}

/// Issue 14: `bill --subjects`, `--all-subjects`, `--filter`, `--per-subject` rate the scope's
/// records together; `rollup` CSV has `first_at`/`last_at`.
#[test]
fn an_account_bill_over_subjects_a_filter_or_the_tenant() {
    let (dir, db) = setup(); // a 10 + b 5 (s1), c 7 (s2), January 2024
    let tariff = write(
        dir.path(),
        "tiers.json",
        r#"{"currency":"USD","charges":[{"id":"e","type":"graduated","tiers":[{"up_to":"12","rate":"1"},{"rate":"0.5"}]}]}"#,
    );
    let tariff = tariff.to_str().unwrap();
    let bill = |extra: &[&str]| {
        let mut args = vec!["bill", "--tariff", tariff, "--metric", "kwh", "--period", "2024-01", "--tz", "UTC"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--output", "json"]);
        json(&ok(&db, &args))
    };
    // s1 + s2 = 22: 12 × 1 + 10 × 0.5 = 17.00 (apart: 13.50 + 7.00).
    let both = bill(&["--subjects", "s1,s2", "--per-subject"]);
    assert_eq!(both["total"], "17.00");
    assert_eq!(
        both["per_subject"],
        serde_json::json!([{"subject":"s1","quantity":"15","records":2},{"subject":"s2","quantity":"7","records":1}])
    );
    assert_eq!(bill(&["--all-subjects"])["total"], "17.00");
    assert!(bill(&["--all-subjects"]).get("per_subject").is_none());
    assert_eq!(bill(&["--subject", "s1"])["total"], "13.50");
    let bad = run_in(
        &db,
        &["bill", "--tariff", tariff, "--metric", "kwh", "--period", "2024-01", "--tz", "UTC", "--filter", "carrier"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("DIM=VALUE"));
    let csv = ok(&db, &["rollup", "--metric", "kwh", "--window", "month", "--tz", "UTC", "--output", "csv"]);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(",latest,first_at,last_at"), "{csv}");
    assert!(lines.next().unwrap().ends_with(",2024-01-01T00:00:00Z,2024-01-02T00:00:00Z"), "{csv}");
}

/// `meterkit counters`: the shared vector `counter/wrap_32_bit` as two CLI runs on one SQLite
/// file — two processes, so the second run's first delta (1300 − 800 = 500) can only come from
/// the tracker state the first run stored — with the vector's hand-worked deltas.
#[test]
fn counters_wrap_at_2_to_the_32_and_continue_in_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db").to_str().unwrap().to_string();
    let vector: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/counter/wrap_32_bit.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for (i, call) in vector["input"]["calls"].as_array().unwrap().iter().enumerate() {
        let lines: Vec<String> = call["readings"].as_array().unwrap().iter().map(ToString::to_string).collect();
        let file = write(dir.path(), &format!("run{i}.jsonl"), &lines.join("\n"));
        let out = json(&ok(
            &db,
            &[
                "--tenant",
                "isp",
                "counters",
                file.to_str().unwrap(),
                "--meter-column",
                "meter",
                "--reading-column",
                "register",
                "--timestamp-column",
                "timestamp",
                "--bits",
                "32",
                "--metric",
                "bytes_in",
                "--dating",
                "end",
                "--output",
                "json",
            ],
        ));
        let expected = &vector["expected"]["calls"][i];
        let got: Vec<(String, String)> = out["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_str().unwrap().to_string(), r["quantity"].as_str().unwrap().to_string()))
            .collect();
        let want: Vec<(String, String)> = expected["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_str().unwrap().to_string(), r["quantity"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(got, want, "run {i}");
        let rules: Vec<&str> =
            out["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
        let want_rules: Vec<&str> =
            expected["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
        assert_eq!(rules, want_rules, "run {i}");
        assert_eq!(out["report"]["accepted"], expected["accepted"], "run {i}");
    }
    // 7000 + 2000 + 300 + 500 bytes stored in all.
    let day = json(&ok(
        &db,
        &["--tenant", "isp", "rollup", "--metric", "bytes_in", "--window", "day", "--tz", "UTC", "--output", "json"],
    ));
    assert_eq!(day[0]["sum"], "9800", "{day}");
    let bad = run_in(
        &db,
        &[
            "counters",
            "x.jsonl",
            "--meter-column",
            "m",
            "--reading-column",
            "r",
            "--timestamp-column",
            "t",
            "--bits",
            "32",
            "--digits",
            "5",
            "--metric",
            "b",
        ],
    );
    assert!(!bad.status.success(), "--bits and --digits together are refused");
}

#[test]
fn spec_add_list_and_remove_with_a_tenants_own_spec() {
    let (_dir, db) = setup();
    // An unplanned rollup is answered from the records and adds no spec.
    let rows = json(&ok(&db, &["rollup", "--metric", "kwh", "--window", "day", "--tz", "UTC", "--output", "json"]));
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    assert_eq!(ok(&db, &["spec", "list"]), "");
    let own = ["--metric", "kwh", "--window", "cycle:15", "--tz", "Asia/Kolkata", "--group-by", "subject", "--own"];
    let added = json(&ok(&db, &[&["spec", "add"][..], &own[..]].concat()));
    assert_eq!(added["id"], 0);
    let listed = jsonl(&ok(&db, &["spec", "list"]));
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0]["tenant"].as_str(), listed[0]["window"].as_str()), (Some("default"), Some("cycle:15")));
    // The same rollup, now answered from the spec's buckets: s1 15, s2 7.
    let args = ["rollup", "--metric", "kwh", "--window", "cycle:15", "--tz", "Asia/Kolkata", "--group-by", "subject"];
    let rows = json(&ok(&db, &[&args[..], &["--output", "json"][..]].concat()));
    let sums: Vec<(&str, &str)> =
        rows.as_array().unwrap().iter().map(|r| (r["subject"].as_str().unwrap(), r["sum"].as_str().unwrap())).collect();
    assert_eq!(sums, [("s1", "15"), ("s2", "7")]);
    // Another tenant's rollup is not answered from it (no records there).
    let other = ok(&db, &[&["--tenant", "other"][..], &args[..], &["--output", "json"][..]].concat());
    assert!(json(&other).as_array().unwrap().is_empty(), "{other}");
    let removed = json(&ok(&db, &[&["spec", "remove"][..], &own[..]].concat()));
    assert_eq!(removed["removed"], 0);
    assert_eq!(ok(&db, &["spec", "list"]), "");
    let again = run_in(&db, &[&["spec", "remove"][..], &own[..]].concat());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("E_NOT_FOUND"), "{again:?}");
}

#[test]
fn a_pooled_quota_over_a_set_of_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db").to_str().unwrap().to_string();
    let quota = r#"{"id":"acct","tenant":"default","metric":"kwh","subjects":["s1","s2"],"pooled":true,"period":"month","time_zone":"UTC","limit":"20","levels":["50"]}"#;
    let quota = write(dir.path(), "quota.json", quota);
    // s1 6 + s2 5 = 11 ≥ 50 % of 20 (neither alone is); s3 is outside the set.
    let lines = [
        rec("a", "s1", "6", "2024-01-01T00:00:00Z"),
        rec("b", "s2", "5", "2024-01-01T00:00:00Z"),
        rec("c", "s3", "50", "2024-01-01T00:00:00Z"),
    ];
    let file = write(dir.path(), "in.jsonl", &(lines.join("\n") + "\n"));
    let out =
        json(&ok(&db, &["ingest", file.to_str().unwrap(), "--quota", quota.to_str().unwrap(), "--output", "json"]));
    let crossed = out["threshold_crossed"].as_array().unwrap();
    assert_eq!(crossed.len(), 1, "{out}");
    assert_eq!((crossed[0]["used"].as_str(), crossed[0]["subject"].as_str()), (Some("11"), Some("")), "{out}");
}
