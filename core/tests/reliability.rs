//! Issue 12, sections 1–3 through the library: an overflowing record is turned away alone and
//! never reaches another tenant, overflow is an error (never a panic), and result sizes are
//! bounded before anything is allocated.

use chrono::{DateTime, Duration, TimeZone, Utc};
use meterkit::{
    engine::Fill, record::Quality, store::ChangeSet, BillRequest, Decimal, Engine, ErrorKind, MemoryStore, Query,
    RollupSpec, Store, Tariff, UsageRecord, Window,
};

const MAX: &str = "79228162514264337593543950335";

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, day, hour, 0, 0).unwrap()
}

fn rec(tenant: &str, id: &str, q: &str, t: DateTime<Utc>) -> UsageRecord {
    UsageRecord::new(tenant, id, "meter", "kwh", q.parse().unwrap(), t)
}

fn day_sums(engine: &Engine, tenant: &str) -> meterkit::Result<Vec<String>> {
    Ok(engine.query(&Query::new(tenant, "kwh", Window::Day, "UTC"))?.iter().map(|b| b.sum.to_string()).collect())
}

/// With a spec in place, a record that would overflow its bucket is rejected (kind overflow,
/// with its id); the rest of its batch — other buckets, other tenants — is stored.
#[test]
fn a_record_that_would_overflow_its_bucket_is_rejected_alone() {
    let engine = Engine::in_memory();
    engine.add_spec(RollupSpec::new("kwh", Window::Day, "UTC").unwrap()).unwrap();
    let first = engine.ingest(&[rec("evil", "big", MAX, at(1, 0))]).unwrap();
    assert_eq!(first.accepted, 1);
    let batch = [
        rec("good", "g1", "2.5", at(1, 1)),
        rec("evil", "one", "1", at(1, 2)),
        rec("evil", "next-day", "5", at(2, 0)),
        rec("good", "g2", "1.5", at(2, 1)),
        rec("evil", "one", "1", at(1, 2)), // a repeat of the rejected record shares its fate
    ];
    let report = engine.ingest(&batch).unwrap();
    assert_eq!(report.accepted, 3, "{report:?}");
    let rejected: Vec<(&str, ErrorKind)> = report.rejected.iter().map(|r| (r.id.as_str(), r.kind)).collect();
    assert_eq!(rejected, [("one", ErrorKind::Overflow), ("one", ErrorKind::Overflow)]);
    assert!(report.rejected[0].reason.contains("'one'") && report.rejected[0].reason.contains("evil"));
    assert_eq!(day_sums(&engine, "evil").unwrap(), [MAX, "5"]);
    assert_eq!(day_sums(&engine, "good").unwrap(), ["2.5", "1.5"]);
    // The overflow within one batch (no stored bucket involved) is turned away the same way.
    let report = engine.ingest(&[rec("evil2", "a", MAX, at(3, 0)), rec("evil2", "b", "1", at(3, 1))]).unwrap();
    assert_eq!((report.accepted, report.rejected.len()), (1, 1));
    assert_eq!(report.rejected[0].id, "b");
}

/// Issue 12's case: records stored while no spec covered them overflow the first rollup of one
/// tenant; the backfill is per tenant, so every other tenant's rollup works, and the tenant's own
/// queries fail with `E_OVERFLOW` naming the record until it is retracted.
#[test]
fn an_overflow_in_one_tenant_never_reaches_another() {
    let engine = Engine::in_memory();
    let report = engine
        .ingest(&[
            rec("evil", "big", MAX, at(1, 0)),
            rec("evil", "one", "1", at(1, 1)),
            rec("evil", "fine", "7", at(2, 0)),
            rec("good", "g1", "2.5", at(1, 0)),
        ])
        .unwrap();
    assert_eq!(report.accepted, 4, "no spec, no bucket: nothing overflows yet");
    assert_eq!(day_sums(&engine, "good").unwrap(), ["2.5"], "the other tenant's first rollup works");
    let err = day_sums(&engine, "evil").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overflow);
    assert!(err.message().contains("'one'") && err.message().contains("evil"), "{err}");
    assert_eq!(err.record_id(), Some("one"));
    // Records ingested later still count for both tenants, and the good tenant stays unaffected.
    engine.ingest(&[rec("good", "g2", "1", at(1, 5)), rec("evil", "late", "2", at(3, 0))]).unwrap();
    assert_eq!(day_sums(&engine, "good").unwrap(), ["3.5"]);
    // Retracting the record that overflowed repairs the tenant's rollup.
    engine.retract("evil", "one").unwrap();
    assert_eq!(day_sums(&engine, "evil").unwrap(), [MAX, "7", "2"]);
}

