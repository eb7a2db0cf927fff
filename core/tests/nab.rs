//! The default rules on the two labelled NAB series: every labelled window caught, at most 2
//! alerts outside windows per 1000 points — and the naive last-10 robust z-score far worse.
//! The figures themselves are in `docs/validation.md`.

#[path = "support/nab.rs"]
mod nab;

use meterkit::ValidationConfig;

#[test]
fn default_rules_catch_every_window_with_few_outside_alerts() {
    for (file, key, metric) in nab::SERIES {
        let (s, _) = nab::evaluate(file, key, metric, ValidationConfig::default());
        assert_eq!(s.caught, s.windows, "{file}: {s:?}");
        assert!(s.rate() <= 2.0, "{file}: {:.2} outside alerts per 1000 points ({s:?})", s.rate());
    }
}

#[test]
fn naive_last_ten_z_score_catches_windows_but_raises_many_more_alerts() {
    for (file, key, metric) in nab::SERIES {
        let (naive, _) = nab::evaluate(file, key, metric, ValidationConfig::naive());
        let (tuned, _) = nab::evaluate(file, key, metric, ValidationConfig::default());
        assert_eq!(naive.caught, naive.windows, "{file}: {naive:?}");
        assert!(naive.rate() >= 10.0, "{file}: naive rate {:.2} ({naive:?})", naive.rate());
        assert!(naive.outside_alerts >= 5 * tuned.outside_alerts.max(1), "{file}: {naive:?} vs {tuned:?}");
    }
}

#[test]
fn streaming_in_chunks_gives_the_same_findings_on_real_data() {
    let (file, _, metric) = nab::SERIES[0];
    let records = nab::load_csv(&nab::data_dir().join(file), "elb", metric);
    let batch = nab::run(&records, ValidationConfig::default());
    let now = records.last().unwrap().timestamp + chrono::Duration::days(1);
    let mut v = meterkit::Validator::new([(metric, ValidationConfig::default())]).unwrap().with_now(now);
    let mut streamed = Vec::new();
    for chunk in records.chunks(7) {
        streamed.extend(v.check_all(chunk));
    }
    assert_eq!(streamed, batch);
    assert!(!batch.is_empty());
}
