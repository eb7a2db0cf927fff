//! Rating from a month's profile gives the same bill, line for line, as rating its records.

use chrono::{Datelike, Duration, TimeZone, Utc};
use rust_decimal::Decimal;

use super::MonthProfile;
use crate::billing::year::YearState;
use crate::billing::BillRequest;
use crate::record::UsageRecord;
use crate::tariff::Tariff;

const REAL: &str = include_str!("../../../tests/data/urdb/urdb-539f6a23ec4f024411ec8beb-south-central-ppd-lp1.json");

/// Three months of hourly kWh (3 decimals, varying by hour), two records in some hours.
fn load() -> Vec<UsageRecord> {
    let start = Utc.with_ymd_and_hms(2018, 1, 1, 0, 0, 0).unwrap();
    let mut out = Vec::new();
    for h in 0..24 * 90_i64 {
        let q = Decimal::new((h * 7919) % 2000 + 100, 3);
        let at = start + Duration::hours(h);
        out.push(UsageRecord::new("t", format!("h{h}"), "house", "kwh", q, at));
        if h % 5 == 0 {
            out.push(UsageRecord::new(
                "t",
                format!("x{h}"),
                "house",
                "kwh",
                Decimal::new(250, 3),
                at + Duration::minutes(30),
            ));
        }
    }
    out
}

fn month(m: u32) -> BillRequest {
    let a = Utc.with_ymd_and_hms(2018, m, 1, 0, 0, 0).unwrap();
    let b = Utc.with_ymd_and_hms(2018, m + 1, 1, 0, 0, 0).unwrap();
    BillRequest::new("t", "house", "kwh", a, b, "UTC")
}

const TOU: &str = r#"
currency = "USD"
annual_minimum = "900"
[ratchet]
percent = "75"
months = 2
[[charges]]
id = "energy"
type = "time_of_use"
schedule = { periods = ["off", "peak"], weekday = [[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1,1,1,0,0,0]], weekend = [[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]] }
periods = { off = { tiers = [{ up_to = "300", rate = "0.1" }, { rate = "0.2" }] }, peak = { tiers = [{ up_to = "300", rate = "0.3" }, { rate = "0.4" }] } }
shared_ladder = "pro_rata"
tier_basis = "per_kw"
[[charges]]
id = "demand"
type = "demand"
schedule = { periods = ["off", "peak"], weekday = [[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1,1,1,0,0,0]] }
periods = { off = { rate = "2" }, peak = { tiers = [{ up_to = "1", rate = "5" }, { rate = "9" }] } }
[[charges]]
id = "flat"
type = "demand"
months = [2]
rate = "4"
[[charges]]
id = "fixed"
type = "fixed"
per = "day"
amount = "0.5"
[[charges]]
id = "min"
type = "minimum"
amount = "80"
"#;

#[test]
fn a_profile_rates_like_the_records() {
    let records = load();
    let tariffs = [Tariff::from_urdb_json(REAL).unwrap(), Tariff::from_toml(TOU).unwrap().normalized().unwrap()];
    for t in &tariffs {
        let (mut with, mut without) = (YearState::default(), YearState::default());
        for m in 1..=3 {
            let req = month(m);
            let lo = records.partition_point(|r| r.timestamp < req.period_start);
            let hi = records.partition_point(|r| r.timestamp < req.period_end);
            let recs = &records[lo..hi];
            let p = MonthProfile::build(recs, &req).unwrap().unwrap();
            assert!(p.fits(t), "{:?}", t.name);
            assert_eq!(p.month0, req.period_start.month0());
            let fast = t.rate_in_year(&req, recs, &mut with, Some(&p)).unwrap();
            let slow = t.rate_in_year(&req, recs, &mut without, None).unwrap();
            assert_eq!(fast, slow, "{:?} month {m}", t.name);
        }
    }
}

#[test]
fn what_a_profile_cannot_carry_falls_back() {
    let mut records = load();
    let req = month(1);
    // Holidays and time-ordered ladders need each record.
    let mut t = Tariff::from_toml(TOU).unwrap().normalized().unwrap();
    let p = MonthProfile::build(&records, &req).unwrap().unwrap();
    let crate::tariff::Charge::TimeOfUse(energy) = &mut t.versions[0].charges[0] else { panic!("a TOU charge") };
    energy.prices.schedule.holidays.push(chrono::NaiveDate::from_ymd_opt(2018, 1, 1).unwrap());
    assert!(!p.fits(&t));
    // An export, or records out of time order: no profile.
    records[3].dimensions.insert("direction".into(), "export".into());
    assert!(MonthProfile::build(&records, &req).unwrap().is_none());
    records[3].dimensions.clear();
    records.swap(1, 2);
    assert!(MonthProfile::build(&records, &req).unwrap().is_none());
}

/// Every cell as `(mantissa, scale)` words, and which cells are used.
fn digits(p: &MonthProfile) -> (Vec<[u8; 16]>, [[bool; 24]; 2]) {
    let cells = p.sums.iter().chain(&p.peaks).flatten().chain([&p.peak]).map(Decimal::serialize).collect();
    (cells, p.used)
}

/// March 2018 in `zone`, local midnight to local midnight.
fn march(zone: &str) -> BillRequest {
    let (a, b) = crate::billing::month_period("2018-03", zone.parse().unwrap()).unwrap();
    BillRequest::new("t", "house", "kwh", a, b, zone)
}

