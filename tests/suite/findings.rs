//! Findings reported against the core by the test suite, kept as regression tests once fixed.

use std::sync::Arc;

use chrono::Duration;
use meterkit::{notify::CollectingNotifier, Engine, ErrorKind, Event, RollupSpec, Window};
use meterkit_tests::{rec, ts};

/// A record for a window that `close_windows` already passed, but which had no bucket yet
/// (no usage was seen in it), is not reported as late: lateness is tracked per existing bucket,
/// not per closed window. The bucket is created open and `WindowClosed` is emitted for it at the
/// next close — after a consumer may already have billed that window as empty.
#[test]
fn a_record_for_an_already_closed_empty_window_is_late() {
    let notifier = Arc::new(CollectingNotifier::new());
    let engine = Engine::in_memory().with_notifier(notifier.clone());
    engine.add_spec(RollupSpec::new("kwh", Window::Hour, "UTC").unwrap()).unwrap();
    engine.ingest(&[rec("t", "a", "m1", "kwh", "1", "2024-01-01T10:15:00Z")]).unwrap();
    assert_eq!(engine.close_windows("t", ts("2024-01-01T14:00:00Z"), Duration::zero()).unwrap(), 1);
    notifier.take();
    // 09:00-10:00 ended before the close at 14:00, but had no bucket.
    engine.ingest(&[rec("t", "b", "m1", "kwh", "2", "2024-01-01T09:30:00Z")]).unwrap();
    let late = notifier.take().iter().filter(|e| matches!(e, Event::LateRecord { .. })).count();
    assert_eq!(late, 1, "the 09:30 record arrived after its window was closed");
}

/// A batch that repeats a record conflicting with the stored version counts the repeat as a
/// duplicate (of the rejected first copy), although nothing of it was stored.
#[test]
fn a_repeat_of_a_conflicting_record_is_a_conflict_too() {
    let engine = Engine::in_memory();
    engine.ingest(&[rec("t", "r1", "m1", "kwh", "1", "2024-01-01T10:00:00Z")]).unwrap();
    let changed = rec("t", "r1", "m1", "kwh", "2", "2024-01-01T10:00:00Z");
    let report = engine.ingest(&[changed.clone(), changed]).unwrap();
    assert_eq!(report.duplicates, 0);
    assert_eq!(report.rejected.len(), 2);
    assert!(report.rejected.iter().all(|r| r.kind == ErrorKind::Conflict));
}

/// A query grouping by the same dimension twice is refused, as a spec doing so is.
#[test]
fn a_query_grouping_twice_by_one_dimension_is_refused() {
    let engine = Engine::in_memory();
    let q = meterkit::Query::new("t", "kwh", Window::Day, "UTC").group_by(["carrier", "carrier"]);
    let err = engine.query(&q).unwrap_err();
    assert_eq!((err.kind(), err.field()), (ErrorKind::InvalidQuery, Some("group_by")));
}
