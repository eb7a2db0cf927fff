//! Windows: the calendar intervals rollups and bills are computed over, in an IANA time zone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};

use crate::error::{Error, ErrorKind, Result};

mod instant;
#[cfg(feature = "compact-tz")]
pub mod zone;
/// An IANA time zone: chrono-tz's `Tz`, or with the `compact-tz` feature `time::zone::Tz` — the
/// same zones, names and offsets read from a compact copy of chrono-tz's tables.
#[cfg(not(feature = "compact-tz"))]
pub use chrono_tz::Tz;
pub use instant::{fmt_ts, parse_ts, MAX_TIMESTAMP_SECS, MIN_TIMESTAMP_SECS};
pub(crate) use instant::{opt_ts_str, ts_str};
#[cfg(feature = "compact-tz")]
pub use zone::Tz;

/// A window kind: how time is cut into consecutive, non-overlapping intervals.
///
/// Every window is computed in an IANA time zone (see [`Window::span`]) and the intervals of one
/// window in one zone partition time: every instant lies in exactly one, none is skipped or
/// counted twice.
///
/// * `Minutes(n)` and `Hour` follow the local wall clock: a window starts where the local time is a
///   multiple of `n` minutes since local midnight (Asia/Kolkata hours start at :30 UTC). Where
///   the UTC offset changes inside a window, the window is cut at the change, so an hour is never
///   longer than 60 minutes (America/New_York's repeated 01:00 hour is two windows; Lord Howe's
///   half-hour DST change gives a 30-minute window). `n` must divide 1440.
/// * `Day`, `Week` (ISO 8601, starting Monday), `Month`, `Quarter`, `Year` run from local midnight
///   to local midnight, so a New York day is 23 or 25 hours on DST change days and a Lord Howe day
///   23.5 or 24.5 hours. A local midnight that does not exist starts the day at the first instant
///   that does.
/// * `BillingCycle { anchor_day }` runs from the anchor day of one month to the anchor day of the
///   next; an anchor of 29–31 clamps to the month's last day (a cycle anchored on the 31st starts
///   on 28 or 29 February) and never spills into the next month.
///
/// Text form (CLI flags, JSON): `minutes:15`, `hour`, `day`, `week`, `month`, `quarter`, `year`,
/// `cycle:15`.
///
/// ```
/// use meterkit::{Window, time::parse_time_zone};
/// use chrono::{TimeZone, Utc};
/// let ny = parse_time_zone("America/New_York")?;
/// // 2024-03-10 is the spring-forward day in New York: 23 hours.
/// let (start, end) = Window::Day.span(Utc.with_ymd_and_hms(2024, 3, 10, 12, 0, 0).unwrap(), ny)?;
/// assert_eq!((end - start).num_hours(), 23);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "ts",
    derive(ts_rs::TS),
    ts(
        rename = "WindowSpec",
        type = "'hour' | 'day' | 'week' | 'month' | 'quarter' | 'year' | `minutes:${number}` | `cycle:${number}`"
    )
)]
pub enum Window {
    /// `n` minutes by the local clock; `n` divides 1440.
    Minutes(u32),
    /// One local hour.
    Hour,
    /// One local calendar day.
    Day,
    /// One ISO week, Monday 00:00 to Monday 00:00.
    Week,
    /// One calendar month.
    Month,
    /// One calendar quarter (January, April, July, October).
    Quarter,
    /// One calendar year.
    Year,
    /// A billing cycle starting on `anchor_day` (1–31) of each month.
    BillingCycle {
        /// Day of month the cycle starts on; 29–31 clamp to the month's last day.
        anchor_day: u8,
    },
}

impl Window {
    /// Check the window's parameters.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidWindow`] for `Minutes(n)` where `n` is 0 or does not divide 1440, and
    /// for a billing-cycle anchor outside 1–31.
    pub fn check(self) -> Result<Self> {
        match self {
            Window::Minutes(n) if n == 0 || 1440 % n != 0 => Err(Error::new(
                ErrorKind::InvalidWindow,
                format!("A minutes window must divide a day (1440 minutes); {n} does not."),
            )),
            Window::BillingCycle { anchor_day } if !(1..=31).contains(&anchor_day) => Err(Error::new(
                ErrorKind::InvalidWindow,
                format!("A billing-cycle anchor must be a day of month 1-31, not {anchor_day}."),
            )),
            w => Ok(w),
        }
    }

