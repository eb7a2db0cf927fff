//! Validation (VEE): the streaming `Validator`, register readings, gap estimation.

use std::collections::BTreeMap;

use meterkit::{
    vee::alert::AlertConfig, vee::estimate::EstimateConfig, vee::ValidationConfig, vee::ValidationSummary, Finding,
    MeterReading, UsageRecord,
};
use napi::Env;
use napi_derive::napi;

use crate::convert::{core, from_json, guard, js, json_text, opt_json_text, records_from_json, ts_from_json, Js};
use napi::bindgen_prelude::Unknown;

/// Runs the validation rules over records one at a time, keeping per-series state (last values,
/// ranges, seasonal slots) in memory: a batch gives the same findings as the same records
/// streamed one by one.
#[napi]
pub struct Validator {
    inner: meterkit::Validator,
}

#[napi]
impl Validator {
    /// A validator with a configuration per metric (`{ kwh: {...} }`), and optionally a default
    /// for every other metric. Without a default, records of other metrics raise `unknown_metric`.
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "configs?: Record<string, Partial<ValidationConfig>> | null, defaultConfig?: Partial<ValidationConfig> | null"
    )]
    pub fn new(env: Env, configs: Option<Unknown<'_>>, default_config: Option<Unknown<'_>>) -> napi::Result<Self> {
        let configs = opt_json_text(env, configs)?;
        let default_config = opt_json_text(env, default_config)?;
        guard(env, || {
            let configs: BTreeMap<String, ValidationConfig> = match &configs {
                Some(text) if text.0 != "null" => {
                    core(env, crate::convert::from_json_keyed(&text.0, "validation configs"))?
                }
                _ => BTreeMap::new(),
            };
            let mut inner = core(env, meterkit::Validator::new(configs))?;
            if let Some(text) = default_config.filter(|t| t.0 != "null") {
                let config: ValidationConfig = core(env, from_json(&text.0, "validation config"))?;
                inner = core(env, inner.with_default(config))?;
            }
            Ok(Validator { inner })
        })
    }

    /// Compare time rules with this instant instead of the wall clock (`null`: the wall clock).
    #[napi(catch_unwind, ts_args_type = "now: Date | string | null")]
    pub fn set_now(&mut self, env: Env, now: Unknown<'_>) -> napi::Result<()> {
        let now = json_text(env, now)?;
        guard(env, || {
            let now = if now.0 == "null" { None } else { Some(core(env, ts_from_json(&now.0, "now"))?) };
            self.inner.set_now(now);
            Ok(())
        })
    }

    /// Set (or replace) the configuration of one metric.
    #[napi(catch_unwind, ts_args_type = "metric: string, config: Partial<ValidationConfig>")]
    pub fn set_config(&mut self, env: Env, metric: String, config: Unknown<'_>) -> napi::Result<()> {
        let config = json_text(env, config)?;
        guard(env, || {
            let config: ValidationConfig = core(env, from_json(&config.0, "validation config"))?;
            core(env, self.inner.set_config(&metric, config))
        })
    }

    /// Whether records of `metric` are validated (a configuration or a default).
    #[napi(catch_unwind)]
    pub fn covers(&self, metric: String) -> bool {
        self.inner.covers(&metric)
    }

    /// Number of series (tenant, subject, metric) with state.
    #[napi(getter, catch_unwind)]
    pub fn series_count(&self) -> u32 {
        self.inner.series_count() as u32
    }

    /// Check one record (or an array, in order) and update the series state.
    #[napi(catch_unwind, ts_args_type = "records: UsageRecordInput | UsageRecordInput[]", ts_return_type = "Finding[]")]
    pub fn check(&mut self, env: Env, records: Unknown<'_>) -> napi::Result<Js> {
        let records = json_text(env, records)?;
        guard(env, || {
            let records = core(env, records_from_json(&records.0))?;
            js(env, &(self.inner.check_all(&records)))
        })
    }

    /// Start a transaction: `rollback()` restores the series state as it was here.
    #[napi(catch_unwind)]
    pub fn begin(&mut self) {
        self.inner.begin();
    }

    /// Keep the state changes since `begin()`.
    #[napi(catch_unwind)]
    pub fn commit(&mut self) {
        self.inner.commit();
    }

    /// Undo the state changes since `begin()`.
    #[napi(catch_unwind)]
    pub fn rollback(&mut self) {
        self.inner.rollback();
    }
}

