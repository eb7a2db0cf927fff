//! A prepared load prices every tariff as the record path does: the same bills, digit for digit.
#![allow(clippy::many_single_char_names)] // generators: g (the generator), r (a record), n, k, t…

use chrono::{Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::PreparedLoad;
use crate::billing::year::YearState;
use crate::billing::{Bill, BillRequest};
use crate::record::UsageRecord;
use crate::tariff::Tariff;

const UNITS: [&str; 4] = ["kWh", "kWh/kW", "kWh daily", "kWh/kW daily"];
const RULES: [&str; 4] = ["Net Metering", "Net Billing Instantaneous", "Net Billing Hourly", "Buy All Sell All"];

/// A small seeded generator (PCG-style LCG, the high bits).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// A price in `[lo, hi)` thousandths, as a JSON number with 3 decimals.
    fn price(&mut self, lo: u64, hi: u64) -> Value {
        json!((lo + self.below(hi - lo)) as f64 / 1000.0)
    }
}

/// `periods` periods of the same tiers (as the PySAM oracle's generator, `tests/pysam/oracle.py`).
fn structure(g: &mut Rng, unit: &str, energy: bool, periods: usize) -> Value {
    let n = 1 + g.below(3) as usize;
    let step = if energy { [150, 120, 5, 4][UNITS.iter().position(|u| *u == unit).unwrap_or(0)] } else { 2 };
    let mut maxes = Vec::new();
    let mut top = 0;
    for _ in 1..n {
        top += (1 + g.below(4)) * step;
        maxes.push(top);
    }
    let last_max = [None, None, Some(1e38), Some(9.999_999_680_285_692e37)][g.below(4) as usize];
    let mut out = Vec::new();
    for _ in 0..periods {
        let mut tiers = Vec::new();
        for i in 0..n {
            let mut t = json!({ "rate": if energy { g.price(20, 300) } else { g.price(1000, 20_000) } });
            if energy {
                t["unit"] = json!(unit);
                if g.chance(30) {
                    t["adj"] = g.price(0, 20);
                }
                if g.chance(30) {
                    t["sell"] = g.price(10, 50);
                }
            }
            if let Some(max) = maxes.get(i) {
                t["max"] = json!(max);
            } else if let Some(m) = last_max {
                t["max"] = json!(m);
            }
            tiers.push(t);
        }
        out.push(Value::Array(tiers));
    }
    Value::Array(out)
}

fn grid(g: &mut Rng, n: u64) -> Value {
    let rows: Vec<Vec<u64>> =
        (0..12).map(|_| (0..24).map(|h| if g.chance(50) { g.below(n) } else { h * n / 24 }).collect()).collect();
    json!(rows)
}

/// A generated URDB record: TOU energy tiers in one of the four units, flat and TOU demand,
/// fixed and minimum charges in every unit, ratchets, every metering rule.
fn record(g: &mut Rng, i: usize) -> Value {
    let mut r = json!({ "label": format!("g{i}"), "name": format!("generated {i}") });
    let unit = UNITS[g.below(4) as usize];
    let n = 1 + g.below(3);
    r["energyratestructure"] = structure(g, unit, true, n as usize);
    r["energyweekdayschedule"] = grid(g, n);
    r["energyweekendschedule"] = grid(g, n);
    if g.chance(50) {
        let k = 1 + g.below(2);
        r["flatdemandstructure"] = structure(g, "kW", false, k as usize);
        r["flatdemandmonths"] = json!((0..12).map(|_| g.below(k)).collect::<Vec<_>>());
    }
    if g.chance(40) {
        let k = 1 + g.below(2);
        r["demandratestructure"] = structure(g, "kW", false, k as usize);
        r["demandweekdayschedule"] = grid(g, k);
        r["demandweekendschedule"] = grid(g, k);
    }
    if g.chance(80) {
        let u = ["$/month", "$/day", "$/year"][g.below(3) as usize];
        r["fixedchargefirstmeter"] = g.price(0, 30_000);
        r["fixedchargeunits"] = json!(u);
    }
    if g.chance(40) {
        let u = ["$/month", "$/day", "$/year"][g.below(3) as usize];
        r["mincharge"] = g.price(200, 80_000);
        r["minchargeunits"] = json!(u);
    }
    if (r.get("flatdemandstructure").is_some() || r.get("demandratestructure").is_some()) && g.chance(40) {
        r["lookbackpercent"] = json!((50 + g.below(60)) as f64 / 100.0);
        r["lookbackrange"] = json!(g.below(13));
    }
    if g.chance(70) {
        r["dgrules"] = json!(RULES[g.below(4) as usize]);
    }
    r
}

