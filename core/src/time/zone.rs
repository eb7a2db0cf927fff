//! IANA time zones from a compact copy of chrono-tz's tables (feature `compact-tz`).
//!
//! chrono-tz links every zone's transitions as 32-byte entries with a `&'static str`
//! abbreviation each (≈ 1.1 MB of data and 36 000 relocations in a library). The mobile library
//! needs every zone but not that size: this module reads the same tables, re-encoded by
//! `scripts/generate-tz` into `core/data/tzdata.bin` (varint time deltas and an offset index per
//! transition, identical tables of linked zones stored once: 184 KB, zlib-compressed to 25 KB in
//! the library and inflated once, on first use, by miniz_oxide). The data is chrono-tz's
//! own — the same zones, aliases, transitions and bounds (the same tzdb release) — and the lookups
//! below are chrono-tz's algorithms (`timezone_impl.rs` of chrono-tz 0.10, MIT/Apache-2.0), so
//! every instant gets the offset chrono-tz gives it and every local time the same
//! `LocalResult`. Only the abbreviations (`EST`) are left out: meterkit prints offsets. The tests
//! compare every zone with chrono-tz.
//!
//! A zone's transitions are decoded on its first use and kept for the life of the process.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use chrono::{FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};

mod tzdata;

/// The encoded tables, zlib-compressed (format: `scripts/generate-tz`).
static COMPRESSED: &[u8] = include_bytes!("../../data/tzdata.bin");

/// The most the tables may inflate to (they are 184 KB): memory is bounded before allocating.
const MAX_INFLATED: usize = 4 << 20;

/// An IANA time zone or alias (`Europe/London`, `US/Eastern`, `UTC`): the same set of names as
/// chrono-tz's `Tz`, with the same offsets. Implements [`chrono::TimeZone`]; parse a name with
/// [`str::parse`] (exact, case-sensitive, like chrono-tz) or
/// [`parse_time_zone`](crate::time::parse_time_zone).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tz(u16);

impl Tz {
    /// The `UTC` zone.
    pub const UTC: Tz = Tz(tzdata::UTC_INDEX);

    /// The zone's IANA name, as it was parsed (`"Asia/Kolkata"`).
    #[must_use]
    pub fn name(self) -> &'static str {
        db().and_then(|d| d.zones.get(usize::from(self.0))).map_or("UTC", |z| z.0)
    }

    /// The zone's transitions; a zone whose table cannot be read (never, with the tables this
    /// crate is built with: a test decodes every one) has none, i.e. UTC.
    fn spans(self) -> &'static Spans {
        static EMPTY: Spans = Spans { first: 0, rest: Vec::new() };
        let Some(d) = db() else { return &EMPTY };
        let Some(&(_, table)) = d.zones.get(usize::from(self.0)) else { return &EMPTY };
        let Some(cell) = d.tables.get(usize::from(table)) else { return &EMPTY };
        cell.1.get_or_init(|| decode_table(d.data, cell.0, &d.offsets).unwrap_or(Spans { first: 0, rest: Vec::new() }))
    }
}

/// Every zone name this build knows, sorted (`"Africa/Abidjan"` … `"Zulu"`).
pub fn names() -> impl Iterator<Item = &'static str> {
    db().into_iter().flat_map(|d| d.zones.iter().map(|z| z.0))
}

/// The IANA tzdb release the tables come from, and the chrono-tz version they were read from
/// (`"2025b (chrono-tz 0.10.4)"`).
#[must_use]
pub fn tzdb_version() -> &'static str {
    db().map_or("", |d| d.version)
}

/// Error of [`Tz::from_str`]: the name is not a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError;

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failed to parse timezone")
    }
}

impl std::error::Error for ParseError {}

impl FromStr for Tz {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let d = db().ok_or(ParseError)?;
        let i = d.zones.binary_search_by(|z| z.0.cmp(s)).map_err(|_| ParseError)?;
        u16::try_from(i).map(Tz).map_err(|_| ParseError)
    }
}

