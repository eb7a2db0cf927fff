//! Tariff comparison: one load priced under many tariffs, month by month, cheapest first.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::billing::profile::{Built, MonthProfile};
use crate::billing::year::Text;
use crate::billing::{Bill, BillRequest};
use crate::decimal::add;
use crate::error::{Error, ErrorKind, Result};
use crate::record::UsageRecord;
use crate::tariff::Tariff;
use crate::time::{local_midnight, parse_time_zone};

/// The bill total of one billing period of a [`Comparison`].
///
/// JSON: `{"period": "2018-01", "total": "123.45"}` (money as a string with the minor-unit digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PeriodTotal {
    /// The local calendar month `YYYY-MM` of the bill.
    pub period: String,
    /// The bill's total, in the tariff's currency (major unit, minor-unit digits).
    #[serde(with = "crate::decimal::money_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub total: Decimal,
}

/// One tariff's result in [`Tariff::compare`]: the sum of its monthly bills, or why it cannot
/// price the load.
///
/// JSON: `{"tariff": NAME, "total": "…" | null, "periods": [PeriodTotal…], "error": null | "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Comparison {
    /// The tariff's name as given to [`Tariff::compare`].
    pub tariff: String,
    /// Sum of the period totals; `None` when the tariff cannot price the load.
    #[serde(with = "opt_money")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub total: Option<Decimal>,
    /// One total per local calendar month of the request, in order (empty on error).
    pub periods: Vec<PeriodTotal>,
    /// Why the tariff cannot price the load (the first bill's error), else `None`.
    pub error: Option<String>,
}

/// A local calendar month of a comparison: `(label YYYY-MM, start, end)`.
type Month = (String, DateTime<Utc>, DateTime<Utc>);

/// Every local calendar month of the request cut to `[start, end)` in its zone.
fn months(req: &BillRequest) -> Result<Vec<Month>> {
    let tz = parse_time_zone(&req.time_zone)?;
    let (start, end) = (req.period_start, req.period_end);
    if end <= start {
        return Err(Error::new(ErrorKind::InvalidQuery, "The comparison period is empty.").with_field("period_end"));
    }
    let bad = || Error::new(ErrorKind::InvalidQuery, "The comparison period is out of range.");
    let mut out = Vec::new();
    let local = start.with_timezone(&tz).date_naive();
    let mut first = NaiveDate::from_ymd_opt(local.year(), local.month(), 1).ok_or_else(bad)?;
    while out.len() <= 1200 {
        let next = first.checked_add_months(chrono::Months::new(1)).ok_or_else(bad)?;
        let (a, b) = (local_midnight(tz, first)?, local_midnight(tz, next)?);
        let a = DateTime::from_timestamp(a, 0).ok_or_else(bad)?.max(start);
        let b = DateTime::from_timestamp(b, 0).ok_or_else(bad)?.min(end);
        if a < b {
            out.push((format!("{:04}-{:02}", first.year(), first.month()), a, b));
        }
        if b >= end {
            return Ok(out);
        }
        first = next;
    }
    Err(Error::new(ErrorKind::InvalidQuery, "A comparison spans at most 1,200 months.").with_field("period_end"))
}

