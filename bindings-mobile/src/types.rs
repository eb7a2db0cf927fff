//! Mirror types: uniffi records and enums with the fields of the core's types, and their
//! conversions (exact, both ways; no rules here). Maps are `HashMap`s on the host side; the core
//! orders them again (`BTreeMap`) on the way in.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use meterkit::{Decimal, ErrorKind};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{signed, unsigned, MeterkitError};

// ---------------------------------------------------------------------------------------------
// Helpers

/// An instant as `SystemTime` (Kotlin `Instant`, Swift `Date`).
pub(crate) fn to_system(t: DateTime<Utc>) -> SystemTime {
    let secs = t.timestamp();
    let nanos = t.timestamp_subsec_nanos();
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs.unsigned_abs(), nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(u64::from(nanos))
    }
}

/// A `SystemTime` as the core's instant. Errors: `Parse` (naming `field`) outside chrono's range.
pub(crate) fn from_system(t: SystemTime, field: &str) -> Result<DateTime<Utc>, MeterkitError> {
    let out = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok().and_then(|s| DateTime::from_timestamp(s, d.subsec_nanos())),
        Err(e) => {
            let d = e.duration();
            let (mut secs, mut nanos) = (-i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos());
            if nanos > 0 {
                secs -= 1;
                nanos = 1_000_000_000 - nanos;
            }
            DateTime::from_timestamp(secs, nanos)
        }
    };
    out.ok_or_else(|| {
        meterkit::Error::new(meterkit::ErrorKind::Parse, format!("{field} is outside the supported range."))
            .with_field(field)
            .into()
    })
}

fn opt_from_system(t: Option<SystemTime>, field: &str) -> Result<Option<DateTime<Utc>>, MeterkitError> {
    t.map(|t| from_system(t, field)).transpose()
}

/// The snake_case name of an error kind (`conflict`).
pub(crate) fn kind_name(k: ErrorKind) -> String {
    k.name().to_string()
}

