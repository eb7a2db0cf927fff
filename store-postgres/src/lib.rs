//! # meterkit-postgres
//!
//! A [`Store`] on PostgreSQL that several engines in several processes use at once, with the same
//! results as one engine alone: one transaction per [`Store::apply`], records keyed by the
//! idempotency key `(tenant, id)`, bucket merges serialised by row locks taken in sorted key order,
//! and every change that raced with another writer refused as a
//! [retryable](meterkit::Error::is_retryable) error so that the engine redoes it.
//!
//! ```no_run
//! use meterkit::{Engine, Query, UsageRecord, Window};
//! use meterkit_postgres::PgStore;
//! use chrono::{TimeZone, Utc};
//!
//! let engine = Engine::new(PgStore::open("postgres://meterkit@127.0.0.1:5432/usage")?)?;
//! let at = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
//! engine.ingest(&[UsageRecord::new("t", "r1", "sim-1", "bytes", 2048.into(), at)])?;
//! let days = engine.query(&Query::new("t", "bytes", Window::Day, "UTC"))?;
//! assert_eq!(days[0].sum.to_string(), "2048");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Schema (migrations 1 to 3 — 2 adds the index `meterkit_records_by_subject`, 3 the column
//! `meterkit_specs.removed`; `docs/postgres.md` has the full text and the concurrency design):
//! `meterkit_specs(id, body, removed)`, `meterkit_records(tenant, id, metric, subject, ts, ts_nanos, body)`
//! keyed by `(tenant, id)` and indexed by `(tenant, metric, ts)`,
//! `meterkit_buckets(tenant, spec, start, grp, end_ts, state, closed)` keyed by
//! `(tenant, spec, start, grp)`, `meterkit_meta(tenant, key, value)`, the sequence
//! `meterkit_record_gen` and `meterkit_migrations(version)`. Record bodies, group keys and bucket
//! states are JSON text (decimals as strings, never floats), as in the SQLite store. Text columns
//! use the `"C"` collation, so orders are by bytes, as in the other stores.
#![deny(missing_docs)]

mod probe;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;

use meterkit::{
    rollup::BucketState, store::BucketKey, store::ChangeSet, store::StoredBucket, Error, ErrorKind, Result, RollupSpec,
    Store, UsageRecord,
};
use postgres::error::SqlState;
use postgres::{Client, Statement};

/// The schema migrations, applied in order on open (each once; the applied versions are kept in
/// `meterkit_migrations`).
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE meterkit_specs (id integer PRIMARY KEY, body text NOT NULL);
CREATE TABLE meterkit_records (
    tenant text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL, metric text COLLATE "C" NOT NULL,
    subject text COLLATE "C" NOT NULL, ts bigint NOT NULL, ts_nanos integer NOT NULL, body text NOT NULL,
    PRIMARY KEY (tenant, id));
CREATE INDEX meterkit_records_by_time ON meterkit_records (tenant, metric, ts);
CREATE TABLE meterkit_buckets (
    tenant text COLLATE "C" NOT NULL, spec integer NOT NULL, start bigint NOT NULL, grp text COLLATE "C" NOT NULL,
    end_ts bigint NOT NULL, state text, closed boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, spec, start, grp));
CREATE INDEX meterkit_buckets_open ON meterkit_buckets (tenant, end_ts) WHERE NOT closed;
CREATE TABLE meterkit_meta (
    tenant text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, value text NOT NULL,
    PRIMARY KEY (tenant, key));
CREATE SEQUENCE meterkit_record_gen;
"#,
    ),
    (
        // Issue 14: per-subject reads (one subject's or an account's bill, `records(subject)`)
        // read the subject's records, not the tenant's metric of the period.
        2,
        "CREATE INDEX meterkit_records_by_subject ON meterkit_records (tenant, metric, subject, ts);",
    ),
    (
        // Issue 14: rollup specs can be removed (kept for their id, their buckets deleted).
        3,
        "ALTER TABLE meterkit_specs ADD COLUMN removed boolean NOT NULL DEFAULT false;",
    ),
];

/// First key of the advisory locks: `(LOCK_CLASS, hashtext(schema))` serialises spec additions
/// against ingests; `(LOCK_CLASS + 1, hashtext(schema))` serialises migrations.
const LOCK_CLASS: i32 = 0x6d6b_7370; // "mksp"

/// First key of the writers' lock: every change of records, buckets or specs takes it shared; a
/// retried call ([`Store::exclusive`]) holds it exclusively, so that it cannot be refused again.
const WRITE_CLASS: i32 = LOCK_CLASS + 2;

const BUCKET_COLS: &str = "tenant, spec, start, grp, end_ts, state, closed";

/// True when `location` names a PostgreSQL database (`postgres://…` or `postgresql://…`) rather
/// than a file: what the bindings use to choose between this store and SQLite.
pub fn is_postgres_url(location: &str) -> bool {
    let lower = location.get(..13).unwrap_or(location).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// How to reach the database: a connection string and, optionally, the schema holding meterkit's
/// tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// A libpq-style connection string: a URL (`postgres://user:password@host:port/db`,
    /// `postgresql://…`) or `key=value` pairs (`host=… user=… dbname=…`).
    pub url: String,
    /// The schema for meterkit's tables, created if missing (`None`: the connection's default
    /// `search_path`, normally `public`). Letters, digits and `_` only.
    pub schema: Option<String>,
}

impl PgOptions {
    /// Options for `url` with the default schema.
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions { url: url.into(), schema: None }
    }

    /// Options for `url`, taking the schema from a `schema=NAME` query parameter of a URL
    /// (`postgres://host/db?schema=metering`), which is removed before connecting; other
    /// parameters (`sslmode`, `application_name`, …) are passed on.
    pub fn from_url(url: &str) -> Self {
        let Some((base, query)) = url.split_once('?') else { return Self::new(url) };
        if !is_postgres_url(url) {
            return Self::new(url);
        }
        let mut schema = None;
        let rest: Vec<&str> = query
            .split('&')
            .filter(|kv| match kv.strip_prefix("schema=") {
                Some(v) => {
                    schema = Some(v.to_string());
                    false
                }
                None => !kv.is_empty(),
            })
            .collect();
        let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
        PgOptions { url, schema }
    }

    /// Keep meterkit's tables in `schema` (builder style).
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
}

/// One open connection and its prepared statements.
struct Conn {
    client: Client,
    st: Stmts,
    /// `hashtext(current_schema())`: the second key of the advisory locks.
    lock_key: i32,
}

/// Prepared statements, prepared once per connection.
struct Stmts {
    specs: Statement,
    get_records: Statement,
    by_time: Statement,
    records: Statement,
    records_subject: Statement,
    buckets: Statement,
    bucket: Statement,
    open_buckets: Statement,
    meta: Statement,
    meta_prefix: Statement,
    lock_upsert: Statement,
    set_states: Statement,
    lock_specs_shared: Statement,
    lock_data_shared: Statement,
    meta_set: Statement,
    meta_delete: Statement,
    meta_only: Statement,
    sample_and_scan: Statement,
}

/// A test hook run inside `apply`'s transaction once the records are written (it receives the
/// server process id of the connection), for fault-injection tests.
pub type ApplyHook = Box<dyn FnMut(i32) + Send>;

/// A [`Store`] on a PostgreSQL database, shareable by many engines in many processes (each with
/// its own `PgStore`).
///
/// The connection is opened by [`PgStore::open`]; when it is lost (server restart, a killed
/// backend, a network failure) the call in progress fails with [`ErrorKind::Store`] — an `apply`
/// in flight is then not applied, since its transaction never committed — and the next call
/// connects again with the same options.
pub struct PgStore {
    options: PgOptions,
    conn: RefCell<Option<Conn>>,
    /// The record generation seen by the last `scan_metric` (see `docs/postgres.md`).
    scan_gen: Cell<Option<i64>>,
    hook: Option<ApplyHook>,
    /// True while [`Store::exclusive`] holds the writers' lock.
    exclusive_held: bool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("schema", &self.options.schema).finish_non_exhaustive()
    }
}

fn db_err(what: &str, e: &postgres::Error) -> Error {
    let code = e.code().cloned();
    let detail = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    let err = Error::new(ErrorKind::Store, format!("PostgreSQL failed to {what}: {detail}."));
    match code {
        Some(c) if c == SqlState::T_R_SERIALIZATION_FAILURE || c == SqlState::T_R_DEADLOCK_DETECTED => {
            err.with_retryable()
        }
        _ => err,
    }
}

/// The `(id, body)` rows of `rows` (the `get_records` statement's) as a map from id to stored
/// JSON body.
///
/// # Errors
/// [`ErrorKind::Store`] when a column cannot be read.
fn bodies_by_id(rows: &[postgres::Row]) -> Result<HashMap<&str, &str>> {
    let get = |e: postgres::Error| Error::new(ErrorKind::Store, format!("A stored record could not be read: {e}."));
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        found.insert(row.try_get(0).map_err(get)?, row.try_get(1).map_err(get)?);
    }
    Ok(found)
}

