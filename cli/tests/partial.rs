//! The shared partial-state vectors (`tests/vectors/partial`, tests/vectors/README.md) through the
//! binary: each partition a JSONL file through `meterkit partial --all-tenants`, the states merged
//! by `merge-partials`, finalized by `finalize-partials --tenant`, and imported **twice** by
//! `import-partials` into a SQLite database that is then queried — byte-identical canonical JSON.

use std::path::Path;
use std::process::Command;

use meterkit::json::canonical_json;

fn ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_meterkit")).args(args).output().expect("meterkit runs");
    assert!(out.status.success(), "meterkit {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn run(case: &serde_json::Value, dir: &Path) -> String {
    let input = &case["input"];
    let spec = serde_json::to_string(&input["spec"]).unwrap();
    let tenant = input["query"]["tenant"].as_str().unwrap();
    let mut rows = Vec::new();
    let mut files = Vec::new();
    for (i, part) in input["partitions"].as_array().unwrap().iter().enumerate() {
        let jsonl = part.as_array().unwrap().iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        let file = dir.join(format!("part-{i}.jsonl"));
        std::fs::write(&file, jsonl).unwrap();
        let states = ok(&["partial", "--spec", &spec, "--all-tenants", file.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_str(&states).unwrap();
        rows.push(v["tenant"].as_array().unwrap().len());
        let out = dir.join(format!("states-{i}.json"));
        std::fs::write(&out, states).unwrap();
        files.push(out.to_str().unwrap().to_string());
    }
    let mut args = vec!["merge-partials", "--spec", &spec];
    args.extend(files.iter().map(String::as_str));
    let merged = dir.join("merged.json");
    std::fs::write(&merged, ok(&args)).unwrap();
    let merged = merged.to_str().unwrap();
    let buckets: serde_json::Value =
        serde_json::from_str(&ok(&["--tenant", tenant, "finalize-partials", "--spec", &spec, merged])).unwrap();
    let db = dir.join("imported.db");
    let db = db.to_str().unwrap();
    for _ in 0..2 {
        let out: serde_json::Value =
            serde_json::from_str(&ok(&["--db", db, "import-partials", "--spec", &spec, merged])).unwrap();
        assert_eq!(out["spec"], 0);
    }
    let engine = meterkit::Engine::new(meterkit_sqlite::SqliteStore::open(db).unwrap()).unwrap();
    let query: meterkit::Query = serde_json::from_value(input["query"].clone()).unwrap();
    let imported = engine.query(&query).unwrap();
    canonical_json(&serde_json::json!({ "partial_rows": rows, "buckets": buckets, "imported": imported }))
}

#[test]
fn every_partial_vector_through_the_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/partial");
    let mut files: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 2, "partial vectors under {}", root.display());
    for path in files {
        let case: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(run(&case, dir.path()), canonical_json(&case["expected"]), "{}", path.display());
    }
}

#[test]
fn a_bad_state_file_is_refused_naming_the_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"{"metric":"kwh","window":"day","time_zone":"UTC"}"#;
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"schema_version":[2],"tenant":["t"]}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_meterkit"))
        .args(["merge-partials", "--spec", spec, bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json") && err.contains("E_PARSE"), "{err}");
}
