//! Register (cumulative) meter readings and their conversion into consumption records, with
//! roll-over, meter-exchange, duplicate and out-of-order findings.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::decimal::fmt_decimal;
use crate::record::{Quality, UsageRecord};
use crate::time::fmt_ts;
use crate::vee::{Action, Finding, Rule, Severity};

pub mod check;
pub mod counter;
pub mod dating;
mod validate;

pub use self::validate::{consumption, validate_reading, ReadingCheck};

/// Who produced a register reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ReadingKind {
    /// Read from the meter (by a field engineer or remotely).
    #[default]
    Actual,
    /// Estimated by the utility; consumption computed from it is marked `estimated`.
    Estimated,
    /// Read by the customer; treated as actual.
    Customer,
}

crate::error::enum_names!(
    ReadingKind,
    "reading kind",
    [Actual = "actual", Estimated = "estimated", Customer = "customer",]
);

/// One reading of a cumulative register: the meter shows `register` at `timestamp`.
///
/// * `register` — the register value in register units (exact decimal, ≥ 0).
/// * `register_digits` — the number of integer digits of the register (1–28), when known: a
///   register with `d` digits counts up to 10^d − 1 and then rolls over to 0.
/// * `register_bits` — for a binary counter, its width in bits (1–95), when known: a `b`-bit
///   counter counts up to 2^b − 1 and then wraps to 0 — RADIUS `Acct-Input-Octets` and SNMP
///   `Counter32` wrap at 2^32 (RFC 2866 §5.3, RFC 2578 §7.1.6), SNMP `Counter64` at 2^64
///   (RFC 2578 §7.1.10). At most one of `register_digits` and `register_bits`.
/// * `multiplier` — register units → metric units (a CT ratio, a pulse weight); default 1.
/// * `kind` — `actual` (default), `estimated` or `customer`.
///
/// JSON: `{"meter","timestamp","register","register_digits"?,"register_bits"?,"multiplier"?,"kind"?}`
/// with decimals
/// as strings (numbers accepted) and RFC 3339 timestamps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct MeterReading {
    /// The meter (becomes the consumption record's subject).
    pub meter: String,
    /// When the register was read.
    #[serde(with = "crate::time::ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Date | Timestamp"))]
    pub timestamp: DateTime<Utc>,
    /// The register value.
    #[serde(with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub register: Decimal,
    /// Integer digits of the register, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_digits: Option<u8>,
    /// Width in bits of a binary counter, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_bits: Option<u8>,
    /// Register units → metric units.
    #[serde(default = "one", with = "crate::decimal::decimal_str")]
    #[cfg_attr(feature = "ts", ts(optional = nullable, type = "DecimalString"))]
    pub multiplier: Decimal,
    /// Who produced the reading.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub kind: ReadingKind,
}

fn one() -> Decimal {
    Decimal::ONE
}

impl MeterReading {
    /// An actual reading with multiplier 1 and unknown digit count.
    pub fn new(meter: impl Into<String>, timestamp: DateTime<Utc>, register: Decimal) -> Self {
        MeterReading {
            meter: meter.into(),
            timestamp,
            register,
            register_digits: None,
            register_bits: None,
            multiplier: Decimal::ONE,
            kind: ReadingKind::Actual,
        }
    }

    /// Set the register's digit count (builder style).
    #[must_use]
    pub fn digits(mut self, digits: u8) -> Self {
        self.register_digits = Some(digits);
        self
    }

    /// Set the width of a binary counter in bits (builder style): 32 for RADIUS octets and SNMP
    /// `Counter32`, 64 for SNMP `Counter64`.
    #[must_use]
    pub fn bits(mut self, bits: u8) -> Self {
        self.register_bits = Some(bits);
        self
    }

    /// How the register wraps, if known: its digits or its bits.
    pub fn wrap(&self) -> Option<Wrap> {
        match (self.register_digits, self.register_bits) {
            (Some(d), _) => Some(Wrap::Digits(d)),
            (None, Some(b)) => Some(Wrap::Bits(b)),
            (None, None) => None,
        }
    }

