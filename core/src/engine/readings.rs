//! [`Engine::record_reading`] and [`Engine::readings`]: the engine side of the reading store
//! (the rules are in `crate::reading::check`).

use rust_decimal::Decimal;

use super::{conflict, Engine, Inner, MAX_ATTEMPTS};
use crate::decimal::fmt_decimal;
use crate::error::{Error, ErrorKind, Result};
use crate::reading::check::{
    decide, finding, history_prefix, key, parse_stored, records, Context, ReadingOptions, ReadingOutcome,
    ReadingStatus, StoredReading,
};
use crate::reading::MeterReading;
use crate::rollup::Accumulator;
use crate::store::ChangeSet;
use crate::time::fmt_ts;
use crate::vee::{Action, Rule, Severity};

impl Engine {
    /// Check a register `reading` of `metric` against the meter's stored history and store the
    /// reading, its consumption and its findings in **one atomic change**: a crash can never keep
    /// one without the others.
    ///
    /// `exchange` declares a meter exchange at the reading's time: `Some(old final reading)` closes
    /// the old register at that value (its consumption since the previous reading is billed) and
    /// `reading.register` opens the new one (the new baseline, whatever its value).
    ///
    /// Decisions (the rules and their order are in docs/readings.md):
    /// * invalid values (negative, more than the declared digits) → `rejected` (`invalid_reading`);
    /// * a first reading → `accepted` (no consumption), `flagged` outside the site's typical range
    ///   (`first_reading_out_of_range`);
    /// * not later than the latest stored reading → `rejected` (`out_of_order_reading`); the same
    ///   reading sent again → its stored outcome plus an info `duplicate_reading`, nothing stored;
    /// * register down: a roll-over plausible against the history → `accepted` (`rollover`); a
    ///   dropped digit → `rejected` (`likely_typo`); an implausible roll-over → `flagged`
    ///   (`implausible_rollover`, held for review); else → `rejected` (`backwards_reading`);
    /// * register up far beyond the history: an extra digit → `rejected` (`likely_typo`), else
    ///   `flagged` (`implausible_consumption`).
    ///
    /// Consumption is split into one record per day of `opts.time_zone` the interval covers
    /// (pro rata by time, or by `opts.profile`; see [`crate::reading::check::attribute`]), with ids
    /// `"{meter}@{reading time}/{day start}"`, quality `flagged` for a flagged reading and
    /// `estimated` when either reading is estimated. The records go to every rollup like
    /// ingested ones (the engine's record validation does not run on them).
    ///
    /// # Errors
    /// Those of [`ReadingOptions::check`]; [`ErrorKind::InvalidRecord`] for an empty tenant,
    /// metric or meter or an interval over ten years; [`ErrorKind::Conflict`] when a consumption
    /// record id is stored with other content; [`ErrorKind::Store`]; [`ErrorKind::Overflow`]. On
    /// error nothing is stored.
    pub fn record_reading(
        &self,
        tenant: &str,
        metric: &str,
        reading: &MeterReading,
        exchange: Option<Decimal>,
        opts: &ReadingOptions,
    ) -> Result<ReadingOutcome> {
        let tz = opts.check()?;
        let cx = Context { tenant, metric, opts, tz };
        let mut inner = self.lock();
        let mut attempt = 1;
        loop {
            match Self::attempt(&mut inner, attempt, |inner| record_once(inner, &cx, reading, exchange, true)) {
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    attempt += 1;
                    Self::reload_specs(&mut inner)?;
                }
                other => return other,
            }
        }
    }

    /// Check a register `reading` exactly as [`Engine::record_reading`] does — against the
    /// meter's stored history, with the same decisions, findings and consumption records — but
    /// **store nothing**: what a field app shows before the engineer confirms the reading, or
    /// `meterkit readings --check-only`.
    ///
    /// # Errors
    /// As [`Engine::record_reading`] (a consumption record id stored with other content is still
    /// a [`ErrorKind::Conflict`]).
    pub fn check_reading(
        &self,
        tenant: &str,
        metric: &str,
        reading: &MeterReading,
        exchange: Option<Decimal>,
        opts: &ReadingOptions,
    ) -> Result<ReadingOutcome> {
        let tz = opts.check()?;
        let cx = Context { tenant, metric, opts, tz };
        record_once(&mut self.lock(), &cx, reading, exchange, false)
    }

    /// The stored history of `meter` of `tenant` (accepted and flagged readings, oldest first).
    ///
    /// # Errors
    /// [`ErrorKind::Store`].
    pub fn readings(&self, tenant: &str, meter: &str) -> Result<Vec<StoredReading>> {
        history(&self.lock(), tenant, meter)
    }
}

