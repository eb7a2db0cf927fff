//! Demand ratchets (URDB `lookbackpercent`, `lookbackrange`, `lookbackmonths`): the demand a
//! bill's demand charges price is a percentage of the largest monthly peak of a lookback window.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::tariff::tariff_err;

/// A demand ratchet (tariff key `ratchet`): every demand charge of a bill prices the **billing
/// demand** `percent / 100 × max(peak of this month and of the `months` months before it)`
/// instead of its own peak — the peak of a month being its largest kWh in one local clock hour
/// (average kW) of the bill's metric. A time-of-use demand charge prices that billing demand in
/// each of its periods that occur in the month. This is SAM/PySAM's billing demand as its URDB
/// converter sets it up (`ur_billing_demand_lookback_percentages` with "actual peak" off, SSC's
/// `ur_dc_billing_demand_periods` on every period).
///
/// Months before the first bill of a comparison count as zero (PySAM with
/// `ur_yearzero_usage_peaks` of zeros); a single bill ([`crate::Tariff::bill`]) has no earlier
/// months. JSON: `{"percent": "80", "months": 11}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct Ratchet {
    /// Percent of the window's largest peak (80 = 80 %).
    #[serde(with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub percent: Decimal,
    /// How many months before the bill's month the window reaches back (0–12).
    pub months: u32,
}

impl Ratchet {
    /// # Errors
    /// [`crate::ErrorKind::Tariff`] naming `ratchet.percent` (negative, or more than 12 decimal
    /// places) or `ratchet.months` (above 12).
    pub(crate) fn check(&self) -> Result<()> {
        if self.percent < Decimal::ZERO || self.percent.scale() > super::MAX_PRICE_DECIMALS {
            return Err(tariff_err(
                "ratchet.percent",
                "A ratchet percent is at least 0 with at most 12 decimal places.",
            ));
        }
        if self.months > 12 {
            return Err(tariff_err("ratchet.months", "A ratchet looks back at most 12 months."));
        }
        Ok(())
    }
}
