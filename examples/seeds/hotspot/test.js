'use strict'
// Every number the hotspot API and page show, against sums made here from the generated
// sessions (BigInt bytes, local days from Intl); the page in Debian's chromium.
const test = require('node:test')
const assert = require('node:assert/strict')
const { generate } = require('./data')
const { createServer } = require('./server')
const { localDay } = require('../lib/data')
const { show } = require('../lib/exact')
const { browserOption, launch, cardValues, bars, listen } = require('../lib/browser')

const gb9 = (n) => { const [i, f = ''] = show(n, 9).split('.'); return `${i}.${f.padEnd(9, '0')}` }

function start() {
  const data = generate()
  const events = []
  const app = createServer({ ...data, onCap: (e) => events.push(e) })
  const reports = []
  for (const t of data.tenants) {
    reports.push(app.ingest(t.tenant, data.sessions.filter((s) => s.tenant === t.tenant)))
    reports.push(app.ingest(t.tenant, data.resent.filter((s) => s.tenant === t.tenant)))
    reports.push(app.ingest(t.tenant, data.revised.filter((s) => s.tenant === t.tenant), { revise: true }))
  }
  return { data, app, reports, events }
}

/** The independent answer: bytes per tenant and local day, users per day, cap levels reached. */
function expected(data) {
  const final = new Map(data.sessions.map((s) => [s.id, s]))
  for (const s of data.revised) final.set(s.id, s)
  const perDay = new Map()
  const perUserDay = new Map()
  for (const s of final.values()) {
    const tz = data.tenants.find((t) => t.tenant === s.tenant).timeZone
    const k = `${s.tenant}|${localDay(s.start, tz)}`
    perDay.set(k, (perDay.get(k) ?? 0n) + BigInt(s.up) + BigInt(s.down))
    const u = `${k}|${s.user}`
    perUserDay.set(u, (perUserDay.get(u) ?? 0n) + BigInt(s.up) + BigInt(s.down))
  }
  const caps = new Set()
  for (const [k, used] of perUserDay) {
    const cap = BigInt(data.tenants.find((t) => t.tenant === k.split('|')[0]).dailyCap)
    for (const level of [80n, 100n]) if (used * 100n >= cap * level) caps.add(`${k}|${level}`)
  }
  return { final, perDay, perUserDay, caps }
}

test('hotspot: API numbers, cap events', async () => {
  const { data, app, reports, events } = start()
  const e = expected(data)
  const n = (tenant, list) => list.filter((s) => s.tenant === tenant).length * 2
  assert.deepEqual(reports.map((r) => [r.accepted, r.duplicates, r.replaced ?? 0]), data.tenants.flatMap((t) => [
    [n(t.tenant, data.sessions), 0, 0], [0, n(t.tenant, data.resent), 0],
    // a revision changes the bytes down only: its "up" record is a duplicate
    [0, n(t.tenant, data.revised) / 2, n(t.tenant, data.revised) / 2]]))
  for (const t of data.tenants) {
    const daily = app.daily(t.tenant)
    const mine = [...e.perDay].filter(([k]) => k.startsWith(`${t.tenant}|`))
    assert.deepEqual(daily.map((d) => [d.day, d.bytes, d.value]), mine.map(([k, v]) => [k.split('|')[1], String(v), gb9(v)]).sort())
    const today = localDay(data.now, t.timeZone)
    const yesterday = localDay(Date.parse(data.now) - 86400000, t.timeZone)
    const month = mine.filter(([k]) => k.split('|')[1].slice(0, 7) === today.slice(0, 7)).reduce((a, [, v]) => a + v, 0n)
    const users = new Set([...e.perUserDay.keys()].filter((k) => k.startsWith(`${t.tenant}|${today}|`)))
    assert.deepEqual(app.kpis(t.tenant), {
      todayGB: gb9(e.perDay.get(`${t.tenant}|${today}`) ?? 0n), yesterdayGB: gb9(e.perDay.get(`${t.tenant}|${yesterday}`) ?? 0n), monthGB: gb9(month), activeUsers: users.size,
    })
  }
  // Events reach JS through the event loop: wait for them (a missing one fails after 5 s; an
  // extra one fails the equality below).
  const tick = () => new Promise((resolve) => setTimeout(resolve, 50))
  for (let i = 0; i < 100 && events.length < e.caps.size; i++) await tick()
  await tick()
  const got = new Set(events.map((ev) => `${ev.tenant}|${localDay(ev.periodStart, data.tenants.find((t) => t.tenant === ev.tenant).timeZone)}|${ev.subject}|${ev.level.replace(/\.0*$/, '')}`))
  assert.deepEqual([...got].sort(), [...e.caps].sort())
  assert.equal(events.length, got.size, 'each level fires once per user and day')
})

test('hotspot: the page shows the API numbers and the live push updates a KPI', browserOption(), async () => {
  const { data, app } = start()
  const base = await listen(app.server)
  const browser = await launch()
  try {
    const pages = {}
    for (const t of data.tenants) {
      pages[t.tenant] = await browser.newPage()
      await pages[t.tenant].goto(`${base}/?tenant=${t.tenant}`)
      await pages[t.tenant].waitForFunction(() => document.getElementById('live').textContent === 'live')
      const api = await (await fetch(`${base}/api/${t.tenant}/kpis`)).json()
      assert.deepEqual(await cardValues(pages[t.tenant]), Object.fromEntries(Object.entries(api).map(([k, v]) => [k, String(v)])))
      const daily = await (await fetch(`${base}/api/${t.tenant}/daily`)).json()
      assert.deepEqual(await bars(pages[t.tenant]), daily.map((d) => ({ day: d.day, value: d.value })))
    }
    const before = await cardValues(pages.skylink)
    const session = { id: 'live-1', user: 'user-1', start: '2024-04-04T15:00:00Z', up: '1000000', down: '2500000000' }
    const res = await fetch(`${base}/api/fastnet/sessions`, { method: 'POST', body: JSON.stringify([session]) })
    assert.equal((await res.json()).accepted, 2)
    const today = localDay(data.now, 'Europe/London')
    const expectedToday = gb9(expected(data).perDay.get(`fastnet|${today}`) + 2501000000n)
    await pages.fastnet.waitForFunction((v) => document.querySelector('[data-kpi="todayGB"] .v').textContent === v, expectedToday)
    await pages.fastnet.waitForFunction(() => document.querySelectorAll('#events li').length > 0)
    assert.deepEqual(await cardValues(pages.skylink), before, "another tenant's page does not move")
    assert.equal(await pages.skylink.$$eval('#events li', (l) => l.length), 0)
  } finally {
    await browser.close()
    app.server.close()
  }
})
