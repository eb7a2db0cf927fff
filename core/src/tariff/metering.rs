//! Metering rules: how energy exported to the grid (a household with solar) is netted against
//! imported energy and credited — NREL SAM/PySAM `Utilityrate5`'s four rules (`ur_metering_option`),
//! the URDB `dgrules`.
//!
//! Exported energy is a usage record with the dimension `direction = "export"` (a non-negative
//! quantity in the bill's metric); records without the dimension, or with `direction = "import"`,
//! are imported energy. Only a tariff with a [`Metering`] reads the dimension: the netting and
//! crediting happen in `billing/metering.rs`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::tariff::{tariff_err, PeriodPrice, Schedule, Tier};

/// The dimension that marks exported energy on a usage record.
pub const DIRECTION: &str = "direction";
/// The `direction` value of exported energy.
pub const EXPORT: &str = "export";
/// The `direction` value of imported energy (the same as leaving the dimension out).
pub const IMPORT: &str = "import";

/// How imports and exports are netted and exports credited (SSC `ur_metering_option`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum MeteringRule {
    /// Net metering (URDB "Net Metering", SSC option 0): each month's exports offset its imports
    /// kWh for kWh; a month's excess kWh carries to the next month; the excess left after
    /// December is credited at `year_end_rate` (0 by default, as PySAM's converter leaves it).
    NetMetering,
    /// Net billing (URDB "Net Billing Instantaneous", SSC option 2): imports and exports are
    /// netted per instant (records with the same timestamp); net imports are priced by the
    /// charges, net exports credited at the sell rate of their period in the same month.
    NetBillingInstantaneous,
    /// Net billing with dollar credits carried over (URDB "Net Billing Hourly", SSC option 3):
    /// netted per local clock hour; a month's export credits are applied against the next
    /// month's energy charges (never below zero, the rest carried on); the credit left after
    /// December is paid in December's bill.
    NetBillingHourly,
    /// Buy all, sell all (URDB "Buy All Sell All", SSC option 4): no netting; every import is
    /// priced by the charges, every export credited at its period's sell rate after the minimum.
    BuyAllSellAll,
}

crate::error::enum_names!(
    MeteringRule,
    "metering rule",
    [
        NetMetering = "net_metering",
        NetBillingInstantaneous = "net_billing_instantaneous",
        NetBillingHourly = "net_billing_hourly",
        BuyAllSellAll = "buy_all_sell_all",
    ]
);

/// A tariff's metering rule and the sell rates of exported energy (tariff key `metering`).
///
/// JSON: `{"rule": "net_billing_instantaneous", "energy_charge": "energy", "schedule": Schedule?,
/// "sell": {"p0": {"rate": "0.03"}, …}, "year_end_rate": "0.02"?}`. With a `schedule`, `sell` has
/// one price per schedule period (looked up at each export's local time in the tariff's zone);
/// without one, `sell` has exactly one entry, used at every time. A price with `tiers` (a URDB
/// period whose tiers have different sell rates) is kept but cannot credit exports yet: billing
/// exports in that period is an error naming `metering.sell`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct Metering {
    /// The rule.
    pub rule: MeteringRule,
    /// Id of the tariff's energy charge: net metering nets its kWh; net billing with carried
    /// credits applies them against its lines only.
    pub energy_charge: String,
    /// Periods of the sell rates (absent: one rate at every time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub schedule: Option<Schedule>,
    /// Sell rate per period, in the major unit per unit of the metric (e.g. $/kWh).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "ts", ts(as = "Option<BTreeMap<String, PeriodPrice>>", optional))]
    pub sell: BTreeMap<String, PeriodPrice>,
    /// Net metering only: the credit per kWh of excess left after December (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(optional, type = "DecimalString"))]
    pub year_end_rate: Option<Decimal>,
}

impl Metering {
    /// Check the metering block: a known energy charge id (given as `charge_ids`), a valid
    /// schedule, and one sell rate per period (exactly one without a schedule).
    ///
    /// # Errors
    /// [`crate::ErrorKind::Tariff`] naming `metering.…`.
    pub(crate) fn check(&self, charge_ids: &[&str]) -> Result<()> {
        if !charge_ids.contains(&self.energy_charge.as_str()) {
            return Err(tariff_err(
                "metering.energy_charge",
                format!("No charge has the id '{}'.", self.energy_charge),
            ));
        }
        match &self.schedule {
            Some(s) => {
                s.check("metering.schedule")?;
                if let Some(p) = s.periods.iter().find(|p| !self.sell.contains_key(*p)) {
                    return Err(tariff_err("metering.sell", format!("The period '{p}' has no sell rate.")));
                }
                if let Some(k) = self.sell.keys().find(|k| !s.periods.contains(k)) {
                    return Err(tariff_err("metering.sell", format!("'{k}' is not a period of the schedule.")));
                }
            }
            None if self.sell.len() > 1 => {
                return Err(tariff_err("metering.sell", "Without a schedule there is one sell rate."));
            }
            None => {}
        }
        let rates = self.sell.values().flat_map(|p| p.rate.iter().chain(p.tiers.iter().map(|t: &Tier| &t.rate)));
        if rates.chain(self.year_end_rate.iter()).any(|r| r.scale() > super::MAX_PRICE_DECIMALS) {
            return Err(tariff_err("metering.sell", "A sell rate has more than 12 decimal places."));
        }
        Ok(())
    }

    /// The sell rate at local month `month0` (0–11), weekend flag and local hour.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Tariff`] naming `metering.sell` when the period's sell rates are tiered.
    pub(crate) fn sell_at(&self, month0: u32, weekend: bool, hour: u32) -> Result<Decimal> {
        let (name, price) = match &self.schedule {
            Some(s) => {
                let p = &s.periods[s.period_at(month0, weekend, hour)];
                (p.as_str(), self.sell.get(p))
            }
            None => self.sell.iter().next().map_or(("", None), |(k, v)| (k.as_str(), Some(v))),
        };
        match price {
            None => Ok(Decimal::ZERO),
            Some(p) if p.tiers.is_empty() => Ok(p.rate.unwrap_or_default()),
            Some(_) => Err(tariff_err(
                format!("metering.sell.{name}"),
                format!("The period '{name}' has sell rates that differ by tier; crediting exports on a tier ladder is not modelled."),
            )),
        }
    }
}
