//! Import of OpenEI Utility Rate Database (URDB) records into a [`Tariff`].
//!
//! The mapping is in `docs/tariffs.md` ("URDB import"). Every key of the record is either
//! mapped, known to be informational (names, comments, capacity ranges), or refused with an
//! error naming it: a rate is never imported with part of its price silently dropped.

use std::collections::BTreeMap;

use chrono::DateTime;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::decimal::parse_decimal;
use crate::error::{Error, ErrorKind, Result};
use crate::tariff::metering::{Metering, MeteringRule};
use crate::tariff::ratchet::Ratchet;
use crate::tariff::{
    tariff_err, Basis, Charge, DemandCharge, DemandPrice, FixedCharge, MinimumCharge, Per, PeriodPrice, Rounding,
    Schedule, Selection, SharedLadder, Tariff, TariffVersion, Tier, TimeOfUseCharge, TouPrices, Usage,
};
use crate::time::Window;

/// Keys that identify the record (mapped to the tariff's `name` and `source`, or provenance).
const IDENTITY: &[&str] = &[
    "label",
    "uri",
    "utility",
    "eiaid",
    "name",
    "source",
    "sourceparent",
    "country",
    "approved",
    "revisions",
    "is_default",
    "supersedes",
];

/// Keys that carry no price but describe the rate (eligibility, conditions, comments): kept on
/// the tariff as notes and shown on every bill as `not priced: …`.
const INFORMATIONAL: &[&str] = &[
    "sector",
    "description",
    "servicetype",
    "voltagecategory",
    "phasewiring",
    "basicinformationcomments",
    "energycomments",
    "demandcomments",
    "energyattrs",
    "demandattrs",
    "fixedattrs",
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
    "dgrules",
    "usenetmetering",
    "lookbackpercent",
    "lookbackrange",
    "lookbackmonths",
];

/// Keys whose feature is not supported but which have no effect when zero or empty (v7
/// per-month ratchet percentages, additional-meter charges).
const ZERO_ONLY: &[&str] = &["demandratchetpercentage", "fixedchargeeaaddl"];

/// URDB's "no limit" for a tier `max`: records carry 1e38 or its float32 rounding
/// 9.999999680285692e37; any `max` at or above 1e28 (beyond the decimal range) is unbounded.
const UNBOUNDED: f64 = 1e28;

/// How `$/day` fixed and minimum charges of an imported URDB record are counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DayCount {
    /// The billing period's actual local days (`per = "day"`): 31 × the rate in January, 28 in
    /// a February. The default: what a utility bills.
    #[default]
    Actual,
    /// 365/12 days in every month, as NREL PySAM's `URDBv8_to_ElectricityRates` does (the rate
    /// × 365 ÷ 12 becomes a per-period amount, rounded to 12 decimals).
    PySam,
}

/// One tariff of a document read by [`Tariff::many_from_any`]: its name (if it has one) and the
/// tariff, or why it could not be read.
pub type NamedTariff = (Option<String>, Result<Tariff>);

/// Options of [`Tariff::from_urdb_json_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct UrdbOptions {
    /// How `$/day` amounts are counted (default [`DayCount::Actual`]).
    pub day_count: DayCount,
    /// The tariff's [`Tariff::line_decimals`]: `None` rounds every line to the cent (a
    /// utility's bill); `Some(6)` keeps lines to 6 places and rounds only the totals, as close
    /// to PySAM (which does not round) as a bill in cents can be.
    pub line_decimals: Option<u32>,
}

impl UrdbOptions {
    /// NREL PySAM's conventions: `$/day` over 365/12 days, lines to 6 decimal places.
    pub fn pysam() -> Self {
        UrdbOptions { day_count: DayCount::PySam, line_decimals: Some(6) }
    }
}

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

/// A tier `max`: `None` when absent or at least [`UNBOUNDED`].
fn tier_max(v: &Value, field: &str) -> Result<Option<Decimal>> {
    if v.as_f64().is_some_and(|f| f >= UNBOUNDED) {
        return Ok(None);
    }
    dec(v, field).map(Some)
}

