//! The JSON-text ingest path: [`Engine::ingest_json`], for a host that hands a batch over as JSON
//! text (Node's `ingest` serialises its objects with `JSON.stringify`).
//!
//! A repeat run re-sends the same text, and reading it costs more than the duplicate check: a
//! text of 10,000 records is 2 MB to parse into 10,000 owned records before the batch probe
//! ([`crate::engine::batch`]) can digest them. So the text is remembered as well: after a batch
//! that the batch probe remembers, the BLAKE3 hash of its text is stored as an **alias** of its probe
//! digest, with its record count and greatest timestamp. The same text again is answered from
//! the alias and the probe key, without reading it.
//!
//! The alias is a fact about the text alone (the records [`read_records_fast`] reads from it,
//! which are always the same), so it never goes stale. Whether those records are still stored is
//! the probe key's question, and the probe key carries the tenant's revision (bumped by every
//! retraction or replacement). The alias is kept in the metadata of the tenant `""`, which no
//! record can have: the text's tenant is not known before it is read. Only a text that the core's
//! own reader reads gets an alias.
//!
//! A text never sent before whose records are all stored (a repeat run that cuts its batches
//! differently) is read without building records: its records' content is borrowed from the text
//! ([`read_record_refs`]) and compared in place with the stored records
//! ([`Store::compare_stored_refs`](crate::store::Store::compare_stored_refs)). Any record new, different or invalid sends the text down the
//! record path, whose report and errors are those of [`Engine::ingest`].

use chrono::{DateTime, Utc};

use crate::engine::batch::{self, Digest};
use crate::engine::stored::all_stored;
use crate::engine::{Engine, IngestReport};
use crate::error::{Error, ErrorKind, Result};
use crate::record::{read_first_record_ref, read_record_refs, read_records_fast, RecordRef, UsageRecord};
use crate::store::ChangeSet;
use crate::time::{fmt_ts, parse_ts};

/// The metadata "tenant" holding the text aliases (no record's tenant is empty).
const ALIASES: &str = "";

/// What an alias remembers of a text: its probe digest, its record count and the greatest
/// timestamp of its records (for a source's watermark).
struct Alias {
    digest: Digest,
    len: usize,
    latest: DateTime<Utc>,
}

impl Alias {
    fn of(digest: Digest, times: impl ExactSizeIterator<Item = DateTime<Utc>>) -> Option<Self> {
        let len = times.len();
        Some(Alias { digest, len, latest: times.max()? })
    }

    /// `tenant \n digest \n len \n latest` (the digest: the hex SHA-256 of the records, or `t` and the text's hash).
    fn encode(&self) -> String {
        let (tenant, hex) = &self.digest;
        format!("{tenant}\n{hex}\n{}\n{}", self.len, fmt_ts(self.latest))
    }

    fn decode(value: &str) -> Result<Self> {
        let corrupt = || Error::new(ErrorKind::Store, "A stored batch alias is corrupt.");
        let mut parts = value.split('\n');
        let mut next = || parts.next().ok_or_else(corrupt);
        let (tenant, hex, len, latest) = (next()?, next()?, next()?, next()?);
        Ok(Alias {
            digest: (tenant.to_string(), hex.to_string()),
            len: len.parse().map_err(|_| corrupt())?,
            latest: parse_ts(latest).map_err(|_| corrupt())?,
        })
    }
}

