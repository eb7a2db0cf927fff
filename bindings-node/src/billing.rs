//! Tariffs, bills, invoices, quotas and shared-meter allocation.

use std::sync::Arc;

use meterkit::{allocate::SharedMeter, invoice::Invoice, Bill, BillRequest, Decimal};
use napi::bindgen_prelude::{ClassInstance, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::convert::{
    core, core_raw, from_json, from_json_raw, guard, js, js_raw, json_text, records_from_json, ts_from_json, Js,
    JsonText,
};

/// A JS argument that is either a document's text or the document as an object: its JSON text.
fn document_text(arg: &JsonText, what: &str) -> meterkit::Result<String> {
    if arg.0.starts_with('"') {
        from_json_raw::<String>(&arg.0, what)
    } else {
        Ok(arg.0.clone())
    }
}

/// A tariff, parsed and checked once: TOML, meterkit JSON or OpenEI URDB JSON. Rate usage with
/// `tariff.bill(request, records)` or `engine.bill(tariff, request)`.
#[napi]
pub struct Tariff {
    pub(crate) inner: Arc<meterkit::Tariff>,
}

#[napi]
impl Tariff {
    /// Parse and check a TOML tariff (`E_PARSE` with the line, `E_TARIFF` naming the field).
    #[napi(factory, catch_unwind)]
    pub fn from_toml(env: Env, text: String) -> napi::Result<Self> {
        guard(env, || core_raw(env, meterkit::Tariff::from_toml(&text)).map(|t| Tariff { inner: Arc::new(t) }))
    }

    /// Parse and check a meterkit JSON tariff, given as text or as an object.
    #[napi(factory, catch_unwind, ts_args_type = "json: string | TariffDocument")]
    pub fn from_json(env: Env, json: Unknown<'_>) -> napi::Result<Self> {
        let json = json_text(env, json)?;
        guard(env, || {
            let text = core(env, document_text(&json, "tariff"))?;
            core_raw(env, meterkit::Tariff::from_json(&text)).map(|t| Tariff { inner: Arc::new(t) })
        })
    }

    /// Import an OpenEI URDB rate record (text or object).
    #[napi(factory, catch_unwind, ts_args_type = "json: string | Record<string, unknown>")]
    pub fn from_urdb_json(env: Env, json: Unknown<'_>) -> napi::Result<Self> {
        let json = json_text(env, json)?;
        guard(env, || {
            let text = core(env, document_text(&json, "URDB tariff"))?;
            core_raw(env, meterkit::Tariff::from_urdb_json(&text)).map(|t| Tariff { inner: Arc::new(t) })
        })
    }

    /// TOML, meterkit JSON or URDB JSON, detected from the document.
    #[napi(factory, catch_unwind, ts_args_type = "document: string | Record<string, unknown>")]
    pub fn from_any(env: Env, document: Unknown<'_>) -> napi::Result<Self> {
        let document = json_text(env, document)?;
        guard(env, || {
            let text = core(env, document_text(&document, "tariff"))?;
            core_raw(env, meterkit::Tariff::from_any(&text)).map(|t| Tariff { inner: Arc::new(t) })
        })
    }

    /// The tariff as the core's JSON document (what `JSON.stringify(tariff)` prints).
    #[napi(js_name = "toJSON", catch_unwind, ts_return_type = "TariffDocument")]
    pub fn to_json(&self, env: Env) -> napi::Result<Js> {
        js_raw(env, &*self.inner)
    }

    /// ISO 4217 currency of the tariff.
    #[napi(getter, catch_unwind)]
    pub fn currency(&self) -> String {
        self.inner.currency.clone()
    }

    /// Minor-unit digits of the currency (JPY 0, GBP 2, KWD 3, or `minor_units`).
    #[napi(catch_unwind)]
    pub fn minor_units(&self, env: Env) -> napi::Result<u32> {
        guard(env, || core(env, self.inner.minor_units()))
    }

    /// The metrics a bill for `billMetric` reads, in first-use order.
    #[napi(catch_unwind)]
    pub fn metrics(&self, bill_metric: String) -> Vec<String> {
        self.inner.metrics(&bill_metric)
    }

    /// Rate `records` (any subjects and metrics: the request selects) into a bill.
    #[napi(catch_unwind, ts_args_type = "request: BillRequest, records: UsageRecordInput[]", ts_return_type = "Bill")]
    pub fn bill(&self, env: Env, request: Unknown<'_>, records: Unknown<'_>) -> napi::Result<Js> {
        let request = json_text(env, request)?;
        let records = json_text(env, records)?;
        guard(env, || {
            let req: BillRequest = core(env, from_json(&request.0, "bill request"))?;
            let records = core(env, records_from_json(&records.0))?;
            core(env, self.inner.bill(&req, &records)).and_then(|v| js(env, &v))
        })
    }

    /// Import a URDB rate record with options: `dayCount` `"actual"` (default) or `"pysam"`
    /// (365/12 days for `$/day` amounts), `lineDecimals` (places of each bill line; default cents).
    #[napi(
        factory,
        catch_unwind,
        ts_args_type = "json: string | Record<string, unknown>, options: { dayCount?: 'actual' | 'pysam'; lineDecimals?: number }"
    )]
    pub fn from_urdb_json_with(env: Env, json: Unknown<'_>, options: Unknown<'_>) -> napi::Result<Self> {
        let json = json_text(env, json)?;
        let options = json_text(env, options)?;
        guard(env, || {
            let text = core(env, document_text(&json, "URDB tariff"))?;
            let opts: UrdbOptionsJs = core(env, from_json(&options.0, "URDB options"))?;
            let day_count = match opts.day_count.as_deref() {
                None | Some("actual") => meterkit::tariff::urdb::DayCount::Actual,
                Some("pysam") => meterkit::tariff::urdb::DayCount::PySam,
                Some(other) => {
                    let e = meterkit::Error::new(
                        meterkit::ErrorKind::InvalidQuery,
                        format!("dayCount is 'actual' or 'pysam', not '{other}'."),
                    )
                    .with_field("dayCount");
                    return core(env, Err(e));
                }
            };
            let opts = meterkit::tariff::urdb::UrdbOptions { day_count, line_decimals: opts.line_decimals };
            core_raw(env, meterkit::Tariff::from_urdb_json_with(&text, opts)).map(|t| Tariff { inner: Arc::new(t) })
        })
    }

    /// What the published tariff says but does not price (bills show each as `not priced: …`).
    #[napi(getter, catch_unwind)]
    pub fn notes(&self) -> Vec<String> {
        self.inner.notes.clone()
    }

    /// The total of a period's charges for a quantity alone (no time of use, no demand): what a
    /// budget or a price calculator needs, fast.
    #[napi(catch_unwind)]
    pub fn quantity_total(&self, env: Env, quantity: String) -> napi::Result<String> {
        guard(env, || {
            let q = core(env, meterkit::decimal::parse_decimal(&quantity).map_err(|e| e.with_field("quantity")))?;
            let rater = core(env, self.inner.quantity_rater())?;
            core(env, rater.total(q)).map(meterkit::decimal::fmt_decimal)
        })
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UrdbOptionsJs {
    day_count: Option<String>,
    line_decimals: Option<u32>,
}

/// Price one load under many tariffs (the core's `Tariff::compare`): `[name, tariff]` pairs, the
/// request's period split into local calendar months. Cheapest first; money as strings:
/// `[{ tariff, total: string | null, periods: [{ period, total }], error: string | null }]`.
#[napi(
    catch_unwind,
    ts_args_type = "tariffs: Array<[string, Tariff]>, request: BillRequest, records: UsageRecordInput[]",
    ts_return_type = "Comparison[]"
)]
pub fn compare_tariffs(
    env: Env,
    tariffs: Vec<(String, ClassInstance<'_, Tariff>)>,
    request: Unknown<'_>,
    records: Unknown<'_>,
) -> napi::Result<Js> {
    let request = json_text(env, request)?;
    let records = json_text(env, records)?;
    guard(env, || {
        let req: BillRequest = core(env, from_json(&request.0, "bill request"))?;
        let records = core(env, records_from_json(&records.0))?;
        let named: Vec<(&str, &meterkit::Tariff)> = tariffs.iter().map(|(n, t)| (n.as_str(), &*t.inner)).collect();
        core(env, meterkit::Tariff::compare(named, &req, &records)).and_then(|v| js(env, &v))
    })
}

/// One load prepared once for pricing under many tariffs (the core's
/// `billing::compare::PreparedLoad`): the request's period cut into local calendar months, each
/// month's records summed once; `compare` and `bills` then price it without reading the records
/// again. Throws `E_INVALID_TIME_ZONE`, `E_INVALID_QUERY` (an empty period, more than 1,200
/// months), `E_OVERFLOW`.
#[napi]
pub struct PreparedLoad {
    inner: meterkit::billing::compare::PreparedLoad<'static>,
}

#[napi]
#[allow(clippy::len_without_is_empty)] // a load spans at least one month; JS has `length`
impl PreparedLoad {
    /// Prepare `records` for `request` (the same arguments as `compareTariffs` and `Tariff.bill`).
    #[napi(constructor, catch_unwind, ts_args_type = "request: BillRequest, records: UsageRecordInput[]")]
    pub fn new(env: Env, request: Unknown<'_>, records: Unknown<'_>) -> napi::Result<Self> {
        let request = json_text(env, request)?;
        let records = json_text(env, records)?;
        guard(env, || {
            let req: BillRequest = core(env, from_json(&request.0, "bill request"))?;
            let records = core(env, records_from_json(&records.0))?;
            let load = core(env, meterkit::billing::compare::PreparedLoad::new(&req, &records))?;
            Ok(PreparedLoad { inner: load.into_owned() })
        })
    }

    /// `compareTariffs` on the prepared load: `[name, tariff]` pairs, cheapest first; money as
    /// strings: `[{ tariff, total: string | null, periods: [{ period, total }], error: string | null }]`.
    #[napi(catch_unwind, ts_args_type = "tariffs: Array<[string, Tariff]>", ts_return_type = "Comparison[]")]
    pub fn compare(&self, env: Env, tariffs: Vec<(String, ClassInstance<'_, Tariff>)>) -> napi::Result<Js> {
        guard(env, || {
            let named: Vec<(&str, &meterkit::Tariff)> = tariffs.iter().map(|(n, t)| (n.as_str(), &*t.inner)).collect();
            js(env, &self.inner.compare(named))
        })
    }

    /// The tariff-year's bills under `tariff`: one per local calendar month, in order (carried
    /// credit, ratchet peaks and the annual minimum carry from bill to bill). Throws the errors
    /// of `Tariff.bill`.
    #[napi(catch_unwind, ts_return_type = "Bill[]")]
    pub fn bills(&self, env: Env, tariff: ClassInstance<'_, Tariff>) -> napi::Result<Js> {
        guard(env, || core(env, self.inner.bills(&tariff.inner)).and_then(|v| js(env, &v)))
    }

    /// How many local calendar months (bills) the load spans.
    #[napi(getter)]
    pub fn length(&self) -> u32 {
        u32::try_from(self.inner.len()).unwrap_or(u32::MAX)
    }

    /// How many local calendar months (bills) the load spans (as `length`).
    #[napi]
    pub fn len(&self) -> u32 {
        self.length()
    }

    /// The request of month `i` (0-based), the load's request cut to that local month; `null`
    /// past the last month.
    #[napi(catch_unwind, ts_return_type = "BillRequest | null")]
    pub fn month_request(&self, env: Env, i: u32) -> napi::Result<Js> {
        let req = usize::try_from(i).ok().and_then(|i| self.inner.month_request(i));
        guard(env, || js(env, &req))
    }
}

/// A draft invoice for a bill, due `paymentTermsDays` after it is issued.
#[napi(catch_unwind, ts_args_type = "id: string, bill: Bill, paymentTermsDays: number", ts_return_type = "Invoice")]
pub fn create_invoice(env: Env, id: String, bill: Unknown<'_>, payment_terms_days: u32) -> napi::Result<Js> {
    let bill = json_text(env, bill)?;
    guard(env, || {
        let bill: Bill = core(env, from_json(&bill.0, "bill"))?;
        js(env, &(Invoice::new(id, bill, payment_terms_days)))
    })
}

/// `[start, end)` of the calendar month `YYYY-MM` in `timeZone`.
#[napi(catch_unwind, ts_return_type = "{ start: Timestamp; end: Timestamp }")]
pub fn month_period(env: Env, yyyy_mm: String, time_zone: String) -> napi::Result<Js> {
    guard(env, || {
        let tz = core(env, meterkit::time::parse_time_zone(&time_zone))?;
        let (start, end) = core(env, meterkit::billing::month_period(&yyyy_mm, tz))?;
        js(env, &(crate::WindowSpan { start: meterkit::time::fmt_ts(start), end: meterkit::time::fmt_ts(end) }))
    })
}

/// The instant (UTC `Timestamp`) a local date `YYYY-MM-DD` (its first instant) or local time
/// `YYYY-MM-DDTHH:MM[:SS]` names in `timeZone` (the core's `time::local_instant`).
#[napi(catch_unwind, ts_return_type = "Timestamp")]
pub fn local_instant(env: Env, local: String, time_zone: String) -> napi::Result<String> {
    guard(env, || {
        let tz = core(env, meterkit::time::parse_time_zone(&time_zone))?;
        Ok(meterkit::time::fmt_ts(core(env, meterkit::time::local_instant(&local, tz))?))
    })
}

/// Split `total` by `weights` exactly at `scale` decimals (largest remainders; the parts sum to
/// `total`).
#[napi(catch_unwind)]
pub fn allocate(env: Env, total: String, weights: Vec<String>, scale: u32) -> napi::Result<Vec<String>> {
    guard(env, || {
        let total = core(env, meterkit::decimal::parse_decimal(&total).map_err(|e| e.with_field("total")))?;
        let weights = core(
            env,
            weights
                .iter()
                .map(|w| meterkit::decimal::parse_decimal(w).map_err(|e| e.with_field("weights")))
                .collect::<meterkit::Result<Vec<Decimal>>>(),
        )?;
        core(env, meterkit::allocate::allocate(total, &weights, scale))
            .map(|parts| parts.into_iter().map(meterkit::decimal::fmt_decimal).collect())
    })
}

/// A shared meter's reading `total` at `at` split into one usage record per share.
#[napi(
    catch_unwind,
    ts_args_type = "meter: SharedMeter, tenant: string, total: DecimalString, at: Date | Timestamp",
    ts_return_type = "UsageRecord[]"
)]
pub fn split_shared_meter(
    env: Env,
    meter: Unknown<'_>,
    tenant: String,
    total: String,
    at: Unknown<'_>,
) -> napi::Result<Js> {
    let meter = json_text(env, meter)?;
    let at = json_text(env, at)?;
    guard(env, || {
        let meter: SharedMeter = core(env, from_json(&meter.0, "shared meter"))?;
        let total = core(env, meterkit::decimal::parse_decimal(&total).map_err(|e| e.with_field("total")))?;
        let at = core(env, ts_from_json(&at.0, "at"))?;
        core(env, meter.split(&tenant, total, at)).and_then(|v| js(env, &v))
    })
}
