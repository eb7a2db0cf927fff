//! # meterkit for mobile (uniffi): Kotlin and Swift
//!
//! The library a field-reading app links (Android: JNA + the generated Kotlin; iOS: the generated
//! Swift + the static/dynamic library). It holds **no business logic**: every function converts
//! the host's values into the core's types ([`meterkit`]), calls the core, and converts back.
//!
//! * Decimals are a uniffi custom type over a string: `java.math.BigDecimal` in Kotlin,
//!   `Foundation.Decimal` in Swift (see `uniffi.toml`). Rust lowers `Decimal::to_string()` (the
//!   scale is kept: a bill's `12.50` stays `12.50`) and lifts with the core's `parse_decimal`
//!   (plain or scientific text; anything else is a `MeterkitException.Parse`).
//! * Timestamps are `SystemTime`: `java.time.Instant` in Kotlin, `Date` in Swift.
//! * Errors are [`MeterkitError`]: Kotlin catches one `MeterkitException` and reads its envelope
//!   with `e.code()`, `e.kind()`, `e.reason()`, `e.field()`, `e.recordId()`, `e.line()`,
//!   `e.retryable()` (Swift: the same methods on `MeterkitError`); one subclass per core
//!   `ErrorKind` remains for catching one kind, plus `Closed` (`E_CLOSED`) for a call on a closed
//!   `Engine`. A Rust panic reaches the host as uniffi's internal error (`InternalException` in
//!   Kotlin), never as a crash.
//! * Integers at the boundary are signed (Kotlin `Int`/`Long`, Swift `Int32`/`Int64`): counts
//!   come back as `Long`; a negative count or size passed in is an `InvalidQuery` error naming
//!   the argument.
//! * Batch calls take lists (`Engine::ingest`) or columns (`Engine::ingest_columns`); single
//!   calls exist for the one-reading case.
//!
//! What is where: the VEE rules, register roll-over, tariffs and bills, rollups and idempotent
//! ingest are the core's; the local SQLite store is `meterkit-sqlite`; the upload queue is the
//! core's outbox (`meterkit::outbox`, `Engine::outbox_*`); JSON export/import is the core's serde format of `UsageRecord`.

// Test and benchmark entry points: only in a library built with `--features test-support`
// (scripts/test-mobile, scripts/bench-mobile), never in the one an app ships.
#[cfg(feature = "test-support")]
mod bench;
mod billing;
mod engine;
mod error;
mod field;
mod partial;
mod types;

#[cfg(feature = "test-support")]
pub use crate::bench::{
    count_columns, count_records, rust_bench_convert, rust_bench_convert_columns, rust_bench_ingest,
    rust_bench_validate_reading,
};
pub use crate::billing::{
    allocate, create_invoice, estimate_gaps, split_shared_meter, EstimateConfig, Invoice, Share, SharedMeter,
};
pub use crate::engine::{Engine, MobileEvent, Notifier, PackedColumns, RecordColumns};
pub use crate::error::MeterkitError;
pub use crate::field::{
    alerts_of, consumption, estimate_bill, validate_reading, validate_records, ReadingCheck, Tariff, ValidationConfig,
};
pub use crate::partial::{finalize_partials, merge_partials, partial_rollup};
pub use crate::types::*;

use meterkit::Decimal;

uniffi::setup_scaffolding!();

uniffi::custom_type!(Decimal, String, {
    remote,
    lower: |d| d.to_string(),
    try_lift: |s| meterkit::decimal::parse_decimal(&s)
        .map_err(|e| uniffi::deps::anyhow::Error::new(MeterkitError::from(e.with_field("decimal")))),
});

/// The version of the meterkit core this library was built from.
#[uniffi::export]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Every error code the library reports, with its kind (`("E_CONFLICT", "conflict")`, …): the
/// core's in its order (`ErrorKind::ALL`), then this binding's `("E_CLOSED", "closed")`.
#[uniffi::export]
pub fn error_codes() -> Vec<ErrorCode> {
    meterkit::ErrorKind::ALL
        .iter()
        .map(|k| ErrorCode { code: k.code().to_string(), kind: crate::types::kind_name(*k) })
        .chain([ErrorCode { code: error::CLOSED_CODE.to_string(), kind: error::CLOSED_KIND.to_string() }])
        .collect()
}

/// One error code and its snake_case kind.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ErrorCode {
    /// The stable code, e.g. `E_CONFLICT`.
    pub code: String,
    /// The snake_case kind, e.g. `conflict`.
    pub kind: String,
}

/// Parse decimal text (plain `12.50` or scientific `1e-3`) with the core's rules.
/// Errors: `Parse` for anything that is not a finite 96-bit decimal.
#[uniffi::export]
pub fn parse_decimal(text: String) -> Result<Decimal, MeterkitError> {
    Ok(meterkit::decimal::parse_decimal(&text)?)
}

/// Canonical JSON (tests/vectors/README.md: compact, keys sorted by UTF-8 bytes, serde_json's
/// escaping) of JSON text, with the same code as the Rust vector runner (`meterkit::json::canonical_json`).
/// Errors: `Parse` when `json` is not JSON.
#[uniffi::export]
pub fn canonical_json(json: String) -> Result<String, MeterkitError> {
    let v: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| meterkit::Error::new(meterkit::ErrorKind::Parse, format!("Not JSON: {e}")))?;
    Ok(meterkit::json::canonical_json(&v))
}

/// The JSON text at `pointer` (RFC 6901, e.g. `/input/batches/0`) inside `json`, or `None` when
/// there is nothing there. A helper for hosts without a JSON library (the Kotlin vector tests).
/// Errors: `Parse` when `json` is not JSON.
#[uniffi::export]
pub fn json_at(json: String, pointer: String) -> Result<Option<String>, MeterkitError> {
    let v: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| meterkit::Error::new(meterkit::ErrorKind::Parse, format!("Not JSON: {e}")))?;
    Ok(v.pointer(&pointer).map(ToString::to_string))
}

/// For the test suites only (feature `test-support`): panics inside the library. Where the
/// library unwinds (the `dev` and `release` profiles) the panic reaches the host as uniffi's
/// internal error (`InternalException`) and the library keeps working; where it aborts (the
/// shipped `mobile` profile, `panic = "abort"`) it ends the process. `ApiTests.kt` checks both.
#[cfg(feature = "test-support")]
#[uniffi::export]
pub fn panic_for_tests() -> Result<(), MeterkitError> {
    panic!("deliberate panic for the test suite")
}

/// For the test suites only (feature `test-support`): `true` when the library was built with
/// `panic = "abort"` (profile `mobile`), i.e. a panic ends the process instead of raising
/// `InternalException`.
#[cfg(feature = "test-support")]
#[uniffi::export]
pub fn panic_aborts() -> bool {
    cfg!(panic = "abort")
}

/// The string at `pointer` inside `json` (`None` when absent or not a string). A helper for hosts
/// without a JSON library. Errors: `Parse` when `json` is not JSON.
#[uniffi::export]
pub fn json_str_at(json: String, pointer: String) -> Result<Option<String>, MeterkitError> {
    let v: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| meterkit::Error::new(meterkit::ErrorKind::Parse, format!("Not JSON: {e}")))?;
    Ok(v.pointer(&pointer).and_then(|v| v.as_str()).map(str::to_string))
}
