'use strict'
// Every export of the package, called the way a user calls it, with its real outcome.
const test = require('node:test')
const assert = require('node:assert/strict')
const meterkit = require('meterkit')
const { Engine, parseDecimal, parseTs, windowSpan, errorCodes, checkRecords, decimalFromNumber, version } = meterkit
const { rec, thrown } = require('./helpers.js')

test('the package exports exactly the documented names', () => {
  const names = Object.keys(meterkit).filter((k) => !k.startsWith('__')).sort()
  assert.deepEqual(names, [
    'Engine', 'PreparedLoad', 'RegisterTracker', 'Tariff', 'Validator', 'alertsOf', 'allocate', 'checkRecords', 'compareTariffs', 'createInvoice', 'decimalFromNumber',
    'errorCodes', 'estimateGaps', 'finalizePartials', 'keysToCamel', 'keysToSnake', 'localInstant', 'mergePartials', 'monthPeriod', 'parseDecimal', 'parseTs', 'partialRollup', 'rollupColumns', 'splitSharedMeter', 'validationSummary',
    'version', 'windowSpan',
  ])
  assert.equal(typeof Engine, 'function')
  const methods = Object.getOwnPropertyNames(Engine.prototype).filter((k) => k !== 'constructor').sort()
  assert.deepEqual(methods, [
    'addQuota', 'addSpec', 'bill', 'billAsync', 'checkReading', 'closeWindows', 'counterState', 'history', 'importPartials', 'ingest', 'ingestAsync',
    'ingestColumns', 'ingestColumnsAsync', 'ingestFrom', 'ingestFromAsync', 'invoices', 'issueInvoice',
    'lastIngestedAt', 'markOverdue', 'outboxAck', 'outboxCount', 'outboxPending', 'outboxPurge', 'outboxQueue',
    'payInvoice', 'query', 'queryAsync', 'queryColumns', 'recordReading', 'records',
    'remindersDue', 'removeSpec', 'replace', 'retract', 'setValidation', 'setValidationNow', 'specs', 'topN', 'totals',
    'trackCounters', 'voidInvoice',
  ])
})

test('version is the core version', () => {
  assert.match(version(), /^\d+\.\d+\.\d+/)
})

test('parseDecimal returns the shortest exact text', () => {
  assert.equal(parseDecimal('1.500'), '1.5')
  assert.equal(parseDecimal('2.5E3'), '2500')
  assert.equal(parseDecimal('0.1'), '0.1')
  assert.equal(parseDecimal('79228162514264337593543950335'), '79228162514264337593543950335')
  assert.equal(thrown(() => parseDecimal('NaN')).code, 'E_PARSE')
})

test('decimalFromNumber goes through the shortest round-trip text', () => {
  assert.equal(decimalFromNumber(0.1), '0.1')
  assert.equal(decimalFromNumber(0.1 + 0.2), '0.30000000000000004')
  assert.equal(decimalFromNumber(1e21), '1000000000000000000000')
  assert.equal(decimalFromNumber(-2.5), '-2.5')
  assert.equal(thrown(() => decimalFromNumber(NaN)).code, 'E_PARSE')
  assert.equal(thrown(() => decimalFromNumber(Infinity)).code, 'E_PARSE')
})

test('a Rust panic reaches JS as an E_INTERNAL error, and the process goes on', () => {
  const e = thrown(() => meterkit.__panicForTests())
  assert.ok(e instanceof Error)
  assert.equal(e.code, 'E_INTERNAL')
  assert.equal(e.kind, 'internal')
  assert.match(e.message, /deliberate panic/)
  assert.equal(parseDecimal('1.0'), '1')
})

test('parseTs accepts Date and any offset, returns UTC with Z', () => {
  assert.equal(parseTs('2024-03-01T10:00:00+01:00'), '2024-03-01T09:00:00Z')
  assert.equal(parseTs(new Date(Date.UTC(2024, 2, 1, 9, 0, 0, 500))), '2024-03-01T09:00:00.500Z')
  assert.equal(thrown(() => parseTs('yesterday')).code, 'E_PARSE')
  assert.equal(thrown(() => parseTs(new Date(NaN))).code, 'E_PARSE')
})

test('windowSpan: a New York spring-forward day has 23 hours', () => {
  const s = windowSpan('day', '2024-03-10T12:00:00Z', 'America/New_York')
  assert.deepEqual(s, { start: '2024-03-10T05:00:00Z', end: '2024-03-11T04:00:00Z' })
  assert.equal(thrown(() => windowSpan('minutes:7', new Date(), 'UTC')).code, 'E_INVALID_WINDOW')
  assert.equal(thrown(() => windowSpan('day', new Date(), 'Mars/Base')).code, 'E_INVALID_TIME_ZONE')
})

test('errorCodes lists the twelve stable codes with their kinds', () => {
  const codes = errorCodes()
  assert.equal(codes.length, 12)
  assert.deepEqual(codes[0], { code: 'E_INVALID_RECORD', kind: 'invalid_record' })
  assert.ok(codes.some((c) => c.code === 'E_CONFLICT' && c.kind === 'conflict'))
  assert.ok(codes.some((c) => c.code === 'E_TARIFF' && c.kind === 'tariff'))
  for (const c of codes) assert.match(c.code, /^E_[A-Z_]+$/)
})

