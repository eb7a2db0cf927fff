//! The VEE evaluation in CI: the default rules on the 13 labelled NAB series and the UK household,
//! alerts scored by the NAB convention. The figures are in `docs/validation.md` and
//! `docs/notes/2026-12-01-issue-16.md` (`scripts/eval-vee` prints them).
//!
//! Targets (issue 16): ≥ 90 % of the labelled windows caught; ≤ 1.0 false alert per 1000 points
//! overall and in every held-out family of the leave-one-family-out run; no alert at all on the two
//! anomaly-free series; on the UK household ≤ 2 alerts per 1000 points with its three 23-hour zero
//! streaks reported; fewer false alerts than the rolling robust z-score baseline.

#[path = "support/eval.rs"]
mod eval;

use meterkit::vee::ValidationConfig;

#[test]
fn default_rules_on_the_thirteen_labelled_series() {
    let series = eval::load_all();
    let scores = eval::score_all(&series, &ValidationConfig::default());
    let tot = eval::total(&series, &scores, |_| true);
    assert_eq!(tot.windows, 30);
    assert!(tot.caught * 10 >= tot.windows * 9, "windows caught {tot:?}");
    assert!(tot.rate() <= 1.0, "false alerts {:.2} per 1000 points: {tot:?}", tot.rate());
    for (s, sc) in series.iter().zip(&scores) {
        if s.windows.is_empty() {
            assert_eq!(sc.alerts, 0, "{}: {sc:?}", s.file);
        }
    }
}

#[test]
fn defaults_beat_the_rolling_robust_z_score_at_equal_recall() {
    let series = eval::load_all();
    let tot = eval::total(&series, &eval::score_all(&series, &ValidationConfig::default()), |_| true);
    // The baseline never reaches the defaults' recall (its alerts merge into long runs that start
    // outside the windows); at its best recall it still raises several times more false alerts.
    let (_, base) = eval::baseline_at_recall(&series, 10, tot.caught);
    assert!(base.caught <= tot.caught, "{base:?}");
    assert!(base.false_alerts >= 3 * tot.false_alerts, "baseline {base:?} vs defaults {tot:?}");
}

#[test]
fn leave_one_family_out_runs_on_every_family() {
    let series = eval::load_all();
    let folds = eval::leave_one_family_out(&series);
    assert_eq!(folds.len(), 5);
    let windows: usize = folds.iter().map(|f| f.held_out.windows).sum();
    assert_eq!(windows, 30);
    for f in &folds {
        assert!(f.held_out.rate() <= 1.0, "{}: {:?}", f.family, f.held_out);
    }
}

#[test]
fn household_alerts_are_few_and_keep_the_three_zero_streaks() {
    let (points, alerts) = eval::household();
    let rate = alerts.len() as f64 * 1000.0 / points as f64;
    assert!(rate <= 2.0, "{} alerts, {rate:.2} per 1000 points", alerts.len());
    let starts: Vec<String> =
        eval::zero_streak_alerts(&alerts).iter().map(|a| meterkit::time::fmt_ts(a.start)[..10].to_string()).collect();
    assert_eq!(starts, ["2020-10-30", "2021-02-15", "2022-07-04"], "{alerts:?}");
}