/// A core type from JSON text (a repeated key is refused: `meterkit::json::check_json`).
pub(crate) fn parse_json<T: DeserializeOwned>(json: &str, what: &str) -> Result<T, MeterkitError> {
    meterkit::json::check_json(json)?;
    serde_json::from_str(json).map_err(|e| {
        meterkit::Error::new(meterkit::ErrorKind::Parse, format!("The {what} is not valid JSON: {e}")).into()
    })
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String, MeterkitError> {
    serde_json::to_string(v).map_err(|e| MeterkitError::internal(format!("could not serialise: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Enums

// The core's enums, derived with `#[uniffi::remote]`: the variant lists below are checked against
// the core's at compile time (a variant the core adds and this list lacks does not compile; for
// the `#[non_exhaustive]` `Rule` it is caught by `every_core_rule_crosses_the_boundary` below), and
// no conversion code is needed.
pub use meterkit::engine::Fill;
pub use meterkit::reading::ReadingKind;
pub use meterkit::record::Quality;
pub use meterkit::vee::{Action, Rule, Severity};

/// Data quality of a record (`actual`, `flagged`, `estimated`); see the core's `Quality`.
#[uniffi::remote(Enum)]
pub enum Quality {
    /// Measured and accepted.
    Actual,
    /// Measured, flagged by a validation rule, still billed.
    Flagged,
    /// Estimated (never measured).
    Estimated,
}

/// Who produced a register reading; see the core's `ReadingKind`.
#[uniffi::remote(Enum)]
pub enum ReadingKind {
    /// Read from the meter.
    Actual,
    /// Estimated by the utility (consumption from it is `estimated`).
    Estimated,
    /// Read by the customer (treated as actual).
    Customer,
}

/// Whether a query returns empty windows.
#[uniffi::remote(Enum)]
pub enum Fill {
    /// Only windows with records.
    None,
    /// Every window in `[from, to)` (needs both), empty ones with sum and count 0.
    Zero,
}

/// How serious a validation finding is.
#[uniffi::remote(Enum)]
pub enum Severity {
    /// For the record only.
    Info,
    /// Worth a look.
    Warning,
    /// Wrong data.
    Error,
}

/// What a finding does to its record.
#[uniffi::remote(Enum)]
pub enum Action {
    /// Stored as is.
    Accept,
    /// Stored with quality `flagged`.
    Flag,
    /// Not stored.
    Reject,
}

/// The validation rule that raised a finding (the core's `Rule`).
#[uniffi::remote(Enum)]
#[non_exhaustive]
pub enum Rule {
    NegativeQuantity,
    InvalidQuantity,
    FutureTimestamp,
    TooOld,
    UnknownMetric,
    UnknownUnit,
    Spike,
    Drop,
    HighLimit,
    LowLimit,
    Stuck,
    ZeroStreak,
    Gap,
    OutOfOrder,
    Rollover,
    MeterExchange,
    DuplicateReading,
    OutOfOrderReading,
    InvalidReading,
    LevelShift,
    /// A register reading lower than the previous one, neither a roll-over nor a declared exchange.
    BackwardsReading,
    /// A dropped or extra digit of a plausible reading.
    LikelyTypo,
    /// A roll-over whose consumption is not plausible against the history (held for review).
    ImplausibleRollover,
    /// Consumption far above the meter's history.
    ImplausibleConsumption,
    /// A first reading outside the site's typical register range.
    FirstReadingOutOfRange,
}

// ---------------------------------------------------------------------------------------------
// Records

/// An instant of the core (`chrono::DateTime<Utc>`) as a uniffi custom type over `SystemTime`
/// (Kotlin `Instant`, Swift `Date`): what the core records carry, derived with `uniffi::remote`.
pub type Timestamp = DateTime<Utc>;

uniffi::custom_type!(Timestamp, SystemTime, {
    remote,
    lower: |t| to_system(t),
    try_lift: |t| from_system(t, "timestamp").map_err(uniffi::deps::anyhow::Error::new),
});

/// A record's dimensions (the core's ordered map) as a uniffi custom type over a map.
pub type Dimensions = BTreeMap<String, String>;

uniffi::custom_type!(Dimensions, HashMap<String, String>, {
    remote,
    lower: |m| m.into_iter().collect(),
    try_lift: |m| Ok(ordered(m)),
});

/// An ordered map from key-value pairs, by `BTreeMap::extend` (one insert each) and not `collect`:
/// a collected `BTreeMap` sorts the pairs first, through a copy of the standard stable sort made
/// for each iterator type (≈ 4 KB each in the mobile library). Keys come from a `HashMap` here
/// (unique): the maps are the same.
fn ordered<K: Ord, V>(pairs: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    map.extend(pairs);
    map
}

/// One measured amount of usage (the core's `UsageRecord`, derived with `uniffi::remote`: no
/// mirror, no conversion): `(tenant, id)` is the idempotency key; `quantity` is exact, in the
/// metric's unit; `timestamp` is when the usage starts, `end` (optional) when it ends.
#[uniffi::remote(Record)]
pub struct UsageRecord {
    /// Caller-chosen id, unique per tenant.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Meter, SIM, customer, …
    pub subject: String,
    /// Metric (`kwh`, `bytes`, …).
    pub metric: String,
    /// Exact quantity in the metric's unit.
    pub quantity: Decimal,
    /// When the usage starts.
    pub timestamp: Timestamp,
    /// When the usage ends, if known.
    #[uniffi(default = None)]
    pub end: Option<Timestamp>,
    /// Attributes to group and filter by.
    pub dimensions: Dimensions,
    /// Data quality (`actual` unless set by validation or estimation).
    pub quality: Quality,
}

pub use meterkit::UsageRecord;

/// The core records of a host batch (the same values: `UsageRecord` is the core's).
#[allow(clippy::unnecessary_wraps)] // one signature for every batch conversion
pub(crate) fn records_to_core(records: Vec<UsageRecord>) -> Result<Vec<UsageRecord>, MeterkitError> {
    Ok(records)
}

/// A record an ingest did not apply.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Rejection {
    /// Tenant of the record.
    pub tenant: String,
    /// Id of the record.
    pub id: String,
    /// Why, as a snake_case kind (`invalid_record`, `conflict`, `validation`).
    pub kind: String,
    /// The kind's stable code (`E_CONFLICT`, …).
    pub code: String,
    /// Why, in a sentence.
    pub reason: String,
}

/// The range a finding's value was expected in, `(low, high)` (the core's
/// `Finding::expected`), crossing as a [`DecimalRange`] record.
pub type ExpectedRange = (Decimal, Decimal);

/// A decimal range `[low, high]` on the host (Kotlin `DecimalRange(low, high)`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DecimalRange {
    /// Lower end.
    pub low: Decimal,
    /// Upper end.
    pub high: Decimal,
}

uniffi::custom_type!(ExpectedRange, DecimalRange, {
    remote,
    lower: |r| DecimalRange { low: r.0, high: r.1 },
    try_lift: |r| Ok((r.low, r.high)),
});

/// A validation finding (the core's `Finding`, derived with `uniffi::remote`: no mirror, no
/// conversion). A finding is an alert (what a device shows) when its severity is not `Info`.
#[uniffi::remote(Record)]
pub struct Finding {
    /// The rule that raised it.
    pub rule: Rule,
    /// How serious it is.
    pub severity: Severity,
    /// What happens to the record.
    pub action: Action,
    /// Tenant of the record.
    pub tenant: String,
    /// Subject of the record.
    pub subject: String,
    /// Metric of the record.
    pub metric: String,
    /// Record id, when about one record.
    pub id: Option<String>,
    /// The record's timestamp (a gap: the first missing interval).
    pub timestamp: Timestamp,
    /// The checked value, in the metric's unit.
    pub value: Option<Decimal>,
    /// The range the value was expected in, when the rule has one.
    pub expected: Option<ExpectedRange>,
    /// The rule's score (robust z for spike/drop, a count for streaks and gaps).
    pub score: Option<Decimal>,
    /// What was found and what to do, in a sentence.
    pub message: String,
}

pub use meterkit::Finding;

/// Consecutive warning and error findings on one series merged (the core's `Alert`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Alert {
    /// Tenant of the series.
    pub tenant: String,
    /// Subject of the series.
    pub subject: String,
    /// Metric of the series.
    pub metric: String,
    /// First finding.
    pub start: SystemTime,
    /// Last finding.
    pub end: SystemTime,
    /// Rules, in the order they first fired.
    pub rules: Vec<Rule>,
    /// Highest severity.
    pub severity: Severity,
    /// Value of the strongest finding, in the metric's unit.
    pub peak: Option<Decimal>,
    /// Low end of the strongest finding's expected range.
    pub expected_low: Option<Decimal>,
    /// High end of the strongest finding's expected range.
    pub expected_high: Option<Decimal>,
    /// Findings merged.
    pub findings: i64,
}

impl Alert {
    pub(crate) fn from_core(a: meterkit::vee::alert::Alert) -> Self {
        Alert {
            rules: a.rules,
            severity: a.severity,
            tenant: a.tenant,
            subject: a.subject,
            metric: a.metric,
            start: to_system(a.start),
            end: to_system(a.end),
            peak: a.peak,
            expected_low: a.expected.map(|r| r.0),
            expected_high: a.expected.map(|r| r.1),
            findings: i64::from(a.findings),
        }
    }
}

/// Outcome of one ingest (the core's `IngestReport`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct IngestReport {
    /// Records stored and rolled up.
    pub accepted: i64,
    /// Records already stored with the same content (nothing changed).
    pub duplicates: i64,
    /// Records of `Engine::replace` that replaced a stored record with other content.
    pub replaced: i64,
    /// Records not applied, with the reason.
    pub rejected: Vec<Rejection>,
    /// Validation findings about the new records, in batch order.
    pub findings: Vec<Finding>,
}

impl IngestReport {
    pub(crate) fn from_core(r: meterkit::engine::IngestReport) -> Self {
        IngestReport {
            accepted: signed(r.accepted),
            duplicates: signed(r.duplicates),
            replaced: signed(r.replaced),
            rejected: r
                .rejected
                .into_iter()
                .map(|x| Rejection {
                    tenant: x.tenant,
                    id: x.id,
                    kind: kind_name(x.kind),
                    code: x.kind.code().to_string(),
                    reason: x.reason,
                })
                .collect(),
            findings: r.findings,
        }
    }

    fn to_core(&self) -> Result<meterkit::engine::IngestReport, MeterkitError> {
        Ok(meterkit::engine::IngestReport {
            accepted: unsigned(self.accepted, "accepted")?,
            duplicates: unsigned(self.duplicates, "duplicates")?,
            replaced: unsigned(self.replaced, "replaced")?,
            rejected: self
                .rejected
                .iter()
                .map(|x| {
                    Ok(meterkit::engine::Rejection {
                        tenant: x.tenant.clone(),
                        id: x.id.clone(),
                        kind: parse_json(&format!("\"{}\"", x.kind), "error kind")?,
                        reason: x.reason.clone(),
                    })
                })
                .collect::<Result<_, MeterkitError>>()?,
            findings: self.findings.clone(),
        })
    }
}

/// One window of a rollup (the core's `Bucket`). `min`, `max`, `mean`, `latest` are `None` for
/// an empty (zero-filled) window; `group` maps each group-by dimension to its value (`None`:
/// records without it).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
#[allow(missing_docs)] // one-to-one with the core's documented `Bucket`
pub struct Bucket {
    pub window_start: SystemTime,
    pub window_end: SystemTime,
    /// Window start as local time with offset in the query's zone (`2025-01-01T00:00:00+05:30`).
    pub local_start: String,
    pub subject: Option<String>,
    pub metric: String,
    pub group: HashMap<String, Option<String>>,
    pub sum: Decimal,
    pub count: i64,
    pub min: Option<Decimal>,
    pub max: Option<Decimal>,
    pub mean: Option<Decimal>,
    pub latest: Option<Decimal>,
    pub unique: HashMap<String, i64>,
    pub flagged_count: i64,
    pub flagged_sum: Decimal,
    pub estimated_count: i64,
    pub estimated_sum: Decimal,
    /// Time of the window's earliest record (`None`: empty window).
    pub first_at: Option<SystemTime>,
    /// Time of the window's latest record (`None`: empty window).
    pub last_at: Option<SystemTime>,
}

impl From<meterkit::Bucket> for Bucket {
    fn from(b: meterkit::Bucket) -> Self {
        Bucket {
            window_start: to_system(b.window_start),
            window_end: to_system(b.window_end),
            local_start: b.local_start,
            subject: b.subject,
            metric: b.metric,
            group: b.group.into_iter().collect(),
            sum: b.sum,
            count: signed(b.count),
            min: b.min,
            max: b.max,
            mean: b.mean,
            latest: b.latest,
            unique: b.unique.into_iter().map(|(k, v)| (k, signed(v))).collect(),
            flagged_count: signed(b.flagged_count),
            flagged_sum: b.flagged_sum,
            estimated_count: signed(b.estimated_count),
            estimated_sum: b.estimated_sum,
            first_at: b.first_at.map(to_system),
            last_at: b.last_at.map(to_system),
        }
    }
}

impl Bucket {
    fn to_core(&self) -> Result<meterkit::Bucket, MeterkitError> {
        Ok(meterkit::Bucket {
            window_start: from_system(self.window_start, "window_start")?,
            window_end: from_system(self.window_end, "window_end")?,
            local_start: self.local_start.clone(),
            subject: self.subject.clone(),
            metric: self.metric.clone(),
            group: ordered(self.group.iter().map(|(k, v)| (k.clone(), v.clone()))),
            sum: self.sum,
            count: unsigned(self.count, "count")?,
            min: self.min,
            max: self.max,
            mean: self.mean,
            latest: self.latest,
            unique: ordered(
                self.unique
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), unsigned(*v, "unique")?)))
                    .collect::<Result<Vec<_>, MeterkitError>>()?,
            ),
            flagged_count: unsigned(self.flagged_count, "flagged_count")?,
            flagged_sum: self.flagged_sum,
            estimated_count: unsigned(self.estimated_count, "estimated_count")?,
            estimated_sum: self.estimated_sum,
            first_at: self.first_at.map(|t| from_system(t, "first_at")).transpose()?,
            last_at: self.last_at.map(|t| from_system(t, "last_at")).transpose()?,
        })
    }
}

