//! Written by scripts/generate-tz with tzdata.bin (tzdb 2025b): do not edit.

/// Position of `UTC` among the sorted zone names of tzdata.bin.
pub(super) const UTC_INDEX: u16 = 592;
