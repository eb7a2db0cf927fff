//! Bills: rating usage records with a [`Tariff`] into lines that each explain themselves.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::decimal::fmt_decimal;
use crate::decimal::{add, div, mul, sub};
use crate::error::{Error, ErrorKind, Result};
use crate::record::UsageRecord;
use crate::tariff::{
    tariff_err, AllowanceCharge, Basis, Charge, DemandCharge, DemandPrice, FixedCharge, PackageCharge, Per,
    PerUnitCharge, PercentageCharge, Rounding, Schedule, Selection, SharedLadder, Tariff, Tier, TieredCharge,
    TimeOfUseCharge, Usage,
};
use crate::time::fmt_ts;
use crate::time::{local_midnight, offset_at, parse_time_zone, Tz, Window};

pub mod compare;
mod metering;
pub(crate) mod profile;
mod ratchet;
mod year;

/// What to bill: the usage of one metric in `[period_start, period_end)` of one subject, a set
/// of subjects (an account's SIMs, an organisation's channels) or the whole tenant, optionally
/// only records with given dimension values, with days, months and schedules in `time_zone`.
/// The records in scope are rated together (tiers and allowances apply to their total).
///
/// JSON: `{"tenant","subject"?,"subjects"?,"filter"?,"per_subject"?,"metric","period_start",
/// "period_end","time_zone"}` (RFC 3339): `subject` one subject; `subjects` a set (not both);
/// neither: every subject of the tenant; `filter` `{dimension: value}` (all must match);
/// `per_subject: true` adds the usage of each subject in scope to the bill (`Bill.per_subject`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct BillRequest {
    /// Tenant, copied to the bill.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub tenant: String,
    /// The subject billed (meter, SIM, customer); records of other subjects are ignored. Empty
    /// (omitted in JSON): the subjects of `subjects`, or every subject of the tenant.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub subject: String,
    /// A set of subjects billed together (with `subject` empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub subjects: Vec<String>,
    /// Only records whose dimensions have these values (e.g. `{"account": "a-17"}`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub filter: std::collections::BTreeMap<String, String>,
    /// Add each subject's usage of `metric` to the bill (`Bill.per_subject`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub per_subject: bool,
    /// The metric charges without their own `metric` apply to (`kwh`, `bytes`).
    pub metric: String,
    /// Start of the billing period (inclusive).
    #[serde(with = "crate::time::ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Date | Timestamp"))]
    pub period_start: DateTime<Utc>,
    /// End of the billing period (exclusive).
    #[serde(with = "crate::time::ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Date | Timestamp"))]
    pub period_end: DateTime<Utc>,
    /// IANA zone of the bill's days and months.
    pub time_zone: String,
}

impl BillRequest {
    /// A request for `subject`'s `metric` in `[start, end)` in `time_zone`.
    pub fn new(
        tenant: impl Into<String>,
        subject: impl Into<String>,
        metric: impl Into<String>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        time_zone: impl Into<String>,
    ) -> Self {
        BillRequest {
            tenant: tenant.into(),
            subject: subject.into(),
            metric: metric.into(),
            period_start: start,
            period_end: end,
            time_zone: time_zone.into(),
            subjects: Vec::new(),
            filter: std::collections::BTreeMap::new(),
            per_subject: false,
        }
    }

    /// Bill these subjects together (builder style; `subject` is cleared).
    #[must_use]
    pub fn with_subjects<I: IntoIterator<Item = S>, S: Into<String>>(mut self, subjects: I) -> Self {
        self.subject.clear();
        self.subjects = subjects.into_iter().map(Into::into).collect();
        self
    }

    /// Only records with `dimension` = `value` (builder style; several filters must all match).
    #[must_use]
    pub fn with_filter(mut self, dimension: impl Into<String>, value: impl Into<String>) -> Self {
        self.filter.insert(dimension.into(), value.into());
        self
    }

    /// Whether `record` (of the request's tenant) is in scope: its subject (one, the set, or any)
    /// and the filter's dimension values; the period and metric are checked by the rater.
    pub fn covers(&self, record: &UsageRecord) -> bool {
        let subject = if self.subject.is_empty() {
            self.subjects.is_empty() || self.subjects.contains(&record.subject)
        } else {
            record.subject == self.subject
        };
        subject && self.filter.iter().all(|(d, v)| record.dimensions.get(d) == Some(v))
    }

    /// Check the scope: not both `subject` and `subjects`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidQuery`] with field `subjects`.
    pub fn check(&self) -> Result<()> {
        if !self.subject.is_empty() && !self.subjects.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidQuery,
                "A bill request names either one `subject` or a set of `subjects`, not both.",
            )
            .with_field("subjects"));
        }
        Ok(())
    }
}

/// One subject's usage in a bill over several subjects (`BillRequest.per_subject`): the sum and
/// number of its records of the request's metric in the period and scope. The lines' sums equal
/// the bill's usage of the metric; the amounts are the bill's (tiers apply to the total).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SubjectUsage {
    /// The subject.
    pub subject: String,
    /// Sum of its quantities of the bill's metric (e.g. kWh, bytes).
    #[serde(with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub quantity: Decimal,
    /// Number of its records.
    pub records: u64,
}

/// One line of a [`Bill`]: `amount` = `quantity` × `rate` rounded to the currency's minor unit,
/// except minimum top-ups (`amount` = minimum − subtotal before it, `rate` = the minimum).
///
/// JSON: `{"charge","description","quantity","unit","rate","amount","tier"?,"tou_period"?}` with
/// decimals as strings; `amount` always carries the currency's minor-unit digits (`"12.50"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BillLine {
    /// The tariff charge id.
    pub charge: String,
    /// What the line is, in words.
    pub description: String,
    /// Quantity priced: units, kW, days, periods, packages, or the base amount of a percentage.
    #[serde(with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub quantity: Decimal,
    /// Unit of `quantity` (`kWh`, `GB`, `kW`, `day`, `period`, `package`, or the currency).
    pub unit: String,
    /// Price per unit (a percentage as a fraction: 5 % is `0.05`).
    #[serde(with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub rate: Decimal,
    /// Money, rounded to the minor unit.
    #[serde(with = "crate::decimal::money_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub amount: Decimal,
    /// Tier number (1-based) of a tiered line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<u32>,
    /// Time-of-use period of the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tou_period: Option<String>,
}

/// A bill: lines in tariff order (version by version), `subtotal` = sum of the non-tax lines,
/// `taxes` = sum of the tax lines, `total` = `subtotal + taxes`. Every line is rounded first
/// (see `docs/tariffs.md`), so the totals are exact sums of what is printed. The same records
/// and tariff always give byte-identical JSON.
///
/// JSON: `{"tenant","subject","period_start","period_end","time_zone","currency","lines":[…],
/// "subtotal","taxes","total"}`, money as strings with the minor-unit digits (`"total":"123.45"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Bill {
    /// Tenant.
    pub tenant: String,
    /// The subject billed.
    pub subject: String,
    /// Start of the period (inclusive).
    #[serde(with = "crate::time::ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
    pub period_start: DateTime<Utc>,
    /// End of the period (exclusive).
    #[serde(with = "crate::time::ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
    pub period_end: DateTime<Utc>,
    /// IANA zone of the bill's days.
    pub time_zone: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// The lines.
    pub lines: Vec<BillLine>,
    /// Sum of the non-tax lines.
    #[serde(with = "crate::decimal::money_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub subtotal: Decimal,
    /// Sum of the tax lines.
    #[serde(with = "crate::decimal::money_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub taxes: Decimal,
    /// `subtotal + taxes`.
    #[serde(with = "crate::decimal::money_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub total: Decimal,
    /// Each subject's usage, by subject, when the request asked for `per_subject` (omitted from
    /// JSON otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub per_subject: Vec<SubjectUsage>,
}

impl Bill {
    /// Column names of [`Bill::to_table_rows`].
    pub const TABLE_HEADER: [&'static str; 7] = ["charge", "description", "quantity", "unit", "rate", "amount", "tier"];

    /// The lines as text rows (columns of [`Bill::TABLE_HEADER`]; `tier` holds the tier number
    /// and/or TOU period), followed by `subtotal`, `taxes` and `total` rows with only the
    /// description and amount filled: what a table or CSV output prints.
    pub fn to_table_rows(&self) -> Vec<[String; 7]> {
        let mut rows: Vec<[String; 7]> = self
            .lines
            .iter()
            .map(|l| {
                let tier = match (&l.tou_period, l.tier) {
                    (Some(p), Some(t)) => format!("{p} {t}"),
                    (Some(p), None) => p.clone(),
                    (None, Some(t)) => t.to_string(),
                    (None, None) => String::new(),
                };
                [
                    l.charge.clone(),
                    l.description.clone(),
                    fmt_decimal(l.quantity),
                    l.unit.clone(),
                    fmt_decimal(l.rate),
                    l.amount.to_string(),
                    tier,
                ]
            })
            .collect();
        for (name, v) in [("subtotal", self.subtotal), ("taxes", self.taxes), ("total", self.total)] {
            rows.push([
                String::new(),
                name.to_string(),
                String::new(),
                String::new(),
                String::new(),
                v.to_string(),
                String::new(),
            ]);
        }
        rows
    }
}

/// `(start, end)` of the calendar month `YYYY-MM` in `tz` (local midnight to local midnight).
///
/// # Errors
/// [`ErrorKind::Parse`] when the text is not `YYYY-MM` (four-digit year, month 1-12) or the year
/// is outside 1678-2261 (the years a usage record may carry).
pub fn month_period(yyyy_mm: &str, tz: Tz) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let bad = || Error::new(ErrorKind::Parse, format!("'{yyyy_mm}' is not a month (YYYY-MM).")).with_field("period");
    let (y, m) = yyyy_mm.trim().split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || !(1..=2).contains(&m.len()) || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let year: i32 = y.parse().map_err(|_| bad())?;
    if !(1678..=2261).contains(&year) {
        return Err(Error::new(ErrorKind::Parse, format!("The month '{yyyy_mm}' is outside years 1678-2261."))
            .with_field("period"));
    }
    let first = NaiveDate::from_ymd_opt(year, m.parse().map_err(|_| bad())?, 1).ok_or_else(bad)?;
    let next = first.checked_add_months(chrono::Months::new(1)).ok_or_else(bad)?;
    Ok((secs(local_midnight(tz, first)?)?, secs(local_midnight(tz, next)?)?))
}

