//! # meterkit-sqlite
//!
//! The embedded default [`Store`] for meterkit: one SQLite file (bundled SQLite, WAL journal),
//! one transaction per [`Store::apply`] — so an ingest batch is stored whole or not at all, even
//! when the process is killed in the middle of it.
//!
//! ```
//! use meterkit::{Engine, Query, UsageRecord, Window};
//! use meterkit_sqlite::SqliteStore;
//! use chrono::{TimeZone, Utc};
//!
//! let engine = Engine::new(SqliteStore::open(":memory:")?)?;
//! let at = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
//! engine.ingest(&[UsageRecord::new("t", "r1", "sim-1", "bytes", 2048.into(), at)])?;
//! let days = engine.query(&Query::new("t", "bytes", Window::Day, "UTC"))?;
//! assert_eq!(days[0].sum.to_string(), "2048");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Schema (version 3): a `strings` dictionary `(id, s)` holds every tenant, metric, subject,
//! dimension key and value and group value once; `records(tenant, metric, ts, ts_nanos, id,
//! subject, body)` is clustered by time (`WITHOUT ROWID`, primary key `(tenant, metric, ts,
//! ts_nanos, id)`), with a unique index on the idempotency key `(tenant, id)` and one on
//! `(tenant, metric, subject, ts)`; `body` is a compact binary form of the quantity (exact
//! mantissa and scale), `end`, quality and dimensions (dictionary ids). `buckets(tenant, spec,
//! start, grp, end_ts, state, closed)` is keyed by `(tenant, spec, start, grp)` with binary group
//! keys and states; `specs(id, body, removed)` and `meta(tenant, key, value)` are JSON/text. A file
//! of schema version 1 (JSON bodies, meterkit 0.1) or 2 (no `specs.removed` column) is migrated in
//! place by [`SqliteStore::open`], in one transaction (see [`SqliteStore::open`]).
#![deny(missing_docs)]

mod codec;
mod dict;
mod migrate;
mod probe;

use std::path::Path;

use chrono::DateTime;
use meterkit::{
    record::RecordRef, rollup::BucketState, store::BucketKey, store::ChangeSet, store::StoredBucket, Error, ErrorKind,
    Result, RollupSpec, Store, UsageRecord,
};
use rusqlite::{params, Connection, OptionalExtension};

use crate::dict::{lookup, Dict, Names};

