//! Import of OpenEI Utility Rate Database (URDB) records into a [`Tariff`].
//!
//! The mapping is in `docs/tariffs.md` ("URDB import"). Every key of the record is either
//! mapped, known to be informational (names, comments, capacity ranges), or refused with an
//! error naming it: a rate is never imported with part of its price silently dropped.

use std::collections::BTreeMap;

use chrono::DateTime;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::tariff::{
    tariff_err, Basis, Charge, ChargeKind, Per, PeriodPrice, Rounding, Schedule, Tariff, TariffVersion, Tier,
};
use crate::usage::parse_decimal;
use crate::window::Window;

/// Keys that carry no price (names, comments, eligibility ranges, provenance).
const INFORMATIONAL: &[&str] = &[
    "label",
    "uri",
    "utility",
    "eiaid",
    "name",
    "sector",
    "description",
    "source",
    "sourceparent",
    "country",
    "approved",
    "revisions",
    "servicetype",
    "voltagecategory",
    "phasewiring",
    "is_default",
    "supersedes",
    "basicinformationcomments",
    "energycomments",
    "demandcomments",
    "peakkwcapacitymin",
    "peakkwcapacitymax",
    "peakkwcapacityhistory",
    "peakkwhusagemin",
    "peakkwhusagemax",
    "peakkwhusagehistory",
    "voltageminimum",
    "voltagemaximum",
];

/// Keys mapped by the importer.
const MAPPED: &[&str] = &[
    "startdate",
    "enddate",
    "energyratestructure",
    "energyweekdayschedule",
    "energyweekendschedule",
    "demandratestructure",
    "demandweekdayschedule",
    "demandweekendschedule",
    "demandwindow",
    "flatdemandstructure",
    "flatdemandmonths",
    "fixedchargefirstmeter",
    "fixedchargeunits",
    "fixedmonthlycharge",
    "mincharge",
    "minchargeunits",
    "minmonthlycharge",
    "annualmincharge",
    "demandunits",
    "demandrateunit",
    "flatdemandunit",
];

/// Keys whose feature is not supported but which have no effect when zero or empty (ratchets,
/// additional-meter charges).
const ZERO_ONLY: &[&str] =
    &["demandratchetpercentage", "lookbackpercent", "lookbackmonths", "lookbackrange", "fixedchargeeaaddl"];

pub(crate) fn looks_like_urdb(v: &Value) -> bool {
    let Some(o) = v.as_object() else { return false };
    o.get("items").is_some_and(Value::is_array)
        || [
            "energyratestructure",
            "flatdemandstructure",
            "demandratestructure",
            "fixedchargefirstmeter",
            "fixedmonthlycharge",
            "eiaid",
        ]
        .iter()
        .any(|k| o.contains_key(*k))
}

fn unsupported(field: impl Into<String>, what: impl std::fmt::Display) -> Error {
    let field = field.into();
    Error::new(ErrorKind::Tariff, format!("The URDB field `{field}` is not supported: {what}.")).with_field(field)
}

fn dec(v: &Value, field: &str) -> Result<Decimal> {
    match v {
        Value::Number(n) => parse_decimal(&n.to_string()),
        Value::String(s) => parse_decimal(s),
        _ => Err(tariff_err(field, format!("`{field}` must be a number."))),
    }
    .map_err(|e| tariff_err(field, e.message()))
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || parse_decimal(s).is_ok_and(|d| d.is_zero()),
        Value::Array(a) => a.iter().all(is_zero),
        Value::Object(o) => o.values().all(is_zero),
        Value::Bool(b) => !b,
    }
}

fn grid(v: Option<&Value>, field: &str) -> Result<Vec<Vec<u8>>> {
    let Some(v) = v else { return Err(tariff_err(field, format!("`{field}` is missing."))) };
    let rows = v.as_array().ok_or_else(|| tariff_err(field, format!("`{field}` must be 12 rows of 24 periods.")))?;
    rows.iter()
        .enumerate()
        .map(|(m, row)| {
            let f = format!("{field}[{m}]");
            row.as_array()
                .ok_or_else(|| tariff_err(&f, "A schedule row must be an array."))?
                .iter()
                .map(|p| {
                    p.as_u64().and_then(|p| u8::try_from(p).ok()).ok_or_else(|| tariff_err(&f, "Not a period index."))
                })
                .collect()
        })
        .collect()
}

