//! Helpers shared by the integration suite, and the runner of the shared test vectors
//! (`tests/vectors/`), public so that the CLI and store tests can run the same files.
//!
//! A vector is a JSON file (format: `tests/vectors/README.md`):
//!
//! ```json
//! {"name": "...", "description": "...", "kind": "rollup",
//!  "input": {"batches": [[UsageRecord, ...], ...], "retract": [["tenant", "id"], ...],
//!            "query": Query},
//!  "expected": {"report": [IngestReport, ...], "buckets": [Bucket, ...]}}
//! ```
//!
//! The runner ingests the batches in order (one [`meterkit::engine::IngestReport`] per batch), then
//! retracts the listed records, then runs the query, and compares the [canonical](canonical_json)
//! JSON of `{"report": [...], "buckets": [...]}` with the canonical JSON of `expected`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use meterkit::{engine::IngestReport, Bucket, Decimal, Engine, Query, UsageRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One shared test vector, as read from its file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorCase {
    /// Short unique name (the file stem by convention).
    pub name: String,
    /// How the expected values were worked out, by hand.
    pub description: String,
    /// The kind of vector; the runner here knows `rollup`.
    pub kind: String,
    /// What to feed the engine.
    pub input: VectorInput,
    /// What the engine must answer, as JSON.
    pub expected: Value,
}

/// The input of a `rollup` vector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorInput {
    /// Ingest batches, in order.
    pub batches: Vec<Vec<UsageRecord>>,
    /// `(tenant, id)` of records to retract after every batch is ingested.
    #[serde(default)]
    pub retract: Vec<(String, String)>,
    /// The query whose buckets are compared.
    pub query: Query,
}

/// What a `rollup` vector produces: one report per batch, then the query's buckets.
#[derive(Debug, Clone, Serialize)]
pub struct VectorOutput {
    /// One ingest report per batch.
    pub report: Vec<IngestReport>,
    /// The query result.
    pub buckets: Vec<Bucket>,
}

/// The directory of the rollup vectors (`tests/vectors/rollup`).
pub fn rollup_vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors").join("rollup")
}

/// Every `*.json` file of `dir`, sorted by name.
///
/// # Errors
/// A message naming the directory when it cannot be read.
pub fn vector_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// Read and parse one vector file.
///
/// # Errors
/// A message naming the file (and serde's line/column) when it cannot be read or parsed, or
/// when its kind is not `rollup`.
pub fn load_case(path: &Path) -> Result<VectorCase, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let case: VectorCase = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if case.kind != "rollup" {
        return Err(format!("{}: unknown vector kind '{}'", path.display(), case.kind));
    }
    Ok(case)
}

/// Run a case against `engine` (normally a fresh one): ingest every batch, retract, query.
///
/// # Errors
/// The first engine error (an ingest that fails as a whole, a retraction of an unknown record,
/// an invalid query).
pub fn run_case_on(engine: &Engine, case: &VectorCase) -> meterkit::Result<VectorOutput> {
    let mut report = Vec::with_capacity(case.input.batches.len());
    for batch in &case.input.batches {
        report.push(engine.ingest(batch)?);
    }
    for (tenant, id) in &case.input.retract {
        engine.retract(tenant, id)?;
    }
    let buckets = engine.query(&case.input.query)?;
    Ok(VectorOutput { report, buckets })
}

/// Run a case on a fresh in-memory engine and return the canonical JSON of its output.
///
/// # Errors
/// As [`run_case_on`].
pub fn run_case(case: &VectorCase) -> meterkit::Result<String> {
    let out = run_case_on(&Engine::in_memory(), case)?;
    Ok(canonical_output(&out))
}

pub use meterkit::json::canonical_json;

/// The canonical JSON of an output (see [`canonical_json`]).
pub fn canonical_output(out: &VectorOutput) -> String {
    // Serializing plain structs of strings, integers and maps cannot fail.
    canonical_json(&serde_json::to_value(out).unwrap_or(Value::Null))
}

/// The canonical JSON of a case's `expected` value.
pub fn expected_json(case: &VectorCase) -> String {
    canonical_json(&case.expected)
}

/// An instant from RFC 3339 text; panics on bad text (test helper only, for literals).
pub fn ts(text: &str) -> DateTime<Utc> {
    meterkit::time::parse_ts(text).unwrap_or_else(|e| panic!("bad test timestamp {text}: {e}"))
}

/// A decimal from text; panics on bad text (test helper only, for literals).
pub fn dec(text: &str) -> Decimal {
    meterkit::decimal::parse_decimal(text).unwrap_or_else(|e| panic!("bad test decimal {text}: {e}"))
}

/// A usage record with no dimensions.
pub fn rec(tenant: &str, id: &str, subject: &str, metric: &str, quantity: &str, at: &str) -> UsageRecord {
    UsageRecord::new(tenant, id, subject, metric, dec(quantity), ts(at))
}

