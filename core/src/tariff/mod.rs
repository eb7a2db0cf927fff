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
//! A [`Charge`] is checked by `Charge::check` in stages: the id, the fields that apply to its
//! [`ChargeKind`] (`ChargeKind::allowed_fields`), the fields common to usage charges, then the
//! shape of the kind; every error names the field path (`versions[0].charges[2].rate`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::time::{parse_time_zone, Window};

pub mod metering;
pub mod ratchet;
pub mod urdb;

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
    fn strategy(self) -> RoundingStrategy {
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Upper bound of the tier (inclusive), in the charge's unit; absent on the last tier.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    pub up_to: Option<Decimal>,
    /// Price per unit in the tier, in the currency's major unit (up to 12 decimals).
    #[serde(with = "crate::decimal::decimal_str")]
    pub rate: Decimal,
    /// Flat fee charged once when usage reaches the tier (graduated and volume only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    pub flat: Option<Decimal>,
}

/// A rate or tiers for one time-of-use (or demand) period.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodPrice {
    /// Price per unit (exclusive with `tiers`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    pub rate: Option<Decimal>,
    /// Graduated tiers (exclusive with `rate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
}

/// A time-of-use schedule: for each month (12 rows, January first; or 1 row for every month)
/// and for weekdays and weekends, 24 hourly period indexes (0-based, into `periods`).
/// Holidays are local dates treated as weekend days. Evaluated at each record's timestamp in
/// the tariff's `time_zone` (the bill's zone when the tariff has none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Period names; the grids hold indexes into this list.
    pub periods: Vec<String>,
    /// Monday–Friday grid: 12 (or 1) rows of 24 period indexes.
    pub weekday: Vec<Vec<u8>>,
    /// Saturday, Sunday and holiday grid; the weekday grid when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekend: Vec<Vec<u8>>,
    /// Local dates treated as weekend days (`"2024-12-25"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<NaiveDate>,
}

impl Schedule {
    /// Period index for local month `month0` (0–11), a weekend/holiday flag and local hour (0–23).
    pub(crate) fn period_at(&self, month0: u32, weekend: bool, hour: u32) -> usize {
        let grid = if weekend && !self.weekend.is_empty() { &self.weekend } else { &self.weekday };
        let row = if grid.len() == 1 { &grid[0] } else { &grid[month0 as usize] };
        usize::from(row[hour as usize])
    }

    fn check(&self, field: &str) -> Result<()> {
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

/// One charge of a tariff version. Which keys apply depends on `type` ([`ChargeKind`]); a key
/// that does not apply to the charge's type is refused, never ignored.
///
/// Common keys: `id` (names the charge on bill lines; the same id across versions continues the
/// same tier ladder and allowance), `description`, `metric` (default: the bill's metric),
/// `filter` (dimension values a record must have; the value `""` matches records without the
/// dimension), `months` (1–12: only usage in these local months, and the charge is left out of
/// bills with no day in them), `unit` (shown on lines; default the metric), `divide_by` with
/// `divide_rounding` (convert the quantity before pricing, e.g. bytes → GB with
/// `divide_by = 1000000000`; the result is rounded to whole units, up by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "ts",
    derive(ts_rs::TS),
    ts(
        rename = "TariffCharge",
        type = "{ id: string; type: ChargeKind; description?: string; metric?: string; [key: string]: unknown }"
    )
)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    /// Identifier, unique within a version; becomes the `charge` of bill lines.
    pub id: String,
    /// What the charge computes.
    #[serde(rename = "type")]
    pub kind: ChargeKind,
    /// Text for bill lines (a default is derived from the type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Only records of this metric (default: the bill's metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Only records with these dimension values (`""` = dimension absent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, String>,
    /// Only usage in these local months (1–12).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<u32>,
    /// Unit shown on bill lines (default: the metric; `kW` for demand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Divide the quantity by this before pricing (bytes → GB: 1000000000).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    pub divide_by: Option<Decimal>,
    /// How the divided quantity is rounded to whole units (default `up`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divide_rounding: Option<QuantityRounding>,
    /// Amount of a `fixed` or `minimum` charge, in the major unit.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    pub amount: Option<Decimal>,
    /// What `amount` is for: `period` (default), `day`, or `year` (minimum only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<Per>,
    /// Price per unit (`per_unit`), per package (`package`) or per kW (`demand`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    pub rate: Option<Decimal>,
    /// Tiers of a `graduated`, `volume` or `demand` charge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// Whether tier limits and allowances are per period (default) or per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_basis: Option<Basis>,
    /// Block size of a `package` charge.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    pub package_size: Option<Decimal>,
    /// Units free before the first package (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    pub free_units: Option<Decimal>,
    /// Units included by an `allowance` (in the charge's unit, after `divide_by`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    pub included: Option<Decimal>,
    /// Schedule of a `time_of_use` charge or a TOU `demand` charge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Price per schedule period (every period of the schedule needs one).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub periods: BTreeMap<String, PeriodPrice>,
    /// Demand interval in minutes (5, 10, 15, 30 or 60; default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_minutes: Option<u32>,
    /// Percent of a `percentage` charge (20 = 20 %; negative for a discount).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    pub percent: Option<Decimal>,
    /// Charge ids a `percentage` applies to (default: the subtotal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_to: Vec<String>,
    /// A `percentage` that is a tax: counted in `taxes`, computed after the minimum top-up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tax: bool,
    /// `time_of_use` only: the periods' tiers form one ladder over the billing period's total
    /// (every period has tiers with the same `up_to` limits), each unit priced at its own
    /// period's rate for the tier it falls in — NREL PySAM/SAM's rule for tiered TOU energy.
    /// Without it each period has its own ladder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_ladder: Option<SharedLadder>,
}

