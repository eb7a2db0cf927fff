//! Issue 14 (the API gaps found rebuilding five usage systems): quotas maintained at ingest on
//! any window, unknown keys refused by name in every input type.

use std::sync::Arc;

use meterkit::{
    allocate::SharedMeter, notify::CollectingNotifier, quota::Quota, BillRequest, Decimal, Engine, Event, Query,
    RollupSpec, UsageRecord, Window,
};
use meterkit_sqlite::SqliteStore;
use meterkit_tests::rec;

/// A month's row of the API-usage view: local start, subject, status, count, first and last request.
type ApiRow = (String, Option<String>, Option<String>, u64, String, String);

fn crossed(events: &[Event]) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ThresholdCrossed { subject, level, used, .. } => {
                Some((subject.clone(), level.to_string(), used.to_string()))
            }
            _ => None,
        })
        .collect()
}

/// A hotspot plan with a daily 1 GB cap, on SQLite, across a restart: usage comes from the
/// quota's rollup (kept at ingest), levels fire once per subject per local day.
#[test]
fn daily_cap_on_sqlite_fires_once_per_subject_per_local_day_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hotspot.db");
    let cap = Quota::new(
        "daily-1gb",
        "isp",
        "bytes",
        Window::Day,
        "Asia/Kolkata",
        Decimal::from(1_000_000_000),
        vec![Decimal::from(80), Decimal::from(100)],
    );
    let n = Arc::new(CollectingNotifier::new());
    let engine = Engine::new(SqliteStore::open(&path).unwrap()).unwrap().with_notifier(n.clone());
    engine.add_quota(cap.clone()).unwrap();
    // 2024-05-01 in Kolkata is 2024-04-30T18:30Z .. 2024-05-01T18:30Z.
    let pkt = |id: &str, who: &str, q: &str, at: &str| rec("isp", id, who, "bytes", q, at);
    engine.ingest(&[pkt("1", "u1", "500000000", "2024-04-30T19:00:00Z")]).unwrap();
    engine.ingest(&[pkt("2", "u2", "900000000", "2024-05-01T10:00:00Z")]).unwrap();
    assert_eq!(crossed(&n.take()), vec![("u2".into(), "80".into(), "900000000".into())]);
    engine.ingest(&[pkt("3", "u1", "300000000", "2024-05-01T18:00:00Z")]).unwrap();
    assert_eq!(crossed(&n.take()), vec![("u1".into(), "80".into(), "800000000".into())]);
    drop(engine);
    // Restart: the quota is registered again; its spec is the stored one, its levels remembered.
    let engine = Engine::new(SqliteStore::open(&path).unwrap()).unwrap().with_notifier(n.clone());
    engine.add_quota(cap).unwrap();
    assert_eq!(engine.specs().len(), 1);
    // 18:30Z on 1 May is the next Kolkata day: a new period for u1.
    engine.ingest(&[pkt("4", "u1", "850000000", "2024-05-01T18:30:00Z")]).unwrap();
    assert_eq!(crossed(&n.take()), vec![("u1".into(), "80".into(), "850000000".into())]);
    engine.ingest(&[pkt("5", "u1", "200000000", "2024-05-01T17:00:00Z")]).unwrap(); // back on 1 May: 1 GB
    engine.ingest(&[pkt("5", "u1", "200000000", "2024-05-01T17:00:00Z")]).unwrap(); // a duplicate
    assert_eq!(crossed(&n.take()), vec![("u1".into(), "100".into(), "1000000000".into())]);
}

/// Every window is a quota period; an invalid one names the field.
#[test]
fn quota_periods_are_any_window() {
    for w in ["minutes:15", "hour", "day", "week", "month", "quarter", "year", "cycle:15"] {
        let q = Quota::new("q", "t", "kwh", w.parse().unwrap(), "UTC", Decimal::ONE, vec![Decimal::ONE_HUNDRED]);
        assert!(q.check().is_ok(), "{w}");
        assert_eq!(q.spec().unwrap().window.to_string(), w);
    }
    let q = Quota::new("q", "t", "kwh", Window::Minutes(7), "UTC", Decimal::ONE, vec![Decimal::ONE_HUNDRED]);
    let e = Engine::in_memory().add_quota(q).unwrap_err();
    assert_eq!(e.field(), Some("period"));
}

fn refused<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str, key: &str) {
    let e = serde_json::from_str::<T>(json).unwrap_err().to_string();
    assert!(e.contains(&format!("unknown field `{key}`")), "{e}");
}

