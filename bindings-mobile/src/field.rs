//! What a field app checks on the spot, without an engine: a new register reading against its
//! history (the core's VEE rules through `RegisterTracker` and `Validator`), consumption between
//! two readings (roll-over, multiplier), a bill estimate from a tariff. All rules are the core's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::error::{unsigned, MeterkitError};
use crate::types::{records_to_core, Bill, BillRequest, Finding, MeterReading, UsageRecord};

/// A tariff (the core's `Tariff`), read from meterkit TOML or JSON, or from an OpenEI URDB rate
/// record (JSON). Immutable; share it freely between threads.
#[derive(Debug, uniffi::Object)]
pub struct Tariff {
    pub(crate) inner: meterkit::Tariff,
}

#[uniffi::export]
impl Tariff {
    /// The price of a bare `quantity` in the metric's unit under the tariff's first version
    /// (the core's quantity rater: tiers, fixed and minimum charges, taxes — what a price
    /// calculator shows). Errors: `Tariff` for charges that need timed records (TOU, demand),
    /// `Overflow`.
    pub fn quantity_total(&self, quantity: meterkit::Decimal) -> Result<meterkit::Decimal, MeterkitError> {
        Ok(self.inner.quantity_rater()?.total(quantity)?)
    }

    /// A tariff from meterkit TOML. Errors: `Parse` (with `line`) or `Tariff`.
    #[uniffi::constructor]
    pub fn from_toml(text: String) -> Result<Arc<Self>, MeterkitError> {
        Ok(Arc::new(Tariff { inner: meterkit::Tariff::from_toml(&text)? }))
    }

    /// A tariff from meterkit JSON. Errors: `Parse` or `Tariff`.
    #[uniffi::constructor]
    pub fn from_json(text: String) -> Result<Arc<Self>, MeterkitError> {
        Ok(Arc::new(Tariff { inner: meterkit::Tariff::from_json(&text)? }))
    }

    /// A tariff from an OpenEI URDB rate record (JSON). Errors: `Parse` or `Tariff`.
    #[uniffi::constructor]
    pub fn from_urdb(text: String) -> Result<Arc<Self>, MeterkitError> {
        Ok(Arc::new(Tariff { inner: meterkit::Tariff::from_urdb_json(&text)? }))
    }

    /// A tariff from any of the three formats (detected by the core). Errors: `Parse` or `Tariff`.
    #[uniffi::constructor]
    pub fn from_any(text: String) -> Result<Arc<Self>, MeterkitError> {
        Ok(Arc::new(Tariff { inner: meterkit::Tariff::from_any(&text)? }))
    }

    /// The currency (ISO 4217 code).
    pub fn currency(&self) -> String {
        self.inner.currency.clone()
    }

    /// Digits after the decimal point of the currency's money amounts. Errors: `Tariff` for an
    /// unknown currency without `minor_units`.
    pub fn minor_units(&self) -> Result<i32, MeterkitError> {
        Ok(i32::try_from(self.inner.minor_units()?).unwrap_or(i32::MAX))
    }

    /// The tariff as the core's JSON.
    pub fn to_json(&self) -> Result<String, MeterkitError> {
        serde_json::to_string(&self.inner).map_err(|e| MeterkitError::internal(e.to_string()))
    }

    /// A tariff from an OpenEI URDB rate record with PySAM's conventions when `pysam_day_count`
    /// (`$/day` amounts over 365/12 days every month) and lines to `line_decimals` places (default
    /// the cent; `None` by default). Errors: `Parse` or `Tariff`; `InvalidQuery` for negative
    /// `line_decimals`.
    #[uniffi::constructor(default(pysam_day_count = false, line_decimals = None))]
    pub fn from_urdb_with(
        text: String,
        pysam_day_count: bool,
        line_decimals: Option<i32>,
    ) -> Result<Arc<Self>, MeterkitError> {
        let line_decimals = line_decimals.map(|d| unsigned(d, "line_decimals")).transpose()?;
        let day_count = if pysam_day_count {
            meterkit::tariff::urdb::DayCount::PySam
        } else {
            meterkit::tariff::urdb::DayCount::Actual
        };
        let opts = meterkit::tariff::urdb::UrdbOptions { day_count, line_decimals };
        Ok(Arc::new(Tariff { inner: meterkit::Tariff::from_urdb_json_with(&text, opts)? }))
    }

