//! # meterkit for Node.js
//!
//! The npm package `meterkit`: the whole meterkit engine for Node backends, built with napi-rs.
//! This crate holds no business logic: it converts JS values to the core's types (through the
//! core's own serde JSON, see `convert`) and calls the core.
//!
//! * Decimals cross as strings, timestamps are accepted as `Date` or RFC 3339 strings and
//!   returned as RFC 3339 "Z" strings; records, buckets and reports are plain objects with the
//!   core's JSON shape and camelCase keys (`groupBy`, `windowStart`), converted at the edge by
//!   the core's `meterkit::json::case` (user-data keys — dimensions, groups, filters — and tariff
//!   documents are kept as they are); `keysToSnake` gives the core's JSON of a result.
//! * Errors are `Error` objects with a stable `code` and `kind`, `recordId`, `field`, `line`,
//!   `retryable`.
//! * `*Async` methods run the core on libuv's thread pool; `onEvent` is a ThreadsafeFunction.
//! * Every exported function catches panics (`catch_unwind`): none crosses into Node.
#![deny(missing_docs)]
// napi passes arguments by value, and the signatures follow the JS API.
#![allow(clippy::needless_pass_by_value, clippy::too_many_arguments)]

mod billing;
mod columns;
mod convert;
mod engine;
mod partial;
mod rollup;
mod validate;

use meterkit::{ErrorKind, Window};
use napi::Env;
use napi_derive::napi;

pub use crate::billing::{
    allocate, compare_tariffs, create_invoice, local_instant, month_period, split_shared_meter, Tariff,
};
pub use crate::columns::{DictColumn, UsageColumns};
use crate::convert::{core, guard, js, js_raw, json_text, ts_from_json, Js};
pub use crate::engine::Engine;
pub use crate::partial::{finalize_partials, merge_partials, partial_rollup};
pub use crate::rollup::rollup_columns;
pub use crate::validate::{alerts_of, estimate_gaps, validation_summary, RegisterTracker, Validator};
use napi::bindgen_prelude::Unknown;

/// Parse a decimal (plain `12.50` or scientific `1e-3`) and return its canonical text (`12.5`).
/// Throws `E_PARSE` for anything that is not a finite 96-bit decimal.
#[napi(catch_unwind)]
pub fn parse_decimal(env: Env, text: String) -> napi::Result<String> {
    guard(env, || core(env, meterkit::decimal::parse_decimal(&text)).map(meterkit::decimal::fmt_decimal))
}

/// Parse a timestamp (a `Date` or an RFC 3339 string with any offset) and return it in the one
/// output format: RFC 3339 in UTC with `Z` and only the fractional digits needed.
#[napi(catch_unwind, ts_args_type = "value: Date | string")]
pub fn parse_ts(env: Env, value: Unknown<'_>) -> napi::Result<String> {
    let value = json_text(env, value)?;
    guard(env, || core(env, ts_from_json(&value.0, "timestamp")).map(meterkit::time::fmt_ts))
}

/// Read and check usage records without storing them: every record is parsed (`E_PARSE` names the
/// record and field) and checked by the core (`E_INVALID_RECORD`: empty id, tenant, subject or
/// metric, `end` before `timestamp`, a timestamp out of range). Returns the records in the core's
/// canonical form. A service calls it first to answer bad input with nothing stored.
#[napi(catch_unwind, ts_args_type = "records: UsageRecordInput | UsageRecordInput[]", ts_return_type = "UsageRecord[]")]
pub fn check_records(env: Env, records: Unknown<'_>) -> napi::Result<Js> {
    let records = json_text(env, records)?;
    guard(env, || {
        let batch = core(env, convert::records_from_json(&records.0))?;
        for r in &batch {
            core(env, r.check())?;
        }
        js(env, &(batch))
    })
}