pub(crate) fn buckets_from_core(v: Vec<meterkit::Bucket>) -> Vec<Bucket> {
    v.into_iter().map(Bucket::from).collect()
}

/// A quota (units) or a budget (money, with `tariff`) per subject per period, with alert levels
/// in percent of `limit` (the core's `Quota`). `period` is any window: `day` (a daily cap),
/// `week`, `month`, `cycle:DAY`, `hour`, `minutes:N`, …
#[derive(Debug, Clone, uniffi::Record)]
pub struct Quota {
    /// Identifier, unique per tenant.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Metric counted (`bytes`, `kwh`).
    pub metric: String,
    /// Only this subject; `None`: the subjects of `subjects`, or every subject.
    #[uniffi(default = None)]
    pub subject: Option<String>,
    /// Only these subjects (with `subject` unset); empty: no restriction.
    #[uniffi(default = [])]
    pub subjects: Vec<String>,
    /// Only records whose dimensions have these values.
    #[uniffi(default = None)]
    pub filter: Option<HashMap<String, String>>,
    /// Count the whole scope as one usage (events with an empty subject) instead of each
    /// subject's own.
    #[uniffi(default = false)]
    pub pooled: bool,
    /// The period, a window text (`day`, `month`, `cycle:15`).
    pub period: String,
    /// IANA zone of the periods.
    pub time_zone: String,
    /// The limit: units of the metric, or money in the tariff's currency for a budget.
    pub limit: Decimal,
    /// Alert levels in percent of `limit`.
    pub levels: Vec<Decimal>,
    /// For a budget: the tariff whose bill total is compared with `limit`.
    #[uniffi(default = None)]
    pub tariff: Option<std::sync::Arc<crate::field::Tariff>>,
}

