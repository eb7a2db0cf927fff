'use strict'
// Every number the SIM portal's API and page show, against sums made here from the generated
// CDRs (BigInt bytes, local days from Intl); the page in Debian's chromium; the MQTT bridge as
// `meterkit consume mqtt://…` from a real mosquitto into the portal's SQLite file.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')
const { generate, toRecords } = require('./data')
const { createServer } = require('./server')
const { localDay } = require('../lib/data')
const { show } = require('../lib/exact')
const { browserOption, launch, cardValues, bars, listen } = require('../lib/browser')

const gb9 = (n) => { const [i, f = ''] = show(n, 9).split('.'); return `${i}.${f.padEnd(9, '0')}` }
/** num / den in percent, 2 places half-even, shortest form (as meterkit prints a normalised decimal). */
function percent(num, den) {
  const neg = num < 0n
  const a = (neg ? -num : num) * 100n * 100n
  let q = a / den
  const r = a % den
  if (2n * r > den || (2n * r === den && q % 2n === 1n)) q += 1n
  return show(neg ? -q : q, 2)
}

/** The independent answer for `cdrs` (revisions already applied). */
function expected(data, cdrs) {
  const out = {}
  for (const t of data.tenants) {
    const mine = cdrs.filter((c) => c.tenant === t.tenant)
    const day = (c) => localDay(c.periodStart, t.timeZone)
    const bytes = (c) => BigInt(c.up) + BigInt(c.down)
    const perDay = new Map()
    for (const c of mine) perDay.set(day(c), (perDay.get(day(c)) ?? 0n) + bytes(c))
    const thisMonth = localDay(data.now, t.timeZone).slice(0, 7)
    const prev = new Date(Date.UTC(Number(thisMonth.slice(0, 4)), Number(thisMonth.slice(5)) - 2, 1)).toISOString().slice(0, 7)
    const inMonth = (m) => mine.filter((c) => day(c).slice(0, 7) === m)
    const total = (list) => list.reduce((a, c) => a + bytes(c), 0n)
    const [cur, before] = [total(inMonth(thisMonth)), total(inMonth(prev))]
    const byCarrier = new Map()
    for (const c of inMonth(thisMonth)) byCarrier.set(c.carrier, (byCarrier.get(c.carrier) ?? 0n) + bytes(c))
    const top = [...byCarrier].sort((a, b) => (b[1] > a[1] ? 1 : b[1] < a[1] ? -1 : 0))[0]
    const carriers = new Map()
    for (const c of mine) {
      const k = `${day(c).slice(0, 7)}|${c.carrier}`
      const e = carriers.get(k) ?? { bytes: 0n, sims: new Set() }
      e.bytes += bytes(c)
      e.sims.add(c.iccid)
      carriers.set(k, e)
    }
    out[t.tenant] = {
      carriers: [...carriers].map(([k, e]) => ({ month: k.split('|')[0], carrier: k.split('|')[1], gb: gb9(e.bytes), sims: e.sims.size })),
      daily: [...perDay].sort().map(([d, v]) => ({ day: d, bytes: String(v), value: gb9(v) })),
      kpis: { monthGB: gb9(cur), previousMonthGB: gb9(before), changePercent: before === 0n ? null : percent(cur - before, before), activeSims: new Set(inMonth(thisMonth).map((c) => c.iccid)).size, topCarrier: top ? top[0] : null },
    }
  }
  return out
}

function final(data, extra = []) {
  const m = new Map([...data.cdrs, ...extra].map((c) => [c.recordId, c]))
  for (const c of data.revised) m.set(c.recordId, c)
  return [...m.values()]
}

function start(opts = {}) {
  const data = generate()
  const app = createServer({ ...data, ...opts })
  const reports = [app.ingest(data.cdrs), app.ingest(data.resent), app.ingest(data.revised, { revise: true })]
  return { data, app, reports }
}

test('sim-portal: API numbers', () => {
  const { data, app, reports } = start()
  assert.deepEqual(reports.map((r) => [r.accepted, r.duplicates, r.replaced ?? 0]), [[data.cdrs.length * 2, 0, 0], [0, data.resent.length * 2, 0],
    [0, data.revised.length, data.revised.length]]) // a revision changes the bytes up only: its "down" record is a duplicate
  const e = expected(data, final(data))
  for (const t of data.tenants) {
    assert.deepEqual(app.daily(t.tenant), e[t.tenant].daily)
    assert.deepEqual(app.kpis(t.tenant), e[t.tenant].kpis)
    const order = (list) => [...list].sort((a, b) => `${a.month}|${a.carrier}`.localeCompare(`${b.month}|${b.carrier}`))
    assert.deepEqual(order(app.carriers(t.tenant)), order(e[t.tenant].carriers))
  }
  app.server.close()
})