    /// The window `[start, end)` containing instant `t`, computed in zone `tz`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidWindow`] for invalid parameters (see [`Window::check`]) or an instant
    /// outside the supported range.
    pub fn span(self, t: DateTime<Utc>, tz: Tz) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
        let (s, e) = self.span_secs(t.timestamp(), tz)?;
        Ok((secs(s)?, secs(e)?))
    }

    /// The window after the one that starts at `start` (`start` must be a window start).
    ///
    /// # Errors
    /// As [`Window::span`].
    pub fn next_start(self, start: DateTime<Utc>, tz: Tz) -> Result<DateTime<Utc>> {
        Ok(self.span(start, tz)?.1)
    }

    /// `span` on Unix seconds: `(start, end)`.
    pub(crate) fn span_secs(self, t: i64, tz: Tz) -> Result<(i64, i64)> {
        self.check()?;
        let out_of_range = || Error::new(ErrorKind::InvalidWindow, format!("The instant {t} is out of range."));
        let utc = DateTime::from_timestamp(t, 0).ok_or_else(out_of_range)?;
        let local = utc.with_timezone(&tz);
        match self {
            Window::Minutes(_) | Window::Hour => {
                let n = i64::from(if let Window::Minutes(n) = self { n } else { 60 });
                let offset = i64::from(local.offset().fix().local_minus_utc());
                let naive = local.naive_local();
                let minute_of_day = i64::from(naive.hour() * 60 + naive.minute());
                let floor_minute = minute_of_day - minute_of_day % n;
                let day_start = naive.date().and_hms_opt(0, 0, 0).ok_or_else(out_of_range)?;
                let local_start = day_start.and_utc().timestamp() + floor_minute * 60;
                let mut start = local_start - offset;
                let mut end = start + n * 60;
                // Cut at a UTC offset change inside the window.
                if offset_at(tz, start) != offset {
                    start = first_with_offset(tz, start, t, offset);
                }
                if offset_at(tz, end - 1) != offset {
                    end = first_without_offset(tz, t, end - 1, offset);
                }
                Ok((start, end))
            }
            _ => {
                let date = local.date_naive();
                let (first, next) = self.calendar_bounds(date).ok_or_else(out_of_range)?;
                Ok((local_midnight(tz, first)?, local_midnight(tz, next)?))
            }
        }
    }

    /// Start date of the calendar window containing `date`, and start date of the next one.
    fn calendar_bounds(self, date: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        let month_start = |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, 1);
        let add_months = |d: NaiveDate, k: u32| d.checked_add_months(chrono::Months::new(k));
        match self {
            Window::Day => Some((date, date.succ_opt()?)),
            Window::Week => {
                let first =
                    date.checked_sub_signed(Duration::days(i64::from(date.weekday().num_days_from_monday())))?;
                Some((first, first.checked_add_signed(Duration::days(7))?))
            }
            Window::Month => {
                let first = month_start(date.year(), date.month())?;
                Some((first, add_months(first, 1)?))
            }
            Window::Quarter => {
                let first = month_start(date.year(), (date.month0() / 3) * 3 + 1)?;
                Some((first, add_months(first, 3)?))
            }
            Window::Year => {
                let first = month_start(date.year(), 1)?;
                Some((first, month_start(date.year() + 1, 1)?))
            }
            Window::BillingCycle { anchor_day } => {
                let this_month = month_start(date.year(), date.month())?;
                let anchor_in = |m: NaiveDate| anchor_date(m, anchor_day);
                let this_anchor = anchor_in(this_month)?;
                if date >= this_anchor {
                    Some((this_anchor, anchor_in(add_months(this_month, 1)?)?))
                } else {
                    let prev = this_month.checked_sub_months(chrono::Months::new(1))?;
                    Some((anchor_in(prev)?, this_anchor))
                }
            }
            Window::Minutes(_) | Window::Hour => None,
        }
    }

    /// True for windows that follow the local clock within a day (`Minutes`, `Hour`).
    pub fn is_sub_daily(self) -> bool {
        matches!(self, Window::Minutes(_) | Window::Hour)
    }
}

