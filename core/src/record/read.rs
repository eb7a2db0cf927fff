//! A one-pass reader of usage records from JSON text: the hot path of a binding's bulk ingest
//! (Node's `ingest` reads the `JSON.stringify` text of the records it is given).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{Dimensions, Quality, UsageRecord};

/// Usage records read from JSON text in one pass: a JSON array of record objects, or one record
/// object, in the record's JSON shape (see [`UsageRecord`]; keys as in the struct, which are
/// one word each, so the same in camelCase).
///
/// When it gives `Some`, it is exactly what `serde_json` gives reading `Vec<UsageRecord>` (or one
/// `UsageRecord`) from a text that `meterkit::json::check_json` accepts (no object repeats a
/// key): the fields are read by the same serde functions. It gives `None` whenever it cannot be
/// sure — a repeated key at any depth, an unknown or missing field, a record written as an array,
/// a syntax error, any value of another type — and `None` says nothing more: read the text the
/// careful way then (`check_json`, then serde), which names the error. It is faster because it
/// needs no separate pass for repeated keys and allocates nothing per key.
///
/// ```
/// let text = r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1.50",
///                 "timestamp":"2024-03-01T10:00:00Z","dimensions":{"carrier":"acme"}}]"#;
/// let records = meterkit::record::read_records_fast(text).unwrap();
/// assert_eq!(records[0].quantity.to_string(), "1.50");
/// assert!(meterkit::record::read_records_fast(r#"{"id":"r1","id":"r2"}"#).is_none());
/// ```
pub fn read_records_fast(text: &str) -> Option<Vec<UsageRecord>> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str::<Record>(text).ok().map(|r| vec![r.0])
    } else {
        serde_json::from_str::<Records>(text).ok().map(|r| r.0)
    }
}

/// A JSON array of [`Record`]s.
struct Records(Vec<UsageRecord>);

impl<'de> Deserialize<'de> for Records {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(RecordsVisitor)
    }
}

struct RecordsVisitor;

impl<'de> Visitor<'de> for RecordsVisitor {
    type Value = Records;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of usage records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Records, A::Error> {
        // The size hint bounds nothing from JSON (serde_json gives none); the vector grows.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(Record(r)) = seq.next_element()? {
            out.push(r);
        }
        Ok(Records(out))
    }
}

/// One usage record object, each key at most once.
struct Record(UsageRecord);

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RecordVisitor)
    }
}

/// The fields as `UsageRecord`'s derive reads them (`with` the same functions).
#[derive(Deserialize)]
pub(super) struct Quantity(#[serde(with = "crate::decimal::decimal_str")] pub(super) Decimal);
#[derive(Deserialize)]
pub(super) struct Instant(#[serde(with = "crate::time::ts_str")] pub(super) DateTime<Utc>);
#[derive(Deserialize)]
pub(super) struct End(#[serde(with = "crate::time::opt_ts_str")] pub(super) Option<DateTime<Utc>>);

/// Fill `slot` once: a second value is a repeated key.
pub(super) fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::custom("a repeated key"));
    }
    *slot = Some(value);
    Ok(())
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a usage record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        let (mut id, mut tenant, mut subject, mut metric) = (None, None, None, None);
        let (mut quantity, mut timestamp, mut end, mut dimensions, mut quality) = (None, None, None, None, None);
        while let Some(Key(key)) = map.next_key()? {
            match key.as_ref() {
                "id" => once(&mut id, map.next_value::<String>()?)?,
                "tenant" => once(&mut tenant, map.next_value::<String>()?)?,
                "subject" => once(&mut subject, map.next_value::<String>()?)?,
                "metric" => once(&mut metric, map.next_value::<String>()?)?,
                "quantity" => once(&mut quantity, map.next_value::<Quantity>()?.0)?,
                "timestamp" => once(&mut timestamp, map.next_value::<Instant>()?.0)?,
                "end" => once(&mut end, map.next_value::<End>()?.0)?,
                "dimensions" => once(&mut dimensions, map.next_value::<Dims>()?.0)?,
                "quality" => once(&mut quality, map.next_value::<Quality>()?)?,
                _ => return Err(de::Error::custom("an unknown field")),
            }
        }
        let missing = || de::Error::custom("a missing field");
        Ok(Record(UsageRecord {
            id: id.ok_or_else(missing)?,
            tenant: tenant.ok_or_else(missing)?,
            subject: subject.ok_or_else(missing)?,
            metric: metric.ok_or_else(missing)?,
            quantity: quantity.ok_or_else(missing)?,
            timestamp: timestamp.ok_or_else(missing)?,
            end: end.flatten(),
            dimensions: dimensions.unwrap_or_default(),
            quality: quality.unwrap_or_default(),
        }))
    }
}