/// One period's tiers: `(tiers, basis)`.
fn tiers(v: &Value, field: &str, energy: bool) -> Result<(Vec<Tier>, Basis)> {
    let arr = v.as_array().ok_or_else(|| tariff_err(field, "A period must be an array of tiers."))?;
    if arr.is_empty() {
        return Err(tariff_err(field, "A period needs at least one tier."));
    }
    let mut out = Vec::new();
    let mut basis: Option<Basis> = None;
    for (i, t) in arr.iter().enumerate() {
        let tf = format!("{field}[{i}]");
        let o = t.as_object().ok_or_else(|| tariff_err(&tf, "A tier must be an object."))?;
        let mut rate = Decimal::ZERO;
        let mut max = None;
        let mut tier_basis = Basis::Period;
        for (k, val) in o {
            let kf = format!("{tf}.{k}");
            match k.as_str() {
                "rate" | "adj" => rate = crate::bill::add(rate, dec(val, &kf)?)?,
                "max" => max = Some(dec(val, &kf)?),
                "sell" if is_zero(val) => {}
                "sell" => return Err(unsupported(kf, "sell rates (net metering) are not modelled")),
                "unit" if energy => match val.as_str() {
                    Some("kWh") => tier_basis = Basis::Period,
                    Some("kWh daily") => tier_basis = Basis::Day,
                    Some(u) => return Err(unsupported(kf, format!("the tier unit '{u}' is not supported"))),
                    None => return Err(tariff_err(kf, "The unit must be a string.")),
                },
                "unit" => match val.as_str() {
                    Some("kW") => {}
                    Some(u) => return Err(unsupported(kf, format!("the demand unit '{u}' is not supported"))),
                    None => return Err(tariff_err(kf, "The unit must be a string.")),
                },
                _ => return Err(unsupported(kf, "unknown tier key")),
            }
        }
        if basis.is_some_and(|b| b != tier_basis) {
            return Err(unsupported(format!("{tf}.unit"), "tiers of one period mix `kWh` and `kWh daily`"));
        }
        basis = Some(tier_basis);
        let last = i + 1 == arr.len();
        if !last && max.is_none() {
            return Err(tariff_err(format!("{tf}.max"), "Every tier but the last needs `max`."));
        }
        // The last tier is open-ended: units above its `max` are priced at its rate.
        out.push(Tier { up_to: if last { None } else { max }, rate: rate.normalize(), flat: None });
    }
    Ok((out, basis.unwrap_or_default()))
}

fn structure(v: &Value, field: &str, energy: bool) -> Result<(Vec<PeriodPrice>, Basis)> {
    let periods = v.as_array().ok_or_else(|| tariff_err(field, format!("`{field}` must be an array of periods.")))?;
    let mut out = Vec::new();
    let mut basis = None;
    for (p, tv) in periods.iter().enumerate() {
        let pf = format!("{field}[{p}]");
        let (ts, b) = tiers(tv, &pf, energy)?;
        if basis.is_some_and(|x| x != b) {
            return Err(unsupported(pf, "periods mix `kWh` and `kWh daily` tiers"));
        }
        basis = Some(b);
        out.push(if ts.len() == 1 {
            PeriodPrice { rate: Some(ts[0].rate), tiers: Vec::new() }
        } else {
            PeriodPrice { rate: None, tiers: ts }
        });
    }
    Ok((out, basis.unwrap_or_default()))
}

fn blank(id: &str, kind: ChargeKind, description: &str) -> Charge {
    Charge {
        id: id.to_string(),
        kind,
        description: Some(description.to_string()),
        metric: None,
        filter: BTreeMap::new(),
        months: Vec::new(),
        unit: None,
        divide_by: None,
        divide_rounding: None,
        amount: None,
        per: None,
        rate: None,
        tiers: Vec::new(),
        tier_basis: None,
        package_size: None,
        free_units: None,
        included: None,
        schedule: None,
        periods: BTreeMap::new(),
        interval_minutes: None,
        percent: None,
        applies_to: Vec::new(),
        tax: false,
    }
}

