//! The `Engine` class: the core engine behind a JS object, sync and async.

use std::sync::Arc;

use meterkit::{
    engine::IngestReport, invoice::Invoice, quota::Quota, Aggregation, Bill, BillRequest, Event, Notifier, Query,
    RollupSpec, Window,
};
use napi::bindgen_prelude::{AsyncTask, Either, Function, Null, Object, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue};
use napi::{Env, Status, Task};
use napi_derive::napi;

use crate::billing::Tariff;
use crate::columns::{self, UsageColumns};
use crate::convert::{
    core, from_json, guard, internal_error, js, js_error, json_text, opt_json_text, panic_message, records_careful,
    records_from_json, ts_from_json, Js, JsonText,
};

type EventCallback = ThreadsafeFunction<Event, UnknownReturnValue, Js, Status, false, true>;

/// Forwards every core event to a JS callback through a ThreadsafeFunction: callable from any
/// thread (the async tasks run on libuv's pool), delivered on the JS thread in order.
struct JsNotifier(EventCallback);

impl Notifier for JsNotifier {
    fn notify(&self, event: &Event) {
        // A closing environment refuses the call; there is nobody left to tell then.
        let _ = self.0.call(event.clone(), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// The metering engine: ingest usage records (idempotent by `(tenant, id)`, each batch stored in
/// one atomic change), roll them up into time-zone-exact windows, query, retract, close windows.
///
/// `new Engine()` keeps everything in memory; `new Engine({ path: "usage.db" })` stores it in a
/// SQLite file; `new Engine({ path: "postgres://user@host/db" })` in a PostgreSQL database that
/// several engines and processes share. `onEvent` receives every event (`record_rejected`,
/// `late_record`, `window_closed`) on the JS thread, after the change is stored.
#[napi]
pub struct Engine {
    inner: Arc<meterkit::Engine>,
}

#[napi]
impl Engine {
    /// Open an engine: in memory, over the SQLite database at `options.path`, or over the
    /// PostgreSQL database when `options.path` is a `postgres://` / `postgresql://` URL.
    #[napi(constructor, catch_unwind, ts_args_type = "options?: EngineOptions | null")]
    pub fn new(env: Env, options: Option<Object>) -> napi::Result<Self> {
        guard(env, || {
            let path: Option<Either<String, Null>> = match &options {
                Some(o) => o.get("path").map_err(|_| {
                    js_error(
                        env,
                        &meterkit::Error::new(meterkit::ErrorKind::Parse, "options.path must be a string or null.")
                            .with_field("path"),
                    )
                })?,
                None => None,
            };
            let callback: Option<Either<Function<Js, UnknownReturnValue>, Null>> = match &options {
                Some(o) => o.get("onEvent").map_err(|_| {
                    js_error(
                        env,
                        &meterkit::Error::new(
                            meterkit::ErrorKind::Parse,
                            "options.onEvent must be a function or null.",
                        )
                        .with_field("onEvent"),
                    )
                })?,
                None => None,
            };
            let mut engine = match path {
                Some(Either::A(p)) => core(env, meterkit_open::open_engine(&p))?,
                _ => meterkit::Engine::in_memory(),
            };
            if let Some(Either::A(f)) = callback {
                let tsfn = f
                    .build_threadsafe_function::<Event>()
                    .callee_handled::<false>()
                    .weak::<true>()
                    .build_callback(|ctx| js(ctx.env, &ctx.value))?;
                engine = engine.with_notifier(Arc::new(JsNotifier(tsfn)));
            }
            Ok(Engine { inner: Arc::new(engine) })
        })
    }

    /// Maintain a rollup spec from now on (backfilled from stored records); returns its id.
    #[napi(catch_unwind, ts_args_type = "spec: RollupSpec")]
    pub fn add_spec(&self, env: Env, spec: Unknown<'_>) -> napi::Result<u32> {
        let spec = json_text(env, spec)?;
        guard(env, || {
            let spec: RollupSpec = core(env, from_json(&spec.0, "rollup spec"))?;
            core(env, self.inner.add_spec(spec))
        })
    }

    /// Stop maintaining the spec equal to `spec` and delete its buckets; returns its id. Throws
    /// `E_NOT_FOUND` when no such spec is maintained, `E_CONFLICT` when a quota uses it.
    #[napi(catch_unwind, ts_args_type = "spec: RollupSpec")]
    pub fn remove_spec(&self, env: Env, spec: Unknown<'_>) -> napi::Result<u32> {
        let spec = json_text(env, spec)?;
        guard(env, || {
            let spec: RollupSpec = core(env, from_json(&spec.0, "rollup spec"))?;
            core(env, self.inner.remove_spec(&spec))
        })
    }

    /// The spec an unplanned query needs (queries never add one): add it to answer such queries
    /// from buckets instead of the records.
    #[napi(catch_unwind, ts_args_type = "query: Query", ts_return_type = "RollupSpec")]
    pub fn spec_for_query(env: Env, query: Unknown<'_>) -> napi::Result<Js> {
        let query = json_text(env, query)?;
        guard(env, || {
            let q: Query = core(env, from_json(&query.0, "query"))?;
            core(env, meterkit::Engine::spec_for_query(&q)).and_then(|v| js(env, &v))
        })
    }

    /// The rollup specs maintained, in id order.
    #[napi(catch_unwind, ts_return_type = "RollupSpec[]")]
    pub fn specs(&self, env: Env) -> napi::Result<Js> {
        js(env, &self.inner.specs())
    }

    /// Ingest a batch of usage records (or one record). Duplicates and conflicts are reported,
    /// not thrown; a record that cannot be read at all throws `E_PARSE` and nothing is stored.
    #[napi(
        catch_unwind,
        ts_args_type = "records: UsageRecordInput | UsageRecordInput[]",
        ts_return_type = "IngestReport"
    )]
    pub fn ingest(&self, env: Env, records: Unknown<'_>) -> napi::Result<Js> {
        let records = json_text(env, records)?;
        guard(env, || core(env, self.inner.ingest_json(None, &records.0, records_careful)).and_then(|v| js(env, &v)))
    }

    /// Check a register reading against the meter's stored history and store the reading, its
    /// consumption (one record per day of the interval) and its findings atomically (the core's
    /// `Engine::record_reading`). `exchange` (a decimal string) declares a meter exchange: the old
    /// meter's final reading, with `reading` the new meter's start. `options` is the core's
    /// `ReadingOptions` in camelCase (`history`, `timeZone`, `profile`, `typicalRegister`,
    /// `maxDaily`, `plausibleFactor`). Throws `E_PARSE` for unreadable input, `E_INVALID_QUERY` /
    /// `E_INVALID_TIME_ZONE` for invalid options, `E_CONFLICT`, `E_STORE`, `E_OVERFLOW`.
    #[napi(
        catch_unwind,
        ts_args_type = "tenant: string, metric: string, reading: MeterReading, exchange?: DecimalString | null, options?: Partial<ReadingOptions> | null",
        ts_return_type = "ReadingOutcome"
    )]
    pub fn record_reading(
        &self,
        env: Env,
        tenant: String,
        metric: String,
        reading: Unknown<'_>,
        exchange: Option<String>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<Js> {
        let reading = json_text(env, reading)?;
        let options = opt_json_text(env, options)?;
        guard(env, || {
            let (reading, exchange, opts) = reading_args(env, &reading, exchange, options)?;
            core(env, self.inner.record_reading(&tenant, &metric, &reading, exchange, &opts)).and_then(|v| js(env, &v))
        })
    }

    /// Turn cumulative counter readings of `metric` (oldest first: session byte counters,
    /// RADIUS/SNMP octet counters with `registerBits` 32 or 64, registers with
    /// `registerDigits`) into deltas and ingest them, keeping each meter's latest reading in the
    /// store so that a restart does not lose the first delta (the core's
    /// `Engine::track_counters`). `options` is the core's `CounterOptions` in camelCase (`dating`:
    /// `'pro_rata'` (default) | `'start'` | `'end'`, `timeZone`, `profile`). Returns
    /// `{report, records, findings}`. Throws `E_PARSE` for unreadable input (unknown keys too),
    /// `E_INVALID_QUERY` / `E_INVALID_TIME_ZONE` for invalid options, `E_INVALID_RECORD`,
    /// `E_STORE`, `E_OVERFLOW`.
    #[napi(
        catch_unwind,
        ts_args_type = "tenant: string, metric: string, readings: MeterReading[], options?: CounterOptions | null",
        ts_return_type = "CounterOutcome"
    )]
    pub fn track_counters(
        &self,
        env: Env,
        tenant: String,
        metric: String,
        readings: Unknown<'_>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<Js> {
        let readings = json_text(env, readings)?;
        let options = opt_json_text(env, options)?;
        guard(env, || {
            let list: Vec<meterkit::MeterReading> =
                core(env, crate::convert::from_json(&readings.0, "meter readings"))?;
            let opts: meterkit::reading::counter::CounterOptions = match options {
                Some(o) => core(env, crate::convert::from_json(&o.0, "counter options"))?,
                None => meterkit::reading::counter::CounterOptions::default(),
            };
            core(env, self.inner.track_counters(&tenant, &metric, &list, &opts)).and_then(|v| js(env, &v))
        })
    }

    /// The tracker state of `meter` for `metric` of `tenant`: its latest counter reading (the
    /// baseline of its next delta), or `null` (the core's `Engine::counter_state`). Throws
    /// `E_STORE`.
    #[napi(catch_unwind, ts_return_type = "MeterReading | null")]
    pub fn counter_state(&self, env: Env, tenant: String, metric: String, meter: String) -> napi::Result<Js> {
        guard(env, || core(env, self.inner.counter_state(&tenant, &metric, &meter)).and_then(|v| js(env, &v)))
    }

    /// Check a register reading exactly as `recordReading` does (same decisions, findings and
    /// consumption records, against the stored history) but store nothing (the core's
    /// `Engine::check_reading`). Same arguments, outcome and errors as `recordReading`.
    #[napi(
        catch_unwind,
        ts_args_type = "tenant: string, metric: string, reading: MeterReading, exchange?: DecimalString | null, options?: Partial<ReadingOptions> | null",
        ts_return_type = "ReadingOutcome"
    )]
    pub fn check_reading(
        &self,
        env: Env,
        tenant: String,
        metric: String,
        reading: Unknown<'_>,
        exchange: Option<String>,
        options: Option<Unknown<'_>>,
    ) -> napi::Result<Js> {
        let reading = json_text(env, reading)?;
        let options = opt_json_text(env, options)?;
        guard(env, || {
            let (reading, exchange, opts) = reading_args(env, &reading, exchange, options)?;
            core(env, self.inner.check_reading(&tenant, &metric, &reading, exchange, &opts)).and_then(|v| js(env, &v))
        })
    }

    /// Keep `records` and queue them for upload (the core's outbox, `Engine::outbox_queue`):
    /// ingested like `ingest`; each record not rejected and not uploaded within the retention
    /// window (30 days) is marked pending.
    #[napi(
        catch_unwind,
        ts_args_type = "records: UsageRecordInput | UsageRecordInput[]",
        ts_return_type = "IngestReport"
    )]
    pub fn outbox_queue(&self, env: Env, records: Unknown<'_>) -> napi::Result<Js> {
        let records = json_text(env, records)?;
        guard(env, || {
            let batch = core(env, records_from_json(&records.0))?;
            core(env, self.inner.outbox_queue(&batch)).and_then(|v| js(env, &v))
        })
    }

    /// Up to `limit` records of `tenant` waiting for upload, by id.
    #[napi(catch_unwind, ts_return_type = "UsageRecord[]")]
    pub fn outbox_pending(&self, env: Env, tenant: String, limit: u32) -> napi::Result<Js> {
        guard(env, || core(env, self.inner.outbox_pending(&tenant, limit as usize)).and_then(|e| js(env, &e.records)))
    }

    /// How many records of `tenant` wait for upload (one metadata read).
    #[napi(catch_unwind)]
    pub fn outbox_count(&self, env: Env, tenant: String) -> napi::Result<i64> {
        guard(env, || core(env, self.inner.outbox_count(&tenant)).map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
    }

    /// Acknowledge the upload of `ids` of `tenant` at `now` (default: the wall clock): they leave
    /// the queue; sent markers older than the retention window are removed. Returns how many
    /// were pending.
    #[napi(catch_unwind, ts_args_type = "tenant: string, ids: string[], now?: Date | string | null")]
    pub fn outbox_ack(
        &self,
        env: Env,
        tenant: String,
        ids: Vec<String>,
        now: Option<Unknown<'_>>,
    ) -> napi::Result<i64> {
        let now = opt_json_text(env, now)?;
        guard(env, || {
            let now = match now {
                Some(t) => core(env, ts_from_json(&t.0, "now"))?,
                None => chrono::Utc::now(),
            };
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            core(env, self.inner.outbox_ack(&tenant, &ids, now)).map(|n| i64::try_from(n).unwrap_or(i64::MAX))
        })
    }

    /// Tidy the outbox of `tenant`: remove sent markers acknowledged before `before`, pending
    /// markers naming no stored record, and recount. Returns how many markers were removed.
    #[napi(catch_unwind, ts_args_type = "tenant: string, before: Date | string")]
    pub fn outbox_purge(&self, env: Env, tenant: String, before: Unknown<'_>) -> napi::Result<i64> {
        let before = json_text(env, before)?;
        guard(env, || {
            let before = core(env, ts_from_json(&before.0, "before"))?;
            core(env, self.inner.outbox_purge(&tenant, before)).map(|n| i64::try_from(n).unwrap_or(i64::MAX))
        })
    }

    /// `ingest` off the JS thread: only `JSON.stringify` runs on it; parsing, rollups and storage
    /// run on libuv's thread pool.
    #[napi(
        catch_unwind,
        ts_args_type = "records: UsageRecordInput | UsageRecordInput[]",
        ts_return_type = "Promise<IngestReport>"
    )]
    pub fn ingest_async(&self, env: Env, records: Unknown<'_>) -> napi::Result<AsyncTask<CoreTask<IngestReport>>> {
        let records = json_text(env, records)?;
        let engine = self.inner.clone();
        let text = records.0;
        Ok(AsyncTask::new(CoreTask::new(move || engine.ingest_json(None, &text, records_careful))))
    }

    /// `ingest` for a named source (a cron job, a feed): also moves the source's watermark, per
    /// tenant, to the greatest timestamp stored or found stored, in the same atomic change (see
    /// `lastIngestedAt`). Throws `E_INVALID_QUERY` (field `source`) for an empty source name.
    #[napi(
        catch_unwind,
        ts_args_type = "source: string, records: UsageRecordInput | UsageRecordInput[]",
        ts_return_type = "IngestReport"
    )]
    pub fn ingest_from(&self, env: Env, source: String, records: Unknown<'_>) -> napi::Result<Js> {
        let records = json_text(env, records)?;
        guard(env, || {
            core(env, self.inner.ingest_json(Some(&source), &records.0, records_careful)).and_then(|v| js(env, &v))
        })
    }

    /// `ingestFrom` off the JS thread.
    #[napi(
        catch_unwind,
        ts_args_type = "source: string, records: UsageRecordInput | UsageRecordInput[]",
        ts_return_type = "Promise<IngestReport>"
    )]
    pub fn ingest_from_async(
        &self,
        env: Env,
        source: String,
        records: Unknown<'_>,
    ) -> napi::Result<AsyncTask<CoreTask<IngestReport>>> {
        let records = json_text(env, records)?;
        let engine = self.inner.clone();
        let text = records.0;
        Ok(AsyncTask::new(CoreTask::new(move || engine.ingest_json(Some(&source), &text, records_careful))))
    }

    /// The watermark of `source` for `tenant` (RFC 3339, UTC): the greatest timestamp an
    /// `ingestFrom` of that source stored or found stored; `null` before its first ingest. A
    /// cron job sends only the records after it.
    #[napi(catch_unwind, ts_return_type = "Timestamp | null")]
    pub fn last_ingested_at(&self, env: Env, tenant: String, source: String) -> napi::Result<Option<String>> {
        guard(env, || core(env, self.inner.last_ingested_at(&tenant, &source)).map(|t| t.map(meterkit::time::fmt_ts)))
    }

    /// Import partial states of `spec` (one `PartialStates` object or an array, merged first) into
    /// this engine's store (`Engine::import_buckets`): each key's merged state is **set**, so
    /// importing the same states twice changes nothing, and a recomputed import replaces its keys.
    /// The spec is added when missing. Returns the engine's spec id. Throws `E_PARSE` for states
    /// of another schema, `E_STORE`.
    #[napi(catch_unwind, ts_args_type = "partials: PartialStates | PartialStates[], spec: RollupSpec")]
    pub fn import_partials(&self, env: Env, partials: Unknown<'_>, spec: Unknown<'_>) -> napi::Result<u32> {
        let (partials, spec) = (json_text(env, partials)?, json_text(env, spec)?);
        guard(env, || {
            let spec: meterkit::RollupSpec = core(env, crate::convert::from_json(&spec.0, "rollup spec"))?;
            let parts = crate::convert::core_raw(env, crate::partial::read_all(&partials.0, &spec))?;
            let buckets: Vec<_> = parts.into_iter().map(|p| (p.key, p.end, p.state)).collect();
            core(env, self.inner.import_buckets(&spec, &buckets))
        })
    }

    /// Ingest columns: one array per field (typed arrays for quantities and timestamps), the
    /// fast path for big batches. See `UsageColumns`.
    #[napi(catch_unwind, ts_return_type = "IngestReport")]
    pub fn ingest_columns(&self, env: Env, columns: UsageColumns) -> napi::Result<Js> {
        guard(env, || {
            let cols = core(env, columns::read(env, columns))?;
            core(env, cols.ingest(&self.inner)).and_then(|v| js(env, &v))
        })
    }

    /// `ingestColumns` off the JS thread (the columns are copied on it, records are built,
    /// rolled up and stored on libuv's thread pool).
    #[napi(catch_unwind, ts_return_type = "Promise<IngestReport>")]
    pub fn ingest_columns_async(
        &self,
        env: Env,
        columns: UsageColumns,
    ) -> napi::Result<AsyncTask<CoreTask<IngestReport>>> {
        guard(env, || {
            let cols = core(env, columns::read(env, columns))?;
            let engine = self.inner.clone();
            Ok(AsyncTask::new(CoreTask::new(move || cols.ingest(&engine))))
        })
    }

    /// Store `records` as revisions in one atomic change: a stored record with other content is
    /// replaced (`replaced`; its old version kept in `history`), a new one stored, an equal one a
    /// duplicate. Throws `E_INVALID_RECORD` for an invalid record or a key given twice (nothing
    /// stored).
    #[napi(
        catch_unwind,
        ts_args_type = "records: UsageRecordInput | UsageRecordInput[]",
        ts_return_type = "IngestReport"
    )]
    pub fn replace(&self, env: Env, records: Unknown<'_>) -> napi::Result<Js> {
        let records = json_text(env, records)?;
        guard(env, || {
            let batch = core(env, records_from_json(&records.0))?;
            core(env, self.inner.replace(&batch)).and_then(|v| js(env, &v))
        })
    }

    /// The versions of `(tenant, id)` that `replace` replaced, oldest first.
    #[napi(catch_unwind, ts_return_type = "UsageRecord[]")]
    pub fn history(&self, env: Env, tenant: String, id: String) -> napi::Result<Js> {
        guard(env, || core(env, self.inner.history(&tenant, &id)).and_then(|v| js(env, &v)))
    }

    /// Remove the record `(tenant, id)` and its contribution to every rollup; returns it.
    /// Throws `E_NOT_FOUND` when no such record is stored.
    #[napi(catch_unwind, ts_return_type = "UsageRecord")]
    pub fn retract(&self, env: Env, tenant: String, id: String) -> napi::Result<Js> {
        guard(env, || core(env, self.inner.retract(&tenant, &id)).and_then(|v| js(env, &v)))
    }

    /// Stored records of `tenant` and `metric` with timestamp in `[from, to)`, optionally of one
    /// subject, ordered by timestamp then id.
    #[napi(
        catch_unwind,
        ts_args_type = "tenant: string, metric: string, from: Date | string, to: Date | string, subject?: string | null",
        ts_return_type = "UsageRecord[]"
    )]
    pub fn records(
        &self,
        env: Env,
        tenant: String,
        metric: String,
        from: Unknown<'_>,
        to: Unknown<'_>,
        subject: Option<String>,
    ) -> napi::Result<Js> {
        let from = json_text(env, from)?;
        let to = json_text(env, to)?;
        guard(env, || {
            let from = core(env, ts_from_json(&from.0, "from"))?;
            let to = core(env, ts_from_json(&to.0, "to"))?;
            core(env, self.inner.records(&tenant, &metric, subject.as_deref(), from, to)).and_then(|v| js(env, &v))
        })
    }

    /// Answer a rollup query: rows ordered by window start, then group values.
    #[napi(catch_unwind, ts_args_type = "query: Query", ts_return_type = "Bucket[]")]
    pub fn query(&self, env: Env, query: Unknown<'_>) -> napi::Result<Js> {
        let query = json_text(env, query)?;
        guard(env, || {
            let q: Query = core(env, from_json(&query.0, "query"))?;
            core(env, self.inner.query(&q)).and_then(|v| js(env, &v))
        })
    }

    /// `query` with the result as columns: one array per bucket field (`windowStart`, `sum`, …),
    /// `group` and `unique` one array per key — for charts and DataFrames (Python:
    /// `Engine.query_arrow`). Same errors as `query`.
    #[napi(
        catch_unwind,
        ts_args_type = "query: Query",
        ts_return_type = "{ windowStart: Timestamp[]; windowEnd: Timestamp[]; localStart: string[]; subject: Array<string | null>; metric: string[]; group: Record<string, Array<string | null>>; sum: DecimalString[]; count: number[]; min: Array<DecimalString | null>; max: Array<DecimalString | null>; mean: Array<DecimalString | null>; latest: Array<DecimalString | null>; unique: Record<string, number[]>; flaggedCount: number[]; flaggedSum: DecimalString[]; estimatedCount: number[]; estimatedSum: DecimalString[]; firstAt: Array<Timestamp | null>; lastAt: Array<Timestamp | null> }"
    )]
    pub fn query_columns(&self, env: Env, query: Unknown<'_>) -> napi::Result<Js> {
        let query = json_text(env, query)?;
        guard(env, || {
            let q: Query = core(env, from_json(&query.0, "query"))?;
            core(env, self.inner.query(&q)).and_then(|b| js(env, &crate::rollup::BucketColumns::of(&b)))
        })
    }

    /// `query` off the JS thread.
    #[napi(catch_unwind, ts_args_type = "query: Query", ts_return_type = "Promise<Bucket[]>")]
    pub fn query_async(
        &self,
        env: Env,
        query: Unknown<'_>,
    ) -> napi::Result<AsyncTask<CoreTask<Vec<meterkit::Bucket>>>> {
        let query = json_text(env, query)?;
        let engine = self.inner.clone();
        let text = query.0;
        Ok(AsyncTask::new(CoreTask::new(move || engine.query(&from_json(&text, "query")?))))
    }

    /// The `n` groups with the largest `by` aggregation over the query's range, largest first.
    #[napi(catch_unwind, ts_args_type = "query: Query, by: Aggregation, n: number", ts_return_type = "Bucket[]")]
    pub fn top_n(&self, env: Env, query: Unknown<'_>, by: Unknown<'_>, n: u32) -> napi::Result<Js> {
        let query = json_text(env, query)?;
        let by = json_text(env, by)?;
        guard(env, || {
            let q: Query = core(env, from_json(&query.0, "query"))?;
            let by: Aggregation = core(env, crate::convert::from_json_raw(&by.0, "aggregation"))?;
            core(env, self.inner.top_n(&q, &by, n as usize)).and_then(|v| js(env, &v))
        })
    }

    /// Totals of the `window` containing `at` and of the window before it, with the change in
    /// percent — what a KPI card shows.
    #[napi(
        catch_unwind,
        ts_args_type = "tenant: string, metric: string, window: WindowSpec, timeZone: string, at: Date | string",
        ts_return_type = "Totals"
    )]
    pub fn totals(
        &self,
        env: Env,
        tenant: String,
        metric: String,
        window: String,
        time_zone: String,
        at: Unknown<'_>,
    ) -> napi::Result<Js> {
        let at = json_text(env, at)?;
        guard(env, || {
            let window: Window = core(env, window.parse())?;
            let at = core(env, ts_from_json(&at.0, "at"))?;
            core(env, self.inner.totals(&tenant, &metric, window, &time_zone, at)).and_then(|v| js(env, &v))
        })
    }

    /// Close every window of `tenant` that ended at or before `now - allowedLatenessSeconds`;
    /// emits `window_closed` once per bucket and returns how many were closed.
    #[napi(catch_unwind, ts_args_type = "tenant: string, now: Date | string, allowedLatenessSeconds?: number")]
    pub fn close_windows(
        &self,
        env: Env,
        tenant: String,
        now: Unknown<'_>,
        allowed_lateness_seconds: Option<i64>,
    ) -> napi::Result<u32> {
        let now = json_text(env, now)?;
        guard(env, || {
            let now = core(env, ts_from_json(&now.0, "now"))?;
            let lateness = chrono::Duration::try_seconds(allowed_lateness_seconds.unwrap_or(0)).ok_or_else(|| {
                js_error(
                    env,
                    &meterkit::Error::new(meterkit::ErrorKind::InvalidQuery, "allowedLatenessSeconds is out of range.")
                        .with_field("allowedLatenessSeconds"),
                )
            })?;
            core(env, self.inner.close_windows(&tenant, now, lateness)).map(|n| n as u32)
        })
    }
}

