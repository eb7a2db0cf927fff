// Type-checked by `tsc --noEmit` (scripts/test-node) against the installed package's index.d.ts.
// The `@ts-expect-error` lines must fail to compile: tsc reports an unused one as an error, so
// they prove the types reject what they should.
import {
  Engine,
  Tariff,
  createInvoice,
  monthPeriod,
  allocate,
  splitSharedMeter,
  Validator,
  RegisterTracker,
  estimateGaps,
  rollupColumns,
  compareTariffs,
  type ReadingOutcome,
  type Comparison,
  type Bill,
  type Finding,
  type Invoice,
  checkRecords,
  errorCodes,
  parseDecimal,
  parseTs,
  windowSpan,
  type Bucket,
  type TariffCharge,
  type TariffDocument,
  type DecimalString,
  type IngestReport,
  type MeterkitError,
  type MeterkitEvent,
  type Query,
  type RollupSpec,
  type Totals,
  type UsageRecord,
  type UsageRecordInput,
} from 'meterkit'

const events: MeterkitEvent[] = []
const engine = new Engine({
  path: null,
  onEvent: (e) => {
    if (e.type === 'window_closed') {
      const sum: DecimalString = e.bucket.sum
      events.push(e)
      void sum
    }
  },
})
const spec: RollupSpec = { metric: 'bytes', window: 'day', timeZone: 'UTC', groupBy: ['carrier'], aggregations: ['sum', { unique_count: 'subject' }] }
const specId: number = engine.addSpec(spec)

const records: UsageRecordInput[] = [
  { id: 'r1', tenant: 't', subject: 'sim-1', metric: 'bytes', quantity: '1024', timestamp: new Date(), dimensions: { carrier: 'acme' } },
  { id: 'r2', tenant: 't', subject: 'sim-2', metric: 'bytes', quantity: 2048, timestamp: '2024-05-01T10:00:00+02:00', end: null },
]
const report: IngestReport = engine.ingest(records)
const rejectedKinds: string[] = report.rejected.map((r) => r.kind)

const q: Query = { tenant: 't', metric: 'bytes', window: 'minutes:15', timeZone: 'Europe/London', from: new Date(0), to: '2030-01-01T00:00:00Z', fill: 'none' }
const rows: Bucket[] = engine.query(q)
const firstSum: DecimalString | undefined = rows[0]?.sum
const counted: number | undefined = rows[0]?.unique?.subject
const top: Bucket[] = engine.topN(q, { unique_count: 'subject' }, 3)
const totals: Totals = engine.totals('t', 'bytes', 'month', 'UTC', new Date())
const change: string | null = totals.changePercent
const stored: UsageRecord[] = engine.records('t', 'bytes', new Date(0), new Date(), 'sim-1')
const retracted: UsageRecord = engine.retract('t', 'r1')
const closed: number = engine.closeWindows('t', new Date(), 3600)
const span: { start: string; end: string } = windowSpan('cycle:15', new Date(), 'America/New_York')
const checked: UsageRecord[] = checkRecords(records[0])
const codes = errorCodes().map((c) => c.code)

const tariff: Tariff = Tariff.fromToml('currency = "GBP"')
const fromDoc: Tariff = Tariff.fromJson(tariff.toJSON())
// A tariff document is typed by charge kind: each `type` takes only its own keys.
const doc: TariffDocument = {
  currency: 'GBP',
  charges: [
    { id: 'standing', type: 'fixed', amount: '0.45', per: 'day' },
    { id: 'energy', type: 'graduated', metric: 'kwh', tiers: [{ up_to: '100', rate: '0.2' }, { rate: '0.3' }] },
    { id: 'peak', type: 'demand', rate: '9.5', interval_minutes: 30 },
  ],
}
const typedTariff: Tariff = Tariff.fromJson(doc)
// @ts-expect-error: a fixed charge takes no `rate`
const wrongKey: TariffCharge = { id: 'f', type: 'fixed', amount: '1', rate: '2' }
// @ts-expect-error: a demand charge needs a price (`rate`, `tiers`, or `schedule` + `periods`)
const noPrice: TariffCharge = { id: 'd', type: 'demand' }
const bill: Bill = engine.bill(fromDoc, { subject: 'sim-1', metric: 'bytes', periodStart: new Date(0), periodEnd: '2024-02-01T00:00:00Z', timeZone: 'UTC' })
const total: DecimalString = bill.total
const invoice: Invoice = engine.issueInvoice(createInvoice('inv-1', bill, 14), new Date())
const period: { start: string; end: string } = monthPeriod('2024-02', 'UTC')
const parts: string[] = allocate('10', ['1', '2'], 2)
const split: UsageRecord[] = splitSharedMeter({ meter: 'm', metric: 'kwh', shares: [['a', '1']], scale: 3 }, 't', '1', new Date())
engine.addQuota({ id: 'q', tenant: 't', metric: 'bytes', period: 'month', timeZone: 'UTC', limit: '1000', levels: ['80', '100'] })
engine.addQuota({ id: 'daily', tenant: 't', metric: 'bytes', period: 'day', timeZone: 'UTC', limit: '100', levels: ['100'] })
const fromCron: IngestReport = engine.ingestFrom('hourly', records)
const watermark: string | null = engine.lastIngestedAt('t', 'hourly')

