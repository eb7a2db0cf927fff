//! The `Notifier` trait and its events.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::ErrorKind;
use crate::rollup::Bucket;
use crate::vee::alert::Alert;
use crate::vee::Finding;

/// Something the engine tells the outside world about, after the change it describes is stored.
///
/// JSON (bindings): `{"type":"record_rejected",...}` with the fields below in snake_case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "MeterkitEvent"))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A record of an ingest batch was rejected (invalid, or a conflicting idempotency key).
    RecordRejected {
        /// Tenant of the record.
        tenant: String,
        /// Id of the record.
        id: String,
        /// Why, as an error kind (`invalid_record`, `conflict`, …).
        kind: ErrorKind,
        /// Why, in a sentence.
        reason: String,
    },
    /// A record landed in a window that `close_windows` had already closed; its bucket was
    /// updated (late records update only their own buckets), once per affected rollup.
    LateRecord {
        /// Tenant of the record.
        tenant: String,
        /// Id of the record.
        id: String,
        /// The rollup's window kind (`day`, `hour`, …).
        window: String,
        /// The updated bucket.
        bucket: Bucket,
    },
    /// Validation raised a warning or error about a record of an ingest batch (info findings
    /// are only in the `IngestReport`). Emitted after the batch is stored, once per finding.
    AnomalyDetected {
        /// The finding.
        finding: Finding,
    },
    /// Validation findings on one series opened an alert (its first warning or error after the
    /// series' warm-up); see [`AlertBuilder`](crate::vee::alert::AlertBuilder). Emitted after the batch is
    /// stored.
    AlertRaised {
        /// The alert as known at its first finding.
        alert: Alert,
    },
    /// An open alert ended: `gap` values of its series passed without a finding. Carries the
    /// whole alert (end, rules, peak, expected range, severity).
    AlertResolved {
        /// The complete alert.
        alert: Alert,
    },
    /// A window passed `now - allowed_lateness`; emitted once per bucket.
    WindowClosed {
        /// Tenant.
        tenant: String,
        /// The rollup's window kind (`day`, `hour`, …).
        window: String,
        /// The final bucket.
        bucket: Bucket,
    },
    /// A subject's usage (or bill total, for a budget) reached an alert level of a quota in a
    /// period; emitted once per level per period, never again for replayed records.
    ThresholdCrossed {
        /// Tenant.
        tenant: String,
        /// Quota id.
        quota: String,
        /// The subject.
        subject: String,
        /// The metric.
        metric: String,
        /// Start of the period.
        #[serde(with = "crate::time::ts_str")]
        #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
        period_start: DateTime<Utc>,
        /// End of the period.
        #[serde(with = "crate::time::ts_str")]
        #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
        period_end: DateTime<Utc>,
        /// The level reached, in percent.
        #[serde(with = "crate::decimal::decimal_str")]
        #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
        level: Decimal,
        /// Usage (or money) so far in the period.
        #[serde(with = "crate::decimal::decimal_str")]
        #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
        used: Decimal,
        /// The quota's limit.
        #[serde(with = "crate::decimal::decimal_str")]
        #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
        limit: Decimal,
    },
    /// An invoice was issued.
    BillIssued {
        /// Tenant.
        tenant: String,
        /// Invoice id.
        invoice: String,
        /// The subject billed.
        subject: String,
        /// Currency.
        currency: String,
        /// Bill total (money string with the minor-unit digits).
        #[serde(with = "crate::decimal::money_str")]
        #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
        total: Decimal,
        /// Due date.
        #[serde(with = "crate::time::ts_str")]
        #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
        due_at: DateTime<Utc>,
    },
    /// An issued invoice passed its due date unpaid; emitted once per invoice.
    InvoiceOverdue {
        /// Tenant.
        tenant: String,
        /// Invoice id.
        invoice: String,
        /// The subject billed.
        subject: String,
        /// Bill total.
        #[serde(with = "crate::decimal::money_str")]
        #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
        total: Decimal,
        /// Due date that passed.
        #[serde(with = "crate::time::ts_str")]
        #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
        due_at: DateTime<Utc>,
    },
}

/// Receives [`Event`]s. Called after the change is stored, never while the engine holds its
/// lock, so a notifier may call back into the engine. Implementations must not panic.
pub trait Notifier: Send + Sync {
    /// Handle one event.
    fn notify(&self, event: &Event);
}

/// A notifier that ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopNotifier;

impl Notifier for NoopNotifier {
    fn notify(&self, _event: &Event) {}
}

/// A notifier that keeps every event, for tests and batch jobs.
#[derive(Debug, Default)]
pub struct CollectingNotifier {
    events: Mutex<Vec<Event>>,
}

impl CollectingNotifier {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take the events collected so far.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl Notifier for CollectingNotifier {
    fn notify(&self, event: &Event) {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(event.clone());
    }
}

impl<N: Notifier + ?Sized> Notifier for std::sync::Arc<N> {
    fn notify(&self, event: &Event) {
        (**self).notify(event);
    }
}
