//! Engine behaviours: fill, grouping and filters, top-n, totals, window closing and late records,
//! tenant isolation, rejections, and odd inputs that must give errors rather than panics.

use std::sync::Arc;

use chrono::Duration;
use meterkit::{
    engine::Fill, notify::CollectingNotifier, time::MAX_TIMESTAMP_SECS, time::MIN_TIMESTAMP_SECS, Aggregation, Decimal,
    Engine, ErrorKind, Event, Query, RollupSpec, UsageRecord, Window,
};
use meterkit_tests::{buckets_json, dec, rec, ts};

fn sim(id: &str, subject: &str, carrier: &str, region: &str, direction: &str, q: &str, at: &str) -> UsageRecord {
    rec("op", id, subject, "bytes", q, at)
        .with_dimension("carrier", carrier)
        .with_dimension("region", region)
        .with_dimension("direction", direction)
}

/// A small mobile-data data set: three carriers, two regions, up/down, 1-2 May 2024 UTC.
fn mobile() -> Vec<UsageRecord> {
    vec![
        sim("d1", "sim-1", "A", "north", "down", "100", "2024-05-01T01:00:00Z"),
        sim("d2", "sim-1", "A", "north", "up", "10", "2024-05-01T02:00:00Z"),
        sim("d3", "sim-2", "A", "south", "down", "200", "2024-05-01T03:00:00Z"),
        sim("d4", "sim-3", "B", "north", "down", "15", "2024-05-01T04:00:00Z"),
        sim("d5", "sim-4", "C", "south", "down", "60", "2024-05-02T05:00:00Z"),
        sim("d6", "sim-4", "C", "south", "up", "40", "2024-05-02T06:00:00Z"),
        sim("d7", "sim-1", "A", "north", "down", "40", "2024-05-02T07:00:00Z"),
    ]
}

fn sums(rows: &[meterkit::Bucket]) -> Vec<String> {
    rows.iter().map(|b| b.sum.to_string()).collect()
}

#[test]
fn fill_zero_returns_every_window_for_every_group() {
    let engine = Engine::in_memory();
    engine.ingest(&mobile()).unwrap();
    let q = Query::new("op", "bytes", Window::Day, "UTC")
        .group_by(["carrier"])
        .range(ts("2024-04-30T00:00:00Z"), ts("2024-05-03T00:00:00Z"))
        .fill(Fill::Zero);
    let rows = engine.query(&q).unwrap();
    // 3 days x 3 carriers seen in the range.
    assert_eq!(rows.len(), 9);
    let line: Vec<(String, String, u64)> = rows
        .iter()
        .map(|b| (b.window_start.format("%d").to_string(), b.group["carrier"].clone().unwrap(), b.count))
        .collect();
    let expect = [
        ("30", "A", 0),
        ("30", "B", 0),
        ("30", "C", 0),
        ("01", "A", 3),
        ("01", "B", 1),
        ("01", "C", 0),
        ("02", "A", 1),
        ("02", "B", 0),
        ("02", "C", 2),
    ];
    let expect: Vec<(String, String, u64)> =
        expect.iter().map(|(d, c, n)| (d.to_string(), c.to_string(), *n)).collect();
    assert_eq!(line, expect);
    assert_eq!(sums(&rows), ["0", "0", "0", "310", "15", "0", "40", "0", "100"]);
    let empty = &rows[0];
    assert_eq!((empty.min, empty.max, empty.mean, empty.latest), (None, None, None, None));
}

#[test]
fn fill_zero_needs_a_range_and_a_sane_one() {
    let engine = Engine::in_memory();
    let q = Query::new("op", "bytes", Window::Day, "UTC").fill(Fill::Zero);
    let e = engine.query(&q).unwrap_err();
    assert_eq!((e.kind(), e.field()), (ErrorKind::InvalidQuery, Some("fill")));
    let q = Query::new("op", "bytes", Window::Day, "UTC").range(ts("2024-05-02T00:00:00Z"), ts("2024-05-01T00:00:00Z"));
    let e = engine.query(&q).unwrap_err();
    assert_eq!((e.kind(), e.field()), (ErrorKind::InvalidQuery, Some("to")));
    // About 1.05 million one-minute windows: refused instead of building them all.
    let q = Query::new("op", "bytes", Window::Minutes(1), "UTC")
        .range(ts("2024-01-01T00:00:00Z"), ts("2026-01-01T00:00:00Z"))
        .fill(Fill::Zero);
    assert_eq!(engine.query(&q).unwrap_err().kind(), ErrorKind::InvalidQuery);
}

