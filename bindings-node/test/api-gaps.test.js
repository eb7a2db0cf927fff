'use strict'
// Issue 14 through the JS API: unknown keys refused by name, quotas on any window kept at
// ingest, repeated batches answered as duplicates, per-source watermarks.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine, Tariff, localInstant } = require('meterkit')
const { thrown } = require('./helpers.js')

const rec = (id, subject, quantity, timestamp, extra = {}) =>
  ({ id, tenant: 't', subject, metric: 'bytes', quantity, timestamp, ...extra })

test('unknown keys are refused naming them (a query, a record, a spec, a quota)', () => {
  const engine = new Engine()
  const q = { tenant: 't', metric: 'bytes', window: 'day', time_zone: 'UTC' }
  const e1 = thrown(() => engine.query({ ...q, groupBy: ['carrier'] }))
  assert.equal(e1.code, 'E_PARSE')
  assert.match(e1.message, /groupBy/)
  const e2 = thrown(() => engine.ingest([rec('1', 's', '1', '2024-05-01T00:00:00Z', { dimension: { carrier: 'a' } })]))
  assert.equal(e2.code, 'E_PARSE')
  assert.match(e2.message, /dimension/)
  assert.match(thrown(() => engine.addSpec({ metric: 'bytes', window: 'day', time_zone: 'UTC', grup_by: ['c'] })).message, /grup_by/)
  const quota = { id: 'q', tenant: 't', metric: 'bytes', period: 'day', time_zone: 'UTC', limit: '1', levels: ['100'] }
  assert.match(thrown(() => engine.addQuota({ ...quota, timeZone: 'UTC' })).message, /timeZone/)
  assert.equal(engine.ingest([rec('1', 's', '1', '2024-05-01T00:00:00Z')]).accepted, 1) // nothing was stored before
})