/// How the units of a `time_of_use` charge with a shared ladder ([`Charge::shared_ladder`])
/// are split between its periods and tiers.
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
#[serde(deny_unknown_fields)]
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
        let t: Tariff = toml::from_str(text).map_err(|e| {
            let line =
                e.span().map(|s| text.get(..s.start).map_or(0, |before| before.matches('\n').count()) as u64 + 1);
            let err = Error::new(ErrorKind::Parse, format!("The tariff TOML is invalid: {}", e.message()));
            match line {
                Some(l) => err.with_line(l),
                None => err,
            }
        })?;
        t.normalized()
    }

    /// Parse and check a meterkit JSON tariff (the same document as TOML).
    ///
    /// # Errors
    /// As [`Tariff::from_toml`].
    pub fn from_json(text: &str) -> Result<Tariff> {
        check_tariff_json(text)?;
        let t: Tariff = serde_json::from_str(text).map_err(|e| {
            Error::new(ErrorKind::Parse, format!("The tariff JSON is invalid: {e}")).with_line(e.line() as u64)
        })?;
        t.normalized()
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
            if let Some(m) = c.metric.as_ref().filter(|m| !out.contains(m)) {
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
                if !ids.insert(c.id.as_str()) {
                    return Err(tariff_err(format!("{cf}.id"), format!("The charge id '{}' is repeated.", c.id)));
                }
                c.check(&cf)?;
            }
            for (ci, c) in v.charges.iter().enumerate() {
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
            let ids: Vec<&str> = self.versions.iter().flat_map(|v| v.charges.iter().map(|c| c.id.as_str())).collect();
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

fn check_price(field: &str, d: Decimal) -> Result<()> {
    if d.normalize().scale() > MAX_PRICE_DECIMALS {
        return Err(tariff_err(field, format!("The price {d} has more than {MAX_PRICE_DECIMALS} decimals.")));
    }
    Ok(())
}

pub(crate) fn check_tiers(field: &str, tiers: &[Tier], flat_allowed: bool) -> Result<()> {
    if tiers.is_empty() {
        return Err(tariff_err(field, "At least one tier is needed."));
    }
    let mut prev = Decimal::ZERO;
    for (i, t) in tiers.iter().enumerate() {
        let tf = format!("{field}[{i}]");
        check_price(&format!("{tf}.rate"), t.rate)?;
        if let Some(f) = t.flat {
            if !flat_allowed {
                return Err(tariff_err(format!("{tf}.flat"), "A flat tier fee does not apply here."));
            }
            check_price(&format!("{tf}.flat"), f)?;
        }
        match (t.up_to, i + 1 == tiers.len()) {
            (Some(_), true) => {
                return Err(tariff_err(format!("{tf}.up_to"), "The last tier is open-ended: leave out its up_to."))
            }
            (None, false) => return Err(tariff_err(format!("{tf}.up_to"), "Every tier but the last needs up_to.")),
            (Some(u), false) => {
                if u <= prev {
                    return Err(tariff_err(
                        format!("{tf}.up_to"),
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
    let pct = |id: &str| charges.iter().position(|c| c.id == id && c.kind == ChargeKind::Percentage);
    let mut state = vec![0u8; charges.len()];
    for (ci, c) in charges.iter().enumerate() {
        if c.kind == ChargeKind::Percentage && state[ci] == 0 {
            if let Some(cycle) = percentage_cycle(charges, &pct, ci, &mut state, &mut Vec::new()) {
                let names: Vec<&str> = cycle.iter().map(|&i| charges[i].id.as_str()).collect();
                return Err(tariff_err(
                    format!("{field}.charges[{}].applies_to", cycle[0]),
                    format!("The percentages {} depend on each other in a cycle.", names.join(" → ")),
                ));
            }
        }
    }
    for (ci, c) in charges.iter().enumerate().filter(|(_, c)| c.kind == ChargeKind::Percentage) {
        for a in &c.applies_to {
            let Some(ai) = pct(a) else { continue };
            let target = &charges[ai];
            if target.tax {
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
/// `i` along `applies_to` edges between percentages: a depth-first search that visits each charge
/// once (`state`: 0 new, 1 on the current path, 2 done).
fn percentage_cycle(
    charges: &[Charge],
    pct: &dyn Fn(&str) -> Option<usize>,
    i: usize,
    state: &mut [u8],
    path: &mut Vec<usize>,
) -> Option<Vec<usize>> {
    state[i] = 1;
    path.push(i);
    for a in &charges[i].applies_to {
        let Some(next) = pct(a) else { continue };
        match state[next] {
            1 => {
                let from = path.iter().position(|&p| p == next).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(next);
                return Some(cycle);
            }
            0 => {
                if let Some(c) = percentage_cycle(charges, pct, next, state, path) {
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
fn nonneg(field: &str, name: &str, d: Option<Decimal>) -> Result<()> {
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

impl ChargeKind {
    /// The charge fields a charge of this kind may set (the others must be absent).
    fn allowed_fields(self) -> Vec<&'static str> {
        use ChargeKind as K;
        const USAGE: [&str; 6] = ["metric", "filter", "months", "unit", "divide_by", "divide_rounding"];
        match self {
            K::Fixed => vec!["amount", "per", "unit"],
            K::PerUnit => [&USAGE[..], &["rate"]].concat(),
            K::Graduated | K::Volume => [&USAGE[..], &["tiers", "tier_basis"]].concat(),
            K::Package => [&USAGE[..], &["rate", "package_size", "free_units"]].concat(),
            K::Allowance => [&USAGE[..], &["included", "tier_basis"]].concat(),
            K::TimeOfUse => [&USAGE[..], &["schedule", "periods", "tier_basis", "shared_ladder"]].concat(),
            K::Demand => {
                vec![
                    "metric",
                    "filter",
                    "months",
                    "unit",
                    "rate",
                    "tiers",
                    "schedule",
                    "periods",
                    "interval_minutes",
                    "per",
                ]
            }
            K::Minimum => vec!["amount", "per"],
            K::Percentage => vec!["percent", "applies_to", "tax"],
        }
    }
}

impl Charge {
    /// Checks the charge at `field` (e.g. `versions[0].charges[2]`), in this order: a non-empty
    /// id, every field set applies to the kind, the fields common to usage charges (`divide_by`,
    /// `months`, prices), then the shape of the kind. The error names the offending field's path.
    fn check(&self, field: &str) -> Result<()> {
        if self.id.is_empty() {
            return Err(tariff_err(format!("{field}.id"), "A charge needs a non-empty id."));
        }
        self.check_fields_apply(field)?;
        self.check_common(field)?;
        self.check_kind(field)
    }

    /// Each charge field and whether it is set.
    fn fields_set(&self) -> [(&'static str, bool); 21] {
        [
            ("metric", self.metric.is_some()),
            ("filter", !self.filter.is_empty()),
            ("months", !self.months.is_empty()),
            ("unit", self.unit.is_some()),
            ("divide_by", self.divide_by.is_some()),
            ("divide_rounding", self.divide_rounding.is_some()),
            ("amount", self.amount.is_some()),
            ("per", self.per.is_some()),
            ("rate", self.rate.is_some()),
            ("tiers", !self.tiers.is_empty()),
            ("tier_basis", self.tier_basis.is_some()),
            ("package_size", self.package_size.is_some()),
            ("free_units", self.free_units.is_some()),
            ("included", self.included.is_some()),
            ("schedule", self.schedule.is_some()),
            ("periods", !self.periods.is_empty()),
            ("interval_minutes", self.interval_minutes.is_some()),
            ("percent", self.percent.is_some()),
            ("applies_to", !self.applies_to.is_empty()),
            ("tax", self.tax),
            ("shared_ladder", self.shared_ladder.is_some()),
        ]
    }

    /// Every field set applies to the charge's kind.
    fn check_fields_apply(&self, field: &str) -> Result<()> {
        let allowed = self.kind.allowed_fields();
        match self.fields_set().into_iter().find(|(name, present)| *present && !allowed.contains(name)) {
            Some((name, _)) => Err(tariff_err(
                format!("{field}.{name}"),
                format!("`{name}` does not apply to a `{}` charge.", self.kind),
            )),
            None => Ok(()),
        }
    }

    /// `divide_by` positive, `months` in 1–12, and `rate`, `amount` and `percent` valid prices.
    fn check_common(&self, field: &str) -> Result<()> {
        if self.divide_by.is_some_and(|d| d <= Decimal::ZERO) {
            return Err(tariff_err(format!("{field}.divide_by"), "divide_by must be positive."));
        }
        if let Some(m) = self.months.iter().find(|m| !(1..=12).contains(*m)) {
            return Err(tariff_err(format!("{field}.months"), format!("{m} is not a month (1-12).")));
        }
        for (name, d) in [("rate", self.rate), ("amount", self.amount), ("percent", self.percent)] {
            if let Some(d) = d {
                check_price(&format!("{field}.{name}"), d)?;
            }
        }
        Ok(())
    }

    /// The error for a field the charge's kind needs, when it is absent.
    fn need(&self, field: &str, name: &str, present: bool) -> Result<()> {
        if present {
            Ok(())
        } else {
            Err(tariff_err(format!("{field}.{name}"), format!("A `{}` charge needs `{name}`.", self.kind)))
        }
    }

    /// The shape of the charge's kind: the fields it needs and their values.
    fn check_kind(&self, field: &str) -> Result<()> {
        use ChargeKind as K;
        match self.kind {
            K::Fixed | K::Minimum => self.check_flat(field),
            K::PerUnit => self.need(field, "rate", self.rate.is_some()),
            K::Graduated | K::Volume => check_tiers(&format!("{field}.tiers"), &self.tiers, true),
            K::Package => {
                self.need(field, "rate", self.rate.is_some())?;
                self.need(field, "package_size", self.package_size.is_some())?;
                if self.package_size.is_some_and(|s| s <= Decimal::ZERO) {
                    return Err(tariff_err(format!("{field}.package_size"), "package_size must be positive."));
                }
                nonneg(field, "free_units", self.free_units)
            }
            K::Allowance => {
                self.need(field, "included", self.included.is_some())?;
                nonneg(field, "included", self.included)
            }
            K::TimeOfUse => {
                self.need(field, "schedule", self.schedule.is_some())?;
                self.check_periods(field)?;
                if self.shared_ladder.is_some() {
                    self.check_shared_ladder(field)?;
                }
                Ok(())
            }
            K::Demand => self.check_demand(field),
            K::Percentage => self.need(field, "percent", self.percent.is_some()),
        }
    }

    /// A fixed charge or a minimum: an amount, per an allowed length.
    fn check_flat(&self, field: &str) -> Result<()> {
        self.need(field, "amount", self.amount.is_some())?;
        if self.kind == ChargeKind::Fixed && matches!(self.per, Some(Per::Year | Per::Month)) {
            return Err(tariff_err(format!("{field}.per"), "A fixed charge is per `period` or per `day`."));
        }
        if self.kind == ChargeKind::Minimum && self.per == Some(Per::Month) {
            return Err(tariff_err(
                format!("{field}.per"),
                "A minimum is per `period`, `day` or `year` (`period` for a monthly cycle).",
            ));
        }
        Ok(())
    }

    /// A demand charge: per period or month, a standard interval, and either `rate`, `tiers`, or
    /// a `schedule` with priced `periods`.
    fn check_demand(&self, field: &str) -> Result<()> {
        if matches!(self.per, Some(Per::Day | Per::Year)) {
            return Err(tariff_err(format!("{field}.per"), "A demand peak is per `period` or per `month`."));
        }
        if let Some(m) = self.interval_minutes.filter(|m| ![5, 10, 15, 30, 60].contains(m)) {
            return Err(tariff_err(
                format!("{field}.interval_minutes"),
                format!("The demand interval is 5, 10, 15, 30 or 60 minutes, not {m}."),
            ));
        }
        if self.schedule.is_some() {
            if self.rate.is_some() || !self.tiers.is_empty() {
                return Err(tariff_err(
                    format!("{field}.rate"),
                    "A TOU demand charge prices each period in `periods`, not with `rate` or `tiers`.",
                ));
            }
            return self.check_periods(field);
        }
        match (self.rate.is_some(), self.tiers.is_empty()) {
            (true, true) => Ok(()),
            (false, false) => check_tiers(&format!("{field}.tiers"), &self.tiers, false),
            _ => Err(tariff_err(
                format!("{field}.rate"),
                "A demand charge has either `rate` or `tiers` (or a `schedule` with `periods`).",
            )),
        }
    }

    /// With `shared_ladder`, every period has tiers with the same `up_to` limits.
    fn check_shared_ladder(&self, field: &str) -> Result<()> {
        let limits = |p: &PeriodPrice| p.tiers.iter().map(|t| t.up_to).collect::<Vec<_>>();
        let mut first: Option<(&String, Vec<Option<Decimal>>)> = None;
        for (name, p) in &self.periods {
            if p.tiers.is_empty() {
                return Err(tariff_err(
                    format!("{field}.periods.{name}"),
                    "With shared_ladder every period needs `tiers`.",
                ));
            }
            match &first {
                None => first = Some((name, limits(p))),
                Some((n0, l0)) if *l0 != limits(p) => {
                    return Err(tariff_err(
                        format!("{field}.periods.{name}.tiers"),
                        format!("With shared_ladder every period has the tier limits of '{n0}'."),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn check_periods(&self, field: &str) -> Result<()> {
        let Some(s) = &self.schedule else { return Ok(()) };
        s.check(&format!("{field}.schedule"))?;
        for name in &s.periods {
            let Some(p) = self.periods.get(name) else {
                return Err(tariff_err(format!("{field}.periods"), format!("The period '{name}' has no price.")));
            };
            let pf = format!("{field}.periods.{name}");
            match (p.rate, p.tiers.is_empty()) {
                (Some(r), true) => check_price(&format!("{pf}.rate"), r)?,
                (None, false) => check_tiers(&format!("{pf}.tiers"), &p.tiers, false)?,
                _ => return Err(tariff_err(pf, "A period price has either `rate` or `tiers`.")),
            }
        }
        if let Some(extra) = self.periods.keys().find(|k| !s.periods.contains(k)) {
            return Err(tariff_err(
                format!("{field}.periods.{extra}"),
                format!("'{extra}' is not a period of the schedule."),
            ));
        }
        Ok(())
    }

    /// Convert a raw quantity with `divide_by` (rounded to whole units), or return it as is.
    pub(crate) fn convert(&self, q: Decimal) -> Result<Decimal> {
        match self.divide_by {
            None => Ok(q),
            Some(d) => q
                .checked_div(d)
                .map(|x| x.round_dp_with_strategy(0, self.divide_rounding.unwrap_or_default().strategy()))
                .ok_or_else(|| Error::overflow("The converted quantity")),
        }
    }
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
