//! A tariff charge as a tagged enum: one struct per [`ChargeKind`] holding only the fields that
//! kind can have, with the shared parts ([`Selection`], [`Usage`], [`TouPrices`]) as small
//! structs.
//!
//! On the wire a charge is one flat object tagged by `type` (`{"id":"e","type":"per_unit",
//! "rate":"0.25"}`, see `docs/tariffs.md`). It is read into [`ChargeDoc`] (every key any kind
//! takes; an unknown key is refused there, with the line in TOML), then shaped into its kind's
//! struct by [`ChargeDoc::shape`]: a key the kind does not take, or a key it needs and lacks,
//! is an [`ErrorKind::Tariff`](crate::error::ErrorKind::Tariff) error naming the field path
//! (`versions[0].charges[2].rate`). Writing goes back through [`ChargeDoc`], so a charge
//! round-trips to the same JSON. The values (prices, tiers, schedules) are checked by
//! [`Tariff::check`](crate::Tariff::check).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tariff::{
    check_price, check_tiers, nonneg, price_fits, tariff_err, Basis, ChargeKind, Per, PeriodPrice, QuantityRounding,
    Schedule, SharedLadder, Tier,
};

/// Which records a usage or demand charge reads (all three empty: every record of the bill's
/// metric).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Selection {
    /// Only records of this metric (default: the bill's metric).
    #[cfg_attr(feature = "ts", ts(optional))]
    pub metric: Option<String>,
    /// Only records with these dimension values (`""` = dimension absent).
    #[cfg_attr(feature = "ts", ts(as = "Option<BTreeMap<String, String>>", optional))]
    pub filter: BTreeMap<String, String>,
    /// Only usage in these local months (1–12); the charge is left out of bills with no day in
    /// them.
    #[cfg_attr(feature = "ts", ts(as = "Option<Vec<u32>>", optional))]
    pub months: Vec<u32>,
}

/// What usage charges (`per_unit`, `graduated`, `volume`, `package`, `allowance`,
/// `time_of_use`) share: the records read, the unit shown and the quantity conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Usage {
    /// Which records.
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub select: Selection,
    /// Unit shown on bill lines (default: the metric).
    #[cfg_attr(feature = "ts", ts(optional))]
    pub unit: Option<String>,
    /// Divide the quantity by this before pricing (bytes → GB: 1000000000).
    #[cfg_attr(feature = "ts", ts(optional, type = "DecimalString"))]
    pub divide_by: Option<Decimal>,
    /// How the divided quantity is rounded to whole units (default `up`).
    #[cfg_attr(feature = "ts", ts(optional))]
    pub divide_rounding: Option<QuantityRounding>,
}

impl Usage {
    /// Convert a raw quantity with `divide_by` (rounded to whole units), or return it as is.
    ///
    /// # Errors
    /// [`ErrorKind::Overflow`](crate::error::ErrorKind::Overflow) when the division overflows.
    pub fn convert(&self, q: Decimal) -> Result<Decimal> {
        match self.divide_by {
            None => Ok(q),
            Some(d) => q
                .checked_div(d)
                .map(|x| x.round_dp_with_strategy(0, self.divide_rounding.unwrap_or_default().strategy()))
                .ok_or_else(|| Error::overflow("The converted quantity")),
        }
    }
}

/// A time-of-use price list: the schedule and a rate or tiers per schedule period.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TouPrices {
    /// The schedule (period names and hourly grids).
    pub schedule: Schedule,
    /// Price per schedule period (every period of the schedule needs one).
    pub periods: BTreeMap<String, PeriodPrice>,
}

/// `fixed`: `amount` per billing period (prorated by days for partial periods) or per local day
/// (a standing charge).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FixedCharge {
    /// Identifier, unique within a version; becomes the `charge` of bill lines.
    pub id: String,
    /// Text for bill lines (default "Fixed charge" / "Standing charge").
    #[cfg_attr(feature = "ts", ts(optional))]
    pub description: Option<String>,
    /// Unit shown on per-day lines (default `day`).
    #[cfg_attr(feature = "ts", ts(optional))]
    pub unit: Option<String>,
    /// The amount, in the currency's major unit.
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub amount: Decimal,
    /// `period` (default) or `day`.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub per: Option<Per>,
}

