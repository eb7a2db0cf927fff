//! The compact binary forms of schema version 2: record bodies, bucket group keys and bucket
//! states. Integers are LEB128 varints (signed ones zigzag-coded), decimals are their exact
//! `(mantissa, scale)` pair, strings a varint length and UTF-8 bytes, and the strings that repeat
//! (dimension keys and values, group values) are ids of the `strings` dictionary table.

use chrono::{DateTime, Utc};
use meterkit::{
    record::Dimensions, record::Quality, rollup::BucketState, rollup::Latest, Decimal, Error, ErrorKind, Result,
};

/// A stored value that does not decode (a corrupt or foreign file).
pub(crate) fn corrupt(what: &str) -> Error {
    Error::new(ErrorKind::Store, format!("A stored {what} is corrupt (not meterkit's schema version 2 form)."))
}

/// Appends varints, decimals and strings to a byte buffer.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }

    fn u128(&mut self, mut v: u128) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    pub(crate) fn dec(&mut self, d: Decimal) {
        self.0.push(d.scale() as u8);
        let m = d.mantissa();
        self.u128(((m << 1) ^ (m >> 127)) as u128);
    }

    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn ts(&mut self, t: DateTime<Utc>) {
        self.i64(t.timestamp());
        self.u64(u64::from(t.timestamp_subsec_nanos()));
    }
}

