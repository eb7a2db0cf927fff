//! DST and calendar cases with hand-computed window bounds.
//!
//! Every expected instant below was worked out from the zone's published rules (and the
//! transition instants are themselves asserted against chrono-tz first, so a tz database change
//! shows up as a failing premise rather than a confusing window mismatch).

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Timelike, Utc};
use meterkit::{time::fmt_ts, time::parse_time_zone, ErrorKind, Tz, Window};
use meterkit_tests::ts;

fn tz(name: &str) -> Tz {
    parse_time_zone(name).unwrap()
}

/// The window containing `at`, as RFC 3339 text.
fn span(w: Window, at: &str, zone: &str) -> (String, String) {
    let (s, e) = w.span(ts(at), tz(zone)).unwrap();
    (fmt_ts(s), fmt_ts(e))
}

fn pair(s: &str, e: &str) -> (String, String) {
    (s.to_string(), e.to_string())
}

/// UTC offset in seconds at an instant.
fn offset(zone: &str, at: &str) -> i32 {
    ts(at).with_timezone(&tz(zone)).offset().fix().local_minus_utc()
}

/// `n` consecutive windows starting with the one containing `from`, walking with `next_start`.
fn walk(window: Window, from: &str, zone: &str, n: usize) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let zone = tz(zone);
    let mut out = Vec::new();
    let (mut start, mut end) = window.span(ts(from), zone).unwrap();
    for _ in 0..n {
        out.push((start, end));
        start = end;
        end = window.span(start, zone).unwrap().1;
        assert_eq!(window.span(start, zone).unwrap().0, start, "a window end is the next window's start");
    }
    out
}

/// Assert that the windows tile `[first start, last end)`: consecutive windows share their
/// boundary, and `span` of every probe instant (every 60 s and both sides of every boundary) is
/// the tile containing it.
fn assert_tiles(w: Window, zone: &str, tiles: &[(DateTime<Utc>, DateTime<Utc>)]) {
    let z = tz(zone);
    for pair in tiles.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "windows must share boundaries");
    }
    for &(s, e) in tiles {
        assert!(s < e);
        let mut t = s;
        while t < e {
            assert_eq!(w.span(t, z).unwrap(), (s, e), "instant {t} in {zone}");
            t += chrono::Duration::seconds(60);
        }
        let last = e - chrono::Duration::seconds(1);
        assert_eq!(w.span(last, z).unwrap(), (s, e));
    }
}

/// Local wall-clock label `HH:MM+offset` of an instant.
fn local_label(at: DateTime<Utc>, zone: &str) -> String {
    let l = at.with_timezone(&tz(zone));
    format!("{:02}:{:02}{}", l.hour(), l.minute(), l.format("%:z"))
}

fn texts(tiles: &[(DateTime<Utc>, DateTime<Utc>)]) -> Vec<(String, String)> {
    tiles.iter().map(|(s, e)| (fmt_ts(*s), fmt_ts(*e))).collect()
}

#[test]
fn premises_new_york_transitions_2024() {
    const NY: &str = "America/New_York";
    // Second Sunday of March, 02:00 EST (07:00 UTC) -> 03:00 EDT.
    assert_eq!(offset(NY, "2024-03-10T06:59:59Z"), -5 * 3600);
    assert_eq!(offset(NY, "2024-03-10T07:00:00Z"), -4 * 3600);
    // First Sunday of November, 02:00 EDT (06:00 UTC) -> 01:00 EST.
    assert_eq!(offset(NY, "2024-11-03T05:59:59Z"), -4 * 3600);
    assert_eq!(offset(NY, "2024-11-03T06:00:00Z"), -5 * 3600);
}