#[napi]
impl Engine {
    /// Validate the new records of `metric` in every later ingest (replacing an earlier
    /// configuration): `reject` findings keep a record out (kind `validation` in `rejected`),
    /// `flag` findings store it flagged; every finding is in `IngestReport.findings`, warnings and
    /// errors go to `onEvent` as `anomaly_detected`. The streaming state is kept in memory.
    #[napi(catch_unwind, ts_args_type = "metric: string, config: Partial<ValidationConfig>")]
    pub fn set_validation(&self, env: Env, metric: String, config: Unknown<'_>) -> napi::Result<()> {
        let config = json_text(env, config)?;
        guard(env, || {
            let config: meterkit::vee::ValidationConfig = core(env, from_json(&config.0, "validation config"))?;
            core(env, self.inner.set_validation(&metric, config))
        })
    }

    /// Validate with a fixed "now" (tests, replays of old data); `null`: the wall clock.
    #[napi(catch_unwind, ts_args_type = "now: Date | Timestamp | null")]
    pub fn set_validation_now(&self, env: Env, now: Unknown<'_>) -> napi::Result<()> {
        let now = json_text(env, now)?;
        guard(env, || {
            let now = if now.0 == "null" { None } else { Some(core(env, ts_from_json(&now.0, "now"))?) };
            self.inner.set_validation_now(now);
            Ok(())
        })
    }

