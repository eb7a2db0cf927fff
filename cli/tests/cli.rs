//! The `meterkit` command on the real example data, driven exactly as other tools drive it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meterkit"))
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data").join(name)
}

fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().expect("meterkit runs");
    assert!(out.status.success(), "meterkit {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

const UK: [&str; 8] =
    ["--timestamp-column", "start", "--quantity-column", "value", "--subject", "house-1", "--metric", "kwh"];

/// Monthly totals in Europe/London equal an independent exact sum of the CSV's text values.
#[test]
fn uk_monthly_totals_equal_an_independent_exact_sum() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("uk.db");
    let db = db.to_str().unwrap();
    let file = data("uk-smart-meter-hourly.csv");
    let mut args = vec!["--db", db, "ingest", file.to_str().unwrap()];
    args.extend(UK);
    args.extend(["--output", "json"]);
    let first = json(&run(&args));
    assert_eq!(first, serde_json::json!({"accepted": 23508, "duplicates": 0, "rejected": 0}));
    // Idempotent: the same file again changes nothing.
    let again = json(&run(&args));
    assert_eq!(again, serde_json::json!({"accepted": 0, "duplicates": 23508, "rejected": 0}));

    // Independent computation: parse the text, convert with chrono-tz, sum exactly.
    let london: chrono_tz::Tz = "Europe/London".parse().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let mut expected: BTreeMap<String, (Decimal, u64)> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let (ts, value) = line.split_once(',').unwrap();
        let t = DateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S%:z").unwrap().with_timezone(&london);
        let e = expected.entry(t.format("%Y-%m").to_string()).or_default();
        e.0 += Decimal::from_str(value).unwrap();
        e.1 += 1;
    }
    let out = json(&run(&[
        "--db",
        db,
        "rollup",
        "--metric",
        "kwh",
        "--window",
        "month",
        "--tz",
        "Europe/London",
        "--subject",
        "house-1",
        "--output",
        "json",
    ]));
    let rows = out.as_array().unwrap();
    assert_eq!(rows.len(), expected.len());
    for row in rows {
        let start: DateTime<Utc> = row["window_start"].as_str().unwrap().parse().unwrap();
        let month = start.with_timezone(&london).format("%Y-%m").to_string();
        let (sum, count) = expected[&month];
        assert_eq!(row["sum"].as_str().unwrap(), sum.normalize().to_string(), "month {month}");
        assert_eq!(row["count"].as_u64().unwrap(), count, "month {month}");
        assert_eq!(row["subject"], "house-1");
    }
    // October 2020 has 745 hours in London (the clocks went back).
    assert_eq!(expected["2020-10"].1, 745);
}

/// Requests and bytes per day of the Apache log equal an independent count.
#[test]
fn apache_requests_and_bytes_per_day_equal_an_independent_count() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("web.db");
    let db = db.to_str().unwrap();
    let file = data("apache-access-2015.log");
    let out = json(&run(&["--db", db, "ingest", file.to_str().unwrap(), "--format", "clf", "--output", "json"]));
    assert_eq!(out, serde_json::json!({"accepted": 20000, "duplicates": 0, "rejected": 0}));

    let text = std::fs::read_to_string(&file).unwrap();
    let mut expected: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in text.lines() {
        let time = &line[line.find('[').unwrap() + 1..line.find(']').unwrap()];
        let t = DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z").unwrap().with_timezone(&Utc);
        let after_request = &line[line.find("\" ").unwrap() + 2..];
        let mut fields = after_request.split(' ');
        let _status = fields.next().unwrap();
        let size = fields.next().unwrap();
        let e = expected.entry(t.format("%Y-%m-%d").to_string()).or_default();
        e.0 += 1;
        e.1 += if size == "-" { 0 } else { size.parse::<u64>().unwrap() };
    }
    for (metric, pick) in [("requests", 0usize), ("bytes", 1)] {
        let rows = json(&run(&[
            "--db", db, "rollup", "--metric", metric, "--window", "day", "--tz", "UTC", "--output", "json",
        ]));
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), expected.len());
        for row in rows {
            let day = &row["window_start"].as_str().unwrap()[..10];
            let (requests, bytes) = expected[day];
            let want = if pick == 0 { requests } else { bytes };
            assert_eq!(row["sum"].as_str().unwrap(), want.to_string(), "{metric} on {day}");
            assert_eq!(row["count"].as_u64().unwrap(), requests, "{metric} records on {day}");
        }
    }
}