/// The tier basis of an energy tier `unit`.
fn energy_basis(val: &Value, field: &str) -> Result<Basis> {
    match val.as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("kwh") => Ok(Basis::Period),
        Some("kwh daily") => Ok(Basis::Day),
        Some("kwh/kw") => Ok(Basis::PerKw),
        Some("kwh/kw daily") => Ok(Basis::PerKwDay),
        Some(_) => {
            Err(unsupported(field, format!("the tier unit {val} is not kWh, kWh daily, kWh/kW or kWh/kW daily")))
        }
        None => Err(tariff_err(field, "The unit must be a string.")),
    }
}

/// One period's tiers: `(tiers, basis, has a sell rate)`. A tier whose `max` is absent or
/// unbounded ends the ladder (tiers after it could never be reached).
fn tiers(v: &Value, field: &str, energy: bool) -> Result<(Vec<Tier>, Basis, bool)> {
    let arr = v.as_array().ok_or_else(|| tariff_err(field, "A period must be an array of tiers."))?;
    if arr.is_empty() {
        return Err(tariff_err(field, "A period needs at least one tier."));
    }
    let mut out = Vec::new();
    let mut basis: Option<Basis> = None;
    let mut sells = false;
    for (i, t) in arr.iter().enumerate() {
        let tf = format!("{field}[{i}]");
        let o = t.as_object().ok_or_else(|| tariff_err(&tf, "A tier must be an object."))?;
        let mut rate = Decimal::ZERO;
        let mut max = None;
        let mut tier_basis = Basis::Period;
        for (k, val) in o {
            let kf = format!("{tf}.{k}");
            match k.as_str() {
                "rate" | "adj" => rate = crate::decimal::add(rate, dec(val, &kf)?)?,
                "max" => max = tier_max(val, &kf)?,
                "sell" if energy => sells |= !is_zero(val) && dec(val, &kf).is_ok(),
                "unit" if energy => tier_basis = energy_basis(val, &kf)?,
                "unit" => match val.as_str() {
                    Some(u) if u.eq_ignore_ascii_case("kW") => {}
                    Some(u) => return Err(unsupported(kf, format!("the demand unit '{u}' is not supported"))),
                    None => return Err(tariff_err(kf, "The unit must be a string.")),
                },
                _ => return Err(unsupported(kf, "unknown tier key")),
            }
        }
        if basis.is_some_and(|b| b != tier_basis) {
            return Err(unsupported(format!("{tf}.unit"), "tiers of one period mix units"));
        }
        basis = Some(tier_basis);
        let last = i + 1 == arr.len() || max.is_none();
        // The last tier is open-ended: units above its `max` are priced at its rate.
        out.push(Tier { up_to: if last { None } else { max }, rate: rate.normalize(), flat: None });
        if last {
            break;
        }
    }
    Ok((out, basis.unwrap_or_default(), sells))
}

fn structure(v: &Value, field: &str, energy: bool) -> Result<(Vec<PeriodPrice>, Basis, bool)> {
    let periods = v.as_array().ok_or_else(|| tariff_err(field, format!("`{field}` must be an array of periods.")))?;
    let mut out = Vec::new();
    let mut basis = None;
    let mut sells = false;
    for (p, tv) in periods.iter().enumerate() {
        let pf = format!("{field}[{p}]");
        let (ts, b, sell) = tiers(tv, &pf, energy)?;
        sells |= sell;
        if basis.is_some_and(|x| x != b) {
            return Err(unsupported(format!("{pf}[0].unit"), "periods mix tier units"));
        }
        basis = Some(b);
        out.push(if ts.len() == 1 {
            PeriodPrice { rate: Some(ts[0].rate), tiers: Vec::new() }
        } else {
            PeriodPrice { rate: None, tiers: ts }
        });
    }
    Ok((out, basis.unwrap_or_default(), sells))
}

