'use strict'
// Shared by the test files. They run on the package as a user gets it (npm pack, installed into
// a temporary project by scripts/test-node): `require('meterkit')` is the installed package and
// METERKIT_REPO points at the repository (for tests/vectors and examples/node).
const fs = require('node:fs')
const path = require('node:path')

const repo = process.env.METERKIT_REPO || path.resolve(__dirname, '..', '..')

/** The canonical JSON of tests/vectors/README.md: keys sorted at every level, compact. */
function canonical(value) {
  const sort = (v) => {
    if (Array.isArray(v)) return v.map(sort)
    if (v !== null && typeof v === 'object') {
      const out = {}
      for (const k of Object.keys(v).sort()) out[k] = sort(v[k])
      return out
    }
    return v
  }
  return JSON.stringify(sort(value))
}

/** Every *.json file under dir, recursively, sorted. */
function jsonFiles(dir) {
  if (!fs.existsSync(dir)) return []
  const out = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...jsonFiles(p))
    else if (entry.name.endsWith('.json')) out.push(p)
  }
  return out.sort()
}

/** Call fn and return what it throws (fails when it does not throw). */
function thrown(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error('expected an exception')
}

const rec = (id, quantity, timestamp, extra = {}) => ({
  id,
  tenant: 't1',
  subject: 'sim-1',
  metric: 'bytes',
  quantity,
  timestamp,
  ...extra,
})

module.exports = { repo, canonical, jsonFiles, thrown, rec }