impl fmt::Debug for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The offset of a [`Tz`] at an instant: the total UTC offset (standard + DST) in seconds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TzOffset {
    tz: Tz,
    secs: i32,
}

impl Offset for TzOffset {
    fn fix(&self) -> FixedOffset {
        FixedOffset::east_opt(self.secs).unwrap_or_else(|| Utc.fix())
    }
}

impl fmt::Display for TzOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.fix(), f)
    }
}

impl fmt::Debug for TzOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl TimeZone for Tz {
    type Offset = TzOffset;

    fn from_offset(offset: &TzOffset) -> Self {
        offset.tz
    }

    /// As chrono-tz: the offset at the day's first instant, else at its last second.
    fn offset_from_local_date(&self, local: &NaiveDate) -> LocalResult<TzOffset> {
        let earliest = self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN));
        let latest = self.offset_from_local_datetime(&local.and_time(last_second()));
        match (earliest, latest) {
            (result @ LocalResult::Single(_), _) | (_, result @ LocalResult::Single(_)) => result,
            (LocalResult::Ambiguous(offset, _), _) | (_, LocalResult::Ambiguous(offset, _)) => {
                LocalResult::Single(offset)
            }
            (LocalResult::None, LocalResult::None) => LocalResult::None,
        }
    }

    /// chrono-tz's search: the span whose local range holds `local`, and a neighbour that also
    /// holds it makes the result ambiguous.
    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<TzOffset> {
        let t = local.and_utc().timestamp();
        let s = self.spans();
        let n = s.len();
        let at = |i: usize| TzOffset { tz: *self, secs: s.get(i) };
        match binary_search(n, |i| s.local_span(i).cmp(t)) {
            Ok(0) if n == 1 => LocalResult::Single(at(0)),
            Ok(0) if s.local_span(1).contains(t) => LocalResult::Ambiguous(at(0), at(1)),
            Ok(0) => LocalResult::Single(at(0)),
            Ok(i) if s.local_span(i - 1).contains(t) => LocalResult::Ambiguous(at(i - 1), at(i)),
            Ok(i) if i == n - 1 => LocalResult::Single(at(i)),
            Ok(i) if s.local_span(i + 1).contains(t) => LocalResult::Ambiguous(at(i), at(i + 1)),
            Ok(i) => LocalResult::Single(at(i)),
            Err(_) => LocalResult::None,
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> TzOffset {
        self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> TzOffset {
        let t = utc.and_utc().timestamp();
        let s = self.spans();
        // The span holding `t`: after every transition at or before `t`.
        let i = s.rest.partition_point(|&(at, _)| at <= t);
        TzOffset { tz: *self, secs: s.get(i) }
    }
}

fn last_second() -> NaiveTime {
    NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN)
}

/// One zone's offsets: `first` before the first transition, then `(transition instant, offset
/// from then on)`, in seconds.
struct Spans {
    first: i32,
    rest: Vec<(i64, i32)>,
}

/// A range of instants `[begin, end)`, open where `None` (chrono-tz's `Span`).
struct Span {
    begin: Option<i64>,
    end: Option<i64>,
}

impl Span {
    fn contains(&self, x: i64) -> bool {
        self.begin.is_none_or(|a| a <= x) && self.end.is_none_or(|b| x < b)
    }

    fn cmp(&self, x: i64) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        if self.contains(x) {
            Ordering::Equal
        } else if self.end.is_some_and(|b| b <= x) && self.begin.is_none_or(|a| a <= x) {
            Ordering::Less
        } else {
            Ordering::Greater
        }
    }
}

impl Spans {
    fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Offset of span `i` (0 = before the first transition).
    fn get(&self, i: usize) -> i32 {
        match i.checked_sub(1) {
            None => self.first,
            Some(j) => self.rest.get(j).map_or(self.first, |r| r.1),
        }
    }

    /// Span `i` in local time: its UTC bounds shifted by the offset in force before each bound,
    /// as chrono-tz computes it.
    fn local_span(&self, i: usize) -> Span {
        let begin = i.checked_sub(1).and_then(|j| self.rest.get(j)).map(|&(t, o)| t + i64::from(o));
        let end = self.rest.get(i).map(|&(t, _)| t + i64::from(self.get(i)));
        Span { begin, end }
    }
}

