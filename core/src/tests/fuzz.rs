//! Fuzz targets of the core's document readers (issue 12, section 7): decimals, usage records
//! and the other JSON shapes the bindings' entry points read, tariffs in TOML, JSON and URDB
//! JSON, validation configs, canonical JSON. Each asserts no panic, and either a clean error
//! naming the place (a line for syntax, a field for content) or a value that round-trips.
//! `cargo test` runs a bounded number of inputs; `scripts/fuzz SECONDS` runs them for long.

use proptest::prelude::*;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::tests::fuzz_driver::{fuzz, mangled, number_text};
use crate::{
    decimal::parse_decimal, json::check_json, vee::ValidationConfig, BillRequest, ErrorKind, Query, RollupSpec, Tariff,
    UsageRecord, Validator,
};

/// The value of decimal text, normalized textually (an oracle independent of rust_decimal):
/// `(negative, digits without leading zeros, scale)` with trailing fractional zeros dropped.
fn oracle(text: &str) -> Option<(bool, String, i64)> {
    let t = text.trim();
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (m, e) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i64>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = m.split_once('.').unwrap_or((m, ""));
    if int.len() + frac.len() == 0 || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = int.chars().chain(frac.chars()).skip_while(|&c| c == '0').collect();
    let mut scale = frac.len() as i64 - e;
    while scale > 0 && digits.ends_with('0') {
        digits.pop();
        scale -= 1;
    }
    if digits.is_empty() {
        return Some((false, String::new(), 0));
    }
    if scale < -40 {
        return Some((neg, "9".repeat(41), 0)); // more digits than any decimal: out of range
    }
    if scale < 0 {
        digits.push_str(&"0".repeat(usize::try_from(-scale).ok()?));
        scale = 0;
    }
    Some((neg, digits, scale))
}

