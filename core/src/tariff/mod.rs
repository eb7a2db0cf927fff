//! Tariffs: price documents (data, not code) read from TOML, JSON or OpenEI URDB JSON.
//!
//! A [`Tariff`] holds a currency, a rounding mode, a billing cycle and one or more versions
//! ([`TariffVersion`]) of [`Charge`]s. [`Tariff::bill`](crate::Tariff::bill) turns usage records
//! into a [`Bill`](crate::Bill). The long-form rules (`docs/tariffs.md`) are rendered on
//! [`Tariff`].
//!
//! Where the `impl Tariff` blocks live (the document's own methods here; rating in `billing`,
//! which imports `tariff`, so that the tariff module never depends on bills):
//!
//! | file | methods |
//! |---|---|
//! | `tariff/mod.rs` | reading (`from_toml`, `from_json`, `from_any`), `check`, `into_checked`, `minor_units`, `versions`, `metrics` |
//! | `tariff/urdb.rs` | the OpenEI URDB importer (`from_urdb_json`, `from_urdb_json_with`, `many_from_any`) |
//! | `billing/mod.rs` | rating: `bill` (and its stages), `quantity_rater` |
//! | `billing/compare.rs` | `compare` (one load under many tariffs) |
//!
//! A [`Charge`] is a tagged enum with one struct per [`ChargeKind`] (`tariff/charge.rs`): the keys
//! a kind takes are its struct's fields. A document is read into its wire form (`TariffDoc`, with
//! each charge a flat `ChargeDoc`; unknown keys are refused there, with the TOML line), then each
//! charge is shaped into its kind — a key the kind does not take, or one it needs and lacks, is an
//! error naming the field path (`versions[0].charges[2].rate`) — and finally [`Tariff::check`]
//! checks the values.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::time::{parse_time_zone, Window};

mod charge;
pub mod metering;
pub mod ratchet;
pub mod urdb;

/// The document forms of a demand charge's `rate` and `tiers`, for the generated TypeScript types.
#[cfg(feature = "ts")]
#[doc(hidden)]
pub use charge::doc::{DemandRate, DemandTiers};
use charge::ChargeDoc;
pub use charge::{
    AllowanceCharge, Charge, DemandCharge, DemandPrice, FixedCharge, MinimumCharge, PackageCharge, PerUnitCharge,
    PercentageCharge, Selection, TieredCharge, TimeOfUseCharge, TouPrices, Usage,
};

/// The most decimal places a price (rate, tier price, fixed amount, percentage) may carry.
pub const MAX_PRICE_DECIMALS: u32 = 12;

/// How amounts are rounded to the currency's minor unit.
///
/// The default is [`Rounding::HalfUp`] (0.125 → 0.13), the rule of most utility and VAT
/// regulations; [`Rounding::HalfEven`] (banker's rounding, 0.125 → 0.12) is available.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Halves away from zero (0.125 → 0.13, -0.125 → -0.13).
    #[default]
    HalfUp,
    /// Halves to the even neighbour (0.125 → 0.12, 0.135 → 0.14).
    HalfEven,
}

crate::error::enum_names!(Rounding, "rounding", [HalfUp = "half_up", HalfEven = "half_even",]);

impl Rounding {
    pub(crate) fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
        }
    }

    /// Round `d` (scale > `dp`) to `dp` places: on the 64-bit mantissa when it fits (the hot path
    /// of rating), else with rust_decimal's rounding. Both give the same result.
    fn round_down_scale(self, d: Decimal, dp: u32) -> Decimal {
        let m = d.mantissa();
        let shift = d.scale() - dp;
        if let (Ok(a), true) = (u64::try_from(m.unsigned_abs()), shift <= 19) {
            let div = 10u64.pow(shift);
            let (mut q, r) = (a / div, a % div);
            let up = match self {
                Rounding::HalfUp => r >= div - r,
                Rounding::HalfEven => r > div - r || (r == div - r && q % 2 == 1),
            };
            q += u64::from(up);
            let signed = if m < 0 { -i128::from(q) } else { i128::from(q) };
            if let Ok(v) = Decimal::try_from_i128_with_scale(signed, dp) {
                return v;
            }
        }
        d.round_dp_with_strategy(dp, self.strategy())
    }

    /// `d` rounded to `dp` decimal places and written with exactly `dp` places (`5` → `5.00`).
    ///
    /// # Errors
    /// [`ErrorKind::Overflow`] when the value cannot carry `dp` decimal places within the 96-bit
    /// decimal range (above about 7.9 × 10²⁶ with 2 places).
    pub fn round(self, d: Decimal, dp: u32) -> Result<Decimal> {
        let mut r = if d.scale() <= dp { d } else { self.round_down_scale(d, dp) };
        r.rescale(dp);
        if r.scale() != dp {
            return Err(Error::overflow("An amount in minor units"));
        }
        if r.is_zero() {
            r.set_sign_positive(true);
        }
        Ok(r)
    }
}

