'use strict'
// The tests' independent arithmetic: decimal strings as BigInt, no meterkit, no floats.

/** A decimal string as [units, scale]. */
function parse(text) {
  const s = String(text)
  const neg = s.startsWith('-')
  const [i, f = ''] = s.replace(/^-/, '').split('.')
  return [(neg ? -1n : 1n) * BigInt(i + f), f.length]
}

/** units / 10^scale as the shortest decimal string. */
function show(units, scale) {
  const neg = units < 0n
  const digits = (neg ? -units : units).toString().padStart(scale + 1, '0')
  const int = digits.slice(0, digits.length - scale)
  const frac = digits.slice(digits.length - scale).replace(/0+$/, '')
  return (neg ? '-' : '') + int + (frac ? '.' + frac : '')
}

/** Exact sum of decimal strings. */
function sum(values) {
  let scale = 0
  for (const v of values) scale = Math.max(scale, parse(v)[1])
  let total = 0n
  for (const v of values) {
    const [u, s] = parse(v)
    total += u * 10n ** BigInt(scale - s)
  }
  return show(total, scale)
}

/** a × b rounded half-up (away from zero) to `dp` places, printed with exactly `dp` places. */
function mulRound(a, b, dp) {
  const [ua, sa] = parse(a)
  const [ub, sb] = parse(b)
  return round(ua * ub, sa + sb, dp)
}

/** units / 10^scale rounded half-up to `dp` places, printed with exactly `dp` places. */
function round(units, scale, dp) {
  let q = units
  if (scale > dp) {
    const d = 10n ** BigInt(scale - dp)
    const neg = q < 0n
    const abs = neg ? -q : q
    q = (abs + d / 2n) / d
    if (neg) q = -q
  } else q = q * 10n ** BigInt(dp - scale)
  const t = show(q, dp)
  const [i, f = ''] = t.split('.')
  return dp === 0 ? i : `${i}.${f.padEnd(dp, '0')}`
}

/** Equal as numbers ("1.50" equals "1.5"). */
function same(a, b) {
  const [ua, sa] = parse(a)
  const [ub, sb] = parse(b)
  const s = Math.max(sa, sb)
  return ua * 10n ** BigInt(s - sa) === ub * 10n ** BigInt(s - sb)
}

module.exports = { parse, show, sum, mulRound, round, same }