    /// Bill `request.subject` with `tariff` from the stored records of the request's metric (and
    /// of every metric a charge names) in the period.
    #[napi(catch_unwind, ts_args_type = "tariff: Tariff, request: BillRequest", ts_return_type = "Bill")]
    pub fn bill(&self, env: Env, tariff: &Tariff, request: Unknown<'_>) -> napi::Result<Js> {
        let request = json_text(env, request)?;
        guard(env, || {
            let req: BillRequest = core(env, from_json(&request.0, "bill request"))?;
            core(env, self.inner.bill(&tariff.inner, &req)).and_then(|v| js(env, &v))
        })
    }

    /// `bill` off the JS thread.
    #[napi(catch_unwind, ts_args_type = "tariff: Tariff, request: BillRequest", ts_return_type = "Promise<Bill>")]
    pub fn bill_async(
        &self,
        env: Env,
        tariff: &Tariff,
        request: Unknown<'_>,
    ) -> napi::Result<AsyncTask<CoreTask<Bill>>> {
        let request = json_text(env, request)?;
        let engine = self.inner.clone();
        let tariff = tariff.inner.clone();
        let text = request.0;
        Ok(AsyncTask::new(CoreTask::new(move || engine.bill(&tariff, &from_json(&text, "bill request")?))))
    }

