'use strict'
// Generated API request logs: two companies (tenants, each in its own zone), three portals each,
// 2024-02-25 .. 2024-03-15 (New York's DST change on 2024-03-10). The hourly cron sends each hour
// once; hour 20 is sent again (a retried run), and 25 requests are later corrected (status
// revised) by the log pipeline.
const { rng, int, days } = require('../lib/data')

const TENANTS = [
  { tenant: 'northwind', timeZone: 'America/New_York', portals: ['shop', 'partners', 'admin'] },
  { tenant: 'contoso', timeZone: 'Europe/Berlin', portals: ['api', 'mobile', 'web'] },
]

function generate(seed = 7) {
  const r = rng(seed)
  const hours = []
  for (const day of days('2024-02-25', '2024-03-15')) {
    for (let h = 0; h < 24; h++) {
      const start = Date.parse(`${day}T${String(h).padStart(2, '0')}:00:00Z`)
      const logs = []
      for (const { tenant, portals } of TENANTS) {
        for (const portal of portals) {
          for (let n = int(r, 0, 6); n > 0; n--) {
            const at = new Date(start + int(r, 0, 3599999)).toISOString()
            logs.push({ tenant, portal, id: `${portal}-${day}-${h}-${n}`, at, status: r() < 0.93 ? 'success' : 'error' })
          }
        }
      }
      hours.push(logs)
    }
  }
  const all = hours.flat()
  const corrections = all.filter((_, i) => i % 211 === 3).slice(0, 25).map((l) => ({ ...l, status: l.status === 'success' ? 'error' : 'success' }))
  return { tenants: TENANTS, hours, retried: 20, corrections }
}

module.exports = { generate }
