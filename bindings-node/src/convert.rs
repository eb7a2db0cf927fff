//! Type conversion between JavaScript values and meterkit's core types.
//!
//! Every value crosses as the core's own serde JSON, so the JS objects are exactly what the core
//! prints (decimals as strings, RFC 3339 "Z" timestamps, snake_case keys, the same key order):
//!
//! * into Rust: `JSON.stringify` in V8 (a `Date` becomes its ISO string through `toJSON`), then
//!   `serde` into the core type — the core's own rules decide what is valid;
//! * out of Rust: `serde_json::to_string` of the core type, then `JSON.parse` in V8.
//!
//! Core errors become JS `Error` objects with a stable `code` (`E_CONFLICT`, …) and the
//! structured fields `kind`, `recordId`, `field`, `line`, `retryable`.

use chrono::{DateTime, Utc};
use meterkit::{Error as CoreError, ErrorKind};
use napi::bindgen_prelude::{Either, FromNapiValue, Function, JsObjectValue, Null, Object, Undefined, Unknown};
use napi::{Env, JsError, JsValue};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A core value in JavaScript: the plain object `JSON.parse` makes of its serde JSON (see [`js`]).
pub type Js = Unknown<'static>;

/// `value` as the plain object `JSON.parse` makes of its serde JSON (the core's key order,
/// decimals as strings, RFC 3339 "Z" timestamps).
pub fn js<T: Serialize>(env: Env, value: &T) -> napi::Result<Js> {
    let text = serde_json::to_string(value)
        .map_err(|e| napi::Error::from_reason(format!("meterkit could not serialise a result (a bug): {e}")))?;
    let parse: Function<String, Js> = json_function(env, "parse")?;
    parse.call(text)
}

/// A JavaScript value as JSON text (`JSON.stringify`), to be read into a core type by serde.
pub struct JsonText(pub String);

/// `value` as JSON text (`JSON.stringify`: a `Date` becomes its ISO string through `toJSON`).
/// Throws `E_PARSE` for `undefined`, a function, a BigInt or a cycle.
pub fn json_text(env: Env, value: Unknown<'_>) -> napi::Result<JsonText> {
    let stringify: Function<Unknown, Either<String, Undefined>> = json_function(env, "stringify")?;
    match stringify.call(value) {
        Ok(Either::A(text)) => Ok(JsonText(text)),
        Ok(Either::B(())) => {
            Err(js_error(env, &CoreError::new(ErrorKind::Parse, "A value is missing (undefined or a function).")))
        }
        Err(thrown) => {
            // `JSON.stringify` threw (a BigInt, a cycle); napi took its exception into
            // `thrown`, so nothing is pending: throw ours instead.
            let reason = thrown.reason.trim_end_matches('.').to_string();
            Err(js_error(
                env,
                &CoreError::new(
                    ErrorKind::Parse,
                    format!("The value cannot be read as JSON ({reason}); pass decimals as strings."),
                ),
            ))
        }
    }
}

/// [`json_text`] of an optional argument (`undefined` and `null` are `None`).
pub fn opt_json_text(env: Env, value: Option<Unknown<'_>>) -> napi::Result<Option<JsonText>> {
    value.map(|v| json_text(env, v)).transpose()
}

fn json_function<Args, Ret>(env: Env, name: &str) -> napi::Result<Function<'static, Args, Ret>>
where
    Args: napi::bindgen_prelude::JsValuesTupleIntoVec,
    Ret: FromNapiValue,
{
    let json: Object = env.get_global()?.get_named_property("JSON")?;
    json.get_named_property(name)
}

/// The JS error for a core error: the full envelope — an `Error` whose `code` is the stable kind
/// code and whose `message` is the core's, with `kind` (snake_case), `recordId`, `field` and
/// `line` (each `null` when unknown) and `retryable` (a boolean: a PostgreSQL serialisation failure
/// or lost connection may succeed when tried again).
pub fn js_error(env: Env, e: &CoreError) -> napi::Error {
    build_js_error(env, e).unwrap_or_else(|failed| failed)
}