/// Reads what [`Writer`] wrote; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, what }
    }

    fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self.bytes.split_first().ok_or_else(|| corrupt(self.what))?;
        self.bytes = rest;
        Ok(b)
    }

    fn u128(&mut self) -> Result<u128> {
        let mut v = 0u128;
        for shift in (0..128).step_by(7) {
            let b = self.byte()?;
            v |= u128::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(corrupt(self.what))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        u64::try_from(self.u128()?).map_err(|_| corrupt(self.what))
    }

    pub(crate) fn i64(&mut self) -> Result<i64> {
        let z = self.u64()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    pub(crate) fn dec(&mut self) -> Result<Decimal> {
        let scale = u32::from(self.byte()?);
        let z = self.u128()?;
        let m = ((z >> 1) as i128) ^ -((z & 1) as i128);
        Decimal::try_from_i128_with_scale(m, scale).map_err(|_| corrupt(self.what))
    }

    fn str(&mut self) -> Result<String> {
        let n = usize::try_from(self.u64()?).map_err(|_| corrupt(self.what))?;
        if n > self.bytes.len() {
            return Err(corrupt(self.what));
        }
        let (s, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        String::from_utf8(s.to_vec()).map_err(|_| corrupt(self.what))
    }

    fn ts(&mut self) -> Result<DateTime<Utc>> {
        let secs = self.i64()?;
        let nanos = u32::try_from(self.u64()?).map_err(|_| corrupt(self.what))?;
        DateTime::from_timestamp(secs, nanos).ok_or_else(|| corrupt(self.what))
    }

    pub(crate) fn at_end(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn done(&self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(corrupt(self.what))
        }
    }
}

fn quality_code(q: Quality) -> u8 {
    match q {
        Quality::Actual => 0,
        Quality::Flagged => 1,
        Quality::Estimated => 2,
    }
}

fn quality_of(code: u8, what: &'static str) -> Result<Quality> {
    match code {
        0 => Ok(Quality::Actual),
        1 => Ok(Quality::Flagged),
        2 => Ok(Quality::Estimated),
        _ => Err(corrupt(what)),
    }
}

/// A record's body (what is not a column): `flags` (bit 0: `end` present, bits 1–2: quality),
/// quantity, `end`, then the dimensions as pairs of dictionary ids. `intern` gives a string's id.
pub(crate) fn record_body(
    quantity: Decimal,
    end: Option<DateTime<Utc>>,
    quality: Quality,
    dims: &Dimensions,
    mut intern: impl FnMut(&str) -> Result<i64>,
) -> Result<Vec<u8>> {
    let mut w = Writer(Vec::with_capacity(8 + dims.len() * 4));
    w.0.push(u8::from(end.is_some()) | (quality_code(quality) << 1));
    w.dec(quantity);
    if let Some(end) = end {
        w.ts(end);
    }
    w.u64(dims.len() as u64);
    for (k, v) in dims {
        w.i64(intern(k)?);
        w.i64(intern(v)?);
    }
    Ok(w.0)
}

/// Whether `body` holds `quantity` (equal value, any scale), `end` and `dims` (in key order) — what
/// [`UsageRecord::same_content`](meterkit::UsageRecord::same_content) compares of a body (not the
/// quality) — read in place: no string or map is built; `is(id, s)` tells whether a dictionary id
/// is the string `s`. `false` may also mean a body written in another order than
/// [`record_body`]'s (the caller then decodes the record to be sure).
///
/// # Errors
/// [`ErrorKind::Store`] when the body does not decode (a corrupt file) or `is` fails.
pub(crate) fn body_matches<'d>(
    body: &[u8],
    quantity: Decimal,
    end: Option<DateTime<Utc>>,
    dims: impl ExactSizeIterator<Item = (&'d str, &'d str)>,
    mut is: impl FnMut(i64, &str) -> Result<bool>,
) -> Result<bool> {
    const WHAT: &str = "record";
    let mut r = Reader::new(body, WHAT);
    let flags = r.byte()?;
    quality_of(flags >> 1, WHAT)?;
    if r.dec()? != quantity {
        return Ok(false);
    }
    let stored_end = if flags & 1 == 1 { Some(r.ts()?) } else { None };
    if stored_end != end || r.u64()? != dims.len() as u64 {
        return Ok(false);
    }
    for (k, v) in dims {
        if !is(r.i64()?, k)? || !is(r.i64()?, v)? {
            return Ok(false);
        }
    }
    Ok(r.at_end())
}

/// The decoded body: `(quantity, end, quality, dimensions)`; `name` resolves a dictionary id.
pub(crate) fn read_record_body(
    body: &[u8],
    mut name: impl FnMut(i64) -> Result<String>,
) -> Result<(Decimal, Option<DateTime<Utc>>, Quality, Dimensions)> {
    const WHAT: &str = "record";
    let mut r = Reader::new(body, WHAT);
    let flags = r.byte()?;
    let quantity = r.dec()?;
    let end = if flags & 1 == 1 { Some(r.ts()?) } else { None };
    let quality = quality_of(flags >> 1, WHAT)?;
    let n = r.u64()?;
    let mut dims = Dimensions::new();
    for _ in 0..n {
        let k = name(r.i64()?)?;
        let v = name(r.i64()?)?;
        dims.insert(k, v);
    }
    r.done()?;
    Ok((quantity, end, quality, dims))
}

/// A bucket's group key: the number of values, then each as `0` (none) or its dictionary id + 1.
pub(crate) fn group_blob(
    group: &[Option<String>],
    mut id: impl FnMut(&str) -> Result<Option<i64>>,
) -> Result<Option<Vec<u8>>> {
    let mut w = Writer(Vec::with_capacity(1 + group.len() * 3));
    w.u64(group.len() as u64);
    for value in group {
        match value {
            None => w.u64(0),
            Some(s) => match id(s)? {
                Some(i) => w.u64(i as u64 + 1),
                None => return Ok(None),
            },
        }
    }
    Ok(Some(w.0))
}

/// The group key [`group_blob`] wrote.
pub(crate) fn read_group(blob: &[u8], mut name: impl FnMut(i64) -> Result<String>) -> Result<Vec<Option<String>>> {
    let mut r = Reader::new(blob, "bucket group");
    let n = r.u64()?;
    let mut group = Vec::with_capacity(n.min(64) as usize);
    for _ in 0..n {
        group.push(match r.u64()? {
            0 => None,
            i => Some(name(i as i64 - 1)?),
        });
    }
    r.done()?;
    Ok(group)
}

/// A bucket state: every field of [`BucketState`] in declaration order (a field added to the
/// core type fails to compile here, so it cannot be silently dropped).
pub(crate) fn state_blob(state: &BucketState) -> Vec<u8> {
    let BucketState {
        sum,
        count,
        min,
        max,
        latest,
        uniques,
        flagged_count,
        flagged_sum,
        estimated_count,
        estimated_sum,
        first_at,
    } = state;
    let mut w = Writer(Vec::with_capacity(32));
    w.dec(*sum);
    w.u64(*count);
    for d in [min, max] {
        match d {
            Some(d) => {
                w.0.push(1);
                w.dec(*d);
            }
            None => w.0.push(0),
        }
    }
    match latest {
        Some(l) => {
            w.0.push(1);
            w.ts(l.timestamp);
            w.str(&l.id);
            w.dec(l.quantity);
        }
        None => w.0.push(0),
    }
    w.u64(uniques.len() as u64);
    for (k, values) in uniques {
        w.str(k);
        w.u64(values.len() as u64);
        for v in values {
            w.str(v);
        }
    }
    w.u64(*flagged_count);
    w.dec(*flagged_sum);
    w.u64(*estimated_count);
    w.dec(*estimated_sum);
    // Appended field (meterkit 0.2): a state written before it ends at `estimated_sum`, and reads
    // back with `first_at` unknown (`None`), so older files stay readable without a migration.
    if let Some(t) = first_at {
        w.0.push(1);
        w.ts(*t);
    }
    w.0
}

/// The state [`state_blob`] wrote.
pub(crate) fn read_state(blob: &[u8]) -> Result<BucketState> {
    let mut r = Reader::new(blob, "bucket state");
    let sum = r.dec()?;
    let count = r.u64()?;
    let opt = |r: &mut Reader<'_>| -> Result<Option<Decimal>> {
        if r.byte()? == 1 {
            r.dec().map(Some)
        } else {
            Ok(None)
        }
    };
    let min = opt(&mut r)?;
    let max = opt(&mut r)?;
    let latest =
        if r.byte()? == 1 { Some(Latest { timestamp: r.ts()?, id: r.str()?, quantity: r.dec()? }) } else { None };
    let mut uniques = std::collections::BTreeMap::new();
    for _ in 0..r.u64()? {
        let k = r.str()?;
        let mut set = std::collections::BTreeSet::new();
        for _ in 0..r.u64()? {
            set.insert(r.str()?);
        }
        uniques.insert(k, set);
    }
    let state = BucketState {
        sum,
        count,
        min,
        max,
        latest,
        uniques,
        flagged_count: r.u64()?,
        flagged_sum: r.dec()?,
        estimated_count: r.u64()?,
        estimated_sum: r.dec()?,
        first_at: if r.at_end() {
            None
        } else if r.byte()? == 1 {
            Some(r.ts()?)
        } else {
            return Err(corrupt("bucket state"));
        },
    };
    r.done()?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_integers_round_trip_exactly() {
        for s in
            ["0", "-0.000", "1.50", "79228162514264337593543950335", "-7.9228162514264337593543950335", "12345.678"]
        {
            let d: Decimal = s.parse().unwrap();
            let mut w = Writer::default();
            w.dec(d);
            w.i64(i64::MIN);
            w.i64(-1);
            w.u64(u64::MAX);
            let mut r = Reader::new(&w.0, "t");
            assert_eq!(r.dec().unwrap().to_string(), d.to_string());
            assert_eq!((r.i64().unwrap(), r.i64().unwrap(), r.u64().unwrap()), (i64::MIN, -1, u64::MAX));
            r.done().unwrap();
        }
    }

    #[test]
    fn truncated_or_trailing_bytes_are_errors_not_panics() {
        let mut state = BucketState::default();
        state.merge(&BucketState { sum: Decimal::new(15, 1), count: 1, ..BucketState::default() }).unwrap();
        state.uniques.entry("carrier".into()).or_default().insert("acme".into());
        let blob = state_blob(&state);
        assert_eq!(read_state(&blob).unwrap(), state);
        for n in 0..blob.len() {
            assert!(read_state(&blob[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(read_state(&longer).is_err());
        assert!(read_group(&[0xff; 30], |_| Ok(String::new())).is_err());
    }

    /// `first_at` is appended: a state with it round-trips; the same state written before the
    /// field existed (the blob without its last bytes) reads back with `first_at` unknown, and
    /// every other prefix is an error.
    #[test]
    fn first_at_round_trips_and_older_states_read_as_unknown() {
        let at = DateTime::from_timestamp(1_704_067_200, 500).unwrap();
        let mut state =
            BucketState { sum: Decimal::new(15, 1), count: 1, first_at: Some(at), ..BucketState::default() };
        state.flagged_count = 1;
        let blob = state_blob(&state);
        assert_eq!(read_state(&blob).unwrap(), state);
        let old = state_blob(&BucketState { first_at: None, ..state.clone() });
        assert_eq!(read_state(&old).unwrap().first_at, None);
        assert_eq!(&blob[..old.len()], &old[..]);
        for n in 0..blob.len() {
            if n != old.len() {
                assert!(read_state(&blob[..n]).is_err(), "prefix of {n} bytes");
            }
        }
    }
}