/// The date of `anchor_day` in the month starting at `month_first`, clamped to its last day.
fn anchor_date(month_first: NaiveDate, anchor_day: u8) -> Option<NaiveDate> {
    let next = month_first.checked_add_months(chrono::Months::new(1))?;
    let last = next.pred_opt()?.day();
    month_first.with_day(u32::from(anchor_day).min(last))
}

/// The instant a local date or wall-clock time in `tz` names (issue 14: a chart's "1 January in
/// Kolkata" → `2024-12-31T18:30:00Z`). `text` is a date `YYYY-MM-DD` — its first instant: local
/// midnight, or the first instant after a midnight a DST change skips (America/Santiago) — or a
/// local time `YYYY-MM-DDTHH:MM[:SS[.f]]` (`T` or a space); an RFC 3339 text with an offset is
/// taken as is.
///
/// # Errors
/// [`ErrorKind::Parse`] (field `local`) for other text, and for a local time a DST change skips
/// or repeats (the offset is then needed to say which instant).
pub fn local_instant(text: &str, tz: Tz) -> Result<DateTime<Utc>> {
    use chrono::LocalResult;
    let t = text.trim();
    let err = |why: String| Error::new(ErrorKind::Parse, why).with_field("local");
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let secs = local_midnight(tz, d)?;
        return DateTime::from_timestamp(secs, 0).ok_or_else(|| err(format!("The date {d} is out of range.")));
    }
    let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
        .ok_or_else(|| err(format!("'{t}' is not a local date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM[:SS]).")))?;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(d) => Ok(d.with_timezone(&Utc)),
        LocalResult::Ambiguous(..) => {
            Err(err(format!("'{t}' occurs twice in {tz} (a DST change); give it with its UTC offset.")))
        }
        LocalResult::None => Err(err(format!("'{t}' does not exist in {tz} (skipped by a DST change)."))),
    }
}

/// The first instant of local date `d` in `tz` (Unix seconds): local midnight, the earlier of two
/// if it is repeated, or the first existing instant after it if it is skipped.
pub(crate) fn local_midnight(tz: Tz, d: NaiveDate) -> Result<i64> {
    let err = || Error::new(ErrorKind::InvalidWindow, format!("The date {d} is out of range."));
    let midnight = d.and_hms_opt(0, 0, 0).ok_or_else(err)?;
    first_instant_at_or_after(tz, midnight).ok_or_else(err)
}

/// The first instant whose local time is `local` or, if `local` is skipped by a transition,
/// the transition instant itself.
#[allow(clippy::unnecessary_wraps)]
pub(crate) fn first_instant_at_or_after(tz: Tz, local: NaiveDateTime) -> Option<i64> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.timestamp()),
        LocalResult::Ambiguous(a, b) => Some(a.timestamp().min(b.timestamp())),
        LocalResult::None => {
            // A gap: local time jumps over `local`. The instant just before the jump has the old
            // offset; the transition happens at `local - old_offset`.
            let probe = local.and_utc().timestamp() - 36 * 3600;
            let old = offset_at(tz, probe);
            let candidate = local.and_utc().timestamp() - old;
            // The transition is the first instant >= candidate whose offset differs from `old`,
            // which for a gap is at (or, with odd data, shortly after) `candidate`.
            if offset_at(tz, candidate) == old {
                Some(first_without_offset(tz, candidate, candidate + 48 * 3600, old))
            } else {
                Some(first_with_offset(tz, candidate - 48 * 3600, candidate, offset_at(tz, candidate)))
            }
        }
    }
}

/// UTC offset in seconds at instant `t` (seconds since the epoch).
pub(crate) fn offset_at(tz: Tz, t: i64) -> i64 {
    DateTime::from_timestamp(t, 0).map_or(0, |u| i64::from(u.with_timezone(&tz).offset().fix().local_minus_utc()))
}

