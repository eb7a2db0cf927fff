'use strict'
// Tariffs, bills, invoices, quotas and shared meters through the JS API.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine, Tariff, PreparedLoad, compareTariffs, createInvoice, monthPeriod, localInstant, allocate, splitSharedMeter } = require('meterkit')
const { rec, thrown, repo } = require('./helpers.js')

const TOML = `
currency = "GBP"
time_zone = "Europe/London"

[[charges]]
id = "standing"
type = "fixed"
per = "day"
amount = "0.50"

[[charges]]
id = "energy"
type = "graduated"
unit = "kWh"
tiers = [{ up_to = "100", rate = "0.20" }, { rate = "0.30" }]

[[charges]]
id = "vat"
type = "percentage"
percent = "5"
tax = true
`

const kwh = (id, q, ts) => rec(id, q, ts, { subject: 'home', metric: 'kwh' })
const request = { tenant: 't1', subject: 'home', metric: 'kwh', periodStart: '2024-04-01T00:00:00+01:00', periodEnd: new Date('2024-04-30T23:00:00Z'), timeZone: 'Europe/London' }

test('Tariff factories, toJSON, currency, minorUnits, metrics, quantityTotal', () => {
  const t = Tariff.fromToml(TOML)
  assert.equal(t.currency, 'GBP')
  assert.equal(t.minorUnits(), 2)
  assert.deepEqual(t.metrics('kwh'), ['kwh'])
  const doc = JSON.parse(JSON.stringify(t))
  assert.equal(doc.currency, 'GBP')
  // The JSON document reads back to the same tariff, as text and as an object.
  assert.deepEqual(JSON.parse(JSON.stringify(Tariff.fromJson(doc))), doc)
  assert.deepEqual(JSON.parse(JSON.stringify(Tariff.fromJson(JSON.stringify(doc)))), doc)
  assert.deepEqual(JSON.parse(JSON.stringify(Tariff.fromAny(TOML))), doc)
  // A per-day standing charge needs the calendar: quantityTotal refuses it.
  assert.equal(thrown(() => t.quantityTotal('150')).code, 'E_TARIFF')
  const noStanding = Tariff.fromJson({ ...doc, versions: undefined, charges: doc.versions[0].charges.filter((c) => c.id !== 'standing') })
  // 150 kWh: 100 × 0.20 + 50 × 0.30 = 35.00, VAT 5 % = 1.75: 36.75.
  assert.equal(noStanding.quantityTotal('150'), '36.75')
  assert.equal(thrown(() => noStanding.quantityTotal('lots')).field, 'quantity')
  const urdb = Tariff.fromUrdbJson({ label: 'x', eiaid: 1, fixedchargefirstmeter: 10, fixedchargeunits: '$/month' })
  assert.equal(urdb.currency, 'USD')
})

test('tariff errors: E_PARSE with the line, E_TARIFF naming the field', () => {
  const e = thrown(() => Tariff.fromToml('currency = "GBP"\n[[charges]]\nid = \n'))
  assert.equal(e.code, 'E_PARSE')
  assert.equal(e.line, 3)
  const t = thrown(() => Tariff.fromJson({ currency: 'gbp', charges: [] }))
  assert.equal(t.code, 'E_TARIFF')
  assert.equal(t.field, 'currency')
  const tiers = thrown(() => Tariff.fromJson({ currency: 'GBP', charges: [{ id: 'e', type: 'graduated', tiers: [{ up_to: '10', rate: '1' }] }] }))
  assert.equal(tiers.code, 'E_TARIFF')
  assert.match(tiers.field, /tiers/)
})

test('Tariff.bill, engine.bill and engine.billAsync give the same exact bill', async () => {
  const t = Tariff.fromToml(TOML)
  const records = [kwh('a', '60.5', '2024-04-02T10:00:00Z'), kwh('b', '89.5', '2024-04-20T10:00:00Z'), kwh('c', '1000', '2024-05-01T10:00:00Z')]
  const bill = t.bill(request, records)
  // 30 days × 0.50 = 15.00; 150 kWh: 100 × 0.20 + 50 × 0.30 = 35.00; VAT 5 % of 50.00 = 2.50.
  assert.deepEqual(bill.lines.map((l) => [l.charge, l.quantity, l.amount]), [
    ['standing', '30', '15.00'],
    ['energy', '100', '20.00'],
    ['energy', '50', '15.00'],
    ['vat', '50', '2.50'],
  ])
  assert.deepEqual([bill.subtotal, bill.taxes, bill.total, bill.currency], ['50.00', '2.50', '52.50', 'GBP'])
  assert.deepEqual(Object.keys(bill), ['tenant', 'subject', 'periodStart', 'periodEnd', 'timeZone', 'currency', 'lines', 'subtotal', 'taxes', 'total'])
  const engine = new Engine()
  engine.ingest(records)
  assert.deepEqual(engine.bill(t, request), bill)
  assert.deepEqual(await engine.billAsync(t, request), bill)
  await assert.rejects(engine.billAsync(t, { ...request, timeZone: 'Nowhere' }), (e) => e.code === 'E_INVALID_TIME_ZONE' || e.code === 'E_TARIFF')
})

