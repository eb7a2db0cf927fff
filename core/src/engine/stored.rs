//! Answering a repeat run's batch in place: a batch the probe does not remember (cut differently
//! from the first run) whose records are all stored with the same content is answered "all
//! duplicates" from their content borrowed where it is ([`RecordRef`]: rows of columns, records
//! in a JSON text), compared in place with the stored records ([`Store::compare_stored_refs`]),
//! without building a record per row. Used by [`Engine::ingest_columns`] and
//! [`Engine::ingest_json`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::engine::batch::{self, Digest};
use crate::engine::{Engine, IngestReport};
use crate::error::Result;
use crate::record::{check_parts, RecordRef};
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