    /// Check `quota` after every ingest: `threshold_crossed` events when a subject's usage (or
    /// bill total, with a tariff) reaches a level. Replaces a quota of the same tenant and id.
    #[napi(catch_unwind, ts_args_type = "quota: Quota")]
    pub fn add_quota(&self, env: Env, quota: Unknown<'_>) -> napi::Result<()> {
        let quota = json_text(env, quota)?;
        guard(env, || {
            let quota: Quota = core(env, from_json(&quota.0, "quota"))?;
            core(env, self.inner.add_quota(quota))
        })
    }

    /// Issue a draft invoice at `at` and store it (emits `bill_issued`); returns it issued.
    #[napi(catch_unwind, ts_args_type = "invoice: Invoice, at: Date | string", ts_return_type = "Invoice")]
    pub fn issue_invoice(&self, env: Env, invoice: Unknown<'_>, at: Unknown<'_>) -> napi::Result<Js> {
        let invoice = json_text(env, invoice)?;
        let at = json_text(env, at)?;
        guard(env, || {
            let mut invoice: Invoice = core(env, from_json(&invoice.0, "invoice"))?;
            let at = core(env, ts_from_json(&at.0, "at"))?;
            core(env, self.inner.issue_invoice(&mut invoice, at))?;
            js(env, &(invoice))
        })
    }

