//! The shared store suite: the `Store` trait's contract, checked the same way against every
//! implementation — `MemoryStore`, `SqliteStore` (a temporary file) and `PgStore` (a fresh schema
//! per test on the server of `METERKIT_PG_URL`; skipped with a message when it is unset, failed when
//! `METERKIT_REQUIRE_PG=1`).
//!
//! Each check is a function of a store factory; the `stores!` macro instantiates every check for
//! every store as its own `#[test]`.

use meterkit::{
    record::RecordRef, rollup::BucketState, store::BucketKey, store::ChangeSet, Engine, ErrorKind, RollupSpec, Store,
    UsageRecord, Window,
};
use meterkit_tests::{
    canonical_output, expected_json, load_case, rec, rollup_vectors_dir, run_case_on, ts, vector_files,
};
use proptest::prelude::*;

/// Makes a fresh, empty store.
pub type Factory = dyn Fn() -> Box<dyn Store>;

fn spec(metric: &str) -> RollupSpec {
    RollupSpec::new(metric, Window::Day, "UTC").unwrap()
}

fn key(tenant: &str, spec: u32, start: i64, group: &[&str]) -> BucketKey {
    BucketKey { tenant: tenant.into(), spec, start, group: group.iter().map(|g| Some((*g).to_string())).collect() }
}

fn state(quantities: &[(&str, &str)]) -> BucketState {
    let mut s = BucketState::default();
    for (id, q) in quantities {
        let r = rec("t", id, "s", "m", q, "2024-01-01T00:00:00Z").with_dimension("sim", format!("sim-{id}"));
        s.add(&r, ["sim"].into_iter()).unwrap();
    }
    s
}

fn insert(store: &mut dyn Store, records: &[UsageRecord]) {
    store.apply(&ChangeSet { insert: records.iter().collect(), ..ChangeSet::default() }).unwrap();
}

