'use strict'
// The *Async methods: same results as the sync ones, and the event loop keeps turning meanwhile.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine } = require('meterkit')
const { rec } = require('./helpers.js')

const q = { tenant: 't1', metric: 'bytes', window: 'hour', timeZone: 'Europe/London' }

function batch(n, prefix = 'r') {
  const out = []
  const t0 = Date.UTC(2024, 2, 30)
  for (let i = 0; i < n; i++) out.push(rec(`${prefix}${i}`, `${i % 97}.25`, new Date(t0 + i * 1000), { subject: `sim-${i % 50}` }))
  return out
}

test('ingestAsync and queryAsync give what ingest and query give', async () => {
  const data = batch(5000)
  const a = new Engine()
  const b = new Engine()
  assert.deepEqual(await a.ingestAsync(data), b.ingest(data))
  assert.deepEqual(await a.queryAsync(q), b.query(q))
})

test('the event loop turns while a big batch is ingested off the main thread', async () => {
  const engine = new Engine()
  const data = batch(200_000)
  let turns = 0
  let stop = false
  const spin = () => {
    if (stop) return
    turns++
    setImmediate(spin)
  }
  setImmediate(spin)
  const report = await engine.ingestAsync(data)
  stop = true
  assert.equal(report.accepted, 200_000)
  assert.ok(turns > 0, 'setImmediate callbacks ran while the batch was ingested')
})

test('concurrent ingestAsync calls are serialised by the engine: nothing lost, nothing doubled', async () => {
  const engine = new Engine()
  const parts = [batch(2000, 'a'), batch(2000, 'b'), batch(2000, 'a')]
  const reports = await Promise.all(parts.map((p) => engine.ingestAsync(p)))
  assert.equal(reports.reduce((s, r) => s + r.accepted, 0), 4000)
  assert.equal(reports.reduce((s, r) => s + r.duplicates, 0), 2000)
  const rows = await engine.queryAsync({ ...q, window: 'year' })
  assert.equal(rows[0].count, 4000)
})
