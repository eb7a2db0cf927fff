'use strict'
// Every number the WhatsApp job prints, against sums computed here from the generated rows
// (BigInt decimals, months from the rows' own local dates: no meterkit).
const test = require('node:test')
const assert = require('node:assert/strict')
const { generate } = require('./data')
const { run } = require('./job')
const { sum, mulRound, parse, round } = require('../lib/exact')

const cents = (x) => round(...parse(x), 2)

test('whatsapp: months per organisation and category, costs per channel', () => {
  const data = generate()
  const out = run(data)
  const key = (r) => `${r.org}|${r.channel}|${r.day}|${r.category}`
  const final = new Map(data.rows.map((r) => [key(r), r]))
  for (const r of data.revisions) final.set(key(r), r)
  assert.deepEqual(out.ingest, { accepted: data.rows.length, resentDuplicates: data.resent.length, replaced: data.revisions.length })

  const expected = new Map()
  for (const r of final.values()) {
    const k = `${r.org}|${r.day.slice(0, 7)}`
    if (!expected.has(k)) expected.set(k, [])
    expected.get(k).push(r)
  }
  assert.equal(out.months.length, expected.size)
  let checks = 0
  for (const m of out.months) {
    const rows = expected.get(`${m.org}|${m.month}`)
    assert.ok(rows, `${m.org} ${m.month} is expected`)
    const channels = data.orgs.find((o) => o.org === m.org).channels
    for (const c of data.categories) {
      assert.equal(m.conversations[c], sum(rows.filter((r) => r.category === c).map((r) => String(r.count))), `${m.org} ${m.month} ${c}`)
      channels.forEach((ch, i) => {
        const n = sum(rows.filter((r) => r.category === c && r.channel === ch).map((r) => String(r.count)))
        assert.equal(m.costByChannel[c][i], mulRound(data.rates[c], n, 2), `${m.org} ${m.month} ${ch} ${c} cost`)
        checks += 2
      })
    }
    channels.forEach((ch, i) => assert.equal(m.totalByChannel[i], cents(sum(data.categories.map((c) => m.costByChannel[c][i])))))
  }
  assert.ok(checks > 100)
})
