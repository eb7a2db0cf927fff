//! The compact tables against chrono-tz, zone by zone: the same names, the same offset at every
//! transition and between them, the same `LocalResult` around every transition.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone};

use super::{names, tzdb_version, Tz};

fn utc_offset<T: TimeZone>(tz: &T, t: i64) -> i32 {
    let u = DateTime::from_timestamp(t, 0).unwrap().naive_utc();
    tz.offset_from_utc_datetime(&u).fix().local_minus_utc()
}

fn local_offsets<T: TimeZone>(tz: &T, local: &NaiveDateTime) -> (u8, i32, i32) {
    match tz.offset_from_local_datetime(local) {
        LocalResult::Single(o) => (1, o.fix().local_minus_utc(), 0),
        LocalResult::Ambiguous(a, b) => (2, a.fix().local_minus_utc(), b.fix().local_minus_utc()),
        LocalResult::None => (0, 0, 0),
    }
}

fn pairs() -> Vec<(Tz, chrono_tz::Tz)> {
    chrono_tz::TZ_VARIANTS.iter().map(|&c| (c.name().parse::<Tz>().unwrap(), c)).collect()
}

#[test]
fn the_same_names_as_chrono_tz() {
    let mut ours: Vec<&str> = names().collect();
    let mut theirs: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs);
    for (ours, theirs) in pairs() {
        assert_eq!(ours.name(), theirs.name());
        assert_eq!(ours.to_string(), theirs.to_string());
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
    }
    assert_eq!(Tz::UTC.name(), "UTC");
    assert_eq!("UTC".parse::<Tz>().unwrap(), Tz::UTC);
    for bad in ["", "utc", "Europe/london", "Mars/Olympus", "Europe/London ", "Europe"] {
        assert!(bad.parse::<Tz>().is_err(), "{bad}");
        assert!(bad.parse::<chrono_tz::Tz>().is_err(), "{bad}");
    }
    assert!(tzdb_version().starts_with(chrono_tz::IANA_TZDB_VERSION), "{}", tzdb_version());
}

#[test]
fn the_same_offset_at_every_instant() {
    let mut transitions = 0;
    for (ours, theirs) in pairs() {
        let spans = ours.spans();
        for &(t, _) in &spans.rest {
            transitions += 1;
            for u in [t - 1, t, t + 1] {
                assert_eq!(utc_offset(&ours, u), utc_offset(&theirs, u), "{ours} at {u}");
            }
        }
        // Between the transitions too (a missed one would show), across meterkit's range.
        let mut t = crate::time::MIN_TIMESTAMP_SECS;
        while t <= crate::time::MAX_TIMESTAMP_SECS {
            assert_eq!(utc_offset(&ours, t), utc_offset(&theirs, t), "{ours} at {t}");
            t += if (-2_500_000_000..2_200_000_000).contains(&t) { 5 * 86_400 + 3_607 } else { 400 * 86_400 };
        }
    }
    assert!(transitions > 60_000, "{transitions}");
}

#[test]
fn the_same_local_times_around_every_transition() {
    for (ours, theirs) in pairs() {
        let spans = ours.spans();
        for (i, &(t, after)) in spans.rest.iter().enumerate() {
            let before = spans.get(i);
            for base in [t + i64::from(before), t + i64::from(after)] {
                for d in [-7_200, -3_601, -3_600, -1_800, -1, 0, 1, 1_800, 3_599, 3_600, 7_200] {
                    let local = DateTime::from_timestamp(base + d, 0).unwrap().naive_utc();
                    assert_eq!(local_offsets(&ours, &local), local_offsets(&theirs, &local), "{ours} at local {local}");
                    let a = ours.from_local_datetime(&local).map(|d| d.timestamp());
                    let b = theirs.from_local_datetime(&local).map(|d| d.timestamp());
                    assert_eq!(a, b, "{ours} at local {local}");
                }
                let date = DateTime::from_timestamp(base, 0).unwrap().date_naive();
                #[allow(deprecated)]
                let (a, b) = (ours.offset_from_local_date(&date), theirs.offset_from_local_date(&date));
                assert_eq!(a.map(|o| o.fix()), b.map(|o| o.fix()), "{ours} on {date}");
            }
        }
    }
}

#[test]
fn rfc3339_local_text_is_the_same() {
    let t = DateTime::from_timestamp(1_710_054_000, 0).unwrap();
    for (ours, theirs) in pairs() {
        let a = t.with_timezone(&ours).to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
        let b = t.with_timezone(&theirs).to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
        assert_eq!(a, b, "{ours}");
    }
}
