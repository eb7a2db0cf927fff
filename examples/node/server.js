'use strict'
// A small SIM-card portal API on node:http, backed by meterkit over SQLite.
//
//   POST /api/v1/usage          one usage record (CDR) of a SIM card
//   POST /api/v1/usage/batch    { "records": [ ... ] } (at most 10,000)
//   GET  /api/consumption/trends?granularity=hourly|daily|weekly|monthly[&from=&to=]
//   GET  /api/consumption/kpis[?at=]
//   GET  /api/consumption/carriers[?from=&to=&limit=]
//
// A record is { recordId, iccid, carrier, periodStart, periodEnd?, usage: { dataUploadBytes,
// dataDownloadBytes } }: each direction becomes one meterkit usage record (metric "bytes",
// subject = ICCID, dimensions carrier and direction) whose idempotency key is recordId/up or
// recordId/down, so a mediation system may resend a record safely.
//
// Bad input gets a 400 with the meterkit error code and nothing is stored: every record of a
// request is read and checked (meterkit's checkRecords) before anything is ingested. A record
// resent with different content is a conflict: 409 E_CONFLICT, and it is not applied.
// Every answer is computed from rollups (rollup specs are added at start, so queries never scan
// records). Amounts are exact decimal strings: GB = bytes / 10^9, cost = GB × COST_PER_GB.
//
//   PORT=3001 METERKIT_DB=portal.db node examples/node/server.js
const http = require('node:http')
const { Engine, checkRecords } = require('meterkit')

const TENANT = process.env.DEFAULT_TENANT || 'default-tenant'
const TIME_ZONE = process.env.PORTAL_TIME_ZONE || 'UTC'
const COST_PER_GB = process.env.COST_PER_GB || '0.50'
const MAX_BODY = 16 * 1024 * 1024
const MAX_BATCH = 10_000
const GRANULARITY = { hourly: 'hour', daily: 'day', weekly: 'week', monthly: 'month' }

class HttpError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message)
    this.status = status
    this.code = code
    this.extra = extra
  }
}

// ---- exact decimal text helpers (strings in, strings out; BigInt inside) ----

/** A decimal string as [BigInt units, scale]. */
function toScaled(text) {
  const [int, frac = ''] = text.replace(/^-/, '').split('.')
  const sign = text.startsWith('-') ? -1n : 1n
  return [sign * BigInt(int + frac), frac.length]
}

/** units / 10^scale as the shortest decimal string. */
function fromScaled(units, scale) {
  const neg = units < 0n
  const digits = (neg ? -units : units).toString().padStart(scale + 1, '0')
  const int = digits.slice(0, digits.length - scale)
  const frac = digits.slice(digits.length - scale).replace(/0+$/, '')
  return (neg ? '-' : '') + int + (frac ? '.' + frac : '')
}

/** a × b / 10^shift, rounded half-even to `dp` decimal places. */
function mulDiv(a, b, shift, dp) {
  const [ua, sa] = toScaled(a)
  const [ub, sb] = toScaled(b)
  const num = ua * ub * 10n ** BigInt(dp)
  const den = 10n ** BigInt(sa + sb + shift)
  let q = num / den
  const r = num % den
  if (2n * r > den || (2n * r === den && q % 2n !== 0n)) q += 1n
  return fromScaled(q, dp)
}

/** amount / n, 2 places, half-even. */
function divide(amount, n) {
  const [u, s] = toScaled(amount)
  return ratio(u, BigInt(n) * 10n ** BigInt(s))
}

const gb = (bytes) => mulDiv(bytes, '1', 9, 9)
const cost = (bytes) => mulDiv(bytes, COST_PER_GB, 9, 2)
/** (cur - prev) / prev in percent, 2 places; null when prev is 0. */
function change(cur, prev) {
  if (/^0(\.0*)?$/.test(prev)) return null
  const [uc, sc] = toScaled(cur)
  const [up, sp] = toScaled(prev)
  const s = Math.max(sc, sp)
  const c = uc * 10n ** BigInt(s - sc)
  const p = up * 10n ** BigInt(s - sp)
  return ratio((c - p) * 100n, p)
}
/** num / den as a decimal string with 2 places, rounded half-even. */
function ratio(num, den) {
  const neg = (num < 0n) !== (den < 0n)
  num = num < 0n ? -num : num
  den = den < 0n ? -den : den
  let q = (num * 100n) / den
  const r = (num * 100n) % den
  if (2n * r > den || (2n * r === den && q % 2n !== 0n)) q += 1n
  return fromScaled(neg ? -q : q, 2)
}