#[test]
fn new_york_spring_forward_day_is_23_hours() {
    const NY: &str = "America/New_York";
    // 10 March 00:00 EST = 05:00Z; 11 March 00:00 EDT = 04:00Z.
    let day = pair("2024-03-10T05:00:00Z", "2024-03-11T04:00:00Z");
    assert_eq!(span(Window::Day, "2024-03-10T05:00:00Z", NY), day);
    assert_eq!(span(Window::Day, "2024-03-10T12:00:00Z", NY), day);
    assert_eq!(span(Window::Day, "2024-03-11T03:59:59Z", NY), day);
    assert_eq!(span(Window::Day, "2024-03-10T04:59:59Z", NY), pair("2024-03-09T05:00:00Z", "2024-03-10T05:00:00Z"));
    assert_eq!(span(Window::Day, "2024-03-11T04:00:00Z", NY), pair("2024-03-11T04:00:00Z", "2024-03-12T04:00:00Z"));
    let (s, e) = Window::Day.span(ts("2024-03-10T12:00:00Z"), tz(NY)).unwrap();
    assert_eq!((e - s).num_minutes(), 23 * 60);
}

#[test]
fn new_york_fall_back_day_is_25_hours() {
    const NY: &str = "America/New_York";
    // 3 November 00:00 EDT = 04:00Z; 4 November 00:00 EST = 05:00Z.
    let day = pair("2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z");
    assert_eq!(span(Window::Day, "2024-11-03T04:00:00Z", NY), day);
    assert_eq!(span(Window::Day, "2024-11-03T05:30:00Z", NY), day); // 01:30 EDT
    assert_eq!(span(Window::Day, "2024-11-03T06:30:00Z", NY), day); // 01:30 EST
    assert_eq!(span(Window::Day, "2024-11-04T04:59:59Z", NY), day);
    assert_eq!(span(Window::Day, "2024-11-03T03:59:59Z", NY), pair("2024-11-02T04:00:00Z", "2024-11-03T04:00:00Z"));
    assert_eq!(span(Window::Day, "2024-11-04T05:00:00Z", NY), pair("2024-11-04T05:00:00Z", "2024-11-05T05:00:00Z"));
    let (s, e) = Window::Day.span(ts("2024-11-03T12:00:00Z"), tz(NY)).unwrap();
    assert_eq!((e - s).num_minutes(), 25 * 60);
}

#[test]
fn new_york_hours_across_spring_forward_skip_the_missing_local_hour_but_no_instant() {
    const NY: &str = "America/New_York";
    let tiles = walk(Window::Hour, "2024-03-10T04:00:00Z", NY, 5);
    assert_eq!(
        texts(&tiles),
        vec![
            pair("2024-03-10T04:00:00Z", "2024-03-10T05:00:00Z"),
            pair("2024-03-10T05:00:00Z", "2024-03-10T06:00:00Z"),
            pair("2024-03-10T06:00:00Z", "2024-03-10T07:00:00Z"),
            pair("2024-03-10T07:00:00Z", "2024-03-10T08:00:00Z"),
            pair("2024-03-10T08:00:00Z", "2024-03-10T09:00:00Z"),
        ]
    );
    let labels: Vec<String> = tiles.iter().map(|(s, _)| local_label(*s, NY)).collect();
    // Local 02:00 does not exist on this day: 01:00 EST is followed by 03:00 EDT.
    assert_eq!(labels, ["23:00-05:00", "00:00-05:00", "01:00-05:00", "03:00-04:00", "04:00-04:00"]);
    assert_tiles(Window::Hour, NY, &tiles);
}

#[test]
fn new_york_hours_across_fall_back_repeat_the_local_hour_as_two_windows() {
    const NY: &str = "America/New_York";
    let tiles = walk(Window::Hour, "2024-11-03T04:00:00Z", NY, 4);
    assert_eq!(
        texts(&tiles),
        vec![
            pair("2024-11-03T04:00:00Z", "2024-11-03T05:00:00Z"),
            pair("2024-11-03T05:00:00Z", "2024-11-03T06:00:00Z"),
            pair("2024-11-03T06:00:00Z", "2024-11-03T07:00:00Z"),
            pair("2024-11-03T07:00:00Z", "2024-11-03T08:00:00Z"),
        ]
    );
    let labels: Vec<String> = tiles.iter().map(|(s, _)| local_label(*s, NY)).collect();
    assert_eq!(labels, ["00:00-04:00", "01:00-04:00", "01:00-05:00", "02:00-05:00"]);
    assert_tiles(Window::Hour, NY, &tiles);
    // Both 01:30 local instants: different windows.
    assert_eq!(span(Window::Hour, "2024-11-03T05:30:00Z", NY), pair("2024-11-03T05:00:00Z", "2024-11-03T06:00:00Z"));
    assert_eq!(span(Window::Hour, "2024-11-03T06:30:00Z", NY), pair("2024-11-03T06:00:00Z", "2024-11-03T07:00:00Z"));
}