#[test]
fn fuzz_parse_decimal() {
    fuzz("parse_decimal", number_text(), |text| match parse_decimal(text) {
        Ok(d) => {
            let n = d.normalize();
            let got = (n.is_sign_negative() && !n.is_zero(), n.mantissa().abs().to_string(), i64::from(n.scale()));
            let got = if n.is_zero() { (false, String::new(), 0) } else { got };
            if oracle(text) != Some(got.clone()) {
                return Err(format!("{text:?} parsed as {d}, which is not its value ({:?})", oracle(text)));
            }
            if parse_decimal(&d.to_string()).ok() != Some(d) {
                return Err(format!("{d} does not round-trip"));
            }
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::Parse && e.message().contains(text.as_str()) => {
            // Refused: then the oracle must say it has no exact 96-bit, 28-place form.
            match oracle(text) {
                Some((_, digits, scale)) if scale <= 28 && digits.len() <= 28 => {
                    Err(format!("{text:?} was refused ({}) although it is exact", e.message()))
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(format!("unclean error {e:?}")),
    });
}

/// JSON values shaped like the documents meterkit reads: objects with the keys of `keys`
/// (sometimes repeated), values from `values` or nested, numbers of any length.
fn json_like(keys: &'static [&'static str], values: &'static [&'static str]) -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        3 => proptest::sample::select(values).prop_map(str::to_string),
        1 => number_text().prop_map(|n| if serde_json::from_str::<serde_json::Value>(&n).is_ok() { n } else { format!("{n:?}") }),
        1 => "\"[ -~]{0,12}\"",
        1 => Just("null".to_string()),
        1 => Just("true".to_string()),
    ];
    let value = leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec((proptest::sample::select(keys), inner), 0..6).prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    });
    let object = proptest::collection::vec((proptest::sample::select(keys), value), 0..12).prop_map(|kv| {
        let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
        format!("{{{}}}", body.join(",\n"))
    });
    prop_oneof![
        6 => object,
        1 => mangled(values).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// Read `text` as a `T` the way the bindings' JSON entry points do (repeated keys refused, then
/// serde_json); a value must serialize and read back to the same JSON.
fn json_round_trip<T: DeserializeOwned + Serialize>(text: &str) -> Result<(), String> {
    if let Err(e) = check_json(text) {
        if e.kind() != ErrorKind::Parse || e.line().is_none() {
            return Err(format!("unclean error {e:?}"));
        }
        return Ok(());
    }
    let Ok(v) = serde_json::from_str::<T>(text) else { return Ok(()) };
    let once = serde_json::to_string(&v).map_err(|e| format!("cannot serialize: {e}"))?;
    let back: T = serde_json::from_str(&once).map_err(|e| format!("{once} does not read back: {e}"))?;
    let twice = serde_json::to_string(&back).map_err(|e| e.to_string())?;
    if once != twice {
        return Err(format!("{once} read back as {twice}"));
    }
    Ok(())
}

const RECORD_KEYS: &[&str] = &[
    "id",
    "tenant",
    "subject",
    "metric",
    "quantity",
    "timestamp",
    "end",
    "dimensions",
    "quality",
    "carrier",
    "metrics",
    "window",
    "time_zone",
    "group_by",
    "from",
    "to",
    "fill",
    "period_start",
    "period_end",
    "aggregations",
    "name",
];
const RECORD_VALUES: &[&str] = &[
    "\"r1\"",
    "\"t\"",
    "\"\"",
    "\"kwh\"",
    "\"1.5\"",
    "\"1_000\"",
    "\"-0.5\"",
    "12345678901234567890.5",
    "5e-324",
    "\"2024-03-01T10:00:00+01:00\"",
    "\"2024-03-01T10:00:00.123456789Z\"",
    "\"1600-01-01T00:00:00Z\"",
    "\"day\"",
    "\"hour\"",
    "\"cycle:5\"",
    "\"minutes:15\"",
    "\"Europe/London\"",
    "\"Nowhere/Zone\"",
    "\"flagged\"",
    "\"estimated\"",
    "[\"subject\"]",
    "{\"carrier\":\"acme\"}",
    "\"zero\"",
    "\"sum\"",
    "[\"sum\",\"max\"]",
];

#[test]
fn fuzz_binding_json_entry_points() {
    fuzz("binding_json", json_like(RECORD_KEYS, RECORD_VALUES), |text| {
        json_round_trip::<UsageRecord>(text)?;
        json_round_trip::<Vec<UsageRecord>>(&format!("[{text}]"))?;
        json_round_trip::<Query>(text)?;
        json_round_trip::<BillRequest>(text)?;
        json_round_trip::<RollupSpec>(text)?;
        json_round_trip::<crate::MeterReading>(text)?;
        json_round_trip::<crate::quota::Quota>(text)?;
        json_round_trip::<crate::vee::estimate::EstimateConfig>(text)?;
        json_round_trip::<crate::allocate::SharedMeter>(text)?;
        // Canonical JSON is a fixed point.
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
            let c = crate::json::canonical_json(&v);
            let again = serde_json::from_str::<serde_json::Value>(&c).map_err(|e| format!("{c}: {e}"))?;
            if crate::json::canonical_json(&again) != c {
                return Err(format!("canonical JSON {c} is not stable"));
            }
        }
        Ok(())
    });
}

const CONFIG_KEYS: &[&str] = &[
    "allow_negative",
    "unit",
    "future_skew_secs",
    "max_age_secs",
    "high_limit",
    "low_limit",
    "spikes",
    "window",
    "threshold",
    "min_scale_ratio",
    "confirm",
    "range_decay",
    "seasonal",
    "seasonal_min_weeks",
    "seasonal_alpha",
    "gap_secs",
    "interval_secs",
    "duplicates",
    "actions",
    "flatline",
    "time_zone",
];
const CONFIG_VALUES: &[&str] = &[
    "true",
    "false",
    "0",
    "-1",
    "3",
    "64",
    "65",
    "1e308",
    "-1e308",
    "0.5",
    "NaN",
    "\"1\"",
    "\"-5\"",
    "\"kWh\"",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "\"reject\"",
    "\"flag\"",
    "{}",
    "[]",
];

#[test]
fn fuzz_validation_config() {
    fuzz("validation_config", json_like(CONFIG_KEYS, CONFIG_VALUES), |text| {
        json_round_trip::<ValidationConfig>(text)?;
        if check_json(text).is_err() {
            return Ok(());
        }
        let Ok(cfg) = serde_json::from_str::<ValidationConfig>(text) else { return Ok(()) };
        let Ok(mut v) = Validator::new(Vec::<(String, ValidationConfig)>::new()).and_then(|v| v.with_default(cfg))
        else {
            return Ok(());
        };
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        for i in 0..40i64 {
            let q = Decimal::from(i % 7) - Decimal::from(if i == 30 { 1000 } else { 0 });
            let r = UsageRecord::new("t", format!("r{i}"), "m", "kwh", q, t0 + chrono::Duration::minutes(15 * i));
            let _ = v.check(&r);
        }
        Ok(())
    });
}

