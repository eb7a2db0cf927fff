'use strict'
// Debian's chromium, driven by playwright-core, for the page tests. Without chromium the page
// tests are skipped with a message, except under CI or METERKIT_REQUIRE_BROWSER=1, where they fail.
const fs = require('node:fs')

const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium'

/** `{ skip }` for node:test when no browser can run here. */
function browserOption() {
  if (fs.existsSync(EXECUTABLE)) return {}
  if (process.env.CI || process.env.METERKIT_REQUIRE_BROWSER) throw new Error(`${EXECUTABLE} is missing: the page tests cannot run`)
  return { skip: `${EXECUTABLE} is missing (scripts/test-examples installs Debian's chromium)` }
}

async function launch() {
  const { chromium } = require('playwright-core')
  return chromium.launch({ executablePath: EXECUTABLE, args: ['--no-sandbox'] })
}

/** The text of every KPI card of the dashboard page, as { key: text }. */
const cardValues = (page) => page.$$eval('[data-kpi]', (cards) => Object.fromEntries(cards.map((c) => [c.dataset.kpi, c.querySelector('.v').textContent])))

/** The trend chart's bars, as [{ day, value }]. */
const bars = (page) => page.$$eval('#trend rect', (rs) => rs.map((r) => ({ day: r.dataset.day, value: r.dataset.value })))

/** Listen on a free loopback port; resolves to the base URL. */
const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`)))

module.exports = { browserOption, launch, cardValues, bars, listen }
