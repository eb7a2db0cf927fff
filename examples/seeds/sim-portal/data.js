'use strict'
// Generated SIM-card usage (CDRs): two fleet customers (tenants, each in its zone), 24 SIMs each
// on three carriers, one CDR per SIM and day with bytes up and down, 2024-02-20 .. 2024-04-05
// (New York's DST change on 2024-03-10, London's on 2024-03-31). The first 60 CDRs are sent
// twice (a mediation retry); 19 are revised later (corrected byte counts).
const { rng, int, days, localToUtc } = require('../lib/data')

const TENANTS = [
  { tenant: 'acme-iot', timeZone: 'Europe/London' },
  { tenant: 'fleetco', timeZone: 'America/New_York' },
]
const CARRIERS = ['vodafone', 'o2', 'three']
const NOW = '2024-04-05T12:00:00Z'

function generate(seed = 3) {
  const r = rng(seed)
  const cdrs = []
  for (const { tenant, timeZone } of TENANTS) {
    for (let s = 1; s <= 24; s++) {
      const iccid = `8944${tenant === 'fleetco' ? '1' : '0'}${String(s).padStart(6, '0')}`
      const carrier = CARRIERS[s % 3]
      for (const day of days('2024-02-20', '2024-04-05')) {
        if (r() < 0.15) continue // a quiet day
        const periodStart = localToUtc(day, `${String(int(r, 0, 23)).padStart(2, '0')}:00`, timeZone).toISOString()
        cdrs.push({ tenant, recordId: `${iccid}-${day}`, iccid, carrier, periodStart, up: String(int(r, 0, 5e6)), down: String(int(r, 1e5, 8e7)) })
      }
    }
  }
  const revised = cdrs.filter((_, i) => i % 101 === 7).slice(0, 20).map((c) => ({ ...c, up: String(BigInt(c.up) + 12345n) }))
  return { tenants: TENANTS, now: NOW, cdrs, resent: cdrs.slice(0, 60), revised }
}

/** A CDR as meterkit usage records: one per direction (the JSONL the MQTT bridge carries too). */
const toRecords = (c) => ['up', 'down'].map((dir) => ({
  id: `${c.recordId}/${dir}`, tenant: c.tenant, subject: c.iccid, metric: 'bytes', quantity: c[dir], timestamp: c.periodStart, dimensions: { carrier: c.carrier, direction: dir },
}))

module.exports = { generate, toRecords }