#[test]
fn group_by_two_dimensions_with_a_filter() {
    let engine = Engine::in_memory();
    engine.ingest(&mobile()).unwrap();
    let q = Query::new("op", "bytes", Window::Month, "UTC").group_by(["carrier", "region"]).filter("direction", "down");
    let rows = engine.query(&q).unwrap();
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|b| (b.group["carrier"].clone().unwrap(), b.group["region"].clone().unwrap(), b.sum.to_string()))
        .collect();
    let expect = [("A", "north", "140"), ("A", "south", "200"), ("B", "north", "15"), ("C", "south", "60")];
    let expect: Vec<(String, String, String)> =
        expect.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(got, expect);
    // The filter dimension is not part of the output group.
    assert!(rows.iter().all(|b| b.group.len() == 2 && b.subject.is_none()));
}

#[test]
fn subject_filter_sees_only_that_subject() {
    let engine = Engine::in_memory();
    engine.ingest(&mobile()).unwrap();
    let rows = engine.query(&Query::new("op", "bytes", Window::Day, "UTC").subject("sim-1")).unwrap();
    // sim-1: 100 + 10 on 1 May, 40 on 2 May.
    assert_eq!(sums(&rows), ["110", "40"]);
    assert!(rows.iter().all(|b| b.subject.as_deref() == Some("sim-1")));
    let rows = engine.query(&Query::new("op", "bytes", Window::Day, "UTC").subject("sim-unknown")).unwrap();
    assert!(rows.is_empty());
    // Subject together with grouping by carrier: sim-1 is only ever on A.
    let rows =
        engine.query(&Query::new("op", "bytes", Window::Month, "UTC").subject("sim-1").group_by(["carrier"])).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].group["carrier"].as_deref(), rows[0].sum.to_string()), (Some("A"), "150".to_string()));
}

#[test]
fn unique_counts_distinct_subjects_per_group() {
    let engine = Engine::in_memory();
    engine.ingest(&mobile()).unwrap();
    let q = Query::new("op", "bytes", Window::Month, "UTC").group_by(["carrier"]).unique("subject");
    let rows = engine.query(&q).unwrap();
    let got: Vec<(Option<String>, u64)> =
        rows.iter().map(|b| (b.group["carrier"].clone(), b.unique["subject"])).collect();
    assert_eq!(got, vec![(Some("A".into()), 2), (Some("B".into()), 1), (Some("C".into()), 1)]);
    // A query that does not ask for unique counts does not return them.
    let rows = engine.query(&Query::new("op", "bytes", Window::Month, "UTC").group_by(["carrier"])).unwrap();
    assert!(rows.iter().all(|b| b.unique.is_empty()));
}

#[test]
fn top_n_by_sum_and_by_unique_count() {
    let engine = Engine::in_memory();
    engine.ingest(&mobile()).unwrap();
    let q = Query::new("op", "bytes", Window::Day, "UTC").group_by(["carrier"]).unique("subject");
    // Sums over both days: A 100+10+200+40 = 350, B 15, C 100.
    let top = engine.top_n(&q, &Aggregation::Sum, 2).unwrap();
    let got: Vec<(String, String)> =
        top.iter().map(|b| (b.group["carrier"].clone().unwrap(), b.sum.to_string())).collect();
    assert_eq!(got, vec![("A".to_string(), "350".to_string()), ("C".to_string(), "100".to_string())]);
    // A's rows cover both days: the merged row spans 1 May 00:00 to 3 May 00:00.
    assert_eq!((top[0].window_start, top[0].window_end), (ts("2024-05-01T00:00:00Z"), ts("2024-05-03T00:00:00Z")));
    assert_eq!(top[0].unique["subject"], 2);
    // By count: A 4, C 2, B 1.
    let by_count = engine.top_n(&q, &Aggregation::Count, 3).unwrap();
    let got: Vec<u64> = by_count.iter().map(|b| b.count).collect();
    assert_eq!(got, [4, 2, 1]);
    // By unique subjects: A 2, then B and C tie at 1 and are ordered by group value.
    let by_unique = engine.top_n(&q, &Aggregation::UniqueCount("subject".into()), 3).unwrap();
    let got: Vec<String> = by_unique.iter().map(|b| b.group["carrier"].clone().unwrap()).collect();
    assert_eq!(got, ["A", "B", "C"]);
    let e = engine.top_n(&q, &Aggregation::UniqueCount("region".into()), 3).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidQuery);
}

