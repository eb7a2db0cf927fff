'use strict'
// Ingest benchmark of the Node package: N usage records (default 1,000,000) rolled up into
// bytes per hour per carrier, four ways through meterkit (in-memory engine) and two ways in plain
// JavaScript (a Map keyed by hour and carrier, summing JS numbers and decimal.js Decimals).
//
//   node benches/node/bench.js [N]            (from a checkout where bindings-node is built)
//   node benches/node/bench.js N --only WAY   (one way alone, for a profile: per-record,
//                                              batches, columns, js-numbers, js-decimal)
//
// Every way's result is checked against the others before the figures are printed, then issue
// 18's Node rows as measured / goal. `scripts/bench-node` runs it and writes RESULTS.md. With
// BENCH_PERF_CTL set to perf's control fifo (`perf record -D -1 --control fifo:PATH`), a way
// run with --only switches sampling on for its timed part only.
const path = require('node:path')
const meterkitPath = process.env.METERKIT_PACKAGE || path.join(__dirname, '..', '..', 'bindings-node')
const { Engine } = require(meterkitPath)
const Decimal = require(require.resolve('decimal.js', { paths: [meterkitPath] }))

const N = Number(process.argv[2] || 1_000_000)
const ONLY = process.argv[3] === '--only' ? process.argv[4] : undefined
const fs = require('node:fs')
function perf(command) {
  if (process.env.BENCH_PERF_CTL) {
    fs.writeFileSync(process.env.BENCH_PERF_CTL, `${command}\n`)
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50) // let perf read it
  }
}
const CARRIERS = ['acme', 'beta', 'gamma', 'delta']
const SIMS = 1000
const T0 = Date.UTC(2024, 4, 1)
const SPEC = { metric: 'bytes', window: 'hour', timeZone: 'UTC', groupBy: ['carrier'] }
const QUERY = { tenant: 't1', metric: 'bytes', window: 'hour', timeZone: 'UTC', groupBy: ['carrier'] }

// Deterministic data: 1,000 SIMs over 30 days, 1 B - 10 MB each.
let seed = 42
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648)
const ids = new Array(N)
const simCodes = new Uint32Array(N)
const carrierCodes = new Uint32Array(N)
const bytes = new BigInt64Array(N)
const millis = new Float64Array(N)
const records = new Array(N)
for (let i = 0; i < N; i++) {
  ids[i] = `r${i}`
  simCodes[i] = Math.floor(rand() * SIMS)
  carrierCodes[i] = simCodes[i] % CARRIERS.length
  const b = 1 + Math.floor(rand() * 10_000_000)
  bytes[i] = BigInt(b)
  millis[i] = T0 + Math.floor(rand() * 30 * 24 * 3600) * 1000
  records[i] = {
    id: ids[i],
    tenant: 't1',
    subject: `sim-${simCodes[i]}`,
    metric: 'bytes',
    quantity: String(b),
    timestamp: new Date(millis[i]).toISOString(),
    dimensions: { carrier: CARRIERS[carrierCodes[i]] },
  }
}
const simNames = Array.from({ length: SIMS }, (_, i) => `sim-${i}`)

function timed(key, name, fn) {
  if (ONLY && key !== ONLY) return undefined
  if (global.gc) global.gc()
  perf('enable')
  const t = process.hrtime.bigint()
  const out = fn()
  const ms = Number(process.hrtime.bigint() - t) / 1e6
  perf('disable')
  return { key, name, ms, out }
}

function engineRun(ingest) {
  const engine = new Engine()
  engine.addSpec(SPEC)
  ingest(engine)
  return engine.query(QUERY).map((b) => `${b.windowStart}|${b.group.carrier}|${b.sum}|${b.count}`).join('\n')
}

