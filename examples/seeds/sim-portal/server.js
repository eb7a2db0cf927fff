'use strict'
// SIM-card portal: CDRs over HTTP (and over MQTT through `meterkit consume mqtt://…` writing the
// same SQLite file) → per tenant a daily trend, KPI cards against the previous month, top
// carriers, and a live push: every connected tenant's KPIs are re-read each `pushEvery` ms and
// sent over WebSocket when they changed (whoever wrote the records).
//   node examples/seeds/sim-portal/server.js      then open http://127.0.0.1:3001/?tenant=acme-iot
const http = require('node:http')
const fs = require('node:fs')
const path = require('node:path')
const { WebSocketServer } = require('ws')
const { Engine } = require('meterkit')
const { generate, toRecords } = require('./data')

const PAGE = fs.readFileSync(path.join(__dirname, '..', 'lib', 'dashboard.html'))
/** bytes / 10^9 as an exact decimal string with 9 places. */
function gb(bytes) {
  const s = bytes.padStart(10, '0')
  return `${s.slice(0, -9).replace(/^0+(?=\d)/, '')}.${s.slice(-9)}`
}

function createServer({ tenants, now, db = null, pushEvery = 5000 }) {
  const engine = new Engine({ path: db })
  const zone = Object.fromEntries(tenants.map((t) => [t.tenant, t.timeZone]))
  for (const t of tenants) {
    engine.addSpec({ metric: 'bytes', window: 'day', timeZone: t.timeZone })
    engine.addSpec({ metric: 'bytes', window: 'month', timeZone: t.timeZone, groupBy: ['carrier'], aggregations: [{ unique_count: 'subject' }] })
    engine.addSpec({ metric: 'bytes', window: 'month', timeZone: t.timeZone, aggregations: [{ unique_count: 'subject' }] })
  }
  const month = (tenant, extra = {}) => ({ tenant, metric: 'bytes', window: 'month', timeZone: zone[tenant], unique: ['subject'], ...extra })
  const kpis = (tenant) => {
    const t = engine.totals(tenant, 'bytes', 'month', zone[tenant], now)
    const sims = engine.query(month(tenant, { from: t.current.windowStart, to: t.current.windowEnd }))
    const top = engine.topN(month(tenant, { groupBy: ['carrier'], from: t.current.windowStart, to: t.current.windowEnd }), 'sum', 1)
    return { monthGB: gb(t.current.sum), previousMonthGB: gb(t.previous.sum), changePercent: t.changePercent, activeSims: sims[0]?.unique.subject ?? 0, topCarrier: top[0]?.group.carrier ?? null }
  }
  const daily = (tenant) => engine.query({ tenant, metric: 'bytes', window: 'day', timeZone: zone[tenant] })
    .map((b) => ({ day: new Date(b.windowStart).toLocaleDateString('en-CA', { timeZone: zone[tenant] }), bytes: b.sum, value: gb(b.sum) }))
  const carriers = (tenant) => engine.query(month(tenant, { groupBy: ['carrier'] }))
    .map((b) => ({ month: new Date(b.windowStart).toLocaleDateString('en-CA', { timeZone: zone[tenant] }).slice(0, 7), carrier: b.group.carrier, gb: gb(b.sum), sims: b.unique.subject }))
  const ingest = (cdrs, { revise = false } = {}) => (revise ? engine.replace : engine.ingest).call(engine, cdrs.flatMap(toRecords))

  const sockets = new Map(tenants.map((t) => [t.tenant, new Map()])) // ws → last KPIs sent (JSON)
  const pushAll = () => sockets.forEach((clients, tenant) => {
    if (clients.size === 0) return
    const text = JSON.stringify({ type: 'kpis', kpis: kpis(tenant) })
    clients.forEach((last, ws) => last !== text && (ws.send(text), clients.set(ws, text)))
  })
  const timer = setInterval(pushAll, pushEvery)
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x')
    const [, api, tenant, what] = url.pathname.split('/')
    const send = (status, body, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type })
      res.end(type === 'application/json' ? JSON.stringify(body) : body)
    }
    if (url.pathname === '/') return send(200, PAGE, 'text/html; charset=utf-8')
    if (api !== 'api' || !sockets.has(tenant)) return send(404, { error: 'no such tenant or route' })
    const get = { kpis, daily, carriers }[what]
    if (req.method === 'GET' && get) return send(200, get(tenant))
    if (req.method === 'POST' && what === 'usage') {
      let body = ''
      for await (const chunk of req) body += chunk
      try {
        const cdrs = JSON.parse(body).map((c) => ({ ...c, tenant })) // the tenant is the caller's, never the body's
        send(200, ingest(cdrs, { revise: url.searchParams.has('revise') }))
        return pushAll()
      } catch (e) {
        return send(400, { error: e.message, code: e.code })
      }
    }
    send(404, { error: 'no such route' })
  })
  new WebSocketServer({ server, path: '/live' }).on('connection', (ws, req) => {
    const tenant = new URL(req.url, 'http://x').searchParams.get('tenant')
    if (!sockets.has(tenant)) return ws.close(1008, 'unknown tenant')
    sockets.get(tenant).set(ws, null)
    ws.on('close', () => sockets.get(tenant).delete(ws))
  })
  server.on('close', () => clearInterval(timer))
  return { server, engine, ingest, kpis, daily, carriers }
}

module.exports = { createServer }
if (require.main === module) {
  const data = generate()
  const app = createServer({ ...data, db: process.env.METERKIT_DB || null })
  app.ingest(data.cdrs)
  app.ingest(data.resent)
  app.ingest(data.revised, { revise: true })
  app.server.listen(Number(process.env.PORT ?? 3001), '127.0.0.1', () => console.log(`http://127.0.0.1:${app.server.address().port}/?tenant=acme-iot`))
}