/// A [`Store`] in one SQLite database file (or `:memory:`).
///
/// Several processes (or engines) may open one file. Every write is an `IMMEDIATE` transaction,
/// which waits for the file's write lock up front (up to the busy timeout, 10 s) instead of
/// failing on its first write; an engine call (an ingest, a new rollup spec with its backfill)
/// is one such transaction from its first read to its last write ([`Store::begin_write`]), so
/// what it read cannot change before it writes. A writer still waiting after the timeout gets a
/// [retryable](meterkit::Error::is_retryable) [`ErrorKind::Store`] error, which the engine
/// retries.
pub struct SqliteStore {
    conn: Connection,
    /// True between `begin_write` and `end_write` (a transaction is open).
    writing: bool,
    /// Dictionary ids this connection saw (committed ones kept apart from pending ones).
    dict: Dict,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS specs (id INTEGER PRIMARY KEY, body TEXT NOT NULL, removed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS strings (id INTEGER PRIMARY KEY, s TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS records (
    tenant INTEGER NOT NULL, metric INTEGER NOT NULL, ts INTEGER NOT NULL, ts_nanos INTEGER NOT NULL,
    id TEXT NOT NULL, subject INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (tenant, metric, ts, ts_nanos, id)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS records_by_id ON records (tenant, id);
CREATE INDEX IF NOT EXISTS records_by_subject ON records (tenant, metric, subject, ts);
CREATE TABLE IF NOT EXISTS buckets (
    tenant INTEGER NOT NULL, spec INTEGER NOT NULL, start INTEGER NOT NULL, grp BLOB NOT NULL,
    end_ts INTEGER NOT NULL, state BLOB NOT NULL, closed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, spec, start, grp)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS buckets_open ON buckets (tenant, end_ts) WHERE closed = 0;
CREATE TABLE IF NOT EXISTS meta (
    tenant TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (tenant, key)) WITHOUT ROWID;
PRAGMA user_version = 3;
";

/// How long a connection waits for another's lock before its statement fails (SQLite's busy
/// timeout), and how long [`SqliteStore::open`] retries its set-up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `step`, again after a short pause while it fails with lock contention, for up to
/// [`BUSY_TIMEOUT`]: connections opening one new file at the same moment race to set WAL and
/// create the schema, and SQLite answers a journal-mode change or a lock it cannot take without
/// a deadlock with `SQLITE_BUSY` at once, not after the busy timeout.
///
/// # Errors
/// `step`'s last error.
fn retry_busy<T>(mut step: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match step() {
            Err(e) if e.is_retryable() && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// A SQLite error as a store error; lock contention (`SQLITE_BUSY`, `SQLITE_LOCKED`: another
/// writer held the file beyond the busy timeout) is retryable, as nothing was applied.
pub(crate) fn db_err(e: &rusqlite::Error) -> Error {
    let err = Error::new(ErrorKind::Store, format!("SQLite failed: {e}."));
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => err.with_retryable(),
        _ => err,
    }
}

pub(crate) fn json_err(e: &serde_json::Error) -> Error {
    Error::new(ErrorKind::Store, format!("Stored JSON could not be read or written: {e}."))
}

/// The columns a record is read from, in [`record_of`]'s order (after the tenant).
const RECORD_COLS: &str = "r.metric, r.ts, r.ts_nanos, r.id, r.subject, r.body";

/// The record in a row of [`RECORD_COLS`] (from column `at` on) of `tenant`.
fn record_of(tenant: &str, row: &rusqlite::Row<'_>, at: usize, names: &mut Names<'_>) -> Result<UsageRecord> {
    let get = |e: rusqlite::Error| db_err(&e);
    let (metric, ts, nanos): (i64, i64, u32) =
        (row.get(at).map_err(get)?, row.get(at + 1).map_err(get)?, row.get(at + 2).map_err(get)?);
    let id: String = row.get(at + 3).map_err(get)?;
    let subject: i64 = row.get(at + 4).map_err(get)?;
    let body = row.get_ref(at + 5).map_err(get)?.as_blob().map_err(|_| codec::corrupt("record"))?;
    let (quantity, end, quality, dimensions) = codec::read_record_body(body, |i| names.name(i))?;
    Ok(UsageRecord {
        id,
        tenant: tenant.to_string(),
        subject: names.name(subject)?,
        metric: names.name(metric)?,
        quantity,
        timestamp: DateTime::from_timestamp(ts, nanos).ok_or_else(|| codec::corrupt("record"))?,
        end,
        dimensions,
        quality,
    })
}

/// Insert `records` (their keys must be new), interning their strings. One single-row
/// statement per record: a multi-row INSERT (or an upsert) may abort half-way and so makes
/// SQLite copy every page it touches to a statement journal first, which costs more than the
/// per-statement overhead it saves.
pub(crate) fn insert_records(tx: &Connection, dict: &mut Dict, records: &[&UsageRecord]) -> Result<()> {
    let mut ins = tx
        .prepare_cached("INSERT INTO records (tenant, metric, ts, ts_nanos, id, subject, body) VALUES (?,?,?,?,?,?,?)")
        .map_err(|e| db_err(&e))?;
    for r in records {
        let (tenant, metric, subject) =
            (dict.intern(tx, &r.tenant)?, dict.intern(tx, &r.metric)?, dict.intern(tx, &r.subject)?);
        let body = codec::record_body(r.quantity, r.end, r.quality, &r.dimensions, |s| dict.intern(tx, s))?;
        let (ts, nanos) = (r.timestamp.timestamp(), r.timestamp.timestamp_subsec_nanos());
        ins.execute(params![tenant, metric, ts, nanos, r.id, subject, body]).map_err(|e| db_err(&e))?;
    }
    Ok(())
}

/// Set a bucket's end, state and closed flag: an UPDATE when it is `stored`, else an INSERT
/// (single-row statements, no statement journal; see [`insert_records`]).
pub(crate) fn put_bucket(
    tx: &Connection,
    key: (i64, u32, i64, &[u8]),
    end: i64,
    state: &BucketState,
    closed: bool,
    stored: bool,
) -> Result<()> {
    let (tenant, spec, start, grp) = key;
    let sql = if stored {
        "UPDATE buckets SET end_ts = ?5, state = ?6, closed = ?7 WHERE tenant=?1 AND spec=?2 AND start=?3 AND grp=?4"
    } else {
        "INSERT INTO buckets (tenant, spec, start, grp, end_ts, state, closed) VALUES (?1,?2,?3,?4,?5,?6,?7)"
    };
    tx.prepare_cached(sql)
        .and_then(|mut st| st.execute(params![tenant, spec, start, grp, end, codec::state_blob(state), closed]))
        .map_err(|e| db_err(&e))?;
    Ok(())
}

/// The ids of the removed specs, ascending.
fn removed_specs(conn: &Connection) -> Result<Vec<u32>> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM specs WHERE removed <> 0 ORDER BY id").map_err(|e| db_err(&e))?;
    let rows = stmt.query_map([], |r| r.get::<_, u32>(0)).map_err(|e| db_err(&e))?;
    rows.map(|r| r.map_err(|e| db_err(&e))).collect()
}

/// The stored key columns of `key`, interning its strings: `(tenant id, group blob)`.
fn intern_key(tx: &Connection, dict: &mut Dict, key: &BucketKey) -> Result<(i64, Vec<u8>)> {
    let tenant = dict.intern(tx, &key.tenant)?;
    let grp = codec::group_blob(&key.group, |s| dict.intern(tx, s).map(Some))?.unwrap_or_default();
    Ok((tenant, grp))
}

/// The stored key columns of `key` if all its strings are known (else no such bucket exists).
fn find_key(conn: &Connection, dict: &Dict, key: &BucketKey) -> Result<Option<(i64, Vec<u8>)>> {
    let Some(tenant) = dict.find(conn, &key.tenant)? else { return Ok(None) };
    Ok(codec::group_blob(&key.group, |s| dict.find(conn, s))?.map(|g| (tenant, g)))
}

impl SqliteStore {
    /// Open (or create) the database at `path`; `":memory:"` gives a private in-memory database.
    /// Sets WAL journaling with `synchronous=NORMAL` (a crash of the process never loses a
    /// committed batch; a power loss may lose the last ones but never corrupts), and creates the
    /// schema if missing.
    ///
    /// A file of schema version 1 (meterkit 0.1: JSON record bodies) or 2 (before spec removal)
    /// is migrated to version 3 in place, in one write transaction: a crash during the migration leaves the version 1 file
    /// as it was, and the next open migrates again. The pages freed by the migration are reused
    /// by later writes; `sqlite3 FILE VACUUM` returns them to the file system.
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the file cannot be opened, is not a meterkit database, is of a
    /// newer schema version than this build knows, or a version 1 file holds a body that does
    /// not read (the error names the file; nothing is changed then).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let conn = Connection::open(path)
            .map_err(|e| Error::new(ErrorKind::Store, format!("Cannot open the database {}: {e}.", path.display())))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| db_err(&e))?;
        // Every statement of an ingest stays prepared (rusqlite keeps 16 by default, fewer than
        // the ingest path uses: a smaller cache re-prepares statements for every bucket).
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = SqliteStore { conn, writing: false, dict: Dict::default() };
        retry_busy(|| store.set_up()).map_err(|e| {
            Error::new(e.kind(), format!("Cannot open the database {}: {}", path.display(), e.message()))
        })?;
        Ok(store)
    }

    /// WAL journaling and the connection's settings, then the schema created or migrated.
    ///
    /// # Errors
    /// As [`SqliteStore::open`]; retryable when another connection holds a lock it needs.
    fn set_up(&mut self) -> Result<()> {
        // `journal_mode` returns a row; in-memory databases answer "memory".
        let _mode: String = self.conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(|e| db_err(&e))?;
        self.conn
            .execute_batch("PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;")
            .map_err(|e| db_err(&e))?;
        if self.version()? != SCHEMA_VERSION {
            self.write(migrate::to_current)?;
        }
        Ok(())
    }

    fn version(&self) -> Result<i64> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| db_err(&e))
    }