/// The schedule and prices of a URDB TOU structure (`keys`: the structure and its weekday and
/// weekend schedules), its tier basis and whether it has sell rates; `None` when the record has
/// no such structure.
fn tou_prices(
    o: &serde_json::Map<String, Value>,
    keys: [&str; 3],
    energy: bool,
) -> Result<Option<(TouPrices, Basis, bool)>> {
    let [structure_key, weekday_key, weekend_key] = keys;
    let Some(sv) = o.get(structure_key) else { return Ok(None) };
    let (prices, basis, sells) = structure(sv, structure_key, energy)?;
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
    let mut periods = BTreeMap::new();
    periods.extend(names.into_iter().zip(prices)); // `extend`, not `collect`: see `metering_of`
    Ok(Some((TouPrices { schedule, periods }, basis, sells)))
}

/// The TOU energy charge (`energyratestructure`) and whether the structure has sell rates.
/// Tiers with the same limits in every period are one monthly ladder (`ladder`), as in PySAM
/// (which refuses periods with other limits; those keep a ladder per period here).
fn energy_charge(o: &serde_json::Map<String, Value>, ladder: SharedLadder) -> Result<(Option<Charge>, bool)> {
    let keys = ["energyratestructure", "energyweekdayschedule", "energyweekendschedule"];
    let Some((prices, basis, sells)) = tou_prices(o, keys, true)? else { return Ok((None, false)) };
    let limits = |p: &PeriodPrice| p.tiers.iter().map(|t| t.up_to).collect::<Vec<_>>();
    let mut all = prices.periods.values();
    let shared = all
        .next()
        .filter(|p| !p.tiers.is_empty())
        .is_some_and(|p0| prices.periods.len() > 1 && all.all(|p| limits(p) == limits(p0)));
    let charge = Charge::TimeOfUse(TimeOfUseCharge {
        id: "energy".into(),
        description: Some("Energy".into()),
        usage: Usage { unit: Some("kWh".into()), ..Usage::default() },
        prices,
        tier_basis: (basis != Basis::Period).then_some(basis),
        shared_ladder: shared.then_some(ladder),
    });
    Ok((Some(charge), sells))
}

/// A demand charge named `id` priced by `price`, with the record's demand interval.
fn demand_charge(id: String, description: &str, price: DemandPrice, window: Option<u32>) -> Charge {
    Charge::Demand(DemandCharge {
        id,
        description: Some(description.into()),
        select: Selection::default(),
        unit: Some("kW".into()),
        price,
        interval_minutes: window,
        per: None,
    })
}

fn date_of(v: &Value, field: &str) -> Result<chrono::NaiveDate> {
    let s = v.as_i64().ok_or_else(|| tariff_err(field, format!("`{field}` must be Unix seconds.")))?;
    DateTime::from_timestamp(s, 0)
        .map(|t| t.date_naive())
        .ok_or_else(|| tariff_err(field, format!("`{field}` is out of range.")))
}

/// The record of a URDB document: the object itself, or the one item of an API response.
fn record_of(v: &Value) -> Result<&serde_json::Map<String, Value>> {
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
    record.as_object().ok_or_else(|| tariff_err("items[0]", "A URDB rate must be a JSON object."))
}

/// An informational value as note text (strings as they are, anything else as JSON).
fn note_of(key: &str, v: &Value) -> String {
    match v {
        Value::String(s) => format!("{key}: {s}"),
        other => format!("{key}: {other}"),
    }
}

/// How PySAM splits a month's energy between TOU periods and tiers under the record's metering
/// rule: pro rata under net metering (the default rule, SSC's monthly `ur_calc`), in time order
/// under net billing and buy-all-sell-all (SSC's per-timestep `ur_calc_timestep`).
fn shared_ladder_of(o: &serde_json::Map<String, Value>) -> SharedLadder {
    match (o.get("dgrules").and_then(Value::as_str), o.get("usenetmetering")) {
        (Some("Net Metering"), _) | (None, None | Some(Value::Bool(true))) => SharedLadder::ProRata,
        _ => SharedLadder::TimeOrder,
    }
}