    /// What the published tariff says but does not price (bills show each as `not priced: …`).
    pub fn notes(&self) -> Vec<String> {
        self.inner.notes.clone()
    }

    /// Bill `request` from `records` (only the request's subject and the tariff's metrics in the
    /// period count). Errors: those of the core's `Tariff::bill` (`Tariff`, `InvalidQuery` for an
    /// empty period, `InvalidTimeZone`, `Overflow`), `Parse` for instants out of range.
    pub fn bill(&self, request: BillRequest, records: Vec<UsageRecord>) -> Result<Bill, MeterkitError> {
        let records = records_to_core(records)?;
        Ok(self.inner.bill(&request.to_core()?, &records)?)
    }
}

/// Validation settings for one metric (the core's `ValidationConfig`; its fields and defaults
/// are documented in docs/validation.md). Built from the core's JSON, so every setting is
/// available without a mirror of each field.
#[derive(Debug, uniffi::Object)]
pub struct ValidationConfig {
    pub(crate) inner: meterkit::vee::ValidationConfig,
}

#[uniffi::export]
impl ValidationConfig {
    /// The core's defaults (spikes against the last ten values, streaks, gaps, …).
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(ValidationConfig { inner: meterkit::vee::ValidationConfig::default() })
    }

    /// The core's naive baseline (`ValidationConfig::naive()`): the last-N robust z-score alone
    /// (no confirmation, no seasonal baseline, no scale floor), other rules as default.
    #[uniffi::constructor]
    pub fn naive() -> Arc<Self> {
        Arc::new(ValidationConfig { inner: meterkit::vee::ValidationConfig::naive() })
    }

    /// Settings from the core's JSON (`{"window": 10, "threshold": 3.5, …}`; missing keys take
    /// the defaults). Errors: `Parse` for unknown keys or bad values, `Validation` for
    /// inconsistent settings.
    #[uniffi::constructor]
    pub fn from_json(json: String) -> Result<Arc<Self>, MeterkitError> {
        meterkit::json::check_json(&json)?;
        let inner: meterkit::vee::ValidationConfig = serde_json::from_str(&json).map_err(|e| {
            meterkit::Error::new(meterkit::ErrorKind::Parse, format!("The validation config is invalid: {e}"))
        })?;
        inner.check()?;
        Ok(Arc::new(ValidationConfig { inner }))
    }

    /// The settings as the core's JSON (every key).
    pub fn to_json(&self) -> Result<String, MeterkitError> {
        serde_json::to_string(&self.inner).map_err(|e| MeterkitError::internal(e.to_string()))
    }
}

/// The outcome of checking a register reading (the core's `reading::ReadingCheck`): the
/// consumption it implies (none for a first reading, a meter exchange or a rejected reading) and
/// every finding (reading rules such as `rollover`, `meter_exchange`, `out_of_order_reading`,
/// then the VEE rules on the consumption such as `spike` against the last ten).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReadingCheck {
    /// The consumption record (quantity in metric units, `timestamp` = previous reading,
    /// `end` = this reading, id `"{meter}@{end}"`).
    pub consumption: Option<UsageRecord>,
    /// The findings, reading rules first.
    pub findings: Vec<Finding>,
    /// True when a finding rejects the reading or its consumption (do not keep it as is).
    pub rejected: bool,
    /// True when a finding flags it (keep it, marked `flagged`).
    pub flagged: bool,
}

impl ReadingCheck {
    fn from_core(c: meterkit::reading::ReadingCheck) -> Self {
        ReadingCheck { consumption: c.consumption, findings: c.findings, rejected: c.rejected, flagged: c.flagged }
    }
}

