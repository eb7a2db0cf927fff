//! Benchmarks live in `benches/`; this library holds their deterministic data generators so
//! that they can be unit-tested and reused.

use chrono::{DateTime, Utc};
use meterkit::{Decimal, UsageRecord};

/// Carriers of the synthetic data set.
pub const CARRIERS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];
/// Regions of the synthetic data set.
pub const REGIONS: [&str; 5] = ["north", "south", "east", "west", "central"];
/// Directions of the synthetic data set.
pub const DIRECTIONS: [&str; 2] = ["up", "down"];

/// One synthetic usage record in compact form (24 bytes), expanded to a [`UsageRecord`] by
/// [`Synth::record`]. Ten million of these take 240 MB; ten million full records would take
/// several GB, so benchmarks keep the compact set and expand chunks outside the timed code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synth {
    /// Sequence number (the record id is `r{seq}`).
    pub seq: u32,
    /// Subject index (`sim-{subject}`).
    pub subject: u32,
    /// Seconds since [`Synth::EPOCH`].
    pub offset_secs: u32,
    /// Quantity mantissa.
    pub mantissa: u32,
    /// Quantity scale (0–3).
    pub scale: u8,
    /// Direction index.
    pub direction: u8,
}

impl Synth {
    /// Start of the synthetic period: 2024-03-01T00:00:00Z (the period spans the UK's
    /// 31 March DST change).
    pub const EPOCH: i64 = 1_709_251_200;

    /// The record's carrier (fixed per subject).
    pub fn carrier(&self) -> &'static str {
        CARRIERS[(self.subject as usize) % CARRIERS.len()]
    }

    /// The record's region (fixed per subject).
    pub fn region(&self) -> &'static str {
        REGIONS[(self.subject as usize / CARRIERS.len()) % REGIONS.len()]
    }

    /// The timestamp.
    pub fn timestamp(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(Self::EPOCH + i64::from(self.offset_secs), 0).unwrap_or_default()
    }

    /// The full usage record of tenant `t`, metric `bytes`.
    pub fn record(&self) -> UsageRecord {
        UsageRecord::new(
            "t",
            format!("r{}", self.seq),
            format!("sim-{}", self.subject),
            "bytes",
            Decimal::new(i64::from(self.mantissa), u32::from(self.scale)),
            self.timestamp(),
        )
        .with_dimension("carrier", self.carrier())
        .with_dimension("region", self.region())
        .with_dimension("direction", DIRECTIONS[self.direction as usize])
    }
}

/// A deterministic generator (splitmix64).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; slight modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `n` synthetic records over `days` days from [`Synth::EPOCH`], `subjects` subjects:
/// timestamps increase with the sequence number plus up to 5 minutes of jitter (mostly in order,
/// as live ingest is), quantities are decimals with 0–3 fractional digits.
pub fn synth(n: usize, subjects: u32, days: u32, seed: u64) -> Vec<Synth> {
    let mut rng = SplitMix::new(seed);
    let span = u64::from(days) * 86_400;
    (0..n)
        .map(|i| {
            let base = (i as u64 * span) / n.max(1) as u64;
            let offset = (base + rng.below(300)).min(span - 1);
            Synth {
                seq: i as u32,
                subject: rng.below(u64::from(subjects)) as u32,
                offset_secs: offset as u32,
                mantissa: 1 + rng.below(10_000_000) as u32,
                scale: rng.below(4) as u8,
                direction: rng.below(2) as u8,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synth_is_deterministic_and_in_range() {
        let a = synth(1000, 10, 30, 7);
        assert_eq!(a, synth(1000, 10, 30, 7));
        assert_ne!(a, synth(1000, 10, 30, 8));
        assert!(a.iter().all(|s| s.subject < 10 && s.offset_secs < 30 * 86_400 && s.scale < 4));
        let r = a[5].record();
        assert_eq!(r.id, "r5");
        assert_eq!(r.dimensions.len(), 3);
        assert!(r.check().is_ok());
    }
}