#[test]
fn premises_lord_howe_transitions_2024() {
    const LH: &str = "Australia/Lord_Howe";
    let lhst = 10 * 3600 + 1800;
    let lhdt = 11 * 3600;
    // DST ends first Sunday of April: 7 April 02:00 LHDT (= 6 April 15:00Z) -> 01:30 LHST.
    assert_eq!(offset(LH, "2024-04-06T14:59:59Z"), lhdt);
    assert_eq!(offset(LH, "2024-04-06T15:00:00Z"), lhst);
    // DST starts first Sunday of October: 6 October 02:00 LHST (= 5 October 15:30Z) -> 02:30 LHDT.
    assert_eq!(offset(LH, "2024-10-05T15:29:59Z"), lhst);
    assert_eq!(offset(LH, "2024-10-05T15:30:00Z"), lhdt);
}

#[test]
fn lord_howe_days_are_24_5_and_23_5_hours() {
    const LH: &str = "Australia/Lord_Howe";
    // 7 April 00:00 LHDT (+11) = 6 April 13:00Z; 8 April 00:00 LHST (+10:30) = 7 April 13:30Z.
    let long_day = pair("2024-04-06T13:00:00Z", "2024-04-07T13:30:00Z");
    assert_eq!(span(Window::Day, "2024-04-06T13:00:00Z", LH), long_day);
    assert_eq!(span(Window::Day, "2024-04-07T13:29:59Z", LH), long_day);
    // 6 October 00:00 LHST = 5 October 13:30Z; 7 October 00:00 LHDT = 6 October 13:00Z.
    let short_day = pair("2024-10-05T13:30:00Z", "2024-10-06T13:00:00Z");
    assert_eq!(span(Window::Day, "2024-10-05T13:30:00Z", LH), short_day);
    assert_eq!(span(Window::Day, "2024-10-06T12:59:59Z", LH), short_day);
    let minutes = |(s, e): (DateTime<Utc>, DateTime<Utc>)| (e - s).num_minutes();
    assert_eq!(minutes(Window::Day.span(ts("2024-04-07T00:00:00Z"), tz(LH)).unwrap()), 24 * 60 + 30);
    assert_eq!(minutes(Window::Day.span(ts("2024-10-06T00:00:00Z"), tz(LH)).unwrap()), 23 * 60 + 30);
}

#[test]
fn lord_howe_hour_at_each_change_is_30_minutes() {
    const LH: &str = "Australia/Lord_Howe";
    // Fall back: 01:00-02:00 LHDT is a full hour, then the repeated 01:30-02:00 LHST half hour.
    let tiles = walk(Window::Hour, "2024-04-06T13:00:00Z", LH, 4);
    assert_eq!(
        texts(&tiles),
        vec![
            pair("2024-04-06T13:00:00Z", "2024-04-06T14:00:00Z"),
            pair("2024-04-06T14:00:00Z", "2024-04-06T15:00:00Z"),
            pair("2024-04-06T15:00:00Z", "2024-04-06T15:30:00Z"),
            pair("2024-04-06T15:30:00Z", "2024-04-06T16:30:00Z"),
        ]
    );
    let labels: Vec<String> = tiles.iter().map(|(s, _)| local_label(*s, LH)).collect();
    assert_eq!(labels, ["00:00+11:00", "01:00+11:00", "01:30+10:30", "02:00+10:30"]);
    assert_tiles(Window::Hour, LH, &tiles);
    // Spring forward: 01:00-02:00 LHST, then 02:30-03:00 LHDT (30 minutes), then 03:00 LHDT.
    let tiles = walk(Window::Hour, "2024-10-05T13:30:00Z", LH, 4);
    assert_eq!(
        texts(&tiles),
        vec![
            pair("2024-10-05T13:30:00Z", "2024-10-05T14:30:00Z"),
            pair("2024-10-05T14:30:00Z", "2024-10-05T15:30:00Z"),
            pair("2024-10-05T15:30:00Z", "2024-10-05T16:00:00Z"),
            pair("2024-10-05T16:00:00Z", "2024-10-05T17:00:00Z"),
        ]
    );
    let labels: Vec<String> = tiles.iter().map(|(s, _)| local_label(*s, LH)).collect();
    assert_eq!(labels, ["00:00+10:30", "01:00+10:30", "02:30+11:00", "03:00+11:00"]);
    assert_tiles(Window::Hour, LH, &tiles);
}