fn secs(t: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp(t, 0)
        .ok_or_else(|| Error::new(ErrorKind::InvalidWindow, format!("The instant {t} is out of range.")))
}

/// The larger of two decimals, comparing mantissas directly when the scales agree (the common
/// case for interval data), else by value.
fn larger(a: Decimal, b: Decimal) -> Decimal {
    let greater = if a.scale() == b.scale() { b.mantissa() > a.mantissa() } else { b > a };
    if greater {
        b
    } else {
        a
    }
}

/// One tier slice of a ladder: tier index, quantity in it, and whether its flat fee is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slice {
    pub tier: usize,
    pub qty: Decimal,
    pub flat_due: bool,
}

/// Walk graduated tiers for the units `(before, before + q]`, limits multiplied by `scale`.
/// A zero `q` yields one zero slice in the tier where the next unit would fall.
pub(crate) fn ladder(
    tiers: &[Tier],
    scale: Decimal,
    before: Decimal,
    q: Decimal,
    f: &mut dyn FnMut(Slice) -> Result<()>,
) -> Result<()> {
    if q < Decimal::ZERO || before < Decimal::ZERO {
        return Err(Error::new(ErrorKind::Tariff, format!("A tiered charge cannot price a negative quantity ({q}).")));
    }
    let end = add(before, q)?;
    let mut lo = Decimal::ZERO;
    for (i, t) in tiers.iter().enumerate() {
        let hi = match t.up_to {
            Some(u) if i + 1 < tiers.len() => Some(mul(u, scale)?),
            _ => None,
        };
        if q.is_zero() {
            if hi.is_none_or(|h| before < h) {
                return f(Slice { tier: i, qty: Decimal::ZERO, flat_due: false });
            }
        } else {
            let top = hi.map_or(end, |h| h.min(end));
            let part = sub(top, lo.max(before), "A tier's quantity")?;
            if part > Decimal::ZERO {
                f(Slice { tier: i, qty: part, flat_due: t.flat.is_some() && before <= lo && end > lo })?;
            }
            if hi.is_none_or(|h| h >= end) {
                return Ok(());
            }
        }
        if let Some(h) = hi {
            lo = h;
        }
    }
    Ok(())
}

/// Index of the tier a volume `total` reaches (tier i covers `(up_to[i-1], up_to[i]]`).
pub(crate) fn volume_tier(tiers: &[Tier], scale: Decimal, total: Decimal) -> Result<usize> {
    for (i, t) in tiers.iter().enumerate() {
        match t.up_to {
            Some(u) if i + 1 < tiers.len() => {
                if total <= mul(u, scale)? {
                    return Ok(i);
                }
            }
            _ => return Ok(i),
        }
    }
    Ok(tiers.len().saturating_sub(1))
}

/// Number of packages of `size` for the units above `free` in `x` (every started block counts).
pub(crate) fn packages(x: Decimal, free: Decimal, size: Decimal) -> Result<Decimal> {
    if x <= free {
        return Ok(Decimal::ZERO);
    }
    Ok(div(sub(x, free, "The units above the free units")?, size)?.ceil())
}

/// Local wall-clock seconds (`t + offset`) with a cache of the UTC day or hour the offset holds in.
struct LocalClock {
    tz: Tz,
    lo: i64,
    hi: i64,
    off: i64,
}

impl LocalClock {
    fn new(tz: Tz) -> Self {
        LocalClock { tz, lo: 0, hi: 0, off: 0 }
    }

    #[inline]
    fn local(&mut self, t: i64) -> i64 {
        if self.lo <= t && t < self.hi {
            return t + self.off;
        }
        self.look_up(t)
    }

    /// [`LocalClock::local`] outside the cached span: the zone's offset at `t`, cached for the
    /// UTC day (or hour, or second) it holds over.
    #[cold]
    #[inline(never)]
    fn look_up(&mut self, t: i64) -> i64 {
        let day = t.div_euclid(86_400) * 86_400;
        // The UTC day after a cached whole day (records in time order): the offset held at its
        // first second's predecessor (`hi - 1`), so one look at its last second decides it — the
        // same assumption as two looks at its ends: no zone changes its offset and back within a
        // day.
        if day == self.hi && self.hi - self.lo == 86_400 && offset_at(self.tz, day + 86_399) == self.off {
            (self.lo, self.hi) = (day, day + 86_400);
            return t + self.off;
        }
        let off = offset_at(self.tz, t);
        let hour = t.div_euclid(3600) * 3600;
        if offset_at(self.tz, day) == off && offset_at(self.tz, day + 86_399) == off {
            (self.lo, self.hi) = (day, day + 86_400);
        } else if offset_at(self.tz, hour) == off && offset_at(self.tz, hour + 3599) == off {
            (self.lo, self.hi) = (hour, hour + 3600);
        } else {
            (self.lo, self.hi) = (t, t + 1);
        }
        self.off = off;
        t + off
    }
}

/// Days since 0001-01-01 of 1970-01-01.
const UNIX_EPOCH_DAYS_CE: i64 = 719_163;

/// A record prepared for rating.
struct Use<'r> {
    t: i64,
    /// Local wall-clock seconds in the tariff's zone.
    local: i64,
    date: NaiveDate,
    q: Decimal,
    r: &'r UsageRecord,
    /// The record is of the bill's metric.
    bill_metric: bool,
}

impl Use<'_> {
    fn hour(&self) -> u32 {
        (self.local.rem_euclid(86_400) / 3600) as u32
    }
}

fn is_weekend(s: &Schedule, d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun) || s.holidays.contains(&d)
}

/// Number of local dates whose midnight lies in `[a, b)`.
pub(crate) fn days_between(tz: Tz, a: i64, b: i64) -> Result<i64> {
    if b <= a {
        return Ok(0);
    }
    let first = first_date_at_or_after(tz, a)?;
    let last = first_date_at_or_after(tz, b)?;
    Ok(last.signed_duration_since(first).num_days().max(0))
}

fn first_date_at_or_after(tz: Tz, t: i64) -> Result<NaiveDate> {
    let d = secs(t)?.with_timezone(&tz).date_naive();
    if local_midnight(tz, d)? >= t {
        Ok(d)
    } else {
        d.succ_opt().ok_or_else(|| Error::new(ErrorKind::InvalidWindow, "The date is out of range."))
    }
}

/// Parts of `[a, b)` cut by the billing cycle: `(part_start, part_end, cycle_start, cycle_end)`.
fn cycle_parts(cycle: Window, tz: Tz, a: i64, b: i64) -> Result<Vec<(i64, i64, i64, i64)>> {
    let mut out = Vec::new();
    let mut t = a;
    while t < b {
        let (cs, ce) = cycle.span_secs(t, tz)?;
        out.push((t.max(cs), b.min(ce), cs, ce));
        t = ce;
        if out.len() > 12_000 {
            return Err(Error::new(ErrorKind::InvalidQuery, "A bill may span at most 12,000 billing cycles."));
        }
    }
    Ok(out)
}

struct Pending {
    line: BillLine,
    tax: bool,
}

struct Rater<'a> {
    tariff: &'a Tariff,
    req: &'a BillRequest,
    tz: Tz,
    tou_tz: Tz,
    dp: u32,
    rounding: Rounding,
    total_days: Decimal,
    /// Lines per version piece.
    pieces: Vec<Vec<Pending>>,
    carry: FxHashMap<(String, Option<String>), Decimal>,
    flats: HashSet<(String, Option<String>, usize)>,
    /// The month's exports and carried credit under the tariff's metering rule
    /// (`billing/metering.rs`), when it has exports to net or credit.
    meter: Option<&'a mut metering::MeterMonth>,
    /// The tier scale of every charge, when set (net metering re-prices netted energy with the
    /// scale of the bill's real records).
    fixed_scale: Option<Decimal>,
    /// The month's ratchet (`billing/ratchet.rs`), and the billing demand it sets.
    ratchet: Option<&'a mut ratchet::RatchetMonth>,
    billing_demand: Option<Decimal>,
    /// The bill's part of the annual minimum (`billing/year.rs`).
    annual: Option<&'a mut year::AnnualMonth>,
    /// The month's load by cell, when every charge rates from it (`billing/profile.rs`).
    profile: Option<&'a profile::MonthProfile>,
    /// Whether the lines carry their text ([`year::Text`]).
    text: year::Text,
}