    /// Set the multiplier (builder style).
    #[must_use]
    pub fn multiplier(mut self, multiplier: Decimal) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Set the kind (builder style).
    #[must_use]
    pub fn kind(mut self, kind: ReadingKind) -> Self {
        self.kind = kind;
        self
    }
}

/// Turns register readings into consumption records, meter by meter, keeping the latest accepted
/// reading of each meter (bounded memory: one reading per meter).
///
/// For each reading after a meter's first:
/// * register up: consumption = (new − previous) × multiplier, from the previous reading's time
///   (`timestamp`) to this one's (`end`); `estimated` when either reading is estimated.
/// * register down, this reading's wrap known (digits `d`: modulus 10^d; bits `b`: modulus 2^b),
///   and the wrapped difference modulus − previous + new smaller than the decrease: a **roll-over** (info, accept) — 99999678 → 00000123 on 8 digits is 445
///   units; 4294967000 → 200 on a 32-bit counter is 496.
/// * register down otherwise: a **meter exchange or reset** (warning, flag); no consumption is
///   computed across it and the new reading becomes the baseline.
/// * same instant as the previous reading: a **duplicate** (info, reject when equal; warning,
///   reject when different — the first is kept).
/// * earlier than the previous reading: **out of order** (warning, reject).
/// * a negative register, one that does not fit its digits, a digit count outside 1–28 or a
///   multiplier ≤ 0: **invalid reading** (error, reject).
///
/// Consumption record ids are `"{meter}@{end RFC 3339}"`, unique per meter and reading time.
///
/// ```
/// use meterkit::{MeterReading, reading::RegisterTracker, vee::Rule};
/// use chrono::{TimeZone, Utc};
/// let mut t = RegisterTracker::new("acme", "kwh");
/// let jan = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// let feb = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
/// t.push(&MeterReading::new("m1", jan, "99999678".parse()?).digits(8));
/// let (record, findings) = t.push(&MeterReading::new("m1", feb, "123".parse()?).digits(8));
/// assert_eq!(record.unwrap().quantity.to_string(), "445");
/// assert_eq!(findings[0].rule, Rule::Rollover);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RegisterTracker {
    tenant: String,
    metric: String,
    last: HashMap<String, MeterReading>,
}

impl RegisterTracker {
    /// A tracker producing records of `tenant` and `metric`.
    pub fn new(tenant: impl Into<String>, metric: impl Into<String>) -> Self {
        RegisterTracker { tenant: tenant.into(), metric: metric.into(), last: HashMap::new() }
    }

    /// The latest accepted reading of `meter`.
    pub fn last_reading(&self, meter: &str) -> Option<&MeterReading> {
        self.last.get(meter)
    }

    /// Resume from a persisted state: `reading` becomes its meter's latest reading (the baseline
    /// of the next delta), as if it had been pushed. `Engine::track_counters` keeps this state in
    /// the store, so that a restart does not lose the first delta of every meter.
    pub fn resume(&mut self, reading: MeterReading) {
        self.last.insert(reading.meter.clone(), reading);
    }

    /// Convert readings in the order given; the records and findings of every reading, in order.
    pub fn push_all(&mut self, readings: &[MeterReading]) -> (Vec<UsageRecord>, Vec<Finding>) {
        let mut records = Vec::new();
        let mut findings = Vec::new();
        for r in readings {
            let (rec, f) = self.push(r);
            records.extend(rec);
            findings.extend(f);
        }
        (records, findings)
    }

