'use strict'
// Every shared vector in tests/vectors/**.json through the JS API; the canonical JSON of what the
// package returns must equal the canonical JSON of `expected` byte for byte.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Engine } = require('meterkit')
const { repo, canonical, jsonFiles } = require('./helpers.js')

const dir = process.env.METERKIT_VECTORS || path.join(repo, 'tests', 'vectors')
const files = jsonFiles(dir)

test('the vectors directory holds cases', () => {
  assert.ok(files.length > 0, `no vector under ${dir}`)
})

const runners = {
  rollup(input) {
    const engine = new Engine()
    const report = input.batches.map((batch) => engine.ingest(batch))
    for (const [tenant, id] of input.retract || []) engine.retract(tenant, id)
    return { report, buckets: engine.query(input.query) }
  },
}

for (const file of files) {
  const v = JSON.parse(fs.readFileSync(file, 'utf8'))
  test(`vector ${path.relative(dir, file)}`, () => {
    assert.equal(v.name, path.basename(file, '.json'), 'name equals the file stem')
    const run = runners[v.kind]
    assert.ok(run, `vector kind '${v.kind}' is not run by the Node package`)
    const actual = run(v.input)
    assert.equal(canonical(actual), canonical(v.expected))
  })
}
