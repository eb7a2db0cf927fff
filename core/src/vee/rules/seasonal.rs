//! The seasonal baseline: per hour of the week (in the metric's time zone), an exponentially
//! weighted level and spread. It is not a rule of its own: it gives [`spike`](super::spike) its
//! confirming band and [`level_shift`](super::level_shift) its reference once ready.

use crate::time::Tz;
use crate::vee::rules::series::{ScoreHistogram, Slot, FIRST_MONDAY, MAD_SCALE, MIN_SCALE, SCORE_BINS, SLOTS, WEEK};
use crate::vee::rules::{RuleParams, Series};

/// The hour-of-week slot of a record and the week it falls in (both 0 without a seasonal baseline).
#[derive(Debug, Clone, Copy)]
pub(super) struct SlotOf {
    how: usize,
    week: i64,
}

impl SlotOf {
    /// The slot of the instant `ts` (seconds) in the local time of `tz` (`utc` skips the lookup).
    pub(super) fn new(ts: i64, cfg: &RuleParams, tz: Tz, utc: bool) -> Self {
        if !cfg.seasonal {
            return SlotOf { how: 0, week: 0 };
        }
        let local = if utc { ts } else { ts + crate::time::offset_at(tz, ts) };
        let k = local - FIRST_MONDAY;
        SlotOf { how: (k.rem_euclid(WEEK) / 3600) as usize, week: k.div_euclid(WEEK) }
    }
}

/// The seasonal level of the slot and the band `level ± t × scale` around it, once the slot has
/// values from `seasonal_min_weeks` earlier weeks. The threshold `t` adapts to the series' own
/// tail of seasonal scores; the score of `val` is added to that tail once the ring is full.
pub(super) fn band(ser: &mut Series, slot: SlotOf, val: f64, cfg: &RuleParams) -> (Option<f64>, Option<(f64, f64)>) {
    let ready = if cfg.seasonal { level_and_scale(ser, slot, cfg) } else { None };
    let Some((level, scale)) = ready else { return (None, None) };
    let t = match &ser.scores {
        Some(h) if cfg.adaptive_quantile > 0.0 && h.n >= 200 => cfg.threshold.max(h.quantile(cfg.adaptive_quantile)),
        _ => cfg.threshold,
    };
    if cfg.spikes && ser.len as usize == ser.ring.len() {
        ser.scores
            .get_or_insert_with(|| Box::new(ScoreHistogram { bins: [0; SCORE_BINS], n: 0 }))
            .add((val - level) / scale);
    }
    (Some(level), Some((level - t * scale, level + t * scale)))
}

/// The slot's level and robust scale, when it has values from enough earlier weeks.
fn level_and_scale(ser: &Series, slot: SlotOf, cfg: &RuleParams) -> Option<(f64, f64)> {
    let slots = ser.seasonal.as_ref()?;
    let sl = &slots[slot.how];
    let previous = u32::from(sl.weeks) - u32::from(i64::from(sl.last_week) == slot.week && sl.weeks > 0);
    (sl.values > 0 && previous >= cfg.seasonal_min_weeks).then(|| {
        let (level, spread) = (f64::from(sl.level), f64::from(sl.spread));
        let scale = (spread * MAD_SCALE).max(cfg.min_scale_ratio * level.abs()).max(MIN_SCALE);
        (level, scale)
    })
}

/// Adds `val` to its slot (weight `seasonal_alpha`), counting the weeks the slot has values from.
pub(super) fn learn(ser: &mut Series, slot: SlotOf, val: f64, cfg: &RuleParams) {
    if !cfg.seasonal {
        return;
    }
    let slots = ser.seasonal.get_or_insert_with(|| Box::new([Slot::default(); SLOTS]));
    let sl = &mut slots[slot.how];
    // Kept in f32 (16 bytes a slot): a baseline, not an amount.
    if sl.values == 0 {
        sl.level = val as f32;
        sl.spread = 0.0;
    } else {
        let (level, spread) = (f64::from(sl.level), f64::from(sl.spread));
        let dev = (val - level).abs();
        let spread = if sl.values == 1 { dev } else { spread + cfg.seasonal_alpha * (dev - spread) };
        sl.spread = spread as f32;
        sl.level = (level + cfg.seasonal_alpha * (val - level)) as f32;
    }
    sl.values = sl.values.saturating_add(1);
    let week = slot.week as i32;
    if sl.weeks == 0 || sl.last_week != week {
        sl.weeks = sl.weeks.saturating_add(1);
        sl.last_week = week;
    }
}