/// Malformed lines are reported as file:line and skipped; --strict stores nothing.
#[test]
fn malformed_lines_are_located_and_strict_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.csv");
    std::fs::write(
        &file,
        "t,v\n2024-01-01T00:00:00Z,1\n2024-01-01T01:00:00Z,abc\n2024-01-01 02:00:00,2\n2024-01-01T03:00:00Z,3\n",
    )
    .unwrap();
    let db = dir.path().join("m.db");
    let (db, f) = (db.to_str().unwrap(), file.to_str().unwrap());
    let flags = ["--timestamp-column", "t", "--quantity-column", "v", "--subject", "s", "--metric", "kwh"];
    let mut strict = vec!["--db", db, "ingest", f, "--strict", "--output", "json"];
    strict.extend(flags);
    let out = bin().args(&strict).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.csv:3:"), "{err}");
    let mut lenient = vec!["--db", db, "ingest", f, "--output", "json"];
    lenient.extend(flags);
    let out = run(&lenient);
    // Nothing was stored by the strict run: all valid rows are accepted now.
    assert_eq!(json(&out), serde_json::json!({"accepted": 2, "duplicates": 0, "rejected": 2}));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.csv:3:") && err.contains("not a decimal"), "{err}");
    assert!(err.contains("bad.csv:4:") && err.contains("--assume-tz"), "{err}");
    // A conflicting re-send (same subject, metric and instant, other value) is rejected.
    std::fs::write(&file, "t,v\n2024-01-01T00:00:00Z,5\n").unwrap();
    let out = run(&lenient);
    assert_eq!(json(&out), serde_json::json!({"accepted": 0, "duplicates": 0, "rejected": 1}));
    assert!(String::from_utf8_lossy(&out.stderr).contains("different content"));
}

/// SIGKILL in the middle of an ingest leaves whole batches only; re-running completes it
/// without double counting.
#[cfg(unix)]
#[test]
fn killed_ingest_keeps_whole_batches_and_resumes_without_double_counting() {
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    let rows = 400_000u64;
    let mut text = String::from("id,t,sim,v\n");
    let mut expected_sum = Decimal::ZERO;
    for i in 0..rows {
        let v = Decimal::new((i % 1000) as i64 + 1, 3);
        expected_sum += v;
        let _ = writeln!(
            text,
            "r{i},2024-01-{:02}T{:02}:{:02}:00Z,sim-{},{v}",
            1 + i / 20_000,
            (i / 60) % 24,
            i % 60,
            i % 97
        );
    }
    std::fs::write(&file, text).unwrap();
    let db = dir.path().join("k.db");
    let (dbs, f) = (db.to_str().unwrap(), file.to_str().unwrap());
    // Create the database, then the daily rollup spec (a query adds none), so the killed ingest
    // also maintains buckets.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    run(&["--db", dbs, "ingest", empty.to_str().unwrap()]);
    run(&["--db", dbs, "spec", "add", "--metric", "bytes", "--window", "day", "--tz", "UTC"]);
    let args = [
        "--db",
        dbs,
        "ingest",
        f,
        "--timestamp-column",
        "t",
        "--quantity-column",
        "v",
        "--subject-column",
        "sim",
        "--id-column",
        "id",
        "--metric",
        "bytes",
        "--batch-size",
        "1000",
        "--output",
        "json",
    ];
    let mut child = bin().args(args).stdout(std::process::Stdio::null()).spawn().unwrap();
    let count = |db: &Path| -> (u64, u64) {
        let conn = rusqlite::Connection::open(db).unwrap();
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0)).unwrap_or(0);
        let n = n as u64;
        // Bucket states are binary (schema version 2): read them through the store.
        let store = meterkit_sqlite::SqliteStore::open(db).unwrap();
        let buckets = meterkit::Store::buckets(&store, "default", 0, i64::MIN, i64::MAX).unwrap_or_default();
        let in_buckets = buckets.iter().map(|b| b.state.count).sum();
        (n, in_buckets)
    };
    // Wait until some batches are committed, then kill the process mid-ingest.
    let mut seen = 0;
    for _ in 0..2000 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        seen = count(&db).0;
        if seen >= 20_000 {
            break;
        }
    }
    let finished_early = child.try_wait().unwrap().is_some();
    child.kill().unwrap(); // SIGKILL on unix
    child.wait().unwrap();
    let (stored, in_buckets) = count(&db);
    assert!(seen > 0, "no batch was committed before the kill");
    assert!(finished_early || stored < rows, "the ingest finished before it could be killed");
    assert_eq!(stored % 1000, 0, "a partial batch is visible: {stored} records");
    assert_eq!(in_buckets, stored, "buckets and records disagree after the kill");

    let out = json(&run(&args));
    assert_eq!(out["accepted"].as_u64().unwrap() + out["duplicates"].as_u64().unwrap(), rows);
    assert_eq!(out["duplicates"].as_u64().unwrap(), stored);
    let (stored, in_buckets) = count(&db);
    assert_eq!((stored, in_buckets), (rows, rows));
    let days = json(&run(&[
        "--db", dbs, "rollup", "--metric", "bytes", "--window", "month", "--tz", "UTC", "--output", "json",
    ]));
    assert_eq!(days[0]["sum"].as_str().unwrap(), expected_sum.normalize().to_string());
}

