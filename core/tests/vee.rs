//! Validation, estimation and editing (VEE): each rule with hand-worked cases, register
//! roll-over, DST days, streaming = batch, and the engine integration.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use meterkit::{
    engine::Fill, notify::CollectingNotifier, reading::ReadingKind, reading::RegisterTracker, record::Quality,
    vee::estimate::estimate_gaps, vee::estimate::EstimateConfig, vee::Action, vee::Rule, vee::Severity,
    vee::ValidationConfig, vee::ValidationSummary, Decimal, Engine, ErrorKind, Event, MeterReading, Query, Tz,
    UsageRecord, Validator, Window,
};
use proptest::prelude::*;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 0, 0, 0).unwrap() // a Monday
}

fn rec(i: i64, q: &str) -> UsageRecord {
    UsageRecord::new("t", format!("r{i}"), "meter-1", "kwh", d(q), t0() + Duration::hours(i))
}

fn validator(cfg: ValidationConfig) -> Validator {
    Validator::new([("kwh", cfg)]).unwrap().with_now(t0() + Duration::days(365))
}

fn rules(findings: &[meterkit::Finding]) -> Vec<Rule> {
    findings.iter().map(|f| f.rule).collect()
}

const USUAL: [&str; 10] = ["1.0", "1.2", "0.9", "1.1", "1.0", "1.3", "0.8", "1.1", "1.0", "1.2"];

// ---- record rules ----

#[test]
fn negative_quantity_is_rejected_unless_allowed() {
    let mut v = validator(ValidationConfig::default());
    let f = v.check(&rec(0, "-1.5"));
    assert_eq!(rules(&f), [Rule::NegativeQuantity]);
    assert_eq!((f[0].severity, f[0].action), (Severity::Error, Action::Reject));
    assert_eq!(f[0].value, Some(d("-1.5")));
    let mut v = validator(ValidationConfig { allow_negative: true, ..ValidationConfig::default() });
    assert!(v.check(&rec(0, "-1.5")).is_empty());
}

#[test]
fn quantity_text_that_is_not_a_finite_decimal_is_rejected() {
    let mut v = validator(ValidationConfig::default());
    for text in ["NaN", "inf", "abc", ""] {
        let f = v.check_text(&rec(0, "0"), text);
        assert_eq!(rules(&f), [Rule::InvalidQuantity], "{text}");
        assert_eq!(f[0].action, Action::Reject);
        assert_eq!(f[0].value, None);
    }
    assert!(v.check_text(&rec(1, "0"), "2.5").is_empty());
}

#[test]
fn future_beyond_skew_and_older_than_horizon_are_rejected() {
    let now = t0();
    let cfg = ValidationConfig { max_age_secs: Some(86_400), ..ValidationConfig::default() };
    let mut v = Validator::new([("kwh", cfg)]).unwrap().with_now(now);
    let at = |secs: i64| UsageRecord::new("t", format!("s{secs}"), "m", "kwh", d("1"), now + Duration::seconds(secs));
    assert!(v.check(&at(300)).is_empty(), "exactly the 5-minute skew is allowed");
    assert_eq!(rules(&v.check(&at(301))), [Rule::FutureTimestamp]);
    let mut v = Validator::new([("kwh", ValidationConfig { max_age_secs: Some(86_400), ..Default::default() })])
        .unwrap()
        .with_now(now);
    assert!(v.check(&at(-86_400)).is_empty());
    assert_eq!(rules(&v.check(&at(-86_401))), [Rule::TooOld]);
}

#[test]
fn unknown_metric_and_unit_are_rejected() {
    let mut v = validator(ValidationConfig { unit: Some("kWh".into()), ..ValidationConfig::default() });
    let bytes = UsageRecord::new("t", "b", "sim", "bytes", d("10"), t0());
    assert_eq!(rules(&v.check(&bytes)), [Rule::UnknownMetric]);
    assert_eq!(rules(&v.check(&rec(0, "1").with_dimension("unit", "Wh"))), [Rule::UnknownUnit]);
    assert!(v.check(&rec(1, "1").with_dimension("unit", "kWh")).is_empty());
    let mut any = Validator::new(Vec::<(String, ValidationConfig)>::new())
        .unwrap()
        .with_default(ValidationConfig::default())
        .unwrap()
        .with_now(t0() + Duration::days(1));
    assert!(any.check(&bytes).is_empty());
}

