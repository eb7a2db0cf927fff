//! Usage records: the unit of input.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Dimensions of a usage record: a sorted map of string keys to string values
/// (`carrier`, `region`, `direction` = `up`/`down`, `category`, `status`, …).
pub type Dimensions = BTreeMap<String, String>;

/// One measured amount of usage: `quantity` of `metric` used by `subject` at `timestamp`.
///
/// * `(tenant, id)` is the **idempotency key**: ingesting the same key with the same content again
///   is a duplicate and changes nothing; the same key with different content is a conflict.
/// * `quantity` is exact (`rust_decimal::Decimal`) in the metric's unit — kWh, bytes, requests,
///   messages. It may be negative only where the metric allows it (see validation).
/// * `timestamp` is the instant the usage starts (interval data: the start of the interval);
///   `end`, if given, is when it ends and must not be before `timestamp`. Rollups place a record
///   in the window that contains `timestamp`.
/// * `dimensions` hold the attributes rollups can group and filter by.
///
/// JSON shape (the CLI's `jsonl` format and every binding):
/// `{"id","tenant","subject","metric","quantity","timestamp","end"?,"dimensions"?}` with
/// `quantity` a string (a JSON number is accepted on input and read exactly from its text, never
/// through a binary float: `12345678901234567890.5` stays that number) and timestamps in RFC 3339.
///
/// ```
/// use meterkit::UsageRecord;
/// let r: UsageRecord = serde_json::from_str(
///     r#"{"id":"r1","tenant":"t","subject":"sim-1","metric":"bytes","quantity":1024,
///         "timestamp":"2024-03-01T10:00:00+01:00","dimensions":{"carrier":"acme"}}"#,
/// )?;
/// assert_eq!(r.quantity.to_string(), "1024");
/// assert_eq!(r.timestamp.to_rfc3339(), "2024-03-01T09:00:00+00:00");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageRecord {
    /// Caller-chosen id, unique per tenant (the idempotency key with `tenant`).
    pub id: String,
    /// The tenant the record belongs to; no call ever mixes tenants.
    pub tenant: String,
    /// Who or what used it: a meter, a SIM card (ICCID), a customer, an API key.
    pub subject: String,
    /// What was used: `kwh`, `bytes`, `requests`, `messages`, ….
    pub metric: String,
    /// How much, exactly, in the metric's unit.
    #[serde(with = "decimal_str")]
    pub quantity: Decimal,
    /// When the usage starts (UTC instant; any offset is accepted on input).
    #[serde(with = "ts_str")]
    pub timestamp: DateTime<Utc>,
    /// When the usage ends, for sessions and intervals.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_ts_str")]
    pub end: Option<DateTime<Utc>>,
    /// Attributes to group and filter by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: Dimensions,
    /// Whether the quantity was measured (`actual`, omitted from JSON), measured but flagged by
    /// validation (`flagged`), or estimated (`estimated`). See [`Quality`].
    #[serde(default, skip_serializing_if = "Quality::is_actual")]
    pub quality: Quality,
}

/// The data quality of a usage record, as set by validation and estimation (VEE).
///
/// * `actual` — measured and accepted as is (the default; not written in JSON).
/// * `flagged` — measured, but a validation rule raised a finding with action `flag`; it is
///   billed, and rollups count it in `flagged_count` / `flagged_sum`.
/// * `estimated` — not measured: filled in by estimation (a gap); rollups count it in
///   `estimated_count` / `estimated_sum`, and it is never part of an "actual" total.
///
/// JSON: `"actual"`, `"flagged"`, `"estimated"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Measured and accepted.
    #[default]
    Actual,
    /// Measured, flagged by a validation rule, still billed.
    Flagged,
    /// Estimated (never measured).
    Estimated,
}

impl Quality {
    /// True for [`Quality::Actual`] (used to omit the field from JSON).
    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub fn is_actual(&self) -> bool {
        *self == Quality::Actual
    }

    /// The snake_case name (`actual`, `flagged`, `estimated`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Quality::Actual => "actual",
            Quality::Flagged => "flagged",
            Quality::Estimated => "estimated",
        }
    }
}

/// The earliest instant a record may carry (1678-01-01, the start of `i64` nanoseconds).
pub const MIN_TIMESTAMP_SECS: i64 = -9_214_560_000;
/// The latest instant a record may carry (2261-12-31).
pub const MAX_TIMESTAMP_SECS: i64 = 9_214_646_400;

impl UsageRecord {
    /// A record with no `end` and no dimensions.
    pub fn new(
        tenant: impl Into<String>,
        id: impl Into<String>,
        subject: impl Into<String>,
        metric: impl Into<String>,
        quantity: Decimal,
        timestamp: DateTime<Utc>,
    ) -> Self {
        UsageRecord {
            id: id.into(),
            tenant: tenant.into(),
            subject: subject.into(),
            metric: metric.into(),
            quantity,
            timestamp,
            end: None,
            dimensions: Dimensions::new(),
            quality: Quality::Actual,
        }
    }

