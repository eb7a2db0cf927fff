//! Exported energy under a tariff's metering rule ([`Metering`]): netting imports against exports,
//! crediting exports at sell rates, and the credit carried from month to month — as NREL
//! SAM/PySAM's `Utilityrate5` (SSC `cmod_utilityrate5.cpp`: `ur_calc` for net metering,
//! `ur_calc_timestep` for net billing and buy-all-sell-all).
//!
//! A month is rated in three steps: the records are split by their `direction` dimension and
//! netted as the rule says ([`netted`]); the charges price the net imports as any bill; then the
//! metering lines are added — before the minimum (net metering's netted energy, net billing's
//! credit) or after it (buy-all-sell-all's credit, the December payout of carried credit). A
//! bill in credit counts as zero against a minimum, as in SSC.

use std::borrow::Cow;

use chrono::{Datelike, Timelike};
use rust_decimal::Decimal;

use super::{
    describe, is_weekend, profile::MonthProfile, ratchet::RatchetMonth, year::AnnualMonth, year::Text, Bill, BillLine,
    BillRequest, Pending, Rater, Use,
};
use crate::decimal::{add, fmt_decimal, mul, sub};
use crate::error::{Error, ErrorKind, Result};
use crate::record::UsageRecord;
use crate::tariff::metering::{Metering, MeteringRule, DIRECTION, EXPORT, IMPORT};
use crate::tariff::{tariff_err, Charge, Tariff};
use crate::time::{offset_at, parse_time_zone, Tz};

/// What carries from one month's bill to the next under a metering rule: excess kWh (net
/// metering) or unused credit in the currency (net billing hourly). Zero at the start of a year
/// and after December.
#[derive(Debug, Clone, Default)]
pub(crate) struct MeterState {
    pub(crate) carry: Decimal,
    /// Net metering: surplus kWh by rollover position (see [`MeterMonth::rollover`]).
    pub(crate) by_position: Vec<(usize, Decimal)>,
}

/// One month's metering inputs and outputs, read by the rater's metering passes.
#[derive(Debug)]
pub(crate) struct MeterMonth {
    rule: MeteringRule,
    energy_charge: String,
    /// Net exported quantity of the month.
    exported: Decimal,
    /// The exports at their sell rates (exact).
    credit: Decimal,
    carry_in: Decimal,
    carry_out: Decimal,
    /// Net metering: the exports per period of the energy charge's schedule.
    exported_by_period: Vec<Decimal>,
    /// Net metering: this month's period at each rollover position (weekday 00, 05, 11, 17 h).
    rollover: Vec<usize>,
    /// Net metering: surplus kWh carried in / out, by rollover position.
    carried_in: Vec<(usize, Decimal)>,
    carried_out: Vec<(usize, Decimal)>,
    /// The bill ends a December: carried credit is settled.
    year_end: bool,
    year_end_rate: Decimal,
}

/// The `direction` of a record: `true` for an export; an unknown value is an error.
fn is_export(r: &UsageRecord) -> Result<bool> {
    match r.dimensions.get(DIRECTION).map(String::as_str) {
        None | Some(IMPORT) => Ok(false),
        Some(EXPORT) => Ok(true),
        Some(other) => Err(Error::new(
            ErrorKind::InvalidRecord,
            format!("The direction '{other}' is not '{IMPORT}' or '{EXPORT}'."),
        )
        .with_field("dimensions.direction")
        .with_record_id(&r.id)),
    }
}