/// An object key, borrowed from the text when it has no escapes.
pub(super) struct Key<'de>(pub(super) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_string())))
    }
}

/// A record's dimensions: string keys to string values, each key at most once.
struct Dims(Dimensions);

impl<'de> Deserialize<'de> for Dims {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(DimsVisitor)
    }
}

struct DimsVisitor;

impl<'de> Visitor<'de> for DimsVisitor {
    type Value = Dims;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of dimensions")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dims, A::Error> {
        let mut dims = Dimensions::new();
        while let Some((k, v)) = map.next_entry::<String, String>()? {
            if dims.insert(k, v).is_some() {
                return Err(de::Error::custom("a repeated key"));
            }
        }
        Ok(Dims(dims))
    }
}

#[cfg(test)]
mod tests {
    use super::read_records_fast;
    use crate::record::UsageRecord;

    /// The careful way: `check_json`, then serde's derive.
    fn careful(text: &str) -> Option<Vec<UsageRecord>> {
        crate::json::check_json(text).ok()?;
        if text.trim_start().starts_with('{') {
            serde_json::from_str::<UsageRecord>(text).ok().map(|r| vec![r])
        } else {
            serde_json::from_str::<Vec<UsageRecord>>(text).ok()
        }
    }

    #[test]
    fn gives_what_the_careful_way_gives_or_nothing() {
        let ok = [
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1.50","timestamp":"2024-03-01T10:00:00Z"}]"#,
            r#"{"metric":"kwh","id":"r\u0031","tenant":"t","subject":"s","quantity":12345678901234567890.5,"timestamp":"2024-03-01T10:00:00.123+01:00","end":null,"dimensions":{"a":"1","b":"\u00e9"},"quality":"flagged"}"#,
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":-0.0,"timestamp":"2024-03-01T10:00:00Z","end":"2024-03-01T11:00:00Z","dimensions":{}},
               {"\u0069d":"r2","tenant":"t","subject":"s","metric":"kwh","quantity":"1e3","timestamp":" 2024-03-01T10:00:00Z "}]"#,
            "[]",
        ];
        for text in ok {
            let fast = read_records_fast(text);
            assert!(fast.is_some(), "{text}");
            assert_eq!(fast, careful(text), "{text}");
        }
        let refused = [
            r#"[{"id":"r1","id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z"}]"#,
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z","dimensions":{"a":"1","a":"2"}}]"#,
            r#"[{"id":"r1","\u0069d":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z"}]"#,
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z","x":1}]"#,
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1"}]"#,
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"x","timestamp":"2024-03-01T10:00:00Z"}]"#,
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z","dimensions":null}]"#,
            r#"[["r1","t","s","kwh","1","2024-03-01T10:00:00Z"]]"#,
            r#"[{"id":1,"tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z"}] x"#,
        ];
        for text in refused {
            assert_eq!(read_records_fast(text), None, "{text}");
        }
        // A repeated key the careful way refuses too (serde's derive alone would keep the last).
        assert_eq!(careful(refused[1]), None);
    }
}
