//! The error type every exported function returns: the core's [`meterkit::Error`] as an enum
//! with one variant per [`meterkit::ErrorKind`] (Kotlin: `MeterkitException.Conflict`, …; Swift:
//! `MeterkitError.Conflict`), each carrying the structured fields.

use meterkit::ErrorKind;

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
    /// `E_INVALID_RECORD`: a usage record is malformed.
    #[error("{code}: {reason}")]
    InvalidRecord {
        code: String,
        reason: String,
        record_id: Option<String>,
        field: Option<String>,
        line: Option<u64>,
        retryable: bool,
    },
    /// `E_CONFLICT`: an idempotency key already stored with different content.
    #[error("{code}: {reason}")]
    Conflict {
        code: String,
        reason: String,
        record_id: Option<String>,
        field: Option<String>,
        line: Option<u64>,
        retryable: bool,
    },
    /// `E_PARSE`: text (a decimal, a timestamp, JSON, TOML) could not be read.
    #[error("{code}: {reason}")]
    Parse {
        code: String,
        reason: String,
        record_id: Option<String>,
        field: Option<String>,
        line: Option<u64>,
        retryable: bool,
    },
    /// `E_INVALID_WINDOW`: a window spec is not valid.
    #[error("{code}: {reason}")]
    InvalidWindow {
        code: String,
        reason: String,
        record_id: Option<String>,
        field: Option<String>,
        line: Option<u64>,
        retryable: bool,
    },
    /// `E_INVALID_TIME_ZONE`: not an IANA time zone.
    #[error("{code}: {reason}")]
    InvalidTimeZone {
        code: String,
        reason: String,
        record_id: Option<String>,
        field: Option<String>,
        line: Option<u64>,
        retryable: bool,
    },
    /// `E_INVALID_QUERY`: a query (or request) is not valid.
    #[error("{code}: {reason}")]
    InvalidQuery {
        code: String,
        reason: String,
        record_id: Option<String>,
        field: Option<String>,
        line: Option<u64>,
        retryable: bool,
    },
    /// `E_OVERFLOW`: a decimal left the 96-bit range.
    #[error("{code}: {reason}")]
    Overflow {
        code: String,
        reason: String,
        record_id: Option<String>,
        field: Option<String>,
        line: Option<u64>,
        retryable: bool,
    },
    /// `E_TARIFF`: a tariff is invalid or cannot bill the request.
    #[error("{code}: {reason}")]
    Tariff {
        code: String,
        reason: String,
        record_id: Option<String>,
        field: Option<String>,
        line: Option<u64>,
        retryable: bool,
    },
    /// `E_VALIDATION`: a validation configuration is invalid.
    #[error("{code}: {reason}")]
    Validation {
        code: String,
        reason: String,
        record_id: Option<String>,
        field: Option<String>,
        line: Option<u64>,
        retryable: bool,
    },
    /// `E_INVALID_TRANSITION`: an invoice state change that is not allowed.
    #[error("{code}: {reason}")]
    InvalidTransition {
        code: String,
        reason: String,
        record_id: Option<String>,
        field: Option<String>,
        line: Option<u64>,
        retryable: bool,
    },
    /// `E_NOT_FOUND`: no such record or invoice.
    #[error("{code}: {reason}")]
    NotFound {
        code: String,
        reason: String,
        record_id: Option<String>,
        field: Option<String>,
        line: Option<u64>,
        retryable: bool,
    },
    /// `E_STORE`: the store failed (disk, SQLite).
    #[error("{code}: {reason}")]
    Store {
        code: String,
        reason: String,
        record_id: Option<String>,
        field: Option<String>,
        line: Option<u64>,
        retryable: bool,
    },
    /// `E_INTERNAL`: a failure of host code called by the library (a `Notifier` that threw an
    /// unexpected exception) or a bug.
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
            ErrorKind::InvalidRecord => Self::InvalidRecord { code, reason, record_id, field, line, retryable },
            ErrorKind::Conflict => Self::Conflict { code, reason, record_id, field, line, retryable },
            ErrorKind::Parse => Self::Parse { code, reason, record_id, field, line, retryable },
            ErrorKind::InvalidWindow => Self::InvalidWindow { code, reason, record_id, field, line, retryable },
            ErrorKind::InvalidTimeZone => Self::InvalidTimeZone { code, reason, record_id, field, line, retryable },
            ErrorKind::InvalidQuery => Self::InvalidQuery { code, reason, record_id, field, line, retryable },
            ErrorKind::Overflow => Self::Overflow { code, reason, record_id, field, line, retryable },
            ErrorKind::Tariff => Self::Tariff { code, reason, record_id, field, line, retryable },
            ErrorKind::Validation => Self::Validation { code, reason, record_id, field, line, retryable },
            ErrorKind::InvalidTransition => Self::InvalidTransition { code, reason, record_id, field, line, retryable },
            ErrorKind::NotFound => Self::NotFound { code, reason, record_id, field, line, retryable },
            ErrorKind::Store => Self::Store { code, reason, record_id, field, line, retryable },
            // A kind newer than this binding: keep its code.
            _ => Self::Internal { code, reason, record_id, field, line, retryable },
        }
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
        MeterkitError::Internal {
            code: "E_INTERNAL".to_string(),
            reason,
            record_id: None,
            field: None,
            line: None,
            retryable: false,
        }
    }
}