/// The metering rule (`dgrules`, or v7 `usenetmetering`); PySAM's converter assumes net metering
/// when the record has none. Refuses unknown rules.
fn metering_rule(o: &serde_json::Map<String, Value>) -> Result<MeteringRule> {
    const RULES: [(&str, MeteringRule); 4] = [
        ("Net Metering", MeteringRule::NetMetering),
        ("Net Billing Instantaneous", MeteringRule::NetBillingInstantaneous),
        ("Net Billing Hourly", MeteringRule::NetBillingHourly),
        ("Buy All Sell All", MeteringRule::BuyAllSellAll),
    ];
    match (o.get("dgrules"), o.get("usenetmetering")) {
        (Some(Value::String(r)), _) if RULES.iter().any(|(n, _)| n == r) => {
            Ok(RULES.iter().find(|(n, _)| n == r).map_or(MeteringRule::NetMetering, |x| x.1))
        }
        (Some(r), _) => {
            let names: Vec<&str> = RULES.iter().map(|x| x.0).collect();
            Err(unsupported("dgrules", format!("the rule {r} is not one of {}", names.join(", "))))
        }
        (None, Some(Value::Bool(true)) | None) => Ok(MeteringRule::NetMetering),
        (None, Some(Value::Bool(false))) => Ok(MeteringRule::NetBillingInstantaneous),
        (None, Some(u)) => Err(tariff_err("usenetmetering", format!("`usenetmetering` must be a boolean, not {u}."))),
    }
}

/// The sell price of each period of `energyratestructure`: one rate when its tiers share it (a
/// tier's `sell`, 0 when absent), else the tiers with their limits and sell rates (kept; billing
/// exports in that period is refused, see [`Metering::sell_at`]).
fn sell_prices(o: &serde_json::Map<String, Value>, energy: &TimeOfUseCharge) -> Result<Vec<PeriodPrice>> {
    let Some(Value::Array(periods)) = o.get("energyratestructure") else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (p, tiers) in periods.iter().enumerate() {
        let mut sells = Vec::new();
        for (t, tier) in tiers.as_array().into_iter().flatten().enumerate() {
            let f = format!("energyratestructure[{p}][{t}].sell");
            sells.push(match tier.get("sell") {
                Some(v) => dec(v, &f)?.normalize(),
                None => Decimal::ZERO,
            });
        }
        let buy = energy.prices.periods.get(&format!("p{p}"));
        let price = match (sells.first(), buy) {
            (Some(&first), Some(b)) if sells.iter().any(|&x| x != first) && !b.tiers.is_empty() => {
                let tiers =
                    b.tiers.iter().zip(&sells).map(|(t, &rate)| Tier { up_to: t.up_to, rate, flat: None }).collect();
                PeriodPrice { rate: None, tiers }
            }
            (first, _) => PeriodPrice { rate: Some(first.copied().unwrap_or_default()), tiers: Vec::new() },
        };
        out.push(price);
    }
    Ok(out)
}

