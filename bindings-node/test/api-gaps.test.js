'use strict'
// Issue 14 through the JS API: unknown keys refused by name, quotas on any window kept at
// ingest, repeated batches answered as duplicates, per-source watermarks.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine } = require('meterkit')
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
