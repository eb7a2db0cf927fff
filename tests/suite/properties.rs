//! Property tests: ingest order, batch splits, replays and retractions never change a query's
//! answer, and windows nest (minutes in hours in days in months) in every zone.
//!
//! Records are generated with quantities of several scales (`1.5` and `1.50`), timestamps
//! clustered around DST changes in New York, Lord Howe and Santiago, a Kolkata midnight and a
//! year end, and drawn from a small per-case pool so that ties on timestamps (which exercise
//! `latest`'s tie-break by id) are common.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use meterkit::{Bucket, Decimal, Engine, ErrorKind, Query, UsageRecord, Window};
use meterkit_tests::{buckets_json, ts};
use proptest::prelude::*;

const ZONES: [&str; 5] = ["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "America/Santiago"];

/// Instants next to which timestamps are generated.
const BASES: [&str; 7] = [
    "2024-03-10T07:00:00Z", // New York spring forward
    "2024-11-03T06:00:00Z", // New York fall back
    "2024-04-06T15:00:00Z", // Lord Howe DST end (30 min)
    "2024-10-05T15:30:00Z", // Lord Howe DST start (30 min)
    "2024-09-08T04:00:00Z", // Santiago: local midnight missing
    "2024-02-29T18:30:00Z", // Kolkata midnight on a leap day
    "2024-12-31T23:30:00Z", // year end
];

/// Every query whose answer the properties compare, for one tenant.
fn queries(tenant: &str) -> Vec<Query> {
    let mut out = Vec::new();
    for zone in ZONES {
        for w in [Window::Hour, Window::Day, Window::Month] {
            out.push(Query::new(tenant, "kwh", w, zone));
        }
        out.push(Query::new(tenant, "kwh", Window::Day, zone).group_by(["carrier"]).unique("subject"));
        out.push(Query::new(tenant, "kwh", Window::Hour, zone).group_by(["subject"]));
    }
    out.push(Query::new(tenant, "kwh", Window::Minutes(15), "Asia/Kolkata").unique("carrier"));
    out.push(Query::new(tenant, "kwh", Window::BillingCycle { anchor_day: 31 }, "Europe/London").subject("s1"));
    out.push(Query::new(tenant, "kwh", Window::Week, "America/New_York").filter("carrier", "A"));
    out
}

/// The JSON answers of every query.
fn snapshot(engine: &Engine, tenant: &str) -> Vec<String> {
    queries(tenant).iter().map(|q| buckets_json(&engine.query(q).unwrap())).collect()
}

/// Create every query's rollup spec before anything is ingested (incremental path).
fn with_specs(engine: Engine) -> Engine {
    for q in queries("t") {
        engine.query(&q).unwrap();
    }
    engine
}

fn decimal() -> impl Strategy<Value = Decimal> {
    (-1_000_000i64..1_000_000, 0u32..5, 0u32..3)
        .prop_map(|(m, scale, zeros)| Decimal::new(m * 10i64.pow(zeros), scale + zeros))
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0..BASES.len(), -400i64..400, prop_oneof![4 => Just(0i64), 1 => 1i64..900], any::<bool>()).prop_map(
        |(b, k, extra, half)| {
            let t = ts(BASES[b]) + Duration::seconds(k * 450 + extra);
            if half {
                t + Duration::milliseconds(500)
            } else {
                t
            }
        },
    )
}

/// Records with unique ids (`r0`, `r1`, … so that string order differs from numeric order).
fn records(max: usize) -> impl Strategy<Value = Vec<UsageRecord>> {
    let pool = prop::collection::vec(instant(), 1..10);
    pool.prop_flat_map(move |pool| {
        let n = pool.len();
        let one = (
            0..n,
            decimal(),
            prop::sample::select(vec!["s1", "s2", "s3"]),
            prop::sample::select(vec![Some("A"), Some("B"), None]),
            prop_oneof![9 => Just("kwh"), 1 => Just("gas")],
            prop_oneof![9 => Just("t"), 1 => Just("u")],
        );
        (Just(pool), prop::collection::vec(one, 1..max))
    })
    .prop_map(|(pool, specs)| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (at, q, subject, carrier, metric, tenant))| {
                let r = UsageRecord::new(tenant, format!("r{i}"), subject, metric, q, pool[at]);
                match carrier {
                    Some(c) => r.with_dimension("carrier", c),
                    None => r,
                }
            })
            .collect()
    })
}

