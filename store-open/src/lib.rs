//! One place that turns a store location into a [`Store`]: the CLI's `--db` and every binding's
//! engine constructor call [`open_store`] (or [`open_engine`]) instead of writing the dispatch
//! themselves.
//!
//! | location | store |
//! |---|---|
//! | `:memory:` | [`meterkit::MemoryStore`] (nothing persisted) |
//! | `postgres://…`, `postgresql://…` (any case) | [`meterkit_postgres::PgStore`] (with the `postgres` feature, on by default) |
//! | any other non-empty text without `://` | [`meterkit_sqlite::SqliteStore`] at that path (created if missing) |
//!
//! An empty location, or a URL with another scheme (`mysql://…`, `sqlite://…`), is an
//! [`ErrorKind::Parse`] error with field `db`, never a file named like a URL.
//!
//! ```
//! let store = meterkit_open::open_store(":memory:")?;
//! assert!(store.specs()?.is_empty());
//! let engine = meterkit::Engine::new(store)?;
//! assert_eq!(meterkit_open::Location::parse("mysql://x").unwrap_err().field(), Some("db"));
//! # Ok::<(), meterkit::Error>(())
//! ```

use std::fmt;

use meterkit::{Engine, Error, ErrorKind, Result, Store};

/// Where a store lives, as [`Location::parse`] reads a location string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location<'a> {
    /// `:memory:`: a fresh [`meterkit::MemoryStore`].
    Memory,
    /// An SQLite database file at this path.
    Sqlite(&'a str),
    /// A PostgreSQL connection URL (`postgres://…` or `postgresql://…`).
    Postgres(&'a str),
}

impl<'a> Location<'a> {
    /// Classify `location` (see the crate docs for the forms).
    ///
    /// # Errors
    /// [`ErrorKind::Parse`] (field `db`) for an empty location or a URL whose scheme is not
    /// `postgres`/`postgresql`.
    pub fn parse(location: &'a str) -> Result<Self> {
        if location == ":memory:" {
            return Ok(Location::Memory);
        }
        if is_postgres_url(location) {
            return Ok(Location::Postgres(location));
        }
        if location.is_empty() {
            return Err(bad(location, "it is empty"));
        }
        if let Some((scheme, _)) = location.split_once("://") {
            return Err(bad(location, &format!("the scheme {scheme}:// is not supported")));
        }
        Ok(Location::Sqlite(location))
    }
}

/// `memory`, `sqlite=PATH` or `postgres` (the URL is left out: it may hold a password).
impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Memory => f.write_str("memory"),
            Location::Sqlite(path) => write!(f, "sqlite={path}"),
            Location::Postgres(_) => f.write_str("postgres"),
        }
    }
}

/// `true` for a `postgres://` or `postgresql://` URL (the scheme in any case).
pub fn is_postgres_url(location: &str) -> bool {
    let lower = location.get(..13).unwrap_or(location).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

fn bad(location: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::Parse,
        format!(
            "The store location {location:?} is not usable: {why}. Give `:memory:`, an SQLite file path, \
             or a postgres:// / postgresql:// URL."
        ),
    )
    .with_field("db")
}

/// Open the store at `location`: [`meterkit::MemoryStore`] for `:memory:`, PostgreSQL for a
/// `postgres://` / `postgresql://` URL, SQLite for a path (created if missing).
///
/// # Errors
/// [`ErrorKind::Parse`] for a location [`Location::parse`] refuses (and for a PostgreSQL URL in a
/// build without the `postgres` feature); [`ErrorKind::Store`] when the database cannot be opened
/// or connected to (retryable where the PostgreSQL store says so).
pub fn open_store(location: &str) -> Result<Box<dyn Store>> {
    Ok(match Location::parse(location)? {
        Location::Memory => Box::new(meterkit::MemoryStore::new()),
        Location::Sqlite(path) => Box::new(meterkit_sqlite::SqliteStore::open(path)?),
        Location::Postgres(url) => open_postgres(url)?,
    })
}