/// The integer sums give the very decimals that decimal addition gives — value and scale (a zero
/// operand keeps the other's scale, else the larger one wins) — in zones with and without DST.
#[test]
fn integer_cells_equal_decimal_sums_digit_for_digit() {
    let start = Utc.with_ymd_and_hms(2018, 2, 27, 0, 0, 0).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut records = Vec::new();
    for i in 0..3 * 24 * 36 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let scale = ((x >> 33) % 20) as u32;
        let m = if (x >> 45).is_multiple_of(6) { 0 } else { ((x >> 11) % 50_000_000) as i64 };
        let at = start + Duration::minutes(20 * i);
        records.push(UsageRecord::new("t", format!("r{i}"), "house", "kwh", Decimal::new(m, scale), at));
        if i % 11 == 0 {
            // Another subject and another metric: not in the profile.
            records.push(UsageRecord::new("t", format!("o{i}"), "other", "kwh", Decimal::ONE, at));
            records.push(UsageRecord::new("t", format!("g{i}"), "house", "gas", Decimal::ONE, at));
        }
    }
    for zone in ["UTC", "Europe/London", "America/Chicago", "Asia/Kolkata", "Australia/Lord_Howe"] {
        let req = march(zone);
        let tz = zone.parse().unwrap();
        assert!(matches!(super::ExactCells::sum(&records, &req, tz), super::Pass::Summed(_)), "{zone}");
        let fast = MonthProfile::build(&records, &req).unwrap().unwrap();
        let slow = MonthProfile::empty(&req, tz, 2).sum_decimals(&records, &req, tz).unwrap().unwrap();
        assert_eq!(digits(&fast), digits(&slow), "{zone}");
        assert!(fast.used.iter().flatten().all(|&u| u), "{zone}");
    }
}

/// A correction (negative quantity) or a sum beyond 96 bits (where decimal addition rounds)
/// takes the decimal path, with its result.
#[test]
fn corrections_and_huge_sums_take_the_decimal_path() {
    let at = |h: i64| Utc.with_ymd_and_hms(2018, 3, 5, 0, 0, 0).unwrap() + Duration::hours(h);
    let rec = |i: i64, q: Decimal| UsageRecord::new("t", format!("r{i}"), "house", "kwh", q, at(i / 2));
    let req = march("UTC");
    let tz = "UTC".parse().unwrap();
    let huge = Decimal::from_i128_with_scale(50_000_000_000_000_000_000_000_000_000, 1);
    for qs in [
        vec![Decimal::new(15, 1), Decimal::new(-5, 1), Decimal::new(2, 0)],
        vec![huge, huge, Decimal::new(1, 3)],
        vec![
            Decimal::new(0, 4),
            {
                let mut z = Decimal::new(0, 2);
                z.set_sign_negative(true);
                z
            },
            Decimal::new(7, 2),
        ],
    ] {
        let records: Vec<_> = qs.iter().enumerate().map(|(i, q)| rec(i as i64, *q)).collect();
        let cells = super::ExactCells::sum(&records, &req, tz);
        let integers_fit = matches!(&cells, super::Pass::Summed(c) if c.write(&mut MonthProfile::empty(&req, tz, 2)));
        assert!(!integers_fit, "{qs:?}");
        let fast = MonthProfile::build(&records, &req).unwrap().unwrap();
        let slow = MonthProfile::empty(&req, tz, 2).sum_decimals(&records, &req, tz).unwrap().unwrap();
        assert_eq!(digits(&fast), digits(&slow), "{qs:?}");
    }
    // 2 × 5e27 at scale 1 needs 97 bits: decimal addition rounds to scale 0, exactly 1e28.
    let records = [rec(0, huge), rec(1, huge)];
    let p = MonthProfile::build(&records, &req).unwrap().unwrap();
    assert_eq!(p.peak, Decimal::from_i128_with_scale(10_000_000_000_000_000_000_000_000_000, 0));
}

/// `Tariff::compare` reads records in time order once (profiles and order checked in one pass);
/// the same records in any other order (sorted into a copy) compare the same, and every month's
/// total is the record path's.
#[test]
fn compare_gives_the_same_in_any_order_and_as_the_records() {
    let mut records = load();
    let at = |d: u32| Utc.with_ymd_and_hms(2018, 1, d, 12, 0, 0).unwrap();
    records.insert(40, UsageRecord::new("t", "o1", "other", "kwh", Decimal::new(9, 0), at(2)));
    let year = BillRequest::new(
        "t",
        "house",
        "kwh",
        Utc.with_ymd_and_hms(2018, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2018, 4, 1, 0, 0, 0).unwrap(),
        "UTC",
    );
    let tariffs = [Tariff::from_urdb_json(REAL).unwrap(), Tariff::from_toml(TOU).unwrap()];
    let named = || tariffs.iter().enumerate().map(|(i, t)| (if i == 0 { "real" } else { "tou" }, t));
    let want = Tariff::compare(named(), &year, &records).unwrap();
    for c in &want {
        let t = &tariffs[usize::from(c.tariff == "tou")];
        let t = t.clone().normalized().unwrap();
        let mut state = YearState::default();
        for (m, period) in (1..=3).zip(&c.periods) {
            let req = month(m);
            let bill = t.rate_in_year(&req, &records, &mut state, None).unwrap();
            assert_eq!(bill.total, period.total, "{} {m}", c.tariff);
        }
    }
    let february = records.iter().position(|r| r.timestamp.month() == 2).unwrap();
    let mut orders = Vec::new();
    let mut reversed = records.clone();
    reversed.reverse();
    orders.push(reversed);
    for k in [february + 100, february - 1, 5] {
        let mut swapped = records.clone();
        swapped.swap(k, k + 1);
        orders.push(swapped);
    }
    for (i, o) in orders.iter().enumerate() {
        assert_eq!(Tariff::compare(named(), &year, o).unwrap(), want, "order {i}");
    }
}