// ---- input ----

function toUsageRecords(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, 'E_PARSE', 'A usage record must be a JSON object.')
  }
  const { recordId, iccid, carrier, periodStart, periodEnd, usage } = body
  const out = []
  for (const [direction, key] of [['up', 'dataUploadBytes'], ['down', 'dataDownloadBytes']]) {
    const bytes = usage && usage[key]
    if (bytes === undefined || bytes === null) continue
    if (!/^\d+$/.test(String(bytes))) {
      throw new HttpError(400, 'E_INVALID_RECORD', `usage.${key} must be a whole number of bytes, not ${JSON.stringify(bytes)}.`, {
        field: `usage.${key}`,
        recordId: recordId ?? null,
      })
    }
    out.push({
      id: `${recordId ?? ''}/${direction}`,
      tenant: TENANT,
      subject: iccid ?? '',
      metric: 'bytes',
      quantity: typeof bytes === 'number' ? String(bytes) : bytes,
      timestamp: periodStart,
      end: periodEnd ?? null,
      dimensions: { carrier: carrier ?? 'unknown', direction },
    })
  }
  if (out.length === 0) {
    throw new HttpError(400, 'E_INVALID_RECORD', `Record '${recordId}' has no usage.dataUploadBytes or usage.dataDownloadBytes.`, {
      field: 'usage',
      recordId: recordId ?? null,
    })
  }
  if (typeof recordId !== 'string' || recordId === '') {
    throw new HttpError(400, 'E_INVALID_RECORD', 'A usage record needs a recordId.', { field: 'recordId', recordId: null })
  }
  return out
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    req.on('data', (c) => {
      size += c.length
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'E_PARSE', 'The request body is too large.'))
        req.destroy()
      } else chunks.push(c)
    })
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
      } catch (e) {
        reject(new HttpError(400, 'E_PARSE', `The request body is not JSON: ${e.message}`))
      }
    })
    req.on('error', reject)
  })
}

// ---- the service ----