/// Split `items` at the (sorted, deduplicated) cut points.
fn split<T: Clone>(items: &[T], cuts: &[usize]) -> Vec<Vec<T>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (items.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut from = 0;
    for c in cuts.into_iter().chain(std::iter::once(items.len())) {
        out.push(items[from..c].to_vec());
        from = c;
    }
    out
}

/// The same value with more trailing zeros (`1.5` -> `1.500`), when it fits.
fn rescaled(d: Decimal) -> Decimal {
    let mut r = d;
    r.rescale(d.scale() + 2);
    if r == d {
        r
    } else {
        d
    }
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 48, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    /// Any permutation of a batch, split into any number of batches, ingested with the specs
    /// existing first or backfilled later, gives identical answers; and tenant "u"'s records
    /// never influence tenant "t"'s answers.
    #[test]
    fn order_and_batch_splits_do_not_matter(
        recs in records(40),
        perm in Just(()).prop_perturb(|(), mut rng| rng.random::<u64>()),
        cuts in prop::collection::vec(0usize..64, 0..5),
    ) {
        let one = Engine::in_memory();
        let report = one.ingest(&recs).unwrap();
        prop_assert_eq!(report.accepted as usize, recs.len());
        let expected = snapshot(&one, "t");

        let mut shuffled = recs.clone();
        shuffle(&mut shuffled, perm);
        let split_engine = with_specs(Engine::in_memory());
        let mut accepted = 0;
        for batch in split(&shuffled, &cuts) {
            let r = split_engine.ingest(&batch).unwrap();
            prop_assert!(r.rejected.is_empty());
            prop_assert_eq!(r.duplicates, 0);
            accepted += r.accepted;
        }
        prop_assert_eq!(accepted as usize, recs.len());
        prop_assert_eq!(snapshot(&split_engine, "t"), expected.clone());

        let only_t: Vec<UsageRecord> = recs.iter().filter(|r| r.tenant == "t").cloned().collect();
        let isolated = Engine::in_memory();
        isolated.ingest(&only_t).unwrap();
        prop_assert_eq!(snapshot(&isolated, "t"), expected);
    }

    /// Replaying batches (also with quantities written with more trailing zeros) only counts
    /// duplicates and changes nothing.
    #[test]
    fn replaying_changes_nothing(recs in records(30), cuts in prop::collection::vec(0usize..64, 0..4)) {
        let engine = with_specs(Engine::in_memory());
        let batches = split(&recs, &cuts);
        for b in &batches {
            engine.ingest(b).unwrap();
        }
        let before = snapshot(&engine, "t");
        for b in &batches {
            let r = engine.ingest(b).unwrap();
            prop_assert_eq!((r.accepted, r.duplicates, r.rejected.len()), (0, b.len() as u64, 0));
        }
        let respelled: Vec<UsageRecord> =
            recs.iter().map(|r| UsageRecord { quantity: rescaled(r.quantity), ..r.clone() }).collect();
        let r = engine.ingest(&respelled).unwrap();
        prop_assert_eq!((r.accepted, r.duplicates, r.rejected.len()), (0, recs.len() as u64, 0));
        // A batch that repeats itself: the second copies are duplicates within the batch.
        let mut doubled = recs.clone();
        doubled.extend(recs.iter().cloned());
        let r = engine.ingest(&doubled).unwrap();
        prop_assert_eq!((r.accepted, r.duplicates), (0, doubled.len() as u64));
        prop_assert_eq!(snapshot(&engine, "t"), before);

        let fresh = Engine::in_memory();
        let r = fresh.ingest(&doubled).unwrap();
        prop_assert_eq!((r.accepted, r.duplicates), (recs.len() as u64, recs.len() as u64));
        prop_assert_eq!(snapshot(&fresh, "t"), snapshot(&engine, "t"));
    }

    /// Retracting records (in any order) gives exactly the answers of never ingesting them,
    /// min, max, latest and unique counts included.
    #[test]
    fn retracted_equals_never_ingested(
        recs in records(40),
        keep in prop::collection::vec(any::<bool>(), 40),
        perm in Just(()).prop_perturb(|(), mut rng| rng.random::<u64>()),
    ) {
        let kept: Vec<UsageRecord> =
            recs.iter().enumerate().filter(|(i, _)| keep[*i]).map(|(_, r)| r.clone()).collect();
        let mut dropped: Vec<UsageRecord> =
            recs.iter().enumerate().filter(|(i, _)| !keep[*i]).map(|(_, r)| r.clone()).collect();

        let engine = with_specs(Engine::in_memory());
        engine.ingest(&recs).unwrap();
        shuffle(&mut dropped, perm);
        for r in &dropped {
            let removed = engine.retract(&r.tenant, &r.id).unwrap();
            prop_assert_eq!(&removed, r);
        }
        let never = Engine::in_memory();
        never.ingest(&kept).unwrap();
        prop_assert_eq!(snapshot(&engine, "t"), snapshot(&never, "t"));
        // Retracting again: not found.
        if let Some(r) = dropped.first() {
            prop_assert_eq!(engine.retract(&r.tenant, &r.id).unwrap_err().kind(), ErrorKind::NotFound);
        }
        // Re-ingesting the retracted records restores the full answers.
        let r = engine.ingest(&dropped).unwrap();
        prop_assert_eq!(r.accepted as usize, dropped.len());
        let all = Engine::in_memory();
        all.ingest(&recs).unwrap();
        prop_assert_eq!(snapshot(&engine, "t"), snapshot(&all, "t"));
    }

    /// The same id with different content is rejected as a conflict and never applied, whether
    /// the first version is stored or earlier in the same batch.
    #[test]
    fn conflicts_are_rejected_and_never_applied(
        recs in records(30),
        which in prop::collection::vec(any::<bool>(), 30),
        how in 0u8..4,
    ) {
        let engine = with_specs(Engine::in_memory());
        engine.ingest(&recs).unwrap();
        let before = snapshot(&engine, "t");
        let changed: Vec<UsageRecord> = recs
            .iter()
            .enumerate()
            .filter(|(i, _)| which[*i])
            .map(|(_, r)| {
                let mut c = r.clone();
                match how {
                    0 => c.quantity += Decimal::ONE,
                    1 => c.subject.push('x'),
                    2 => c.timestamp += Duration::seconds(1),
                    _ => {
                        c.dimensions.insert("carrier".into(), "Z".into());
                    }
                }
                c
            })
            .collect();
        let fresh: Vec<UsageRecord> = (0..3)
            .map(|i| UsageRecord::new("t", format!("new{i}"), "s1", "kwh", Decimal::from(i + 1), ts(BASES[i])))
            .collect();
        let mut batch = changed.clone();
        batch.extend(fresh.iter().cloned());
        let report = engine.ingest(&batch).unwrap();
        prop_assert_eq!(report.accepted, 3);
        let rejected: BTreeSet<(String, String)> =
            report.rejected.iter().map(|r| (r.tenant.clone(), r.id.clone())).collect();
        let conflicting: BTreeSet<(String, String)> =
            changed.iter().map(|r| (r.tenant.clone(), r.id.clone())).collect();
        prop_assert_eq!(rejected, conflicting);
        prop_assert!(report.rejected.iter().all(|r| r.kind == ErrorKind::Conflict));
        let expected = Engine::in_memory();
        expected.ingest(&recs).unwrap();
        expected.ingest(&fresh).unwrap();
        prop_assert_eq!(snapshot(&engine, "t"), snapshot(&expected, "t"));
        prop_assert!(before != snapshot(&engine, "t") || fresh.iter().all(|r| r.tenant != "t"));

        // In one batch: the first version wins, the second is a conflict.
        let mut both = recs.clone();
        both.extend(changed.iter().cloned());
        let one = Engine::in_memory();
        let report = one.ingest(&both).unwrap();
        prop_assert_eq!(report.accepted as usize, recs.len());
        prop_assert_eq!(report.rejected.len(), changed.len());
        let plain = Engine::in_memory();
        plain.ingest(&recs).unwrap();
        prop_assert_eq!(snapshot(&one, "t"), snapshot(&plain, "t"));
    }

    /// Windows nest: every 15-minute window lies in one hour, every hour in one local day,
    /// every day in one month, in every zone (including 23/25-hour New York days, 23.5/24.5-hour
    /// Lord Howe days, Kolkata's 18:30Z midnight and Santiago's missing midnight); the sums and
    /// counts of the finer buckets inside a coarser bucket equal its own, and min/max agree.
    #[test]
    fn finer_windows_sum_to_coarser_ones(recs in records(60)) {
        let engine = Engine::in_memory();
        engine.ingest(&recs).unwrap();
        let chain = [Window::Minutes(15), Window::Hour, Window::Day, Window::Month, Window::Year];
        for zone in ZONES {
            let rows: Vec<Vec<Bucket>> =
                chain.iter().map(|w| engine.query(&Query::new("t", "kwh", *w, zone)).unwrap()).collect();
            for pair in rows.windows(2) {
                let (fine, coarse) = (&pair[0], &pair[1]);
                let mut used = 0;
                for c in coarse {
                    let inside: Vec<&Bucket> = fine
                        .iter()
                        .filter(|f| f.window_start >= c.window_start && f.window_start < c.window_end)
                        .collect();
                    prop_assert!(inside.iter().all(|f| f.window_end <= c.window_end), "{zone}: a window straddles {c:?}");
                    let sum: Decimal = inside.iter().map(|f| f.sum).sum();
                    prop_assert_eq!(sum, c.sum, "{}", zone);
                    prop_assert_eq!(inside.iter().map(|f| f.count).sum::<u64>(), c.count);
                    prop_assert_eq!(inside.iter().filter_map(|f| f.min).min(), c.min);
                    prop_assert_eq!(inside.iter().filter_map(|f| f.max).max(), c.max);
                    used += inside.len();
                }
                prop_assert_eq!(used, fine.len(), "{}: every fine bucket lies in a coarse one", zone);
            }
        }
    }
}

