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
//! Schema (version 1): `specs(id, body)`, `records(tenant, id, metric, subject, ts, ts_nanos,
//! body)` keyed by the idempotency key `(tenant, id)` and indexed by `(tenant, metric, ts)`,
//! `buckets(tenant, spec, start, grp, end_ts, state, closed)` keyed by `(tenant, spec, start, grp)`,
//! and `meta(tenant, key, value)`. Record bodies, group keys and bucket states are JSON, so fields
//! added to the core types are persisted without a schema change.
#![deny(missing_docs)]

use std::path::Path;

use meterkit::{
    rollup::BucketState, store::BucketKey, store::ChangeSet, store::StoredBucket, Error, ErrorKind, Result, RollupSpec,
    Store, UsageRecord,
};
use rusqlite::{params, Connection, OptionalExtension};

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
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS specs (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    tenant TEXT NOT NULL, id TEXT NOT NULL, metric TEXT NOT NULL, subject TEXT NOT NULL,
    ts INTEGER NOT NULL, ts_nanos INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (tenant, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_time ON records (tenant, metric, ts);
CREATE INDEX IF NOT EXISTS records_by_subject ON records (tenant, metric, subject, ts);
CREATE TABLE IF NOT EXISTS buckets (
    tenant TEXT NOT NULL, spec INTEGER NOT NULL, start INTEGER NOT NULL, grp TEXT NOT NULL,
    end_ts INTEGER NOT NULL, state TEXT NOT NULL, closed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, spec, start, grp)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS buckets_open ON buckets (tenant, closed, end_ts);
CREATE TABLE IF NOT EXISTS meta (
    tenant TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (tenant, key)) WITHOUT ROWID;
PRAGMA user_version = 1;
";

/// A SQLite error as a store error; lock contention (`SQLITE_BUSY`, `SQLITE_LOCKED`: another
/// writer held the file beyond the busy timeout) is retryable, as nothing was applied.
fn db_err(e: &rusqlite::Error) -> Error {
    let err = Error::new(ErrorKind::Store, format!("SQLite failed: {e}."));
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => err.with_retryable(),
        _ => err,
    }
}

fn json_err(e: &serde_json::Error) -> Error {
    Error::new(ErrorKind::Store, format!("Stored JSON could not be read or written: {e}."))
}

impl SqliteStore {
    /// Open (or create) the database at `path`; `":memory:"` gives a private in-memory database.
    /// Sets WAL journaling with `synchronous=NORMAL` (a crash of the process never loses a
    /// committed batch; a power loss may lose the last ones but never corrupts), and creates the
    /// schema if missing.
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the file cannot be opened or is not a meterkit database.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let conn = Connection::open(path.as_ref()).map_err(|e| {
            Error::new(ErrorKind::Store, format!("Cannot open the database {}: {e}.", path.as_ref().display()))
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| db_err(&e))?;
        // `journal_mode` returns a row; in-memory databases answer "memory".
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(|e| db_err(&e))?;
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;")
            .map_err(|e| db_err(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| db_err(&e))?;
        Ok(SqliteStore { conn, writing: false })
    }

    fn group_json(group: &[Option<String>]) -> Result<String> {
        serde_json::to_string(group).map_err(|e| json_err(&e))
    }

    fn row_to_bucket(
        tenant: &str,
        spec: u32,
        start: i64,
        grp: &str,
        end: i64,
        state: &str,
        closed: bool,
    ) -> Result<StoredBucket> {
        Ok(StoredBucket {
            key: BucketKey {
                tenant: tenant.to_string(),
                spec,
                start,
                group: serde_json::from_str(grp).map_err(|e| json_err(&e))?,
            },
            end,
            state: serde_json::from_str(state).map_err(|e| json_err(&e))?,
            closed,
        })
    }

    fn apply_in(tx: &Connection, changes: &ChangeSet<'_>) -> Result<Vec<bool>> {
        let base: i64 = tx.query_row("SELECT COUNT(*) FROM specs", [], |r| r.get(0)).map_err(|e| db_err(&e))?;
        if changes.known_specs.is_some_and(|k| i64::from(k) < base) {
            // Another process sharing the file added a spec: the engine must reload and recompute.
            return Err(Error::new(
                ErrorKind::Store,
                "Another writer added a rollup spec; the change was not applied.",
            )
            .with_retryable());
        }
        for (i, spec) in changes.new_specs.iter().enumerate() {
            let body = serde_json::to_string(spec).map_err(|e| json_err(&e))?;
            tx.execute("INSERT INTO specs (id, body) VALUES (?1, ?2)", params![base + i as i64, body])
                .map_err(|e| db_err(&e))?;
        }
        {
            let mut del =
                tx.prepare_cached("DELETE FROM records WHERE tenant = ?1 AND id = ?2").map_err(|e| db_err(&e))?;
            for (tenant, id) in &changes.delete {
                del.execute(params![tenant, id]).map_err(|e| db_err(&e))?;
            }
            // Multi-row INSERTs: one statement per `INSERT_ROWS` records instead of one per record.
            let sql = |n: usize| {
                let row = "(?,?,?,?,?,?,?)";
                format!(
                    "INSERT INTO records (tenant, id, metric, subject, ts, ts_nanos, body) VALUES {}",
                    vec![row; n].join(",")
                )
            };
            for chunk in changes.insert.chunks(INSERT_ROWS) {
                let mut ins = tx.prepare_cached(&sql(chunk.len())).map_err(|e| db_err(&e))?;
                let bodies: Vec<(String, i64, i64)> = chunk
                    .iter()
                    .map(|r| {
                        let body = serde_json::to_string(r).map_err(|e| json_err(&e))?;
                        Ok((body, r.timestamp.timestamp(), i64::from(r.timestamp.timestamp_subsec_nanos())))
                    })
                    .collect::<Result<_>>()?;
                let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * 7);
                for (r, (body, secs, nanos)) in chunk.iter().zip(&bodies) {
                    values.extend([&r.tenant as &dyn rusqlite::ToSql, &r.id, &r.metric, &r.subject, secs, nanos, body]);
                }
                ins.execute(rusqlite::params_from_iter(values)).map_err(|e| db_err(&e))?;
            }
        }
        let mut get = tx
            .prepare_cached("SELECT state, closed FROM buckets WHERE tenant=?1 AND spec=?2 AND start=?3 AND grp=?4")
            .map_err(|e| db_err(&e))?;
        let mut put = tx
            .prepare_cached(
                "INSERT INTO buckets (tenant, spec, start, grp, end_ts, state, closed) VALUES (?1,?2,?3,?4,?5,?6,?7)
                 ON CONFLICT (tenant, spec, start, grp) DO UPDATE SET end_ts = excluded.end_ts, state = excluded.state",
            )
            .map_err(|e| db_err(&e))?;
        let mut late = Vec::with_capacity(changes.merge.len());
        for (key, end, delta) in &changes.merge {
            let grp = Self::group_json(&key.group)?;
            let existing: Option<(String, bool)> = get
                .query_row(params![key.tenant, key.spec, key.start, grp], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(|e| db_err(&e))?;
            let (mut state, closed) = match existing {
                Some((s, c)) => (serde_json::from_str::<BucketState>(&s).map_err(|e| json_err(&e))?, c),
                None => (BucketState::default(), false),
            };
            state.merge(delta)?;
            let body = serde_json::to_string(&state).map_err(|e| json_err(&e))?;
            put.execute(params![key.tenant, key.spec, key.start, grp, end, body, closed]).map_err(|e| db_err(&e))?;
            late.push(closed);
        }
        let mut del_bucket = tx
            .prepare_cached("DELETE FROM buckets WHERE tenant=?1 AND spec=?2 AND start=?3 AND grp=?4")
            .map_err(|e| db_err(&e))?;
        for (key, end, state) in &changes.replace {
            let grp = Self::group_json(&key.group)?;
            match state {
                Some(s) if s.count > 0 => {
                    let body = serde_json::to_string(s).map_err(|e| json_err(&e))?;
                    put.execute(params![key.tenant, key.spec, key.start, grp, end, body, false])
                        .map_err(|e| db_err(&e))?;
                }
                _ => {
                    del_bucket.execute(params![key.tenant, key.spec, key.start, grp]).map_err(|e| db_err(&e))?;
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

    /// Run `f` in a transaction of its own (`IMMEDIATE`: it waits for the write lock before its
    /// first read), or in a savepoint of the write span `begin_write` opened; all or nothing.
    fn write<T>(&mut self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.writing {
            let sp = self.conn.savepoint().map_err(|e| db_err(&e))?;
            let value = f(&sp)?; // dropping `sp` on error rolls back to it
            sp.commit().map_err(|e| db_err(&e))?;
            return Ok(value);
        }
        let tx =
            self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| db_err(&e))?;
        let value = f(&tx)?; // dropping `tx` on error rolls back
        tx.commit().map_err(|e| db_err(&e))?;
        Ok(value)
    }

    fn query_records(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<UsageRecord>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| db_err(&e))?;
        let rows = stmt.query_map(params, |r| r.get::<_, String>(0)).map_err(|e| db_err(&e))?;
        rows.map(|body| serde_json::from_str(&body.map_err(|e| db_err(&e))?).map_err(|e| json_err(&e))).collect()
    }

    fn query_buckets(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<StoredBucket>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| db_err(&e))?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            })
            .map_err(|e| db_err(&e))?;
        rows.map(|row| {
            let (t, spec, start, grp, end, state, closed) = row.map_err(|e| db_err(&e))?;
            Self::row_to_bucket(&t, spec, start, &grp, end, &state, closed)
        })
        .collect()
    }
}

/// Records per multi-row INSERT statement (7 parameters each, well under SQLite's limit).
const INSERT_ROWS: usize = 64;

const BUCKET_COLS: &str = "tenant, spec, start, grp, end_ts, state, closed";

impl Store for SqliteStore {
    fn specs(&self) -> Result<Vec<RollupSpec>> {
        let mut stmt = self.conn.prepare_cached("SELECT body FROM specs ORDER BY id").map_err(|e| db_err(&e))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| db_err(&e))?;
        rows.map(|b| serde_json::from_str(&b.map_err(|e| db_err(&e))?).map_err(|e| json_err(&e))).collect()
    }

    fn get_records(&self, tenant: &str, ids: &[&str]) -> Result<Vec<Option<UsageRecord>>> {
        // One statement per chunk of ids, not per id: ingest looks up every key of a batch.
        const CHUNK: usize = 500;
        let mut found: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let placeholders = vec!["?"; chunk.len()].join(",");
            let mut stmt = self
                .conn
                .prepare_cached(&format!("SELECT id, body FROM records WHERE tenant = ? AND id IN ({placeholders})"))
                .map_err(|e| db_err(&e))?;
            let params = std::iter::once(&tenant as &dyn rusqlite::ToSql)
                .chain(chunk.iter().map(|id| id as &dyn rusqlite::ToSql));
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(|e| db_err(&e))?;
            for row in rows {
                let (id, body) = row.map_err(|e| db_err(&e))?;
                found.insert(id, body);
            }
        }
        ids.iter()
            .map(|id| found.get(*id).map(|b| serde_json::from_str(b).map_err(|e| json_err(&e))).transpose())
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
        match subject {
            Some(s) => self.query_records(
                "SELECT body FROM records WHERE tenant=?1 AND metric=?2 AND ts>=?3 AND ts<?4 AND subject=?5
                 ORDER BY ts, ts_nanos, id",
                &[&tenant, &metric, &from, &to, &s],
            ),
            None => self.query_records(
                "SELECT body FROM records WHERE tenant=?1 AND metric=?2 AND ts>=?3 AND ts<?4 ORDER BY ts, ts_nanos, id",
                &[&tenant, &metric, &from, &to],
            ),
        }
    }

    fn scan_metric(&self, metric: &str, f: &mut dyn FnMut(&UsageRecord) -> Result<()>) -> Result<()> {
        let mut stmt =
            self.conn.prepare_cached("SELECT body FROM records WHERE metric = ?1").map_err(|e| db_err(&e))?;
        let mut rows = stmt.query(params![metric]).map_err(|e| db_err(&e))?;
        while let Some(row) = rows.next().map_err(|e| db_err(&e))? {
            let body: String = row.get(0).map_err(|e| db_err(&e))?;
            let record: UsageRecord = serde_json::from_str(&body).map_err(|e| json_err(&e))?;
            f(&record)?;
        }
        Ok(())
    }

    fn apply(&mut self, changes: &ChangeSet<'_>) -> Result<Vec<bool>> {
        self.write(|tx| Self::apply_in(tx, changes))
    }

    fn buckets(&self, tenant: &str, spec: u32, from: i64, to: i64) -> Result<Vec<StoredBucket>> {
        self.query_buckets(
            &format!(
                "SELECT {BUCKET_COLS} FROM buckets WHERE tenant=?1 AND spec=?2 AND start>=?3 AND start<?4 ORDER BY start, grp"
            ),
            &[&tenant, &spec, &from, &to],
        )
    }

    fn bucket(&self, key: &BucketKey) -> Result<Option<StoredBucket>> {
        let grp = Self::group_json(&key.group)?;
        Ok(self
            .query_buckets(
                &format!("SELECT {BUCKET_COLS} FROM buckets WHERE tenant=?1 AND spec=?2 AND start=?3 AND grp=?4"),
                &[&key.tenant, &key.spec, &key.start, &grp],
            )?
            .pop())
    }

    fn open_buckets_until(&self, tenant: &str, cutoff: i64) -> Result<Vec<StoredBucket>> {
        self.query_buckets(
            &format!(
                "SELECT {BUCKET_COLS} FROM buckets WHERE tenant=?1 AND closed=0 AND end_ts<=?2 ORDER BY end_ts, spec, start, grp"
            ),
            &[&tenant, &cutoff],
        )
    }

    fn mark_closed(&mut self, keys: &[BucketKey]) -> Result<()> {
        self.write(|tx| {
            let mut stmt = tx
                .prepare_cached("UPDATE buckets SET closed=1 WHERE tenant=?1 AND spec=?2 AND start=?3 AND grp=?4")
                .map_err(|e| db_err(&e))?;
            for key in keys {
                stmt.execute(params![key.tenant, key.spec, key.start, Self::group_json(&key.group)?])
                    .map_err(|e| db_err(&e))?;
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
            return Err(db_err(&e));
        }
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
}