#[test]
fn kolkata_day_starts_at_18_30_utc_and_hours_at_half_past() {
    const IN: &str = "Asia/Kolkata";
    // 10 March 00:00 IST (+05:30) = 9 March 18:30Z.
    let day = pair("2024-03-09T18:30:00Z", "2024-03-10T18:30:00Z");
    assert_eq!(span(Window::Day, "2024-03-09T18:30:00Z", IN), day);
    assert_eq!(span(Window::Day, "2024-03-10T18:29:59Z", IN), day);
    assert_eq!(span(Window::Day, "2024-03-09T18:29:59Z", IN), pair("2024-03-08T18:30:00Z", "2024-03-09T18:30:00Z"));
    assert_eq!(span(Window::Hour, "2024-03-10T05:07:00Z", IN), pair("2024-03-10T04:30:00Z", "2024-03-10T05:30:00Z"));
    // Year 2024 in Kolkata.
    assert_eq!(span(Window::Year, "2024-06-01T00:00:00Z", IN), pair("2023-12-31T18:30:00Z", "2024-12-31T18:30:00Z"));
}

#[test]
fn kolkata_15_minute_windows_follow_the_local_clock() {
    const IN: &str = "Asia/Kolkata";
    let w = Window::Minutes(15);
    // 18:44:59Z = 00:14:59 IST -> [00:00, 00:15) IST = [18:30Z, 18:45Z).
    assert_eq!(span(w, "2024-03-10T18:44:59Z", IN), pair("2024-03-10T18:30:00Z", "2024-03-10T18:45:00Z"));
    assert_eq!(span(w, "2024-03-10T18:45:00Z", IN), pair("2024-03-10T18:45:00Z", "2024-03-10T19:00:00Z"));
    // 05:07Z = 10:37 IST -> [10:30, 10:45) IST = [05:00Z, 05:15Z).
    assert_eq!(span(w, "2024-03-10T05:07:00Z", IN), pair("2024-03-10T05:00:00Z", "2024-03-10T05:15:00Z"));
    let tiles = walk(w, "2024-03-10T17:50:00Z", IN, 8);
    assert!(tiles.iter().all(|(s, e)| (*e - *s).num_minutes() == 15));
    assert_tiles(w, IN, &tiles);
}

#[test]
fn premises_santiago_midnight_missing_on_2024_09_08() {
    // Chile: DST starts the first Sunday of September at 24:00 of Saturday (04:00Z):
    // -04 -> -03, so local 00:00-00:59 on 8 September 2024 does not exist.
    let z = tz("America/Santiago");
    let midnight = NaiveDate::from_ymd_opt(2024, 9, 8).unwrap().and_hms_opt(0, 0, 0).unwrap();
    assert!(matches!(z.from_local_datetime(&midnight), chrono::LocalResult::None));
    assert_eq!(offset("America/Santiago", "2024-09-08T03:59:59Z"), -4 * 3600);
    assert_eq!(offset("America/Santiago", "2024-09-08T04:00:00Z"), -3 * 3600);
    // DST ends the first Sunday of April at 24:00 of Saturday -03 (03:00Z): -03 -> -04.
    assert_eq!(offset("America/Santiago", "2024-04-07T02:59:59Z"), -3 * 3600);
    assert_eq!(offset("America/Santiago", "2024-04-07T03:00:00Z"), -4 * 3600);
}