/// The net imports (as records) and the net exports `(record, quantity)` of `records` under
/// `rule`: netted per instant (net metering, net billing instantaneous), per local clock hour
/// (net billing hourly), or not at all (buy all, sell all). `None` when nothing is exported.
#[allow(clippy::type_complexity)]
fn netted<'r>(
    rule: MeteringRule,
    records: &'r [UsageRecord],
    req: &BillRequest,
    tz: Tz,
) -> Result<Option<(Vec<UsageRecord>, Vec<(&'r UsageRecord, Decimal)>)>> {
    let mine = |r: &UsageRecord| {
        r.subject == req.subject
            && r.metric == req.metric
            && r.timestamp >= req.period_start
            && r.timestamp < req.period_end
    };
    let mut any = false;
    for r in records.iter().filter(|r| mine(r)) {
        any |= is_export(r)?;
    }
    if !any {
        return Ok(None);
    }
    let key = |r: &UsageRecord| {
        let t = r.timestamp.timestamp();
        match rule {
            MeteringRule::NetBillingHourly => t - (t + offset_at(tz, t)).rem_euclid(3600),
            _ => t,
        }
    };
    let mut idx: Vec<usize> = (0..records.len()).filter(|&i| mine(&records[i])).collect();
    idx.sort_by_key(|&i| (key(&records[i]), records[i].timestamp));
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut other: Vec<UsageRecord> = records.iter().filter(|r| !mine(r)).cloned().collect();
    let mut i = 0;
    while i < idx.len() {
        let k = key(&records[idx[i]]);
        let (mut imp, mut exp, mut first_imp, mut first_exp) = (Decimal::ZERO, Decimal::ZERO, None, None);
        while i < idx.len() && key(&records[idx[i]]) == k {
            let r = &records[idx[i]];
            if is_export(r)? {
                exp = add(exp, r.quantity)?;
                first_exp.get_or_insert(r);
            } else {
                imp = add(imp, r.quantity)?;
                first_imp.get_or_insert(r);
            }
            i += 1;
        }
        if rule == MeteringRule::BuyAllSellAll {
            if let Some(r) = first_imp {
                imports.push(with_quantity(r, imp));
            }
            if let Some(r) = first_exp {
                exports.push((r, exp));
            }
            continue;
        }
        let net = sub(imp, exp, "A net quantity")?;
        match (first_imp, first_exp) {
            (Some(r), _) if net > Decimal::ZERO => imports.push(with_quantity(r, net)),
            (_, Some(r)) if net < Decimal::ZERO => exports.push((r, neg(net)?)),
            _ => {}
        }
    }
    imports.append(&mut other);
    Ok(Some((imports, exports)))
}

/// `-d`, checked.
fn neg(d: Decimal) -> Result<Decimal> {
    sub(Decimal::ZERO, d, "A credit")
}

/// A copy of `r` with `q` and without the `direction` dimension.
fn with_quantity(r: &UsageRecord, q: Decimal) -> UsageRecord {
    let mut c = r.clone();
    c.quantity = q;
    c.dimensions.remove(DIRECTION);
    c
}

/// The exports at the sell rate of their local time in `tz`.
fn credit_of(m: &Metering, exports: &[(&UsageRecord, Decimal)], tz: Tz) -> Result<Decimal> {
    let mut credit = Decimal::ZERO;
    for (r, q) in exports {
        let local = r.timestamp.with_timezone(&tz);
        let weekend = m.schedule.as_ref().is_some_and(|s| is_weekend(s, local.date_naive()));
        credit = add(credit, mul(*q, m.sell_at(local.month0(), weekend, local.hour())?)?)?;
    }
    Ok(credit)
}

impl Tariff {
    /// Net metering's per-period inputs: the exports per period of the energy charge's schedule
    /// and the month's period at each rollover position (weekday 00, 05, 11 and 17 h).
    fn by_period(
        &self,
        m: &Metering,
        exports: &[(&UsageRecord, Decimal)],
        tz: Tz,
        month0: u32,
    ) -> Result<(Vec<Decimal>, Vec<usize>)> {
        let charge = self.versions.iter().rev().flat_map(|v| v.charges.iter()).find(|c| c.id() == m.energy_charge);
        let Some(s) = charge.and_then(Charge::schedule) else {
            let mut e = Decimal::ZERO;
            for (_, q) in exports {
                e = add(e, *q)?;
            }
            return Ok((vec![e], vec![0; 4]));
        };
        let mut by = vec![Decimal::ZERO; s.periods.len()];
        for (r, q) in exports {
            let local = r.timestamp.with_timezone(&tz);
            let p = s.period_at(local.month0(), is_weekend(s, local.date_naive()), local.hour());
            by[p] = add(by[p], *q)?;
        }
        let rollover = [0, 5, 11, 17].iter().map(|&h| s.period_at(month0, false, h)).collect();
        Ok((by, rollover))
    }

    /// One bill under the tariff's metering rule, updating `state` (the carried kWh or credit);
    /// a bill ending in a December settles the carried credit and resets it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rate_metered(
        &self,
        req: &BillRequest,
        records: &[UsageRecord],
        state: &mut MeterState,
        ratchet: Option<&mut RatchetMonth>,
        annual: Option<&mut AnnualMonth>,
        profile: Option<&MonthProfile>,
        text: Text,
    ) -> Result<Bill> {
        let Some(m) = &self.metering else {
            return self.rate_hooked(req, records, None, ratchet, annual, profile, text);
        };
        let tz = parse_time_zone(&req.time_zone)?;
        let tou_tz = match &self.time_zone {
            Some(z) => parse_time_zone(z)?,
            None => tz,
        };
        let last = req.period_end.checked_sub_signed(chrono::Duration::seconds(1)).unwrap_or(req.period_end);
        let year_end = last.with_timezone(&tz).month() == 12;
        // A profile is only built for a month without `direction`: nothing to net.
        let netted = if profile.is_some() { None } else { netted(m.rule, records, req, tou_tz)? };
        if netted.is_none() && state.carry.is_zero() && state.by_position.is_empty() {
            return self.rate_hooked(req, records, None, ratchet, annual, profile, text);
        }
        let (imports, exported, credit) = match &netted {
            Some((imports, exports)) => {
                let mut e = Decimal::ZERO;
                for (_, q) in exports {
                    e = add(e, *q)?;
                }
                (Cow::Borrowed(imports.as_slice()), e, credit_of(m, exports, tou_tz)?)
            }
            None => (Cow::Borrowed(records), Decimal::ZERO, Decimal::ZERO),
        };
        let local_month0 = req.period_start.with_timezone(&tou_tz).month0();
        let (exported_by_period, rollover) = match (m.rule, &netted) {
            (MeteringRule::NetMetering, Some((_, exports))) => self.by_period(m, exports, tou_tz, local_month0)?,
            (MeteringRule::NetMetering, None) => self.by_period(m, &[], tou_tz, local_month0)?,
            _ => (Vec::new(), Vec::new()),
        };
        let mut month = MeterMonth {
            rule: m.rule,
            energy_charge: m.energy_charge.clone(),
            exported,
            credit,
            carry_in: state.carry,
            carry_out: Decimal::ZERO,
            exported_by_period,
            rollover,
            carried_in: std::mem::take(&mut state.by_position),
            carried_out: Vec::new(),
            year_end,
            year_end_rate: m.year_end_rate.unwrap_or_default(),
        };
        let bill = self.rate_hooked(req, &imports, Some(&mut month), ratchet, annual, None, text)?;
        state.carry = if year_end { Decimal::ZERO } else { month.carry_out };
        state.by_position = if year_end { Vec::new() } else { month.carried_out };
        Ok(bill)
    }
}

