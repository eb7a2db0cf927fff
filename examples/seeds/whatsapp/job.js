'use strict'
// WhatsApp Business usage: daily conversation counts per organisation, channel and category
// (a BSP's analytics) → months per organisation with their cost, on meterkit.
// Re-running the job is safe (idempotency keys), and a revised day replaces the old count.
//   node examples/seeds/whatsapp/job.js          prints the monthly report as JSON
const { Engine, Tariff, monthPeriod } = require('meterkit')
const { generate } = require('./data')

const record = (row) => ({
  id: `${row.channel}/${row.day}/${row.category}`,
  tenant: row.org,
  subject: row.channel,
  metric: 'conversations',
  quantity: String(row.count),
  timestamp: row.at,
  dimensions: { category: row.category },
})

/** A tariff with one per-conversation charge per category (a dimension filter). */
const tariff = (rates, timeZone) => Tariff.fromJson({
  name: 'WhatsApp conversations', currency: 'USD', rounding: 'half_up', time_zone: timeZone,
  charges: Object.entries(rates).map(([category, rate]) => ({
    id: category, type: 'per_unit', rate, unit: 'conversation', filter: { category }, description: category,
  })),
})

function run(data, engine = new Engine()) {
  for (const o of data.orgs) {
    engine.addSpec({ metric: 'conversations', window: 'month', timeZone: o.timeZone, groupBy: ['category'] })
  }
  const first = engine.ingest(data.rows.map(record))
  const again = engine.ingest(data.resent.map(record)) // the cron job runs twice: all duplicates
  const revised = engine.replace(data.revisions.map(record)) // the BSP revised some days
  const out = { ingest: { accepted: first.accepted, resentDuplicates: again.duplicates, replaced: revised.replaced ?? 0 }, months: [] }
  for (const o of data.orgs) {
    const rows = engine.query({ tenant: o.org, metric: 'conversations', window: 'month', timeZone: o.timeZone, groupBy: ['category'] })
    for (const month of [...new Set(rows.map((b) => b.windowStart))]) {
      const label = new Intl.DateTimeFormat('en-CA', { timeZone: o.timeZone, year: 'numeric', month: '2-digit' }).format(new Date(month))
      const period = monthPeriod(label, o.timeZone)
      const conversations = Object.fromEntries(rows.filter((b) => b.windowStart === month).map((b) => [b.group.category, b.sum]))
      const bills = o.channels.map((channel) => engine.bill(tariff(data.rates, o.timeZone), {
        tenant: o.org, subject: channel, metric: 'conversations', periodStart: period.start, periodEnd: period.end, timeZone: o.timeZone,
      }))
      const cost = Object.fromEntries(data.categories.map((c) => [c, bills.map((b) => b.lines.find((l) => l.charge === c)?.amount ?? '0.00')]))
      out.months.push({ org: o.org, month: label, conversations, costByChannel: cost, totalByChannel: bills.map((b) => b.total) })
    }
  }
  return out
}

module.exports = { run }
if (require.main === module) console.log(JSON.stringify(run(generate()), null, 1))