/// The ratchet of `lookbackpercent` (a fraction: 0.8 = 80 %), `lookbackrange` (months) and
/// `lookbackmonths`, as PySAM's converter sets it up: when any month of `lookbackmonths` is true
/// (or it is absent) the percentage applies in every month — the converter's rows are one
/// aliased list (`[[0, 0]] * 12`). `None` without a non-zero `lookbackpercent`.
///
/// Refused (naming the key) where PySAM cannot price the record or bills no demand at all: a
/// percentage without `lookbackrange`, a `lookbackrange` without a percentage, or
/// `lookbackmonths` with no month set.
fn ratchet_of(o: &serde_json::Map<String, Value>) -> Result<Option<Ratchet>> {
    let pct = o.get("lookbackpercent").filter(|v| !is_zero(v));
    let range = o.get("lookbackrange").filter(|v| !is_zero(v));
    let Some(pct) = pct else {
        return match range {
            Some(_) => Err(unsupported("lookbackrange", "a lookback range without `lookbackpercent`")),
            None => Ok(None),
        };
    };
    let percent = dec(pct, "lookbackpercent")?
        .checked_mul(Decimal::ONE_HUNDRED)
        .ok_or_else(|| Error::overflow("lookbackpercent"))?;
    let months = match o.get("lookbackrange") {
        Some(v) => v
            .as_u64()
            .filter(|m| *m <= 12)
            .ok_or_else(|| tariff_err("lookbackrange", "`lookbackrange` is a number of months from 0 to 12."))?,
        None => {
            return Err(unsupported(
                "lookbackpercent",
                "a ratchet without `lookbackrange` (PySAM cannot price it either)",
            ))
        }
    };
    if let Some(m) = o.get("lookbackmonths") {
        let set = m.as_array().ok_or_else(|| tariff_err("lookbackmonths", "`lookbackmonths` is 12 booleans."))?;
        if !set.iter().any(|b| b.as_bool() == Some(true) || b.as_i64().is_some_and(|n| n != 0)) {
            return Err(unsupported("lookbackmonths", "a ratchet in no month (PySAM then bills no demand at all)"));
        }
    }
    Ok(Some(Ratchet { percent: percent.normalize(), months: u32::try_from(months).unwrap_or(12) }))
}

/// The tariff's metering block: the rule, and the energy charge's schedule with a sell rate per
/// period. `None` when the record has no energy charge (exports cannot be billed).
fn metering_of(o: &serde_json::Map<String, Value>, charges: &[Charge]) -> Result<Option<Metering>> {
    let rule = metering_rule(o)?;
    let Some(Charge::TimeOfUse(energy)) = charges.iter().find(|c| c.id() == "energy") else { return Ok(None) };
    let sells = sell_prices(o, energy)?;
    let schedule = energy.prices.schedule.clone();
    let zero = || PeriodPrice { rate: Some(Decimal::ZERO), tiers: Vec::new() };
    // `extend`, not `collect`: a collected map sorts through a copy of the stable sort of its own
    // (≈ 4 KB in the mobile library); keys are unique here, the maps are the same.
    let mut sell = BTreeMap::new();
    sell.extend(
        schedule.periods.iter().enumerate().map(|(i, n)| (n.clone(), sells.get(i).cloned().unwrap_or_else(zero))),
    );
    Ok(Some(Metering { rule, energy_charge: energy.id.clone(), schedule: Some(schedule), sell, year_end_rate: None }))
}

/// `amount` per `$/day`, `$/month` or `$/year` as `(amount, per)` of a fixed or minimum charge
/// with a monthly cycle: `$/year` is a twelfth per period; `$/day` per local day, or × 365/12
/// per period with [`DayCount::PySam`].
fn per_unit_amount(amount: Decimal, units: &str, field: &str, opts: UrdbOptions) -> Result<(Decimal, Per)> {
    let twelfth = |x: Decimal| -> Result<Decimal> {
        x.checked_div(Decimal::from(12)).map(|d| d.round_dp(12)).ok_or_else(|| Error::overflow(field))
    };
    match units {
        "$/month" => Ok((amount, Per::Period)),
        "$/year" => Ok((twelfth(amount)?, Per::Period)),
        "$/day" if opts.day_count == DayCount::PySam => {
            let year = amount.checked_mul(Decimal::from(365)).ok_or_else(|| Error::overflow(field))?;
            Ok((twelfth(year)?, Per::Period))
        }
        "$/day" => Ok((amount, Per::Day)),
        u => Err(unsupported(field, format!("the unit '{u}' is not $/month, $/day or $/year"))),
    }
}

fn demand_window(o: &serde_json::Map<String, Value>) -> Result<Option<u32>> {
    match o.get("demandwindow") {
        None => Ok(None),
        Some(w) => match w.as_u64() {
            Some(m @ (5 | 10 | 15 | 30 | 60)) => Ok(Some(m as u32)),
            _ => Err(unsupported("demandwindow", format!("the window {w} is not 5, 10, 15, 30 or 60 minutes"))),
        },
    }
}