impl Quota {
    /// The core quota, checked. Errors: `InvalidWindow` (field `period`), as the core's
    /// `Quota::check`.
    pub fn into_core(self) -> Result<meterkit::quota::Quota, MeterkitError> {
        let period = self.period.parse::<meterkit::Window>().map_err(|e| e.with_field("period"))?;
        let mut q = meterkit::quota::Quota::new(
            self.id,
            self.tenant,
            self.metric,
            period,
            self.time_zone,
            self.limit,
            self.levels,
        );
        q.subject = self.subject;
        q.subjects = self.subjects;
        q.filter = ordered(self.filter.unwrap_or_default());
        q.pooled = self.pooled;
        q.tariff = self.tariff.map(|t| t.inner.clone());
        q.check()?;
        Ok(q)
    }
}

/// A rollup query (the core's `Query`): one tenant, one metric, one window kind (`minutes:N`,
/// `hour`, `day`, `week`, `month`, `quarter`, `year`, `cycle:DAY`) in one IANA zone.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Query {
    /// The tenant.
    pub tenant: String,
    /// The metric.
    pub metric: String,
    /// The window kind, e.g. `day` or `minutes:15`.
    pub window: String,
    /// IANA zone of the windows.
    pub time_zone: String,
    /// Only this subject.
    #[uniffi(default = None)]
    pub subject: Option<String>,
    /// Only records whose dimensions have these values.
    pub filters: HashMap<String, String>,
    /// Split by these dimensions (`subject` allowed).
    #[uniffi(default = [])]
    pub group_by: Vec<String>,
    /// Dimensions whose distinct values are counted.
    #[uniffi(default = [])]
    pub unique: Vec<String>,
    /// Start of the range (inclusive, widened to its window's start).
    #[uniffi(default = None)]
    pub from: Option<SystemTime>,
    /// End of the range (exclusive).
    #[uniffi(default = None)]
    pub to: Option<SystemTime>,
    /// Whether to return empty windows.
    pub fill: Fill,
}