fn ingest_uk(db: &str) {
    let file = data("uk-smart-meter-hourly.csv");
    let mut args = vec!["--db", db, "ingest", file.to_str().unwrap()];
    args.extend(UK);
    run(&args);
}

/// `meterkit bill` on the real data: the energy line is the exact sum of the month's CSV values,
/// every amount is its line rounded half-up to pence, and the total is the sum of the lines.
#[test]
fn uk_flat_bill_lines_follow_from_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("uk.db");
    let db = db.to_str().unwrap();
    ingest_uk(db);
    let tariff = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tariffs/flat.toml");
    let bill = json(&run(&[
        "--db",
        db,
        "bill",
        "--tariff",
        tariff.to_str().unwrap(),
        "--metric",
        "kwh",
        "--period",
        "2022-11",
        "--tz",
        "Europe/London",
        "--output",
        "json",
    ]));
    let london: chrono_tz::Tz = "Europe/London".parse().unwrap();
    let text = std::fs::read_to_string(data("uk-smart-meter-hourly.csv")).unwrap();
    let november: Decimal = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .filter(|(ts, _)| {
            let t = DateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S%:z").unwrap().with_timezone(&london);
            t.format("%Y-%m").to_string() == "2022-11"
        })
        .map(|(_, v)| Decimal::from_str(v).unwrap())
        .sum();
    let lines = bill["lines"].as_array().unwrap();
    let dec = |v: &serde_json::Value| Decimal::from_str(v.as_str().unwrap()).unwrap();
    let energy = lines.iter().find(|l| l["charge"] == "energy").unwrap();
    assert_eq!(dec(&energy["quantity"]), november);
    let pence = |d: Decimal| d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    assert_eq!(dec(&energy["amount"]), pence(november * dec(&energy["rate"])));
    let standing = lines.iter().find(|l| l["charge"] == "standing").unwrap();
    assert_eq!(dec(&standing["quantity"]), Decimal::from(30)); // November has 30 days
    assert_eq!(dec(&standing["amount"]), pence(Decimal::from(30) * dec(&standing["rate"])));
    let subtotal = dec(&energy["amount"]) + dec(&standing["amount"]);
    assert_eq!(dec(&bill["subtotal"]), subtotal);
    assert_eq!(dec(&bill["taxes"]), pence(subtotal * Decimal::new(5, 2)));
    assert_eq!(dec(&bill["total"]), subtotal + dec(&bill["taxes"]));
    assert_eq!(bill["total"].as_str().unwrap().split('.').nth(1).map(str::len), Some(2), "pence shown");
}

/// The main job prints totals, the validation summary and the three example bills.
#[test]
fn report_prints_totals_validation_and_bills() {
    let file = data("uk-smart-meter-hourly.csv");
    let tariffs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tariffs");
    let t = |n: &str| tariffs.join(n).to_str().unwrap().to_string();
    let (flat, tou, slab) = (t("flat.toml"), t("tou.toml"), t("slab.toml"));
    let mut args = vec!["--db", ":memory:", "report", file.to_str().unwrap()];
    args.extend(UK);
    args.extend(["--tz", "Europe/London", "--tariff", &flat, "--tariff", &tou, "--tariff", &slab]);
    args.extend(["--shared-meter", "motor_kwh=90.5/4"]);
    let out = String::from_utf8(run(&args).stdout).unwrap();
    assert!(out.contains("Records: 23508 accepted, 0 duplicates, 0 rejected"), "{out}");
    assert!(out.contains("│ 2022-11 ┆ 111.666 ┆     720 ┆"), "{out}");
    assert!(out.contains("Peak day: 2020-12-20 (Sun) with 11.336 kwh"), "{out}");
    assert!(out.contains("Validation (default rules)"), "{out}");
    assert!(out.contains("zero_streak"), "{out}");
    // The last complete month is November 2022; 90.5 kWh over 4 flats at 0.1 kWh gives the
    // first flat 22.7 (largest remainder), priced at 6.50 = 147.55.
    assert!(out.contains("house-1 2022-11-01 to 2022-12-01"), "{out}");
    assert_eq!(out.matches("Monthly bills").count(), 1);
    assert!(out.contains("22.7") && out.contains("147.55"), "{out}");
}