test('checkRecords returns canonical records and throws on the first bad one', () => {
  const out = checkRecords([rec('r1', '1.50', new Date('2024-05-01T10:00:00+02:00'), { dimensions: { carrier: 'x' } })])
  assert.deepEqual(out, [
    { id: 'r1', tenant: 't1', subject: 'sim-1', metric: 'bytes', quantity: '1.5', timestamp: '2024-05-01T08:00:00Z', dimensions: { carrier: 'x' } },
  ])
  const e = thrown(() => checkRecords([rec('ok', '1', '2024-05-01T00:00:00Z'), rec('bad', '1', '2024-05-01T00:00:00Z', { subject: '' })]))
  assert.equal(e.code, 'E_INVALID_RECORD')
  assert.equal(e.recordId, 'bad')
  assert.equal(e.field, 'subject')
})

test('Engine: ingest, query, specs, addSpec, topN, totals, records, retract, closeWindows', () => {
  const engine = new Engine()
  assert.equal(engine.addSpec({ metric: 'bytes', window: 'day', timeZone: 'UTC', groupBy: ['carrier'] }), 0)
  assert.deepEqual(engine.specs(), [{ metric: 'bytes', window: 'day', timeZone: 'UTC', groupBy: ['carrier'], aggregations: [] }])
  const report = engine.ingest([
    rec('r1', '100', '2024-05-01T10:00:00Z', { dimensions: { carrier: 'acme' } }),
    rec('r2', '50', '2024-05-01T11:00:00Z', { subject: 'sim-2', dimensions: { carrier: 'beta' } }),
    rec('r3', '25.5', '2024-04-30T11:00:00Z', { dimensions: { carrier: 'acme' } }),
  ])
  assert.deepEqual(report, { accepted: 3, duplicates: 0, rejected: [] })
  // One record alone is accepted too; the same key and content again is a duplicate.
  assert.deepEqual(engine.ingest(rec('r1', '100.00', '2024-05-01T10:00:00Z', { dimensions: { carrier: 'acme' } })), {
    accepted: 0, duplicates: 1, rejected: [],
  })

  const days = engine.query({ tenant: 't1', metric: 'bytes', window: 'day', timeZone: 'UTC' })
  assert.deepEqual(days.map((b) => [b.windowStart, b.sum, b.count]), [
    ['2024-04-30T00:00:00Z', '25.5', 1],
    ['2024-05-01T00:00:00Z', '150', 2],
  ])
  // Key order is the core's serde order, keys in camelCase; keysToSnake gives the core's JSON.
  assert.deepEqual(Object.keys(days[0]), [
    'windowStart', 'windowEnd', 'localStart', 'subject', 'metric', 'group', 'sum', 'count', 'min', 'max', 'mean', 'latest',
    'firstAt', 'lastAt',
  ])
  assert.deepEqual(Object.keys(meterkit.keysToSnake(days[0])).sort(), [
    'count', 'first_at', 'group', 'last_at', 'latest', 'local_start', 'max', 'mean', 'metric', 'min', 'subject', 'sum', 'window_end', 'window_start',
  ])

  const top = engine.topN({ tenant: 't1', metric: 'bytes', window: 'day', timeZone: 'UTC', groupBy: ['carrier'] }, 'sum', 1)
  assert.equal(top.length, 1)
  assert.deepEqual([top[0].group, top[0].sum], [{ carrier: 'acme' }, '125.5'])
  const sims = engine.topN(
    { tenant: 't1', metric: 'bytes', window: 'day', timeZone: 'UTC', groupBy: ['carrier'], unique: ['subject'] },
    { unique_count: 'subject' }, 5)
  assert.deepEqual(sims.map((b) => [b.group.carrier, b.unique.subject]), [['acme', 1], ['beta', 1]])

  const totals = engine.totals('t1', 'bytes', 'day', 'UTC', new Date('2024-05-01T12:00:00Z'))
  assert.equal(totals.current.sum, '150')
  assert.equal(totals.previous.sum, '25.5')
  assert.equal(totals.changePercent, '488.24') // (150 - 25.5) / 25.5 = 4.88235… → 488.24 %

  const recs = engine.records('t1', 'bytes', '2024-05-01T00:00:00Z', new Date('2024-05-02T00:00:00Z'))
  assert.deepEqual(recs.map((r) => r.id), ['r1', 'r2'])
  assert.deepEqual(engine.records('t1', 'bytes', '2024-05-01T00:00:00Z', '2024-05-02T00:00:00Z', 'sim-2').map((r) => r.id), ['r2'])

  const gone = engine.retract('t1', 'r2')
  assert.equal(gone.quantity, '50')
  assert.equal(engine.query({ tenant: 't1', metric: 'bytes', window: 'day', timeZone: 'UTC' })[1].sum, '100')
  assert.equal(thrown(() => engine.retract('t1', 'r2')).code, 'E_NOT_FOUND')

  // Closing: windows that ended by now - lateness; each bucket once.
  const closed = engine.closeWindows('t1', '2024-05-02T01:00:00Z', 3600)
  assert.ok(closed > 0)
  assert.equal(engine.closeWindows('t1', '2024-05-02T01:00:00Z', 3600), 0)
})

test('quantities as JS numbers go through their shortest decimal text', () => {
  const engine = new Engine()
  engine.ingest([rec('a', 0.1, '2024-05-01T00:00:00Z'), rec('b', 0.2, '2024-05-01T01:00:00Z')])
  // 0.1 + 0.2 exactly: no binary float on the way.
  assert.equal(engine.query({ tenant: 't1', metric: 'bytes', window: 'day', timeZone: 'UTC' })[0].sum, '0.3')
})