#[test]
fn absolute_limits_flag_with_expected_range() {
    let cfg = ValidationConfig { high_limit: Some(d("5")), low_limit: Some(d("0.5")), ..ValidationConfig::default() };
    let mut v = validator(cfg);
    let f = v.check(&rec(0, "6"));
    assert_eq!(rules(&f), [Rule::HighLimit]);
    assert_eq!((f[0].severity, f[0].action), (Severity::Warning, Action::Flag));
    assert_eq!(f[0].expected, Some((d("0.5"), d("5"))));
    assert_eq!(rules(&v.check(&rec(1, "0.4"))), [Rule::LowLimit]);
    assert!(v.check(&rec(2, "5")).is_empty());
}

// ---- statistical rules ----

#[test]
fn spike_against_last_ten_worked_by_hand() {
    // Last ten: median (1.0 + 1.1) / 2 = 1.05; |deviations| sorted .05×5 .15×3 .25×2, MAD = .10;
    // scale = 1.4826 × .10 = .14826 (above the floor .1 × 1.05); band 1.05 ± 3.5 × .14826.
    let mut v = validator(ValidationConfig::default());
    for (i, q) in USUAL.iter().enumerate() {
        assert!(v.check(&rec(i as i64, q)).is_empty());
    }
    let f = v.check(&rec(10, "11"));
    assert_eq!(rules(&f), [Rule::Spike]);
    assert_eq!(f[0].expected, Some((d("0.5311"), d("1.5689"))));
    assert_eq!(f[0].score, Some(d("67.11"))); // (11 − 1.05) / .14826
    assert_eq!((f[0].severity, f[0].action), (Severity::Warning, Action::Flag));
    assert!(f[0].message.contains("far above the median 1.05 of the last 10 values"), "{}", f[0].message);
}

#[test]
fn drop_below_last_ten_and_below_long_run_range() {
    let mut v = validator(ValidationConfig::default());
    for (i, q) in USUAL.iter().enumerate() {
        v.check(&rec(i as i64, q));
    }
    let f = v.check(&rec(10, "0.1"));
    assert_eq!(rules(&f), [Rule::Drop]);
    assert_eq!(f[0].score, Some(d("-6.41"))); // (0.1 − 1.05) / .14826
}

#[test]
fn a_jump_inside_the_long_run_range_is_not_a_spike_but_is_for_the_naive_rule() {
    // History reaches 3.0 once; ten calm values later 2.9 is far from the last ten but inside
    // the series' range, so the default rules stay quiet and the naive z-score does not.
    let mut series: Vec<&str> = vec!["3.0"];
    series.extend(USUAL);
    series.push("2.9");
    let run = |cfg: ValidationConfig| {
        let mut v = validator(cfg);
        let recs: Vec<_> = series.iter().enumerate().map(|(i, q)| rec(i as i64, q)).collect();
        v.check_all(&recs)
    };
    assert!(run(ValidationConfig::default()).is_empty());
    assert_eq!(rules(&run(ValidationConfig::naive())), [Rule::Spike]);
}

fn daily_profile(h: i64) -> &'static str {
    if (18..22).contains(&(h % 24)) {
        "3.0"
    } else {
        "0.2"
    }
}

#[test]
fn seasonal_baseline_catches_a_usual_load_at_an_unusual_hour() {
    // Three weeks of 0.2 kWh except 3.0 kWh from 18:00 to 21:59. Then 3.0 kWh all night (00:00 to
    // 07:59: a heater left on). Each value is inside the long-run range [0.2, 3.0], so no spike
    // (a single usual value at an odd hour is not worth an alert); but against the hour-of-week
    // level (0.2) the night is far off, and the level-shift CUSUM — clipped deviations of 4 units
    // minus k = 1.5 each — crosses h = 15 at the seventh hour.
    let cfg = ValidationConfig { stuck_intervals: 0, ..ValidationConfig::default() };
    let hours = 21 * 24;
    let mut recs: Vec<UsageRecord> = (0..hours).map(|h| rec(h, daily_profile(h))).collect();
    recs.extend((hours..hours + 8).map(|h| rec(h, "3.0")));
    recs.extend((hours + 8..hours + 18).map(|h| rec(h, "0.2")));
    let night = |f: &&meterkit::Finding| f.timestamp >= t0() + Duration::hours(hours);
    let mut v = validator(cfg.clone());
    let all = v.check_all(&recs);
    let found: Vec<_> = all.iter().filter(night).collect();
    assert_eq!(rules(&found.iter().map(|f| (*f).clone()).collect::<Vec<_>>()), [Rule::LevelShift], "{found:#?}");
    assert_eq!(found[0].timestamp, t0() + Duration::hours(hours + 6));
    assert!(found[0].message.contains("shifted above"), "{}", found[0].message);
    // Without the seasonal baseline the reference is the long-run mean, which the evenings have
    // raised: the night stays below the limit.
    let mut v = validator(ValidationConfig { seasonal: false, ..cfg });
    let all = v.check_all(&recs);
    assert!(all.iter().filter(night).count() == 0, "{all:#?}");
}

