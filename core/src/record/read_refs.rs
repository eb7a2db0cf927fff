//! A zero-copy reader of usage records from JSON text: their content borrowed from the text
//! ([`RecordRef`]), so that a repeat run's batch can be checked against the store without
//! building a record per row.

use std::fmt;
use std::ops::Range;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::read::{once, End, Instant, Key, Quantity};
use super::scan::scan_record_refs;
use super::{Quality, RecordRef};

/// The usage records of a JSON text, their strings borrowed from it: see [`read_record_refs`].
#[derive(Debug, Default, PartialEq)]
pub struct RefBatch<'a> {
    pub(super) rows: Vec<Row<'a>>,
    /// Every row's dimensions, one row after the other, each row's sorted by name.
    pub(super) pairs: Vec<(&'a str, &'a str)>,
}

/// One record but its dimensions, which are `pairs[dims]`.
#[derive(Debug, PartialEq)]
pub(super) struct Row<'a> {
    pub(super) id: &'a str,
    pub(super) tenant: &'a str,
    pub(super) subject: &'a str,
    pub(super) metric: &'a str,
    pub(super) quantity: Decimal,
    pub(super) timestamp: DateTime<Utc>,
    pub(super) end: Option<DateTime<Utc>>,
    pub(super) dims: Range<usize>,
}

impl<'a> RefBatch<'a> {
    /// The number of records.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the text holds no record (`[]`).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Append the record of `line`, one record object read as [`read_record_refs`] reads it,
    /// with `tenant` as its tenant when it names none: a line of a JSON-lines file whose reader
    /// gives records without a tenant the tenant of the command (`meterkit ingest --tenant`).
    /// False, with the batch unchanged, when `line` is not one record object that
    /// `read_record_refs` (with the tenant added) reads.
    ///
    /// ```
    /// let mut batch = meterkit::record::RefBatch::default();
    /// let line = r#"{"id":"r1","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z"}"#;
    /// assert!(batch.push_object(line, "acme") && !batch.push_object("[]", "acme"));
    /// assert_eq!((batch.len(), batch.refs()[0].tenant), (1, "acme"));
    /// ```
    pub fn push_object(&mut self, line: &'a str, tenant: &'a str) -> bool {
        line.trim_start().starts_with('{') && self.push_row(line, Some(tenant))
    }

    /// Append the record of `text`, one record object and nothing after it, with `tenant` as
    /// its tenant when it names none (`None`: it must name one); false, with the batch
    /// unchanged, otherwise.
    fn push_row(&mut self, text: &'a str, tenant: Option<&'a str>) -> bool {
        let pairs = self.pairs.len();
        let mut de = serde_json::Deserializer::from_str(text);
        match RowSeed(&mut self.pairs, tenant).deserialize(&mut de) {
            Ok(row) if de.end().is_ok() => {
                self.rows.push(row);
                true
            }
            _ => {
                self.pairs.truncate(pairs);
                false
            }
        }
    }

    /// The records' content, in the order of the text.
    pub fn refs(&self) -> Vec<RecordRef<'_>> {
        self.rows
            .iter()
            .map(|r| RecordRef {
                id: r.id,
                tenant: r.tenant,
                subject: r.subject,
                metric: r.metric,
                quantity: r.quantity,
                timestamp: r.timestamp,
                end: r.end,
                dimensions: self.pairs.get(r.dims.clone()).unwrap_or_default(),
            })
            .collect()
    }
}

/// The usage records of `text` (a JSON array of record objects, or one record object) with their
/// strings borrowed from it, when [`read_records_fast`](super::read_records_fast) reads `text`
/// and no string value in it has an escape: then each [`RecordRef`] has the content of the record
/// `read_records_fast` gives at its place (the quality, which is not content, is read and
/// checked, not kept). `None` otherwise — and `None` says nothing more: read the text with
/// `read_records_fast` or the careful way then.
///
/// ```
/// let text = r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1.50",
///                 "timestamp":"2024-03-01T10:00:00Z","dimensions":{"region":"n","carrier":"a"}}]"#;
/// let batch = meterkit::record::read_record_refs(text).unwrap();
/// let refs = batch.refs();
/// assert_eq!((refs[0].id, refs[0].dimensions), ("r1", &[("carrier", "a"), ("region", "n")][..]));
/// assert!(refs[0].same_content(&meterkit::record::read_records_fast(text).unwrap()[0]));
/// assert!(meterkit::record::read_record_refs(r#"{"id":"r\u0031"}"#).is_none());
/// ```
pub fn read_record_refs(text: &str) -> Option<RefBatch<'_>> {
    // The common shape (`JSON.stringify` of plain objects) is scanned without serde.
    if let Some(batch) = scan_record_refs(text) {
        return Some(batch);
    }
    read_record_refs_serde(text)
}