/// How a converted quantity (`divide_by`) is rounded to whole units.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantityRounding {
    /// Up to the next whole unit (Stripe's `round: up`; 1.2 GB → 2 GB). The default.
    #[default]
    Up,
    /// Down to the whole unit below (1.8 GB → 1 GB).
    Down,
    /// To the nearest whole unit, halves up.
    HalfUp,
    /// To the nearest whole unit, halves to even.
    HalfEven,
}

crate::error::enum_names!(
    QuantityRounding,
    "quantity rounding",
    [Up = "up", Down = "down", HalfUp = "half_up", HalfEven = "half_even",]
);

impl QuantityRounding {
    pub(crate) fn strategy(self) -> RoundingStrategy {
        match self {
            QuantityRounding::Up => RoundingStrategy::ToPositiveInfinity,
            QuantityRounding::Down => RoundingStrategy::ToNegativeInfinity,
            QuantityRounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            QuantityRounding::HalfEven => RoundingStrategy::MidpointNearestEven,
        }
    }
}

/// The kind of a [`Charge`] (its `type` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ChargeKind {
    /// `amount` per billing period (`per = "period"`, prorated by days for partial periods) or
    /// per local day (`per = "day"`, a standing charge).
    Fixed,
    /// `rate` per unit.
    PerUnit,
    /// Each unit at the rate of the tier it falls in (`tiers`).
    Graduated,
    /// Every unit at the rate of the tier the period's total reaches (`tiers`).
    Volume,
    /// `rate` per started block of `package_size` units, after `free_units`.
    Package,
    /// `included` units deducted (in time order) before the other charges on the metric.
    Allowance,
    /// A rate or tiers per period of a `schedule` (`periods`).
    TimeOfUse,
    /// Peak average power (kW) in the billing period, priced per kW (`rate` or `tiers`), or per
    /// TOU period with a `schedule` and `periods`; with `per = "month"`, one peak per local
    /// calendar month of the bill.
    Demand,
    /// The bill is topped up to `amount` per period, per day or per year (`per`).
    Minimum,
    /// `percent` of the subtotal or of the lines of the charges in `applies_to`; a tax when `tax`.
    Percentage,
}

crate::error::enum_names!(
    ChargeKind,
    "charge type",
    [
        Fixed = "fixed",
        PerUnit = "per_unit",
        Graduated = "graduated",
        Volume = "volume",
        Package = "package",
        Allowance = "allowance",
        TimeOfUse = "time_of_use",
        Demand = "demand",
        Minimum = "minimum",
        Percentage = "percentage",
    ]
);

/// What a fixed or minimum amount is for.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// One billing period (prorated by days when a bill covers part of one).
    Period,
    /// One local calendar day.
    Day,
    /// One year (minimum only): each bill carries `amount × days ÷ days in that year`.
    Year,
    /// One local calendar month (demand only): a separate peak for each month of the bill.
    Month,
}

crate::error::enum_names!(Per, "per", [Period = "period", Day = "day", Year = "year", Month = "month",]);

/// Whether tier limits (and allowances) hold per billing period or per day.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Limits are per billing period.
    #[default]
    Period,
    /// Limits are per day and multiplied by the days in the billing period (utilities'
    /// "kWh daily" baseline tiers).
    Day,
    /// Limits are per kW of the billing period's peak demand (URDB `kWh/kW`): multiplied by the
    /// largest hourly sum (kWh in a local clock hour = average kW) of the charge's records in
    /// the bill.
    PerKw,
    /// Limits are per kW of peak demand per day (URDB `kWh/kW daily`): multiplied by the peak
    /// (as [`Basis::PerKw`]) and by the days in the billing period.
    PerKwDay,
}

crate::error::enum_names!(
    Basis,
    "tier basis",
    [Period = "period", Day = "day", PerKw = "per_kw", PerKwDay = "per_kw_day",]
);