#[test]
fn santiago_day_without_local_midnight_starts_at_first_existing_instant() {
    const CL: &str = "America/Santiago";
    // 8 September starts at 01:00 -03 = 04:00Z; 9 September 00:00 -03 = 03:00Z: 23 hours.
    let day = pair("2024-09-08T04:00:00Z", "2024-09-09T03:00:00Z");
    assert_eq!(span(Window::Day, "2024-09-08T04:00:00Z", CL), day);
    assert_eq!(span(Window::Day, "2024-09-09T02:59:59Z", CL), day);
    // 7 September: 00:00 -04 = 04:00Z to the transition at 8 September 04:00Z: 24 hours.
    assert_eq!(span(Window::Day, "2024-09-08T03:59:59Z", CL), pair("2024-09-07T04:00:00Z", "2024-09-08T04:00:00Z"));
    // Hours: 23:00 -04 then 01:00 -03.
    let tiles = walk(Window::Hour, "2024-09-08T03:00:00Z", CL, 3);
    assert_eq!(
        texts(&tiles),
        vec![
            pair("2024-09-08T03:00:00Z", "2024-09-08T04:00:00Z"),
            pair("2024-09-08T04:00:00Z", "2024-09-08T05:00:00Z"),
            pair("2024-09-08T05:00:00Z", "2024-09-08T06:00:00Z"),
        ]
    );
    assert_tiles(Window::Hour, CL, &tiles);
    // A September month in Santiago starts at 1 September 00:00 -04 = 04:00Z and ends at
    // 1 October 00:00 -03 = 03:00Z.
    assert_eq!(span(Window::Month, "2024-09-15T00:00:00Z", CL), pair("2024-09-01T04:00:00Z", "2024-10-01T03:00:00Z"));
    // Fall back: 6 April has a repeated 23:00 hour: 00:00 -03 (03:00Z) to 7 April 00:00 -04 (04:00Z).
    assert_eq!(span(Window::Day, "2024-04-07T03:30:00Z", CL), pair("2024-04-06T03:00:00Z", "2024-04-07T04:00:00Z"));
}

#[test]
fn week_starts_monday() {
    // 10 March 2024 is a Sunday: its ISO week runs from Monday 4 March.
    assert_eq!(NaiveDate::from_ymd_opt(2024, 3, 4).unwrap().weekday(), chrono::Weekday::Mon);
    assert_eq!(span(Window::Week, "2024-03-10T23:59:59Z", "UTC"), pair("2024-03-04T00:00:00Z", "2024-03-11T00:00:00Z"));
    assert_eq!(span(Window::Week, "2024-03-11T00:00:00Z", "UTC"), pair("2024-03-11T00:00:00Z", "2024-03-18T00:00:00Z"));
    // In New York the same week spans the spring-forward: 4 March 00:00 EST = 05:00Z,
    // 11 March 00:00 EDT = 04:00Z, 167 hours.
    let (s, e) = Window::Week.span(ts("2024-03-10T12:00:00Z"), tz("America/New_York")).unwrap();
    assert_eq!((fmt_ts(s), fmt_ts(e)), pair("2024-03-04T05:00:00Z", "2024-03-11T04:00:00Z"));
    assert_eq!((e - s).num_hours(), 167);
    // A week across a year end: Monday 30 December 2024 to Monday 6 January 2025.
    assert_eq!(span(Window::Week, "2025-01-01T00:00:00Z", "UTC"), pair("2024-12-30T00:00:00Z", "2025-01-06T00:00:00Z"));
}

