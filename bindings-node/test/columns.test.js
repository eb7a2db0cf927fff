'use strict'
// ingestColumns: typed arrays and string columns give the same rollups as record objects.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine } = require('meterkit')
const { rec, thrown } = require('./helpers.js')

const q = { tenant: 't1', metric: 'bytes', window: 'hour', timeZone: 'UTC', groupBy: ['carrier'] }

function objects() {
  const out = []
  for (let i = 0; i < 1000; i++) {
    const ts = Date.UTC(2024, 4, 1) + i * 60_000 // one a minute
    out.push(rec(`r${i}`, String(i * 1000 + 5), new Date(ts), { subject: `sim-${i % 7}`, dimensions: { carrier: ['acme', 'beta', 'gamma'][i % 3] } }))
  }
  return out
}

test('BigInt64Array quantities, Float64Array timestamps, dictionary columns equal record objects', () => {
  const recs = objects()
  const a = new Engine()
  a.ingest(recs)
  const b = new Engine()
  const report = b.ingestColumns({
    tenant: 't1',
    metric: 'bytes',
    id: recs.map((r) => r.id),
    subject: { values: ['sim-0', 'sim-1', 'sim-2', 'sim-3', 'sim-4', 'sim-5', 'sim-6'], codes: Uint32Array.from(recs, (_, i) => i % 7) },
    quantity: BigInt64Array.from(recs, (_, i) => BigInt(i * 1000 + 5) * 1000n),
    scale: 3,
    timestamp: Float64Array.from(recs, (r) => r.timestamp.getTime()),
    dimensions: { carrier: { values: ['acme', 'beta', 'gamma'], codes: Uint32Array.from(recs, (_, i) => i % 3) } },
  })
  assert.deepEqual(report, { accepted: 1000, duplicates: 0, rejected: [] })
  const want = a.query(q)
  assert.equal(want.length, 17 * 3) // 1000 minutes from 00:00 = 17 hours (the last has 40), each with 3 carriers
  assert.deepEqual(b.query(q), want)
  // Replaying the object batch into the columnar engine: all duplicates (same content).
  assert.deepEqual(b.ingest(recs), { accepted: 0, duplicates: 1000, rejected: [] })
})

test('Float64Array quantities and string columns', () => {
  const e = new Engine()
  e.ingestColumns({
    tenant: ['t1', 't1', 't1'],
    metric: ['bytes', 'bytes', 'bytes'],
    id: ['a', 'b', 'c'],
    subject: ['s1', 's2', 's1'],
    quantity: Float64Array.of(0.1, 0.2, 1e21),
    timestamp: ['2024-05-01T00:00:00Z', '2024-05-01T00:30:00+00:00', '2024-05-01T00:59:59.5Z'],
    end: Float64Array.of(NaN, Date.UTC(2024, 4, 1, 1), NaN),
    dimensions: { carrier: ['x', null, 'x'] },
  })
  const rows = e.query({ tenant: 't1', metric: 'bytes', window: 'hour', timeZone: 'UTC' })
  assert.equal(rows[0].sum, '1000000000000000000000.3')
  const recs = e.records('t1', 'bytes', '2024-05-01T00:00:00Z', '2024-05-02T00:00:00Z')
  assert.deepEqual(recs[1], { id: 'b', tenant: 't1', subject: 's2', metric: 'bytes', quantity: '0.2', timestamp: '2024-05-01T00:30:00Z', end: '2024-05-01T01:00:00Z' })
  assert.deepEqual(recs[2].dimensions, { carrier: 'x' })
  assert.equal(recs[2].timestamp, '2024-05-01T00:59:59.500Z')
})

test('mismatched lengths, bad codes and bad values throw E_PARSE with the field; nothing is stored', () => {
  const e = new Engine()
  const base = { tenant: 't1', metric: 'bytes', id: ['a', 'b'], subject: 's', quantity: ['1', '2'], timestamp: Float64Array.of(0, 1000) }
  let err = thrown(() => e.ingestColumns({ ...base, quantity: ['1'] }))
  assert.equal(err.code, 'E_PARSE')
  assert.equal(err.field, 'quantity')
  err = thrown(() => e.ingestColumns({ ...base, subject: { values: ['s'], codes: Uint32Array.of(0, 4) } }))
  assert.equal(err.code, 'E_PARSE')
  assert.equal(err.field, 'subject')
  assert.equal(err.recordId, 'b')
  err = thrown(() => e.ingestColumns({ ...base, quantity: ['1', 'two'] }))
  assert.deepEqual([err.code, err.field, err.recordId], ['E_PARSE', 'quantity', 'b'])
  err = thrown(() => e.ingestColumns({ ...base, timestamp: Float64Array.of(0, Infinity) }))
  assert.deepEqual([err.code, err.field, err.recordId], ['E_PARSE', 'timestamp', 'b'])
  err = thrown(() => e.ingestColumns({ ...base, quantity: BigInt64Array.of(1n, 2n), scale: 29 }))
  assert.deepEqual([err.code, err.field], ['E_PARSE', 'scale'])
  // The id column crosses as one JSON text: anything but an array of strings is refused.
  for (const id of [['a', 5], ['a', null], 'ab', [['a'], 'b']]) {
    err = thrown(() => e.ingestColumns({ ...base, id }))
    assert.deepEqual([err.code, err.field], ['E_PARSE', 'id'], JSON.stringify(id))
  }
  assert.deepEqual(e.query({ tenant: 't1', metric: 'bytes', window: 'day', timeZone: 'UTC' }), [])
})

test('ingestColumnsAsync', async () => {
  const e = new Engine()
  const r = await e.ingestColumnsAsync({ tenant: 't1', metric: 'bytes', id: ['a'], subject: 's', quantity: BigInt64Array.of(7n), timestamp: Float64Array.of(0) })
  assert.deepEqual(r, { accepted: 1, duplicates: 0, rejected: [] })
  assert.equal(e.query({ tenant: 't1', metric: 'bytes', window: 'year', timeZone: 'UTC' })[0].sum, '7')
})

test('ids with quotes, escapes and non-ASCII text are kept exactly', () => {
  const e = new Engine()
  const id = ['q"1', 'é\n2\\', '😀 x']
  const r = e.ingestColumns({ tenant: 't1', metric: 'bytes', id, subject: 's', quantity: ['1', '2', '3'], timestamp: Float64Array.of(0, 1000, 2000) })
  assert.equal(Number(r.accepted), 3)
  const stored = e.records('t1', 'bytes', '1970-01-01T00:00:00Z', '1970-01-02T00:00:00Z').map((x) => x.id)
  assert.deepEqual(stored.sort(), [...id].sort())
})