const BATCH = 10_000
const COLS = 100_000
const runs = [
  timed('per-record', 'meterkit ingest, one call per record', () =>
    engineRun((e) => {
      for (let i = 0; i < N; i++) e.ingest(records[i])
    })),
  timed('batches', `meterkit ingest, batches of ${BATCH.toLocaleString('en')}`, () =>
    engineRun((e) => {
      for (let i = 0; i < N; i += BATCH) e.ingest(records.slice(i, i + BATCH))
    })),
  timed('columns', `meterkit ingestColumns (typed arrays), batches of ${COLS.toLocaleString('en')}`, () =>
    engineRun((e) => {
      for (let i = 0; i < N; i += COLS) {
        const end = Math.min(i + COLS, N)
        e.ingestColumns({
          tenant: 't1',
          metric: 'bytes',
          id: ids.slice(i, end),
          subject: { values: simNames, codes: simCodes.subarray(i, end) },
          quantity: bytes.subarray(i, end),
          timestamp: millis.subarray(i, end),
          dimensions: { carrier: { values: CARRIERS, codes: carrierCodes.subarray(i, end) } },
        })
      }
    })),
  timed('js-numbers', 'JS Map, JS numbers (no idempotency, no store)', () => {
    const m = new Map()
    for (const r of records) {
      const t = Date.parse(r.timestamp)
      const key = `${new Date(t - (t % 3_600_000)).toISOString()}|${r.dimensions.carrier}`
      const e = m.get(key)
      if (e) {
        e.sum += Number(r.quantity)
        e.count++
      } else m.set(key, { sum: Number(r.quantity), count: 1 })
    }
    return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k.replace('.000Z', 'Z')}|${v.sum}|${v.count}`).join('\n')
  }),
  timed('js-decimal', 'JS Map, decimal.js (no idempotency, no store)', () => {
    const m = new Map()
    for (const r of records) {
      const t = Date.parse(r.timestamp)
      const key = `${new Date(t - (t % 3_600_000)).toISOString()}|${r.dimensions.carrier}`
      const e = m.get(key)
      if (e) {
        e.sum = e.sum.plus(r.quantity)
        e.count++
      } else m.set(key, { sum: new Decimal(r.quantity), count: 1 })
    }
    return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k.replace('.000Z', 'Z')}|${v.sum.toFixed()}|${v.count}`).join('\n')
  }),
].filter(Boolean)
// The async path, for completeness (same work off the main thread).
async function asyncRun() {
  const engine = new Engine()
  engine.addSpec(SPEC)
  const t = process.hrtime.bigint()
  for (let i = 0; i < N; i += BATCH) await engine.ingestAsync(records.slice(i, i + BATCH))
  const ms = Number(process.hrtime.bigint() - t) / 1e6
  const out = (await engine.queryAsync(QUERY)).map((b) => `${b.windowStart}|${b.group.carrier}|${b.sum}|${b.count}`).join('\n')
  return { key: 'async', name: `meterkit ingestAsync, batches of ${BATCH.toLocaleString('en')}`, ms, out }
}

// Issue 18's Node rows: (way, goal in records/s).
const GOALS = [
  ['columns', 'Node `ingestColumns` (typed arrays, batches of 100k)', 1_000_000],
  ['per-record', 'Node per-record `ingest` (one call per record)', 100_000],
]

function report(runs) {
  const rate = (r) => (N / r.ms) * 1000
  console.log('')
  console.log('| path | measured | goal | measured/goal |')
  console.log('|---|---|---|---|')
  for (const [key, name, goal] of GOALS) {
    const r = runs.find((x) => x.key === key)
    const k = (v) => `${Math.round(v / 1000).toLocaleString('en')} k rec/s`
    console.log(`| ${name} | ${k(rate(r))} | ${k(goal)} | **${(rate(r) / goal).toFixed(2)}** |`)
  }
}

if (ONLY) {
  for (const r of runs) console.log(`${r.name}: ${r.ms.toFixed(0)} ms, ${Math.round((N / r.ms) * 1000).toLocaleString('en')} records/s`)
} else asyncRun().then((a) => {
  runs.splice(3, 0, a)
  const reference = runs[0].out
  for (const r of runs) {
    if (r.out !== reference) throw new Error(`${r.name} disagrees with the per-call meterkit result`)
  }
  const base = runs.find((r) => r.name.startsWith('JS Map, JS numbers')).ms
  console.log(`${N.toLocaleString('en')} records, ${reference.split('\n').length} hour x carrier buckets; node ${process.version}`)
  console.log('| way | time (ms) | records/s | time / JS Map with numbers |')
  console.log('| --- | ---: | ---: | ---: |')
  for (const r of runs) {
    console.log(`| ${r.name} | ${r.ms.toFixed(0)} | ${Math.round((N / r.ms) * 1000).toLocaleString('en')} | ${(r.ms / base).toFixed(1)}x |`)
  }
  report(runs)
})
