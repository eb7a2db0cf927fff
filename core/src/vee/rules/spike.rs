//! `spike` and `drop`: a value far from the median of the last N values (robust z over
//! 1.4826 × MAD), confirmed by leaving the seasonal band or the long-run range (warnings; the
//! record is flagged).

use crate::decimal::fmt_decimal;
use crate::record::UsageRecord;
use crate::vee::rules::series::{dec, MIN_SCALE};
use crate::vee::rules::{expected_range, RuleParams, Series};
use crate::vee::{Action, Finding, Rule, Severity};

/// Flags `val` as a spike or a drop once the ring is full; `band` is the seasonal band when ready.
pub(super) fn check(
    ser: &Series,
    rec: &UsageRecord,
    val: f64,
    band: Option<(f64, f64)>,
    cfg: &RuleParams,
    out: &mut Vec<Finding>,
) {
    if !cfg.spikes || (ser.len as usize) < ser.ring.len() {
        return;
    }
    let outside_confirm = match band {
        _ if !cfg.confirm => true,
        Some((lo, hi)) => val < lo || val > hi,
        None => val < ser.lo || val > ser.hi,
    };
    if !outside_confirm {
        return;
    }
    let (m, mad) = ser.median_mad();
    let scale = mad.max(cfg.min_scale_ratio * m.abs()).max(MIN_SCALE);
    let z = (val - m) / scale;
    // The long-run range is widened by one scale unit (or `range_margin` of its width when
    // larger), so that a value equal to a recent extreme (whose end has decayed a little since) is
    // still inside it. Outside the seasonal band is not enough on its own: the value must also
    // leave the long-run range, so that the bursts a series has always had stay quiet.
    let margin = scale.max(cfg.range_margin * (ser.hi - ser.lo));
    let outside_range = !cfg.confirm || val < ser.lo - margin || val > ser.hi + margin;
    if !outside_range || z.abs() <= cfg.threshold {
        return;
    }
    let (mut lo, mut hi) = (m - cfg.threshold * scale, m + cfg.threshold * scale);
    if cfg.confirm {
        let (clo, chi) = band.unwrap_or((ser.lo - margin, ser.hi + margin));
        lo = lo.min(clo).min(ser.lo - margin);
        hi = hi.max(chi).max(ser.hi + margin);
    }
    let mut f = finding(ser, rec, m, z, band.is_some(), cfg);
    f.expected = expected_range(lo, hi);
    f.score = dec(z, 2);
    out.push(f);
}

/// The spike or drop finding (its expected range and score are set by the caller).
fn finding(ser: &Series, rec: &UsageRecord, m: f64, z: f64, seasonal: bool, cfg: &RuleParams) -> Finding {
    let spike = z > 0.0;
    let against = if !cfg.confirm {
        ""
    } else if seasonal {
        seasonal_phrase(ser.interval)
    } else {
        " and outside the series' long-run range"
    };
    Finding::about(
        rec,
        if spike { Rule::Spike } else { Rule::Drop },
        Severity::Warning,
        Action::Flag,
        format!(
            "The value {} is {} the median {} of the last {} values (robust z = {:.1}){against}; \
             check the meter and the reading.",
            fmt_decimal(rec.quantity),
            if spike { "far above" } else { "far below" },
            dec(m, 4).map_or_else(|| format!("{m:e}"), fmt_decimal),
            ser.ring.len(),
            z
        ),
    )
}

/// The seasonal band's name for a series whose readings are `interval` seconds apart (0 while
/// its cadence is not established): the band is kept per hour of the week, which a reader
/// understands as "this hour of the week" for sub-daily readings, "this day of the week" for
/// daily ones, and only as the series' usual range for readings a week or more apart (each of
/// them falls in its own or in the same weekly slot).
pub(super) fn seasonal_phrase(interval: i64) -> &'static str {
    const DAY: i64 = 86_400;
    match interval {
        i if i < DAY => " and outside the usual range for this hour of the week",
        i if i < 7 * DAY => " and outside the usual range for this day of the week",
        _ => " and outside the usual range of the series' earlier readings",
    }
}

#[cfg(test)]
mod tests {
    use super::seasonal_phrase;

    #[test]
    fn the_seasonal_phrase_fits_the_series_resolution() {
        assert!(seasonal_phrase(0).ends_with("this hour of the week"));
        assert!(seasonal_phrase(900).ends_with("this hour of the week"));
        assert!(seasonal_phrase(3600).ends_with("this hour of the week"));
        assert!(seasonal_phrase(86_400).ends_with("this day of the week"));
        assert!(seasonal_phrase(604_800).ends_with("the series' earlier readings"));
        assert!(seasonal_phrase(2_592_000).ends_with("the series' earlier readings"));
    }
}
