//! Alerts: consecutive warning and error [`Finding`]s on one series merged into the unit an
//! operator reads (start, end, peak value and its expected range, rules, severity), as monitoring
//! systems group the evaluations of one firing condition into one alert.
//!
//! See `docs/validation.md` ("Alerts") for the rules and the evaluation on labelled data.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::record::UsageRecord;
use crate::vee::{Finding, Rule, Severity};

/// How findings become alerts. JSON: `{"gap":72,"warmup":288}`, every field optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// Values of the series without a finding after which an open alert is resolved; a finding
    /// within `gap` values of the previous one extends the alert. Default 72 (six hours of
    /// 5-minute values, three days of hourly ones): a fault that keeps firing is one alert.
    pub gap: u32,
    /// Values of a series during which no alert is raised (its statistics are still being
    /// learned); the findings themselves are still reported. Default 288, as
    /// `ValidationConfig::warmup`.
    pub warmup: u32,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig { gap: 72, warmup: 288 }
    }
}

impl AlertConfig {
    /// Check the parameters.
    ///
    /// # Errors
    /// [`ErrorKind::Validation`] naming `gap` when it is 0.
    pub fn check(&self) -> Result<()> {
        if self.gap == 0 {
            return Err(Error::new(ErrorKind::Validation, "gap must be at least 1.").with_field("gap"));
        }
        Ok(())
    }
}

/// One alert: the warning and error findings of one series `(tenant, subject, metric)` with no
/// more than [`AlertConfig::gap`] values between consecutive ones.
///
/// JSON (`validate --alerts --output json`, `AlertRaised`/`AlertResolved` events, every binding):
/// `{"tenant","subject","metric","start","end","rules","severity","peak","expected","findings"}` —
/// `start`/`end` RFC 3339 UTC (the first and last finding), `rules` the rule names in the order
/// they first fired, `severity` the highest, `peak` the value (decimal string, metric's unit) of the
/// strongest finding (largest |score|, the first on ties) and `expected` its expected range
/// `["low","high"]` or `null`, `findings` the number of findings merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Alert {
    /// Tenant of the series.
    pub tenant: String,
    /// Subject (meter, SIM, API key) of the series.
    pub subject: String,
    /// Metric of the series.
    pub metric: String,
    /// Timestamp of the first finding.
    #[serde(with = "crate::time::ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
    pub start: DateTime<Utc>,
    /// Timestamp of the last finding.
    #[serde(with = "crate::time::ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
    pub end: DateTime<Utc>,
    /// Rules involved, in the order they first fired.
    pub rules: Vec<Rule>,
    /// The highest severity of the findings.
    pub severity: Severity,
    /// Value of the strongest finding, in the metric's unit.
    #[serde(default, with = "crate::decimal::opt_decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub peak: Option<Decimal>,
    /// Expected range of the strongest finding, `(low, high)`.
    #[serde(default, with = "crate::vee::opt_range")]
    #[cfg_attr(feature = "ts", ts(type = "[DecimalString, DecimalString] | null"))]
    pub expected: Option<(Decimal, Decimal)>,
    /// Number of findings merged into the alert.
    pub findings: u32,
    /// |score| of the strongest finding (to pick the peak; not serialised).
    #[serde(skip)]
    strength: Decimal,
}

impl Alert {
    fn open(f: &Finding) -> Self {
        Alert {
            tenant: f.tenant.clone(),
            subject: f.subject.clone(),
            metric: f.metric.clone(),
            start: f.timestamp,
            end: f.timestamp,
            rules: vec![f.rule],
            severity: f.severity,
            peak: f.value,
            expected: f.expected,
            findings: 1,
            strength: f.score.unwrap_or_default().abs(),
        }
    }

    fn extend(&mut self, f: &Finding) {
        self.end = self.end.max(f.timestamp);
        if !self.rules.contains(&f.rule) {
            self.rules.push(f.rule);
        }
        self.severity = self.severity.max(f.severity);
        self.findings = self.findings.saturating_add(1);
        let strength = f.score.unwrap_or_default().abs();
        if strength > self.strength || (self.peak.is_none() && f.value.is_some()) {
            self.strength = strength;
            self.peak = f.value;
            self.expected = f.expected;
        }
    }
}

/// A change of an alert: raised at its first finding (the alert as known then), resolved once
/// [`AlertConfig::gap`] values pass without a finding, or at [`AlertBuilder::finish`] (the alert
/// complete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertEvent {
    /// A new alert.
    Raised(Alert),
    /// An alert that ended.
    Resolved(Alert),
}

#[derive(Debug, Clone)]
struct SeriesAlerts {
    tenant: String,
    subject: String,
    metric: String,
    values: u64,
    last_finding: u64,
    open: Option<Alert>,
}