fn ids(records: &[UsageRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

pub fn specs_are_appended_in_id_order(make: &Factory) {
    let mut s = make();
    assert!(s.specs().unwrap().is_empty());
    s.apply(&ChangeSet { new_specs: vec![spec("a")], known_specs: Some(0), ..ChangeSet::default() }).unwrap();
    s.apply(&ChangeSet { new_specs: vec![spec("b"), spec("c")], known_specs: Some(1), ..ChangeSet::default() })
        .unwrap();
    let metrics: Vec<String> = s.specs().unwrap().into_iter().map(|x| x.metric).collect();
    assert_eq!(metrics, ["a", "b", "c"]);
}

pub fn get_records_keeps_the_order_of_ids_and_none_for_unknown(make: &Factory) {
    let mut s = make();
    let a = rec("t", "a", "s", "m", "1.50", "2024-01-01T00:00:00Z").with_dimension("k", "v\t\"x\"\\");
    let b = rec("t", "b", "s", "m", "2", "2024-01-01T01:00:00Z");
    let other = rec("u", "c", "s", "m", "3", "2024-01-01T01:00:00Z");
    insert(&mut *s, &[a.clone(), b.clone(), other]);
    let got = s.get_records("t", &["b", "zz", "a", "c"]).unwrap();
    assert_eq!(got, vec![Some(b), None, Some(a), None], "order of ids, None for unknown and other tenants");
    assert!(s.get_records("t", &[]).unwrap().is_empty());
}

pub fn records_are_a_half_open_range_ordered_by_time_then_id(make: &Factory) {
    let mut s = make();
    let rs = [
        rec("t", "c", "s1", "m", "1", "2024-01-01T10:00:00Z"),
        rec("t", "b", "s2", "m", "1", "2024-01-01T10:00:00Z"),
        rec("t", "a", "s1", "m", "1", "2024-01-01T10:00:00.5Z"),
        rec("t", "d", "s1", "m", "1", "2024-01-01T09:00:00Z"),
        rec("t", "e", "s1", "m", "1", "2024-01-01T11:00:00Z"),
        rec("t", "f", "s1", "other", "1", "2024-01-01T10:00:00Z"),
        rec("u", "g", "s1", "m", "1", "2024-01-01T10:00:00Z"),
    ];
    insert(&mut *s, &rs);
    let from = ts("2024-01-01T09:00:00Z").timestamp();
    let to = ts("2024-01-01T11:00:00Z").timestamp();
    assert_eq!(ids(&s.records("t", "m", None, from, to).unwrap()), ["d", "b", "c", "a"]);
    assert_eq!(ids(&s.records("t", "m", Some("s1"), from, to).unwrap()), ["d", "c", "a"]);
    assert_eq!(ids(&s.records("t", "m", None, from + 1, to + 1).unwrap()), ["b", "c", "a", "e"]);
    assert!(s.records("t", "m", None, to + 1, to + 10).unwrap().is_empty());
    assert_eq!(s.records("t", "m", None, from, to).unwrap()[0], rs[3], "records round-trip whole");
}

pub fn scan_metric_visits_every_tenant_of_one_metric(make: &Factory) {
    let mut s = make();
    insert(
        &mut *s,
        &[
            rec("t", "a", "s", "m", "1", "2024-01-01T00:00:00Z"),
            rec("u", "b", "s", "m", "2", "2024-01-02T00:00:00Z"),
            rec("u", "c", "s", "n", "3", "2024-01-02T00:00:00Z"),
        ],
    );
    let mut seen = Vec::new();
    s.scan_metric("m", &mut |r| {
        seen.push((r.tenant.clone(), r.id.clone()));
        Ok(())
    })
    .unwrap();
    seen.sort();
    assert_eq!(seen, [("t".to_string(), "a".to_string()), ("u".to_string(), "b".to_string())]);
}

pub fn a_change_set_that_fails_applies_nothing(make: &Factory) {
    let mut s = make();
    let a = rec("t", "a", "s", "m", "1", "2024-01-01T00:00:00Z");
    insert(&mut *s, std::slice::from_ref(&a));
    let b = rec("t", "b", "s", "m", "1", "2024-01-01T00:00:00Z");
    let changes = ChangeSet {
        insert: vec![&b, &a],
        merge: vec![(key("t", 0, 0, &["g"]), 86_400, state(&[("b", "1")]))],
        meta: vec![("t".into(), "k".into(), Some("v".into()))],
        ..ChangeSet::default()
    };
    let err = s.apply(&changes).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(s.get_records("t", &["b"]).unwrap()[0].is_none(), "no record of the failed change");
    assert!(s.bucket(&key("t", 0, 0, &["g"])).unwrap().is_none(), "no bucket of the failed change");
    assert!(s.meta("t", "k").unwrap().is_none(), "no metadata of the failed change");
    assert_eq!(s.get_records("t", &["a"]).unwrap()[0].as_ref(), Some(&a));
}

pub fn merge_creates_and_merges_and_reports_late_buckets(make: &Factory) {
    let mut s = make();
    let k = key("t", 0, 0, &["g"]);
    let late = s
        .apply(&ChangeSet { merge: vec![(k.clone(), 86_400, state(&[("a", "1.5")]))], ..ChangeSet::default() })
        .unwrap();
    assert_eq!(late, [false]);
    let late = s
        .apply(&ChangeSet {
            merge: vec![(k.clone(), 86_400, state(&[("b", "2")])), (k.clone(), 86_400, state(&[("c", "-1")]))],
            ..ChangeSet::default()
        })
        .unwrap();
    assert_eq!(late, [false, false]);
    let stored = s.bucket(&k).unwrap().unwrap();
    assert_eq!(stored.state, state(&[("a", "1.5"), ("b", "2"), ("c", "-1")]));
    assert_eq!((stored.end, stored.closed), (86_400, false));
    s.mark_closed(std::slice::from_ref(&k)).unwrap();
    let fresh = key("t", 0, 86_400, &["g"]);
    let late = s
        .apply(&ChangeSet {
            merge: vec![(fresh.clone(), 172_800, state(&[("d", "1")])), (k.clone(), 86_400, state(&[("e", "1")]))],
            ..ChangeSet::default()
        })
        .unwrap();
    assert_eq!(late, [false, true], "a merge into a closed bucket is late");
    let stored = s.bucket(&k).unwrap().unwrap();
    assert!(stored.closed, "merging keeps the closed flag");
    assert_eq!(stored.state.count, 4);
}

pub fn replace_sets_or_removes_buckets(make: &Factory) {
    let mut s = make();
    let (k1, k2, k3) = (key("t", 0, 0, &["a"]), key("t", 0, 0, &["b"]), key("t", 0, 0, &["c"]));
    s.apply(&ChangeSet {
        merge: vec![
            (k1.clone(), 10, state(&[("x", "1")])),
            (k2.clone(), 10, state(&[("y", "1")])),
            (k3.clone(), 10, state(&[("z", "1")])),
        ],
        ..ChangeSet::default()
    })
    .unwrap();
    s.apply(&ChangeSet {
        replace: vec![
            (k1.clone(), 10, Some(state(&[("q", "7")]))),
            (k2.clone(), 10, None),
            (k3.clone(), 10, Some(BucketState::default())),
        ],
        ..ChangeSet::default()
    })
    .unwrap();
    assert_eq!(s.bucket(&k1).unwrap().unwrap().state, state(&[("q", "7")]));
    assert!(s.bucket(&k2).unwrap().is_none(), "None removes");
    assert!(s.bucket(&k3).unwrap().is_none(), "an empty state removes");
}

pub fn buckets_are_a_range_ordered_by_start_then_group(make: &Factory) {
    let mut s = make();
    let merge: Vec<(BucketKey, i64, BucketState)> = [
        (key("t", 0, 200, &["b"]), 300),
        (key("t", 0, 100, &["b"]), 200),
        (key("t", 0, 100, &["a"]), 200),
        (key("t", 0, 0, &["z"]), 100),
        (key("t", 1, 100, &["a"]), 200),
        (key("u", 0, 100, &["a"]), 200),
    ]
    .into_iter()
    .map(|(k, e)| (k, e, state(&[("x", "1")])))
    .collect();
    s.apply(&ChangeSet { merge, ..ChangeSet::default() }).unwrap();
    let got: Vec<(i64, String)> = s
        .buckets("t", 0, 100, 300)
        .unwrap()
        .into_iter()
        .map(|b| (b.key.start, b.key.group[0].clone().unwrap()))
        .collect();
    assert_eq!(got, [(100, "a".into()), (100, "b".into()), (200, "b".into())]);
    assert_eq!(s.buckets("t", 0, 0, 100).unwrap().len(), 1, "half-open");
    assert_eq!(s.buckets("t", 1, 0, 1000).unwrap().len(), 1);
    assert!(s.buckets("t", 2, 0, 1000).unwrap().is_empty());
}

pub fn open_buckets_until_and_mark_closed(make: &Factory) {
    let mut s = make();
    let merge: Vec<(BucketKey, i64, BucketState)> = [
        (key("t", 0, 200, &["a"]), 300),
        (key("t", 0, 0, &["a"]), 100),
        (key("t", 1, 0, &["a"]), 100),
        (key("t", 0, 100, &["a"]), 200),
        (key("u", 0, 0, &["a"]), 100),
    ]
    .into_iter()
    .map(|(k, e)| (k, e, state(&[("x", "1")])))
    .collect();
    s.apply(&ChangeSet { merge, ..ChangeSet::default() }).unwrap();
    let open: Vec<(u32, i64)> =
        s.open_buckets_until("t", 200).unwrap().into_iter().map(|b| (b.key.spec, b.end)).collect();
    assert_eq!(open, [(0, 100), (1, 100), (0, 200)], "ordered by end, then key");
    s.mark_closed(&[key("t", 0, 0, &["a"]), key("t", 0, 100, &["a"]), key("t", 9, 0, &["missing"])]).unwrap();
    let open: Vec<(u32, i64)> =
        s.open_buckets_until("t", 1000).unwrap().into_iter().map(|b| (b.key.spec, b.end)).collect();
    assert_eq!(open, [(1, 100), (0, 300)]);
    assert!(s.bucket(&key("t", 0, 0, &["a"])).unwrap().unwrap().closed);
    assert_eq!(s.open_buckets_until("u", 1000).unwrap().len(), 1, "other tenants untouched");
}

pub fn meta_is_set_removed_and_listed_by_prefix(make: &Factory) {
    let mut s = make();
    let set = |t: &str, k: &str, v: Option<&str>| (t.to_string(), k.to_string(), v.map(str::to_string));
    s.apply(&ChangeSet {
        meta: vec![
            set("t", "quota/b", Some("2")),
            set("t", "quota/a", Some("1")),
            set("t", "quotb", Some("x")),
            set("t", "invoice/1", Some("{}")),
            set("u", "quota/c", Some("3")),
        ],
        ..ChangeSet::default()
    })
    .unwrap();
    assert_eq!(s.meta("t", "quota/a").unwrap().as_deref(), Some("1"));
    assert_eq!(s.meta("u", "quota/a").unwrap(), None);
    assert_eq!(
        s.meta_prefix("t", "quota/").unwrap(),
        [("quota/a".to_string(), "1".to_string()), ("quota/b".to_string(), "2".to_string())]
    );
    s.apply(&ChangeSet {
        meta: vec![set("t", "quota/a", None), set("t", "quota/b", Some("5"))],
        ..ChangeSet::default()
    })
    .unwrap();
    assert_eq!(s.meta_prefix("t", "quota/").unwrap(), [("quota/b".to_string(), "5".to_string())]);
    assert_eq!(s.meta_prefix("t", "").unwrap().len(), 3);
}

/// Every shared rollup vector, run through an engine on this store, gives the expected output.
pub fn the_rollup_vectors_pass(make: &Factory) {
    for path in vector_files(&rollup_vectors_dir()).unwrap() {
        let case = load_case(&path).unwrap();
        let engine = Engine::new(make()).unwrap();
        let out = run_case_on(&engine, &case).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(canonical_output(&out), expected_json(&case), "{}", path.display());
    }
}

/// Every shared partial-state vector (`tests/vectors/partial`), imported twice into an engine on
/// this store, gives the expected output.
pub fn the_partial_vectors_pass(make: &Factory) {
    let files = vector_files(&meterkit_tests::partial_vectors_dir()).unwrap();
    assert!(files.len() >= 2, "expected at least 2 partial vectors, found {}", files.len());
    for path in files {
        let case: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(case["kind"], "partial", "{}", path.display());
        assert_eq!(case["name"], path.file_stem().and_then(|s| s.to_str()).unwrap_or_default(), "{}", path.display());
        let engine = Engine::new(make()).unwrap();
        let out =
            meterkit_tests::run_partial_case(&engine, &case).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(out, meterkit_tests::canonical_json(&case["expected"]), "{}", path.display());
    }
}

/// `Engine::import_buckets` sets, it does not add: the same merged partial states imported twice
/// answer as one engine that ingested the records (not doubled); one call may carry un-merged
/// partials (merged first); a recomputed result replaces the earlier one for its keys and leaves
/// other keys alone.
pub fn import_buckets_is_idempotent(make: &Factory) {
    use meterkit::rollup::partial::{self, PartialRollup};
    let spec = RollupSpec::new("kwh", Window::Day, "America/New_York").unwrap().group_by(["subject"]);
    let records: Vec<UsageRecord> = (0..40)
        .map(|i| {
            let at = format!("2024-03-{:02}T{:02}:30:00Z", 9 + i % 3, (i * 7) % 24);
            rec(
                ["t1", "t2"][i % 2],
                &format!("r{i:02}"),
                ["m1", "m2", "m3"][i % 3],
                "kwh",
                &format!("{}.{}", i, i % 10),
                &at,
            )
        })
        .collect();
    let partials = |recs: &[UsageRecord], parts: usize| {
        let mut rollups: Vec<PartialRollup> = (0..parts).map(|_| PartialRollup::new(&spec).unwrap()).collect();
        for (i, r) in recs.iter().enumerate() {
            rollups[i % parts].add(r).unwrap();
        }
        rollups.into_iter().flat_map(PartialRollup::finish).map(|p| (p.key, p.end, p.state)).collect::<Vec<_>>()
    };
    let answer = |engine: &Engine| {
        ["t1", "t2"]
            .map(|t| {
                let q = meterkit::Query::new(t, "kwh", Window::Day, "America/New_York").group_by(["subject"]);
                serde_json::to_string(&engine.query(&q).unwrap()).unwrap()
            })
            .join("\n")
    };
    let reference = |recs: &[UsageRecord]| {
        let engine = Engine::in_memory();
        engine.add_spec(spec.clone()).unwrap();
        engine.ingest(recs).unwrap();
        answer(&engine)
    };
    let engine = Engine::new(make()).unwrap();
    // Un-merged partials of three partitions in one call, then the merged result again.
    engine.import_buckets(&spec, &partials(&records, 3)).unwrap();
    assert_eq!(answer(&engine), reference(&records), "one import of un-merged partials");
    let merged: Vec<_> = partial::merge(partials(&records, 2).into_iter().map(|(key, end, state)| partial::Partial {
        key,
        end,
        state,
        min_id: String::new(),
        max_id: String::new(),
    }))
    .unwrap()
    .into_iter()
    .map(|p| (p.key, p.end, p.state))
    .collect();
    engine.import_buckets(&spec, &merged).unwrap();
    engine.import_buckets(&spec, &merged).unwrap();
    assert_eq!(answer(&engine), reference(&records), "imported three times, counted once");
    // A recomputed result for tenant t1 only (ten more records): t1 replaced, t2 untouched.
    let more: Vec<UsageRecord> = (40..50)
        .map(|i| rec("t1", &format!("r{i:02}"), "m1", "kwh", "1.5", &format!("2024-03-10T{:02}:00:00Z", i - 30)))
        .collect();
    let t1: Vec<UsageRecord> = records.iter().filter(|r| r.tenant == "t1").chain(&more).cloned().collect();
    engine.import_buckets(&spec, &partials(&t1, 2)).unwrap();
    let all: Vec<UsageRecord> = records.iter().chain(&more).cloned().collect();
    assert_eq!(answer(&engine), reference(&all), "a recomputed import replaces its keys only");
    // An empty import changes nothing.
    assert_eq!(engine.import_buckets(&spec, &[]).unwrap(), 0);
    assert_eq!(answer(&engine), reference(&all));
}

/// Every shared reading vector, run through an engine on this store, gives the expected output
/// (the reading store is the store's metadata, so this checks that every store persists it).
pub fn the_reading_vectors_pass(make: &Factory) {
    for path in vector_files(&meterkit_tests::reading_vectors_dir()).unwrap() {
        let case: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let engine = Engine::new(make()).unwrap();
        let out =
            meterkit_tests::run_reading_case(&engine, &case).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(out, meterkit_tests::canonical_json(&case["expected"]), "{}", path.display());
    }
}

/// Every counter vector (`tests/vectors/counter`) on this store twice: on one engine, and with
/// the engine restarted (a new engine on the same store reopened) before every call — the same
/// outcomes, so the tracker state comes from the store (issue 14 item 7).
pub fn the_counter_vectors_pass_across_restarts(open: &Opener) {
    for path in vector_files(&meterkit_tests::counter_vectors_dir()).unwrap() {
        let case: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let expected = meterkit_tests::canonical_json(&case["expected"]);
        for restart in [false, true] {
            let connect = open();
            let out = meterkit_tests::run_counter_case(&case, &mut || Engine::new(connect()).unwrap(), restart)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(out, expected, "{} (restart: {restart})", path.display());
        }
    }
}

/// A hotspot's session byte counters (RADIUS Acct-Input-Octets, 32 bits): the engine is
/// restarted after each session's first interim update; the first delta of every session after
/// the restart is still counted, a wrap of the 32-bit counter included, and the day's total is
/// the sum of the hand-worked deltas. A resend after another restart changes nothing.
pub fn tracker_state_survives_a_restart(open: &Opener) {
    use meterkit::reading::{counter::CounterOptions, dating::Dating};
    let connect = open();
    let read = |s: &str, at: &str, v: &str| meterkit::MeterReading::new(s, ts(at), meterkit_tests::dec(v)).bits(32);
    let opts = CounterOptions::dated(Dating::End);
    let starts = [
        read("s1", "2024-03-01T10:00:00Z", "1000"),
        read("s2", "2024-03-01T10:00:00Z", "4294967000"),
        read("s3", "2024-03-01T10:00:00Z", "0"),
    ];
    let first = Engine::new(connect()).unwrap().track_counters("isp", "bytes", &starts, &opts).unwrap();
    assert_eq!((first.records.len(), first.report.accepted), (0, 0), "first readings are baselines");
    // Restart: a new engine on the reopened store.
    let engine = Engine::new(connect()).unwrap();
    assert_eq!(
        engine.counter_state("isp", "bytes", "s2").unwrap().unwrap().register,
        meterkit_tests::dec("4294967000")
    );
    let next = [
        read("s1", "2024-03-01T10:05:00Z", "1500"),
        read("s2", "2024-03-01T10:05:00Z", "704"),
        read("s3", "2024-03-01T10:05:00Z", "250"),
    ];
    let out = engine.track_counters("isp", "bytes", &next, &opts).unwrap();
    let q: Vec<String> = out.records.iter().map(|r| format!("{}={}", r.subject, r.quantity)).collect();
    // s1: 1500 − 1000; s2: 2^32 − 4294967000 + 704 = 296 + 704; s3: 250 − 0.
    assert_eq!(q, ["s1=500", "s2=1000", "s3=250"]);
    assert_eq!(out.report.accepted, 3);
    drop(engine);
    let engine = Engine::new(connect()).unwrap();
    let again = engine.track_counters("isp", "bytes", &next, &opts).unwrap();
    assert_eq!((again.records.len(), again.report.accepted), (0, 0), "a resend after a restart");
    let day = engine.totals("isp", "bytes", Window::Day, "UTC", ts("2024-03-01T12:00:00Z")).unwrap();
    assert_eq!(day.current.sum, meterkit_tests::dec("1750"), "500 + 1000 + 250");
}

/// Tenant isolation: with records, buckets and metadata of random tenants in one store, every
/// read for a tenant returns exactly what was written for it.
pub fn tenants_are_isolated(make: &Factory, cases: u32) {
    let tenant = prop::sample::select(vec!["a", "b", "a'b", "A", "a b", "ä", "a%", "a_"]);
    let item = (tenant, 0u8..12, 0u8..4, 1u32..100);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases, ..ProptestConfig::default() });
    runner
        .run(&prop::collection::vec(item, 1..30), |items| {
            let mut s = make();
            let mut records = Vec::new();
            let mut merge = Vec::new();
            let mut meta = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            for (t, id, hour, q) in &items {
                if !seen.insert((*t, *id)) {
                    continue;
                }
                let at = format!("2024-01-01T{hour:02}:00:00Z");
                records.push(rec(t, &format!("r{id}"), "s", "m", &q.to_string(), &at));
                merge.push((key(t, 0, i64::from(*hour) * 3600, &["g"]), 0, state(&[("x", &q.to_string())])));
                meta.push(((*t).to_string(), format!("k/{id}"), Some(format!("{t}:{id}"))));
            }
            s.apply(&ChangeSet { insert: records.iter().collect(), merge, meta, ..ChangeSet::default() }).unwrap();
            let tenants: std::collections::BTreeSet<&str> = items.iter().map(|i| i.0).collect();
            for t in ["a", "b", "a'b", "A", "a b", "ä", "a%", "a_", "a%b"] {
                let mine: Vec<&UsageRecord> = records.iter().filter(|r| r.tenant == t).collect();
                let got = s.records(t, "m", None, 0, i64::MAX / 4).unwrap();
                prop_assert_eq!(got.len(), mine.len());
                prop_assert!(got.iter().all(|r| r.tenant == t));
                let all_ids: std::collections::BTreeSet<String> = records.iter().map(|r| r.id.clone()).collect();
                let refs: Vec<&str> = all_ids.iter().map(String::as_str).collect();
                let found = s.get_records(t, &refs).unwrap();
                prop_assert_eq!(found.iter().flatten().count(), mine.len());
                prop_assert!(found.iter().flatten().all(|r| r.tenant == t));
                let buckets = s.buckets(t, 0, i64::MIN / 4, i64::MAX / 4).unwrap();
                prop_assert!(buckets.iter().all(|b| b.key.tenant == t));
                prop_assert_eq!(buckets.is_empty(), !tenants.contains(t));
                prop_assert!(s.open_buckets_until(t, i64::MAX / 4).unwrap().iter().all(|b| b.key.tenant == t));
                let m = s.meta_prefix(t, "").unwrap();
                prop_assert_eq!(m.len(), mine.len());
                let own = format!("{t}:");
                prop_assert!(m.iter().all(|(_, v)| v.starts_with(&own)));
            }
            Ok(())
        })
        .unwrap();
}

