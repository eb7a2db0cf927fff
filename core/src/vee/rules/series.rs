//! The streaming state of one series — the ring of the last N values, the long-run range, the
//! cadence, the streak counters and the hour-of-week seasonal baseline — and the numeric helpers
//! the statistical rules share.

use rust_decimal::Decimal;

use crate::vee::MAX_WINDOW;

/// Seconds of a week, and of the Monday 1970-01-05 (the epoch was a Thursday).
pub(super) const WEEK: i64 = 604_800;
pub(super) const FIRST_MONDAY: i64 = 345_600;
/// Slots of the seasonal baseline: the hours of a week.
pub(super) const SLOTS: usize = 168;
/// 1.4826 × MAD estimates the standard deviation of normal data.
pub(super) const MAD_SCALE: f64 = 1.4826;
/// A scale below this is treated as this (a zero MAD over zero values).
pub(super) const MIN_SCALE: f64 = 1e-9;

/// One hour-of-week slot of the seasonal baseline.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::vee) struct Slot {
    pub(super) level: f32,
    pub(super) spread: f32,
    pub(super) values: u16,
    pub(super) weeks: u16,
    pub(super) last_week: i32,
}

/// The streaming state of one series (tenant, subject, metric).
#[derive(Debug, Clone)]
pub(in crate::vee) struct Series {
    /// The last N values (ring).
    pub(super) ring: Box<[f64]>,
    pub(super) head: u16,
    pub(super) len: u16,
    /// Long-run range.
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) seen: u64,
    /// Last timestamp (seconds) and value.
    pub(super) last_ts: i64,
    pub(super) last_value: Decimal,
    /// Cadence: established interval, candidate and its confirmations.
    pub(super) interval: i64,
    pub(super) candidate: i64,
    pub(super) confirmations: u32,
    /// Repeats of the last value, zeros in a row.
    pub(super) run: u32,
    pub(super) zeros: u32,
    pub(super) seasonal: Option<Box<[Slot; SLOTS]>>,
    /// Histogram of the seasonal scores (allocated with the seasonal slots).
    pub(super) scores: Option<Box<ScoreHistogram>>,
    /// Level-shift CUSUM: long-run mean, mean absolute deviation, upper and lower sums.
    pub(super) mean: f64,
    pub(super) mad: f64,
    /// Gaps seen.
    pub(super) gaps: u32,
    /// Mean absolute deviation from the seasonal level (0 until the seasonal baseline is ready).
    pub(super) seasonal_mad: f64,
    pub(super) cusum_hi: f64,
    pub(super) cusum_lo: f64,
    /// Values equal to the previous non-zero value, zeros, and whether the current run was reported.
    pub(super) repeats: u64,
    pub(super) zero_count: u64,
    pub(super) stuck_done: bool,
    pub(super) zeros_done: bool,
}

/// Histogram of |seasonal score| in bins 0.25 wide (the last bin holds everything from 31.75).
#[derive(Debug, Clone)]
pub(in crate::vee) struct ScoreHistogram {
    pub(super) bins: [u32; SCORE_BINS],
    pub(super) n: u32,
}

pub(super) const SCORE_BINS: usize = 128;

impl ScoreHistogram {
    pub(super) fn add(&mut self, z: f64) {
        let b = ((z.abs() * 4.0) as usize).min(SCORE_BINS - 1);
        self.bins[b] = self.bins[b].saturating_add(1);
        self.n = self.n.saturating_add(1);
    }

    /// The upper edge of the first bin (from the top) above which more than `q` of the scores lie.
    pub(super) fn quantile(&self, q: f64) -> f64 {
        let allowed = (q * f64::from(self.n)) as u32;
        let mut above = 0u32;
        for b in (0..SCORE_BINS).rev() {
            above = above.saturating_add(self.bins[b]);
            if above > allowed {
                return (b + 1) as f64 / 4.0;
            }
        }
        0.0
    }
}