/// A misspelt or camelCase key is an error naming it, in every input type the core reads.
#[test]
fn unknown_keys_are_refused_naming_them() {
    let r = r#"{"id":"1","tenant":"t","subject":"s","metric":"m","quantity":"1","timestamp":"2024-01-01T00:00:00Z""#;
    refused::<UsageRecord>(&format!(r#"{r},"dimension":{{"carrier":"a"}}}}"#), "dimension");
    let q = r#"{"tenant":"t","metric":"m","window":"day","time_zone":"UTC""#;
    refused::<Query>(&format!(r#"{q},"groupBy":["carrier"]}}"#), "groupBy");
    let spec = r#"{"metric":"m","window":"day","time_zone":"UTC""#;
    refused::<RollupSpec>(&format!(r#"{spec},"grup_by":["carrier"]}}"#), "grup_by");
    let quota = r#"{"id":"q","tenant":"t","metric":"m","period":"day","time_zone":"UTC","limit":"1","levels":["1"]"#;
    refused::<Quota>(&format!(r#"{quota},"subjet":"s"}}"#), "subjet");
    let bill = r#"{"tenant":"t","subject":"s","metric":"m","period_start":"2024-01-01T00:00:00Z","period_end":"2024-02-01T00:00:00Z","time_zone":"UTC""#;
    refused::<BillRequest>(&format!(r#"{bill},"periodEnd":"x"}}"#), "periodEnd");
    refused::<SharedMeter>(r#"{"meter":"m","metric":"k","shares":[],"scale":2,"weights":[]}"#, "weights");
    refused::<meterkit::vee::ValidationConfig>(r#"{"spikes":true,"windw":3}"#, "windw");
    // The correct spellings read.
    assert!(serde_json::from_str::<UsageRecord>(&format!(r#"{r},"dimensions":{{"carrier":"a"}}}}"#)).is_ok());
    assert!(serde_json::from_str::<Query>(&format!(r#"{q},"group_by":["carrier"]}}"#)).is_ok());
    assert!(serde_json::from_str::<Quota>(&format!(r#"{quota},"subject":"s"}}"#)).is_ok());
}

fn day_of_requests(tenant: &str, n: usize, hour: u32) -> Vec<UsageRecord> {
    (0..n)
        .map(|i| {
            rec(
                tenant,
                &format!("{hour}-{i}"),
                "portal-1",
                "requests",
                "1",
                &format!("2024-06-01T{hour:02}:{:02}:00Z", i % 60),
            )
            .with_dimension("status", if i % 7 == 0 { "error" } else { "ok" })
        })
        .collect()
}

/// A repeated batch is answered "all duplicates" (the probe), and exactly as the record-by-record
/// path would answer it: after a retraction the record comes back, a batch with a conflict is
/// never remembered, and the rollups stay exact.
#[test]
fn repeated_batches_are_duplicates_and_retraction_or_conflict_defeats_the_probe() {
    for store in ["memory", "sqlite"] {
        let dir = tempfile::tempdir().unwrap();
        let engine = match store {
            "memory" => Engine::in_memory(),
            _ => Engine::new(SqliteStore::open(dir.path().join("p.db")).unwrap()).unwrap(),
        };
        let batch = day_of_requests("api", 100, 9);
        assert_eq!(engine.ingest(&batch).unwrap().accepted, 100);
        let again = engine.ingest(&batch).unwrap();
        assert_eq!((again.accepted, again.duplicates, again.rejected.len()), (0, 100, 0), "{store}");
        engine.retract("api", "9-5").unwrap();
        let after = engine.ingest(&batch).unwrap();
        assert_eq!((after.accepted, after.duplicates), (1, 99), "{store}: the retracted record is stored again");
        // A changed record in an otherwise equal batch: a conflict, reported on every run.
        let mut changed = batch.clone();
        changed[3].quantity = Decimal::from(2);
        for _ in 0..2 {
            let r = engine.ingest(&changed).unwrap();
            assert_eq!((r.accepted, r.duplicates, r.rejected.len()), (0, 99, 1), "{store}");
        }
        // A quantity equal by value (1 = 1.0) is the same content: still duplicates.
        let mut same = batch.clone();
        same[0].quantity = "1.0".parse().unwrap();
        assert_eq!(engine.ingest(&same).unwrap().duplicates, 100);
        let q = Query::new("api", "requests", Window::Day, "UTC");
        let days = engine.query(&q).unwrap();
        assert_eq!((days[0].sum.to_string(), days[0].count), ("100".to_string(), 100));
    }
}

/// A batch sent as JSON text (Node's `ingest`): the same text again is answered from its stored
/// alias on every store — also from a second engine on the same store (the next cron process) —
/// and moves a source's watermark; a retraction defeats it.
#[test]
fn a_repeated_json_text_is_answered_from_its_alias_on_every_store() {
    let dir = tempfile::tempdir().unwrap();
    let schema = meterkit_tests::fresh_schema();
    let pg = meterkit_tests::pg_url("a_repeated_json_text_is_answered_from_its_alias_on_every_store");
    let mut stores = vec!["memory", "sqlite"];
    stores.extend(pg.as_ref().map(|_| "postgres"));
    let careful = |t: &str| -> meterkit::Result<Vec<UsageRecord>> {
        serde_json::from_str(t).map_err(|e| meterkit::Error::new(meterkit::ErrorKind::Parse, e.to_string()))
    };
    let text = serde_json::to_string(&day_of_requests("api", 100, 9)).unwrap();
    for store in stores {
        let open = || match store {
            "memory" => Engine::in_memory(),
            "sqlite" => Engine::new(SqliteStore::open(dir.path().join("t.db")).unwrap()).unwrap(),
            _ => Engine::new(meterkit_tests::pg_store(pg.as_deref().unwrap_or_default(), &schema)).unwrap(),
        };
        let engine = open();
        assert_eq!(engine.ingest_json(Some("hourly"), &text, careful).unwrap().accepted, 100, "{store}");
        let other;
        let second = if store == "memory" {
            &engine
        } else {
            other = open();
            &other
        };
        let again = second.ingest_json(Some("cron"), &text, careful).unwrap();
        assert_eq!((again.accepted, again.duplicates), (0, 100), "{store}");
        let at = "2024-06-01T09:59:00Z".parse().ok();
        assert_eq!(second.last_ingested_at("api", "cron").unwrap(), at, "{store}");
        second.retract("api", "9-5").unwrap();
        let after = engine.ingest_json(None, &text, careful).unwrap();
        assert_eq!((after.accepted, after.duplicates), (1, 99), "{store}");
        assert_eq!(engine.query(&Query::new("api", "requests", Window::Day, "UTC")).unwrap()[0].count, 100);
    }
}

/// A cron job's watermark: per tenant and source, the greatest timestamp stored or found stored,
/// moved in the same change as the batch, never backwards.
#[test]
fn per_source_watermark_lets_a_cron_job_skip_what_it_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let engine = Engine::new(SqliteStore::open(&path).unwrap()).unwrap();
    assert_eq!(engine.last_ingested_at("api", "hourly").unwrap(), None);
    engine.ingest_from("hourly", &day_of_requests("api", 100, 10)).unwrap();
    let at = |s: &str| Some(s.parse::<chrono::DateTime<chrono::Utc>>().unwrap());
    assert_eq!(engine.last_ingested_at("api", "hourly").unwrap(), at("2024-06-01T10:59:00Z"));
    // An older batch (a backfill) does not move it back; another source and tenant are separate.
    engine.ingest_from("hourly", &day_of_requests("api", 10, 8)).unwrap();
    engine.ingest_from("backfill", &day_of_requests("api", 10, 7)).unwrap();
    engine.ingest_from("hourly", &day_of_requests("other", 3, 11)).unwrap();
    drop(engine);
    let engine = Engine::new(SqliteStore::open(&path).unwrap()).unwrap();
    assert_eq!(engine.last_ingested_at("api", "hourly").unwrap(), at("2024-06-01T10:59:00Z"));
    assert_eq!(engine.last_ingested_at("api", "backfill").unwrap(), at("2024-06-01T07:09:00Z"));
    assert_eq!(engine.last_ingested_at("other", "hourly").unwrap(), at("2024-06-01T11:02:00Z"));
    // A rejected record (timestamped 13:30) does not move the watermark; a repeat run keeps it.
    let mut next = day_of_requests("api", 100, 12);
    next[99].quantity = Decimal::from(-1);
    next[99].timestamp = "2024-06-01T13:30:00Z".parse().unwrap();
    next[99].metric = String::new(); // invalid: rejected
    let r = engine.ingest_from("hourly", &next).unwrap();
    assert_eq!((r.accepted, r.rejected.len()), (99, 1));
    assert_eq!(engine.last_ingested_at("api", "hourly").unwrap(), at("2024-06-01T12:59:00Z"));
    assert_eq!(engine.ingest_from("hourly", &next[..99]).unwrap().duplicates, 99);
    let e = engine.ingest_from("", &next).unwrap_err();
    assert_eq!(e.field(), Some("source"));
    assert_eq!(engine.last_ingested_at("api", "").unwrap_err().field(), Some("source"));
}

/// `replace`: a revised record leaves its old buckets and enters its new ones in one change, the
/// old version is kept in history, and every aggregation equals a fresh ingest of the final data.
#[test]
fn replace_revises_records_atomically_and_keeps_history() {
    for store in ["memory", "sqlite"] {
        let dir = tempfile::tempdir().unwrap();
        let open = || match store {
            "memory" => Engine::in_memory(),
            _ => Engine::new(SqliteStore::open(dir.path().join("r.db")).unwrap()).unwrap(),
        };
        let engine = open();
        let spec = RollupSpec::new("msgs", Window::Day, "UTC").unwrap().group_by(["category"]);
        let spec = spec.with(meterkit::Aggregation::UniqueCount("channel".into()));
        engine.add_spec(spec).unwrap();
        let m = |id: &str, q: &str, at: &str, cat: &str, ch: &str| {
            rec("org", id, "org-1", "msgs", q, at).with_dimension("category", cat).with_dimension("channel", ch)
        };
        let first = vec![
            m("a", "10", "2024-07-01T10:00:00Z", "marketing", "wa-1"),
            m("b", "5", "2024-07-01T11:00:00Z", "marketing", "wa-2"),
            m("c", "7", "2024-07-02T09:00:00Z", "utility", "wa-1"),
        ];
        engine.ingest(&first).unwrap();
        // The provider revises a (quantity), moves b to 2 July as utility, repeats c, adds d.
        let revised = vec![
            m("a", "12", "2024-07-01T10:00:00Z", "marketing", "wa-1"),
            m("b", "4", "2024-07-02T08:00:00Z", "utility", "wa-3"),
            m("c", "7", "2024-07-02T09:00:00Z", "utility", "wa-1"),
            m("d", "1", "2024-07-01T12:00:00Z", "marketing", "wa-1"),
        ];
        let r = engine.replace(&revised).unwrap();
        assert_eq!((r.accepted, r.duplicates, r.replaced, r.rejected.len()), (1, 1, 2, 0), "{store}");
        let fresh = Engine::in_memory();
        fresh.ingest(&revised).unwrap();
        let q = Query::new("org", "msgs", Window::Day, "UTC").group_by(["category"]).unique("channel");
        let json = |e: &Engine| serde_json::to_string(&e.query(&q).unwrap()).unwrap();
        assert_eq!(json(&engine), json(&fresh), "{store}: buckets equal a fresh ingest of the final data");
        let history = engine.history("org", "b").unwrap();
        assert_eq!(history, vec![first[1].clone()], "{store}");
        assert!(engine.history("org", "c").unwrap().is_empty());
        // A second revision of b: two versions in history, oldest first, kept across a restart.
        engine.replace(&[m("b", "3", "2024-07-02T08:00:00Z", "utility", "wa-3")]).unwrap();
        drop(engine);
        let engine = open();
        let versions: Vec<String> =
            engine.history("org", "b").unwrap().iter().map(|r| r.quantity.to_string()).collect();
        if store == "sqlite" {
            assert_eq!(versions, vec!["5", "4"]);
            assert_eq!(
                engine
                    .records(
                        "org",
                        "msgs",
                        None,
                        "2024-07-01T00:00:00Z".parse().unwrap(),
                        "2024-07-03T00:00:00Z".parse().unwrap(),
                    )
                    .unwrap()
                    .len(),
                4
            );
        }
        // The original batch again: a and b now conflict (the probe was invalidated).
        let again = engine.ingest(&first).unwrap();
        assert_eq!(again.rejected.len(), usize::from(store == "sqlite") * 2, "{store}");
        // All or nothing: an invalid record refuses the whole batch.
        let before = json(&engine);
        let bad = engine.replace(&[
            m("a", "99", "2024-07-01T10:00:00Z", "marketing", "wa-1"),
            m("", "1", "2024-07-01T10:00:00Z", "x", "y"),
        ]);
        assert_eq!(bad.unwrap_err().kind(), meterkit::ErrorKind::InvalidRecord);
        let twice = engine
            .replace(&[m("e", "1", "2024-07-01T10:00:00Z", "x", "y"), m("e", "2", "2024-07-01T10:00:00Z", "x", "y")]);
        assert_eq!(twice.unwrap_err().record_id(), Some("e"));
        assert_eq!(json(&engine), before);
    }
}

/// Item 6 and item 10: a bucket's `first_at`/`last_at` (the API aggregator's `last_request_at`)
/// on SQLite across a restart, re-grouped, after a retraction of the latest record; its
/// `local_start` in the query's zone; `group_by: ["subject"]` gives `group.subject`.
#[test]
fn first_and_last_at_local_start_and_the_subject_group_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.db");
    let req = |id: &str, portal: &str, status: &str, at: &str| {
        let mut r = rec("acme", id, portal, "requests", "1", at);
        r.dimensions.insert("status".into(), status.into());
        r
    };
    let engine = Engine::new(SqliteStore::open(&path).unwrap()).unwrap();
    // Asia/Kolkata: January 2025 is 2024-12-31T18:30Z .. 2025-01-31T18:30Z.
    engine
        .ingest(&[
            req("1", "p1", "ok", "2024-12-31T18:30:00Z"),
            req("2", "p1", "error", "2025-01-10T09:00:00.250Z"),
            req("3", "p1", "ok", "2025-01-31T18:29:59Z"),
            req("4", "p2", "ok", "2025-01-05T00:00:00Z"),
            req("5", "p1", "ok", "2024-12-31T18:29:59Z"), // 31 December local: the month before
        ])
        .unwrap();
    drop(engine);
    let engine = Engine::new(SqliteStore::open(&path).unwrap()).unwrap();
    let q = Query::new("acme", "requests", Window::Month, "Asia/Kolkata").group_by(["subject", "status"]);
    let rows = engine.query(&q).unwrap();
    let view: Vec<ApiRow> = rows
        .iter()
        .map(|b| {
            (
                b.local_start.clone(),
                b.group["subject"].clone(),
                b.group["status"].clone(),
                b.count,
                meterkit::time::fmt_ts(b.first_at.unwrap()),
                meterkit::time::fmt_ts(b.last_at.unwrap()),
            )
        })
        .collect();
    let s = |x: &str| Some(x.to_string());
    let row = |l: &str, p: &str, st: &str, n: u64, f: &str, la: &str| (l.into(), s(p), s(st), n, f.into(), la.into());
    assert_eq!(
        view,
        vec![
            row("2024-12-01T00:00:00+05:30", "p1", "ok", 1, "2024-12-31T18:29:59Z", "2024-12-31T18:29:59Z"),
            row("2025-01-01T00:00:00+05:30", "p1", "error", 1, "2025-01-10T09:00:00.250Z", "2025-01-10T09:00:00.250Z"),
            row("2025-01-01T00:00:00+05:30", "p1", "ok", 2, "2024-12-31T18:30:00Z", "2025-01-31T18:29:59Z"),
            row("2025-01-01T00:00:00+05:30", "p2", "ok", 1, "2025-01-05T00:00:00Z", "2025-01-05T00:00:00Z"),
        ]
    );
    assert!(rows.iter().all(|b| b.subject == b.group["subject"]), "subject in both places");
    // Re-grouped by portal only: first/last merge like min/max.
    let by_portal = engine.query(&Query::new("acme", "requests", Window::Month, "Asia/Kolkata").subject("p1")).unwrap();
    let jan = &by_portal[1];
    assert_eq!((jan.count, jan.first_at, jan.last_at), (3, rows[2].first_at, rows[2].last_at));
    // Retracting the latest record moves last_at back to the one before it.
    engine.retract("acme", "3").unwrap();
    let jan = &engine.query(&Query::new("acme", "requests", Window::Month, "Asia/Kolkata").subject("p1")).unwrap()[1];
    assert_eq!(meterkit::time::fmt_ts(jan.last_at.unwrap()), "2025-01-10T09:00:00.250Z");
    assert_eq!(meterkit::time::fmt_ts(jan.first_at.unwrap()), "2024-12-31T18:30:00Z");
    let json = serde_json::to_value(jan).unwrap();
    assert_eq!(json["local_start"], "2025-01-01T00:00:00+05:30");
    assert_eq!(json["last_at"], "2025-01-10T09:00:00.250Z");
}

/// Item 3: a bill over a set of subjects, a dimension filter, or the whole tenant, rated together
/// (the graduated tiers apply to the scope's total), with per-subject usage when asked; on memory
/// and SQLite.
#[test]
fn account_bills_over_subject_sets_filters_and_the_whole_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let engines = [Engine::in_memory(), Engine::new(SqliteStore::open(dir.path().join("acct.db")).unwrap()).unwrap()];
    // 100 units at 0.10, then 0.05.
    let tariff = meterkit::Tariff::from_json(
        r#"{"currency":"USD","charges":[{"id":"e","type":"graduated","tiers":[{"up_to":"100","rate":"0.10"},{"rate":"0.05"}]}]}"#,
    )
    .unwrap();
    let sim = |id: &str, who: &str, acct: &str, q: &str, at: &str| {
        let mut r = rec("op", id, who, "bytes", q, at);
        r.dimensions.insert("account".into(), acct.into());
        r
    };
    let (may, june) = ("2024-05-01T00:00:00Z".parse().unwrap(), "2024-06-01T00:00:00Z".parse().unwrap());
    let req = BillRequest::new("op", "", "bytes", may, june, "UTC");
    for engine in &engines {
        engine
            .ingest(&[
                sim("1", "s1", "A", "40", "2024-05-02T00:00:00Z"),
                sim("2", "s1", "A", "20", "2024-05-03T00:00:00Z"),
                sim("3", "s2", "A", "50", "2024-05-04T00:00:00Z"),
                sim("4", "s3", "B", "30", "2024-05-05T00:00:00Z"),
                sim("5", "s1", "A", "999", "2024-06-01T00:00:00Z"), // next period
            ])
            .unwrap();
        let total = |r: &BillRequest| serde_json::to_value(engine.bill(&tariff, r).unwrap()).unwrap()["total"].clone();
        // s1 + s2 = 110: 100 × 0.10 + 10 × 0.05 = 10.50 (not 6.00 + 5.00 billed apart).
        let set = req.clone().with_subjects(["s2", "s1"]);
        assert_eq!(total(&set), "10.50");
        assert_eq!(total(&req.clone().with_filter("account", "A")), "10.50");
        assert_eq!(total(&req), "12.00", "the whole tenant: 140 = 10.00 + 40 × 0.05");
        let mut one = req.clone();
        one.subject = "s3".into();
        assert_eq!(total(&one), "3.00");
        assert_eq!(total(&req.clone().with_subjects(["s3"]).with_filter("account", "A")), "0.00");
        let mut lines = set.clone();
        lines.per_subject = true;
        let bill = engine.bill(&tariff, &lines).unwrap();
        let per: Vec<(String, String, u64)> =
            bill.per_subject.iter().map(|u| (u.subject.clone(), u.quantity.to_string(), u.records)).collect();
        assert_eq!(per, vec![("s1".into(), "60".into(), 2), ("s2".into(), "50".into(), 1)]);
        assert!(serde_json::to_value(engine.bill(&tariff, &set).unwrap()).unwrap().get("per_subject").is_none());
        let mut both = set.clone();
        both.subject = "s1".into();
        let e = engine.bill(&tariff, &both).unwrap_err();
        assert_eq!((e.kind(), e.field()), (meterkit::ErrorKind::InvalidQuery, Some("subjects")));
        // The JSON form, as the CLI and the bindings read it (subject omitted: the tenant).
        let parsed: BillRequest = serde_json::from_str(
            r#"{"tenant":"op","subjects":["s1","s2"],"per_subject":true,"metric":"bytes",
            "period_start":"2024-05-01T00:00:00Z","period_end":"2024-06-01T00:00:00Z","time_zone":"UTC"}"#,
        )
        .unwrap();
        assert_eq!(engine.bill(&tariff, &parsed).unwrap(), bill);
    }
}

/// Item 10: a local date or time in a zone → the instant (`time::local_instant`).
#[test]
fn local_dates_and_times_name_one_instant() {
    use meterkit::time::{fmt_ts, local_instant, parse_time_zone};
    let at = |text: &str, zone: &str| local_instant(text, parse_time_zone(zone).unwrap()).map(fmt_ts);
    assert_eq!(at("2025-01-01", "Asia/Kolkata").unwrap(), "2024-12-31T18:30:00Z");
    assert_eq!(at("2024-09-08", "America/Santiago").unwrap(), "2024-09-08T04:00:00Z"); // midnight skipped
    assert_eq!(at("2024-03-10 12:30:15.5", "America/New_York").unwrap(), "2024-03-10T16:30:15.500Z");
    assert_eq!(at("2024-03-10T12:30:00+01:00", "America/New_York").unwrap(), "2024-03-10T11:30:00Z");
    for bad in ["2024-11-03T01:30", "2024-03-10T02:30", "10/03/2024"] {
        let e = at(bad, "America/New_York").unwrap_err();
        assert_eq!((e.kind(), e.field()), (meterkit::ErrorKind::Parse, Some("local")), "{bad}");
    }
}

/// Item 3 (quotas): an account's pooled SIMs (a set of subjects), an organisation's pool by a
/// dimension filter, a per-SIM cap within a filter, and a whole-tenant cap — on memory and
/// SQLite, across a restart for SQLite. Usage is read from the tenant's own quota specs: another
/// tenant's ingest merges into none of them, and a retraction lowers the usage.
#[test]
fn quotas_over_subject_sets_filters_and_the_whole_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    for store in ["memory", "sqlite"] {
        let n = Arc::new(CollectingNotifier::new());
        let open = || -> Engine {
            let engine = match store {
                "memory" => Engine::in_memory(),
                _ => Engine::new(SqliteStore::open(&path).unwrap()).unwrap(),
            };
            engine.with_notifier(n.clone())
        };
        let levels = vec![Decimal::from(50), Decimal::from(100)];
        let q = |id: &str, limit: i64| {
            Quota::new(id, "isp", "mb", Window::Month, "UTC", Decimal::from(limit), levels.clone())
        };
        let quotas = [
            q("account", 100).with_subjects(["sim-1", "sim-2"]).pooled(),
            q("org", 200).with_filter("org", "acme").pooled(),
            q("per-sim", 60).with_filter("org", "acme"),
            q("tenant", 400).pooled(),
        ];
        let engine = open();
        for quota in &quotas {
            engine.add_quota(quota.clone()).unwrap();
        }
        assert!(engine.specs().iter().all(|s| s.tenant.as_deref() == Some("isp")), "the tenant's own specs");
        let mb = |id: &str, sim: &str, org: &str, q: &str| {
            rec("isp", id, sim, "mb", q, "2024-05-03T10:00:00Z").with_dimension("org", org)
        };
        // sim-1 30 (acme), sim-2 25 (acme): the account has 55 (≥ 50 %), acme 55, sim-1 30 = 50 % of 60.
        engine.ingest(&[mb("1", "sim-1", "acme", "30"), mb("2", "sim-2", "acme", "25")]).unwrap();
        let mut got = crossed_by(&n.take());
        got.sort();
        assert_eq!(
            got,
            [
                ("account".into(), String::new(), "50".into(), "55".into()),
                ("per-sim".into(), "sim-1".into(), "50".into(), "30".into()),
            ]
        );
        // Another tenant's records count nowhere; sim-3 (globex) counts for the tenant only.
        engine.ingest(&[UsageRecord { tenant: "other".into(), ..mb("x", "sim-1", "acme", "500") }]).unwrap();
        engine.ingest(&[mb("3", "sim-3", "globex", "160")]).unwrap();
        assert_eq!(crossed_by(&n.take()), [("tenant".into(), String::new(), "50".into(), "215".into())]);
        let engine = if store == "sqlite" {
            drop(engine);
            let again = open();
            for quota in &quotas {
                again.add_quota(quota.clone()).unwrap();
            }
            assert_eq!(again.specs().len(), 4, "the stored quota specs are reused");
            again
        } else {
            engine
        };
        // sim-2 +50 (acme): account 105 (100 %), acme 105 (50 %), sim-2 75 (50 % and 100 % of 60).
        engine.ingest(&[mb("4", "sim-2", "acme", "50")]).unwrap();
        let mut got = crossed_by(&n.take());
        got.sort();
        assert_eq!(
            got,
            [
                ("account".into(), String::new(), "100".into(), "105".into()),
                ("org".into(), String::new(), "50".into(), "105".into()),
                ("per-sim".into(), "sim-2".into(), "100".into(), "75".into()),
                ("per-sim".into(), "sim-2".into(), "50".into(), "75".into()),
            ]
        );
        // A retraction lowers the usage: after taking 3 (160) back, 200 more on sim-3 makes the
        // tenant 305 (not 465): still under 100 %.
        engine.retract("isp", "3").unwrap();
        engine.ingest(&[mb("5", "sim-3", "globex", "200")]).unwrap();
        assert!(crossed_by(&n.take()).is_empty());
        // Scope errors name the field.
        let both = Quota { subject: Some("sim-1".into()), ..q("bad", 1).with_subjects(["sim-2"]) };
        assert_eq!(engine.add_quota(both).unwrap_err().field(), Some("subjects"));
        let by_subject = q("bad", 1).with_filter("subject", "sim-1");
        assert_eq!(engine.add_quota(by_subject).unwrap_err().field(), Some("filter"));
        // The JSON form carries the scope; unknown keys are still refused.
        let json = serde_json::to_string(&quotas[0]).unwrap();
        assert!(json.contains(r#""subjects":["sim-1","sim-2"]"#) && json.contains(r#""pooled":true"#), "{json}");
        assert_eq!(serde_json::from_str::<Quota>(&json).unwrap(), quotas[0]);
        assert!(serde_json::from_str::<Quota>(&json.replace("pooled", "poooled")).is_err());
    }
}

fn crossed_by(events: &[Event]) -> Vec<(String, String, String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ThresholdCrossed { quota, subject, level, used, .. } => {
                Some((quota.clone(), subject.clone(), level.to_string(), used.to_string()))
            }
            _ => None,
        })
        .collect()
}

/// Item 8: an unplanned query is answered from the records (the same rows a spec gives) and adds
/// no spec; `spec_for_query` names the spec to add; a tenant's own spec answers that tenant's
/// queries only.
#[test]
fn unplanned_queries_add_no_spec_and_tenant_specs_answer_their_tenant() {
    let engine = Engine::in_memory();
    let r = |t: &str, id: &str, sim: &str, at: &str, q: &str| {
        rec(t, id, sim, "mb", q, at).with_dimension("carrier", if sim == "s1" { "a" } else { "b" })
    };
    engine
        .ingest(&[
            r("t", "1", "s1", "2024-05-01T10:00:00Z", "1"),
            r("t", "2", "s2", "2024-05-01T11:00:00Z", "2"),
            r("t", "3", "s2", "2024-05-02T23:30:00Z", "4"),
            r("u", "1", "s1", "2024-05-01T10:00:00Z", "8"),
        ])
        .unwrap();
    let q = Query::new("t", "mb", Window::Day, "Asia/Kolkata").group_by(["carrier"]).unique("subject");
    let q = q.range("2024-05-01T00:00:00Z".parse().unwrap(), "2024-05-03T00:00:00Z".parse().unwrap());
    let unplanned = serde_json::to_string(&engine.query(&q).unwrap()).unwrap();
    assert!(engine.specs().is_empty(), "an unplanned query adds no spec");
    // 23:30Z on 2 May is 05:00 on 3 May in Kolkata: a third day, starting before `to`.
    let days: Vec<(String, u64)> = engine.query(&q).unwrap().iter().map(|b| (b.local_start.clone(), b.count)).collect();
    assert_eq!(days.len(), 3, "{days:?}");
    engine.add_spec(Engine::spec_for_query(&q).unwrap().for_tenant("t")).unwrap();
    assert_eq!(serde_json::to_string(&engine.query(&q).unwrap()).unwrap(), unplanned, "the spec gives the same rows");
    // u's query is not answered from t's spec (it would be empty): from u's records.
    let uq = Query { tenant: "u".into(), ..q.clone() };
    assert_eq!(engine.query(&uq).unwrap()[0].sum.to_string(), "8");
    // A spec of another tenant is refused by an import naming the field.
    let spec = Engine::spec_for_query(&q).unwrap().for_tenant("t");
    let key = meterkit::store::BucketKey { tenant: "u".into(), spec: 0, start: 0, group: vec![None] };
    let state = meterkit::rollup::BucketState { count: 1, sum: Decimal::ONE, ..Default::default() };
    assert_eq!(engine.import_buckets(&spec, &[(key, 60, state)]).unwrap_err().field(), Some("tenant"));
    let bad = RollupSpec::new("mb", Window::Day, "UTC").unwrap().for_tenant("");
    assert_eq!(engine.add_spec(bad).unwrap_err().field(), Some("tenant"));
}