/// One tier of a graduated, volume or demand price.
///
/// Tier `i` covers quantities in `(up_to[i-1], up_to[i]]` (the first tier starts above 0); the
/// last tier must leave `up_to` out and is open-ended.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Upper bound of the tier (inclusive), in the charge's unit; absent on the last tier.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(optional, type = "DecimalString"))]
    pub up_to: Option<Decimal>,
    /// Price per unit in the tier, in the currency's major unit (up to 12 decimals).
    #[serde(with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub rate: Decimal,
    /// Flat fee charged once when usage reaches the tier (graduated and volume only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(optional, type = "DecimalString"))]
    pub flat: Option<Decimal>,
}

/// A rate or tiers for one time-of-use (or demand) period.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodPrice {
    /// Price per unit (exclusive with `tiers`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(optional, type = "DecimalString"))]
    pub rate: Option<Decimal>,
    /// Graduated tiers (exclusive with `rate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Vec<Tier>>", optional))]
    pub tiers: Vec<Tier>,
}

/// A time-of-use schedule: for each month (12 rows, January first; or 1 row for every month)
/// and for weekdays and weekends, 24 hourly period indexes (0-based, into `periods`).
/// Holidays are local dates treated as weekend days. Evaluated at each record's timestamp in
/// the tariff's `time_zone` (the bill's zone when the tariff has none).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Period names; the grids hold indexes into this list.
    pub periods: Vec<String>,
    /// Monday–Friday grid: 12 (or 1) rows of 24 period indexes.
    pub weekday: Vec<Vec<u8>>,
    /// Saturday, Sunday and holiday grid; the weekday grid when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Vec<Vec<u8>>>", optional))]
    pub weekend: Vec<Vec<u8>>,
    /// Local dates treated as weekend days (`"2024-12-25"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Vec<String>>", optional))]
    pub holidays: Vec<NaiveDate>,
}

impl Schedule {
    /// Period index for local month `month0` (0–11), a weekend/holiday flag and local hour (0–23).
    pub(crate) fn period_at(&self, month0: u32, weekend: bool, hour: u32) -> usize {
        let grid = if weekend && !self.weekend.is_empty() { &self.weekend } else { &self.weekday };
        let row = if grid.len() == 1 { &grid[0] } else { &grid[month0 as usize] };
        usize::from(row[hour as usize])
    }

