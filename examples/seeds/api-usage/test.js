'use strict'
// Every number the API-usage job prints, against counts made here from the generated logs
// (months from Intl's local date of each request, not meterkit's windows).
const test = require('node:test')
const assert = require('node:assert/strict')
const { generate } = require('./data')
const { run } = require('./job')

test('api-usage: requests, successes, errors and last request per portal and month', () => {
  const data = generate()
  const out = run(data)
  const all = data.hours.flat()
  const final = new Map(all.map((l) => [`${l.tenant}|${l.id}`, l]))
  for (const c of data.corrections) final.set(`${c.tenant}|${c.id}`, c)
  assert.deepEqual(out.cron, { runs: data.hours.length + 1, accepted: all.length, duplicates: data.hours[data.retried].length })
  assert.equal(out.replaced, data.corrections.length)

  const expected = new Map()
  for (const l of final.values()) {
    const tz = data.tenants.find((t) => t.tenant === l.tenant).timeZone
    const month = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit' }).format(new Date(l.at))
    const k = `${l.tenant}|${l.portal}|${month}`
    const e = expected.get(k) ?? { requests: 0, successes: 0, errors: 0, last: '' }
    e.requests += 1
    e[l.status === 'success' ? 'successes' : 'errors'] += 1
    if (l.at > e.last) e.last = l.at
    expected.set(k, e)
  }
  assert.equal(out.months.length, expected.size)
  for (const m of out.months) {
    const e = expected.get(`${m.tenant}|${m.portal}|${m.month}`)
    assert.ok(e, `${m.tenant} ${m.portal} ${m.month}`)
    assert.deepEqual([m.requests, m.successes, m.errors], [e.requests, e.successes, e.errors], `${m.tenant} ${m.portal} ${m.month}`)
    assert.equal(Date.parse(m.lastRequestAt), Date.parse(e.last))
  }
  for (const t of data.tenants) {
    const last = all.filter((l) => l.tenant === t.tenant).reduce((a, l) => (l.at > a ? l.at : a), '')
    assert.equal(Date.parse(out.watermarks[t.tenant]), Date.parse(last))
  }
})