fn flat_demand(o: &serde_json::Map<String, Value>, window: Option<u32>, charges: &mut Vec<Charge>) -> Result<()> {
    let Some(sv) = o.get("flatdemandstructure") else { return Ok(()) };
    let (prices, _, _) = structure(sv, "flatdemandstructure", false)?;
    let months: Vec<usize> =
        match o.get("flatdemandmonths") {
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
        let price = match price.rate {
            Some(rate) => DemandPrice::Rate(rate),
            None => DemandPrice::Tiers(price.tiers),
        };
        let mut c = demand_charge(format!("flat_demand_{k}"), "Demand", price, window);
        if let (Charge::Demand(d), true) = (&mut c, ms.len() < 12) {
            d.select.months = ms;
        }
        charges.push(c);
    }
    Ok(())
}

fn fixed(id: &str, description: &str, amount: Decimal, per: Per) -> Charge {
    let description = Some(description.to_string());
    Charge::Fixed(FixedCharge { id: id.into(), description, unit: None, amount, per: Some(per) })
}

fn fixed_and_minimum(o: &serde_json::Map<String, Value>, opts: UrdbOptions, charges: &mut Vec<Charge>) -> Result<()> {
    let money = |k: &str| o.get(k).map(|v| dec(v, k)).transpose();
    let units = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("$/month");
    if let Some(amount) = money("fixedchargefirstmeter")? {
        let (amount, per) = per_unit_amount(amount, units("fixedchargeunits"), "fixedchargeunits", opts)?;
        charges.push(fixed("fixed", "Fixed charge", amount, per));
    }
    if let Some(amount) = money("fixedmonthlycharge")? {
        charges.push(fixed("fixed_monthly", "Fixed monthly charge", amount, Per::Period));
    }
    let mut minimum = |id: &str, desc: &str, amount: Decimal, per: Per| {
        let description = Some(desc.to_string());
        charges.push(Charge::Minimum(MinimumCharge { id: id.into(), description, amount, per: Some(per) }));
    };
    if let Some(amount) = money("mincharge")? {
        if units("minchargeunits") != "$/year" {
            let (amount, per) = per_unit_amount(amount, units("minchargeunits"), "minchargeunits", opts)?;
            minimum("minimum", "Minimum charge top-up", amount, per);
        }
    }
    if let Some(amount) = money("minmonthlycharge")? {
        minimum("minimum_monthly", "Minimum monthly charge top-up", amount, Per::Period);
    }
    Ok(())
}

/// The annual minimum with its year-end true-up: `mincharge` in `$/year` (PySAM's
/// `ur_annual_min_charge`), else v7 `annualmincharge` (which PySAM's converter ignores).
fn annual_minimum_of(o: &serde_json::Map<String, Value>) -> Result<Option<Decimal>> {
    let yearly = o.get("minchargeunits").and_then(Value::as_str) == Some("$/year");
    match (o.get("mincharge"), o.get("annualmincharge")) {
        (Some(v), _) if yearly => Ok(Some(dec(v, "mincharge")?)),
        (_, Some(v)) => Ok(Some(dec(v, "annualmincharge")?)),
        _ => Ok(None),
    }
}

pub(crate) fn from_urdb_value(v: &Value) -> Result<Tariff> {
    from_urdb_value_with(v, UrdbOptions::default())
}

/// A URDB record as a checked [`Tariff`], in stages: the keys ([`urdb_keys`]), the charges
/// ([`urdb_charges`]), then the tariff around them (dates, source, USD, monthly cycle).
pub(crate) fn from_urdb_value_with(v: &Value, opts: UrdbOptions) -> Result<Tariff> {
    let o = record_of(v)?;
    let notes = urdb_keys(o)?;
    let charges = urdb_charges(o, opts)?;
    let metering = metering_of(o, &charges)?;
    let ratchet = ratchet_of(o)?;
    let annual_minimum = annual_minimum_of(o)?;
    let effective_from = o.get("startdate").map(|v| date_of(v, "startdate")).transpose()?;
    let valid_until = o.get("enddate").map(|v| date_of(v, "enddate")).transpose()?;
    let t = Tariff {
        name: o.get("name").and_then(Value::as_str).map(str::to_string),
        source: Some(source_of(o)),
        currency: "USD".into(),
        minor_units: None,
        rounding: Rounding::HalfUp,
        line_decimals: opts.line_decimals,
        time_zone: None,
        billing_cycle: Window::Month,
        valid_until,
        charges: Vec::new(),
        versions: vec![TariffVersion { effective_from, charges }],
        notes,
        metering,
        ratchet,
        annual_minimum,
    };
    t.check()?;
    Ok(t)
}

