//! The error type every exported function returns: the core's [`meterkit::Error`] as an enum
//! with one variant per [`meterkit::ErrorKind`] (Kotlin: `MeterkitException.Conflict`, …; Swift:
//! `MeterkitError.Conflict`), each carrying the structured fields.

use meterkit::ErrorKind;

/// Declares [`MeterkitError`] — one variant per core kind plus `Internal`, all with the same
/// fields — and its conversion from the core's error, from one list of kinds.
macro_rules! meterkit_error {
    ($($(#[$doc:meta])* $kind:ident,)*) => {
        /// A meterkit error, by kind. Every variant has the same fields:
        ///
        /// * `code` — the stable code (`E_CONFLICT`, …; `E_INTERNAL` for [`MeterkitError::Internal`]);
        /// * `reason` — the core's sentence (named `reason`, not `message`, which Kotlin's `Throwable`
        ///   already has; Kotlin's `message` lists every field, Swift's `localizedDescription` too);
        /// * `record_id`, `field`, `line` — where, when known;
        /// * `retryable` — true when repeating the call may succeed (a store busy with another writer).
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
        #[allow(missing_docs)] // the fields are documented once, above
        pub enum MeterkitError {
            $(
                $(#[$doc])*
                #[error("{code}: {reason}")]
                $kind {
                    code: String,
                    reason: String,
                    record_id: Option<String>,
                    field: Option<String>,
                    line: Option<u64>,
                    retryable: bool,
                },
            )*
            /// `E_INTERNAL`: a failure of host code called by the library (a `Notifier` that threw
            /// an unexpected exception) or a bug.
            #[error("{code}: {reason}")]
            Internal {
                code: String,
                reason: String,
                record_id: Option<String>,
                field: Option<String>,
                line: Option<u64>,
                retryable: bool,
            },
        }

        impl From<meterkit::Error> for MeterkitError {
            fn from(e: meterkit::Error) -> Self {
                let code = e.kind().code().to_string();
                let reason = e.message().to_string();
                let record_id = e.record_id().map(str::to_string);
                let field = e.field().map(str::to_string);
                let line = e.line();
                let retryable = e.is_retryable();
                match e.kind() {
                    $(ErrorKind::$kind => Self::$kind { code, reason, record_id, field, line, retryable },)*
                    // A kind newer than this binding: keep its code.
                    _ => Self::Internal { code, reason, record_id, field, line, retryable },
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
    /// `E_INVALID_QUERY`: a query (or request) is not valid.
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
}

impl From<uniffi::UnexpectedUniFFICallbackError> for MeterkitError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        MeterkitError::internal(format!("host callback failed: {}", e.reason))
    }
}

impl MeterkitError {
    /// An `E_INTERNAL` error with `reason`.
    pub fn internal(reason: String) -> Self {
        MeterkitError::Internal {
            code: ErrorKind::Internal.code().to_string(),
            reason,
            record_id: None,
            field: None,
            line: None,
            retryable: false,
        }
    }
}
