//! A month of load prepared once for many tariffs (`Tariff::compare`): the sum and the largest
//! hourly sum of the bill's metric in each (weekday/weekend, local hour) cell of the month.
//! Every charge whose price depends only on those — time-of-use and tiered energy (not a
//! time-ordered ladder), hourly demand, kWh/kW limits, fixed charges, minimums — rates from the
//! 48 cells instead of the month's records, with the same lines: decimal sums are exact, so the
//! order of the additions does not change them.

use chrono::{Datelike, Timelike};
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
    /// The zone the cells are in (the bill's), and parsed.
    zone: String,
    pub(crate) tz: Tz,
    /// The bill's period in whole seconds and its local days (as `Tariff::period_secs` and
    /// `days_between` give them), worked out once for every tariff rated from the profile.
    pub(crate) span: (i64, i64, i64),
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
    /// `sums` and `peaks` as exact integers, when every record was summed on them: the rater
    /// adds and compares these, and converts only its results.
    exact: Option<Box<ExactCells>>,
}

impl MonthProfile {
    /// The profile of the records `req` covers ([`BillRequest::covers`]) and its metric in
    /// `records` (in time order), or `None` when per-subject usage is asked, the records are
    /// not in time order, carry a `direction` other than `import` (exports are netted per
    /// tariff) or the period is not within one local month.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidTimeZone`]; [`crate::ErrorKind::Overflow`] when a sum exceeds
    /// the decimal range.
    pub(crate) fn build(records: &[UsageRecord], req: &BillRequest) -> Result<Option<MonthProfile>> {
        Ok(match Self::build_ordered(records, req)? {
            Built::Month(p) => p,
            Built::Unsorted => None,
        })
    }

    /// [`MonthProfile::build`] in one pass over `records` that also checks their time order:
    /// [`Built::Unsorted`] when they are not in it.
    ///
    /// # Errors
    /// As [`MonthProfile::build`].
    pub(crate) fn build_ordered(records: &[UsageRecord], req: &BillRequest) -> Result<Built> {
        let tz: Tz = parse_time_zone(&req.time_zone)?;
        let first = req.period_start.with_timezone(&tz);
        let last = req
            .period_end
            .checked_sub_signed(chrono::Duration::seconds(1))
            .unwrap_or(req.period_end)
            .with_timezone(&tz);
        let checked = |p: Option<MonthProfile>| {
            if records.windows(2).all(|w| w[0].timestamp <= w[1].timestamp) {
                Built::Month(p)
            } else {
                Built::Unsorted
            }
        };
        if req.per_subject || (first.year(), first.month()) != (last.year(), last.month()) {
            return Ok(checked(None));
        }
        let empty = || MonthProfile::empty(req, tz, first.month0());
        match ExactCells::sum(records, req, tz) {
            Pass::Unsorted => Ok(Built::Unsorted),
            Pass::Exported => Ok(checked(None)),
            Pass::Summed(cells) => {
                let mut p = empty();
                if cells.write(&mut p) {
                    p.exact = Some(cells);
                    return Ok(Built::Month(Some(p)));
                }
                // A sum beyond 96 bits: decimal addition decides (it rounds).
                Ok(Built::Month(empty().sum_decimals(records, req, tz)?))
            }
            // A negative quantity (a correction), or a sum beyond `u128`: decimal sums.
            Pass::Inexact => match checked(None) {
                Built::Month(_) => Ok(Built::Month(empty().sum_decimals(records, req, tz)?)),
                Built::Unsorted => Ok(Built::Unsorted),
            },
        }
    }

    /// A profile of local month `month0` (0–11) in `req`'s zone with no records.
    fn empty(req: &BillRequest, tz: Tz, month0: u32) -> MonthProfile {
        let start = req.period_start.timestamp();
        let end = req.period_end.timestamp() + i64::from(req.period_end.timestamp_subsec_nanos() > 0);
        // A span whose days cannot be counted is never matched (the rater counts them itself).
        let days = super::days_between(tz, start, end).unwrap_or(-1);
        MonthProfile {
            zone: req.time_zone.clone(),
            tz,
            span: (start, end, days),
            month0,
            sums: [[Decimal::ZERO; 24]; 2],
            peaks: [[Decimal::ZERO; 24]; 2],
            used: [[false; 24]; 2],
            peak: Decimal::ZERO,
            exact: None,
        }
    }

