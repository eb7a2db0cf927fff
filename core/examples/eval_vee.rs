//! The VEE evaluation (`scripts/eval-vee`): per-series figures of the default rules on the 13
//! labelled NAB series, leave-one-family-out, the rolling robust z-score baseline at equal recall,
//! and the UK household — printed as Markdown tables.

#[path = "../tests/support/eval.rs"]
mod eval;

use meterkit::{time::fmt_ts, vee::ValidationConfig};

fn main() {
    println!(
        "State per tracked series: {} bytes (N = 10, no seasonal slots), {} bytes with the seasonal slots and \
         score histogram; an open alert {} bytes.\n",
        meterkit::Validator::bytes_per_series(10, false),
        meterkit::Validator::bytes_per_series(10, true),
        std::mem::size_of::<meterkit::vee::alert::Alert>()
    );
    let series = eval::load_all();
    let scores = eval::score_all(&series, &ValidationConfig::default());
    println!("## Default rules, all series (NAB convention: an alert counts where it starts)\n");
    println!("| series | family | points | windows caught | alerts | false alerts | false / 1000 points |");
    println!("|---|---|---|---|---|---|---|");
    for (s, sc) in series.iter().zip(&scores) {
        println!(
            "| {} | {} | {} | {} / {} | {} | {} | {:.2} |",
            s.file,
            s.family,
            sc.points,
            sc.caught,
            sc.windows,
            sc.alerts,
            sc.false_alerts,
            sc.rate()
        );
    }
    if let Some(file) = std::env::var_os("VEE_SERIES") {
        for s in series.iter().filter(|s| *s.file == *file) {
            for a in eval::alerts(&s.records, &ValidationConfig::default()) {
                let inside = s.windows.iter().any(|(x, y)| *x <= a.start && a.start <= *y);
                let rules: Vec<&str> = a.rules.iter().map(|r| r.as_str()).collect();
                println!(
                    "  {} {} {} peak {:?}",
                    fmt_ts(a.start),
                    if inside { "in " } else { "OUT" },
                    rules.join(","),
                    a.peak
                );
            }
        }
    }
    let tot = eval::total(&series, &scores, |_| true);
    println!(
        "| **all** | | {} | **{} / {} ({:.1} %)** | {} | {} | **{:.2}** |\n",
        tot.points,
        tot.caught,
        tot.windows,
        tot.recall(),
        tot.alerts,
        tot.false_alerts,
        tot.rate()
    );
    println!("## Leave one family out (candidate chosen on the other families)\n");
    println!("| held-out family | chosen | train: caught, false / 1000 | held out: windows caught | held out: false / 1000 |");
    println!("|---|---|---|---|---|");
    for f in eval::leave_one_family_out(&series) {
        println!(
            "| {} | {} | {} / {}, {:.2} | {} / {} | {:.2} |",
            f.family,
            f.chosen,
            f.train.caught,
            f.train.windows,
            f.train.rate(),
            f.held_out.caught,
            f.held_out.windows,
            f.held_out.rate()
        );
    }
    for n in [10, 50] {
        let (t, b) = eval::baseline_at_recall(&series, n, tot.caught);
        let at =
            if b.caught >= tot.caught { "at equal recall" } else { "at its best recall, still below the defaults'" };
        println!(
            "\nBaseline rolling robust z-score over the last {n} points, threshold {t} ({at}): {} / {} windows, \
             {} false alerts ({:.2} / 1000 points) — {:.1}× the default rules' {} false alerts.",
            b.caught,
            b.windows,
            b.false_alerts,
            b.rate(),
            b.false_alerts as f64 / tot.false_alerts.max(1) as f64,
            tot.false_alerts
        );
    }
    let (points, alerts) = eval::household();
    let zs = eval::zero_streak_alerts(&alerts);
    println!(
        "\nUK household: {points} hourly values, {} alerts ({:.2} / 1000 points), {} with a zero streak:",
        alerts.len(),
        alerts.len() as f64 * 1000.0 / points as f64,
        zs.len()
    );
    for a in &alerts {
        let rules: Vec<&str> = a.rules.iter().map(|r| r.as_str()).collect();
        println!("  {} → {} {}", fmt_ts(a.start), fmt_ts(a.end), rules.join(","));
    }
}