#[test]
fn totals_compare_with_the_previous_period() {
    const NY: &str = "America/New_York";
    let engine = Engine::in_memory();
    engine
        .ingest(&[
            // 31 March 23:00 EDT = 1 April 03:00Z: still March in New York.
            rec("t", "m", "m1", "kwh", "1000", "2024-04-01T03:00:00Z"),
            rec("t", "a1", "m1", "kwh", "60", "2024-04-01T04:00:00Z"),
            rec("t", "a2", "m1", "kwh", "40", "2024-04-30T12:00:00Z"),
            rec("t", "y1", "m1", "kwh", "150", "2024-05-15T12:00:00Z"),
        ])
        .unwrap();
    let t = engine.totals("t", "kwh", Window::Month, NY, ts("2024-05-20T00:00:00Z")).unwrap();
    assert_eq!((t.previous.sum, t.current.sum), (dec("100"), dec("150")));
    assert_eq!(t.previous.window_start, ts("2024-04-01T04:00:00Z"));
    assert_eq!(t.current.window_end, ts("2024-06-01T04:00:00Z"));
    assert_eq!(t.change_percent.map(|d| d.to_string()), Some("50".to_string()));
    // April vs March: (100 - 1000) / 1000 = -90 %.
    let t = engine.totals("t", "kwh", Window::Month, NY, ts("2024-04-10T00:00:00Z")).unwrap();
    assert_eq!(t.change_percent.map(|d| d.to_string()), Some("-90".to_string()));
    // June vs May: (0 - 150) / 150 = -100 %; July vs June: previous is 0 -> null.
    let t = engine.totals("t", "kwh", Window::Month, NY, ts("2024-06-10T00:00:00Z")).unwrap();
    assert_eq!(t.change_percent.map(|d| d.to_string()), Some("-100".to_string()));
    assert_eq!(t.current.count, 0);
    let t = engine.totals("t", "kwh", Window::Month, NY, ts("2024-07-10T00:00:00Z")).unwrap();
    assert_eq!(t.change_percent, None);
    let json = serde_json::to_value(&t).unwrap();
    assert!(json["change_percent"].is_null());
}

#[test]
fn totals_round_change_percent_half_even_to_two_places() {
    let engine = Engine::in_memory();
    engine
        .ingest(&[
            rec("t", "p", "m1", "kwh", "3", "2024-01-10T00:00:00Z"),
            rec("t", "c", "m1", "kwh", "4", "2024-02-10T00:00:00Z"),
        ])
        .unwrap();
    // (4 - 3) / 3 = 33.333... % -> 33.33.
    let t = engine.totals("t", "kwh", Window::Month, "UTC", ts("2024-02-10T00:00:00Z")).unwrap();
    assert_eq!(t.change_percent.unwrap().to_string(), "33.33");
}

fn closed_starts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::WindowClosed { bucket, .. } => Some(meterkit::time::fmt_ts(bucket.window_start)),
            _ => None,
        })
        .collect()
}