#[test]
fn daily_rhythm_raises_alarms_only_while_the_series_is_new() {
    let cfg = ValidationConfig { stuck_intervals: 0, ..ValidationConfig::default() };
    let recs: Vec<UsageRecord> = (0..28 * 24).map(|h| rec(h, daily_profile(h))).collect();
    let mut v = validator(cfg);
    let f = v.check_all(&recs);
    // Only the first evening is new (18:00 of day 0, above everything seen); after that the
    // long-run range and then the seasonal slots know the rhythm.
    assert_eq!(rules(&f), [Rule::Spike]);
    assert_eq!(f[0].timestamp, t0() + Duration::hours(18));
}

#[test]
fn stuck_value_and_zero_streak_raise_one_finding_when_the_run_reaches_k() {
    let mut v = validator(ValidationConfig { spikes: false, ..ValidationConfig::default() });
    let mut recs: Vec<UsageRecord> = (0..9).map(|i| rec(i, "0.078")).collect();
    recs.extend((9..17).map(|i| rec(i, "0")));
    let f = v.check_all(&recs);
    assert_eq!(rules(&f), [Rule::Stuck, Rule::ZeroStreak]);
    assert_eq!(f[0].id.as_deref(), Some("r7")); // the 8th equal value
    assert_eq!(f[0].score, Some(d("8")));
    assert_eq!(f[1].id.as_deref(), Some("r14")); // the 6th zero
    assert_eq!(f[1].score, Some(d("6")));
}

#[test]
fn gaps_against_the_inferred_cadence() {
    let mut v = validator(ValidationConfig { spikes: false, ..ValidationConfig::default() });
    let qs = ["1", "2", "3", "1"];
    let mut recs: Vec<UsageRecord> = (0..4).map(|i| rec(i, qs[i as usize])).collect();
    recs.push(rec(6, "2")); // 04:00 and 05:00 missing
    recs.push(rec(7, "3"));
    recs.push(rec(15, "1")); // 08:00-14:00 missing: 7 intervals
    let f = v.check_all(&recs);
    assert_eq!(rules(&f), [Rule::Gap, Rule::Gap]);
    assert_eq!((f[0].severity, f[0].score, f[0].timestamp), (Severity::Info, Some(d("2")), t0() + Duration::hours(4)));
    assert_eq!(
        (f[1].severity, f[1].score, f[1].timestamp),
        (Severity::Warning, Some(d("7")), t0() + Duration::hours(8))
    );
    assert_eq!(f[0].id, None);
}

#[test]
fn gaps_with_a_configured_interval_and_out_of_order_records() {
    let cfg = ValidationConfig { spikes: false, interval_secs: Some(900), ..ValidationConfig::default() };
    let mut v = validator(cfg);
    let q = |m: i64, id: &str| UsageRecord::new("t", id, "m", "kwh", d("1.5"), t0() + Duration::minutes(m));
    assert!(v.check(&q(0, "a")).is_empty());
    assert_eq!(rules(&v.check(&q(30, "b"))), [Rule::Gap]); // 00:15 missing
    let f = v.check(&q(15, "c"));
    assert_eq!(rules(&f), [Rule::OutOfOrder]);
    assert_eq!((f[0].severity, f[0].action), (Severity::Info, Action::Accept));
}

fn local_hours(tz: Tz, from: (i32, u32, u32), to: (i32, u32, u32)) -> Vec<DateTime<Utc>> {
    let start = tz.with_ymd_and_hms(from.0, from.1, from.2, 0, 0, 0).unwrap().with_timezone(&Utc);
    let end = tz.with_ymd_and_hms(to.0, to.1, to.2, 0, 0, 0).unwrap().with_timezone(&Utc);
    let mut out = Vec::new();
    let mut t = start;
    while t < end {
        out.push(t);
        t += Duration::hours(1);
    }
    out
}

