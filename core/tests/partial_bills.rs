//! Bills from partial states (issue 21): every hand-worked bill vector in `tests/vectors/bill/`
//! rated from 15-minute partial states (grouped by subject and every dimension of its records,
//! split over three partitions and merged) gives the bill rated from the records, byte for byte.

use std::collections::BTreeSet;
use std::path::PathBuf;

use meterkit::rollup::partial::{self, PartialRollup};
use meterkit::{BillRequest, RollupSpec, Tariff, UsageRecord, Window};
use serde_json::Value;

fn bill_via_partials(tariff: &Tariff, req: &BillRequest, records: &[UsageRecord]) -> meterkit::Result<String> {
    let dims: BTreeSet<String> = records.iter().flat_map(|r| r.dimensions.keys().cloned()).collect();
    let mut buckets = Vec::new();
    for metric in tariff.metrics(&req.metric) {
        let spec = RollupSpec::new(metric.as_str(), Window::Minutes(15), &req.time_zone)?
            .group_by(std::iter::once("subject".to_string()).chain(dims.iter().cloned()));
        let mut parts: Vec<PartialRollup> =
            (0..3).map(|_| PartialRollup::new(&spec)).collect::<meterkit::Result<_>>()?;
        for (i, r) in records.iter().enumerate() {
            parts[i % 3].add(r)?;
        }
        let merged = partial::merge(parts.into_iter().flat_map(PartialRollup::finish))?;
        buckets.extend(partial::finalize(&merged, &spec)?.into_iter().map(|(_, b)| b));
    }
    let bill = meterkit::engine::bill_from_buckets(tariff, req, &buckets)?;
    Ok(serde_json::to_string(&bill).expect("a bill serializes"))
}

#[test]
fn bill_vectors_from_partial_states_equal_bills_from_records() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/bill");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/vectors/bill exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut compared = 0;
    let mut failures = Vec::new();
    for path in &paths {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let input = &v["input"];
        let mut request = input.clone();
        let obj = request.as_object_mut().unwrap();
        obj.remove("tariff");
        obj.remove("records");
        let req: BillRequest = serde_json::from_value(request).unwrap();
        let records: Vec<UsageRecord> = serde_json::from_value(input["records"].clone()).unwrap();
        let Ok(tariff) = Tariff::from_any(&input["tariff"].to_string()) else { continue };
        let Ok(want) = tariff.bill(&req, &records) else { continue };
        let want = serde_json::to_string(&want).unwrap();
        compared += 1;
        match bill_via_partials(&tariff, &req, &records) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!("{}:\n  got:  {got}\n  want: {want}", path.display())),
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(compared >= 20, "only {compared} vectors compared");
    assert!(failures.is_empty(), "{} of {compared} differ:\n{}", failures.len(), failures.join("\n"));
}
