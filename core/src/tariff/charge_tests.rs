use super::*;
use crate::tariff::Tariff;
use crate::ErrorKind;

/// The error of `Tariff::from_json` for a tariff with the one charge `charge`.
fn err(charge: &str) -> crate::Error {
    Tariff::from_json(&format!(r#"{{"currency":"USD","charges":[{charge}]}}"#)).unwrap_err()
}

#[test]
fn each_kind_refuses_a_key_it_does_not_take_naming_the_path() {
    for (charge, key) in [
        (r#"{"id":"e","type":"fixed","amount":"1","tiers":[{"rate":"1"}]}"#, "tiers"),
        (r#"{"id":"e","type":"per_unit","rate":"1","amount":"1"}"#, "amount"),
        (r#"{"id":"e","type":"graduated","tiers":[{"rate":"1"}],"rate":"1"}"#, "rate"),
        (r#"{"id":"e","type":"volume","tiers":[{"rate":"1"}],"per":"day"}"#, "per"),
        (r#"{"id":"e","type":"package","rate":"1","package_size":"5","included":"1"}"#, "included"),
        (r#"{"id":"e","type":"allowance","included":"1","rate":"1"}"#, "rate"),
        (r#"{"id":"e","type":"demand","rate":"1","divide_by":"1000"}"#, "divide_by"),
        (r#"{"id":"e","type":"minimum","amount":"1","unit":"kWh"}"#, "unit"),
        (r#"{"id":"e","type":"percentage","percent":"5","metric":"kwh"}"#, "metric"),
    ] {
        let e = err(charge);
        assert_eq!(e.kind(), ErrorKind::Tariff, "{charge}");
        assert_eq!(e.field(), Some(format!("versions[0].charges[0].{key}").as_str()), "{charge}");
        assert!(e.message().contains(&format!("`{key}` does not apply")), "{}", e.message());
    }
}

#[test]
fn each_kind_needs_its_keys() {
    for (charge, key) in [
        (r#"{"id":"e","type":"fixed"}"#, "amount"),
        (r#"{"id":"e","type":"package","rate":"1"}"#, "package_size"),
        (r#"{"id":"e","type":"allowance"}"#, "included"),
        (r#"{"id":"e","type":"time_of_use"}"#, "schedule"),
        (r#"{"id":"e","type":"demand"}"#, "rate"),
        (r#"{"id":"e","type":"minimum"}"#, "amount"),
        (r#"{"id":"e","type":"percentage"}"#, "percent"),
    ] {
        assert_eq!(err(charge).field(), Some(format!("versions[0].charges[0].{key}").as_str()), "{charge}");
    }
}

#[test]
fn a_demand_charge_has_one_price() {
    let schedule = r#""schedule":{"periods":["a"],"weekday":[[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]]}"#;
    let both = format!(r#"{{"id":"d","type":"demand",{schedule},"periods":{{"a":{{"rate":"1"}}}},"rate":"2"}}"#);
    assert_eq!(err(&both).field(), Some("versions[0].charges[0].rate"));
    let rate_and_tiers = r#"{"id":"d","type":"demand","rate":"2","tiers":[{"rate":"1"}]}"#;
    assert_eq!(err(rate_and_tiers).field(), Some("versions[0].charges[0].rate"));
    // `periods` without a `schedule` prices nothing: refused, not ignored.
    let loose = r#"{"id":"d","type":"demand","rate":"2","periods":{"a":{"rate":"1"}}}"#;
    assert_eq!(err(loose).field(), Some("versions[0].charges[0].periods"));
    let ok = format!(r#"{{"id":"d","type":"demand",{schedule},"periods":{{"a":{{"rate":"1"}}}}}}"#);
    let t = Tariff::from_json(&format!(r#"{{"currency":"USD","charges":[{ok}]}}"#)).unwrap();
    assert!(matches!(
        &t.versions()[0].charges[0],
        Charge::Demand(DemandCharge { price: DemandPrice::TimeOfUse(_), .. })
    ));
}

#[test]
fn later_versions_are_named_in_the_path() {
    let e = Tariff::from_json(
        r#"{"currency":"USD","versions":[{"charges":[{"id":"a","type":"per_unit","rate":"1"}]},
            {"effective_from":"2024-01-01","charges":[{"id":"a","type":"per_unit","rate":"1"},
            {"id":"b","type":"fixed","amount":"1","rate":"1"}]}]}"#,
    )
    .unwrap_err();
    assert_eq!((e.kind(), e.field()), (ErrorKind::Tariff, Some("versions[1].charges[1].rate")));
}

#[test]
fn a_lone_charge_round_trips_and_names_the_refused_key() {
    let json = r#"{"id":"gb","type":"graduated","metric":"bytes","divide_by":"1000000000","tiers":[{"up_to":"10","rate":"0"},{"rate":"0.5"}]}"#;
    let c: Charge = serde_json::from_str(json).unwrap();
    assert_eq!(c.kind(), ChargeKind::Graduated);
    assert_eq!(c.selection().and_then(|s| s.metric.as_deref()), Some("bytes"));
    assert_eq!(serde_json::to_string(&c).unwrap(), json);
    let e = serde_json::from_str::<Charge>(r#"{"id":"f","type":"fixed","amount":"1","percent":"2"}"#).unwrap_err();
    assert!(e.to_string().contains("`percent` does not apply to a `fixed` charge (at `charge.percent`)"), "{e}");
    // Unknown keys are still serde's own error.
    assert!(serde_json::from_str::<Charge>(r#"{"id":"f","type":"fixed","amount":"1","amout":"2"}"#).is_err());
}

#[test]
fn every_vector_tariff_round_trips_to_the_same_json() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/bill");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        let t = Tariff::from_any(&v["input"]["tariff"].to_string()).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        let back = Tariff::from_json(&json).unwrap();
        assert_eq!(back, t);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        n += 1;
    }
    assert!(n >= 30, "{n} bill vectors");
}
