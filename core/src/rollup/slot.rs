//! The [`Accumulator`](super::Accumulator)'s bucket state: 64 bytes of fixed-scale integers for
//! the common case, the public [`BucketState`] for everything else.
//!
//! A [`Slot`] holds sum, count, min, max, latest (quantity, instant, id) and the earliest
//! instant as `i64` mantissas with their scales, instants as `i64` nanoseconds and an id of at
//! most 8 bytes packed in a `u64` — no allocation, no 16-byte `Decimal` arithmetic. It holds
//! exactly the values [`BucketState::add`] would: a record is added in integers only when the
//! result is provably the one `BucketState::add` gives (see [`Slot::add`]); any other record (a
//! quality other than `actual`, a mantissa beyond `i64`, a sum reaching zero or leaving `i64`,
//! scales more than 9 apart, an instant outside `i64` nanoseconds, a spec counting distinct
//! values) first turns the slot into the equivalent `BucketState` ("full"), which then takes
//! that record and every later one through `BucketState::add`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{cmp_decimal, BucketState, Latest};
use crate::error::Result;
use crate::record::{Quality, UsageRecord};

/// 10^0 … 10^18 (aligning two `i64` mantissas in `i128` stays exact: 2^63 · 10^18 < 2^127).
const POW10: [i128; 19] = {
    let mut p = [1i128; 19];
    let mut i = 1;
    while i < 19 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// `meta` bits: four 5-bit scales (sum, min, max, latest), then the id's length (0–8 packed,
/// [`LONG_ID`] when kept in the accumulator's long-id list), then the "full" flag.
const SCALE_BITS: u32 = 5;
const SCALE_MASK: u32 = (1 << SCALE_BITS) - 1;
const SUM: u32 = 0;
const MIN: u32 = 5;
const MAX: u32 = 10;
const LATEST: u32 = 15;
const ID_SHIFT: u32 = 20;
const ID_MASK: u32 = 0xF << ID_SHIFT;
/// Id length marker: the id is `long_ids[id]`.
const LONG_ID: u32 = 0xF;
/// The slot is a `BucketState`: `full[sum]`.
const FULL: u32 = 1 << 31;

/// One bucket's state in 64 bytes (see the module documentation). An empty slot has count 0.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Slot {
    /// Sum mantissa at the sum's scale; when full, the index of the `BucketState`.
    sum: i64,
    min: i64,
    max: i64,
    latest: i64,
    /// Earliest instant, nanoseconds since the Unix epoch.
    first_ns: i64,
    /// The latest record's instant, nanoseconds since the Unix epoch.
    latest_ns: i64,
    /// The latest record's id: its bytes big-endian, zero-padded (≤ 8 bytes), or an index into
    /// the long ids.
    id: u64,
    count: u32,
    meta: u32,
}

/// The states that left the integer form and the ids longer than 8 bytes, shared by the slots
/// of one accumulator.
#[derive(Debug, Default)]
pub(super) struct Side {
    full: Vec<BucketState>,
    long_ids: Vec<String>,
}

/// What a slot needs of a record, computed once per record: its quantity as an `i64` mantissa
/// and scale, its instant in nanoseconds, its id packed when short.
#[derive(Debug, Clone, Copy)]
pub(super) struct Point {
    mantissa: i64,
    scale: u32,
    ns: i64,
    id: Option<u64>,
}

impl Point {
    /// `None` when the record cannot be added in integers at all: a quality other than `actual`,
    /// a mantissa beyond `i64`, a negative zero (its sign lives only in the decimal form), an
    /// instant outside `i64` nanoseconds or a leap second's.
    #[inline]
    pub(super) fn of(record: &UsageRecord) -> Option<Point> {
        if record.quality != Quality::Actual || record.timestamp.timestamp_subsec_nanos() >= 1_000_000_000 {
            return None;
        }
        let q = record.quantity;
        let mantissa = i64::try_from(q.mantissa()).ok()?;
        if mantissa == 0 && q.is_sign_negative() {
            return None;
        }
        let ns = record.timestamp.timestamp_nanos_opt()?;
        Some(Point { mantissa, scale: q.scale(), ns, id: pack(&record.id) })
    }
}

