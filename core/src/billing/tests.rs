use super::*;
use crate::ErrorKind;
use chrono::TimeZone;
use proptest::prelude::*;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn ts(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn rec(id: &str, at: &str, q: Decimal) -> UsageRecord {
    UsageRecord::new("t", id, "m", "kwh", q, ts(at))
}

fn march() -> BillRequest {
    BillRequest::new("t", "m", "kwh", ts("2024-03-01T00:00:00Z"), ts("2024-04-01T00:00:00Z"), "UTC")
}

fn five_tier() -> Tariff {
    Tariff::from_toml(
        r#"
        currency = "USD"
        [[charges]]
        id = "energy"
        type = "graduated"
        tiers = [
          { up_to = "100", rate = "0.12" },
          { up_to = "250", rate = "0.10", flat = "1.25" },
          { up_to = "500", rate = "0.085" },
          { up_to = "1000", rate = "0.0725" },
          { rate = "0.061" },
        ]
    "#,
    )
    .unwrap()
}

#[test]
fn price_change_continues_the_tier_ladder() {
    // v1 (to 15 March): tier 1 up to 100 at 0.10, then 0.20; v2 (from 16 March): 0.12 / 0.24.
    // 80 kWh on 10 March → v1 tier 1: 8.00. 50 kWh on 20 March continue the ladder at 80:
    // 20 more in tier 1 at v2's 0.12 = 2.40, 30 in tier 2 at 0.24 = 7.20. Total 17.60.
    let t = Tariff::from_json(
        r#"{"currency":"USD","versions":[
        {"charges":[{"id":"e","type":"graduated","tiers":[{"up_to":"100","rate":"0.10"},{"rate":"0.20"}]}]},
        {"effective_from":"2024-03-16","charges":[{"id":"e","type":"graduated","tiers":[{"up_to":"100","rate":"0.12"},{"rate":"0.24"}]}]}]}"#,
    )
    .unwrap();
    let bill = t
        .bill(&march(), &[rec("a", "2024-03-10T00:00:00Z", d("80")), rec("b", "2024-03-20T00:00:00Z", d("50"))])
        .unwrap();
    let got: Vec<(String, String, Option<u32>)> =
        bill.lines.iter().map(|l| (fmt_decimal(l.quantity), l.amount.to_string(), l.tier)).collect();
    assert_eq!(
        got,
        vec![
            ("80".into(), "8.00".into(), Some(1)),
            ("20".into(), "2.40".into(), Some(1)),
            ("30".into(), "7.20".into(), Some(2))
        ]
    );
    assert_eq!(bill.total, d("17.60"));
}

#[test]
fn other_subjects_and_out_of_period_records_are_ignored_and_order_does_not_matter() {
    let t = five_tier();
    let mut recs = vec![
        rec("a", "2024-03-01T00:00:00Z", d("60")),
        rec("b", "2024-03-31T23:59:59Z", d("70")),
        rec("c", "2024-04-01T00:00:00Z", d("1000")), // period end is exclusive
        rec("d", "2024-02-29T23:59:59Z", d("1000")),
        UsageRecord::new("t", "e", "other", "kwh", d("1000"), ts("2024-03-05T00:00:00Z")),
        UsageRecord::new("t", "f", "m", "water", d("1000"), ts("2024-03-05T00:00:00Z")),
    ];
    // 130 kWh: 100 x 0.12 = 12.00; 30 x 0.10 = 3.00; tier 2 flat 1.25. Total 16.25.
    let a = t.bill(&march(), &recs).unwrap();
    assert_eq!(a.total, d("16.25"));
    recs.reverse();
    let b = t.bill(&march(), &recs).unwrap();
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
}

#[test]
fn bill_json_shape() {
    let t = Tariff::from_toml("currency = \"GBP\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"0.5\"\n")
        .unwrap();
    let bill = t.bill(&march(), &[rec("a", "2024-03-02T00:00:00Z", d("3"))]).unwrap();
    assert_eq!(
        serde_json::to_string(&bill).unwrap(),
        r#"{"tenant":"t","subject":"m","period_start":"2024-03-01T00:00:00Z","period_end":"2024-04-01T00:00:00Z","time_zone":"UTC","currency":"GBP","lines":[{"charge":"e","description":"Usage","quantity":"3","unit":"kwh","rate":"0.5","amount":"1.50"}],"subtotal":"1.50","taxes":"0.00","total":"1.50"}"#
    );
    let rows = bill.to_table_rows();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0][5], "1.50");
    assert_eq!(rows[3][1], "total");
}