/// Tariff TOML from parts: a header, then charges with keys from a pool.
fn tariff_toml() -> impl Strategy<Value = String> {
    const HEADER: &[&str] = &[
        "currency = \"USD\"",
        "currency = \"GBP\"",
        "currency = \"\"",
        "currency = \"XYZ\"",
        "time_zone = \"Europe/London\"",
        "time_zone = \"Mars/Base\"",
        "rounding = \"half_even\"",
        "billing_cycle = \"cycle:15\"",
        "billing_cycle = \"hour\"",
        "valid_until = \"2024-03-20\"",
        "name = \"fuzz\"",
        "minor_units = 0",
        "minor_units = 40",
    ];
    const KEYS: &[&str] = &[
        "type = \"per_unit\"",
        "type = \"graduated\"",
        "type = \"volume\"",
        "type = \"package\"",
        "type = \"allowance\"",
        "type = \"fixed\"",
        "type = \"minimum\"",
        "type = \"percentage\"",
        "type = \"time_of_use\"",
        "type = \"demand\"",
        "rate = \"0.25\"",
        "rate = \"-7e28\"",
        "rate = \"79228162514264337593543950335\"",
        "rate = \"0.0000000000001\"",
        "rate = 0.1",
        "amount = \"5\"",
        "amount = \"7e28\"",
        "percent = \"20\"",
        "percent = \"-100\"",
        "tax = true",
        "applies_to = [\"a\"]",
        "applies_to = [\"b\", \"a\"]",
        "applies_to = [\"c\"]",
        "included = \"10\"",
        "included = \"-1\"",
        "package_size = \"0\"",
        "package_size = \"100\"",
        "free_units = \"5\"",
        "per = \"day\"",
        "per = \"month\"",
        "per = \"year\"",
        "per = \"period\"",
        "divide_by = \"1000\"",
        "divide_by = \"0\"",
        "metric = \"kwh\"",
        "metric = \"kw\"",
        "months = [1, 13]",
        "months = [3]",
        "filter = { carrier = \"acme\" }",
        "tier_basis = \"day\"",
        "tier_basis = \"period\"",
        "interval_minutes = 15",
        "interval_minutes = 7",
        "tiers = [{ up_to = \"100\", rate = \"0.1\" }, { rate = \"0.2\" }]",
        "tiers = [{ up_to = \"100\", rate = \"0.1\", flat = \"1\" }, { up_to = \"50\", rate = \"0.2\" }]",
        "tiers = [{ rate = \"0.3\" }]",
        "tiers = []",
        "schedule = { periods = [\"peak\", \"off\"], weekday = [[0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,1,1,1,1,1,0,0,0,0]] }",
        "periods = { peak = { rate = \"0.3\" }, off = { rate = \"0.1\" } }",
        "unit = \"kWh\"",
        "description = \"x\"",
    ];
    let charge = (
        proptest::sample::select(&["a", "b", "c", "energy", ""][..]),
        proptest::collection::vec(proptest::sample::select(KEYS), 1..7),
    )
        .prop_map(|(id, keys)| format!("[[charges]]\nid = \"{id}\"\n{}\n", keys.join("\n")));
    let doc =
        (proptest::collection::vec(proptest::sample::select(HEADER), 0..4), proptest::collection::vec(charge, 0..5))
            .prop_map(|(h, c)| format!("{}\n{}", h.join("\n"), c.concat()));
    prop_oneof![
        6 => doc,
        1 => mangled(KEYS).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// A tariff read from a document: a clean error, or a tariff that round-trips through its JSON
/// form and bills a month of records without panicking — the same total as its quantity rater
/// when that applies.
fn check_tariff(read: crate::Result<Tariff>) -> Result<(), String> {
    let t = match read {
        Err(e) => {
            let placed = e.line().is_some() || e.field().is_some();
            return if placed { Ok(()) } else { Err(format!("the error names no place: {e:?}")) };
        }
        Ok(t) => t,
    };
    let json = serde_json::to_string(&t).map_err(|e| e.to_string())?;
    let back = Tariff::from_json(&json).map_err(|e| format!("{json} does not read back: {e:?}"))?;
    if back != t {
        return Err(format!("{json} read back differently"));
    }
    let ts = |d: u32, h: u32| {
        chrono::DateTime::from_timestamp(1_709_251_200 + i64::from(d) * 86_400 + i64::from(h) * 3600, 0)
    };
    let (Some(start), Some(end)) = (ts(0, 0), ts(31, 0)) else { return Ok(()) };
    let req = BillRequest::new("t", "m", "kwh", start, end, "UTC");
    let records: Vec<UsageRecord> = [("5", 1, 8), ("-0.5", 2, 9), ("120", 3, 18), ("0.001", 20, 23), ("7", 30, 12)]
        .iter()
        .filter_map(|&(q, d, h)| Some(UsageRecord::new("t", format!("r{d}"), "m", "kwh", q.parse().ok()?, ts(d, h)?)))
        .collect();
    let bill = t.bill(&req, &records);
    if let (Ok(bill), Ok(rater)) = (&bill, t.quantity_rater()) {
        let net: Decimal = records.iter().map(|r| r.quantity).sum();
        if let Ok(total) = rater.total(net) {
            if total != bill.total {
                return Err(format!("bill total {} but quantity rater {total} for {json}", bill.total));
            }
        }
    }
    Ok(())
}

#[test]
fn fuzz_tariff_toml() {
    fuzz("tariff_toml", tariff_toml(), |text| check_tariff(Tariff::from_toml(text)));
}

#[test]
fn fuzz_tariff_json() {
    const KEYS: &[&str] = &[
        "currency",
        "charges",
        "versions",
        "effective_from",
        "id",
        "type",
        "rate",
        "tiers",
        "up_to",
        "percent",
        "applies_to",
    ];
    const VALUES: &[&str] =
        &["\"USD\"", "\"per_unit\"", "\"percentage\"", "\"0.1\"", "0.1", "\"a\"", "[\"a\"]", "\"2024-01-01\"", "1e400"];
    // The TOML documents converted to JSON (structure-aware), plus JSON-like text.
    let from_toml = tariff_toml().prop_filter_map("valid TOML", |text| {
        let v: toml::Value = toml::from_str(&text).ok()?;
        serde_json::to_string(&v).ok()
    });
    let strategy = prop_oneof![3 => from_toml, 1 => json_like(KEYS, VALUES)];
    fuzz("tariff_json", strategy, |text| {
        check_tariff(Tariff::from_json(text))?;
        check_tariff(Tariff::from_any(text))
    });
}

#[test]
fn fuzz_tariff_urdb() {
    const KEYS: &[&str] = &[
        "label",
        "name",
        "utility",
        "startdate",
        "enddate",
        "energyratestructure",
        "energyweekdayschedule",
        "energyweekendschedule",
        "demandratestructure",
        "demandweekdayschedule",
        "demandweekendschedule",
        "flatdemandstructure",
        "flatdemandmonths",
        "fixedchargefirstmeter",
        "fixedchargeunits",
        "fixedmonthlycharge",
        "mincharge",
        "minchargeunits",
        "annualmincharge",
        "demandunits",
        "rate",
        "max",
        "unit",
        "adj",
        "sell",
        "items",
        "demandratchetpercentage",
        "unknownkey",
    ];
    const VALUES: &[&str] = &[
        "[[{\"rate\":0.1}]]",
        "[[{\"rate\":0.1,\"max\":500},{\"rate\":0.2}],[{\"rate\":0.3,\"adj\":0.01}]]",
        "[[{\"rate\":0.1,\"unit\":\"kWh/kW\"}]]",
        "[[0,0,0,0,0,0,0,0,0,0,0,0,1,1,1,1,1,1,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]]",
        "[[0]]", "[[5,5]]", "[0,1,2,3,4,5,6,7,8,9,10,11]", "[13]", "12.5", "-1", "1e400", "\"$/month\"", "\"$/day\"",
        "\"kW\"", "1356998400", "-99999999999", "\"x\"", "[]", "{}", "null", "0.0000000000000000000000000000001",
    ];
    fuzz("tariff_urdb", json_like(KEYS, VALUES), |text| {
        check_tariff(Tariff::from_urdb_json(text))?;
        check_tariff(Tariff::from_any(text))
    });
}
