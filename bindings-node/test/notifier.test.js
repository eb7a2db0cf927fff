'use strict'
// onEvent: a JS callback called through a ThreadsafeFunction, from the JS thread (sync calls)
// and from libuv's worker threads (async calls), always delivered on the JS thread in order.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine } = require('meterkit')
const { rec } = require('./helpers.js')

// Wait (bounded: 10 s) until `events` holds n events, then one more loop turn for any extra.
function settle(events, n) {
  const deadline = Date.now() + 10_000
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (events.length >= n) setTimeout(resolve, 10)
      else if (Date.now() > deadline) reject(new Error(`only ${events.length} of ${n} events arrived`))
      else setTimeout(poll, 5)
    }
    poll()
  })
}

test('record_rejected reaches the callback as a plain object, after ingest returns', async () => {
  const events = []
  const engine = new Engine({ onEvent: (e) => events.push(e) })
  engine.ingest([rec('r1', '1.5', '2024-05-01T10:00:00Z'), rec('bad', '1', '2024-05-01T10:00:00Z', { metric: '' })])
  assert.deepEqual(events, [], 'delivered through the event loop, not inside ingest')
  await settle(events, 1)
  assert.deepEqual(events, [
    { type: 'record_rejected', tenant: 't1', id: 'bad', kind: 'invalid_record', reason: "The record's metric is empty." },
  ])
})

test('window_closed and late_record carry the bucket', async () => {
  const events = []
  const engine = new Engine({ onEvent: (e) => events.push(e) })
  engine.addSpec({ metric: 'bytes', window: 'day', timeZone: 'UTC' })
  engine.ingest([rec('r1', '1.5', '2024-05-01T10:00:00Z')])
  engine.closeWindows('t1', '2024-05-03T00:00:00Z', 0)
  engine.ingest([rec('late', '2', '2024-05-01T11:00:00Z')])
  await settle(events, 2)
  assert.deepEqual(events.map((e) => e.type), ['window_closed', 'late_record'])
  const closed = events.find((e) => e.type === 'window_closed')
  assert.equal(closed.window, 'day')
  assert.equal(closed.bucket.sum, '1.5')
  assert.equal(closed.bucket.windowStart, '2024-05-01T00:00:00Z')
  const late = events.find((e) => e.type === 'late_record')
  assert.equal(late.id, 'late')
  assert.equal(late.bucket.sum, '3.5')
  assert.equal(late.bucket.count, 2)
})

test('events from ingestAsync (a worker thread) arrive on the JS thread', async () => {
  const events = []
  const engine = new Engine({ onEvent: (e) => events.push(e) })
  const batch = []
  for (let i = 0; i < 500; i++) batch.push(rec(`r${i}`, '1', '2024-05-01T10:00:00Z', i % 100 === 0 ? { subject: '' } : {}))
  const report = await engine.ingestAsync(batch)
  assert.equal(report.accepted, 495)
  await settle(events, 5)
  assert.deepEqual(events.map((e) => e.id), ['r0', 'r100', 'r200', 'r300', 'r400'])
  assert.ok(events.every((e) => e.type === 'record_rejected' && e.kind === 'invalid_record'))
})

test('the callback can call back into the engine', async () => {
  let seen = null
  const events = []
  const engine = new Engine({
    onEvent: (e) => {
      events.push(e)
      seen = engine.query({ tenant: 't1', metric: 'bytes', window: 'day', timeZone: 'UTC' })
    },
  })
  engine.ingest([rec('ok', '4', '2024-05-01T10:00:00Z'), rec('bad', '1', '2024-05-01T10:00:00Z', { id: '' })])
  await settle(events, 1)
  assert.equal(seen[0].sum, '4')
})

test('an engine without onEvent, and a callback-less process, exit normally', () => {
  const engine = new Engine({ onEvent: null })
  assert.equal(engine.ingest([rec('bad', '1', '2024-05-01T10:00:00Z', { metric: '' })]).rejected.length, 1)
})

test('a callback that throws raises uncaughtException, and the engine goes on', () => {
  const { execFileSync } = require('node:child_process')
  const path = require('node:path')
  const script = `
    process.on('uncaughtException', (e) => console.log('uncaught: ' + e.message))
    const { Engine } = require(${JSON.stringify(path.dirname(require.resolve('meterkit/package.json')))})
    const e = new Engine({ onEvent: (ev) => { throw new Error('boom ' + ev.id) } })
    e.ingest([{ id: 'c', tenant: 't', subject: '', metric: 'm', quantity: '1', timestamp: '2024-01-01T00:00:00Z' }])
    setTimeout(() => console.log('accepted ' + e.ingest([{ id: 'd', tenant: 't', subject: 's', metric: 'm', quantity: '1', timestamp: '2024-01-01T00:00:00Z' }]).accepted), 50)
  `
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 })
  assert.deepEqual(out.trim().split('\n'), ['uncaught: boom c', 'accepted 1'])
})
