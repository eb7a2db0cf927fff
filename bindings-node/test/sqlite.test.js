'use strict'
// new Engine({ path }) stores in SQLite: data and specs survive a reopen.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Engine } = require('meterkit')
const { rec, thrown } = require('./helpers.js')

test('records, rollups and specs persist across engines on the same file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterkit-node-'))
  try {
    const file = path.join(dir, 'usage.db')
    const a = new Engine({ path: file })
    a.addSpec({ metric: 'bytes', window: 'day', timeZone: 'Europe/Berlin', groupBy: ['carrier'] })
    a.ingest([rec('r1', '10', '2024-05-01T22:30:00Z', { dimensions: { carrier: 'acme' } })])
    const e = thrown(() => a.ingest([rec('r2', '1', '2024-05-01T00:00:00Z'), rec('r3', 'x', '2024-05-01T00:00:00Z')]))
    assert.equal(e.code, 'E_PARSE')
    const b = new Engine({ path: file })
    assert.equal(b.specs().length, 1)
    const rows = b.query({ tenant: 't1', metric: 'bytes', window: 'day', timeZone: 'Europe/Berlin' })
    // 22:30Z on 1 May is 00:30 on 2 May in Berlin (CEST, +02:00).
    assert.deepEqual(rows.map((r) => [r.windowStart, r.sum]), [['2024-05-01T22:00:00Z', '10']])
    assert.deepEqual(b.records('t1', 'bytes', '2024-01-01T00:00:00Z', '2025-01-01T00:00:00Z').map((r) => r.id), ['r1'])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
