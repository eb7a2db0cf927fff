//! Invoices, shared-meter allocation and gap estimation: thin wrappers over the core's
//! `invoice`, `allocate` and `vee::estimate` (no rules here).

use std::time::SystemTime;

use meterkit::invoice::InvoiceStatus;
use meterkit::Decimal;

use crate::engine::Engine;
use crate::error::{unsigned, MeterkitError};
use crate::types::{from_system, records_to_core, to_system, Bill, UsageRecord};

/// Where an invoice is in its lifecycle (the core's `InvoiceStatus`, derived with
/// `uniffi::remote`: no mirror, no conversion). Allowed transitions: draft → issued, issued →
/// overdue, issued | overdue → paid, draft | issued | overdue → void.
#[uniffi::remote(Enum)]
pub enum InvoiceStatus {
    Draft,
    Issued,
    Paid,
    Overdue,
    Void,
}

/// An invoice for one bill (the core's `Invoice`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
#[allow(missing_docs)] // one-to-one with the core's documented `Invoice`
pub struct Invoice {
    /// Invoice number, unique per tenant.
    pub id: String,
    pub bill: Bill,
    pub status: InvoiceStatus,
    /// Days from issue to due date (0 or more).
    pub payment_terms_days: i32,
    pub issued_at: Option<SystemTime>,
    pub due_at: Option<SystemTime>,
    pub paid_at: Option<SystemTime>,
    pub voided_at: Option<SystemTime>,
}

impl Invoice {
    fn from_core(i: meterkit::invoice::Invoice) -> Self {
        Invoice {
            id: i.id,
            bill: i.bill,
            status: i.status,
            payment_terms_days: i32::try_from(i.payment_terms_days).unwrap_or(i32::MAX),
            issued_at: i.issued_at.map(to_system),
            due_at: i.due_at.map(to_system),
            paid_at: i.paid_at.map(to_system),
            voided_at: i.voided_at.map(to_system),
        }
    }

    fn to_core(&self) -> Result<meterkit::invoice::Invoice, MeterkitError> {
        let at = |t: Option<SystemTime>, f: &str| t.map(|t| from_system(t, f)).transpose();
        Ok(meterkit::invoice::Invoice {
            id: self.id.clone(),
            bill: self.bill.clone(),
            status: self.status,
            payment_terms_days: unsigned(self.payment_terms_days, "payment_terms_days")?,
            issued_at: at(self.issued_at, "issued_at")?,
            due_at: at(self.due_at, "due_at")?,
            paid_at: at(self.paid_at, "paid_at")?,
            voided_at: at(self.voided_at, "voided_at")?,
        })
    }
}

fn invoices(v: Vec<meterkit::invoice::Invoice>) -> Vec<Invoice> {
    v.into_iter().map(Invoice::from_core).collect()
}

/// A draft invoice for `bill`, due `payment_terms_days` after it is issued (the core's
/// `Invoice::new`). Errors: `InvalidQuery` for negative payment terms.
#[uniffi::export]
pub fn create_invoice(id: String, bill: Bill, payment_terms_days: i32) -> Result<Invoice, MeterkitError> {
    let days = unsigned(payment_terms_days, "payment_terms_days")?;
    Ok(Invoice::from_core(meterkit::invoice::Invoice::new(id, bill, days)))
}

#[uniffi::export]
impl Engine {
    /// Issue a draft `invoice` at `at` and store it (emits `BillIssued`); returns it issued.
    /// Errors: `InvalidTransition` unless a draft, `Conflict` when the id is stored, `Store`.
    pub fn issue_invoice(&self, invoice: Invoice, at: SystemTime) -> Result<Invoice, MeterkitError> {
        let mut inv = invoice.to_core()?;
        self.engine()?.issue_invoice(&mut inv, from_system(at, "at")?)?;
        Ok(Invoice::from_core(inv))
    }

    /// The stored invoices of `tenant`, by id. Errors: `Store`.
    pub fn invoices(&self, tenant: String) -> Result<Vec<Invoice>, MeterkitError> {
        Ok(invoices(self.engine()?.invoices(&tenant)?))
    }