    /// Add a dimension (builder style).
    #[must_use]
    pub fn with_dimension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.dimensions.insert(key.into(), value.into());
        self
    }

    /// Set `end` (builder style).
    #[must_use]
    pub fn with_end(mut self, end: DateTime<Utc>) -> Self {
        self.end = Some(end);
        self
    }

    /// Check the record's shape: non-empty `id`, `tenant`, `subject` and `metric`; `end` not
    /// before `timestamp`; timestamps within years 1678–2261.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRecord`](crate::ErrorKind::InvalidRecord) naming the field.
    pub fn check(&self) -> Result<()> {
        let bad = |field: &str, msg: String| {
            Err(Error::invalid_record(msg).with_field(field).with_record_id(self.id.clone()))
        };
        for (field, value) in
            [("id", &self.id), ("tenant", &self.tenant), ("subject", &self.subject), ("metric", &self.metric)]
        {
            if value.is_empty() {
                return bad(field, format!("The record's {field} is empty."));
            }
        }
        let in_range = |t: &DateTime<Utc>| (MIN_TIMESTAMP_SECS..MAX_TIMESTAMP_SECS).contains(&t.timestamp());
        if !in_range(&self.timestamp) {
            return bad("timestamp", format!("The timestamp {} is outside years 1678-2261.", fmt_ts(self.timestamp)));
        }
        if let Some(end) = self.end {
            if !in_range(&end) {
                return bad("end", format!("The end {} is outside years 1678-2261.", fmt_ts(end)));
            }
            if end < self.timestamp {
                return bad(
                    "end",
                    format!("The end {} is before the timestamp {}.", fmt_ts(end), fmt_ts(self.timestamp)),
                );
            }
        }
        Ok(())
    }

    /// Set the quality (builder style).
    #[must_use]
    pub fn with_quality(mut self, quality: Quality) -> Self {
        self.quality = quality;
        self
    }

    /// True when `other` has the same content (quantities compared by value, so `1.5` = `1.50`).
    /// The [`quality`](UsageRecord::quality) mark is not content: validation may flag a stored
    /// record, and the same record sent again is still a duplicate.
    pub fn same_content(&self, other: &UsageRecord) -> bool {
        self.id == other.id
            && self.tenant == other.tenant
            && self.subject == other.subject
            && self.metric == other.metric
            && self.quantity == other.quantity
            && self.timestamp == other.timestamp
            && self.end == other.end
            && self.dimensions == other.dimensions
    }
}

/// Format an instant as RFC 3339 in UTC with a `Z` suffix and only as many fractional digits
/// as needed (`2024-03-01T09:00:00Z`, `2024-03-01T09:00:00.5Z`): the one timestamp format of
/// every JSON output.
pub fn fmt_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Format a decimal in its shortest exact form (`1.50` → `1.5`, `2.000` → `2`): the one decimal
/// format of every JSON output, so that equal values always print the same.
pub fn fmt_decimal(d: Decimal) -> String {
    d.normalize().to_string()
}

/// `a + b`, exactly, or `None`: rust_decimal's `checked_add` rounds a sum that needs more than 28
/// significant digits (reducing its scale) instead of failing; meterkit refuses that, because a
/// rounded sum is a wrong number.
#[inline]
pub(crate) fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    let sum = a.checked_add(b)?;
    if sum.scale() >= a.scale().max(b.scale()) {
        return Some(sum); // no digit was dropped
    }
    // The scale shrank: either trailing zeros went (e.g. `1.5 + -1.5 = 0`) or digits were rounded.
    (sum.checked_sub(a) == Some(b)).then_some(sum)
}

/// Parse a decimal from text: plain (`12.5`, `-3`, `+.5`) or scientific (`1e-3`, `2.5E6`),
/// exactly — never rounded.
///
/// The grammar is an optional sign, ASCII digits with at most one `.` (at least one digit), and
/// an optional exponent (`e`/`E`, optional sign, digits); surrounding whitespace is
/// ignored. Trailing zeros beyond 28 fractional digits are dropped, as they do not change the
/// value (`1.000…0` with 30 zeros is `1`).
///
/// # Errors
/// [`ErrorKind::Parse`](crate::ErrorKind::Parse) when the text is not such a number (`NaN`, `inf`,
/// `1_000`, `1,5` and empty text are refused), when its value needs more than 28 fractional digits
/// (`0.00000000000000000000000000001`, `5e-324`), or when it does not fit in 96 bits
/// (`79228162514264337593543950336`): a decimal that would have to be rounded is refused.
pub fn parse_decimal(text: &str) -> Result<Decimal> {
    exact_decimal(text.trim())
        .map_err(|why| Error::new(crate::ErrorKind::Parse, format!("'{text}' is not a decimal number ({why}).")))
}

/// The most fractional digits a [`Decimal`] holds.
const MAX_SCALE: i64 = 28;

