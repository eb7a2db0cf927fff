//! Answering a repeat run's batch in place: a batch the probe does not remember (cut differently
//! from the first run) whose records are all stored with the same content is answered "all
//! duplicates" from their content borrowed where it is ([`RecordRef`]: rows of columns, records
//! in a JSON text), compared in place with the stored records ([`Store::compare_stored_refs`]),
//! without building a record per row. Used by [`Engine::ingest_columns`],
//! [`Engine::ingest_json`] and [`Engine::ingest_refs`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::engine::batch::{self, Digest};
use crate::engine::{Engine, IngestReport};
use crate::error::Result;
use crate::record::{check_parts, RecordRef, UsageRecord};
use crate::store::{ChangeSet, Store};

/// How many records, spread over a batch, are looked up before all of them (in a write span): a
/// batch that is not a repeat (a first run) pays for these only.
pub(super) const SAMPLE: usize = 16;

/// Whether every one of `refs` is stored with the same content (per tenant, in one
/// [`Store::compare_stored_refs`] call each).
///
/// # Errors
/// [`ErrorKind::Store`].
pub(super) fn all_stored(store: &dyn Store, refs: &[RecordRef<'_>]) -> Result<bool> {
    let mut by_tenant: BTreeMap<&str, Vec<RecordRef<'_>>> = BTreeMap::new();
    let same = |tenant: &str, rows: &[RecordRef<'_>]| -> Result<bool> {
        Ok(store.compare_stored_refs(tenant, rows)?.iter().all(|s| *s == Some(true)))
    };
    match refs.first() {
        None => return Ok(true),
        Some(first) if refs.iter().all(|r| r.tenant == first.tenant) => return same(first.tenant, refs),
        Some(_) => {}
    }
    for r in refs {
        by_tenant.entry(r.tenant).or_default().push(*r);
    }
    for (tenant, rows) in &by_tenant {
        if !same(tenant, rows)? {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Engine {
    /// The report [`Engine::ingest`] gives for records `refs` when each is a valid record stored
    /// with the same content: every one a duplicate (a repeated key too: equal to the stored
    /// record, it equals its first copy), nothing rejected, no event; the probe remembers the
    /// batch (`digest`) and a source's watermark moves, as `ingest` does. `None` when one is
    /// new, differs or is invalid (the record path answers then). A few records spread over the
    /// batch are looked up first, outside a write span, so that a first run pays little.
    ///
    /// # Errors
    /// [`ErrorKind::Store`].
    pub(super) fn stored_refs(
        &self,
        refs: &[RecordRef<'_>],
        digest: Option<&Digest>,
        source: Option<&str>,
    ) -> Result<Option<IngestReport>> {
        let (n, k) = (refs.len(), SAMPLE.min(refs.len()));
        let valid = |r: &RecordRef<'_>| check_parts(r.id, r.tenant, r.subject, r.metric, r.timestamp, r.end).is_ok();
        if n == 0 || !refs.iter().all(valid) {
            return Ok(None);
        }
        let mut inner = self.lock();
        let sample: Vec<RecordRef<'_>> = (0..k).map(|i| refs[i * n / k]).collect();
        if !all_stored(inner.store.as_ref(), &sample)? {
            return Ok(None);
        }
        Self::write_call(&mut inner, |inner| {
            if !all_stored(inner.store.as_ref(), refs)? {
                return Ok(None);
            }
            let mut meta = match digest {
                Some(d) => {
                    let (tenant, key) = batch::probe_key(inner.store.as_ref(), d)?;
                    vec![(tenant, key, Some(n.to_string()))]
                }
                None => Vec::new(),
            };
            if let Some(source) = source {
                let mut latest: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
                for r in refs {
                    let at = latest.entry(r.tenant).or_insert(r.timestamp);
                    *at = (*at).max(r.timestamp);
                }
                for (tenant, at) in latest {
                    meta.extend(batch::watermark_change(inner.store.as_ref(), source, tenant, at)?);
                }
            }
            if !meta.is_empty() {
                let known_specs = Some(inner.specs.len() as u32);
                inner.store.apply(&ChangeSet { meta, known_specs, ..ChangeSet::default() })?;
            }
            Ok(Some(IngestReport { duplicates: n as u64, ..IngestReport::default() }))
        })
    }
}

impl Engine {
    /// [`Engine::ingest`] (with `source`, [`Engine::ingest_from`]) of borrowed records: for a
    /// host whose records live in objects it cannot give away (Python's `UsageRecord`s), so
    /// that a repeat run's batch costs no copy. A batch the probe remembers, or whose records are
    /// all stored with the same content, is answered from the borrowed records; any other is
    /// copied once and ingested. The outcome is exactly that of `ingest` of the records.
    ///
    /// ```
    /// use meterkit::{Decimal, Engine, UsageRecord};
    /// let engine = Engine::in_memory();
    /// let at = "2024-03-01T10:00:00Z".parse().unwrap();
    /// let r = UsageRecord::new("acme", "r1", "m1", "kwh", Decimal::ONE, at);
    /// assert_eq!(engine.ingest_refs(None, &[&r])?.accepted, 1);
    /// assert_eq!(engine.ingest_refs(Some("cron"), &[&r])?.duplicates, 1);
    /// assert_eq!(engine.last_ingested_at("acme", "cron")?, Some(at));
    /// # Ok::<(), meterkit::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Engine::ingest`]; as [`Engine::ingest_from`] for an invalid source name.
    pub fn ingest_refs(&self, source: Option<&str>, batch: &[&UsageRecord]) -> Result<IngestReport> {
        if let Some(source) = source {
            batch::check_source(source)?;
        }
        let digest = batch::digest(batch);
        if let (Some(d), None) = (&digest, source) {
            if let Some(report) = self.remembered(d, batch.len())? {
                return Ok(report);
            }
        }
        let mut pairs = Vec::new();
        let refs = RecordRef::from_records(batch, &mut pairs);
        if let Some(report) = self.stored_refs(&refs, digest.as_ref(), source)? {
            return Ok(report);
        }
        let owned: Vec<UsageRecord> = batch.iter().map(|r| (*r).clone()).collect();
        self.ingest_guarded(self.lock(), source, &owned, &[], digest)
    }
}

impl Engine {
    /// [`Engine::ingest`] (with `source`, [`Engine::ingest_from`]) of records given as their
    /// content ([`RecordRef`]: borrowed from a host's buffer, such as the lines of a JSON-lines
    /// file read by [`RefBatch::push_object`](crate::record::RefBatch::push_object)) when every
    /// one is a valid record stored with the same content: the report is then exactly that of
    /// `ingest` (all duplicates, nothing rejected, no event) and a source's watermark moves.
    /// `None`, with nothing changed, when one is new, differs or is invalid: ingest the records
    /// then (their quality, which is not content, is not in a `RecordRef`). Without `source`,
    /// a duplicate changes nothing, so a call is also a read-only look ("is this batch stored?").
    ///
    /// For a repeat run that re-reads what it sent before (`meterkit ingest` of the same file):
    /// a few records spread over the batch are looked up before all of them, so a batch that is
    /// not a repeat costs little.
    ///
    /// ```
    /// use meterkit::{record::RefBatch, Engine};
    /// let engine = Engine::in_memory();
    /// let line = r#"{"id":"r1","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z"}"#;
    /// let mut batch = RefBatch::default();
    /// assert!(batch.push_object(line, "acme"));
    /// assert_eq!(engine.ingest_if_stored(Some("cron"), &batch.refs())?, None);
    /// engine.ingest(&[batch.refs()[0].to_record()])?;
    /// assert_eq!(engine.ingest_if_stored(Some("cron"), &batch.refs())?.map(|r| r.duplicates), Some(1));
    /// assert_eq!(engine.last_ingested_at("acme", "cron")?, Some("2024-03-01T10:00:00Z".parse().unwrap()));
    /// # Ok::<(), meterkit::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Store`](crate::ErrorKind::Store); as [`Engine::ingest_from`] for an
    /// invalid source name.
    pub fn ingest_if_stored(&self, source: Option<&str>, refs: &[RecordRef<'_>]) -> Result<Option<IngestReport>> {
        if let Some(source) = source {
            batch::check_source(source)?;
        }
        self.stored_refs(refs, None, source)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    use crate::engine::{Engine, IngestReport, Query};
    use crate::record::{RecordRef, UsageRecord};
    use crate::rollup::RollupSpec;
    use crate::time::Window;

    fn engine() -> Engine {
        let e = Engine::in_memory();
        e.add_spec(RollupSpec::new("kwh", Window::Day, "UTC").unwrap().group_by(["carrier"])).unwrap();
        e
    }

    fn record(i: usize, q: &str, tenant: &str) -> UsageRecord {
        let at = format!("2024-03-{:02}T10:00:00Z", 1 + i % 28).parse().unwrap();
        UsageRecord::new(tenant, format!("r{i}"), format!("s{}", i % 3), "kwh", q.parse().unwrap(), at)
            .with_dimension("carrier", if i.is_multiple_of(2) { "a" } else { "b" })
    }

    /// One step: `op` 0 retracts `r{from}`; any other ingests `r{from}..r{to}` with quantity `q`
    /// (op 1: plus a repeated key, op 2: plus a second tenant's record), from the source "cron"
    /// when the flag is set.
    type Step = (usize, usize, usize, &'static str, bool);

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec(
            (
                0usize..5,
                proptest::sample::select(vec![0usize, 10, 30]),
                proptest::sample::select(vec![90usize, 120]),
                prop_oneof![Just("1"), Just("1.0"), Just("2")],
                proptest::bool::ANY,
            ),
            1..12,
        )
    }

    /// The batch of an ingest step.
    fn batch(op: usize, from: usize, to: usize, q: &str) -> Vec<UsageRecord> {
        let mut batch: Vec<UsageRecord> = (from..to).map(|i| record(i, q, "t")).collect();
        match op {
            1 => batch.push(record(from, q, "t")),
            2 => batch.push(record(from, q, "u")),
            _ => {}
        }
        batch
    }

    /// `ingest` of `batch`, or `ingest_from` with `source`.
    fn ingest(e: &Engine, source: Option<&str>, batch: &[UsageRecord]) -> IngestReport {
        match source {
            Some(s) => e.ingest_from(s, batch).unwrap(),
            None => e.ingest(batch).unwrap(),
        }
    }

    /// Both engines hold the same records, watermarks and rollups, for both tenants.
    fn same_state(a: &Engine, b: &Engine) -> Result<(), TestCaseError> {
        let (from, to) = ("2024-03-01T00:00:00Z".parse().unwrap(), "2024-03-30T00:00:00Z".parse().unwrap());
        for t in ["t", "u"] {
            prop_assert_eq!(a.records(t, "kwh", None, from, to).unwrap(), b.records(t, "kwh", None, from, to).unwrap());
            prop_assert_eq!(a.last_ingested_at(t, "cron").unwrap(), b.last_ingested_at(t, "cron").unwrap());
            let q = Query::new(t, "kwh", Window::Day, "UTC").group_by(["carrier"]);
            prop_assert_eq!(a.query(&q).unwrap(), b.query(&q).unwrap());
        }
        Ok(())
    }

    proptest! {
        /// `ingest_refs` gives exactly what `ingest` (or `ingest_from`) gives — reports, stored
        /// records, rollups and watermarks — through same and re-cut repeats, conflicting
        /// quantities, repeated keys in a batch, a second tenant and retractions.
        #[test]
        fn ingest_refs_equals_ingest(steps in steps()) {
            let (by_refs, by_records) = (engine(), engine());
            for (op, from, to, q, source) in steps {
                if op == 0 {
                    let id = format!("r{from}");
                    prop_assert_eq!(by_refs.retract("t", &id).ok(), by_records.retract("t", &id).ok());
                    continue;
                }
                let batch = batch(op, from, to, q);
                let source = source.then_some("cron");
                let expected = ingest(&by_records, source, &batch);
                let refs: Vec<&UsageRecord> = batch.iter().collect();
                prop_assert_eq!(by_refs.ingest_refs(source, &refs).unwrap(), expected);
            }
            same_state(&by_refs, &by_records)?;
        }

        /// `ingest_if_stored` answers exactly the batches whose `ingest` is all duplicates, with
        /// `ingest`'s report, and changes nothing else (the rest is then ingested the usual way):
        /// the stores, rollups and watermarks stay those of `ingest` alone.
        #[test]
        fn ingest_if_stored_answers_all_duplicate_batches_only(steps in steps()) {
            let (by_refs, by_records) = (engine(), engine());
            for (op, from, to, q, source) in steps {
                if op == 0 {
                    let id = format!("r{from}");
                    prop_assert_eq!(by_refs.retract("t", &id).ok(), by_records.retract("t", &id).ok());
                    continue;
                }
                let batch = batch(op, from, to, q);
                let source = source.then_some("cron");
                let expected = ingest(&by_records, source, &batch);
                let borrowed: Vec<&UsageRecord> = batch.iter().collect();
                let mut pairs = Vec::new();
                let refs = RecordRef::from_records(&borrowed, &mut pairs);
                let all_duplicates = expected.duplicates == batch.len() as u64;
                match by_refs.ingest_if_stored(source, &refs).unwrap() {
                    Some(report) => prop_assert!(all_duplicates && report == expected),
                    None => {
                        prop_assert!(!all_duplicates);
                        prop_assert_eq!(ingest(&by_refs, source, &batch), expected);
                    }
                }
            }
            same_state(&by_refs, &by_records)?;
        }
    }
}
