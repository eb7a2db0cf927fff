//! Issue 14 item 2: every record, query, spec, quota, bill request and config the hosts pass in
//! refuses an unknown key, naming it — in the core's types, so the CLI, Python (`from_dict`,
//! `from_json`), Node (after its camelCase edge) and the mobile JSON arguments all get it.
//!
//! Each document is first read as given (so a refusal below is the extra key's, not a
//! malformed document's), then with one misspelt key added.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// `doc` parses as `T`; `doc` plus `key` does not, and the error names `key`.
fn refuses<T: DeserializeOwned>(what: &str, doc: &Value, key: &str) {
    if let Err(e) = serde_json::from_value::<T>(doc.clone()) {
        panic!("the {what} document itself is invalid: {e}");
    }
    let mut bad = doc.clone();
    bad.as_object_mut().unwrap().insert(key.to_string(), json!("x"));
    match serde_json::from_value::<T>(bad) {
        Ok(_) => panic!("a {what} with the unknown key {key} was accepted"),
        Err(e) => assert!(e.to_string().contains(&format!("`{key}`")), "{what}: {e}"),
    }
}

const T0: &str = "2024-01-01T00:00:00Z";

#[test]
fn every_input_type_refuses_an_unknown_key_naming_it() {
    let record = json!({"id": "1", "tenant": "t", "subject": "s", "metric": "m", "quantity": "1", "timestamp": T0});
    refuses::<meterkit::UsageRecord>("usage record", &record, "dimension");
    let spec = json!({"metric": "m", "window": "day", "time_zone": "UTC"});
    refuses::<meterkit::RollupSpec>("rollup spec", &spec, "grup_by");
    refuses::<meterkit::RollupSpec>("rollup spec", &spec, "groupBy"); // another host's spelling
    let query = json!({"tenant": "t", "metric": "m", "window": "day", "time_zone": "UTC"});
    refuses::<meterkit::Query>("query", &query, "groupBy");
    let quota = json!({"id": "q", "tenant": "t", "metric": "m", "period": "day", "time_zone": "UTC", "limit": "1", "levels": ["1"]});
    refuses::<meterkit::quota::Quota>("quota", &quota, "subjet");
    let request = json!({"metric": "m", "period_start": T0, "period_end": "2024-02-01T00:00:00Z", "time_zone": "UTC"});
    refuses::<meterkit::BillRequest>("bill request", &request, "perSubject");
    refuses::<meterkit::vee::ValidationConfig>("validation config", &json!({}), "high_limt");
    refuses::<meterkit::vee::alert::AlertConfig>("alert config", &json!({}), "window_secs_x");
    refuses::<meterkit::vee::estimate::EstimateConfig>(
        "estimate config",
        &json!({"interval_secs": 3600}),
        "intervalSecs",
    );
    refuses::<meterkit::reading::check::ReadingOptions>("reading options", &json!({}), "histroy");
    let reading = json!({"meter": "m", "timestamp": T0, "register": "1"});
    refuses::<meterkit::MeterReading>("meter reading", &reading, "registr");
    let shared = json!({"meter": "p", "metric": "m", "shares": [["a", "1"]], "scale": 2});
    refuses::<meterkit::allocate::SharedMeter>("shared meter", &shared, "share");
}