#[test]
fn quarters_and_months() {
    const NY: &str = "America/New_York";
    assert_eq!(
        span(Window::Quarter, "2024-05-15T00:00:00Z", "UTC"),
        pair("2024-04-01T00:00:00Z", "2024-07-01T00:00:00Z")
    );
    // Q1 2024 in New York: 1 January 00:00 EST (05:00Z) to 1 April 00:00 EDT (04:00Z).
    assert_eq!(span(Window::Quarter, "2024-02-01T00:00:00Z", NY), pair("2024-01-01T05:00:00Z", "2024-04-01T04:00:00Z"));
    // Q4 2024: 1 October 00:00 EDT (04:00Z) to 1 January 2025 00:00 EST (05:00Z).
    assert_eq!(span(Window::Quarter, "2024-12-31T12:00:00Z", NY), pair("2024-10-01T04:00:00Z", "2025-01-01T05:00:00Z"));
    // 1 January 04:59:59Z is still 31 December in New York: Q4 2023.
    assert_eq!(span(Window::Quarter, "2024-01-01T04:59:59Z", NY), pair("2023-10-01T04:00:00Z", "2024-01-01T05:00:00Z"));
    assert_eq!(
        span(Window::Month, "2024-02-29T23:59:59Z", "UTC"),
        pair("2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z")
    );
}

#[test]
fn billing_cycle_anchored_on_31st_in_a_leap_year() {
    let w = Window::BillingCycle { anchor_day: 31 };
    assert_eq!(span(w, "2024-01-31T00:00:00Z", "UTC"), pair("2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z"));
    assert_eq!(span(w, "2024-02-28T23:59:59Z", "UTC"), pair("2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z"));
    assert_eq!(span(w, "2024-02-29T00:00:00Z", "UTC"), pair("2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z"));
    assert_eq!(span(w, "2024-03-30T23:59:59Z", "UTC"), pair("2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z"));
    assert_eq!(span(w, "2024-04-15T00:00:00Z", "UTC"), pair("2024-03-31T00:00:00Z", "2024-04-30T00:00:00Z"));
    assert_eq!(span(w, "2024-12-31T00:00:00Z", "UTC"), pair("2024-12-31T00:00:00Z", "2025-01-31T00:00:00Z"));
    // The 1st of a month before the clamped anchor belongs to the previous cycle.
    assert_eq!(span(w, "2024-02-01T00:00:00Z", "UTC"), pair("2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z"));
}

#[test]
fn billing_cycle_anchored_on_31st_in_a_non_leap_year() {
    let w = Window::BillingCycle { anchor_day: 31 };
    assert_eq!(span(w, "2023-02-10T00:00:00Z", "UTC"), pair("2023-01-31T00:00:00Z", "2023-02-28T00:00:00Z"));
    assert_eq!(span(w, "2023-02-27T23:59:59Z", "UTC"), pair("2023-01-31T00:00:00Z", "2023-02-28T00:00:00Z"));
    assert_eq!(span(w, "2023-02-28T00:00:00Z", "UTC"), pair("2023-02-28T00:00:00Z", "2023-03-31T00:00:00Z"));
    // Anchors 29 and 30 clamp to 28 February too, and never spill into March.
    let w29 = Window::BillingCycle { anchor_day: 29 };
    assert_eq!(span(w29, "2023-02-28T00:00:00Z", "UTC"), pair("2023-02-28T00:00:00Z", "2023-03-29T00:00:00Z"));
    let w30 = Window::BillingCycle { anchor_day: 30 };
    assert_eq!(span(w30, "2024-03-01T00:00:00Z", "UTC"), pair("2024-02-29T00:00:00Z", "2024-03-30T00:00:00Z"));
}

#[test]
fn billing_cycle_anchored_on_15th() {
    let w = Window::BillingCycle { anchor_day: 15 };
    assert_eq!(span(w, "2024-03-14T23:59:59Z", "UTC"), pair("2024-02-15T00:00:00Z", "2024-03-15T00:00:00Z"));
    assert_eq!(span(w, "2024-03-15T00:00:00Z", "UTC"), pair("2024-03-15T00:00:00Z", "2024-04-15T00:00:00Z"));
    assert_eq!(span(w, "2024-12-20T00:00:00Z", "UTC"), pair("2024-12-15T00:00:00Z", "2025-01-15T00:00:00Z"));
    assert_eq!(span(w, "2025-01-10T00:00:00Z", "UTC"), pair("2024-12-15T00:00:00Z", "2025-01-15T00:00:00Z"));
    // In New York the cycle starting 15 March 2024 runs from 00:00 EDT (04:00Z); the one
    // starting 15 February from 00:00 EST (05:00Z).
    assert_eq!(
        span(w, "2024-03-01T00:00:00Z", "America/New_York"),
        pair("2024-02-15T05:00:00Z", "2024-03-15T04:00:00Z")
    );
}