/// The same isolation holds for records a store holds from before (written without an engine).
#[test]
fn the_backfill_of_stored_records_is_per_tenant() {
    let mut store = MemoryStore::new();
    let records = [rec("evil", "a", MAX, at(1, 0)), rec("evil", "b", MAX, at(1, 1)), rec("good", "c", "1", at(1, 0))];
    store.apply(&ChangeSet { insert: records.iter().collect(), ..ChangeSet::default() }).unwrap();
    let engine = Engine::new(store).unwrap();
    let id = engine.add_spec(RollupSpec::new("kwh", Window::Day, "UTC").unwrap()).unwrap();
    assert_eq!(id, 0);
    assert_eq!(day_sums(&engine, "good").unwrap(), ["1"]);
    assert_eq!(day_sums(&engine, "evil").unwrap_err().kind(), ErrorKind::Overflow);
}

/// A per-unit rate of −7e28 beside a minimum of 7e28 makes the minimum's top-up overflow: an
/// `E_OVERFLOW` error naming it, not a panic — in the full bill and in the quantity rater.
#[test]
fn a_minimum_top_up_that_overflows_is_an_error() {
    let tariff = Tariff::from_toml(
        r#"
        currency = "JPY"
        [[charges]]
        id = "energy"
        type = "per_unit"
        rate = "-70000000000000000000000000000"
        [[charges]]
        id = "min"
        type = "minimum"
        amount = "70000000000000000000000000000"
        "#,
    )
    .unwrap();
    let feb = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
    let req = BillRequest::new("t", "meter", "kwh", at(1, 0), feb, "UTC");
    let err = tariff.bill(&req, &[rec("t", "r", "1", at(2, 0))]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overflow);
    assert!(err.message().contains("minimum"), "{err}");
    // The quantity rater keeps per-charge amounts (and so computes the top-up) when a
    // percentage names charges.
    let text = r#"
        currency = "JPY"
        [[charges]]
        id = "energy"
        type = "per_unit"
        rate = "-70000000000000000000000000000"
        [[charges]]
        id = "min"
        type = "minimum"
        amount = "70000000000000000000000000000"
        [[charges]]
        id = "levy"
        type = "percentage"
        percent = "1"
        applies_to = ["energy"]
        "#;
    let err = Tariff::from_toml(text).unwrap().quantity_rater().unwrap().total(Decimal::ONE).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overflow);
    assert!(err.message().contains("minimum"), "{err}");
}

/// `totals` compares two periods whose difference leaves the decimal range: an error, not a panic.
#[test]
fn a_change_between_periods_that_overflows_is_an_error() {
    let engine = Engine::in_memory();
    let min = format!("-{MAX}");
    engine.ingest(&[rec("t", "prev", MAX, at(1, 0)), rec("t", "cur", &min, at(2, 0))]).unwrap();
    let err = engine.totals("t", "kwh", Window::Day, "UTC", at(2, 5)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overflow);
}

/// A bucket whose measured part leaves the decimal range (estimated and measured records of
/// opposite signs) gives an error for `actual_sum`, not a panic.
#[test]
fn an_actual_sum_that_overflows_is_an_error() {
    let engine = Engine::in_memory();
    let estimated = rec("t", "e", "-1", at(1, 1)).with_quality(Quality::Estimated);
    engine.ingest(&[rec("t", "a", MAX, at(1, 0)), estimated, rec("t", "b", "1", at(1, 2))]).unwrap();
    let day = engine.query(&Query::new("t", "kwh", Window::Day, "UTC")).unwrap().remove(0);
    assert_eq!(day.sum.to_string(), MAX);
    assert_eq!(day.actual_sum().unwrap_err().kind(), ErrorKind::Overflow);
}

/// `fill: zero` bounds windows × groups before allocating: 200 subjects × minute windows over a
/// year (105 million rows) is refused with `E_INVALID_QUERY`, a small fill still works.
#[test]
fn fill_zero_bounds_windows_times_groups() {
    let engine = Engine::in_memory();
    let batch: Vec<UsageRecord> = (0..200)
        .map(|i| UsageRecord::new("t", format!("r{i}"), format!("s{i}"), "kwh", Decimal::ONE, at(1, 0)))
        .collect();
    engine.ingest(&batch).unwrap();
    let q = Query::new("t", "kwh", Window::Minutes(1), "UTC").group_by(["subject"]).fill(Fill::Zero);
    let err = engine.query(&q.clone().range(at(1, 0), at(1, 0) + Duration::days(365))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidQuery);
    assert!(err.message().contains("rows"), "{err}");
    let rows = engine.query(&q.range(at(1, 0), at(1, 0) + Duration::minutes(3))).unwrap();
    assert_eq!(rows.len(), 600);
}

/// Two engines over one in-memory store (`MemoryStore::handle`) see each other's writes.
#[test]
fn memory_store_handles_share_their_data() {
    let store = MemoryStore::new();
    let a = Engine::new(store.handle()).unwrap();
    a.ingest(&[rec("t", "x", "1", at(1, 0))]).unwrap();
    let b = Engine::new(store.handle()).unwrap();
    assert_eq!(b.ingest(&[rec("t", "x", "1", at(1, 0))]).unwrap().duplicates, 1);
    assert_eq!(store.record_count(), 1);
}
