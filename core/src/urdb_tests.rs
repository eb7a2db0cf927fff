use super::*;
use crate::ErrorKind;

const REAL: &str = include_str!("../../tests/data/urdb/urdb-539f6a23ec4f024411ec8beb-south-central-ppd-lp1.json");

#[test]
fn real_record_is_refused_naming_the_kwh_per_kw_tiers() {
    // The record's energyratestructure tiers are in kWh/kW (limits per kW of demand).
    let e = Tariff::from_urdb_json(REAL).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tariff);
    assert_eq!(e.field(), Some("energyratestructure[0][0].unit"));
    assert!(e.message().contains("kWh/kW"), "{}", e.message());
    // from_any detects it as URDB (an `items` response) and gives the same refusal.
    assert_eq!(Tariff::from_any(REAL).unwrap_err(), e);
}

#[test]
fn real_record_without_energy_tiers_maps_demand_and_dates() {
    // Dropping the unsupported energy structure leaves the flat demand tiers, which import:
    // structure 0 in Jan-May and Oct-Dec, structure 1 in Jun-Sep.
    let mut v: Value = serde_json::from_str(REAL).unwrap();
    let item = v["items"][0].as_object_mut().unwrap();
    for k in ["energyratestructure", "energyweekdayschedule", "energyweekendschedule"] {
        item.remove(k);
    }
    let t = from_urdb_value(&v).unwrap();
    let charges = &t.versions()[0].charges;
    assert_eq!(charges.len(), 2);
    assert_eq!(charges[0].id, "flat_demand_0");
    assert_eq!(charges[0].months, vec![1, 2, 3, 4, 5, 10, 11, 12]);
    assert_eq!(charges[0].tiers[0].up_to, Some(Decimal::from(100)));
    assert_eq!(charges[0].tiers[0].rate, "13.5".parse::<Decimal>().unwrap());
    assert_eq!(charges[1].months, vec![6, 7, 8, 9]);
    assert_eq!(charges[1].tiers[1].rate, "14.9".parse::<Decimal>().unwrap());
    // startdate 1335880800 = 2012-05-01T14:00:00Z.
    assert_eq!(t.versions()[0].effective_from, chrono::NaiveDate::from_ymd_opt(2012, 5, 1));
    assert_eq!(t.currency, "USD");
}

fn minimal() -> Value {
    serde_json::json!({
        "energyratestructure": [[{"rate": 0.1, "unit": "kWh"}]],
        "energyweekdayschedule": vec![vec![0; 24]; 12],
        "energyweekendschedule": vec![vec![0; 24]; 12]
    })
}

#[test]
fn unsupported_fields_are_named() {
    let refuse = |k: &str, val: Value| {
        let mut v = minimal();
        v.as_object_mut().unwrap().insert(k.to_string(), val);
        from_urdb_value(&v).unwrap_err()
    };
    assert_eq!(refuse("dgrules", "Net Metering".into()).field(), Some("dgrules"));
    assert_eq!(
        refuse("demandratchetpercentage", serde_json::json!(vec![0.8; 12])).field(),
        Some("demandratchetpercentage")
    );
    let mut v = minimal();
    v["fixedchargefirstmeter"] = serde_json::json!(12);
    v["fixedchargeunits"] = serde_json::json!("$/year");
    assert_eq!(from_urdb_value(&v).unwrap_err().field(), Some("fixedchargeunits"));
    assert_eq!(refuse("fixedchargeeaaddl", serde_json::json!(5)).field(), Some("fixedchargeeaaddl"));
    // Zero-valued ratchets have no effect and import.
    let mut v = minimal();
    v.as_object_mut().unwrap().insert("demandratchetpercentage".into(), serde_json::json!(vec![0; 12]));
    assert!(from_urdb_value(&v).is_ok());
    // A sell rate (net metering) on a tier is refused.
    let mut v = minimal();
    v["energyratestructure"][0][0]["sell"] = serde_json::json!(0.05);
    assert_eq!(from_urdb_value(&v).unwrap_err().field(), Some("energyratestructure[0][0].sell"));
    // A schedule pointing at a period that does not exist.
    let mut v = minimal();
    v["energyweekdayschedule"][3][5] = serde_json::json!(2);
    let e = from_urdb_value(&v).unwrap_err();
    assert_eq!(e.field(), Some("versions[0].charges[0].schedule.weekday[3]"));
    // Two items are ambiguous.
    let two = serde_json::json!({"items": [minimal(), minimal()]});
    assert_eq!(from_urdb_value(&two).unwrap_err().field(), Some("items"));
    // kVA demand.
    let mut v = minimal();
    v.as_object_mut().unwrap().insert("flatdemandunit".into(), "kVA".into());
    assert_eq!(from_urdb_value(&v).unwrap_err().field(), Some("flatdemandunit"));
}

#[test]
fn older_fields_and_minimums() {
    let mut v = minimal();
    let o = v.as_object_mut().unwrap();
    o.insert("fixedmonthlycharge".into(), serde_json::json!(7.5));
    o.insert("minmonthlycharge".into(), serde_json::json!(20));
    o.insert("annualmincharge".into(), serde_json::json!(365));
    o.insert("enddate".into(), serde_json::json!(1_735_689_600)); // 2025-01-01T00:00:00Z
    let t = from_urdb_value(&v).unwrap();
    let ids: Vec<&str> = t.versions()[0].charges.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["fixed_monthly", "energy", "minimum_monthly", "minimum_annual"]);
    assert_eq!(t.valid_until, chrono::NaiveDate::from_ymd_opt(2025, 1, 1));
    // A bill in January 2024 (31 of 366 days): energy 100 x 0.1 = 10.00, fixed 7.50 → 17.50;
    // monthly minimum 20 → top-up 2.50; annual minimum pro rata 365 x 31/366 = 30.9153... →
    // 30.92 → top-up 10.92. Total 30.92.
    let req = crate::BillRequest::new(
        "t",
        "m",
        "kwh",
        "2024-01-01T00:00:00Z".parse().unwrap(),
        "2024-02-01T00:00:00Z".parse().unwrap(),
        "UTC",
    );
    let r = crate::UsageRecord::new("t", "r", "m", "kwh", Decimal::from(100), "2024-01-05T00:00:00Z".parse().unwrap());
    let bill = t.bill(&req, &[r]).unwrap();
    let amounts: Vec<String> = bill.lines.iter().map(|l| l.amount.to_string()).collect();
    assert_eq!(amounts, ["7.50", "10.00", "2.50", "10.92"]);
    assert_eq!(bill.total.to_string(), "30.92");
    // After enddate the tariff is refused.
    let late = crate::BillRequest::new(
        "t",
        "m",
        "kwh",
        "2025-01-01T00:00:00Z".parse().unwrap(),
        "2025-02-01T00:00:00Z".parse().unwrap(),
        "UTC",
    );
    assert_eq!(t.bill(&late, &[]).unwrap_err().field(), Some("valid_until"));
}