/// The JSON text of a query result (serde field order), for comparing two results exactly.
pub fn buckets_json(buckets: &[Bucket]) -> String {
    serde_json::to_string(buckets).unwrap_or_default()
}

/// The PostgreSQL server for the tests: `METERKIT_PG_URL` (set by `scripts/pg-server`). `None`
/// (after printing why the caller's test is skipped) when it is unset; panics instead when
/// `METERKIT_REQUIRE_PG=1`, so that CI never skips these tests silently.
pub fn pg_url(test: &str) -> Option<String> {
    match std::env::var("METERKIT_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("METERKIT_REQUIRE_PG").as_deref() != Ok("1"),
                "METERKIT_REQUIRE_PG=1 but METERKIT_PG_URL is unset: {test} needs a PostgreSQL server"
            );
            eprintln!("SKIPPED {test}: no PostgreSQL server (set METERKIT_PG_URL, or run scripts/test-postgres)");
            None
        }
    }
}

/// A fresh schema name, unique across the processes and threads of a test run.
pub fn fresh_schema() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("t_{}_{}_{}", std::process::id(), nanos, N.fetch_add(1, Ordering::Relaxed))
}

/// A PostgreSQL store in a fresh schema of the test server (see [`pg_url`]); panics when the
/// server cannot be reached.
pub fn pg_store(url: &str, schema: &str) -> meterkit_postgres::PgStore {
    meterkit_postgres::PgStore::open_with(meterkit_postgres::PgOptions::new(url).schema(schema))
        .unwrap_or_else(|e| panic!("cannot open the PostgreSQL store at {url} (schema {schema}): {e}"))
}

/// The directory of the reading vectors (`tests/vectors/reading`).
pub fn reading_vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors").join("reading")
}

/// The projection of a reading outcome the vectors compare (tests/vectors/README.md):
/// `{"meter","timestamp","reading","status","consumption","findings":[{"rule","severity","action"}],
/// "records":[{"id","timestamp","end","quantity","quality"}]}`.
pub fn reading_projection(outcome: &Value) -> Value {
    let pick = |v: &Value, keys: &[&str]| -> Value {
        Value::Object(keys.iter().map(|k| ((*k).to_string(), v.get(*k).cloned().unwrap_or(Value::Null))).collect())
    };
    let mut out = pick(outcome, &["meter", "timestamp", "reading", "status", "consumption"]);
    let list = |key: &str| outcome.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    out["findings"] = list("findings").iter().map(|f| pick(f, &["rule", "severity", "action"])).collect();
    out["records"] = list("records")
        .iter()
        .map(|r| {
            let mut p = pick(r, &["id", "timestamp", "end", "quantity"]);
            p["quality"] = r.get("quality").cloned().unwrap_or_else(|| Value::from("actual"));
            p
        })
        .collect();
    out
}

/// Run a reading vector (`kind: "reading"`) on `engine`: every reading in order through
/// [`Engine::record_reading`]; the canonical JSON of `{"outcomes": [projection, ...]}`.
///
/// # Errors
/// A message naming the reading when the case is malformed or the engine fails.
pub fn run_reading_case(engine: &Engine, case: &Value) -> Result<String, String> {
    let input = &case["input"];
    let tenant = input["tenant"].as_str().ok_or("input.tenant")?;
    let metric = input["metric"].as_str().ok_or("input.metric")?;
    let opts: meterkit::reading::check::ReadingOptions =
        serde_json::from_value(input["options"].clone()).map_err(|e| format!("input.options: {e}"))?;
    let mut outcomes = Vec::new();
    for (i, item) in input["readings"].as_array().ok_or("input.readings")?.iter().enumerate() {
        let reading: meterkit::MeterReading =
            serde_json::from_value(item["reading"].clone()).map_err(|e| format!("readings[{i}]: {e}"))?;
        let exchange = match item.get("exchange").and_then(Value::as_str) {
            Some(s) => Some(s.parse::<Decimal>().map_err(|e| format!("readings[{i}].exchange: {e}"))?),
            None => None,
        };
        let outcome = engine
            .record_reading(tenant, metric, &reading, exchange, &opts)
            .map_err(|e| format!("readings[{i}]: {e}"))?;
        outcomes.push(reading_projection(&serde_json::to_value(&outcome).map_err(|e| e.to_string())?));
    }
    Ok(canonical_json(&serde_json::json!({ "outcomes": outcomes })))
}

/// The directory of the counter vectors (`tests/vectors/counter`).
pub fn counter_vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors").join("counter")
}