impl Rater<'_> {
    /// A line's text `f()`, or an empty string when the bill is for its totals only
    /// ([`year::Text::TotalsOnly`]): the text is only built when asked for.
    fn says(&self, f: impl FnOnce() -> String) -> String {
        match self.text {
            year::Text::Lines => f(),
            year::Text::TotalsOnly => String::new(),
        }
    }

    fn money(&self, q: Decimal, rate: Decimal) -> Result<Decimal> {
        self.rounding.round(mul(q, rate)?, self.dp)
    }

    /// A line of charge `id` in piece `pi` (not a tax: [`Rater::percentage`] marks taxes).
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        pi: usize,
        id: &str,
        description: String,
        quantity: Decimal,
        unit: &str,
        rate: Decimal,
        amount: Decimal,
        tier: Option<usize>,
        tou: Option<&str>,
    ) {
        // For totals only (`year::Text::TotalsOnly`) the line keeps what later rating reads (the
        // charge id: metering and percentages select lines by it) and no text or normalising.
        let text = self.text == year::Text::Lines;
        let line = BillLine {
            charge: id.to_string(),
            description: if text { description } else { String::new() },
            quantity: if text { quantity.normalize() } else { quantity },
            unit: if text { unit.to_string() } else { String::new() },
            rate: if text { rate.normalize() } else { rate },
            amount,
            tier: tier.map(|t| t as u32 + 1),
            tou_period: tou.filter(|_| text).map(str::to_string),
        };
        self.pieces[pi].push(Pending { line, tax: false });
    }

    fn matches(s: &Selection, u: &Use<'_>) -> bool {
        s.metric.as_deref().map_or(u.bill_metric, |m| u.r.metric == m)
            && s.filter.iter().all(|(k, v)| u.r.dimensions.get(k).map_or(v.is_empty(), |x| x == v))
            && (s.months.is_empty() || s.months.contains(&u.date.month()))
    }

    /// The unit on a usage charge's lines: its `unit`, else its metric, else the bill's metric.
    fn unit(&self, u: &Usage) -> String {
        u.unit.as_deref().or(u.select.metric.as_deref()).unwrap_or(&self.req.metric).to_string()
    }

    /// The sum of the uses a charge reads (from the month profile when rating from one),
    /// converted (`divide_by`).
    fn sum(&self, u: &Usage, uses: &[Use<'_>]) -> Result<Decimal> {
        u.convert(self.charge_total(&u.select, uses)?)
    }

    /// What tier limits are multiplied by: 1, the bill's days, its peak kW (the largest sum of
    /// the charge's records in one local clock hour, `uses` in time order), or both.
    fn scale(&self, basis: Option<Basis>, u: &Usage, uses: &[Use<'_>]) -> Result<Decimal> {
        if let Some(s) = self.fixed_scale {
            return Ok(s);
        }
        match basis {
            None | Some(Basis::Period) => Ok(Decimal::ONE),
            Some(Basis::Day) => Ok(self.total_days),
            Some(Basis::PerKw) => self.peak_kw(u, uses),
            Some(Basis::PerKwDay) => mul(self.peak_kw(u, uses)?, self.total_days),
        }
    }

    /// The kW that `per_kw` tier limits are multiplied by: the ratchet's billing demand when the
    /// tariff has one (as SSC), else the month profile's peak, else the charge's hourly peak.
    fn peak_kw(&self, u: &Usage, uses: &[Use<'_>]) -> Result<Decimal> {
        match (self.billing_demand, self.profile) {
            (Some(bd), _) => Ok(bd),
            (None, Some(pr)) => Ok(pr.peak),
            (None, None) => Self::hourly_peak(u, uses),
        }
    }

    /// The largest kWh of the charge's records in one local clock hour (= average kW).
    fn hourly_peak(c: &Usage, uses: &[Use<'_>]) -> Result<Decimal> {
        let mut peak = Decimal::ZERO;
        let mut run: Option<(i64, Decimal)> = None;
        for u in uses.iter().filter(|u| Self::matches(&c.select, u)) {
            let key = u.t - u.local.rem_euclid(3600);
            match &mut run {
                Some((k, sum)) if *k == key => *sum = add(*sum, u.q)?,
                _ => {
                    if let Some((_, sum)) = run {
                        peak = larger(peak, sum);
                    }
                    run = Some((key, u.q));
                }
            }
        }
        if let Some((_, sum)) = run {
            peak = larger(peak, sum);
        }
        c.convert(peak)
    }

    /// Lines of a graduated ladder over `(before, before + q]` of charge `id` (TOU period `key`).
    #[allow(clippy::too_many_arguments)]
    fn graduated(
        &mut self,
        pi: usize,
        id: &str,
        (base, unit): (&str, &str),
        tiers: &[Tier],
        scale: Decimal,
        key: Option<&str>,
        q: Decimal,
    ) -> Result<()> {
        let carry_key = (id.to_string(), key.map(str::to_string));
        let before = self.carry.get(&carry_key).copied().unwrap_or_default();
        let mut slices = Vec::new();
        ladder(tiers, scale, before, q, &mut |s| {
            slices.push(s);
            Ok(())
        })?;
        for s in slices {
            let t = &tiers[s.tier];
            let amount = self.money(s.qty, t.rate)?;
            let desc = self.says(|| match key {
                Some(p) => format!("{base}, {p}, tier {}", s.tier + 1),
                None => format!("{base}, tier {}", s.tier + 1),
            });
            self.push(pi, id, desc, s.qty, unit, t.rate, amount, Some(s.tier), key);
            if let (true, Some(flat)) = (s.flat_due, t.flat) {
                let amount = self.money(Decimal::ONE, flat)?;
                let desc = self.says(|| format!("{base}, tier {} flat fee", s.tier + 1));
                self.push(pi, id, desc, Decimal::ONE, "fee", flat, amount, Some(s.tier), key);
            }
        }
        *self.carry.entry(carry_key).or_default() = add(before, q)?;
        Ok(())
    }
}

/// The text of a charge's lines: its `description`, else a default from its kind.
fn describe(c: &Charge) -> String {
    if let (_, Some(d)) = c.name() {
        return d.to_string();
    }
    match c {
        Charge::Fixed(f) if f.per == Some(Per::Day) => "Standing charge".into(),
        Charge::Fixed(_) => "Fixed charge".into(),
        Charge::PerUnit(_) | Charge::Graduated(_) | Charge::Volume(_) => "Usage".into(),
        Charge::Package(_) => "Packages".into(),
        Charge::Allowance(_) => "Included units".into(),
        Charge::TimeOfUse(_) => "Time-of-use energy".into(),
        Charge::Demand(_) => "Demand".into(),
        Charge::Minimum(_) => "Minimum charge top-up".into(),
        Charge::Percentage(p) if p.tax => format!("Tax {}%", fmt_decimal(p.percent)),
        Charge::Percentage(p) => format!("{}%", fmt_decimal(p.percent)),
    }
}

impl Tariff {
    /// Rate `records` for the period and subject of `req` (see `docs/tariffs.md` for the rules):
    /// records of other subjects or outside `[period_start, period_end)` are ignored; each
    /// version of the tariff rates its part of the period; lines are rounded to the currency's
    /// minor unit and summed.
    ///
    /// ```
    /// use meterkit::{BillRequest, Tariff, UsageRecord};
    /// use chrono::{TimeZone, Utc};
    /// let tariff = Tariff::from_toml(r#"
    ///     currency = "GBP"
    ///     [[charges]]
    ///     id = "standing"
    ///     type = "fixed"
    ///     per = "day"
    ///     amount = "0.60"
    ///     [[charges]]
    ///     id = "energy"
    ///     type = "per_unit"
    ///     rate = "0.25"
    ///     unit = "kWh"
    /// "#)?;
    /// let t = |d, h| Utc.with_ymd_and_hms(2024, 2, d, h, 0, 0).unwrap();
    /// let r = UsageRecord::new("t", "r1", "home", "kwh", "100".parse()?, t(10, 8));
    /// let req = BillRequest::new("t", "home", "kwh", t(1, 0), Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap(), "Europe/London");
    /// let bill = tariff.bill(&req, &[r])?;
    /// // 29 days × 0.60 = 17.40; 100 kWh × 0.25 = 25.00.
    /// assert_eq!(bill.total.to_string(), "42.40");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The errors of [`Tariff::check`] (a tariff built in code is checked too);
    /// [`ErrorKind::InvalidTimeZone`]; [`ErrorKind::InvalidQuery`] when the period is empty;
    /// [`ErrorKind::Tariff`] when no version is in effect at the start, the period ends after
    /// `valid_until`, or a tiered charge meets a negative quantity; [`ErrorKind::Overflow`]
    /// when an amount exceeds the decimal range (never a wrong number).
    pub fn bill(&self, req: &BillRequest, records: &[UsageRecord]) -> Result<Bill> {
        if !self.charges.is_empty() {
            // Built in code with top-level `charges`: rate its normalized form.
            return self.clone().normalized()?.bill(req, records);
        }
        self.check()?;
        self.rate(req, records)
    }

    /// Compile the latest version for [`QuantityRater::total`].
    ///
    /// # Errors
    /// [`ErrorKind::Tariff`] naming the first charge that needs calendar or record detail
    /// (`time_of_use`, `demand`, per-day amounts or tiers, `metric`/`filter`/`months`);
    /// [`ErrorKind::Overflow`] when a full tier's amount overflows.
    pub fn quantity_rater(&self) -> Result<QuantityRater> {
        if !self.charges.is_empty() {
            return self.clone().normalized()?.quantity_rater();
        }
        self.check()?;
        let v = self.versions.last().ok_or_else(|| tariff_err("versions", "The tariff has no version."))?;
        let (dp, rounding) = (self.line_decimals.unwrap_or(self.minor_units()?), self.rounding);
        let total_dp = self.minor_units()?;
        let round = |d: Decimal| rounding.round(d, dp);
        let mut charges = Vec::with_capacity(v.charges.len());
        for (i, c) in v.charges.iter().enumerate() {
            let fast = Fast::of(c, &v.charges, &round)?.ok_or_else(|| {
                tariff_err(
                    format!("charges[{i}]"),
                    format!("The charge '{}' needs calendar or record detail; rate it with Tariff::bill.", c.id()),
                )
            })?;
            charges.push(fast);
        }
        let keeps_amounts = v.charges.iter().any(|c| c.as_percentage().is_some_and(|p| !p.applies_to.is_empty()));
        Ok(QuantityRater { charges, keeps_amounts, dp, total_dp, rounding })
    }

    /// [`Tariff::bill`] of a tariff already checked (and normalized), in stages: the period
    /// ([`Tariff::period_secs`]), the version pieces ([`Tariff::pieces`]), the records in use
    /// ([`uses_of`]), the rating passes ([`Rater::rate_pieces`]), then the bill ([`Tariff::assemble`]).
    pub(crate) fn rate(&self, req: &BillRequest, records: &[UsageRecord]) -> Result<Bill> {
        if self.metering.is_some() || self.ratchet.is_some() || self.annual_minimum.is_some() {
            return self.rate_in_year(req, records, &mut year::YearState::default(), None);
        }
        self.rate_hooked(req, records, None, None, None, None, year::Text::Lines)
    }

    /// [`Tariff::rate`] with the metering lines of `meter`, the billing demand of `ratchet`, the
    /// annual minimum's part `annual`, rating from `profile` (the month's load by cell) when given.
    #[allow(clippy::too_many_arguments)]
    fn rate_hooked(
        &self,
        req: &BillRequest,
        records: &[UsageRecord],
        meter: Option<&mut metering::MeterMonth>,
        ratchet: Option<&mut ratchet::RatchetMonth>,
        annual: Option<&mut year::AnnualMonth>,
        profile: Option<&profile::MonthProfile>,
        text: year::Text,
    ) -> Result<Bill> {
        // A profile carries its zone parsed, and its period's days.
        let tz = match profile {
            Some(p) => p.tz,
            None => parse_time_zone(&req.time_zone)?,
        };
        let tou_tz = match &self.time_zone {
            Some(z) => parse_time_zone(z)?,
            None => tz,
        };
        req.check()?;
        let (start, end) = self.period_secs(req, tz)?;
        let pieces = self.pieces(req, tz, start, end)?;
        let mut uses = if profile.is_some() { Vec::new() } else { uses_of(records, req, tou_tz)? };
        let per_subject = if req.per_subject { subject_usage(&uses)? } else { Vec::new() };
        let mut rater = Rater {
            tariff: self,
            req,
            tz,
            tou_tz,
            dp: self.line_decimals.unwrap_or(self.minor_units()?),
            rounding: self.rounding,
            total_days: Decimal::from(match profile {
                Some(p) if (p.span.0, p.span.1) == (start, end) && p.span.2 >= 0 => p.span.2,
                _ => days_between(tz, start, end)?,
            }),
            pieces: pieces.iter().map(|_| Vec::new()).collect(),
            carry: FxHashMap::default(),
            flats: HashSet::new(),
            meter,
            fixed_scale: None,
            ratchet,
            billing_demand: None,
            annual,
            profile,
            text,
        };
        rater.rate_pieces(&pieces, &mut uses)?;
        let mut bill = self.assemble(req, rater.pieces, text)?;
        bill.per_subject = per_subject;
        Ok(bill)
    }

    /// The period of `req` in whole seconds `[start, end)` (the seconds it touches: records are
    /// picked by their exact instant); an error when it is empty or ends after `valid_until`.
    fn period_secs(&self, req: &BillRequest, tz: Tz) -> Result<(i64, i64)> {
        let start = req.period_start.timestamp();
        let end = req.period_end.timestamp() + i64::from(req.period_end.timestamp_subsec_nanos() > 0);
        if req.period_end <= req.period_start {
            return Err(Error::new(
                ErrorKind::InvalidQuery,
                format!(
                    "The billing period end {} is not after its start {}.",
                    fmt_ts(req.period_end),
                    fmt_ts(req.period_start)
                ),
            )
            .with_field("period_end"));
        }
        if let Some(until) = self.valid_until {
            let limit = local_midnight(tz, until.succ_opt().unwrap_or(until))?;
            if end > limit {
                return Err(tariff_err(
                    "valid_until",
                    format!("The tariff is valid until {until}; the period ends {}.", fmt_ts(req.period_end)),
                ));
            }
        }
        Ok((start, end))
    }

    /// The version pieces of `[start, end)`: `(version index, start, end)` of each version in
    /// effect for part of it; an error when no version is in effect at the start.
    fn pieces(&self, req: &BillRequest, tz: Tz, start: i64, end: i64) -> Result<Vec<(usize, i64, i64)>> {
        let starts: Vec<i64> = self
            .versions
            .iter()
            .map(|v| v.effective_from.map_or(Ok(i64::MIN), |d| local_midnight(tz, d)))
            .collect::<Result<_>>()?;
        if starts.first().is_none_or(|&s| start < s) {
            return Err(tariff_err(
                "versions[0].effective_from",
                format!("No version of the tariff is in effect at {}.", fmt_ts(req.period_start)),
            ));
        }
        let mut pieces = Vec::new();
        for (i, &vs) in starts.iter().enumerate() {
            let ve = starts.get(i + 1).copied().unwrap_or(i64::MAX);
            let (a, b) = (start.max(vs), end.min(ve));
            if a < b {
                pieces.push((i, a, b));
            }
        }
        Ok(pieces)
    }

    /// The bill from the rated lines of each piece: subtotal, taxes and total rounded to the
    /// currency's minor unit, and a zero line per note of what the tariff does not price.
    fn assemble(&self, req: &BillRequest, pieces: Vec<Vec<Pending>>, text: year::Text) -> Result<Bill> {
        let (mut subtotal, mut taxes) = (Decimal::ZERO, Decimal::ZERO);
        let mut lines = Vec::new();
        for l in pieces.into_iter().flatten() {
            if l.tax {
                taxes = add(taxes, l.line.amount)?;
            } else {
                subtotal = add(subtotal, l.line.amount)?;
            }
            // A bill for its totals only keeps no lines.
            if text == year::Text::Lines {
                lines.push(l.line);
            }
        }
        let dp = self.minor_units()?;
        // Note lines are zero: a bill for its totals only has none.
        let notes = if text == year::Text::Lines { self.notes.as_slice() } else { &[] };
        for note in notes {
            lines.push(BillLine {
                charge: "note".into(),
                description: format!("not priced: {note}"),
                quantity: Decimal::ZERO,
                unit: "note".into(),
                rate: Decimal::ZERO,
                amount: self.rounding.round(Decimal::ZERO, dp)?,
                tier: None,
                tou_period: None,
            });
        }
        Ok(Bill {
            tenant: req.tenant.clone(),
            subject: req.subject.clone(),
            period_start: req.period_start,
            period_end: req.period_end,
            time_zone: req.time_zone.clone(),
            currency: self.currency.clone(),
            lines,
            subtotal: self.rounding.round(subtotal, dp)?,
            taxes: self.rounding.round(taxes, dp)?,
            total: self.rounding.round(add(subtotal, taxes)?, dp)?,
            per_subject: Vec::new(),
        })
    }
}

/// Each subject's sum and count of the bill metric's uses, by subject.
fn subject_usage(uses: &[Use<'_>]) -> Result<Vec<SubjectUsage>> {
    let mut by: std::collections::BTreeMap<&str, (Decimal, u64)> = std::collections::BTreeMap::new();
    for u in uses.iter().filter(|u| u.bill_metric) {
        let e = by.entry(u.r.subject.as_str()).or_insert((Decimal::ZERO, 0));
        e.0 = add(e.0, u.q)?;
        e.1 += 1;
    }
    Ok(by
        .into_iter()
        .map(|(s, (q, n))| SubjectUsage { subject: s.to_string(), quantity: q.normalize(), records: n })
        .collect())
}

/// The records in `req`'s scope (subject, subjects or tenant; filter) in its period, in time
/// order (then by id), with their local times in `tou_tz`.
fn uses_of<'r>(records: &'r [UsageRecord], req: &BillRequest, tou_tz: Tz) -> Result<Vec<Use<'r>>> {
    let mut clock = LocalClock::new(tou_tz);
    let mut uses: Vec<Use<'_>> = Vec::with_capacity(records.len());
    let mut last_day: Option<(i64, NaiveDate)> = None;
    for r in records {
        let t = r.timestamp.timestamp();
        if !req.covers(r) || r.timestamp < req.period_start || r.timestamp >= req.period_end {
            continue;
        }
        let local = clock.local(t);
        let day = local.div_euclid(86_400);
        let date = match last_day {
            Some((d, date)) if d == day => date,
            _ => {
                let date = NaiveDate::from_num_days_from_ce_opt((day + UNIX_EPOCH_DAYS_CE) as i32)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidRecord, "A record's date is out of range."))?;
                last_day = Some((day, date));
                date
            }
        };
        uses.push(Use { t, local, date, q: r.quantity, r, bill_metric: r.metric == req.metric });
    }
    uses.sort_by(|a, b| (a.t, &a.r.id).cmp(&(b.t, &b.r.id)));
    Ok(uses)
}