test('a daily cap fires per subject per day', async () => {
  const events = []
  const engine = new Engine({ onEvent: (e) => events.push(e) })
  engine.addQuota({ id: 'cap', tenant: 't', metric: 'bytes', period: 'day', time_zone: 'UTC', limit: '100', levels: ['80'] })
  engine.ingest([rec('a', 's', '50', '2024-05-01T10:00:00Z'), rec('b', 's', '90', '2024-05-02T10:00:00Z')])
  engine.ingest([rec('c', 's', '30', '2024-05-01T11:00:00Z')])
  const deadline = Date.now() + 5000
  while (events.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(events.map((e) => [e.period_start, e.used]), [['2024-05-02T00:00:00Z', '90'], ['2024-05-01T00:00:00Z', '80']])
})

test('a repeated batch is all duplicates and the source watermark moves with it', async () => {
  const engine = new Engine()
  const batch = Array.from({ length: 100 }, (_, i) =>
    ({ id: `r${i}`, tenant: 'api', subject: 'portal', metric: 'requests', quantity: '1', timestamp: `2024-06-01T09:${String(i % 60).padStart(2, '0')}:00Z` }))
  assert.equal(engine.lastIngestedAt('api', 'hourly'), null)
  assert.equal(engine.ingestFrom('hourly', batch).accepted, 100)
  const again = await engine.ingestFromAsync('hourly', batch)
  assert.deepEqual([again.accepted, again.duplicates], [0, 100])
  assert.equal(engine.lastIngestedAt('api', 'hourly'), '2024-06-01T09:59:00Z')
  engine.retract('api', 'r7')
  assert.equal(engine.ingest(batch).accepted, 1)
  const e = thrown(() => engine.ingestFrom('', batch))
  assert.deepEqual([e.code, e.field], ['E_INVALID_QUERY', 'source'])
})

test('replace revises a record in one call and keeps the old version', () => {
  const engine = new Engine()
  const day = (quantity) => ({ id: 'd1', tenant: 'org', subject: 'org-1', metric: 'msgs', quantity, timestamp: '2024-07-01T10:00:00Z' })
  engine.ingest([day('10')])
  const report = engine.replace([day('12'), { ...day('1'), id: 'd2' }])
  assert.deepEqual([report.accepted, report.replaced, report.duplicates], [1, 1, 0])
  assert.deepEqual(engine.history('org', 'd1').map((r) => r.quantity), ['10'])
  const rows = engine.query({ tenant: 'org', metric: 'msgs', window: 'day', time_zone: 'UTC' })
  assert.deepEqual([rows[0].sum, rows[0].count], ['13', 2])
  assert.equal(thrown(() => engine.replace([day('1'), day('2')])).code, 'E_INVALID_RECORD')
})

test('buckets: first_at/last_at, local_start in the query zone, group.subject; an account bill', () => {
  const engine = new Engine()
  const req = (id, subject, acct, quantity, timestamp) => ({ id, tenant: 't', subject, metric: 'bytes', quantity, timestamp, dimensions: { account: acct } })
  engine.ingest([
    req('1', 's1', 'A', '40', '2024-12-31T18:30:00Z'),
    req('2', 's1', 'A', '20', '2025-01-10T09:00:00.250Z'),
    req('3', 's2', 'A', '50', '2025-01-04T00:00:00Z'),
    req('4', 's3', 'B', '30', '2025-01-05T00:00:00Z'),
  ])
  const rows = engine.query({ tenant: 't', metric: 'bytes', window: 'month', time_zone: 'Asia/Kolkata', group_by: ['subject'] })
  assert.deepEqual(rows.map((b) => [b.local_start, b.group.subject, b.subject, b.first_at, b.last_at]), [
    ['2025-01-01T00:00:00+05:30', 's1', 's1', '2024-12-31T18:30:00Z', '2025-01-10T09:00:00.250Z'],
    ['2025-01-01T00:00:00+05:30', 's2', 's2', '2025-01-04T00:00:00Z', '2025-01-04T00:00:00Z'],
    ['2025-01-01T00:00:00+05:30', 's3', 's3', '2025-01-05T00:00:00Z', '2025-01-05T00:00:00Z'],
  ])
  const top = engine.topN({ tenant: 't', metric: 'bytes', window: 'month', time_zone: 'UTC', group_by: ['subject'] }, 'sum', 1)
  assert.deepEqual(top.map((b) => [b.group.subject, b.sum]), [['s1', '60']])
  const tariff = Tariff.fromJson({ currency: 'USD', charges: [{ id: 'e', type: 'graduated', tiers: [{ up_to: '100', rate: '0.10' }, { rate: '0.05' }] }] })
  const period = { tenant: 't', metric: 'bytes', period_start: '2024-12-01T00:00:00Z', period_end: '2025-02-01T00:00:00Z', time_zone: 'UTC' }
  const account = engine.bill(tariff, { ...period, filter: { account: 'A' }, per_subject: true })
  assert.equal(account.total, '10.50') // 110 rated together: 100 × 0.10 + 10 × 0.05
  assert.deepEqual(account.per_subject, [{ subject: 's1', quantity: '60', records: 2 }, { subject: 's2', quantity: '50', records: 1 }])
  assert.equal(engine.bill(tariff, { ...period, subjects: ['s1', 's2'] }).total, '10.50')
  assert.equal(engine.bill(tariff, period).total, '12.00') // the whole tenant: 140
  const e = thrown(() => engine.bill(tariff, { ...period, subject: 's1', subjects: ['s2'] }))
  assert.equal(e.code, 'E_INVALID_QUERY')
  assert.equal(e.field, 'subjects')
})

test('localInstant: a local date or time in a zone → the UTC instant', () => {
  assert.equal(localInstant('2025-01-01', 'Asia/Kolkata'), '2024-12-31T18:30:00Z')
  assert.equal(localInstant('2024-09-08', 'America/Santiago'), '2024-09-08T04:00:00Z') // midnight skipped: 01:00
  assert.equal(localInstant('2024-03-10T12:30', 'America/New_York'), '2024-03-10T16:30:00Z')
  const e = thrown(() => localInstant('2024-11-03T01:30', 'America/New_York'))
  assert.equal(e.code, 'E_PARSE')
  assert.equal(e.field, 'local')
})

test("a tenant's own spec, removeSpec, specForQuery; an unplanned query adds no spec; a pooled quota", async () => {
  const events = []
  const engine = new Engine({ onEvent: (e) => events.push(e) })
  const q = { tenant: 't', metric: 'bytes', window: 'cycle:15', time_zone: 'Asia/Kolkata', group_by: ['subject'] }
  engine.ingest([rec('a', 's1', '5', '2024-05-01T10:00:00Z'), rec('b', 's2', '7', '2024-05-01T11:00:00Z')])
  const unplanned = engine.query(q)
  assert.deepEqual(engine.specs(), [], 'an unplanned query adds no spec')
  const spec = { ...Engine.specForQuery(q), tenant: 't' }
  assert.deepEqual(spec, { tenant: 't', metric: 'bytes', window: 'cycle:15', time_zone: 'Asia/Kolkata', group_by: ['subject'], aggregations: [] })
  assert.equal(engine.addSpec(spec), 0)
  assert.deepEqual(engine.query(q), unplanned, 'the spec gives the same rows')
  assert.equal(engine.removeSpec(spec), 0)
  assert.equal(thrown(() => engine.removeSpec(spec)).code, 'E_NOT_FOUND')
  engine.addQuota({ id: 'acct', tenant: 't', metric: 'bytes', subjects: ['s1', 's2'], pooled: true, period: 'month', time_zone: 'UTC', limit: '20', levels: ['50'] })
  engine.ingest([rec('c', 's3', '100', '2024-05-02T10:00:00Z')])
  engine.ingest([rec('d', 's1', '1', '2024-05-02T10:00:00Z')])
  const deadline = Date.now() + 5000
  while (events.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(events.map((e) => [e.quota, e.subject, e.used]), [['acct', '', '13']])
})
