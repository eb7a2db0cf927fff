//! A month of load prepared once for many tariffs (`Tariff::compare`): the sum and the largest
//! hourly sum of the bill's metric in each (weekday/weekend, local hour) cell of the month.
//! Every charge whose price depends only on those — time-of-use and tiered energy (not a
//! time-ordered ladder), hourly demand, kWh/kW limits, fixed charges, minimums — rates from the
//! 48 cells instead of the month's records, with the same lines: decimal sums are exact, so the
//! order of the additions does not change them.

use chrono::Datelike;
use rust_decimal::Decimal;

use super::{is_weekend, BillRequest, LocalClock, Rater, Use};
use crate::decimal::add;
use crate::error::Result;
use crate::record::UsageRecord;
use crate::tariff::metering::{DIRECTION, IMPORT};
use crate::tariff::{Charge, Per, Schedule, Selection, SharedLadder, Tariff};
use crate::time::{parse_time_zone, Tz};

/// One local month of one subject's load, by (weekend, local hour).
#[derive(Debug, Clone)]
pub(crate) struct MonthProfile {
    /// The zone the cells are in (the bill's).
    zone: String,
    /// The local month (0–11).
    pub(crate) month0: u32,
    /// `[weekend][hour]`: the sum of the cell's records.
    pub(crate) sums: [[Decimal; 24]; 2],
    /// `[weekend][hour]`: the largest sum of one local clock hour in the cell.
    pub(crate) peaks: [[Decimal; 24]; 2],
    /// `[weekend][hour]`: the cell has records.
    pub(crate) used: [[bool; 24]; 2],
    /// The largest sum of one local clock hour of the month.
    pub(crate) peak: Decimal,
}

impl MonthProfile {
    /// The profile of the records `req` covers ([`BillRequest::covers`]) and its metric in
    /// `records` (in time order), or `None` when per-subject usage is asked, the records are
    /// not in time order, carry a `direction` other than `import` (exports are
    /// netted per tariff)
    /// or the period is not within one local month.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidTimeZone`]; [`crate::ErrorKind::Overflow`] when a sum exceeds
    /// the decimal range.
    pub(crate) fn build(records: &[UsageRecord], req: &BillRequest) -> Result<Option<MonthProfile>> {
        let tz: Tz = parse_time_zone(&req.time_zone)?;
        let first = req.period_start.with_timezone(&tz);
        let last = req
            .period_end
            .checked_sub_signed(chrono::Duration::seconds(1))
            .unwrap_or(req.period_end)
            .with_timezone(&tz);
        if req.per_subject
            || (first.year(), first.month()) != (last.year(), last.month())
            || !records.windows(2).all(|w| w[0].timestamp <= w[1].timestamp)
        {
            return Ok(None);
        }
        let mut p = MonthProfile {
            zone: req.time_zone.clone(),
            month0: first.month0(),
            sums: [[Decimal::ZERO; 24]; 2],
            peaks: [[Decimal::ZERO; 24]; 2],
            used: [[false; 24]; 2],
            peak: Decimal::ZERO,
        };
        let mut clock = LocalClock::new(tz);
        let mut run: Option<(i64, Decimal, usize, usize)> = None;
        for r in records {
            if !req.covers(r)
                || r.metric != req.metric
                || r.timestamp < req.period_start
                || r.timestamp >= req.period_end
            {
                continue;
            }
            if r.dimensions.get(DIRECTION).is_some_and(|d| d != IMPORT) {
                return Ok(None);
            }
            let t = r.timestamp.timestamp();
            let local = clock.local(t);
            let key = t - local.rem_euclid(3600);
            match &mut run {
                Some((k, sum, _, _)) if *k == key => *sum = add(*sum, r.quantity)?,
                _ => {
                    if let Some((_, sum, w, h)) = run {
                        p.close(sum, w, h)?;
                    }
                    let day = local.div_euclid(86_400);
                    // 1970-01-01 was a Thursday: Saturday and Sunday are 2 and 3 days on.
                    let weekend = usize::from(matches!((day + 3).rem_euclid(7), 5 | 6));
                    let hour = usize::try_from(local.rem_euclid(86_400) / 3600).unwrap_or(0);
                    run = Some((key, r.quantity, weekend, hour));
                }
            }
        }
        if let Some((_, sum, w, h)) = run {
            p.close(sum, w, h)?;
        }
        Ok(Some(p))
    }

