'use strict'
// `meterkit report --html FILE` in Debian's chromium: the page loads nothing else, and the
// figures it shows (total, every month and day, each bill's lines and totals, the alerts marked on
// the daily chart) are those of `meterkit report --output json` for the same input.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { browserOption, launch } = require('../lib/browser')

const REPO = path.join(__dirname, '..', '..', '..')
const CLI = process.env.METERKIT_CLI || path.join(REPO, 'target', 'debug', 'meterkit')

test('report --html: the page shows the JSON report\'s figures', browserOption(), async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'report-html-'))
  const html = path.join(dir, 'report.html')
  const run = spawnSync(CLI, ['--db', ':memory:', 'report', path.join(REPO, 'examples/data/uk-smart-meter-hourly.csv'),
    '--timestamp-column', 'start', '--quantity-column', 'value', '--subject', 'house-1', '--metric', 'kwh', '--tz', 'Europe/London',
    ...['flat', 'tou', 'slab'].flatMap((t) => ['--tariff', path.join(REPO, `examples/tariffs/${t}.toml`)]),
    '--shared-meter', 'motor_kwh=90.5/4', '--html', html, '--output', 'json'], { encoding: 'utf8', maxBuffer: 1 << 28 })
  assert.equal(run.status, 0, run.stderr)
  const json = JSON.parse(run.stdout)
  const m = json.metrics[0]
  assert.ok(m.alerts.length > 0 && json.bills.length === 3, 'the case has alerts and three bills')
  const browser = await launch()
  try {
    const page = await browser.newPage()
    const requests = []
    page.on('request', (r) => requests.push(r.url()))
    await page.goto('file://' + html)
    assert.deepEqual(requests, ['file://' + html], 'self-contained: nothing else is loaded')
    assert.equal(await page.textContent('span.total[data-metric="kwh"]'), m.total)
    const rows = (sel) => page.$$eval(sel, (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)))
    assert.deepEqual(await rows('table.months tr[data-month]'), m.months.map((p) => [p.label, p.sum, String(p.count)]))
    assert.deepEqual(await rows('table.days tr[data-day]'), m.days.map((p) => [p.label, p.sum, String(p.count)]))
    assert.equal((await rows('table.alerts tr.alert')).length, m.alerts.length)
    // The charts: two inline SVGs with axis labels, the monthly bars, and one red band per alert.
    assert.equal(await page.$$eval('figure svg', (s) => s.length), 2)
    assert.equal(await page.$$eval('figure.months svg rect[fill="#2563EB"]', (r) => r.length), m.months.length)
    assert.equal(await page.$$eval('figure.days svg rect[fill="#DC2626"]', (r) => r.length), m.alerts.length)
    assert.ok((await page.$$eval('figure.months svg text', (t) => t.map((x) => x.textContent.trim()))).includes(m.months[0].label))
    for (const b of json.bills) {
      const table = `table.bill[data-tariff="${b.tariff}"]`
      assert.equal(await page.textContent(`${table} .bill-total`), b.bill.total)
      assert.equal(await page.textContent(`${table} .subtotal`), b.bill.subtotal)
      assert.deepEqual(await page.$$eval(`${table} .amount`, (tds) => tds.map((td) => td.textContent)), b.bill.lines.map((l) => l.amount))
    }
    const shot = await page.screenshot({ fullPage: true })
    assert.ok(shot.length > 10000, 'the page renders')
  } finally {
    await browser.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