    fn apply_in(tx: &Connection, dict: &mut Dict, changes: &ChangeSet<'_>) -> Result<Vec<bool>> {
        let base: i64 = tx.query_row("SELECT COUNT(*) FROM specs", [], |r| r.get(0)).map_err(|e| db_err(&e))?;
        if changes.known_specs.is_some_and(|k| i64::from(k) < base) {
            // Another process sharing the file added a spec: the engine must reload and recompute.
            return Err(Error::new(
                ErrorKind::Store,
                "Another writer added a rollup spec; the change was not applied.",
            )
            .with_retryable());
        }
        if !changes.merge.is_empty() {
            let removed = removed_specs(tx)?;
            if let Some((key, _, _)) = changes.merge.iter().find(|(k, _, _)| removed.contains(&k.spec)) {
                // Another process removed a spec: the engine must reload and recompute.
                return Err(Error::new(
                    ErrorKind::Store,
                    format!("Rollup spec {} was removed by another writer; the change was not applied.", key.spec),
                )
                .with_retryable());
            }
        }
        for (i, spec) in changes.new_specs.iter().enumerate() {
            let body = serde_json::to_string(spec).map_err(|e| json_err(&e))?;
            tx.execute("INSERT INTO specs (id, body) VALUES (?1, ?2)", params![base + i as i64, body])
                .map_err(|e| db_err(&e))?;
        }
        for id in &changes.remove_specs {
            let marked =
                tx.execute("UPDATE specs SET removed = 1 WHERE id = ?1", params![id]).map_err(|e| db_err(&e))?;
            if marked == 0 {
                return Err(Error::new(ErrorKind::Store, format!("There is no rollup spec {id} to remove.")));
            }
            tx.execute("DELETE FROM buckets WHERE spec = ?1", params![id]).map_err(|e| db_err(&e))?;
        }
        {
            let mut del =
                tx.prepare_cached("DELETE FROM records WHERE tenant = ?1 AND id = ?2").map_err(|e| db_err(&e))?;
            for (tenant, id) in &changes.delete {
                if let Some(t) = dict.find(tx, tenant)? {
                    del.execute(params![t, id]).map_err(|e| db_err(&e))?;
                }
            }
        }
        insert_records(tx, dict, &changes.insert)?;
        let late = Self::merge_buckets(tx, dict, &changes.merge)?;
        let set = changes.set.iter().map(|(k, e, s)| (k, e, Some(s)));
        for (key, end, state) in changes.replace.iter().map(|(k, e, s)| (k, e, s.as_ref())).chain(set) {
            let (tenant, grp) = intern_key(tx, dict, key)?;
            match state {
                Some(s) if s.count > 0 => {
                    let stored: Option<bool> = tx
                        .prepare_cached(
                            "SELECT closed FROM buckets WHERE tenant=?1 AND spec=?2 AND start=?3 AND grp=?4",
                        )
                        .and_then(|mut st| {
                            st.query_row(params![tenant, key.spec, key.start, grp], |r| r.get(0)).optional()
                        })
                        .map_err(|e| db_err(&e))?;
                    // A replaced bucket keeps its closed flag.
                    put_bucket(
                        tx,
                        (tenant, key.spec, key.start, &grp),
                        *end,
                        s,
                        stored == Some(true),
                        stored.is_some(),
                    )?;
                }
                _ => {
                    tx.prepare_cached("DELETE FROM buckets WHERE tenant=?1 AND spec=?2 AND start=?3 AND grp=?4")
                        .and_then(|mut st| st.execute(params![tenant, key.spec, key.start, grp]))
                        .map_err(|e| db_err(&e))?;
                }
            }
        }
        let mut set_meta = tx
            .prepare_cached(
                "INSERT INTO meta (tenant, key, value) VALUES (?1,?2,?3)
                 ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value",
            )
            .map_err(|e| db_err(&e))?;
        let mut del_meta = tx.prepare_cached("DELETE FROM meta WHERE tenant=?1 AND key=?2").map_err(|e| db_err(&e))?;
        for (tenant, key, value) in &changes.meta {
            match value {
                Some(v) => set_meta.execute(params![tenant, key, v]),
                None => del_meta.execute(params![tenant, key]),
            }
            .map_err(|e| db_err(&e))?;
        }
        Ok(late)
    }