    pub(crate) fn check(&self, field: &str) -> Result<()> {
        if self.periods.is_empty() {
            return Err(tariff_err(format!("{field}.periods"), "A schedule needs at least one period name."));
        }
        let mut names = BTreeSet::new();
        for p in &self.periods {
            if !names.insert(p) {
                return Err(tariff_err(format!("{field}.periods"), format!("The period name '{p}' is repeated.")));
            }
        }
        for (name, grid) in [("weekday", &self.weekday), ("weekend", &self.weekend)] {
            if name == "weekend" && grid.is_empty() {
                continue;
            }
            if grid.len() != 12 && grid.len() != 1 {
                return Err(tariff_err(
                    format!("{field}.{name}"),
                    format!("A schedule grid has 12 month rows (or 1 for every month), not {}.", grid.len()),
                ));
            }
            for (m, row) in grid.iter().enumerate() {
                if row.len() != 24 {
                    return Err(tariff_err(
                        format!("{field}.{name}[{m}]"),
                        format!("A schedule row has 24 hourly entries, not {}.", row.len()),
                    ));
                }
                if let Some(&bad) = row.iter().find(|&&p| usize::from(p) >= self.periods.len()) {
                    return Err(tariff_err(
                        format!("{field}.{name}[{m}]"),
                        format!("Period index {bad} is out of range (there are {} periods).", self.periods.len()),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How the units of a `time_of_use` charge with a shared ladder ([`TimeOfUseCharge::shared_ladder`])
/// are split between its periods and tiers.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharedLadder {
    /// The records fill the ladder in time order (PySAM's hourly net billing and buy-all-sell-all).
    TimeOrder,
    /// Each period takes its share (its units ÷ all units) of every tier's slice of the total
    /// (PySAM's monthly net metering: SSC `ur_calc`, "prorate based on total net per period").
    ProRata,
}

crate::error::enum_names!(SharedLadder, "shared ladder", [TimeOrder = "time_order", ProRata = "pro_rata",]);

/// The prices in effect from a local date on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct TariffVersion {
    /// First local date (in the bill's zone) the version applies; `None` only on the first
    /// version, meaning "always".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_from: Option<NaiveDate>,
    /// The charges, applied in order (allowances first, percentages and minimums last).
    pub charges: Vec<Charge>,
}

/// A tariff document (see the module documentation for the rules).
///
/// TOML:
/// ```
/// let t = meterkit::Tariff::from_toml(r#"
///     currency = "GBP"
///     [[charges]]
///     id = "energy"
///     type = "per_unit"
///     rate = "0.245"
///     unit = "kWh"
/// "#)?;
/// assert_eq!(t.minor_units()?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
#[doc = include_str!("../../../docs/tariffs.md")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "TariffDocument"))]
#[serde(try_from = "TariffDoc")]
pub struct Tariff {
    /// Name of the tariff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the prices come from (a published source), or a note that they are illustrative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// ISO 4217 code: JPY (0 minor digits), USD, GBP, EUR, INR (2), KWD (3); others need
    /// `minor_units`.
    pub currency: String,
    /// Minor-unit digits, overriding the built-in table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor_units: Option<u32>,
    /// Rounding of every bill line to the minor unit (default `half_up`).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub rounding: Rounding,
    /// Decimal places of each bill line's amount (default: the currency's minor units). More
    /// places (up to 12) keep lines nearly exact — as NREL PySAM, which does not round — and only
    /// the bill's subtotal, taxes and total are rounded to the minor unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_decimals: Option<u32>,
    /// IANA zone of time-of-use schedules and months (default: the bill's zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Billing cycle that `per = "period"` amounts refer to: `month` (default) or `cycle:DAY`.
    #[serde(default = "default_cycle")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub billing_cycle: Window,
    /// Last local date the tariff is valid (bills ending later are refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
    /// Charges of a tariff with one version (exclusive with `versions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charges: Vec<Charge>,
    /// Versions by `effective_from`, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<TariffVersion>,
    /// Conditions of the published tariff that are not priced (an imported URDB record's
    /// `energyattrs`, comments, eligibility ranges, metering rule…): each becomes a zero line
    /// `not priced: …` (charge `note`) at the end of every bill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// How exported energy (records with `direction = "export"`) is netted and credited: the
    /// metering rule and sell rates (see [`metering::Metering`]). Without it the `direction`
    /// dimension is not read and every record is usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub metering: Option<metering::Metering>,
    /// A demand ratchet: demand charges price a percentage of the largest monthly peak of a
    /// lookback window (see [`ratchet::Ratchet`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub ratchet: Option<ratchet::Ratchet>,
    /// A year-end true-up, in the major unit: when the bills of a year priced in order
    /// (`Tariff::compare`; each bill before its minimums, counted as 0 when in credit) total
    /// less, the December bill is topped up by the difference (SAM/PySAM's
    /// `ur_annual_min_charge`; URDB `mincharge` in `$/year`, v7 `annualmincharge`). A single
    /// bill has no earlier months: only a December bill is topped up, against itself.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(optional, type = "DecimalString"))]
    pub annual_minimum: Option<Decimal>,
}

fn default_cycle() -> Window {
    Window::Month
}

/// A tariff document as written: [`Tariff`]'s keys with each charge in its flat wire form
/// ([`ChargeDoc`]). [`TariffDoc::read`] shapes the charges into their kinds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TariffDoc {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    source: Option<String>,
    currency: String,
    #[serde(default)]
    minor_units: Option<u32>,
    #[serde(default)]
    rounding: Rounding,
    #[serde(default)]
    line_decimals: Option<u32>,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default = "default_cycle")]
    billing_cycle: Window,
    #[serde(default)]
    valid_until: Option<NaiveDate>,
    #[serde(default)]
    charges: Vec<ChargeDoc>,
    #[serde(default)]
    versions: Vec<VersionDoc>,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    metering: Option<metering::Metering>,
    #[serde(default)]
    ratchet: Option<ratchet::Ratchet>,
    #[serde(default, with = "crate::decimal::opt_decimal_str")]
    annual_minimum: Option<Decimal>,
}

/// A [`TariffVersion`] as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionDoc {
    #[serde(default)]
    effective_from: Option<NaiveDate>,
    charges: Vec<ChargeDoc>,
}

impl TariffDoc {
    /// The tariff with every charge shaped into its kind. Top-level `charges` are named as the
    /// first version's (`versions[0].charges[2].rate`), as the parsers move them there.
    ///
    /// # Errors
    /// [`ErrorKind::Tariff`] naming the field: `charges` and `versions` both given, a key a
    /// charge's kind does not take, or one it needs and lacks.
    fn read(self) -> Result<Tariff> {
        if !self.charges.is_empty() && !self.versions.is_empty() {
            return Err(tariff_err("charges", "A tariff has either `charges` or `versions`, not both."));
        }
        let shape = |vi: usize, charges: Vec<ChargeDoc>| -> Result<Vec<Charge>> {
            let field = |ci| format!("versions[{vi}].charges[{ci}]");
            charges.into_iter().enumerate().map(|(ci, c)| c.shape(&field(ci))).collect()
        };
        let versions = self
            .versions
            .into_iter()
            .enumerate()
            .map(|(vi, v)| Ok(TariffVersion { effective_from: v.effective_from, charges: shape(vi, v.charges)? }));
        Ok(Tariff {
            charges: shape(0, self.charges)?,
            versions: versions.collect::<Result<_>>()?,
            name: self.name,
            source: self.source,
            currency: self.currency,
            minor_units: self.minor_units,
            rounding: self.rounding,
            line_decimals: self.line_decimals,
            time_zone: self.time_zone,
            billing_cycle: self.billing_cycle,
            valid_until: self.valid_until,
            notes: self.notes,
            metering: self.metering,
            ratchet: self.ratchet,
            annual_minimum: self.annual_minimum,
        })
    }
}

/// Serde's path (a binding's `from_dict`): the error of [`TariffDoc::read`] as text naming the
/// field path.
impl TryFrom<TariffDoc> for Tariff {
    type Error = String;

