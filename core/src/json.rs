//! Canonical JSON: the one text form in which the shared test vectors (`tests/vectors/`) compare
//! outputs of Rust and every binding byte for byte.

pub mod case;

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
/// assert_eq!(meterkit::json::canonical_json(&v), r#"{"a":{"c":"1.50","d":null},"b":[1,"x"]}"#);
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
            crate::order::sort_by(&mut keys, |a, b| a.as_bytes().cmp(b.as_bytes()));
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

/// Check that `text` is one well-formed JSON document in which no object repeats a key, at any
/// depth. serde_json keeps the last of repeated keys silently (`{"quantity":"1","quantity":"9"}`
/// reads as 9); meterkit refuses such a document instead, because which value was meant is a
/// guess. Every JSON document meterkit reads (usage records, tariffs, URDB rates, validation
/// configs) goes through this check first.
///
/// ```
/// assert!(meterkit::json::check_json(r#"{"a":{"b":1,"c":[{"b":2}]}}"#).is_ok());
/// let e = meterkit::json::check_json("{\"a\":1,\n\"a\":2}").unwrap_err();
/// assert_eq!(e.line(), Some(2));
/// assert!(e.message().contains("'a'"));
/// ```
///
/// # Errors
/// [`ErrorKind::Parse`](crate::error::ErrorKind::Parse) with the line (1-based) and column of the
/// syntax error or of the repeated key, naming the key.
pub fn check_json(text: &str) -> crate::error::Result<()> {
    use serde::Deserialize as _;
    let mut de = serde_json::Deserializer::from_str(text);
    NoDuplicateKeys::deserialize(&mut de).and_then(|_| de.end()).map_err(|e| {
        crate::error::Error::new(crate::error::ErrorKind::Parse, format!("invalid JSON: {e}"))
            .with_line(e.line() as u64)
    })
}

/// A JSON value checked for repeated object keys (and otherwise ignored).
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_none<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self, D::Error> {
        <NoDuplicateKeys as serde::Deserialize>::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        // The first keys of an object (a usage record has about eight) are compared in a small
        // array on the stack — no allocation, no hashing: this check runs over every record a
        // binding reads; the rest go to a hash set.
        const FEW: usize = 16;
        let mut few: [Option<std::borrow::Cow<'de, str>>; FEW] = Default::default();
        let mut many = std::collections::HashSet::new();
        let mut n = 0;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let seen = few[..n.min(FEW)].iter().flatten().any(|k| *k == key) || many.contains(&key);
            if seen {
                return Err(serde::de::Error::custom(format!("the key '{key}' appears twice in one object")));
            }
            if n < FEW {
                few[n] = Some(key);
            } else {
                many.insert(key);
            }
            n += 1;
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::check_json;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        assert!(check_json(r#"{"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}]}"#).is_ok());
        for bad in [r#"{"a":1,"a":1}"#, r#"{"x":{"k":"1","k":"2"}}"#, r#"[{"q":1,"q":2}]"#, r#"{"a":1} x"#] {
            assert_eq!(check_json(bad).unwrap_err().kind(), crate::error::ErrorKind::Parse, "{bad}");
        }
        let e = check_json("{\n\"id\":\"r1\",\n\"quantity\":\"1\",\n\"quantity\":\"9\"}").unwrap_err();
        assert_eq!(e.line(), Some(4));
        assert!(e.message().contains("'quantity' appears twice"), "{}", e.message());
        // Objects of more keys than the stack array holds: a repeat is found on either side.
        let keys = |n: usize| (0..n).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(",");
        assert!(check_json(&format!("{{{}}}", keys(40))).is_ok());
        for repeat in ["k3", "k20", "k15", "k16"] {
            let bad = format!("{{{},\"{repeat}\":0}}", keys(40));
            assert!(check_json(&bad).unwrap_err().message().contains(&format!("'{repeat}'")), "{repeat}");
        }
        assert!(check_json(r#"{"a":1,"\u0061":2}"#).is_err(), "an escaped repeat");
        // Numbers of any length are fine (they are kept as text).
        assert!(check_json(r#"{"q":12345678901234567890123456789012345.5e-3}"#).is_ok());
    }
}
