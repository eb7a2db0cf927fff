'use strict'
// Issue 14 through the JS API: unknown keys refused by name, quotas on any window kept at
// ingest, repeated batches answered as duplicates, per-source watermarks.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine, Tariff, localInstant, keysToCamel, keysToSnake } = require('meterkit')
const { thrown } = require('./helpers.js')

const rec = (id, subject, quantity, timestamp, extra = {}) =>
  ({ id, tenant: 't', subject, metric: 'bytes', quantity, timestamp, ...extra })

test('unknown keys are refused naming them (a query, a record, a spec, a quota, a bill request, a config)', () => {
  const engine = new Engine()
  const q = { tenant: 't', metric: 'bytes', window: 'day', timeZone: 'UTC' }
  const e1 = thrown(() => engine.query({ ...q, grupBy: ['carrier'] }))
  assert.equal(e1.code, 'E_PARSE')
  assert.equal(e1.field, 'grupBy')
  assert.match(e1.message, /unknown field `grupBy`, expected one of .*`groupBy`/)
  const e2 = thrown(() => engine.ingest([rec('1', 's', '1', '2024-05-01T00:00:00Z', { dimension: { carrier: 'a' } })]))
  assert.equal(e2.code, 'E_PARSE')
  assert.equal(e2.recordId, '1')
  assert.match(e2.message, /dimension/)
  assert.match(thrown(() => engine.addSpec({ metric: 'bytes', window: 'day', timeZone: 'UTC', grupBy: ['c'] })).message, /grupBy/)
  const quota = { id: 'q', tenant: 't', metric: 'bytes', period: 'day', timeZone: 'UTC', limit: '1', levels: ['100'] }
  assert.match(thrown(() => engine.addQuota({ ...quota, timezone: 'UTC' })).message, /timezone/)
  const tariff = Tariff.fromJson({ currency: 'USD', charges: [{ id: 'e', type: 'graduated', tiers: [{ rate: '1' }] }] })
  const request = { tenant: 't', subject: 's', metric: 'bytes', periodStart: '2024-05-01T00:00:00Z', periodEnd: '2024-06-01T00:00:00Z', timeZone: 'UTC' }
  assert.equal(thrown(() => engine.bill(tariff, { ...request, perSubjects: true })).field, 'perSubjects')
  assert.equal(thrown(() => engine.setValidation('bytes', { highLimt: '1' })).field, 'highLimt')
  assert.equal(engine.ingest([rec('1', 's', '1', '2024-05-01T00:00:00Z')]).accepted, 1) // nothing was stored before
})

test('one naming convention: snake_case keys are refused, naming the camelCase key meant', () => {
  const engine = new Engine()
  const q = { tenant: 't', metric: 'bytes', window: 'day' }
  for (const [what, call, key, meant] of [
    ['query', () => engine.query({ ...q, time_zone: 'UTC' }), 'time_zone', 'timeZone'],
    ['spec', () => engine.addSpec({ ...q, timeZone: 'UTC', group_by: ['c'] }), 'group_by', 'groupBy'],
    ['record', () => engine.ingest(rec('1', 's', '1', '2024-05-01T00:00:00Z', { idempotency_key: 'x' })), 'idempotency_key', 'idempotencyKey'],
    ['quota', () => engine.addQuota({ id: 'q', tenant: 't', metric: 'bytes', period: 'day', time_zone: 'UTC', limit: '1', levels: ['1'] }), 'time_zone', 'timeZone'],
    ['config', () => engine.setValidation('bytes', { high_limit: '1' }), 'high_limit', 'highLimit'],
  ]) {
    const e = thrown(call)
    assert.equal(e.code, 'E_PARSE', what)
    assert.equal(e.field, meant, what) // the field concerned, in this host's convention
    assert.ok(e.message.includes(`'${key}'`) && e.message.includes(`'${meant}'`), `${what}: ${e.message}`)
  }
  assert.equal(engine.records('t', 'bytes', '2024-01-01T00:00:00Z', '2025-01-01T00:00:00Z').length, 0)
})

test('camelCase keys in and out, user-data keys kept as they are', () => {
  const engine = new Engine()
  const dims = { sim_id: 'A', first_at: 'x', Region: 'eu' } // dimension names are data, never renamed
  engine.ingest([rec('1', 's', '5', '2024-05-01T10:00:00Z', { dimensions: dims }), rec('2', 's', '7', '2024-05-01T11:00:00Z', { dimensions: dims })])
  const [b] = engine.query({ tenant: 't', metric: 'bytes', window: 'day', timeZone: 'UTC', groupBy: ['sim_id', 'first_at'], filters: { Region: 'eu' }, unique: ['sim_id'] })
  assert.deepEqual(b.group, { sim_id: 'A', first_at: 'x' })
  assert.deepEqual(b.unique, { sim_id: 1 })
  assert.deepEqual([b.windowStart, b.windowEnd, b.localStart, b.firstAt, b.lastAt],
    ['2024-05-01T00:00:00Z', '2024-05-02T00:00:00Z', '2024-05-01T00:00:00+00:00', '2024-05-01T10:00:00Z', '2024-05-01T11:00:00Z'])
  assert.ok(!Object.keys(b).some((k) => k.includes('_')), Object.keys(b).join(','))
  assert.deepEqual(engine.records('t', 'bytes', '2024-05-01T00:00:00Z', '2024-05-02T00:00:00Z')[0].dimensions, dims)
  // The core's JSON (the CLI's, Python's, the vectors') and back, following the types.
  const core = keysToSnake(b)
  assert.equal(core.window_start, b.windowStart)
  assert.deepEqual(core.group, { sim_id: 'A', first_at: 'x' })
  assert.deepEqual(keysToCamel(core), b)
  assert.match(thrown(() => keysToSnake({ window_start: 'x' })).message, /'window_start'.*'windowStart'/)
  // A tariff document is a file format: snake_case in every host.
  const doc = Tariff.fromJson({ currency: 'USD', charges: [{ id: 'e', type: 'graduated', tiers: [{ up_to: '10', rate: '1' }, { rate: '2' }] }] }).toJSON()
  assert.equal(doc.versions[0].charges[0].tiers[0].up_to, '10')
})

