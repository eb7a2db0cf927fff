//! Bucket states computed elsewhere (merged partial states from Spark or Dask, see
//! [`crate::rollup::partial`]) brought into an engine's store, and bills rated from bucket rows.

use std::collections::BTreeMap;

use crate::billing::{Bill, BillRequest};
use crate::error::{Error, ErrorKind, Result};
use crate::record::UsageRecord;
use crate::rollup::{Bucket, BucketState, RollupSpec};
use crate::store::{BucketKey, ChangeSet};
use crate::tariff::Tariff;

use super::Engine;

impl Engine {
    /// Bring bucket states computed outside this engine into its store under `spec` (added, and
    /// backfilled from stored records, when the engine does not maintain it yet), in one atomic
    /// change; queries then read them exactly as if the records had been ingested. Each entry is
    /// `(key, window end in Unix seconds, state)`; the key's `spec` field is ignored (the engine's
    /// id of `spec` is used).
    ///
    /// **Idempotent — an import sets, it does not add.** Entries of the same key within one call
    /// are merged first (so one call may carry un-merged partials); then each key's merged state
    /// **replaces** the bucket the store holds for that key, and buckets the import does not name
    /// are left as they are. Importing the same result twice leaves the store as after the first
    /// import, and importing a recomputed result (a late partition, a corrected file) replaces the
    /// earlier answer for its keys. The flip side: a bucket that also received ingested records is
    /// overwritten by an import of its key — import and ingest into different specs (or time
    /// ranges), and send every partial of a key in one import (the output of
    /// [`partial::merge`](crate::rollup::partial::merge)).
    ///
    /// The records behind imported states are not stored: retraction and the backfill of a spec
    /// added later do not see them (import again under the new spec), and [`Engine::bill`] rates
    /// stored records only — bill imported states with [`bill_from_buckets`].
    ///
    /// Returns the engine's id of `spec`.
    ///
    /// # Errors
    /// As [`Engine::add_spec`]; [`ErrorKind::InvalidQuery`] for a key whose group has another
    /// length than the spec's `group_by`, a bucket of a tenant the spec is not for, an empty window, or two entries of one key with other
    /// window ends; [`ErrorKind::Overflow`] when a merged sum leaves the decimal range (nothing is
    /// stored then); [`ErrorKind::Store`].
    pub fn import_buckets(&self, spec: &RollupSpec, buckets: &[(BucketKey, i64, BucketState)]) -> Result<u32> {
        let mut merged: BTreeMap<BucketKey, (i64, BucketState)> = BTreeMap::new();
        for (key, end, state) in buckets {
            if key.group.len() != spec.group_by.len() {
                return Err(Error::new(
                    ErrorKind::InvalidQuery,
                    format!("A bucket has {} group values; the spec groups by {:?}.", key.group.len(), spec.group_by),
                )
                .with_field("group"));
            }
            if !spec.applies_to(&key.tenant) {
                return Err(Error::new(
                    ErrorKind::InvalidQuery,
                    format!("A bucket of tenant '{}' was given for another tenant's rollup spec.", key.tenant),
                )
                .with_field("tenant"));
            }
            if *end <= key.start {
                return Err(Error::new(ErrorKind::InvalidQuery, format!("The window at {} is empty.", key.start))
                    .with_field("window_end"));
            }
            if state.count == 0 {
                continue;
            }
            let key = BucketKey { spec: 0, ..key.clone() };
            match merged.get_mut(&key) {
                Some((e, _)) if e != end => {
                    return Err(Error::new(
                        ErrorKind::InvalidQuery,
                        format!("Two buckets of window {} end at {e} and {end}.", key.start),
                    )
                    .with_field("window_end"))
                }
                Some((_, s)) => s.merge(state)?,
                None => {
                    merged.insert(key, (*end, state.clone()));
                }
            }
        }
        let mut inner = self.lock();
        let id = Self::add_spec_retrying(&mut inner, spec)?;
        Self::write_call(&mut inner, |inner| {
            let set =
                merged.iter().map(|(k, (end, s))| (BucketKey { spec: id, ..k.clone() }, *end, s.clone())).collect();
            let changes = ChangeSet { set, known_specs: Some(inner.specs.len() as u32), ..ChangeSet::default() };
            inner.store.apply(&changes)?;
            Ok(())
        })?;
        Ok(id)
    }
}

/// Rate `req.subject`'s bill from bucket rows (e.g. finalized partial states) instead of records:
/// each bucket of the subject and `req.metric` whose window starts in the billing period counts
/// as one usage of its `sum` at its window start. Exact for every charge kind when the buckets
/// are fine enough:
///
/// * `fixed`, `minimum`, `per_unit`, `graduated`, `volume`, `package`, `percentage`: any window
///   that does not straddle the period's bounds (daily or monthly buckets in the bill's zone);
/// * `time_of_use` and `allowance` (deducted in time order): windows that never straddle a TOU
///   period boundary — hourly (or 15-minute, for quarter-hour schedules) buckets in the tariff's zone;
/// * `demand`: windows no longer than, and aligned to, the charge's `interval_minutes` (hourly
///   buckets for the default 60, `minutes:15` for 15-minute demand).
///
/// Charges that name another metric need that metric's buckets in `buckets` too.
///
/// # Errors
/// As [`Tariff::bill`]; [`ErrorKind::InvalidQuery`] when a bucket of the subject is not grouped
/// by subject (`subject` is `None` on every bucket: roll up with `group_by = ["subject"]`).
pub fn bill_from_buckets(tariff: &Tariff, req: &BillRequest, buckets: &[Bucket]) -> Result<Bill> {
    if !buckets.is_empty() && buckets.iter().all(|b| b.subject.is_none()) {
        return Err(Error::new(
            ErrorKind::InvalidQuery,
            "Bills from buckets need buckets grouped by subject (group_by = [\"subject\"]).",
        )
        .with_field("group_by"));
    }
    let metrics = tariff.metrics(&req.metric);
    let records = buckets
        .iter()
        .filter(|b| b.subject.as_deref() == Some(req.subject.as_str()) && metrics.contains(&b.metric))
        .filter(|b| b.window_start >= req.period_start && b.window_start < req.period_end)
        .enumerate()
        .map(|(i, b)| {
            let mut r = UsageRecord::new(
                req.tenant.clone(),
                format!("bucket-{i}"),
                req.subject.clone(),
                b.metric.clone(),
                b.sum,
                b.window_start,
            );
            r.dimensions = b.group.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
            r
        })
        .collect::<Vec<_>>();
    let mut records = records;
    records.sort_by_key(|r| r.timestamp);
    tariff.bill(req, &records)
}
