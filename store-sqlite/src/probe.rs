//! The duplicate check of an ingest ([`Store::compare_stored`](meterkit::Store::compare_stored))
//! in one statement per batch, compared in the stored (encoded) form.
//!
//! The batch's ids, sorted (neighbouring index pages), are joined against the `(tenant, id)`
//! index from one JSON array. Each stored row is compared without decoding it: the incoming
//! record's metric and subject are turned into their dictionary ids and its body is encoded
//! ([`codec::record_body`]) — equal columns and equal body bytes mean the same content. Only a
//! row that differs there (a conflict, a copy stored flagged by validation, a quantity written at
//! another scale) is decoded and compared field by field ([`UsageRecord::same_content`]), so the
//! answer is exact and a duplicate costs one index probe and a byte comparison.

use rustc_hash::FxHashMap as HashMap;

use meterkit::{Result, UsageRecord};
use rusqlite::{params, Connection};

use crate::dict::{Dict, Names};
use crate::{codec, db_err, json_err, record_of, RECORD_COLS};

/// Dictionary ids of the incoming strings, looked up once per batch (`None`: not in the
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

    /// `r` in the stored form: its metric and subject ids and its body, `None` when one of its
    /// strings is not in the dictionary (no stored record can then have its content).
    fn encode(&mut self, r: &UsageRecord) -> Result<Option<(i64, i64, Vec<u8>)>> {
        let (Some(metric), Some(subject)) = (self.get(&r.metric)?, self.get(&r.subject)?) else { return Ok(None) };
        let mut missing = false;
        let body = codec::record_body(r.quantity, r.end, r.quality, &r.dimensions, |s| {
            Ok(self.get(s)?.unwrap_or_else(|| {
                missing = true;
                -1
            }))
        })?;
        Ok((!missing).then_some((metric, subject, body)))
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
    records: &[&UsageRecord],
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
        left.retain(|&i| out[i].is_none() && !sample.contains(&i));
    }
    probe.by_id(&left, &mut out)?;
    Ok(out)
}

/// One batch's duplicate check.
struct Probe<'a> {
    conn: &'a Connection,
    tenant: &'a str,
    t: i64,
    records: &'a [&'a UsageRecord],
    ids: Ids<'a>,
    names: Names<'a>,
}

impl Probe<'_> {
    /// Answer `records[i]` from its stored row `row` (columns [`RECORD_COLS`] from `at`).
    fn compare(&mut self, i: usize, row: &rusqlite::Row<'_>, at: usize) -> Result<bool> {
        let get = |e: rusqlite::Error| db_err(&e);
        let r = self.records[i];
        let (metric, ts, nanos): (i64, i64, u32) =
            (row.get(at).map_err(get)?, row.get(at + 1).map_err(get)?, row.get(at + 2).map_err(get)?);
        let subject: i64 = row.get(at + 4).map_err(get)?;
        let body = row.get_ref(at + 5).map_err(get)?.as_blob().map_err(|_| codec::corrupt("record"))?;
        let same = ts == r.timestamp.timestamp()
            && nanos == r.timestamp.timestamp_subsec_nanos()
            && self.ids.encode(r)?.is_some_and(|(m, s, b)| m == metric && s == subject && b == body);
        Ok(same || record_of(self.tenant, row, at, &mut self.names)?.same_content(r))
    }

    /// The records at `which`, by id: one statement joining their sorted ids against the
    /// `(tenant, id)` index.
    fn by_id(&mut self, which: &[usize], out: &mut [Option<bool>]) -> Result<()> {
        if which.is_empty() {
            return Ok(());
        }
        let mut order = which.to_vec();
        order.sort_unstable_by_key(|&i| self.records[i].id.as_str());
        let sorted: Vec<&str> = order.iter().map(|&i| self.records[i].id.as_str()).collect();
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
    /// key is looked up). A range holding far more records than the batch (other subjects' busy
    /// hours) is cut short; a record the scan did not meet — new, or stored at another time or
    /// under another metric (a conflict) — is probed by id afterwards.
    fn by_time(&mut self, out: &mut [Option<bool>]) -> Result<()> {
        let records = self.records;
        let key = |i: usize| {
            let r = records[i];
            (r.metric.as_str(), r.timestamp.timestamp(), r.timestamp.timestamp_subsec_nanos(), r.id.as_str())
        };
        let mut want: Vec<usize> = (0..records.len()).filter(|&i| out[i].is_none()).collect();
        want.sort_unstable_by_key(|&i| key(i));
        for group in want.chunk_by(|&a, &b| records[a].metric == records[b].metric) {
            let (Some(&first), Some(&last)) = (group.first(), group.last()) else { continue };
            let Some(m) = self.ids.get(&records[first].metric)? else { continue };
            let (from, to) = (key(first).1, key(last).1);
            let limit = i64::try_from(group.len().saturating_mul(2).saturating_add(64)).unwrap_or(i64::MAX);
            let conn = self.conn;
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {RECORD_COLS} FROM records AS r WHERE tenant=?1 AND metric=?2 AND ts>=?3 AND ts<=?4
                     ORDER BY ts, ts_nanos, id LIMIT ?5"
                ))
                .map_err(|e| db_err(&e))?;
            let mut rows = stmt.query(params![self.t, m, from, to, limit]).map_err(|e| db_err(&e))?;
            let mut next = group.iter().copied().peekable();
            while let Some(row) = rows.next().map_err(|e| db_err(&e))? {
                let get = |e: rusqlite::Error| db_err(&e);
                let (ts, nanos): (i64, u32) = (row.get(1).map_err(get)?, row.get(2).map_err(get)?);
                let id = row.get_ref(3).map_err(get)?.as_str().map_err(|_| codec::corrupt("record id"))?;
                let stored = (ts, nanos, id);
                while next.next_if(|&i| (key(i).1, key(i).2, key(i).3) < stored).is_some() {}
                let Some(&i) = next.peek() else { break };
                if (key(i).1, key(i).2, key(i).3) == stored {
                    out[i] = Some(self.compare(i, row, 0)?);
                    next.next();
                }
            }
        }
        Ok(())
    }
}
