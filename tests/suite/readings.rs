//! The shared reading vectors (`tests/vectors/reading/*.json`) on the in-memory engine, and the
//! reading store's atomicity and persistence across an engine restart (SQLite).

use meterkit::{reading::check::ReadingOptions, reading::check::ReadingStatus, Engine, MeterReading};
use meterkit_tests::{canonical_json, dec, reading_vectors_dir, run_reading_case, ts, vector_files};

#[test]
fn every_reading_vector_matches_its_hand_worked_expectation() {
    let files = vector_files(&reading_vectors_dir()).unwrap();
    assert!(files.len() >= 8, "expected at least 8 reading vectors, found {}", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let case: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        assert_eq!(case["name"], stem, "{}: name must equal the file stem", path.display());
        assert_eq!(case["kind"], "reading", "{}", path.display());
        let expected = canonical_json(&case["expected"]);
        match run_reading_case(&Engine::in_memory(), &case) {
            Ok(actual) if actual == expected => {}
            Ok(actual) => failures.push(format!("{stem}:\n  expected {expected}\n  actual   {actual}")),
            Err(e) => failures.push(format!("{stem}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} vector(s) failed:\n{}", failures.len(), failures.join("\n"));
}

fn reading(meter: &str, at: &str, register: &str) -> MeterReading {
    MeterReading::new(meter, ts(at), dec(register)).digits(5)
}

/// Readings, consumption and findings survive a restart of the engine on the same SQLite file:
/// the history is read from the store, so the next reading is measured from the stored baseline
/// and a resent reading is recognised.
#[test]
fn the_reading_history_survives_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let opts = ReadingOptions::default();
    {
        let engine = Engine::new(meterkit_sqlite::SqliteStore::open(&path).unwrap()).unwrap();
        engine.record_reading("t", "kwh", &reading("m", "2026-01-01T00:00:00Z", "100"), None, &opts).unwrap();
        let o = engine.record_reading("t", "kwh", &reading("m", "2026-01-02T00:00:00Z", "150"), None, &opts).unwrap();
        assert_eq!(o.consumption, Some(dec("50")));
    }
    let engine = Engine::new(meterkit_sqlite::SqliteStore::open(&path).unwrap()).unwrap();
    assert_eq!(engine.readings("t", "m").unwrap().len(), 2);
    let again = engine.record_reading("t", "kwh", &reading("m", "2026-01-02T00:00:00Z", "150"), None, &opts).unwrap();
    assert!(again.records.is_empty(), "a resent reading stores nothing");
    let back = engine.record_reading("t", "kwh", &reading("m", "2026-01-03T00:00:00Z", "149"), None, &opts).unwrap();
    assert_eq!(back.status, ReadingStatus::Rejected);
    let next = engine.record_reading("t", "kwh", &reading("m", "2026-01-03T00:00:00Z", "170"), None, &opts).unwrap();
    assert_eq!(next.consumption, Some(dec("20")));
    let records =
        engine.records("t", "kwh", Some("m"), ts("2026-01-01T00:00:00Z"), ts("2026-02-01T00:00:00Z")).unwrap();
    let total: meterkit::Decimal = records.iter().map(|r| r.quantity).sum();
    assert_eq!((records.len(), total), (2, dec("70")), "50 + 20, each stored once");
}