#[test]
fn dst_days_with_23_and_25_hourly_values_are_not_gaps() {
    let tz: Tz = "America/New_York".parse().unwrap();
    let cfg = ValidationConfig { time_zone: "America/New_York".into(), ..ValidationConfig::default() };
    for (day, next, hours) in [((2024, 3, 10), (2024, 3, 11), 23), ((2024, 11, 3), (2024, 11, 4), 25)] {
        assert_eq!(local_hours(tz, day, next).len(), hours);
        let before = (day.0, day.1, day.2 - 2);
        let after = (next.0, next.1, next.2 + 2);
        let recs: Vec<UsageRecord> = local_hours(tz, before, after)
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let q = ["0.5", "0.6", "0.7"][i % 3];
                UsageRecord::new("t", format!("h{i}"), "m", "kwh", d(q), t)
            })
            .collect();
        let mut v = Validator::new([("kwh", cfg.clone())])
            .unwrap()
            .with_now(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(v.check_all(&recs), vec![], "{day:?}");
    }
}

#[test]
fn daily_values_at_local_midnight_across_dst_are_not_gaps_but_a_missing_day_is() {
    let tz: Tz = "America/New_York".parse().unwrap();
    let days: Vec<DateTime<Utc>> = (1..=20)
        .filter(|&day| day != 15)
        .map(|day| tz.with_ymd_and_hms(2024, 3, day, 0, 0, 0).unwrap().with_timezone(&Utc))
        .collect();
    let recs: Vec<UsageRecord> = days
        .iter()
        .enumerate()
        .map(|(i, t)| UsageRecord::new("t", format!("d{i}"), "m", "kwh", d(["10", "11", "12"][i % 3]), *t))
        .collect();
    let mut v = validator(ValidationConfig::default());
    let f = v.check_all(&recs);
    assert_eq!(rules(&f), [Rule::Gap]); // 10 March (23 h) is not a gap; 15 March is missing
    assert_eq!(f[0].score, Some(d("1")));
    assert_eq!(f[0].timestamp, tz.with_ymd_and_hms(2024, 3, 15, 0, 0, 0).unwrap().with_timezone(&Utc));
}

// ---- register readings ----

fn month(m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, m, 1, 0, 0, 0).unwrap()
}

#[test]
fn rollover_on_4_5_6_and_8_digit_registers() {
    for (digits, before, after, units) in [
        (4u8, "9990", "15", "25"),     // 10^4 − 9990 + 15
        (5, "99950", "30", "80"),      // 10^5 − 99950 + 30
        (6, "999999", "0", "1"),       // 10^6 − 999999 + 0
        (8, "99999678", "123", "445"), // 10^8 − 99999678 + 123
        (4, "9999.9", "0.4", "0.5"),   // fractional register
    ] {
        let mut t = RegisterTracker::new("t", "kwh");
        assert_eq!(t.push(&MeterReading::new("m", month(1), d(before)).digits(digits)), (None, vec![]));
        let (r, f) = t.push(&MeterReading::new("m", month(2), d(after)).digits(digits));
        let r = r.unwrap();
        assert_eq!(r.quantity, d(units), "{digits} digits");
        assert_eq!((r.timestamp, r.end), (month(1), Some(month(2))));
        assert_eq!(r.id, "m@2024-02-01T00:00:00Z");
        assert_eq!(rules(&f), [Rule::Rollover]);
        assert_eq!((f[0].severity, f[0].action), (Severity::Info, Action::Accept));
    }
}

#[test]
fn multiplier_and_estimated_readings() {
    let mut t = RegisterTracker::new("t", "kwh");
    t.push(&MeterReading::new("m", month(1), d("99950")).digits(5).multiplier(d("40")));
    let (r, _) = t.push(&MeterReading::new("m", month(2), d("30")).digits(5).multiplier(d("40")));
    assert_eq!(r.unwrap().quantity, d("3200")); // 80 × 40
    let (r, f) = t
        .push(&MeterReading::new("m", month(3), d("130.5")).digits(5).multiplier(d("40")).kind(ReadingKind::Estimated));
    let r = r.unwrap();
    assert_eq!((r.quantity, r.quality), (d("4020"), Quality::Estimated)); // 100.5 × 40
    assert!(f.is_empty());
}

#[test]
fn implausible_decrease_is_a_meter_exchange_and_restarts_the_baseline() {
    let mut t = RegisterTracker::new("t", "kwh");
    t.push(&MeterReading::new("m", month(1), d("5000")).digits(4));
    let (r, f) = t.push(&MeterReading::new("m", month(2), d("4990")).digits(4)); // wrapped 9990 > 10
    assert_eq!(r, None);
    assert_eq!(rules(&f), [Rule::MeterExchange]);
    assert_eq!((f[0].severity, f[0].action), (Severity::Warning, Action::Flag));
    let (r, _) = t.push(&MeterReading::new("m", month(3), d("5010")).digits(4));
    assert_eq!(r.unwrap().quantity, d("20"));
    // Without a digit count every decrease is an exchange or reset.
    let mut t = RegisterTracker::new("t", "kwh");
    t.push(&MeterReading::new("m", month(1), d("99999678")));
    assert_eq!(rules(&t.push(&MeterReading::new("m", month(2), d("123"))).1), [Rule::MeterExchange]);
}