/// Every key of the record is known: informational keys become notes (when not zero), identity
/// and mapped keys pass, zero-only keys must be zero, and the demand units must be kW; anything
/// else is an unsupported-feature error naming the key. Returns the notes, with the metering note.
fn urdb_keys(o: &serde_json::Map<String, Value>) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for (k, val) in o {
        let k = k.as_str();
        if INFORMATIONAL.contains(&k) {
            if !is_zero(val) {
                notes.push(note_of(k, val));
            }
            continue;
        }
        if IDENTITY.contains(&k) || MAPPED.contains(&k) || (ZERO_ONLY.contains(&k) && is_zero(val)) {
            continue;
        }
        return Err(unsupported(k, "the importer does not model it"));
    }
    for k in ["demandunits", "demandrateunit", "flatdemandunit"] {
        if let Some(u) = o.get(k) {
            if !u.as_str().is_some_and(|u| u.eq_ignore_ascii_case("kW")) {
                return Err(unsupported(k, format!("the unit {u} is not kW")));
            }
        }
    }
    metering_rule(o)?;
    Ok(notes)
}

/// The charges of a URDB record in rating order: fixed charges, energy (TOU), TOU demand, flat
/// demand, then the minimums (rated last whatever their position). A record with none is an error.
fn urdb_charges(o: &serde_json::Map<String, Value>, opts: UrdbOptions) -> Result<Vec<Charge>> {
    let mut charges = Vec::new();
    fixed_and_minimum(o, opts, &mut charges)?;
    let (energy, _sells) = energy_charge(o, shared_ladder_of(o))?;
    before_minimums(&mut charges, energy);
    let window = demand_window(o)?;
    let mut demand = Vec::new();
    let keys = ["demandratestructure", "demandweekdayschedule", "demandweekendschedule"];
    if let Some((prices, _, _)) = tou_prices(o, keys, false)? {
        demand.push(demand_charge("demand".into(), "TOU demand", DemandPrice::TimeOfUse(prices), window));
    }
    flat_demand(o, window, &mut demand)?;
    before_minimums(&mut charges, demand);
    if charges.is_empty() {
        return Err(tariff_err("energyratestructure", "The URDB rate has no charge the importer can map."));
    }
    Ok(charges)
}

/// Insert `more` before the first minimum charge (minimums are rated last).
fn before_minimums(charges: &mut Vec<Charge>, more: impl IntoIterator<Item = Charge>) {
    let at = charges.iter().position(|c| matches!(c, Charge::Minimum(_))).unwrap_or(charges.len());
    charges.splice(at..at, more);
}

/// The tariff's `source`: the rate's label and URI where the record has them.
fn source_of(o: &serde_json::Map<String, Value>) -> String {
    let str_of = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    match (str_of("label"), str_of("uri")) {
        (Some(l), Some(u)) => format!("OpenEI URDB rate {l} ({u})"),
        (Some(l), None) => format!("OpenEI URDB rate {l}"),
        (None, Some(u)) => format!("OpenEI URDB ({u})"),
        (None, None) => "OpenEI URDB".to_string(),
    }
}