    /// Convert one reading: the consumption record since the meter's previous reading (if any)
    /// and the findings about the reading.
    pub fn push(&mut self, reading: &MeterReading) -> (Option<UsageRecord>, Vec<Finding>) {
        let mut findings = Vec::new();
        if let Some(msg) = invalid(reading, None) {
            findings.push(self.finding(reading, Rule::InvalidReading, Severity::Error, Action::Reject, msg));
            return (None, findings);
        }
        let Some(prev) = self.last.get(&reading.meter) else {
            self.last.insert(reading.meter.clone(), reading.clone());
            return (None, findings);
        };
        if reading.timestamp == prev.timestamp {
            let (sev, msg) = if reading.register == prev.register {
                (
                    Severity::Info,
                    format!(
                        "A duplicate reading of meter '{}' at {}; ignored.",
                        reading.meter,
                        fmt_ts(reading.timestamp)
                    ),
                )
            } else {
                (
                    Severity::Warning,
                    format!(
                        "A second reading of meter '{}' at {} differs from the first ({} vs {}); the first is kept, check which is right.",
                        reading.meter,
                        fmt_ts(reading.timestamp),
                        fmt_decimal(reading.register),
                        fmt_decimal(prev.register)
                    ),
                )
            };
            findings.push(self.finding(reading, Rule::DuplicateReading, sev, Action::Reject, msg));
            return (None, findings);
        }
        if reading.timestamp < prev.timestamp {
            let msg = format!(
                "The reading of meter '{}' at {} is older than its latest reading ({}); it is not used.",
                reading.meter,
                fmt_ts(reading.timestamp),
                fmt_ts(prev.timestamp)
            );
            findings.push(self.finding(reading, Rule::OutOfOrderReading, Severity::Warning, Action::Reject, msg));
            return (None, findings);
        }
        let prev = prev.clone();
        let Some(mut units) = reading.register.checked_sub(prev.register) else {
            let msg = format!("The register difference {} − {} overflows.", reading.register, prev.register);
            findings.push(self.finding(reading, Rule::InvalidReading, Severity::Error, Action::Reject, msg));
            return (None, findings);
        };
        if units.is_sign_negative() && !units.is_zero() {
            let decrease = units.abs();
            let wrap = reading.wrap();
            let wrapped = wrap
                .and_then(Wrap::modulus)
                .and_then(|m| m.checked_sub(prev.register))
                .and_then(|d| d.checked_add(reading.register));
            match (wrap, wrapped) {
                (Some(wrap), Some(w)) if w < decrease => {
                    findings.push(self.finding(
                        reading,
                        Rule::Rollover,
                        Severity::Info,
                        Action::Accept,
                        format!(
                            "The {} of meter '{}' {} from {} to {}: {} units.",
                            wrap.register(),
                            reading.meter,
                            wrap.verb(),
                            fmt_decimal(prev.register),
                            fmt_decimal(reading.register),
                            fmt_decimal(w)
                        ),
                    ));
                    units = w;
                }
                _ => {
                    let mut f = self.finding(
                        reading,
                        Rule::MeterExchange,
                        Severity::Warning,
                        Action::Flag,
                        format!(
                            "The register of meter '{}' went down from {} to {}, which is not a plausible roll-over; \
                             a meter exchange or reset? No consumption is computed across it; record the exchange readings.",
                            reading.meter,
                            fmt_decimal(prev.register),
                            fmt_decimal(reading.register)
                        ),
                    );
                    f.expected = None;
                    findings.push(f);
                    self.last.insert(reading.meter.clone(), reading.clone());
                    return (None, findings);
                }
            }
        }
        self.last.insert(reading.meter.clone(), reading.clone());
        let Some(quantity) = units.checked_mul(reading.multiplier) else {
            let msg = format!("The consumption of meter '{}' overflows the decimal range.", reading.meter);
            findings.push(self.finding(reading, Rule::InvalidReading, Severity::Error, Action::Reject, msg));
            return (None, findings);
        };
        let estimated = reading.kind == ReadingKind::Estimated || prev.kind == ReadingKind::Estimated;
        let record = UsageRecord::new(
            self.tenant.clone(),
            format!("{}@{}", reading.meter, fmt_ts(reading.timestamp)),
            reading.meter.clone(),
            self.metric.clone(),
            quantity.normalize(),
            prev.timestamp,
        )
        .with_end(reading.timestamp)
        .with_quality(if estimated { Quality::Estimated } else { Quality::Actual });
        (Some(record), findings)
    }