/// Answer each row `(id, body)` whose id is that of a record at one of the positions `which` of
/// `records`.
fn compare_rows(
    records: &[&UsageRecord],
    rows: &[postgres::Row],
    which: &[usize],
    out: &mut [Option<bool>],
    cmp: &mut probe::Comparer,
) -> Result<()> {
    let at: rustc_hash::FxHashMap<&[u8], usize> = which.iter().map(|&i| (records[i].id.as_bytes(), i)).collect();
    let get = |e: postgres::Error| Error::new(ErrorKind::Store, format!("A stored record could not be read: {e}."));
    for row in rows {
        let id: probe::RawText<'_> = row.try_get(0).map_err(get)?;
        let Some(&i) = at.get(id.0) else { continue };
        let body: probe::RawText<'_> = row.try_get(1).map_err(get)?;
        out[i] = Some(cmp.same(records[i], body.0)?);
    }
    Ok(())
}

fn json_err(e: &serde_json::Error) -> Error {
    Error::new(ErrorKind::Store, format!("Stored JSON could not be read or written: {e}."))
}

fn group_json(group: &[Option<String>]) -> Result<String> {
    serde_json::to_string(group).map_err(|e| json_err(&e))
}

/// True when `e` means the connection is unusable (closed, reset, the backend terminated).
fn is_connection_loss(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => {
            c == &SqlState::ADMIN_SHUTDOWN
                || c == &SqlState::CRASH_SHUTDOWN
                || c == &SqlState::CANNOT_CONNECT_NOW
                || c.code().starts_with("08")
        }
        // Not a server error: an I/O failure of the socket.
        None => std::error::Error::source(e).is_some_and(<dyn std::error::Error + 'static>::is::<std::io::Error>),
    }
}

/// Append `s` to a COPY text-format line, escaping what the format reserves.
fn copy_text(out: &mut String, s: &str) {
    if !s.contains(['\\', '\t', '\n', '\r']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn quote_ident(schema: &str) -> Result<String> {
    if schema.is_empty() || !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || schema.len() > 63 {
        return Err(Error::new(
            ErrorKind::Store,
            format!("The schema name '{schema}' is not valid: use 1 to 63 letters, digits or '_'."),
        )
        .with_field("schema"));
    }
    Ok(format!("\"{schema}\""))
}

impl PgStore {
    /// Connect to the database at `url` (see [`PgOptions::url`]; a `schema=NAME` query parameter
    /// picks the schema, see [`PgOptions::from_url`]) and apply the schema migrations that are
    /// missing (concurrent openers wait for each other; applying is idempotent).
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the server cannot be reached, refuses the login, or holds a
    /// schema newer than this version knows.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with(PgOptions::from_url(url))
    }

    /// [`PgStore::open`] with options (a schema for the tables).
    ///
    /// # Errors
    /// As [`PgStore::open`]; an invalid schema name.
    pub fn open_with(options: PgOptions) -> Result<Self> {
        if let Some(s) = &options.schema {
            quote_ident(s)?;
        }
        let store =
            PgStore { options, conn: RefCell::new(None), scan_gen: Cell::new(None), hook: None, exclusive_held: false };
        store.connect()?;
        Ok(store)
    }

    /// Run `hook` once, inside the next `apply` transaction that writes records, right after the
    /// records are written (for fault-injection tests: kill the connection there).
    #[doc(hidden)]
    pub fn set_apply_hook(&mut self, hook: ApplyHook) {
        self.hook = Some(hook);
    }

    /// The server process id of the current connection (`pg_backend_pid()`), connecting if needed.
    ///
    /// # Errors
    /// [`ErrorKind::Store`].
    pub fn backend_pid(&self) -> Result<i32> {
        self.with_conn("read the backend pid", |c| c.client.query_one("SELECT pg_backend_pid()", &[])?.try_get(0))
    }

    fn client_config(&self) -> Result<postgres::Config> {
        self.options.url.parse::<postgres::Config>().map_err(|e| {
            Error::new(ErrorKind::Store, format!("The PostgreSQL connection string is not valid: {e}."))
                .with_field("url")
        })
    }

    #[cfg(feature = "tls")]
    fn raw_connect(config: &postgres::Config) -> Result<Client> {
        let connector = native_tls::TlsConnector::new()
            .map_err(|e| Error::new(ErrorKind::Store, format!("TLS could not be set up: {e}.")))?;
        config.connect(postgres_native_tls::MakeTlsConnector::new(connector)).map_err(|e| connect_err(&e))
    }

    #[cfg(not(feature = "tls"))]
    fn raw_connect(config: &postgres::Config) -> Result<Client> {
        config.connect(postgres::NoTls).map_err(|e| connect_err(&e))
    }

    /// Open a connection, set the schema, migrate, prepare statements.
    fn connect(&self) -> Result<()> {
        let config = self.client_config()?;
        let mut client = Self::raw_connect(&config)?;
        if let Some(schema) = &self.options.schema {
            let q = quote_ident(schema)?;
            // Two openers may create the schema at once: the loser's error is harmless.
            if let Err(e) = client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {q}")) {
                if e.code() != Some(&SqlState::UNIQUE_VIOLATION) {
                    return Err(db_err("create the schema", &e));
                }
            }
            client.batch_execute(&format!("SET search_path TO {q}")).map_err(|e| db_err("set the schema", &e))?;
        }
        let lock_key: i32 = client
            .query_one("SELECT hashtext(current_schema())", &[])
            .and_then(|r| r.try_get(0))
            .map_err(|e| db_err("read the current schema", &e))?;
        migrate(&mut client, lock_key)?;
        let st = prepare(&mut client).map_err(|e| db_err("prepare statements", &e))?;
        *self.conn.borrow_mut() = Some(Conn { client, st, lock_key });
        Ok(())
    }

    /// Run `f` on the connection (connecting first if there is none); a connection found lost is
    /// dropped so that the next call reconnects.
    fn with_conn<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Conn) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        self.with_conn_result(|c| f(c).map_err(|e| PgFail::Pg(what.to_string(), e)))
    }

    fn with_conn_result<T>(&self, f: impl FnOnce(&mut Conn) -> std::result::Result<T, PgFail>) -> Result<T> {
        if self.conn.borrow().as_ref().is_none_or(|c| c.client.is_closed()) {
            *self.conn.borrow_mut() = None;
            self.connect()?;
        }
        let mut guard = self.conn.borrow_mut();
        let Some(conn) = guard.as_mut() else {
            return Err(Error::new(ErrorKind::Store, "The PostgreSQL connection is not open."));
        };
        match f(conn) {
            Ok(v) => Ok(v),
            Err(PgFail::Pg(what, e)) => {
                if is_connection_loss(&e) {
                    *guard = None;
                }
                Err(db_err(&what, &e))
            }
            Err(PgFail::Meterkit(e)) => Err(e),
            Err(PgFail::Broken(e)) => {
                *guard = None;
                Err(e)
            }
        }
    }

    fn query_buckets(
        &self,
        what: &str,
        pick: impl FnOnce(&Stmts) -> &Statement,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<StoredBucket>> {
        let rows = self.with_conn(what, |c| {
            let st = pick(&c.st).clone();
            c.client.query(&st, params)
        })?;
        rows.iter().map(row_to_bucket).collect()
    }
}

/// Why a step inside a connection failed.
enum PgFail {
    /// A PostgreSQL error while doing the named thing.
    Pg(String, postgres::Error),
    /// A meterkit error (a refused change, bad JSON); the connection is fine.
    Meterkit(Error),
    /// A meterkit error after which the connection must not be reused.
    Broken(Error),
}

impl From<Error> for PgFail {
    fn from(e: Error) -> Self {
        PgFail::Meterkit(e)
    }
}

trait Context<T> {
    fn ctx(self, what: &str) -> std::result::Result<T, PgFail>;
}

impl<T> Context<T> for std::result::Result<T, postgres::Error> {
    fn ctx(self, what: &str) -> std::result::Result<T, PgFail> {
        self.map_err(|e| PgFail::Pg(what.to_string(), e))
    }
}

fn connect_err(e: &postgres::Error) -> Error {
    Error::new(ErrorKind::Store, format!("Cannot connect to PostgreSQL: {}.", error_text(e)))
}

fn error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

fn migrate(client: &mut Client, lock_key: i32) -> Result<()> {
    let mut tx = client.transaction().map_err(|e| db_err("begin the migration", &e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&(LOCK_CLASS + 1), &lock_key])
        .map_err(|e| db_err("lock the schema for migration", &e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS meterkit_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .map_err(|e| db_err("create meterkit_migrations", &e))?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM meterkit_migrations", &[])
        .and_then(|r| r.try_get(0))
        .map_err(|e| db_err("read the schema version", &e))?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(Error::new(
            ErrorKind::Store,
            format!("The database holds meterkit schema version {current}; this version knows up to {known}."),
        ));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).map_err(|e| db_err(&format!("apply schema migration {version}"), &e))?;
        tx.execute("INSERT INTO meterkit_migrations (version) VALUES ($1)", &[version])
            .map_err(|e| db_err("record the schema migration", &e))?;
    }
    tx.commit().map_err(|e| db_err("commit the migration", &e))
}