impl Rater<'_> {
    /// The rating passes over the version pieces: (1) allowances consume the earliest units;
    /// (2) per piece, every other charge in its months, then the non-tax percentages;
    /// (3) minimums over the whole bill, then taxes per piece.
    fn rate_pieces(&mut self, pieces: &[(usize, i64, i64)], uses: &mut [Use<'_>]) -> Result<()> {
        let versions = &self.tariff.versions;
        let ranges: Vec<(usize, usize)> = pieces
            .iter()
            .map(|&(_, a, b)| (uses.partition_point(|u| u.t < a), uses.partition_point(|u| u.t < b)))
            .collect();
        for (pi, &(vi, _, _)) in pieces.iter().enumerate() {
            for c in &versions[vi].charges {
                if let Charge::Allowance(a) = c {
                    self.allowance(pi, a, &describe(c), &mut uses[ranges[pi].0..ranges[pi].1])?;
                }
            }
        }
        self.prepare_ratchet(uses)?;
        for (pi, &(vi, a, b)) in pieces.iter().enumerate() {
            self.rate_piece(pi, &versions[vi].charges, &uses[ranges[pi].0..ranges[pi].1], uses, a, b)?;
        }
        self.meter_before_minimums(pieces, uses)?;
        if self.annual.is_some() {
            let mut subtotal = Decimal::ZERO;
            for p in self.pieces.iter().flatten().filter(|p| !p.tax) {
                subtotal = add(subtotal, p.line.amount)?;
            }
            self.annual_base(subtotal);
        }
        self.minimums(pieces)?;
        self.annual_top_up()?;
        self.meter_after_minimums()?;
        for (pi, &(vi, _, _)) in pieces.iter().enumerate() {
            for c in &versions[vi].charges {
                if let Some(p) = c.as_percentage().filter(|p| p.tax) {
                    self.percentage(pi, p, &describe(c))?;
                }
            }
        }
        Ok(())
    }

    /// Pass 2 for piece `pi` (`[a, b)`): each charge that applies in its months, by kind, then the
    /// non-tax percentages.
    fn rate_piece(
        &mut self,
        pi: usize,
        charges: &[Charge],
        piece_uses: &[Use<'_>],
        all: &[Use<'_>],
        a: i64,
        b: i64,
    ) -> Result<()> {
        // A profile is one local month in the charges' zone.
        let months = match self.profile {
            Some(p) => vec![p.month0 + 1],
            None => months_in(self.tou_tz, a, b)?,
        };
        for c in charges {
            if c.selection().is_some_and(|s| !s.months.is_empty() && !s.months.iter().any(|m| months.contains(m))) {
                continue;
            }
            let base = if self.text == year::Text::Lines { describe(c) } else { String::new() };
            match c {
                Charge::Allowance(_) | Charge::Minimum(_) | Charge::Percentage(_) => {}
                Charge::Fixed(f) => self.fixed(pi, f, &base, a, b)?,
                Charge::Demand(d) => self.demand(pi, d, &base, piece_uses, a, b)?,
                Charge::Volume(t) => self.volume(pi, t, &base, piece_uses, all)?,
                Charge::PerUnit(p) => self.per_unit(pi, p, &base, piece_uses)?,
                Charge::Graduated(t) => self.graduated_usage(pi, t, &base, piece_uses)?,
                Charge::Package(p) => self.package(pi, p, &base, piece_uses)?,
                Charge::TimeOfUse(t) => self.time_of_use(pi, t, &base, piece_uses)?,
            }
        }
        for c in charges {
            if let Some(p) = c.as_percentage().filter(|p| !p.tax) {
                self.percentage(pi, p, &describe(c))?;
            }
        }
        Ok(())
    }
}

/// Local months (1–12) with at least one local date in `[a, b)`.
fn months_in(tz: Tz, a: i64, b: i64) -> Result<Vec<u32>> {
    let mut out: Vec<u32> = year_months_in_capped(tz, a, b, 12)?.into_iter().map(|(_, m)| m).collect();
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `(year, month)` of every local calendar month with a local date in `[a, b)`, in order.
fn year_months_in(tz: Tz, a: i64, b: i64) -> Result<Vec<(i32, u32)>> {
    year_months_in_capped(tz, a, b, 12_000)
}

fn year_months_in_capped(tz: Tz, a: i64, b: i64, cap: usize) -> Result<Vec<(i32, u32)>> {
    let first = secs(a)?.with_timezone(&tz).date_naive();
    let last = secs(b - 1)?.with_timezone(&tz).date_naive();
    let mut out = Vec::new();
    let mut d = first.with_day(1).unwrap_or(first);
    while d <= last && out.len() < cap {
        out.push((d.year(), d.month()));
        match d.checked_add_months(chrono::Months::new(1)) {
            Some(n) => d = n,
            None => break,
        }
    }
    Ok(out)
}

impl Rater<'_> {
    fn allowance(&mut self, pi: usize, c: &AllowanceCharge, base: &str, uses: &mut [Use<'_>]) -> Result<()> {
        let div_by = c.usage.divide_by.unwrap_or(Decimal::ONE);
        let included = mul(mul(c.included, self.scale(c.tier_basis, &c.usage, uses)?)?, div_by)?;
        let key = (c.id.clone(), None);
        let used_before = self.carry.get(&key).copied().unwrap_or_default();
        let mut left = sub(included, used_before, "An allowance's remaining units")?.max(Decimal::ZERO);
        if !left.is_zero() {
            net_corrections(uses, |u| Self::matches(&c.usage.select, u))?;
        }
        let mut taken = Decimal::ZERO;
        for u in uses.iter_mut() {
            if left.is_zero() {
                break;
            }
            if u.q <= Decimal::ZERO || !Self::matches(&c.usage.select, u) {
                continue;
            }
            let d = u.q.min(left);
            u.q = sub(u.q, d, "A quantity after an allowance")?;
            left = sub(left, d, "An allowance's remaining units")?;
            taken = add(taken, d)?;
        }
        *self.carry.entry(key).or_default() = add(used_before, taken)?;
        let shown = div(taken, div_by)?;
        let unit = self.unit(&c.usage);
        let desc = format!("{base} ({} of {} {unit})", fmt_decimal(shown), fmt_decimal(div(included, div_by)?));
        let zero = self.rounding.round(Decimal::ZERO, self.dp)?;
        self.push(pi, &c.id, desc, shown, &unit, Decimal::ZERO, zero, None, None);
        Ok(())
    }

    fn fixed(&mut self, pi: usize, c: &FixedCharge, base: &str, a: i64, b: i64) -> Result<()> {
        let (id, amount) = (c.id.as_str(), c.amount);
        if c.per == Some(Per::Day) {
            let days = Decimal::from(days_between(self.tz, a, b)?);
            let m = self.money(days, amount)?;
            let unit = c.unit.as_deref().unwrap_or("day");
            self.push(pi, id, self.says(|| base.to_string()), days, unit, amount, m, None, None);
            return Ok(());
        }
        for (pa, pb, cs, ce) in cycle_parts(self.tariff.billing_cycle, self.tz, a, b)? {
            if (pa, pb) == (cs, ce) {
                let m = self.money(Decimal::ONE, amount)?;
                self.push(pi, id, self.says(|| base.to_string()), Decimal::ONE, "period", amount, m, None, None);
            } else {
                let days = days_between(self.tz, pa, pb)?;
                let cycle_days = days_between(self.tz, cs, ce)?.max(1);
                let rate = div(amount, Decimal::from(cycle_days))?.round_dp_with_strategy(12, self.rounding.strategy());
                let m = self.money(Decimal::from(days), rate)?;
                let desc = self.says(|| format!("{base} ({days} of {cycle_days} days)"));
                self.push(pi, id, desc, Decimal::from(days), "day", rate, m, None, None);
            }
        }
        Ok(())
    }

    fn per_unit(&mut self, pi: usize, c: &PerUnitCharge, base: &str, uses: &[Use<'_>]) -> Result<()> {
        let q = self.sum(&c.usage, uses)?;
        let m = self.money(q, c.rate)?;
        let unit = self.unit(&c.usage);
        self.push(pi, &c.id, self.says(|| base.to_string()), q, &unit, c.rate, m, None, None);
        Ok(())
    }

    fn graduated_usage(&mut self, pi: usize, c: &TieredCharge, base: &str, uses: &[Use<'_>]) -> Result<()> {
        let q = self.sum(&c.usage, uses)?;
        let scale = self.scale(c.tier_basis, &c.usage, uses)?;
        let unit = self.unit(&c.usage);
        self.graduated(pi, &c.id, (base, &unit), &c.tiers, scale, None, q)
    }

    fn package(&mut self, pi: usize, c: &PackageCharge, base: &str, uses: &[Use<'_>]) -> Result<()> {
        let q = self.sum(&c.usage, uses)?;
        let key = (c.id.clone(), None);
        let before = self.carry.get(&key).copied().unwrap_or_default();
        if q < Decimal::ZERO {
            return Err(Error::new(ErrorKind::Tariff, "A package charge cannot price a negative quantity."));
        }
        let after = add(before, q)?;
        let (free, size) = (c.free_units.unwrap_or_default(), c.package_size);
        let n = sub(packages(after, free, size)?, packages(before, free, size)?, "A number of packages")?;
        let m = self.money(n, c.rate)?;
        let unit = self.unit(&c.usage);
        let desc = format!(
            "{base} ({} {unit} in blocks of {}, {} free)",
            fmt_decimal(q),
            fmt_decimal(size),
            fmt_decimal(free)
        );
        self.push(pi, &c.id, desc, n, "package", c.rate, m, None, None);
        self.carry.insert(key, after);
        Ok(())
    }

    /// A `time_of_use` charge: one line (or tier lines) per schedule period.
    fn time_of_use(&mut self, pi: usize, c: &TimeOfUseCharge, base: &str, uses: &[Use<'_>]) -> Result<()> {
        let unit = self.unit(&c.usage);
        if c.shared_ladder.is_some() {
            return self.shared_ladder(pi, c, base, &unit, uses);
        }
        let s = &c.prices.schedule;
        let (sums, _) = self.period_sums(&c.usage.select, s, uses)?;
        let scale = self.scale(c.tier_basis, &c.usage, uses)?;
        for (p, name) in s.periods.iter().enumerate() {
            let q = c.usage.convert(sums[p])?;
            let Some(price) = c.prices.periods.get(name) else { continue };
            if let Some(rate) = price.rate {
                let m = self.money(q, rate)?;
                let desc = self.says(|| format!("{base}, {name}"));
                self.push(pi, &c.id, desc, q, &unit, rate, m, None, Some(name));
            } else {
                self.graduated(pi, &c.id, (base, &unit), &price.tiers, scale, Some(name), q)?;
            }
        }
        Ok(())
    }

    /// A `time_of_use` charge with `shared_ladder`: one ladder over the bill's records in time
    /// order, each slice at its record's period's rate; one line per period and tier.
    fn shared_ladder(
        &mut self,
        pi: usize,
        c: &TimeOfUseCharge,
        base: &str,
        unit: &str,
        uses: &[Use<'_>],
    ) -> Result<()> {
        let s = &c.prices.schedule;
        let prices: Vec<&[Tier]> =
            s.periods.iter().map(|n| c.prices.periods.get(n).map_or(&[][..], |p| p.tiers.as_slice())).collect();
        let width = prices.iter().map(|t| t.len()).max().unwrap_or(0);
        let mut sums = vec![Decimal::ZERO; s.periods.len() * width];
        let mut used = vec![false; s.periods.len()];
        let scale = self.scale(c.tier_basis, &c.usage, uses)?;
        let key = (c.id.clone(), None);
        let mut before = self.carry.get(&key).copied().unwrap_or_default();
        if c.shared_ladder == Some(SharedLadder::TimeOrder) {
            for u in uses.iter().filter(|u| Self::matches(&c.usage.select, u)) {
                let p = s.period_at(u.date.month0(), is_weekend(s, u.date), u.hour());
                let q = c.usage.convert(u.q)?;
                used[p] = true;
                ladder(prices[p], scale, before, q, &mut |sl| {
                    sums[p * width + sl.tier] = add(sums[p * width + sl.tier], sl.qty)?;
                    Ok(())
                })?;
                before = add(before, q)?;
            }
        } else {
            // Pro rata: each period's share of every tier slice of the total.
            let (mut per, in_use) = self.period_sums(&c.usage.select, s, uses)?;
            used = in_use;
            let mut total = Decimal::ZERO;
            for q in &mut per {
                *q = c.usage.convert(*q)?;
                total = add(total, *q)?;
            }
            let mut slices = Vec::new();
            if let Some(first) = prices.iter().find(|t| !t.is_empty()) {
                ladder(first, scale, before, total, &mut |sl| {
                    slices.push(sl);
                    Ok(())
                })?;
            }
            for (p, &e) in per.iter().enumerate() {
                for sl in slices.iter().filter(|_| !e.is_zero()) {
                    let share = div(mul(sl.qty, e)?, total)?;
                    sums[p * width + sl.tier] = add(sums[p * width + sl.tier], share)?;
                }
            }
            before = add(before, total)?;
        }
        self.carry.insert(key, before);
        for (p, name) in s.periods.iter().enumerate() {
            for (t, tier) in prices[p].iter().enumerate() {
                let q = sums[p * width + t];
                if q.is_zero() && (t > 0 || !used[p]) {
                    continue;
                }
                let amount = self.money(q, tier.rate)?;
                let desc = self.says(|| format!("{base}, {name}, tier {}", t + 1));
                self.push(pi, &c.id, desc, q, unit, tier.rate, amount, Some(t), Some(name));
            }
        }
        Ok(())
    }

    fn volume(&mut self, pi: usize, c: &TieredCharge, base: &str, uses: &[Use<'_>], all: &[Use<'_>]) -> Result<()> {
        let unit = self.unit(&c.usage);
        let (qty, total) = (self.sum(&c.usage, uses)?, self.sum(&c.usage, all)?);
        if qty < Decimal::ZERO || total < Decimal::ZERO {
            return Err(Error::new(ErrorKind::Tariff, "A volume charge cannot price a negative quantity."));
        }
        let i = volume_tier(&c.tiers, self.scale(c.tier_basis, &c.usage, all)?, total)?;
        let t = &c.tiers[i];
        let m = self.money(qty, t.rate)?;
        let desc = format!("{base}, tier {} (period total {} {unit})", i + 1, fmt_decimal(total));
        self.push(pi, &c.id, desc, qty, &unit, t.rate, m, Some(i), None);
        if let Some(flat) = t.flat {
            if !total.is_zero() && self.flats.insert((c.id.clone(), None, i)) {
                let m = self.money(Decimal::ONE, flat)?;
                let desc = format!("{base}, tier {} flat fee", i + 1);
                self.push(pi, &c.id, desc, Decimal::ONE, "fee", flat, m, Some(i), None);
            }
        }
        Ok(())
    }

    /// Demand lines: the peak per TOU period (one period without a schedule), and per local
    /// calendar month of `[a, b)` when `per = "month"`.
    fn demand(&mut self, pi: usize, c: &DemandCharge, base: &str, uses: &[Use<'_>], a: i64, b: i64) -> Result<()> {
        let unit = c.unit.as_deref().unwrap_or("kW");
        let by_month = c.per == Some(Per::Month);
        let months: Vec<(i32, u32)> = if by_month { year_months_in(self.tou_tz, a, b)? } else { vec![(0, 0)] };
        let mut peaks = self.demand_peaks(c, uses, &months)?;
        let schedule = match &c.price {
            DemandPrice::TimeOfUse(p) => Some(&p.schedule),
            _ => None,
        };
        let n_periods = schedule.map_or(1, |s| s.periods.len());
        if let Some(bd) = self.billing_demand {
            self.ratchet_peaks(schedule, &mut peaks, bd, a)?;
        }
        for (mi, &(y, m)) in months.iter().enumerate() {
            let text = self.text == year::Text::Lines;
            let month = if by_month && text { format!(" ({y:04}-{m:02})") } else { String::new() };
            let line = |name: Option<&str>, peak: Decimal| match (text, name) {
                (false, _) => String::new(),
                (true, Some(n)) => format!("{base}, {n}, peak {} {unit}{month}", fmt_decimal(peak)),
                (true, None) => format!("{base}, peak {} {unit}{month}", fmt_decimal(peak)),
            };
            match &c.price {
                DemandPrice::Rate(rate) => {
                    let peak = peaks[mi];
                    let amount = self.money(peak, *rate)?;
                    self.push(pi, &c.id, line(None, peak), peak, unit, *rate, amount, None, None);
                }
                DemandPrice::Tiers(tiers) => {
                    let peak = peaks[mi];
                    self.demand_tiers(pi, &c.id, (&line(None, peak), unit), tiers, None, peak)?;
                }
                DemandPrice::TimeOfUse(prices) => {
                    for (p, name) in prices.schedule.periods.iter().enumerate() {
                        let Some(price) = prices.periods.get(name) else { continue };
                        let peak = peaks[mi * n_periods + p];
                        let desc = line(Some(name), peak);
                        if let Some(rate) = price.rate {
                            let amount = self.money(peak, rate)?;
                            self.push(pi, &c.id, desc, peak, unit, rate, amount, None, Some(name));
                        } else {
                            self.demand_tiers(pi, &c.id, (&desc, unit), &price.tiers, Some(name), peak)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Under a ratchet every peak is the billing demand `bd`, in each period of the charge's
    /// `schedule` that occurs in the local month starting the bill (`a`), zero in the others.
    fn ratchet_peaks(&self, schedule: Option<&Schedule>, peaks: &mut [Decimal], bd: Decimal, a: i64) -> Result<()> {
        let month0 = secs(a)?.with_timezone(&self.tou_tz).month0() as usize;
        for (slot, p) in peaks.iter_mut().enumerate() {
            let occurs = schedule.is_none_or(|s| {
                let period = slot % s.periods.len().max(1);
                [&s.weekday, &s.weekend].iter().any(|g| {
                    let row = if g.len() == 1 { g.first() } else { g.get(month0) };
                    row.is_some_and(|r| r.iter().any(|&x| usize::from(x) == period))
                })
            });
            *p = if occurs { bd } else { Decimal::ZERO };
        }
        Ok(())
    }

    /// The peak kW of a demand charge per month of `months` (one `(0, 0)` entry unless per month)
    /// and TOU period: slot `month index × periods + period` (the month profile's hourly peaks
    /// when rating from one).
    fn demand_peaks(&self, c: &DemandCharge, uses: &[Use<'_>], months: &[(i32, u32)]) -> Result<Vec<Decimal>> {
        let minutes = i64::from(c.interval_minutes.unwrap_or(60));
        let len = minutes * 60;
        let schedule = match &c.price {
            DemandPrice::TimeOfUse(p) => Some(&p.schedule),
            _ => None,
        };
        let n_periods = schedule.map_or(1, |s| s.periods.len());
        let month_of = |u: &Use<'_>| months.iter().position(|&m| m == (u.date.year(), u.date.month())).unwrap_or(0);
        // Records are in time order, so the intervals (UTC start of the local-aligned interval)
        // come in order too: sum each run and keep the largest kWh per month and period.
        let mut peaks = match self.profile {
            Some(pr) => Self::profile_peaks(schedule, pr, n_periods),
            None => vec![Decimal::ZERO; n_periods * months.len()],
        };
        let mut run: Option<(i64, Decimal, usize)> = None;
        for u in uses.iter().filter(|u| Self::matches(&c.select, u)) {
            let key = u.t - u.local.rem_euclid(len);
            match &mut run {
                Some((k, sum, _)) if *k == key => *sum = add(*sum, u.q)?,
                _ => {
                    if let Some((_, sum, slot)) = run {
                        peaks[slot] = larger(peaks[slot], sum);
                    }
                    let period = schedule.map_or(0, |s| s.period_at(u.date.month0(), is_weekend(s, u.date), u.hour()));
                    run = Some((key, u.q, month_of(u) * n_periods + period));
                }
            }
        }
        if let Some((_, sum, slot)) = run {
            peaks[slot] = larger(peaks[slot], sum);
        }
        let per_hour = Decimal::from(60 / minutes);
        peaks.into_iter().map(|p| mul(p, per_hour)).collect()
    }

    fn demand_tiers(
        &mut self,
        pi: usize,
        id: &str,
        (desc, unit): (&str, &str),
        tiers: &[Tier],
        tou: Option<&str>,
        peak: Decimal,
    ) -> Result<()> {
        let mut slices = Vec::new();
        ladder(tiers, Decimal::ONE, Decimal::ZERO, peak, &mut |s| {
            slices.push(s);
            Ok(())
        })?;
        for s in slices {
            let rate = tiers[s.tier].rate;
            let m = self.money(s.qty, rate)?;
            let line = self.says(|| format!("{desc}, tier {}", s.tier + 1));
            self.push(pi, id, line, s.qty, unit, rate, m, Some(s.tier), tou);
        }
        Ok(())
    }

    fn percentage(&mut self, pi: usize, c: &PercentageCharge, base: &str) -> Result<()> {
        let mut base_amount = Decimal::ZERO;
        for p in &self.pieces[pi] {
            if !p.tax && (c.applies_to.is_empty() || c.applies_to.contains(&p.line.charge)) {
                base_amount = add(base_amount, p.line.amount)?;
            }
        }
        let rate = div(c.percent, Decimal::ONE_HUNDRED)?;
        let m = self.money(base_amount, rate)?;
        let unit = self.tariff.currency.clone();
        self.push(pi, &c.id, base.to_string(), base_amount, &unit, rate, m, None, None);
        if let Some(line) = self.pieces[pi].last_mut() {
            line.tax = c.tax;
        }
        Ok(())
    }

    fn minimums(&mut self, pieces: &[(usize, i64, i64)]) -> Result<()> {
        // Minimum per charge id: exact sum over pieces, then rounded.
        let mut mins: Vec<(String, Decimal, usize, String)> = Vec::new();
        for (pi, &(vi, a, b)) in pieces.iter().enumerate() {
            let charges = &self.tariff.versions[vi].charges;
            for (c, base) in charges.iter().filter_map(|c| match c {
                Charge::Minimum(m) => Some((m, describe(c))),
                _ => None,
            }) {
                let amount = c.amount;
                let part = match c.per.unwrap_or(Per::Period) {
                    Per::Day => mul(amount, Decimal::from(days_between(self.tz, a, b)?))?,
                    Per::Year => {
                        let year = secs(a)?.with_timezone(&self.tz).year();
                        let ys = NaiveDate::from_ymd_opt(year, 1, 1);
                        let ye = NaiveDate::from_ymd_opt(year + 1, 1, 1);
                        let (Some(ys), Some(ye)) = (ys, ye) else { continue };
                        let year_days = Decimal::from(ye.signed_duration_since(ys).num_days());
                        div(mul(amount, Decimal::from(days_between(self.tz, a, b)?))?, year_days)?
                    }
                    Per::Period | Per::Month => {
                        let mut s = Decimal::ZERO;
                        for (pa, pb, cs, ce) in cycle_parts(self.tariff.billing_cycle, self.tz, a, b)? {
                            let f = if (pa, pb) == (cs, ce) {
                                amount
                            } else {
                                let days = days_between(self.tz, pa, pb)?;
                                let cycle_days = days_between(self.tz, cs, ce)?.max(1);
                                div(mul(amount, Decimal::from(days))?, Decimal::from(cycle_days))?
                            };
                            s = add(s, f)?;
                        }
                        s
                    }
                };
                match mins.iter_mut().find(|m| m.0 == c.id) {
                    Some(m) => {
                        m.1 = add(m.1, part)?;
                        m.2 = pi;
                    }
                    None => mins.push((c.id.clone(), part, pi, base)),
                }
            }
        }
        for (id, total, pi, base) in mins {
            let minimum = self.rounding.round(total, self.dp)?;
            let mut subtotal = Decimal::ZERO;
            for p in self.pieces.iter().flatten().filter(|p| !p.tax) {
                subtotal = add(subtotal, p.line.amount)?;
            }
            if self.meter.is_some() {
                // SSC: a bill in credit counts as zero against the minimum.
                subtotal = subtotal.max(Decimal::ZERO);
            }
            if subtotal < minimum {
                let desc = format!("{base} (minimum {minimum}, subtotal {subtotal})");
                let top_up = self.rounding.round(sub(minimum, subtotal, "A minimum charge's top-up")?, self.dp)?;
                self.push(pi, &id, desc, Decimal::ONE, "bill", minimum, top_up, None, None);
            }
        }
        Ok(())
    }
}

/// Net negative corrections against positive usage before an allowance consumes it: the
/// negative quantities of the uses `matching` cancel as many positive units, earliest first on
/// both sides, so the allowance covers net usage (a −0.5 kWh correction inside a 10 kWh
/// allowance leaves 0.5 kWh more of it, not a −0.50 credit at the per-unit rate) — the same
/// net quantity [`QuantityRater::total`] prices. The sum of the quantities is unchanged.
fn net_corrections(uses: &mut [Use<'_>], matching: impl Fn(&Use<'_>) -> bool) -> Result<()> {
    let (mut neg, mut pos) = (Decimal::ZERO, Decimal::ZERO);
    for u in uses.iter().filter(|u| matching(u)) {
        if u.q < Decimal::ZERO {
            neg = add(neg, u.q.abs())?;
        } else {
            pos = add(pos, u.q)?;
        }
    }
    let netted = neg.min(pos);
    let (mut from_neg, mut from_pos) = (netted, netted);
    for u in uses.iter_mut() {
        if from_neg.is_zero() && from_pos.is_zero() {
            break;
        }
        if !matching(u) {
            continue;
        }
        if u.q < Decimal::ZERO && !from_neg.is_zero() {
            let d = u.q.abs().min(from_neg);
            u.q = add(u.q, d)?;
            from_neg = sub(from_neg, d, "Netted corrections")?;
        } else if u.q > Decimal::ZERO && !from_pos.is_zero() {
            let d = u.q.min(from_pos);
            u.q = sub(u.q, d, "A netted use")?;
            from_pos = sub(from_pos, d, "Netted corrections")?;
        }
    }
    Ok(())
}

/// A tariff compiled for rating plain quantities fast: one billing period, one subject, every
/// record of the metric — what [`Tariff::bill`] gives for a whole billing period, as a total only.
///
/// Supports the latest version's `fixed` (per period), `per_unit`, `graduated`, `volume`,
/// `package`, `allowance`, `minimum` (per period) and `percentage` charges, with `divide_by` and
/// period-basis tiers; no `metric`, `filter` or `months` restrictions.
///
/// ```
/// let t = meterkit::Tariff::from_toml(r#"
///     currency = "USD"
///     [[charges]]
///     id = "api"
///     type = "graduated"
///     tiers = [{ up_to = "1000", rate = "0" }, { rate = "0.002" }]
/// "#)?;
/// let rater = t.quantity_rater()?;
/// assert_eq!(rater.total("1500".parse()?)?.to_string(), "1.00");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct QuantityRater {
    charges: Vec<Fast>,
    /// Whether some percentage names charges in `applies_to` (then per-charge amounts are kept).
    keeps_amounts: bool,
    /// Decimal places of a line (the tariff's `line_decimals`, else its minor units).
    dp: u32,
    /// Minor-unit digits of the total.
    total_dp: u32,
    rounding: Rounding,
}

/// A charge compiled for [`QuantityRater`].
#[derive(Debug, Clone)]
enum Fast {
    Fixed(Decimal),
    Allowance(Decimal),
    PerUnit(PerUnitCharge),
    /// Graduated: tier lower limits, upper limits, rates, rounded flat fees, and for each tier the
    /// rounded amounts (with flats) of all full tiers below it.
    Graduated {
        charge: TieredCharge,
        lo: Vec<Decimal>,
        hi: Vec<Option<Decimal>>,
        flats: Vec<Decimal>,
        prefix: Vec<Decimal>,
    },
    Volume(TieredCharge),
    Package(PackageCharge),
    Minimum(Decimal),
    Percentage {
        rate: Decimal,
        applies: Vec<usize>,
        tax: bool,
    },
}

impl Fast {
    /// Charge `c` of `charges` compiled, or `None` when it needs calendar or record detail
    /// (`time_of_use`, `demand`, per-day or per-year amounts, tiers not per period, a selection).
    fn of(c: &Charge, charges: &[Charge], round: &dyn Fn(Decimal) -> Result<Decimal>) -> Result<Option<Fast>> {
        if c.selection().is_some_and(|s| *s != Selection::default()) {
            return Ok(None);
        }
        let per_period = |per: Option<Per>| per.is_none_or(|p| p == Per::Period);
        let basis_period = |b: Option<Basis>| b.is_none_or(|b| b == Basis::Period);
        Ok(Some(match c {
            Charge::Fixed(f) if per_period(f.per) => Fast::Fixed(round(f.amount)?),
            Charge::Minimum(m) if per_period(m.per) => Fast::Minimum(round(m.amount)?),
            Charge::Allowance(a) if basis_period(a.tier_basis) => {
                Fast::Allowance(mul(a.included, a.usage.divide_by.unwrap_or(Decimal::ONE))?)
            }
            Charge::PerUnit(p) => Fast::PerUnit(p.clone()),
            Charge::Graduated(t) if basis_period(t.tier_basis) => Fast::graduated(t, round)?,
            Charge::Volume(t) if basis_period(t.tier_basis) => Fast::Volume(t.clone()),
            Charge::Package(p) => Fast::Package(p.clone()),
            Charge::Percentage(p) => Fast::Percentage {
                rate: div(p.percent, Decimal::ONE_HUNDRED)?,
                applies: p.applies_to.iter().filter_map(|a| charges.iter().position(|x| x.id() == a)).collect(),
                tax: p.tax,
            },
            _ => return Ok(None),
        }))
    }

    /// A graduated charge with each full tier's rounded amount precomputed.
    fn graduated(c: &TieredCharge, round: &dyn Fn(Decimal) -> Result<Decimal>) -> Result<Fast> {
        let n = c.tiers.len();
        let (mut lo, mut hi, mut flats, mut prefix) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut below = Decimal::ZERO;
        let mut acc = Decimal::ZERO;
        for (j, t) in c.tiers.iter().enumerate() {
            let top = if j + 1 < n { t.up_to } else { None };
            let flat = round(t.flat.unwrap_or_default())?;
            lo.push(below);
            hi.push(top);
            flats.push(flat);
            prefix.push(acc);
            if let Some(top) = top {
                let width = sub(top, below, "A tier's width")?;
                acc = add(add(acc, round(mul(width, t.rate)?)?)?, flat)?;
                below = top;
            }
        }
        Ok(Fast::Graduated { charge: c.clone(), lo, hi, flats, prefix })
    }
}

impl QuantityRater {
    /// The bill total for a whole billing period with `quantity` units of the metric
    /// (same rounding model as [`Tariff::bill`]: each line rounded, then summed).
    ///
    /// # Errors
    /// [`ErrorKind::Overflow`]; [`ErrorKind::Tariff`] for a negative quantity on a tiered charge.
    pub fn total(&self, quantity: Decimal) -> Result<Decimal> {
        let round = |d: Decimal| self.rounding.round(d, self.dp);
        let negative =
            || Error::new(ErrorKind::Tariff, format!("A tiered charge cannot price a negative quantity ({quantity})."));
        let mut q = quantity;
        for c in &self.charges {
            if let Fast::Allowance(inc) = c {
                if q > Decimal::ZERO {
                    q = sub(q, q.min(*inc), "A quantity after an allowance")?;
                }
            }
        }
        let mut amounts = if self.keeps_amounts { vec![Decimal::ZERO; self.charges.len()] } else { Vec::new() };
        let mut subtotal = Decimal::ZERO;
        for (i, c) in self.charges.iter().enumerate() {
            let amount = match c {
                Fast::Fixed(a) => *a,
                Fast::PerUnit(c) => round(mul(c.usage.convert(q)?, c.rate)?)?,
                Fast::Graduated { charge, lo, hi, flats, prefix } => {
                    let q = charge.usage.convert(q)?;
                    if q < Decimal::ZERO {
                        return Err(negative());
                    }
                    if q.is_zero() {
                        Decimal::ZERO
                    } else {
                        let j = hi.iter().position(|h| h.is_none_or(|h| q <= h)).unwrap_or(hi.len() - 1);
                        let part = round(mul(sub(q, lo[j], "A tier's quantity")?, charge.tiers[j].rate)?)?;
                        add(add(prefix[j], part)?, flats[j])?
                    }
                }
                Fast::Volume(c) => {
                    let q = c.usage.convert(q)?;
                    if q < Decimal::ZERO {
                        return Err(negative());
                    }
                    let t = &c.tiers[volume_tier(&c.tiers, Decimal::ONE, q)?];
                    let flat = if q.is_zero() { Decimal::ZERO } else { round(t.flat.unwrap_or_default())? };
                    add(round(mul(q, t.rate)?)?, flat)?
                }
                Fast::Package(c) => {
                    let q = c.usage.convert(q)?;
                    if q < Decimal::ZERO {
                        return Err(negative());
                    }
                    let n = packages(q, c.free_units.unwrap_or_default(), c.package_size)?;
                    round(mul(n, c.rate)?)?
                }
                _ => continue,
            };
            if self.keeps_amounts {
                amounts[i] = amount;
            }
            subtotal = add(subtotal, amount)?;
        }
        let pct = |rate: Decimal, applies: &[usize], amounts: &[Decimal], subtotal: Decimal| -> Result<Decimal> {
            let base = if applies.is_empty() {
                subtotal
            } else {
                applies.iter().try_fold(Decimal::ZERO, |b, &a| add(b, amounts[a]))?
            };
            round(mul(base, rate)?)
        };
        for (i, c) in self.charges.iter().enumerate() {
            if let Fast::Percentage { rate, applies, tax: false } = c {
                let a = pct(*rate, applies, &amounts, subtotal)?;
                if self.keeps_amounts {
                    amounts[i] = a;
                }
                subtotal = add(subtotal, a)?;
            }
        }
        for (i, c) in self.charges.iter().enumerate() {
            if let Fast::Minimum(m) = c {
                if subtotal < *m {
                    if self.keeps_amounts {
                        amounts[i] = sub(*m, subtotal, "A minimum charge's top-up")?;
                    }
                    subtotal = *m;
                }
            }
        }
        let mut taxes = Decimal::ZERO;
        for c in &self.charges {
            if let Fast::Percentage { rate, applies, tax: true } = c {
                taxes = add(taxes, pct(*rate, applies, &amounts, subtotal)?)?;
            }
        }
        self.rounding.round(add(subtotal, taxes)?, self.total_dp)
    }
}

#[cfg(test)]
mod tests;