impl Query {
    /// The core query. Errors: `InvalidWindow` for a bad window text, `Parse` for bad instants.
    pub fn to_core(&self) -> Result<meterkit::Query, MeterkitError> {
        let mut q = meterkit::Query::new(
            self.tenant.clone(),
            self.metric.clone(),
            self.window.parse::<meterkit::Window>()?,
            self.time_zone.clone(),
        );
        q.subject.clone_from(&self.subject);
        q.filters = ordered(self.filters.iter().map(|(k, v)| (k.clone(), v.clone())));
        q.group_by.clone_from(&self.group_by);
        q.unique.clone_from(&self.unique);
        q.from = opt_from_system(self.from, "from")?;
        q.to = opt_from_system(self.to, "to")?;
        q.fill = self.fill;
        Ok(q)
    }

    pub(crate) fn from_core(q: meterkit::Query) -> Self {
        Query {
            tenant: q.tenant,
            metric: q.metric,
            window: q.window.to_string(),
            time_zone: q.time_zone,
            subject: q.subject,
            filters: q.filters.into_iter().collect(),
            group_by: q.group_by,
            unique: q.unique,
            from: q.from.map(to_system),
            to: q.to.map(to_system),
            fill: q.fill,
        }
    }
}

/// Totals of the window containing an instant and of the one before, with the change in percent
/// (2 places, half-even; `None` when the previous sum is 0).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Totals {
    /// The window containing the instant.
    pub current: Bucket,
    /// The window before it.
    pub previous: Bucket,
    /// Change of the sum in percent.
    pub change_percent: Option<Decimal>,
}