fn tou_charge(
    o: &serde_json::Map<String, Value>,
    id: &str,
    kind: ChargeKind,
    keys: [&str; 3],
    description: &str,
) -> Result<Option<Charge>> {
    let [structure_key, weekday_key, weekend_key] = keys;
    let Some(sv) = o.get(structure_key) else { return Ok(None) };
    let energy = kind == ChargeKind::TimeOfUse;
    let (prices, basis) = structure(sv, structure_key, energy)?;
    if prices.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = (0..prices.len()).map(|p| format!("p{p}")).collect();
    let schedule = Schedule {
        periods: names.clone(),
        weekday: grid(o.get(weekday_key), weekday_key)?,
        weekend: grid(o.get(weekend_key), weekend_key)?,
        holidays: Vec::new(),
    };
    let mut c = blank(id, kind, description);
    c.unit = Some(if energy { "kWh" } else { "kW" }.to_string());
    c.schedule = Some(schedule);
    c.periods = names.into_iter().zip(prices).collect();
    if energy && basis == Basis::Day {
        c.tier_basis = Some(Basis::Day);
    }
    Ok(Some(c))
}

fn date_of(v: &Value, field: &str) -> Result<chrono::NaiveDate> {
    let s = v.as_i64().ok_or_else(|| tariff_err(field, format!("`{field}` must be Unix seconds.")))?;
    DateTime::from_timestamp(s, 0)
        .map(|t| t.date_naive())
        .ok_or_else(|| tariff_err(field, format!("`{field}` is out of range.")))
}

