//! Runs `tests/vectors/validate/*.json`: each `{"name","description","kind":"validate",
//! "input":{"config","now","metrics"?,"records"},"expected":[findings]}`. The config applies to
//! the listed `metrics`, or to every metric when none are listed. Output must equal `expected`
//! as JSON values and byte-for-byte as compact serde_json.

use std::path::Path;

use meterkit::{time::parse_ts, vee::ValidationConfig, Finding, UsageRecord, Validator};

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    kind: String,
    input: Input,
    expected: serde_json::Value,
}

#[derive(serde::Deserialize)]
struct Input {
    config: ValidationConfig,
    now: String,
    #[serde(default)]
    metrics: Option<Vec<String>>,
    records: Vec<UsageRecord>,
}

#[test]
fn validation_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/validate");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    assert!(paths.len() >= 4, "vectors in {}", dir.display());
    for path in paths {
        let v: Vector = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v.kind, "validate", "{}", v.name);
        let now = parse_ts(&v.input.now).unwrap();
        let validator = match v.input.metrics {
            Some(ms) => Validator::new(ms.into_iter().map(|m| (m, v.input.config.clone()))).unwrap(),
            None => Validator::new(Vec::<(String, ValidationConfig)>::new())
                .unwrap()
                .with_default(v.input.config.clone())
                .unwrap(),
        };
        let mut validator = validator.with_now(now);
        let got = validator.check_all(&v.input.records);
        let got_json = serde_json::to_string(&got).unwrap();
        let got_value: serde_json::Value = serde_json::from_str(&got_json).unwrap();
        assert_eq!(got_value, v.expected, "{}: {got_json}", v.name);
        let expected: Vec<Finding> = serde_json::from_value(v.expected.clone()).unwrap();
        assert_eq!(got_json, serde_json::to_string(&expected).unwrap(), "{}", v.name);
    }
}
