//! [`Engine::ingest`](crate::Engine::ingest) as named stages. One attempt runs:
//!
//! 1. **probe** — a batch the idempotency probe remembers is answered from one metadata read
//!    ([`crate::engine::batch`]);
//! 2. **screen** — each record's own checks, then in-batch idempotency: an identical repeat waits
//!    for the outcome of its first copy, a different record under the same key is a conflict;
//! 3. **against the store** — per tenant, stored duplicates and conflicts, then validation (a
//!    `reject` finding rejects, a `flag` finding marks a flagged copy), the overflow guard of the
//!    careful pass, and the rollup deltas;
//! 4. **settle repeats** — a repeat shares its first copy's outcome;
//! 5. **plan metadata** — the probe key (only when nothing was rejected) and the source's
//!    watermark, in the same change;
//! 6. **apply** — one [`ChangeSet`] to the store;
//! 7. **late records** — buckets already closed, or windows ended before the last
//!    `close_windows`, give `LateRecord` events (and the new ones are marked closed).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use crate::error::{Error, Result};
use crate::notify::Event;
use crate::record::UsageRecord;
use crate::rollup::{dim_value, Accumulator};
use crate::store::{ChangeSet, Store};
use crate::vee::Validator;

use super::{
    conflict, spec_entry, to_bucket, validate_one, Engine, IngestOutcome, IngestReport, Inner, OverflowGuard,
    Rejection, CLOSED_UNTIL,
};

/// One ingest attempt (see the module docs for the stages). With `careful`, each new record is
/// first checked against the stored buckets it adds to, and one that would overflow a sum is
/// rejected instead of failing the batch. With `source`, the source's watermark moves in the same
/// change. `meta` entries (the register tracker's state) are written in the same change.
/// `digest` is the batch's probe digest (`None`: not probed; a call with `meta` is not, so that
/// they are always written).
pub(super) fn ingest_once(
    inner: &mut Inner,
    batch: &[UsageRecord],
    careful: bool,
    source: Option<&str>,
    meta: &[(String, String, Option<String>)],
    digest: Option<&crate::engine::batch::Digest>,
) -> Result<IngestOutcome> {
    let probe = digest.map(|d| crate::engine::batch::probe_key(inner.store.as_ref(), d)).transpose()?;
    if let Some(report) = Engine::probe_hit(inner, batch, probe.as_ref(), source)? {
        return Ok((report, Vec::new(), Vec::new()));
    }
    let mut run = Run::new(batch);
    let screened = run.screen();
    let mut changes = ChangeSet { known_specs: Some(inner.specs.len() as u32), ..ChangeSet::default() };
    let accepted = run.against_store(inner, &screened.by_tenant, careful, &mut changes)?;
    run.settle_repeats(&screened.repeats);
    run.report.accepted = accepted.len() as u64;
    changes.insert = accepted.iter().map(AsRef::as_ref).collect();
    run.plan_meta(inner.store.as_ref(), &mut changes, probe, source)?;
    changes.meta.extend(meta.iter().cloned());
    let closed_until = closed_until(inner.store.as_ref(), screened.by_tenant.keys().copied())?;
    let late = inner.store.apply(&changes)?;
    run.late_records(inner, &changes, &late, &closed_until)?;
    Ok((run.report, run.events, run.validated))
}

/// The state of one attempt: the report and events so far, the validated records (batch index,
/// range of their findings in the report) and the errors of first copies (for their repeats).
struct Run<'b> {
    batch: &'b [UsageRecord],
    report: IngestReport,
    events: Vec<Event>,
    validated: Vec<(usize, Range<usize>)>,
    rejected_first: HashMap<usize, Error>,
}

/// What screening leaves: the first copies by tenant (batch indexes, in order) and the identical
/// repeats as `(repeat, first)`.
struct Screened<'b> {
    by_tenant: BTreeMap<&'b str, Vec<usize>>,
    repeats: Vec<(usize, usize)>,
}

impl<'b> Run<'b> {
    fn new(batch: &'b [UsageRecord]) -> Self {
        Run {
            batch,
            report: IngestReport::default(),
            events: Vec::new(),
            validated: Vec::new(),
            rejected_first: HashMap::new(),
        }
    }