/// Smallest `u` in `(lo, hi]` with `offset_at(u) == offset` for all of `[u, hi]`, given
/// `offset_at(hi) == offset` and `offset_at(lo) != offset` (a binary search for the transition).
fn first_with_offset(tz: Tz, mut lo: i64, mut hi: i64, offset: i64) -> i64 {
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, mid) == offset {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Smallest `u` in `(lo, hi]` with `offset_at(u) != offset`, given `offset_at(lo) == offset` and
/// `offset_at(hi) != offset`.
fn first_without_offset(tz: Tz, mut lo: i64, mut hi: i64, offset: i64) -> i64 {
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, mid) == offset {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

fn secs(t: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp(t, 0)
        .ok_or_else(|| Error::new(ErrorKind::InvalidWindow, format!("The instant {t} is out of range.")))
}

/// Parse an IANA time-zone name (`Europe/London`, `UTC`, `Asia/Kolkata`).
///
/// # Errors
/// [`ErrorKind::InvalidTimeZone`] naming the zone when chrono-tz does not know it.
pub fn parse_time_zone(name: &str) -> Result<Tz> {
    name.parse::<Tz>().map_err(|_| {
        Error::new(ErrorKind::InvalidTimeZone, format!("'{name}' is not an IANA time zone.")).with_field("time_zone")
    })
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Minutes(n) => write!(f, "minutes:{n}"),
            Window::Hour => f.write_str("hour"),
            Window::Day => f.write_str("day"),
            Window::Week => f.write_str("week"),
            Window::Month => f.write_str("month"),
            Window::Quarter => f.write_str("quarter"),
            Window::Year => f.write_str("year"),
            Window::BillingCycle { anchor_day } => write!(f, "cycle:{anchor_day}"),
        }
    }
}

impl FromStr for Window {
    type Err = Error;

    /// Parse `minutes:N`, `hour`, `day`, `week`, `month`, `quarter`, `year` or `cycle:DAY`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::new(
                ErrorKind::InvalidWindow,
                format!("'{s}' is not a window (minutes:N, hour, day, week, month, quarter, year, cycle:DAY)."),
            )
            .with_field("window")
        };
        let w = match s.trim().to_ascii_lowercase().as_str() {
            "hour" | "hourly" => Window::Hour,
            "day" | "daily" => Window::Day,
            "week" | "weekly" => Window::Week,
            "month" | "monthly" => Window::Month,
            "quarter" | "quarterly" => Window::Quarter,
            "year" | "yearly" => Window::Year,
            other => {
                let (kind, n) = other.split_once(':').ok_or_else(bad)?;
                match kind {
                    "minutes" => Window::Minutes(n.parse().map_err(|_| bad())?),
                    "cycle" => Window::BillingCycle { anchor_day: n.parse().map_err(|_| bad())? },
                    _ => return Err(bad()),
                }
            }
        };
        w.check()
    }
}

impl serde::Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        s.parse().map_err(|e: Error| serde::de::Error::custom(e.message()))
    }
}

/// A window in a zone, fast: the per-record hot path of rollups.
///
/// Two mechanisms, neither of which can give a wrong answer:
/// * For `Minutes`, `Hour` and `Day`, the clock keeps the recent **offset segments** of the zone
///   (maximal intervals with one UTC offset, found once by probing the zone day by day and a
///   binary search at each change). Inside a segment local time is `t + offset`, so a window is
///   integer arithmetic; a window that would reach outside its segment (it touches an offset
///   change) takes the exact path, [`Window::span_secs`].
/// * Other windows (and those exact-path cases) use a direct-mapped cache of recent spans keyed
///   by the instant's day (15 minutes for sub-daily windows); a hit requires the instant to lie
///   inside the cached span.
#[derive(Debug, Clone)]
pub(crate) struct WindowClock {
    window: Window,
    tz: Tz,
    /// Window length in seconds for the segment fast path (`Minutes`, `Hour`, `Day`), else 0.
    fast_len: i64,
    /// `(start, end, offset)` of known offset segments, most recently used first.
    segments: Vec<(i64, i64, i64)>,
    slot_secs: i64,
    /// Recent spans off the fast path, [`CACHE_SLOTS`] of them once one is needed (empty before).
    cache: Box<[(i64, i64)]>,
}