/// Binary search over `0..n` (chrono-tz's `binary_search`: the same probes, so the same answer
/// where local spans overlap).
fn binary_search(n: usize, mut f: impl FnMut(usize) -> std::cmp::Ordering) -> Result<usize, usize> {
    use std::cmp::Ordering;
    let (mut start, mut end) = (0, n);
    loop {
        let mid = start + (end - start) / 2;
        if mid == end {
            return Err(start);
        }
        match f(mid) {
            Ordering::Less => start = mid + 1,
            Ordering::Greater => end = mid,
            Ordering::Equal => return Ok(mid),
        }
    }
}

/// The decoded index of the tables: offsets, where each table starts, zone names.
struct Db {
    /// The inflated tables (kept for the life of the process, like a `static`).
    data: &'static [u8],
    version: &'static str,
    offsets: Vec<i32>,
    /// Start of each table in `data`, and the table once decoded.
    tables: Vec<(usize, OnceLock<Spans>)>,
    /// `(name, table index)`, sorted by name.
    zones: Vec<(&'static str, u16)>,
}

fn db() -> Option<&'static Db> {
    static DB: OnceLock<Option<Db>> = OnceLock::new();
    DB.get_or_init(read_db).as_ref()
}

/// A reader of the tables' varints; every read is checked (`None` past the end).
struct Reader {
    data: &'static [u8],
    pos: usize,
}

impl Reader {
    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.data.get(self.pos)?;
            self.pos += 1;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn signed(&mut self) -> Option<i64> {
        let z = self.varint()?;
        Some(unzigzag(z))
    }

    fn usize(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }

    fn str(&mut self) -> Option<&'static str> {
        let len = self.usize()?;
        let bytes = self.data.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        std::str::from_utf8(bytes).ok()
    }
}

fn unzigzag(z: u64) -> i64 {
    let half = i64::try_from(z >> 1).unwrap_or(i64::MAX);
    if z & 1 == 0 {
        half
    } else {
        -half - 1
    }
}

fn read_db() -> Option<Db> {
    let inflated = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(COMPRESSED, MAX_INFLATED).ok()?;
    let data: &'static [u8] = Box::leak(inflated.into_boxed_slice());
    let mut r = Reader { data, pos: 0 };
    if data.get(..5)? != b"MKTZ\x01" {
        return None;
    }
    r.pos = 5;
    let version = r.str()?;
    let offsets =
        (0..r.varint()?).map(|_| r.signed().and_then(|o| i32::try_from(o).ok())).collect::<Option<Vec<_>>>()?;
    let count = r.usize()?;
    let mut tables = Vec::with_capacity(count.min(data.len()));
    for _ in 0..count {
        tables.push((r.pos, OnceLock::new()));
        r.varint()?;
        for _ in 0..r.varint()? {
            r.varint()?;
            r.varint()?;
        }
    }
    let zones =
        (0..r.varint()?).map(|_| Some((r.str()?, u16::try_from(r.varint()?).ok()?))).collect::<Option<Vec<_>>>()?;
    Some(Db { data, version, offsets, tables, zones })
}

fn decode_table(data: &'static [u8], pos: usize, offsets: &[i32]) -> Option<Spans> {
    let mut r = Reader { data, pos };
    let offset = |i: usize| offsets.get(i).copied();
    let first = offset(r.usize()?)?;
    let n = r.usize()?;
    let mut rest = Vec::with_capacity(n.min(data.len()));
    let mut t = 0i64;
    for _ in 0..n {
        let d = r.varint()?;
        let delta = if d & 1 == 0 { unzigzag(d >> 1).checked_mul(60)? } else { unzigzag(d >> 1) };
        t = t.checked_add(delta)?;
        rest.push((t, offset(r.usize()?)?));
    }
    Some(Spans { first, rest })
}

#[cfg(test)]
mod tests;