    /// Reject `r` with `e`: a `RecordRejected` event and a line of the report.
    fn reject(&mut self, r: &UsageRecord, e: &Error) {
        self.events.push(Event::RecordRejected {
            tenant: r.tenant.clone(),
            id: r.id.clone(),
            kind: e.kind(),
            reason: e.message().to_string(),
        });
        self.report.rejected.push(Rejection {
            tenant: r.tenant.clone(),
            id: r.id.clone(),
            kind: e.kind(),
            reason: e.message().to_string(),
        });
    }

    /// Reject the first copy `i` of a key (its repeats get the same error).
    fn reject_first(&mut self, i: usize, r: &UsageRecord, e: Error) {
        self.reject(r, &e);
        self.rejected_first.insert(i, e);
    }

    /// Stage 2: each record's own checks and in-batch idempotency.
    fn screen(&mut self) -> Screened<'b> {
        let batch = self.batch;
        // FxHash: the map lives for one batch (bounded by its size), and SipHash was a tenth of a
        // duplicate's cost.
        let mut first: rustc_hash::FxHashMap<(&str, &str), usize> =
            rustc_hash::FxHashMap::with_capacity_and_hasher(batch.len(), rustc_hash::FxBuildHasher);
        let mut screened = Screened { by_tenant: BTreeMap::new(), repeats: Vec::new() };
        for (i, r) in batch.iter().enumerate() {
            if let Err(e) = r.check() {
                self.reject(r, &e);
                continue;
            }
            match first.entry((r.tenant.as_str(), r.id.as_str())) {
                std::collections::hash_map::Entry::Occupied(o) => {
                    if batch[*o.get()].same_content(r) {
                        screened.repeats.push((i, *o.get()));
                    } else {
                        self.reject(r, &conflict(r));
                    }
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(i);
                    screened.by_tenant.entry(r.tenant.as_str()).or_default().push(i);
                }
            }
        }
        screened
    }

    /// Stage 3: per tenant, the first copies against the stored records; the admitted records
    /// (a flagged copy where validation flagged one) and their rollup deltas in `changes.merge`.
    fn against_store(
        &mut self,
        inner: &mut Inner,
        by_tenant: &BTreeMap<&'b str, Vec<usize>>,
        careful: bool,
        changes: &mut ChangeSet<'_>,
    ) -> Result<Vec<Cow<'b, UsageRecord>>> {
        let Inner { store, specs, validator } = inner;
        if let Some(v) = validator.as_mut() {
            v.begin();
        }
        let mut guard = careful.then(|| OverflowGuard::new(specs));
        let mut accepted = Vec::new();
        for (tenant, idx) in by_tenant {
            let firsts: Vec<&UsageRecord> = idx.iter().map(|&i| &self.batch[i]).collect();
            let stored = store.compare_stored(tenant, &firsts)?;
            let mut acc = Accumulator::with_ids(tenant, super::live_specs(specs))?;
            for (&i, existing) in idx.iter().zip(stored) {
                if let Some(r) = self.admit(i, existing, validator.as_mut(), guard.as_mut(), store.as_ref())? {
                    acc.add(&r)?;
                    accepted.push(r);
                }
            }
            changes.merge.extend(acc.into_buckets());
        }
        Ok(accepted)
    }

    /// The first copy `i` against its stored record (`existing`: `Some(same content)` when stored;
    /// see [`Store::compare_stored`]): a duplicate, a conflict, or new —
    /// then validated and (in the careful pass) checked for overflow. `Some` when admitted.
    fn admit(
        &mut self,
        i: usize,
        existing: Option<bool>,
        validator: Option<&mut Validator>,
        guard: Option<&mut OverflowGuard<'_>>,
        store: &dyn Store,
    ) -> Result<Option<Cow<'b, UsageRecord>>> {
        let r: &'b UsageRecord = &self.batch[i];
        match existing {
            Some(true) => {
                self.report.duplicates += 1;
                return Ok(None);
            }
            Some(false) => {
                self.reject_first(i, r, conflict(r));
                return Ok(None);
            }
            None => {}
        }
        let r = match validator.filter(|v| v.covers(&r.metric)) {
            None => Cow::Borrowed(r),
            Some(v) => match validate_one(v, r, &mut self.report.findings, &mut self.events, i, &mut self.validated) {
                Err(e) => {
                    self.reject_first(i, r, e);
                    return Ok(None);
                }
                Ok(r) => r,
            },
        };
        if let Some(g) = guard {
            if let Some(e) = g.admit(store, &r)? {
                self.reject_first(i, &r, e);
                return Ok(None);
            }
        }
        Ok(Some(r))
    }

    /// Stage 4: a repeat shares the outcome of its first copy.
    fn settle_repeats(&mut self, repeats: &[(usize, usize)]) {
        for &(repeat, first) in repeats {
            match self.rejected_first.get(&first).cloned() {
                Some(e) => self.reject(&self.batch[repeat], &e),
                None => self.report.duplicates += 1,
            }
        }
    }

    /// Stage 5: the probe key (when nothing was rejected) and the source's watermark over the
    /// records not rejected.
    fn plan_meta(
        &self,
        store: &dyn Store,
        changes: &mut ChangeSet<'_>,
        probe: Option<(String, String)>,
        source: Option<&str>,
    ) -> Result<()> {
        if self.report.rejected.is_empty() {
            if let Some((tenant, key)) = probe {
                changes.meta.push((tenant, key, Some(self.batch.len().to_string())));
            }
        }
        if let Some(source) = source {
            let rejected: std::collections::HashSet<(&str, &str)> =
                self.report.rejected.iter().map(|r| (r.tenant.as_str(), r.id.as_str())).collect();
            let kept = self.batch.iter().filter(|r| !rejected.contains(&(r.tenant.as_str(), r.id.as_str())));
            changes.meta.extend(crate::engine::batch::watermark_changes(store, source, kept)?);
        }
        Ok(())
    }

    /// Stage 7: late records — their buckets were closed already, or their window ended before the
    /// last close (a new bucket there is closed at once; it never gets `WindowClosed`).
    fn late_records(
        &mut self,
        inner: &mut Inner,
        changes: &ChangeSet<'_>,
        late: &[bool],
        closed_until: &HashMap<&str, i64>,
    ) -> Result<()> {
        let mut newly_closed = Vec::new();
        for ((key, end, _), &was_closed) in changes.merge.iter().zip(late) {
            let window_passed = closed_until.get(key.tenant.as_str()).is_some_and(|c| *end <= *c);
            if !was_closed && !window_passed {
                continue;
            }
            if !was_closed {
                newly_closed.push(key.clone());
            }
            let entry = spec_entry(&inner.specs, key.spec)?;
            let Some(stored) = inner.store.bucket(key)? else { continue };
            let bucket = to_bucket(&entry.spec, &stored.key, *end, &stored.state)?;
            let spec = &entry.spec;
            for r in &changes.insert {
                let t = r.timestamp.timestamp();
                if r.tenant == key.tenant
                    && r.metric == spec.metric
                    && (key.start..*end).contains(&t)
                    && spec.group_by.iter().zip(&key.group).all(|(d, v)| dim_value(r, d) == v.as_deref())
                {
                    self.events.push(Event::LateRecord {
                        tenant: r.tenant.clone(),
                        id: r.id.clone(),
                        window: spec.window.to_string(),
                        bucket: bucket.clone(),
                    });
                }
            }
        }
        if !newly_closed.is_empty() {
            inner.store.mark_closed(&newly_closed)?;
        }
        Ok(())
    }
}

/// Stage 6's context: the instant up to which `close_windows` closed each tenant's windows before
/// this batch (a new bucket there is late).
fn closed_until<'t>(store: &dyn Store, tenants: impl Iterator<Item = &'t str>) -> Result<HashMap<&'t str, i64>> {
    let mut closed = HashMap::new();
    for tenant in tenants {
        if let Some(v) = store.meta(tenant, CLOSED_UNTIL)? {
            closed.insert(tenant, v.parse().unwrap_or(i64::MIN));
        }
    }
    Ok(closed)
}