/// `meterkit validate` prints findings as JSON without storing anything.
#[test]
fn validate_reports_findings_as_json() {
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.csv");
    let mut text = String::from("t,v\n");
    for h in 0..24 {
        let v = match h {
            5 => "-1".to_string(),
            _ => format!("1.{h:02}"),
        };
        let _ = writeln!(text, "2024-01-01T{h:02}:00:00Z,{v}");
    }
    std::fs::write(&file, text).unwrap();
    let db = dir.path().join("none.db");
    let out = json(&run(&[
        "--db",
        db.to_str().unwrap(),
        "validate",
        file.to_str().unwrap(),
        "--timestamp-column",
        "t",
        "--quantity-column",
        "v",
        "--subject",
        "m",
        "--metric",
        "kwh",
        "--output",
        "json",
    ]));
    let findings = out.as_array().unwrap();
    let negative = findings.iter().find(|f| f["rule"] == "negative_quantity").expect("a negative finding");
    assert_eq!(negative["timestamp"], "2024-01-01T05:00:00Z");
    assert_eq!(negative["value"], "-1");
    assert_eq!(negative["severity"], "error");
    assert_eq!(negative["action"], "reject");
    assert!(!db.exists(), "validate must not create a database");
}

/// `meterkit validate --alerts --output json` merges the findings of one fault into one alert.
#[test]
fn validate_alerts_merge_a_day_of_zeros_into_one_alert() {
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.csv");
    let mut text = String::from("t,v\n");
    let t0 = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap();
    // 400 hours alternating 1.0 / 1.2 (past the 288-value warm-up), 24 zeros, 50 more hours.
    for h in 0..474i64 {
        let v = if (400..424).contains(&h) {
            "0"
        } else if h % 2 == 0 {
            "1.0"
        } else {
            "1.2"
        };
        let t = (t0 + chrono::Duration::hours(h)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let _ = writeln!(text, "{t},{v}");
    }
    std::fs::write(&file, text).unwrap();
    let out = json(&run(&[
        "--db",
        ":memory:",
        "validate",
        file.to_str().unwrap(),
        "--timestamp-column",
        "t",
        "--quantity-column",
        "v",
        "--subject",
        "m",
        "--metric",
        "kwh",
        "--alerts",
        "--output",
        "json",
    ]));
    let alerts = out.as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{out:#}");
    let a = &alerts[0];
    for key in ["subject", "start", "end", "rules", "severity", "peak", "expected"] {
        assert!(a.get(key).is_some(), "{key} missing: {a}");
    }
    assert_eq!(a["subject"], "m");
    assert_eq!(a["start"], "2024-01-17T16:00:00Z"); // hour 400, the first zero
    assert_eq!(a["severity"], "warning");
    let rules: Vec<&str> = a["rules"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert!(rules.contains(&"zero_streak"), "{rules:?}");
    assert_eq!(a["peak"], "0");
}

/// `meterkit compare`: the example tariffs and URDB records (one file holding two `items`, one of
/// which cannot be imported) against the real household's 2021; cheapest first, twelve months
/// each equal to `meterkit bill` for that month, the refused rate last with its reason.
#[test]
fn compare_ranks_tariffs_and_each_month_is_the_bill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("uk.db");
    let db = db.to_str().unwrap();
    ingest_uk(db);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let real = root.join("tests/data/urdb/urdb-539f6a23ec4f024411ec8beb-south-central-ppd-lp1.json");
    let mut items: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    let mut bad = items["items"][0].clone();
    bad["name"] = "With a ratchet".into();
    bad["lookbackpercent"] = serde_json::json!(0.8);
    items["items"].as_array_mut().unwrap().push(bad);
    let many = dir.path().join("many.json");
    std::fs::write(&many, items.to_string()).unwrap();
    let flat = root.join("examples/tariffs/flat.toml");
    let tou = root.join("examples/tariffs/tou.toml");
    let (flat, tou, many) = (flat.to_str().unwrap(), tou.to_str().unwrap(), many.to_str().unwrap());
    let tz = ["--metric", "kwh", "--tz", "Europe/London"];
    let mut args = vec!["--db", db, "compare", "--tariff", flat, "--tariff", tou, "--tariff", many, "--year", "2021"];
    args.extend(tz);
    args.extend(["--output", "json"]);
    let ranked = json(&run(&args));
    let ranked = ranked.as_array().unwrap();
    assert_eq!(ranked.len(), 4);
    let dec = |v: &serde_json::Value| Decimal::from_str(v.as_str().unwrap()).unwrap();
    let totals: Vec<Decimal> = ranked[..3].iter().map(|c| dec(&c["total"])).collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "cheapest first: {totals:?}");
    let last = &ranked[3];
    assert_eq!(last["tariff"], "With a ratchet");
    assert!(last["total"].is_null() && last["periods"].as_array().unwrap().is_empty());
    assert!(last["error"].as_str().unwrap().contains("lookbackpercent"), "{last}");
    for c in &ranked[..3] {
        assert!(c["error"].is_null());
        let periods = c["periods"].as_array().unwrap();
        assert_eq!(periods.len(), 12);
        assert_eq!(periods.iter().map(|p| dec(&p["total"])).sum::<Decimal>(), dec(&c["total"]));
    }
    // Each month is the bill of that month (checked on two months of the flat tariff).
    let flat_row = ranked.iter().find(|c| c["tariff"].as_str().unwrap().contains("Flat")).unwrap();
    for (i, month) in [(0, "2021-01"), (6, "2021-07")] {
        let mut args = vec!["--db", db, "bill", "--tariff", flat, "--period", month, "--output", "json"];
        args.extend(tz);
        let bill = json(&run(&args));
        assert_eq!(flat_row["periods"][i]["period"], month);
        assert_eq!(flat_row["periods"][i]["total"], bill["total"]);
    }
}

/// `meterkit readings`: a backwards reading is rejected, a declared exchange bills the old
/// register's last units, and re-running the file (an upload retried) stores nothing twice.
#[test]
fn readings_decide_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reads.csv");
    std::fs::write(
        &csv,
        "flat,read_at,kwh,old_final\n\
         A1,2026-11-01T00:00:00Z,11663,\n\
         A1,2026-11-02T00:00:00Z,11662,\n\
         A1,2026-11-03T00:00:00Z,11670,\n\
         B2,2026-11-01T00:00:00Z,99000,\n\
         B2,2026-11-02T00:00:00Z,5,99012\n",
    )
    .unwrap();
    let db = dir.path().join("m.db");
    let args = [
        "--db",
        db.to_str().unwrap(),
        "readings",
        csv.to_str().unwrap(),
        "--meter-column",
        "flat",
        "--reading-column",
        "kwh",
        "--timestamp-column",
        "read_at",
        "--digits",
        "5",
        "--exchange-column",
        "old_final",
        "--metric",
        "kwh",
        "--output",
        "json",
    ];
    let first = json(&run(&args));
    let status: Vec<&str> = first.as_array().unwrap().iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["accepted", "rejected", "accepted", "accepted", "accepted"]);
    assert_eq!(first[1]["findings"][0]["rule"], "backwards_reading");
    assert_eq!(first[2]["consumption"], "7");
    assert_eq!(first[4]["consumption"], "12");
    assert_eq!(first[4]["findings"][0]["rule"], "meter_exchange");
    assert_eq!(first[0]["consumption"], serde_json::Value::Null);
    let keys: Vec<&String> = first[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["consumption", "findings", "meter", "reading", "status", "timestamp"]);
    let again = json(&run(&args));
    for (a, b) in first.as_array().unwrap().iter().zip(again.as_array().unwrap()) {
        assert_eq!((&a["status"], &a["consumption"]), (&b["status"], &b["consumption"]));
        assert_eq!(b["findings"].as_array().unwrap().last().unwrap()["rule"], "duplicate_reading");
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 3, "7 kWh over two days (2 records) and the exchange's 12 kWh (1), stored once");
}