/// A year of quarter-hourly-ish load in `zone`'s 2018: hourly records with mixed scales (0–19),
/// a second record in some hours, zeros, another subject; with `solar`, exports at midday; with
/// `corrections`, a few negative quantities.
fn load(g: &mut Rng, solar: bool, corrections: bool) -> Vec<UsageRecord> {
    let start = Utc.with_ymd_and_hms(2017, 12, 31, 0, 0, 0).unwrap();
    let mut out = Vec::new();
    for h in 0..24 * 367_i64 {
        let at = start + Duration::hours(h);
        let scale = if g.chance(70) { 3 } else { g.below(20) as u32 };
        let m = if g.chance(5) { 0 } else { i64::try_from(g.below(3000)).unwrap() * 10_i64.pow(scale.min(15)) / 1000 };
        out.push(UsageRecord::new("t", format!("h{h}"), "house", "kwh", Decimal::new(m, scale), at));
        if g.chance(10) {
            let q = if corrections && g.chance(10) { Decimal::new(-125, 3) } else { Decimal::new(250, 3) };
            out.push(UsageRecord::new("t", format!("x{h}"), "house", "kwh", q, at + Duration::minutes(30)));
        }
        if g.chance(3) {
            out.push(UsageRecord::new("t", format!("o{h}"), "other", "kwh", Decimal::ONE, at));
        }
        if solar && (10..15).contains(&(h % 24)) {
            let mut r = UsageRecord::new("t", format!("e{h}"), "house", "kwh", Decimal::new(1200, 3), at);
            r.dimensions.insert("direction".into(), "export".into());
            out.push(r);
        }
    }
    out
}

/// The record path: each month's bill from all the records, in order, with the year's state.
fn record_path(t: &Tariff, load: &PreparedLoad<'_>, records: &[UsageRecord]) -> Result<Vec<Bill>, String> {
    let t = t.clone().normalized().map_err(|e| e.message().to_string())?;
    let mut state = YearState::default();
    (0..load.len())
        .map(|i| {
            let req = load.month_request(i).unwrap();
            t.rate_in_year(&req, records, &mut state, None).map_err(|e| e.message().to_string())
        })
        .collect()
}