impl Tariff {
    /// Price one load under many tariffs: for each `(name, tariff)`, the bill of every local
    /// calendar month of `[req.period_start, req.period_end)` (cut at both ends) for
    /// `req.subject`'s `req.metric`, and their sum. The result is ordered cheapest first (ties
    /// by name); tariffs that cannot price the load (a tariff error, a version not in effect,
    /// an exported quantity on a tiered charge…) come last with `error` set and no total.
    /// Bills are those of [`Tariff::bill`], line rounding included. The load is prepared once
    /// ([`PreparedLoad::new`]) for all the tariffs; to price it under more tariffs later, keep a
    /// [`PreparedLoad`] and call [`PreparedLoad::compare`].
    ///
    /// ```
    /// use meterkit::{BillRequest, Tariff, UsageRecord};
    /// use chrono::{TimeZone, Utc};
    /// let flat = Tariff::from_toml("currency = \"USD\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"0.20\"")?;
    /// let cheap = Tariff::from_toml("currency = \"USD\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"0.10\"")?;
    /// let r = UsageRecord::new("t", "r1", "home", "kwh", "100".parse()?, Utc.with_ymd_and_hms(2024, 1, 5, 0, 0, 0).unwrap());
    /// let req = BillRequest::new("t", "home", "kwh", Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
    ///     Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap(), "UTC");
    /// let ranked = Tariff::compare([("flat", &flat), ("cheap", &cheap)], &req, &[r])?;
    /// assert_eq!(ranked[0].tariff, "cheap");
    /// assert_eq!(ranked[0].total.unwrap().to_string(), "10.00");
    /// assert_eq!(ranked[0].periods.len(), 2); // 2024-01 and 2024-02
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::InvalidTimeZone`]; [`ErrorKind::InvalidQuery`] for an empty period or one
    /// of more than 1,200 months. A tariff's own errors are in its [`Comparison::error`].
    pub fn compare<'t>(
        tariffs: impl IntoIterator<Item = (&'t str, &'t Tariff)>,
        req: &BillRequest,
        records: &[UsageRecord],
    ) -> Result<Vec<Comparison>> {
        Ok(PreparedLoad::new(req, records)?.compare(tariffs))
    }
}

/// One local calendar month of a [`PreparedLoad`].
#[derive(Debug, Clone)]
struct PreparedMonth {
    /// `YYYY-MM`.
    label: String,
    /// The request cut to the month.
    req: BillRequest,
    /// The month's records: `records[lo..hi]` of the load.
    range: (usize, usize),
    /// The month's load by (weekday/weekend, local hour), when it has one (`billing/profile.rs`).
    profile: Option<MonthProfile>,
}

/// One load prepared once for pricing under many tariffs — the analogue of the hourly load
/// array that NREL PySAM's `Utilityrate5.execute()` takes.
///
/// Built from the usage records and a [`BillRequest`] (subject, metric, period, zone): the
/// period is cut into local calendar months, and each month's records are summed once into 48
/// cells (weekday/weekend × local clock hour): each cell's sum, its largest local clock hour
/// and the month's peak hour, on exact integers at the month's common scale (converted to the
/// very decimals that adding the records one by one gives, digit for digit). A tariff then
/// prices the months from the cells: its schedule maps each cell to a period, and tiers, TOU,
/// demand, fixed charges and minimums rate those few sums. A month the cells cannot carry
/// (exported energy under a metering rule, negative corrections, per-subject bills, a tariff
/// with a charge that needs the records: see `docs/tariffs.md`) is rated from its records,
/// which the load keeps (borrowed; a sorted copy when they are not in time order). Either way
/// the bills are those of [`Tariff::bill`] digit for digit.
///
/// ```
/// use meterkit::{BillRequest, Tariff, UsageRecord};
/// use meterkit::billing::compare::PreparedLoad;
/// use chrono::{TimeZone, Utc};
/// let flat = Tariff::from_toml("currency = \"USD\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"0.20\"")?;
/// let r = UsageRecord::new("t", "r1", "home", "kwh", "100".parse()?, Utc.with_ymd_and_hms(2024, 1, 5, 0, 0, 0).unwrap());
/// let req = BillRequest::new("t", "home", "kwh", Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
///     Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap(), "UTC");
/// let records = [r];
/// let load = PreparedLoad::new(&req, &records)?;
/// let bills = load.bills(&flat)?; // one bill per local month, 2024-01 and 2024-02
/// assert_eq!(bills.len(), 2);
/// assert_eq!(bills[0], flat.bill(&load.month_request(0).unwrap(), &records)?);
/// assert_eq!(load.compare([("flat", &flat)])[0].total.unwrap().to_string(), "20.00");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PreparedLoad<'r> {
    /// The records the months' ranges index: the caller's, or a sorted copy of the request's.
    records: Cow<'r, [UsageRecord]>,
    months: Vec<PreparedMonth>,
}