/// Check a new register `reading` of `metric` against the meter's `history` (older readings,
/// oldest first; the last ten or so are enough), storing nothing (the core's
/// `reading::validate_reading`): the register rules (roll-over with `register_digits`, meter
/// exchange, duplicate, out of order, invalid), then the VEE rules with `config` (default: the
/// core's defaults) on the implied consumption. `now` fixes the clock for the future/age rules
/// (default: the wall clock). For the engine's stored history use `Engine.checkReading`.
/// Errors: `Validation` for an invalid config, `Parse` for instants out of range.
#[uniffi::export(default(config = None, now = None))]
pub fn validate_reading(
    tenant: String,
    metric: String,
    history: Vec<MeterReading>,
    reading: MeterReading,
    config: Option<Arc<ValidationConfig>>,
    now: Option<SystemTime>,
) -> Result<ReadingCheck, MeterkitError> {
    let config = config.map(|c| c.inner.clone());
    let now = now.map(|t| crate::types::from_system(t, "now")).transpose()?;
    let check = meterkit::reading::validate_reading(&tenant, &metric, &history, &reading, config, now)?;
    Ok(ReadingCheck::from_core(check))
}

/// Consumption between two readings of one meter (the core's `reading::consumption`):
/// (current − previous) × multiplier, or the roll-over amount when the register wrapped (needs
/// `register_digits`), with the register findings. No VEE statistics (see [`validate_reading`]).
/// Errors: `Parse` for instants out of range.
#[uniffi::export]
pub fn consumption(
    tenant: String,
    metric: String,
    previous: MeterReading,
    current: MeterReading,
) -> Result<ReadingCheck, MeterkitError> {
    Ok(ReadingCheck::from_core(meterkit::reading::consumption(&tenant, &metric, &previous, &current)))
}

/// Estimate the bill of the period in `request` from the records so far (the consumption of the
/// readings kept on the device): the core's bill of those records under `tariff` — the bill to
/// date, standing charges for the whole period. Errors: as `Tariff.bill`.
#[uniffi::export]
pub fn estimate_bill(
    tariff: Arc<Tariff>,
    request: BillRequest,
    records: Vec<UsageRecord>,
) -> Result<Bill, MeterkitError> {
    tariff.bill(request, records)
}

/// Validate `records` in order with a fresh core `Validator`: `configs` per metric, `default`
/// for other metrics (without it, other metrics get an `unknown_metric` finding), the clock at
/// `now` (default: the wall clock). Errors: `Validation` for an invalid config.
#[uniffi::export(default(default = None, now = None))]
#[allow(clippy::implicit_hasher)] // uniffi lifts maps as `HashMap` with the default hasher
pub fn validate_records(
    configs: HashMap<String, Arc<ValidationConfig>>,
    records: Vec<UsageRecord>,
    default: Option<Arc<ValidationConfig>>,
    now: Option<SystemTime>,
) -> Result<Vec<Finding>, MeterkitError> {
    let mut validator = meterkit::Validator::new(configs.into_iter().map(|(m, c)| (m, c.inner.clone())))?;
    if let Some(d) = default {
        validator = validator.with_default(d.inner.clone())?;
    }
    if let Some(now) = now {
        validator = validator.with_now(crate::types::from_system(now, "now")?);
    }
    Ok(validator.check_all(&records_to_core(records)?))
}

/// The alerts of a batch: `findings` (from [`validate_records`] over `records`) merged per series —
/// findings within `gap` values of each other are one alert (default 72), none in a series' first
/// `warmup` values (default 288). Ordered by start. Errors: `Validation` for a `gap` of 0, `Parse`
/// for a timestamp outside the supported range.
#[uniffi::export(default(gap = 72, warmup = 288))]
pub fn alerts_of(
    records: Vec<UsageRecord>,
    findings: Vec<Finding>,
    gap: i32,
    warmup: i32,
) -> Result<Vec<crate::types::Alert>, MeterkitError> {
    let (gap, warmup) = (unsigned(gap, "gap")?, unsigned(warmup, "warmup")?);
    let alerts = meterkit::vee::alert::alerts_of(
        &records_to_core(records)?,
        &findings,
        meterkit::vee::alert::AlertConfig { gap, warmup },
    )?;
    Ok(alerts.into_iter().map(crate::types::Alert::from_core).collect())
}

/// A tariff with the name it is compared under.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NamedTariff {
    pub name: String,
    pub tariff: Arc<Tariff>,
}