test('a daily cap fires per subject per day', async () => {
  const events = []
  const engine = new Engine({ onEvent: (e) => events.push(e) })
  engine.addQuota({ id: 'cap', tenant: 't', metric: 'bytes', period: 'day', timeZone: 'UTC', limit: '100', levels: ['80'] })
  engine.ingest([rec('a', 's', '50', '2024-05-01T10:00:00Z'), rec('b', 's', '90', '2024-05-02T10:00:00Z')])
  engine.ingest([rec('c', 's', '30', '2024-05-01T11:00:00Z')])
  const deadline = Date.now() + 5000
  while (events.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(events.map((e) => [e.periodStart, e.used]), [['2024-05-02T00:00:00Z', '90'], ['2024-05-01T00:00:00Z', '80']])
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
  const rows = engine.query({ tenant: 'org', metric: 'msgs', window: 'day', timeZone: 'UTC' })
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
  const rows = engine.query({ tenant: 't', metric: 'bytes', window: 'month', timeZone: 'Asia/Kolkata', groupBy: ['subject'] })
  assert.deepEqual(rows.map((b) => [b.localStart, b.group.subject, b.subject, b.firstAt, b.lastAt]), [
    ['2025-01-01T00:00:00+05:30', 's1', 's1', '2024-12-31T18:30:00Z', '2025-01-10T09:00:00.250Z'],
    ['2025-01-01T00:00:00+05:30', 's2', 's2', '2025-01-04T00:00:00Z', '2025-01-04T00:00:00Z'],
    ['2025-01-01T00:00:00+05:30', 's3', 's3', '2025-01-05T00:00:00Z', '2025-01-05T00:00:00Z'],
  ])
  const top = engine.topN({ tenant: 't', metric: 'bytes', window: 'month', timeZone: 'UTC', groupBy: ['subject'] }, 'sum', 1)
  assert.deepEqual(top.map((b) => [b.group.subject, b.sum]), [['s1', '60']])
  const tariff = Tariff.fromJson({ currency: 'USD', charges: [{ id: 'e', type: 'graduated', tiers: [{ up_to: '100', rate: '0.10' }, { rate: '0.05' }] }] })
  const period = { tenant: 't', metric: 'bytes', periodStart: '2024-12-01T00:00:00Z', periodEnd: '2025-02-01T00:00:00Z', timeZone: 'UTC' }
  const account = engine.bill(tariff, { ...period, filter: { account: 'A' }, perSubject: true })
  assert.equal(account.total, '10.50') // 110 rated together: 100 × 0.10 + 10 × 0.05
  assert.deepEqual(account.perSubject, [{ subject: 's1', quantity: '60', records: 2 }, { subject: 's2', quantity: '50', records: 1 }])
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
  const q = { tenant: 't', metric: 'bytes', window: 'cycle:15', timeZone: 'Asia/Kolkata', groupBy: ['subject'] }
  engine.ingest([rec('a', 's1', '5', '2024-05-01T10:00:00Z'), rec('b', 's2', '7', '2024-05-01T11:00:00Z')])
  const unplanned = engine.query(q)
  assert.deepEqual(engine.specs(), [], 'an unplanned query adds no spec')
  const spec = { ...Engine.specForQuery(q), tenant: 't' }
  assert.deepEqual(spec, { tenant: 't', metric: 'bytes', window: 'cycle:15', timeZone: 'Asia/Kolkata', groupBy: ['subject'], aggregations: [] })
  assert.equal(engine.addSpec(spec), 0)
  assert.deepEqual(engine.query(q), unplanned, 'the spec gives the same rows')
  assert.equal(engine.removeSpec(spec), 0)
  assert.equal(thrown(() => engine.removeSpec(spec)).code, 'E_NOT_FOUND')
  engine.addQuota({ id: 'acct', tenant: 't', metric: 'bytes', subjects: ['s1', 's2'], pooled: true, period: 'month', timeZone: 'UTC', limit: '20', levels: ['50'] })
  engine.ingest([rec('c', 's3', '100', '2024-05-02T10:00:00Z')])
  engine.ingest([rec('d', 's1', '1', '2024-05-02T10:00:00Z')])
  const deadline = Date.now() + 5000
  while (events.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(events.map((e) => [e.quota, e.subject, e.used]), [['acct', '', '13']])
})
