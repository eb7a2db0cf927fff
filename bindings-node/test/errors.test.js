'use strict'
// Errors are Error instances with a stable code and structured fields; rejections carry kinds.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine, errorCodes } = require('meterkit')
const { rec, thrown } = require('./helpers.js')

const q = (extra = {}) => ({ tenant: 't1', metric: 'bytes', window: 'day', timeZone: 'UTC', ...extra })

function assertMeterkitError(e, code, fields = {}) {
  assert.ok(e instanceof Error, 'an Error instance')
  assert.equal(e.code, code)
  const kind = errorCodes().find((c) => c.code === code).kind
  assert.equal(e.kind, kind)
  assert.equal(typeof e.message, 'string')
  assert.ok(e.message.length > 0)
  assert.ok(typeof e.stack === 'string')
  // The full envelope: `retryable` is a boolean on every error (true only for a store's transient
  // failure, which none of these is).
  for (const [k, v] of Object.entries({ recordId: null, field: null, line: null, retryable: false, ...fields })) assert.equal(e[k], v, k)
}

test('E_PARSE: an unreadable quantity names the record and the field; nothing is stored', () => {
  const engine = new Engine()
  const e = thrown(() => engine.ingest([rec('ok', '1', '2024-05-01T00:00:00Z'), rec('r2', 'abc', '2024-05-01T00:00:00Z')]))
  assertMeterkitError(e, 'E_PARSE', { recordId: 'r2', field: 'quantity' })
  assert.match(e.message, /\[1\]\.quantity/)
  assert.deepEqual(engine.query(q()), [])
})

test('E_PARSE: a missing field, a BigInt, an undefined batch', () => {
  const engine = new Engine()
  const { timestamp, ...noTs } = rec('r1', '1', '2024-05-01T00:00:00Z')
  assertMeterkitError(thrown(() => engine.ingest([noTs])), 'E_PARSE', { recordId: 'r1' })
  assertMeterkitError(thrown(() => engine.ingest([rec('r1', 5n, '2024-05-01T00:00:00Z')])), 'E_PARSE')
  assertMeterkitError(thrown(() => engine.ingest(undefined)), 'E_PARSE')
  assertMeterkitError(thrown(() => engine.ingest([rec('r1', '1', new Date('nope'))])), 'E_PARSE', { recordId: 'r1', field: 'timestamp' })
})

test('E_INVALID_RECORD and E_CONFLICT are reported per record, with kinds', () => {
  const engine = new Engine()
  const r = engine.ingest([rec('r1', '1', '2024-05-01T00:00:00Z'), rec('r2', '1', '2024-05-01T00:00:00Z', { tenant: '' })])
  assert.deepEqual(r, {
    accepted: 1,
    duplicates: 0,
    rejected: [{ tenant: '', id: 'r2', kind: 'invalid_record', reason: "The record's tenant is empty." }],
  })
  const c = engine.ingest([rec('r1', '2', '2024-05-01T00:00:00Z')])
  assert.deepEqual(c.rejected, [
    { tenant: 't1', id: 'r1', kind: 'conflict', reason: "Record 'r1' of tenant 't1' was already ingested with different content." },
  ])
  assert.equal(engine.query(q())[0].sum, '1')
})

test('E_INVALID_WINDOW, E_INVALID_TIME_ZONE, E_INVALID_QUERY from queries', () => {
  const engine = new Engine()
  assertMeterkitError(thrown(() => engine.query(q({ window: 'minutes:7' }))), 'E_PARSE', { field: 'window' })
  assertMeterkitError(thrown(() => engine.totals('t1', 'bytes', 'minutes:7', 'UTC', new Date())), 'E_INVALID_WINDOW')
  assertMeterkitError(thrown(() => engine.query(q({ timeZone: 'Mars/Base' }))), 'E_INVALID_TIME_ZONE', { field: 'timeZone' })
  assertMeterkitError(thrown(() => engine.query(q({ fill: 'zero' }))), 'E_INVALID_QUERY', { field: 'fill' })
  assertMeterkitError(
    thrown(() => engine.query(q({ from: '2024-05-02T00:00:00Z', to: '2024-05-01T00:00:00Z' }))),
    'E_INVALID_QUERY', { field: 'to' })
})

test('E_OVERFLOW: a record past the 96-bit range is rejected alone; an overflowing query throws', () => {
  const engine = new Engine()
  engine.addSpec({ metric: 'bytes', window: 'day', timeZone: 'UTC' })
  const max = '79228162514264337593543950335'
  const report = engine.ingest([rec('a', max, '2024-05-01T00:00:00Z'), rec('b', max, '2024-05-01T01:00:00Z')])
  assert.equal(report.accepted, 1)
  assert.deepEqual(report.rejected.map((r) => [r.id, r.kind]), [['b', 'overflow']])
  assert.equal(engine.query(q()).length, 1)
  // b on another day fits; a month of both days overflows that tenant's query (issue 12).
  assert.equal(engine.ingest([rec('b', max, '2024-05-02T01:00:00Z')]).accepted, 1)
  assertMeterkitError(thrown(() => engine.query(q({ window: 'month' }))), 'E_OVERFLOW', { recordId: 'b' })
})

test('E_NOT_FOUND names the record', () => {
  assertMeterkitError(thrown(() => new Engine().retract('t1', 'nope')), 'E_NOT_FOUND', { recordId: 'nope' })
})

test('Engine options of the wrong type throw E_PARSE naming the option', () => {
  assertMeterkitError(thrown(() => new Engine({ path: 5 })), 'E_PARSE', { field: 'path' })
  assertMeterkitError(thrown(() => new Engine({ onEvent: 'log' })), 'E_PARSE', { field: 'onEvent' })
  assert.deepEqual(new Engine({ path: null, onEvent: null }).specs(), [])
})

test('E_STORE: a database path that cannot be opened', () => {
  assertMeterkitError(thrown(() => new Engine({ path: '/nonexistent-dir/x/usage.db' })), 'E_STORE')
})

test('async methods reject with the same structured errors', async () => {
  const engine = new Engine()
  await assert.rejects(engine.queryAsync(q({ timeZone: 'Nowhere/Else' })), (e) => {
    assertMeterkitError(e, 'E_INVALID_TIME_ZONE', { field: 'timeZone' })
    return true
  })
  await assert.rejects(engine.ingestAsync([rec('r1', 'x', '2024-05-01T00:00:00Z')]), (e) => {
    assertMeterkitError(e, 'E_PARSE', { recordId: 'r1', field: 'quantity' })
    return true
  })
})
