//! Partial rollup states (scale-out): `partialRollup` over the usage columns `rollupColumns`
//! takes, `mergePartials`, `finalizePartials` and `Engine.importPartials` — conversion only; the
//! core's `meterkit::rollup::partial` does the work. Partial states cross as their JSON form
//! (`meterkit::rollup::partial::columns_to_json`: one object of schema columns, `latest_ts` as
//! strings).

use meterkit::record::Quality;
use meterkit::rollup::partial::{self, ColumnarPartial};
use meterkit::{Bucket, Error as CoreError, ErrorKind, RollupSpec};
use napi::bindgen_prelude::Unknown;
use napi::Env;
use napi_derive::napi;

use crate::columns::{self, UsageColumns};
use crate::convert::{core, core_raw, from_json, from_json_raw, guard, js, js_raw, json_text, Js};

/// Partial states of one partition's usage columns under `spec` (the core's `ColumnarPartial`):
/// one row per tenant, window and group, as the partial-state JSON object (`PartialStates`;
/// schema in docs/scale-out.md). `quality`, when given, has one entry per row (`"actual"`,
/// `"flagged"`, `"estimated"`, `null` = actual). A repeated `(tenant, id)` counts once (same
/// content) or throws `E_CONFLICT`; rows of other metrics are skipped. Throws `E_INVALID_RECORD`
/// for a bad row (field, line, record id), `E_PARSE` for unreadable columns.
#[napi(
    catch_unwind,
    ts_args_type = "columns: UsageColumns, spec: RollupSpec, quality?: Array<Quality | null>",
    ts_return_type = "PartialStates"
)]
pub fn partial_rollup(
    env: Env,
    columns: UsageColumns,
    spec: Unknown<'_>,
    quality: Option<Vec<Option<String>>>,
) -> napi::Result<Js> {
    let spec = json_text(env, spec)?;
    guard(env, || {
        let spec: RollupSpec = core(env, from_json(&spec.0, "rollup spec"))?;
        let qualities = core(env, quality.map(|q| qualities(&q)).transpose())?;
        let parts = columns::read(env, columns).and_then(|c| {
            c.with_batch(|batch| {
                let mut p = ColumnarPartial::new(&spec)?;
                p.add(batch, qualities.as_deref())?;
                p.finish()
            })
        });
        let parts = core_raw(env, parts)?;
        core_raw(env, partial::to_json(&parts, &spec)).and_then(|v| js_raw(env, &v))
    })
}

/// Merge partial states of `spec` (one `PartialStates` object or an array of them, from any
/// partitions, in any order and grouping) into one row per key, ordered by key. Throws `E_PARSE`
/// naming the column for states of another schema version or shape.
#[napi(
    catch_unwind,
    ts_args_type = "partials: PartialStates | PartialStates[], spec: RollupSpec",
    ts_return_type = "PartialStates"
)]
pub fn merge_partials(env: Env, partials: Unknown<'_>, spec: Unknown<'_>) -> napi::Result<Js> {
    let (partials, spec) = (json_text(env, partials)?, json_text(env, spec)?);
    guard(env, || {
        let spec: RollupSpec = core(env, from_json(&spec.0, "rollup spec"))?;
        let merged = read_all(&partials.0, &spec).and_then(partial::merge);
        let merged = core_raw(env, merged)?;
        core_raw(env, partial::to_json(&merged, &spec)).and_then(|v| js_raw(env, &v))
    })
}

/// The buckets of `tenant` (default: the only tenant in the states) from partial states of
/// `spec`, merged first: exactly what `Engine.query` answers for the same records grouped as the
/// spec. Throws `E_INVALID_QUERY` when the states hold several tenants and none is named.
#[napi(
    catch_unwind,
    ts_args_type = "partials: PartialStates | PartialStates[], spec: RollupSpec, tenant?: string",
    ts_return_type = "Bucket[]"
)]
pub fn finalize_partials(
    env: Env,
    partials: Unknown<'_>,
    spec: Unknown<'_>,
    tenant: Option<String>,
) -> napi::Result<Js> {
    let (partials, spec) = (json_text(env, partials)?, json_text(env, spec)?);
    guard(env, || {
        let spec: RollupSpec = core(env, from_json(&spec.0, "rollup spec"))?;
        let rows = core_raw(env, read_all(&partials.0, &spec).and_then(|p| partial::finalize(&p, &spec)))?;
        let buckets: Vec<Bucket> = core(env, partial::buckets_of_tenant(rows, tenant.as_deref()))?;
        js(env, &buckets)
    })
}

/// Partial states (one object or an array of objects) of `spec`.
pub fn read_all(text: &str, spec: &RollupSpec) -> meterkit::Result<Vec<partial::Partial>> {
    partial::from_json(&from_json_raw(text, "partial states")?, spec)
}

fn qualities(q: &[Option<String>]) -> meterkit::Result<Vec<Quality>> {
    q.iter()
        .enumerate()
        .map(|(i, v)| match v.as_deref() {
            None => Ok(Quality::Actual),
            Some(name) => name.parse::<Quality>().map_err(|_| {
                CoreError::new(ErrorKind::Parse, format!("Unknown quality '{name}' (actual, flagged, estimated)."))
                    .with_field("quality")
                    .with_line(i as u64 + 1)
            }),
        })
        .collect()
}