impl<'r> PreparedLoad<'r> {
    /// Prepare `records` for `req`: every local calendar month of `[req.period_start,
    /// req.period_end)` in `req.time_zone` (cut at both ends), each month's records summed once
    /// by cell. Records in time order (the usual case) are borrowed and cut by binary search;
    /// otherwise the request's records are copied and sorted (by time, then id).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidTimeZone`]; [`ErrorKind::InvalidQuery`] for an empty period or one
    /// of more than 1,200 months; [`ErrorKind::Overflow`] when a month's sum exceeds the
    /// decimal range.
    pub fn new(req: &BillRequest, records: &'r [UsageRecord]) -> Result<PreparedLoad<'r>> {
        let periods = months(req)?;
        // Records in time order (the usual case) are cut by month by binary search and read once:
        // each month's profile (`billing/profile.rs`) is built in a pass that also checks their
        // order. Else the subject's records are sorted into a copy first.
        let slices = cut(records, &periods, req);
        let mut profiles: Vec<Option<MonthProfile>> = Vec::with_capacity(slices.len());
        let mut sorted = joins_in_order(records, &slices);
        for (_, r, (lo, hi)) in &slices {
            if !sorted {
                break;
            }
            match MonthProfile::build_ordered(&records[*lo..*hi], r) {
                Ok(Built::Month(p)) => profiles.push(p),
                Err(e) if records.windows(2).all(|w| w[0].timestamp <= w[1].timestamp) => return Err(e),
                // Out of order, the range held other records than the month's: an error from
                // them is not the load's.
                Ok(Built::Unsorted) | Err(_) => sorted = false,
            }
        }
        if sorted {
            return Ok(PreparedLoad { records: Cow::Borrowed(records), months: joined(slices, profiles) });
        }
        let mut owned: Vec<UsageRecord> = records
            .iter()
            .filter(|r| req.covers(r) && r.timestamp >= req.period_start && r.timestamp < req.period_end)
            .cloned()
            .collect();
        owned.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
        let slices = cut(&owned, &periods, req);
        let profiles =
            slices.iter().map(|(_, r, (lo, hi))| MonthProfile::build(&owned[*lo..*hi], r)).collect::<Result<_>>()?;
        let months = joined(slices, profiles);
        Ok(PreparedLoad { records: Cow::Owned(owned), months })
    }

    /// The load with its records owned: what a binding keeps between calls (a Python, Node or
    /// Kotlin/Swift `PreparedLoad` object). A borrowed load copies the records its months span
    /// (the first month's first record to the last month's last, in time order; the records
    /// before and after the period are left out); an owned one (records out of order) is
    /// moved as is. The bills and comparisons are unchanged.
    ///
    /// ```
    /// use meterkit::{BillRequest, Tariff, UsageRecord};
    /// use meterkit::billing::compare::PreparedLoad;
    /// use chrono::{TimeZone, Utc};
    /// let flat = Tariff::from_toml("currency = \"USD\"\n[[charges]]\nid = \"e\"\ntype = \"per_unit\"\nrate = \"0.20\"")?;
    /// let at = |m| Utc.with_ymd_and_hms(2024, m, 5, 0, 0, 0).unwrap();
    /// let records = vec![
    ///     UsageRecord::new("t", "r0", "home", "kwh", "7".parse()?, Utc.with_ymd_and_hms(2023, 12, 5, 0, 0, 0).unwrap()),
    ///     UsageRecord::new("t", "r1", "home", "kwh", "100".parse()?, at(1)),
    ///     UsageRecord::new("t", "r2", "home", "kwh", "50".parse()?, at(2)),
    /// ];
    /// let end = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    /// let req = BillRequest::new("t", "home", "kwh", at(1) - chrono::Duration::days(4), end, "UTC");
    /// let owned: PreparedLoad<'static> = PreparedLoad::new(&req, &records)?.into_owned();
    /// drop(records);
    /// let totals: Vec<String> = owned.bills(&flat)?.iter().map(|b| b.total.to_string()).collect();
    /// assert_eq!(totals, ["20.00", "10.00"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn into_owned(self) -> PreparedLoad<'static> {
        let PreparedLoad { records, mut months } = self;
        let records = match records {
            Cow::Owned(v) => v,
            Cow::Borrowed(all) => {
                let lo = months.iter().map(|m| m.range.0).min().unwrap_or(0);
                let hi = months.iter().map(|m| m.range.1).max().unwrap_or(lo);
                for m in &mut months {
                    m.range = (m.range.0 - lo, m.range.1 - lo);
                }
                all[lo..hi].to_vec()
            }
        };
        PreparedLoad { records: Cow::Owned(records), months }
    }

    /// How many local calendar months (bills) the load spans.
    #[must_use]
    pub fn len(&self) -> usize {
        self.months.len()
    }