/// [`read_record_refs`] by serde alone (any text it reads).
fn read_record_refs_serde(text: &str) -> Option<RefBatch<'_>> {
    let mut batch = RefBatch::default();
    if text.trim_start().starts_with('{') {
        return batch.push_row(text, None).then_some(batch);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_seq(RowsVisitor(&mut batch, usize::MAX)).ok()?;
    de.end().ok()?;
    Some(batch)
}

/// The first record of `text` as [`read_record_refs`] reads it, without reading the rest (which
/// may hold anything): a cheap look before reading it all. `None` for an empty array and
/// whenever `read_record_refs` would refuse the text's beginning.
pub fn read_first_record_ref(text: &str) -> Option<RefBatch<'_>> {
    if text.trim_start().starts_with('{') {
        return read_record_refs(text);
    }
    let mut batch = RefBatch::default();
    let mut de = serde_json::Deserializer::from_str(text);
    // Stopping after one element leaves the array unfinished, which serde reports as an error:
    // the row read is what counts.
    let _ = de.deserialize_seq(RowsVisitor(&mut batch, 1));
    (batch.rows.len() == 1).then_some(batch)
}

/// A JSON array of records, read into the batch, at most `.1` of them.
struct RowsVisitor<'b, 'a>(&'b mut RefBatch<'a>, usize);

impl<'de> Visitor<'de> for RowsVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of usage records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while self.0.rows.len() < self.1 {
            let Some(row) = seq.next_element_seed(RowSeed(&mut self.0.pairs, None))? else { break };
            self.0.rows.push(row);
        }
        Ok(())
    }
}

/// One record object; its dimensions are appended to the pairs; `.1` is the tenant of a record
/// that names none (`None`: the record must name it).
struct RowSeed<'b, 'a>(&'b mut Vec<(&'a str, &'a str)>, Option<&'a str>);

impl<'de> DeserializeSeed<'de> for RowSeed<'_, 'de> {
    type Value = Row<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Row<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, 'de> {
    type Value = Row<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a usage record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row<'de>, A::Error> {
        let (mut id, mut tenant, mut subject, mut metric) = (None, None, None, None);
        let (mut quantity, mut timestamp, mut end, mut dims, mut quality) = (None, None, None, None, None);
        while let Some(Key(key)) = map.next_key()? {
            match key.as_ref() {
                "id" => once(&mut id, map.next_value::<&str>()?)?,
                "tenant" => once(&mut tenant, map.next_value::<&str>()?)?,
                "subject" => once(&mut subject, map.next_value::<&str>()?)?,
                "metric" => once(&mut metric, map.next_value::<&str>()?)?,
                "quantity" => once(&mut quantity, map.next_value::<Quantity>()?.0)?,
                "timestamp" => once(&mut timestamp, map.next_value::<Instant>()?.0)?,
                "end" => once(&mut end, map.next_value::<End>()?.0)?,
                "dimensions" => once(&mut dims, map.next_value_seed(DimsSeed(&mut *self.0))?)?,
                "quality" => once(&mut quality, map.next_value::<Quality>()?)?,
                _ => return Err(de::Error::custom("an unknown field")),
            }
        }
        let missing = || de::Error::custom("a missing field");
        let at = self.0.len();
        Ok(Row {
            id: id.ok_or_else(missing)?,
            tenant: tenant.or(self.1).ok_or_else(missing)?,
            subject: subject.ok_or_else(missing)?,
            metric: metric.ok_or_else(missing)?,
            quantity: quantity.ok_or_else(missing)?,
            timestamp: timestamp.ok_or_else(missing)?,
            end: end.flatten(),
            dims: dims.unwrap_or(at..at),
        })
    }
}