/// Fisher-Yates with a splitmix64 stream seeded from the case (reproducible by proptest).
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[test]
fn split_and_shuffle_helpers_keep_every_item() {
    let items: Vec<u32> = (0..10).collect();
    let parts = split(&items, &[3, 7, 7, 25]);
    assert_eq!(parts.concat(), items);
    assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), [3, 4, 3]);
    let mut s = items.clone();
    shuffle(&mut s, 42);
    assert_ne!(s, items);
    s.sort_unstable();
    assert_eq!(s, items);
    assert_eq!(rescaled(Decimal::new(15, 1)).to_string(), "1.500");
}

/// Zones with awkward rules: 30- and 45-minute offsets, a 30-minute DST shift, midnight
/// transitions (Santiago, São Paulo, Havana, Beirut), skipped whole days (Apia 2011, Kiritimati
/// 1994-95), negative DST (Dublin), Ramadan suspensions (Casablanca), a 2-hour DST (Troll).
const AWKWARD_ZONES: [&str; 15] = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/Santiago",
    "America/Sao_Paulo",
    "America/Havana",
    "Asia/Beirut",
    "Pacific/Apia",
    "Pacific/Kiritimati",
    "Europe/Dublin",
    "Africa/Casablanca",
    "Antarctica/Troll",
];

