//! `meterkit report --output json` and `--html FILE` on the real example data: the JSON's figures
//! equal what `rollup` and `bill` print for the same database, and the page carries each of them
//! (the page itself is checked in a headless browser by examples/seeds/report/test.js).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_meterkit")).args(args).output().expect("meterkit runs");
    assert!(out.status.success(), "meterkit {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn report_json_and_html_agree_with_rollup_and_bill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("uk.db");
    let html = dir.path().join("report.html");
    let (db, html_path) = (db.to_str().unwrap(), html.to_str().unwrap());
    let data = repo("examples/data/uk-smart-meter-hourly.csv");
    let tariff = repo("examples/tariffs/flat.toml");
    let report = json(&run(&[
        "--db",
        db,
        "report",
        data.to_str().unwrap(),
        "--timestamp-column",
        "start",
        "--quantity-column",
        "value",
        "--subject",
        "house-1",
        "--metric",
        "kwh",
        "--tz",
        "Europe/London",
        "--tariff",
        tariff.to_str().unwrap(),
        "--bill-period",
        "2022-11",
        "--html",
        html_path,
        "--output",
        "json",
    ]));
    let metric = &report["metrics"][0];
    let rollup = |window: &str| {
        json(&run(&[
            "--db",
            db,
            "rollup",
            "--metric",
            "kwh",
            "--window",
            window,
            "--tz",
            "Europe/London",
            "--output",
            "json",
        ]))
    };
    let sums = |v: &serde_json::Value, key: &str| -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| (b[key].as_str().unwrap().to_string(), b["sum"].as_str().unwrap().to_string()))
            .collect()
    };
    assert_eq!(sums(&metric["months"], "start"), sums(&rollup("month"), "window_start"));
    assert_eq!(sums(&metric["days"], "start"), sums(&rollup("day"), "window_start"));
    let bill = json(&run(&[
        "--db",
        db,
        "bill",
        "--tariff",
        tariff.to_str().unwrap(),
        "--subject",
        "house-1",
        "--metric",
        "kwh",
        "--period",
        "2022-11",
        "--tz",
        "Europe/London",
        "--output",
        "json",
    ]));
    assert_eq!(report["bills"][0]["bill"], bill);

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>") && !page.contains("<script") && !page.contains("src="));
    assert!(page.contains(&format!("data-metric=\"kwh\">{}</span>", metric["total"].as_str().unwrap())));
    for m in metric["months"].as_array().unwrap() {
        let row = format!(
            "<td>{}</td><td class=\"num sum\">{}</td>",
            m["label"].as_str().unwrap(),
            m["sum"].as_str().unwrap()
        );
        assert!(page.contains(&row), "{row}");
    }
    assert!(page.contains(&format!("<td class=\"num bill-total\">{}</td>", bill["total"].as_str().unwrap())));
    assert_eq!(page.matches("<svg").count(), 2);
    assert_eq!(page.matches("fill=\"#DC2626\"").count(), metric["alerts"].as_array().unwrap().len());
}

#[test]
fn report_refuses_csv_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_meterkit"))
        .args(["--db", ":memory:", "report", "x.csv", "--metric", "kwh", "--output", "csv"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output table or json"));
}