fn prepare(c: &mut Client) -> std::result::Result<Stmts, postgres::Error> {
    Ok(Stmts {
        specs: c.prepare("SELECT body, removed FROM meterkit_specs ORDER BY id")?,
        get_records: c.prepare("SELECT id, body FROM meterkit_records WHERE tenant = $1 AND id = ANY($2::text[])")?,
        // The time-range scan of `compare_by_time`, in slices of `$5` seconds, each slice's
        // bodies (at most `$6`) joined by 0x1F in one row (see `probe::slices`).
        by_time: c.prepare(
            "SELECT (SELECT string_agg(body, E'\\x1f') FROM (SELECT body FROM meterkit_records
                     WHERE tenant = $1 AND metric = $2 AND ts >= g AND ts < g + $5 AND ts <= $4 LIMIT $6) AS x)
             FROM generate_series($3::int8, $4::int8, $5::int8) AS g",
        )?,
        records: c.prepare(
            "SELECT body FROM meterkit_records WHERE tenant = $1 AND metric = $2 AND ts >= $3 AND ts < $4
             ORDER BY ts, ts_nanos, id",
        )?,
        records_subject: c.prepare(
            "SELECT body FROM meterkit_records WHERE tenant = $1 AND metric = $2 AND ts >= $3 AND ts < $4
             AND subject = $5 ORDER BY ts, ts_nanos, id",
        )?,
        buckets: c.prepare(&format!(
            "SELECT {BUCKET_COLS} FROM meterkit_buckets WHERE tenant = $1 AND spec = $2 AND start >= $3 AND start < $4
             ORDER BY start, grp"
        ))?,
        bucket: c.prepare(&format!(
            "SELECT {BUCKET_COLS} FROM meterkit_buckets WHERE tenant = $1 AND spec = $2 AND start = $3 AND grp = $4"
        ))?,
        open_buckets: c.prepare(&format!(
            "SELECT {BUCKET_COLS} FROM meterkit_buckets WHERE tenant = $1 AND NOT closed AND end_ts <= $2
             ORDER BY end_ts, spec, start, grp"
        ))?,
        meta: c.prepare("SELECT value FROM meterkit_meta WHERE tenant = $1 AND key = $2")?,
        meta_prefix: c.prepare(
            "SELECT key, value FROM meterkit_meta WHERE tenant = $1 AND key >= $2 AND left(key, length($2)) = $2
             ORDER BY key",
        )?,
        // Creates missing buckets and locks every one, in the order given (sorted by key, so that
        // concurrent writers lock in one order and never deadlock), returning the current state.
        lock_upsert: c.prepare(
            "INSERT INTO meterkit_buckets AS b (tenant, spec, start, grp, end_ts, state, closed)
             SELECT t, s, st, g, e, NULL, false
             FROM unnest($1::text[], $2::int4[], $3::int8[], $4::text[], $5::int8[]) WITH ORDINALITY AS u(t, s, st, g, e, n)
             ORDER BY n
             ON CONFLICT (tenant, spec, start, grp) DO UPDATE SET end_ts = b.end_ts
             RETURNING b.tenant, b.spec, b.start, b.grp, b.state, b.closed",
        )?,
        set_states: c.prepare(
            "UPDATE meterkit_buckets AS b SET state = u.state
             FROM unnest($1::text[], $2::int4[], $3::int8[], $4::text[], $5::text[]) AS u(t, s, st, g, state)
             WHERE b.tenant = u.t AND b.spec = u.s AND b.start = u.st AND b.grp = u.g",
        )?,
        // The statements of every `apply` (a repeat run's batch writes its metadata alone):
        // prepared once rather than parsed and planned per call.
        lock_specs_shared: c.prepare("SELECT pg_advisory_xact_lock_shared($1, $2)")?,
        lock_data_shared: c
            .prepare("SELECT pg_advisory_xact_lock_shared($1, $3), pg_advisory_xact_lock_shared($2, $3)")?,
        meta_set: c.prepare(
            "INSERT INTO meterkit_meta (tenant, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (tenant, key) DO UPDATE SET value = EXCLUDED.value",
        )?,
        meta_delete: c.prepare("DELETE FROM meterkit_meta WHERE tenant = $1 AND key = $2")?,
        // A change of metadata alone (`apply_meta_only`): the deletions ($4, $5) and the upserts
        // ($1 to $3, in the order given) in one statement, so one implicit transaction.
        meta_only: c.prepare(
            "WITH gone AS (DELETE FROM meterkit_meta AS m USING unnest($4::text[], $5::text[]) AS d(t, k)
                           WHERE m.tenant = d.t AND m.key = d.k)
             INSERT INTO meterkit_meta (tenant, key, value)
             SELECT t, k, v FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(t, k, v, n) ORDER BY n
             ON CONFLICT (tenant, key) DO UPDATE SET value = EXCLUDED.value",
        )?,
        // The 16-id sample of a batch (rows with their id) and, when at least half of the sample
        // is stored ($8: the sample's size), the time-range scan of the batch's first metric as
        // `by_time` does it (rows without an id): `compare_stored`'s two queries in one round trip.
        sample_and_scan: c.prepare(
            "WITH s AS MATERIALIZED (SELECT id, body FROM meterkit_records WHERE tenant = $1 AND id = ANY($2::text[]))
             SELECT id, body FROM s
             UNION ALL
             SELECT NULL::text, (SELECT string_agg(body, E'\\x1f') FROM (SELECT body FROM meterkit_records
                     WHERE tenant = $1 AND metric = $3 AND ts >= g AND ts < g + $6 AND ts <= $5 LIMIT $7) AS x)
             FROM generate_series($4::int8, $5::int8, $6::int8) AS g
             WHERE (SELECT count(*) FROM s) * 2 >= $8",
        )?,
    })
}

fn row_to_bucket(row: &postgres::Row) -> Result<StoredBucket> {
    let get = |e: postgres::Error| Error::new(ErrorKind::Store, format!("A stored bucket could not be read: {e}."));
    let tenant: String = row.try_get(0).map_err(get)?;
    let spec: i32 = row.try_get(1).map_err(get)?;
    let start: i64 = row.try_get(2).map_err(get)?;
    let grp: &str = row.try_get(3).map_err(get)?;
    let end: i64 = row.try_get(4).map_err(get)?;
    let state: Option<&str> = row.try_get(5).map_err(get)?;
    let closed: bool = row.try_get(6).map_err(get)?;
    Ok(StoredBucket {
        key: BucketKey {
            tenant,
            spec: spec as u32,
            start,
            group: serde_json::from_str(grp).map_err(|e| json_err(&e))?,
        },
        end,
        state: match state {
            Some(s) => serde_json::from_str(s).map_err(|e| json_err(&e))?,
            None => BucketState::default(),
        },
        closed,
    })
}

fn parse_records(rows: &[postgres::Row], col: usize) -> Result<Vec<UsageRecord>> {
    rows.iter()
        .map(|r| {
            let body: &str = r
                .try_get(col)
                .map_err(|e| Error::new(ErrorKind::Store, format!("A stored record could not be read: {e}.")))?;
            serde_json::from_str(body).map_err(|e| json_err(&e))
        })
        .collect()
}

/// The record generation: `meterkit_record_gen`'s last value (0 before the first write).
fn record_gen(tx: &mut postgres::Transaction<'_>) -> std::result::Result<i64, PgFail> {
    let row =
        tx.query_one("SELECT last_value, is_called FROM meterkit_record_gen", &[]).ctx("read the record generation")?;
    let last: i64 = row.try_get(0).ctx("read the record generation")?;
    let called: bool = row.try_get(1).ctx("read the record generation")?;
    Ok(if called { last } else { 0 })
}

/// A bucket key as `(tenant, spec, start, group JSON)`.
type OwnedKey = (String, u32, i64, String);

fn retryable(message: impl Into<String>) -> PgFail {
    PgFail::Meterkit(Error::new(ErrorKind::Store, message).with_retryable())
}

/// Whether `changes` writes metadata and nothing else (no record, bucket or spec).
fn is_meta_only(changes: &ChangeSet<'_>) -> bool {
    let ChangeSet { new_specs, remove_specs, insert, delete, merge, replace, set, meta: _, known_specs: _ } = changes;
    new_specs.is_empty()
        && remove_specs.is_empty()
        && insert.is_empty()
        && delete.is_empty()
        && merge.is_empty()
        && replace.is_empty()
        && set.is_empty()
}

/// Metadata to set, as `(tenants, keys, values)`.
type MetaSets<'c> = (Vec<&'c str>, Vec<&'c str>, Vec<&'c str>);

