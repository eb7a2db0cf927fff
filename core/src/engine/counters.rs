//! [`Engine::track_counters`] and [`Engine::counter_state`]: the register tracker with its state
//! in the store (the options and storage form are in `crate::reading::counter`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Engine, IngestReport};
use crate::error::{Error, ErrorKind, Result};
use crate::reading::counter::{parse_state, state_json, state_key, CounterOptions};
use crate::reading::dating::{dated_records, Interval};
use crate::reading::{MeterReading, RegisterTracker};
use crate::record::UsageRecord;
use crate::vee::Finding;

/// The outcome of [`Engine::track_counters`]: the ingest report of the deltas, the deltas
/// themselves (as dated) and the tracker's findings (`rollover`, `meter_exchange`,
/// `duplicate_reading`, `out_of_order_reading`, `invalid_reading`), in reading order.
///
/// JSON: `{"report": IngestReport, "records": [UsageRecord], "findings": [Finding]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CounterOutcome {
    /// The ingest of the deltas (duplicates, rejections and validation findings as for
    /// [`Engine::ingest`]).
    pub report: IngestReport,
    /// The delta records, dated by the options' `dating`.
    pub records: Vec<UsageRecord>,
    /// The tracker's findings about the readings.
    pub findings: Vec<Finding>,
}

impl Engine {
    /// Turn cumulative counter readings of `metric` (session byte counters, RADIUS/SNMP octet
    /// counters, register readings) into consumption deltas and ingest them, **keeping each
    /// meter's latest reading in the store**: a restarted engine (or another one on the same
    /// store) continues from it, so the first delta after a restart is not lost.
    ///
    /// Readings go, in the order given, through a [`RegisterTracker`] resumed from the stored
    /// state of their meters: a rise is a delta × multiplier; a fall with a known wrap
    /// (`register_digits`: 10^d, `register_bits`: 2^b, e.g. 32 for RADIUS octets and SNMP
    /// `Counter32`, 64 for `Counter64`) smaller than the fall is a roll-over (`rollover`, info); any
    /// other fall is a reset (`meter_exchange`, warning: no delta, the reading is the new
    /// baseline); a reading not after the meter's latest is a `duplicate_reading` or an
    /// `out_of_order_reading` and changes nothing. A meter's first reading is its baseline.
    ///
    /// Each delta is dated by `opts.dating` ([`crate::reading::dating::Dating`]: at the
    /// reading's end, at its start, or pro rata over the local days of `opts.time_zone`) and
    /// ingested like [`Engine::ingest`] (idempotency, validation, quotas, events). The records
    /// and the meters' new states are stored in **one atomic change**: a crash keeps both or
    /// neither. Sending the same readings again gives duplicates and changes nothing.
    ///
    /// One writer per meter: two processes tracking the same meter at once on a store without
    /// a write lock (PostgreSQL) may both compute a delta from the same state.
    ///
    /// # Errors
    /// Those of [`CounterOptions::check`]; [`ErrorKind::InvalidRecord`] (field `tenant`,
    /// `metric` or `meter`) for an empty one; [`ErrorKind::InvalidRecord`] for a `pro_rata`
    /// interval over ten years; [`ErrorKind::Store`] (also for a stored state that does not
    /// parse); [`ErrorKind::Overflow`]. On error nothing is stored.
    pub fn track_counters(
        &self,
        tenant: &str,
        metric: &str,
        readings: &[MeterReading],
        opts: &CounterOptions,
    ) -> Result<CounterOutcome> {
        let tz = opts.check()?;
        let empty = [("tenant", tenant), ("metric", metric)]
            .into_iter()
            .chain(readings.iter().map(|r| ("meter", r.meter.as_str())))
            .find(|(_, v)| v.is_empty());
        if let Some((what, _)) = empty {
            return Err(
                Error::new(ErrorKind::InvalidRecord, format!("A counter reading's {what} is empty.")).with_field(what)
            );
        }
        let inner = self.lock();
        let mut tracker = RegisterTracker::new(tenant, metric);
        let mut stored = BTreeMap::new();
        for r in readings {
            if stored.contains_key(r.meter.as_str()) {
                continue;
            }
            let state = inner.store.meta(tenant, &state_key(metric, &r.meter))?;
            if let Some(json) = &state {
                tracker.resume(parse_state(json)?);
            }
            stored.insert(r.meter.as_str(), state);
        }
        let mut records = Vec::new();
        let mut findings = Vec::new();
        for r in readings {
            let (delta, found) = tracker.push(r);
            findings.extend(found);
            if let Some(d) = delta {
                let interval = Interval {
                    tenant,
                    metric,
                    meter: &r.meter,
                    from: d.timestamp,
                    to: r.timestamp,
                    total: d.quantity,
                    quality: d.quality,
                };
                records.extend(dated_records(&interval, opts.dating, tz, opts.profile.as_deref())?);
            }
        }
        let mut meta = Vec::new();
        for (meter, before) in stored {
            let Some(last) = tracker.last_reading(meter) else { continue };
            let json = state_json(last)?;
            if before.as_deref() != Some(json.as_str()) {
                meta.push((tenant.to_string(), state_key(metric, meter), Some(json)));
            }
        }
        if records.is_empty() && meta.is_empty() {
            return Ok(CounterOutcome { report: IngestReport::default(), records, findings });
        }
        let report = self.ingest_guarded(inner, None, &records, &meta, None)?;
        Ok(CounterOutcome { report, records, findings })
    }

    /// The tracker state of `meter` for `metric` of `tenant`: its latest accepted counter
    /// reading (the baseline of its next delta), or `None` before its first.
    ///
    /// # Errors
    /// [`ErrorKind::Store`] (also for a stored state that does not parse).
    pub fn counter_state(&self, tenant: &str, metric: &str, meter: &str) -> Result<Option<MeterReading>> {
        self.lock().store.meta(tenant, &state_key(metric, meter))?.as_deref().map(parse_state).transpose()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::reading::dating::Dating;
    use crate::store::MemoryStore;
    use crate::vee::Rule;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn read(meter: &str, at: &str, value: &str) -> MeterReading {
        MeterReading::new(meter, t(at), value.parse().unwrap()).bits(32)
    }

    /// A 32-bit counter at 4294967000 then 200 wrapped: 2^32 − 4294967000 + 200 = 496 bytes; the
    /// same readings sent again are duplicates and store nothing new.
    #[test]
    fn a_wrapped_32_bit_counter_gives_its_delta_once() {
        let e = Engine::new(MemoryStore::new()).unwrap();
        let opts = CounterOptions::dated(Dating::End);
        let readings = [read("s1", "2024-01-01T00:00:00Z", "4294967000"), read("s1", "2024-01-01T00:05:00Z", "200")];
        let out = e.track_counters("t", "bytes", &readings, &opts).unwrap();
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].quantity.to_string(), "496");
        assert_eq!(out.records[0].id, "s1@2024-01-01T00:05:00Z");
        assert_eq!(out.findings[0].rule, Rule::Rollover);
        assert_eq!(out.report.accepted, 1);
        let again = e.track_counters("t", "bytes", &readings, &opts).unwrap();
        assert!(again.records.is_empty() && again.report.accepted == 0);
        assert_eq!(
            again.findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
            [Rule::OutOfOrderReading, Rule::DuplicateReading]
        );
        assert_eq!(e.counter_state("t", "bytes", "s1").unwrap().unwrap().register.to_string(), "200");
        assert!(e.counter_state("t", "bytes", "s2").unwrap().is_none());
    }
}
