//! The columnar ingest path: [`Engine::ingest_columns`], and its duplicate check in columns: a
//! repeat run's batch the probe does not remember (cut differently from the first run) is checked
//! against the store row by row as borrowed content ([`RecordRef`]), without building records.

use chrono::DateTime;

use crate::engine::batch::Digest;
use crate::engine::stored::{all_stored, SAMPLE};
use crate::engine::{Engine, IngestReport};
use crate::error::Result;
use crate::record::{check_parts, RecordRef};
use crate::rollup::columnar::{ColumnBatch, StrColumn};

impl Engine {
    /// Ingest a batch of usage in columns as one batch: exactly [`Engine::ingest`] of the batch's
    /// records ([`ColumnBatch::records`], row order kept) — the same report, the same stored
    /// records and rollups. The columnar entry point of every binding (Arrow tables in Python,
    /// typed arrays in Node).
    ///
    /// A batch whose rows are all stored already (a repeat run) is answered without building its
    /// records: from the probe when it remembers the batch, else by comparing each row in place
    /// with its stored record.
    ///
    /// ```
    /// use meterkit::{rollup::columnar::{ColumnBatch, Quantities, StrColumn}, Engine};
    /// let engine = Engine::in_memory();
    /// let report = engine.ingest_columns(&ColumnBatch {
    ///     metric: StrColumn::Const(Some("kwh")),
    ///     tenant: StrColumn::Const(Some("acme")),
    ///     subject: StrColumn::Plain(&[Some("m1"), Some("m2")]),
    ///     timestamps: &[1_704_067_200, 1_704_070_800],
    ///     nanos: None,
    ///     ends: None,
    ///     quantities: Quantities::Scaled { mantissas: &[1500, 250], scale: 3 },
    ///     ids: Some(&["r1", "r2"]),
    ///     dimensions: vec![],
    /// })?;
    /// assert_eq!(report.accepted, 2);
    /// # Ok::<(), meterkit::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`ColumnBatch::records`] (nothing is stored: a batch without ids, columns of
    /// different lengths, a null tenant, subject or metric, a timestamp out of range — naming
    /// the field and line) and as [`Engine::ingest`].
    pub fn ingest_columns(&self, batch: &ColumnBatch<'_>) -> Result<IngestReport> {
        // A repeat run's batch the probe remembers is answered before any record is built: its
        // digest is read from the columns (the same bytes as from the records).
        let digest = crate::engine::batch::digest_columns(batch);
        if let Some(d) = &digest {
            if let Some(report) = self.remembered(d, batch.len())? {
                return Ok(report);
            }
        }
        if let Some(report) = self.stored_columns(batch, digest.as_ref())? {
            return Ok(report);
        }
        let records = batch.records()?;
        self.ingest_guarded(self.lock(), None, &records, &[], digest)
    }

    /// The report of `batch` when every row is a valid record stored with the same content —
    /// what [`Engine::ingest`] of its records reports then: every row a duplicate (a repeated id
    /// too: equal to the stored record, it is equal to its first copy), nothing rejected, no
    /// event, the probe remembering the batch (`digest`) as `ingest` does. `None` when a row is
    /// new, differs or cannot be read (the record path answers then, errors included).
    ///
    /// # Errors
    /// [`ErrorKind::Store`](crate::ErrorKind::Store).
    fn stored_columns(&self, batch: &ColumnBatch<'_>, digest: Option<&Digest>) -> Result<Option<IngestReport>> {
        let n = batch.len();
        let (Some(dims), Some(_)) = (sorted_dims(batch), batch.ids) else { return Ok(None) };
        if n == 0 || batch.check_lengths().is_err() {
            return Ok(None);
        }
        // A sample first, read alone: a batch that is no repeat (a first run) costs a few rows.
        let k = SAMPLE.min(n);
        let mut pairs = Vec::new();
        let Some(sample) = row_refs(batch, &dims, (0..k).map(|i| i * n / k), &mut pairs) else { return Ok(None) };
        if !all_stored(self.lock().store.as_ref(), &sample)? {
            return Ok(None);
        }
        let mut pairs = Vec::new();
        let Some(refs) = row_refs(batch, &dims, 0..n, &mut pairs) else { return Ok(None) };
        self.stored_refs(&refs, digest, None)
    }
}

