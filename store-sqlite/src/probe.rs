//! The duplicate check of an ingest ([`Store::compare_stored`](meterkit::Store::compare_stored),
//! and [`Store::compare_stored_refs`](meterkit::Store::compare_stored_refs) for the rows of a
//! column batch) in one or two statements per batch, compared in the stored (encoded) form.
//!
//! A batch that is mostly stored already (a repeat run) is merged with one scan of the stored
//! records of its time range; the rest of a batch is probed by id (its sorted ids joined against
//! the `(tenant, id)` index from one JSON array). Each stored row is compared without building a
//! record: its dictionary ids are checked against the incoming record's strings through a
//! per-batch cache of id → string ([`Names::is`]) and its body is read in place
//! ([`codec::body_matches`]). Only a row that differs there (a conflict, or a body written in
//! another order) is decoded and compared field by field ([`RecordRef::same_content`]), so the
//! answer is exact and a duplicate costs a few integer lookups and short string comparisons.

use rustc_hash::FxHashMap as HashMap;

use meterkit::{record::RecordRef, Result};
use rusqlite::{params, types::ValueRef, Connection};

use crate::dict::{Dict, Names};
use crate::{codec, db_err, json_err, record_of, RECORD_COLS};

/// Dictionary ids of the incoming metrics, looked up once per batch (`None`: not in the
/// dictionary, so no stored record holds the string).
struct Ids<'a> {
    conn: &'a Connection,
    dict: &'a Dict,
    seen: HashMap<String, Option<i64>>,
}

impl Ids<'_> {
    fn get(&mut self, s: &str) -> Result<Option<i64>> {
        if let Some(&id) = self.seen.get(s) {
            return Ok(id);
        }
        let id = self.dict.find(self.conn, s)?;
        self.seen.insert(s.to_string(), id);
        Ok(id)
    }
}

/// An integer column of a row (`ts`, `ts_nanos`, a dictionary id).
fn int(row: &rusqlite::Row<'_>, at: usize) -> Result<i64> {
    match row.get_ref(at).map_err(|e| db_err(&e))? {
        ValueRef::Integer(v) => Ok(v),
        _ => Err(codec::corrupt("record")),
    }
}

/// A text column's bytes (the id).
fn text<'r>(row: &'r rusqlite::Row<'_>, at: usize) -> Result<&'r [u8]> {
    match row.get_ref(at).map_err(|e| db_err(&e))? {
        ValueRef::Text(v) => Ok(v),
        _ => Err(codec::corrupt("record id")),
    }
}

/// A blob column (the body).
fn blob<'r>(row: &'r rusqlite::Row<'_>, at: usize) -> Result<&'r [u8]> {
    match row.get_ref(at).map_err(|e| db_err(&e))? {
        ValueRef::Blob(v) => Ok(v),
        _ => Err(codec::corrupt("record")),
    }
}

/// The fewest records a batch needs for the time-range scan (smaller ones are probed by id).
const SCAN_MIN: usize = 256;

/// How many records of a batch are probed by id to decide whether it is a repeat.
const SAMPLE: usize = 16;

/// For each of `records` (all of `tenant`, whose dictionary id is `t`): `None` when not stored,
/// `Some(same content)` when stored (see the module docs).
pub(crate) fn compare_stored(
    conn: &Connection,
    dict: &Dict,
    tenant: &str,
    t: i64,
    records: &[RecordRef<'_>],
) -> Result<Vec<Option<bool>>> {
    let mut out: Vec<Option<bool>> = vec![None; records.len()];
    let mut probe =
        Probe { conn, tenant, t, records, ids: Ids { conn, dict, seen: HashMap::default() }, names: Names::new(conn) };
    let mut left: Vec<usize> = (0..records.len()).collect();
    if records.len() >= SCAN_MIN {
        // A sample spread over the batch, by id: a batch mostly stored already is a repeat run,
        // answered from its time ranges; any other is probed by id (a first run pays 16 probes).
        let step = records.len() / SAMPLE;
        let sample: Vec<usize> = (0..SAMPLE).map(|k| k * step).collect();
        probe.by_id(&sample, &mut out)?;
        if sample.iter().filter(|&&i| out[i].is_some()).count() * 2 >= SAMPLE {
            probe.by_time(&mut out)?;
        }
        let mut probed = vec![false; records.len()];
        for &i in &sample {
            probed[i] = true;
        }
        left.retain(|&i| out[i].is_none() && !probed[i]);
    }
    probe.by_id(&left, &mut out)?;
    Ok(out)
}

/// One batch's duplicate check.
struct Probe<'a, 'r> {
    conn: &'a Connection,
    tenant: &'a str,
    t: i64,
    records: &'a [RecordRef<'r>],
    ids: Ids<'a>,
    names: Names<'a>,
}