test('invoices: draft → issued → paid, overdue, void; events; E_INVALID_TRANSITION', async () => {
  const events = []
  const engine = new Engine({ onEvent: (e) => events.push(e) })
  const t = Tariff.fromToml(TOML)
  engine.ingest([kwh('a', '10', '2024-04-02T10:00:00Z')])
  const bill = engine.bill(t, request)
  const draft = createInvoice('inv-1', bill, 14)
  assert.deepEqual([draft.id, draft.status, draft.paymentTermsDays], ['inv-1', 'draft', 14])
  const issued = engine.issueInvoice(draft, '2024-05-01T09:00:00Z')
  assert.deepEqual([issued.status, issued.dueAt], ['issued', '2024-05-15T09:00:00Z'])
  assert.equal(thrown(() => engine.issueInvoice(draft, '2024-05-01T09:00:00Z')).code, 'E_CONFLICT')
  engine.issueInvoice(createInvoice('inv-2', bill, 7), '2024-05-01T09:00:00Z')
  assert.deepEqual(engine.remindersDue('t1', '2024-05-06T09:00:00Z', 2).map((i) => i.id), ['inv-2'])
  assert.deepEqual(engine.markOverdue('t1', '2024-05-09T00:00:00Z').map((i) => i.id), ['inv-2'])
  assert.equal(engine.payInvoice('t1', 'inv-1', '2024-05-10T00:00:00Z').status, 'paid')
  assert.equal(engine.voidInvoice('t1', 'inv-2', '2024-05-11T00:00:00Z').status, 'void')
  const e = thrown(() => engine.payInvoice('t1', 'inv-2', '2024-05-12T00:00:00Z'))
  assert.equal(e.code, 'E_INVALID_TRANSITION')
  assert.equal(thrown(() => engine.payInvoice('t1', 'nope', '2024-05-12T00:00:00Z')).code, 'E_NOT_FOUND')
  assert.deepEqual(engine.invoices('t1').map((i) => [i.id, i.status]), [['inv-1', 'paid'], ['inv-2', 'void']])
  await new Promise((r) => setTimeout(r, 50))
  assert.deepEqual(events.map((x) => [x.type, x.invoice]), [['bill_issued', 'inv-1'], ['bill_issued', 'inv-2'], ['invoice_overdue', 'inv-2']])
  assert.equal(events[0].total, bill.total)
})

