//! The duplicate check of an ingest ([`Store::compare_stored`](meterkit::Store::compare_stored)),
//! compared in the stored form.
//!
//! A batch that is mostly stored already (a repeat run; 16 records spread over it are probed by id
//! first, in the same statement as the first metric's scan) is answered from **one scan of the
//! stored records of its time range** per metric (the `(tenant, metric, ts)` index; records of
//! one time range sit on neighbouring heap pages), which reads the bodies alone, one row per
//! slice of time ([`slices`]: about [`SLICE`] bodies joined by 0x1F, so the server and the client
//! handle 256 times fewer rows), matched to the batch by the id each starts with
//! ([`ByLeadingId`]); whatever the scan did not meet is probed by id (`id = ANY($2)`). Each
//! stored body (JSON text, read as bytes) is compared with the incoming record's JSON as `apply`
//! writes it, built by [`record_json`] without `serde` (the same bytes as
//! `serde_json`; a unit test holds them equal); only a body that differs there is parsed and
//! compared field by field ([`UsageRecord::same_content`]), so the answer is exact.

use std::io::Write as _;

use chrono::{DateTime, Datelike, Timelike, Utc};
use meterkit::{record::Quality, Decimal, Result, UsageRecord};
use postgres::types::{FromSql, Type};
use rustc_hash::FxHashMap;

use crate::json_err;

/// The fewest records a batch needs for the time-range scan (smaller ones are probed by id).
pub(crate) const SCAN_MIN: usize = 256;

/// How many records of a batch are probed by id to decide whether it is a repeat.
pub(crate) const SAMPLE: usize = 16;

/// A text column's bytes, without the UTF-8 check of `&str` (the bytes are only compared, or
/// parsed by `serde_json`, which checks them).
pub(crate) struct RawText<'a>(pub(crate) &'a [u8]);

impl<'a> FromSql<'a> for RawText<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawText(raw))
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

/// Whether `bytes` hold no byte that JSON escapes (`"`, `\`, below 0x20), eight bytes at a time.
fn plain(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // "Has a zero byte" and "has a byte below 0x20" of a whole word (Bit Twiddling Hacks'
    // `haszero`, `hasless`): exact for the word; a wrong `false` would only send the string
    // through serde_json.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        let below = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        if below | zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\'))) != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// Appends `s` as a JSON string, escaped as `serde_json` does (`"`, `\` and control characters;
/// the rare string that needs it goes through `serde_json` itself).
fn json_str(buf: &mut Vec<u8>, s: &str) -> Result<()> {
    if plain(s.as_bytes()) {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *buf, s).map_err(|e| json_err(&e))
    }
}