/// Generated URDB tariffs on generated loads in zones with DST and half-hour offsets, mixed
/// scales, corrections and exports: `PreparedLoad::bills` equals the record path bill for bill
/// (lines, text and amounts), and `PreparedLoad::compare` gives their totals.
#[test]
fn prepared_bills_equal_the_record_path() {
    let mut g = Rng(0x5EED_0015);
    let (a, b) =
        (Utc.with_ymd_and_hms(2018, 1, 1, 0, 0, 0).unwrap(), Utc.with_ymd_and_hms(2019, 1, 1, 0, 0, 0).unwrap());
    let zones = ["UTC", "America/Chicago", "Asia/Kolkata", "Australia/Lord_Howe"];
    let (mut profiled, mut months, mut priced) = (0, 0, 0);
    for (k, (solar, corrections)) in
        [(false, false), (true, false), (false, true), (false, false)].into_iter().enumerate()
    {
        let records = load(&mut g, solar, corrections);
        let req = BillRequest::new("t", "house", "kwh", a, b, zones[k]);
        let prepared = PreparedLoad::new(&req, &records).unwrap();
        // UTC's year in local months: 12; elsewhere the first and last are cut (13).
        assert_eq!(prepared.len(), if k == 0 { 12 } else { 13 }, "{}", zones[k]);
        months += prepared.len();
        profiled += prepared.months.iter().filter(|m| m.profile.is_some()).count();
        for i in 0..12 {
            let t = Tariff::from_urdb_json(&record(&mut g, i).to_string()).unwrap();
            let fast = prepared.bills(&t).map_err(|e| e.message().to_string());
            let slow = record_path(&t, &prepared, &records);
            assert_eq!(fast, slow, "zone {} tariff {i}", zones[k]);
            let c = prepared.compare([("g", &t)]);
            match &fast {
                Ok(bills) => {
                    priced += 1;
                    let totals: Vec<Decimal> = c[0].periods.iter().map(|p| p.total).collect();
                    assert_eq!(totals, bills.iter().map(|b| b.total).collect::<Vec<_>>());
                    assert_eq!(Tariff::compare([("g", &t)], &req, &records).unwrap(), c);
                }
                Err(e) => assert_eq!(c[0].error.as_ref(), Some(e)),
            }
        }
    }
    // Both paths were taken: months from the cells and months from the records.
    assert!(profiled >= 24 && profiled < months, "{profiled} of {months}");
    assert!(priced >= 24, "{priced}");
}

/// Records out of time order are copied and sorted: the same bills.
#[test]
fn a_load_out_of_order_prepares_the_same() {
    let mut g = Rng(7);
    let records = load(&mut g, false, false);
    let mut shuffled = records.clone();
    shuffled.reverse();
    let req = BillRequest::new(
        "t",
        "house",
        "kwh",
        Utc.with_ymd_and_hms(2018, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2019, 1, 1, 0, 0, 0).unwrap(),
        "Europe/London",
    );
    let t = Tariff::from_urdb_json(&record(&mut g, 0).to_string()).unwrap();
    let (x, y) = (PreparedLoad::new(&req, &records).unwrap(), PreparedLoad::new(&req, &shuffled).unwrap());
    assert_eq!(x.bills(&t).unwrap(), y.bills(&t).unwrap());
}

/// `into_owned` keeps the bills and totals of a borrowed load (records in order, with records
/// before and after the period) and of an owned one (records out of order).
#[test]
fn an_owned_load_prices_as_the_borrowed_one() {
    let mut g = Rng(0x0815);
    let records = load(&mut g, true, false);
    let mut shuffled = records.clone();
    shuffled.reverse();
    let req = BillRequest::new(
        "t",
        "house",
        "kwh",
        Utc.with_ymd_and_hms(2018, 2, 10, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2018, 11, 20, 0, 0, 0).unwrap(),
        "America/Chicago",
    );
    let tariffs: Vec<Tariff> =
        (0..6).map(|i| Tariff::from_urdb_json(&record(&mut g, i).to_string()).unwrap()).collect();
    let mut priced = 0;
    for recs in [&records, &shuffled] {
        let borrowed = PreparedLoad::new(&req, recs).unwrap();
        let owned = borrowed.clone().into_owned();
        assert!(matches!(owned.records, std::borrow::Cow::Owned(_)));
        // Only the period's records are kept (the load spans the whole of 2018 and more).
        assert!(owned.records.len() < records.len() * 9 / 10, "{}", owned.records.len());
        assert_eq!(owned.len(), 10);
        assert_eq!(
            (0..10).map(|i| owned.month_request(i)).collect::<Vec<_>>(),
            (0..10).map(|i| borrowed.month_request(i)).collect::<Vec<_>>()
        );
        for t in &tariffs {
            let bills = owned.bills(t).map_err(|e| e.message().to_string());
            assert_eq!(bills, borrowed.bills(t).map_err(|e| e.message().to_string()));
            priced += usize::from(bills.is_ok());
            assert_eq!(owned.compare([("g", t)]), borrowed.compare([("g", t)]));
        }
    }
    assert!(priced >= 2, "{priced}");
}
