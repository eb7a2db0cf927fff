'use strict'
// Validation (VEE) through the JS API: engine validation, Validator, register readings,
// estimation, summaries.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine, Validator, RegisterTracker, alertsOf, estimateGaps, validationSummary } = require('meterkit')
const { thrown } = require('./helpers.js')

const kwh = (id, quantity, timestamp, extra = {}) => ({ id, tenant: 't', subject: 'm1', metric: 'kwh', quantity, timestamp, ...extra })

test('engine validation: reject keeps a record out, findings in the report, anomaly_detected events', async () => {
  const events = []
  const engine = new Engine({ onEvent: (e) => events.push(e) })
  engine.setValidation('kwh', { highLimit: '10' })
  engine.setValidationNow('2024-05-06T12:00:00Z')
  const report = engine.ingest([kwh('a', '1', '2024-05-06T10:00:00Z'), kwh('neg', '-2', '2024-05-06T10:30:00Z'), kwh('big', '50', '2024-05-06T11:00:00Z')])
  assert.ok(report.findings.length >= 2)
  const byId = Object.fromEntries(report.findings.map((f) => [f.id, f]))
  assert.equal(byId.neg.rule, 'negative_quantity')
  assert.equal(byId.big.rule, 'high_limit')
  assert.deepEqual(Object.keys(byId.neg).slice(0, 3), ['rule', 'severity', 'action'])
  const rejectedIds = report.rejected.filter((r) => r.kind === 'validation').map((r) => r.id)
  for (const f of report.findings) {
    if (f.action === 'reject') assert.ok(rejectedIds.includes(f.id), `${f.id} rejected`)
  }
  const stored = engine.records('t', 'kwh', '2024-05-06T00:00:00Z', '2024-05-07T00:00:00Z')
  assert.equal(stored.length, 3 - rejectedIds.length)
  const flagged = stored.filter((r) => r.quality === 'flagged').map((r) => r.id)
  assert.deepEqual(flagged.sort(), report.findings.filter((f) => f.action === 'flag').map((f) => f.id).sort())
  const [day] = engine.query({ tenant: 't', metric: 'kwh', window: 'day', timeZone: 'UTC' })
  assert.equal(day.flaggedCount ?? 0, flagged.length)
  const deadline = Date.now() + 5000
  const alerts = report.findings.filter((f) => f.severity !== 'info').length
  while (events.filter((e) => e.type === 'anomaly_detected').length < alerts && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(events.filter((e) => e.type === 'anomaly_detected').map((e) => e.finding.id).sort(),
    report.findings.filter((f) => f.severity !== 'info').map((f) => f.id).sort())
  assert.equal(thrown(() => engine.setValidation('kwh', { bogus: true })).code, 'E_PARSE')
})

test('Validator: per-metric configs, default, unknown metrics, transactions, setNow(null)', () => {
  const v = new Validator({ kwh: {} })
  v.setNow('2024-05-06T12:00:00Z')
  assert.equal(v.covers('kwh'), true)
  assert.equal(v.covers('bytes'), false)
  const f = v.check([kwh('a', '1', '2024-05-06T10:00:00Z'), { ...kwh('b', '1', '2024-05-06T10:00:00Z'), metric: 'bytes' }])
  assert.deepEqual(f.map((x) => [x.id, x.rule]), [['b', 'unknown_metric']])
  assert.equal(v.seriesCount, 1)
  v.begin()
  v.check(kwh('c', '1', '2024-05-06T11:00:00Z', { subject: 'm2' }))
  assert.equal(v.seriesCount, 2)
  v.rollback()
  assert.equal(v.seriesCount, 1)
  v.setNow(null)
  const d = new Validator(null, { allowNegative: true })
  assert.equal(d.covers('anything'), true)
  assert.deepEqual(d.check(kwh('n', '-1', new Date())), [])
  d.setConfig('kwh', { allowNegative: false })
  assert.equal(d.check(kwh('n2', '-1', new Date()))[0].rule, 'negative_quantity')
  assert.equal(thrown(() => new Validator({ kwh: { window: 'ten' } })).code, 'E_PARSE')
})

test('validationSummary counts findings', () => {
  const v = new Validator({ kwh: {} })
  v.setNow('2024-05-06T12:00:00Z')
  const findings = v.check([kwh('a', '-1', '2024-05-06T10:00:00Z'), kwh('b', '-1', '2024-05-06T11:00:00Z')])
  const s = validationSummary(findings)
  assert.equal(s.total, 2)
  assert.equal(s.byRule.negative_quantity.info + s.byRule.negative_quantity.warning + s.byRule.negative_quantity.error, 2)
})

test('RegisterTracker: interval records from register readings, rollover', () => {
  const t = new RegisterTracker('t', 'kwh')
  let out = t.push([
    { meter: 'm1', timestamp: '2024-05-01T00:00:00Z', register: '9990', registerDigits: 4 },
    { meter: 'm1', timestamp: '2024-05-01T01:00:00Z', register: '9995.5', registerDigits: 4 },
  ])
  assert.equal(out.records.length, 1)
  assert.equal(out.records[0].quantity, '5.5')
  assert.equal(out.records[0].subject, 'm1')
  // 9995.5 → 0003 on a 4-digit register: a rollover, 10000 - 9995.5 + 3 = 7.5.
  out = t.push({ meter: 'm1', timestamp: '2024-05-01T02:00:00Z', register: '3', registerDigits: 4 })
  assert.equal(out.records[0].quantity, '7.5')
  assert.ok(out.findings.some((f) => f.rule === 'rollover'))
  assert.equal(t.lastReading('m1').register, '3')
  assert.equal(t.lastReading('nope'), null)
})

test('Engine.trackCounters: tracker state survives a restart; a 32-bit counter wraps', () => {
  const os = require('node:os')
  const fs = require('node:fs')
  const path = require('node:path')
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mk-counters-')), 'c.db')
  const start = { meter: 's1', timestamp: '2024-03-01T10:00:00Z', register: '4294967000', registerBits: 32 }
  let out = new Engine({ path: file }).trackCounters('isp', 'bytes', [start], { dating: 'end' })
  assert.deepEqual([out.records.length, out.report.accepted], [0, 0])
  const engine = new Engine({ path: file }) // a restart: the state comes from the store
  assert.equal(engine.counterState('isp', 'bytes', 's1').register, '4294967000')
  assert.equal(engine.counterState('isp', 'bytes', 'nope'), null)
  // 2^32 − 4294967000 + 704 = 296 + 704 = 1000.
  out = engine.trackCounters('isp', 'bytes', [{ meter: 's1', timestamp: '2024-03-01T10:05:00Z', register: '704', registerBits: 32 }], { dating: 'end' })
  assert.deepEqual(out.records.map((r) => [r.id, r.quantity]), [['s1@2024-03-01T10:05:00Z', '1000']])
  assert.deepEqual(out.findings.map((f) => f.rule), ['rollover'])
  assert.equal(thrown(() => engine.trackCounters('isp', 'bytes', [], { datng: 'end' })).code, 'E_PARSE')
})

test('estimateGaps fills a short gap by interpolation, marked estimated', () => {
  const recs = [kwh('a', '1', '2024-05-01T00:00:00Z'), kwh('c', '3', '2024-05-01T02:00:00Z')]
  const est = estimateGaps(recs, { intervalSecs: 3600 })
  assert.equal(est.length, 1)
  assert.deepEqual([est[0].timestamp, est[0].quality], ['2024-05-01T01:00:00Z', 'estimated'])
  assert.equal(est[0].quantity, '2')
  assert.equal(thrown(() => estimateGaps(recs, { interval: 3600 })).code, 'E_PARSE')
})

// 400 hours alternating 1.0 / 1.2 (past the 288-value warm-up), a day of zeros, then normal again.
const faultSeries = (n) => Array.from({ length: n }, (_, h) => kwh(`h${h}`, h >= 400 && h < 424 ? '0' : h % 2 ? '1.2' : '1.0',
  new Date(Date.UTC(2024, 4, 1) + h * 3600e3)))

test('alertsOf merges the findings of one fault into one alert', () => {
  const records = faultSeries(474)
  const v = new Validator(null, {})
  v.setNow('2024-07-01T00:00:00Z')
  const findings = v.check(records)
  assert.ok(findings.filter((f) => f.severity !== 'info').length > 1)
  const alerts = alertsOf(records, findings)
  assert.equal(alerts.length, 1)
  const [a] = alerts
  assert.deepEqual(Object.keys(a), ['tenant', 'subject', 'metric', 'start', 'end', 'rules', 'severity', 'peak', 'expected', 'findings'])
  assert.equal(a.start, '2024-05-17T16:00:00Z')
  assert.ok(a.rules.includes('zero_streak'))
  assert.equal(a.severity, 'warning')
  assert.equal(a.peak, '0')
  assert.deepEqual(alertsOf(records, findings, { warmup: 500 }), [])
  assert.equal(thrown(() => alertsOf(records, findings, { gap: 0 })).code, 'E_VALIDATION')
})

test('engine validation: alert_raised and alert_resolved events', async () => {
  const events = []
  const engine = new Engine({ onEvent: (e) => events.push(e) })
  engine.setValidation('kwh', {})
  engine.setValidationNow('2024-07-01T00:00:00Z')
  engine.ingest(faultSeries(600))
  const deadline = Date.now() + 5000
  while (!events.some((e) => e.type === 'alert_resolved') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  const raised = events.filter((e) => e.type === 'alert_raised')
  const resolved = events.filter((e) => e.type === 'alert_resolved')
  assert.equal(raised.length, 1)
  assert.equal(resolved.length, 1)
  assert.equal(raised[0].alert.start, '2024-05-17T16:00:00Z')
  assert.equal(resolved[0].alert.start, raised[0].alert.start)
  assert.ok(resolved[0].alert.rules.includes('zero_streak'))
})
