use super::*;

const REAL: &str = include_str!("../../../tests/data/urdb/urdb-539f6a23ec4f024411ec8beb-south-central-ppd-lp1.json");

#[test]
fn real_record_imports_kwh_per_kw_tiers_and_keeps_its_description_as_a_note() {
    // The record's energy tiers are in kWh/kW: limits per kW of the month's peak demand.
    let t = Tariff::from_urdb_json(REAL).unwrap();
    let energy = tou(t.versions()[0].charges.iter().find(|c| c.id() == "energy").unwrap());
    assert_eq!(energy.tier_basis, Some(Basis::PerKw));
    assert_eq!(energy.prices.periods["p0"].tiers[0].up_to, Some(Decimal::from(300)));
    // Two periods with the same limits: one ladder, pro rata (no dgrules = net metering).
    assert_eq!(energy.shared_ladder, Some(SharedLadder::ProRata));
    assert_eq!(t.notes, ["description: Minimum charge of $1000.00.", "sector: Industrial"]);
    assert_eq!(Tariff::from_any(REAL).unwrap(), t);
}

#[test]
fn kwh_per_kw_limits_follow_the_peak_and_notes_become_lines() {
    // 2 hours: 3 kWh then 1 kWh → peak 3 kW; limit 2 kWh/kW × 3 kW = 6 kWh → all 4 kWh in tier 1.
    // With a peak of 1 kW (4 hours of 1 kWh), the limit is 2 kWh: 2 in tier 1, 2 in tier 2.
    let mut v = minimal();
    v["energyratestructure"] =
        serde_json::json!([[{"rate": 0.1, "max": 2, "unit": "kWh/kW"}, {"rate": 0.5, "unit": "kWh/kW"}]]);
    v["energyattrs"] = serde_json::json!([{"Fuel adjustment": "monthly"}]);
    let t = from_urdb_value(&v).unwrap();
    let bill = |qs: &[i64]| {
        let recs: Vec<_> = qs
            .iter()
            .enumerate()
            .map(|(h, q)| {
                let at = chrono::DateTime::from_timestamp(1_704_067_200 + 3600 * h as i64, 0).unwrap();
                crate::UsageRecord::new("t", format!("r{h}"), "m", "kwh", Decimal::from(*q), at)
            })
            .collect();
        let req = crate::BillRequest::new(
            "t",
            "m",
            "kwh",
            "2024-01-01T00:00:00Z".parse().unwrap(),
            "2024-02-01T00:00:00Z".parse().unwrap(),
            "UTC",
        );
        t.bill(&req, &recs).unwrap()
    };
    assert_eq!(bill(&[3, 1]).total.to_string(), "0.40");
    let b = bill(&[1, 1, 1, 1]);
    assert_eq!(b.total.to_string(), "1.20");
    let last = b.lines.last().unwrap();
    assert_eq!((last.charge.as_str(), last.amount.to_string()), ("note", "0.00".to_string()));
    assert_eq!(last.description, r#"not priced: energyattrs: [{"Fuel adjustment":"monthly"}]"#);
}

#[test]
fn unbounded_maxima_end_the_ladder() {
    for big in [serde_json::json!(1e38), serde_json::json!(9.999_999_680_285_692e37)] {
        let mut v = minimal();
        v["energyratestructure"] = serde_json::json!([[
            {"rate": 0.1, "max": 100, "unit": "kWh"},
            {"rate": 0.2, "max": big, "unit": "kWh"},
            {"rate": 0.3, "unit": "kWh"}
        ]]);
        let t = from_urdb_value(&v).unwrap();
        let tiers = &tou(&t.versions()[0].charges[0]).prices.periods["p0"].tiers;
        assert_eq!(tiers.len(), 2, "the tier after an unbounded one can never be reached");
        assert_eq!(tiers[1].up_to, None);
    }
}

#[test]
fn day_counts_and_yearly_fixed_charges() {
    let mut v = minimal();
    v["fixedchargefirstmeter"] = serde_json::json!(0.5);
    v["fixedchargeunits"] = serde_json::json!("$/day");
    let fixed = |v: &Value, opts: UrdbOptions| from_urdb_value_with(v, opts).unwrap().versions()[0].charges[0].clone();
    let amount_per = |c: Charge| match c {
        Charge::Fixed(f) => (Some(f.amount), f.per),
        other => panic!("not a fixed charge: {other:?}"),
    };
    let actual = amount_per(fixed(&v, UrdbOptions::default()));
    assert_eq!(actual, (Some("0.5".parse().unwrap()), Some(Per::Day)));
    // PySAM: 0.5 × 365 / 12 = 15.208333… per month.
    let pysam = amount_per(fixed(&v, UrdbOptions::pysam()));
    assert_eq!(pysam, (Some("15.208333333333".parse().unwrap()), Some(Per::Period)));
    v["fixedchargefirstmeter"] = serde_json::json!(120);
    v["fixedchargeunits"] = serde_json::json!("$/year");
    assert_eq!(amount_per(fixed(&v, UrdbOptions::default())).0, Some(Decimal::from(10)));
}

#[test]
fn metering_rules_choose_the_ladder_and_the_metering_block() {
    let mut v = minimal();
    v["energyratestructure"] = serde_json::json!([
        [{"rate": 0.1, "max": 10, "unit": "kWh", "sell": 0.03}, {"rate": 0.2, "unit": "kWh"}],
        [{"rate": 0.15, "max": 10, "unit": "kWh"}, {"rate": 0.25, "unit": "kWh"}]
    ]);
    v["energyweekdayschedule"][0][5] = serde_json::json!(1);
    v["energyratestructure"][0][1]["sell"] = serde_json::json!(0.03);
    for (rule, ladder, metering) in [
        ("Net Metering", SharedLadder::ProRata, MeteringRule::NetMetering),
        ("Net Billing Instantaneous", SharedLadder::TimeOrder, MeteringRule::NetBillingInstantaneous),
        ("Net Billing Hourly", SharedLadder::TimeOrder, MeteringRule::NetBillingHourly),
        ("Buy All Sell All", SharedLadder::TimeOrder, MeteringRule::BuyAllSellAll),
    ] {
        v["dgrules"] = rule.into();
        let t = from_urdb_value(&v).unwrap();
        assert_eq!(tou(&t.versions()[0].charges[0]).shared_ladder, Some(ladder), "{rule}");
        let m = t.metering.as_ref().unwrap();
        assert_eq!(m.rule, metering);
        assert_eq!(m.energy_charge, "energy");
        assert_eq!(m.sell["p0"].rate, Some("0.03".parse().unwrap()));
        assert_eq!(m.sell["p1"].rate, Some(Decimal::ZERO));
        assert!(t.notes.iter().all(|n| !n.contains("dgrules") && !n.contains("sell")), "{:?}", t.notes);
    }
    // Sell rates that differ by tier are kept as tiers (crediting them is refused when billed).
    v["energyratestructure"][1][0]["sell"] = serde_json::json!(0.02);
    let t = from_urdb_value(&v).unwrap();
    assert_eq!(t.metering.as_ref().unwrap().sell["p1"].tiers.len(), 2);
    // No rule: net metering, PySAM's converter's default.
    v.as_object_mut().unwrap().remove("dgrules");
    assert_eq!(from_urdb_value(&v).unwrap().metering.unwrap().rule, MeteringRule::NetMetering);
    v["dgrules"] = "Something Else".into();
    assert_eq!(from_urdb_value(&v).unwrap_err().field(), Some("dgrules"));
    let o = v.as_object_mut().unwrap();
    o.remove("dgrules");
    o.insert("usenetmetering".into(), false.into());
    let t = from_urdb_value(&v).unwrap();
    assert_eq!(tou(&t.versions()[0].charges[0]).shared_ladder, Some(SharedLadder::TimeOrder));
}

#[test]
fn many_tariffs_from_one_document() {
    let mut bad = minimal();
    bad["coincidentratestructure"] = serde_json::json!([[{"rate": 1}]]);
    let mut named = minimal();
    named["name"] = "Named".into();
    let doc = serde_json::json!({"items": [named, bad]}).to_string();
    let many = Tariff::many_from_any(&doc, UrdbOptions::default()).unwrap();
    assert_eq!(many.len(), 2);
    assert_eq!(many[0].0.as_deref(), Some("Named"));
    assert!(many[0].1.is_ok());
    assert_eq!(many[1].0.as_deref(), Some("items[1]"));
    assert_eq!(many[1].1.as_ref().unwrap_err().field(), Some("coincidentratestructure"));
}

#[test]
fn real_record_without_energy_tiers_maps_demand_and_dates() {
    // Without the energy structure the flat demand tiers remain:
    // structure 0 in Jan-May and Oct-Dec, structure 1 in Jun-Sep.
    let mut v: Value = serde_json::from_str(REAL).unwrap();
    let item = v["items"][0].as_object_mut().unwrap();
    for k in ["energyratestructure", "energyweekdayschedule", "energyweekendschedule"] {
        item.remove(k);
    }
    let t = from_urdb_value(&v).unwrap();
    let charges = &t.versions()[0].charges;
    assert_eq!(charges.len(), 2);
    let (d0, d1) = (demand(&charges[0]), demand(&charges[1]));
    assert_eq!(d0.id, "flat_demand_0");
    assert_eq!(d0.select.months, vec![1, 2, 3, 4, 5, 10, 11, 12]);
    let tiers = |d: &DemandCharge| match &d.price {
        DemandPrice::Tiers(t) => t.clone(),
        other => panic!("not tiers: {other:?}"),
    };
    assert_eq!(tiers(d0)[0].up_to, Some(Decimal::from(100)));
    assert_eq!(tiers(d0)[0].rate, "13.5".parse::<Decimal>().unwrap());
    assert_eq!(d1.select.months, vec![6, 7, 8, 9]);
    assert_eq!(tiers(d1)[1].rate, "14.9".parse::<Decimal>().unwrap());
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
    // A ratchet PySAM cannot price: no lookback range, a range alone, or no month set.
    assert_eq!(refuse("lookbackpercent", serde_json::json!(0.8)).field(), Some("lookbackpercent"));
    assert_eq!(refuse("lookbackrange", serde_json::json!(3)).field(), Some("lookbackrange"));
    let mut v = minimal();
    v["lookbackpercent"] = serde_json::json!(0.8);
    v["lookbackrange"] = serde_json::json!(3);
    let t = from_urdb_value(&v).unwrap();
    let r = t.ratchet.as_ref().unwrap();
    assert_eq!((r.percent.to_string().as_str(), r.months), ("80", 3));
    v["lookbackmonths"] = serde_json::json!(vec![false; 12]);
    assert_eq!(from_urdb_value(&v).unwrap_err().field(), Some("lookbackmonths"));
    assert_eq!(
        refuse("demandratchetpercentage", serde_json::json!(vec![0.8; 12])).field(),
        Some("demandratchetpercentage")
    );
    let mut v = minimal();
    v["fixedchargefirstmeter"] = serde_json::json!(12);
    v["fixedchargeunits"] = serde_json::json!("$/week");
    assert_eq!(from_urdb_value(&v).unwrap_err().field(), Some("fixedchargeunits"));
    assert_eq!(refuse("fixedchargeeaaddl", serde_json::json!(5)).field(), Some("fixedchargeeaaddl"));
    // Zero-valued ratchets have no effect and import.
    let mut v = minimal();
    v.as_object_mut().unwrap().insert("demandratchetpercentage".into(), serde_json::json!(vec![0; 12]));
    assert!(from_urdb_value(&v).is_ok());
    // A tier key that is not rate, adj, max, sell or unit.
    let mut v = minimal();
    v["energyratestructure"][0][0]["floor"] = serde_json::json!(0.05);
    assert_eq!(from_urdb_value(&v).unwrap_err().field(), Some("energyratestructure[0][0].floor"));
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
    let ids: Vec<&str> = t.versions()[0].charges.iter().map(Charge::id).collect();
    assert_eq!(ids, ["fixed_monthly", "energy", "minimum_monthly"]);
    assert_eq!(t.annual_minimum, Some(Decimal::from(365)));
    assert_eq!(t.valid_until, chrono::NaiveDate::from_ymd_opt(2025, 1, 1));
    // A bill in January 2024: energy 100 x 0.1 = 10.00, fixed 7.50 → 17.50; monthly minimum 20
    // → top-up 2.50. Total 20.00 (the annual minimum is settled in December only).
    let month = |m: u32| {
        let start = chrono::NaiveDate::from_ymd_opt(2024, m, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
        let end = start.checked_add_months(chrono::Months::new(1)).unwrap();
        crate::BillRequest::new("t", "m", "kwh", start, end, "UTC")
    };
    let r = crate::UsageRecord::new("t", "r", "m", "kwh", Decimal::from(100), "2024-01-05T00:00:00Z".parse().unwrap());
    let bill = t.bill(&month(1), std::slice::from_ref(&r)).unwrap();
    let amounts: Vec<String> = bill.lines.iter().map(|l| l.amount.to_string()).collect();
    assert_eq!(amounts, ["7.50", "10.00", "2.50"]);
    assert_eq!(bill.total.to_string(), "20.00");
    // The year compared in order: the bills before minimums are 17.50 (January) and 7.50 in
    // each of the 11 other months = 100.00 < 365 → December tops up 265.00 after its monthly
    // minimum (7.50 + 12.50): December 285.00; the year 20.00 + 10 x 20.00 + 285.00 = 505.00.
    let year = crate::BillRequest::new(
        "t",
        "m",
        "kwh",
        "2024-01-01T00:00:00Z".parse().unwrap(),
        "2025-01-01T00:00:00Z".parse().unwrap(),
        "UTC",
    );
    let ranked = Tariff::compare([("t", &t)], &year, std::slice::from_ref(&r)).unwrap();
    assert_eq!(ranked[0].periods[11].total.to_string(), "285.00");
    assert_eq!(ranked[0].total.unwrap().to_string(), "505.00");
    // A December bill alone is topped up against itself: 7.50 + 12.50 + (365 - 7.50) = 377.50.
    assert_eq!(t.bill(&month(12), &[]).unwrap().total.to_string(), "377.50");
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

fn tou(c: &Charge) -> &TimeOfUseCharge {
    match c {
        Charge::TimeOfUse(t) => t,
        other => panic!("not a time_of_use charge: {other:?}"),
    }
}

fn demand(c: &Charge) -> &DemandCharge {
    match c {
        Charge::Demand(d) => d,
        other => panic!("not a demand charge: {other:?}"),
    }
}
