'use strict'
// Generated WhatsApp Business analytics: per organisation (tenant), channel (a phone number id)
// and conversation category, one count per local day, 2024-02-20 .. 2024-04-10 (London's and New
// York's DST changes inside). The first week is sent twice; 12 days are later revised by the BSP.
const { rng, int, localToUtc, days } = require('../lib/data')

const ORGS = [
  { org: 'acme-retail', timeZone: 'Europe/London', channels: ['wa-4420001', 'wa-4420002'] },
  { org: 'globex', timeZone: 'America/New_York', channels: ['wa-1212001'] },
  { org: 'initech', timeZone: 'Asia/Kolkata', channels: ['wa-9180001', 'wa-9180002'] },
]
const CATEGORIES = ['marketing', 'utility', 'authentication', 'service']
/** USD per conversation (illustrative, 4 decimals like Meta's rate cards). */
const RATES = { marketing: '0.0250', utility: '0.0040', authentication: '0.0135', service: '0' }

function generate(seed = 20) {
  const r = rng(seed)
  const batches = []
  for (const { org, timeZone, channels } of ORGS) {
    for (const day of days('2024-02-20', '2024-04-10')) {
      for (const channel of channels) {
        for (const category of CATEGORIES) {
          const count = int(r, 0, category === 'marketing' ? 900 : 300)
          batches.push({ org, timeZone, channel, category, day, count, at: localToUtc(day, '00:00', timeZone).toISOString() })
        }
      }
    }
  }
  const revisions = batches.filter((_, i) => i % 97 === 5).map((b) => ({ ...b, count: b.count + int(r, 1, 50) }))
  const resent = batches.filter((b) => b.day < '2024-02-27')
  return { orgs: ORGS, categories: CATEGORIES, rates: RATES, rows: batches, resent, revisions }
}

module.exports = { generate }
