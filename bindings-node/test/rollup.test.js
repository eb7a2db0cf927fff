'use strict'
// Store-less rollups (`rollupColumns`, the core's columnar kernel) and query results as columns.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine, rollupColumns } = require('meterkit')
const { thrown } = require('./helpers.js')

const columns = () => ({
  tenant: 't',
  id: ['a', 'b', 'c', 'd'],
  subject: ['m1', 'm2', 'm1', 'm1'],
  metric: ['kwh', 'kwh', 'kwh', 'gas'],
  quantity: ['1.5', '0.25', '0.5', '7'],
  timestamp: ['2024-01-01T00:00:00Z', '2024-01-01T01:00:00Z', '2024-01-01T02:00:00Z', '2024-01-01T03:00:00Z'],
  dimensions: { carrier: ['x', null, 'y', 'x'] },
})
const spec = { metric: 'kwh', window: 'day', timeZone: 'UTC', groupBy: ['subject'], aggregations: [{ unique_count: 'carrier' }] }

test('rollupColumns gives the buckets the engine gives for the same records, with no store', () => {
  const rows = rollupColumns(columns(), spec)
  assert.deepEqual(rows.map((b) => [b.subject, b.sum, b.count, b.min, b.max, b.latest, b.unique]), [
    ['m1', '2', 2, '0.5', '1.5', '0.5', { carrier: 2 }],
    ['m2', '0.25', 1, '0.25', '0.25', '0.25', { carrier: 0 }],
  ])
  const engine = new Engine()
  engine.addSpec(spec)
  engine.ingestColumns(columns())
  const queried = engine.query({ tenant: 't', metric: 'kwh', window: 'day', timeZone: 'UTC', groupBy: ['subject'], unique: ['carrier'] })
  assert.deepEqual(rows, queried)
})

test('rollupColumns takes several specs: each spec its own metric, in spec order', () => {
  const gas = { metric: 'gas', window: 'hour', timeZone: 'Europe/London' }
  const rows = rollupColumns(columns(), [spec, gas])
  assert.deepEqual(rows.map((b) => [b.metric, b.windowStart, b.sum]), [
    ['kwh', '2024-01-01T00:00:00Z', '2'],
    ['kwh', '2024-01-01T00:00:00Z', '0.25'],
    ['gas', '2024-01-01T03:00:00Z', '7'],
  ])
})

test('rollupColumns errors: a bad spec, a bad column, an invalid record', () => {
  assert.equal(thrown(() => rollupColumns(columns(), { ...spec, timeZone: 'Mars/Olympus' })).code, 'E_INVALID_TIME_ZONE')
  const e = thrown(() => rollupColumns({ ...columns(), quantity: ['1', 'lots', '1', '1'] }, spec))
  assert.equal(e.code, 'E_PARSE')
  assert.equal(e.recordId, 'b')
  assert.equal(e.field, 'quantity')
  assert.equal(thrown(() => rollupColumns({ ...columns(), tenant: '' }, spec)).code, 'E_INVALID_RECORD')
})

test('queryColumns is query as one array per field', () => {
  const engine = new Engine()
  engine.ingestColumns(columns())
  const q = { tenant: 't', metric: 'kwh', window: 'hour', timeZone: 'UTC', groupBy: ['carrier'] }
  const rows = engine.query(q)
  const cols = engine.queryColumns(q)
  assert.deepEqual(cols.windowStart, rows.map((b) => b.windowStart))
  assert.deepEqual(cols.sum, ['1.5', '0.25', '0.5'])
  assert.deepEqual(cols.group, { carrier: ['x', null, 'y'] })
  assert.deepEqual(cols.count, [1, 1, 1])
  assert.deepEqual(cols.min, rows.map((b) => b.min))
  assert.deepEqual(engine.queryColumns({ ...q, tenant: 'nobody' }).sum, [])
  const e = thrown(() => engine.queryColumns({ ...q, window: 'fortnight' }))
  assert.equal(e.code, 'E_PARSE')
  assert.equal(e.field, 'window')
})