/// Opens a fresh, empty store and returns how to open another handle (connection) on it: what
/// several engines — or processes — sharing one store each hold.
pub type Opener = dyn Fn() -> Box<dyn Fn() -> Box<dyn Store> + Send + Sync>;

/// Records of `tenant` with ids `{prefix}{i}` for `i` in `range`, one a minute from 2024-01-01,
/// each of quantity 1 (so a sum is a count).
fn minute_records(tenant: &str, prefix: &str, range: std::ops::Range<u32>) -> Vec<UsageRecord> {
    range
        .map(|i| {
            let at = meterkit_tests::ts("2024-01-01T00:00:00Z") + chrono::Duration::minutes(i64::from(i));
            UsageRecord::new(tenant, format!("{prefix}{i}"), format!("m{}", i % 3), "kwh", 1.into(), at)
        })
        .collect()
}

/// Every spec of the store, asked through a fresh engine, counts exactly `expected` records of
/// quantity 1 for each tenant.
fn every_spec_counts(connect: &(dyn Fn() -> Box<dyn Store> + Send + Sync), expected: &[(&str, u64)]) -> usize {
    let engine = Engine::new(connect()).unwrap();
    let specs = engine.specs();
    for spec in &specs {
        for &(tenant, n) in expected {
            let q = meterkit::Query::new(tenant, "kwh", spec.window, &spec.time_zone).group_by(spec.group_by.clone());
            let rows = engine.query(&q).unwrap();
            let count: u64 = rows.iter().map(|b| b.count).sum();
            let sum: meterkit::Decimal = rows.iter().map(|b| b.sum).sum();
            assert_eq!((count, sum), (n, n.into()), "spec {} of tenant {tenant} misses records", spec.window);
        }
    }
    specs.len()
}