/// `per_unit`: `rate` per unit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PerUnitCharge {
    /// Identifier, unique within a version.
    pub id: String,
    /// Text for bill lines (default "Usage").
    #[cfg_attr(feature = "ts", ts(optional))]
    pub description: Option<String>,
    /// Records, unit and conversion.
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub usage: Usage,
    /// Price per unit.
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub rate: Decimal,
}

/// `graduated` (each unit at its tier's rate) or `volume` (every unit at the rate of the tier
/// the period's total reaches).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TieredCharge {
    /// Identifier, unique within a version; the same id across versions continues the ladder.
    pub id: String,
    /// Text for bill lines (default "Usage").
    #[cfg_attr(feature = "ts", ts(optional))]
    pub description: Option<String>,
    /// Records, unit and conversion.
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub usage: Usage,
    /// The tiers, the last open-ended.
    pub tiers: Vec<Tier>,
    /// Whether tier limits are per period (default), per day or per kW of peak demand.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub tier_basis: Option<Basis>,
}

/// `package`: `rate` per started block of `package_size` units, after `free_units`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PackageCharge {
    /// Identifier, unique within a version.
    pub id: String,
    /// Text for bill lines (default "Packages").
    #[cfg_attr(feature = "ts", ts(optional))]
    pub description: Option<String>,
    /// Records, unit and conversion.
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub usage: Usage,
    /// Price per package.
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub rate: Decimal,
    /// Block size (> 0).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub package_size: Decimal,
    /// Units free before the first package (default 0).
    #[cfg_attr(feature = "ts", ts(optional, type = "DecimalString"))]
    pub free_units: Option<Decimal>,
}

/// `allowance`: `included` units deducted (in time order) before the other charges on the metric.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AllowanceCharge {
    /// Identifier, unique within a version; the same id across versions continues the allowance.
    pub id: String,
    /// Text for bill lines (default "Included units").
    #[cfg_attr(feature = "ts", ts(optional))]
    pub description: Option<String>,
    /// Records, unit and conversion.
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub usage: Usage,
    /// Units included (in the charge's unit, after `divide_by`).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub included: Decimal,
    /// Whether `included` is per period (default) or per day.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub tier_basis: Option<Basis>,
}

/// `time_of_use`: a rate or tiers per period of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TimeOfUseCharge {
    /// Identifier, unique within a version.
    pub id: String,
    /// Text for bill lines (default "Time-of-use energy").
    #[cfg_attr(feature = "ts", ts(optional))]
    pub description: Option<String>,
    /// Records, unit and conversion.
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub usage: Usage,
    /// The schedule and the price of each of its periods.
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub prices: TouPrices,
    /// Whether tier limits are per period (default), per day or per kW of peak demand.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub tier_basis: Option<Basis>,
    /// The periods' tiers form one ladder over the billing period's total (every period has
    /// tiers with the same `up_to` limits), each unit priced at its own period's rate for the
    /// tier it falls in — NREL PySAM/SAM's rule for tiered TOU energy. Without it each period has
    /// its own ladder.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub shared_ladder: Option<SharedLadder>,
}

/// How a demand charge prices its peak.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(untagged))]
pub enum DemandPrice {
    /// One rate per kW of the peak (`rate`).
    #[cfg_attr(feature = "ts", ts(as = "doc::DemandRate"))]
    Rate(Decimal),
    /// Graduated tiers over the peak kW (`tiers`).
    #[cfg_attr(feature = "ts", ts(as = "doc::DemandTiers"))]
    Tiers(Vec<Tier>),
    /// A peak per TOU period, each priced by its period (`schedule` + `periods`).
    TimeOfUse(TouPrices),
}