test('sim-portal: the page shows the API numbers; a POST updates its KPIs live', browserOption(), async () => {
  const { data, app } = start({ pushEvery: 200 })
  const base = await listen(app.server)
  const browser = await launch()
  try {
    const page = await browser.newPage()
    await page.goto(`${base}/?tenant=acme-iot`)
    await page.waitForFunction(() => document.getElementById('live').textContent === 'live')
    const api = await (await fetch(`${base}/api/acme-iot/kpis`)).json()
    assert.deepEqual(await cardValues(page), Object.fromEntries(Object.entries(api).map(([k, v]) => [k, v === null ? '–' : String(v)])))
    const daily = await (await fetch(`${base}/api/acme-iot/daily`)).json()
    assert.deepEqual(await bars(page), daily.map((d) => ({ day: d.day, value: d.value })))
    const cdr = { recordId: 'live-1', iccid: '89440999999', carrier: 'o2', periodStart: '2024-04-05T09:00:00Z', up: '1000', down: '7000000000' }
    await fetch(`${base}/api/acme-iot/usage`, { method: 'POST', body: JSON.stringify([cdr]) })
    const want = expected(data, final(data, [{ ...cdr, tenant: 'acme-iot' }]))['acme-iot'].kpis
    await page.waitForFunction((v) => document.querySelector('[data-kpi="monthGB"] .v').textContent === v, want.monthGB)
    assert.deepEqual(await cardValues(page), Object.fromEntries(Object.entries(want).map(([k, v]) => [k, v === null ? '–' : String(v)])))
  } finally {
    await browser.close()
    app.server.close()
  }
})

/** A free loopback port (bound, read, released). */
const freePort = () => new Promise((resolve) => {
  const s = require('node:net').createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address()
    s.close(() => resolve(port))
  })
})

const MOSQUITTO = process.env.METERKIT_MOSQUITTO || '/usr/sbin/mosquitto'
const CLI = process.env.METERKIT_CLI || path.join(__dirname, '..', '..', '..', 'target', 'debug', 'meterkit')
const mqttOption = () => {
  const missing = [MOSQUITTO, CLI].filter((p) => !fs.existsSync(p))
  if (missing.length === 0) return {}
  if (process.env.CI || process.env.METERKIT_REQUIRE_BROWSER) throw new Error(`missing: ${missing.join(', ')}`)
  return { skip: `missing ${missing.join(', ')}` }
}

test('sim-portal: the MQTT bridge (meterkit consume mqtt://) feeds the portal and its page', { ...mqttOption(), ...browserOption() }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-portal-'))
  const port = await freePort()
  fs.writeFileSync(path.join(dir, 'mosquitto.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n`)
  const broker = spawn(MOSQUITTO, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' })
  const { data, app } = start({ db: path.join(dir, 'portal.db'), pushEvery: 200 })
  const base = await listen(app.server)
  const browser = await launch()
  const bridge = () => spawnSync(CLI, ['--db', path.join(dir, 'portal.db'), 'consume', `mqtt://127.0.0.1:${port}`, '--topic', 'sims/+/usage', '--qos', '1',
    '--client-id', 'portal-bridge', '--all-tenants', '--idle-exit', '1s'], { encoding: 'utf8' })
  try {
    await new Promise((resolve) => setTimeout(resolve, 300))
    let first = bridge() // registers the bridge's persistent session: the broker keeps what comes next
    for (let i = 0; first.status !== 0 && i < 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250))
      first = bridge()
    }
    assert.equal(first.status, 0, first.stderr)
    const page = await browser.newPage()
    await page.goto(`${base}/?tenant=fleetco`)
    await page.waitForFunction(() => document.getElementById('live').textContent === 'live')
    const cdrs = Array.from({ length: 50 }, (_, i) => ({ tenant: 'fleetco', recordId: `mqtt-${i}`, iccid: `8944200000${i % 7}`, carrier: 'three', periodStart: `2024-04-0${1 + (i % 5)}T1${i % 10}:00:00Z`, up: String(1000 + i), down: String(3e8 + i * 7) }))
    const mqtt = require('mqtt')
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`)
    for (const c of cdrs) await client.publishAsync('sims/fleetco/usage', JSON.stringify(toRecords(c)), { qos: 1 })
    await client.endAsync()
    const run = bridge()
    assert.equal(run.status, 0, run.stderr)
    assert.equal(JSON.parse(run.stdout.trim().split('\n').pop()).accepted, 100)
    const want = expected(data, final(data, cdrs)).fleetco
    await page.waitForFunction((v) => document.querySelector('[data-kpi="monthGB"] .v').textContent === v, want.kpis.monthGB)
    assert.deepEqual(app.kpis('fleetco'), want.kpis)
    assert.deepEqual(app.daily('fleetco'), want.daily)
  } finally {
    await browser.close()
    app.server.close()
    broker.kill()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
