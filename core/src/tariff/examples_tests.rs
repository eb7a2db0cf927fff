//! The example tariffs in `examples/tariffs/` parse and bill as hand-worked.

use super::*;
use crate::{allocate::SharedMeter, BillRequest, Engine, UsageRecord};

const FLAT: &str = include_str!("../../../examples/tariffs/flat.toml");
const TOU: &str = include_str!("../../../examples/tariffs/tou.toml");
const SLAB: &str = include_str!("../../../examples/tariffs/slab.toml");

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn feb_london() -> BillRequest {
    BillRequest::new(
        "t",
        "home",
        "kwh",
        "2024-02-01T00:00:00Z".parse().unwrap(),
        "2024-03-01T00:00:00Z".parse().unwrap(),
        "Europe/London",
    )
}

fn r(id: &str, at: &str, q: &str) -> UsageRecord {
    UsageRecord::new("t", id, "home", "kwh", d(q), at.parse().unwrap())
}

fn amounts(b: &crate::Bill) -> Vec<String> {
    b.lines.iter().map(|l| l.amount.to_string()).collect()
}

#[test]
fn flat_example() {
    // February 2024, 29 days: standing 29 x 0.5335 = 15.4715 -> 15.47; 250 kWh x 0.2862 = 71.55;
    // subtotal 87.02; VAT 5% = 4.351 -> 4.35; total 91.37.
    let t = Tariff::from_any(FLAT).unwrap();
    let b = t.bill(&feb_london(), &[r("a", "2024-02-10T10:00:00Z", "250")]).unwrap();
    assert_eq!(amounts(&b), ["15.47", "71.55", "4.35"]);
    assert_eq!(b.total, d("91.37"));
}

#[test]
fn tou_example() {
    // 10 kWh at 02:00 (night) x 0.15 = 1.50; 20 kWh at 12:00 (day) x 0.30 = 6.00;
    // standing 29 x 0.55 = 15.95; subtotal 23.45; VAT 5% = 1.1725 -> 1.17; total 24.62.
    let t = Tariff::from_any(TOU).unwrap();
    let b =
        t.bill(&feb_london(), &[r("a", "2024-02-10T02:00:00Z", "10"), r("b", "2024-02-10T12:00:00Z", "20")]).unwrap();
    assert_eq!(amounts(&b), ["15.95", "1.50", "6.00", "1.17"]);
    assert_eq!(b.lines[1].tou_period.as_deref(), Some("night"));
    assert_eq!(b.total, d("24.62"));
}

#[test]
fn slab_example_with_shared_motor_meter_through_the_engine() {
    // Four flats share a pump motor meter that read 90.5 kWh in March 2024. Split equally at
    // 0.1 kWh: 905 tenths / 4 = 226 r 1 each, the one tenth left goes to the first flat:
    // 22.7, 22.6, 22.6, 22.6 (sum 90.5).
    let t = Tariff::from_any(SLAB).unwrap();
    let tz = crate::time::parse_time_zone("Asia/Kolkata").unwrap();
    let (start, end) = crate::billing::month_period("2024-03", tz).unwrap();
    let motor = SharedMeter {
        meter: "motor".into(),
        metric: "motor_kwh".into(),
        shares: ["flat-1", "flat-2", "flat-3", "flat-4"].iter().map(|f| ((*f).to_string(), Decimal::ONE)).collect(),
        scale: 1,
    };
    let shares = motor.split("t", d("90.5"), start).unwrap();
    let q: Vec<String> = shares.iter().map(|s| s.quantity.to_string()).collect();
    assert_eq!(q, ["22.7", "22.6", "22.6", "22.6"]);
    let engine = Engine::in_memory();
    engine.ingest(&shares).unwrap();
    let own = UsageRecord::new("t", "f1-mar", "flat-1", "kwh", d("250"), "2024-03-15T06:00:00Z".parse().unwrap());
    engine.ingest(&[own]).unwrap();
    // flat-1: fixed 60.00; slabs 100 x 3.50 = 350.00, 100 x 4.75 = 475.00, 50 x 6.50 = 325.00;
    // motor 22.7 x 6.50 = 147.55; subtotal 1357.55; duty 6% = 81.453 -> 81.45; total 1439.00.
    let req = BillRequest::new("t", "flat-1", "kwh", start, end, "Asia/Kolkata");
    let b = engine.bill(&t, &req).unwrap();
    assert_eq!(amounts(&b), ["60.00", "350.00", "475.00", "325.00", "147.55", "81.45"]);
    assert_eq!(b.lines[4].description, "Motor units (share of the common pump meter)");
    assert_eq!(b.total, d("1439.00"));
}
