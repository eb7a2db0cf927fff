'use strict'
// Generated hotspot (PPPoE) accounting: two ISPs (tenants, each in its zone), eight users each,
// 2024-03-25 .. 2024-04-04 (London's DST change on 2024-03-31). Each session has bytes up and
// down. 40 sessions are sent twice (RADIUS retransmits) and 30 are revised by their final
// accounting record (more bytes): the server applies those with `replace`.
const { rng, int, days, localToUtc } = require('../lib/data')

const TENANTS = [
  { tenant: 'fastnet', timeZone: 'Europe/London', dailyCap: '3000000000' },
  { tenant: 'skylink', timeZone: 'Asia/Kolkata', dailyCap: '2500000000' },
]
const NOW = '2024-04-04T16:00:00Z'

function generate(seed = 11) {
  const r = rng(seed)
  const sessions = []
  for (const { tenant, timeZone } of TENANTS) {
    for (const day of days('2024-03-25', '2024-04-04')) {
      for (let u = 1; u <= 8; u++) {
        for (let n = int(r, 0, 3); n > 0; n--) {
          const hh = String(int(r, 0, 15)).padStart(2, '0')
          const start = localToUtc(day, `${hh}:${String(int(r, 0, 59)).padStart(2, '0')}`, timeZone).toISOString()
          sessions.push({ tenant, id: `${tenant}-${day}-u${u}-${n}`, user: `user-${u}`, start, up: String(int(r, 1e5, 2e8)), down: String(int(r, 1e6, 1.2e9)) })
        }
      }
    }
  }
  const resent = sessions.filter((_, i) => i % 13 === 1).slice(0, 40)
  const revised = sessions.filter((_, i) => i % 17 === 2).slice(0, 30).map((s) => ({ ...s, down: String(BigInt(s.down) + BigInt(int(r, 1, 5e7))) }))
  return { tenants: TENANTS, now: NOW, sessions, resent, revised }
}

module.exports = { generate }