#[test]
fn duplicate_out_of_order_and_invalid_readings() {
    let mut t = RegisterTracker::new("t", "kwh");
    t.push(&MeterReading::new("m", month(2), d("100")).digits(4));
    let (r, f) = t.push(&MeterReading::new("m", month(2), d("100")).digits(4));
    assert_eq!((r, rules(&f), f[0].severity), (None, vec![Rule::DuplicateReading], Severity::Info));
    let (_, f) = t.push(&MeterReading::new("m", month(2), d("101")).digits(4));
    assert_eq!((rules(&f), f[0].severity), (vec![Rule::DuplicateReading], Severity::Warning));
    let (_, f) = t.push(&MeterReading::new("m", month(1), d("90")).digits(4));
    assert_eq!((rules(&f), f[0].action), (vec![Rule::OutOfOrderReading], Action::Reject));
    for bad in [
        MeterReading::new("m", month(3), d("10000")).digits(4),
        MeterReading::new("m", month(3), d("-1")),
        MeterReading::new("m", month(3), d("5")).digits(29),
        MeterReading::new("m", month(3), d("5")).multiplier(d("0")),
    ] {
        let (r, f) = t.push(&bad);
        assert_eq!((r, rules(&f)), (None, vec![Rule::InvalidReading]), "{bad:?}");
    }
    // The rejected readings did not move the baseline.
    let (r, _) = t.push(&MeterReading::new("m", month(3), d("150")).digits(4));
    assert_eq!(r.unwrap().quantity, d("50"));
    assert_eq!(t.last_reading("m").unwrap().register, d("150"));
}

// ---- estimation ----

#[test]
fn long_gap_is_estimated_from_the_same_hour_of_previous_weeks() {
    // Week 1 every hour 1 kWh, week 2 every hour 2 kWh, week 3 the first 10 hours missing after
    // hour 0: each missing hour = (1 + 2) / 2 = 1.5 (10 > 4 intervals, so not interpolated).
    let week = 168;
    let mut recs: Vec<UsageRecord> = (0..week).map(|h| rec(h, "1")).collect();
    recs.extend((week..2 * week).map(|h| rec(h, "2")));
    recs.push(rec(2 * week, "5"));
    recs.push(rec(2 * week + 11, "5"));
    let est = estimate_gaps(&recs, &EstimateConfig::new(3600)).unwrap();
    assert_eq!(est.len(), 10);
    assert!(est.iter().all(|r| r.quantity == d("1.5") && r.quality == Quality::Estimated));
    assert_eq!(est[0].timestamp, t0() + Duration::hours(2 * week + 1));
    assert_eq!(est[0].id, "est:meter-1:kwh:2024-05-20T01:00:00Z");
    // Without history the long gap stays open; a short one is interpolated: 5 → 8 over 2 missing.
    let est = estimate_gaps(&[rec(0, "5"), rec(11, "5"), rec(14, "8")], &EstimateConfig::new(3600)).unwrap();
    let got: Vec<(i64, Decimal)> = est.iter().map(|r| ((r.timestamp - t0()).num_hours(), r.quantity)).collect();
    assert_eq!(got, [(12, d("6")), (13, d("7"))]);
}

