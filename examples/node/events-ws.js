'use strict'
// Live per-tenant dashboard channel: meterkit's engine events from NATS, pushed to browsers over
// WebSocket.
//
// An engine with a `NatsNotifier` (Rust crate meterkit-stream; `meterkit consume nats://…`
// attaches one) publishes every event as JSON on `meterkit.events.<tenant>.<kind>`:
// threshold_crossed (a quota level reached), window_closed, anomaly_detected (an alert),
// invoice_overdue, bill_issued, record_rejected, late_record. This server subscribes, for each
// browser connection, to its own tenant's subjects only (`meterkit.events.<tenant>.>`) and
// forwards each event as one WebSocket text message:
//   { "subject": "meterkit.events.acme.threshold_crossed", "event": { "type": "threshold_crossed", ... } }
// Quantities and money stay decimal strings, as meterkit writes them. A browser that cannot keep
// up is disconnected (more than MAX_BUFFERED bytes waiting) rather than buffered without bound.
//
//   npm install nats ws
//   NATS_URL=nats://127.0.0.1:4222 PORT=8080 node examples/node/events-ws.js
//   open http://127.0.0.1:8080/?tenant=acme
//
// Authenticate the tenant in a real deployment (here it is a query parameter); tenants are NATS
// subject tokens, so `.`, `*`, `>` and whitespace are refused.
const http = require('node:http')
const { connect, StringCodec } = require('nats')
const { WebSocketServer } = require('ws')

const NATS_URL = process.env.NATS_URL || 'nats://127.0.0.1:4222'
const PORT = Number(process.env.PORT || 8080)
const MAX_BUFFERED = 1 << 20
const sc = StringCodec()

const PAGE = `<!doctype html><meta charset="utf-8"><title>meterkit live</title>
<h1>meterkit events: <span id="t"></span></h1><ol id="log" reversed></ol>
<script>
const tenant = new URLSearchParams(location.search).get('tenant') || 'default'
document.getElementById('t').textContent = tenant
const ws = new WebSocket('ws://' + location.host + '/events?tenant=' + encodeURIComponent(tenant))
ws.onmessage = (m) => {
  const { subject, event } = JSON.parse(m.data)
  const li = document.createElement('li')
  li.textContent = subject.split('.').pop() + ' ' + JSON.stringify(event)
  document.getElementById('log').prepend(li)
}
</script>`

function validTenant (t) {
  return typeof t === 'string' && t.length > 0 && t.length <= 200 && !/[.*>\s]/.test(t)
}

async function main () {
  const nc = await connect({ servers: NATS_URL })
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end(PAGE)
  })
  const wss = new WebSocketServer({ server, path: '/events' })
  wss.on('connection', (ws, req) => {
    const tenant = new URL(req.url, 'http://x').searchParams.get('tenant')
    if (!validTenant(tenant)) {
      ws.close(1008, 'a tenant without . * > or spaces is required')
      return
    }
    const sub = nc.subscribe(`meterkit.events.${tenant}.>`)
    ;(async () => {
      for await (const m of sub) {
        if (ws.bufferedAmount > MAX_BUFFERED) {
          ws.close(1013, 'too slow')
          break
        }
        ws.send(JSON.stringify({ subject: m.subject, event: JSON.parse(sc.decode(m.data)) }))
      }
    })().catch(() => ws.close())
    ws.on('close', () => sub.unsubscribe())
  })
  server.listen(PORT, '127.0.0.1', () => console.log(`events on http://127.0.0.1:${PORT}/?tenant=…, NATS ${NATS_URL}`))
  const stop = async () => {
    wss.close()
    server.close()
    await nc.drain()
    process.exit(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