/// The document forms of [`DemandPrice::Rate`] and [`DemandPrice::Tiers`], for the generated
/// TypeScript type only.
#[cfg(feature = "ts")]
#[doc(hidden)]
pub mod doc {
    use super::{Decimal, Tier};

    /// `{ rate }`: one rate per kW of the peak.
    #[derive(ts_rs::TS)]
    #[allow(dead_code)]
    pub struct DemandRate {
        /// Price per kW.
        #[ts(type = "DecimalString")]
        rate: Decimal,
    }

    /// `{ tiers }`: graduated tiers over the peak kW.
    #[derive(ts_rs::TS)]
    #[allow(dead_code)]
    pub struct DemandTiers {
        /// The tiers, the last open-ended.
        tiers: Vec<Tier>,
    }
}

/// `demand`: the peak average power (kW) in the billing period, priced per kW; with
/// `per = "month"`, one peak per local calendar month of the bill.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DemandCharge {
    /// Identifier, unique within a version.
    pub id: String,
    /// Text for bill lines (default "Demand").
    #[cfg_attr(feature = "ts", ts(optional))]
    pub description: Option<String>,
    /// Which records.
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub select: Selection,
    /// Unit shown on bill lines (default `kW`).
    #[cfg_attr(feature = "ts", ts(optional))]
    pub unit: Option<String>,
    /// How the peak is priced.
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub price: DemandPrice,
    /// Demand interval in minutes (5, 10, 15, 30 or 60; default 60).
    #[cfg_attr(feature = "ts", ts(optional))]
    pub interval_minutes: Option<u32>,
    /// `period` (default) or `month`.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub per: Option<Per>,
}

/// `minimum`: the bill is topped up to `amount` per period, per day or per year.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MinimumCharge {
    /// Identifier, unique within a version.
    pub id: String,
    /// Text for bill lines (default "Minimum charge top-up").
    #[cfg_attr(feature = "ts", ts(optional))]
    pub description: Option<String>,
    /// The minimum, in the currency's major unit.
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub amount: Decimal,
    /// `period` (default), `day` or `year`.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub per: Option<Per>,
}

/// `percentage`: `percent` of the subtotal or of the lines of the charges in `applies_to`; a tax
/// when `tax`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PercentageCharge {
    /// Identifier, unique within a version.
    pub id: String,
    /// Text for bill lines (default "`percent`%" or "Tax `percent`%").
    #[cfg_attr(feature = "ts", ts(optional))]
    pub description: Option<String>,
    /// Percent (20 = 20 %; negative for a discount).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub percent: Decimal,
    /// Charge ids it applies to (default: the subtotal).
    #[cfg_attr(feature = "ts", ts(as = "Option<Vec<String>>", optional))]
    pub applies_to: Vec<String>,
    /// A tax: counted in `taxes`, computed after the minimum top-up.
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub tax: bool,
}

/// One charge of a tariff version, tagged by its kind (the document's `type` key). Which keys a
/// kind takes is its struct's fields; a key that does not apply to the kind is refused when the
/// tariff is read, never ignored.
///
/// Common keys: `id` (names the charge on bill lines; the same id across versions continues the
/// same tier ladder and allowance), `description`; usage and demand charges take `metric`,
/// `filter`, `months` and `unit` ([`Selection`]); usage charges also `divide_by` and
/// `divide_rounding` ([`Usage`]).
///
/// ```
/// use meterkit::tariff::Charge;
/// let c: Charge = serde_json::from_str(r#"{"id":"e","type":"per_unit","rate":"0.25"}"#)?;
/// assert!(matches!(&c, Charge::PerUnit(p) if p.rate.to_string() == "0.25"));
/// assert_eq!(serde_json::to_string(&c)?, r#"{"id":"e","type":"per_unit","rate":"0.25"}"#);
/// // A key the kind does not take is refused, naming it.
/// let e = serde_json::from_str::<Charge>(r#"{"id":"e","type":"fixed","amount":"1","rate":"2"}"#);
/// assert!(e.unwrap_err().to_string().contains("`rate` does not apply to a `fixed` charge"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ChargeDoc", into = "ChargeDoc")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "TariffCharge", tag = "type", rename_all = "snake_case"))]
pub enum Charge {
    /// A fixed amount per period or per day.
    Fixed(FixedCharge),
    /// A rate per unit.
    PerUnit(PerUnitCharge),
    /// Graduated tiers.
    Graduated(TieredCharge),
    /// Volume tiers.
    Volume(TieredCharge),
    /// A rate per package.
    Package(PackageCharge),
    /// Included units.
    Allowance(AllowanceCharge),
    /// Time-of-use prices.
    TimeOfUse(TimeOfUseCharge),
    /// Peak demand.
    Demand(DemandCharge),
    /// A minimum top-up.
    Minimum(MinimumCharge),
    /// A percentage (or tax).
    Percentage(PercentageCharge),
}