impl Rater<'_> {
    /// A line of the metering rule on the last piece of the bill.
    fn meter_line(
        &mut self,
        charge: &str,
        description: String,
        quantity: Decimal,
        unit: &str,
        rate: Decimal,
        amount: Decimal,
    ) {
        let Some(piece) = self.pieces.last_mut() else { return };
        piece.push(Pending {
            line: BillLine {
                charge: charge.to_string(),
                description,
                quantity: quantity.normalize(),
                unit: unit.to_string(),
                rate: rate.normalize(),
                amount,
                tier: None,
                tou_period: None,
            },
            tax: false,
        });
    }

    /// The metering lines that count toward the minimum: net metering's netted energy, net
    /// billing's export credit (instantaneous) or the credit carried in (hourly).
    pub(super) fn meter_before_minimums(&mut self, pieces: &[(usize, i64, i64)], uses: &[Use<'_>]) -> Result<()> {
        let Some(m) = self.meter.take() else { return Ok(()) };
        let r = self.meter_before(m, pieces, uses);
        self.meter = Some(m);
        r
    }

    /// The unit of the energy charge's lines (its `unit`, else the metric).
    fn energy_unit(&self, m: &MeterMonth) -> String {
        let c = self.tariff.versions.iter().rev().flat_map(|v| v.charges.iter()).find(|c| c.id() == m.energy_charge);
        c.and_then(Charge::usage).map_or_else(|| self.req.metric.clone(), |u| self.unit(u))
    }

    /// The average sell rate of the month's exports (0 without exports), to 6 places.
    fn sell_rate(m: &MeterMonth) -> Result<Decimal> {
        if m.exported.is_zero() {
            return Ok(Decimal::ZERO);
        }
        Ok(crate::decimal::div(m.credit, m.exported)?.round_dp(6))
    }

    fn meter_before(&mut self, m: &mut MeterMonth, pieces: &[(usize, i64, i64)], uses: &[Use<'_>]) -> Result<()> {
        let unit = self.energy_unit(m);
        let currency = self.tariff.currency.clone();
        match m.rule {
            MeteringRule::NetBillingInstantaneous => {
                let amount = self.rounding.round(neg(m.credit)?, self.dp)?;
                let desc = format!("Exported {} {unit} credited at sell rates (net billing)", fmt_decimal(m.exported));
                self.meter_line("export_credit", desc, m.exported, &unit, Self::sell_rate(m)?, amount);
            }
            MeteringRule::NetBillingHourly => {
                let mut ec = Decimal::ZERO;
                for p in self.pieces.iter().flatten().filter(|p| p.line.charge == m.energy_charge) {
                    ec = add(ec, p.line.amount)?;
                }
                let applied = m.carry_in.min(ec.max(Decimal::ZERO));
                if !m.carry_in.is_zero() {
                    let amount = self.rounding.round(neg(applied)?, self.dp)?;
                    let desc = format!(
                        "Credit carried in {} applied to energy charges (net billing)",
                        fmt_decimal(m.carry_in)
                    );
                    self.meter_line("credit_applied", desc, Decimal::ONE, &currency, applied, amount);
                }
                m.carry_out = add(m.credit, sub(m.carry_in, applied, "A carried credit")?)?;
            }
            MeteringRule::NetMetering => self.net_metering(m, pieces, uses)?,
            MeteringRule::BuyAllSellAll => {}
        }
        Ok(())
    }

    /// Net metering (SSC `ur_calc`): per period of the energy charge, the month's net
    /// (imports − exports − the surplus carried into the period); a period in surplus is priced
    /// at zero and its surplus carries to next month's period at the same time of day (the
    /// weekday periods at 00:00, 05:00, 11:00 and 17:00, SSC's `ec_rollover_periods`); the
    /// periods' net imports are priced as the charge prices usage.
    fn net_metering(&mut self, m: &mut MeterMonth, pieces: &[(usize, i64, i64)], uses: &[Use<'_>]) -> Result<()> {
        let (tariff, unit) = (self.tariff, self.energy_unit(m));
        let Some(&(vi, _, _)) = pieces.last() else { return Ok(()) };
        let Some(c) = tariff.versions[vi].charges.iter().find(|c| c.id() == m.energy_charge) else { return Ok(()) };
        let (basis, usage) = match c {
            Charge::PerUnit(p) if pieces.len() == 1 => (None, &p.usage),
            Charge::Graduated(g) if pieces.len() == 1 => (g.tier_basis, &g.usage),
            Charge::TimeOfUse(t) if pieces.len() == 1 => (t.tier_basis, &t.usage),
            _ => {
                return Err(tariff_err(
                    "metering.rule",
                    "Net metering of exported energy is modelled for a per_unit, graduated or time_of_use energy charge in one tariff version.",
                ))
            }
        };
        let schedule = c.schedule();
        let periods = schedule.map_or(1, |s| s.periods.len());
        let period_of =
            |u: &Use<'_>| schedule.map_or(0, |s| s.period_at(u.date.month0(), is_weekend(s, u.date), u.hour()));
        // Net per period: + imports, − exports, − surplus carried in.
        let mut net = vec![Decimal::ZERO; periods];
        let mut first: Vec<Option<usize>> = vec![None; periods];
        for (i, u) in uses.iter().enumerate().filter(|(_, u)| Self::matches(&usage.select, u)) {
            let p = period_of(u);
            net[p] = add(net[p], u.q)?;
            first[p].get_or_insert(i);
        }
        let mut imported = Decimal::ZERO;
        for n in &net {
            imported = add(imported, *n)?;
        }
        for (p, e) in m.exported_by_period.iter().enumerate().take(periods) {
            net[p] = sub(net[p], *e, "A net quantity")?;
        }
        for (k, q) in std::mem::take(&mut m.carried_in) {
            if let Some(&p) = m.rollover.get(k) {
                net[p] = sub(net[p], q, "A net quantity")?;
            }
        }
        // Surplus carries to the next month by its first rollover position (lost when the period
        // is at none of the four hours, as in SSC).
        for (p, n) in net.iter().enumerate() {
            if *n < Decimal::ZERO {
                if let Some(k) = m.rollover.iter().position(|&r| r == p) {
                    m.carried_out.push((k, neg(*n)?));
                }
            }
        }
        m.carry_out = m.carried_out.iter().try_fold(Decimal::ZERO, |a, (_, q)| add(a, *q))?;
        // Re-price the charge on one use per period holding the period's net import.
        let scale = self.scale(basis, usage, uses)?;
        let netted: Vec<Use<'_>> = (0..periods)
            .filter_map(|p| {
                let i = first[p]?;
                let u = &uses[i];
                (net[p] > Decimal::ZERO).then(|| Use {
                    t: u.t,
                    local: u.local,
                    date: u.date,
                    q: net[p],
                    r: u.r,
                    bill_metric: u.bill_metric,
                })
            })
            .collect();
        for p in &mut self.pieces {
            p.retain(|l| l.line.charge != c.id());
        }
        self.carry.retain(|k, _| k.0 != c.id());
        self.fixed_scale = Some(scale);
        let pi = self.pieces.len() - 1;
        let r = self.rate_energy(pi, c, &netted);
        self.fixed_scale = None;
        r?;
        let desc = format!(
            "Net metering: {} {unit} imported, {} {unit} exported, {} {unit} carried in, {} {unit} carried out",
            fmt_decimal(imported),
            fmt_decimal(m.exported),
            fmt_decimal(m.carry_in),
            fmt_decimal(m.carry_out)
        );
        let zero = self.rounding.round(Decimal::ZERO, self.dp)?;
        self.meter_line("net_metering", desc, m.exported, &unit, Decimal::ZERO, zero);
        Ok(())
    }

    /// Rate the energy charge `c` (per_unit, graduated or time_of_use) on `uses` into piece `pi`.
    fn rate_energy(&mut self, pi: usize, c: &Charge, uses: &[Use<'_>]) -> Result<()> {
        let base = describe(c);
        match c {
            Charge::PerUnit(p) => self.per_unit(pi, p, &base, uses),
            Charge::Graduated(g) => self.graduated_usage(pi, g, &base, uses),
            Charge::TimeOfUse(t) => self.time_of_use(pi, t, &base, uses),
            _ => Ok(()),
        }
    }

    /// The metering lines after the minimum: buy-all-sell-all's export credit, and in December
    /// the settlement of the carried credit (net billing hourly) or excess kWh (net metering).
    pub(super) fn meter_after_minimums(&mut self) -> Result<()> {
        let Some(m) = self.meter.take() else { return Ok(()) };
        let r = self.meter_after(m);
        self.meter = Some(m);
        r
    }

    fn meter_after(&mut self, m: &mut MeterMonth) -> Result<()> {
        let unit = self.energy_unit(m);
        let currency = self.tariff.currency.clone();
        match m.rule {
            MeteringRule::BuyAllSellAll => {
                let amount = self.rounding.round(neg(m.credit)?, self.dp)?;
                let desc =
                    format!("Exported {} {unit} sold at sell rates (buy all, sell all)", fmt_decimal(m.exported));
                self.meter_line("export_credit", desc, m.exported, &unit, Self::sell_rate(m)?, amount);
            }
            MeteringRule::NetBillingHourly if m.year_end && !m.carry_out.is_zero() => {
                let amount = self.rounding.round(neg(m.carry_out)?, self.dp)?;
                let desc = "Year-end payment of the carried export credit (net billing)".to_string();
                self.meter_line("year_end_credit", desc, Decimal::ONE, &currency, m.carry_out, amount);
            }
            MeteringRule::NetMetering if m.year_end && !m.carry_out.is_zero() && !m.year_end_rate.is_zero() => {
                let amount = self.rounding.round(neg(mul(m.carry_out, m.year_end_rate)?)?, self.dp)?;
                let desc = format!("Year-end credit of {} {unit} excess (net metering)", fmt_decimal(m.carry_out));
                self.meter_line("year_end_credit", desc, m.carry_out, &unit, m.year_end_rate, amount);
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "metering_tests.rs"]
mod tests;
