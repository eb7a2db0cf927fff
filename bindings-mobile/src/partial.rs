//! Partial rollup states (scale-out; docs/scale-out.md): `partialRollup`, `mergePartials`,
//! `finalizePartials` and `Engine.importPartials` — conversion only; the core's
//! `meterkit::rollup::partial` does the work. States cross as their JSON form (one object of
//! schema columns, or an array of them), specs as the core's rollup-spec JSON (unknown keys refused).

use meterkit::rollup::partial::{self, PartialRollup};
use meterkit::RollupSpec;

use crate::engine::Engine;
use crate::error::MeterkitError;
use crate::types::{buckets_from_core, parse_json, to_json, Bucket, UsageRecord};

fn spec_of(spec_json: &str) -> Result<RollupSpec, MeterkitError> {
    parse_json(spec_json, "rollup spec")
}

fn states_of(partials_json: &str, spec: &RollupSpec) -> Result<Vec<partial::Partial>, MeterkitError> {
    let value: serde_json::Value = parse_json(partials_json, "partial states")?;
    Ok(partial::from_json(&value, spec)?)
}

/// The partial states of one partition's `records` under `spec_json` (a rollup spec as JSON),
/// as the partial-state JSON object. A repeated `(tenant, id)` counts once (same content).
/// Errors: `Parse` for the spec, `InvalidRecord`, `Conflict` for a repeated key with other
/// content.
#[uniffi::export]
pub fn partial_rollup(records: Vec<UsageRecord>, spec_json: String) -> Result<String, MeterkitError> {
    let spec = spec_of(&spec_json)?;
    let mut rollup = PartialRollup::new(&spec)?;
    for r in &records {
        rollup.add(r)?;
    }
    to_json(&partial::to_json(&rollup.finish(), &spec)?)
}

/// Merge partial states of `spec_json` (one JSON object or an array of them, from any
/// partitions) into one row per key. Errors: `Parse` naming the column for states of another
/// schema version or shape, or an unknown column.
#[uniffi::export]
pub fn merge_partials(partials_json: String, spec_json: String) -> Result<String, MeterkitError> {
    let spec = spec_of(&spec_json)?;
    let merged = partial::merge(states_of(&partials_json, &spec)?)?;
    to_json(&partial::to_json(&merged, &spec)?)
}

/// The buckets of `tenant` (default: the only tenant in the states) from partial states, merged
/// first: what `Engine.query` answers for the same records. Errors: as [`merge_partials`];
/// `InvalidQuery` when the states hold several tenants and none is named.
#[uniffi::export(default(tenant = None))]
pub fn finalize_partials(
    partials_json: String,
    spec_json: String,
    tenant: Option<String>,
) -> Result<Vec<Bucket>, MeterkitError> {
    let spec = spec_of(&spec_json)?;
    let rows = partial::finalize(&states_of(&partials_json, &spec)?, &spec)?;
    Ok(buckets_from_core(partial::buckets_of_tenant(rows, tenant.as_deref())?))
}

#[uniffi::export]
impl Engine {
    /// Import partial states (merged first) into this engine's store (`Engine::import_buckets`):
    /// each key's state is **set**, so importing the same states twice changes nothing. Returns
    /// the spec's id. Errors: as [`merge_partials`]; `Store`.
    pub fn import_partials(&self, partials_json: String, spec_json: String) -> Result<i64, MeterkitError> {
        let spec = spec_of(&spec_json)?;
        let buckets: Vec<_> = states_of(&partials_json, &spec)?.into_iter().map(|p| (p.key, p.end, p.state)).collect();
        Ok(i64::from(self.engine()?.import_buckets(&spec, &buckets)?))
    }
}
