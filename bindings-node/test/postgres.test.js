'use strict'
// new Engine({ path: 'postgres://…' }): two engines (two connections) on one PostgreSQL database
// ingest overlapping batches; every record counts once and both answer as an in-memory engine.
// Needs METERKIT_PG_URL (scripts/pg-server sets it); skipped without it, failed when
// METERKIT_REQUIRE_PG=1.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { Engine } = require('meterkit')
const { rec } = require('./helpers.js')

function pgUrl(t) {
  const url = process.env.METERKIT_PG_URL || ''
  if (!url) {
    assert.notEqual(process.env.METERKIT_REQUIRE_PG, '1', 'METERKIT_REQUIRE_PG=1 but METERKIT_PG_URL is unset')
    t.skip('no PostgreSQL server: set METERKIT_PG_URL (or run scripts/test-postgres)')
    return null
  }
  return `${url}${url.includes('?') ? '&' : '?'}schema=node_${crypto.randomBytes(6).toString('hex')}`
}

function batch(lo, hi) {
  const out = []
  for (let i = lo; i < hi; i++) {
    const day = String(1 + (i % 5)).padStart(2, '0')
    const hour = String(i % 24).padStart(2, '0')
    out.push(rec(`r${i}`, `${i % 13}.${i % 10}`, `2024-05-${day}T${hour}:00:00Z`, { subject: `sim-${i % 7}`, dimensions: { carrier: i % 2 ? 'o2' : 'ee' } }))
  }
  return out
}

test('two engines on one postgres URL count every record once', (t) => {
  const url = pgUrl(t)
  if (!url) return
  const a = new Engine({ path: url })
  const b = new Engine({ path: url })
  let accepted = 0
  let duplicates = 0
  // Interleaved overlapping batches: b's records 2000..3000 are a's too.
  for (let i = 0; i < 3; i++) {
    for (const [engine, lo] of [[a, i * 1000], [b, 2000 + i * 1000]]) {
      const r = engine.ingest(batch(lo, lo + 1000))
      accepted += r.accepted
      duplicates += r.duplicates
    }
  }
  assert.equal(accepted, 5000)
  assert.equal(duplicates, 1000)
  const single = new Engine()
  single.ingest(batch(0, 5000))
  const q = { tenant: 't1', metric: 'bytes', window: 'day', timeZone: 'Europe/London', groupBy: ['carrier'], unique: ['subject'] }
  const expected = single.query(q)
  assert.ok(expected.length > 0)
  assert.deepEqual(a.query(q), expected)
  assert.deepEqual(new Engine({ path: url }).query(q), expected)
})
