//! Key case for hosts whose convention is camelCase (JavaScript/TypeScript).
//!
//! The core's JSON names its keys in snake_case (`group_by`, `time_zone`, `first_at`): that is
//! the form of the CLI, the shared vectors, Python and the stores. The Node package speaks
//! camelCase (`groupBy`, `timeZone`, `firstAt`) for every object crossing its boundary; it
//! converts the core's serde JSON at its edge with [`to_camel`] (outputs) and [`to_snake`]
//! (inputs), so the core's types and their serde form stay one.
//!
//! The conversion follows the types, not every key: keys that are user data are never renamed.
//! A field of a core type whose value is a map keyed by user data — dimension names and values,
//! filters, groups, unique counts, per-rule counts — is listed in [`DATA_MAPS`]: the keys of
//! its map are kept and only the map's values are converted. A field whose value is a document
//! with its own format — a tariff document (the meterkit tariff JSON/TOML format, the same in
//! every host) or an aggregation (an enum whose variant names are values, `{"unique_count":
//! "sim"}`) — is listed in [`VERBATIM`] and kept exactly as it is. Enum values (`"late_record"`,
//! `"invalid_record"`) are values, not keys, and keep their spelling.
//!
//! `core/tests/typescript.rs` checks the lists against the generated TypeScript declarations of
//! the core types: every field typed as a string-keyed map is in [`DATA_MAPS`] or
//! [`VERBATIM`], no listed name is used by a field of another shape, and every field name
//! survives `snake → camel → snake`.

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};

/// Fields (snake_case names) whose value is a map keyed by user data: `UsageRecord.dimensions`,
/// `Query.filters`, `BillRequest.filter`/`Quota.filter`, `Bucket.group`, `Bucket.unique`,
/// `ValidationSummary.by_rule`. Their keys are never renamed; their values are converted.
pub const DATA_MAPS: &[&str] = &["dimensions", "filters", "filter", "group", "unique", "by_rule"];

/// Fields (snake_case names) kept exactly as they are in both directions: `tariff` (a tariff
/// document, a file format with snake_case keys in every host) and `aggregations` (enum values,
/// `"sum"` or `{"unique_count": "sim"}`).
pub const VERBATIM: &[&str] = &["tariff", "aggregations"];

/// `snake_case` → `camelCase`: each `_x` becomes `X` (`first_at` → `firstAt`, `cusum_k` →
/// `cusumK`). A name without `_` is returned as it is.
pub fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `camelCase` → `snake_case`: each upper-case letter `X` becomes `_x` (`groupBy` → `group_by`).
pub fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_uppercase() {
            out.push('_');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A field path as the core names it (`dimensions.direction`, `group_by`) in camelCase: each
/// segment is converted up to and including the first data-map or verbatim field; what follows
/// (a dimension name, a tariff key) is user data or a document key and kept.
pub fn camel_path(path: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut keep = false;
    for segment in path.split('.') {
        if keep {
            out.push(segment.to_string());
        } else {
            out.push(camel(segment));
            keep = DATA_MAPS.contains(&segment) || VERBATIM.contains(&segment);
        }
    }
    out.join(".")
}

/// The core's JSON form of a value (snake_case keys) with its keys in camelCase, following the
/// types (see the module docs): keys of [`DATA_MAPS`] fields are kept, [`VERBATIM`] fields are
/// copied as they are.
///
/// ```
/// let core = serde_json::json!({"window_start": "2024-01-01T00:00:00Z", "group": {"sim_id": "a"}});
/// let js = meterkit::json::case::to_camel(core);
/// assert_eq!(js, serde_json::json!({"windowStart": "2024-01-01T00:00:00Z", "group": {"sim_id": "a"}}));
/// ```
pub fn to_camel(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = field_value(&k, v, to_camel);
                    (camel(&k), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(to_camel).collect()),
        scalar => scalar,
    }
}

/// The value of the field `key` (snake_case) converted by `convert`: a data map keeps its keys,
/// a verbatim field is kept whole.
fn field_value(key: &str, value: Value, convert: impl Fn(Value) -> Value + Copy) -> Value {
    if VERBATIM.contains(&key) {
        return value;
    }
    match value {
        Value::Object(map) if DATA_MAPS.contains(&key) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, convert(v))).collect())
        }
        other => convert(other),
    }
}

