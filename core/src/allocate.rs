//! Shared-meter allocation: split a common meter's usage across subjects by weights, exactly.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::record::UsageRecord;
use crate::time::fmt_ts;

/// Split `total` across `weights` (≥ 0, not all zero) at `scale` decimal places (the meter's
/// resolution: 2 for 0.01 kWh) by the largest-remainder method: each share is first rounded
/// down to the resolution, then the units left over go one each to the shares with the largest
/// remainders (ties to the earlier share). The shares always sum exactly to `total`.
///
/// ```
/// use meterkit::allocate::allocate;
/// let shares = allocate("100".parse()?, &["1".parse()?, "1".parse()?, "1".parse()?], 2)?;
/// assert_eq!(shares.iter().map(|d| d.to_string()).collect::<Vec<_>>(), ["33.34", "33.33", "33.33"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`ErrorKind::InvalidQuery`] when there are no weights, a weight is negative, all are zero,
/// or `total` has more decimals than `scale` (or `scale` > 20); [`ErrorKind::Overflow`] when
/// the exact products exceed 128 bits.
pub fn allocate(total: Decimal, weights: &[Decimal], scale: u32) -> Result<Vec<Decimal>> {
    let bad = |m: String| Error::new(ErrorKind::InvalidQuery, m);
    if weights.is_empty() {
        return Err(bad("Allocation needs at least one weight.".into()));
    }
    if scale > 20 {
        return Err(bad(format!("The resolution scale {scale} is above 20 decimals.")));
    }
    if weights.iter().any(|w| w.is_sign_negative() && !w.is_zero()) {
        return Err(bad("Allocation weights must not be negative.".into()));
    }
    if total.normalize().scale() > scale {
        return Err(bad(format!("The total {total} has more decimals than the resolution ({scale}).")));
    }
    let overflow = || Error::overflow("The allocation");
    // Integers: total in resolution units, weights scaled to a common integer scale.
    let mut t = total;
    t.rescale(scale);
    let units = t.mantissa();
    let wscale = weights.iter().map(|w| w.normalize().scale()).max().unwrap_or(0);
    let ws: Vec<i128> = weights
        .iter()
        .map(|w| {
            let mut w = *w;
            w.rescale(wscale);
            // rescale cannot always reach the scale (a huge weight beside a tiny one).
            if w.scale() == wscale {
                Ok(w.mantissa())
            } else {
                Err(overflow())
            }
        })
        .collect::<Result<_>>()?;
    let wsum = ws.iter().try_fold(0i128, |a, &w| a.checked_add(w)).ok_or_else(overflow)?;
    if wsum == 0 {
        return Err(bad("Allocation weights must not all be zero.".into()));
    }
    let (sign, units) = (units.signum(), units.abs());
    let mut floors = Vec::with_capacity(ws.len());
    let mut rems = Vec::with_capacity(ws.len());
    for &w in &ws {
        let num = units.checked_mul(w).ok_or_else(overflow)?;
        floors.push(num / wsum);
        rems.push(num % wsum);
    }
    let assigned: i128 = floors.iter().sum();
    let left = units - assigned;
    let mut order: Vec<usize> = (0..ws.len()).collect();
    crate::order::sort_by(&mut order, |&a, &b| rems[b].cmp(&rems[a]).then(a.cmp(&b)));
    for &i in order.iter().take(left as usize) {
        floors[i] += 1;
    }
    floors.into_iter().map(|u| Decimal::try_from_i128_with_scale(sign * u, scale).map_err(|_| overflow())).collect()
}

/// A building's common meter (the water-pump motor of a block of flats) shared by subjects.
///
/// [`SharedMeter::split`] turns the meter's usage in a billing period into one usage record per
/// subject, of `metric` (e.g. `motor_kwh`), with the dimension `allocated_from` = the meter, so a
/// tariff charge with `metric = "motor_kwh"` prices each flat's share on its own bill line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SharedMeter {
    /// Subject of the common meter.
    pub meter: String,
    /// Metric of the records `split` creates.
    pub metric: String,
    /// `(subject, weight)`: equal weights for equal shares.
    #[cfg_attr(feature = "ts", ts(type = "Array<[string, DecimalString]>"))]
    pub shares: Vec<(String, Decimal)>,
    /// The meter's resolution in decimal places.
    pub scale: u32,
}