    /// Whether the load spans no month (never, for a load built by [`PreparedLoad::new`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.months.is_empty()
    }

    /// The request of month `i` (0-based): the load's request cut to that local calendar month;
    /// `None` past the last month.
    #[must_use]
    pub fn month_request(&self, i: usize) -> Option<BillRequest> {
        self.months.get(i).map(|m| m.req.clone())
    }

    /// The tariff-year's bills: one per local calendar month of the load, in order, priced in
    /// order (the metering rule's carried credit, the ratchet's peaks and the annual minimum
    /// carry from one bill to the next, as in [`Tariff::compare`]). Each bill equals
    /// [`Tariff::bill`] of its month's request for a tariff without year state.
    ///
    /// # Errors
    /// The first bill's error: those of [`Tariff::check`] and [`Tariff::bill`].
    pub fn bills(&self, tariff: &Tariff) -> Result<Vec<Bill>> {
        let mut bills = Vec::with_capacity(self.months.len());
        self.rate_year(tariff, Text::Lines, |_, b| {
            bills.push(b);
            Ok(())
        })?;
        Ok(bills)
    }

    /// [`Tariff::compare`] on the prepared load: each tariff's monthly totals and their sum,
    /// cheapest first (ties by name), tariffs that cannot price the load last with their error.
    /// Only the totals are kept: the bills are rated without their explanation text.
    #[must_use]
    pub fn compare<'t>(&self, tariffs: impl IntoIterator<Item = (&'t str, &'t Tariff)>) -> Vec<Comparison> {
        let mut out: Vec<Comparison> = tariffs.into_iter().map(|(name, t)| self.compare_one(name, t)).collect();
        out.sort_by(|a, b| match (a.total, b.total) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.tariff.cmp(&b.tariff)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.tariff.cmp(&b.tariff),
        });
        out
    }

    /// Rate every month of the load under `t` in order, handing each bill to `each`.
    fn rate_year(&self, t: &Tariff, text: Text, mut each: impl FnMut(&str, Bill) -> Result<()>) -> Result<()> {
        // Checked once, not once per month.
        let normalized;
        let t = if t.charges.is_empty() {
            t.check()?;
            t
        } else {
            normalized = t.clone().normalized()?;
            &normalized
        };
        let mut carried = crate::billing::year::YearState { text, ..Default::default() };
        for m in &self.months {
            let records = &self.records[m.range.0..m.range.1];
            each(&m.label, t.rate_in_year(&m.req, records, &mut carried, m.profile.as_ref())?)?;
        }
        Ok(())
    }

    fn compare_one(&self, name: &str, t: &Tariff) -> Comparison {
        let priced = || -> Result<(Decimal, Vec<PeriodTotal>)> {
            let mut total = Decimal::ZERO;
            let mut periods = Vec::with_capacity(self.months.len());
            self.rate_year(t, Text::TotalsOnly, |label, bill| {
                total = add(total, bill.total)?;
                periods.push(PeriodTotal { period: label.to_string(), total: bill.total });
                Ok(())
            })?;
            Ok((total, periods))
        };
        match priced() {
            Ok((total, periods)) => Comparison { tariff: name.to_string(), total: Some(total), periods, error: None },
            Err(e) => Comparison {
                tariff: name.to_string(),
                total: None,
                periods: Vec::new(),
                error: Some(e.message().to_string()),
            },
        }
    }
}

/// The months of a load from its cut and profiles.
fn joined(slices: Vec<(&str, BillRequest, (usize, usize))>, profiles: Vec<Option<MonthProfile>>) -> Vec<PreparedMonth> {
    slices
        .into_iter()
        .zip(profiles)
        .map(|((label, req, range), profile)| PreparedMonth { label: label.to_string(), req, range, profile })
        .collect()
}

/// Each month of `periods` as `(label, the month's request, (lo, hi))`: the range of `records`
/// in it when they are in time order (by binary search; for records out of order the ranges
/// mean nothing, and [`joins_in_order`] or the profile's pass says so).
fn cut<'p>(
    records: &[UsageRecord],
    periods: &'p [Month],
    req: &BillRequest,
) -> Vec<(&'p str, BillRequest, (usize, usize))> {
    periods
        .iter()
        .map(|(label, a, b)| {
            let lo = records.partition_point(|r| r.timestamp < *a);
            let hi = records.partition_point(|r| r.timestamp < *b).max(lo);
            let mut r = req.clone();
            (r.period_start, r.period_end) = (*a, *b);
            (label.as_str(), r, (lo, hi))
        })
        .collect()
}

/// Whether `records` outside the months' ranges, and across each range's ends, are in time order
/// (the ranges themselves are checked while their profiles are built): with the ranges
/// contiguous, that and each range in order is all of `records` in order.
fn joins_in_order(records: &[UsageRecord], slices: &[(&str, BillRequest, (usize, usize))]) -> bool {
    let in_order = |rs: &[UsageRecord]| rs.windows(2).all(|w| w[0].timestamp <= w[1].timestamp);
    let (Some((_, _, (first, _))), Some((_, _, (_, last)))) = (slices.first(), slices.last()) else {
        return in_order(records);
    };
    let joined = |k: usize| k == 0 || k >= records.len() || records[k - 1].timestamp <= records[k].timestamp;
    slices.windows(2).all(|w| w[0].2 .1 == w[1].2 .0)
        && slices.iter().all(|(_, _, (lo, hi))| joined(*lo) && joined(*hi))
        && in_order(&records[..*first])
        && in_order(&records[*last..])
}

/// An optional money amount as a string with its minor-unit digits (`"10.00"`), or `null`.
mod opt_money {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(d),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "crate::decimal::money_str")] Decimal);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
