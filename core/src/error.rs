//! The crate's one error type.

use std::fmt;

/// What went wrong, as a stable kind that callers (and every binding) can switch on.
///
/// Each kind has a stable string [`code`](ErrorKind::code) (`E_INVALID_RECORD`, `E_CONFLICT`, …)
/// used by the CLI's JSON output, the Node binding's `err.code` and the Python exception classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// A usage record is malformed: empty id, tenant or metric, `end` before `timestamp`,
    /// a timestamp outside the supported range (years 1678–2261).
    InvalidRecord,
    /// The same idempotency key `(tenant, id)` arrived with different content.
    Conflict,
    /// Input text (CSV, JSON lines, log line, TOML, a flag) could not be parsed.
    Parse,
    /// A window specification is invalid (e.g. `minutes:0`, a billing-cycle anchor outside 1–31).
    InvalidWindow,
    /// A time-zone name is not an IANA zone known to chrono-tz.
    InvalidTimeZone,
    /// A query is inconsistent (e.g. `fill: zero` without a range, `to` before `from`).
    InvalidQuery,
    /// Arithmetic would overflow the 96-bit decimal range; no wrong number is ever returned.
    Overflow,
    /// A tariff document is invalid or uses a feature that is not supported.
    Tariff,
    /// A validation rule configuration is invalid, or a reading failed validation.
    Validation,
    /// An invoice lifecycle transition is not allowed (e.g. paying a void invoice).
    InvalidTransition,
    /// Something was asked for that does not exist (a record id, an invoice).
    NotFound,
    /// The store failed (I/O, corruption, a lock); the batch in progress was not applied.
    Store,
    /// A failure outside the core's own checks: host code called by the library threw (a
    /// `Notifier`), or a bug (a Rust panic) was caught at an FFI boundary. The core never returns
    /// it itself; it is here so that every binding uses the one code `E_INTERNAL`.
    Internal,
}

impl ErrorKind {
    /// The stable machine-readable code of this kind, e.g. `"E_CONFLICT"`.
    pub const fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidRecord => "E_INVALID_RECORD",
            ErrorKind::Conflict => "E_CONFLICT",
            ErrorKind::Parse => "E_PARSE",
            ErrorKind::InvalidWindow => "E_INVALID_WINDOW",
            ErrorKind::InvalidTimeZone => "E_INVALID_TIME_ZONE",
            ErrorKind::InvalidQuery => "E_INVALID_QUERY",
            ErrorKind::Overflow => "E_OVERFLOW",
            ErrorKind::Tariff => "E_TARIFF",
            ErrorKind::Validation => "E_VALIDATION",
            ErrorKind::InvalidTransition => "E_INVALID_TRANSITION",
            ErrorKind::NotFound => "E_NOT_FOUND",
            ErrorKind::Store => "E_STORE",
            ErrorKind::Internal => "E_INTERNAL",
        }
    }

    /// The snake_case name of this kind, as in JSON (`"conflict"`, `"invalid_record"`).
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidRecord => "invalid_record",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Parse => "parse",
            ErrorKind::InvalidWindow => "invalid_window",
            ErrorKind::InvalidTimeZone => "invalid_time_zone",
            ErrorKind::InvalidQuery => "invalid_query",
            ErrorKind::Overflow => "overflow",
            ErrorKind::Tariff => "tariff",
            ErrorKind::Validation => "validation",
            ErrorKind::InvalidTransition => "invalid_transition",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Store => "store",
            ErrorKind::Internal => "internal",
        }
    }

    /// Every kind the core returns, for bindings that build one exception class per kind
    /// ([`ErrorKind::Internal`], which only hosts raise, is not in it).
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::InvalidRecord,
        ErrorKind::Conflict,
        ErrorKind::Parse,
        ErrorKind::InvalidWindow,
        ErrorKind::InvalidTimeZone,
        ErrorKind::InvalidQuery,
        ErrorKind::Overflow,
        ErrorKind::Tariff,
        ErrorKind::Validation,
        ErrorKind::InvalidTransition,
        ErrorKind::NotFound,
        ErrorKind::Store,
    ];
}

/// The stable code (`E_CONFLICT`); [`ErrorKind::name`] gives the JSON name.
impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A kind from its code (`E_CONFLICT`) or its JSON name (`conflict`); anything else is an
/// [`ErrorKind::Parse`] error.
impl std::str::FromStr for ErrorKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ErrorKind::ALL.into_iter().chain([ErrorKind::Internal]).find(|k| k.code() == s || k.name() == s).ok_or_else(
            || Error::new(ErrorKind::Parse, format!("'{s}' is not an error kind or code (E_CONFLICT, conflict, ...).")),
        )
    }
}

/// The [`ErrorKind::Parse`] error for an unknown enum name: `what` it should have been and the
/// names it may be.
pub(crate) fn unknown_name(s: &str, what: &str, names: &[&str]) -> Error {
    Error::new(ErrorKind::Parse, format!("'{s}' is not a {what}; expected one of: {}.", names.join(", ")))
}

/// Implements, for a fieldless enum, `as_str` (the snake_case name, as in JSON), `NAMES` (every
/// variant with its name), `Display` (the name) and `FromStr` (the name back; an unknown name is an
/// [`ErrorKind::Parse`] error listing the names). One list per enum, checked against the serde
/// names by the tests.
macro_rules! enum_names {
    ($ty:ident, $what:literal, [$($variant:ident = $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every variant with its snake_case name, in declaration order.
            pub const NAMES: &'static [($ty, &'static str)] = &[$(($ty::$variant, $name)),+];

            /// The snake_case name, as in JSON.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::error::Error;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err($crate::error::unknown_name(s, $what, &[$($name),+])),
                }
            }
        }
    };
}
pub(crate) use enum_names;