impl Charge {
    /// The charge's kind (its `type` key).
    pub fn kind(&self) -> ChargeKind {
        match self {
            Charge::Fixed(_) => ChargeKind::Fixed,
            Charge::PerUnit(_) => ChargeKind::PerUnit,
            Charge::Graduated(_) => ChargeKind::Graduated,
            Charge::Volume(_) => ChargeKind::Volume,
            Charge::Package(_) => ChargeKind::Package,
            Charge::Allowance(_) => ChargeKind::Allowance,
            Charge::TimeOfUse(_) => ChargeKind::TimeOfUse,
            Charge::Demand(_) => ChargeKind::Demand,
            Charge::Minimum(_) => ChargeKind::Minimum,
            Charge::Percentage(_) => ChargeKind::Percentage,
        }
    }

    /// The charge's id and description.
    pub fn name(&self) -> (&str, Option<&str>) {
        let (id, d) = match self {
            Charge::Fixed(c) => (&c.id, &c.description),
            Charge::PerUnit(c) => (&c.id, &c.description),
            Charge::Graduated(c) | Charge::Volume(c) => (&c.id, &c.description),
            Charge::Package(c) => (&c.id, &c.description),
            Charge::Allowance(c) => (&c.id, &c.description),
            Charge::TimeOfUse(c) => (&c.id, &c.description),
            Charge::Demand(c) => (&c.id, &c.description),
            Charge::Minimum(c) => (&c.id, &c.description),
            Charge::Percentage(c) => (&c.id, &c.description),
        };
        (id, d.as_deref())
    }

    /// The charge's id (unique within its version; the `charge` of its bill lines).
    pub fn id(&self) -> &str {
        self.name().0
    }

    /// The usage part of a usage charge (`None` for fixed, demand, minimum and percentage).
    pub fn usage(&self) -> Option<&Usage> {
        match self {
            Charge::PerUnit(c) => Some(&c.usage),
            Charge::Graduated(c) | Charge::Volume(c) => Some(&c.usage),
            Charge::Package(c) => Some(&c.usage),
            Charge::Allowance(c) => Some(&c.usage),
            Charge::TimeOfUse(c) => Some(&c.usage),
            _ => None,
        }
    }

    /// The records a usage or demand charge reads (`None` for the other kinds).
    pub fn selection(&self) -> Option<&Selection> {
        match self {
            Charge::Demand(c) => Some(&c.select),
            _ => self.usage().map(|u| &u.select),
        }
    }

    /// The schedule of a `time_of_use` charge or a TOU demand charge (`None` for the others).
    pub fn schedule(&self) -> Option<&Schedule> {
        match self {
            Charge::TimeOfUse(c) => Some(&c.prices.schedule),
            Charge::Demand(DemandCharge { price: DemandPrice::TimeOfUse(p), .. }) => Some(&p.schedule),
            _ => None,
        }
    }

    /// The charge as a percentage, if it is one.
    pub fn as_percentage(&self) -> Option<&PercentageCharge> {
        match self {
            Charge::Percentage(p) => Some(p),
            _ => None,
        }
    }
}

