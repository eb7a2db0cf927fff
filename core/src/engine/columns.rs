//! The columnar ingest path: [`Engine::ingest_columns`].

use crate::engine::{Engine, IngestReport};
use crate::error::Result;
use crate::rollup::columnar::ColumnBatch;

impl Engine {
    /// Ingest a batch of usage in columns as one batch: exactly [`Engine::ingest`] of the batch's
    /// records ([`ColumnBatch::records`], row order kept) — the same report, the same stored
    /// records and rollups. The columnar entry point of every binding (Arrow tables in Python,
    /// typed arrays in Node).
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
        let records = batch.records()?;
        self.ingest_guarded(self.lock(), None, &records, &[], digest)
    }
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
    use crate::time::Window;

    /// One generated row: (seconds offset, nanos, mantissa, tenant, subject, metric, carrier, id).
    type Row = (i64, u32, i64, usize, usize, usize, usize, usize);

    fn engine() -> Engine {
        let e = Engine::in_memory();
        e.add_spec(RollupSpec::new("kwh", Window::Hour, "Europe/London").unwrap().group_by(["carrier"])).unwrap();
        e
    }

    proptest! {
        /// `ingest_columns` is exactly `ingest` of the same rows: report (duplicates, conflicts
        /// and invalid rows included), stored records and rollups.
        #[test]
        fn ingest_columns_equals_ingest(rows in proptest::collection::vec(
            (0i64..100_000, prop_oneof![Just(0u32), 0u32..1_000_000_000], -500i64..5000, 0usize..2, 0usize..3,
             0usize..2, 0usize..3, 0usize..40), 1..120), scaled in proptest::bool::ANY) {
            let base = 1_711_846_800i64; // the March 2024 change to British Summer Time
            let (tenants, subjects, metrics) = (["t0", "t1"], ["s0", "s1", ""], ["kwh", "other"]);
            let carriers = [Some("a"), Some("b"), None];
            let rows: Vec<Row> = rows;
            let ids: Vec<String> = rows.iter().map(|r| format!("id{:02}", r.7)).collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let ts: Vec<i64> = rows.iter().map(|r| base + r.0).collect();
            let nanos: Vec<u32> = rows.iter().map(|r| r.1).collect();
            let mant: Vec<i64> = rows.iter().map(|r| r.2).collect();
            let decimals: Vec<Decimal> = mant.iter().map(|m| Decimal::new(*m, 2)).collect();
            let tenant: Vec<Option<&str>> = rows.iter().map(|r| Some(tenants[r.3])).collect();
            let subject_codes: Vec<u32> = rows.iter().map(|r| r.4 as u32).collect();
            let metric: Vec<Option<&str>> = rows.iter().map(|r| Some(metrics[r.5])).collect();
            let carrier: Vec<Option<&str>> = rows.iter().map(|r| carriers[r.6]).collect();
            let ends: Vec<Option<DateTime<chrono::Utc>>> =
                ts.iter().map(|t| (t % 2 == 0).then(|| DateTime::from_timestamp(t + 60, 0).unwrap())).collect();
            let batch = ColumnBatch {
                metric: StrColumn::Plain(&metric),
                tenant: StrColumn::Plain(&tenant),
                subject: StrColumn::Dict { values: &subjects, codes: &subject_codes },
                timestamps: &ts,
                nanos: Some(&nanos),
                ends: Some(&ends),
                quantities: if scaled { Quantities::Scaled { mantissas: &mant, scale: 2 } } else { Quantities::Decimal(&decimals) },
                ids: Some(&ids),
                dimensions: vec![("carrier", StrColumn::Plain(&carrier))],
            };
            let records = batch.records().unwrap();
            prop_assert_eq!(records.len(), rows.len());
            let (by_rows, by_columns) = (engine(), engine());
            let expected = by_rows.ingest(&records).unwrap();
            prop_assert_eq!(by_columns.ingest_columns(&batch).unwrap(), expected);
            // Again: now all duplicates (or conflicts), on both paths alike.
            prop_assert_eq!(by_columns.ingest_columns(&batch).unwrap(), by_rows.ingest(&records).unwrap());
            let (from, to) = (DateTime::from_timestamp(base, 0).unwrap(), DateTime::from_timestamp(base + 200_000, 0).unwrap());
            for t in tenants {
                for m in metrics {
                    prop_assert_eq!(by_columns.records(t, m, None, from, to).unwrap(), by_rows.records(t, m, None, from, to).unwrap());
                }
                let q = Query::new(t, "kwh", Window::Hour, "Europe/London").group_by(["carrier"]);
                prop_assert_eq!(by_columns.query(&q).unwrap(), by_rows.query(&q).unwrap());
            }
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
