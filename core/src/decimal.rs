//! Exact decimals: parsing and printing quantities and money, checked arithmetic, and the serde
//! forms every JSON output uses (decimal strings, never binary floats).

use rust_decimal::Decimal;

use crate::error::{Error, Result};

/// Format a decimal in its shortest exact form (`1.50` → `1.5`, `2.000` → `2`): the one decimal
/// format of every JSON output, so that equal values always print the same.
pub fn fmt_decimal(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Format an amount of money as every JSON output prints it: exact, with its scale kept (a bill
/// amount rounded to the currency's minor unit prints `12.30`, not `12.3`). Hosts use this instead
/// of serialising a bill line to get the text of an amount.
///
/// ```
/// use rust_decimal::Decimal;
/// assert_eq!(meterkit::decimal::fmt_money(Decimal::new(1230, 2)), "12.30");
/// assert_eq!(meterkit::decimal::fmt_money(Decimal::new(-5, 0)), "-5");
/// ```
pub fn fmt_money(d: Decimal) -> String {
    d.to_string()
}

/// `a + b`, exactly, or `None`: rust_decimal's `checked_add` rounds a sum that needs more than 28
/// significant digits (reducing its scale) instead of failing; meterkit refuses that, because a
/// rounded sum is a wrong number.
#[inline]
pub(crate) fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    // Fast path (the rollup hot loop): both mantissas have at most 96 bits, so with scales at
    // most 9 apart the aligned sum is exact in i128 (2^96 * 10^9 < 2^126); at the larger scale it
    // is the result when it still fits in 96 bits — exactly what `checked_add` returns then. A
    // zero sum takes the general path, which decides its sign.
    const POW10: [i128; 10] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];
    let (sa, sb) = (a.scale(), b.scale());
    if let Some(&p) = POW10.get(sa.abs_diff(sb) as usize) {
        let m = if sa >= sb { a.mantissa() + b.mantissa() * p } else { a.mantissa() * p + b.mantissa() };
        if m != 0 {
            if let Ok(sum) = Decimal::try_from_i128_with_scale(m, sa.max(sb)) {
                return Some(sum);
            }
        }
    }
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
/// [`ErrorKind::Parse`](crate::error::ErrorKind::Parse) when the text is not such a number (`NaN`, `inf`,
/// `1_000`, `1,5` and empty text are refused), when its value needs more than 28 fractional digits
/// (`0.00000000000000000000000000001`, `5e-324`), or when it does not fit in 96 bits
/// (`79228162514264337593543950336`): a decimal that would have to be rounded is refused.
pub fn parse_decimal(text: &str) -> Result<Decimal> {
    exact_decimal(text.trim())
        .map_err(|why| Error::new(crate::error::ErrorKind::Parse, format!("'{text}' is not a decimal number ({why}).")))
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
    if exponent.is_none() && int.len() + frac.len() <= 18 {
        // The common case (no exponent, at most 18 digits: fits an i64) without building the
        // digit string: the same value and scale as the general path below.
        let m = int.bytes().chain(frac.bytes()).fold(0i64, |m, b| m * 10 + i64::from(b - b'0'));
        let m = if negative { -m } else { m };
        return Decimal::try_from_i128_with_scale(i128::from(m), frac.len() as u32)
            .map_err(|_| "too large: more than 96 bits");
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
/// [`ErrorKind::Parse`](crate::error::ErrorKind::Parse) for NaN, infinities and values out of range.
pub fn decimal_from_f64(value: f64) -> Result<Decimal> {
    if !value.is_finite() {
        return Err(Error::new(crate::error::ErrorKind::Parse, format!("{value} is not a finite number.")));
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        // A whole number below 10^15 (exact in an f64): its shortest text is its digits, so the
        // same decimal (scale 0) without formatting and parsing the text.
        return Ok(Decimal::from(value as i64));
    }
    parse_decimal(&format!("{value}"))
}

pub(crate) fn add(a: Decimal, b: Decimal) -> Result<Decimal> {
    a.checked_add(b).ok_or_else(|| Error::overflow("A bill sum"))
}

pub(crate) fn sub(a: Decimal, b: Decimal, what: &str) -> Result<Decimal> {
    a.checked_sub(b).ok_or_else(|| Error::overflow(what))
}

pub(crate) fn mul(a: Decimal, b: Decimal) -> Result<Decimal> {
    a.checked_mul(b).ok_or_else(|| Error::overflow("A quantity times a rate"))
}

pub(crate) fn div(a: Decimal, b: Decimal) -> Result<Decimal> {
    a.checked_div(b).ok_or_else(|| Error::overflow("A division"))
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

pub(crate) mod money_str {
    use rust_decimal::Decimal;
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt_money(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        super::parse_decimal(&s).map_err(|e| de::Error::custom(e.message()))
    }
}

#[cfg(test)]
mod fast_path_tests {
    use proptest::prelude::*;

    proptest! {
        /// The fast paths give what the general ones give: a whole float is read as its shortest
        /// text, a short plain decimal as its digits.
        #[test]
        fn fast_paths_equal_the_general_ones(whole in -2_000_000_000_000_000i64..2_000_000_000_000_000,
                                             frac in -1.0e6f64..1.0e6, text in "[-+]?[0-9]{0,12}(\\.[0-9]{0,12})?") {
            for v in [whole as f64, frac, -0.0, frac.trunc()] {
                let general = super::parse_decimal(&format!("{v}")).unwrap();
                let fast = super::decimal_from_f64(v).unwrap();
                prop_assert_eq!((fast, fast.scale()), (general, general.scale()), "{}", v);
            }
            // A text of at most 18 digits through `exact_decimal` against the same digits with
            // an exponent of zero (which takes the general path).
            let fast = super::parse_decimal(&text).map(|d| (d, d.scale()));
            let general = super::parse_decimal(&format!("{text}e0")).map(|d| (d, d.scale()));
            prop_assert_eq!(fast.ok(), general.ok(), "{}", text);
        }
    }
}