/// A record's dimensions (string keys to string values, each key once), appended to the pairs
/// sorted by key; the value is their range.
struct DimsSeed<'b, 'a>(&'b mut Vec<(&'a str, &'a str)>);

impl<'de> DeserializeSeed<'de> for DimsSeed<'_, 'de> {
    type Value = Range<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Range<usize>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DimsSeed<'_, 'de> {
    type Value = Range<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of dimensions")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Range<usize>, A::Error> {
        let start = self.0.len();
        while let Some((k, v)) = map.next_entry::<&str, &str>()? {
            self.0.push((k, v));
        }
        let mine = &mut self.0[start..];
        mine.sort_unstable_by_key(|(k, _)| *k);
        if mine.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(de::Error::custom("a repeated key"));
        }
        Ok(start..self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{read_first_record_ref, read_record_refs, read_record_refs_serde, scan_record_refs};
    use crate::record::read_records_fast;

    /// Some(records) exactly when `read_records_fast` reads the text and it has no escaped
    /// string value; each ref the content of the record at its place. The scanner reads a text
    /// as serde does, or not at all.
    fn agrees(text: &str) {
        if let Some(scanned) = scan_record_refs(text) {
            assert_eq!(Some(scanned), read_record_refs_serde(text), "{text}");
        }
        let fast = read_records_fast(text);
        match read_record_refs(text) {
            Some(batch) => {
                let records = fast.unwrap_or_else(|| panic!("refs read what the fast reader refuses: {text}"));
                let refs = batch.refs();
                assert_eq!(refs.len(), records.len(), "{text}");
                for (r, rec) in refs.iter().zip(&records) {
                    assert!(r.same_content(rec), "{text}");
                    assert_eq!(r.to_record(), rec.clone().with_quality(crate::record::Quality::default()), "{text}");
                }
            }
            None => assert!(fast.is_none() || text.contains('\\'), "refused a plain text: {text}"),
        }
    }

    #[test]
    fn reads_what_the_fast_reader_reads_without_escapes() {
        let texts = [
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1.50","timestamp":"2024-03-01T10:00:00Z"}]"#,
            r#"{"metric":"kwh","id":"r1","tenant":"t","subject":"s","quantity":12345678901234567890.5,"timestamp":"2024-03-01T10:00:00.123+01:00","end":null,"dimensions":{"b":"1","a":"2"},"quality":"flagged"}"#,
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":-0.0,"timestamp":"2024-03-01T10:00:00Z","end":"2024-03-01T11:00:00Z","dimensions":{}},
               {"\u0069d":"r2","tenant":"t","subject":"s","metric":"kwh","quantity":"1e3","timestamp":" 2024-03-01T10:00:00Z "}]"#,
            "[]",
            r#"[{"id":"r\u0031","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z"}]"#,
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z","dimensions":{"a":"1","a":"2"}}]"#,
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z","quality":"nope"}]"#,
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z","x":1}]"#,
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1"}]"#,
            r#"[{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z"}] x"#,
            r#"[{"id":"r1","id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z"}]"#,
        ];
        for text in texts {
            agrees(text);
        }
        assert!(read_record_refs(texts[1]).is_some() && read_record_refs(texts[4]).is_none());
        // The first record alone: also of a text whose rest is refused or unfinished.
        let unfinished = format!("{} x", &texts[2][..texts[2].len() - 1]);
        for (text, whole) in [(texts[0], texts[0]), (texts[1], texts[1]), (texts[2], texts[2]), (&unfinished, texts[2])]
        {
            let first = read_first_record_ref(text).unwrap();
            assert_eq!(first.refs(), read_record_refs(whole).unwrap().refs()[..1], "{text}");
        }
        assert!(read_first_record_ref("[]").is_none() && read_first_record_ref(texts[4]).is_none());
    }

    #[test]
    fn push_object_reads_one_line_and_fills_in_the_tenant() {
        let with = r#"{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z","dimensions":{"b":"1","a":"2"}}"#;
        let without = r#"{"id":"r2","subject":"s","metric":"kwh","quantity":"2","timestamp":"2024-03-01T10:00:00Z","dimensions":{"c":"3"}}"#;
        let mut batch = super::RefBatch::default();
        assert!(batch.push_object(with, "other") && batch.push_object(without, "acme"));
        // Refused lines leave the batch as it was, dimensions too.
        let refused = [
            r#"{"id":"r3","subject":"s","metric":"kwh","quantity":"2","timestamp":"2024-03-01T10:00:00Z","dimensions":{"d":"4"}} x"#,
            r#"{"id":"r3","subject":"s","metric":"kwh","quantity":"2","timestamp":"2024-03-01T10:00:00Z","dimensions":{"d":"4"},"x":1}"#,
            r#"{"id":"r3","tenant":null,"subject":"s","metric":"kwh","quantity":"2","timestamp":"2024-03-01T10:00:00Z"}"#,
            &format!("[{with}]"),
            r#"{"id":"r\u0033","subject":"s","metric":"kwh","quantity":"2","timestamp":"2024-03-01T10:00:00Z"}"#,
        ];
        for line in refused {
            assert!(!batch.push_object(line, "acme"), "{line}");
        }
        let refs = batch.refs();
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0], read_record_refs(with).unwrap().refs()[0]);
        let filled = without.replacen('{', r#"{"tenant":"acme","#, 1);
        assert_eq!(refs[1], read_record_refs(&filled).unwrap().refs()[0]);
        assert_eq!(refs[1].dimensions, &[("c", "3")][..]);
    }

    proptest! {
        /// On generated record texts (keys in any order, optional fields, dimensions in any
        /// order, some repeated keys and escapes), the refs agree with the fast reader.
        #[test]
        fn agrees_with_the_fast_reader(records in proptest::collection::vec((
            proptest::sample::subsequence(vec![0usize, 1, 2, 3, 4, 5, 6, 7, 8], 5..=9).prop_shuffle(),
            proptest::collection::vec((0usize..4, 0usize..3), 0..4),
            0usize..6), 0..6), one in proptest::bool::ANY) {
            let values = ["\"r1\"", "\"t\"", "\"s\"", "\"kwh\"", "\"1.5\"", "\"2024-03-01T10:00:00Z\"",
                          "\"2024-03-01T11:00:00Z\"", "\"estimated\"", "{}"];
            let names = ["id", "tenant", "subject", "metric", "quantity", "timestamp", "end", "quality", "dimensions"];
            let objects: Vec<String> = records.iter().map(|(keys, dims, twist)| {
                let dims: Vec<String> = dims.iter().map(|(k, v)| format!("\"{}\":\"{}\"", ["a", "b", "c", "\\u0061"][*k], ["x", "y", "z\\n"][*v])).collect();
                let mut fields: Vec<String> = keys.iter().map(|&k| {
                    let value = if k == 8 { format!("{{{}}}", dims.join(",")) } else { values[k].to_string() };
                    format!("\"{}\":{}", names[k], value)
                }).collect();
                if *twist == 0 { fields.push(r#""id":"again""#.to_string()); }
                if *twist == 1 { fields.push(r#""subject":"\u0073""#.to_string()); }
                format!("{{{}}}", fields.join(","))
            }).collect();
            let text = if one && objects.len() == 1 { objects[0].clone() } else { format!("[{}]", objects.join(",")) };
            agrees(&text);
        }

        /// Texts in the scanned shape (`JSON.stringify`'s), with whitespace anywhere JSON allows
        /// it, and then one byte cut or one byte inserted: the scanner reads each as serde does,
        /// or leaves it to serde; the unmutated ones it reads.
        #[test]
        fn the_scanner_reads_as_serde(records in proptest::collection::vec((
            0usize..40, prop_oneof![Just("1"), Just("1.50"), Just(" 2 "), Just("x"), Just("-0.001")],
            prop_oneof![Just("2024-03-01T10:00:00.000Z"), Just("2024-03-01T10:00:00+01:00"), Just("2024-02-30T10:00:00Z")],
            proptest::option::of(prop_oneof![Just("null"), Just("\"2024-03-01T11:00:00Z\""), Just("1")]),
            proptest::collection::vec((0usize..3, 0usize..3), 0..3),
            proptest::option::of(prop_oneof![Just("actual"), Just("flagged"), Just("estimated"), Just("Actual")])), 0..5),
            ws in proptest::sample::select(vec!["", " ", "\n\t", "\r "]), cut in proptest::option::of(0usize..2000),
            insert in proptest::option::of((0usize..2000, proptest::sample::select(vec![b'"', b',', b'}', b'\\', b' ', 0x01u8, b'x', b'n'])))) {
            let objects: Vec<String> = records.iter().map(|(i, q, ts, end, dims, quality)| {
                let dims: Vec<String> = dims.iter().map(|(k, v)| format!("\"{}\":{ws}\"{}\"", ["a", "b", "status"][*k], ["x", "ok", ""][*v])).collect();
                let mut fields = vec![
                    format!("\"tenant\":{ws}\"t\""), format!("\"id\":\"r{i}\""), format!("\"subject\":\"s{}\"", i % 3),
                    format!("\"metric\":\"kwh\""), format!("\"quantity\":\"{q}\""), format!("\"timestamp\":\"{ts}\""),
                    format!("\"dimensions\":{{{}}}", dims.join(&format!("{ws},"))),
                ];
                if let Some(end) = end { fields.push(format!("\"end\":{ws}{end}")); }
                if let Some(q) = quality { fields.push(format!("\"quality\":\"{q}\"")); }
                format!("{{{ws}{}{ws}}}", fields.join(&format!(",{ws}")))
            }).collect();
            let mut text = format!("{ws}[{ws}{}{ws}]{ws}", objects.join(&format!("{ws},")));
            if cut.is_none() && insert.is_none() && read_record_refs_serde(&text).is_some() {
                prop_assert!(scan_record_refs(&text).is_some(), "{}", text);
            }
            let mut bytes = text.clone().into_bytes();
            if let Some(at) = cut.filter(|&at| at < bytes.len()) { bytes.remove(at); }
            if let Some((at, b)) = insert { let at = at.min(bytes.len()); bytes.insert(at, b); }
            if let Ok(mutated) = String::from_utf8(bytes) { text = mutated; }
            agrees(&text);
        }
    }
}
