//! Regression tests for issue 12, sections 4-6 (silent corruption, double count, promises of
//! the readers): each test fails on the code before its fix.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::{billing::month_period, decimal::parse_decimal, BillRequest, ErrorKind, Tariff, UsageRecord};

fn ts(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn parse_decimal_refuses_what_it_would_round_or_misread() {
    for bad in [
        "1_000",
        "1__0",
        "_1",
        "0.00000000000000000000000000001", // 29 places
        "1.00000000000000000000000000001",
        "5e-324",
        "1e-29",
        "79228162514264337593543950336",  // 2^96
        "7922816251426433759354395033.6", // 2^96 / 10, one digit too many
        "1e99999",
        "1e99999999999",
        "NaN",
        "inf",
        "",
        "-",
        ".",
        "1.2.3",
        "1e",
        "0x10",
        "1,5",
        "１",
    ] {
        let e = parse_decimal(bad).expect_err(bad);
        assert_eq!(e.kind(), ErrorKind::Parse, "{bad}");
    }
    for (ok, want) in [
        ("1000", "1000"),
        (" -3 ", "-3"),
        ("+.5", "0.5"),
        ("5.", "5"),
        ("0.0000000000000000000000000001", "0.0000000000000000000000000001"),
        ("1.0000000000000000000000000000000", "1"), // trailing zeros beyond 28 places change nothing
        ("79228162514264337593543950335", "79228162514264337593543950335"),
        ("1234567890123456789012345678.9", "1234567890123456789012345678.9"), // 29 digits, < 2^96
        ("12345678901234567890.5", "12345678901234567890.5"),
        ("2.5E6", "2500000"),
        ("1e-3", "0.001"),
        ("-0", "0"),
        ("0e99999999999", "0"),
        ("1e+0003", "1000"),
    ] {
        assert_eq!(crate::decimal::fmt_decimal(parse_decimal(ok).expect(ok)), want, "{ok}");
    }
    assert_eq!(parse_decimal("1.50").unwrap().to_string(), "1.50", "the scale is kept");
}

#[test]
fn json_number_quantities_are_read_exactly() {
    let rec = |q: &str| {
        serde_json::from_str::<UsageRecord>(&format!(
            r#"{{"id":"r","tenant":"t","subject":"s","metric":"m","quantity":{q},"timestamp":"2024-01-01T00:00:00Z"}}"#
        ))
    };
    for (q, want) in [
        ("12345678901234567890.5", "12345678901234567890.5"),
        ("0.1", "0.1"),
        ("1e3", "1000"),
        ("-2.50", "-2.5"),
        ("79228162514264337593543950335", "79228162514264337593543950335"),
        ("18446744073709551616", "18446744073709551616"),
    ] {
        assert_eq!(crate::decimal::fmt_decimal(rec(q).unwrap().quantity), want, "{q}");
    }
    for q in ["5e-324", "1e400", "0.00000000000000000000000000001", "79228162514264337593543950336"] {
        assert!(rec(q).is_err(), "{q} must be refused, not rounded");
    }
    // Through a serde_json::Value too (the CLI's JSONL path).
    let v: serde_json::Value =
        serde_json::from_str(r#"{"id":"r","tenant":"t","subject":"s","metric":"m","quantity":12345678901234567890.5,"timestamp":"2024-01-01T00:00:00Z"}"#).unwrap();
    let r: UsageRecord = serde_json::from_value(v).unwrap();
    assert_eq!(r.quantity.to_string(), "12345678901234567890.5");
}

#[test]
fn repeated_json_keys_are_refused_in_tariffs() {
    let t = r#"{"currency":"USD","currency":"EUR","charges":[{"id":"e","type":"per_unit","rate":"0.1"}]}"#;
    for e in [Tariff::from_json(t).unwrap_err(), Tariff::from_any(t).unwrap_err()] {
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(e.message().contains("'currency' appears twice"), "{}", e.message());
    }
}

fn pct_tariff(charges: &str) -> crate::Result<Tariff> {
    Tariff::from_toml(&format!(
        "currency = \"USD\"\n[[charges]]\nid = \"energy\"\ntype = \"per_unit\"\nrate = \"0.10\"\n{charges}"
    ))
}

#[test]
fn percentages_in_a_cycle_are_refused_naming_it() {
    let e = pct_tariff(
        "[[charges]]\nid = \"a\"\ntype = \"percentage\"\npercent = \"10\"\napplies_to = [\"b\"]\n\
         [[charges]]\nid = \"b\"\ntype = \"percentage\"\npercent = \"5\"\napplies_to = [\"c\"]\n\
         [[charges]]\nid = \"c\"\ntype = \"percentage\"\npercent = \"5\"\napplies_to = [\"a\", \"energy\"]\n",
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tariff);
    assert!(e.message().contains("a → b → c → a"), "{}", e.message());
    assert_eq!(e.field(), Some("versions[0].charges[1].applies_to"));
    // A percentage naming one listed after it would count it as 0: refused too.
    let e = pct_tariff(
        "[[charges]]\nid = \"a\"\ntype = \"percentage\"\npercent = \"10\"\napplies_to = [\"b\"]\n\
         [[charges]]\nid = \"b\"\ntype = \"percentage\"\npercent = \"5\"\napplies_to = [\"energy\"]\n",
    )
    .unwrap_err();
    assert!(e.message().contains("listed after it"), "{}", e.message());
    // ... and one naming a tax.
    let e = pct_tariff(
        "[[charges]]\nid = \"vat\"\ntype = \"percentage\"\npercent = \"20\"\ntax = true\n\
         [[charges]]\nid = \"levy\"\ntype = \"percentage\"\npercent = \"1\"\ntax = true\napplies_to = [\"vat\"]\n",
    )
    .unwrap_err();
    assert!(e.message().contains("the tax 'vat'"), "{}", e.message());
    // In order, a percentage of a percentage is priced (not 0): 10 kWh → 1.00, a = 0.10, b = 5 % of a.
    let t = pct_tariff(
        "[[charges]]\nid = \"a\"\ntype = \"percentage\"\npercent = \"10\"\napplies_to = [\"energy\"]\n\
         [[charges]]\nid = \"b\"\ntype = \"percentage\"\npercent = \"50\"\napplies_to = [\"a\"]\n",
    )
    .unwrap();
    let req = BillRequest::new("t", "m", "kwh", ts("2024-03-01T00:00:00Z"), ts("2024-04-01T00:00:00Z"), "UTC");
    let r = UsageRecord::new("t", "r", "m", "kwh", Decimal::TEN, ts("2024-03-02T00:00:00Z"));
    assert_eq!(t.bill(&req, &[r]).unwrap().total.to_string(), "1.15");
    assert_eq!(t.quantity_rater().unwrap().total(Decimal::TEN).unwrap().to_string(), "1.15");
}

#[test]
fn an_allowance_nets_corrections_first() {
    let t = Tariff::from_toml(
        "currency = \"USD\"\n[[charges]]\nid = \"free\"\ntype = \"allowance\"\nincluded = \"10\"\n\
         [[charges]]\nid = \"energy\"\ntype = \"per_unit\"\nrate = \"1.00\"\n",
    )
    .unwrap();
    let req = BillRequest::new("t", "m", "kwh", ts("2024-03-01T00:00:00Z"), ts("2024-04-01T00:00:00Z"), "UTC");
    let r = |id: &str, q: &str, day: u32| {
        UsageRecord::new("t", id, "m", "kwh", q.parse().unwrap(), ts(&format!("2024-03-{day:02}T00:00:00Z")))
    };
    let rater = t.quantity_rater().unwrap();
    for (records, want) in [
        // 5 kWh then a −0.5 correction: 4.5 net, inside the allowance.
        (vec![r("a", "5", 1), r("b", "-0.5", 2)], "0.00"),
        // The correction first.
        (vec![r("b", "-0.5", 1), r("a", "5", 2)], "0.00"),
        // 12 − 0.5 = 11.5: 1.5 over the allowance.
        (vec![r("a", "12", 1), r("b", "-0.5", 2)], "1.50"),
        // More credit than usage: −2 net, billed as a credit.
        (vec![r("a", "1", 1), r("b", "-3", 2)], "-2.00"),
    ] {
        let net: Decimal = records.iter().map(|r| r.quantity).sum();
        let bill = t.bill(&req, &records).unwrap();
        assert_eq!(bill.total.to_string(), want, "{records:?}");
        assert_eq!(rater.total(net).unwrap(), bill.total, "the bill and the quantity rater agree");
    }
}

#[test]
fn sub_second_billing_bounds_are_exact() {
    let t =
        Tariff::from_toml("currency = \"USD\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"1\"\n").unwrap();
    let req = BillRequest::new("t", "m", "kwh", ts("2024-03-01T00:00:00.250Z"), ts("2024-03-01T00:00:00.750Z"), "UTC");
    let recs = [
        UsageRecord::new("t", "in", "m", "kwh", Decimal::TWO, ts("2024-03-01T00:00:00.500Z")),
        UsageRecord::new("t", "before", "m", "kwh", Decimal::TEN, ts("2024-03-01T00:00:00.100Z")),
        UsageRecord::new("t", "at-end", "m", "kwh", Decimal::TEN, ts("2024-03-01T00:00:00.750Z")),
    ];
    assert_eq!(t.bill(&req, &recs).unwrap().total.to_string(), "2.00");
    let empty =
        BillRequest::new("t", "m", "kwh", ts("2024-03-01T00:00:00.750Z"), ts("2024-03-01T00:00:00.750Z"), "UTC");
    assert_eq!(t.bill(&empty, &recs).unwrap_err().kind(), ErrorKind::InvalidQuery);
}

#[test]
fn impossible_billing_periods_are_refused() {
    let utc = crate::time::Tz::UTC;
    for bad in ["99999-01", "1600-01", "2262-01", "024-01", "2024-13", "2024-001", "+2024-01", "2024-1x"] {
        assert_eq!(month_period(bad, utc).unwrap_err().kind(), ErrorKind::Parse, "{bad}");
    }
    assert!(month_period("2024-2", utc).is_ok());
    assert!(month_period("2261-12", utc).is_ok());
}
