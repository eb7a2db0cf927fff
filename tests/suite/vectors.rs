//! The shared rollup test vectors (`tests/vectors/rollup/*.json`), run on the in-memory engine.

use meterkit::Engine;
use meterkit_tests::{
    canonical_json, canonical_output, expected_json, load_case, rollup_vectors_dir, run_case, run_case_on, vector_files,
};

#[test]
fn every_rollup_vector_matches_its_hand_worked_expectation() {
    let files = vector_files(&rollup_vectors_dir()).unwrap();
    assert!(files.len() >= 12, "expected at least 12 rollup vectors, found {}", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let case = load_case(path).unwrap();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        assert_eq!(case.name, stem, "{}: name must equal the file stem", path.display());
        assert!(case.description.len() > 40, "{}: describe how the expected values were worked out", case.name);
        let expected = expected_json(&case);
        match run_case(&case) {
            Ok(actual) if actual == expected => {}
            Ok(actual) => failures.push(format!("{}:\n  expected {expected}\n  actual   {actual}", case.name)),
            Err(e) => failures.push(format!("{}: engine error {e}", case.name)),
        }
    }
    assert!(failures.is_empty(), "{} vector(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// The same vectors with the query's rollup spec created before anything is ingested, so the
/// buckets are maintained incrementally instead of backfilled: the answer must not change.
#[test]
fn every_rollup_vector_gives_the_same_answer_with_the_spec_created_first() {
    for path in vector_files(&rollup_vectors_dir()).unwrap() {
        let case = load_case(&path).unwrap();
        let engine = Engine::in_memory();
        let before = engine.query(&case.input.query).unwrap();
        assert!(case.input.query.fill == meterkit::engine::Fill::Zero || before.is_empty(), "{}", case.name);
        let out = run_case_on(&engine, &case).unwrap();
        assert_eq!(canonical_output(&out), expected_json(&case), "{}", case.name);
    }
}

#[test]
fn canonical_json_sorts_keys_and_is_compact() {
    let v: serde_json::Value = serde_json::from_str(r#"{ "b": [1, {"z": null, "a": "x\ny"}], "a": "é" }"#).unwrap();
    assert_eq!(canonical_json(&v), r#"{"a":"é","b":[1,{"a":"x\ny","z":null}]}"#);
}

#[test]
fn canonical_json_detects_a_changed_value() {
    let path = rollup_vectors_dir().join("utc_hourly_sums.json");
    let case = load_case(&path).unwrap();
    let actual = run_case(&case).unwrap();
    let mut tampered = case.expected.clone();
    tampered["buckets"][0]["sum"] = serde_json::Value::String("3.250".into());
    assert_ne!(actual, canonical_json(&tampered), "a different decimal text must not compare equal");
}

#[test]
fn a_bad_vector_file_is_reported_with_its_path() {
    let dir = std::env::temp_dir().join(format!("meterkit-bad-vector-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    std::fs::write(&path, r#"{"name": "bad", "kind": "rollup"}"#).unwrap();
    let err = load_case(&path).unwrap_err();
    assert!(err.contains("bad.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