    /// Mark the stored invoice paid at `at`. Errors: `NotFound`, `InvalidTransition` unless
    /// issued or overdue, `Store`.
    pub fn pay_invoice(&self, tenant: String, id: String, at: SystemTime) -> Result<Invoice, MeterkitError> {
        let at = from_system(at, "at")?;
        Ok(Invoice::from_core(self.engine()?.update_invoice(&tenant, &id, |i| i.pay(at))?))
    }

    /// Void the stored invoice at `at`. Errors: `NotFound`, `InvalidTransition` once paid or
    /// void, `Store`.
    pub fn void_invoice(&self, tenant: String, id: String, at: SystemTime) -> Result<Invoice, MeterkitError> {
        let at = from_system(at, "at")?;
        Ok(Invoice::from_core(self.engine()?.update_invoice(&tenant, &id, |i| i.void(at))?))
    }

    /// Stored invoices whose payment reminder is due at `now` (issued, unpaid, due within
    /// `days_before` days). Errors: `InvalidQuery` for a negative `days_before`, `Store`.
    pub fn reminders_due(
        &self,
        tenant: String,
        now: SystemTime,
        days_before: i32,
    ) -> Result<Vec<Invoice>, MeterkitError> {
        let days_before = unsigned(days_before, "days_before")?;
        Ok(invoices(self.engine()?.reminders_due(&tenant, from_system(now, "now")?, days_before)?))
    }

    /// Mark every issued invoice past its due date overdue (emits `InvoiceOverdue` once each);
    /// returns those marked. Errors: `Store`.
    pub fn mark_overdue(&self, tenant: String, now: SystemTime) -> Result<Vec<Invoice>, MeterkitError> {
        Ok(invoices(self.engine()?.mark_overdue(&tenant, from_system(now, "now")?)?))
    }
}

/// Split `total` by `weights` exactly at `scale` decimals (the core's `allocate::allocate`:
/// largest remainders; the parts sum to `total`). Errors: `InvalidQuery` for no weights, a
/// negative or all-zero weight, a scale that is negative or above 20.
#[uniffi::export]
pub fn allocate(total: Decimal, weights: Vec<Decimal>, scale: i32) -> Result<Vec<Decimal>, MeterkitError> {
    Ok(meterkit::allocate::allocate(total, &weights, unsigned(scale, "scale")?)?)
}

/// One subject's weight in a [`SharedMeter`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Share {
    /// The subject (a flat).
    pub subject: String,
    /// Its weight (equal weights for equal shares).
    pub weight: Decimal,
}

/// A common meter (a pump, a lift) shared by subjects (the core's `allocate::SharedMeter`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SharedMeter {
    /// Subject of the common meter.
    pub meter: String,
    /// Metric of the records the split creates.
    pub metric: String,
    /// The shares.
    pub shares: Vec<Share>,
    /// The meter's resolution in decimal places (0–20).
    pub scale: i32,
}

/// The shared meter's consumption `total` at `at` split into one usage record per share (the
/// core's `SharedMeter::split`: id `{meter}:{subject}:{at}`, quantities summing exactly to
/// `total`). Errors: as [`allocate`], `Parse` for an instant out of range.
#[uniffi::export]
pub fn split_shared_meter(
    meter: SharedMeter,
    tenant: String,
    total: Decimal,
    at: SystemTime,
) -> Result<Vec<UsageRecord>, MeterkitError> {
    let core = meterkit::allocate::SharedMeter {
        meter: meter.meter,
        metric: meter.metric,
        shares: meter.shares.into_iter().map(|s| (s.subject, s.weight)).collect(),
        scale: unsigned(meter.scale, "scale")?,
    };
    let records = core.split(&tenant, total, from_system(at, "at")?)?;
    Ok(records)
}