engine.setValidation('kwh', { highLimit: '100', spikes: true })
engine.setValidationNow(null)
const validator = new Validator({ kwh: { unit: 'kWh' } }, null)
const found: Finding[] = validator.check(records)
const rules: string[] = found.map((f) => f.rule)
const pushed = new RegisterTracker('t', 'kwh').push({ meter: 'm', timestamp: new Date(), register: '12.5' })
const estimated: UsageRecord[] = estimateGaps(pushed.records, { intervalSecs: 1800 })
const findingsOfReport: Finding[] | undefined = report.findings
const storeless: Bucket[] = rollupColumns({ tenant: 't', id: ['a'], subject: 's', metric: 'kwh', quantity: ['1.5'], timestamp: ['2024-01-01T00:00:00Z'] }, spec)
const asColumns = engine.queryColumns(q)
const columnSums: DecimalString[] = asColumns.sum
const groupColumn: Array<string | null> | undefined = asColumns.group.carrier
const outcome: ReadingOutcome = engine.recordReading('t', 'kwh', { meter: 'm', timestamp: new Date(), register: '10' }, null, { timeZone: 'UTC' })
const status: 'accepted' | 'flagged' | 'rejected' = outcome.status
const ranked: Comparison[] = compareTariffs([['a', tariff]], { subject: 's', metric: 'kwh', periodStart: new Date(0), periodEnd: new Date(), timeZone: 'UTC' }, records)

async function later(): Promise<void> {
  const billed: Bill = await engine.billAsync(tariff, { subject: 's', metric: 'kwh', periodStart: new Date(0), periodEnd: new Date(), timeZone: 'UTC' })
  void billed
  const r: IngestReport = await engine.ingestAsync(records)
  const b: Bucket[] = await engine.queryAsync(q)
  const c: IngestReport = await engine.ingestColumnsAsync({
    tenant: 't',
    metric: 'bytes',
    id: ['a', 'b'],
    subject: { values: ['sim-1'], codes: Uint32Array.of(0, 0) },
    quantity: BigInt64Array.of(1n, 2n),
    scale: 0,
    timestamp: Float64Array.of(Date.now(), Date.now()),
    dimensions: { carrier: ['acme', null] },
  })
  void [r, b, c]
}

try {
  engine.retract('t', 'missing')
} catch (err) {
  const e = err as MeterkitError
  const code: 'E_NOT_FOUND' | string = e.code
  const field: string | null = e.field
  const line: number | null = e.line
  const retryable: boolean = e.retryable
  void [code, field, line, retryable]
}

// @ts-expect-error: decimals are strings or numbers, never booleans
engine.ingest([{ id: 'x', tenant: 't', subject: 's', metric: 'm', quantity: true, timestamp: new Date() }])
// @ts-expect-error: a query needs a time zone
engine.query({ tenant: 't', metric: 'bytes', window: 'day' })
// @ts-expect-error: keys are camelCase: `group_by` is not a key of Query (and `timeZone` is missing)
engine.query({ tenant: 't', metric: 'bytes', window: 'day', time_zone: 'UTC', group_by: ['carrier'] })
// @ts-expect-error: buckets have `windowStart`, not `window_start`
const oldKey: string | undefined = rows[0]?.window_start
// @ts-expect-error: not a window kind
engine.addSpec({ metric: 'bytes', window: 'fortnight', timeZone: 'UTC' })
// @ts-expect-error: sums are strings, not numbers
const wrong: number = rows[0].sum
// @ts-expect-error: engine.bill takes a Tariff instance, not a document
engine.bill({ currency: 'GBP' }, { subject: 's', metric: 'kwh', periodStart: new Date(0), periodEnd: new Date(), timeZone: 'UTC' })
// @ts-expect-error: parseDecimal returns a string
const n: number = parseDecimal('1.5')

void [typedTariff, wrongKey, noPrice, storeless, columnSums, groupColumn, status, ranked, fromCron, watermark, rules, estimated, findingsOfReport, total, invoice, period, parts, split, specId, rejectedKinds, firstSum, counted, top, change, stored, retracted, closed, span, checked, codes, later, parseTs, wrong, n, events]