/// A charge as written in a tariff document: every key any kind takes, tagged by `type`. The
/// wire form of [`Charge`]; [`ChargeDoc::shape`] turns it into the kind's struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChargeDoc {
    id: String,
    #[serde(rename = "type")]
    kind: ChargeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metric: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    filter: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    months: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    divide_by: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    divide_rounding: Option<QuantityRounding>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    per: Option<Per>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    rate: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tiers: Vec<Tier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tier_basis: Option<Basis>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    package_size: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    free_units: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    included: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    periods: BTreeMap<String, PeriodPrice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    percent: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    applies_to: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    tax: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shared_ladder: Option<SharedLadder>,
}

/// The keys every usage charge takes.
const USAGE_KEYS: [&str; 6] = ["metric", "filter", "months", "unit", "divide_by", "divide_rounding"];

impl ChargeKind {
    /// The charge keys (besides `id`, `type` and `description`) a charge of this kind may set.
    fn keys(self) -> Vec<&'static str> {
        use ChargeKind as K;
        match self {
            K::Fixed => vec!["amount", "per", "unit"],
            K::PerUnit => [&USAGE_KEYS[..], &["rate"]].concat(),
            K::Graduated | K::Volume => [&USAGE_KEYS[..], &["tiers", "tier_basis"]].concat(),
            K::Package => [&USAGE_KEYS[..], &["rate", "package_size", "free_units"]].concat(),
            K::Allowance => [&USAGE_KEYS[..], &["included", "tier_basis"]].concat(),
            K::TimeOfUse => [&USAGE_KEYS[..], &["schedule", "periods", "tier_basis", "shared_ladder"]].concat(),
            K::Demand => {
                let select = ["metric", "filter", "months", "unit"];
                [&select[..], &["rate", "tiers", "schedule", "periods", "interval_minutes", "per"]].concat()
            }
            K::Minimum => vec!["amount", "per"],
            K::Percentage => vec!["percent", "applies_to", "tax"],
        }
    }
}