fn history(inner: &Inner, tenant: &str, meter: &str) -> Result<Vec<StoredReading>> {
    inner.store.meta_prefix(tenant, &history_prefix(meter))?.iter().map(|(_, v)| parse_stored(v)).collect()
}

fn record_once(
    inner: &mut Inner,
    cx: &Context<'_>,
    reading: &MeterReading,
    exchange: Option<Decimal>,
    write: bool,
) -> Result<ReadingOutcome> {
    for (what, v) in [("tenant", cx.tenant), ("metric", cx.metric), ("meter", reading.meter.as_str())] {
        if v.is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidRecord, format!("The reading's {what} is empty.")).with_field(what)
            );
        }
    }
    let stored = history(inner, cx.tenant, &reading.meter)?;
    if let Some(same) = stored.iter().find(|s| s.reading.timestamp == reading.timestamp) {
        if same.reading.register == reading.register && same.exchange == exchange {
            return Ok(resent(cx, same));
        }
    }
    let mut decision = decide(cx, &stored, reading, exchange);
    if let Some(same) = stored.iter().find(|s| s.reading.timestamp == reading.timestamp) {
        decision = differs(cx, same, decision);
    }
    let key = key(&decision);
    if decision.status == ReadingStatus::Rejected {
        if let Some(v) = inner.store.meta(cx.tenant, &key)? {
            return Ok(resent(cx, &parse_stored(&v)?));
        }
    }
    let prev_kind = stored.last().map(|s| s.reading.kind);
    let new = records(cx, &decision, prev_kind)?;
    for r in &new {
        r.check()?;
    }
    let ids: Vec<&str> = new.iter().map(|r| r.id.as_str()).collect();
    for (r, existing) in new.iter().zip(inner.store.get_records(cx.tenant, &ids)?) {
        if existing.is_some_and(|e| !e.same_content(r)) {
            return Err(conflict(r));
        }
    }
    let mut acc = Accumulator::with_ids(cx.tenant, super::live_specs(&inner.specs))?;
    for r in &new {
        acc.add(r)?;
    }
    let json = serde_json::to_string(&decision)
        .map_err(|e| Error::new(ErrorKind::Store, format!("A reading does not serialize: {e}")))?;
    let changes = ChangeSet {
        insert: new.iter().collect(),
        merge: acc.into_buckets(),
        meta: vec![(cx.tenant.to_string(), key, Some(json))],
        known_specs: Some(inner.specs.len() as u32),
        ..ChangeSet::default()
    };
    if write {
        inner.store.apply(&changes)?;
    }
    let mut outcome = ReadingOutcome::from_stored(&decision);
    outcome.records = new;
    Ok(outcome)
}

/// The outcome of a reading sent again: the stored one, plus an info `duplicate_reading`.
fn resent(cx: &Context<'_>, same: &StoredReading) -> ReadingOutcome {
    let mut outcome = ReadingOutcome::from_stored(same);
    let r = &same.reading;
    let msg = format!(
        "The reading {} of meter '{}' at {} was already recorded; nothing changed.",
        fmt_decimal(r.register),
        r.meter,
        fmt_ts(r.timestamp)
    );
    outcome.findings.push(finding(cx, r, Rule::DuplicateReading, Severity::Info, Action::Accept, msg));
    outcome
}

/// A second, different reading at the time of a stored one: rejected (the first is kept).
fn differs(cx: &Context<'_>, first: &StoredReading, mut decision: StoredReading) -> StoredReading {
    let r = &decision.reading;
    let msg = format!(
        "A second reading of meter '{}' at {} differs from the first ({} vs {}); the first is kept, check which is right.",
        r.meter,
        fmt_ts(r.timestamp),
        fmt_decimal(r.register),
        fmt_decimal(first.reading.register)
    );
    let f = finding(cx, r, Rule::DuplicateReading, Severity::Warning, Action::Reject, msg);
    decision.status = ReadingStatus::Rejected;
    decision.consumption = None;
    decision.from = None;
    decision.findings = vec![f];
    decision
}