    /// The stored invoices of `tenant`, by id.
    #[napi(catch_unwind, ts_return_type = "Invoice[]")]
    pub fn invoices(&self, env: Env, tenant: String) -> napi::Result<Js> {
        guard(env, || core(env, self.inner.invoices(&tenant)).and_then(|v| js(env, &v)))
    }

    /// Mark the stored invoice paid at `at` (`E_INVALID_TRANSITION` unless issued or overdue).
    #[napi(catch_unwind, ts_args_type = "tenant: string, id: string, at: Date | string", ts_return_type = "Invoice")]
    pub fn pay_invoice(&self, env: Env, tenant: String, id: String, at: Unknown<'_>) -> napi::Result<Js> {
        let at = json_text(env, at)?;
        guard(env, || {
            let at = core(env, ts_from_json(&at.0, "at"))?;
            core(env, self.inner.update_invoice(&tenant, &id, |i| i.pay(at))).and_then(|v| js(env, &v))
        })
    }

    /// Void the stored invoice at `at` (`E_INVALID_TRANSITION` once paid or void).
    #[napi(catch_unwind, ts_args_type = "tenant: string, id: string, at: Date | string", ts_return_type = "Invoice")]
    pub fn void_invoice(&self, env: Env, tenant: String, id: String, at: Unknown<'_>) -> napi::Result<Js> {
        let at = json_text(env, at)?;
        guard(env, || {
            let at = core(env, ts_from_json(&at.0, "at"))?;
            core(env, self.inner.update_invoice(&tenant, &id, |i| i.void(at))).and_then(|v| js(env, &v))
        })
    }