function createServer({ path } = {}) {
  const engine = new Engine({ path: path ?? null })
  // The rollups every answer is computed from.
  for (const window of Object.values(GRANULARITY)) {
    engine.addSpec({ metric: 'bytes', window, timeZone: TIME_ZONE, aggregations: [{ unique_count: 'subject' }] })
  }
  engine.addSpec({ metric: 'bytes', window: 'month', timeZone: TIME_ZONE, groupBy: ['carrier'], aggregations: [{ unique_count: 'subject' }] })

  async function ingest(portalRecords) {
    const usage = portalRecords.flatMap(toUsageRecords)
    checkRecords(usage) // throws E_PARSE / E_INVALID_RECORD before anything is stored
    const report = await engine.ingestAsync(usage)
    const status = new Map()
    for (const u of usage) {
      const recordId = u.id.slice(0, u.id.lastIndexOf('/'))
      if (!status.has(recordId)) status.set(recordId, 'ACCEPTED')
    }
    const conflicts = report.rejected.filter((r) => r.kind === 'conflict')
    for (const r of conflicts) status.set(r.id.slice(0, r.id.lastIndexOf('/')), 'CONFLICT')
    return { report, status, conflicts }
  }

  function query(window, from, to, extra = {}) {
    return engine.queryAsync({
      tenant: TENANT,
      metric: 'bytes',
      window,
      timeZone: TIME_ZONE,
      unique: ['subject'],
      from: from ?? null,
      to: to ?? null,
      ...extra,
    })
  }

  const routes = {
    'POST /api/v1/usage': async (req) => {
      const body = await readBody(req)
      const { status, conflicts, report } = await ingest([body])
      const recordId = body.recordId
      if (conflicts.length) {
        throw new HttpError(409, 'E_CONFLICT', conflicts[0].reason, { recordId })
      }
      const duplicate = report.accepted === 0 && report.duplicates > 0
      return [duplicate ? 200 : 201, { success: true, data: { recordId, status: duplicate ? 'DUPLICATE' : status.get(recordId) } }]
    },
    'POST /api/v1/usage/batch': async (req) => {
      const body = await readBody(req)
      const records = body && body.records
      if (!Array.isArray(records)) throw new HttpError(400, 'E_PARSE', 'The body must be { "records": [ ... ] }.', { field: 'records' })
      if (records.length > MAX_BATCH) throw new HttpError(400, 'E_PARSE', `A batch holds at most ${MAX_BATCH} records.`, { field: 'records' })
      const { report, conflicts } = await ingest(records)
      return [conflicts.length ? 207 : 200, { success: conflicts.length === 0, data: report }]
    },
    'GET /api/consumption/trends': async (_req, url) => {
      const granularity = url.searchParams.get('granularity') || 'daily'
      const window = GRANULARITY[granularity]
      if (!window) {
        throw new HttpError(400, 'E_INVALID_QUERY', `granularity must be hourly, daily, weekly or monthly, not '${granularity}'.`, { field: 'granularity' })
      }
      const rows = await query(window, url.searchParams.get('from'), url.searchParams.get('to'))
      const data = rows.map((b) => ({
        period: b.windowStart,
        periodEnd: b.windowEnd,
        bytes: b.sum,
        dataUsageGB: gb(b.sum),
        cost: cost(b.sum),
        simCount: b.unique.subject,
      }))
      return [200, { success: true, data, granularity }]
    },
    'GET /api/consumption/kpis': async (_req, url) => {
      const at = url.searchParams.get('at') || new Date().toISOString()
      const totals = engine.totals(TENANT, 'bytes', 'month', TIME_ZONE, at)
      const sims = await query('month', totals.previous.windowStart, totals.current.windowEnd, { fill: 'zero' })
      const [prevSims, curSims] = [sims[0].unique.subject, sims[1].unique.subject]
      const spend = cost(totals.current.sum)
      return [200, {
        success: true,
        data: {
          period: totals.current.windowStart,
          totalSpend: spend,
          totalSpendTrend: change(spend, cost(totals.previous.sum)),
          dataUsageGB: gb(totals.current.sum),
          dataUsageTrend: totals.changePercent,
          activeSims: curSims,
          activeSimsTrend: prevSims === 0 ? null : ratio(BigInt(curSims - prevSims) * 100n, BigInt(prevSims)),
          avgCostPerSim: curSims === 0 ? '0' : divide(spend, curSims),
        },
      }]
    },
    'GET /api/consumption/carriers': async (_req, url) => {
      const limit = Math.min(Number(url.searchParams.get('limit') || 10), 100)
      if (!Number.isInteger(limit) || limit < 1) throw new HttpError(400, 'E_INVALID_QUERY', 'limit must be 1-100.', { field: 'limit' })
      const q = {
        tenant: TENANT, metric: 'bytes', window: 'month', timeZone: TIME_ZONE, groupBy: ['carrier'], unique: ['subject'],
        from: url.searchParams.get('from'), to: url.searchParams.get('to'),
      }
      const top = engine.topN(q, 'sum', limit)
      const total = top.reduce((s, b) => s + BigInt(b.sum), 0n)
      const data = top.map((b) => ({
        id: b.group.carrier,
        name: b.group.carrier,
        bytes: b.sum,
        dataUsageGB: gb(b.sum),
        cost: cost(b.sum),
        costPercentage: total === 0n ? '0' : ratio(BigInt(b.sum) * 100n, total),
        simCount: b.unique.subject,
      }))
      return [200, { success: true, data }]
    },
  }


  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost')
    const route = routes[`${req.method} ${url.pathname}`]
    let status
    let payload
    try {
      if (!route) throw new HttpError(404, 'E_NOT_FOUND', `No route ${req.method} ${url.pathname}.`)
      ;[status, payload] = await route(req, url)
    } catch (e) {
      // meterkit errors carry a stable code; they are the caller's fault here (400), except a
      // failing store (500). Anything else is a bug of this service (500).
      const code = e.code || 'E_INTERNAL'
      status = e instanceof HttpError ? e.status : code === 'E_STORE' || !String(code).startsWith('E_') ? 500 : 400
      payload = {
        success: false,
        error: { code, message: e.message, field: e.field ?? e.extra?.field ?? null, recordId: e.recordId ?? e.extra?.recordId ?? null },
      }
    }
    const text = JSON.stringify(payload)
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  })
  return { server, engine }
}

module.exports = { createServer }

if (require.main === module) {
  const { server } = createServer({ path: process.env.METERKIT_DB || 'portal-usage.db' })
  const port = Number(process.env.PORT ?? 3001)
  const host = process.env.HOST || '127.0.0.1'
  server.listen(port, host, () => {
    const a = server.address()
    console.log(`listening on http://${a.address}:${a.port}`)
  })
  const stop = () => server.close(() => process.exit(0))
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}