fn build_js_error(env: Env, e: &CoreError) -> napi::Result<napi::Error> {
    let base = JsError::from(napi::Error::new(e.kind().code(), e.message())).into_unknown(env);
    let mut obj: Object = base.coerce_to_object()?;
    obj.set("kind", e.kind().name())?;
    obj.set("recordId", e.record_id())?;
    obj.set("field", e.field())?;
    obj.set("line", e.line().map(|l| l as f64))?;
    obj.set("retryable", e.is_retryable())?;
    Ok(napi::Error::from(obj.to_unknown()))
}

/// Run `f`, turning a panic (a bug in meterkit) into a thrown JS error with code `E_INTERNAL`,
/// so no panic ever unwinds into Node. (`#[napi(catch_unwind)]` on every export is the backstop
/// for the argument conversions around `f`.)
pub fn guard<T>(env: Env, f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(internal_error(env, &panic_message(&*p))))
}

/// The text of a panic payload.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_default()
}

/// The JS error for a panic: code `E_INTERNAL`, kind `internal`.
pub fn internal_error(env: Env, message: &str) -> napi::Error {
    let build = || -> napi::Result<napi::Error> {
        let text = format!("meterkit failed internally (a bug; please report it): {message}");
        let base = JsError::from(napi::Error::new(ErrorKind::Internal.code(), text)).into_unknown(env);
        let mut obj: Object = base.coerce_to_object()?;
        obj.set("kind", ErrorKind::Internal.name())?;
        obj.set("recordId", Null)?;
        obj.set("field", Null)?;
        obj.set("line", Null)?;
        obj.set("retryable", false)?;
        Ok(napi::Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|failed| failed)
}

/// Map a core result into napi, throwing the structured JS error.
pub fn core<T>(env: Env, r: meterkit::Result<T>) -> napi::Result<T> {
    r.map_err(|e| js_error(env, &e))
}

/// Read JSON text into a core type; a type error names the path (`[3].quantity`) in the
/// message and its field in `field`.
///
/// A repeated key is refused (`meterkit::json::check_json`).
pub fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> meterkit::Result<T> {
    meterkit::json::check_json(text)?;
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().iter().find_map(|s| match s {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        });
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = strip_position(&inner);
        let message = message.trim_end_matches('.');
        let message = if path == "." {
            format!("The {what} is invalid: {message}.")
        } else {
            format!("The {what} is invalid at {path}: {message}.")
        };
        let err = CoreError::new(ErrorKind::Parse, message);
        match field {
            Some(f) => err.with_field(f),
            None => err,
        }
    })
}

/// serde_json's message without its " at line L column C" (positions in text we made ourselves).
fn strip_position(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_string()
}

/// Read usage records: a JSON array of records, or one record object.
pub fn records_from_json(text: &str) -> meterkit::Result<Vec<meterkit::UsageRecord>> {
    let one = text.trim_start().starts_with('{');
    let parsed = if one {
        from_json::<meterkit::UsageRecord>(text, "usage record").map(|r| vec![r])
    } else {
        from_json::<Vec<meterkit::UsageRecord>>(text, "usage record batch")
    };
    parsed.map_err(|e| {
        // Name the record: its id, when it has one (the error path starts with its index).
        let index = if one { Some(0) } else { text_index(e.message()) };
        let id = index.and_then(|i| {
            let v: serde_json::Value = serde_json::from_str(text).ok()?;
            let rec = if one { &v } else { v.get(i)? };
            rec.get("id")?.as_str().map(str::to_string)
        });
        match id {
            Some(id) => e.with_record_id(id),
            None => e,
        }
    })
}

fn text_index(message: &str) -> Option<usize> {
    let start = message.find(" at [")? + 5;
    let end = start + message[start..].find(']')?;
    message[start..end].parse().ok()
}

/// A timestamp argument: a `Date` or an RFC 3339 string.
pub fn ts_from_json(text: &str, field: &str) -> meterkit::Result<DateTime<Utc>> {
    let s: String = from_json(text, field).map_err(|_| {
        CoreError::new(ErrorKind::Parse, format!("{field} must be a valid Date or an RFC 3339 string."))
            .with_field(field)
    })?;
    meterkit::time::parse_ts(&s).map_err(|e| e.with_field(field))
}