/// The net effect of metadata changes applied in order: the last value of each `(tenant, key)`,
/// sorted by key (so that concurrent writers lock the rows in one order), split into the keys to
/// set and those to delete `(tenants, keys)`.
fn net_meta(meta: &[(String, String, Option<String>)]) -> (MetaSets<'_>, (Vec<&str>, Vec<&str>)) {
    let last: BTreeMap<(&str, &str), Option<&str>> =
        meta.iter().map(|(t, k, v)| ((t.as_str(), k.as_str()), v.as_deref())).collect();
    let (mut sets, mut deletes) = ((Vec::new(), Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for ((t, k), v) in last {
        match v {
            Some(v) => {
                sets.0.push(t);
                sets.1.push(k);
                sets.2.push(v);
            }
            None => {
                deletes.0.push(t);
                deletes.1.push(k);
            }
        }
    }
    (sets, deletes)
}

fn read_err(e: &postgres::Error) -> Error {
    Error::new(ErrorKind::Store, format!("A stored record could not be read: {e}."))
}

impl PgStore {
    /// Writes a change of metadata alone in one statement (one implicit transaction: all of it
    /// or none), the net effect of the entries in order.
    ///
    /// It takes neither the writers' nor the specs' lock and does not check
    /// [`ChangeSet::known_specs`]: a spec another engine added (or removed) meanwhile changes no
    /// record and no bucket this change writes, and the spec's change reads and writes no
    /// metadata, so the outcome is that of this change committed just before it — one the check
    /// would have let through. (In a transaction the check costs four more round trips: begin,
    /// lock, read the specs, commit; a repeat run's every batch writes its probe key alone.)
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the statement fails (retryable on a deadlock or serialization
    /// failure).
    fn apply_meta_only(&self, meta: &[(String, String, Option<String>)]) -> Result<()> {
        if meta.is_empty() {
            return Ok(());
        }
        let ((ts, ks, vs), (dts, dks)) = net_meta(meta);
        self.with_conn("write metadata", |c| {
            let st = c.st.meta_only.clone();
            c.client.execute(&st, &[&ts, &ks, &vs, &dts, &dks])
        })?;
        Ok(())
    }

    /// The stored `(id, body)` rows of `tenant`'s records among `ids` (one `id = ANY` query).
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the query fails or the connection is lost.
    fn stored_bodies(&self, tenant: &str, ids: &[&str]) -> Result<Vec<postgres::Row>> {
        self.with_conn("read records by id", |c| {
            let st = c.st.get_records.clone();
            c.client.query(&st, &[&tenant, &ids])
        })
    }

    /// The duplicate check of `records` at `which` by id: one `id = ANY($2)` query.
    fn compare_by_id(
        &self,
        tenant: &str,
        records: &[&UsageRecord],
        which: &[usize],
        out: &mut [Option<bool>],
        cmp: &mut probe::Comparer,
    ) -> Result<()> {
        if which.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = which.iter().map(|&i| records[i].id.as_str()).collect();
        let rows = self.stored_bodies(tenant, &ids)?;
        compare_rows(records, &rows, which, out, cmp)
    }

    /// The duplicate check of `records` at `sample` by id and, in the same round trip, of the
    /// records of `first` (a metric's group of the rest, see [`probe::time_ranges`]) from the
    /// scan of its time range, which the server runs only when at least half of the sample is
    /// stored. Returns whether it was (then the other metrics' groups are scanned too).
    fn compare_sample_and_scan(
        &self,
        tenant: &str,
        records: &[&UsageRecord],
        sample: &[usize],
        first: &(&str, i64, i64, Vec<usize>),
        out: &mut [Option<bool>],
        cmp: &mut probe::Comparer,
    ) -> Result<bool> {
        let (metric, from, to, group) = first;
        let ids: Vec<&str> = sample.iter().map(|&i| records[i].id.as_str()).collect();
        let (width, cap) = probe::slices(*from, *to, group.len());
        let half = i64::try_from(sample.len()).unwrap_or(i64::MAX);
        let rows = self.with_conn("read records by id and by time", |c| {
            let st = c.st.sample_and_scan.clone();
            c.client.query(&st, &[&tenant, &ids, metric, from, to, &width, &cap, &half])
        })?;
        let at: rustc_hash::FxHashMap<&[u8], usize> = sample.iter().map(|&i| (records[i].id.as_bytes(), i)).collect();
        let mut by_id = probe::ByLeadingId::new(records, group);
        for row in &rows {
            let body: Option<probe::RawText<'_>> = row.try_get(1).map_err(|e| read_err(&e))?;
            match (row.try_get::<_, Option<probe::RawText<'_>>>(0).map_err(|e| read_err(&e))?, body) {
                // A sampled record's row.
                (Some(id), Some(body)) => {
                    if let Some(&i) = at.get(id.0) {
                        out[i] = Some(cmp.same(records[i], body.0)?);
                    }
                }
                (None, Some(joined)) => by_id.answer_joined(joined.0, out, cmp)?,
                // A slice without stored records.
                (_, None) => {}
            }
        }
        Ok(sample.iter().filter(|&&i| out[i].is_some()).count() * 2 >= sample.len())
    }

    /// The duplicate check of the records of `group` (a metric's, with its time range) from one
    /// scan of the stored records in that range, in slices of time each answered by one row of
    /// bodies (`LIMIT`ed per slice to 2 × the records expected there + 64, so that a range crowded
    /// with other records stops early; see [`probe::slices`]), which reads the bodies alone
    /// (matched to the batch by the id each starts with); a record the scan does not meet stays
    /// unanswered.
    fn compare_by_time(
        &self,
        tenant: &str,
        records: &[&UsageRecord],
        (metric, from, to, group): &(&str, i64, i64, Vec<usize>),
        out: &mut [Option<bool>],
        cmp: &mut probe::Comparer,
    ) -> Result<()> {
        let (width, cap) = probe::slices(*from, *to, group.len());
        let rows = self.with_conn("read records by time", |c| {
            let st = c.st.by_time.clone();
            c.client.query(&st, &[&tenant, metric, from, to, &width, &cap])
        })?;
        let mut by_id = probe::ByLeadingId::new(records, group);
        for row in &rows {
            if let Some(joined) = row.try_get::<_, Option<probe::RawText<'_>>>(0).map_err(|e| read_err(&e))? {
                by_id.answer_joined(joined.0, out, cmp)?;
            }
        }
        Ok(())
    }

    /// Call `f` for every stored record of `metric` (of `tenant` only, if given) in a snapshot
    /// taken after in-flight writers finished, and note the record generation of that snapshot
    /// (the next `apply` adding a spec checks it).
    fn scan(&self, metric: &str, tenant: Option<&str>, f: &mut dyn FnMut(&UsageRecord) -> Result<()>) -> Result<()> {
        let gen = self.with_conn_result(|c| {
            let key = c.lock_key;
            // Wait for in-flight writers (session lock), then take a snapshot that sees all of
            // them, and note the record generation of that snapshot.
            c.client
                .execute("SELECT pg_advisory_lock($1, $2)", &[&LOCK_CLASS, &key])
                .ctx("lock the specs for a scan")?;
            let scanned = (|| {
                let mut tx = c
                    .client
                    .build_transaction()
                    .isolation_level(postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .ctx("begin a scan")?;
                let gen = record_gen(&mut tx)?;
                tx.execute("SELECT pg_advisory_unlock($1, $2)", &[&LOCK_CLASS, &key]).ctx("unlock the specs")?;
                let mut rows = match tenant {
                    None => {
                        let params: [&(dyn postgres::types::ToSql + Sync); 1] = [&metric];
                        tx.query_raw("SELECT body FROM meterkit_records WHERE metric = $1", params)
                    }
                    Some(t) => {
                        let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&metric, &t];
                        tx.query_raw("SELECT body FROM meterkit_records WHERE metric = $1 AND tenant = $2", params)
                    }
                }
                .ctx("scan records")?;
                while let Some(row) =
                    postgres::fallible_iterator::FallibleIterator::next(&mut rows).ctx("scan records")?
                {
                    let body: &str = row.try_get(0).ctx("read a scanned record")?;
                    let r: UsageRecord = serde_json::from_str(body).map_err(|e| json_err(&e))?;
                    f(&r)?;
                }
                drop(rows);
                tx.commit().ctx("end a scan")?;
                Ok(gen)
            })();
            match scanned {
                Ok(g) => Ok(g),
                // The session lock may still be held: drop the connection rather than reuse it.
                Err(PgFail::Pg(w, e)) => Err(PgFail::Broken(db_err(&w, &e))),
                Err(PgFail::Meterkit(e) | PgFail::Broken(e)) => Err(PgFail::Broken(e)),
            }
        })?;
        self.scan_gen.set(Some(gen));
        Ok(())
    }

    #[allow(clippy::too_many_lines)]
    fn apply_in(
        tx: &mut postgres::Transaction<'_>,
        st: &Stmts,
        lock_key: i32,
        changes: &ChangeSet<'_>,
        scan_gen: Option<i64>,
        hook: &mut Option<ApplyHook>,
    ) -> std::result::Result<Vec<bool>, PgFail> {
        let writes_data = !changes.insert.is_empty()
            || !changes.delete.is_empty()
            || !changes.merge.is_empty()
            || !changes.replace.is_empty()
            || !changes.set.is_empty();
        // Spec additions exclude every other writer; writers of records and buckets share the lock.
        // The writers' lock first (a retrying engine may hold it exclusively), then the specs'.
        if !changes.new_specs.is_empty() || !changes.remove_specs.is_empty() {
            tx.execute(
                "SELECT pg_advisory_xact_lock_shared($1, $3), pg_advisory_xact_lock($2, $3)",
                &[&WRITE_CLASS, &LOCK_CLASS, &lock_key],
            )
            .ctx("lock the specs")?;
        } else if writes_data {
            tx.execute(&st.lock_data_shared, &[&WRITE_CLASS, &LOCK_CLASS, &lock_key]).ctx("lock the specs (shared)")?;
        } else if changes.known_specs.is_some() {
            tx.execute(&st.lock_specs_shared, &[&LOCK_CLASS, &lock_key]).ctx("lock the specs (shared)")?;
        }
        let mut specs: Option<Vec<RollupSpec>> = None;
        if changes.known_specs.is_some()
            || !changes.new_specs.is_empty()
            || !changes.remove_specs.is_empty()
            || !changes.replace.is_empty()
        {
            let rows = tx.query(&st.specs, &[]).ctx("read the specs")?;
            let mut removed: Vec<u32> = Vec::new();
            let mut list: Vec<RollupSpec> = Vec::with_capacity(rows.len());
            for (i, r) in rows.iter().enumerate() {
                let body: &str = r.try_get(0).map_err(|e| PgFail::Pg("read a spec".into(), e))?;
                list.push(serde_json::from_str(body).map_err(|e| PgFail::Meterkit(json_err(&e)))?);
                if r.try_get::<_, bool>(1).map_err(|e| PgFail::Pg("read a spec".into(), e))? {
                    removed.push(i as u32);
                }
            }
            if changes.known_specs.is_some_and(|k| (k as usize) < list.len()) {
                return Err(retryable("Another writer added a rollup spec; the change was not applied."));
            }
            if let Some((key, _, _)) = changes.merge.iter().find(|(k, _, _)| removed.contains(&k.spec)) {
                return Err(retryable(format!(
                    "Rollup spec {} was removed by another writer; the change was not applied.",
                    key.spec
                )));
            }
            specs = Some(list);
        }
        if !changes.new_specs.is_empty() {
            // The backfill was computed from a scan; a record written since makes it stale.
            if let Some(seen) = scan_gen {
                if record_gen(tx)? != seen {
                    return Err(retryable(
                        "Records were written while a new rollup spec was backfilled; the spec was not added.",
                    ));
                }
            }
            let base = specs.as_ref().map_or(0, Vec::len);
            for (i, spec) in changes.new_specs.iter().enumerate() {
                let body = serde_json::to_string(spec).map_err(|e| json_err(&e))?;
                let id = (base + i) as i32;
                tx.execute("INSERT INTO meterkit_specs (id, body) VALUES ($1, $2)", &[&id, &body])
                    .ctx("add a rollup spec")?;
            }
            if let Some(list) = specs.as_mut() {
                list.extend(changes.new_specs.iter().cloned());
            }
        }
        for id in &changes.remove_specs {
            let id = *id as i32;
            let marked = tx
                .execute("UPDATE meterkit_specs SET removed = true WHERE id = $1", &[&id])
                .ctx("remove a rollup spec")?;
            if marked == 0 {
                return Err(PgFail::Meterkit(Error::new(
                    ErrorKind::Store,
                    format!("There is no rollup spec {id} to remove."),
                )));
            }
            tx.execute("DELETE FROM meterkit_buckets WHERE spec = $1", &[&id])
                .ctx("delete a removed spec's buckets")?;
        }
        if !changes.insert.is_empty() || !changes.delete.is_empty() {
            tx.execute("SELECT nextval('meterkit_record_gen')", &[]).ctx("advance the record generation")?;
        }
        for (tenant, id) in &changes.delete {
            tx.execute("DELETE FROM meterkit_records WHERE tenant = $1 AND id = $2", &[tenant, id])
                .ctx("delete a record")?;
        }
        if !changes.insert.is_empty() {
            Self::copy_records(tx, &changes.insert)?;
            if let Some(mut h) = hook.take() {
                let pid: i32 = tx
                    .query_one("SELECT pg_backend_pid()", &[])
                    .and_then(|r| r.try_get(0))
                    .ctx("read the backend pid")?;
                h(pid);
            }
        }
        let late = Self::merge_buckets(tx, st, &changes.merge)?;
        if !changes.replace.is_empty() {
            Self::replace_buckets(tx, st, specs.as_deref().unwrap_or(&[]), &changes.replace, true)?;
        }
        if !changes.set.is_empty() {
            let set: Vec<_> = changes.set.iter().map(|(k, e, s)| (k.clone(), *e, Some(s.clone()))).collect();
            Self::replace_buckets(tx, st, &[], &set, false)?;
        }
        for (tenant, key, value) in &changes.meta {
            match value {
                Some(v) => tx.execute(&st.meta_set, &[tenant, key, v]),
                None => tx.execute(&st.meta_delete, &[tenant, key]),
            }
            .ctx("write metadata")?;
        }
        Ok(late)
    }

    /// COPY the records in (sorted by key, so concurrent writers of overlapping keys wait for each
    /// other in one order). A key stored meanwhile by another writer fails the COPY with a unique
    /// violation: the change is refused as retryable.
    fn copy_records(tx: &mut postgres::Transaction<'_>, insert: &[&UsageRecord]) -> std::result::Result<(), PgFail> {
        let mut sorted: Vec<&UsageRecord> = insert.to_vec();
        sorted.sort_unstable_by(|a, b| (&a.tenant, &a.id).cmp(&(&b.tenant, &b.id)));
        let mut buf = String::with_capacity(sorted.len() * 256);
        let mut body = Vec::with_capacity(256);
        for r in sorted {
            copy_text(&mut buf, &r.tenant);
            buf.push('\t');
            copy_text(&mut buf, &r.id);
            buf.push('\t');
            copy_text(&mut buf, &r.metric);
            buf.push('\t');
            copy_text(&mut buf, &r.subject);
            let _ = write!(buf, "\t{}\t{}\t", r.timestamp.timestamp(), r.timestamp.timestamp_subsec_nanos());
            body.clear();
            serde_json::to_writer(&mut body, r).map_err(|e| json_err(&e))?;
            // serde_json output is UTF-8.
            copy_text(&mut buf, std::str::from_utf8(&body).unwrap_or_default());
            buf.push('\n');
        }
        let mut writer = tx
            .copy_in("COPY meterkit_records (tenant, id, metric, subject, ts, ts_nanos, body) FROM STDIN")
            .ctx("start copying records")?;
        writer.write_all(buf.as_bytes()).map_err(|e| {
            PgFail::Broken(Error::new(ErrorKind::Store, format!("PostgreSQL failed to receive records: {e}.")))
        })?;
        match writer.finish() {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(retryable(
                "A record of the batch was stored by another writer meanwhile; the batch was not applied.",
            )),
            Err(e) => Err(PgFail::Pg("copy records".into(), e)),
        }
    }

    /// Merge bucket deltas: lock (creating if missing) every bucket in key order, merge in Rust,
    /// write the states back. Returns the late flags in `merge` order.
    fn merge_buckets(
        tx: &mut postgres::Transaction<'_>,
        st: &Stmts,
        merge: &[(BucketKey, i64, BucketState)],
    ) -> std::result::Result<Vec<bool>, PgFail> {
        if merge.is_empty() {
            return Ok(Vec::new());
        }
        // (tenant, spec, start, grp) → (end, combined delta).
        let mut combined: BTreeMap<(&str, u32, i64, String), (i64, BucketState)> = BTreeMap::new();
        let mut entry_keys = Vec::with_capacity(merge.len());
        for (key, end, delta) in merge {
            let k = (key.tenant.as_str(), key.spec, key.start, group_json(&key.group)?);
            entry_keys.push(k.clone());
            match combined.get_mut(&k) {
                Some((_, s)) => s.merge(delta)?,
                None => {
                    combined.insert(k, (*end, delta.clone()));
                }
            }
        }
        let n = combined.len();
        let (mut ts, mut ss, mut sts, mut gs, mut es) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for ((t, s, start, g), (end, _)) in &combined {
            ts.push(*t);
            ss.push(*s as i32);
            sts.push(*start);
            gs.push(g.as_str());
            es.push(*end);
        }
        let rows = tx.query(&st.lock_upsert, &[&ts, &ss, &sts, &gs, &es]).ctx("lock the buckets")?;
        let mut current: HashMap<OwnedKey, (Option<String>, bool)> = HashMap::with_capacity(n);
        for row in &rows {
            let t: String = row.try_get(0).ctx("read a bucket")?;
            let s: i32 = row.try_get(1).ctx("read a bucket")?;
            let start: i64 = row.try_get(2).ctx("read a bucket")?;
            let g: String = row.try_get(3).ctx("read a bucket")?;
            let state: Option<String> = row.try_get(4).ctx("read a bucket")?;
            let closed: bool = row.try_get(5).ctx("read a bucket")?;
            current.insert((t, s as u32, start, g), (state, closed));
        }
        let mut states = Vec::with_capacity(n);
        let mut closed_of: HashMap<(&str, u32, i64, &str), bool> = HashMap::with_capacity(n);
        for ((t, s, start, g), (_, delta)) in &combined {
            let (stored, closed) = current
                .remove(&((*t).to_string(), *s, *start, g.clone()))
                .ok_or_else(|| PgFail::Meterkit(Error::new(ErrorKind::Store, "A locked bucket was not returned.")))?;
            let mut state = match stored {
                Some(text) => serde_json::from_str::<BucketState>(&text).map_err(|e| json_err(&e))?,
                None => BucketState::default(),
            };
            state.merge(delta)?;
            states.push(serde_json::to_string(&state).map_err(|e| json_err(&e))?);
            closed_of.insert((t, *s, *start, g.as_str()), closed);
        }
        tx.execute(&st.set_states, &[&ts, &ss, &sts, &gs, &states]).ctx("write the bucket states")?;
        Ok(entry_keys
            .iter()
            .map(|(t, s, start, g)| closed_of.get(&(*t, *s, *start, g.as_str())).copied().unwrap_or(false))
            .collect())
    }

    /// Replace bucket states (a retraction). Each bucket is locked, then, with `verify`, its state
    /// is recomputed from the stored records; when that differs from the engine's state, a
    /// concurrent writer changed the bucket after the engine read it, and the change is refused as
    /// retryable. Without `verify` (`ChangeSet::set`: imported states no record backs) the states
    /// are written as given.
    fn replace_buckets(
        tx: &mut postgres::Transaction<'_>,
        st: &Stmts,
        specs: &[RollupSpec],
        replace: &[(BucketKey, i64, Option<BucketState>)],
        verify: bool,
    ) -> std::result::Result<(), PgFail> {
        let mut sorted: Vec<&(BucketKey, i64, Option<BucketState>)> = replace.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, end, state) in sorted {
            let grp = group_json(&key.group)?;
            let spec_id = key.spec as i32;
            tx.query(
                "SELECT 1 FROM meterkit_buckets WHERE tenant = $1 AND spec = $2 AND start = $3 AND grp = $4 FOR UPDATE",
                &[&key.tenant, &spec_id, &key.start, &grp],
            )
            .ctx("lock a bucket")?;
            let wanted = state.clone().filter(|s| s.count > 0);
            if let Some(spec) = specs.get(key.spec as usize).filter(|_| verify) {
                let rows = tx
                    .query(&st.records, &[&key.tenant, &spec.metric, &key.start, end])
                    .ctx("read a bucket's records")?;
                let unique: Vec<&str> = spec.unique_dims().collect();
                let mut fresh = BucketState::default();
                for r in parse_records(&rows, 0)? {
                    let group: Vec<Option<&str>> = spec.group_of(&r);
                    if group.iter().map(|g| g.map(str::to_string)).eq(key.group.iter().cloned()) {
                        fresh.add(&r, unique.iter().copied())?;
                    }
                }
                let fresh = Some(fresh).filter(|s| s.count > 0);
                if fresh != wanted {
                    return Err(retryable(
                        "A bucket changed while a record was retracted; the retraction was not applied.",
                    ));
                }
            }
            match wanted {
                Some(s) => {
                    let body = serde_json::to_string(&s).map_err(|e| json_err(&e))?;
                    tx.execute(
                        "INSERT INTO meterkit_buckets (tenant, spec, start, grp, end_ts, state, closed)
                         VALUES ($1, $2, $3, $4, $5, $6, false)
                         ON CONFLICT (tenant, spec, start, grp) DO UPDATE SET end_ts = EXCLUDED.end_ts, state = EXCLUDED.state",
                        &[&key.tenant, &spec_id, &key.start, &grp, end, &body],
                    )
                    .ctx("replace a bucket")?;
                }
                None => {
                    tx.execute(
                        "DELETE FROM meterkit_buckets WHERE tenant = $1 AND spec = $2 AND start = $3 AND grp = $4",
                        &[&key.tenant, &spec_id, &key.start, &grp],
                    )
                    .ctx("remove a bucket")?;
                }
            }
        }
        Ok(())
    }
}

impl Store for PgStore {
    fn specs(&self) -> Result<Vec<RollupSpec>> {
        let rows = self.with_conn("read the specs", |c| {
            let st = c.st.specs.clone();
            c.client.query(&st, &[])
        })?;
        rows.iter()
            .map(|r| {
                let body: &str = r
                    .try_get(0)
                    .map_err(|e| Error::new(ErrorKind::Store, format!("A spec could not be read: {e}.")))?;
                serde_json::from_str(body).map_err(|e| json_err(&e))
            })
            .collect()
    }

    fn removed_specs(&self) -> Result<Vec<u32>> {
        let rows = self.with_conn("read the specs", |c| {
            c.client.query("SELECT id FROM meterkit_specs WHERE removed ORDER BY id", &[])
        })?;
        rows.iter()
            .map(|r| {
                r.try_get::<_, i32>(0)
                    .map(|id| id as u32)
                    .map_err(|e| Error::new(ErrorKind::Store, format!("A spec could not be read: {e}.")))
            })
            .collect()
    }

    /// One query for the whole batch (`id = ANY($2)`), compared in the stored form: a stored body
    /// equal to the incoming record's JSON (the form `apply` writes) is the same content without
    /// being parsed; any other (a conflict, a copy stored flagged by validation, a quantity written
    /// at another scale) is parsed and compared field by field, so the answer stays exact.
    fn compare_stored(&self, tenant: &str, records: &[&UsageRecord]) -> Result<Vec<Option<bool>>> {
        let mut out: Vec<Option<bool>> = vec![None; records.len()];
        let mut cmp = probe::Comparer::default();
        let mut left: Vec<usize> = (0..records.len()).collect();
        if records.len() >= probe::SCAN_MIN {
            // A sample spread over the batch, by id: a batch mostly stored already is a repeat
            // run, answered from its time ranges (the first metric's scan in the same round trip
            // as the sample); any other is probed by id (a first run pays one more query of 16
            // ids, and the server skips the scan).
            let step = records.len() / probe::SAMPLE;
            let sample: Vec<usize> = (0..probe::SAMPLE).map(|k| k * step).collect();
            let mut probed = vec![false; records.len()];
            for &i in &sample {
                probed[i] = true;
            }
            let rest: Vec<usize> = left.iter().copied().filter(|&i| !probed[i]).collect();
            let mut groups = probe::time_ranges(records, &rest).into_iter();
            match groups.next() {
                Some(first) => {
                    if self.compare_sample_and_scan(tenant, records, &sample, &first, &mut out, &mut cmp)? {
                        for group in groups {
                            self.compare_by_time(tenant, records, &group, &mut out, &mut cmp)?;
                        }
                    }
                }
                None => self.compare_by_id(tenant, records, &sample, &mut out, &mut cmp)?,
            }
            left.retain(|&i| out[i].is_none() && !probed[i]);
        }
        self.compare_by_id(tenant, records, &left, &mut out, &mut cmp)?;
        Ok(out)
    }

    fn get_records(&self, tenant: &str, ids: &[&str]) -> Result<Vec<Option<UsageRecord>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.stored_bodies(tenant, ids)?;
        let found = bodies_by_id(&rows)?;
        ids.iter()
            .map(|id| found.get(id).map(|b| serde_json::from_str(b).map_err(|e| json_err(&e))).transpose())
            .collect()
    }

    fn records(
        &self,
        tenant: &str,
        metric: &str,
        subject: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<UsageRecord>> {
        let rows = self.with_conn("read records", |c| match subject {
            Some(s) => {
                let st = c.st.records_subject.clone();
                c.client.query(&st, &[&tenant, &metric, &from, &to, &s])
            }
            None => {
                let st = c.st.records.clone();
                c.client.query(&st, &[&tenant, &metric, &from, &to])
            }
        })?;
        parse_records(&rows, 0)
    }

    fn scan_metric(&self, metric: &str, f: &mut dyn FnMut(&UsageRecord) -> Result<()>) -> Result<()> {
        self.scan(metric, None, f)
    }

    /// As `scan_metric`, noting the record generation the same way (a tenant's own spec's
    /// backfill is checked against concurrent writers like any other).
    fn scan_tenant_metric(
        &self,
        tenant: &str,
        metric: &str,
        f: &mut dyn FnMut(&UsageRecord) -> Result<()>,
    ) -> Result<()> {
        self.scan(metric, Some(tenant), f)
    }

    /// A change of metadata alone (a repeat run's probe key and watermark) is one statement,
    /// without the specs' lock and check (see `apply_meta_only`); any other is one transaction.
    fn apply(&mut self, changes: &ChangeSet<'_>) -> Result<Vec<bool>> {
        let scan_gen = self.scan_gen.take();
        if is_meta_only(changes) {
            return self.apply_meta_only(&changes.meta).map(|()| Vec::new());
        }
        let mut hook = self.hook.take();
        let result = self.with_conn_result(|c| {
            let Conn { client, st, lock_key } = c;
            let mut tx = client.transaction().ctx("begin a transaction")?;
            let late = Self::apply_in(&mut tx, st, *lock_key, changes, scan_gen, &mut hook)?;
            tx.commit().ctx("commit a transaction")?;
            Ok(late)
        });
        if hook.is_some() {
            self.hook = hook;
        }
        result
    }

    fn buckets(&self, tenant: &str, spec: u32, from: i64, to: i64) -> Result<Vec<StoredBucket>> {
        let spec = spec as i32;
        self.query_buckets("read buckets", |s| &s.buckets, &[&tenant, &spec, &from, &to])
    }

    fn bucket(&self, key: &BucketKey) -> Result<Option<StoredBucket>> {
        let grp = group_json(&key.group)?;
        let spec = key.spec as i32;
        Ok(self.query_buckets("read a bucket", |s| &s.bucket, &[&key.tenant, &spec, &key.start, &grp])?.pop())
    }

    fn open_buckets_until(&self, tenant: &str, cutoff: i64) -> Result<Vec<StoredBucket>> {
        self.query_buckets("read open buckets", |s| &s.open_buckets, &[&tenant, &cutoff])
    }

    fn mark_closed(&mut self, keys: &[BucketKey]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&BucketKey> = keys.iter().collect();
        sorted.sort();
        let mut ts = Vec::with_capacity(sorted.len());
        let mut ss = Vec::with_capacity(sorted.len());
        let mut sts = Vec::with_capacity(sorted.len());
        let mut gs = Vec::with_capacity(sorted.len());
        for k in sorted {
            ts.push(k.tenant.as_str());
            ss.push(k.spec as i32);
            sts.push(k.start);
            gs.push(group_json(&k.group)?);
        }
        self.with_conn("mark buckets closed", |c| {
            c.client.execute(
                "UPDATE meterkit_buckets AS b SET closed = true
                 FROM unnest($1::text[], $2::int4[], $3::int8[], $4::text[]) AS u(t, s, st, g)
                 WHERE b.tenant = u.t AND b.spec = u.s AND b.start = u.st AND b.grp = u.g AND NOT b.closed",
                &[&ts, &ss, &sts, &gs],
            )
        })?;
        Ok(())
    }

    fn meta(&self, tenant: &str, key: &str) -> Result<Option<String>> {
        let rows = self.with_conn("read metadata", |c| {
            let st = c.st.meta.clone();
            c.client.query(&st, &[&tenant, &key])
        })?;
        rows.first()
            .map(|r| {
                r.try_get(0).map_err(|e| Error::new(ErrorKind::Store, format!("Metadata could not be read: {e}.")))
            })
            .transpose()
    }

    /// `true`: wait until no other writer is inside a change, then hold off every other writer's
    /// change (a session advisory lock) until `false`; so a retried batch cannot be refused again.
    fn exclusive(&mut self, on: bool) -> Result<()> {
        if on {
            self.with_conn("hold off other writers", |c| {
                c.client.execute("SELECT pg_advisory_lock($1, $2)", &[&WRITE_CLASS, &c.lock_key])
            })?;
            self.exclusive_held = true;
            return Ok(());
        }
        if !std::mem::take(&mut self.exclusive_held) {
            return Ok(());
        }
        let Some(conn) = self.conn.get_mut().as_mut() else { return Ok(()) };
        let released = conn.client.execute("SELECT pg_advisory_unlock($1, $2)", &[&WRITE_CLASS, &conn.lock_key]);
        if let Err(e) = released {
            // Ending the session is the other way to release its lock.
            *self.conn.get_mut() = None;
            return Err(db_err("release the other writers", &e));
        }
        Ok(())
    }

    fn meta_prefix(&self, tenant: &str, prefix: &str) -> Result<Vec<(String, String)>> {
        let rows = self.with_conn("read metadata", |c| {
            let st = c.st.meta_prefix.clone();
            c.client.query(&st, &[&tenant, &prefix])
        })?;
        rows.iter()
            .map(|r| {
                let get =
                    |e: postgres::Error| Error::new(ErrorKind::Store, format!("Metadata could not be read: {e}."));
                Ok((r.try_get(0).map_err(get)?, r.try_get(1).map_err(get)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use meterkit::{record::Quality, Decimal};

    /// The careful answer of the duplicate check of `batch` in `tenant`: each record's stored
    /// copy by id ([`Store::get_records`]) compared with [`UsageRecord::same_content`].
    fn careful(s: &PgStore, tenant: &str, batch: &[&UsageRecord]) -> Vec<Option<bool>> {
        let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
        let found = s.get_records(tenant, &ids).unwrap();
        found.iter().zip(batch).map(|(f, r)| f.as_ref().map(|f| f.same_content(r))).collect()
    }

    /// A store in a fresh schema of the test server (`METERKIT_PG_URL`, set by
    /// `scripts/pg-server`), or `None` (the test skipped, with a message) without one — unless
    /// `METERKIT_REQUIRE_PG=1`, when that fails the test.
    fn test_store(test: &str) -> Option<PgStore> {
        let Some(url) = std::env::var("METERKIT_PG_URL").ok().filter(|u| !u.is_empty()) else {
            assert!(
                std::env::var("METERKIT_REQUIRE_PG").as_deref() != Ok("1"),
                "METERKIT_REQUIRE_PG=1 but METERKIT_PG_URL is unset: {test} needs a PostgreSQL server"
            );
            eprintln!("SKIPPED {test}: no PostgreSQL server (set METERKIT_PG_URL, or run scripts/test-postgres)");
            return None;
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let schema = format!("u_{}_{nanos}", std::process::id());
        Some(PgStore::open_with(PgOptions::new(url).schema(schema)).unwrap())
    }

    /// The time-range scan of a re-cut, mostly stored batch (read as bodies alone, matched by the
    /// id each starts with) against the careful answer (`get_records` and
    /// [`UsageRecord::same_content`], the trait's default): a stored record that differs in any
    /// compared field is a conflict, one equal in content a duplicate (a quantity at another
    /// scale, another quality, an id that JSON escapes), a new one `None`.
    #[test]
    fn the_time_range_scan_tells_each_differing_field_from_an_equal_record() {
        let Some(mut s) = test_store("the_time_range_scan_tells_each_differing_field_from_an_equal_record") else {
            return;
        };
        let base = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
        let stored: Vec<UsageRecord> = (0..700i64)
            .map(|i| {
                let id = if i % 50 == 7 { format!("r\"{i:04}\\") } else { format!("r{i:04}") };
                let mut r =
                    UsageRecord::new("t", id, format!("s{}", i % 7), "m", Decimal::new(i % 13 * 10 + 5, 1), base)
                        .with_dimension("k", if i % 3 == 0 { "a" } else { "b" });
                r.timestamp = base + Duration::seconds(i * 10) + Duration::milliseconds(i % 4 * 250);
                if i % 5 == 0 {
                    r.end = Some(r.timestamp + Duration::seconds(5));
                }
                if i % 11 == 0 {
                    r.quality = Quality::Flagged;
                }
                r
            })
            .collect();
        s.apply(&ChangeSet { insert: stored.iter().collect(), ..ChangeSet::default() }).unwrap();
        // Stored 100..700 again (the store saw them in one batch) with quality `actual`, and 40 new.
        let mut batch: Vec<UsageRecord> = stored[100..].to_vec();
        for r in &mut batch {
            r.quality = Quality::Actual;
        }
        batch.extend((700..740).map(|i| UsageRecord::new("t", format!("r{i:04}"), "s1", "m", Decimal::ONE, base)));
        // (position in `batch`, what differs, conflict?); none is one of the 16 probed by id
        // first (multiples of 40 for 640 records).
        let changes: Vec<(usize, &str, bool)> = vec![
            (10, "quantity", true),
            (11, "quantity 1.0 = 1", false),
            (12, "quantity at another scale", false),
            (21, "dimension value", true),
            (22, "dimension added", true),
            (23, "dimensions removed", true),
            (60, "end moved", true),
            (70, "end removed", true),
            (71, "end added", true),
            (81, "timestamp nanos", true),
            (82, "timestamp outside the range", true),
            (101, "subject", true),
            (111, "metric", true),
            (121, "quality", false),
        ];
        for &(k, what, _) in &changes {
            let r = &mut batch[k];
            match what {
                "quantity" => r.quantity += Decimal::ONE,
                "quantity 1.0 = 1" => {
                    r.quantity = Decimal::ONE;
                    store_with_quantity(&mut s, r, Decimal::new(10, 1));
                }
                "quantity at another scale" => {
                    r.quantity = Decimal::from_i128_with_scale(r.quantity.mantissa() * 100, r.quantity.scale() + 2);
                }
                "dimension value" => {
                    r.dimensions.insert("k".into(), "c".into());
                }
                "dimension added" => {
                    r.dimensions.insert("z".into(), "1".into());
                }
                "dimensions removed" => r.dimensions.clear(),
                "end moved" => r.end = r.end.map(|e| e + Duration::seconds(1)),
                "end removed" => r.end = None,
                "end added" => r.end = Some(r.timestamp + Duration::seconds(1)),
                "timestamp nanos" => r.timestamp += Duration::nanoseconds(1),
                "timestamp outside the range" => r.timestamp += Duration::days(400),
                "subject" => r.subject.push('x'),
                "metric" => r.metric = "m2".into(),
                _ => r.quality = Quality::Estimated,
            }
        }
        let refs: Vec<&UsageRecord> = batch.iter().collect();
        let got = s.compare_stored("t", &refs).unwrap();
        let careful = careful(&s, "t", &refs);
        for (i, g) in got.iter().enumerate() {
            assert_eq!(*g, careful[i], "record {i} ({}) against get_records", batch[i].id);
            let change = changes.iter().find(|c| c.0 == i);
            let want = match change {
                _ if i >= 600 => None,
                Some(&(_, _, conflict)) => Some(!conflict),
                None => Some(true),
            };
            assert_eq!(*g, want, "record {i} ({}): {:?}", batch[i].id, change.map(|c| c.1));
        }
    }

    /// Rewrites the stored record of `r`'s key with quantity `q` (another scale of the same value).
    fn store_with_quantity(s: &mut PgStore, r: &UsageRecord, q: Decimal) {
        let mut stored = r.clone();
        stored.quantity = q;
        let delete = vec![(r.tenant.clone(), r.id.clone())];
        s.apply(&ChangeSet { delete, insert: vec![&stored], ..ChangeSet::default() }).unwrap();
    }

    /// A change of metadata alone (one statement, `apply_meta_only`) leaves what the same
    /// entries applied one by one leave in the in-memory store: the last value of a key set
    /// twice, a key set then deleted (and deleted then set) in one change, several tenants; and
    /// it is not refused for a stale `known_specs` (it writes nothing specs govern).
    #[test]
    fn a_change_of_metadata_alone_is_its_entries_applied_in_order() {
        let Some(mut s) = test_store("a_change_of_metadata_alone_is_its_entries_applied_in_order") else { return };
        let mut mem = meterkit::MemoryStore::new();
        let e = |t: &str, k: &str, v: Option<&str>| (t.to_string(), k.to_string(), v.map(str::to_string));
        let changes = [
            vec![e("a", "k1", Some("1")), e("a", "k2", Some("2")), e("b", "k1", Some("b1"))],
            vec![e("a", "k1", Some("x")), e("a", "k1", Some("y")), e("a", "k2", None), e("a", "k3", Some("3"))],
            vec![e("a", "k3", None), e("a", "k3", Some("again")), e("b", "k1", Some("b2")), e("b", "k1", None)],
            vec![e("a", "gone", None), e("a", "k\"'\u{e9}", Some("quote ' and \\ \t"))],
            vec![],
        ];
        for meta in changes {
            let change = ChangeSet { meta, ..ChangeSet::default() };
            assert_eq!(s.apply(&change).unwrap(), Vec::<bool>::new());
            mem.apply(&change).unwrap();
        }
        for tenant in ["a", "b"] {
            assert_eq!(s.meta_prefix(tenant, "").unwrap(), mem.meta_prefix(tenant, "").unwrap(), "tenant {tenant}");
        }
        assert_eq!(s.meta("a", "k1").unwrap().as_deref(), Some("y"));
        assert_eq!(s.meta("a", "k3").unwrap().as_deref(), Some("again"));
        assert_eq!(s.meta("b", "k1").unwrap(), None);
        // A spec exists; a change computed for none, writing metadata alone, is applied.
        let spec = RollupSpec::new("m", meterkit::Window::Day, "UTC").unwrap();
        s.apply(&ChangeSet { new_specs: vec![spec], known_specs: Some(0), ..ChangeSet::default() }).unwrap();
        let stale = ChangeSet { meta: vec![e("a", "k1", Some("z"))], known_specs: Some(0), ..ChangeSet::default() };
        s.apply(&stale).unwrap();
        assert_eq!(s.meta("a", "k1").unwrap().as_deref(), Some("z"));
        // With a record in it, the same stale change is refused (retryable), and writes nothing.
        let r = UsageRecord::new("a", "r1", "s", "m", Decimal::ONE, Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap());
        let mut with_record = stale.clone();
        with_record.meta = vec![e("a", "k1", Some("w"))];
        with_record.insert = vec![&r];
        assert!(s.apply(&with_record).unwrap_err().is_retryable());
        assert_eq!(s.meta("a", "k1").unwrap().as_deref(), Some("z"));
        assert_eq!(s.get_records("a", &["r1"]).unwrap(), vec![None]);
    }

    /// The 16-id sample and the first metric's scan in one statement: a mostly stored batch of
    /// three metrics (the first scanned with the sample, the others after it) and a mostly new
    /// one (the server skips the scan; every record is probed by id) answer as the careful path
    /// does (`get_records` + [`UsageRecord::same_content`]).
    #[test]
    fn the_sample_and_scan_of_several_metrics_answer_as_the_careful_path() {
        let Some(mut s) = test_store("the_sample_and_scan_of_several_metrics_answer_as_the_careful_path") else {
            return;
        };
        let base = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
        let record = |i: i64| {
            let metric = ["a", "b", "c"][(i % 3) as usize];
            let mut r = UsageRecord::new("t", format!("r{i:05}"), "s", metric, Decimal::new(i, 0), base);
            r.timestamp = base + Duration::seconds(i);
            r
        };
        let stored: Vec<UsageRecord> = (0..1_000).map(record).collect();
        s.apply(&ChangeSet { insert: stored.iter().collect(), ..ChangeSet::default() }).unwrap();
        // Mostly stored: 200..1000 again (every 7th changed in quantity: the 16 sampled, at
        // multiples of 56, among them), then 100 new records.
        let mut repeat: Vec<UsageRecord> = (200..1_100).map(record).collect();
        for r in repeat.iter_mut().step_by(7) {
            r.quantity += Decimal::ONE;
        }
        // Mostly new: 300 new records and 20 stored ones.
        let mostly_new: Vec<UsageRecord> = (2_000..2_300).chain(500..520).map(record).collect();
        for (batch, stored_count) in [(&repeat, 800), (&mostly_new, 20)] {
            let refs: Vec<&UsageRecord> = batch.iter().collect();
            let got = s.compare_stored("t", &refs).unwrap();
            assert_eq!(got, careful(&s, "t", &refs));
            assert_eq!(got.iter().filter(|g| g.is_some()).count(), stored_count);
        }
        assert!(s.compare_stored("t", &repeat.iter().collect::<Vec<_>>()).unwrap().contains(&Some(false)));
    }

    /// The sliced time-range scan over ranges unlike a repeat run's: every record in one second
    /// (one slice, read up to 2 × the batch + 64), a range crowded with ten times as many other
    /// records (slices stop at their cap; the rest is probed by id), records spread over years
    /// (a few wide slices), each answering as the careful path.
    #[test]
    fn the_sliced_scan_answers_dense_crowded_and_sparse_ranges_as_the_careful_path() {
        let Some(mut s) = test_store("the_sliced_scan_answers_dense_crowded_and_sparse_ranges_as_the_careful_path")
        else {
            return;
        };
        let base = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
        let record = |kind: &str, i: i64, at: chrono::DateTime<Utc>| {
            UsageRecord::new("t", format!("{kind}{i:06}"), kind, "m", Decimal::new(i % 97, 1), at)
        };
        let dense: Vec<UsageRecord> = (0..600).map(|i| record("d", i, base + Duration::milliseconds(i))).collect();
        let crowd: Vec<UsageRecord> =
            (0..6_000).map(|i| record("x", i, base + Duration::hours(1) + Duration::milliseconds(i * 100))).collect();
        let crowded: Vec<UsageRecord> =
            (0..600).map(|i| record("c", i, base + Duration::hours(1) + Duration::seconds(i))).collect();
        let sparse: Vec<UsageRecord> = (0..600).map(|i| record("s", i, base + Duration::days(i * 3))).collect();
        for set in [&dense, &crowd, &crowded, &sparse] {
            s.apply(&ChangeSet { insert: set.iter().collect(), ..ChangeSet::default() }).unwrap();
        }
        for set in [&dense, &crowded, &sparse] {
            // Stored again, every 5th with another quantity, and 20 new records.
            let mut batch: Vec<UsageRecord> = set.clone();
            for r in batch.iter_mut().step_by(5) {
                r.quantity += Decimal::ONE;
            }
            batch.extend((0..20).map(|i| record("n", i, set[0].timestamp)));
            let refs: Vec<&UsageRecord> = batch.iter().collect();
            let got = s.compare_stored("t", &refs).unwrap();
            assert_eq!(got, careful(&s, "t", &refs), "{}", set[0].subject);
            assert_eq!(got.iter().filter(|g| **g == Some(false)).count(), 120);
        }
    }

    #[test]
    fn urls_are_recognised_and_the_schema_parameter_is_taken_out() {
        assert!(is_postgres_url("postgres://h/db") && is_postgres_url("PostgreSQL://h/db"));
        assert!(!is_postgres_url("usage.db") && !is_postgres_url(":memory:") && !is_postgres_url("postgres"));
        let o = PgOptions::from_url("postgres://u@h:5/db?schema=m_1&sslmode=disable");
        assert_eq!((o.url.as_str(), o.schema.as_deref()), ("postgres://u@h:5/db?sslmode=disable", Some("m_1")));
        let o = PgOptions::from_url("postgresql://h/db?schema=x");
        assert_eq!((o.url.as_str(), o.schema.as_deref()), ("postgresql://h/db", Some("x")));
        assert_eq!(PgOptions::from_url("host=h dbname=d"), PgOptions::new("host=h dbname=d"));
    }

    #[test]
    fn copy_text_escapes_what_the_format_reserves() {
        let mut out = String::new();
        copy_text(&mut out, "a\\b\tc\nd\re");
        assert_eq!(out, "a\\\\b\\tc\\nd\\re");
    }

    #[test]
    fn bad_schema_names_and_unreachable_servers_are_store_errors() {
        let e = PgStore::open_with(PgOptions::new("postgres://127.0.0.1:1/x").schema("a;b")).unwrap_err();
        assert_eq!((e.kind(), e.field()), (ErrorKind::Store, Some("schema")));
        let e = PgStore::open("postgres://127.0.0.1:1/x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Store);
        assert!(e.message().contains("Cannot connect"), "{e}");
    }
}