    /// One local clock hour's sum into its cell.
    fn close(&mut self, sum: Decimal, weekend: usize, hour: usize) -> Result<()> {
        self.sums[weekend][hour] = add(self.sums[weekend][hour], sum)?;
        self.peaks[weekend][hour] = self.peaks[weekend][hour].max(sum);
        self.used[weekend][hour] = true;
        self.peak = self.peak.max(sum);
        Ok(())
    }

    /// The period of `s` for each cell `[weekend][hour]` of the month.
    pub(crate) fn periods(&self, s: &Schedule) -> [[usize; 24]; 2] {
        let mut out = [[0; 24]; 2];
        for (w, row) in out.iter_mut().enumerate() {
            for (h, p) in row.iter_mut().enumerate() {
                *p = s.period_at(self.month0, w == 1, h as u32);
            }
        }
        out
    }

    /// Whether `t` can rate this month from the profile: one version, the bill's zone, and
    /// charges that price whole-month sums and hourly peaks of every record of the metric.
    pub(crate) fn fits(&self, t: &Tariff) -> bool {
        t.versions.len() == 1
            && t.time_zone.as_ref().is_none_or(|z| *z == self.zone)
            && t.versions[0].charges.iter().all(|c| {
                // `months` needs no check: every record of the profile is in its one local month, so a
                // charge either takes them all or is left out of the bill.
                let plain = c.selection().is_none_or(|s| s.metric.is_none() && s.filter.is_empty());
                let no_holidays = c.schedule().is_none_or(|s| s.holidays.is_empty());
                plain
                    && no_holidays
                    && match c {
                        Charge::Fixed(_)
                        | Charge::Minimum(_)
                        | Charge::Percentage(_)
                        | Charge::PerUnit(_)
                        | Charge::Graduated(_)
                        | Charge::Package(_) => true,
                        Charge::TimeOfUse(t) => t.shared_ladder != Some(SharedLadder::TimeOrder),
                        Charge::Demand(d) => d.interval_minutes.unwrap_or(60) == 60 && d.per != Some(Per::Month),
                        Charge::Allowance(_) | Charge::Volume(_) => false,
                    }
            })
    }
}

impl Rater<'_> {
    /// The charge's sum per period of `s` (and whether each period has records): from the
    /// profile when rating from one, else from `uses`.
    pub(super) fn period_sums(
        &self,
        sel: &Selection,
        s: &Schedule,
        uses: &[Use<'_>],
    ) -> Result<(Vec<Decimal>, Vec<bool>)> {
        let mut sums = vec![Decimal::ZERO; s.periods.len()];
        let mut used = vec![false; s.periods.len()];
        if let Some(pr) = self.profile {
            let periods = pr.periods(s);
            for ((ps, qs), us) in periods.iter().zip(&pr.sums).zip(&pr.used) {
                for ((&p, q), &u) in ps.iter().zip(qs).zip(us) {
                    if u {
                        sums[p] = add(sums[p], *q)?;
                        used[p] = true;
                    }
                }
            }
            return Ok((sums, used));
        }
        for u in uses.iter().filter(|u| Self::matches(sel, u)) {
            let p = s.period_at(u.date.month0(), is_weekend(s, u.date), u.hour());
            sums[p] = add(sums[p], u.q)?;
            used[p] = true;
        }
        Ok((sums, used))
    }

    /// The charge's total over the bill: from the profile, else from `uses`.
    pub(super) fn charge_total(&self, sel: &Selection, uses: &[Use<'_>]) -> Result<Decimal> {
        let mut sum = Decimal::ZERO;
        if let Some(pr) = self.profile {
            for row in &pr.sums {
                for q in row {
                    sum = add(sum, *q)?;
                }
            }
            return Ok(sum);
        }
        for u in uses.iter().filter(|u| Self::matches(sel, u)) {
            sum = add(sum, u.q)?;
        }
        Ok(sum)
    }

    /// The largest hourly sum per period of the charge's schedule (one period without one), from
    /// the profile.
    pub(super) fn profile_peaks(schedule: Option<&Schedule>, pr: &MonthProfile, n_periods: usize) -> Vec<Decimal> {
        let mut peaks = vec![Decimal::ZERO; n_periods];
        let periods = schedule.map_or([[0; 24]; 2], |s| pr.periods(s));
        for (ps, ks) in periods.iter().zip(&pr.peaks) {
            for (&p, k) in ps.iter().zip(ks) {
                peaks[p] = peaks[p].max(*k);
            }
        }
        peaks
    }
}

#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;