    /// Stored invoices whose payment reminder is due at `now` (issued, unpaid, due within
    /// `daysBefore` days).
    #[napi(
        catch_unwind,
        ts_args_type = "tenant: string, now: Date | string, daysBefore: number",
        ts_return_type = "Invoice[]"
    )]
    pub fn reminders_due(&self, env: Env, tenant: String, now: Unknown<'_>, days_before: u32) -> napi::Result<Js> {
        let now = json_text(env, now)?;
        guard(env, || {
            let now = core(env, ts_from_json(&now.0, "now"))?;
            core(env, self.inner.reminders_due(&tenant, now, days_before)).and_then(|v| js(env, &v))
        })
    }

    /// Mark every issued invoice past its due date overdue (emits `invoice_overdue` once each);
    /// returns those that became overdue.
    #[napi(catch_unwind, ts_args_type = "tenant: string, now: Date | string", ts_return_type = "Invoice[]")]
    pub fn mark_overdue(&self, env: Env, tenant: String, now: Unknown<'_>) -> napi::Result<Js> {
        let now = json_text(env, now)?;
        guard(env, || {
            let now = core(env, ts_from_json(&now.0, "now"))?;
            core(env, self.inner.mark_overdue(&tenant, now)).and_then(|v| js(env, &v))
        })
    }
}