/// Issue 14: a JSONL record with a misspelt key is refused naming it (not stored without its
/// dimensions), and a cron job's repeat run with `--source --skip-seen` skips what it sent.
#[test]
fn jsonl_unknown_keys_are_refused_and_a_source_skips_what_it_sent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let file = dir.path().join("requests.jsonl");
    let line = |i: u32, hour: u32| {
        format!(
            r#"{{"id":"r{i}","subject":"portal-1","metric":"requests","quantity":"1","timestamp":"2024-06-01T{hour:02}:{:02}:00Z","dimensions":{{"status":"ok"}}}}"#,
            i % 60
        )
    };
    let mut text: Vec<String> = (0..100).map(|i| line(i, 9)).collect();
    text.push(r#"{"id":"bad","subject":"s","metric":"requests","quantity":"1","timestamp":"2024-06-01T09:00:00Z","dimension":{"status":"ok"}}"#.into());
    std::fs::write(&file, text.join("\n")).unwrap();
    let f = file.to_str().unwrap();
    let args = ["--db", db, "ingest", f, "--source", "hourly", "--skip-seen", "--output", "json"];
    let out = run(&args);
    assert_eq!(
        json(&out),
        serde_json::json!({"accepted": 100, "duplicates": 0, "rejected": 1, "skipped": 0, "watermark": "2024-06-01T09:59:00Z"})
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("requests.jsonl:101:") && err.contains("unknown field `dimension`"), "{err}");
    // The next hour's run re-reads the file with 20 new lines: 99 are skipped, the one at the
    // watermark is a duplicate, the 20 new ones are stored.
    text.pop();
    text.extend((100..120).map(|i| line(i, 10)));
    std::fs::write(&file, text.join("\n")).unwrap();
    assert_eq!(
        json(&run(&args)),
        serde_json::json!({"accepted": 20, "duplicates": 1, "rejected": 0, "skipped": 99, "watermark": "2024-06-01T10:59:00Z"})
    );
    // Without --skip-seen every line is looked at: all duplicates.
    let all = ["--db", db, "ingest", f, "--source", "hourly", "--output", "json"];
    assert_eq!(
        json(&run(&all)),
        serde_json::json!({"accepted": 0, "duplicates": 120, "rejected": 0, "skipped": 0, "watermark": "2024-06-01T10:59:00Z"})
    );
}