/// The windows of the specs a test creates one after the other (all different).
fn windows() -> impl Iterator<Item = Window> {
    [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 16, 18, 20, 24, 30, 36, 40, 45, 48, 60]
        .into_iter()
        .map(Window::Minutes)
        .chain((1..=28).map(|d| Window::BillingCycle { anchor_day: d }))
}

/// Issue 12: a spec created (and backfilled) by one engine while another engine ingests counts
/// every record — none committed between the backfill's scan and the spec's write is lost.
pub fn specs_created_while_another_engine_ingests(open: &Opener) {
    let connect = open();
    let ingester = Engine::new(connect()).unwrap();
    ingester.add_spec(RollupSpec::new("kwh", Window::Day, "UTC").unwrap()).unwrap();
    let creator = Engine::new(connect()).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let batches = std::thread::scope(|scope| {
        let ingest = scope.spawn(|| {
            let mut n = 0u32;
            // Keep ingesting until every spec is created (and at least 20 batches).
            while n < 20 || !done.load(std::sync::atomic::Ordering::SeqCst) {
                let mut batch = minute_records("a", "a", n * 50..n * 50 + 50);
                batch.extend(minute_records("b", "b", n * 50..n * 50 + 25));
                let report = ingester.ingest(&batch).unwrap();
                assert_eq!((report.accepted, report.rejected.len()), (75, 0));
                n += 1;
            }
            n
        });
        for w in windows().take(12) {
            creator.add_spec(RollupSpec::new("kwh", w, "UTC").unwrap()).unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        ingest.join().unwrap()
    });
    let n = u64::from(batches);
    assert_eq!(every_spec_counts(&*connect, &[("a", n * 50), ("b", n * 25)]), 13);
}

/// Issue 12: two engines ingesting at once (overlapping batches, each also adding specs) never fail on the other's lock, and every spec counts every record once.
pub fn two_writers_at_once(open: &Opener) {
    let connect = open();
    let engines = [Engine::new(connect()).unwrap(), Engine::new(connect()).unwrap()];
    let windows: Vec<Window> = windows().take(10).collect();
    std::thread::scope(|scope| {
        for (k, engine) in engines.iter().enumerate() {
            let windows = &windows;
            scope.spawn(move || {
                for n in 0..30u32 {
                    // Own records, plus a stretch both writers send (duplicates for one of them).
                    let mut batch = minute_records("a", &format!("w{k}-"), n * 40..n * 40 + 40);
                    batch.extend(minute_records("b", "both-", n * 20..n * 20 + 20));
                    let report = engine.ingest(&batch).unwrap();
                    assert_eq!(report.accepted + report.duplicates, 60);
                    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
                    if n % 3 == k as u32 {
                        let w = windows[(n / 3) as usize];
                        engine.add_spec(RollupSpec::new("kwh", w, "UTC").unwrap()).unwrap();
                    }
                }
            });
        }
    });
    assert_eq!(every_spec_counts(&*connect, &[("a", 2 * 30 * 40), ("b", 30 * 20)]), 10);
}

/// Issue 14: a removed spec keeps its id (it stays in `specs`, listed by `removed_specs`), loses
/// its buckets of every tenant, and a later change merging into it is refused as retryable.
pub fn removed_specs_lose_their_buckets_and_refuse_merges(make: &Factory) {
    let mut s = make();
    s.apply(&ChangeSet { new_specs: vec![spec("a"), spec("b")], known_specs: Some(0), ..ChangeSet::default() })
        .unwrap();
    let merge = |spec: u32, tenant: &str| (key(tenant, spec, 0, &[]), 86_400, state(&[("x", "2")]));
    let all = vec![merge(0, "t"), merge(0, "u"), merge(1, "t")];
    s.apply(&ChangeSet { merge: all, known_specs: Some(2), ..ChangeSet::default() }).unwrap();
    assert!(s.removed_specs().unwrap().is_empty());
    s.apply(&ChangeSet { remove_specs: vec![0], known_specs: Some(2), ..ChangeSet::default() }).unwrap();
    assert_eq!(s.removed_specs().unwrap(), [0]);
    assert_eq!(s.specs().unwrap().len(), 2, "a removed spec keeps its id");
    for tenant in ["t", "u"] {
        assert!(s.buckets(tenant, 0, i64::MIN, i64::MAX).unwrap().is_empty(), "{tenant}'s buckets of spec 0");
    }
    assert_eq!(s.buckets("t", 1, i64::MIN, i64::MAX).unwrap()[0].state.sum.to_string(), "2");
    let stale = ChangeSet { merge: vec![merge(0, "t")], known_specs: Some(2), ..ChangeSet::default() };
    let e = s.apply(&stale).unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(s.buckets("t", 0, i64::MIN, i64::MAX).unwrap().is_empty());
    let e = s.apply(&ChangeSet { remove_specs: vec![7], ..ChangeSet::default() }).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store);
    // The next spec gets id 2: ids are never reused.
    s.apply(&ChangeSet { new_specs: vec![spec("c")], known_specs: Some(2), ..ChangeSet::default() }).unwrap();
    assert_eq!(s.specs().unwrap()[2].metric, "c");
}

