//! Store-less rollups: `rollupColumns` (the core's columnar kernel over a column batch, no engine,
//! no store) and the columnar form of query results (`Engine.queryColumns`).

use std::collections::BTreeMap;

use meterkit::rollup::columnar::{ColumnBatch, ColumnarRollup};
use meterkit::{Bucket, Decimal, RollupSpec};
use napi::Env;
use napi_derive::napi;

use crate::columns::{self, UsageColumns};
use crate::convert::{core, from_json, guard, js, json_text, Js};
use napi::bindgen_prelude::Unknown;

/// Roll up a batch of usage columns under one or more rollup specs without an engine or a store
/// (the core's `ColumnarRollup`: the same buckets `Engine.query` gives for the same records).
/// Rows of other metrics than a spec's are ignored by it; timestamps count to the second.
/// Returns the buckets of every spec, in spec order, then by tenant, window start and group.
/// Throws `E_PARSE` for unreadable columns, `E_INVALID_QUERY` / `E_INVALID_TIME_ZONE` for a bad
/// spec (more than 8 `group_by` dimensions included), `E_OVERFLOW`.
#[napi(
    catch_unwind,
    ts_args_type = "columns: UsageColumns, specs: RollupSpec | RollupSpec[]",
    ts_return_type = "Bucket[]"
)]
pub fn rollup_columns(env: Env, columns: UsageColumns, specs: Unknown<'_>) -> napi::Result<Js> {
    let specs = json_text(env, specs)?;
    guard(env, || {
        let specs: Vec<RollupSpec> = if specs.0.trim_start().starts_with('{') {
            vec![core(env, from_json(&specs.0, "rollup spec"))?]
        } else {
            core(env, from_json(&specs.0, "rollup specs"))?
        };
        let buckets = columns::read(env, columns).and_then(|c| c.with_batch(|batch| rollup(batch, &specs)));
        core(env, buckets).and_then(|v| js(env, &v))
    })
}

/// The batch through the core's store-less kernel, buckets in spec order, then by key.
fn rollup(batch: &ColumnBatch<'_>, specs: &[RollupSpec]) -> meterkit::Result<Vec<Bucket>> {
    for record in batch.records()? {
        record.check()?; // the record rules of the engine's path (an empty tenant, an `end` before its start)
    }
    let mut buckets = ColumnarRollup::run(specs, std::slice::from_ref(batch), 1)?;
    buckets.sort_by(|(a, ..), (b, ..)| (a.spec, a).cmp(&(b.spec, b)));
    buckets.iter().map(|(key, end, state)| Bucket::of_key(&specs[key.spec as usize], key, *end, state)).collect()
}

/// Query results as columns: one array per `Bucket` field, row `i` of every array is bucket `i`
/// (what a chart or a DataFrame wants). Decimals stay strings.
#[derive(serde::Serialize, Default)]
pub struct BucketColumns {
    window_start: Vec<String>,
    window_end: Vec<String>,
    local_start: Vec<String>,
    subject: Vec<Option<String>>,
    metric: Vec<String>,
    group: BTreeMap<String, Vec<Option<String>>>,
    sum: Vec<String>,
    count: Vec<u64>,
    min: Vec<Option<String>>,
    max: Vec<Option<String>>,
    mean: Vec<Option<String>>,
    latest: Vec<Option<String>>,
    unique: BTreeMap<String, Vec<u64>>,
    flagged_count: Vec<u64>,
    flagged_sum: Vec<String>,
    estimated_count: Vec<u64>,
    estimated_sum: Vec<String>,
    first_at: Vec<Option<String>>,
    last_at: Vec<Option<String>>,
}

impl BucketColumns {
    /// The buckets turned into columns (a group or unique key a bucket lacks is `null` / 0).
    pub fn of(buckets: &[Bucket]) -> Self {
        let dec = |d: &Decimal| meterkit::decimal::fmt_decimal(*d);
        let opt = |d: &Option<Decimal>| d.as_ref().map(dec);
        let mut c = BucketColumns::default();
        for b in buckets {
            for k in b.group.keys() {
                c.group.entry(k.clone()).or_insert_with(Vec::new);
            }
            for k in b.unique.keys() {
                c.unique.entry(k.clone()).or_insert_with(Vec::new);
            }
        }
        for b in buckets {
            c.window_start.push(meterkit::time::fmt_ts(b.window_start));
            c.window_end.push(meterkit::time::fmt_ts(b.window_end));
            c.local_start.push(b.local_start.clone());
            c.subject.push(b.subject.clone());
            c.metric.push(b.metric.clone());
            for (k, col) in &mut c.group {
                col.push(b.group.get(k).cloned().flatten());
            }
            c.sum.push(dec(&b.sum));
            c.count.push(b.count);
            c.min.push(opt(&b.min));
            c.max.push(opt(&b.max));
            c.mean.push(opt(&b.mean));
            c.latest.push(opt(&b.latest));
            for (k, col) in &mut c.unique {
                col.push(b.unique.get(k).copied().unwrap_or(0));
            }
            c.flagged_count.push(b.flagged_count);
            c.flagged_sum.push(dec(&b.flagged_sum));
            c.estimated_count.push(b.estimated_count);
            c.estimated_sum.push(dec(&b.estimated_sum));
            c.first_at.push(b.first_at.map(meterkit::time::fmt_ts));
            c.last_at.push(b.last_at.map(meterkit::time::fmt_ts));
        }
        c
    }
}