/// Offset segments found by any clock, with their zone: `(zone, (start, end, offset))`. A
/// segment is a fact about the zone (an interval of one UTC offset in the compiled-in tz
/// database), so sharing it between clocks changes no answer; it spares each new clock — one per
/// ingest call, so one per record for a per-record feed — the ≈ 800 zone lookups of
/// [`WindowClock::find_segment`]. At most [`KNOWN_SEGMENTS_MAX`] are kept (the newest replace the
/// oldest).
static KNOWN_SEGMENTS: std::sync::Mutex<Vec<(Tz, Segment)>> = std::sync::Mutex::new(Vec::new());
/// `(start, end, offset)`: Unix seconds `[start, end)` in which the zone's UTC offset is `offset`
/// seconds.
type Segment = (i64, i64, i64);
const KNOWN_SEGMENTS_MAX: usize = 256;

/// A known segment of `tz` containing `t`.
fn known_segment(tz: Tz, t: i64) -> Option<Segment> {
    let known = KNOWN_SEGMENTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    known.iter().rev().find(|(z, (s, e, _))| *z == tz && *s <= t && t < *e).map(|k| k.1)
}

/// Keep `seg` of `tz` for later clocks.
fn remember_segment(tz: Tz, seg: Segment) {
    let mut known = KNOWN_SEGMENTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if known.len() >= KNOWN_SEGMENTS_MAX {
        known.remove(0);
    }
    known.push((tz, seg));
}

const CACHE_SLOTS: usize = 1024;
/// How far the segment search probes from an instant (days); a zone without changes in that
/// range gets a segment of that size, and beyond it a new one.
const SEGMENT_PROBE_DAYS: i64 = 400;
const SEGMENTS_KEPT: usize = 8;

impl WindowClock {
    pub(crate) fn new(window: Window, tz: Tz) -> Result<Self> {
        window.check()?;
        let fast_len = match window {
            Window::Minutes(n) => i64::from(n) * 60,
            Window::Hour => 3600,
            Window::Day => 86_400,
            _ => 0,
        };
        Ok(WindowClock {
            window,
            tz,
            fast_len,
            segments: Vec::new(),
            slot_secs: if window.is_sub_daily() { 900 } else { 86_400 },
            cache: Box::default(),
        })
    }

    /// `(start, end)` in Unix seconds of the window containing `t` (Unix seconds).
    #[inline]
    pub(crate) fn span(&mut self, t: i64) -> Result<(i64, i64)> {
        if self.fast_len > 0 && (MIN_FAST..MAX_FAST).contains(&t) {
            let (s, e, off) = self.segment(t);
            let local = t + off;
            let start = local - local.rem_euclid(self.fast_len) - off;
            let end = start + self.fast_len;
            // Days need both midnights strictly inside the segment (a midnight at a change may be
            // repeated or skipped); sub-daily windows may touch the segment's ends.
            let inside = if self.window == Window::Day { s < start && end < e } else { s <= start && end <= e };
            if inside {
                return Ok((start, end));
            }
        }
        if self.cache.is_empty() {
            // Made on the first window off the fast path: a clock of hours or days in one offset
            // segment (one ingest call's) never needs it.
            self.cache = vec![(0, 0); CACHE_SLOTS].into_boxed_slice();
        }
        let slot = (t.div_euclid(self.slot_secs) as usize) % CACHE_SLOTS;
        let (s, e) = self.cache[slot];
        if s <= t && t < e {
            return Ok((s, e));
        }
        let span = self.window.span_secs(t, self.tz)?;
        self.cache[slot] = span;
        Ok(span)
    }