/// [`to_camel`] on JSON text, keeping the order of every object's keys (the core's field order:
/// findings print `rule, severity, action, …`). `json` must be well-formed JSON, as
/// `serde_json` writes it; a key with an escape sequence is kept as it is.
///
/// ```
/// let text = r#"{"window_start":"x","group":{"sim_id":"a"},"first_at":null}"#;
/// assert_eq!(meterkit::json::case::to_camel_text(text), r#"{"windowStart":"x","group":{"sim_id":"a"},"firstAt":null}"#);
/// ```
pub fn to_camel_text(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut rest = json;
    while let Some(c) = rest.chars().next() {
        match c {
            '"' => {
                let len = string_len(rest);
                let (token, tail) = rest.split_at(len);
                rest = tail;
                match stack.last_mut() {
                    Some(Frame::Object { mode, key: true, value }) => {
                        let name = &token[1..token.len() - 1];
                        *value = mode.of_field(name);
                        if *mode == Mode::Convert && !name.contains('\\') {
                            out.push('"');
                            out.push_str(&camel(name));
                            out.push('"');
                        } else {
                            out.push_str(token);
                        }
                        stack_key_done(&mut stack);
                    }
                    _ => out.push_str(token),
                }
                continue;
            }
            '{' => {
                let mode = child_mode(&stack, true);
                stack.push(Frame::Object { mode, key: true, value: mode });
            }
            '[' => stack.push(Frame::Array { mode: child_mode(&stack, false) }),
            '}' | ']' => {
                stack.pop();
            }
            ',' => {
                if let Some(Frame::Object { key, .. }) = stack.last_mut() {
                    *key = true;
                }
            }
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// How the keys of an object are treated by [`to_camel_text`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A core type's fields: renamed.
    Convert,
    /// A data map: keys kept, values converted.
    Data,
    /// A document kept whole.
    Verbatim,
}

impl Mode {
    /// The mode of the value of field `name` of an object in this mode.
    fn of_field(self, name: &str) -> Mode {
        match self {
            Mode::Verbatim => Mode::Verbatim,
            Mode::Convert if VERBATIM.contains(&name) => Mode::Verbatim,
            Mode::Convert if DATA_MAPS.contains(&name) => Mode::Data,
            // A data map's values, and any other field of a core type.
            Mode::Data | Mode::Convert => Mode::Convert,
        }
    }
}

enum Frame {
    /// An object: its mode, whether a key comes next, and the mode of the current key's value.
    Object { mode: Mode, key: bool, value: Mode },
    /// An array: the mode of its items.
    Array { mode: Mode },
}

fn stack_key_done(stack: &mut [Frame]) {
    if let Some(Frame::Object { key, .. }) = stack.last_mut() {
        *key = false;
    }
}

/// The mode of a value opening at the top of `stack`: an object's field value or an array item
/// (a data map's field holding an array is converted like any value, as [`to_camel`] does).
fn child_mode(stack: &[Frame], object: bool) -> Mode {
    let mode = match stack.last() {
        Some(Frame::Object { value, .. }) => *value,
        Some(Frame::Array { mode }) => *mode,
        None => Mode::Convert,
    };
    if mode == Mode::Data && !object {
        Mode::Convert
    } else {
        mode
    }
}

/// The length in bytes of the JSON string token at the start of `s` (quotes included).
fn string_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// A camelCase JSON value (as a JavaScript host passes it) in the core's snake_case form, the
/// inverse of [`to_camel`].
///
/// # Errors
/// [`ErrorKind::Parse`], naming the key in `field`, for a key outside a data map that is not
/// camelCase: one with `_` (`group_by`: the snake_case spelling is the core's, not the host's)
/// or that starts with an upper-case letter (`GroupBy`). A key that is camelCase but unknown
/// (`grupBy`) converts, and the core's type refuses it.
///
/// ```
/// let js = serde_json::json!({"groupBy": ["sim"], "filters": {"sim_id": "a"}});
/// let core = meterkit::json::case::to_snake(js).unwrap();
/// assert_eq!(core, serde_json::json!({"group_by": ["sim"], "filters": {"sim_id": "a"}}));
/// let e = meterkit::json::case::to_snake(serde_json::json!({"group_by": ["sim"]})).unwrap_err();
/// assert_eq!(e.field(), Some("group_by"));
/// ```
pub fn to_snake(value: Value) -> Result<Value> {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                let key = snake(&k);
                if k.contains('_') || k.starts_with(char::is_uppercase) || camel(&key) != k {
                    return Err(Error::new(
                        ErrorKind::Parse,
                        format!(
                            "Unknown key '{k}': keys are camelCase in JavaScript ('{}').",
                            camel(key.trim_start_matches('_'))
                        ),
                    )
                    .with_field(k));
                }
                let v = snake_field_value(&key, v)?;
                out.insert(key, v);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items.into_iter().map(to_snake).collect::<Result<Vec<_>>>().map(Value::Array),
        scalar => Ok(scalar),
    }
}

fn snake_field_value(key: &str, value: Value) -> Result<Value> {
    if VERBATIM.contains(&key) {
        return Ok(value);
    }
    match value {
        Value::Object(map) if DATA_MAPS.contains(&key) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                out.insert(k, to_snake(v)?);
            }
            Ok(Value::Object(out))
        }
        other => to_snake(other),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_convert_both_ways() {
        for (s, c) in [("first_at", "firstAt"), ("cusum_k", "cusumK"), ("id", "id"), ("by_rule", "byRule")] {
            assert_eq!(camel(s), c);
            assert_eq!(snake(c), s);
        }
    }

    #[test]
    fn user_data_keys_are_kept() {
        let core = json!({
            "window_start": "x",
            "group": {"sim_id": "a", "region_code": null},
            "unique": {"cell_id": 3},
            "record": {"idempotency_key": "k", "dimensions": {"first_at": "v"}},
            "by_rule": {"range_check": {"flagged_count": 1}},
            "tariff": {"standing_charge": "1", "charges": [{"per_unit": "2"}]},
            "aggregations": ["sum", {"unique_count": "sim_id"}],
            "lines": [{"per_subject": true}]
        });
        let js = to_camel(core.clone());
        assert_eq!(
            js,
            json!({
                "windowStart": "x",
                "group": {"sim_id": "a", "region_code": null},
                "unique": {"cell_id": 3},
                "record": {"idempotencyKey": "k", "dimensions": {"first_at": "v"}},
                "byRule": {"range_check": {"flaggedCount": 1}},
                "tariff": {"standing_charge": "1", "charges": [{"per_unit": "2"}]},
                "aggregations": ["sum", {"unique_count": "sim_id"}],
                "lines": [{"perSubject": true}]
            })
        );
        let text = to_camel_text(&core.to_string());
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), js, "the text form converts alike");
        assert_eq!(to_snake(js).unwrap(), core, "to_snake inverts to_camel");
    }

    #[test]
    fn snake_keys_from_a_camel_host_are_refused_naming_them() {
        let e = to_snake(json!([{"id": "a", "time_zone": "UTC"}])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert_eq!(e.field(), Some("time_zone"));
        assert!(e.message().contains("'timeZone'"), "{}", e.message());
        assert_eq!(to_snake(json!({"GroupBy": []})).unwrap_err().field(), Some("GroupBy"));
        // Inside a data map any key is data.
        assert!(to_snake(json!({"dimensions": {"Sim_ID": "x"}})).is_ok());
    }

    #[test]
    fn the_text_form_keeps_the_key_order_and_escapes() {
        let text = r#"{"rule":"spike","severity":"warning","a_b":"x\"y","record":{"z_z":1,"dimensions":{"q_r":"\u00e9"}},"arr":[{"k_l":[1,{"m_n":2}]}]}"#;
        assert_eq!(
            to_camel_text(text),
            r#"{"rule":"spike","severity":"warning","aB":"x\"y","record":{"zZ":1,"dimensions":{"q_r":"\u00e9"}},"arr":[{"kL":[1,{"mN":2}]}]}"#
        );
    }

    #[test]
    fn paths_convert_up_to_the_data() {
        assert_eq!(camel_path("group_by"), "groupBy");
        assert_eq!(camel_path("dimensions.sim_id"), "dimensions.sim_id");
        assert_eq!(camel_path("by_rule.range_check"), "byRule.range_check");
        assert_eq!(camel_path("tariff.standing_charge"), "tariff.standing_charge");
    }
}
