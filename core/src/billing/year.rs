//! A year of bills priced in order (`Tariff::compare`): what carries from one month's bill to
//! the next — the metering rule's carried credit (`billing/metering.rs`), the ratchet's monthly
//! peaks (`billing/ratchet.rs`) and the annual minimum's running total, settled in December
//! (SSC `ur_annual_min_charge`).

use chrono::Datelike;
use rust_decimal::Decimal;

use super::{
    metering::MeterState, profile::MonthProfile, ratchet::RatchetMonth, Bill, BillLine, BillRequest, Pending, Rater,
};
use crate::decimal::{add, sub};
use crate::error::Result;
use crate::record::UsageRecord;
use crate::tariff::Tariff;
use crate::time::parse_time_zone;

/// Whether a bill's lines carry their explanation text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Text {
    /// Every line with its description, unit, charge id and TOU period, and the notes' lines.
    #[default]
    Lines,
    /// Only what the totals need ([`crate::billing::compare::PreparedLoad::compare`]): the
    /// lines are rated with their amounts and charge ids only (no text) and the bill keeps none
    /// (subtotal, taxes and total are those of the full bill).
    TotalsOnly,
}

/// What carries from one bill to the next in a year priced in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct YearState {
    /// Whether the year's bills carry their explanation text.
    pub(crate) text: Text,
    /// The metering rule's carried kWh or credit.
    pub(crate) meter: MeterState,
    /// The ratchet's monthly peaks (kW), latest last, at most 12.
    pub(crate) peaks: Vec<Decimal>,
    /// The annual minimum's running total of the year's bills (each before minimums, at least 0).
    pub(crate) year_total: Decimal,
}

/// One bill's part of the annual minimum: the total of the year's earlier bills, whether the
/// bill ends the year (a December), and (set while rating) this bill before minimums.
#[derive(Debug)]
pub(crate) struct AnnualMonth {
    amount: Decimal,
    before: Decimal,
    december: bool,
    pub(crate) base: Decimal,
}

impl Tariff {
    /// One bill of a year priced in order: the metering rule, the ratchet and the annual
    /// minimum read and update `state` (a tariff with none of them rates the bill alone); the
    /// bill rates from `profile` (the month's load by cell) when the tariff fits it.
    pub(crate) fn rate_in_year(
        &self,
        req: &BillRequest,
        records: &[UsageRecord],
        state: &mut YearState,
        profile: Option<&MonthProfile>,
    ) -> Result<Bill> {
        let profile = profile.filter(|p| p.fits(self));
        let mut ratchet = self.ratchet.as_ref().map(|r| {
            let n = usize::try_from(r.months).unwrap_or(12).min(state.peaks.len());
            RatchetMonth {
                percent: r.percent,
                earlier: state.peaks[state.peaks.len() - n..].to_vec(),
                peak: Decimal::ZERO,
            }
        });
        let mut annual = match self.annual_minimum {
            Some(amount) => {
                let tz = parse_time_zone(&req.time_zone)?;
                let last = req.period_end.checked_sub_signed(chrono::Duration::seconds(1)).unwrap_or(req.period_end);
                let december = last.with_timezone(&tz).month() == 12;
                Some(AnnualMonth { amount, before: state.year_total, december, base: Decimal::ZERO })
            }
            None => None,
        };
        let bill = if self.metering.is_some() {
            self.rate_metered(req, records, &mut state.meter, ratchet.as_mut(), annual.as_mut(), profile, state.text)?
        } else {
            self.rate_hooked(req, records, None, ratchet.as_mut(), annual.as_mut(), profile, state.text)?
        };
        if let Some(r) = ratchet {
            state.peaks.push(r.peak);
            if state.peaks.len() > 12 {
                state.peaks.remove(0);
            }
        }
        if let Some(a) = annual {
            state.year_total = if a.december { Decimal::ZERO } else { add(a.before, a.base)? };
        }
        Ok(bill)
    }
}

impl Rater<'_> {
    /// Before the minimums: this bill's subtotal (at least 0) counts toward the annual minimum.
    pub(super) fn annual_base(&mut self, subtotal: Decimal) {
        if let Some(a) = self.annual.as_deref_mut() {
            a.base = subtotal.max(Decimal::ZERO);
        }
    }

    /// After the monthly minimum, in December: the top-up of the year's bills to the annual
    /// minimum (SSC: the year's bills before minimums, each at least 0, against
    /// `ur_annual_min_charge`).
    pub(super) fn annual_top_up(&mut self) -> Result<()> {
        let Some(a) = self.annual.as_deref() else { return Ok(()) };
        if !a.december {
            return Ok(());
        }
        let year = add(a.before, a.base)?;
        if year >= a.amount {
            return Ok(());
        }
        let top_up = self.rounding.round(sub(a.amount, year, "An annual minimum's top-up")?, self.dp)?;
        let (amount, unit) = (a.amount, self.tariff.currency.clone());
        let Some(piece) = self.pieces.last_mut() else { return Ok(()) };
        piece.push(Pending {
            line: BillLine {
                charge: "annual_minimum".into(),
                description: format!("Annual minimum {amount} year-end top-up (bills of the year {year})"),
                quantity: Decimal::ONE,
                unit,
                rate: amount.normalize(),
                amount: top_up,
                tier: None,
                tou_period: None,
            },
            tax: false,
        });
        Ok(())
    }
}
