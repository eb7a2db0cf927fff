//! A byte scanner for the common shape of a batch text — a JSON array of record objects whose
//! keys and string values have no escape, as `JSON.stringify` writes plain objects — that reads
//! it into a [`RefBatch`] without serde's machinery. Anything else (a number quantity, an escape,
//! an unknown or repeated key, a syntax error) gives `None`, and [`read_record_refs`] reads the
//! text with serde then: so the scanner decides nothing, and what it reads is what serde reads
//! (property-tested in `read_refs`).
//!
//! [`read_record_refs`]: super::read_record_refs

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::read_refs::{RefBatch, Row};
use super::Quality;
use crate::decimal::parse_decimal;
use crate::time::parse_ts;

/// The records of `text` (a JSON array of record objects) when every one has the scanned shape;
/// `None` otherwise (see the module docs).
pub(super) fn scan_record_refs(text: &str) -> Option<RefBatch<'_>> {
    let mut s = Scanner { text, at: 0 };
    // Room for as many records as a text of this length holds at about 96 bytes each (a record's
    // required keys alone take over 70), so that a batch's vectors are not grown and copied.
    let rows = text.len() / 96;
    let mut batch = RefBatch { rows: Vec::with_capacity(rows), pairs: Vec::with_capacity(rows) };
    s.expect(b'[')?;
    if s.peek()? == b']' {
        s.at += 1;
    } else {
        loop {
            let row = s.record(&mut batch.pairs)?;
            batch.rows.push(row);
            match s.next()? {
                b',' => {}
                b']' => break,
                _ => return None,
            }
        }
    }
    s.skip_ws();
    (s.at == text.len()).then_some(batch)
}

/// A position in the text.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn skip_ws(&mut self) {
        let b = self.text.as_bytes();
        while matches!(b.get(self.at), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// The next byte that is not whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.text.as_bytes().get(self.at).copied()
    }

    /// The next byte that is not whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// A string without escapes or control characters, borrowed (the opening quote is next).
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let b = self.text.as_bytes();
        let start = self.at;
        loop {
            match *b.get(self.at)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        // Both ends are ASCII quotes, so the slice is on character boundaries.
        let s = self.text.get(start..self.at)?;
        self.at += 1;
        Some(s)
    }

    /// `null`, consumed, or `None`.
    fn null(&mut self) -> Option<()> {
        self.skip_ws();
        let rest = self.text.as_bytes().get(self.at..)?;
        rest.starts_with(b"null").then(|| self.at += 4)
    }

    /// One record object; its dimensions are appended to `pairs`.
    fn record(&mut self, pairs: &mut Vec<(&'a str, &'a str)>) -> Option<Row<'a>> {
        let mut f = Fields::default();
        self.expect(b'{')?;
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            self.skip_ws();
            f.read(self, key, pairs)?;
            match self.next()? {
                b',' => self.skip_ws(),
                b'}' => break,
                _ => return None,
            }
        }
        let at = pairs.len();
        Some(Row {
            id: f.id?,
            tenant: f.tenant?,
            subject: f.subject?,
            metric: f.metric?,
            quantity: f.quantity?,
            timestamp: f.timestamp?,
            end: f.end.and_then(|End(e)| e),
            dims: f.dims.unwrap_or(at..at),
        })
    }

    /// A dimensions object, appended to `pairs` sorted by key; `None` for a repeated key.
    fn dims(&mut self, pairs: &mut Vec<(&'a str, &'a str)>) -> Option<std::ops::Range<usize>> {
        let start = pairs.len();
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(start..start);
        }
        loop {
            let k = self.string()?;
            self.expect(b':')?;
            self.skip_ws();
            pairs.push((k, self.string()?));
            match self.next()? {
                b',' => self.skip_ws(),
                b'}' => break,
                _ => return None,
            }
        }
        let mine = &mut pairs[start..];
        mine.sort_unstable_by_key(|(k, _)| *k);
        if mine.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        Some(start..pairs.len())
    }
}

/// The fields of one record read so far.
#[derive(Default)]
struct Fields<'a> {
    id: Option<&'a str>,
    tenant: Option<&'a str>,
    subject: Option<&'a str>,
    metric: Option<&'a str>,
    quantity: Option<Decimal>,
    timestamp: Option<DateTime<Utc>>,
    /// The end, when the key was read (`null`: no end).
    end: Option<End>,
    dims: Option<std::ops::Range<usize>>,
    quality: Option<Quality>,
}

impl<'a> Fields<'a> {
    /// Read the value of `key` (next in `s`); `None` for an unknown or repeated key or a value
    /// of another shape.
    fn read(&mut self, s: &mut Scanner<'a>, key: &str, pairs: &mut Vec<(&'a str, &'a str)>) -> Option<()> {
        match key {
            "id" => once(&mut self.id, s.string()?),
            "tenant" => once(&mut self.tenant, s.string()?),
            "subject" => once(&mut self.subject, s.string()?),
            "metric" => once(&mut self.metric, s.string()?),
            "quantity" => once(&mut self.quantity, parse_decimal(s.string()?).ok()?),
            "timestamp" => once(&mut self.timestamp, parse_ts(s.string()?).ok()?),
            "end" => {
                let end = match s.null() {
                    Some(()) => None,
                    None => Some(parse_ts(s.string()?).ok()?),
                };
                once(&mut self.end, End(end))
            }
            "dimensions" => {
                let dims = s.dims(pairs)?;
                once(&mut self.dims, dims)
            }
            "quality" => once(&mut self.quality, quality(s.string()?)?),
            _ => None,
        }
    }
}

/// A record's end as read: `None` for `null`.
struct End(Option<DateTime<Utc>>);

/// Fill `slot` once: `None` for a second value (a repeated key).
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// A quality as serde's derive reads it from a string.
fn quality(s: &str) -> Option<Quality> {
    match s {
        "actual" => Some(Quality::Actual),
        "flagged" => Some(Quality::Flagged),
        "estimated" => Some(Quality::Estimated),
        _ => None,
    }
}
