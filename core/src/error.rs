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
        }
    }

    /// Every kind, for bindings that build one exception class per kind.
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

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

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