    /// The offset segment containing `t`.
    #[inline]
    fn segment(&mut self, t: i64) -> (i64, i64, i64) {
        if let Some(&seg) = self.segments.first() {
            if seg.0 <= t && t < seg.1 {
                return seg;
            }
        }
        if let Some(i) = self.segments.iter().position(|&(s, e, _)| s <= t && t < e) {
            let seg = self.segments.remove(i);
            self.segments.insert(0, seg);
            return seg;
        }
        let seg = known_segment(self.tz, t).unwrap_or_else(|| {
            let seg = self.find_segment(t);
            remember_segment(self.tz, seg);
            seg
        });
        self.segments.insert(0, seg);
        self.segments.truncate(SEGMENTS_KEPT);
        seg
    }

    fn find_segment(&self, t: i64) -> (i64, i64, i64) {
        let tz = self.tz;
        let off = offset_at(tz, t);
        let mut start = t;
        for _ in 0..SEGMENT_PROBE_DAYS {
            let probe = start - 86_400;
            if offset_at(tz, probe) != off {
                start = first_with_offset(tz, probe, start, off);
                break;
            }
            start = probe;
        }
        let mut end = t;
        for _ in 0..SEGMENT_PROBE_DAYS {
            let probe = end + 86_400;
            if offset_at(tz, probe) != off {
                end = first_without_offset(tz, end, probe, off);
                break;
            }
            end = probe;
        }
        if end == t {
            end = t + 1;
        }
        (start, end, off)
    }
}

/// Instants the segment fast path handles (years 1678-2261 with room for probing).
const MIN_FAST: i64 = MIN_TIMESTAMP_SECS + 500 * 86_400;
const MAX_FAST: i64 = MAX_TIMESTAMP_SECS - 500 * 86_400;

#[cfg(test)]
mod clock_tests {
    use super::*;

    /// Every segment a clock shares with later clocks has one offset throughout (checked at its
    /// ends and every day), and a new clock answers from it as the first did.
    #[test]
    fn shared_segments_hold_one_offset() {
        for zone in ["Europe/London", "Australia/Lord_Howe", "UTC"] {
            let tz = parse_time_zone(zone).unwrap();
            for t in [1_700_000_000, 1_711_846_800, 1_711_846_799] {
                let first = WindowClock::new(Window::Hour, tz).unwrap().span(t).unwrap();
                assert_eq!(WindowClock::new(Window::Hour, tz).unwrap().span(t).unwrap(), first);
                assert_eq!(first, Window::Hour.span_secs(t, tz).unwrap());
            }
        }
        let known = KNOWN_SEGMENTS.lock().unwrap().clone();
        assert!(!known.is_empty());
        for (tz, (s, e, off)) in known {
            let days = (s..e).step_by(86_400).chain([e - 1]);
            assert!(days.into_iter().all(|t| offset_at(tz, t) == off), "{tz} [{s}, {e}) is not one offset {off}");
        }
    }

    /// The fast clock agrees with the exact computation at every quarter hour of two years in
    /// zones with whole-hour, half-hour, 45-minute and midnight changes.
    #[test]
    fn clock_equals_exact_span() {
        for zone in [
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
            "America/Santiago",
            "Asia/Kathmandu",
            "UTC",
            "Africa/Casablanca",
        ] {
            let tz = parse_time_zone(zone).unwrap();
            for w in [Window::Minutes(15), Window::Hour, Window::Day, Window::Minutes(90), Window::Week, Window::Month]
            {
                let mut clock = WindowClock::new(w, tz).unwrap();
                let mut t = 1_672_531_200 - 7; // 2022-12-31T23:59:53Z
                while t < 1_672_531_200 + 2 * 365 * 86_400 {
                    assert_eq!(clock.span(t).unwrap(), w.span_secs(t, tz).unwrap(), "{zone} {w} at {t}");
                    t += 899;
                }
                // And in random order (cache and segment reuse).
                let mut x: u64 = 42;
                for _ in 0..20_000 {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let t = 1_600_000_000 + (x >> 33) as i64 % (4 * 365 * 86_400);
                    assert_eq!(clock.span(t).unwrap(), w.span_secs(t, tz).unwrap(), "{zone} {w} at {t}");
                }
            }
        }
    }
}
