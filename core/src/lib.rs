//! # meterkit
//!
//! An embeddable library for usage metering and billing: it takes **usage records** (kWh from
//! meters, bytes from SIM cards, API requests, messages), rolls them up incrementally into
//! time-zone-exact **windows** (hour, day, week, month, billing cycle) and answers queries in
//! O(buckets), never by scanning raw records.
//!
//! The core is pure logic: persistence goes through the [`Store`] trait (an in-memory
//! [`MemoryStore`] here, SQLite in the `meterkit-sqlite` crate) and events through the
//! [`Notifier`] trait. Quantities and money are exact [`Decimal`]s.
//!
//! ```
//! use meterkit::{Engine, Fill, Query, UsageRecord, Window};
//! use chrono::{TimeZone, Utc};
//!
//! let engine = Engine::in_memory();
//! let hour = |h| Utc.with_ymd_and_hms(2024, 3, 10, h, 0, 0).unwrap();
//! let batch: Vec<UsageRecord> = (0..24)
//!     .map(|h| UsageRecord::new("acme", format!("m1-{h}"), "meter-1", "kwh", "0.5".parse().unwrap(), hour(h)))
//!     .collect();
//! let report = engine.ingest(&batch)?;
//! assert_eq!(report.accepted, 24);
//!
//! // Local days in New York; 10 March 2024 is a 23-hour day.
//! let q = Query::new("acme", "kwh", Window::Day, "America/New_York")
//!     .range(hour(0), hour(23))
//!     .fill(Fill::Zero);
//! let days = engine.query(&q)?;
//! assert_eq!(days.len(), 2);
//! assert_eq!(days[0].sum.to_string(), "2.5"); // 00:00-04:59 UTC is still 9 March in New York
//! assert_eq!(days[1].sum.to_string(), "9.5");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Before anything is billed, records can be validated ([`Validator`], or per metric inside
//! [`Engine::ingest`] with [`Engine::set_validation`]): each problem becomes a [`Finding`] that
//! rejects, flags or accepts the record, register readings become consumption with roll-over
//! handling ([`RegisterTracker`]), and gaps are estimated ([`estimate_gaps`]); see
//! [`guide::validation`].
//!
//! Design notes and conventions: the [`guide`] module (the same text as `docs/` in the repository).
#![deny(missing_docs)]
// Every Decimal, date and duration operation is checked: overflow is an `E_OVERFLOW` error naming
// what overflowed, never a panic or a wrong number. Primitive integers (bounded counters and Unix
// seconds of the supported range, years 1678–2261) are exempt in `core/clippy.toml`.
#![warn(clippy::arithmetic_side_effects)]
#![cfg_attr(test, allow(clippy::arithmetic_side_effects))]

/// Long-form documentation, rendered from `docs/*.md`.
pub mod guide {
    #[doc = include_str!("../../docs/windows.md")]
    pub mod windows {}
    #[doc = include_str!("../../docs/rollups.md")]
    pub mod rollups {}
    /// Validation, estimation and editing (VEE): rules, defaults, memory per series, the evaluation
    /// on labelled data.
    #[doc = include_str!("../../docs/validation.md")]
    pub mod validation {}
}

mod alert;
mod allocate;
mod batch;
mod bill;
mod columnar;
mod compare;
mod engine;
mod error;
mod estimate;
mod invoice;
mod json;
mod notify;
mod quota;
mod reading;
mod readings;
mod revise;
mod rollup;
mod store;
mod tariff;
mod urdb;
pub use crate::urdb::{DayCount, NamedTariff, UrdbOptions};
mod usage;
mod validate;
mod window;

pub use chrono_tz::Tz;
pub use rust_decimal::Decimal;

pub use crate::alert::{alerts_of, Alert, AlertBuilder, AlertConfig, AlertEvent};
pub use crate::allocate::{allocate, SharedMeter};
pub use crate::batch::{MAX_SOURCE_LEN, MIN_PROBED_BATCH};
pub use crate::bill::{month_period, Bill, BillLine, BillRequest, QuantityRater};
pub use crate::columnar::{ColumnBatch, ColumnarRollup, Quantities, StrColumn, MAX_COLUMNAR_GROUPS};
pub use crate::compare::{Comparison, PeriodTotal};
pub use crate::engine::{Engine, Fill, IngestReport, Query, Rejection, Totals, MAX_FILLED_ROWS, MAX_FILLED_WINDOWS};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::estimate::{estimate_gaps, EstimateConfig};
pub use crate::invoice::{reminders_due, Invoice, InvoiceStatus};
pub use crate::json::{canonical_json, check_json};
pub use crate::notify::{CollectingNotifier, Event, NoopNotifier, Notifier};
pub use crate::quota::Quota;
pub use crate::reading::{MeterReading, ReadingKind, RegisterTracker};
pub use crate::readings::{
    attribute as attribute_consumption, DayShare, ReadingOptions, ReadingOutcome, ReadingStatus, StoredReading,
    MAX_INTERVAL_DAYS,
};
pub use crate::rollup::{Accumulator, Aggregation, Bucket, BucketState, Latest, RollupSpec, SUBJECT};
pub use crate::store::{BucketKey, ChangeSet, MemoryStore, Store, StoredBucket};
pub use crate::tariff::{
    Basis, Charge, ChargeKind, Per, PeriodPrice, QuantityRounding, Rounding, Schedule, SharedLadder, Tariff,
    TariffVersion, Tier, MAX_PRICE_DECIMALS,
};
pub use crate::usage::{
    decimal_from_f64, fmt_decimal, fmt_ts, parse_decimal, parse_ts, Dimensions, Quality, UsageRecord,
    MAX_TIMESTAMP_SECS, MIN_TIMESTAMP_SECS,
};
pub use crate::validate::{
    Action, Finding, Rule, Severity, SeverityCounts, ValidationConfig, ValidationSummary, Validator, MAX_WINDOW,
};
pub use crate::window::{parse_time_zone, Window};

#[cfg(test)]
mod reliability_tests;

#[cfg(test)]
mod fuzz_driver;

#[cfg(test)]
mod fuzz_tests;