/// Streaming alert grouping: feed every record of a series with the findings about it, get
/// [`AlertEvent`]s. Memory: one small state per series (its key, two counters and at most one
/// open alert). Deterministic: the same records and findings give the same events however they
/// are split into batches.
///
/// ```
/// use meterkit::{vee::alert::AlertBuilder, vee::alert::AlertConfig, vee::alert::AlertEvent, UsageRecord, vee::ValidationConfig, Validator};
/// use chrono::{Duration, TimeZone, Utc};
/// let t0 = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
/// let mut v = Validator::new([("kwh", ValidationConfig::default())])?.with_now(t0 + Duration::days(30));
/// let mut alerts = AlertBuilder::new(AlertConfig { warmup: 0, ..AlertConfig::default() })?;
/// let mut events = Vec::new();
/// for h in 0..40 {
///     let q = if (24..32).contains(&h) { "0" } else if h % 2 == 0 { "1.0" } else { "1.2" };
///     let r = UsageRecord::new("t", format!("r{h}"), "m1", "kwh", q.parse()?, t0 + Duration::hours(h));
///     let f = v.check(&r);
///     events.extend(alerts.observe(&r, &f));
/// }
/// events.extend(alerts.finish());
/// // One alert: raised at the first zero (a drop), resolved with the zero streak merged into it.
/// assert_eq!(events.len(), 2);
/// let AlertEvent::Resolved(a) = &events[1] else { panic!() };
/// let rules: Vec<&str> = a.rules.iter().map(|r| r.as_str()).collect();
/// assert_eq!(rules, ["drop", "zero_streak"]);
/// assert_eq!(a.start, t0 + Duration::hours(24));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct AlertBuilder {
    cfg: AlertConfig,
    series: Vec<SeriesAlerts>,
    index: std::collections::HashMap<(String, String, String), usize>,
}

impl Default for AlertBuilder {
    /// A builder with the default [`AlertConfig`].
    fn default() -> Self {
        AlertBuilder { cfg: AlertConfig::default(), series: Vec::new(), index: std::collections::HashMap::new() }
    }
}

impl AlertBuilder {
    /// A builder with `cfg`.
    ///
    /// # Errors
    /// As [`AlertConfig::check`].
    pub fn new(cfg: AlertConfig) -> Result<Self> {
        cfg.check()?;
        Ok(AlertBuilder { cfg, series: Vec::new(), index: std::collections::HashMap::new() })
    }

    /// The configuration.
    pub fn config(&self) -> AlertConfig {
        self.cfg
    }

    fn state(&mut self, tenant: &str, subject: &str, metric: &str) -> &mut SeriesAlerts {
        let key = (tenant.to_string(), subject.to_string(), metric.to_string());
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                let i = self.series.len();
                self.series.push(SeriesAlerts {
                    tenant: key.0.clone(),
                    subject: key.1.clone(),
                    metric: key.2.clone(),
                    values: 0,
                    last_finding: 0,
                    open: None,
                });
                self.index.insert(key, i);
                i
            }
        };
        &mut self.series[i]
    }

    /// Feed one record and the findings about it (from [`Validator::check`]; only warnings and
    /// errors of the record's own series count). Returns the alerts raised and resolved by it.
    ///
    /// [`Validator::check`]: crate::Validator::check
    pub fn observe(&mut self, record: &UsageRecord, findings: &[Finding]) -> Vec<AlertEvent> {
        let (gap, warmup) = (u64::from(self.cfg.gap), u64::from(self.cfg.warmup));
        let s = self.state(&record.tenant, &record.subject, &record.metric);
        s.values += 1;
        let mut events = Vec::new();
        let alerting: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.is_alert() && f.subject == s.subject && f.metric == s.metric && f.tenant == s.tenant)
            .collect();
        if s.values > warmup {
            for f in alerting {
                match &mut s.open {
                    Some(a) => a.extend(f),
                    None => {
                        let a = Alert::open(f);
                        events.push(AlertEvent::Raised(a.clone()));
                        s.open = Some(a);
                    }
                }
                s.last_finding = s.values;
            }
        }
        if s.open.is_some() && s.values - s.last_finding >= gap {
            if let Some(a) = s.open.take() {
                events.push(AlertEvent::Resolved(a));
            }
        }
        events
    }

    /// Resolve every open alert (end of a batch run, shutdown), in series order.
    pub fn finish(&mut self) -> Vec<AlertEvent> {
        self.series.iter_mut().filter_map(|s| s.open.take().map(AlertEvent::Resolved)).collect()
    }

    /// The alert open on a series, if any.
    pub fn open_alert(&self, tenant: &str, subject: &str, metric: &str) -> Option<&Alert> {
        let key = (tenant.to_string(), subject.to_string(), metric.to_string());
        self.index.get(&key).and_then(|&i| self.series[i].open.as_ref())
    }
}

/// The alerts of a batch: `findings` (as returned by [`Validator::check_all`] for `records`)
/// grouped per series with `cfg`, every alert resolved, ordered by start then series.
///
/// # Errors
/// As [`AlertConfig::check`].
///
/// [`Validator::check_all`]: crate::Validator::check_all
pub fn alerts_of(records: &[UsageRecord], findings: &[Finding], cfg: AlertConfig) -> Result<Vec<Alert>> {
    let mut b = AlertBuilder::new(cfg)?;
    let mut out = Vec::new();
    let mut fi = 0;
    for r in records {
        // Findings about this record: those carrying its id, or (gaps, which have no id) the ones
        // of its series timestamped before it.
        let start = fi;
        while fi < findings.len() && belongs(&findings[fi], r) {
            fi += 1;
        }
        for e in b.observe(r, &findings[start..fi]) {
            if let AlertEvent::Resolved(a) = e {
                out.push(a);
            }
        }
    }
    out.extend(b.finish().into_iter().filter_map(|e| match e {
        AlertEvent::Resolved(a) => Some(a),
        AlertEvent::Raised(_) => None,
    }));
    crate::order::sort_by(&mut out, |a, b| {
        (a.start, &a.tenant, &a.subject, &a.metric).cmp(&(b.start, &b.tenant, &b.subject, &b.metric))
    });
    Ok(out)
}

fn belongs(f: &Finding, r: &UsageRecord) -> bool {
    match &f.id {
        Some(id) => *id == r.id && f.subject == r.subject && f.metric == r.metric && f.tenant == r.tenant,
        None => f.subject == r.subject && f.metric == r.metric && f.tenant == r.tenant && f.timestamp <= r.timestamp,
    }
}