    fn finding(&self, r: &MeterReading, rule: Rule, severity: Severity, action: Action, message: String) -> Finding {
        Finding {
            rule,
            severity,
            action,
            tenant: self.tenant.clone(),
            subject: r.meter.clone(),
            metric: self.metric.clone(),
            id: None,
            timestamp: r.timestamp,
            value: Some(r.register.normalize()),
            expected: None,
            score: None,
            message,
        }
    }
}

/// 10^digits for 1–28 digits.
pub(crate) fn modulus(digits: u8) -> Option<Decimal> {
    (1..=28).contains(&digits).then(|| Decimal::from_i128_with_scale(10i128.pow(u32::from(digits)), 0))
}

/// How a register wraps back to 0: after its decimal digits or its binary width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    /// A decimal register of this many integer digits (1–28): wraps at 10^d.
    Digits(u8),
    /// A binary counter of this many bits (1–95): wraps at 2^b.
    Bits(u8),
}

impl Wrap {
    /// The value the register wraps at (10^d or 2^b); `None` outside 1–28 digits or 1–95 bits.
    pub fn modulus(self) -> Option<Decimal> {
        match self {
            Wrap::Digits(d) => modulus(d),
            Wrap::Bits(b) => (1..=95).contains(&b).then(|| Decimal::from_i128_with_scale(1i128 << b, 0)),
        }
    }

    /// The register's description in messages: "8-digit register", "32-bit counter".
    pub(crate) fn register(self) -> String {
        match self {
            Wrap::Digits(d) => format!("{d}-digit register"),
            Wrap::Bits(b) => format!("{b}-bit counter"),
        }
    }

    /// What the register did: a decimal register rolls over, a binary counter wraps.
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Wrap::Digits(_) => "rolled over",
            Wrap::Bits(_) => "wrapped",
        }
    }
}

/// Why a reading (and a declared exchange's old final reading) cannot be used, if it cannot: a
/// negative value, a multiplier ≤ 0, a digit count outside 1–28 or bit width outside 1–95, both
/// given, a register beyond its digits, a binary counter that is not a whole number below 2^bits.
pub(crate) fn invalid(r: &MeterReading, exchange: Option<Decimal>) -> Option<String> {
    let values =
        std::iter::once(("register value", r.register)).chain(exchange.map(|e| ("old meter's final reading", e)));
    for (what, v) in values {
        if v.is_sign_negative() && !v.is_zero() {
            return Some(format!("The {what} {} of meter '{}' is negative.", fmt_decimal(v), r.meter));
        }
    }
    if r.multiplier <= Decimal::ZERO {
        return Some(format!("The multiplier {} of meter '{}' must be positive.", fmt_decimal(r.multiplier), r.meter));
    }
    if r.register_digits.is_some() && r.register_bits.is_some() {
        return Some(format!(
            "Meter '{}' gives both register_digits and register_bits; a register has one or the other.",
            r.meter
        ));
    }
    if let Some(d) = r.register_digits {
        let Some(m) = modulus(d) else {
            return Some(format!("The register digit count {d} of meter '{}' is outside 1-28.", r.meter));
        };
        if r.register >= m {
            return Some(format!(
                "The register value {} of meter '{}' has more than the meter's {d} digits.",
                fmt_decimal(r.register),
                r.meter
            ));
        }
    }
    if let Some(b) = r.register_bits {
        let Some(m) = Wrap::Bits(b).modulus() else {
            return Some(format!("The counter width {b} bits of meter '{}' is outside 1-95.", r.meter));
        };
        if r.register >= m || !r.register.fract().is_zero() {
            return Some(format!(
                "The counter value {} of meter '{}' is not a whole number below 2^{b}.",
                fmt_decimal(r.register),
                r.meter
            ));
        }
    }
    None
}
