// `import … from 'meterkit'` works (named exports and the default export of the CommonJS module).
import test from 'node:test'
import assert from 'node:assert/strict'
import meterkit, { Engine, parseDecimal, errorCodes } from 'meterkit'

test('ESM named and default imports', () => {
  assert.equal(parseDecimal('2.50'), '2.5')
  assert.equal(meterkit.Engine, Engine)
  assert.equal(errorCodes().length, 12)
  const engine = new Engine()
  assert.equal(engine.ingest({ id: 'x', tenant: 't', subject: 's', metric: 'm', quantity: '1', timestamp: '2024-01-01T00:00:00Z' }).accepted, 1)
})