    fn try_from(d: TariffDoc) -> std::result::Result<Tariff, String> {
        d.read()
            .map_err(|e| format!("{} (at `{}`).", e.message().trim_end_matches('.'), e.field().unwrap_or("charges")))
    }
}

pub(crate) fn tariff_err(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Tariff, message).with_field(field)
}

impl Tariff {
    /// Parse and check a TOML tariff.
    ///
    /// # Errors
    /// [`ErrorKind::Parse`] for malformed TOML or an unknown key (with the line);
    /// [`ErrorKind::Tariff`] naming the field for an invalid tariff (see [`Tariff::check`]).
    pub fn from_toml(text: &str) -> Result<Tariff> {
        let t: TariffDoc = toml::from_str(text).map_err(|e| {
            let line =
                e.span().map(|s| text.get(..s.start).map_or(0, |before| before.matches('\n').count()) as u64 + 1);
            let err = Error::new(ErrorKind::Parse, format!("The tariff TOML is invalid: {}", e.message()));
            match line {
                Some(l) => err.with_line(l),
                None => err,
            }
        })?;
        t.read()?.normalized()
    }

    /// Parse and check a meterkit JSON tariff (the same document as TOML).
    ///
    /// # Errors
    /// As [`Tariff::from_toml`].
    pub fn from_json(text: &str) -> Result<Tariff> {
        check_tariff_json(text)?;
        let t: TariffDoc = serde_json::from_str(text).map_err(|e| {
            Error::new(ErrorKind::Parse, format!("The tariff JSON is invalid: {e}")).with_line(e.line() as u64)
        })?;
        t.read()?.normalized()
    }