#[test]
fn close_windows_emits_window_closed_once_and_late_records_raise_late_record() {
    let notifier = Arc::new(CollectingNotifier::new());
    let engine = Engine::in_memory().with_notifier(notifier.clone());
    engine.add_spec(RollupSpec::new("kwh", Window::Hour, "UTC").unwrap()).unwrap();
    engine
        .ingest(&[
            rec("t", "a", "m1", "kwh", "1", "2024-01-01T10:15:00Z"),
            rec("t", "b", "m1", "kwh", "2", "2024-01-01T11:15:00Z"),
            rec("t", "c", "m1", "kwh", "4", "2024-01-01T12:15:00Z"),
        ])
        .unwrap();
    assert!(notifier.take().is_empty());
    // Now 12:30 with 15 minutes allowed lateness: cutoff 12:15, so 10:00 and 11:00 (ending 11:00
    // and 12:00) close; 12:00 (ending 13:00) stays open.
    let n = engine.close_windows("t", ts("2024-01-01T12:30:00Z"), Duration::minutes(15)).unwrap();
    assert_eq!(n, 2);
    let events = notifier.take();
    assert_eq!(closed_starts(&events), ["2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"]);
    match &events[0] {
        Event::WindowClosed { tenant, window, bucket } => {
            assert_eq!((tenant.as_str(), window.as_str(), bucket.sum), ("t", "hour", dec("1")));
        }
        other => panic!("unexpected event {other:?}"),
    }
    // Closing again closes nothing new.
    assert_eq!(engine.close_windows("t", ts("2024-01-01T12:30:00Z"), Duration::minutes(15)).unwrap(), 0);
    assert!(notifier.take().is_empty());
    // A late record for 10:00 updates the bucket and raises LateRecord, not WindowClosed.
    engine.ingest(&[rec("t", "late", "m1", "kwh", "0.5", "2024-01-01T10:45:00Z")]).unwrap();
    let events = notifier.take();
    assert_eq!(events.len(), 1);
    match &events[0] {
        Event::LateRecord { tenant, id, window, bucket } => {
            assert_eq!((tenant.as_str(), id.as_str(), window.as_str()), ("t", "late", "hour"));
            assert_eq!((bucket.sum, bucket.count), (dec("1.5"), 2));
        }
        other => panic!("unexpected event {other:?}"),
    }
    let rows = engine.query(&Query::new("t", "kwh", Window::Hour, "UTC")).unwrap();
    assert_eq!(sums(&rows), ["1.5", "2", "4"]);
    // Later, 12:00 closes; 10:00 is never closed a second time.
    assert_eq!(engine.close_windows("t", ts("2024-01-01T14:00:00Z"), Duration::zero()).unwrap(), 1);
    assert_eq!(closed_starts(&notifier.take()), ["2024-01-01T12:00:00Z"]);
    // Another tenant's windows are not closed by a call for "t".
    engine.ingest(&[rec("u", "a", "m1", "kwh", "1", "2024-01-01T10:15:00Z")]).unwrap();
    assert_eq!(engine.close_windows("t", ts("2024-01-02T00:00:00Z"), Duration::zero()).unwrap(), 0);
    assert_eq!(engine.close_windows("u", ts("2024-01-02T00:00:00Z"), Duration::zero()).unwrap(), 1);
}

