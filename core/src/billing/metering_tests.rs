//! Metering rules, ratchets and the annual minimum on hand-worked loads (PySAM is the oracle
//! for URDB records in `tests/pysam/`; these pin the rules on meterkit tariffs).

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

use crate::billing::compare::Comparison;
use crate::billing::BillRequest;
use crate::record::UsageRecord;
use crate::tariff::Tariff;

fn tariff(rule: &str, extra: &str) -> Tariff {
    Tariff::from_toml(&format!(
        "currency = \"USD\"\n{extra}\n[[charges]]\nid = \"energy\"\ntype = \"per_unit\"\nrate = \"0.10\"\nunit = \"kWh\"\n\
         [metering]\nrule = \"{rule}\"\nenergy_charge = \"energy\"\n[metering.sell.all]\nrate = \"0.04\"\n"
    ))
    .unwrap()
}

fn rec(id: &str, month: u32, day: u32, hour: u32, q: i64, export: bool) -> UsageRecord {
    let mut r = UsageRecord::new(
        "t",
        id,
        "home",
        "kwh",
        Decimal::from(q),
        Utc.with_ymd_and_hms(2024, month, day, hour, 0, 0).unwrap(),
    );
    if export {
        r.dimensions.insert("direction".into(), "export".into());
    }
    r
}

/// January: 5 in / 2 out at 01:00 (net 3 in), 4 out at 02:00; February: 10 in; December: 1 out.
fn load() -> Vec<UsageRecord> {
    vec![
        rec("a", 1, 1, 1, 5, false),
        rec("b", 1, 1, 1, 2, true),
        rec("c", 1, 1, 2, 4, true),
        rec("d", 2, 1, 1, 10, false),
        rec("e", 12, 1, 12, 1, true),
    ]
}

fn year(t: &Tariff) -> Comparison {
    let req = BillRequest::new(
        "t",
        "home",
        "kwh",
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        "UTC",
    );
    Tariff::compare([("t", t)], &req, &load()).unwrap().remove(0)
}

fn totals(c: &Comparison) -> Vec<String> {
    [0, 1, 11].iter().map(|&m| c.periods[m].total.to_string()).collect()
}

#[test]
fn net_billing_instantaneous_credits_net_exports_in_their_month() {
    // January: 3 kWh x 0.10 - 4 kWh x 0.04 = 0.14; February 1.00; December -0.04.
    assert_eq!(totals(&year(&tariff("net_billing_instantaneous", ""))), ["0.14", "1.00", "-0.04"]);
}

#[test]
fn net_billing_hourly_carries_credit_to_the_next_month_and_pays_it_in_december() {
    // January 0.30 (credit 0.16 carried); February 1.00 - 0.16 = 0.84; December pays its own
    // 0.04 credit.
    assert_eq!(totals(&year(&tariff("net_billing_hourly", ""))), ["0.30", "0.84", "-0.04"]);
}

#[test]
fn buy_all_sell_all_prices_every_import_and_credits_every_export() {
    // January 5 x 0.10 - 6 x 0.04 = 0.26; February 1.00; December -0.04.
    assert_eq!(totals(&year(&tariff("buy_all_sell_all", ""))), ["0.26", "1.00", "-0.04"]);
}

#[test]
fn net_metering_carries_excess_kwh_and_settles_at_the_year_end_rate() {
    // January net 3 - 4 = -1: billed 0, 1 kWh carried; February (10 - 1) x 0.10 = 0.90;
    // December 1 kWh excess x 0.02 year-end rate = -0.02.
    let t = tariff("net_metering", "");
    let mut t2 = t.clone();
    t2.metering.as_mut().unwrap().year_end_rate = Some("0.02".parse().unwrap());
    assert_eq!(totals(&year(&t)), ["0.00", "0.90", "0.00"]);
    assert_eq!(totals(&year(&t2)), ["0.00", "0.90", "-0.02"]);
}

#[test]
fn exports_need_a_known_direction_and_no_metering_means_no_netting() {
    let t = tariff("net_billing_instantaneous", "");
    let mut r = load();
    r[1].dimensions.insert("direction".into(), "sideways".into());
    let req = BillRequest::new(
        "t",
        "home",
        "kwh",
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap(),
        "UTC",
    );
    let e = t.bill(&req, &r).unwrap_err();
    assert_eq!((e.field(), e.record_id()), (Some("dimensions.direction"), Some("b")));
    // Without `metering` the dimension is not read: 5 + 2 + 4 = 11 kWh x 0.10.
    let mut plain = t.clone();
    plain.metering = None;
    assert_eq!(plain.bill(&req, &load()).unwrap().total.to_string(), "1.10");
}

#[test]
fn a_ratchet_prices_a_percentage_of_the_windows_largest_peak() {
    // No metering, so every record is usage. Demand 10/kW; peaks: January 7 kWh at 01:00 (5 + 2),
    // February 10; ratchet 80 % over 1 month back: January 0.8 x 7 = 5.6 kW → 56.00 + energy
    // 11 x 0.10 = 1.10; February 0.8 x 10 = 8 kW → 80.00 + 1.00; March (no usage)
    // 0.8 x max(10, 0) → 80.00; April 0.
    let t = Tariff::from_toml(
        "currency = \"USD\"\n[ratchet]\npercent = \"80\"\nmonths = 1\n[[charges]]\nid = \"energy\"\ntype = \"per_unit\"\nrate = \"0.10\"\n\
         [[charges]]\nid = \"demand\"\ntype = \"demand\"\nrate = \"10\"\n",
    )
    .unwrap();
    let c = year(&t);
    let got: Vec<String> = c.periods[..4].iter().map(|p| p.total.to_string()).collect();
    assert_eq!(got, ["57.10", "81.00", "80.00", "0.00"]);
}
