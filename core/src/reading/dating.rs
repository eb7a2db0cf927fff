//! Where the consumption between two register readings is dated: at the reading's end, at its
//! start, or split pro rata across the interval (per local day, by time or by a load profile —
//! the attribution of [`crate::reading::check::attribute`]).

use crate::time::Tz;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::reading::check::attribute;
use crate::record::{Quality, UsageRecord};
use crate::time::fmt_ts;

/// Where the consumption of a reading interval `[previous reading, this reading)` is dated,
/// chosen per call (`ReadingOptions.dating`, `CounterOptions.dating`).
///
/// * `end` — one record at the reading's time (no `end`): a rollup counts it in the window the
///   reading falls in. Id `"{meter}@{reading time}"`.
/// * `start` — one record from the previous reading to this one (`timestamp` = the previous
///   reading, `end` = this one): a rollup counts it in the window the interval starts in. Id
///   `"{meter}@{reading time}/{previous reading time}"`.
/// * `pro_rata` (default) — one record per local day of the options' `time_zone` the interval
///   covers, each day's share by its covered time (or by the options' load profile), the shares
///   summing exactly to the total (docs/readings.md, "Interval attribution"). Ids
///   `"{meter}@{reading time}/{day start}"`.
///
/// JSON: `"end"`, `"start"`, `"pro_rata"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Dating {
    /// At the reading's time.
    End,
    /// At the previous reading's time, spanning the interval.
    Start,
    /// Split over the local days of the interval.
    #[default]
    ProRata,
}

crate::error::enum_names!(Dating, "dating", [End = "end", Start = "start", ProRata = "pro_rata",]);

/// One interval's consumption to date: `total` (metric units) of `meter` over `[from, to)`.
#[derive(Debug, Clone, Copy)]
pub struct Interval<'a> {
    /// The tenant of the records.
    pub tenant: &'a str,
    /// The metric of the records.
    pub metric: &'a str,
    /// The meter (the records' subject).
    pub meter: &'a str,
    /// The previous reading's time.
    pub from: DateTime<Utc>,
    /// This reading's time.
    pub to: DateTime<Utc>,
    /// The consumption, metric units.
    pub total: Decimal,
    /// The records' quality.
    pub quality: Quality,
}

/// The consumption records of `interval` dated by `dating` (see [`Dating`] for the ids and
/// times); `tz` and `profile` (24 hour-of-day weights) are used by `pro_rata` only.
///
/// # Errors
/// Those of [`attribute`] (`pro_rata` over more than ten years; overflow).
pub fn dated_records(
    interval: &Interval<'_>,
    dating: Dating,
    tz: Tz,
    profile: Option<&[Decimal]>,
) -> Result<Vec<UsageRecord>> {
    let Interval { tenant, metric, meter, from, to, total, quality } = *interval;
    let record = |id: String, q: Decimal, at: DateTime<Utc>| {
        UsageRecord::new(tenant, id, meter, metric, q, at).with_quality(quality)
    };
    Ok(match dating {
        Dating::End => vec![record(format!("{meter}@{}", fmt_ts(to)), total.normalize(), to)],
        Dating::Start => {
            vec![record(format!("{meter}@{}/{}", fmt_ts(to), fmt_ts(from)), total.normalize(), from).with_end(to)]
        }
        Dating::ProRata => attribute(total, from, to, tz, profile)?
            .into_iter()
            .map(|(a, b, q)| record(format!("{meter}@{}/{}", fmt_ts(to), fmt_ts(a)), q, a).with_end(b))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// 36 units over 2024-01-31T18:00Z → 2024-02-01T12:00Z (18 h): at the end all in February,
    /// at the start all in January, pro rata 6 h → 12 in January and 12 h → 24 in February.
    #[test]
    fn the_three_datings_of_an_interval_across_a_month_boundary() {
        let iv = Interval {
            tenant: "t",
            metric: "kwh",
            meter: "m",
            from: t("2024-01-31T18:00:00Z"),
            to: t("2024-02-01T12:00:00Z"),
            total: "36".parse().unwrap(),
            quality: Quality::Actual,
        };
        let show = |d: Dating| {
            dated_records(&iv, d, Tz::UTC, None)
                .unwrap()
                .iter()
                .map(|r| format!("{} {} {:?} {}", r.id, fmt_ts(r.timestamp), r.end.map(fmt_ts), r.quantity))
                .collect::<Vec<_>>()
        };
        assert_eq!(show(Dating::End), ["m@2024-02-01T12:00:00Z 2024-02-01T12:00:00Z None 36"]);
        assert_eq!(
            show(Dating::Start),
            ["m@2024-02-01T12:00:00Z/2024-01-31T18:00:00Z 2024-01-31T18:00:00Z Some(\"2024-02-01T12:00:00Z\") 36"]
        );
        assert_eq!(
            show(Dating::ProRata),
            [
                "m@2024-02-01T12:00:00Z/2024-01-31T18:00:00Z 2024-01-31T18:00:00Z Some(\"2024-02-01T00:00:00Z\") 12",
                "m@2024-02-01T12:00:00Z/2024-02-01T00:00:00Z 2024-02-01T00:00:00Z Some(\"2024-02-01T12:00:00Z\") 24"
            ]
        );
        assert_eq!("pro_rata".parse::<Dating>().unwrap(), Dating::ProRata);
        assert!("middle".parse::<Dating>().is_err());
    }
}