impl Series {
    pub(in crate::vee) fn new(n: usize) -> Self {
        Series {
            ring: vec![0.0; n].into_boxed_slice(),
            head: 0,
            len: 0,
            lo: 0.0,
            hi: 0.0,
            seen: 0,
            last_ts: i64::MIN,
            last_value: Decimal::ZERO,
            interval: 0,
            candidate: 0,
            confirmations: 0,
            run: 0,
            zeros: 0,
            seasonal: None,
            scores: None,
            mean: 0.0,
            mad: 0.0,
            gaps: 0,
            seasonal_mad: 0.0,
            cusum_hi: 0.0,
            cusum_lo: 0.0,
            repeats: 0,
            zero_count: 0,
            stuck_done: false,
            zeros_done: false,
        }
    }

    pub(super) fn push(&mut self, x: f64) {
        let n = self.ring.len();
        self.ring[self.head as usize] = x;
        self.head += 1;
        if self.head as usize >= n {
            self.head = 0;
        }
        if (self.len as usize) < n {
            self.len += 1;
        }
    }

    /// Median and 1.4826 × MAD of the ring.
    pub(super) fn median_mad(&self) -> (f64, f64) {
        let mut buf = [0.0f64; MAX_WINDOW];
        let n = self.len as usize;
        buf[..n].copy_from_slice(&self.ring[..n]);
        let m = median(&mut buf[..n]);
        for v in &mut buf[..n] {
            *v = (*v - m).abs();
        }
        (m, median(&mut buf[..n]) * MAD_SCALE)
    }
}

pub(super) fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    let (left, mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let mid = *mid;
    if n % 2 == 1 {
        mid
    } else {
        let lower = left.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        f64::midpoint(lower, mid)
    }
}

/// Decimal → f64 for the statistics: the mantissa divided by an exact power of ten (correctly
/// rounded for mantissas below 2^53 and scales up to 22; within a few ulps otherwise).
#[inline]
pub(super) fn to_f64(d: Decimal) -> f64 {
    const POW10: [f64; 29] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28,
    ];
    let m = d.mantissa();
    let mf = i64::try_from(m).map_or_else(|_| m as f64, |m| m as f64);
    mf / POW10[(d.scale() as usize).min(28)]
}

/// Exact equality of two decimals, fast when they have the same scale (the usual case).
#[inline]
pub(super) fn same_value(a: Decimal, b: Decimal) -> bool {
    if a.scale() == b.scale() {
        a.mantissa() == b.mantissa()
    } else {
        a == b
    }
}

/// f64 → Decimal rounded to `dp` places (bounds and scores only; never a billed amount);
/// `None` outside the decimal range.
pub(super) fn dec(x: f64, dp: u32) -> Option<Decimal> {
    Decimal::from_f64_retain(x).map(|d| d.round_dp(dp).normalize())
}

/// Approximate bytes of state per tracked series for window `n` (see
/// [`Validator::bytes_per_series`](crate::vee::Validator::bytes_per_series)).
pub(in crate::vee) fn bytes_per_series(n: usize, seasonal: bool) -> usize {
    std::mem::size_of::<(String, String, String, Series)>()
        + n * std::mem::size_of::<f64>()
        + if seasonal { std::mem::size_of::<[Slot; SLOTS]>() + std::mem::size_of::<ScoreHistogram>() } else { 0 }
}

impl Series {
    /// Adds a value to the history: the long-run range (its ends decay towards each other by
    /// `range_decay` of its width per value), the ring, the count and the last timestamp and value.
    pub(super) fn remember(&mut self, ts: i64, qty: Decimal, val: f64, range_decay: f64) {
        if self.seen == 0 {
            self.lo = val;
            self.hi = val;
        } else {
            let w = (self.hi - self.lo) * range_decay;
            self.hi = val.max(self.hi - w);
            self.lo = val.min(self.lo + w);
        }
        self.push(val);
        self.seen += 1;
        self.last_ts = ts;
        self.last_value = qty;
    }
}
