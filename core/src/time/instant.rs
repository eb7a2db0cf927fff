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
    DateTime::parse_from_rfc3339(text.trim()).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        Error::new(crate::error::ErrorKind::Parse, format!("'{text}' is not an RFC 3339 timestamp ({e})."))
    })
}

pub(crate) mod ts_str {
    use chrono::{DateTime, Utc};
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt_ts(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        super::parse_ts(&s).map_err(|e| de::Error::custom(e.message()))
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