pub(crate) fn from_urdb_value(v: &Value) -> Result<Tariff> {
    let record = match v.get("items") {
        Some(Value::Array(items)) if items.len() == 1 => &items[0],
        Some(Value::Array(items)) => {
            return Err(tariff_err(
                "items",
                format!("A URDB response must hold exactly one rate to import, not {}.", items.len()),
            ))
        }
        Some(_) => return Err(tariff_err("items", "`items` must be an array.")),
        None => v,
    };
    let o = record.as_object().ok_or_else(|| tariff_err("items[0]", "A URDB rate must be a JSON object."))?;
    for (k, val) in o {
        if INFORMATIONAL.contains(&k.as_str()) || MAPPED.contains(&k.as_str()) {
            continue;
        }
        if ZERO_ONLY.contains(&k.as_str()) && is_zero(val) {
            continue;
        }
        return Err(unsupported(k.clone(), "the importer does not model it"));
    }
    for k in ["demandunits", "demandrateunit", "flatdemandunit"] {
        if let Some(u) = o.get(k) {
            if u.as_str() != Some("kW") {
                return Err(unsupported(k, format!("the unit {u} is not kW")));
            }
        }
    }
    let mut charges = Vec::new();
    let money = |k: &str| o.get(k).map(|v| dec(v, k)).transpose();
    if let Some(amount) = money("fixedchargefirstmeter")? {
        let mut c = blank("fixed", ChargeKind::Fixed, "Fixed charge");
        c.amount = Some(amount);
        c.per = Some(match o.get("fixedchargeunits").and_then(Value::as_str).unwrap_or("$/month") {
            "$/month" => Per::Period,
            "$/day" => Per::Day,
            u => return Err(unsupported("fixedchargeunits", format!("the unit '{u}' is not $/month or $/day"))),
        });
        charges.push(c);
    }
    if let Some(amount) = money("fixedmonthlycharge")? {
        let mut c = blank("fixed_monthly", ChargeKind::Fixed, "Fixed monthly charge");
        c.amount = Some(amount);
        c.per = Some(Per::Period);
        charges.push(c);
    }
    if let Some(c) = tou_charge(
        o,
        "energy",
        ChargeKind::TimeOfUse,
        ["energyratestructure", "energyweekdayschedule", "energyweekendschedule"],
        "Energy",
    )? {
        charges.push(c);
    }
    let window = match o.get("demandwindow") {
        None => None,
        Some(w) => match w.as_u64() {
            Some(m @ (5 | 10 | 15 | 30 | 60)) => Some(m as u32),
            _ => return Err(unsupported("demandwindow", format!("the window {w} is not 5, 10, 15, 30 or 60 minutes"))),
        },
    };
    if let Some(mut c) = tou_charge(
        o,
        "demand",
        ChargeKind::Demand,
        ["demandratestructure", "demandweekdayschedule", "demandweekendschedule"],
        "TOU demand",
    )? {
        c.interval_minutes = window;
        charges.push(c);
    }
    if let Some(sv) = o.get("flatdemandstructure") {
        let (prices, _) = structure(sv, "flatdemandstructure", false)?;
        let months: Vec<usize> = match o.get("flatdemandmonths") {
            Some(m) => {
                let arr = m.as_array().filter(|a| a.len() == 12).ok_or_else(|| {
                    tariff_err("flatdemandmonths", "`flatdemandmonths` must hold 12 structure indexes.")
                })?;
                arr.iter()
                    .map(|x| {
                        x.as_u64().map(|x| x as usize).filter(|&x| x < prices.len()).ok_or_else(|| {
                            tariff_err("flatdemandmonths", format!("{x} is not an index of the structure."))
                        })
                    })
                    .collect::<Result<_>>()?
            }
            None if prices.len() <= 1 => vec![0; 12],
            None => return Err(tariff_err("flatdemandmonths", "`flatdemandmonths` is missing.")),
        };
        for (k, price) in prices.into_iter().enumerate() {
            let ms: Vec<u32> = (0..12).filter(|&m| months[m] == k).map(|m| m as u32 + 1).collect();
            if ms.is_empty() {
                continue;
            }
            let mut c = blank(&format!("flat_demand_{k}"), ChargeKind::Demand, "Demand");
            c.unit = Some("kW".into());
            c.rate = price.rate;
            c.tiers = price.tiers;
            c.interval_minutes = window;
            if ms.len() < 12 {
                c.months = ms;
            }
            charges.push(c);
        }
    }
    let mut minimum = |id: &str, desc: &str, amount: Decimal, per: Per| {
        let mut c = blank(id, ChargeKind::Minimum, desc);
        c.amount = Some(amount);
        c.per = Some(per);
        charges.push(c);
    };
    if let Some(amount) = money("mincharge")? {
        let per = match o.get("minchargeunits").and_then(Value::as_str).unwrap_or("$/month") {
            "$/month" => Per::Period,
            "$/day" => Per::Day,
            "$/year" => Per::Year,
            u => return Err(unsupported("minchargeunits", format!("the unit '{u}' is not $/month, $/day or $/year"))),
        };
        minimum("minimum", "Minimum charge top-up", amount, per);
    }
    if let Some(amount) = money("minmonthlycharge")? {
        minimum("minimum_monthly", "Minimum monthly charge top-up", amount, Per::Period);
    }
    if let Some(amount) = money("annualmincharge")? {
        minimum("minimum_annual", "Annual minimum charge top-up (pro rata)", amount, Per::Year);
    }
    if charges.is_empty() {
        return Err(tariff_err("energyratestructure", "The URDB rate has no charge the importer can map."));
    }
    let effective_from = o.get("startdate").map(|v| date_of(v, "startdate")).transpose()?;
    let valid_until = o.get("enddate").map(|v| date_of(v, "enddate")).transpose()?;
    let str_of = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let source = match (str_of("label"), str_of("uri")) {
        (Some(l), Some(u)) => Some(format!("OpenEI URDB rate {l} ({u})")),
        (Some(l), None) => Some(format!("OpenEI URDB rate {l}")),
        (None, Some(u)) => Some(format!("OpenEI URDB ({u})")),
        (None, None) => Some("OpenEI URDB".to_string()),
    };
    let t = Tariff {
        name: str_of("name"),
        source,
        currency: "USD".into(),
        minor_units: None,
        rounding: Rounding::HalfUp,
        time_zone: None,
        billing_cycle: Window::Month,
        valid_until,
        charges: Vec::new(),
        versions: vec![TariffVersion { effective_from, charges }],
    };
    t.check()?;
    Ok(t)
}

impl Tariff {
    /// Import an OpenEI URDB rate: one rate object, or an API response `{"items":[rate]}` with
    /// exactly one item. Prices are in USD, rounded half-up to cents; `startdate` becomes the
    /// version's `effective_from` and `enddate` the `valid_until` (UTC dates). The mapping of
    /// each field is in `docs/tariffs.md`.
    ///
    /// # Errors
    /// [`ErrorKind::Parse`] for malformed JSON or a repeated key; [`ErrorKind::Tariff`] naming the field for a field
    /// or unit the importer does not support (`kWh/kW` tiers, sell rates, ratchets, net-metering
    /// rules, unknown keys) or an inconsistent record.
    pub fn from_urdb_json(text: &str) -> Result<Tariff> {
        crate::tariff::check_tariff_json(text)?;
        let v: Value = serde_json::from_str(text).map_err(|e| {
            Error::new(ErrorKind::Parse, format!("The URDB JSON is invalid: {e}")).with_line(e.line() as u64)
        })?;
        from_urdb_value(&v)
    }
}

#[cfg(test)]
#[path = "urdb_tests.rs"]
mod tests;