    /// The cells from `records` by decimal addition (what [`ExactCells`] gives when it can).
    fn sum_decimals(mut self, records: &[UsageRecord], req: &BillRequest, tz: Tz) -> Result<Option<MonthProfile>> {
        let mut clock = LocalClock::new(tz);
        let mut run: Option<(i64, Decimal, usize, usize)> = None;
        for r in records {
            if !in_month(r, req) {
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
                        self.close(sum, w, h)?;
                    }
                    let (w, h) = cell(local);
                    run = Some((key, r.quantity, w, h));
                }
            }
        }
        if let Some((_, sum, w, h)) = run {
            self.close(sum, w, h)?;
        }
        Ok(Some(self))
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

/// Whether `r` is one of `req`'s records of its metric in its period.
#[inline]
fn in_month(r: &UsageRecord, req: &BillRequest) -> bool {
    req.covers(r) && r.metric == req.metric && r.timestamp >= req.period_start && r.timestamp < req.period_end
}

/// The scope half of [`in_month`] for a pass over many records: a request for one subject (or
/// every subject) without a filter compares two short strings inline.
enum Scope {
    /// One subject, or every one (empty).
    Subject,
    /// A set of subjects or a filter: [`BillRequest::covers`].
    Covers,
}

impl Scope {
    fn of(req: &BillRequest) -> Scope {
        if req.subjects.is_empty() && req.filter.is_empty() {
            Scope::Subject
        } else {
            Scope::Covers
        }
    }

    /// Whether `r` is in `req`'s scope and of its metric (the period is the caller's).
    #[inline]
    fn holds(&self, r: &UsageRecord, req: &BillRequest) -> bool {
        match self {
            Scope::Subject => {
                (req.subject.is_empty() || same(&r.subject, &req.subject)) && same(&r.metric, &req.metric)
            }
            Scope::Covers => req.covers(r) && r.metric == req.metric,
        }
    }
}