/// meterkit's error: a [`kind`](Error::kind), a full-sentence message, and where known the
/// record id, field and input line it concerns.
///
/// ```
/// use meterkit::{Error, ErrorKind};
/// let e = Error::new(ErrorKind::InvalidRecord, "quantity is empty").with_field("quantity");
/// assert_eq!(e.kind(), ErrorKind::InvalidRecord);
/// assert_eq!(e.kind().code(), "E_INVALID_RECORD");
/// assert_eq!(e.field(), Some("quantity"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    record_id: Option<String>,
    field: Option<String>,
    line: Option<u64>,
    retryable: bool,
}

impl Error {
    /// A new error of `kind` with a full-sentence `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), record_id: None, field: None, line: None, retryable: false }
    }

    /// Attach the id of the usage record this error concerns.
    #[must_use]
    pub fn with_record_id(mut self, id: impl Into<String>) -> Self {
        self.record_id = Some(id.into());
        self
    }

    /// Attach the name of the field (column, JSON key, tariff key) this error concerns.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Attach the 1-based input line this error concerns.
    #[must_use]
    pub fn with_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    /// Mark this error as transient: the operation was refused because another writer changed the
    /// store concurrently (a record inserted by another process, a serialization failure, a
    /// deadlock, a spec added elsewhere) and nothing was applied. [`Engine`](crate::Engine)
    /// retries such a call with a fresh view of the store; a host seeing one may retry as well.
    #[must_use]
    pub fn with_retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// True when the failed operation applied nothing and may succeed if retried (see
    /// [`with_retryable`](Error::with_retryable)).
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, a full sentence without the code.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The usage record id, if the error concerns one record.
    pub fn record_id(&self) -> Option<&str> {
        self.record_id.as_deref()
    }

    /// The field name, if the error concerns one field.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The 1-based input line, if the error came from reading a file.
    pub fn line(&self) -> Option<u64> {
        self.line
    }

    pub(crate) fn invalid_record(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidRecord, message)
    }

    pub(crate) fn overflow(what: &str) -> Self {
        Error::new(ErrorKind::Overflow, format!("{what} overflows the 96-bit decimal range"))
    }
}

/// `Result` with meterkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod names_tests {
    use super::ErrorKind;

    /// Each enum's `NAMES`: `Display` is the serde name, `FromStr` reads it back, and an unknown
    /// name is a `Parse` error naming what was expected.
    fn check<T>(names: &[(T, &str)])
    where
        T: Copy
            + PartialEq
            + std::fmt::Debug
            + std::fmt::Display
            + std::str::FromStr<Err = super::Error>
            + serde::Serialize,
    {
        for &(v, name) in names {
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::Value::String(name.to_string()));
            assert_eq!(v.to_string(), name);
            assert_eq!(name.parse::<T>().unwrap(), v);
        }
        let e = "no_such_name".parse::<T>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(e.message().contains(names[0].1), "{}", e.message());
    }

    #[test]
    fn every_public_enum_has_display_and_from_str_matching_serde() {
        check(crate::vee::Severity::NAMES);
        check(crate::vee::Action::NAMES);
        check(crate::vee::Rule::NAMES);
        check(crate::record::Quality::NAMES);
        check(crate::reading::check::ReadingStatus::NAMES);
        check(crate::reading::ReadingKind::NAMES);
        check(crate::reading::dating::Dating::NAMES);
        check(crate::invoice::InvoiceStatus::NAMES);
        check(crate::engine::Fill::NAMES);
        check(crate::tariff::Rounding::NAMES);
        check(crate::tariff::QuantityRounding::NAMES);
        check(crate::tariff::ChargeKind::NAMES);
        check(crate::tariff::Per::NAMES);
        check(crate::tariff::Basis::NAMES);
        check(crate::tariff::SharedLadder::NAMES);
        assert_eq!(crate::vee::Rule::NAMES.len(), 25);
    }

    #[test]
    fn error_kinds_parse_from_code_or_name() {
        for k in ErrorKind::ALL.into_iter().chain([ErrorKind::Internal]) {
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::Value::String(k.name().to_string()));
            assert_eq!(k.to_string(), k.code());
            assert_eq!(k.code().parse::<ErrorKind>().unwrap(), k);
            assert_eq!(k.name().parse::<ErrorKind>().unwrap(), k);
        }
        assert_eq!(ErrorKind::Internal.code(), "E_INTERNAL");
        assert_eq!("E_NOPE".parse::<ErrorKind>().unwrap_err().kind(), ErrorKind::Parse);
    }

    #[test]
    fn aggregations_round_trip_through_their_names() {
        use crate::rollup::Aggregation as A;
        for a in [A::Sum, A::Count, A::Min, A::Max, A::Mean, A::Latest, A::UniqueCount("subject".into())] {
            assert_eq!(a.to_string().parse::<A>().unwrap(), a);
        }
        assert_eq!("unique_count:sim".parse::<A>().unwrap(), A::UniqueCount("sim".into()));
        let e = "median".parse::<A>().unwrap_err();
        assert_eq!((e.kind(), e.field()), (ErrorKind::Parse, Some("by")));
    }
}
