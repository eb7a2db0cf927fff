//! Schema creation and the migration of a version 1 file (JSON bodies) to version 2.

use meterkit::{rollup::BucketState, Error, ErrorKind, Result, UsageRecord};
use rusqlite::Connection;

use crate::dict::Dict;
use crate::{codec, db_err, insert_records, json_err, put_bucket, SCHEMA, SCHEMA_VERSION};

/// Records converted per insert round while migrating (memory stays bounded).
const CHUNK: usize = 10_000;

/// Bring the database `tx` (inside a write transaction) to [`SCHEMA_VERSION`]: create the schema
/// of an empty file, migrate a version 1 file, or refuse a newer one.
pub(crate) fn to_current(tx: &Connection, dict: &mut Dict) -> Result<()> {
    // Read again under the write lock: another process may have migrated meanwhile.
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| db_err(&e))?;
    match version {
        0 => tx.execute_batch(SCHEMA).map_err(|e| db_err(&e)),
        1 => {
            from_v1(tx, dict)?;
            from_v2(tx)
        }
        2 => from_v2(tx),
        SCHEMA_VERSION => Ok(()),
        v => Err(Error::new(
            ErrorKind::Store,
            format!(
                "It is of schema version {v}, written by a newer meterkit (this one reads versions 1 to \
                 {SCHEMA_VERSION}); open it with that version."
            ),
        )),
    }
}

/// Version 2 → 3: specs can be removed (`specs.removed`, 0 for every spec stored before).
/// The column is added only where missing (a version 1 file's `specs` table keeps its layout
/// through [`from_v1`]).
fn from_v2(tx: &Connection) -> Result<()> {
    let has: bool = tx
        .query_row("SELECT COUNT(*) FROM pragma_table_info('specs') WHERE name = 'removed'", [], |r| r.get(0))
        .map_err(|e| db_err(&e))?;
    if !has {
        tx.execute_batch("ALTER TABLE specs ADD COLUMN removed INTEGER NOT NULL DEFAULT 0").map_err(|e| db_err(&e))?;
    }
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}")).map_err(|e| db_err(&e))
}

/// Version 1 → 2: the old tables are renamed, the new ones created, every record and bucket
/// re-encoded, and the old tables dropped — all in the caller's transaction.
fn from_v1(tx: &Connection, dict: &mut Dict) -> Result<()> {
    tx.execute_batch(
        "DROP INDEX IF EXISTS records_by_time; DROP INDEX IF EXISTS records_by_subject;
         DROP INDEX IF EXISTS buckets_open;
         ALTER TABLE records RENAME TO records_v1; ALTER TABLE buckets RENAME TO buckets_v1;",
    )
    .map_err(|e| db_err(&e))?;
    tx.execute_batch(SCHEMA).map_err(|e| db_err(&e))?;
    {
        let mut stmt = tx.prepare("SELECT body FROM records_v1").map_err(|e| db_err(&e))?;
        let mut rows = stmt.query([]).map_err(|e| db_err(&e))?;
        let mut chunk: Vec<UsageRecord> = Vec::with_capacity(CHUNK);
        loop {
            let row = rows.next().map_err(|e| db_err(&e))?;
            if let Some(row) = row {
                let body: String = row.get(0).map_err(|e| db_err(&e))?;
                chunk.push(serde_json::from_str(&body).map_err(|e| json_err(&e))?);
            }
            if chunk.len() == CHUNK || (row.is_none() && !chunk.is_empty()) {
                insert_records(tx, dict, &chunk.iter().collect::<Vec<_>>())?;
                chunk.clear();
            }
            if row.is_none() {
                break;
            }
        }
    }
    {
        let mut stmt = tx
            .prepare("SELECT tenant, spec, start, grp, end_ts, state, closed FROM buckets_v1")
            .map_err(|e| db_err(&e))?;
        let mut rows = stmt.query([]).map_err(|e| db_err(&e))?;
        while let Some(r) = rows.next().map_err(|e| db_err(&e))? {
            let get = |e: rusqlite::Error| db_err(&e);
            let tenant: String = r.get(0).map_err(get)?;
            let group: Vec<Option<String>> =
                serde_json::from_str(&r.get::<_, String>(3).map_err(get)?).map_err(|e| json_err(&e))?;
            let state: BucketState =
                serde_json::from_str(&r.get::<_, String>(5).map_err(get)?).map_err(|e| json_err(&e))?;
            let t = dict.intern(tx, &tenant)?;
            let grp = codec::group_blob(&group, |s| dict.intern(tx, s).map(Some))?.unwrap_or_default();
            let key = (t, r.get(1).map_err(get)?, r.get(2).map_err(get)?, grp.as_slice());
            put_bucket(tx, key, r.get(4).map_err(get)?, &state, r.get(6).map_err(get)?, false)?;
        }
    }
    tx.execute_batch("DROP TABLE records_v1; DROP TABLE buckets_v1;").map_err(|e| db_err(&e))
}