/// What to bill (the core's `BillRequest`): the usage of `metric` in `[period_start,
/// period_end)` of `subject`, of the set `subjects` (with `subject` empty) or of the whole tenant
/// (both empty), only records with the `filter` dimension values; days and time-of-use periods in
/// `time_zone`; `per_subject` adds each subject's usage to the bill.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
#[allow(missing_docs)] // one-to-one with the core's documented `BillRequest`
pub struct BillRequest {
    pub tenant: String,
    pub subject: String,
    pub metric: String,
    pub period_start: SystemTime,
    pub period_end: SystemTime,
    pub time_zone: String,
    #[uniffi(default = [])]
    pub subjects: Vec<String>,
    #[uniffi(default = None)]
    pub filter: Option<HashMap<String, String>>,
    #[uniffi(default = false)]
    pub per_subject: bool,
}

impl BillRequest {
    /// The core request. Errors: `Parse` for instants out of range.
    pub fn to_core(&self) -> Result<meterkit::BillRequest, MeterkitError> {
        let mut req = meterkit::BillRequest::new(
            self.tenant.clone(),
            self.subject.clone(),
            self.metric.clone(),
            from_system(self.period_start, "period_start")?,
            from_system(self.period_end, "period_end")?,
            self.time_zone.clone(),
        );
        req.tenant.clone_from(&self.tenant);
        req.subjects.clone_from(&self.subjects);
        req.filter = ordered(self.filter.iter().flatten().map(|(k, v)| (k.clone(), v.clone())));
        req.per_subject = self.per_subject;
        req.check()?;
        Ok(req)
    }

    /// The request of a core `BillRequest` (an empty `filter` is `None`).
    pub fn from_core(req: meterkit::BillRequest) -> Self {
        BillRequest {
            period_start: to_system(req.period_start),
            period_end: to_system(req.period_end),
            filter: (!req.filter.is_empty()).then(|| req.filter.into_iter().collect()),
            tenant: req.tenant,
            subject: req.subject,
            metric: req.metric,
            time_zone: req.time_zone,
            subjects: req.subjects,
            per_subject: req.per_subject,
        }
    }
}

pub use meterkit::billing::BillLine;
pub use meterkit::billing::SubjectUsage;
pub use meterkit::Bill;

/// One subject's usage in a bill over several subjects (the core's `SubjectUsage`).
#[uniffi::remote(Record)]
pub struct SubjectUsage {
    /// The subject.
    pub subject: String,
    /// Sum of its quantities of the bill's metric.
    pub quantity: Decimal,
    /// Number of its records.
    pub records: u64,
}

