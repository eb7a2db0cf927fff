//! The persisted register tracker: cumulative counters (hotspot session byte counters, RADIUS
//! `Acct-Input-Octets`, SNMP `ifHCInOctets`, register readings) turned into consumption deltas by
//! [`crate::reading::RegisterTracker`], with each meter's latest reading kept in the store, so that
//! a restart does not lose the first delta of every meter. The engine glue is
//! `Engine::track_counters`; this module holds the options and the state's storage form.
//!
//! Storage: one engine metadata entry of the tenant per meter and metric,
//! `counter/{metric}/{meter}` (`/` and `%` percent-encoded), holding the meter's latest accepted
//! reading as [`MeterReading`] JSON. It is written in the same change set as the deltas, so every
//! [`crate::Store`] (memory, SQLite, PostgreSQL) keeps both or neither, with no store method of
//! its own.

use crate::time::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::reading::dating::Dating;
use crate::reading::MeterReading;
use crate::time::parse_time_zone;

/// Settings of `Engine::track_counters`.
///
/// JSON: `{"dating":"pro_rata","time_zone":"UTC","profile":null}`; every key optional.
///
/// * `dating` — where each delta is dated: `pro_rata` (default: split over the local days of the
///   interval), `start` or `end` ([`Dating`]).
/// * `time_zone` — IANA zone whose midnights split an interval (`pro_rata`; default `UTC`).
/// * `profile` — 24 hour-of-day weights (local time) to split by a load profile instead of by time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default, deny_unknown_fields)]
pub struct CounterOptions {
    /// Where each delta is dated.
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub dating: Dating,
    /// Zone of the day boundaries.
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub time_zone: String,
    /// Hour-of-day weights (24), or `None` for pro rata by time.
    #[serde(with = "crate::reading::check::opt_decimals")]
    #[cfg_attr(feature = "ts", ts(optional = nullable, type = "DecimalString[]"))]
    pub profile: Option<Vec<Decimal>>,
}

impl Default for CounterOptions {
    fn default() -> Self {
        CounterOptions { dating: Dating::ProRata, time_zone: "UTC".into(), profile: None }
    }
}

impl CounterOptions {
    /// Options dating every delta by `dating` (UTC days, no profile).
    pub fn dated(dating: Dating) -> Self {
        CounterOptions { dating, ..CounterOptions::default() }
    }

    /// Check the settings; the time zone they use.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidTimeZone`]; [`ErrorKind::InvalidQuery`] for a profile that is not 24
    /// non-negative weights with a positive sum.
    pub fn check(&self) -> Result<Tz> {
        if let Some(p) = &self.profile {
            if p.len() != 24 || p.iter().any(Decimal::is_sign_negative) || p.iter().all(Decimal::is_zero) {
                return Err(Error::new(
                    ErrorKind::InvalidQuery,
                    "A load profile is 24 hour-of-day weights, none negative, not all zero.".to_string(),
                )
                .with_field("profile"));
            }
        }
        parse_time_zone(&self.time_zone)
    }
}

/// The metadata key of a meter's tracker state.
pub(crate) fn state_key(metric: &str, meter: &str) -> String {
    format!("counter/{}/{}", escape(metric), escape(meter))
}

fn escape(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

/// The stored form of a meter's state.
pub(crate) fn state_json(reading: &MeterReading) -> Result<String> {
    serde_json::to_string(reading)
        .map_err(|e| Error::new(ErrorKind::Store, format!("A counter state does not serialize: {e}")))
}

/// Parse a stored state.
pub(crate) fn parse_state(json: &str) -> Result<MeterReading> {
    serde_json::from_str(json)
        .map_err(|e| Error::new(ErrorKind::Store, format!("A stored counter state does not parse ({e}): {json}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_escape_slashes_and_options_refuse_unknown_keys() {
        assert_eq!(state_key("bytes/in", "sess%1/a"), "counter/bytes%2Fin/sess%251%2Fa");
        assert!(serde_json::from_str::<CounterOptions>(r#"{"datng":"end"}"#).is_err());
        let o: CounterOptions = serde_json::from_str(r#"{"dating":"end"}"#).unwrap();
        assert_eq!(o, CounterOptions::dated(Dating::End));
        assert!(CounterOptions { profile: Some(vec![Decimal::ONE]), ..CounterOptions::default() }.check().is_err());
        assert!(CounterOptions { time_zone: "Mars/Base".into(), ..CounterOptions::default() }.check().is_err());
    }
}