impl ChargeDoc {
    /// Each key and whether it is set.
    fn keys_set(&self) -> [(&'static str, bool); 21] {
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

    /// The charge of the kind `type` names, at `field` (`versions[0].charges[2]`): a key the
    /// kind does not take, or one it needs and lacks, is an error naming `field.key`.
    ///
    /// # Errors
    /// [`ErrorKind::Tariff`](crate::error::ErrorKind::Tariff) naming the field.
    pub(crate) fn shape(self, field: &str) -> Result<Charge> {
        let kind = self.kind;
        let keys = kind.keys();
        if let Some((name, _)) = self.keys_set().into_iter().find(|(name, set)| *set && !keys.contains(name)) {
            return Err(tariff_err(
                format!("{field}.{name}"),
                format!("`{name}` does not apply to a `{kind}` charge."),
            ));
        }
        let need = |name: &str, v: Option<Decimal>| {
            v.ok_or_else(|| tariff_err(format!("{field}.{name}"), format!("A `{kind}` charge needs `{name}`.")))
        };
        Ok(match kind {
            ChargeKind::Fixed => Charge::Fixed(FixedCharge {
                amount: need("amount", self.amount)?,
                per: self.per,
                unit: self.unit,
                id: self.id,
                description: self.description,
            }),
            ChargeKind::Minimum => Charge::Minimum(MinimumCharge {
                amount: need("amount", self.amount)?,
                per: self.per,
                id: self.id,
                description: self.description,
            }),
            ChargeKind::Percentage => Charge::Percentage(PercentageCharge {
                percent: need("percent", self.percent)?,
                applies_to: self.applies_to,
                tax: self.tax,
                id: self.id,
                description: self.description,
            }),
            ChargeKind::Demand => Charge::Demand(self.demand(field)?),
            _ => self.usage_charge(kind, field, &need)?,
        })
    }

    /// A usage charge (`per_unit`, `graduated`, `volume`, `package`, `allowance`, `time_of_use`).
    fn usage_charge(
        mut self,
        kind: ChargeKind,
        field: &str,
        need: &dyn Fn(&str, Option<Decimal>) -> Result<Decimal>,
    ) -> Result<Charge> {
        let usage = self.take_usage();
        let (id, description) = (self.id, self.description);
        Ok(match kind {
            ChargeKind::PerUnit => {
                Charge::PerUnit(PerUnitCharge { id, description, usage, rate: need("rate", self.rate)? })
            }
            ChargeKind::Graduated | ChargeKind::Volume => {
                let t = TieredCharge { id, description, usage, tiers: self.tiers, tier_basis: self.tier_basis };
                if kind == ChargeKind::Volume {
                    Charge::Volume(t)
                } else {
                    Charge::Graduated(t)
                }
            }
            ChargeKind::Package => Charge::Package(PackageCharge {
                rate: need("rate", self.rate)?,
                package_size: need("package_size", self.package_size)?,
                free_units: self.free_units,
                id,
                description,
                usage,
            }),
            ChargeKind::Allowance => Charge::Allowance(AllowanceCharge {
                included: need("included", self.included)?,
                tier_basis: self.tier_basis,
                id,
                description,
                usage,
            }),
            _ => {
                let schedule = self.schedule.ok_or_else(|| {
                    tariff_err(format!("{field}.schedule"), format!("A `{kind}` charge needs `schedule`."))
                })?;
                Charge::TimeOfUse(TimeOfUseCharge {
                    prices: TouPrices { schedule, periods: self.periods },
                    tier_basis: self.tier_basis,
                    shared_ladder: self.shared_ladder,
                    id,
                    description,
                    usage,
                })
            }
        })
    }

    /// The usage keys, moved out.
    fn take_usage(&mut self) -> Usage {
        Usage {
            select: Selection {
                metric: self.metric.take(),
                filter: std::mem::take(&mut self.filter),
                months: std::mem::take(&mut self.months),
            },
            unit: self.unit.take(),
            divide_by: self.divide_by.take(),
            divide_rounding: self.divide_rounding.take(),
        }
    }

    /// A demand charge: `rate`, `tiers`, or a `schedule` with `periods` — exactly one of them.
    fn demand(mut self, field: &str) -> Result<DemandCharge> {
        let usage = self.take_usage();
        let price = match (self.schedule, self.rate, self.tiers.is_empty()) {
            (Some(_), Some(_), _) | (Some(_), None, false) => {
                return Err(tariff_err(
                    format!("{field}.rate"),
                    "A TOU demand charge prices each period in `periods`, not with `rate` or `tiers`.",
                ))
            }
            (Some(schedule), None, true) => DemandPrice::TimeOfUse(TouPrices { schedule, periods: self.periods }),
            (None, _, _) if !self.periods.is_empty() => {
                return Err(tariff_err(format!("{field}.periods"), "`periods` prices the periods of a `schedule`."))
            }
            (None, Some(rate), true) => DemandPrice::Rate(rate),
            (None, None, false) => DemandPrice::Tiers(self.tiers),
            (None, _, _) => {
                return Err(tariff_err(
                    format!("{field}.rate"),
                    "A demand charge has either `rate` or `tiers` (or a `schedule` with `periods`).",
                ))
            }
        };
        Ok(DemandCharge {
            id: self.id,
            description: self.description,
            select: usage.select,
            unit: usage.unit,
            price,
            interval_minutes: self.interval_minutes,
            per: self.per,
        })
    }
}

impl From<Charge> for ChargeDoc {
    fn from(c: Charge) -> ChargeDoc {
        let kind = c.kind();
        match c {
            Charge::Fixed(c) => {
                ChargeDoc { amount: Some(c.amount), per: c.per, unit: c.unit, ..named(c.id, c.description, kind) }
            }
            Charge::Minimum(c) => ChargeDoc { amount: Some(c.amount), per: c.per, ..named(c.id, c.description, kind) },
            Charge::Percentage(c) => ChargeDoc {
                percent: Some(c.percent),
                applies_to: c.applies_to,
                tax: c.tax,
                ..named(c.id, c.description, kind)
            },
            Charge::PerUnit(c) => ChargeDoc { rate: Some(c.rate), ..with_usage(c.id, c.description, kind, c.usage) },
            Charge::Graduated(c) | Charge::Volume(c) => {
                ChargeDoc { tiers: c.tiers, tier_basis: c.tier_basis, ..with_usage(c.id, c.description, kind, c.usage) }
            }
            Charge::Package(c) => ChargeDoc {
                rate: Some(c.rate),
                package_size: Some(c.package_size),
                free_units: c.free_units,
                ..with_usage(c.id, c.description, kind, c.usage)
            },
            Charge::Allowance(c) => ChargeDoc {
                included: Some(c.included),
                tier_basis: c.tier_basis,
                ..with_usage(c.id, c.description, kind, c.usage)
            },
            Charge::TimeOfUse(c) => ChargeDoc {
                schedule: Some(c.prices.schedule),
                periods: c.prices.periods,
                tier_basis: c.tier_basis,
                shared_ladder: c.shared_ladder,
                ..with_usage(c.id, c.description, kind, c.usage)
            },
            Charge::Demand(c) => demand_doc(c),
        }
    }
}

/// A document of `kind` with only the id and description set.
fn named(id: String, description: Option<String>, kind: ChargeKind) -> ChargeDoc {
    ChargeDoc {
        id,
        kind,
        description,
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
        shared_ladder: None,
    }
}

fn with_usage(id: String, description: Option<String>, kind: ChargeKind, u: Usage) -> ChargeDoc {
    ChargeDoc {
        metric: u.select.metric,
        filter: u.select.filter,
        months: u.select.months,
        unit: u.unit,
        divide_by: u.divide_by,
        divide_rounding: u.divide_rounding,
        ..named(id, description, kind)
    }
}

fn demand_doc(c: DemandCharge) -> ChargeDoc {
    let usage = Usage { select: c.select, unit: c.unit, divide_by: None, divide_rounding: None };
    let base = ChargeDoc {
        interval_minutes: c.interval_minutes,
        per: c.per,
        ..with_usage(c.id, c.description, ChargeKind::Demand, usage)
    };
    match c.price {
        DemandPrice::Rate(rate) => ChargeDoc { rate: Some(rate), ..base },
        DemandPrice::Tiers(tiers) => ChargeDoc { tiers, ..base },
        DemandPrice::TimeOfUse(p) => ChargeDoc { schedule: Some(p.schedule), periods: p.periods, ..base },
    }
}

/// Serde's path for a lone charge (`serde_json::from_str::<Charge>`): the shape error's message
/// names the key. A tariff document names the whole path (`versions[0].charges[2].rate`).
impl TryFrom<ChargeDoc> for Charge {
    type Error = String;

    fn try_from(d: ChargeDoc) -> std::result::Result<Charge, String> {
        d.shape("charge")
            .map_err(|e| format!("{} (at `{}`).", e.message().trim_end_matches('.'), e.field().unwrap_or("charge")))
    }
}

impl Charge {
    /// Checks the values of the charge at `field` (e.g. `versions[0].charges[2]`), in this order:
    /// a non-empty id, the records it reads (`months` in 1–12), `divide_by` positive, then its
    /// kind's values (prices with at most 12 decimals, tiers, schedules). Which keys it has is its
    /// type's. The error names the offending field's path.
    pub(crate) fn check(&self, field: &str) -> Result<()> {
        if self.id().is_empty() {
            return Err(tariff_err(format!("{field}.id"), "A charge needs a non-empty id."));
        }
        if let Some(m) = self.selection().and_then(|s| s.months.iter().find(|m| !(1..=12).contains(*m))) {
            return Err(tariff_err(format!("{field}.months"), format!("{m} is not a month (1-12).")));
        }
        if self.usage().and_then(|u| u.divide_by).is_some_and(|d| d <= Decimal::ZERO) {
            return Err(tariff_err(format!("{field}.divide_by"), "divide_by must be positive."));
        }
        match self {
            Charge::Fixed(c) => c.check(field),
            Charge::Minimum(c) => c.check(field),
            Charge::PerUnit(c) => check_price(&format!("{field}.rate"), c.rate),
            Charge::Graduated(c) | Charge::Volume(c) => check_tiers(|| format!("{field}.tiers"), &c.tiers, true),
            Charge::Package(c) => c.check(field),
            Charge::Allowance(c) => nonneg(field, "included", Some(c.included)),
            Charge::TimeOfUse(c) => c.check(field),
            Charge::Demand(c) => c.check(field),
            Charge::Percentage(c) => check_price(&format!("{field}.percent"), c.percent),
        }
    }
}

impl FixedCharge {
    fn check(&self, field: &str) -> Result<()> {
        check_price(&format!("{field}.amount"), self.amount)?;
        if matches!(self.per, Some(Per::Year | Per::Month)) {
            return Err(tariff_err(format!("{field}.per"), "A fixed charge is per `period` or per `day`."));
        }
        Ok(())
    }
}

impl MinimumCharge {
    fn check(&self, field: &str) -> Result<()> {
        check_price(&format!("{field}.amount"), self.amount)?;
        if self.per == Some(Per::Month) {
            return Err(tariff_err(
                format!("{field}.per"),
                "A minimum is per `period`, `day` or `year` (`period` for a monthly cycle).",
            ));
        }
        Ok(())
    }
}

impl PackageCharge {
    fn check(&self, field: &str) -> Result<()> {
        check_price(&format!("{field}.rate"), self.rate)?;
        if self.package_size <= Decimal::ZERO {
            return Err(tariff_err(format!("{field}.package_size"), "package_size must be positive."));
        }
        nonneg(field, "free_units", self.free_units)
    }
}

impl TimeOfUseCharge {
    /// The prices, and with `shared_ladder` every period has tiers with the same `up_to` limits.
    fn check(&self, field: &str) -> Result<()> {
        self.prices.check(field)?;
        if self.shared_ladder.is_none() {
            return Ok(());
        }
        let limits = |p: &PeriodPrice| p.tiers.iter().map(|t| t.up_to).collect::<Vec<_>>();
        let mut first: Option<(&String, Vec<Option<Decimal>>)> = None;
        for (name, p) in &self.prices.periods {
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
}

impl DemandCharge {
    /// Per period or month, a standard interval, and valid prices.
    fn check(&self, field: &str) -> Result<()> {
        if let DemandPrice::Rate(r) = self.price {
            check_price(&format!("{field}.rate"), r)?;
        }
        if matches!(self.per, Some(Per::Day | Per::Year)) {
            return Err(tariff_err(format!("{field}.per"), "A demand peak is per `period` or per `month`."));
        }
        if let Some(m) = self.interval_minutes.filter(|m| ![5, 10, 15, 30, 60].contains(m)) {
            return Err(tariff_err(
                format!("{field}.interval_minutes"),
                format!("The demand interval is 5, 10, 15, 30 or 60 minutes, not {m}."),
            ));
        }
        match &self.price {
            DemandPrice::Rate(_) => Ok(()),
            DemandPrice::Tiers(tiers) => check_tiers(|| format!("{field}.tiers"), tiers, false),
            DemandPrice::TimeOfUse(p) => p.check(field),
        }
    }
}

impl TouPrices {
    /// The schedule, and every schedule period priced (a rate or tiers), no other period.
    fn check(&self, field: &str) -> Result<()> {
        let s = &self.schedule;
        s.check(&format!("{field}.schedule"))?;
        for name in &s.periods {
            let Some(p) = self.periods.get(name) else {
                return Err(tariff_err(format!("{field}.periods"), format!("The period '{name}' has no price.")));
            };
            let pf = || format!("{field}.periods.{name}");
            match (p.rate, p.tiers.is_empty()) {
                (Some(r), true) if price_fits(r) => {}
                (Some(r), true) => check_price(&format!("{}.rate", pf()), r)?,
                (None, false) => check_tiers(|| format!("{}.tiers", pf()), &p.tiers, false)?,
                _ => return Err(tariff_err(pf(), "A period price has either `rate` or `tiers`.")),
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
}

#[cfg(test)]
#[path = "charge_tests.rs"]
mod tests;