    /// Merge bucket deltas, visiting the buckets in key order (neighbouring B-tree pages);
    /// returns, in the order of `merge`, whether each bucket was closed already.
    fn merge_buckets(tx: &Connection, dict: &mut Dict, merge: &[(BucketKey, i64, BucketState)]) -> Result<Vec<bool>> {
        let mut keys = Vec::with_capacity(merge.len());
        for (i, (key, _, _)) in merge.iter().enumerate() {
            let (tenant, grp) = intern_key(tx, dict, key)?;
            keys.push((tenant, key.spec, key.start, grp, i));
        }
        keys.sort_unstable();
        let mut get = tx
            .prepare_cached("SELECT state, closed FROM buckets WHERE tenant=?1 AND spec=?2 AND start=?3 AND grp=?4")
            .map_err(|e| db_err(&e))?;
        let mut late = vec![false; merge.len()];
        for (tenant, spec, start, grp, i) in &keys {
            let (_, end, delta) = &merge[*i];
            let existing: Option<(Vec<u8>, bool)> = get
                .query_row(params![tenant, spec, start, grp], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(|e| db_err(&e))?;
            let stored = existing.is_some();
            let (mut state, closed) = match existing {
                Some((s, c)) => (codec::read_state(&s)?, c),
                None => (BucketState::default(), false),
            };
            state.merge(delta)?;
            put_bucket(tx, (*tenant, *spec, *start, grp), *end, &state, closed, stored)?;
            late[*i] = closed;
        }
        Ok(late)
    }

    /// Run `f` in a transaction of its own (`IMMEDIATE`: it waits for the write lock before its
    /// first read), or in a savepoint of the write span `begin_write` opened; all or nothing.
    /// Dictionary ids `f` added are cached once the transaction commits, forgotten if it fails.
    fn write<T>(&mut self, f: impl FnOnce(&Connection, &mut Dict) -> Result<T>) -> Result<T> {
        let SqliteStore { conn, writing, dict } = self;
        if *writing {
            let sp = conn.savepoint().map_err(|e| db_err(&e))?;
            // Dropping `sp` on error rolls back to it.
            let value = f(&sp, dict).and_then(|v| sp.commit().map(|()| v).map_err(|e| db_err(&e)));
            if value.is_err() {
                dict.rollback();
            }
            return value;
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| db_err(&e))?;
        // Dropping `tx` on error rolls back.
        match f(&tx, dict).and_then(|v| tx.commit().map(|()| v).map_err(|e| db_err(&e))) {
            Ok(v) => {
                dict.commit();
                Ok(v)
            }
            Err(e) => {
                dict.rollback();
                Err(e)
            }
        }
    }

    fn query_records(&self, tenant: &str, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<UsageRecord>> {
        let mut names = Names::new(&self.conn);
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| db_err(&e))?;
        let mut rows = stmt.query(params).map_err(|e| db_err(&e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| db_err(&e))? {
            out.push(record_of(tenant, row, 0, &mut names)?);
        }
        Ok(out)
    }

    /// Buckets of `tenant` (name) selected by `sql` (columns `spec, start, grp, end_ts, state,
    /// closed`), in the statement's order.
    fn query_buckets(&self, tenant: &str, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<StoredBucket>> {
        let mut names = Names::new(&self.conn);
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| db_err(&e))?;
        let mut rows = stmt.query(params).map_err(|e| db_err(&e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| db_err(&e))? {
            let get = |e: rusqlite::Error| db_err(&e);
            let grp = r.get_ref(2).map_err(get)?.as_blob().map_err(|_| codec::corrupt("bucket group"))?;
            let state = r.get_ref(4).map_err(get)?.as_blob().map_err(|_| codec::corrupt("bucket state"))?;
            out.push(StoredBucket {
                key: BucketKey {
                    tenant: tenant.to_string(),
                    spec: r.get(0).map_err(get)?,
                    start: r.get(1).map_err(get)?,
                    group: codec::read_group(grp, |i| names.name(i))?,
                },
                end: r.get(3).map_err(get)?,
                state: codec::read_state(state)?,
                closed: r.get(5).map_err(get)?,
            });
        }
        Ok(out)
    }
}

const BUCKET_COLS: &str = "spec, start, grp, end_ts, state, closed";

impl Store for SqliteStore {
    fn specs(&self) -> Result<Vec<RollupSpec>> {
        let mut stmt = self.conn.prepare_cached("SELECT body FROM specs ORDER BY id").map_err(|e| db_err(&e))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| db_err(&e))?;
        rows.map(|b| serde_json::from_str(&b.map_err(|e| db_err(&e))?).map_err(|e| json_err(&e))).collect()
    }

    fn removed_specs(&self) -> Result<Vec<u32>> {
        removed_specs(&self.conn)
    }

    /// One statement for the whole batch, compared in the stored form without decoding the rows
    /// (see the `probe` module): a duplicate costs one index probe and a byte comparison.
    fn compare_stored(&self, tenant: &str, records: &[&UsageRecord]) -> Result<Vec<Option<bool>>> {
        match self.dict.find(&self.conn, tenant)? {
            Some(t) if !records.is_empty() => {
                let mut pairs = Vec::new();
                let rows = RecordRef::from_records(records, &mut pairs);
                probe::compare_stored(&self.conn, &self.dict, tenant, t, &rows)
            }
            _ => Ok(vec![None; records.len()]),
        }
    }

    /// As [`compare_stored`](Store::compare_stored), the rows compared in place: no record is
    /// built.
    fn compare_stored_refs(&self, tenant: &str, rows: &[RecordRef<'_>]) -> Result<Vec<Option<bool>>> {
        match self.dict.find(&self.conn, tenant)? {
            Some(t) if !rows.is_empty() => probe::compare_stored(&self.conn, &self.dict, tenant, t, rows),
            _ => Ok(vec![None; rows.len()]),
        }
    }

    /// One statement for the whole batch: the ids, sorted (neighbouring index pages), are
    /// joined against the `(tenant, id)` index from a JSON array.
    fn get_records(&self, tenant: &str, ids: &[&str]) -> Result<Vec<Option<UsageRecord>>> {
        let mut out: Vec<Option<UsageRecord>> = vec![None; ids.len()];
        let Some(t) = lookup(&self.conn, tenant)? else { return Ok(out) };
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_unstable_by_key(|&i| ids[i]);
        let sorted: Vec<&str> = order.iter().map(|&i| ids[i]).collect();
        let json = serde_json::to_string(&sorted).map_err(|e| json_err(&e))?;
        let mut names = Names::new(&self.conn);
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT j.key, {RECORD_COLS} FROM json_each(?2) AS j CROSS JOIN records AS r
                 ON r.tenant = ?1 AND r.id = j.value"
            ))
            .map_err(|e| db_err(&e))?;
        let mut rows = stmt.query(params![t, json]).map_err(|e| db_err(&e))?;
        while let Some(row) = rows.next().map_err(|e| db_err(&e))? {
            let at: i64 = row.get(0).map_err(|e| db_err(&e))?;
            let slot = usize::try_from(at)
                .ok()
                .and_then(|at| order.get(at))
                .ok_or_else(|| codec::corrupt("probe position"))?;
            out[*slot] = Some(record_of(tenant, row, 1, &mut names)?);
        }
        Ok(out)
    }

    fn records(
        &self,
        tenant: &str,
        metric: &str,
        subject: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<UsageRecord>> {
        let (Some(t), Some(m)) = (lookup(&self.conn, tenant)?, lookup(&self.conn, metric)?) else {
            return Ok(Vec::new());
        };
        match subject {
            Some(s) => {
                let Some(s) = lookup(&self.conn, s)? else { return Ok(Vec::new()) };
                self.query_records(
                    tenant,
                    &format!(
                        "SELECT {RECORD_COLS} FROM records AS r WHERE tenant=?1 AND metric=?2 AND ts>=?3 AND ts<?4
                         AND subject=?5 ORDER BY ts, ts_nanos, id"
                    ),
                    &[&t, &m, &from, &to, &s],
                )
            }
            None => self.query_records(
                tenant,
                &format!(
                    "SELECT {RECORD_COLS} FROM records AS r WHERE tenant=?1 AND metric=?2 AND ts>=?3 AND ts<?4
                     ORDER BY ts, ts_nanos, id"
                ),
                &[&t, &m, &from, &to],
            ),
        }
    }

    fn scan_metric(&self, metric: &str, f: &mut dyn FnMut(&UsageRecord) -> Result<()>) -> Result<()> {
        let Some(m) = lookup(&self.conn, metric)? else { return Ok(()) };
        let mut names = Names::new(&self.conn);
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT r.tenant, {RECORD_COLS} FROM records AS r WHERE metric = ?1"))
            .map_err(|e| db_err(&e))?;
        let mut rows = stmt.query(params![m]).map_err(|e| db_err(&e))?;
        while let Some(row) = rows.next().map_err(|e| db_err(&e))? {
            let tenant = names.name(row.get(0).map_err(|e| db_err(&e))?)?;
            f(&record_of(&tenant, row, 1, &mut names)?)?;
        }
        Ok(())
    }

    fn apply(&mut self, changes: &ChangeSet<'_>) -> Result<Vec<bool>> {
        self.write(|tx, dict| Self::apply_in(tx, dict, changes))
    }

    fn buckets(&self, tenant: &str, spec: u32, from: i64, to: i64) -> Result<Vec<StoredBucket>> {
        let Some(t) = lookup(&self.conn, tenant)? else { return Ok(Vec::new()) };
        let mut out = self.query_buckets(
            tenant,
            &format!("SELECT {BUCKET_COLS} FROM buckets WHERE tenant=?1 AND spec=?2 AND start>=?3 AND start<?4"),
            &[&t, &spec, &from, &to],
        )?;
        // Group blobs order by dictionary id, not by value: order by the values here.
        out.sort_by(|a, b| (a.key.start, &a.key.group).cmp(&(b.key.start, &b.key.group)));
        Ok(out)
    }

    fn bucket(&self, key: &BucketKey) -> Result<Option<StoredBucket>> {
        let Some((t, grp)) = find_key(&self.conn, &self.dict, key)? else { return Ok(None) };
        Ok(self
            .query_buckets(
                &key.tenant,
                &format!("SELECT {BUCKET_COLS} FROM buckets WHERE tenant=?1 AND spec=?2 AND start=?3 AND grp=?4"),
                &[&t, &key.spec, &key.start, &grp],
            )?
            .pop())
    }

    fn open_buckets_until(&self, tenant: &str, cutoff: i64) -> Result<Vec<StoredBucket>> {
        let Some(t) = lookup(&self.conn, tenant)? else { return Ok(Vec::new()) };
        let mut out = self.query_buckets(
            tenant,
            &format!("SELECT {BUCKET_COLS} FROM buckets WHERE tenant=?1 AND closed=0 AND end_ts<=?2"),
            &[&t, &cutoff],
        )?;
        out.sort_by(|a, b| {
            (a.end, a.key.spec, a.key.start, &a.key.group).cmp(&(b.end, b.key.spec, b.key.start, &b.key.group))
        });
        Ok(out)
    }

    fn mark_closed(&mut self, keys: &[BucketKey]) -> Result<()> {
        self.write(|tx, dict| {
            let mut stmt = tx
                .prepare_cached("UPDATE buckets SET closed=1 WHERE tenant=?1 AND spec=?2 AND start=?3 AND grp=?4")
                .map_err(|e| db_err(&e))?;
            for key in keys {
                if let Some((t, grp)) = find_key(tx, dict, key)? {
                    stmt.execute(params![t, key.spec, key.start, grp]).map_err(|e| db_err(&e))?;
                }
            }
            Ok(())
        })
    }

    fn begin_write(&mut self) -> Result<()> {
        if self.writing {
            return Err(Error::new(ErrorKind::Store, "A write is already in progress on this connection."));
        }
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| db_err(&e))?;
        self.writing = true;
        Ok(())
    }

    fn end_write(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.writing) {
            return Ok(());
        }
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            // Nothing of the span is kept; a connection left inside the transaction would block others.
            let _ = self.conn.execute_batch("ROLLBACK");
            self.dict.rollback();
            return Err(db_err(&e));
        }
        self.dict.commit();
        Ok(())
    }

    fn meta(&self, tenant: &str, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE tenant=?1 AND key=?2", params![tenant, key], |r| r.get(0))
            .optional()
            .map_err(|e| db_err(&e))
    }

    fn meta_prefix(&self, tenant: &str, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key, value FROM meta WHERE tenant=?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key",
            )
            .map_err(|e| db_err(&e))?;
        let rows = stmt.query_map(params![tenant, prefix], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| db_err(&e))?;
        rows.map(|r| r.map_err(|e| db_err(&e))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use meterkit::{Engine, Query, Window};
    use std::path::Path;

    fn rec(id: &str, h: u32, q: &str) -> UsageRecord {
        UsageRecord::new("t", id, "m", "kwh", q.parse().unwrap(), Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).unwrap())
    }

    #[test]
    fn persists_records_buckets_and_specs_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        {
            let engine = Engine::new(SqliteStore::open(&path).unwrap()).unwrap();
            engine.add_spec(RollupSpec::new("kwh", Window::Day, "UTC").unwrap()).unwrap();
            let r = engine.ingest(&[rec("a", 1, "1.5"), rec("b", 2, "2.25")]).unwrap();
            assert_eq!(r.accepted, 2);
        }
        let engine = Engine::new(SqliteStore::open(&path).unwrap()).unwrap();
        assert_eq!(engine.specs().len(), 1);
        let r = engine.ingest(&[rec("a", 1, "1.5"), rec("b", 2, "9")]).unwrap();
        assert_eq!((r.accepted, r.duplicates, r.rejected.len()), (0, 1, 1));
        let days = engine.query(&Query::new("t", "kwh", Window::Day, "UTC")).unwrap();
        assert_eq!(days.len(), 1);
        assert_eq!(days[0].sum.to_string(), "3.75");
        assert_eq!(days[0].max.unwrap().to_string(), "2.25");
    }

    #[test]
    fn a_failing_batch_leaves_nothing() {
        let mut store = SqliteStore::open(":memory:").unwrap();
        let a = rec("a", 1, "1");
        let first = ChangeSet { insert: vec![&a], ..ChangeSet::default() };
        store.apply(&first).unwrap();
        let b = rec("b", 2, "1");
        // Inserting `a` again violates the primary key: the whole change set must roll back.
        let second = ChangeSet { insert: vec![&b, &a], ..ChangeSet::default() };
        let err = store.apply(&second).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store);
        assert!(store.get_records("t", &["b"]).unwrap()[0].is_none());
    }

    #[test]
    fn retract_and_meta_round_trip() {
        let engine = Engine::new(SqliteStore::open(":memory:").unwrap()).unwrap();
        engine.ingest(&[rec("a", 1, "1"), rec("b", 2, "5")]).unwrap();
        let q = Query::new("t", "kwh", Window::Day, "UTC");
        engine.query(&q).unwrap();
        engine.retract("t", "b").unwrap();
        let days = engine.query(&q).unwrap();
        assert_eq!((days[0].sum.to_string(), days[0].max.unwrap().to_string()), ("1".into(), "1".into()));
        let mut store = SqliteStore::open(":memory:").unwrap();
        let changes =
            ChangeSet { meta: vec![("t".into(), "quota/x".into(), Some("80".into()))], ..ChangeSet::default() };
        store.apply(&changes).unwrap();
        assert_eq!(store.meta("t", "quota/x").unwrap().as_deref(), Some("80"));
        assert_eq!(store.meta_prefix("t", "quota/").unwrap().len(), 1);
        assert!(store.meta_prefix("u", "quota/").unwrap().is_empty());
    }

    /// The version 1 layout (meterkit 0.1), as that release created it.
    const V1_SCHEMA: &str = "
        CREATE TABLE specs (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
        CREATE TABLE records (
            tenant TEXT NOT NULL, id TEXT NOT NULL, metric TEXT NOT NULL, subject TEXT NOT NULL,
            ts INTEGER NOT NULL, ts_nanos INTEGER NOT NULL, body TEXT NOT NULL,
            PRIMARY KEY (tenant, id)) WITHOUT ROWID;
        CREATE INDEX records_by_time ON records (tenant, metric, ts);
        CREATE INDEX records_by_subject ON records (tenant, metric, subject, ts);
        CREATE TABLE buckets (
            tenant TEXT NOT NULL, spec INTEGER NOT NULL, start INTEGER NOT NULL, grp TEXT NOT NULL,
            end_ts INTEGER NOT NULL, state TEXT NOT NULL, closed INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant, spec, start, grp)) WITHOUT ROWID;
        CREATE INDEX buckets_open ON buckets (tenant, closed, end_ts);
        CREATE TABLE meta (
            tenant TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (tenant, key)) WITHOUT ROWID;
        PRAGMA user_version = 1;";

    /// Write a version 1 file the way meterkit 0.1 did: JSON bodies, group keys and states.
    fn write_v1(path: &Path, records: &[UsageRecord], spec: &RollupSpec) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(V1_SCHEMA).unwrap();
        conn.execute("INSERT INTO specs VALUES (0, ?1)", [serde_json::to_string(spec).unwrap()]).unwrap();
        let mut day = BucketState::default();
        for r in records {
            let body = serde_json::to_string(r).unwrap();
            conn.execute(
                "INSERT INTO records VALUES (?1,?2,?3,?4,?5,?6,?7)",
                params![r.tenant, r.id, r.metric, r.subject, r.timestamp.timestamp(), 0, body],
            )
            .unwrap();
            let one = BucketState { sum: r.quantity, count: 1, ..BucketState::default() };
            day.merge(&one).unwrap();
        }
        let (start, end) = (Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap().timestamp(), 0);
        conn.execute(
            "INSERT INTO buckets VALUES ('t', 0, ?1, '[]', ?2, ?3, 1)",
            params![start, start + 86_400 + end, serde_json::to_string(&day).unwrap()],
        )
        .unwrap();
        conn.execute("INSERT INTO meta VALUES ('t', 'quota/x', '80')", []).unwrap();
    }

    #[test]
    fn a_version_1_file_is_migrated_on_open_with_nothing_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut dimensioned = rec("b", 2, "2.250");
        dimensioned.dimensions.insert("carrier".into(), "acme".into());
        dimensioned.end = Some(Utc.with_ymd_and_hms(2024, 1, 1, 3, 0, 0).unwrap());
        let records = [rec("a", 1, "1.5"), dimensioned];
        write_v1(&path, &records, &RollupSpec::new("kwh", Window::Day, "UTC").unwrap());
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.version().unwrap(), SCHEMA_VERSION);
        let old_tables: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_v1'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(old_tables, 0);
        let got = store.get_records("t", &["b", "a", "zz"]).unwrap();
        assert_eq!(got, [Some(records[1].clone()), Some(records[0].clone()), None], "bodies kept exactly");
        let bucket = &store.buckets("t", 0, i64::MIN, i64::MAX).unwrap()[0];
        assert_eq!((bucket.state.sum.to_string(), bucket.state.count, bucket.closed), ("3.75".into(), 2, true));
        assert_eq!(store.meta("t", "quota/x").unwrap().as_deref(), Some("80"));
        let engine = Engine::new(store).unwrap();
        assert_eq!(engine.specs().len(), 1);
        let again = engine.ingest(&records).unwrap();
        assert_eq!((again.accepted, again.duplicates), (0, 2), "idempotency keys migrated");
    }

    #[test]
    fn a_file_of_a_newer_schema_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 9").unwrap();
        let err = SqliteStore::open(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store);
        assert!(err.message().contains("new.db") && err.message().contains("version 9"), "{}", err.message());
    }

    #[test]
    fn the_batch_probe_and_the_time_range_use_the_indexes() {
        let store = SqliteStore::open(":memory:").unwrap();
        let plan = |sql: &str| -> String {
            let mut st = store.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = st.query_map([], |r| r.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        let probe = plan(&format!(
            "SELECT j.key, {RECORD_COLS} FROM json_each('[\"a\"]') AS j CROSS JOIN records AS r
             ON r.tenant = 1 AND r.id = j.value"
        ));
        assert!(probe.contains("records_by_id"), "{probe}");
        let range = plan(&format!(
            "SELECT {RECORD_COLS} FROM records AS r WHERE tenant=1 AND metric=2 AND ts>=0 AND ts<9 ORDER BY ts, ts_nanos, id"
        ));
        assert!(range.contains("PRIMARY KEY") && !range.contains("TEMP B-TREE"), "{range}");
    }
}

#[cfg(test)]
mod open_race {
    use super::SqliteStore;
    use meterkit::Store as _;

    /// Processes started together on one new file (`meterkit consume` × 4 in the stream tests)
    /// each open it: every open succeeds, whoever sets WAL and creates the schema first.
    #[test]
    fn many_opens_of_one_new_file_at_once_all_succeed() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(format!("new-{round}.db"));
            let start = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                let opens: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            SqliteStore::open(&path).map(|store| store.specs().map(|specs| specs.len()))
                        })
                    })
                    .collect();
                for open in opens {
                    let specs = open.join().unwrap();
                    assert!(matches!(specs, Ok(Ok(0))), "round {round}: {specs:?}");
                }
            });
        }
    }
}