#[test]
fn refusals() {
    let t = five_tier();
    let mut req = march();
    req.period_end = req.period_start;
    assert_eq!(t.bill(&req, &[]).unwrap_err().kind(), ErrorKind::InvalidQuery);
    let mut req = march();
    req.time_zone = "Mars/Olympus".into();
    assert_eq!(t.bill(&req, &[]).unwrap_err().kind(), ErrorKind::InvalidTimeZone);
    // No version in effect before the first effective_from.
    let v = Tariff::from_json(
        r#"{"currency":"USD","versions":[{"effective_from":"2024-03-02","charges":[{"id":"e","type":"per_unit","rate":"1"}]}]}"#,
    )
    .unwrap();
    assert_eq!(v.bill(&march(), &[]).unwrap_err().field(), Some("versions[0].effective_from"));
    // Negative usage on a tiered charge is an error, not a wrong number.
    let e = t.bill(&march(), &[rec("a", "2024-03-02T00:00:00Z", d("-5"))]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tariff);
}

#[test]
fn tariff_validation_names_the_field() {
    let field = |json: &str| Tariff::from_json(json).unwrap_err().field().map(str::to_string);
    let c = |charge: &str| format!(r#"{{"currency":"USD","charges":[{charge}]}}"#);
    assert_eq!(
        field(&c(r#"{"id":"e","type":"graduated","tiers":[{"up_to":"10","rate":"1"},{"up_to":"20","rate":"1"}]}"#)),
        Some("versions[0].charges[0].tiers[1].up_to".into())
    );
    assert_eq!(
        field(&c(
            r#"{"id":"e","type":"graduated","tiers":[{"up_to":"10","rate":"1"},{"up_to":"5","rate":"1"},{"rate":"1"}]}"#
        )),
        Some("versions[0].charges[0].tiers[1].up_to".into())
    );
    assert_eq!(
        field(&c(r#"{"id":"e","type":"fixed","amount":"1","rate":"2"}"#)),
        Some("versions[0].charges[0].rate".into())
    );
    assert_eq!(field(&c(r#"{"id":"e","type":"per_unit"}"#)), Some("versions[0].charges[0].rate".into()));
    assert_eq!(
        field(&c(r#"{"id":"e","type":"per_unit","rate":"0.0000000000001"}"#)),
        Some("versions[0].charges[0].rate".into())
    );
    assert_eq!(
        field(&c(
            r#"{"id":"e","type":"time_of_use","schedule":{"periods":["a","b"],"weekday":[[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1]]},"periods":{"a":{"rate":"1"}}}"#
        )),
        Some("versions[0].charges[0].periods".into())
    );
    assert_eq!(
        field(&c(r#"{"id":"e","type":"percentage","percent":"5","applies_to":["nope"]}"#)),
        Some("versions[0].charges[0].applies_to".into())
    );
    assert_eq!(
        field(r#"{"currency":"XYZ","charges":[{"id":"e","type":"per_unit","rate":"1"}]}"#),
        Some("currency".into())
    );
    assert_eq!(
        field(
            r#"{"currency":"USD","versions":[{"effective_from":"2024-02-01","charges":[]},{"effective_from":"2024-01-01","charges":[]}]}"#
        ),
        Some("versions[1].effective_from".into())
    );
    // Unknown keys are parse errors with the line, never ignored.
    let e = Tariff::from_toml(
        "currency = \"USD\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"1\"\nrat = \"2\"\n",
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse);
    assert_eq!(e.line(), Some(6));
    // from_any: TOML and meterkit JSON.
    assert_eq!(
        Tariff::from_any("currency = \"JPY\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = 2\n")
            .unwrap()
            .currency,
        "JPY"
    );
    assert_eq!(Tariff::from_any(&c(r#"{"id":"e","type":"per_unit","rate":"1"}"#)).unwrap().currency, "USD");
}

#[test]
fn month_period_in_a_zone() {
    let ny: Tz = "America/New_York".parse().unwrap();
    let (s, e) = month_period("2024-03", ny).unwrap();
    assert_eq!((fmt_ts(s), fmt_ts(e)), ("2024-03-01T05:00:00Z".into(), "2024-04-01T04:00:00Z".into()));
    assert_eq!(month_period("2024-13", ny).unwrap_err().kind(), ErrorKind::Parse);
}

#[test]
fn overflow_is_an_error() {
    let t = Tariff::from_toml("currency = \"USD\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"1000\"\n")
        .unwrap();
    let e = t.bill(&march(), &[rec("a", "2024-03-02T00:00:00Z", Decimal::MAX)]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Overflow);
    assert_eq!(t.quantity_rater().unwrap().total(Decimal::MAX).unwrap_err().kind(), ErrorKind::Overflow);
    // Two records whose sum overflows.
    let e = five_tier()
        .bill(
            &march(),
            &[rec("a", "2024-03-02T00:00:00Z", Decimal::MAX), rec("b", "2024-03-03T00:00:00Z", Decimal::MAX)],
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Overflow);
}

#[test]
fn quantity_rater_refuses_calendar_charges() {
    let t = Tariff::from_toml(
        "currency = \"USD\"\n[[charges]]\nid = \"s\"\ntype = \"fixed\"\nper = \"day\"\namount = \"1\"\n",
    )
    .unwrap();
    assert_eq!(t.quantity_rater().unwrap_err().field(), Some("charges[0]"));
}

fn mixed() -> Tariff {
    Tariff::from_toml(
        r#"
        currency = "GBP"
        [[charges]]
        id = "standing"
        type = "fixed"
        amount = "4.99"
        [[charges]]
        id = "free"
        type = "allowance"
        included = "25"
        [[charges]]
        id = "energy"
        type = "graduated"
        tiers = [{ up_to = "100", rate = "0.1234" }, { up_to = "300", rate = "0.0999", flat = "0.5" }, { rate = "0.07" }]
        [[charges]]
        id = "blocks"
        type = "package"
        rate = "1.10"
        package_size = "50"
        free_units = "10"
        [[charges]]
        id = "vol"
        type = "volume"
        tiers = [{ up_to = "200", rate = "0.013" }, { rate = "0.011", flat = "0.3" }]
        [[charges]]
        id = "levy"
        type = "percentage"
        percent = "3.3"
        applies_to = ["energy"]
        [[charges]]
        id = "min"
        type = "minimum"
        amount = "9.50"
        [[charges]]
        id = "vat"
        type = "percentage"
        percent = "5"
        tax = true
    "#,
    )
    .unwrap()
}

/// The local clock cache must agree with chrono-tz for every instant.
#[test]
fn local_clock_matches_chrono_across_transitions() {
    for zone in ["Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"] {
        let tz: Tz = zone.parse().unwrap();
        let mut clock = LocalClock::new(tz);
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap().timestamp();
        let mut t = start;
        while t < start + 366 * 86_400 {
            let want = DateTime::from_timestamp(t, 0).unwrap().with_timezone(&tz).naive_local().and_utc().timestamp();
            assert_eq!(clock.local(t), want, "{zone} at {t}");
            t += 1799;
        }
    }
}

proptest! {
    #[test]
    fn graduated_total_is_the_sum_of_its_tier_lines(q in 0u64..5_000_000, scale in 0u32..4) {
        let q = Decimal::new(q as i64, scale);
        let bill = five_tier().bill(&march(), &[rec("a", "2024-03-02T00:00:00Z", q)]).unwrap();
        let sum: Decimal = bill.lines.iter().map(|l| l.amount).sum();
        prop_assert_eq!(bill.total, sum);
        let units: Decimal = bill.lines.iter().filter(|l| l.unit != "fee").map(|l| l.quantity).sum();
        prop_assert_eq!(units, q);
        // Every line explains itself: amount = quantity x rate, rounded half-up to cents.
        for l in &bill.lines {
            prop_assert_eq!(l.amount, Rounding::HalfUp.round(l.quantity * l.rate, 2).unwrap());
        }
        prop_assert_eq!(five_tier().quantity_rater().unwrap().total(q).unwrap(), bill.total);
    }

    #[test]
    fn graduated_total_never_decreases(a in 0u64..3_000_000, b in 0u64..3_000_000) {
        let (lo, hi) = (Decimal::new(a.min(b) as i64, 2), Decimal::new(a.max(b) as i64, 2));
        let r = five_tier().quantity_rater().unwrap();
        prop_assert!(r.total(lo).unwrap() <= r.total(hi).unwrap());
    }

    #[test]
    fn one_tier_graduated_equals_volume(q in 0u64..10_000_000, rate in 0u64..1_000_000) {
        let rate = Decimal::new(rate as i64, 6);
        let q = Decimal::new(q as i64, 3);
        let mk = |kind: &str| Tariff::from_json(&format!(
            r#"{{"currency":"USD","charges":[{{"id":"e","type":"{kind}","tiers":[{{"rate":"{rate}"}}]}}]}}"#
        )).unwrap();
        let recs = [rec("a", "2024-03-02T00:00:00Z", q)];
        prop_assert_eq!(mk("graduated").bill(&march(), &recs).unwrap().total, mk("volume").bill(&march(), &recs).unwrap().total);
    }

    #[test]
    fn quantity_rater_agrees_with_bill(parts in proptest::collection::vec(0u64..200_000, 0..6)) {
        let t = mixed();
        let recs: Vec<UsageRecord> = parts
            .iter()
            .enumerate()
            .map(|(i, &p)| rec(&format!("r{i}"), &format!("2024-03-{:02}T00:00:00Z", i + 2), Decimal::new(p as i64, 2)))
            .collect();
        let q: Decimal = recs.iter().map(|r| r.quantity).sum();
        let bill = t.bill(&march(), &recs).unwrap();
        prop_assert_eq!(t.quantity_rater().unwrap().total(q).unwrap(), bill.total);
        prop_assert_eq!(bill.total, bill.subtotal + bill.taxes);
        let sum: Decimal = bill.lines.iter().map(|l| l.amount).sum();
        prop_assert_eq!(sum, bill.total);
    }

    #[test]
    fn huge_quantities_overflow_or_are_exact(m in 1u64..u64::MAX, e in 0u32..20) {
        // quantity = m x 10^e (up to ~1.8e38, beyond Decimal's 7.9e28): either the bill is
        // refused with Overflow, or it is right (checked against an exact i128 computation).
        let Some(q) = Decimal::from(m).checked_mul(Decimal::from(10u64.pow(e.min(19)))) else { return Ok(()) };
        let t = Tariff::from_toml("currency = \"USD\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"3\"\n").unwrap();
        match t.bill(&march(), &[rec("a", "2024-03-02T00:00:00Z", q)]) {
            Err(err) => prop_assert_eq!(err.kind(), ErrorKind::Overflow),
            Ok(bill) => {
                let exact = i128::from(m) * 10i128.pow(e.min(19)) * 3;
                prop_assert_eq!(bill.total, Decimal::from_i128_with_scale(exact, 0));
                prop_assert_eq!(bill.total.scale(), 2);
            }
        }
    }
}

#[test]
fn demand_intervals_follow_the_local_clock_across_fall_back() {
    // New York, 3 November 2024: 01:00-01:59 local happens twice (05:00Z EDT and 06:00Z EST).
    // 3 kWh in the first and 4 kWh in the second are two hourly intervals: peak 4 kW x 10 = 40.00,
    // not 7 kW. In Kolkata (UTC+05:30) an hour interval is a local clock hour: records at
    // 04:30Z and 05:00Z are local 10:00 and 10:30, the same interval: 2 + 2.5 = 4.5 kW.
    let t =
        Tariff::from_toml("currency = \"USD\"\n[[charges]]\nid = \"d\"\ntype = \"demand\"\nrate = \"10\"\n").unwrap();
    let req =
        BillRequest::new("t", "m", "kwh", ts("2024-11-01T04:00:00Z"), ts("2024-12-01T05:00:00Z"), "America/New_York");
    let b =
        t.bill(&req, &[rec("a", "2024-11-03T05:00:00Z", d("3")), rec("b", "2024-11-03T06:00:00Z", d("4"))]).unwrap();
    assert_eq!((fmt_decimal(b.lines[0].quantity), b.total), ("4".to_string(), d("40.00")));
    let req = BillRequest::new("t", "m", "kwh", ts("2024-10-31T18:30:00Z"), ts("2024-11-30T18:30:00Z"), "Asia/Kolkata");
    let b =
        t.bill(&req, &[rec("a", "2024-11-03T04:30:00Z", d("2")), rec("b", "2024-11-03T05:00:00Z", d("2.5"))]).unwrap();
    assert_eq!(fmt_decimal(b.lines[0].quantity), "4.5");
}

#[test]
fn tariffs_built_in_code_are_checked_not_trusted() {
    // A volume charge with no tiers and a demand interval of 0 would index or divide out of
    // range; bill() checks the tariff first and refuses them.
    let mut t = Tariff::from_toml(
        "currency = \"USD\"\n[[charges]]\nid = \"v\"\ntype = \"volume\"\ntiers = [{ rate = \"1\" }]\n",
    )
    .unwrap();
    if let Charge::Volume(v) = &mut t.versions[0].charges[0] {
        v.tiers.clear();
    }
    assert_eq!(t.bill(&march(), &[]).unwrap_err().field(), Some("versions[0].charges[0].tiers"));
    let mut t =
        Tariff::from_toml("currency = \"USD\"\n[[charges]]\nid = \"d\"\ntype = \"demand\"\nrate = \"1\"\n").unwrap();
    if let Charge::Demand(d) = &mut t.versions[0].charges[0] {
        d.interval_minutes = Some(0);
    }
    assert_eq!(t.bill(&march(), &[]).unwrap_err().field(), Some("versions[0].charges[0].interval_minutes"));
    // Top-level charges set in code are rated as one version.
    let mut t = five_tier();
    t.charges = std::mem::take(&mut t.versions[0].charges);
    t.versions.clear();
    assert_eq!(t.bill(&march(), &[rec("a", "2024-03-02T00:00:00Z", d("10"))]).unwrap().total, d("1.20"));
}

const TOU_DEMAND: &str = r#"
currency = "USD"
time_zone = "Australia/Lord_Howe"
[[charges]]
id = "free"
type = "allowance"
included = "5"
tier_basis = "day"
[[charges]]
id = "energy"
type = "time_of_use"
periods = { a = { rate = "0.1" }, b = { tiers = [{ up_to = "3", rate = "0.2" }, { rate = "0.3" }] } }
tier_basis = "day"
[charges.schedule]
periods = ["a", "b"]
weekday = [[0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]]
holidays = ["2024-01-01"]
[[charges]]
id = "demand"
type = "demand"
interval_minutes = 15
periods = { a = { rate = "1" }, b = { tiers = [{ up_to = "2", rate = "3" }, { rate = "4" }] } }
[charges.schedule]
periods = ["a", "b"]
weekday = [[0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]]
[[charges]]
id = "winter"
type = "demand"
months = [6, 7, 8]
rate = "2"
[[charges]]
id = "min"
type = "minimum"
amount = "1"
per = "year"
"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Arbitrary records and periods (negative, huge and tiny quantities, instants from year
    /// -1000 to 5000) give a bill or an error, never a panic; a bill always adds up.
    #[test]
    fn never_panics(
        qs in proptest::collection::vec((any::<i64>(), 0u32..29, -2_000_000i64..42_000_000), 0..40),
        from in -30_000_000_000i64..100_000_000_000,
        len in 0i64..40_000_000,
        zone in prop::sample::select(vec!["UTC", "Europe/London", "Asia/Kolkata", "America/St_Johns"]),
    ) {
        let recs: Vec<UsageRecord> = qs
            .iter()
            .enumerate()
            .map(|(i, &(m, s, t))| {
                let at = DateTime::from_timestamp(from + t, 0).unwrap();
                UsageRecord::new("t", format!("r{i}"), "m", "kwh", Decimal::new(m, s), at)
            })
            .collect();
        let (Some(a), Some(b)) = (DateTime::from_timestamp(from, 0), DateTime::from_timestamp(from + len, 0)) else {
            return Ok(());
        };
        let req = BillRequest::new("t", "m", "kwh", a, b, zone);
        for t in [mixed(), five_tier(), Tariff::from_toml(TOU_DEMAND).unwrap()] {
            // Small non-negative quantities must bill; anything may be refused, never panic.
            let small: Vec<UsageRecord> = recs
                .iter()
                .map(|r| UsageRecord { quantity: Decimal::new((r.quantity.mantissa() % 1_000_000).abs() as i64, 3), ..r.clone() })
                .collect();
            if len > 0 {
                prop_assert!(t.bill(&req, &small).is_ok(), "{:?}", t.bill(&req, &small).err());
            }
            if let Ok(bill) = t.bill(&req, &recs) {
                let sum: Decimal = bill.lines.iter().map(|l| l.amount).sum();
                prop_assert_eq!(sum, bill.total);
            }
        }
    }
}