/// One line of a bill (the core's `BillLine`, derived with `uniffi::remote`); `amount` is money
/// with the currency's minor-unit digits (`12.50`).
#[uniffi::remote(Record)]
pub struct BillLine {
    /// The charge's name in the tariff.
    pub charge: String,
    /// What the line is for, in words.
    pub description: String,
    /// Units billed.
    pub quantity: Decimal,
    /// The unit (`kWh`, `day`, `kW`).
    pub unit: String,
    /// Price per unit.
    pub rate: Decimal,
    /// Money.
    pub amount: Decimal,
    /// The tier (1-based) of a tiered charge.
    pub tier: Option<u32>,
    /// The time-of-use period of a TOU charge.
    pub tou_period: Option<String>,
}

/// A bill (the core's `Bill`, derived with `uniffi::remote`): lines, subtotal, taxes and total in
/// `currency`, money with the currency's minor-unit digits.
#[uniffi::remote(Record)]
pub struct Bill {
    /// Tenant.
    pub tenant: String,
    /// The subject billed.
    pub subject: String,
    /// Start of the billing period.
    pub period_start: Timestamp,
    /// End of the billing period (exclusive).
    pub period_end: Timestamp,
    /// IANA zone of the period.
    pub time_zone: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The lines.
    pub lines: Vec<BillLine>,
    /// Sum of the lines.
    pub subtotal: Decimal,
    /// Taxes.
    pub taxes: Decimal,
    /// Subtotal + taxes.
    pub total: Decimal,
    /// Each subject's usage, when the request asked `per_subject`.
    pub per_subject: Vec<SubjectUsage>,
}

/// One reading of a cumulative register (the core's `MeterReading`, derived with
/// `uniffi::remote`): the meter showed `register` at `timestamp`; `register_digits` (1–28) lets a
/// roll-over be recognised; `multiplier` converts register units to metric units (1 for most
/// meters).
#[uniffi::remote(Record)]
pub struct MeterReading {
    /// The meter (the consumption record's subject).
    pub meter: String,
    /// When the register was read.
    pub timestamp: Timestamp,
    /// The register value (≥ 0).
    pub register: Decimal,
    /// Integer digits of the register, if known.
    #[uniffi(default = None)]
    pub register_digits: Option<u8>,
    /// A binary counter's width in bits (32 for RADIUS octets and SNMP Counter32, 64 for
    /// Counter64), if known: it wraps at 2^bits. At most one of this and `register_digits`.
    #[uniffi(default = None)]
    pub register_bits: Option<u8>,
    /// Register units → metric units.
    pub multiplier: Decimal,
    /// Who produced the reading.
    pub kind: ReadingKind,
}

pub use meterkit::MeterReading;

// ---------------------------------------------------------------------------------------------
// JSON: the core's serde format, for upload, export/import and the shared test vectors.

/// Records as the core's JSON array (`[{"id","tenant",…,"quantity":"1.5",…}]`).
/// Errors: `Parse` for an instant out of range.
#[uniffi::export]
pub fn records_to_json(records: Vec<UsageRecord>) -> Result<String, MeterkitError> {
    to_json(&records_to_core(records)?)
}

/// Records from the core's JSON (an array of records, or one record object).
/// Errors: `Parse` for text that is not valid record JSON.
#[uniffi::export]
pub fn records_from_json(json: String) -> Result<Vec<UsageRecord>, MeterkitError> {
    let records: Vec<meterkit::UsageRecord> = if json.trim_start().starts_with('{') {
        vec![parse_json(&json, "usage record")?]
    } else {
        parse_json(&json, "usage record batch")?
    };
    Ok(records.into_iter().collect())
}

/// An ingest report as the core's JSON. Errors: `Parse` for an unknown rejection kind.
#[uniffi::export]
pub fn ingest_report_to_json(report: IngestReport) -> Result<String, MeterkitError> {
    to_json(&report.to_core()?)
}

