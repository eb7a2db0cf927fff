//! Type conversion between JavaScript values and meterkit's core types.
//!
//! Every value crosses as the core's own serde JSON with its keys in camelCase, JavaScript's
//! convention (decimals as strings, RFC 3339 "Z" timestamps): the core's
//! `meterkit::json::case` renames the keys following the types — keys that are user data
//! (dimension names, groups, filters) and tariff documents (a file format) are kept as they are.
//!
//! * into Rust: `JSON.stringify` in V8 (a `Date` becomes its ISO string through `toJSON`), the
//!   keys to snake_case (`case::to_snake`, which refuses a snake_case key naming it), then
//!   `serde` into the core type — the core's own rules decide what is valid;
//! * out of Rust: `serde_json` of the core type, its keys to camelCase (`case::to_camel`), then
//!   `JSON.parse` in V8.
//!
//! Core errors become JS `Error` objects with a stable `code` (`E_CONFLICT`, …) and the
//! structured fields `kind`, `recordId`, `field`, `line`, `retryable`.

use chrono::{DateTime, Utc};
use meterkit::json::case;
use meterkit::{Error as CoreError, ErrorKind};
use napi::bindgen_prelude::{Either, FromNapiValue, Function, JsObjectValue, Null, Object, Undefined, Unknown};
use napi::{Env, JsError, JsValue};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// A core value in JavaScript: the plain object `JSON.parse` makes of its serde JSON (see [`js`]).
pub type Js = Unknown<'static>;

/// `value` as the plain object `JSON.parse` makes of its serde JSON with camelCase keys
/// (`meterkit::json::case::to_camel_text`: the core's field order, decimals as strings, RFC 3339
/// "Z" timestamps).
pub fn js<T: Serialize>(env: Env, value: &T) -> napi::Result<Js> {
    let text = serde_json::to_string(value)
        .map_err(|e| napi::Error::from_reason(format!("meterkit could not serialise a result (a bug): {e}")))?;
    parse(env, case::to_camel_text(&text))
}

/// `JSON.parse(text)`.
pub fn parse(env: Env, text: String) -> napi::Result<Js> {
    let parse: Function<String, Js> = json_function(env, "parse")?;
    parse.call(text)
}

/// `value` as the plain object `JSON.parse` makes of its serde JSON, keys as the core names them:
/// for documents with a format of their own (a tariff document, partial-state columns).
pub fn js_raw<T: Serialize>(env: Env, value: &T) -> napi::Result<Js> {
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
///
/// `field` is in camelCase up to the first user-data key (`meterkit::json::case::camel_path`:
/// `groupBy`, `dimensions.sim_id`).
pub fn js_error(env: Env, e: &CoreError) -> napi::Error {
    let field = e.field().map(case::camel_path);
    build_js_error(env, e, field.as_deref()).unwrap_or_else(|failed| failed)
}

/// [`js_error`] with `field` as the core names it: for errors about a document with a format of
/// its own (a tariff document's keys, a partial-state column).
pub fn js_error_raw(env: Env, e: &CoreError) -> napi::Error {
    build_js_error(env, e, e.field()).unwrap_or_else(|failed| failed)
}

fn build_js_error(env: Env, e: &CoreError, field: Option<&str>) -> napi::Result<napi::Error> {
    let base = JsError::from(napi::Error::new(e.kind().code(), e.message())).into_unknown(env);
    let mut obj: Object = base.coerce_to_object()?;
    obj.set("kind", e.kind().name())?;
    obj.set("recordId", e.record_id())?;
    obj.set("field", field)?;
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

/// [`core`] for a document with a format of its own: the error's `field` as the core names it.
pub fn core_raw<T>(env: Env, r: meterkit::Result<T>) -> napi::Result<T> {
    r.map_err(|e| js_error_raw(env, &e))
}

/// Read JSON text with camelCase keys (JavaScript's convention) into a core type: its keys to
/// snake_case by `meterkit::json::case::to_snake` (a snake_case key is refused, naming it), then
/// serde. A type error names the path (`[3].quantity`, `groupBy`) in the message and its field
/// in `field`, in camelCase.
///
/// A repeated key is refused (`meterkit::json::check_json`).
pub fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> meterkit::Result<T> {
    let value = case::to_snake(json_value(text)?)?;
    from_value(value, what, true)
}

/// [`from_json`] of a JSON object keyed by user data (metric names): each value's keys to
/// snake_case, the object's own keys kept.
pub fn from_json_keyed<T: DeserializeOwned>(text: &str, what: &str) -> meterkit::Result<T> {
    let value = match json_value(text)? {
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| Ok((k, case::to_snake(v)?))).collect::<meterkit::Result<_>>()?)
        }
        other => other,
    };
    from_value(value, what, true)
}

