//! Runs every hand-worked bill vector in `tests/vectors/bill/*.json` through the core and
//! compares the compact JSON of the bill with the compact JSON of `expected`, byte for byte.
//!
//! A vector is `{"name","description","kind":"bill","input":{"tariff":{…},"records":[…],
//! "tenant"?,"subject","metric","period_start","period_end","time_zone"},"expected":{…}}`;
//! `tariff` is a meterkit tariff or an OpenEI URDB record (detected as `Tariff::from_any`
//! does). An `expected` of the form `{"error":{"kind","field"}}` expects a refusal instead.

use std::path::PathBuf;

use meterkit::{BillRequest, Tariff, UsageRecord};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/bill")
}

fn run(path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("bad vector JSON: {e}"))?;
    assert_eq!(v["kind"], "bill", "{}: kind must be bill", path.display());
    let input = &v["input"];
    // The request is the input without its tariff and records (a request refuses unknown keys).
    let mut request = input.clone();
    if let Some(obj) = request.as_object_mut() {
        obj.remove("tariff");
        obj.remove("records");
    }
    let req: BillRequest = serde_json::from_value(request).map_err(|e| format!("bad input: {e}"))?;
    let records: Vec<UsageRecord> =
        serde_json::from_value(input["records"].clone()).map_err(|e| format!("bad records: {e}"))?;
    let result = Tariff::from_any(&input["tariff"].to_string()).and_then(|t| t.bill(&req, &records));
    let expected = &v["expected"];
    let got: Value = match result {
        Ok(bill) => {
            // Round trip through text so both sides are compared in the same canonical form.
            serde_json::from_str(&serde_json::to_string(&bill).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?
        }
        Err(e) => serde_json::json!({"error": {"kind": e.kind(), "field": e.field()}}),
    };
    let (got_s, want_s) = (serde_json::to_string(&got).unwrap(), serde_json::to_string(expected).unwrap());
    if got_s == want_s {
        Ok(())
    } else {
        Err(format!(
            "mismatch\n  got:  {}\n  want: {}",
            serde_json::to_string_pretty(&got).unwrap(),
            serde_json::to_string_pretty(expected).unwrap()
        ))
    }
}

#[test]
fn bill_vectors() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("tests/vectors/bill exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 20, "expected at least 20 bill vectors, found {}", paths.len());
    let failures: Vec<String> =
        paths.iter().filter_map(|p| run(p).err().map(|e| format!("{}: {e}", p.display()))).collect();
    assert!(failures.is_empty(), "{} of {} vectors failed:\n{}", failures.len(), paths.len(), failures.join("\n"));
}
