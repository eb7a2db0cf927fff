'use strict'
// docs/bindings.md lists every capability and its name in each host: every name in the Node
// column is an export of the package, a static of an exported class, or a member of its prototype.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const meterkit = require('meterkit')

// Gaps the Node column may still declare (`gap: …`); this number may only go down.
const MAX_GAPS = 0

/** The cells of one column of the capability table: `{ capability, kind, names }`. */
function column(markdown, name) {
  const lines = markdown.split('\n').filter((l) => l.startsWith('| '))
  const header = lines.findIndex((l) => l.startsWith('| capability |'))
  assert.ok(header >= 0, 'docs/bindings.md has the capability table')
  const cols = lines[header].split('|').map((c) => c.trim())
  const at = cols.indexOf(name)
  assert.ok(at > 0, `the table has a ${name} column`)
  return lines.slice(header + 1).filter((l) => !l.startsWith('|---')).map((l) => {
    const cells = l.split('|').map((c) => c.trim())
    const cell = cells[at]
    const names = [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1])
    const kind = cell.startsWith('—') ? 'na' : cell.startsWith('gap') ? 'gap' : cell.startsWith('pending:') ? 'pending' : 'names'
    return { capability: cells[1], kind, names }
  })
}

/** Whether `name` (`fn`, `Class`, `Class.member`, `Class.prefix*`) is exported. */
function exported(name) {
  const [owner, member] = name.split('.')
  const top = meterkit[owner]
  if (top === undefined) return false
  if (member === undefined) return true
  const members = [...Object.getOwnPropertyNames(top), ...Object.getOwnPropertyNames(top.prototype ?? {})]
  return member.endsWith('*') ? members.some((m) => m.startsWith(member.slice(0, -1))) : members.includes(member)
}

test('every capability of docs/bindings.md has its Node export', () => {
  const repo = process.env.METERKIT_REPO ?? path.join(__dirname, '..', '..')
  const rows = column(fs.readFileSync(path.join(repo, 'docs', 'bindings.md'), 'utf8'), 'Node')
  assert.ok(rows.length >= 35, `the table has every capability (${rows.length} rows)`)
  const missing = rows.filter((r) => r.kind === 'names').flatMap((r) => r.names.filter((n) => !exported(n)).map((n) => `${r.capability}: ${n}`))
  assert.deepEqual(missing, [])
  for (const r of rows) assert.ok(r.kind !== 'names' || r.names.length > 0, `${r.capability} names its export`)
  const gaps = rows.filter((r) => r.kind === 'gap').map((r) => r.capability)
  assert.ok(gaps.length <= MAX_GAPS, `Node gaps: ${gaps.join(', ')}`)
  for (const r of rows.filter((r) => r.kind === 'pending')) {
    // Another change of issue 13 adds it; once it exists, the mark must go.
    const present = r.names.filter(exported)
    if (present.length > 0) test.diagnostic(`pending but present (remove the mark): ${r.capability}`)
  }
})

test('the parity check itself finds a missing name', () => {
  assert.equal(exported('Engine.ingest'), true)
  assert.equal(exported('Tariff.fromToml'), true)
  assert.equal(exported('Tariff.currency'), true)
  assert.equal(exported('Engine.noSuchMethod'), false)
  assert.equal(exported('noSuchFunction'), false)
  assert.equal(exported('Engine.ingest*'), true)
})