/// Buckets as the core's JSON array. Errors: `Parse` for instants out of range.
#[uniffi::export]
pub fn buckets_to_json(buckets: Vec<Bucket>) -> Result<String, MeterkitError> {
    to_json(&buckets.iter().map(Bucket::to_core).collect::<Result<Vec<_>, _>>()?)
}

/// A bill as the core's JSON (money with its minor-unit digits). Errors: `Parse` for instants
/// out of range.
#[uniffi::export]
pub fn bill_to_json(bill: Bill) -> Result<String, MeterkitError> {
    to_json(&bill)
}

/// Findings as the core's JSON array. Errors: `Parse` for instants out of range.
#[uniffi::export]
pub fn findings_to_json(findings: Vec<Finding>) -> Result<String, MeterkitError> {
    to_json(&findings)
}

/// A query from the core's JSON (`{"tenant","metric","window","time_zone",…}`).
/// Errors: `Parse` for invalid JSON or fields.
#[uniffi::export]
pub fn query_from_json(json: String) -> Result<Query, MeterkitError> {
    Ok(Query::from_core(parse_json(&json, "query")?))
}

/// A bill request from the core's JSON (`{"tenant","subject","metric","period_start",
/// "period_end","time_zone"}`; other keys are ignored). Errors: `Parse`.
#[uniffi::export]
pub fn bill_request_from_json(json: String) -> Result<BillRequest, MeterkitError> {
    let r: meterkit::BillRequest = parse_json(&json, "bill request")?;
    Ok(BillRequest {
        tenant: r.tenant,
        subject: r.subject,
        metric: r.metric,
        period_start: to_system(r.period_start),
        period_end: to_system(r.period_end),
        time_zone: r.time_zone,
        subjects: r.subjects,
        filter: (!r.filter.is_empty()).then(|| r.filter.into_iter().collect()),
        per_subject: r.per_subject,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_through_system_time_both_sides_of_1970() {
        for text in
            ["2024-03-01T09:00:00.123456789Z", "1970-01-01T00:00:00Z", "1969-07-20T20:17:40.5Z", "1600-01-01T00:00:00Z"]
        {
            let t = meterkit::time::parse_ts(text).unwrap();
            assert_eq!(from_system(to_system(t), "t").unwrap(), t, "{text}");
        }
    }

    #[test]
    fn records_cross_the_boundary_unchanged() {
        let json = r#"{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1.50","timestamp":"2024-03-01T09:00:00.5Z","end":"2024-03-01T09:15:00Z","dimensions":{"b":"2","a":"1"},"quality":"flagged"}"#;
        let core: meterkit::UsageRecord = serde_json::from_str(json).unwrap();
        let buf = <UsageRecord as uniffi::Lower<crate::UniFfiTag>>::lower(core.clone());
        let back = <UsageRecord as uniffi::Lift<crate::UniFfiTag>>::try_lift(buf).unwrap();
        assert_eq!(back, core);
        assert_eq!(back.quantity.to_string(), "1.50", "the scale is kept");
    }

    #[test]
    fn every_error_kind_keeps_its_code_and_fields() {
        for kind in ErrorKind::ALL {
            let e = meterkit::Error::new(kind, "why").with_record_id("r").with_field("f").with_line(3);
            let m = MeterkitError::from(e);
            let text = m.to_string();
            assert_eq!(text, format!("{}: why", kind.code()));
            assert!(!matches!(m, MeterkitError::Internal { .. }), "{kind:?} has its own variant");
        }
    }

    /// `Rule` is `#[non_exhaustive]` in the core, so a variant missing from the remote
    /// declaration above would compile and panic when lowered: every rule the core lists
    /// (`Rule::NAMES`) must lower.
    #[test]
    fn every_core_rule_crosses_the_boundary() {
        assert!(Rule::NAMES.len() >= 25, "{:?}", Rule::NAMES);
        for (rule, name) in Rule::NAMES {
            let mut buf = Vec::new();
            <Rule as uniffi::Lower<crate::UniFfiTag>>::write(*rule, &mut buf);
            assert!(!buf.is_empty(), "{name}");
        }
    }
}