impl SharedMeter {
    /// One record per subject with its share of `total`, timestamped `at` (the period start),
    /// id `{meter}:{subject}:{at}`. The quantities sum exactly to `total` (see [`allocate`]).
    ///
    /// # Errors
    /// As [`allocate`].
    pub fn split(&self, tenant: &str, total: Decimal, at: DateTime<Utc>) -> Result<Vec<UsageRecord>> {
        let weights: Vec<Decimal> = self.shares.iter().map(|(_, w)| *w).collect();
        let parts = allocate(total, &weights, self.scale)?;
        Ok(self
            .shares
            .iter()
            .zip(parts)
            .map(|((subject, _), q)| {
                UsageRecord::new(
                    tenant,
                    format!("{}:{}:{}", self.meter, subject, fmt_ts(at)),
                    subject,
                    &self.metric,
                    q,
                    at,
                )
                .with_dimension("allocated_from", &self.meter)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn weights_and_remainders() {
        // 10 kWh by weights 1:2:3 at 0.01: exact 1.6666.., 3.3333.., 5 → floors 1.66, 3.33, 5.00
        // (sum 9.99); the one unit left goes to the largest remainder, the first share (0.0066.. > 0.0033..).
        let s = allocate(d("10"), &[d("1"), d("2"), d("3")], 2).unwrap();
        assert_eq!(s, vec![d("1.67"), d("3.33"), d("5.00")]);
        // Negative totals (export) split symmetrically.
        let s = allocate(d("-1"), &[d("1"), d("1"), d("1")], 2).unwrap();
        assert_eq!(s, vec![d("-0.34"), d("-0.33"), d("-0.33")]);
        // A zero weight gets nothing.
        assert_eq!(allocate(d("5"), &[d("0"), d("1")], 0).unwrap(), vec![d("0"), d("5")]);
    }

    #[test]
    fn refusals() {
        assert_eq!(allocate(d("1"), &[], 2).unwrap_err().kind(), ErrorKind::InvalidQuery);
        assert_eq!(allocate(d("1"), &[d("0")], 2).unwrap_err().kind(), ErrorKind::InvalidQuery);
        assert_eq!(allocate(d("1"), &[d("-1"), d("2")], 2).unwrap_err().kind(), ErrorKind::InvalidQuery);
        assert_eq!(allocate(d("1.001"), &[d("1")], 2).unwrap_err().kind(), ErrorKind::InvalidQuery);
        // 1e25 and 1e-6 cannot share one integer scale in 96 bits: an error, not wrong shares.
        let e = allocate(d("1"), &[d("10000000000000000000000000"), d("0.000001")], 2).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Overflow);
    }

    #[test]
    fn shared_meter_records() {
        let m = SharedMeter {
            meter: "motor".into(),
            metric: "motor_kwh".into(),
            shares: vec![("flat-1".into(), d("1")), ("flat-2".into(), d("1"))],
            scale: 1,
        };
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let rs = m.split("t", d("12.5"), at).unwrap();
        assert_eq!(rs[0].quantity, d("6.3"));
        assert_eq!(rs[1].quantity, d("6.2"));
        assert_eq!(rs[0].dimensions.get("allocated_from").map(String::as_str), Some("motor"));
        assert_eq!(rs[1].id, "motor:flat-2:2023-11-14T22:13:20Z");
    }

    proptest! {
        #[test]
        fn shares_sum_exactly(total in -10_000_000i64..10_000_000, ws in proptest::collection::vec(0u32..1000, 1..12), scale in 0u32..4) {
            prop_assume!(ws.iter().any(|&w| w > 0));
            let total = Decimal::new(total, scale);
            let weights: Vec<Decimal> = ws.iter().map(|&w| Decimal::new(i64::from(w), 1)).collect();
            let shares = allocate(total, &weights, scale).unwrap();
            prop_assert_eq!(shares.iter().copied().sum::<Decimal>(), total);
            // Each share is within one resolution unit of its exact value.
            let wsum: Decimal = weights.iter().copied().sum();
            let unit = Decimal::new(1, scale);
            for (s, w) in shares.iter().zip(&weights) {
                let exact = total * *w / wsum;
                prop_assert!((*s - exact).abs() < unit);
            }
        }
    }
}