/// Counts of findings by severity, action and rule.
#[napi(catch_unwind, ts_args_type = "findings: Finding[]", ts_return_type = "ValidationSummary")]
pub fn validation_summary(env: Env, findings: Unknown<'_>) -> napi::Result<Js> {
    let findings = json_text(env, findings)?;
    guard(env, || {
        let findings: Vec<Finding> = core(env, from_json(&findings.0, "findings"))?;
        js(env, &(ValidationSummary::of(&findings)))
    })
}

/// Turns cumulative register readings of meters into interval usage records (handling rollover
/// of a register with `register_digits`, multipliers, resets), with findings for readings that
/// go backwards or are invalid.
#[napi]
pub struct RegisterTracker {
    inner: meterkit::reading::RegisterTracker,
}

/// What `RegisterTracker.push` returns.
#[derive(serde::Serialize)]
pub struct Pushed {
    records: Vec<UsageRecord>,
    findings: Vec<Finding>,
}

#[napi]
impl RegisterTracker {
    /// A tracker making records of `tenant` and `metric`.
    #[napi(constructor, catch_unwind)]
    pub fn new(tenant: String, metric: String) -> Self {
        RegisterTracker { inner: meterkit::reading::RegisterTracker::new(tenant, metric) }
    }

    /// Push readings (one or an array, in time order per meter): the usage records between
    /// consecutive readings, and findings.
    #[napi(
        catch_unwind,
        ts_args_type = "readings: MeterReading | MeterReading[]",
        ts_return_type = "{ records: UsageRecord[]; findings: Finding[] }"
    )]
    pub fn push(&mut self, env: Env, readings: Unknown<'_>) -> napi::Result<Js> {
        let readings = json_text(env, readings)?;
        guard(env, || {
            let readings: Vec<MeterReading> = if readings.0.trim_start().starts_with('{') {
                vec![core(env, from_json(&readings.0, "meter reading"))?]
            } else {
                core(env, from_json(&readings.0, "meter readings"))?
            };
            let (records, findings) = self.inner.push_all(&readings);
            js(env, &(Pushed { records, findings }))
        })
    }

    /// The last reading of `meter`, or `null`.
    #[napi(catch_unwind, ts_return_type = "MeterReading | null")]
    pub fn last_reading(&self, env: Env, meter: String) -> napi::Result<Js> {
        js(env, &self.inner.last_reading(&meter).cloned())
    }
}

/// Estimated records for the gaps of an interval series (interpolation for short gaps, a
/// profile of past weeks for longer ones), marked with quality `estimated`.
#[napi(
    catch_unwind,
    ts_args_type = "records: UsageRecordInput[], config: EstimateConfig",
    ts_return_type = "UsageRecord[]"
)]
pub fn estimate_gaps(env: Env, records: Unknown<'_>, config: Unknown<'_>) -> napi::Result<Js> {
    let records = json_text(env, records)?;
    let config = json_text(env, config)?;
    guard(env, || {
        let records = core(env, records_from_json(&records.0))?;
        let config: EstimateConfig = core(env, from_json(&config.0, "estimate config"))?;
        core(env, meterkit::vee::estimate::estimate_gaps(&records, &config)).and_then(|v| js(env, &v))
    })
}

/// The alerts of a batch: `findings` (from `Validator.check(records)`) merged per series —
/// findings within `gap` values of each other are one alert, none in a series' first `warmup`
/// values (`config`: `{ gap?: 72, warmup?: 288 }`). Ordered by start.
#[napi(
    catch_unwind,
    ts_args_type = "records: UsageRecordInput[], findings: Finding[], config?: Partial<AlertConfig> | null",
    ts_return_type = "Alert[]"
)]
pub fn alerts_of(
    env: Env,
    records: Unknown<'_>,
    findings: Unknown<'_>,
    config: Option<Unknown<'_>>,
) -> napi::Result<Js> {
    let records = json_text(env, records)?;
    let findings = json_text(env, findings)?;
    let config = opt_json_text(env, config)?;
    guard(env, || {
        let records = core(env, records_from_json(&records.0))?;
        let findings: Vec<Finding> = core(env, from_json(&findings.0, "findings"))?;
        let cfg: AlertConfig = match config {
            Some(c) if c.0 != "null" => core(env, from_json(&c.0, "alert config"))?,
            _ => AlertConfig::default(),
        };
        js(env, &(core(env, meterkit::vee::alert::alerts_of(&records, &findings, cfg))?))
    })
}