/// `meterkit outbox`: queue a file, count, list the upload body, acknowledge, purge — the core's
/// outbox over the SQLite file, surviving between runs. And `readings --check-only` stores
/// nothing.
#[test]
fn the_outbox_queues_acknowledges_and_purges_between_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let file = dir.path().join("up.jsonl");
    let line = |i: u32| {
        format!(
            r#"{{"id":"r{i}","subject":"m1","metric":"kwh","quantity":"1.5","timestamp":"2024-06-01T0{i}:00:00Z"}}"#
        )
    };
    std::fs::write(&file, (0..3).map(line).collect::<Vec<_>>().join("\n")).unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(json(&run(&["--db", db, "outbox", "queue", f]))["accepted"], 3);
    assert_eq!(json(&run(&["--db", db, "outbox", "count"]))["pending"], 3);
    let body = json(&run(&["--db", db, "outbox", "pending", "--limit", "2"]));
    assert_eq!(body["ids"], serde_json::json!(["r0", "r1"]));
    assert_eq!(body["records"][1]["quantity"], "1.5");
    let acked = json(&run(&["--db", db, "outbox", "ack", "r0", "r1", "nope", "--at", "2024-06-02T00:00:00Z"]));
    assert_eq!(acked["acknowledged"], 2);
    assert_eq!(json(&run(&["--db", db, "outbox", "queue", f]))["duplicates"], 3);
    assert_eq!(json(&run(&["--db", db, "outbox", "count"]))["pending"], 1, "acknowledged records stay sent");
    assert_eq!(json(&run(&["--db", db, "outbox", "purge", "--before", "2024-08-01T00:00:00Z"]))["removed"], 2);

    let csv = dir.path().join("reads.csv");
    std::fs::write(&csv, "flat,read_at,kwh\nA1,2026-11-01T00:00:00Z,11663\n").unwrap();
    let reads = [
        "--db",
        db,
        "readings",
        csv.to_str().unwrap(),
        "--meter-column",
        "flat",
        "--reading-column",
        "kwh",
        "--timestamp-column",
        "read_at",
        "--digits",
        "5",
        "--metric",
        "kwh",
        "--output",
        "json",
    ];
    let checked = json(&run(&[&reads[..], &["--check-only"]].concat()));
    assert_eq!(checked[0]["status"], "accepted");
    let stored = json(&run(&reads));
    assert_eq!(stored[0]["findings"].as_array().unwrap().len(), checked[0]["findings"].as_array().unwrap().len());
    let again = json(&run(&reads));
    assert_eq!(
        again[0]["findings"].as_array().unwrap().last().unwrap()["rule"],
        "duplicate_reading",
        "stored once, by the second run"
    );
}