/// `id` packed big-endian and zero-padded, when at most 8 bytes. For such ids, comparing
/// `(packed, length)` orders them as their bytes do.
#[inline]
fn pack(id: &str) -> Option<u64> {
    let b = id.as_bytes();
    if b.len() > 8 {
        return None;
    }
    let mut buf = [0u8; 8];
    buf[..b.len()].copy_from_slice(b);
    Some(u64::from_be_bytes(buf))
}

/// Exact comparison of `a · 10^-sa` with `b · 10^-sb`.
#[inline]
fn cmp_scaled(a: i64, sa: u32, b: i64, sb: u32) -> std::cmp::Ordering {
    match POW10.get(sa.abs_diff(sb) as usize) {
        Some(&p) if sa >= sb => i128::from(a).cmp(&(i128::from(b) * p)),
        Some(&p) => (i128::from(a) * p).cmp(&i128::from(b)),
        None => cmp_decimal(dec(a, sa), dec(b, sb)),
    }
}

/// The decimal `m · 10^-scale` (`scale` ≤ 28: every scale here comes from a `Decimal`).
#[inline]
fn dec(m: i64, scale: u32) -> Decimal {
    // Cannot fail: scales are taken from decimals, which have at most 28.
    Decimal::try_new(m, scale).unwrap_or_default()
}

impl Slot {
    #[inline]
    fn scale(&self, at: u32) -> u32 {
        (self.meta >> at) & SCALE_MASK
    }

    #[inline]
    fn set_scale(&mut self, at: u32, s: u32) {
        self.meta = (self.meta & !(SCALE_MASK << at)) | (s << at);
    }

    #[inline]
    fn id_len(&self) -> u32 {
        (self.meta & ID_MASK) >> ID_SHIFT
    }

    /// The latest id's bytes (into `buf` when packed).
    fn latest_id<'a>(&self, side: &'a Side, buf: &'a mut [u8; 8]) -> &'a [u8] {
        match self.id_len() {
            LONG_ID => side.long_ids.get(self.id as usize).map_or(&[][..], |s| s.as_bytes()),
            n => {
                *buf = self.id.to_be_bytes();
                &buf[..n as usize]
            }
        }
    }