    /// Read a tariff from TOML, meterkit JSON or OpenEI URDB JSON, detected from the text: JSON
    /// starts with `{` and is URDB when it has an `items` array or an `energyratestructure`,
    /// `flatdemandstructure`, `demandratestructure`, `fixedchargefirstmeter`,
    /// `fixedmonthlycharge` or `eiaid` key; anything else is TOML.
    ///
    /// # Errors
    /// Those of the chosen reader.
    pub fn from_any(text: &str) -> Result<Tariff> {
        if text.trim_start().starts_with('{') {
            check_tariff_json(text)?;
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                Error::new(ErrorKind::Parse, format!("The tariff JSON is invalid: {e}")).with_line(e.line() as u64)
            })?;
            if crate::tariff::urdb::looks_like_urdb(&v) {
                return crate::tariff::urdb::from_urdb_value(&v);
            }
            return Tariff::from_json(text);
        }
        Tariff::from_toml(text)
    }

    /// The tariff as the parsers return it: top-level `charges` moved into one undated version,
    /// then [checked](Tariff::check). For a tariff built by deserialising it directly (a binding's
    /// `from_dict`), so that it is checked when it is read, not when it first bills.
    ///
    /// # Errors
    /// [`ErrorKind::Tariff`] for `charges` and `versions` both given; as [`Tariff::check`].
    pub fn into_checked(self) -> Result<Tariff> {
        self.normalized()
    }

    /// The tariff with `charges` moved into a first version, after [`Tariff::check`].
    pub(crate) fn normalized(mut self) -> Result<Tariff> {
        if !self.charges.is_empty() {
            if !self.versions.is_empty() {
                return Err(tariff_err("charges", "A tariff has either `charges` or `versions`, not both."));
            }
            self.versions.push(TariffVersion { effective_from: None, charges: std::mem::take(&mut self.charges) });
        }
        self.check()?;
        Ok(self)
    }

    /// Minor-unit digits of the currency (`minor_units`, or the built-in table: JPY 0; USD,
    /// GBP, EUR, INR 2; KWD 3).
    ///
    /// # Errors
    /// [`ErrorKind::Tariff`] for a currency outside the table without `minor_units`.
    pub fn minor_units(&self) -> Result<u32> {
        if let Some(m) = self.minor_units {
            return Ok(m);
        }
        match self.currency.as_str() {
            "JPY" => Ok(0),
            "USD" | "GBP" | "EUR" | "INR" => Ok(2),
            "KWD" => Ok(3),
            other => Err(tariff_err(
                "currency",
                format!("The minor unit of currency '{other}' is not known; set `minor_units`."),
            )),
        }
    }

    /// The versions, oldest first (a parsed tariff with top-level `charges` has one).
    pub fn versions(&self) -> &[TariffVersion] {
        &self.versions
    }

    /// The metrics a bill for `bill_metric` reads: `bill_metric` and every metric a charge names,
    /// without repeats, in first-use order.
    pub fn metrics(&self, bill_metric: &str) -> Vec<String> {
        let mut out = vec![bill_metric.to_string()];
        for c in self.versions.iter().flat_map(|v| &v.charges).chain(&self.charges) {
            if let Some(m) = c.selection().and_then(|s| s.metric.as_ref()).filter(|m| !out.contains(m)) {
                out.push(m.clone());
            }
        }
        out
    }

    /// Check the whole document: the currency, the zone, the cycle, versions in increasing
    /// `effective_from` order, and each charge (required keys present, keys of other types
    /// absent, tiers increasing with an open last tier, prices with at most 12 decimals, every
    /// schedule period priced, `applies_to` naming charges of the version; no cycle of percentages,
    /// none naming a later non-tax percentage or a tax).
    ///
    /// # Errors
    /// [`ErrorKind::Tariff`] naming the field (`versions[1].charges[0].tiers[2].up_to`).
    pub fn check(&self) -> Result<()> {
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(tariff_err("currency", format!("'{}' is not an ISO 4217 code.", self.currency)));
        }
        if self.minor_units()? > 6 {
            return Err(tariff_err("minor_units", "A currency has at most 6 minor-unit digits."));
        }
        if let Some(d) = self.line_decimals {
            if d < self.minor_units()? || d > MAX_PRICE_DECIMALS {
                return Err(tariff_err(
                    "line_decimals",
                    format!("line_decimals is between the minor units and {MAX_PRICE_DECIMALS}, not {d}."),
                ));
            }
        }
        if let Some(tz) = &self.time_zone {
            parse_time_zone(tz).map_err(|e| tariff_err("time_zone", e.message()))?;
        }
        match self.billing_cycle.check() {
            Ok(Window::Month | Window::BillingCycle { .. }) => {}
            _ => {
                return Err(tariff_err(
                    "billing_cycle",
                    format!("The billing cycle must be `month` or `cycle:DAY`, not `{}`.", self.billing_cycle),
                ))
            }
        }
        if self.versions.is_empty() {
            return Err(tariff_err("charges", "A tariff needs `charges` or at least one version."));
        }
        let mut last: Option<NaiveDate> = None;
        for (vi, v) in self.versions.iter().enumerate() {
            let field = format!("versions[{vi}]");
            match (vi, v.effective_from) {
                (0, _) => last = v.effective_from,
                (_, None) => {
                    return Err(tariff_err(
                        format!("{field}.effective_from"),
                        "Only the first version may leave out effective_from.",
                    ))
                }
                (_, Some(d)) => {
                    if last.is_some_and(|l| d <= l) {
                        return Err(tariff_err(
                            format!("{field}.effective_from"),
                            "Versions must be in increasing effective_from order.",
                        ));
                    }
                    last = Some(d);
                }
            }
            let mut ids = BTreeSet::new();
            for (ci, c) in v.charges.iter().enumerate() {
                let cf = format!("{field}.charges[{ci}]");
                if !ids.insert(c.id()) {
                    return Err(tariff_err(format!("{cf}.id"), format!("The charge id '{}' is repeated.", c.id())));
                }
                c.check(&cf)?;
            }
            for (ci, c) in v.charges.iter().enumerate().filter_map(|(i, c)| Some((i, c.as_percentage()?))) {
                for a in &c.applies_to {
                    if !ids.contains(a.as_str()) || a == &c.id {
                        return Err(tariff_err(
                            format!("{field}.charges[{ci}].applies_to"),
                            format!("applies_to names '{a}', which is not another charge of the version."),
                        ));
                    }
                }
            }
            check_percentage_order(&field, &v.charges)?;
        }
        if let Some(m) = &self.metering {
            let ids: Vec<&str> = self.versions.iter().flat_map(|v| v.charges.iter().map(Charge::id)).collect();
            m.check(&ids)?;
        }
        if let Some(r) = &self.ratchet {
            r.check()?;
        }
        if self.annual_minimum.is_some_and(|a| a < Decimal::ZERO || a.scale() > MAX_PRICE_DECIMALS) {
            return Err(tariff_err(
                "annual_minimum",
                "An annual minimum is at least 0 with at most 12 decimal places.",
            ));
        }
        Ok(())
    }
}

