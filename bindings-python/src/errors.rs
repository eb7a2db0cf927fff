//! The exception tree: `MeterkitError` and one subclass per core `ErrorKind`, with structured
//! attributes: the core's whole error envelope (`code`, `kind`, `message`, `record_id`, `field`,
//! `line`, `retryable`).

use meterkit::{Error, ErrorKind};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyType;

pyo3::create_exception!(meterkit, MeterkitError, PyException, "Base class of every meterkit error.");
pyo3::create_exception!(meterkit, InvalidRecord, MeterkitError, "A usage record is malformed (E_INVALID_RECORD).");
pyo3::create_exception!(
    meterkit,
    ConflictError,
    MeterkitError,
    "An idempotency key arrived with different content (E_CONFLICT)."
);
pyo3::create_exception!(meterkit, ParseError, MeterkitError, "Input text could not be parsed (E_PARSE).");
pyo3::create_exception!(
    meterkit,
    InvalidWindow,
    MeterkitError,
    "A window specification is invalid (E_INVALID_WINDOW)."
);
pyo3::create_exception!(
    meterkit,
    InvalidTimeZone,
    MeterkitError,
    "A time-zone name is not an IANA zone (E_INVALID_TIME_ZONE)."
);
pyo3::create_exception!(meterkit, InvalidQuery, MeterkitError, "A query is inconsistent (E_INVALID_QUERY).");
pyo3::create_exception!(
    meterkit,
    DecimalOverflowError,
    MeterkitError,
    "Arithmetic would overflow the decimal range (E_OVERFLOW)."
);
pyo3::create_exception!(
    meterkit,
    TariffError,
    MeterkitError,
    "A tariff document is invalid or unsupported (E_TARIFF)."
);
pyo3::create_exception!(
    meterkit,
    ValidationError,
    MeterkitError,
    "A validation configuration is invalid or a reading failed validation (E_VALIDATION)."
);
pyo3::create_exception!(
    meterkit,
    InvalidTransition,
    MeterkitError,
    "An invoice lifecycle transition is not allowed (E_INVALID_TRANSITION)."
);
pyo3::create_exception!(meterkit, NotFoundError, MeterkitError, "Something asked for does not exist (E_NOT_FOUND).");
pyo3::create_exception!(
    meterkit,
    StoreError,
    MeterkitError,
    "The store failed; the batch in progress was not applied (E_STORE)."
);
pyo3::create_exception!(
    meterkit,
    InternalError,
    MeterkitError,
    "A bug in meterkit (a Rust panic caught at the boundary) (E_INTERNAL)."
);

/// The exception class of a kind.
fn class_of(py: Python<'_>, kind: ErrorKind) -> Bound<'_, PyType> {
    match kind {
        ErrorKind::InvalidRecord => py.get_type::<InvalidRecord>(),
        ErrorKind::Conflict => py.get_type::<ConflictError>(),
        ErrorKind::Parse => py.get_type::<ParseError>(),
        ErrorKind::InvalidWindow => py.get_type::<InvalidWindow>(),
        ErrorKind::InvalidTimeZone => py.get_type::<InvalidTimeZone>(),
        ErrorKind::InvalidQuery => py.get_type::<InvalidQuery>(),
        ErrorKind::Overflow => py.get_type::<DecimalOverflowError>(),
        ErrorKind::Tariff => py.get_type::<TariffError>(),
        ErrorKind::Validation => py.get_type::<ValidationError>(),
        ErrorKind::InvalidTransition => py.get_type::<InvalidTransition>(),
        ErrorKind::NotFound => py.get_type::<NotFoundError>(),
        ErrorKind::Store => py.get_type::<StoreError>(),
        _ => py.get_type::<MeterkitError>(),
    }
}

/// The snake_case name of a kind, as in JSON (`invalid_record`).
pub fn kind_name(kind: ErrorKind) -> String {
    kind.name().to_string()
}

/// The envelope of one error, as the exception's attributes.
struct Envelope<'a> {
    code: &'a str,
    kind: &'a str,
    message: &'a str,
    record_id: Option<&'a str>,
    field: Option<&'a str>,
    line: Option<u64>,
    retryable: bool,
}

fn build(class: &Bound<'_, PyType>, e: &Envelope<'_>) -> PyErr {
    match class.call1((e.message,)) {
        Ok(exc) => {
            let set = || -> PyResult<()> {
                exc.setattr("code", e.code)?;
                exc.setattr("kind", e.kind)?;
                exc.setattr("message", e.message)?;
                exc.setattr("record_id", e.record_id)?;
                exc.setattr("field", e.field)?;
                exc.setattr("line", e.line)?;
                exc.setattr("retryable", e.retryable)?;
                Ok(())
            };
            match set() {
                Ok(()) => PyErr::from_value(exc),
                Err(e) => e,
            }
        }
        Err(e) => e,
    }
}

/// A core error as its Python exception.
pub fn to_py(e: &Error) -> PyErr {
    Python::attach(|py| {
        build(
            &class_of(py, e.kind()),
            &Envelope {
                code: e.kind().code(),
                kind: &kind_name(e.kind()),
                message: e.message(),
                record_id: e.record_id(),
                field: e.field(),
                line: e.line(),
                retryable: e.is_retryable(),
            },
        )
    })
}

/// A core-style error raised by the binding's own argument conversion (e.g. a naive datetime).
pub fn new_err(kind: ErrorKind, message: impl Into<String>, field: Option<&str>) -> PyErr {
    let mut e = Error::new(kind, message);
    if let Some(f) = field {
        e = e.with_field(f);
    }
    to_py(&e)
}

/// A caught Rust panic as `InternalError`.
pub fn internal(message: &str) -> PyErr {
    Python::attach(|py| {
        build(
            &py.get_type::<InternalError>(),
            &Envelope {
                code: ErrorKind::Internal.code(),
                kind: ErrorKind::Internal.name(),
                message: &format!("meterkit hit an internal error (a bug; please report it): {message}"),
                record_id: None,
                field: None,
                line: None,
                retryable: false,
            },
        )
    })
}

/// `Result` of the core mapped to `PyResult`.
pub trait IntoPy<T> {
    /// Map the core error to its exception.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for meterkit::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(|e| to_py(&e))
    }
}

/// Run `f` (pure Rust, no Python objects) with the GIL released, turning a panic into
/// `InternalError` so that no panic ever unwinds into Python.
pub fn detached<T: Send, F: FnOnce() -> meterkit::Result<T> + Send>(py: Python<'_>, f: F) -> PyResult<T> {
    let out = py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    match out {
        Ok(r) => r.py(),
        Err(p) => Err(internal(&panic_message(p.as_ref()))),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// Add the exception classes to the module, each with its class-level `code`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let base = py.get_type::<MeterkitError>();
    base.setattr("code", "E_UNKNOWN")?;
    m.add("MeterkitError", base)?;
    for kind in ErrorKind::ALL {
        let cls = class_of(py, kind);
        cls.setattr("code", kind.code())?;
        m.add(cls.name()?, cls)?;
    }
    let internal = py.get_type::<InternalError>();
    internal.setattr("code", ErrorKind::Internal.code())?;
    m.add("InternalError", internal)?;
    Ok(())
}