/// The probe digest of a text's batch answered in place: the text's own hash (from its alias
/// `key`; the text determines its records), marked `t` — so that the records need no second
/// hash. The rules of the batch probe: one tenant, at least [`batch::MIN_PROBED_BATCH`] records.
fn text_digest(refs: &[RecordRef<'_>], key: &str) -> Option<Digest> {
    let first = refs.first()?;
    if refs.len() < batch::MIN_PROBED_BATCH || refs.iter().any(|r| r.tenant != first.tenant) {
        return None;
    }
    Some((first.tenant.to_string(), format!("t{}", key.strip_prefix("text/").unwrap_or(key))))
}

/// The metadata key of the alias of `text`: `text/b3/{blake3}` (BLAKE3, a 256-bit cryptographic
/// hash like SHA-256, at several times its speed: every text ingest hashes its whole text).
/// Aliases stored as `text/{sha256}` by earlier versions are no longer looked up: such a text is
/// read once more and gets its new alias.
fn alias_key(text: &str) -> String {
    format!("text/b3/{}", batch::hex(blake3::hash(text.as_bytes()).as_bytes()))
}

impl Engine {
    /// Ingest a batch of usage records given as JSON text — an array of record objects, or one
    /// record object, in the record's JSON shape ([`UsageRecord`]) — with the source's watermark
    /// moved as [`Engine::ingest_from`] moves it when `source` is given. The text is read with
    /// [`read_records_fast`]; a text it cannot read is read with `fallback` (the host's careful
    /// reader, which names the error). The outcome is exactly that of [`Engine::ingest`] (or
    /// [`Engine::ingest_from`]) of the records read.
    ///
    /// A repeat of a text whose batch the batch probe remembers (see the module
    /// `engine::batch`) is answered "all duplicates" without reading the text: from its BLAKE3 hash
    /// and three metadata reads (see the module `engine::text`).
    ///
    /// ```
    /// use meterkit::Engine;
    /// let engine = Engine::in_memory();
    /// let text: String = format!("[{}]", (0..100).map(|i| format!(
    ///     r#"{{"id":"r{i}","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z"}}"#
    /// )).collect::<Vec<_>>().join(","));
    /// let careful = |t: &str| -> meterkit::Result<Vec<meterkit::UsageRecord>> {
    ///     serde_json::from_str(t).map_err(|e| meterkit::Error::new(meterkit::ErrorKind::Parse, e.to_string()))
    /// };
    /// assert_eq!(engine.ingest_json(None, &text, careful)?.accepted, 100);
    /// assert_eq!(engine.ingest_json(None, &text, careful)?.duplicates, 100);
    /// # Ok::<(), meterkit::Error>(())
    /// ```
    ///
    /// # Errors
    /// What `fallback` returns for a text [`read_records_fast`] cannot read; as
    /// [`Engine::ingest_from`] (an invalid source name) and [`Engine::ingest`].
    pub fn ingest_json(
        &self,
        source: Option<&str>,
        text: &str,
        fallback: impl FnOnce(&str) -> Result<Vec<UsageRecord>>,
    ) -> Result<IngestReport> {
        if let Some(source) = source {
            batch::check_source(source)?;
        }
        let key = alias_key(text);
        if let Some(report) = self.remembered_text(source, &key)? {
            return Ok(report);
        }
        if let Some(report) = self.stored_text(source, text, &key)? {
            return Ok(report);
        }
        let Some(records) = read_records_fast(text) else {
            return self.ingest_guarded(self.lock(), source, &fallback(text)?, &[], None);
        };
        let digest = batch::digest(&records);
        let report = self.ingest_guarded(self.lock(), source, &records, &[], digest.clone())?;
        if let Some(alias) = digest
            .filter(|_| report.rejected.is_empty())
            .and_then(|d| Alias::of(d, records.iter().map(|r| r.timestamp)))
        {
            self.remember_text(&key, &alias)?;
        }
        Ok(report)
    }

    /// The all-duplicates report of a text whose records are all stored with the same content
    /// (a repeat run that cuts its batches differently), read without building records
    /// ([`read_record_refs`]); the probe then remembers the batch, and the text its alias.
    /// `None` when a record is new or differs, or the text is not read that way.
    fn stored_text(&self, source: Option<&str>, text: &str, key: &str) -> Result<Option<IngestReport>> {
        // The first record decides whether to read them all: in a first run it is new.
        let Some(first) = read_first_record_ref(text) else { return Ok(None) };
        if !all_stored(self.lock().store.as_ref(), &first.refs())? {
            return Ok(None);
        }
        let Some(batch) = read_record_refs(text) else { return Ok(None) };
        let refs = batch.refs();
        let digest = text_digest(&refs, key);
        let report = self.stored_refs(&refs, digest.as_ref(), source)?;
        if report.is_some() {
            if let Some(alias) = digest.and_then(|d| Alias::of(d, refs.iter().map(|r| r.timestamp))) {
                self.remember_text(key, &alias)?;
            }
        }
        Ok(report)
    }

    /// The all-duplicates report of a text whose alias is stored and whose batch the probe still
    /// remembers (with `source`, its watermark moved); `None` otherwise.
    fn remembered_text(&self, source: Option<&str>, key: &str) -> Result<Option<IngestReport>> {
        Self::write_call(&mut self.lock(), |inner| {
            let Some(value) = inner.store.meta(ALIASES, key)? else { return Ok(None) };
            let alias = Alias::decode(&value)?;
            let (tenant, probe) = batch::probe_key(inner.store.as_ref(), &alias.digest)?;
            if inner.store.meta(&tenant, &probe)?.is_none() {
                return Ok(None);
            }
            if let Some(source) = source {
                let meta = batch::watermark_change(inner.store.as_ref(), source, &tenant, alias.latest)?;
                if !meta.is_empty() {
                    inner.store.apply(&ChangeSet { meta, ..ChangeSet::default() })?;
                }
            }
            Ok(Some(IngestReport { duplicates: alias.len as u64, ..IngestReport::default() }))
        })
    }

    /// Store the alias `key` of a text (in its own change: it is a fact about the text, true
    /// whatever happens to the batch).
    fn remember_text(&self, key: &str, alias: &Alias) -> Result<()> {
        Self::write_call(&mut self.lock(), |inner| {
            let meta = vec![(ALIASES.to_string(), key.to_string(), Some(alias.encode()))];
            inner.store.apply(&ChangeSet { meta, ..ChangeSet::default() })?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    use crate::engine::Engine;
    use crate::error::{Error, ErrorKind, Result};
    use crate::record::UsageRecord;
    use crate::rollup::RollupSpec;
    use crate::time::Window;

    fn engine() -> Engine {
        let e = Engine::in_memory();
        e.add_spec(RollupSpec::new("kwh", Window::Day, "UTC").unwrap().group_by(["carrier"])).unwrap();
        e
    }

    fn careful(text: &str) -> Result<Vec<UsageRecord>> {
        crate::json::check_json(text)?;
        serde_json::from_str(text).map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))
    }

    /// A batch text of records `ids` (quantity `q` each, the carrier alternating).
    fn text(ids: impl IntoIterator<Item = usize>, q: &str) -> String {
        let records: Vec<String> = ids
            .into_iter()
            .map(|i| {
                format!(
                    r#"{{"id":"r{i}","tenant":"t","subject":"s{}","metric":"kwh","quantity":"{q}","timestamp":"2024-03-{:02}T10:00:00Z","dimensions":{{"carrier":"{}"}}}}"#,
                    i % 3,
                    1 + i % 28,
                    if i % 2 == 0 { "a" } else { "b" }
                )
            })
            .collect();
        format!("[{}]", records.join(","))
    }

    fn at(day: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2024-03-{day:02}T10:00:00Z")).unwrap().to_utc()
    }

    #[test]
    fn a_repeated_text_is_answered_from_its_alias_until_a_retraction() {
        let e = engine();
        let batch = text(0..100, "1.5");
        assert_eq!(e.ingest_json(None, &batch, careful).unwrap().accepted, 100);
        let again = e.ingest_json(None, &batch, careful).unwrap();
        assert_eq!((again.accepted, again.duplicates, again.rejected.len()), (0, 100, 0));
        // The alias is stored, under the tenant no record has.
        assert_eq!(e.lock().store.meta_prefix("", "text/").unwrap().len(), 1);
        // After a retraction the text is read again: the retracted record is new again.
        e.retract("t", "r7").unwrap();
        let after = e.ingest_json(None, &batch, careful).unwrap();
        assert_eq!((after.accepted, after.duplicates), (1, 99));
        assert_eq!(e.ingest_json(None, &batch, careful).unwrap().duplicates, 100);
    }

    #[test]
    fn a_re_cut_text_of_stored_records_is_answered_in_place_and_remembered() {
        let e = engine();
        e.ingest_json(None, &text(0..200, "1.5"), careful).unwrap();
        let inner = text(50..150, "1.50");
        let again = e.ingest_json(Some("cron"), &inner, careful).unwrap();
        assert_eq!((again.accepted, again.duplicates, again.rejected.len()), (0, 100, 0));
        assert_eq!(e.last_ingested_at("t", "cron").unwrap(), Some(at(28)));
        // Its alias and probe key are stored: two texts by now.
        assert_eq!(e.lock().store.meta_prefix("", "text/").unwrap().len(), 2);
        // One record changed, one new: the record path reports them.
        let changed = text(150..250, "1.5").replace(
            r#""id":"r160","tenant":"t","subject":"s1","metric":"kwh","quantity":"1.5""#,
            r#""id":"r160","tenant":"t","subject":"s1","metric":"kwh","quantity":"2""#,
        );
        let r = e.ingest_json(None, &text(100..201, "1.5"), careful).unwrap();
        assert_eq!((r.accepted, r.duplicates), (1, 100));
        let r = e.ingest_json(None, &changed, careful).unwrap();
        assert_eq!((r.accepted, r.duplicates, r.rejected.len()), (49, 50, 1));
        assert_eq!(r.rejected[0].id, "r160");
    }

    #[test]
    fn an_alias_hit_moves_the_source_watermark() {
        let e = engine();
        let batch = text(0..100, "2");
        e.ingest_json(Some("first"), &batch, careful).unwrap();
        assert_eq!(e.last_ingested_at("t", "second").unwrap(), None);
        let hit = e.ingest_json(Some("second"), &batch, careful).unwrap();
        assert_eq!(hit.duplicates, 100);
        assert_eq!(e.last_ingested_at("t", "second").unwrap(), Some(at(28)));
        assert_eq!(e.last_ingested_at("t", "first").unwrap(), Some(at(28)));
        let bad = e.ingest_json(Some(""), &batch, careful).unwrap_err();
        assert_eq!((bad.kind(), bad.field()), (ErrorKind::InvalidQuery, Some("source")));
    }

    #[test]
    fn a_text_the_fast_reader_refuses_goes_to_the_fallback_and_gets_no_alias() {
        let e = engine();
        let repeated = r#"[{"id":"r1","id":"r2","tenant":"t","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z"}]"#;
        let err = e.ingest_json(None, repeated, careful).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Parse);
        let fallback = |_: &str| Err(Error::new(ErrorKind::Parse, "the host's own message"));
        assert_eq!(e.ingest_json(None, "[1]", fallback).unwrap_err().message(), "the host's own message");
        assert!(e.lock().store.meta_prefix("", "text/").unwrap().is_empty());
    }

    #[test]
    fn a_batch_with_a_conflict_gets_no_alias() {
        let e = engine();
        e.ingest_json(None, &text(0..1, "1"), careful).unwrap();
        let batch = text(0..100, "2");
        let first = e.ingest_json(None, &batch, careful).unwrap();
        assert_eq!((first.accepted, first.rejected.len()), (99, 1));
        let again = e.ingest_json(None, &batch, careful).unwrap();
        assert_eq!((again.duplicates, again.rejected.len()), (99, 1));
        assert!(e.lock().store.meta_prefix("", "text/").unwrap().is_empty());
    }

    proptest! {
        /// `ingest_json` of texts gives exactly what `ingest` of their records gives — reports,
        /// stored records and rollups — through repeats, overlapping texts, conflicting
        /// quantities and retractions (a few texts, so that most repeat).
        #[test]
        fn ingest_json_equals_ingest(steps in proptest::collection::vec(
            (0usize..4, prop::sample::select(vec![0usize, 10, 30]), prop::sample::select(vec![90usize, 120]),
             prop_oneof![Just("1"), Just("1.0"), Just("2")]), 1..12)) {
            let (by_text, by_records) = (engine(), engine());
            for (op, from, to, q) in steps {
                if op == 0 {
                    let id = format!("r{from}");
                    prop_assert_eq!(by_text.retract("t", &id).ok(), by_records.retract("t", &id).ok());
                    continue;
                }
                let batch = text(from..to, q);
                let expected = by_records.ingest(&careful(&batch).unwrap()).unwrap();
                prop_assert_eq!(by_text.ingest_json(None, &batch, careful).unwrap(), expected);
            }
            let (from, to) = (at(1), at(29));
            prop_assert_eq!(by_text.records("t", "kwh", None, from, to).unwrap(), by_records.records("t", "kwh", None, from, to).unwrap());
            let q = crate::engine::Query::new("t", "kwh", Window::Day, "UTC").group_by(["carrier"]);
            prop_assert_eq!(by_text.query(&q).unwrap(), by_records.query(&q).unwrap());
        }
    }
}