/// The dimension columns of `batch` sorted by name (a record's map order); `None` when a name is
/// given twice (a record keeps the later column's value: left to the record path).
fn sorted_dims<'a>(batch: &ColumnBatch<'a>) -> Option<Vec<(&'a str, StrColumn<'a>)>> {
    let mut dims = batch.dimensions.clone();
    dims.sort_by_key(|(k, _)| *k);
    if dims.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    Some(dims)
}

/// Rows `rows` of `batch` (`dims`: its [`sorted_dims`]) as borrowed content, their dimensions
/// kept in `pairs`; `None` when a row is not a valid record ([`row_ref`]) or a dimension cannot
/// be read.
fn row_refs<'a, 'p>(
    batch: &ColumnBatch<'a>,
    dims: &[(&'a str, StrColumn<'a>)],
    rows: impl Iterator<Item = usize>,
    pairs: &'p mut Vec<(&'a str, &'a str)>,
) -> Option<Vec<RecordRef<'p>>> {
    let mut refs: Vec<RecordRef<'p>> = Vec::with_capacity(rows.size_hint().0);
    // Every row's dimensions, one after the other; `ends[i]`: where row `i`'s end.
    let mut ends = Vec::with_capacity(refs.capacity());
    for row in rows {
        refs.push(row_ref(batch, row)?);
        for (name, col) in dims {
            if let Some(v) = col.get(row).ok()? {
                pairs.push((*name, v));
            }
        }
        ends.push(pairs.len());
    }
    let pairs: &'p [(&'a str, &'a str)] = pairs;
    let mut start = 0;
    for (r, &end) in refs.iter_mut().zip(&ends) {
        r.dimensions = &pairs[start..end];
        start = end;
    }
    Some(refs)
}

