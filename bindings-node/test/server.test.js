'use strict'
// examples/node/server.js, started as a user starts it (its own process, loopback, a free port,
// a fresh SQLite file) and driven with real HTTP requests. Every request is bounded in time.
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { repo } = require('./helpers.js')

const serverJs = path.join(repo, 'examples', 'node', 'server.js')
// The installed package's node_modules, so the example's require('meterkit') finds it.
const nodeModules = require.resolve.paths('meterkit').find((d) => fs.existsSync(path.join(d, 'meterkit', 'package.json')))

let child
let base
let dir

test.before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterkit-portal-'))
  child = spawn(process.execPath, [serverJs], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', METERKIT_DB: path.join(dir, 'portal.db'), NODE_PATH: nodeModules },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start in 20 s')), 20_000)
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
    child.on('exit', (code) => reject(new Error(`the server exited with ${code}`)))
  })
})

test.after(() => {
  if (child) child.kill('SIGTERM')
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

async function call(method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  return [res.status, await res.json()]
}

const cdr = (recordId, iccid, carrier, periodStart, up, down) => ({
  recordId, iccid, carrier, periodStart, usage: { dataUploadBytes: up, dataDownloadBytes: down },
})

test('the portal API: ingest, duplicates, conflicts, bad input, trends, KPIs, carriers', async () => {
  // One record: 201 ACCEPTED; again: 200 DUPLICATE.
  let [status, body] = await call('POST', '/api/v1/usage', cdr('c1', '8944000000000000001', 'acme', '2024-05-01T10:15:00Z', '1000000000', '500000000'))
  assert.equal(status, 201)
  assert.deepEqual(body, { success: true, data: { recordId: 'c1', status: 'ACCEPTED' } })
  ;[status, body] = await call('POST', '/api/v1/usage', cdr('c1', '8944000000000000001', 'acme', '2024-05-01T10:15:00Z', '1000000000', '500000000'))
  assert.deepEqual([status, body.data.status], [200, 'DUPLICATE'])

  // A batch.
  ;[status, body] = await call('POST', '/api/v1/usage/batch', {
    records: [
      cdr('c2', '8944000000000000002', 'beta', '2024-05-01T10:45:00Z', 250000000, 250000000),
      cdr('c3', '8944000000000000001', 'acme', '2024-05-01T11:05:00Z', '0', '2000000000'),
      cdr('c4', '8944000000000000003', 'acme', '2024-04-10T08:00:00Z', '1000000000', '0'),
    ],
  })
  assert.equal(status, 200)
  assert.deepEqual(body, { success: true, data: { accepted: 6, duplicates: 0, rejected: [] } })

  // Bad input: 400 with the code, and nothing of the request is stored.
  const before = (await call('GET', '/api/consumption/trends?granularity=monthly'))[1]
  ;[status, body] = await call('POST', '/api/v1/usage/batch', {
    records: [cdr('c5', '8944000000000000004', 'acme', '2024-05-02T00:00:00Z', '1', '1'), cdr('c6', '', 'acme', '2024-05-02T00:00:00Z', '1', '1')],
  })
  assert.equal(status, 400)
  assert.equal(body.error.code, 'E_INVALID_RECORD')
  assert.equal(body.error.field, 'subject')
  ;[status, body] = await call('POST', '/api/v1/usage', cdr('c7', '8944000000000000004', 'acme', 'not a time', '1', '1'))
  assert.deepEqual([status, body.error.code, body.error.field], [400, 'E_PARSE', 'timestamp'])
  ;[status, body] = await call('POST', '/api/v1/usage', cdr('c8', '8944000000000000004', 'acme', '2024-05-02T00:00:00Z', '1.5', '1'))
  assert.deepEqual([status, body.error.code], [400, 'E_INVALID_RECORD'])
  ;[status, body] = await call('POST', '/api/v1/usage', '{"recordId": ')
  assert.deepEqual([status, body.error.code], [400, 'E_PARSE'])
  ;[status, body] = await call('POST', '/api/v1/usage/batch', { records: 'nope' })
  assert.deepEqual([status, body.error.code], [400, 'E_PARSE'])
  assert.deepEqual((await call('GET', '/api/consumption/trends?granularity=monthly'))[1], before)

  // A resent record with different content: 409, not applied.
  ;[status, body] = await call('POST', '/api/v1/usage', cdr('c1', '8944000000000000001', 'acme', '2024-05-01T10:15:00Z', '9', '9'))
  assert.deepEqual([status, body.error.code, body.error.recordId], [409, 'E_CONFLICT', 'c1'])
  assert.deepEqual((await call('GET', '/api/consumption/trends?granularity=monthly'))[1], before)

  // Trends from the rollups. May: c1 1.5 GB, c2 0.5 GB, c3 2 GB = 4 GB on 2 SIMs; April: c4 1 GB.
  ;[status, body] = await call('GET', '/api/consumption/trends?granularity=monthly')
  assert.equal(status, 200)
  assert.equal(body.granularity, 'monthly')
  assert.deepEqual(body.data.map((d) => [d.period, d.dataUsageGB, d.cost, d.simCount]), [
    ['2024-04-01T00:00:00Z', '1', '0.5', 1],
    ['2024-05-01T00:00:00Z', '4', '2', 2],
  ])
  ;[, body] = await call('GET', '/api/consumption/trends?granularity=hourly&from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z')
  assert.deepEqual(body.data.map((d) => [d.period, d.bytes, d.simCount]), [
    ['2024-05-01T10:00:00Z', '2000000000', 2],
    ['2024-05-01T11:00:00Z', '2000000000', 1],
  ])
  ;[, body] = await call('GET', '/api/consumption/trends?granularity=daily')
  assert.deepEqual(body.data.map((d) => [d.period, d.dataUsageGB]), [['2024-04-10T00:00:00Z', '1'], ['2024-05-01T00:00:00Z', '4']])
  ;[, body] = await call('GET', '/api/consumption/trends?granularity=weekly')
  assert.deepEqual(body.data.map((d) => d.period), ['2024-04-08T00:00:00Z', '2024-04-29T00:00:00Z'])
  ;[status, body] = await call('GET', '/api/consumption/trends?granularity=yearly')
  assert.deepEqual([status, body.error.code, body.error.field], [400, 'E_INVALID_QUERY', 'granularity'])
  ;[status, body] = await call('GET', '/api/consumption/trends?granularity=daily&from=2024-05-02T00:00:00Z&to=2024-05-01T00:00:00Z')
  assert.deepEqual([status, body.error.code], [400, 'E_INVALID_QUERY'])

  // KPIs of May 2024 against April.
  ;[status, body] = await call('GET', '/api/consumption/kpis?at=2024-05-15T00:00:00Z')
  assert.equal(status, 200)
  assert.deepEqual(body.data, {
    period: '2024-05-01T00:00:00Z',
    totalSpend: '2',
    totalSpendTrend: '300',
    dataUsageGB: '4',
    dataUsageTrend: '300',
    activeSims: 2,
    activeSimsTrend: '100',
    avgCostPerSim: '1',
  })

  // Carriers over everything: acme 1.5 + 2 + 1 = 4.5 GB, beta 0.5 GB.
  ;[status, body] = await call('GET', '/api/consumption/carriers')
  assert.equal(status, 200)
  assert.deepEqual(body.data, [
    { id: 'acme', name: 'acme', bytes: '4500000000', dataUsageGB: '4.5', cost: '2.25', costPercentage: '90', simCount: 2 },
    { id: 'beta', name: 'beta', bytes: '500000000', dataUsageGB: '0.5', cost: '0.25', costPercentage: '10', simCount: 1 },
  ])

  ;[status, body] = await call('GET', '/api/nothing')
  assert.deepEqual([status, body.error.code], [404, 'E_NOT_FOUND'])
})