/// Gap estimation settings (the core's `vee::estimate::EstimateConfig`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EstimateConfig {
    /// The series' cadence, seconds (3600 for hourly data).
    pub interval_secs: i64,
    /// Gaps of up to this many intervals are interpolated linearly.
    #[uniffi(default = 4)]
    pub max_interpolation_intervals: i32,
    /// Longer gaps up to this many intervals take the same-hour-of-week mean.
    #[uniffi(default = 336)]
    pub max_estimated_intervals: i32,
    /// Weeks of history the same-hour-of-week mean looks back.
    #[uniffi(default = 4)]
    pub history_weeks: i32,
    /// Decimal places of estimated quantities (half-even).
    #[uniffi(default = 6)]
    pub decimals: i32,
}

/// The records (quality `estimated`) that fill the gaps of one series (the core's
/// `vee::estimate::estimate_gaps`; the rules are in docs/validation.md). Errors: `Validation` for
/// a non-positive interval, `InvalidQuery` for a negative count (naming it), `Parse` for instants
/// out of range, `Overflow`.
#[uniffi::export]
pub fn estimate_gaps(records: Vec<UsageRecord>, config: EstimateConfig) -> Result<Vec<UsageRecord>, MeterkitError> {
    let cfg = meterkit::vee::estimate::EstimateConfig {
        interval_secs: config.interval_secs,
        max_interpolation_intervals: unsigned(config.max_interpolation_intervals, "max_interpolation_intervals")?,
        max_estimated_intervals: unsigned(config.max_estimated_intervals, "max_estimated_intervals")?,
        history_weeks: unsigned(config.history_weeks, "history_weeks")?,
        decimals: unsigned(config.decimals, "decimals")?,
    };
    let filled = meterkit::vee::estimate::estimate_gaps(&records_to_core(records)?, &cfg)?;
    Ok(filled)
}

/// An instant interval `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Period {
    /// Start (inclusive).
    pub start: SystemTime,
    /// End (exclusive).
    pub end: SystemTime,
}

/// The instant a local date `YYYY-MM-DD` (its first instant) or local time `YYYY-MM-DDTHH:MM[:SS]`
/// names in `time_zone` (the core's `time::local_instant`). Errors: `Parse` (field `local`),
/// `InvalidTimeZone`.
#[uniffi::export]
pub fn local_instant(local: String, time_zone: String) -> Result<SystemTime, MeterkitError> {
    let tz = meterkit::time::parse_time_zone(&time_zone)?;
    Ok(to_system(meterkit::time::local_instant(&local, tz)?))
}

/// The calendar month `yyyy_mm` (`2024-03`) in `time_zone`, local midnight to local midnight (the
/// core's `billing::month_period`). Errors: `Parse` for a bad month (field `period`),
/// `InvalidTimeZone`.
#[uniffi::export]
pub fn month_period(yyyy_mm: String, time_zone: String) -> Result<Period, MeterkitError> {
    let tz = meterkit::time::parse_time_zone(&time_zone)?;
    let (start, end) = meterkit::billing::month_period(&yyyy_mm, tz)?;
    Ok(Period { start: to_system(start), end: to_system(end) })
}

/// The window of kind `window` (`hour`, `day`, `month`, `minutes:15`, `cycle:5`, …) in
/// `time_zone` that contains `at` (the core's `Window::span`). Errors: `InvalidWindow`,
/// `InvalidTimeZone`, `Parse` for an instant out of range.
#[uniffi::export]
pub fn window_span(window: String, at: SystemTime, time_zone: String) -> Result<Period, MeterkitError> {
    let window: meterkit::Window = window.parse()?;
    let tz = meterkit::time::parse_time_zone(&time_zone)?;
    let (start, end) = window.span(from_system(at, "at")?, tz)?;
    Ok(Period { start: to_system(start), end: to_system(end) })
}

/// The summary of `findings` as the core's JSON (`meterkit::vee::ValidationSummary`: counts by
/// severity, action and rule, flagged and estimated shares). Errors: `Parse` for instants out of
/// range.
#[uniffi::export]
pub fn validation_summary(findings: Vec<crate::types::Finding>) -> Result<String, MeterkitError> {
    crate::types::to_json(&meterkit::vee::ValidationSummary::of(&findings))
}