/// Row `row` of `batch` as borrowed content, dimensions left out; `None` when it is not a valid
/// record ([`ColumnBatch::record`] fails, or [`check_parts`] does).
fn row_ref<'a>(batch: &ColumnBatch<'a>, row: usize) -> Option<RecordRef<'a>> {
    let nanos = batch.nanos.map_or(0, |v| v[row]);
    let r = RecordRef {
        id: batch.ids?[row],
        tenant: batch.tenant.get(row).ok()??,
        subject: batch.subject.get(row).ok()??,
        metric: batch.metric.get(row).ok()??,
        quantity: batch.quantity_at(row).ok()?,
        timestamp: DateTime::from_timestamp(batch.timestamps[row], nanos)?,
        end: batch.ends.and_then(|e| e[row]),
        dimensions: &[],
    };
    check_parts(r.id, r.tenant, r.subject, r.metric, r.timestamp, r.end).ok()?;
    Some(r)
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use crate::engine::{Engine, Query};
    use crate::error::ErrorKind;
    use crate::rollup::columnar::{ColumnBatch, Quantities, StrColumn};
    use crate::rollup::RollupSpec;
    use crate::store::Store as _;
    use crate::time::Window;

    /// One generated row: (seconds offset, nanos, mantissa, tenant, subject, metric, carrier, id).
    type Row = (i64, u32, i64, usize, usize, usize, usize, usize);

    const BASE: i64 = 1_711_846_800; // the March 2024 change to British Summer Time
    const TENANTS: [&str; 2] = ["t0", "t1"];
    const SUBJECTS: [&str; 3] = ["s0", "s1", ""];
    const METRICS: [&str; 2] = ["kwh", "other"];
    const CARRIERS: [Option<&str>; 3] = [Some("a"), Some("b"), None];

    fn engine() -> Engine {
        let e = Engine::in_memory();
        e.add_spec(RollupSpec::new("kwh", Window::Hour, "Europe/London").unwrap().group_by(["carrier"])).unwrap();
        e
    }

    fn row() -> impl Strategy<Value = Row> {
        (
            0i64..100_000,
            prop_oneof![Just(0u32), 0u32..1_000_000_000],
            -500i64..5000,
            0usize..2,
            0usize..3,
            0usize..2,
            0usize..3,
            0usize..40,
        )
    }

    /// The columns of generated rows (owned; [`Cols::batch`] borrows them). `scale`: the
    /// quantities as `Scaled` mantissas at scale 2, or as decimals of the same value at that scale.
    struct Cols {
        ids: Vec<String>,
        ts: Vec<i64>,
        nanos: Vec<u32>,
        mant: Vec<i64>,
        decimals: Vec<Decimal>,
        tenant: Vec<Option<&'static str>>,
        subject_codes: Vec<u32>,
        metric: Vec<Option<&'static str>>,
        carrier: Vec<Option<&'static str>>,
        zone: Vec<Option<&'static str>>,
        ends: Vec<Option<DateTime<chrono::Utc>>>,
        scaled: bool,
    }

    impl Cols {
        fn new(rows: &[Row], scaled: bool, decimal_scale: u32) -> Self {
            let ts: Vec<i64> = rows.iter().map(|r| BASE + r.0).collect();
            let mant: Vec<i64> = rows.iter().map(|r| r.2).collect();
            let widen = 10i64.pow(decimal_scale - 2);
            Cols {
                ids: rows.iter().map(|r| format!("id{:02}", r.7)).collect(),
                nanos: rows.iter().map(|r| r.1).collect(),
                decimals: mant.iter().map(|m| Decimal::new(*m * widen, decimal_scale)).collect(),
                tenant: rows.iter().map(|r| Some(TENANTS[r.3])).collect(),
                subject_codes: rows.iter().map(|r| r.4 as u32).collect(),
                metric: rows.iter().map(|r| Some(METRICS[r.5])).collect(),
                carrier: rows.iter().map(|r| CARRIERS[r.6]).collect(),
                zone: rows.iter().map(|r| CARRIERS[(r.6 + r.7) % 3]).collect(),
                ends: ts.iter().map(|t| (t % 2 == 0).then(|| DateTime::from_timestamp(t + 60, 0).unwrap())).collect(),
                ts,
                mant,
                scaled,
            }
        }

        /// Dimension columns out of name order (the record's map sorts them).
        fn batch<'a>(&'a self, ids: &'a [&'a str]) -> ColumnBatch<'a> {
            ColumnBatch {
                metric: StrColumn::Plain(&self.metric),
                tenant: StrColumn::Plain(&self.tenant),
                subject: StrColumn::Dict { values: &SUBJECTS, codes: &self.subject_codes },
                timestamps: &self.ts,
                nanos: Some(&self.nanos),
                ends: Some(&self.ends),
                quantities: if self.scaled {
                    Quantities::Scaled { mantissas: &self.mant, scale: 2 }
                } else {
                    Quantities::Decimal(&self.decimals)
                },
                ids: Some(ids),
                dimensions: vec![("zone", StrColumn::Plain(&self.zone)), ("carrier", StrColumn::Plain(&self.carrier))],
            }
        }
    }

    /// `by_rows` ingests the records of `cols`, `by_columns` the columns: the same report.
    fn ingest_both(cols: &Cols, by_rows: &Engine, by_columns: &Engine) -> Result<(), TestCaseError> {
        let ids: Vec<&str> = cols.ids.iter().map(String::as_str).collect();
        let batch = cols.batch(&ids);
        let records = batch.records().unwrap();
        prop_assert_eq!(records.len(), ids.len());
        prop_assert_eq!(by_columns.ingest_columns(&batch).unwrap(), by_rows.ingest(&records).unwrap());
        Ok(())
    }

    /// The two engines store the same records, rollups and probe entries.
    fn same_state(by_rows: &Engine, by_columns: &Engine) -> Result<(), TestCaseError> {
        let (from, to) =
            (DateTime::from_timestamp(BASE, 0).unwrap(), DateTime::from_timestamp(BASE + 200_000, 0).unwrap());
        for t in TENANTS {
            for m in METRICS {
                prop_assert_eq!(
                    by_columns.records(t, m, None, from, to).unwrap(),
                    by_rows.records(t, m, None, from, to).unwrap()
                );
            }
            let q = Query::new(t, "kwh", Window::Hour, "Europe/London").group_by(["carrier"]);
            prop_assert_eq!(by_columns.query(&q).unwrap(), by_rows.query(&q).unwrap());
            let probes = |e: &Engine| e.lock().store.meta_prefix(t, "batch/").unwrap();
            prop_assert_eq!(probes(by_columns), probes(by_rows));
        }
        Ok(())
    }

    /// A second run's row: a row of the first run, maybe changed (`edit` 1–5: the quantity, the
    /// carrier, the time, the id — likely a new one — or the subject).
    fn edited(mut r: Row, edit: u8) -> Row {
        match edit {
            1 => r.2 += 1,
            2 => r.6 = (r.6 + 1) % 3,
            3 => r.0 += 1,
            4 => r.7 += 40,
            5 => r.4 = (r.4 + 1) % 3,
            _ => {}
        }
        r
    }

    proptest! {
        /// `ingest_columns` is exactly `ingest` of the same rows: report (duplicates, conflicts
        /// and invalid rows included), stored records, rollups and probe entries — on a first
        /// run, and on a second run cut differently (rows of the first, in another order and
        /// repeated, some changed or new, or — half the time — none: every row a stored
        /// duplicate, the repeat run the columnar duplicate check answers), quantities at
        /// another scale; then the same second batch again.
        #[test]
        fn ingest_columns_equals_ingest(rows in proptest::collection::vec(row(), 1..120), scaled in proptest::bool::ANY,
            one_tenant in proptest::bool::ANY, picks in proptest::collection::vec(
                (proptest::num::usize::ANY, prop_oneof![8 => Just(0u8), 1 => 1u8..6]), 1..130),
            pure in proptest::bool::ANY, scaled2 in proptest::bool::ANY) {
            let mut rows: Vec<Row> = rows;
            if one_tenant {
                for r in &mut rows {
                    r.3 = 0;
                }
            }
            let (by_rows, by_columns) = (engine(), engine());
            ingest_both(&Cols::new(&rows, scaled, 2), &by_rows, &by_columns)?;
            same_state(&by_rows, &by_columns)?;
            // Pure: only the stored rows (the valid first copy of each id), unchanged.
            let mut seen = std::collections::HashSet::new();
            let stored: Vec<Row> = rows.iter().filter(|r| seen.insert((r.3, r.7)) && !SUBJECTS[r.4].is_empty()).copied().collect();
            let from = if pure && !stored.is_empty() { &stored } else { &rows };
            let second: Vec<Row> =
                picks.iter().map(|&(i, edit)| edited(from[i % from.len()], if pure { 0 } else { edit })).collect();
            let second = Cols::new(&second, scaled2, 4);
            ingest_both(&second, &by_rows, &by_columns)?;
            same_state(&by_rows, &by_columns)?;
            ingest_both(&second, &by_rows, &by_columns)?;
            same_state(&by_rows, &by_columns)?;
        }
    }

    proptest! {
        /// The probe digest read from the columns is the digest of the batch's records (so a
        /// repeat run's column batch is answered before any record is built), and a repeat
        /// answered that way reports what `ingest` of the records reports.
        #[test]
        fn column_digest_is_the_records_digest(rows in proptest::collection::vec(
            (0i64..100_000, prop_oneof![Just(0u32), 0u32..1_000_000_000], -500i64..5000, 0usize..3,
             0usize..3, 0usize..3, proptest::bool::ANY), 64..140), scaled in proptest::bool::ANY,
             twice in proptest::bool::ANY) {
            let base = 1_711_846_800i64;
            let subjects = ["s0", "s1", "s2"];
            let carriers = [Some("a"), Some("b"), None];
            let ids: Vec<String> = (0..rows.len()).map(|i| format!("id{i}")).collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let ts: Vec<i64> = rows.iter().map(|r| base + r.0).collect();
            let nanos: Vec<u32> = rows.iter().map(|r| r.1).collect();
            let mant: Vec<i64> = rows.iter().map(|r| r.2).collect();
            let decimals: Vec<Decimal> = mant.iter().map(|m| Decimal::new(*m * 10, 3)).collect();
            let subject_codes: Vec<u32> = rows.iter().map(|r| r.3 as u32).collect();
            let carrier: Vec<Option<&str>> = rows.iter().map(|r| carriers[r.4]).collect();
            let zone: Vec<Option<&str>> = rows.iter().map(|r| carriers[r.5]).collect();
            let ends: Vec<Option<DateTime<chrono::Utc>>> =
                rows.iter().zip(&ts).map(|(r, t)| r.6.then(|| DateTime::from_timestamp(t + 60, 0).unwrap())).collect();
            // Dimension columns out of key order, and (with `twice`) one name given twice.
            let mut dimensions = vec![("zone", StrColumn::Plain(&zone)), ("carrier", StrColumn::Plain(&carrier))];
            if twice {
                dimensions.push(("zone", StrColumn::Plain(&carrier)));
            }
            let batch = ColumnBatch {
                metric: StrColumn::Const(Some("kwh")),
                tenant: StrColumn::Const(Some("t0")),
                subject: StrColumn::Dict { values: &subjects, codes: &subject_codes },
                timestamps: &ts,
                nanos: Some(&nanos),
                ends: Some(&ends),
                quantities: if scaled { Quantities::Scaled { mantissas: &mant, scale: 2 } } else { Quantities::Decimal(&decimals) },
                ids: Some(&ids),
                dimensions,
            };
            let records = batch.records().unwrap();
            let from_records = crate::engine::batch::digest(&records);
            prop_assert!(from_records.is_some());
            let from_columns = crate::engine::batch::digest_columns(&batch);
            if twice {
                prop_assert_eq!(from_columns, None);
            } else {
                prop_assert_eq!(from_columns, from_records);
            }
            let (by_rows, by_columns) = (engine(), engine());
            prop_assert_eq!(by_columns.ingest_columns(&batch).unwrap(), by_rows.ingest(&records).unwrap());
            let again = by_columns.ingest_columns(&batch).unwrap();
            prop_assert_eq!(again.duplicates, rows.len() as u64);
            prop_assert_eq!(again, by_rows.ingest(&records).unwrap());
        }
    }

    #[test]
    fn bad_batches_store_nothing_and_name_the_field_and_line() {
        let e = engine();
        let base = ColumnBatch {
            metric: StrColumn::Const(Some("kwh")),
            tenant: StrColumn::Const(Some("t")),
            subject: StrColumn::Plain(&[Some("s"), None]),
            timestamps: &[0, 1],
            nanos: None,
            ends: None,
            quantities: Quantities::Scaled { mantissas: &[1, 2], scale: 0 },
            ids: Some(&["a", "b"]),
            dimensions: vec![],
        };
        let null_subject = e.ingest_columns(&base).unwrap_err();
        assert_eq!(
            (null_subject.kind(), null_subject.field(), null_subject.line()),
            (ErrorKind::Parse, Some("subject"), Some(2))
        );
        assert_eq!(null_subject.record_id(), Some("b"));
        let no_ids = e.ingest_columns(&ColumnBatch { ids: None, ..base.clone() }).unwrap_err();
        assert_eq!((no_ids.kind(), no_ids.field()), (ErrorKind::InvalidRecord, Some("id")));
        let short = e.ingest_columns(&ColumnBatch { ids: Some(&["a"]), ..base.clone() }).unwrap_err();
        assert_eq!((short.kind(), short.field()), (ErrorKind::Parse, Some("id")));
        let bad_nanos = ColumnBatch { nanos: Some(&[0, 1_000_000_000]), subject: StrColumn::Const(Some("s")), ..base };
        let bad_nanos = e.ingest_columns(&bad_nanos).unwrap_err();
        assert_eq!((bad_nanos.field(), bad_nanos.line()), (Some("timestamp"), Some(2)));
        let q = Query::new("t", "kwh", Window::Hour, "Europe/London");
        assert!(e.query(&q).unwrap().is_empty());
    }
}