/// The window `[start, end)` of kind `window` (`hour`, `day`, `minutes:15`, `cycle:15`, …) in
/// `timeZone` that contains `at`.
#[napi(
    catch_unwind,
    ts_args_type = "window: WindowSpec, at: Date | string, timeZone: string",
    ts_return_type = "{ start: Timestamp; end: Timestamp }"
)]
pub fn window_span(env: Env, window: String, at: Unknown<'_>, time_zone: String) -> napi::Result<Js> {
    let at = json_text(env, at)?;
    guard(env, || {
        let window: Window = core(env, window.parse())?;
        let at = core(env, ts_from_json(&at.0, "at"))?;
        let tz = core(env, meterkit::time::parse_time_zone(&time_zone))?;
        let (start, end) = core(env, window.span(at, tz))?;
        js(env, &(WindowSpan { start: meterkit::time::fmt_ts(start), end: meterkit::time::fmt_ts(end) }))
    })
}

/// A window's bounds.
#[derive(serde::Serialize)]
pub struct WindowSpan {
    pub(crate) start: String,
    pub(crate) end: String,
}

/// Every error code meterkit throws with, and its kind: `[{ code: "E_CONFLICT", kind: "conflict" }, …]`.
#[napi(catch_unwind, ts_return_type = "Array<{ code: ErrorCode; kind: ErrorKind }>")]
pub fn error_codes(env: Env) -> napi::Result<Js> {
    let codes: Vec<ErrorCodeInfo> = ErrorKind::ALL.iter().map(|k| ErrorCodeInfo { code: k.code(), kind: *k }).collect();
    js(env, &codes)
}

/// One error code.
#[derive(serde::Serialize)]
pub struct ErrorCodeInfo {
    code: &'static str,
    kind: ErrorKind,
}

/// A JS number as an exact decimal string, through its shortest round-trip text (`0.1` → `"0.1"`,
/// not `0.1000000000000000055…`). Throws `E_PARSE` for NaN, infinities and out-of-range values.
#[napi(catch_unwind)]
pub fn decimal_from_number(env: Env, value: f64) -> napi::Result<String> {
    guard(env, || core(env, meterkit::decimal::decimal_from_f64(value)).map(meterkit::decimal::fmt_decimal))
}

/// For the test suite only: panics inside the binding, to prove a panic reaches JS as an
/// `E_INTERNAL` error and never unwinds into Node.
#[napi(js_name = "__panicForTests", catch_unwind)]
pub fn panic_for_tests(env: Env) -> napi::Result<()> {
    guard(env, || panic!("deliberate panic for the test suite"))
}

/// `value` (the core's JSON: snake_case keys, as the CLI, Python and the shared vectors write it)
/// with the keys the Node package uses: camelCase, following the core's types — keys of
/// dimensions, groups, filters and unique counts are user data and kept, a `tariff` document and
/// `aggregations` are kept whole (`meterkit::json::case::to_camel`). For reading JSON written by
/// another host (a JSONL file of records from the CLI) into this package.
#[napi(catch_unwind, ts_args_type = "value: unknown", ts_return_type = "any")]
pub fn keys_to_camel(env: Env, value: Unknown<'_>) -> napi::Result<Js> {
    let text = json_text(env, value)?;
    guard(env, || {
        core(env, meterkit::json::check_json(&text.0))?;
        convert::parse(env, meterkit::json::case::to_camel_text(&text.0))
    })
}

/// The inverse of `keysToCamel`: a value of this package (camelCase keys) as the core's JSON
/// (snake_case keys), for the CLI, Python or a file another host reads
/// (`meterkit::json::case::to_snake`). Throws `E_PARSE` naming a key outside user data that is
/// not camelCase.
#[napi(catch_unwind, ts_args_type = "value: unknown", ts_return_type = "any")]
pub fn keys_to_snake(env: Env, value: Unknown<'_>) -> napi::Result<Js> {
    let text = json_text(env, value)?;
    guard(env, || {
        let value: serde_json::Value = core(env, convert::from_json_raw(&text.0, "value"))?;
        let value = core(env, meterkit::json::case::to_snake(value))?;
        js_raw(env, &value)
    })
}

/// The version of the meterkit core this package was built from.
#[napi(catch_unwind)]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