#[test]
fn rejected_records_are_notified() {
    let notifier = Arc::new(CollectingNotifier::new());
    let engine = Engine::in_memory().with_notifier(notifier.clone());
    engine.ingest(&[rec("t", "a", "m1", "kwh", "1", "2024-01-01T10:00:00Z")]).unwrap();
    let report = engine
        .ingest(&[
            rec("t", "a", "m1", "kwh", "2", "2024-01-01T10:00:00Z"),
            rec("t", "", "m1", "kwh", "2", "2024-01-01T10:00:00Z"),
        ])
        .unwrap();
    assert_eq!(report.accepted, 0);
    let kinds: Vec<ErrorKind> = notifier
        .take()
        .iter()
        .filter_map(|e| match e {
            Event::RecordRejected { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    let mut expected = vec![ErrorKind::InvalidRecord, ErrorKind::Conflict];
    expected.sort_by_key(|k| k.code());
    let mut kinds = kinds;
    kinds.sort_by_key(|k| k.code());
    assert_eq!(kinds, expected);
}

#[test]
fn a_tenant_never_sees_another_tenants_data() {
    let engine = Engine::in_memory();
    let mut batch = mobile();
    // Tenant "other" uses the same ids, subjects and dimensions with other quantities.
    batch.extend(mobile().into_iter().map(|mut r| {
        r.tenant = "other".into();
        r.quantity *= Decimal::from(1000);
        r
    }));
    let report = engine.ingest(&batch).unwrap();
    assert_eq!((report.accepted, report.duplicates), (14, 0));
    let op = engine.query(&Query::new("op", "bytes", Window::Month, "UTC")).unwrap();
    let other = engine.query(&Query::new("other", "bytes", Window::Month, "UTC")).unwrap();
    assert_eq!(sums(&op), ["465"]);
    assert_eq!(sums(&other), ["465000"]);
    let q = Query::new("nobody", "bytes", Window::Month, "UTC");
    assert!(engine.query(&q).unwrap().is_empty());
    assert!(engine.top_n(&q.clone().group_by(["carrier"]), &Aggregation::Sum, 10).unwrap().is_empty());
    let t = engine.totals("nobody", "bytes", Window::Month, "UTC", ts("2024-05-10T00:00:00Z")).unwrap();
    assert_eq!((t.current.count, t.previous.count), (0, 0));
    assert!(engine
        .records("nobody", "bytes", None, ts("2024-01-01T00:00:00Z"), ts("2025-01-01T00:00:00Z"))
        .unwrap()
        .is_empty());
    // Retracting "other"'s d1 leaves "op"'s d1 alone.
    engine.retract("other", "d1").unwrap();
    assert_eq!(sums(&engine.query(&Query::new("op", "bytes", Window::Month, "UTC")).unwrap()), ["465"]);
    assert_eq!(sums(&engine.query(&Query::new("other", "bytes", Window::Month, "UTC")).unwrap()), ["365000"]);
    assert_eq!(engine.retract("nobody", "d2").unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn invalid_records_are_rejected_naming_the_field() {
    let good = rec("t", "r", "m1", "kwh", "1", "2024-01-01T00:00:00Z");
    let cases: Vec<(UsageRecord, &str)> = vec![
        (UsageRecord { id: String::new(), ..good.clone() }, "id"),
        (UsageRecord { tenant: String::new(), ..good.clone() }, "tenant"),
        (UsageRecord { subject: String::new(), ..good.clone() }, "subject"),
        (UsageRecord { metric: String::new(), ..good.clone() }, "metric"),
        (good.clone().with_end(ts("2023-12-31T23:59:59Z")), "end"),
        (good.clone().with_end(ts("2262-06-01T00:00:00Z")), "end"),
        (UsageRecord { timestamp: ts("2262-01-01T00:00:00Z"), ..good.clone() }, "timestamp"),
        (UsageRecord { timestamp: ts("1677-12-31T23:59:59Z"), ..good.clone() }, "timestamp"),
    ];
    for (r, field) in cases {
        let e = r.check().unwrap_err();
        assert_eq!((e.kind(), e.field()), (ErrorKind::InvalidRecord, Some(field)), "{r:?}");
        let engine = Engine::in_memory();
        let report = engine.ingest(std::slice::from_ref(&r)).unwrap();
        assert_eq!(report.accepted, 0);
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.rejected[0].kind, ErrorKind::InvalidRecord);
        assert!(report.rejected[0].reason.contains(field), "{} should name {field}", report.rejected[0].reason);
    }
    // end equal to timestamp is fine.
    assert!(good.clone().with_end(good.timestamp).check().is_ok());
}

#[test]
fn a_batch_with_invalid_records_still_applies_the_valid_ones() {
    let engine = Engine::in_memory();
    let report = engine
        .ingest(&[
            rec("t", "ok1", "m1", "kwh", "1", "2024-01-01T00:00:00Z"),
            rec("t", "bad", "", "kwh", "1", "2024-01-01T00:00:00Z"),
            rec("t", "ok2", "m1", "kwh", "2", "2024-01-01T01:00:00Z"),
        ])
        .unwrap();
    assert_eq!((report.accepted, report.duplicates, report.rejected.len()), (2, 0, 1));
    assert_eq!(sums(&engine.query(&Query::new("t", "kwh", Window::Day, "UTC")).unwrap()), ["3"]);
}

#[test]
fn extreme_timestamps_are_accepted_at_the_bounds_and_windowed_without_panic() {
    let engine = Engine::in_memory();
    let first = chrono::DateTime::from_timestamp(MIN_TIMESTAMP_SECS, 0).unwrap();
    let last = chrono::DateTime::from_timestamp(MAX_TIMESTAMP_SECS - 1, 0).unwrap();
    let report = engine
        .ingest(&[
            UsageRecord::new("t", "first", "m1", "kwh", dec("1"), first),
            UsageRecord::new("t", "last", "m1", "kwh", dec("2"), last),
        ])
        .unwrap();
    assert_eq!(report.accepted, 2);
    for zone in ["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati", "Australia/Lord_Howe"] {
        for w in [Window::Minutes(15), Window::Hour, Window::Day, Window::Week, Window::Month, Window::Year] {
            let rows = engine.query(&Query::new("t", "kwh", w, zone)).unwrap();
            assert_eq!(sums(&rows), ["1", "2"], "{w} in {zone}");
            assert!(rows.iter().all(|b| b.window_start < b.window_end));
        }
    }
}

/// Issue 12: a record that would overflow its bucket is rejected alone (kind overflow, with its
/// id) and the rest of its batch is stored; a merge across buckets that overflows is an error of
/// that tenant's query, not a panic.
#[test]
fn a_sum_that_would_overflow_rejects_the_record_and_keeps_the_rest() {
    let engine = Engine::in_memory();
    let q = Query::new("t", "kwh", Window::Day, "UTC");
    engine.add_spec(RollupSpec::new("kwh", Window::Day, "UTC").unwrap()).unwrap();
    assert!(engine.query(&q).unwrap().is_empty());
    let big = |id: &str, at: &str| UsageRecord::new("t", id, "m1", "kwh", Decimal::MAX, ts(at));
    let report = engine.ingest(&[big("a", "2024-01-01T00:00:00Z"), big("b", "2024-01-01T01:00:00Z")]).unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!((report.rejected[0].id.as_str(), report.rejected[0].kind), ("b", ErrorKind::Overflow));
    let rows = engine.query(&q).unwrap();
    assert_eq!((rows[0].sum, rows[0].count), (Decimal::MAX, 1));
    // b on top of the stored bucket again: rejected, not stored.
    let report = engine.ingest(&[big("b", "2024-01-01T01:00:00Z")]).unwrap();
    assert_eq!((report.accepted, report.rejected.len()), (0, 1));
    let stored = engine.records("t", "kwh", None, ts("2024-01-01T00:00:00Z"), ts("2024-01-02T00:00:00Z")).unwrap();
    assert_eq!(stored.len(), 1);
    // b in another day is fine.
    assert_eq!(engine.ingest(&[big("b", "2024-01-02T01:00:00Z")]).unwrap().accepted, 1);
    // Merging the two days into one month overflows: the tenant's month queries (unplanned:
    // answered from the records) fail with E_OVERFLOW naming the record, and add no spec.
    for _ in 0..2 {
        let e = engine.query(&Query::new("t", "kwh", Window::Month, "UTC")).unwrap_err();
        assert_eq!((e.kind(), e.record_id()), (ErrorKind::Overflow, Some("b")));
    }
    assert_eq!(engine.specs().len(), 1);
    // A month spec added now overflows for this tenant alone: its month queries fail the same
    // way, naming the record; the spec is kept for other tenants.
    engine.add_spec(RollupSpec::new("kwh", Window::Month, "UTC").unwrap()).unwrap();
    let e = engine.query(&Query::new("t", "kwh", Window::Month, "UTC")).unwrap_err();
    assert_eq!((e.kind(), e.record_id()), (ErrorKind::Overflow, Some("b")));
    engine.ingest(&[UsageRecord::new("u", "x", "m1", "kwh", Decimal::ONE, ts("2024-01-01T00:00:00Z"))]).unwrap();
    assert_eq!(engine.query(&Query::new("u", "kwh", Window::Month, "UTC")).unwrap()[0].sum, Decimal::ONE);
}

#[test]
fn odd_query_inputs_are_errors() {
    let engine = Engine::in_memory();
    engine.ingest(&mobile()).unwrap();
    let e = engine.query(&Query::new("op", "", Window::Day, "UTC")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidQuery);
    let e = engine.query(&Query::new("op", "bytes", Window::Day, "")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidTimeZone);
    let e = engine.query(&Query::new("op", "bytes", Window::Minutes(7), "UTC")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidWindow);
    let spec = RollupSpec::new("bytes", Window::Day, "UTC").unwrap().group_by(["carrier", "carrier"]);
    assert_eq!(engine.add_spec(spec).unwrap_err().kind(), ErrorKind::InvalidQuery);
    // Empty tenant or unknown metric: simply nothing.
    assert!(engine.query(&Query::new("", "bytes", Window::Day, "UTC")).unwrap().is_empty());
    assert!(engine.query(&Query::new("op", "nope", Window::Day, "UTC")).unwrap().is_empty());
    // Grouping by a dimension no record has: one group with a null value.
    let rows = engine.query(&Query::new("op", "bytes", Window::Month, "UTC").group_by(["colour"])).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].group["colour"], None);
    // Bad JSON for a query is a serde error, not a panic.
    assert!(
        serde_json::from_str::<Query>(r#"{"tenant":"t","metric":"m","window":"minutes:0","time_zone":"UTC"}"#).is_err()
    );
    assert!(serde_json::from_str::<UsageRecord>(
        r#"{"id":"a","tenant":"t","subject":"s","metric":"m","quantity":"NaN","timestamp":"2024-01-01T00:00:00Z"}"#
    )
    .is_err());
    assert!(serde_json::from_str::<UsageRecord>(
        r#"{"id":"a","tenant":"t","subject":"s","metric":"m","quantity":"1","timestamp":"yesterday"}"#
    )
    .is_err());
    assert!(serde_json::from_str::<UsageRecord>(r#"{"id":"a","tenant":"t","subject":"s","metric":"m","quantity":"99999999999999999999999999999999","timestamp":"2024-01-01T00:00:00Z"}"#).is_err());
}

#[test]
fn records_are_listed_by_timestamp_then_id() {
    let engine = Engine::in_memory();
    engine
        .ingest(&[
            rec("t", "b", "m1", "kwh", "1", "2024-01-01T10:00:00Z"),
            rec("t", "a", "m1", "kwh", "1", "2024-01-01T10:00:00Z"),
            rec("t", "c", "m2", "kwh", "1", "2024-01-01T09:00:00Z"),
            rec("t", "d", "m1", "kwh", "1", "2024-01-01T11:00:00Z"),
        ])
        .unwrap();
    let ids = |subject: Option<&str>| -> Vec<String> {
        engine
            .records("t", "kwh", subject, ts("2024-01-01T09:00:00Z"), ts("2024-01-01T11:00:00Z"))
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(None), ["c", "a", "b"]);
    assert_eq!(ids(Some("m1")), ["a", "b"]);
}

#[test]
fn a_spec_added_later_is_backfilled_and_equal_specs_are_shared() {
    let engine = Engine::in_memory();
    engine.ingest(&mobile()).unwrap();
    let id = engine.add_spec(RollupSpec::new("bytes", Window::Day, "UTC").unwrap().group_by(["carrier"])).unwrap();
    let again = engine.add_spec(RollupSpec::new("bytes", Window::Day, "UTC").unwrap().group_by(["carrier"])).unwrap();
    assert_eq!(id, again);
    let q = Query::new("op", "bytes", Window::Day, "UTC").group_by(["carrier"]);
    let backfilled = buckets_json(&engine.query(&q).unwrap());
    let fresh = Engine::in_memory();
    fresh.add_spec(RollupSpec::new("bytes", Window::Day, "UTC").unwrap().group_by(["carrier"])).unwrap();
    fresh.ingest(&mobile()).unwrap();
    assert_eq!(buckets_json(&fresh.query(&q).unwrap()), backfilled);
    assert_eq!(engine.specs().len(), 1, "the query reused the added spec");
}
