'use strict'
// A cron job's repeat run from Node (issue 14, item 11): N API-request records (default 979,000,
// the count) are ingested in batches of 10,000 into an engine (`memory` or `sqlite`, a
// temporary file) with a monthly spec per portal and status, then sent again — every record a
// duplicate — in the same batches, in batches cut 5,000 records later (every key checked against
// the store), and through `ingestColumns` (the bulk path: typed arrays, batches of 100,000, cut
// at yet another offset, then once more in those same column batches). Prints each run's wall and CPU time per record (`process.cpuUsage`:
// the machine the figures come from is shared, so wall time overstates the cost).
//
//   node benches/node/repeat_run.js [N] [memory|sqlite]   (after `npx napi build --platform --release`)
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const meterkitPath = process.env.METERKIT_PACKAGE || path.join(__dirname, '..', '..', 'bindings-node')
const { Engine } = require(meterkitPath)

const N = Number(process.argv[2] || 979_000)
const STORE = process.argv[3] || 'sqlite'
const BATCH = 10_000
const COLS = 100_000
const BASE = Date.UTC(2024, 4, 1)

// The same data as benches/examples/repeat_run.rs: one request every 2 s, 40 portals, 1 in 17 an error.
const ids = new Array(N)
const portalCodes = new Uint32Array(N)
const statusCodes = new Uint32Array(N)
const millis = new Float64Array(N)
const ones = new Float64Array(N).fill(1)
const records = new Array(N)
for (let i = 0; i < N; i++) {
  ids[i] = `req-${i}`
  portalCodes[i] = i % 40
  statusCodes[i] = i % 17 === 0 ? 0 : 1
  millis[i] = BASE + ((i * 2) % (30 * 86_400)) * 1000
  records[i] = {
    tenant: 'api',
    id: ids[i],
    subject: `portal-${portalCodes[i]}`,
    metric: 'requests',
    quantity: '1',
    timestamp: new Date(millis[i]).toISOString(),
    dimensions: { status: statusCodes[i] === 0 ? 'error' : 'ok' },
  }
}
const portals = Array.from({ length: 40 }, (_, i) => `portal-${i}`)

function run(what, send) {
  if (global.gc) global.gc()
  const t = process.hrtime.bigint()
  const cpu = process.cpuUsage()
  const total = { accepted: 0, duplicates: 0, rejected: 0 }
  for (const r of send()) {
    total.accepted += Number(r.accepted)
    total.duplicates += Number(r.duplicates)
    total.rejected += r.rejected.length
  }
  const wall = Number(process.hrtime.bigint() - t) / 1e9
  const used = process.cpuUsage(cpu)
  const cpuS = (used.user + used.system) / 1e6
  console.log(
    `${what.padEnd(34)}: ${N} records in ${wall.toFixed(2)} s wall (${((wall * 1e6) / N).toFixed(3)} µs/record), ` +
      `${cpuS.toFixed(2)} s CPU (${((cpuS * 1e6) / N).toFixed(3)} µs/record): ${total.accepted} accepted, ` +
      `${total.duplicates} duplicates, ${total.rejected} rejected`,
  )
}

function* batches(engine, offset, size) {
  const cuts = offset > 0 ? [0, offset] : [0]
  for (let i = offset; i < N; i += size) cuts.push(Math.min(i + size, N))
  for (let k = 1; k < cuts.length; k++) {
    if (cuts[k] > cuts[k - 1]) yield engine.ingest(records.slice(cuts[k - 1], cuts[k]))
  }
}

function* columns(engine, offset) {
  const cuts = [0, offset]
  for (let i = offset; i < N; i += COLS) cuts.push(Math.min(i + COLS, N))
  for (let k = 1; k < cuts.length; k++) {
    const [a, b] = [cuts[k - 1], cuts[k]]
    if (b <= a) continue
    yield engine.ingestColumns({
      tenant: 'api',
      metric: 'requests',
      id: ids.slice(a, b),
      subject: { values: portals, codes: portalCodes.subarray(a, b) },
      quantity: ones.subarray(a, b),
      timestamp: millis.subarray(a, b),
      dimensions: { status: { values: ['error', 'ok'], codes: statusCodes.subarray(a, b) } },
    })
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterkit-repeat-'))
try {
  const engine = new Engine(STORE === 'memory' ? {} : { path: path.join(dir, 'repeat.db') })
  engine.addSpec({ metric: 'requests', window: 'month', timeZone: 'UTC', groupBy: ['subject', 'status'] })
  console.log(`store: ${STORE}; node ${process.version}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`)
  run('first run, ingest', () => batches(engine, 0, BATCH))
  run('repeat, ingest, same batches', () => batches(engine, 0, BATCH))
  run('repeat, ingest, shifted batches', () => batches(engine, 5_000, BATCH))
  run('repeat, ingestColumns, shifted', () => columns(engine, 2_500))
  run('repeat, ingestColumns, same batches', () => columns(engine, 2_500))
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
}
