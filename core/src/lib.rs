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
//! use meterkit::{Engine, engine::Fill, Query, UsageRecord, Window};
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
//! handling ([`RegisterTracker`](crate::reading::RegisterTracker)), and gaps are estimated ([`estimate_gaps`](crate::vee::estimate::estimate_gaps)); see
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

pub mod allocate;
pub mod billing;
pub mod decimal;
pub mod engine;
pub mod error;
pub mod invoice;
pub mod json;
pub mod notify;
pub mod order;
pub mod outbox;
pub mod quota;
pub mod reading;
pub mod record;
pub mod rollup;
pub mod store;
pub mod tariff;
pub mod time;
pub mod vee;

pub use crate::time::Tz;
pub use rust_decimal::Decimal;

pub use crate::billing::Bill;
pub use crate::billing::BillRequest;
pub use crate::engine::Engine;
pub use crate::engine::Query;
pub use crate::error::Error;
pub use crate::error::ErrorKind;
pub use crate::error::Result;
pub use crate::notify::Event;
pub use crate::notify::Notifier;
pub use crate::reading::MeterReading;
pub use crate::record::UsageRecord;
pub use crate::rollup::Aggregation;
pub use crate::rollup::Bucket;
pub use crate::rollup::RollupSpec;
pub use crate::store::MemoryStore;
pub use crate::store::Store;
pub use crate::tariff::Tariff;
pub use crate::time::Window;
pub use crate::vee::Finding;
pub use crate::vee::Validator;

#[cfg(test)]
mod tests;
