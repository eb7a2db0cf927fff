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