test('quotas raise threshold_crossed once per level', async () => {
  const events = []
  const engine = new Engine({ onEvent: (e) => events.push(e) })
  engine.addQuota({ id: 'q', tenant: 't1', metric: 'kwh', period: 'month', timeZone: 'UTC', limit: '100', levels: ['50', '100'] })
  engine.ingest([kwh('a', '60', '2024-04-02T10:00:00Z')])
  engine.ingest([kwh('b', '60', '2024-04-03T10:00:00Z'), kwh('a', '60', '2024-04-02T10:00:00Z')])
  const deadline = Date.now() + 5000
  while (events.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(events.map((e) => [e.type, e.level, e.used]), [['threshold_crossed', '50', '60'], ['threshold_crossed', '100', '120']])
  assert.equal(thrown(() => engine.addQuota({ id: 'q', tenant: 't1', metric: 'kwh', period: 'month', timeZone: 'Mars', limit: '1', levels: ['50'] })).code, 'E_INVALID_TIME_ZONE')
})

test('monthPeriod, allocate, splitSharedMeter', () => {
  assert.deepEqual(monthPeriod('2024-03', 'Europe/London'), { start: '2024-03-01T00:00:00Z', end: '2024-03-31T23:00:00Z' })
  assert.equal(thrown(() => monthPeriod('March', 'UTC')).code, 'E_PARSE')
  assert.deepEqual(allocate('100', ['1', '1', '1'], 2), ['33.34', '33.33', '33.33'])
  assert.equal(thrown(() => allocate('1', [], 2)).code, 'E_INVALID_QUERY')
  const parts = splitSharedMeter({ meter: 'hall', metric: 'kwh', shares: [['flat-1', '2'], ['flat-2', '1']], scale: 3 }, 't1', '10', '2024-04-01T00:00:00Z')
  assert.deepEqual(parts.map((r) => [r.subject, r.quantity]), [['flat-1', '6.667'], ['flat-2', '3.333']])
})

test('URDB options, notes and compareTariffs (the core\'s Tariff.compare)', () => {
  const daily = {
    sector: 'Residential',
    energyratestructure: [[{ rate: 0.12, unit: 'kWh' }]],
    energyweekdayschedule: Array(12).fill(Array(24).fill(0)),
    energyweekendschedule: Array(12).fill(Array(24).fill(0)),
    fixedchargefirstmeter: 0.5,
    fixedchargeunits: '$/day',
  }
  const actual = Tariff.fromUrdbJson(daily)
  const pysam = Tariff.fromUrdbJsonWith(daily, { dayCount: 'pysam', lineDecimals: 6 })
  assert.deepEqual(actual.notes, ['sector: Residential'])
  assert.equal(thrown(() => Tariff.fromUrdbJsonWith(daily, { dayCount: 'weekly' })).field, 'dayCount')
  const records = Array.from({ length: 29 }, (_, d) => kwh(`h${d}`, '10', `2024-02-${String(d + 1).padStart(2, '0')}T12:00:00Z`))
  const req = { tenant: 't1', subject: 'home', metric: 'kwh', periodStart: '2024-01-01T00:00:00Z', periodEnd: '2024-03-01T00:00:00Z', timeZone: 'UTC' }
  const ranked = compareTariffs([['actual', actual], ['pysam', pysam]], req, records)
  // January 31 x 0.50 = 15.50 vs 0.5 x 365 / 12 = 15.21; February 290 x 0.12 + 29 x 0.50 = 49.30 vs 50.01.
  assert.deepEqual(ranked.map((c) => c.tariff), ['actual', 'pysam']) // cheapest first
  assert.deepEqual(ranked[0], {
    tariff: 'actual',
    total: '64.80',
    periods: [{ period: '2024-01', total: '15.50' }, { period: '2024-02', total: '49.30' }],
    error: null,
  })
  assert.equal(ranked[1].total, '65.22')
})

test('PreparedLoad prices as compareTariffs and Tariff.bill on a real year', () => {
  const fs = require('node:fs')
  const path = require('node:path')
  // The real household's 8760 hourly kWh of 2021 (the PySAM oracle's load) and a real URDB rate.
  const rows = fs.readFileSync(path.join(repo, 'examples/data/uk-smart-meter-hourly.csv'), 'utf8').trim().split('\n').slice(1)
    .map((l) => l.split(',')).filter(([start]) => start.startsWith('2021'))
  assert.equal(rows.length, 8760)
  const records = rows.map(([start, value], i) => kwh(`h${i}`, value, new Date(start.replace(' ', 'T')).toISOString()))
  const urdb = Tariff.fromUrdbJson(fs.readFileSync(path.join(repo, 'tests/data/urdb/urdb-539f6a23ec4f024411ec8beb-south-central-ppd-lp1.json'), 'utf8'))
  const flat = Tariff.fromToml(TOML)
  const req = { tenant: 't1', subject: 'home', metric: 'kwh', periodStart: '2021-01-01T00:00:00Z', periodEnd: '2022-01-01T00:00:00Z', timeZone: 'America/Chicago' }
  const load = new PreparedLoad(req, records)
  // The UTC year in Chicago's local months: 2020-12 (6 hours), 2021-01 … 2021-12 (cut).
  assert.equal(load.length, 13)
  assert.equal(load.len(), 13)
  assert.equal(load.monthRequest(0).periodStart, '2021-01-01T00:00:00Z')
  assert.equal(load.monthRequest(0).periodEnd, localInstant('2021-01-01', 'America/Chicago'))
  assert.equal(load.monthRequest(12).periodEnd, '2022-01-01T00:00:00Z')
  assert.equal(load.monthRequest(13), null)
  const tariffs = [['urdb', urdb], ['flat', flat]]
  const ranked = load.compare(tariffs)
  assert.deepEqual(ranked, compareTariffs(tariffs, req, records))
  assert.ok(ranked.every((c) => c.error === null))
  for (const [name, tariff] of tariffs) {
    const bills = load.bills(tariff)
    assert.equal(bills.length, 13)
    // Month by month, the bills of Tariff.bill on the month's request.
    assert.deepEqual(bills, bills.map((_, i) => tariff.bill(load.monthRequest(i), records)), name)
    const row = ranked.find((c) => c.tariff === name)
    assert.deepEqual(row.periods.map((p) => p.total), bills.map((b) => b.total))
    assert.ok(Number(row.total) > 0)
  }
  // The load keeps its records: the caller's array may change afterwards.
  records.length = 0
  assert.deepEqual(load.compare(tariffs), ranked)
})

test('PreparedLoad errors carry the core envelope', () => {
  const req = { tenant: 't1', subject: 'home', metric: 'kwh', periodStart: '1900-01-01T00:00:00Z', periodEnd: '2024-01-01T00:00:00Z', timeZone: 'UTC' }
  assert.equal(thrown(() => new PreparedLoad(req, [])).code, 'E_INVALID_QUERY')
  assert.equal(thrown(() => new PreparedLoad({ ...req, periodStart: '2023-01-01T00:00:00Z', timeZone: 'Mars/Base' }, [])).code, 'E_INVALID_TIME_ZONE')
})