/// An instant within three days after a date in a month where clocks often change, 1970-2040.
fn near_a_change() -> impl Strategy<Value = DateTime<Utc>> {
    (1970i32..2040, prop::sample::select(vec![1u32, 3, 4, 5, 9, 10, 11, 12]), 1u32..29, 0i64..3 * 86_400).prop_map(
        |(y, m, d, s)| {
            chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc()
                + Duration::seconds(s)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// The windows of one kind in one zone tile time: the window of `t` contains `t`, its start
    /// and its last second map to the same window, its end starts the next window, and a
    /// sub-daily window is never longer than its nominal length.
    #[test]
    fn windows_tile_time_in_awkward_zones(
        t in near_a_change(),
        zone in prop::sample::select(AWKWARD_ZONES.to_vec()),
        w in prop::sample::select(vec![
            Window::Minutes(15), Window::Minutes(30), Window::Hour, Window::Minutes(180), Window::Day,
            Window::Week, Window::Month, Window::Quarter, Window::BillingCycle { anchor_day: 31 },
        ]),
    ) {
        let tz = meterkit::time::parse_time_zone(zone).unwrap();
        let (s, e) = w.span(t, tz).unwrap();
        prop_assert!(s <= t && t < e, "{w} in {zone}: {t} not in [{s}, {e})");
        prop_assert_eq!(w.span(s, tz).unwrap(), (s, e));
        prop_assert_eq!(w.span(e - Duration::seconds(1), tz).unwrap(), (s, e));
        let (s2, e2) = w.span(e, tz).unwrap();
        prop_assert_eq!(s2, e, "{} in {}: the next window must start at {}", w, zone, e);
        prop_assert!(e2 > s2);
        let (p, pe) = w.span(s - Duration::seconds(1), tz).unwrap();
        prop_assert_eq!(pe, s, "{} in {}: the previous window must end at {}", w, zone, s);
        prop_assert!(p < pe);
        match w {
            Window::Minutes(n) => prop_assert!((e - s).num_minutes() <= i64::from(n)),
            Window::Hour => prop_assert!((e - s).num_minutes() <= 60),
            _ => {}
        }
    }
}
