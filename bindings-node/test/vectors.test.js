'use strict'
// Every shared vector in tests/vectors/**.json through the JS API; the canonical JSON of what the
// package returns must equal the canonical JSON of `expected` byte for byte.
//
// The vectors are the core's JSON (snake_case keys); the package speaks camelCase. The runner
// converts at its edge with the package's own `keysToCamel` / `keysToSnake` (the core's
// `meterkit::json::case`, which follows the types: dimension names, groups and tariff documents
// are kept): each input goes in through `keysToCamel`, each result is compared after
// `keysToSnake`, and an error's `field` is mapped back to the core's name.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Engine, Tariff, Validator, partialRollup, mergePartials, finalizePartials, keysToCamel, keysToSnake } = require('meterkit')
const { repo, canonical, jsonFiles } = require('./helpers.js')

const dir = process.env.METERKIT_VECTORS || path.join(repo, 'tests', 'vectors')
const files = jsonFiles(dir)

test('the vectors directory holds cases', () => {
  assert.ok(files.length > 0, `no vector under ${dir}`)
})

/** An error's `field` as the core names it (`periodEnd` → `period_end`). */
const coreField = (field) => (field === null ? null : field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`))

const runners = {
  rollup(input) {
    const engine = new Engine()
    const report = input.batches.map((batch) => engine.ingest(batch))
    for (const [tenant, id] of input.retract || []) engine.retract(tenant, id)
    return { report, buckets: engine.query(input.query) }
  },
  // Like core/tests/bill_vectors.rs: the tariff is read as Tariff::from_any reads it; an error
  // is compared as {"error":{"kind","field"}}.
  bill(input) {
    try {
      const { tariff, records, ...request } = input // a bill request refuses unknown keys
      return Tariff.fromAny(tariff).bill(request, records)
    } catch (e) {
      if (!e.code) throw e
      return { error: { kind: e.kind, field: coreField(e.field) } }
    }
  },
  // Like core/tests/validate_vectors.rs: one fresh Validator, configured for `metrics` (or as
  // the default for every metric), fixed `now`, records checked in order.
  validate(input) {
    const v = input.metrics
      ? new Validator(Object.fromEntries(input.metrics.map((m) => [m, input.config])))
      : new Validator(null, input.config)
    v.setNow(input.now)
    return v.check(input.records)
  },
  // Like tests/support.rs run_reading_case: every reading in order through engine.recordReading,
  // each outcome projected to the fields the vectors compare.
  reading(input) {
    const engine = new Engine()
    const pick = (o, keys) => Object.fromEntries(keys.map((k) => [k, o[k] === undefined ? null : o[k]]))
    const outcomes = input.readings.map((item) => {
      const o = engine.recordReading(input.tenant, input.metric, item.reading, item.exchange ?? null, input.options)
      return {
        ...pick(o, ['meter', 'timestamp', 'reading', 'status', 'consumption']),
        findings: o.findings.map((f) => pick(f, ['rule', 'severity', 'action'])),
        records: o.records.map((r) => ({ ...pick(r, ['id', 'timestamp', 'end', 'quantity']), quality: r.quality || 'actual' })),
      }
    })
    return { outcomes }
  },
  // Like tests/support.rs run_counter_case: each call through engine.trackCounters on one
  // engine, projected to the fields the vectors compare.
  counter(input) {
    const engine = new Engine()
    const pick = (o, keys) => Object.fromEntries(keys.map((k) => [k, o[k] === undefined ? null : o[k]]))
    const calls = input.calls.map((call) => {
      const o = engine.trackCounters(input.tenant, input.metric, call.readings, call.options)
      return {
        accepted: o.report.accepted,
        duplicates: o.report.duplicates,
        rejected: o.report.rejected.length,
        records: o.records.map((r) => ({ ...pick(r, ['id', 'timestamp', 'end', 'quantity']), quality: r.quality || 'actual' })),
        findings: o.findings.map((f) => pick(f, ['rule', 'severity', 'action', 'subject', 'timestamp'])),
      }
    })
    return { calls }
  },
  // Like tests/support.rs run_partial_case: each partition's records as usage columns through
  // partialRollup, all merged; finalized for the query's tenant, and imported twice (an import
  // sets, it does not add) into a fresh engine before the query.
  partial(input) {
    const dims = [...new Set(input.partitions.flat().flatMap((r) => Object.keys(r.dimensions || {})))].sort()
    const states = input.partitions.map((part) => {
      const columns = {
        tenant: part.map((r) => r.tenant),
        id: part.map((r) => r.id),
        subject: part.map((r) => r.subject),
        metric: part.map((r) => r.metric),
        quantity: part.map((r) => r.quantity),
        timestamp: part.map((r) => r.timestamp),
        dimensions: Object.fromEntries(dims.map((d) => [d, part.map((r) => (r.dimensions || {})[d] ?? null)])),
      }
      return partialRollup(columns, input.spec, part.map((r) => r.quality ?? null))
    })
    const merged = mergePartials(states, input.spec)
    const engine = new Engine()
    engine.importPartials(merged, input.spec)
    engine.importPartials(merged, input.spec)
    return {
      partialRows: states.map((s) => s.tenant.length),
      buckets: finalizePartials(merged, input.spec, input.query.tenant),
      imported: engine.query(input.query),
    }
  },
}

for (const file of files) {
  const v = JSON.parse(fs.readFileSync(file, 'utf8'))
  test(`vector ${path.relative(dir, file)}`, () => {
    assert.equal(v.name, path.basename(file, '.json'), 'name equals the file stem')
    const run = runners[v.kind]
    assert.ok(run, `vector kind '${v.kind}' is not run by the Node package`)
    const actual = run(keysToCamel(v.input))
    assert.equal(canonical(keysToSnake(actual)), canonical(v.expected))
    if (v.kind === 'validate') {
      // Findings must also match in field order (tests/vectors/validate/README.md).
      assert.equal(JSON.stringify(actual), JSON.stringify(keysToCamel(v.expected)))
    }
  })
}

// The same bills through the engine: records ingested, then engine.billAsync (off the main thread)
// must give what Tariff.bill gives.
test('bill vectors through engine.billAsync equal Tariff.bill', async () => {
  let compared = 0
  for (const file of files) {
    const v = JSON.parse(fs.readFileSync(file, 'utf8'))
    if (v.kind !== 'bill' || v.expected.error) continue
    const engine = new Engine()
    const input = keysToCamel(v.input)
    const report = engine.ingest(input.records)
    if (report.rejected.length > 0) continue
    const tariff = Tariff.fromAny(input.tariff)
    const { tariff: _t, records: _r, ...request } = input
    const bill = await engine.billAsync(tariff, { tenant: '', ...request })
    assert.equal(canonical(keysToSnake(bill)), canonical(v.expected), path.relative(dir, file))
    compared++
  }
  assert.ok(compared > 0 || !files.some((f) => f.includes(`${path.sep}bill${path.sep}`)), 'no bill vector compared')
})