/// Every rate of a URDB document: the `items` of an API response (any number), or the one
/// record. Each entry is the rate's name (or label, or `items[i]`) and its import result.
pub(crate) fn urdb_items(v: &Value, opts: UrdbOptions) -> Vec<(String, Result<Tariff>)> {
    let items: Vec<&Value> = match v.get("items") {
        Some(Value::Array(items)) => items.iter().collect(),
        _ => vec![v],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let name = ["name", "label"]
                .iter()
                .find_map(|k| item.get(*k).and_then(Value::as_str))
                .map_or_else(|| format!("items[{i}]"), str::to_string);
            (name, from_urdb_value_with(item, opts))
        })
        .collect()
}

impl Tariff {
    /// Import an OpenEI URDB rate (v7 or v8 field names): one rate object, or an API response
    /// `{"items":[rate]}` with exactly one item. Prices are in USD, rounded half-up to cents;
    /// `startdate` becomes the version's `effective_from` and `enddate` the `valid_until` (UTC
    /// dates); descriptive fields (`energyattrs`, comments, capacity ranges, `dgrules`…) become
    /// [`Tariff::notes`]. `$/day` amounts count the billing period's actual days
    /// ([`DayCount::Actual`]; see [`Tariff::from_urdb_json_with`]). The mapping of each field is
    /// in `docs/tariffs.md`.
    ///
    /// # Errors
    /// [`ErrorKind::Parse`] for malformed JSON or a repeated key; [`ErrorKind::Tariff`] naming the field for a field
    /// or unit that would change the price and that the importer does not model (ratchets
    /// `lookbackpercent`/`lookbackrange`, coincident demand, unknown keys and units) or an
    /// inconsistent record.
    pub fn from_urdb_json(text: &str) -> Result<Tariff> {
        Tariff::from_urdb_json_with(text, UrdbOptions::default())
    }

    /// [`Tariff::from_urdb_json`] with options: `UrdbOptions { day_count: DayCount::PySam }`
    /// counts `$/day` amounts over 365/12 days every month, as NREL PySAM does.
    ///
    /// # Errors
    /// As [`Tariff::from_urdb_json`].
    pub fn from_urdb_json_with(text: &str, opts: UrdbOptions) -> Result<Tariff> {
        from_urdb_value_with(&parse(text)?, opts)
    }

    /// Every tariff of a document: a JSON array of meterkit or URDB tariffs, a URDB response
    /// with any number of `items`, or one tariff (TOML, meterkit JSON or URDB, as
    /// [`Tariff::from_any`]). Each entry is `(name, result)`: the tariff's `name` (URDB `name`
    /// or `label`), else `"[i]"`; a rate that cannot be imported keeps its error, so one bad
    /// rate does not hide the others.
    ///
    /// # Errors
    /// [`ErrorKind::Parse`] when the text is not valid JSON/TOML at all.
    pub fn many_from_any(text: &str, opts: UrdbOptions) -> Result<Vec<NamedTariff>> {
        let trimmed = text.trim_start();
        if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
            let t = Tariff::from_toml(text);
            return Ok(vec![(t.as_ref().ok().and_then(|t| t.name.clone()), t)]);
        }
        let v = parse(text)?;
        let one = |v: &Value| -> Vec<NamedTariff> {
            if looks_like_urdb(v) {
                urdb_items(v, opts).into_iter().map(|(n, t)| (Some(n), t)).collect()
            } else {
                let t = serde_json::from_value::<Tariff>(v.clone())
                    .map_err(|e| Error::new(ErrorKind::Parse, format!("The tariff JSON is invalid: {e}")))
                    .and_then(Tariff::normalized);
                vec![(t.as_ref().ok().and_then(|t| t.name.clone()), t)]
            }
        };
        Ok(match &v {
            Value::Array(items) => items.iter().flat_map(one).collect(),
            other => one(other),
        })
    }
}

fn parse(text: &str) -> Result<Value> {
    crate::tariff::check_tariff_json(text)?;
    serde_json::from_str(text)
        .map_err(|e| Error::new(ErrorKind::Parse, format!("The URDB JSON is invalid: {e}")).with_line(e.line() as u64))
}

#[cfg(test)]
#[path = "urdb_tests.rs"]
mod tests;