/// Appends the `width` last decimal digits of `v` (zero-padded).
fn digits(buf: &mut Vec<u8>, mut v: u32, width: usize) {
    let at = buf.len();
    buf.resize(at + width, b'0');
    for d in buf[at..].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Appends `t` as [`meterkit::time::fmt_ts`] writes it (RFC 3339, `Z`, 0/3/6/9 fraction digits)
/// within years 0–9999 and outside leap seconds; any other instant through `fmt_ts` itself.
fn json_ts(buf: &mut Vec<u8>, t: DateTime<Utc>) {
    let n = t.naive_utc();
    let (date, time) = (n.date(), n.time());
    let nanos = time.nanosecond();
    let Ok(year) = u32::try_from(date.year()) else { return json_ts_slow(buf, t) };
    if nanos >= 1_000_000_000 || year > 9999 {
        return json_ts_slow(buf, t);
    }
    buf.push(b'"');
    digits(buf, year, 4);
    for (sep, v) in
        [(b'-', date.month()), (b'-', date.day()), (b'T', time.hour()), (b':', time.minute()), (b':', time.second())]
    {
        buf.push(sep);
        digits(buf, v, 2);
    }
    match nanos {
        0 => {}
        n if n % 1_000_000 == 0 => {
            buf.push(b'.');
            digits(buf, n / 1_000_000, 3);
        }
        n if n % 1_000 == 0 => {
            buf.push(b'.');
            digits(buf, n / 1_000, 6);
        }
        n => {
            buf.push(b'.');
            digits(buf, n, 9);
        }
    }
    buf.extend_from_slice(b"Z\"");
}

fn json_ts_slow(buf: &mut Vec<u8>, t: DateTime<Utc>) {
    buf.push(b'"');
    buf.extend_from_slice(meterkit::time::fmt_ts(t).as_bytes());
    buf.push(b'"');
}

/// Appends a quantity as [`meterkit::decimal::fmt_decimal`] writes it (normalised; a whole
/// number below 2^64 without formatting machinery).
fn json_decimal(buf: &mut Vec<u8>, d: Decimal) {
    buf.push(b'"');
    let whole =
        (d.scale() == 0).then(|| d.mantissa()).and_then(|m| u64::try_from(m.unsigned_abs()).ok().map(|v| (m < 0, v)));
    match whole {
        Some((negative, mut v)) => {
            if negative {
                buf.push(b'-');
            }
            let mut tmp = [0u8; 20];
            let mut at = tmp.len();
            loop {
                at -= 1;
                tmp[at] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            buf.extend_from_slice(&tmp[at..]);
        }
        None => {
            let _ = write!(buf, "{}", d.normalize());
        }
    }
    buf.push(b'"');
}

/// Appends `r` as `serde_json::to_writer` writes it (what `apply` stores as the body): the fields
/// in declaration order, `end`, `dimensions` and `quality` omitted when empty or `actual`.
///
/// # Errors
/// [`meterkit::ErrorKind::Store`] when `serde_json` fails on a string that needs escaping (it
/// does not for a valid `&str`).
pub(crate) fn record_json(buf: &mut Vec<u8>, r: &UsageRecord) -> Result<()> {
    buf.extend_from_slice(b"{\"id\":");
    json_str(buf, &r.id)?;
    buf.extend_from_slice(b",\"tenant\":");
    json_str(buf, &r.tenant)?;
    buf.extend_from_slice(b",\"subject\":");
    json_str(buf, &r.subject)?;
    buf.extend_from_slice(b",\"metric\":");
    json_str(buf, &r.metric)?;
    buf.extend_from_slice(b",\"quantity\":");
    json_decimal(buf, r.quantity);
    buf.extend_from_slice(b",\"timestamp\":");
    json_ts(buf, r.timestamp);
    if let Some(end) = r.end {
        buf.extend_from_slice(b",\"end\":");
        json_ts(buf, end);
    }
    if !r.dimensions.is_empty() {
        buf.extend_from_slice(b",\"dimensions\":{");
        for (n, (k, v)) in r.dimensions.iter().enumerate() {
            if n > 0 {
                buf.push(b',');
            }
            json_str(buf, k)?;
            buf.push(b':');
            json_str(buf, v)?;
        }
        buf.push(b'}');
    }
    if r.quality != Quality::Actual {
        buf.extend_from_slice(b",\"quality\":");
        serde_json::to_writer(&mut *buf, &r.quality).map_err(|e| json_err(&e))?;
    }
    buf.push(b'}');
    Ok(())
}

/// Compares stored bodies with incoming records, reusing one buffer.
#[derive(Default)]
pub(crate) struct Comparer {
    buf: Vec<u8>,
}

impl Comparer {
    /// Whether `stored` (a body of the same `(tenant, id)`) has `r`'s content: equal bytes, or
    /// else parsed and compared with [`UsageRecord::same_content`].
    ///
    /// # Errors
    /// [`meterkit::ErrorKind::Store`] when the stored body is not a record's JSON.
    pub(crate) fn same(&mut self, r: &UsageRecord, stored: &[u8]) -> Result<bool> {
        if self.json(r)? == stored {
            return Ok(true);
        }
        let stored: UsageRecord = serde_json::from_slice(stored).map_err(|e| json_err(&e))?;
        Ok(stored.same_content(r))
    }

    /// `r`'s JSON as `apply` writes it ([`record_json`]), in the reused buffer.
    ///
    /// # Errors
    /// As [`record_json`].
    fn json(&mut self, r: &UsageRecord) -> Result<&[u8]> {
        self.buf.clear();
        record_json(&mut self.buf, r)?;
        Ok(&self.buf)
    }
}

/// What joins the bodies of one row of the time-range scan (`string_agg(body, E'\x1f')`).
const SEP: u8 = 0x1F;

/// The length of the first body of `joined` (up to the first [`SEP`], or all of it).
fn body_end(joined: &[u8]) -> usize {
    joined.iter().position(|&b| b == SEP).unwrap_or(joined.len())
}

/// The id at the start of a stored body (`{"id":"…"`, the first member `apply` writes), when it
/// is written without escapes; `None` otherwise.
fn leading_id(body: &[u8]) -> Option<&[u8]> {
    let rest = body.strip_prefix(b"{\"id\":\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    (rest[end] == b'"').then(|| &rest[..end])
}

/// Matches the stored bodies of a time range to the records of a batch by the id each body
/// starts with ([`leading_id`]), so that the scan reads the bodies alone.
///
/// The scan returns the bodies in time order, so a batch in time order meets them in its own
/// order: each body is first tried against the record after the one the previous body matched
/// (one comparison of ids); only a body that guess misses is looked up in a map of the group by
/// id, built then (once).
pub(crate) struct ByLeadingId<'r> {
    records: &'r [&'r UsageRecord],
    group: &'r [usize],
    /// Whether each record of `records` is in `group` (the scan answers only those).
    member: Vec<bool>,
    /// The position in `records` the next body is tried against.
    next: usize,
    /// The group by id, built at the first body the guess misses.
    by_id: Option<FxHashMap<&'r [u8], usize>>,
}

impl<'r> ByLeadingId<'r> {
    /// The records of `records` at `group` (positions in `records`).
    pub(crate) fn new(records: &'r [&'r UsageRecord], group: &'r [usize]) -> Self {
        let mut member = vec![false; records.len()];
        for &i in group {
            member[i] = true;
        }
        ByLeadingId { records, group, member, next: group.first().copied().unwrap_or(0), by_id: None }
    }

    /// The position of the group's record with id `id`, if any.
    fn find(&mut self, id: &[u8]) -> Option<usize> {
        if self.records.get(self.next).is_some_and(|r| r.id.as_bytes() == id) {
            let i = self.next;
            self.next += 1;
            return self.member[i].then_some(i);
        }
        let (records, group) = (self.records, self.group);
        let by_id = self.by_id.get_or_insert_with(|| group.iter().map(|&i| (records[i].id.as_bytes(), i)).collect());
        let i = *by_id.get(id)?;
        self.next = i + 1;
        Some(i)
    }

    /// Answers the record whose stored body `body` is (when it is one of the group's, by its
    /// leading id) in `out`, as [`Comparer::same`] does. A body without a leading id answers
    /// nothing: its record, if the batch has it, is probed by id.
    ///
    /// (The one-body form of [`answer_joined`](Self::answer_joined), which the tests hold it to.)
    ///
    /// # Errors
    /// [`meterkit::ErrorKind::Store`] when a body that differs from the record's JSON is not a
    /// record's JSON.
    #[cfg(test)]
    pub(crate) fn answer(&mut self, body: &[u8], out: &mut [Option<bool>], cmp: &mut Comparer) -> Result<()> {
        if let Some(i) = leading_id(body).and_then(|id| self.find(id)) {
            out[i] = Some(cmp.same(self.records[i], body)?);
        }
        Ok(())
    }

    /// Answers, for each body of `joined` (bodies joined by 0x1F, a byte JSON text holds only
    /// escaped, so never inside a body), the record whose stored body it is (when it is one of
    /// the group's, by its leading id) in `out`, as [`Comparer::same`] does. A body without a
    /// leading id answers nothing: its record, if the batch has it, is probed by id.
    ///
    /// Without a pass to split them: a body whose record is found by its leading id is first
    /// compared with the record's JSON (which holds no 0x1F either) followed by a 0x1F or the
    /// end — then that JSON is the whole body, the answer `same` gives; any other body is
    /// delimited first and compared by `same`.
    ///
    /// # Errors
    /// [`meterkit::ErrorKind::Store`] when a body that differs from the record's JSON is not a
    /// record's JSON.
    pub(crate) fn answer_joined(&mut self, joined: &[u8], out: &mut [Option<bool>], cmp: &mut Comparer) -> Result<()> {
        let mut rest = joined;
        loop {
            let found = leading_id(rest).and_then(|id| self.find(id));
            let end = match found {
                Some(i) => {
                    let json = cmp.json(self.records[i])?;
                    let n = json.len();
                    if rest.get(..n) == Some(json) && rest.get(n).is_none_or(|&b| b == SEP) {
                        out[i] = Some(true);
                        n
                    } else {
                        let end = body_end(rest);
                        out[i] = Some(cmp.same(self.records[i], &rest[..end])?);
                        end
                    }
                }
                None => body_end(rest),
            };
            match rest.get(end + 1..) {
                Some(next) => rest = next,
                None => return Ok(()),
            }
        }
    }
}