#[test]
fn estimation_needs_one_series_and_ignores_estimated_records() {
    let other = UsageRecord::new("t", "x", "meter-2", "kwh", d("1"), t0());
    let err = estimate_gaps(&[rec(0, "1"), other], &EstimateConfig::new(3600)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    let est_in = rec(1, "100").with_quality(Quality::Estimated);
    let est = estimate_gaps(&[rec(0, "1"), est_in, rec(2, "3")], &EstimateConfig::new(3600)).unwrap();
    assert_eq!(est.iter().map(|r| r.quantity).collect::<Vec<_>>(), [d("2")]);
}

// ---- engine ----

#[test]
fn engine_rejects_flags_and_counts_estimated_share() {
    let notifier = Arc::new(CollectingNotifier::new());
    let engine = Engine::in_memory().with_notifier(notifier.clone());
    engine.set_validation("kwh", ValidationConfig::default()).unwrap();
    engine.set_validation_now(Some(t0() + Duration::days(30)));
    let mut batch: Vec<UsageRecord> = USUAL.iter().enumerate().map(|(i, q)| rec(i as i64, q)).collect();
    batch.push(rec(10, "11")); // spike: flagged
    batch.push(rec(11, "-2")); // negative: rejected
    batch.push(rec(12, "0.49").with_quality(Quality::Estimated)); // estimated
    let report = engine.ingest(&batch).unwrap();
    assert_eq!(report.accepted, 12);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!((report.rejected[0].id.as_str(), report.rejected[0].kind), ("r11", ErrorKind::Validation));
    assert_eq!(rules(&report.findings), [Rule::Spike, Rule::NegativeQuantity]);
    let events = notifier.take();
    let anomalies: Vec<Rule> = events
        .iter()
        .filter_map(|e| match e {
            Event::AnomalyDetected { finding } => Some(finding.rule),
            _ => None,
        })
        .collect();
    assert_eq!(anomalies, [Rule::Spike, Rule::NegativeQuantity]);

    let q = Query::new("t", "kwh", Window::Day, "UTC").range(t0(), t0() + Duration::days(1)).fill(Fill::Zero);
    let day = &engine.query(&q).unwrap()[0];
    // 10.6 (usual) + 11 (flagged) + 0.49 (estimated) = 22.09.
    assert_eq!((day.sum, day.count), (d("22.09"), 12));
    assert_eq!((day.flagged_count, day.flagged_sum), (1, d("11")));
    assert_eq!((day.estimated_count, day.estimated_sum), (1, d("0.49")));
    assert_eq!(day.actual_sum().unwrap(), d("21.6"));
    assert_eq!(day.estimated_percent(), Some(d("2.22"))); // 0.49 / 22.09 = 2.218… %
    let json = serde_json::to_string(day).unwrap();
    assert!(
        json.contains(r#""flagged_count":1,"flagged_sum":"11","estimated_count":1,"estimated_sum":"0.49","first_at":"#),
        "{json}"
    );

    // The flagged record is stored flagged; sending it again is a duplicate, not a conflict.
    let stored = engine.records("t", "kwh", None, t0(), t0() + Duration::days(1)).unwrap();
    assert_eq!(stored.iter().find(|r| r.id == "r10").unwrap().quality, Quality::Flagged);
    let again = engine.ingest(&[rec(10, "11")]).unwrap();
    assert_eq!((again.accepted, again.duplicates, again.findings.len()), (0, 1, 0));
}

#[test]
fn engine_ingest_record_by_record_equals_one_batch() {
    let recs: Vec<UsageRecord> = (0..400).map(|h| rec(h, if h % 97 == 50 { "9" } else { daily_profile(h) })).collect();
    let run = |chunk: usize| {
        let engine = Engine::in_memory();
        engine.set_validation("kwh", ValidationConfig { stuck_intervals: 0, ..ValidationConfig::default() }).unwrap();
        engine.set_validation_now(Some(t0() + Duration::days(30)));
        let mut findings = Vec::new();
        for c in recs.chunks(chunk) {
            findings.extend(engine.ingest(c).unwrap().findings);
        }
        let q = Query::new("t", "kwh", Window::Day, "UTC");
        (findings, engine.query(&q).unwrap())
    };
    let (one, days_one) = run(recs.len());
    let (each, days_each) = run(1);
    assert!(!one.is_empty());
    assert_eq!(one, each);
    assert_eq!(days_one, days_each);
    assert!(days_one.iter().any(|b| b.flagged_count > 0));
}

#[test]
fn old_bucket_state_json_deserializes_and_clean_buckets_print_as_before() {
    let state: meterkit::rollup::BucketState =
        serde_json::from_str(r#"{"sum":"2.5","count":2,"min":"1","max":"1.5"}"#).unwrap();
    assert_eq!((state.flagged_count, state.estimated_sum), (0, Decimal::ZERO));
    assert!(!serde_json::to_string(&state).unwrap().contains("flagged"));
}

#[test]
fn config_errors_name_the_field() {
    let err = Validator::new([("kwh", ValidationConfig { window: 2, ..ValidationConfig::default() })]).unwrap_err();
    assert_eq!((err.kind(), err.field()), (ErrorKind::Validation, Some("window")));
    let err =
        Validator::new([("kwh", ValidationConfig { threshold: f64::NAN, ..ValidationConfig::default() })]).unwrap_err();
    assert_eq!(err.field(), Some("threshold"));
    let err =
        Validator::new([("kwh", ValidationConfig { time_zone: "Mars/Base".into(), ..ValidationConfig::default() })])
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTimeZone);
    let cfg: ValidationConfig = serde_json::from_str(r#"{"allow_negative":true,"high_limit":"50"}"#).unwrap();
    assert_eq!((cfg.allow_negative, cfg.high_limit, cfg.window), (true, Some(d("50")), 10));
    assert!(serde_json::from_str::<ValidationConfig>(r#"{"windw":3}"#).is_err());
}

#[test]
fn summary_counts_by_rule_and_severity() {
    let mut v = validator(ValidationConfig::default());
    let f = v.check_all(&[rec(0, "-1"), rec(1, "-2"), rec(2, "1")]);
    let s = ValidationSummary::of(&f);
    assert_eq!((s.total, s.error, s.rejected), (2, 2, 2));
    assert_eq!(s.by_rule["negative_quantity"].error, 2);
    assert_eq!(
        serde_json::to_string(&s).unwrap(),
        r#"{"total":2,"info":0,"warning":0,"error":2,"rejected":2,"flagged":0,"by_rule":{"negative_quantity":{"info":0,"warning":0,"error":2}}}"#
    );
}

#[test]
fn finding_json_shape() {
    let mut v = validator(ValidationConfig::default());
    for (i, q) in USUAL.iter().enumerate() {
        v.check(&rec(i as i64, q));
    }
    let f = v.check(&rec(10, "11"));
    let json = serde_json::to_string(&f[0]).unwrap();
    assert!(json.starts_with(
        r#"{"rule":"spike","severity":"warning","action":"flag","tenant":"t","subject":"meter-1","metric":"kwh","id":"r10","timestamp":"2024-05-06T10:00:00Z","value":"11","expected":["0.5311","1.5689"],"score":"67.11","message":"#
    ), "{json}");
    let back: meterkit::Finding = serde_json::from_str(&json).unwrap();
    assert_eq!(back, f[0]);
}

// ---- streaming = batch ----

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn streaming_equals_batch(
        values in proptest::collection::vec((0u8..3, 0i64..1000, -1i64..3), 1..300),
        splits in proptest::collection::vec(1usize..40, 1..20),
    ) {
        // Three subjects, hourly steps with occasional jumps back, gaps and repeats.
        let mut t = [0i64; 3];
        let recs: Vec<UsageRecord> = values
            .iter()
            .enumerate()
            .map(|(i, (s, q, step))| {
                let s = *s as usize;
                t[s] += step;
                let quantity = if q % 7 == 0 { Decimal::ZERO } else { Decimal::new(*q, 1) };
                UsageRecord::new("t", format!("r{i}"), format!("m{s}"), "kwh", quantity, t0() + Duration::hours(t[s]))
            })
            .collect();
        let cfg = ValidationConfig { stuck_intervals: 3, zero_streak_intervals: 2, ..ValidationConfig::default() };
        let batch = validator(cfg.clone()).check_all(&recs);
        let mut v = validator(cfg.clone());
        let mut streamed = Vec::new();
        let mut rest: &[UsageRecord] = &recs;
        let mut k = 0;
        while !rest.is_empty() {
            let n = splits[k % splits.len()].min(rest.len());
            streamed.extend(v.check_all(&rest[..n]));
            rest = &rest[n..];
            k += 1;
        }
        prop_assert_eq!(&streamed, &batch);
        let mut one = validator(cfg);
        let singles: Vec<_> = recs.iter().flat_map(|r| one.check(r)).collect();
        prop_assert_eq!(singles, batch);
    }
}

// ---- alerts ----

/// 400 hours alternating 1.0 / 1.2 (past the 288-value warm-up), 24 zeros, then `after` normal hours.
fn fault_series(after: i64) -> Vec<UsageRecord> {
    (0..424 + after)
        .map(|h| {
            rec(
                h,
                if (400..424).contains(&h) {
                    "0"
                } else if h % 2 == 0 {
                    "1.0"
                } else {
                    "1.2"
                },
            )
        })
        .collect()
}

#[test]
fn a_day_of_zeros_is_one_alert_however_the_batch_is_split() {
    let records = fault_series(50);
    let findings = validator(ValidationConfig::default()).check_all(&records);
    assert!(findings.iter().filter(|f| f.is_alert()).count() > 1, "{findings:?}");
    let alerts =
        meterkit::vee::alert::alerts_of(&records, &findings, meterkit::vee::alert::AlertConfig::default()).unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.start, t0() + Duration::hours(400));
    assert!(a.rules.contains(&Rule::ZeroStreak), "{a:?}");
    assert_eq!(a.peak, Some(Decimal::ZERO));
    assert_eq!(a.findings as usize, findings.iter().filter(|f| f.is_alert()).count());
    let json = serde_json::to_value(a).unwrap();
    for key in ["subject", "start", "end", "rules", "severity", "peak", "expected"] {
        assert!(json.get(key).is_some(), "{key}: {json}");
    }
    assert_eq!(json["start"], "2024-05-22T16:00:00Z");
    // Streaming record by record gives the same alert.
    let mut v = validator(ValidationConfig::default());
    let mut b = meterkit::vee::alert::AlertBuilder::new(meterkit::vee::alert::AlertConfig::default()).unwrap();
    let mut events = Vec::new();
    for r in &records {
        let f = v.check(r);
        events.extend(b.observe(r, &f));
    }
    events.extend(b.finish());
    assert!(matches!(&events[0], meterkit::vee::alert::AlertEvent::Raised(r) if r.start == a.start));
    assert_eq!(events.last(), Some(&meterkit::vee::alert::AlertEvent::Resolved(a.clone())));
    // No alert during the warm-up.
    let warm = meterkit::vee::alert::AlertConfig { warmup: 500, ..meterkit::vee::alert::AlertConfig::default() };
    assert!(meterkit::vee::alert::alerts_of(&records, &findings, warm).unwrap().is_empty());
    assert!(meterkit::vee::alert::AlertConfig { gap: 0, warmup: 0 }.check().is_err());
}

#[test]
fn engine_sends_alert_raised_and_resolved() {
    let notifier = Arc::new(CollectingNotifier::new());
    let engine = Engine::in_memory().with_notifier(notifier.clone());
    engine.set_validation("kwh", ValidationConfig::default()).unwrap();
    engine.set_validation_now(Some(t0() + Duration::days(60)));
    let records = fault_series(176);
    for chunk in records.chunks(50) {
        engine.ingest(chunk).unwrap();
    }
    let alerts: Vec<(bool, meterkit::vee::alert::Alert)> = notifier
        .take()
        .into_iter()
        .filter_map(|e| match e {
            Event::AlertRaised { alert } => Some((true, alert)),
            Event::AlertResolved { alert } => Some((false, alert)),
            _ => None,
        })
        .collect();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(alerts[0].0 && !alerts[1].0);
    assert_eq!(alerts[0].1.start, t0() + Duration::hours(400));
    assert_eq!(alerts[1].1.start, alerts[0].1.start);
    assert!(alerts[1].1.rules.contains(&Rule::ZeroStreak));
}

/// Weekly readings (issue 14 item 7): the seasonal band is kept per hour of the week, but every
/// weekly reading falls in the same slot, so a spike's message names the series' earlier
/// readings, not "this hour of the week"; a long gap is estimated from the readings around it,
/// not from "the same hour of previous weeks". Hourly readings keep the hour-of-week words.
#[test]
fn rule_messages_fit_the_series_resolution() {
    let weekly =
        |i: i64, q: &str| UsageRecord::new("t", format!("w{i}"), "meter-1", "kwh", d(q), t0() + Duration::weeks(i));
    let cfg = ValidationConfig { stuck_intervals: 0, ..ValidationConfig::default() };
    let mut v = validator(cfg.clone());
    let mut recs: Vec<UsageRecord> = (0..12).map(|i| weekly(i, USUAL[(i % 10) as usize])).collect();
    recs.push(weekly(12, "50"));
    recs.push(weekly(19, "1.1")); // weeks 13 to 18 missing: 6 intervals, over the limit of 4
    let f = v.check_all(&recs);
    assert_eq!(rules(&f), [Rule::Spike, Rule::Gap], "{f:#?}");
    assert!(f[0].message.contains("outside the usual range of the series' earlier readings"), "{}", f[0].message);
    assert!(!f[0].message.contains("hour of the week"), "{}", f[0].message);
    assert!(f[1].message.contains("6 intervals of 604800 s"), "{}", f[1].message);
    assert!(f[1].message.contains("estimate from the readings around the gap"), "{}", f[1].message);
    // The same shape read hourly: three weeks of history make the hour's slot ready.
    let mut v = validator(cfg);
    let hourly = |i: i64, q: &str| rec(i * 168, q);
    let mut recs: Vec<UsageRecord> = (0..12).map(|i| hourly(i, USUAL[(i % 10) as usize])).collect();
    recs.extend((12 * 168 - 167..12 * 168).map(|h| rec(h, "1.0")));
    recs.push(rec(12 * 168, "50"));
    let f = v.check_all(&recs);
    let spike: Vec<_> = f.iter().filter(|f| f.rule == Rule::Spike).collect();
    assert!(spike.iter().any(|f| f.message.contains("this hour of the week")), "{f:#?}");
}
