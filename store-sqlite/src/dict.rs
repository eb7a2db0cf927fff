//! The `strings` dictionary: tenants, metrics, subjects, dimension keys and values and group
//! values are stored once, and referenced by their integer id everywhere else.
//!
//! Ids are only ever added (never deleted or reused once committed), so a writer caches the ids
//! it saw committed. Ids read or added inside a transaction that has not committed yet are kept
//! apart ([`Dict::pending`]) and dropped if that transaction rolls back: a rolled-back id may be
//! given to another string by the next writer.

use std::collections::HashMap;

use meterkit::Result;
use rusqlite::{params, Connection, OptionalExtension};

use crate::db_err;

/// The most ids cached; past it the cache starts again empty (memory stays bounded).
const MAX_CACHED: usize = 1 << 20;

/// A writer's cache of dictionary ids.
#[derive(Default)]
pub(crate) struct Dict {
    committed: HashMap<String, i64>,
    pending: HashMap<String, i64>,
}

impl Dict {
    /// The id of `s`, adding it to the dictionary if missing (inside the caller's transaction).
    pub(crate) fn intern(&mut self, conn: &Connection, s: &str) -> Result<i64> {
        if let Some(&id) = self.committed.get(s).or_else(|| self.pending.get(s)) {
            return Ok(id);
        }
        let id = match lookup(conn, s)? {
            Some(id) => id,
            None => {
                conn.prepare_cached("INSERT INTO strings (s) VALUES (?1)")
                    .and_then(|mut st| st.execute(params![s]))
                    .map_err(|e| db_err(&e))?;
                conn.last_insert_rowid()
            }
        };
        self.pending.insert(s.to_string(), id);
        Ok(id)
    }

    /// The id of `s` if it is in the dictionary (never adds it).
    pub(crate) fn find(&self, conn: &Connection, s: &str) -> Result<Option<i64>> {
        match self.committed.get(s) {
            Some(&id) => Ok(Some(id)),
            None => lookup(conn, s),
        }
    }

    /// The transaction that added or read the pending ids committed.
    pub(crate) fn commit(&mut self) {
        if self.committed.len() + self.pending.len() > MAX_CACHED {
            self.committed.clear();
        }
        self.committed.extend(self.pending.drain());
    }

    /// The transaction (or a savepoint of it) rolled back.
    pub(crate) fn rollback(&mut self) {
        self.pending.clear();
    }
}

/// The id of `s` in the dictionary, as the connection sees it now.
pub(crate) fn lookup(conn: &Connection, s: &str) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM strings WHERE s = ?1")
        .and_then(|mut st| st.query_row(params![s], |r| r.get(0)).optional())
        .map_err(|e| db_err(&e))
}

/// Resolves ids to strings for one read (a cache that lives as long as the read's snapshot).
pub(crate) struct Names<'c> {
    conn: &'c Connection,
    cache: rustc_hash::FxHashMap<i64, String>,
}

impl<'c> Names<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Names { conn, cache: rustc_hash::FxHashMap::default() }
    }

    /// Whether dictionary id `id` is the string `s` (no copy when the id is cached).
    pub(crate) fn is(&mut self, id: i64, s: &str) -> Result<bool> {
        match self.cache.get(&id) {
            Some(name) => Ok(name == s),
            None => Ok(self.name(id)? == s),
        }
    }

    /// The string of dictionary id `id`.
    pub(crate) fn name(&mut self, id: i64) -> Result<String> {
        if let Some(s) = self.cache.get(&id) {
            return Ok(s.clone());
        }
        let s: String = self
            .conn
            .prepare_cached("SELECT s FROM strings WHERE id = ?1")
            .and_then(|mut st| st.query_row(params![id], |r| r.get(0)).optional())
            .map_err(|e| db_err(&e))?
            .ok_or_else(|| crate::codec::corrupt("dictionary reference"))?;
        if self.cache.len() < MAX_CACHED {
            self.cache.insert(id, s.clone());
        }
        Ok(s)
    }
}
