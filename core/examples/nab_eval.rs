//! Evaluate the validation rules on the labelled NAB series (and, if present, run them over the
//! UK household file): `cargo run -p meterkit --release --example nab_eval [UK_CSV]`.

#[path = "../tests/support/nab.rs"]
mod nab;

use std::collections::BTreeMap;

use meterkit::{fmt_ts, ValidationConfig, ValidationSummary};

fn main() {
    println!(
        "state per tracked series: {} bytes (N = 10, without seasonal slots), {} bytes with the 168 seasonal slots\n",
        meterkit::Validator::bytes_per_series(10, false),
        meterkit::Validator::bytes_per_series(10, true)
    );
    println!(
        "{:<32} {:<8} {:>7} {:>8} {:>10} {:>9} {:>7}",
        "series", "rules", "points", "caught", "outside", "per 1000", "alerts"
    );
    for (file, key, metric) in nab::SERIES {
        for (name, cfg) in [("default", ValidationConfig::default()), ("naive", ValidationConfig::naive())] {
            let (s, findings) = nab::evaluate(file, key, metric, cfg);
            println!(
                "{:<32} {:<8} {:>7} {:>5}/{:<2} {:>10} {:>9.2} {:>7}",
                file,
                name,
                s.points,
                s.caught,
                s.windows,
                s.outside_alerts,
                s.rate(),
                s.alert_findings
            );
            if name == "default" && std::env::var_os("NAB_VERBOSE").is_some() {
                for f in findings.iter().filter(|f| f.is_alert()) {
                    println!("    {} {} {}", fmt_ts(f.timestamp), f.rule, f.message);
                }
            }
        }
    }
    let uk = std::env::args().nth(1).unwrap_or_else(|| "/work/shared/data/uk-smart-meter-hourly.csv".to_string());
    let path = std::path::Path::new(&uk);
    if path.exists() {
        let records = nab::load_csv(path, "uk-household", "kwh");
        let findings = nab::run(&records, ValidationConfig::default());
        println!("\nUK household file {uk}: {} hourly records", records.len());
        print!("{}", ValidationSummary::of(&findings));
        let s = nab::score(&records, &findings, &[]);
        println!(
            "  alerts (warnings and errors within 12 points counted once): {} ({:.2} per 1000 points)",
            s.outside_alerts,
            s.rate()
        );
        let mut by_rule: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in &findings {
            by_rule.entry(f.rule.to_string()).or_default().push(format!("{} {}", fmt_ts(f.timestamp), f.message));
        }
        for (rule, lines) in by_rule {
            println!("  {rule}:");
            for l in lines.iter().take(12) {
                println!("    {l}");
            }
            if lines.len() > 12 {
                println!("    … {} more", lines.len() - 12);
            }
        }
    }
}