/// [`from_json`] without the key conversion: documents with a format of their own (a tariff, a
/// URDB rate, partial-state columns, an aggregation), strings and timestamps.
pub fn from_json_raw<T: DeserializeOwned>(text: &str, what: &str) -> meterkit::Result<T> {
    from_value(json_value(text)?, what, false)
}

/// `text` checked (no repeated key, `meterkit::json::check_json`) and parsed.
fn json_value(text: &str) -> meterkit::Result<Value> {
    meterkit::json::check_json(text)?;
    serde_json::from_str(text)
        .map_err(|e| CoreError::new(ErrorKind::Parse, format!("invalid JSON: {e}")).with_line(e.line() as u64))
}

fn from_value<T: DeserializeOwned>(value: Value, what: &str, camel: bool) -> meterkit::Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().iter().find_map(|s| match s {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        });
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let (field, path, message) = if camel {
            (field.map(|f| case::camel_path(&f)), case::camel_path(&path), camel_message(&message, &path))
        } else {
            (field, path, message)
        };
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

/// serde's "unknown field `grup_by`, expected one of `metric`, `time_zone`" / "missing field
/// `time_zone`" with the field names in camelCase — unless the path is inside a document kept
/// as it is (a tariff). Other messages (an unknown variant: an enum value) are kept.
fn camel_message(message: &str, snake_path: &str) -> String {
    let about_fields = message.starts_with("unknown field") || message.starts_with("missing field");
    let in_document = snake_path.split('.').any(|s| case::VERBATIM.contains(&s));
    if !about_fields || in_document {
        return message.to_string();
    }
    message
        .split('`')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { case::camel(part) } else { part.to_string() })
        .collect::<Vec<_>>()
        .join("`")
}

/// Read usage records (camelCase keys, see [`from_json`]): a JSON array of records, or one record
/// object. An error names the record by its id, when it has one.
pub fn records_from_json(text: &str) -> meterkit::Result<Vec<meterkit::UsageRecord>> {
    // The hot path (a bulk ingest): the core's one-pass reader.
    match meterkit::record::read_records_fast(text) {
        Some(batch) => Ok(batch),
        None => records_careful(text),
    }
}

/// [`records_from_json`] without the core's one-pass reader (for a text it did not read).
pub fn records_careful(text: &str) -> meterkit::Result<Vec<meterkit::UsageRecord>> {
    fn id_of(v: &Value) -> Option<String> {
        v.get("id").and_then(Value::as_str).map(str::to_string)
    }
    fn named(e: CoreError, id: Option<String>) -> CoreError {
        match id {
            Some(id) => e.with_record_id(id),
            None => e,
        }
    }
    // A usage record's keys are one word each, the same in both conventions
    // (core/tests/typescript.rs checks it), so a batch that serde reads as it is needs no
    // conversion: serde after `check_json`. Anything else goes through the conversion for its
    // camelCase error.
    if let Ok(batch) = direct_records(text) {
        return Ok(batch);
    }
    match json_value(text)? {
        Value::Array(items) => {
            let ids: Vec<Option<String>> = items.iter().map(id_of).collect();
            let items = items
                .into_iter()
                .zip(&ids)
                .map(|(v, id)| case::to_snake(v).map_err(|e| named(e, id.clone())))
                .collect::<meterkit::Result<Vec<_>>>()?;
            from_value(Value::Array(items), "usage record batch", true).map_err(|e| {
                let id = text_index(e.message()).and_then(|i| ids.get(i).cloned().flatten());
                named(e, id)
            })
        }
        one => {
            let id = id_of(&one);
            let record = case::to_snake(one).and_then(|v| from_value(v, "usage record", true));
            record.map(|r| vec![r]).map_err(|e| named(e, id))
        }
    }
}

/// Records read by serde straight from the text (no repeated key, `check_json`).
fn direct_records(text: &str) -> meterkit::Result<Vec<meterkit::UsageRecord>> {
    meterkit::json::check_json(text)?;
    let parsed = if text.trim_start().starts_with('{') {
        serde_json::from_str::<meterkit::UsageRecord>(text).map(|r| vec![r])
    } else {
        serde_json::from_str::<Vec<meterkit::UsageRecord>>(text)
    };
    parsed.map_err(|e| CoreError::new(ErrorKind::Parse, e.to_string()))
}

fn text_index(message: &str) -> Option<usize> {
    let start = message.find(" at [")? + 5;
    let end = start + message[start..].find(']')?;
    message[start..end].parse().ok()
}

/// A timestamp argument: a `Date` or an RFC 3339 string.
pub fn ts_from_json(text: &str, field: &str) -> meterkit::Result<DateTime<Utc>> {
    let s: String = from_json_raw(text, field).map_err(|_| {
        CoreError::new(ErrorKind::Parse, format!("{field} must be a valid Date or an RFC 3339 string."))
            .with_field(field)
    })?;
    meterkit::time::parse_ts(&s).map_err(|e| e.with_field(field))
}
