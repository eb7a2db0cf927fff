//! Revisions: [`Engine::replace`](crate::Engine::replace) (retract and ingest as one atomic
//! change) and the history of replaced versions.
//!
//! History is kept in the store's metadata of the record's tenant, under
//! `history/{length of id}:{id}/{version:010}` (the length keeps the prefix of one id from
//! matching another id that starts with it), each value the replaced record's JSON.

use std::collections::{BTreeMap, HashSet};

use crate::engine::{IngestReport, Inner};
use crate::error::{Error, ErrorKind, Result};
use crate::record::UsageRecord;
use crate::rollup::{Accumulator, BucketState, SUBJECT};
use crate::store::{BucketKey, ChangeSet, Store};

fn history_prefix(id: &str) -> String {
    format!("history/{}:{id}/", id.len())
}

/// The replaced versions of `(tenant, id)`, oldest first.
pub(crate) fn history(store: &dyn Store, tenant: &str, id: &str) -> Result<Vec<UsageRecord>> {
    store
        .meta_prefix(tenant, &history_prefix(id))?
        .into_iter()
        .map(|(_, v)| {
            serde_json::from_str(&v)
                .map_err(|e| Error::new(ErrorKind::Store, format!("A stored record version is corrupt: {e}.")))
        })
        .collect()
}

/// Check `batch` for a replacement: every record valid, each key once. Returns the records by
/// tenant.
fn by_tenant(batch: &[UsageRecord]) -> Result<BTreeMap<&str, Vec<&UsageRecord>>> {
    let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(batch.len());
    let mut out: BTreeMap<&str, Vec<&UsageRecord>> = BTreeMap::new();
    for r in batch {
        r.check().map_err(|e| e.with_record_id(r.id.clone()))?;
        if !seen.insert((r.tenant.as_str(), r.id.as_str())) {
            return Err(Error::invalid_record(format!(
                "Record '{}' of tenant '{}' is given twice in one replacement batch.",
                r.id, r.tenant
            ))
            .with_record_id(r.id.clone()));
        }
        out.entry(r.tenant.as_str()).or_default().push(r);
    }
    Ok(out)
}

/// One attempt of [`Engine::replace`](crate::Engine::replace).
pub(crate) fn replace_once(inner: &mut Inner, batch: &[UsageRecord]) -> Result<IngestReport> {
    let tenants = by_tenant(batch)?;
    let mut report = IngestReport::default();
    let mut new: Vec<&UsageRecord> = Vec::new();
    let mut old: Vec<UsageRecord> = Vec::new();
    for (tenant, recs) in &tenants {
        let ids: Vec<&str> = recs.iter().map(|r| r.id.as_str()).collect();
        for (r, existing) in recs.iter().zip(inner.store.get_records(tenant, &ids)?) {
            match existing {
                Some(e) if e.same_content(r) => report.duplicates += 1,
                Some(e) => {
                    report.replaced += 1;
                    new.push(r);
                    old.push(e);
                }
                None => {
                    report.accepted += 1;
                    new.push(r);
                }
            }
        }
    }
    if new.is_empty() {
        return Ok(report);
    }
    let mut changes = ChangeSet { known_specs: Some(inner.specs.len() as u32), ..ChangeSet::default() };
    let mut revised: Vec<&str> = Vec::new();
    for o in &old {
        let version = inner.store.meta_prefix(&o.tenant, &history_prefix(&o.id))?.len();
        let body = serde_json::to_string(o).map_err(|e| Error::new(ErrorKind::Store, e.to_string()))?;
        changes.meta.push((o.tenant.clone(), format!("{}{version:010}", history_prefix(&o.id)), Some(body)));
        changes.delete.push((o.tenant.clone(), o.id.clone()));
        if !revised.contains(&o.tenant.as_str()) {
            revised.push(&o.tenant);
        }
    }
    for t in revised {
        changes.meta.push(crate::engine::batch::next_revision(inner.store.as_ref(), t)?);
    }
    let recomputed = recompute_buckets(inner, &old, &new, &mut changes)?;
    for tenant in tenants.keys() {
        let mut acc = Accumulator::with_ids(tenant, super::live_specs(&inner.specs))?;
        for r in new.iter().filter(|r| r.tenant == *tenant) {
            acc.add(r)?;
        }
        changes.merge.extend(acc.into_buckets().into_iter().filter(|(k, _, _)| !recomputed.contains(k)));
    }
    changes.insert = new;
    inner.store.apply(&changes)?;
    Ok(report)
}

/// The buckets the replaced versions `old` were in, recomputed from the stored records without
/// them and with the new records `new` that fall in them, as `replace` entries of `changes`.
/// Returns their keys: the new records' deltas to these buckets are already in them.
fn recompute_buckets(
    inner: &Inner,
    old: &[UsageRecord],
    new: &[&UsageRecord],
    changes: &mut ChangeSet<'_>,
) -> Result<HashSet<BucketKey>> {
    let gone: HashSet<(&str, &str)> = old.iter().map(|o| (o.tenant.as_str(), o.id.as_str())).collect();
    let mut done: HashSet<BucketKey> = HashSet::new();
    for o in old {
        for (spec_id, entry) in inner.specs.iter().enumerate() {
            if entry.removed || entry.spec.metric != o.metric || !entry.spec.applies_to(&o.tenant) {
                continue;
            }
            let (start, end) = entry.spec.window.span_secs(o.timestamp.timestamp(), entry.tz)?;
            let group = entry.spec.group_of(o);
            let key = BucketKey {
                tenant: o.tenant.clone(),
                spec: spec_id as u32,
                start,
                group: group.iter().map(|g| g.map(str::to_string)).collect(),
            };
            if done.contains(&key) {
                continue;
            }
            let subject = entry.spec.group_by.iter().any(|d| d == SUBJECT).then_some(o.subject.as_str());
            let unique: Vec<&str> = entry.spec.unique_dims().collect();
            let mut state = BucketState::default();
            let stored = inner.store.records(&o.tenant, &o.metric, subject, start, end)?;
            let kept = stored.iter().filter(|r| !gone.contains(&(r.tenant.as_str(), r.id.as_str())));
            let arriving = new.iter().copied().filter(|r| {
                r.tenant == o.tenant && r.metric == o.metric && (start..end).contains(&r.timestamp.timestamp())
            });
            for r in kept.chain(arriving) {
                if entry.spec.group_of(r) == group {
                    state.add(r, unique.iter().copied())?;
                }
            }
            changes.replace.push((key.clone(), end, Some(state)));
            done.insert(key);
        }
    }
    Ok(done)
}