/// Whether `d` has at most [`MAX_PRICE_DECIMALS`] significant decimals ([`check_price`]'s test).
pub(crate) fn price_fits(d: Decimal) -> bool {
    d.scale() <= MAX_PRICE_DECIMALS || d.normalize().scale() <= MAX_PRICE_DECIMALS
}

pub(crate) fn check_price(field: &str, d: Decimal) -> Result<()> {
    if !price_fits(d) {
        return Err(tariff_err(field, format!("The price {d} has more than {MAX_PRICE_DECIMALS} decimals.")));
    }
    Ok(())
}

/// The tiers of a ladder: at least one, prices with at most [`MAX_PRICE_DECIMALS`] decimals,
/// every tier but the last with a rising `up_to`. `field` names the tiers in an error (built only
/// then: a tariff is checked once per bill or comparison).
pub(crate) fn check_tiers(field: impl Fn() -> String, tiers: &[Tier], flat_allowed: bool) -> Result<()> {
    if tiers.is_empty() {
        return Err(tariff_err(field(), "At least one tier is needed."));
    }
    let mut prev = Decimal::ZERO;
    for (i, t) in tiers.iter().enumerate() {
        let tf = |leaf: &str| format!("{}[{i}].{leaf}", field());
        if !price_fits(t.rate) {
            check_price(&tf("rate"), t.rate)?;
        }
        if let Some(f) = t.flat {
            if !flat_allowed {
                return Err(tariff_err(tf("flat"), "A flat tier fee does not apply here."));
            }
            check_price(&tf("flat"), f)?;
        }
        match (t.up_to, i + 1 == tiers.len()) {
            (Some(_), true) => {
                return Err(tariff_err(tf("up_to"), "The last tier is open-ended: leave out its up_to."))
            }
            (None, false) => return Err(tariff_err(tf("up_to"), "Every tier but the last needs up_to.")),
            (Some(u), false) => {
                if u <= prev {
                    return Err(tariff_err(
                        tf("up_to"),
                        format!("up_to {u} must be greater than the previous limit {prev}."),
                    ));
                }
                prev = u;
            }
            (None, true) => {}
        }
    }
    Ok(())
}

