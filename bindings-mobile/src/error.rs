//! The error type every exported function returns: the core's [`meterkit::Error`] with its whole
//! envelope.
//!
//! Kotlin: one `MeterkitException` base class (catch it once) whose methods give the envelope —
//! `e.code()`, `e.kind()`, `e.reason()`, `e.field()`, `e.recordId()`, `e.line()`,
//! `e.retryable()` — with one subclass per kind (`MeterkitException.Conflict`, …) for an app that
//! wants to catch one kind; each subclass also has the same values as properties (`e.code`).
//! Swift: `enum MeterkitError: Error` with the same methods (`error.code()`, …) and one case per
//! kind. `toString()` (Kotlin) and `description` (Swift) are `"E_CONFLICT: <the sentence>"`.

use meterkit::ErrorKind;

/// The code of [`MeterkitError::Closed`]: a call on an `Engine` after `close()`. The mobile
/// binding's own code (the only host with an explicit `close`), not one of the core's kinds.
pub const CLOSED_CODE: &str = "E_CLOSED";
/// The kind of [`MeterkitError::Closed`].
pub const CLOSED_KIND: &str = "closed";

/// Declares [`MeterkitError`] — one variant per core kind plus `Internal` and `Closed`, all with
/// the same fields — its conversion from the core's error, and one accessor per field over every
/// variant, from one list of kinds.
macro_rules! meterkit_error {
    ($($(#[$doc:meta])* $kind:ident,)*) => {
        /// A meterkit error, by kind. Every variant has the same fields (and the enum a method per
        /// field, so that a host needs no `match`/`when` over the kinds to read them):
        ///
        /// * `code` — the stable code (`E_CONFLICT`, …; `E_INTERNAL`, `E_CLOSED`);
        /// * `kind` — the snake_case kind (`conflict`, …; `internal`, `closed`);
        /// * `reason` — the sentence, for a person (named `reason`, not `message`, which Kotlin's
        ///   `Throwable` already has);
        /// * `record_id`, `field`, `line` — where, when known (`line` counts from 1);
        /// * `retryable` — true when repeating the call may succeed (a store busy with another writer).
        #[uniffi::export(Display)]
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
        #[allow(missing_docs)] // the fields are documented once, above
        pub enum MeterkitError {
            $(
                $(#[$doc])*
                #[error("{code}: {reason}")]
                $kind {
                    code: String,
                    kind: String,
                    reason: String,
                    record_id: Option<String>,
                    field: Option<String>,
                    line: Option<i64>,
                    retryable: bool,
                },
            )*
        }

        impl MeterkitError {
            /// The envelope of any variant.
            fn envelope(&self) -> Envelope<'_> {
                match self {
                    $(
                        MeterkitError::$kind { code, kind, reason, record_id, field, line, retryable } => {
                            Envelope { code, kind, reason, record_id, field, line: *line, retryable: *retryable }
                        }
                    )*
                }
            }

            /// The variant of `kind` with the given envelope (`Internal` for a kind this binding
            /// does not know by name).
            fn with_kind(variant: &str, e: Owned) -> Self {
                let Owned { code, kind, reason, record_id, field, line, retryable } = e;
                match variant {
                    $(stringify!($kind) => MeterkitError::$kind { code, kind, reason, record_id, field, line, retryable },)*
                    _ => MeterkitError::Internal { code, kind, reason, record_id, field, line, retryable },
                }
            }
        }
    };
}

meterkit_error! {
    /// `E_INVALID_RECORD`: a usage record is malformed.
    InvalidRecord,
    /// `E_CONFLICT`: an idempotency key already stored with different content.
    Conflict,
    /// `E_PARSE`: text (a decimal, a timestamp, JSON, TOML) could not be read.
    Parse,
    /// `E_INVALID_WINDOW`: a window spec is not valid.
    InvalidWindow,
    /// `E_INVALID_TIME_ZONE`: not an IANA time zone.
    InvalidTimeZone,
    /// `E_INVALID_QUERY`: a query (or request, or an argument such as a negative limit) is not valid.
    InvalidQuery,
    /// `E_OVERFLOW`: a decimal left the 96-bit range.
    Overflow,
    /// `E_TARIFF`: a tariff is invalid or cannot bill the request.
    Tariff,
    /// `E_VALIDATION`: a validation configuration is invalid.
    Validation,
    /// `E_INVALID_TRANSITION`: an invoice state change that is not allowed.
    InvalidTransition,
    /// `E_NOT_FOUND`: no such record or invoice.
    NotFound,
    /// `E_STORE`: the store failed (disk, SQLite).
    Store,
    /// `E_INTERNAL`: a failure of host code called by the library (a `Notifier` that threw an
    /// unexpected exception) or a bug.
    Internal,
    /// `E_CLOSED`: the `Engine` was closed (`close()`); open a new one to continue.
    Closed,
}

/// The fields every variant carries, borrowed.
struct Envelope<'a> {
    code: &'a str,
    kind: &'a str,
    reason: &'a str,
    record_id: &'a Option<String>,
    field: &'a Option<String>,
    line: Option<i64>,
    retryable: bool,
}

/// The fields every variant carries, owned (to build one).
struct Owned {
    code: String,
    kind: String,
    reason: String,
    record_id: Option<String>,
    field: Option<String>,
    line: Option<i64>,
    retryable: bool,
}

/// The envelope's accessors: Kotlin `MeterkitException.code()` …, Swift `MeterkitError.code()` …
/// on every kind. Each call copies the error across the boundary (uniffi passes enums by value);
/// an error is small.
#[uniffi::export]
impl MeterkitError {
    /// The stable code: `E_CONFLICT`, `E_PARSE`, … (`errorCodes()` lists them).
    pub fn code(&self) -> String {
        self.envelope().code.to_string()
    }

    /// The snake_case kind: `conflict`, `parse`, … (`internal`, `closed`).
    pub fn kind(&self) -> String {
        self.envelope().kind.to_string()
    }

    /// The sentence for a person: what is wrong and, where it helps, what to do.
    pub fn reason(&self) -> String {
        self.envelope().reason.to_string()
    }

    /// The usage record the error is about (its id), when known.
    pub fn record_id(&self) -> Option<String> {
        self.envelope().record_id.clone()
    }

    /// The field, argument or column the error is about (`quantity`, `limit`, …), when known.
    pub fn field(&self) -> Option<String> {
        self.envelope().field.clone()
    }

    /// The 1-based line of the input the error is about, when known.
    pub fn line(&self) -> Option<i64> {
        self.envelope().line
    }

    /// True when repeating the call may succeed (e.g. the SQLite file was busy with another writer).
    pub fn retryable(&self) -> bool {
        self.envelope().retryable
    }
}

impl From<meterkit::Error> for MeterkitError {
    fn from(e: meterkit::Error) -> Self {
        let kind = e.kind();
        let variant = format!("{kind:?}");
        MeterkitError::with_kind(
            &variant,
            Owned {
                code: kind.code().to_string(),
                kind: kind.name().to_string(),
                reason: e.message().to_string(),
                record_id: e.record_id().map(str::to_string),
                field: e.field().map(str::to_string),
                line: e.line().map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
                retryable: e.is_retryable(),
            },
        )
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for MeterkitError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        MeterkitError::internal(format!("host callback failed: {}", e.reason))
    }
}

impl MeterkitError {
    /// An `E_INTERNAL` error with `reason`.
    pub fn internal(reason: String) -> Self {
        meterkit::Error::new(ErrorKind::Internal, reason).into()
    }

    /// The `E_CLOSED` error of a call on a closed `Engine`.
    pub fn closed() -> Self {
        MeterkitError::Closed {
            code: CLOSED_CODE.to_string(),
            kind: CLOSED_KIND.to_string(),
            reason: "This Engine is closed (close() was called): create a new one to continue.".to_string(),
            record_id: None,
            field: None,
            line: None,
            retryable: false,
        }
    }

    /// An `E_INVALID_QUERY` error naming `field`: an argument out of its range.
    pub fn argument(field: &str, reason: String) -> Self {
        meterkit::Error::new(ErrorKind::InvalidQuery, reason).with_field(field).into()
    }
}

/// `value` as a count or size (`limit`, `n`, `scale`, …): Kotlin and Swift pass signed integers
/// (`Int`/`Long`), the core counts with unsigned ones. Errors: `InvalidQuery` naming `field` when
/// `value` is negative (or does not fit).
pub(crate) fn unsigned<T, U>(value: T, field: &str) -> Result<U, MeterkitError>
where
    T: Copy + std::fmt::Display,
    U: TryFrom<T>,
{
    U::try_from(value).map_err(|_| {
        MeterkitError::argument(
            field,
            format!("{field} must be a non-negative whole number within range, not {value}."),
        )
    })
}

/// A count from the core as a Kotlin `Long` / Swift `Int64` (saturating; no count comes near 2^63).
pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_answers_the_envelope_accessors() {
        let e: MeterkitError = meterkit::Error::new(ErrorKind::Conflict, "why")
            .with_record_id("r1")
            .with_field("quantity")
            .with_line(7)
            .into();
        assert!(matches!(e, MeterkitError::Conflict { .. }));
        assert_eq!((e.code(), e.kind(), e.reason()), ("E_CONFLICT".into(), "conflict".into(), "why".into()));
        assert_eq!(
            (e.record_id(), e.field(), e.line(), e.retryable()),
            (Some("r1".into()), Some("quantity".into()), Some(7), false)
        );
        let internal = MeterkitError::internal("boom".into());
        assert!(matches!(internal, MeterkitError::Internal { .. }));
        assert_eq!((internal.code(), internal.kind()), ("E_INTERNAL".into(), "internal".into()));
        let closed = MeterkitError::closed();
        assert_eq!((closed.code(), closed.kind(), closed.retryable()), ("E_CLOSED".into(), "closed".into(), false));
    }

    #[test]
    fn a_negative_argument_names_its_field() {
        assert_eq!(unsigned::<i32, u32>(5, "limit").unwrap(), 5);
        let e = unsigned::<i32, u32>(-1, "limit").unwrap_err();
        assert_eq!((e.code(), e.field()), ("E_INVALID_QUERY".into(), Some("limit".into())));
        assert!(e.reason().contains("-1"), "{}", e.reason());
        assert_eq!(signed(u64::MAX), i64::MAX);
    }
}