/// `a == b`, inline (subject and metric names are a few bytes: a call to `memcmp` costs more
/// than comparing them).
#[inline]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 32 {
        return a == b;
    }
    a.iter().zip(b).fold(0_u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The cell `(weekend, hour)` of local wall-clock seconds `local`.
fn cell(local: i64) -> (usize, usize) {
    let day = local.div_euclid(86_400);
    // 1970-01-01 was a Thursday: Saturday and Sunday are 2 and 3 days on.
    let weekend = usize::from(matches!((day + 3).rem_euclid(7), 5 | 6));
    let hour = usize::try_from(local.rem_euclid(86_400) / 3600).unwrap_or(0);
    (weekend, hour)
}

/// `10^0` to `10^28` (the scales a [`Decimal`] has).
const POW10: [u128; 29] = {
    let mut p = [1_u128; 29];
    let mut i = 1;
    while i < 29 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// What [`MonthProfile::build_ordered`] found.
#[allow(clippy::large_enum_variant)] // returned once per month and moved into the comparison's list
pub(crate) enum Built {
    /// The records are not in time order.
    Unsorted,
    /// The month's profile, or `None` when it cannot have one (see [`MonthProfile::build`]).
    Month(Option<MonthProfile>),
}

/// What [`ExactCells::sum`] found in a month's records.
enum Pass {
    /// The records are not in time order.
    Unsorted,
    /// Every record summed exactly.
    Summed(Box<ExactCells>),
    /// A record is exported energy: no profile (exports are netted per tariff).
    Exported,
    /// A negative quantity (a correction) or a sum beyond `u128`: the decimal path decides.
    Inexact,
}

/// A non-negative decimal held as an integer: its mantissa at the common scale of its
/// [`ExactCells`], and its own scale — the one `rust_decimal` addition gives the same sum (a
/// zero operand leaves the other as it is, else the larger scale), so that it converts back to
/// the very [`Decimal`] that adding the records one by one gives, digit for digit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Exact {
    m: u128,
    scale: u32,
}

impl Exact {
    /// `self + b` as [`crate::decimal::add`] gives it, or `None` when `u128` overflows.
    #[inline]
    fn plus(self, b: Exact) -> Option<Exact> {
        if self.m == 0 {
            Some(b)
        } else if b.m == 0 {
            Some(self)
        } else {
            Some(Exact { m: self.m.checked_add(b.m)?, scale: self.scale.max(b.scale) })
        }
    }

    /// As [`Decimal::max`]: `b` only when it is larger.
    #[inline]
    fn larger(self, b: Exact) -> Exact {
        if self.m < b.m {
            b
        } else {
            self
        }
    }
}

/// A month's cells summed on integers: one `u128` addition per record instead of a decimal one,
/// the same results (see [`Exact`]).
#[derive(Debug, Clone)]
struct ExactCells {
    /// The common scale of every mantissa: the largest scale of a record so far.
    scale: u32,
    sums: [[Exact; 24]; 2],
    peaks: [[Exact; 24]; 2],
    used: [[bool; 24]; 2],
    peak: Exact,
}

/// The local clock hour being summed: its key (the UTC instant it starts), its sum and its cell.
#[derive(Debug, Clone, Copy)]
struct Run {
    key: i64,
    sum: Exact,
    weekend: usize,
    hour: usize,
}

impl Run {
    /// No hour yet.
    const NONE: Run = Run { key: i64::MIN, sum: Exact { m: 0, scale: 0 }, weekend: 0, hour: 0 };
}

/// An instant as (seconds since the epoch, nanoseconds), ordered as the instant.
fn at(t: chrono::NaiveDateTime) -> (i64, u32) {
    (t.and_utc().timestamp(), t.nanosecond())
}

/// `10^0` to `10^19` (the powers of ten in a `u64`).
const POW10_U64: [u64; 20] = {
    let mut p = [1_u64; 20];
    let mut i = 1;
    while i < 20 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

impl ExactCells {
    /// The cells of `req`'s records in `records`, local hours in `tz`; [`Pass::Unsorted`] when
    /// `records` are not in time order (checked in the same pass).
    fn sum(records: &[UsageRecord], req: &BillRequest, tz: Tz) -> Pass {
        let mut c = ExactCells {
            scale: 0,
            sums: [[Exact::default(); 24]; 2],
            peaks: [[Exact::default(); 24]; 2],
            used: [[false; 24]; 2],
            peak: Exact::default(),
        };
        let mut clock = LocalClock::new(tz);
        let mut run = Run::NONE;
        // Instants as (seconds, nanoseconds): the period's ends and the last record's.
        let (start, end) = (at(req.period_start.naive_utc()), at(req.period_end.naive_utc()));
        let mut before = (i64::MIN, 0);
        // The local day of the current hour and whether it is a weekend day.
        let (mut day, mut weekend) = (i64::MIN, 0_usize);
        let mine = Scope::of(req);
        for r in records {
            let now = (r.timestamp.timestamp(), r.timestamp.timestamp_subsec_nanos());
            if now < before {
                return Pass::Unsorted;
            }
            before = now;
            if now < start || now >= end || !mine.holds(r, req) {
                continue;
            }
            if !r.dimensions.is_empty() && r.dimensions.get(DIRECTION).is_some_and(|d| d != IMPORT) {
                return Pass::Exported;
            }
            let Some(x) = c.exact(r.quantity, &mut run) else { return Pass::Inexact };
            let t = now.0;
            let local = clock.local(t);
            let key = t - local.rem_euclid(3600);
            if key == run.key {
                let Some(sum) = run.sum.plus(x) else { return Pass::Inexact };
                run.sum = sum;
                continue;
            }
            if run.key != i64::MIN && c.close(run).is_none() {
                return Pass::Inexact;
            }
            if local.div_euclid(86_400) != day {
                day = local.div_euclid(86_400);
                weekend = cell(local).0;
            }
            run = Run { key, sum: x, weekend, hour: ((local - day * 86_400) / 3600) as usize };
        }
        if run.key != i64::MIN && c.close(run).is_none() {
            return Pass::Inexact;
        }
        Pass::Summed(Box::new(c))
    }

    /// `q` at the common scale (raised to `q`'s when larger), or `None` for a negative `q` or a
    /// mantissa beyond `u128`.
    #[inline]
    fn exact(&mut self, q: Decimal, run: &mut Run) -> Option<Exact> {
        let s = q.scale();
        if q.is_sign_negative() {
            return None;
        }
        if s > self.scale {
            self.rescale(s, run)?;
        }
        let m = q.mantissa().unsigned_abs();
        let shift = (self.scale - s) as usize;
        let m = match u64::try_from(m) {
            Ok(m) if shift < POW10_U64.len() => u128::from(m) * u128::from(POW10_U64[shift]),
            _ => m.checked_mul(POW10[shift])?,
        };
        Some(Exact { m, scale: s })
    }

    /// Raise the common scale to `to` (every mantissa × 10^(to − scale)).
    fn rescale(&mut self, to: u32, run: &mut Run) -> Option<()> {
        let f = POW10[(to - self.scale) as usize];
        let cells = self.sums.iter_mut().chain(self.peaks.iter_mut()).flatten();
        for x in cells.chain([&mut self.peak, &mut run.sum]) {
            x.m = x.m.checked_mul(f)?;
        }
        self.scale = to;
        Some(())
    }

    /// One local clock hour's sum into its cell (as [`MonthProfile::close`]).
    #[inline]
    fn close(&mut self, run: Run) -> Option<()> {
        let (w, h) = (run.weekend, run.hour.min(23));
        self.sums[w][h] = self.sums[w][h].plus(run.sum)?;
        self.peaks[w][h] = self.peaks[w][h].larger(run.sum);
        self.used[w][h] = true;
        self.peak = self.peak.larger(run.sum);
        Some(())
    }

    /// `x` as a decimal, or `None` when it needs more than 96 bits.
    fn dec(&self, x: Exact) -> Option<Decimal> {
        let m = if x.scale == self.scale { x.m } else { x.m / POW10[(self.scale - x.scale) as usize] };
        Decimal::try_from_i128_with_scale(i128::try_from(m).ok()?, x.scale).ok()
    }

    /// The sums of the cells by period (`periods[weekend][hour]`, `n` periods), only used cells
    /// or all, added in cell order as decimal addition adds them; `None` when a sum needs more
    /// than 96 bits (decimal addition would round it: the caller adds decimals).
    fn period_sums(&self, periods: &[[usize; 24]; 2], n: usize, only_used: bool) -> Option<Vec<Decimal>> {
        let mut acc = vec![Exact::default(); n];
        for ((ps, xs), us) in periods.iter().zip(&self.sums).zip(&self.used) {
            for ((&p, x), &u) in ps.iter().zip(xs).zip(us) {
                if u || !only_used {
                    acc[p] = acc[p].plus(*x)?;
                }
            }
        }
        acc.into_iter().map(|x| self.dec(x)).collect()
    }

    /// The largest cell peak by period, as [`Decimal::max`] keeps it.
    fn period_peaks(&self, periods: &[[usize; 24]; 2], n: usize) -> Option<Vec<Decimal>> {
        let mut acc = vec![Exact::default(); n];
        for (ps, xs) in periods.iter().zip(&self.peaks) {
            for (&p, x) in ps.iter().zip(xs) {
                acc[p] = acc[p].larger(*x);
            }
        }
        acc.into_iter().map(|x| self.dec(x)).collect()
    }

    /// The cells as decimals into `p`; `false` when one needs more than 96 bits (where decimal
    /// addition would have rounded: the decimal path then gives what it gives).
    fn write(&self, p: &mut MonthProfile) -> bool {
        let dec = |x: Exact| self.dec(x);
        for w in 0..2 {
            for h in 0..24 {
                let (Some(sum), Some(peak)) = (dec(self.sums[w][h]), dec(self.peaks[w][h])) else { return false };
                (p.sums[w][h], p.peaks[w][h]) = (sum, peak);
            }
        }
        p.used = self.used;
        dec(self.peak).map(|k| p.peak = k).is_some()
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
            if let Some(sums) = pr.exact.as_ref().and_then(|x| x.period_sums(&periods, s.periods.len(), true)) {
                for (ps, us) in periods.iter().zip(&pr.used) {
                    for (&p, &u) in ps.iter().zip(us) {
                        used[p] |= u;
                    }
                }
                return Ok((sums, used));
            }
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
            if let Some(total) = pr.exact.as_ref().and_then(|x| x.period_sums(&[[0; 24]; 2], 1, false)) {
                return Ok(total[0]);
            }
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
        let periods = schedule.map_or([[0; 24]; 2], |s| pr.periods(s));
        if let Some(peaks) = pr.exact.as_ref().and_then(|x| x.period_peaks(&periods, n_periods)) {
            return peaks;
        }
        let mut peaks = vec![Decimal::ZERO; n_periods];
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