/// Work for libuv's thread pool: a closure over the core returning a serialisable value.
/// A core error is kept and thrown on the JS thread as the structured JS error.
pub struct CoreTask<T> {
    work: Option<Box<dyn FnOnce() -> meterkit::Result<T> + Send>>,
    failed: Option<meterkit::Error>,
    panicked: Option<String>,
}

impl<T> CoreTask<T> {
    pub fn new(work: impl FnOnce() -> meterkit::Result<T> + Send + 'static) -> Self {
        CoreTask { work: Some(Box::new(work)), failed: None, panicked: None }
    }
}

impl<T: serde::Serialize + Send + 'static> Task for CoreTask<T> {
    type Output = T;
    type JsValue = Js;

    fn compute(&mut self) -> napi::Result<T> {
        let work = self.work.take().ok_or_else(|| napi::Error::from_reason("meterkit task ran twice (a bug)"))?;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let reason = e.message().to_string();
                self.failed = Some(e);
                Err(napi::Error::from_reason(reason))
            }
            Err(p) => {
                let message = panic_message(&*p);
                self.panicked = Some(message.clone());
                Err(napi::Error::from_reason(message))
            }
        }
    }

    fn resolve(&mut self, env: Env, output: T) -> napi::Result<Js> {
        js(env, &output)
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<Js> {
        match (self.failed.take(), self.panicked.take()) {
            (Some(e), _) => Err(js_error(env, &e)),
            (None, Some(message)) => Err(internal_error(env, &message)),
            (None, None) => Err(err),
        }
    }
}

/// The reading, declared exchange and options of `recordReading`/`checkReading`.
fn reading_args(
    env: Env,
    reading: &JsonText,
    exchange: Option<String>,
    options: Option<JsonText>,
) -> napi::Result<(meterkit::MeterReading, Option<meterkit::Decimal>, meterkit::reading::check::ReadingOptions)> {
    let reading: meterkit::MeterReading = core(env, crate::convert::from_json(&reading.0, "meter reading"))?;
    let exchange = match exchange {
        Some(text) => Some(core(env, meterkit::decimal::parse_decimal(&text).map_err(|e| e.with_field("exchange")))?),
        None => None,
    };
    let opts = match options {
        Some(o) => core(env, crate::convert::from_json(&o.0, "reading options"))?,
        None => meterkit::reading::check::ReadingOptions::default(),
    };
    Ok((reading, exchange, opts))
}