/// Issue 14, item 8: a tenant's own spec (its zone and billing-cycle day) is maintained for that
/// tenant only — backfilled from its records, merged at its ingests, never at another tenant's;
/// an engine that still holds a spec another engine removed reloads and stores nothing into it;
/// everything survives a restart.
pub fn tenant_specs_and_spec_removal_across_engines(open: &Opener) {
    let connect = open();
    let a = Engine::new(connect()).unwrap();
    let day = RollupSpec::new("kwh", Window::Day, "UTC").unwrap();
    a.add_spec(day.clone()).unwrap();
    a.ingest(&minute_records("t", "r", 0..30)).unwrap();
    a.ingest(&minute_records("u", "r", 0..30)).unwrap();
    // t bills on the 15th in Kolkata: its own cycle spec, backfilled from t's 30 records only.
    let cycle =
        RollupSpec::new("kwh", Window::BillingCycle { anchor_day: 15 }, "Asia/Kolkata").unwrap().for_tenant("t");
    let id = a.add_spec(cycle.clone()).unwrap();
    a.ingest(&minute_records("t", "s", 0..5)).unwrap();
    a.ingest(&minute_records("u", "s", 0..7)).unwrap();
    let store = connect();
    let t_cycle = store.buckets("t", id, i64::MIN, i64::MAX).unwrap();
    assert_eq!(t_cycle.iter().map(|b| b.state.count).sum::<u64>(), 35);
    // 2024-01-01T00:00Z is 05:30 on 1 January in Kolkata: the cycle from 15 December.
    assert_eq!(t_cycle[0].key.start, ts("2023-12-14T18:30:00Z").timestamp());
    assert!(store.buckets("u", id, i64::MIN, i64::MAX).unwrap().is_empty(), "u never pays for t's spec");
    // B loaded both specs; A removes the day spec; B's next ingest is refused, reloads, and
    // stores nothing into the removed spec.
    let b = Engine::new(connect()).unwrap();
    assert_eq!(b.specs(), [day.clone(), cycle.clone()]);
    assert_eq!(a.remove_spec(&day).unwrap(), 0);
    assert_eq!(a.remove_spec(&day).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(b.ingest(&minute_records("u", "late", 0..3)).unwrap().accepted, 3);
    for tenant in ["t", "u"] {
        assert!(store.buckets(tenant, 0, i64::MIN, i64::MAX).unwrap().is_empty());
    }
    assert_eq!(b.specs(), std::slice::from_ref(&cycle));
    // After a restart: the removed spec stays removed; queries still answer from the records.
    let c = Engine::new(connect()).unwrap();
    assert_eq!(c.specs(), std::slice::from_ref(&cycle));
    let rows = c.query(&meterkit::Query::new("u", "kwh", Window::Day, "UTC")).unwrap();
    assert_eq!((rows.len(), rows[0].count), (1, 40));
    assert_eq!(c.specs().len(), 1, "the unplanned query added no spec");
    let q = meterkit::Query::new("t", "kwh", Window::BillingCycle { anchor_day: 15 }, "Asia/Kolkata");
    assert_eq!(c.query(&q).unwrap()[0].count, 35);
    // A new spec gets a new id (1 is the cycle, 0 stays removed).
    assert_eq!(c.add_spec(day).unwrap(), 2);
}

/// `compare_stored`, the duplicate check of every ingest, on a batch cut differently from the
/// stored ones and large enough for a store's batch paths (SQLite answers a mostly-stored batch
/// from its time range): duplicates are found, and a same-key record with other content — another
/// quantity, another time (outside the batch's time range too), subject, metric or dimension — is
/// `Some(false)`; a quantity at another scale is the same value; new keys and other tenants' keys
/// are `None`. Then through the engine: a re-cut repeat run stores nothing and reports the
/// conflicts by id.
pub fn compare_stored_answers_recut_batches_exactly(make: &Factory) {
    let mut s = make();
    let at = |i: u32| format!("2024-03-01T{:02}:{:02}:{:02}Z", i / 3600, (i / 60) % 60, i % 60);
    let stored: Vec<UsageRecord> = (0..800)
        .map(|i| {
            rec("t", &format!("r{i:04}"), &format!("s{}", i % 7), "m", &format!("{}.50", i % 13), &at(i * 10))
                .with_dimension("k", if i % 3 == 0 { "a" } else { "b" })
        })
        .collect();
    insert(&mut *s, &stored);
    insert(&mut *s, &[rec("u", "r0500", "s1", "m", "1", &at(5000))]);
    // Stored 200..800 again (a re-cut: the store saw them in one batch of 800) and 100 new.
    let mut batch: Vec<UsageRecord> = stored[200..].to_vec();
    batch.extend((800..900).map(|i| rec("t", &format!("r{i:04}"), "s1", "m", "1", &at(i * 10))));
    batch[10].quantity = "99".parse().unwrap();
    batch[20].timestamp = ts("2025-01-01T00:00:00Z");
    batch[30].subject = "other".into();
    batch[40].metric = "m2".into();
    batch[50].dimensions.insert("k".into(), "c".into());
    batch[60].dimensions.clear();
    batch[70].quantity = format!("{}00", batch[70].quantity).parse().unwrap(); // same value, scale 4
    let refs: Vec<&UsageRecord> = batch.iter().collect();
    let got = s.compare_stored("t", &refs).unwrap();
    let conflicts = [10, 20, 30, 40, 50, 60];
    for (i, g) in got.iter().enumerate() {
        let want = if i >= 600 { None } else { Some(!conflicts.contains(&i)) };
        assert_eq!(*g, want, "record {i} ({})", batch[i].id);
    }
    assert!(s.compare_stored("t", &[]).unwrap().is_empty());
    assert_eq!(s.compare_stored("nobody", &refs[..3]).unwrap(), [None, None, None]);
    // The same answers for the records given as borrowed content (the columnar duplicate check),
    // a key repeated in the batch too.
    let mut pairs = Vec::new();
    let mut rows = RecordRef::from_records(&refs, &mut pairs);
    assert_eq!(s.compare_stored_refs("t", &rows).unwrap(), got);
    rows.extend_from_within(5..80);
    let mut twice = refs.clone();
    twice.extend_from_within(5..80);
    assert_eq!(s.compare_stored_refs("t", &rows).unwrap(), s.compare_stored("t", &twice).unwrap());
    assert_eq!(s.compare_stored_refs("nobody", &rows[..2]).unwrap(), [None, None]);
    // The engine on the same store: nothing stored twice, the conflicts named.
    let engine = Engine::new(s).unwrap();
    let report = engine.ingest(&batch).unwrap();
    assert_eq!((report.accepted, report.duplicates), (100, 594));
    let rejected: Vec<&str> = report.rejected.iter().map(|r| r.id.as_str()).collect();
    let named: Vec<&str> = conflicts.iter().map(|&i| batch[i].id.as_str()).collect();
    assert_eq!(rejected, named);
    assert!(report.rejected.iter().all(|r| r.kind == ErrorKind::Conflict));
    let again = engine.ingest(&batch[5..]).unwrap();
    assert_eq!((again.accepted, again.duplicates, again.rejected.len()), (0, 689, 6));
}

/// `Engine::ingest_columns` of a repeat run cut differently from the stored batches (the probe
/// misses; the rows are checked against the store in columns): every row a duplicate, as
/// `ingest` of the records reports it; a batch with one changed row is answered by the record
/// path (the conflict named). Both engines end with the same records and rollups.
pub fn ingest_columns_answers_recut_repeats_as_ingest(make: &Factory) {
    let (by_rows, by_columns) = (Engine::new(make()).unwrap(), Engine::new(make()).unwrap());
    for e in [&by_rows, &by_columns] {
        e.add_spec(spec("m").group_by(["k"])).unwrap();
    }
    let at = |i: usize| 1_709_251_200 + i as i64 * 7;
    let n = 400;
    let ids: Vec<String> = (0..n).map(|i| format!("r{i:04}")).collect();
    let subjects: Vec<Option<&str>> = (0..n).map(|i| Some(["s0", "s1", "s2"][i % 3])).collect();
    let ks: Vec<Option<&str>> = (0..n).map(|i| [Some("a"), None, Some("b")][i % 3]).collect();
    let times: Vec<i64> = (0..n).map(at).collect();
    let mant: Vec<i64> = (0..n).map(|i| (i % 11) as i64 * 25).collect();
    // Ingests rows of the columns above: by records into one engine, by columns into the other.
    let batch = |rows: &[usize], mant: &[i64]| {
        let id: Vec<&str> = rows.iter().map(|&i| ids[i].as_str()).collect();
        let subject: Vec<Option<&str>> = rows.iter().map(|&i| subjects[i]).collect();
        let k: Vec<Option<&str>> = rows.iter().map(|&i| ks[i]).collect();
        let t: Vec<i64> = rows.iter().map(|&i| times[i]).collect();
        let q: Vec<i64> = rows.iter().map(|&i| mant[i]).collect();
        let cols = meterkit::rollup::columnar::ColumnBatch {
            metric: meterkit::rollup::columnar::StrColumn::Const(Some("m")),
            tenant: meterkit::rollup::columnar::StrColumn::Const(Some("t")),
            subject: meterkit::rollup::columnar::StrColumn::Plain(&subject),
            timestamps: &t,
            nanos: None,
            ends: None,
            quantities: meterkit::rollup::columnar::Quantities::Scaled { mantissas: &q, scale: 2 },
            ids: Some(&id),
            dimensions: vec![("k", meterkit::rollup::columnar::StrColumn::Plain(&k))],
        };
        let records = cols.records().unwrap();
        (by_rows.ingest(&records).unwrap(), by_columns.ingest_columns(&cols).unwrap())
    };
    let first: Vec<usize> = (0..n).collect();
    let (a, b) = batch(&first, &mant);
    assert_eq!((a.accepted, b), (400, a));
    // Re-cut: rows 50..350, a few twice.
    let mut recut: Vec<usize> = (50..350).collect();
    recut.extend([60, 61, 300]);
    let (a, b) = batch(&recut, &mant);
    assert_eq!((a.duplicates, b), (303, a));
    let mut changed = mant.clone();
    changed[100] += 1;
    let (a, b) = batch(&recut, &changed);
    assert_eq!((a.duplicates, a.rejected.len(), &b), (302, 1, &a));
    assert_eq!((a.rejected[0].id.as_str(), a.rejected[0].kind), ("r0100", ErrorKind::Conflict));
    let (from, to) = (ts("2024-01-01T00:00:00Z"), ts("2025-01-01T00:00:00Z"));
    assert_eq!(
        by_columns.records("t", "m", None, from, to).unwrap(),
        by_rows.records("t", "m", None, from, to).unwrap()
    );
    let q = meterkit::Query::new("t", "m", Window::Day, "UTC").group_by(["k"]);
    assert_eq!(by_columns.query(&q).unwrap(), by_rows.query(&q).unwrap());
}

macro_rules! stores {
    ($($check:ident),* $(,)?; shared: $($shared:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $check() { super::$check(&|| Box::new(meterkit::MemoryStore::new())); })*
            #[test] fn tenants_are_isolated() { super::tenants_are_isolated(&|| Box::new(meterkit::MemoryStore::new()), 64); }
            fn open() -> Box<dyn Fn() -> Box<dyn meterkit::Store> + Send + Sync> {
                let store = meterkit::MemoryStore::new();
                Box::new(move || Box::new(store.handle()))
            }
            $(#[test] fn $shared() { super::$shared(&open); })*
        }
        mod sqlite {
            fn make() -> Box<dyn meterkit::Store> {
                let dir = tempfile::tempdir().unwrap();
                let store = meterkit_sqlite::SqliteStore::open(dir.path().join("s.db")).unwrap();
                // The file stays open; the directory is removed when the process ends.
                std::mem::forget(dir);
                Box::new(store)
            }
            $(#[test] fn $check() { super::$check(&make); })*
            #[test] fn tenants_are_isolated() { super::tenants_are_isolated(&make, 32); }
            fn open() -> Box<dyn Fn() -> Box<dyn meterkit::Store> + Send + Sync> {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("s.db");
                std::mem::forget(dir);
                Box::new(move || Box::new(meterkit_sqlite::SqliteStore::open(&path).unwrap()))
            }
            $(#[test] fn $shared() { super::$shared(&open); })*
        }
        mod postgres {
            fn with_pg(test: &str, f: impl FnOnce(&super::Factory)) {
                let Some(url) = meterkit_tests::pg_url(test) else { return };
                f(&move || Box::new(meterkit_tests::pg_store(&url, &meterkit_tests::fresh_schema())));
            }
            $(#[test] fn $check() { with_pg(stringify!($check), |make| super::$check(make)); })*
            #[test] fn tenants_are_isolated() { with_pg("tenants_are_isolated", |make| super::tenants_are_isolated(make, 24)); }
            $(#[test] fn $shared() {
                let Some(url) = meterkit_tests::pg_url(stringify!($shared)) else { return };
                super::$shared(&move || {
                    let (url, schema) = (url.clone(), meterkit_tests::fresh_schema());
                    Box::new(move || Box::new(meterkit_tests::pg_store(&url, &schema)))
                });
            })*
        }
    };
}

stores!(
    specs_are_appended_in_id_order,
    get_records_keeps_the_order_of_ids_and_none_for_unknown,
    records_are_a_half_open_range_ordered_by_time_then_id,
    scan_metric_visits_every_tenant_of_one_metric,
    a_change_set_that_fails_applies_nothing,
    merge_creates_and_merges_and_reports_late_buckets,
    replace_sets_or_removes_buckets,
    buckets_are_a_range_ordered_by_start_then_group,
    open_buckets_until_and_mark_closed,
    meta_is_set_removed_and_listed_by_prefix,
    the_rollup_vectors_pass,
    the_reading_vectors_pass,
    import_buckets_is_idempotent,
    the_partial_vectors_pass,
    removed_specs_lose_their_buckets_and_refuse_merges,
    compare_stored_answers_recut_batches_exactly,
    ingest_columns_answers_recut_repeats_as_ingest;
    shared: specs_created_while_another_engine_ingests,
    two_writers_at_once,
    the_counter_vectors_pass_across_restarts,
    tracker_state_survives_a_restart,
    tenant_specs_and_spec_removal_across_engines,
);