#[cfg(feature = "postgres")]
fn open_postgres(url: &str) -> Result<Box<dyn Store>> {
    Ok(Box::new(meterkit_postgres::PgStore::open(url)?))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(url: &str) -> Result<Box<dyn Store>> {
    Err(bad(url, "this build has no PostgreSQL support"))
}

/// An [`Engine`] over [`open_store`]`(location)`.
///
/// # Errors
/// Those of [`open_store`], and of [`Engine::new`] (reading the stored rollup specs).
pub fn open_engine(location: &str) -> Result<Engine> {
    Engine::new(open_store(location)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterkit::UsageRecord;

    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        meterkit::time::parse_ts(text).unwrap()
    }

    fn record(tenant: &str, id: &str) -> UsageRecord {
        UsageRecord::new(tenant, id, "meter-1", "kwh", "1.5".parse().unwrap(), at("2024-05-01T00:00:00Z"))
    }

    fn stored(engine: &Engine, tenant: &str) -> usize {
        engine.records(tenant, "kwh", None, at("2024-01-01T00:00:00Z"), at("2025-01-01T00:00:00Z")).unwrap().len()
    }

    #[test]
    fn locations_are_classified() {
        assert_eq!(Location::parse(":memory:").unwrap(), Location::Memory);
        assert_eq!(Location::parse("data/usage.db").unwrap(), Location::Sqlite("data/usage.db"));
        assert_eq!(Location::parse("POSTGRESQL://u@h/db").unwrap(), Location::Postgres("POSTGRESQL://u@h/db"));
        assert_eq!(Location::parse("postgres://u:secret@h/db").unwrap().to_string(), "postgres");
        assert_eq!(Location::parse("a.db").unwrap().to_string(), "sqlite=a.db");
        for bad in ["", "mysql://u@h/db", "sqlite://x.db"] {
            let e = Location::parse(bad).unwrap_err();
            assert_eq!((e.kind(), e.field()), (ErrorKind::Parse, Some("db")), "{bad}");
            assert!(e.message().contains("postgres://"), "{e}");
        }
        assert_eq!(open_store("mysql://u@h/db").err().map(|e| e.kind()), Some(ErrorKind::Parse));
    }

    #[test]
    fn memory_store_is_fresh_each_time() {
        let engine = open_engine(":memory:").unwrap();
        assert_eq!(engine.ingest(&[record("acme", "r1")]).unwrap().accepted, 1);
        assert_eq!(stored(&engine, "acme"), 1);
        assert_eq!(stored(&open_engine(":memory:").unwrap(), "acme"), 0);
    }

    #[test]
    fn sqlite_path_persists_between_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.db");
        let path = path.to_str().unwrap();
        assert_eq!(open_engine(path).unwrap().ingest(&[record("acme", "r1")]).unwrap().accepted, 1);
        let again = open_engine(path).unwrap();
        assert_eq!(stored(&again, "acme"), 1);
        assert_eq!(again.ingest(&[record("acme", "r1")]).unwrap().duplicates, 1);
    }

    #[test]
    fn an_unreachable_postgres_url_is_a_store_error() {
        // Port 1 on localhost: nothing listens there, so the connection is refused at once.
        let e = open_store("postgres://meterkit@127.0.0.1:1/none?connect_timeout=2").err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Store, "{e}");
    }

    /// On the server of `METERKIT_PG_URL` (scripts/test-postgres starts one): a record stored
    /// through one opened engine is seen by the next. Skipped without the variable unless
    /// `METERKIT_REQUIRE_PG` is set.
    #[test]
    fn postgres_url_opens_the_shared_database() {
        let Ok(url) = std::env::var("METERKIT_PG_URL") else {
            assert!(
                std::env::var_os("METERKIT_REQUIRE_PG").is_none(),
                "METERKIT_REQUIRE_PG is set but METERKIT_PG_URL is not"
            );
            return;
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let tenant = format!("open-{}-{nanos}", std::process::id());
        assert_eq!(open_engine(&url).unwrap().ingest(&[record(&tenant, "r1")]).unwrap().accepted, 1);
        assert_eq!(stored(&open_engine(&url).unwrap(), &tenant), 1);
    }
}
