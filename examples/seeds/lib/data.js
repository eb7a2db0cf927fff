'use strict'
// Deterministic generated data for the seed examples (a seeded PRNG: the same data on every run).

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer in [lo, hi]. */
const int = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1))

/** The UTC instant of local wall time `YYYY-MM-DD HH:MM` in `timeZone` (exact across DST). */
function localToUtc(date, hhmm, timeZone) {
  const guess = new Date(`${date}T${hhmm}:00Z`)
  const offset = (d) => {
    const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
      .formatToParts(d).map((x) => [x.type, x.value]))
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - d.getTime()
  }
  let t = guess.getTime() - offset(guess)
  t = guess.getTime() - offset(new Date(t))
  return new Date(t)
}

/** Local `YYYY-MM-DD` of an instant in `timeZone`. */
const localDay = (d, timeZone) => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(d))

/** Every `YYYY-MM-DD` from `from` to `to` inclusive. */
function days(from, to) {
  const out = []
  for (let t = Date.parse(from + 'T00:00:00Z'); t <= Date.parse(to + 'T00:00:00Z'); t += 86400000) out.push(new Date(t).toISOString().slice(0, 10))
  return out
}

module.exports = { rng, int, localToUtc, localDay, days }