fn exact_decimal(t: &str) -> std::result::Result<Decimal, &'static str> {
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.len() + frac.len() == 0 || !all_digits(int) || !all_digits(frac) {
        return Err("expected digits with an optional sign, `.` and exponent");
    }
    // The value is `digits × 10^-scale`, with no leading zeros in `digits`.
    let mut digits: String = int.chars().chain(frac.chars()).skip_while(|&c| c == '0').collect();
    let exp: i64 = match exponent {
        None => 0,
        Some(e) => {
            let (minus, e_digits) = match e.as_bytes().first() {
                Some(b'-') => (true, &e[1..]),
                Some(b'+') => (false, &e[1..]),
                _ => (false, e),
            };
            if e_digits.is_empty() || !all_digits(e_digits) {
                return Err("the exponent is not a number");
            }
            let e_digits = e_digits.trim_start_matches('0');
            if e_digits.len() > 6 {
                // |exponent| ≥ 10^6: only zero has such a value in range.
                return if digits.is_empty() { Ok(Decimal::ZERO) } else { Err("the exponent is out of range") };
            }
            let magnitude: i64 = if e_digits.is_empty() { 0 } else { e_digits.parse().map_err(|_| "bad exponent")? };
            if minus {
                -magnitude
            } else {
                magnitude
            }
        }
    };
    let mut scale = frac.len() as i64 - exp;
    if digits.is_empty() {
        return Decimal::try_from_i128_with_scale(0, scale.clamp(0, MAX_SCALE) as u32).map_err(|_| "out of range");
    }
    while scale > MAX_SCALE && digits.ends_with('0') {
        digits.pop();
        scale -= 1;
    }
    if scale > MAX_SCALE {
        return Err("more than 28 decimal places");
    }
    if scale < 0 {
        if digits.len() as i64 - scale > 29 {
            return Err("too large: more than 96 bits");
        }
        digits.extend(std::iter::repeat_n('0', (-scale) as usize));
        scale = 0;
    }
    let m: i128 = if digits.len() > 29 { None } else { digits.parse().ok() }.ok_or("too large: more than 96 bits")?;
    let m = if negative { -m } else { m };
    Decimal::try_from_i128_with_scale(m, scale as u32).map_err(|_| "too large: more than 96 bits")
}

/// Convert a binary float to a decimal through its shortest round-trip text, so `0.1` becomes
/// exactly `0.1` (not `0.1000000000000000055…`).
///
/// # Errors
/// [`ErrorKind::Parse`](crate::ErrorKind::Parse) for NaN, infinities and values out of range.
pub fn decimal_from_f64(value: f64) -> Result<Decimal> {
    if !value.is_finite() {
        return Err(Error::new(crate::ErrorKind::Parse, format!("{value} is not a finite number.")));
    }
    parse_decimal(&format!("{value}"))
}

/// Parse an RFC 3339 timestamp (`2024-03-01T10:00:00+01:00`, also with a space for `T`).
///
/// # Errors
/// [`ErrorKind::Parse`](crate::ErrorKind::Parse) when the text is not RFC 3339 with an offset.
pub fn parse_ts(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::new(crate::ErrorKind::Parse, format!("'{text}' is not an RFC 3339 timestamp ({e}).")))
}

pub(crate) mod decimal_str {
    use rust_decimal::Decimal;
    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt_decimal(*d))
    }

    struct V;
    impl<'de> de::Visitor<'de> for V {
        type Value = Decimal;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a decimal number as a string or a number")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            super::parse_decimal(v).map_err(|e| E::custom(e.message()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            super::decimal_from_f64(v).map_err(|e| E::custom(e.message()))
        }
        fn visit_i128<E: de::Error>(self, v: i128) -> Result<Decimal, E> {
            Decimal::try_from_i128_with_scale(v, 0).map_err(|_| E::custom(format!("{v} does not fit in 96 bits")))
        }
        fn visit_u128<E: de::Error>(self, v: u128) -> Result<Decimal, E> {
            let v = i128::try_from(v).map_err(|_| E::custom(format!("{v} does not fit in 96 bits")))?;
            self.visit_i128(v)
        }
        /// A JSON number serde_json keeps as its text (the `arbitrary_precision` feature): a
        /// one-entry map `{"$serde_json::private::Number": "12345678901234567890.5"}`, parsed
        /// exactly.
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Decimal, A::Error> {
            let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? else {
                return Err(de::Error::custom("expected a decimal number, found an object"));
            };
            if key != "$serde_json::private::Number" {
                return Err(de::Error::custom("expected a decimal number, found an object"));
            }
            let text: std::borrow::Cow<'de, str> = map.next_value()?;
            super::parse_decimal(&text).map_err(|e| de::Error::custom(e.message()))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(V)
    }
}

pub(crate) mod opt_decimal_str {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::fmt_decimal(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "super::decimal_str")] Decimal);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
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
