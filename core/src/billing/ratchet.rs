//! The demand ratchet of a tariff ([`Ratchet`]) while rating: each month's peak is kept in the
//! year's state, and the bill's demand charges price the billing demand
//! `percent / 100 × max(this month's peak, the peaks of the `months` months before)` (SSC's
//! billing demand, as PySAM's URDB converter sets it up).

use rust_decimal::Decimal;

use super::{metering::MeterState, Bill, BillRequest, Rater, Use};
use crate::decimal::{add, div, mul};
use crate::error::Result;
use crate::record::UsageRecord;
use crate::tariff::Tariff;

/// What carries from one bill to the next in a year priced in order: the metering rule's
/// carried credit and the ratchet's monthly peaks (latest last, at most 12).
#[derive(Debug, Clone, Default)]
pub(crate) struct YearState {
    pub(crate) meter: MeterState,
    pub(crate) peaks: Vec<Decimal>,
}

/// One bill's ratchet: the percent, the earlier months' peaks of its window, and (set while
/// rating) this month's peak and the billing demand.
#[derive(Debug)]
pub(crate) struct RatchetMonth {
    percent: Decimal,
    earlier: Vec<Decimal>,
    pub(crate) peak: Decimal,
}

impl Tariff {
    /// One bill of a year priced in order: the metering rule and the ratchet read and update
    /// `state` (a tariff with neither rates the bill alone).
    pub(crate) fn rate_in_year(&self, req: &BillRequest, records: &[UsageRecord], state: &mut YearState) -> Result<Bill> {
        let mut ratchet = self.ratchet.as_ref().map(|r| {
            let n = usize::try_from(r.months).unwrap_or(12).min(state.peaks.len());
            RatchetMonth { percent: r.percent, earlier: state.peaks[state.peaks.len() - n..].to_vec(), peak: Decimal::ZERO }
        });
        let bill = if self.metering.is_some() {
            self.rate_metered(req, records, &mut state.meter, ratchet.as_mut())?
        } else {
            self.rate_hooked(req, records, None, ratchet.as_mut())?
        };
        if let Some(r) = ratchet {
            state.peaks.push(r.peak);
            if state.peaks.len() > 12 {
                state.peaks.remove(0);
            }
        }
        Ok(bill)
    }
}

impl Rater<'_> {
    /// Before the charges: this month's peak (the largest kWh of the bill's metric in one local
    /// clock hour) and the billing demand every demand charge prices.
    pub(super) fn prepare_ratchet(&mut self, uses: &[Use<'_>]) -> Result<()> {
        let Some(r) = self.ratchet.take() else { return Ok(()) };
        let mut peak = Decimal::ZERO;
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
