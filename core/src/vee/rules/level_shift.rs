//! `level_shift`: a lasting change of the series' level, found by a robust two-sided CUSUM
//! (a warning; the record is flagged).

use crate::decimal::fmt_decimal;
use crate::record::UsageRecord;
use crate::vee::rules::series::{dec, MIN_SCALE};
use crate::vee::rules::{expected_range, RuleParams, Series};
use crate::vee::{Action, Finding, Rule, Severity};

/// Level shift: a two-sided CUSUM (Page 1954) of standardised deviations from a reference, each
/// clipped to ±`cusum_clip` (Huber's robust CUSUM). The reference is the series' long-run mean
/// (exponentially weighted, weight 0.01) with its mean absolute deviation × 1.2533 (≈ σ for normal
/// data) as the unit; once the seasonal baseline is ready for the value's hour of the week and fits
/// the series better (its own mean absolute deviation is smaller), the seasonal level is the
/// reference instead. A finding when either sum exceeds `cusum_h` after warm-up; the sums then
/// restart.
pub(super) fn check(
    ser: &mut Series,
    rec: &UsageRecord,
    val: f64,
    seasonal_level: Option<f64>,
    cfg: &RuleParams,
    out: &mut Vec<Finding>,
) {
    const WEIGHT: f64 = 0.01;
    const SD_PER_MAD: f64 = 1.2533;
    if ser.seen == 0 {
        ser.mean = val;
        ser.mad = 0.0;
        return;
    }
    if cfg.cusum_h > 0.0 {
        if let Some(level) = seasonal_level {
            if ser.seasonal_mad > 0.0 {
                ser.seasonal_mad += WEIGHT * ((val - level).abs() - ser.seasonal_mad);
            } else {
                ser.seasonal_mad = ser.mad.max(MIN_SCALE);
            }
        }
        let (reference, sd) = match seasonal_level {
            Some(level) if ser.seasonal_mad < ser.mad => (level, (ser.seasonal_mad * SD_PER_MAD).max(MIN_SCALE)),
            _ => (ser.mean, (ser.mad * SD_PER_MAD).max(MIN_SCALE)),
        };
        let z = ((val - reference) / sd).clamp(-cfg.cusum_clip, cfg.cusum_clip);
        ser.cusum_hi = (ser.cusum_hi + z - cfg.cusum_k).max(0.0);
        ser.cusum_lo = (ser.cusum_lo - z - cfg.cusum_k).max(0.0);
        if ser.seen >= cfg.warmup && (ser.cusum_hi > cfg.cusum_h || ser.cusum_lo > cfg.cusum_h) {
            let up = ser.cusum_hi > cfg.cusum_h;
            let mut f = Finding::about(
                rec,
                Rule::LevelShift,
                Severity::Warning,
                Action::Flag,
                format!(
                    "The level has shifted {} its usual value {} (CUSUM {:.1} over the limit {}); \
                     check for a changed meter, a new load or a fault.",
                    if up { "above" } else { "below" },
                    dec(reference, 4).map_or_else(|| format!("{reference:e}"), fmt_decimal),
                    ser.cusum_hi.max(ser.cusum_lo),
                    cfg.cusum_h
                ),
            );
            f.expected = expected_range(reference - cfg.cusum_k * sd, reference + cfg.cusum_k * sd);
            f.score = dec(ser.cusum_hi.max(ser.cusum_lo), 2);
            out.push(f);
            ser.cusum_hi = 0.0;
            ser.cusum_lo = 0.0;
        }
    }
    ser.mad += WEIGHT * ((val - ser.mean).abs() - ser.mad);
    ser.mean += WEIGHT * (val - ser.mean);
}