/// One month's bill total in a [`TariffComparison`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PeriodTotal {
    /// The local calendar month, `YYYY-MM`.
    pub period: String,
    pub total: meterkit::Decimal,
}

/// One tariff's result of [`compare_tariffs`]: the sum of its monthly bills, or why it cannot
/// price the load.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TariffComparison {
    pub tariff: String,
    pub total: Option<meterkit::Decimal>,
    pub periods: Vec<PeriodTotal>,
    pub error: Option<String>,
}

/// Price one load under many tariffs (the core's `Tariff::compare`): the bill of every local
/// calendar month of `request`'s period, cheapest first; tariffs that cannot price the load last
/// with `error`. Errors: `InvalidQuery` for an empty period, `InvalidTimeZone`, `Parse` for
/// instants out of range.
#[uniffi::export]
pub fn compare_tariffs(
    tariffs: Vec<NamedTariff>,
    request: BillRequest,
    records: Vec<UsageRecord>,
) -> Result<Vec<TariffComparison>, MeterkitError> {
    let records = records_to_core(records)?;
    let named = tariffs.iter().map(|t| (t.name.as_str(), &t.tariff.inner));
    let ranked = meterkit::Tariff::compare(named, &request.to_core()?, &records)?;
    Ok(ranked.into_iter().map(TariffComparison::from_core).collect())
}

impl TariffComparison {
    fn from_core(c: meterkit::billing::compare::Comparison) -> Self {
        TariffComparison {
            tariff: c.tariff,
            total: c.total,
            periods: c.periods.into_iter().map(|p| PeriodTotal { period: p.period, total: p.total }).collect(),
            error: c.error,
        }
    }
}

/// One load prepared once for pricing under many tariffs (the core's
/// `billing::compare::PreparedLoad`): `request`'s period cut into local calendar months, each
/// month's records summed once; `compare` and `bills` then price it without reading the records
/// again. Immutable; share it freely between threads.
#[derive(Debug, uniffi::Object)]
pub struct PreparedLoad {
    inner: meterkit::billing::compare::PreparedLoad<'static>,
}

#[uniffi::export]
#[allow(clippy::len_without_is_empty)] // a load spans at least one month
impl PreparedLoad {
    /// Prepare `records` for `request`. Errors: `InvalidQuery` for an empty period or one of
    /// more than 1,200 months, `InvalidTimeZone`, `Parse` for instants out of range, `Overflow`.
    #[uniffi::constructor]
    pub fn new(request: BillRequest, records: Vec<UsageRecord>) -> Result<Arc<Self>, MeterkitError> {
        let records = records_to_core(records)?;
        let load = meterkit::billing::compare::PreparedLoad::new(&request.to_core()?, &records)?;
        Ok(Arc::new(PreparedLoad { inner: load.into_owned() }))
    }

    /// [`compare_tariffs`] on the prepared load: each tariff's monthly totals and their sum,
    /// cheapest first; tariffs that cannot price the load last with `error`.
    pub fn compare(&self, tariffs: Vec<NamedTariff>) -> Vec<TariffComparison> {
        let named = tariffs.iter().map(|t| (t.name.as_str(), &t.tariff.inner));
        self.inner.compare(named).into_iter().map(TariffComparison::from_core).collect()
    }

    /// The tariff-year's bills under `tariff`: one per local calendar month, in order (carried
    /// credit, ratchet peaks and the annual minimum carry from bill to bill). Errors: those of
    /// `Tariff.bill`.
    pub fn bills(&self, tariff: Arc<Tariff>) -> Result<Vec<Bill>, MeterkitError> {
        Ok(self.inner.bills(&tariff.inner)?)
    }

    /// How many local calendar months (bills) the load spans.
    pub fn len(&self) -> u32 {
        u32::try_from(self.inner.len()).unwrap_or(u32::MAX)
    }

    /// The request of month `i` (0-based), the load's request cut to that local month; `None`
    /// past the last month.
    pub fn month_request(&self, i: u32) -> Option<BillRequest> {
        let i = usize::try_from(i).ok()?;
        self.inner.month_request(i).map(BillRequest::from_core)
    }
}