#[test]
fn invalid_windows_are_rejected_with_a_kind() {
    for w in [Window::Minutes(0), Window::Minutes(7), Window::BillingCycle { anchor_day: 0 }] {
        assert_eq!(w.check().unwrap_err().kind(), ErrorKind::InvalidWindow);
        assert_eq!(w.span(ts("2024-01-01T00:00:00Z"), tz("UTC")).unwrap_err().kind(), ErrorKind::InvalidWindow);
    }
    assert_eq!(Window::BillingCycle { anchor_day: 32 }.check().unwrap_err().kind(), ErrorKind::InvalidWindow);
    for text in ["minutes:0", "minutes:7", "cycle:32", "fortnight", "minutes:x", ""] {
        let e = text.parse::<Window>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidWindow, "{text}");
    }
    assert_eq!(parse_time_zone("Mars/Olympus").unwrap_err().kind(), ErrorKind::InvalidTimeZone);
}

#[test]
fn window_text_round_trips() {
    for w in [
        Window::Minutes(15),
        Window::Hour,
        Window::Day,
        Window::Week,
        Window::Month,
        Window::Quarter,
        Window::Year,
        Window::BillingCycle { anchor_day: 31 },
    ] {
        assert_eq!(w.to_string().parse::<Window>().unwrap(), w);
        assert_eq!(serde_json::from_str::<Window>(&serde_json::to_string(&w).unwrap()).unwrap(), w);
    }
    assert_eq!("cycle:15".parse::<Window>().unwrap(), Window::BillingCycle { anchor_day: 15 });
}

/// Every local day from 1970 to 2040 in zones with awkward rules, walked day by day: days tile
/// time, and on every day that is not 24 hours long (a transition day) the 15-minute and hourly
/// windows tile that day exactly, are never longer than nominal, and never straddle its bounds.
#[test]
fn transition_days_1970_2040_tile_into_sub_daily_windows() {
    const ZONES: [&str; 12] = [
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
        "Pacific/Chatham",
        "America/Santiago",
        "America/Sao_Paulo",
        "America/Havana",
        "Asia/Beirut",
        "Pacific/Apia",
        "Europe/Dublin",
        "Africa/Casablanca",
        "Antarctica/Troll",
    ];
    let end = ts("2040-01-01T00:00:00Z");
    let mut transition_days = 0;
    for zone in ZONES {
        let z = tz(zone);
        let mut s = Window::Day.span(ts("1970-01-02T00:00:00Z"), z).unwrap().0;
        while s < end {
            let (s1, e1) = Window::Day.span(s, z).unwrap();
            assert_eq!(s1, s, "{zone}: days must tile");
            assert!(e1 > s1);
            if e1 - s1 != chrono::Duration::hours(24) {
                transition_days += 1;
                for (w, n) in [(Window::Minutes(15), 15), (Window::Hour, 60)] {
                    let mut a = s1;
                    while a < e1 {
                        let (ws, we) = w.span(a, z).unwrap();
                        assert_eq!(ws, a, "{w} in {zone} on the day starting {s1}");
                        assert!(we > ws && (we - ws).num_minutes() <= n, "{w} in {zone}: [{ws}, {we})");
                        assert!(we <= e1, "{w} in {zone}: [{ws}, {we}) straddles the day ending {e1}");
                        assert_eq!(w.span(we - chrono::Duration::seconds(1), z).unwrap(), (ws, we));
                        a = we;
                    }
                }
            }
            s = e1;
        }
    }
    // Sanity: the walk did meet transition days (New York alone has two a year).
    assert!(transition_days > 12 * 40, "only {transition_days} transition days found");
}