impl Probe<'_, '_> {
    /// Answer `records[i]` from its stored row `row` (columns [`RECORD_COLS`] from `at`).
    fn compare(&mut self, i: usize, row: &rusqlite::Row<'_>, at: usize) -> Result<bool> {
        let r = &self.records[i];
        let same = int(row, at + 1)? == r.timestamp.timestamp()
            && int(row, at + 2)? == i64::from(r.timestamp.timestamp_subsec_nanos())
            && self.names.is(int(row, at)?, r.metric)?
            && self.same_body(i, int(row, at + 4)?, blob(row, at + 5)?)?;
        Ok(same || r.same_content(&record_of(self.tenant, row, at, &mut self.names)?))
    }

    /// Whether `records[i]` has the stored subject id `subject` and body `body` (in place; `false`
    /// is not final, see [`codec::body_matches`]).
    fn same_body(&mut self, i: usize, subject: i64, body: &[u8]) -> Result<bool> {
        let r = &self.records[i];
        let names = &mut self.names;
        Ok(names.is(subject, r.subject)?
            && codec::body_matches(body, r.quantity, r.end, r.dimensions.iter().copied(), |id, s| names.is(id, s))?)
    }

    /// The records at `which`, by id: one statement joining their sorted ids against the
    /// `(tenant, id)` index.
    fn by_id(&mut self, which: &[usize], out: &mut [Option<bool>]) -> Result<()> {
        if which.is_empty() {
            return Ok(());
        }
        let mut order = which.to_vec();
        order.sort_unstable_by_key(|&i| self.records[i].id);
        let sorted: Vec<&str> = order.iter().map(|&i| self.records[i].id).collect();
        let json = serde_json::to_string(&sorted).map_err(|e| json_err(&e))?;
        let conn = self.conn;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT j.key, {RECORD_COLS} FROM json_each(?2) AS j CROSS JOIN records AS r
                 ON r.tenant = ?1 AND r.id = j.value"
            ))
            .map_err(|e| db_err(&e))?;
        let mut rows = stmt.query(params![self.t, json]).map_err(|e| db_err(&e))?;
        while let Some(row) = rows.next().map_err(|e| db_err(&e))? {
            let at: i64 = row.get(0).map_err(|e| db_err(&e))?;
            let i = *usize::try_from(at)
                .ok()
                .and_then(|at| order.get(at))
                .ok_or_else(|| codec::corrupt("probe position"))?;
            out[i] = Some(self.compare(i, row, 1)?);
        }
        Ok(())
    }

    /// The records not answered yet, per metric, from one scan of the stored records of the
    /// metric in the batch's time range, merged with the batch sorted the same way (the table is
    /// clustered by `(tenant, metric, ts, ts_nanos, id)`: the scan reads neighbouring pages and no
    /// key is looked up; the metric, time and id of a row met are the record's, so only its
    /// subject and body are compared). A range holding far more records than the batch (other
    /// subjects' busy hours) is cut short; a record the scan did not meet — new, or stored at
    /// another time or under another metric (a conflict) — or whose row differs (decoded to be
    /// sure) is probed by id afterwards.
    fn by_time(&mut self, out: &mut [Option<bool>]) -> Result<()> {
        let records = self.records;
        let mut want: Vec<(&str, i64, i64, &[u8], usize)> = (0..records.len())
            .filter(|&i| out[i].is_none())
            .map(|i| {
                let r = &records[i];
                let t = r.timestamp;
                (r.metric, t.timestamp(), i64::from(t.timestamp_subsec_nanos()), r.id.as_bytes(), i)
            })
            .collect();
        want.sort_unstable();
        for group in want.chunk_by(|a, b| a.0 == b.0) {
            let (Some(first), Some(last)) = (group.first(), group.last()) else { continue };
            let Some(m) = self.ids.get(first.0)? else { continue };
            let limit = i64::try_from(group.len().saturating_mul(2).saturating_add(64)).unwrap_or(i64::MAX);
            let conn = self.conn;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT r.ts, r.ts_nanos, r.id, r.subject, r.body FROM records AS r
                     WHERE tenant=?1 AND metric=?2 AND ts>=?3 AND ts<=?4 ORDER BY ts, ts_nanos, id LIMIT ?5",
                )
                .map_err(|e| db_err(&e))?;
            let mut rows = stmt.query(params![self.t, m, first.1, last.1, limit]).map_err(|e| db_err(&e))?;
            let mut next = group.iter().peekable();
            while let Some(row) = rows.next().map_err(|e| db_err(&e))? {
                let stored = (int(row, 0)?, int(row, 1)?, text(row, 2)?);
                while next.next_if(|w| (w.1, w.2, w.3) < stored).is_some() {}
                let Some(w) = next.peek() else { break };
                if (w.1, w.2, w.3) == stored {
                    let i = w.4;
                    if self.same_body(i, int(row, 3)?, blob(row, 4)?)? {
                        out[i] = Some(true);
                    }
                    next.next();
                }
            }
        }
        Ok(())
    }
}
