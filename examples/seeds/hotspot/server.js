'use strict'
// Hotspot/PPPoE usage: sessions' bytes up/down per user, strictly per tenant; KPI cards and a
// daily trend for each ISP, a daily cap per user (a meterkit quota on a `day` window), and a
// per-tenant live push over WebSocket (new KPIs after each ingest, the cap events).
//   node examples/seeds/hotspot/server.js     then open http://127.0.0.1:3002/?tenant=fastnet
const http = require('node:http')
const fs = require('node:fs')
const path = require('node:path')
const { WebSocketServer } = require('ws')
const { Engine } = require('meterkit')
const { generate } = require('./data')

const PAGE = fs.readFileSync(path.join(__dirname, '..', 'lib', 'dashboard.html'))
/** bytes / 10^9 as an exact decimal string with 9 places (a whole number of bytes in). */
function gb(bytes) {
  const s = bytes.padStart(10, '0')
  return `${s.slice(0, -9).replace(/^0+(?=\d)/, '')}.${s.slice(-9)}`
}

function createServer({ tenants, now, onCap = () => {} }) {
  const sockets = new Map(tenants.map((t) => [t.tenant, new Set()]))
  const push = (tenant, message) => sockets.get(tenant)?.forEach((ws) => ws.send(JSON.stringify(message)))
  const engine = new Engine({ onEvent: (e) => e.type === 'threshold_crossed' && (onCap(e), push(e.tenant, { type: 'cap', event: e })) })
  const zone = Object.fromEntries(tenants.map((t) => [t.tenant, t.timeZone]))
  for (const t of tenants) {
    for (const window of ['day', 'month']) engine.addSpec({ metric: 'bytes', window, timeZone: t.timeZone, aggregations: [{ unique_count: 'subject' }] })
    engine.addQuota({ id: 'daily-cap', tenant: t.tenant, metric: 'bytes', period: 'day', timeZone: t.timeZone, limit: t.dailyCap, levels: ['80', '100'] })
  }
  const toRecords = (tenant, s) => ['up', 'down'].map((dir) => ({
    id: `${s.id}/${dir}`, tenant, subject: s.user, metric: 'bytes', quantity: s[dir], timestamp: s.start, dimensions: { direction: dir },
  }))
  const kpis = (tenant) => {
    const day = engine.totals(tenant, 'bytes', 'day', zone[tenant], now)
    const month = engine.totals(tenant, 'bytes', 'month', zone[tenant], now)
    const users = engine.query({ tenant, metric: 'bytes', window: 'day', timeZone: zone[tenant], unique: ['subject'], from: day.current.windowStart, to: day.current.windowEnd })
    return { todayGB: gb(day.current.sum), yesterdayGB: gb(day.previous.sum), monthGB: gb(month.current.sum), activeUsers: users[0]?.unique.subject ?? 0 }
  }
  const daily = (tenant) => engine.query({ tenant, metric: 'bytes', window: 'day', timeZone: zone[tenant] })
    .map((b) => ({ day: new Date(b.windowStart).toLocaleDateString('en-CA', { timeZone: zone[tenant] }), bytes: b.sum, value: gb(b.sum) }))
  const ingest = (tenant, sessions, { revise = false } = {}) => {
    const records = sessions.flatMap((s) => toRecords(tenant, s))
    const report = revise ? engine.replace(records) : engine.ingest(records)
    push(tenant, { type: 'kpis', kpis: kpis(tenant) })
    return report
  }
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x')
    const [, api, tenant, what] = url.pathname.split('/')
    const send = (status, body, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type })
      res.end(type === 'application/json' ? JSON.stringify(body) : body)
    }
    if (url.pathname === '/') return send(200, PAGE, 'text/html; charset=utf-8')
    if (api !== 'api' || !sockets.has(tenant)) return send(404, { error: 'no such tenant or route' })
    if (req.method === 'GET' && what === 'kpis') return send(200, kpis(tenant))
    if (req.method === 'GET' && what === 'daily') return send(200, daily(tenant))
    if (req.method === 'POST' && what === 'sessions') {
      let body = ''
      for await (const chunk of req) body += chunk
      try {
        return send(200, ingest(tenant, JSON.parse(body), { revise: url.searchParams.has('revise') }))
      } catch (e) {
        return send(400, { error: e.message, code: e.code })
      }
    }
    send(404, { error: 'no such route' })
  })
  new WebSocketServer({ server, path: '/live' }).on('connection', (ws, req) => {
    const tenant = new URL(req.url, 'http://x').searchParams.get('tenant')
    if (!sockets.has(tenant)) return ws.close(1008, 'unknown tenant')
    sockets.get(tenant).add(ws)
    ws.on('close', () => sockets.get(tenant).delete(ws))
    ws.send(JSON.stringify({ type: 'kpis', kpis: kpis(tenant) }))
  })
  return { server, engine, ingest, kpis, daily }
}

module.exports = { createServer, gb }
if (require.main === module) {
  const data = generate()
  const { server, ingest } = createServer(data)
  for (const t of data.tenants) {
    ingest(t.tenant, data.sessions.filter((s) => s.tenant === t.tenant))
    ingest(t.tenant, data.resent.filter((s) => s.tenant === t.tenant))
    ingest(t.tenant, data.revised.filter((s) => s.tenant === t.tenant), { revise: true })
  }
  server.listen(Number(process.env.PORT ?? 3002), '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}/?tenant=fastnet`))
}