/// The projection of an `Engine::track_counters` outcome the counter vectors compare
/// (tests/vectors/README.md): `{"accepted","duplicates","rejected": N,
/// "records":[{"id","timestamp","end","quantity","quality"}],
/// "findings":[{"rule","severity","action","subject","timestamp"}]}`.
pub fn counter_projection(outcome: &Value) -> Value {
    let pick = |v: &Value, keys: &[&str]| -> Value {
        Value::Object(keys.iter().map(|k| ((*k).to_string(), v.get(*k).cloned().unwrap_or(Value::Null))).collect())
    };
    let list = |v: &Value, key: &str| v.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let report = &outcome["report"];
    serde_json::json!({
        "accepted": report["accepted"],
        "duplicates": report["duplicates"],
        "rejected": list(report, "rejected").len(),
        "records": list(outcome, "records").iter().map(|r| {
            let mut p = pick(r, &["id", "timestamp", "end", "quantity"]);
            p["quality"] = r.get("quality").cloned().unwrap_or_else(|| Value::from("actual"));
            p
        }).collect::<Vec<_>>(),
        "findings": list(outcome, "findings").iter()
            .map(|f| pick(f, &["rule", "severity", "action", "subject", "timestamp"]))
            .collect::<Vec<_>>(),
    })
}

/// Run a counter vector (`kind: "counter"`): each call of `input.calls` through
/// `Engine::track_counters` — on one engine from `open`, or with `restart` on a new engine from
/// `open` for every call (the same store reopened: the tracker state must come from the store).
/// The canonical JSON of `{"calls": [projection, ...]}`.
///
/// # Errors
/// A message naming the call when the case is malformed or the engine fails.
pub fn run_counter_case(case: &Value, open: &mut dyn FnMut() -> Engine, restart: bool) -> Result<String, String> {
    let input = &case["input"];
    let tenant = input["tenant"].as_str().ok_or("input.tenant")?;
    let metric = input["metric"].as_str().ok_or("input.metric")?;
    let mut engine = open();
    let mut calls = Vec::new();
    for (i, call) in input["calls"].as_array().ok_or("input.calls")?.iter().enumerate() {
        if restart && i > 0 {
            drop(engine);
            engine = open();
        }
        let opts: meterkit::reading::counter::CounterOptions =
            serde_json::from_value(call["options"].clone()).map_err(|e| format!("calls[{i}].options: {e}"))?;
        let readings: Vec<meterkit::MeterReading> =
            serde_json::from_value(call["readings"].clone()).map_err(|e| format!("calls[{i}].readings: {e}"))?;
        let outcome =
            engine.track_counters(tenant, metric, &readings, &opts).map_err(|e| format!("calls[{i}]: {e}"))?;
        calls.push(counter_projection(&serde_json::to_value(&outcome).map_err(|e| e.to_string())?));
    }
    Ok(canonical_json(&serde_json::json!({ "calls": calls })))
}

/// The directory of the partial-state vectors (`tests/vectors/partial`).
pub fn partial_vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors").join("partial")
}

/// Run a partial-state vector (`kind: "partial"`, tests/vectors/README.md) with `engine` as the
/// import target: each partition's records through a `PartialRollup`, its states through the JSON
/// form and back, all merged, finalized for the query's tenant, and imported **twice** into
/// `engine` before the query runs. The canonical JSON of
/// `{"partial_rows": [rows per partition], "buckets": finalized, "imported": query after the imports}`.
///
/// # Errors
/// A message naming the step when the case is malformed or the core fails.
pub fn run_partial_case(engine: &Engine, case: &Value) -> Result<String, String> {
    use meterkit::rollup::partial;
    let input = &case["input"];
    let spec: meterkit::RollupSpec =
        serde_json::from_value(input["spec"].clone()).map_err(|e| format!("input.spec: {e}"))?;
    let query: Query = serde_json::from_value(input["query"].clone()).map_err(|e| format!("input.query: {e}"))?;
    let mut rows = Vec::new();
    let mut states = Vec::new();
    for (i, part) in input["partitions"].as_array().ok_or("input.partitions")?.iter().enumerate() {
        let records: Vec<UsageRecord> =
            serde_json::from_value(part.clone()).map_err(|e| format!("partitions[{i}]: {e}"))?;
        let mut p = partial::PartialRollup::new(&spec).map_err(|e| e.to_string())?;
        for r in &records {
            p.add(r).map_err(|e| format!("partitions[{i}]: {e}"))?;
        }
        let json = partial::columns_to_json(&partial::to_columns(&p.finish(), &spec).map_err(|e| e.to_string())?);
        let back = partial::columns_from_json(&json, &spec).map_err(|e| e.to_string())?;
        rows.push(back.tenant.len());
        states.extend(partial::from_columns(&back).map_err(|e| e.to_string())?);
    }
    let merged = partial::merge(states).map_err(|e| e.to_string())?;
    let buckets: Vec<Bucket> = partial::finalize(&merged, &spec)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|(t, _)| *t == query.tenant)
        .map(|(_, b)| b)
        .collect();
    let import: Vec<_> = merged.into_iter().map(|p| (p.key, p.end, p.state)).collect();
    for _ in 0..2 {
        engine.import_buckets(&spec, &import).map_err(|e| format!("import: {e}"))?;
    }
    let imported = engine.query(&query).map_err(|e| format!("query: {e}"))?;
    Ok(canonical_json(&serde_json::json!({ "partial_rows": rows, "buckets": buckets, "imported": imported })))
}