/// Percentages are computed in charge order (non-tax ones, then taxes after the minimum), so a
/// percentage can only apply to a percentage computed before it: refuse a cycle of percentages
/// (`a → b → a`, named in the error), a non-tax percentage naming one listed after it, and a
/// percentage naming a tax (taxes are never part of a percentage's base) — each of those would
/// silently count as 0.
fn check_percentage_order(field: &str, charges: &[Charge]) -> Result<()> {
    let pcts: Vec<Option<&PercentageCharge>> = charges.iter().map(Charge::as_percentage).collect();
    let pct = |id: &str| pcts.iter().position(|p| p.is_some_and(|p| p.id == id));
    let mut state = vec![0u8; charges.len()];
    for ci in 0..pcts.len() {
        if pcts[ci].is_some() && state[ci] == 0 {
            if let Some(cycle) = percentage_cycle(&pcts, &pct, ci, &mut state, &mut Vec::new()) {
                let names: Vec<&str> = cycle.iter().map(|&i| charges[i].id()).collect();
                return Err(tariff_err(
                    format!("{field}.charges[{}].applies_to", cycle[0]),
                    format!("The percentages {} depend on each other in a cycle.", names.join(" → ")),
                ));
            }
        }
    }
    for (ci, c) in pcts.iter().enumerate().filter_map(|(i, p)| Some((i, (*p)?))) {
        for a in &c.applies_to {
            let Some(ai) = pct(a) else { continue };
            if pcts[ai].is_some_and(|t| t.tax) {
                return Err(tariff_err(
                    format!("{field}.charges[{ci}].applies_to"),
                    format!("'{}' applies to the tax '{a}': a percentage applies to charges before tax only.", c.id),
                ));
            }
            if ai > ci && !c.tax {
                return Err(tariff_err(
                    format!("{field}.charges[{ci}].applies_to"),
                    format!("'{}' applies to the percentage '{a}', which is listed after it: list '{a}' first.", c.id),
                ));
            }
        }
    }
    Ok(())
}

/// A cycle of percentages (charge indexes, the first repeated at the end) reachable from charge
/// `i` along `applies_to` edges between percentages (`pcts[i]`: charge `i` if it is one): a
/// depth-first search that visits each charge once (`state`: 0 new, 1 on the current path, 2 done).
fn percentage_cycle(
    pcts: &[Option<&PercentageCharge>],
    pct: &dyn Fn(&str) -> Option<usize>,
    i: usize,
    state: &mut [u8],
    path: &mut Vec<usize>,
) -> Option<Vec<usize>> {
    state[i] = 1;
    path.push(i);
    for a in pcts[i].map_or(&[][..], |p| p.applies_to.as_slice()) {
        let Some(next) = pct(a) else { continue };
        match state[next] {
            1 => {
                let from = path.iter().position(|&p| p == next).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(next);
                return Some(cycle);
            }
            0 => {
                if let Some(c) = percentage_cycle(pcts, pct, next, state, path) {
                    return Some(c);
                }
            }
            _ => {}
        }
    }
    path.pop();
    state[i] = 2;
    None
}

/// The error for a quantity field that is negative.
pub(crate) fn nonneg(field: &str, name: &str, d: Option<Decimal>) -> Result<()> {
    match d {
        Some(d) if d < Decimal::ZERO => Err(tariff_err(format!("{field}.{name}"), format!("{name} is negative."))),
        _ => Ok(()),
    }
}

/// [`crate::json::check_json`] with the tariff's wording.
pub(crate) fn check_tariff_json(text: &str) -> Result<()> {
    crate::json::check_json(text).map_err(|e| {
        let err = Error::new(e.kind(), format!("The tariff JSON is invalid: {}", e.message()));
        match e.line() {
            Some(l) => err.with_line(l),
            None => err,
        }
    })
}

#[cfg(test)]
#[path = "examples_tests.rs"]
mod examples_tests;

#[cfg(test)]
mod rounding_tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn halves() {
        let r = |mode: Rounding, s: &str| mode.round(s.parse().unwrap(), 2).unwrap().to_string();
        assert_eq!(r(Rounding::HalfUp, "0.125"), "0.13");
        assert_eq!(r(Rounding::HalfEven, "0.125"), "0.12");
        assert_eq!(r(Rounding::HalfEven, "0.135"), "0.14");
        assert_eq!(r(Rounding::HalfUp, "-0.125"), "-0.13");
        assert_eq!(r(Rounding::HalfEven, "-0.125"), "-0.12");
        assert_eq!(r(Rounding::HalfUp, "-0.001"), "0.00");
        assert_eq!(r(Rounding::HalfUp, "7"), "7.00");
    }

    proptest! {
        #[test]
        fn fast_rounding_matches_rust_decimal(m in any::<i64>(), scale in 0u32..28, dp in 0u32..4, even in any::<bool>()) {
            let d = Decimal::new(m, scale);
            let mode = if even { Rounding::HalfEven } else { Rounding::HalfUp };
            let mut want = d.round_dp_with_strategy(dp, mode.strategy());
            want.rescale(dp);
            prop_assert_eq!(mode.round(d, dp).unwrap(), want);
        }
    }
}
