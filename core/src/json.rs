//! Canonical JSON: the one text form in which the shared test vectors (`tests/vectors/`) compare
//! outputs of Rust and every binding byte for byte.

use std::fmt::Write as _;

use serde_json::Value;

/// Canonical JSON text: compact (no whitespace), object keys sorted by their UTF-8 bytes (= by
/// Unicode code point), arrays in order, strings escaped as `serde_json` does (`\"`, `\\`,
/// `\n`, `\r`, `\t`, `\b`, `\f`, other control characters as `\u00xx`, everything else raw
/// UTF-8), numbers as `serde_json` prints them. The key order is imposed here rather than taken
/// from serde_json's `Map`, whose order depends on the `preserve_order` feature.
///
/// ```
/// let v: serde_json::Value = serde_json::from_str(r#"{ "b": [1, "x"], "a": {"d": null, "c": "1.50"} }"#).unwrap();
/// assert_eq!(meterkit::canonical_json(&v), r#"{"a":{"c":"1.50","d":null},"b":[1,"x"]}"#);
/// ```
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}