    /// Add `record` (with the distinct values of `unique`, which a spec counting them always
    /// has non-empty: such a slot is full from its first record); `point` is
    /// [`Point::of`]`(record)`, computed once for all the specs a record adds to.
    ///
    /// # Errors
    /// As [`BucketState::add`]; the slot is then unchanged in value.
    #[inline]
    pub(super) fn add<'a>(
        &mut self,
        side: &mut Side,
        record: &UsageRecord,
        point: Option<&Point>,
        mut unique: impl Iterator<Item = &'a str> + Clone,
    ) -> Result<()> {
        if let Some(p) = point {
            if self.meta & FULL == 0 && unique.clone().next().is_none() && self.add_integer(side, record, p).is_some() {
                return Ok(());
            }
        }
        let i = self.make_full(side);
        side.full[i].add(record, &mut unique)
    }

    /// The integer form of [`BucketState::add`]; `None` (and the slot untouched) when the result
    /// would not be the one it gives. `BucketState::add` sums with `exact_add`, whose fast path
    /// returns the mantissas aligned at the larger scale when the scales are at most 9 apart and
    /// the sum is non-zero and fits in 96 bits; here the sum must also fit in `i64`.
    #[inline]
    fn add_integer(&mut self, side: &mut Side, record: &UsageRecord, p: &Point) -> Option<()> {
        let (qm, qs, ts) = (p.mantissa, p.scale, p.ns);
        let ss = self.scale(SUM);
        let diff = ss.abs_diff(qs);
        if diff > 9 {
            return None;
        }
        let pow = POW10[diff as usize];
        let sum = if ss >= qs {
            i128::from(self.sum) + i128::from(qm) * pow
        } else {
            i128::from(self.sum) * pow + i128::from(qm)
        };
        let sum = i64::try_from(sum).ok().filter(|&s| s != 0)?;
        let count = self.count.checked_add(1).filter(|&c| c != u32::MAX)?;
        // Everything checked: now change the slot.
        self.sum = sum;
        self.set_scale(SUM, ss.max(qs));
        if self.count == 0 {
            (self.min, self.max, self.first_ns) = (qm, qm, ts);
            self.set_scale(MIN, qs);
            self.set_scale(MAX, qs);
            self.set_latest(side, record, p.id, ts, qm, qs);
        } else {
            self.first_ns = self.first_ns.min(ts);
            // Ties keep the current value (as `BucketState::add`).
            if cmp_scaled(qm, qs, self.min, self.scale(MIN)).is_lt() {
                self.min = qm;
                self.set_scale(MIN, qs);
            }
            if cmp_scaled(qm, qs, self.max, self.scale(MAX)).is_gt() {
                self.max = qm;
                self.set_scale(MAX, qs);
            }
            let newer = match ts.cmp(&self.latest_ns) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => match (p.id, self.id_len()) {
                    (Some(packed), n) if n != LONG_ID => (packed, record.id.len() as u32) > (self.id, n),
                    _ => {
                        let mut buf = [0u8; 8];
                        record.id.as_bytes() > self.latest_id(side, &mut buf)
                    }
                },
            };
            if newer {
                self.set_latest(side, record, p.id, ts, qm, qs);
            }
        }
        self.count = count;
        Some(())
    }

    fn set_latest(&mut self, side: &mut Side, record: &UsageRecord, packed: Option<u64>, ts: i64, qm: i64, qs: u32) {
        (self.latest, self.latest_ns) = (qm, ts);
        self.set_scale(LATEST, qs);
        let len = match packed {
            Some(p) => {
                self.id = p;
                record.id.len() as u32
            }
            None => {
                // Reuse this slot's long id (and its allocation) if it has one.
                if self.id_len() == LONG_ID {
                    if let Some(s) = side.long_ids.get_mut(self.id as usize) {
                        s.clone_from(&record.id);
                    }
                } else {
                    self.id = side.long_ids.len() as u64;
                    side.long_ids.push(record.id.clone());
                }
                LONG_ID
            }
        };
        self.meta = (self.meta & !ID_MASK) | (len << ID_SHIFT);
    }

    /// Turn the slot into its `BucketState` (kept in `side`); its index there.
    fn make_full(&mut self, side: &mut Side) -> usize {
        if self.meta & FULL != 0 {
            return self.sum as usize;
        }
        let state = self.state(side);
        side.full.push(state);
        *self = Slot { sum: (side.full.len() - 1) as i64, meta: FULL, ..Slot::default() };
        self.sum as usize
    }

    /// The state this slot holds, exactly as `BucketState::add` would have built it (a full
    /// one is moved out of `side`: call once per slot).
    pub(super) fn take_state(&self, side: &mut Side) -> BucketState {
        if self.meta & FULL != 0 {
            return side.full.get_mut(self.sum as usize).map(std::mem::take).unwrap_or_default();
        }
        self.state(side)
    }

    /// The state this slot holds, exactly as `BucketState::add` would have built it.
    pub(super) fn state(&self, side: &Side) -> BucketState {
        if self.meta & FULL != 0 {
            return side.full.get(self.sum as usize).cloned().unwrap_or_default();
        }
        if self.count == 0 {
            return BucketState::default();
        }
        let at = |ns: i64| DateTime::<Utc>::from_timestamp_nanos(ns);
        let mut buf = [0u8; 8];
        let id = String::from_utf8_lossy(self.latest_id(side, &mut buf)).into_owned();
        BucketState {
            sum: dec(self.sum, self.scale(SUM)),
            count: u64::from(self.count),
            min: Some(dec(self.min, self.scale(MIN))),
            max: Some(dec(self.max, self.scale(MAX))),
            latest: Some(Latest { timestamp: at(self.latest_ns), id, quantity: dec(self.latest, self.scale(LATEST)) }),
            first_at: Some(at(self.first_ns)),
            ..BucketState::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    /// A state as text: every decimal with its scale, every field.
    fn text(s: &BucketState) -> String {
        serde_json::to_string(s).unwrap()
    }

    fn record() -> impl Strategy<Value = UsageRecord> {
        let mantissa = prop_oneof![
            4 => -1000i64..1000,
            2 => any::<i64>(),
            1 => Just(0i64),
            1 => (any::<u64>(), any::<u32>()).prop_map(|(lo, hi)| i64::try_from(((i128::from(hi) << 64) | i128::from(lo)) % (1i128 << 95)).unwrap_or(i64::MAX)),
        ];
        let scale = prop_oneof![4 => 0u32..4, 1 => 0u32..=28];
        let id = prop_oneof![
            3 => (0u32..50).prop_map(|i| format!("r{i}")),
            1 => (0u32..50).prop_map(|i| format!("long-identifier-{i}")),
            1 => Just("a\0".to_string()),
            1 => Just("a".to_string()),
        ];
        let quality =
            prop_oneof![8 => Just(Quality::Actual), 1 => Just(Quality::Flagged), 1 => Just(Quality::Estimated)];
        let at = prop_oneof![
            6 => (0i64..20, 0u32..3).prop_map(|(s, n)| Utc.timestamp_opt(1_700_000_000 + s, n).unwrap()),
            1 => Just(Utc.with_ymd_and_hms(1500, 1, 1, 0, 0, 0).unwrap()),
        ];
        (mantissa, scale, id, quality, at).prop_map(|(m, s, id, quality, at)| {
            let mut q = Decimal::try_new(m, s).unwrap_or(Decimal::ONE);
            if m == 0 && s % 2 == 1 {
                q.set_sign_negative(true); // a negative zero
            }
            let mut r = UsageRecord::new("t", id, "s", "m", q, at);
            r.quality = quality;
            r
        })
    }

    proptest! {
        /// A slot holds exactly what `BucketState::add` builds, scales and ids included, for any
        /// sequence of records (mixed scales, zero sums, huge mantissas, qualities, long and
        /// short ids, equal instants, instants outside the nanosecond range); an error leaves the
        /// slot's value unchanged as it leaves the state's.
        #[test]
        fn slot_equals_bucket_state(records in proptest::collection::vec(record(), 1..40)) {
            let mut side = Side::default();
            let mut slot = Slot::default();
            let mut state = BucketState::default();
            for r in &records {
                let want = state.add(r, std::iter::empty());
                let got = slot.add(&mut side, r, Point::of(r).as_ref(), std::iter::empty());
                prop_assert_eq!(want.is_ok(), got.is_ok());
                prop_assert_eq!(text(&slot.state(&side)), text(&state));
            }
        }
    }

    #[test]
    fn a_slot_is_64_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 64);
    }

    #[test]
    fn packed_ids_order_as_their_bytes() {
        let ids = ["", "a", "a\0", "a\0\0", "ab", "b", "r10", "r9", "zzzzzzzz"];
        for a in ids {
            for b in ids {
                let (pa, pb) = (pack(a).unwrap(), pack(b).unwrap());
                assert_eq!((pa, a.len()).cmp(&(pb, b.len())), a.as_bytes().cmp(b.as_bytes()), "{a:?} {b:?}");
            }
        }
    }
}
