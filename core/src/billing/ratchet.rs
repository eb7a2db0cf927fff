//! The demand ratchet of a tariff ([`crate::tariff::ratchet::Ratchet`]) while rating: each month's peak is kept in the
//! year's state, and the bill's demand charges price the billing demand
//! `percent / 100 × max(this month's peak, the peaks of the `months` months before)` (SSC's
//! billing demand, as PySAM's URDB converter sets it up).

use rust_decimal::Decimal;

use super::{Rater, Use};
use crate::decimal::{add, div, mul};
use crate::error::Result;

/// One bill's ratchet: the percent, the earlier months' peaks of its window, and (set while
/// rating) this month's peak and the billing demand.
#[derive(Debug)]
pub(crate) struct RatchetMonth {
    pub(crate) percent: Decimal,
    pub(crate) earlier: Vec<Decimal>,
    pub(crate) peak: Decimal,
}

impl Rater<'_> {
    /// Before the charges: this month's peak (the largest kWh of the bill's metric in one local
    /// clock hour) and the billing demand every demand charge prices.
    pub(super) fn prepare_ratchet(&mut self, uses: &[Use<'_>]) -> Result<()> {
        let Some(r) = self.ratchet.take() else { return Ok(()) };
        let mut peak = self.profile.map_or(Decimal::ZERO, |p| p.peak);
        let mut run: Option<(i64, Decimal)> = None;
        for u in uses.iter().filter(|u| u.bill_metric) {
            let key = u.t - u.local.rem_euclid(3600);
            match &mut run {
                Some((k, sum)) if *k == key => *sum = add(*sum, u.q)?,
                _ => {
                    if let Some((_, sum)) = run {
                        peak = peak.max(sum);
                    }
                    run = Some((key, u.q));
                }
            }
        }
        if let Some((_, sum)) = run {
            peak = peak.max(sum);
        }
        r.peak = peak;
        let top = r.earlier.iter().copied().fold(peak, Decimal::max);
        self.billing_demand = Some(mul(top, div(r.percent, Decimal::ONE_HUNDRED)?)?);
        self.ratchet = Some(r);
        Ok(())
    }
}
