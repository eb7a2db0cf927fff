//! Instants: the range a record may carry, RFC 3339 parsing and printing, and their serde forms.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{Error, Result};

/// The earliest instant a record may carry (1678-01-01, the start of `i64` nanoseconds).
pub const MIN_TIMESTAMP_SECS: i64 = -9_214_560_000;
/// The latest instant a record may carry (2261-12-31).
pub const MAX_TIMESTAMP_SECS: i64 = 9_214_646_400;

/// Format an instant as RFC 3339 in UTC with a `Z` suffix and only as many fractional digits
/// as needed (`2024-03-01T09:00:00Z`, `2024-03-01T09:00:00.5Z`): the one timestamp format of
/// every JSON output.
pub fn fmt_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parse an RFC 3339 timestamp (`2024-03-01T10:00:00+01:00`, also with a space for `T`).
///
/// # Errors
/// [`ErrorKind::Parse`](crate::error::ErrorKind::Parse) when the text is not RFC 3339 with an offset.
pub fn parse_ts(text: &str) -> Result<DateTime<Utc>> {
    if let Some(t) = parse_utc(text.trim()) {
        return Ok(t);
    }
    DateTime::parse_from_rfc3339(text.trim()).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        Error::new(crate::error::ErrorKind::Parse, format!("'{text}' is not an RFC 3339 timestamp ({e})."))
    })
}

/// The common form `YYYY-MM-DDTHH:MM:SS[.f]Z` (1 to 9 fraction digits, year 1 or later, second
/// below 60) read without chrono's general parser: the instant chrono's RFC 3339 parser gives for
/// it; `None` for any other text (or an invalid date), which is left to chrono.
fn parse_utc(t: &str) -> Option<DateTime<Utc>> {
    let b = t.as_bytes();
    let end = b.len().checked_sub(1)?;
    if b.len() < 20 || b[end] != b'Z' || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let nanos = match end - 19 {
        0 => 0,
        digits @ 2..=10 if b[19] == b'.' => num(20, end)? * 10u32.pow(10 - digits as u32),
        _ => return None,
    };
    let (year, second) = (num(0, 4)?, num(17, 19)?);
    if year == 0 || second > 59 {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, num(5, 7)?, num(8, 10)?)?;
    Some(date.and_hms_nano_opt(num(11, 13)?, num(14, 16)?, second, nanos)?.and_utc())
}

pub(crate) mod ts_str {
    use chrono::{DateTime, Utc};
    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt_ts(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        d.deserialize_string(Text)
    }

    /// A timestamp string read in place (a `String` would be allocated for each).
    struct Text;

    impl de::Visitor<'_> for Text {
        type Value = DateTime<Utc>;

        // What `String`'s visitor expects: the same message for a value of another type.
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<DateTime<Utc>, E> {
            super::parse_ts(s).map_err(|e| E::custom(e.message()))
        }

        fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<DateTime<Utc>, E> {
            let s = std::str::from_utf8(b).map_err(|_| E::invalid_value(de::Unexpected::Bytes(b), &self))?;
            self.visit_str(s)
        }
    }
}

pub(crate) mod opt_ts_str {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::fmt_ts(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "super::ts_str")] DateTime<Utc>);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    proptest! {
        /// The fast path gives what chrono's RFC 3339 parser gives, for valid and invalid dates
        /// alike (days 0–31 of every month, hours to 24, second 60, 0–10 fraction digits).
        #[test]
        fn parse_ts_is_chronos_rfc3339(year in 0u32..10_000, month in 0u32..14, day in 0u32..33, hour in 0u32..26,
                                       minute in 0u32..61, second in 0u32..62, frac in proptest::option::of("[0-9]{0,10}"),
                                       lower in proptest::bool::ANY) {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            let z = if lower { "z" } else { "Z" };
            let text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{frac}{z}");
            let chrono = DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).ok();
            prop_assert_eq!(super::parse_ts(&text).ok(), chrono, "{}", text);
        }
    }
}