/// How many stored records one row of the time-range scan carries, about (one slice of time).
pub(crate) const SLICE: i64 = 256;

/// The slices of the time-range scan of `n` records (`n` ≥ 1) in `from..=to` (seconds):
/// `(width, cap)` — slices `width` seconds wide, so that each holds about [`SLICE`] of the
/// batch's records if they are spread evenly (at most 2 × `n` / [`SLICE`] + 1 slices), each
/// read up to `cap` records: 2 × the records of the batch expected in it (at most `n`) + 64, so
/// that a range crowded with other records stops early.
pub(crate) fn slices(from: i64, to: i64, n: usize) -> (i64, i64) {
    let span = i128::from(to) - i128::from(from) + 1;
    let n = i128::try_from(n.max(1)).unwrap_or(i128::MAX);
    let width = (span * i128::from(SLICE)).div_euclid(n).max(1);
    let expected = (n * width + span - 1).div_euclid(span.max(1)).min(n);
    let cap = expected.saturating_mul(2).saturating_add(64);
    (i64::try_from(width).unwrap_or(i64::MAX), i64::try_from(cap).unwrap_or(i64::MAX))
}

/// The records of `records` at `which`, grouped by metric, each group with its time range
/// `(metric, from, to)` in seconds (inclusive), for the time-range scan. A record of the same
/// metric as the one before it joins that group without a lookup.
pub(crate) fn time_ranges<'r>(records: &[&'r UsageRecord], which: &[usize]) -> Vec<(&'r str, i64, i64, Vec<usize>)> {
    let mut out: Vec<(&'r str, i64, i64, Vec<usize>)> = Vec::new();
    let mut by_metric: FxHashMap<&str, usize> = FxHashMap::default();
    let mut last: Option<usize> = None;
    for &i in which {
        let r = records[i];
        let ts = r.timestamp.timestamp();
        let g = match last.filter(|&g| out[g].0 == r.metric) {
            Some(g) => g,
            None => *by_metric.entry(r.metric.as_str()).or_insert_with(|| {
                out.push((r.metric.as_str(), ts, ts, Vec::new()));
                out.len() - 1
            }),
        };
        let group = &mut out[g];
        group.1 = group.1.min(ts);
        group.2 = group.2.max(ts);
        group.3.push(i);
        last = Some(g);
    }
    out.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn plain_finds_every_escaped_byte_anywhere() {
        for b in 0..=255u8 {
            for at in 0..11 {
                let mut bytes = *b"abcdefghijk";
                bytes[at] = b;
                assert_eq!(plain(&bytes), b >= 0x20 && b != b'"' && b != b'\\', "byte {b} at {at}");
            }
        }
    }

    #[test]
    fn leading_id_is_the_first_member_written_without_escapes() {
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 10, 2, 3).unwrap();
        for (id, want) in [("r-1", Some("r-1")), ("é €", Some("é €")), ("a\"b", None), ("a\\b", None), ("a\nb", None)]
        {
            let body = serde_json::to_vec(&UsageRecord::new("t", id, "s", "m", Decimal::ONE, at)).unwrap();
            assert_eq!(leading_id(&body), want.map(str::as_bytes), "{id:?}");
        }
        assert_eq!(leading_id(b"{\"tenant\":\"t\",\"id\":\"r\"}"), None);
        assert_eq!(leading_id(b"{\"id\":\"r"), None);
    }

    /// `ByLeadingId` against a plain map by id (what the scan did before), each followed by the
    /// probe by id of the group's records left unanswered, on bodies in batch order, reversed and
    /// shuffled, with bodies of records outside the group, bodies that differ, ids JSON escapes
    /// and an id twice in the batch (stored once).
    #[test]
    fn by_leading_id_answers_as_a_map_by_id_in_any_order() {
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
        let mut batch: Vec<UsageRecord> = (0..60)
            .map(|n| {
                let id = if n % 13 == 5 { format!("r\"{n}") } else { format!("r{n}") };
                UsageRecord::new("t", id, "s", "m", Decimal::new(n, 0), at + chrono::Duration::seconds(n))
            })
            .collect();
        batch[40].id = "r7".into();
        let records: Vec<&UsageRecord> = batch.iter().collect();
        let group: Vec<usize> = (0..60).filter(|i| i % 9 != 0).collect();
        let mut bodies: Vec<Vec<u8>> = (0..60usize)
            .filter(|&n| n != 40)
            .map(|n| {
                let mut stored = records[n].clone();
                if n % 11 == 3 {
                    stored.quantity += Decimal::ONE;
                }
                let mut buf = Vec::new();
                record_json(&mut buf, &stored).unwrap();
                buf
            })
            .collect();
        let stored: FxHashMap<&str, Vec<u8>> = (0..60usize)
            .filter(|&n| n != 40)
            .zip(bodies.iter().cloned())
            .map(|(n, b)| (records[n].id.as_str(), b))
            .collect();
        let map: FxHashMap<&[u8], usize> = group.iter().map(|&i| (records[i].id.as_bytes(), i)).collect();
        let mut cmp = Comparer::default();
        let mut by_id = |out: &mut Vec<Option<bool>>| {
            for &i in &group {
                if out[i].is_none() {
                    out[i] = stored.get(records[i].id.as_str()).map(|b| cmp.same(records[i], b).unwrap());
                }
            }
        };
        let mut orders = vec![bodies.clone()];
        bodies.reverse();
        orders.push(bodies.clone());
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in (1..bodies.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bodies.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        orders.push(bodies);
        for order in &orders {
            let (mut got, mut want) = (vec![None; records.len()], vec![None; records.len()]);
            let (mut c, mut m) = (Comparer::default(), ByLeadingId::new(&records, &group));
            for body in order {
                m.answer(body, &mut got, &mut c).unwrap();
                if let Some(&i) = leading_id(body).and_then(|id| map.get(id)) {
                    want[i] = Some(c.same(records[i], body).unwrap());
                }
            }
            by_id(&mut got);
            by_id(&mut want);
            assert_eq!(got, want);
            assert_eq!(got.iter().filter(|g| **g == Some(false)).count(), 6, "{got:?}");
        }
    }

    /// `answer_joined` (no split pass) answers as splitting the row on 0x1F and answering each
    /// body: bodies equal to the record's JSON, differing ones (one a prefix of the record's JSON,
    /// one that the record's JSON is a prefix of, one longer), escaped ids, ids outside the group,
    /// an empty row and empty bodies, in order and reversed.
    #[test]
    fn answer_joined_answers_as_each_body_split_off() {
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
        let batch: Vec<UsageRecord> = (0..40)
            .map(|n| {
                let id = if n % 13 == 5 { format!("r\"{n}") } else { format!("r{n}") };
                UsageRecord::new("t", id, "s", "m", Decimal::new(n, 0), at + chrono::Duration::seconds(n))
            })
            .collect();
        let records: Vec<&UsageRecord> = batch.iter().collect();
        let group: Vec<usize> = (0..40).filter(|i| i % 7 != 0).collect();
        let mut bodies: Vec<Vec<u8>> = (0..40usize)
            .map(|n| {
                let mut buf = Vec::new();
                record_json(&mut buf, records[n]).unwrap();
                match n % 10 {
                    // Another quantity: same length, other bytes.
                    3 => {
                        let mut other = records[n].clone();
                        other.quantity += Decimal::ONE;
                        buf.clear();
                        record_json(&mut buf, &other).unwrap();
                    }
                    // The record's JSON with a member more: it is a prefix of the body.
                    4 => {
                        buf.pop();
                        buf.extend_from_slice(br#","end":"2024-05-02T00:00:00Z"}"#);
                    }
                    // A body that is a prefix of the record's JSON (not a record: an error if
                    // compared, so only outside the group).
                    _ if n % 7 == 0 => buf.truncate(buf.len() / 2),
                    _ => {}
                }
                buf
            })
            .collect();
        bodies.push(Vec::new());
        for _ in 0..2 {
            let joined = bodies.join(&SEP);
            let (mut got, mut want) = (vec![None; records.len()], vec![None; records.len()]);
            let mut cmp = Comparer::default();
            ByLeadingId::new(&records, &group).answer_joined(&joined, &mut got, &mut cmp).unwrap();
            let mut split = ByLeadingId::new(&records, &group);
            for body in joined.split(|&b| b == SEP) {
                split.answer(body, &mut want, &mut cmp).unwrap();
            }
            assert_eq!(got, want);
            assert_eq!(got.iter().filter(|g| **g == Some(false)).count(), 7, "{got:?}");
            assert_eq!(got.iter().filter(|g| g.is_none()).count(), 6 + 3, "{got:?}");
            bodies.reverse();
        }
        let mut none = vec![None; records.len()];
        ByLeadingId::new(&records, &group).answer_joined(b"", &mut none, &mut Comparer::default()).unwrap();
        assert!(none.iter().all(Option::is_none));
        // A body that is the record's JSON and more is that body, not the JSON: here not a
        // record (an error, as when it is split off), with trailing space an equal one.
        let mut body = Vec::new();
        record_json(&mut body, records[1]).unwrap();
        for (tail, ok) in [(&b"x"[..], false), (&b" "[..], true)] {
            let joined = [body.as_slice(), tail, &[SEP], &bodies[2]].concat();
            let mut got = vec![None; records.len()];
            let answer = ByLeadingId::new(&records, &group).answer_joined(&joined, &mut got, &mut Comparer::default());
            assert_eq!(answer.is_ok(), ok, "{tail:?}");
            if ok {
                assert_eq!((got[1], got[2]), (Some(true), Some(true)));
            }
        }
    }

    /// Slices are at least a second wide, at most 2 × `n` / [`SLICE`] + 1 of them cover the range,
    /// and each may read 2 × the batch's records expected in it + 64 (all of them, when every
    /// record is in one second).
    #[test]
    fn slices_cover_the_range_in_about_n_over_slice_rows() {
        for (from, to, n) in [
            (0i64, 0i64, 1usize),
            (0, 0, 10_000),
            (100, 20_099, 10_000),
            (-5_000_000_000, 5_000_000_000, 300),
            (0, 9, 10_000),
            (1_714_551_602, 1_714_571_598, 9_984),
            (0, 4, 768),
            (0, 1_000_000, 1_000_001),
            (-9_000_000_000, 9_000_000_000, 1),
        ] {
            let (width, cap) = slices(from, to, n);
            let span = i128::from(to) - i128::from(from) + 1;
            let count = (span + i128::from(width) - 1) / i128::from(width);
            assert!(width >= 1 && count <= 2 * n as i128 / i128::from(SLICE) + 1, "{from} {to} {n}: {width} {count}");
            let expected = ((n as i128 * i128::from(width) + span - 1) / span).min(n as i128);
            assert_eq!(i128::from(cap), 2 * expected + 64, "{from} {to} {n}");
        }
        assert_eq!(slices(7, 7, 10_000), (1, 20_064));
        assert_eq!(slices(7, 7, 1), (256, 66));
        assert_eq!(slices(100, 20_099, 10_000), (512, 576));
    }

    #[test]
    fn record_json_is_serde_json() {
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 10, 2, 3).unwrap();
        let mut cases = vec![UsageRecord::new("t", "r-1", "sim-1", "bytes", Decimal::ONE, at)];
        for (n, nanos) in [0u32, 5_000_000, 120_000, 7, 999_999_999].into_iter().enumerate() {
            let t = at + chrono::Duration::nanoseconds(i64::from(nanos));
            let mut r =
                UsageRecord::new("tén\"ant", format!("id\\{n}\u{1}"), "s\n", "m\u{7f}é", Decimal::new(-12_300, 4), t)
                    .with_dimension("status", "ok")
                    .with_dimension("a\"", "€\t");
            r.end = Some(t + chrono::Duration::milliseconds(1500));
            cases.push(r.clone());
            r.quality = Quality::Flagged;
            cases.push(r.clone());
            r.quality = Quality::Estimated;
            r.end = None;
            r.quantity = Decimal::new(5, 0);
            cases.push(r);
        }
        let old = Utc.with_ymd_and_hms(1700, 1, 1, 0, 0, 0).unwrap();
        cases.push(UsageRecord::new("t", "r", "s", "m", Decimal::new(1, 28), old));
        for q in [
            Decimal::ZERO,
            Decimal::new(-7, 0),
            Decimal::new(1_000, 0),
            Decimal::new(1_000, 2),
            Decimal::MAX,
            Decimal::MIN,
        ] {
            cases.push(UsageRecord::new("t", "r", "s", "m", q, at));
        }
        for r in &cases {
            let mut buf = Vec::new();
            record_json(&mut buf, r).unwrap();
            assert_eq!(String::from_utf8(buf).unwrap(), serde_json::to_string(r).unwrap());
        }
    }
}
