'use strict'
// API usage: request logs → per portal and month: requests, successes, errors, last_request_at.
// An hourly cron sends each hour's logs with `ingestFrom('cron', …)`: a repeated run stores
// nothing twice, and `lastIngestedAt` tells the next run where it stopped. Corrected log lines
// replace the old ones (`replace`).
//   node examples/seeds/api-usage/job.js          prints the monthly report as JSON
const { Engine } = require('meterkit')
const { generate } = require('./data')

const record = (log) => ({
  id: log.id, tenant: log.tenant, subject: log.portal, metric: 'requests', quantity: '1', timestamp: log.at, dimensions: { status: log.status },
})

function run(data, engine = new Engine()) {
  for (const t of data.tenants) {
    engine.addSpec({ metric: 'requests', window: 'month', timeZone: t.timeZone, groupBy: ['subject', 'status'] })
  }
  const cron = { runs: 0, accepted: 0, duplicates: 0 }
  const send = (logs) => {
    const report = engine.ingestFrom('cron', logs.map(record))
    cron.runs += 1
    cron.accepted += report.accepted
    cron.duplicates += report.duplicates
  }
  data.hours.forEach(send)
  send(data.hours[data.retried]) // the cron job ran twice for one hour
  const replaced = engine.replace(data.corrections.map(record)).replaced ?? 0
  const out = { cron, replaced, watermarks: {}, months: [] }
  for (const t of data.tenants) {
    out.watermarks[t.tenant] = engine.lastIngestedAt(t.tenant, 'cron')
    const q = { tenant: t.tenant, metric: 'requests', window: 'month', timeZone: t.timeZone, groupBy: ['subject', 'status'] }
    const rows = engine.query(q)
    const months = new Map()
    for (const b of rows) {
      const portal = b.group.subject
      const key = `${b.windowStart}|${portal}`
      if (!months.has(key)) months.set(key, { tenant: t.tenant, portal, start: b.windowStart, requests: 0, successes: 0, errors: 0, lastRequestAt: '' })
      const m = months.get(key)
      m.requests += b.count
      m[b.group.status === 'success' ? 'successes' : 'errors'] += b.count
      if (b.lastAt > m.lastRequestAt) m.lastRequestAt = b.lastAt // the bucket's latest record
    }
    for (const m of months.values()) {
      m.month = new Intl.DateTimeFormat('en-CA', { timeZone: t.timeZone, year: 'numeric', month: '2-digit' }).format(new Date(m.start))
      delete m.start
      out.months.push(m)
    }
  }
  return out
}

module.exports = { run }
if (require.main === module) console.log(JSON.stringify(run(generate()), null, 1))
