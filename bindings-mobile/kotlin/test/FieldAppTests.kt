// The whole field-app flow on a device: 50 flats read at the start and end of November through
// Engine.recordReading (with a typo that is refused, a declared meter exchange and a month-crossing
// interval), the consumption queued, the app restarted between queue and upload, the upload
// retried after a crash before markUploaded — nothing lost, nothing sent twice, and every
// November bill equal to an independent BigDecimal computation of the slab tariff.
package meterkit.tests

import meterkit.*
import java.io.File
import java.math.BigDecimal
import java.math.RoundingMode

private val slabJson = """{"currency":"INR","rounding":"half_up","charges":[{"id":"energy","type":"graduated","unit":"kWh",
    "tiers":[{"up_to":"100","rate":"3.50"},{"up_to":"200","rate":"4.75"},{"rate":"6.25"}]}]}"""

/** The slab tariff worked out independently: 0-100 kWh at 3.50, 100-200 at 4.75, above at 6.25. */
private fun slab(kwh: BigDecimal): BigDecimal {
    val hundred = BigDecimal(100)
    val t1 = kwh.min(hundred)
    val t2 = (kwh - hundred).max(BigDecimal.ZERO).min(hundred)
    val t3 = (kwh - BigDecimal(200)).max(BigDecimal.ZERO)
    fun money(x: BigDecimal) = x.setScale(2, RoundingMode.HALF_UP)
    return money(t1 * BigDecimal("3.50")) + money(t2 * BigDecimal("4.75")) + money(t3 * BigDecimal("6.25"))
}

private fun read(flat: String, at: String, register: Long) =
    MeterReading(meter = flat, timestamp = ts(at), register = BigDecimal(register), registerDigits = 5.toUByte(),
        multiplier = BigDecimal.ONE, kind = ReadingKind.ACTUAL)

fun fieldAppTests(suite: Suite, scratch: File) {
    suite.test("field app: 50 flats read, queued, app restarted, uploaded once, bills equal BigDecimal") {
        val path = File(scratch, "field-${System.nanoTime()}.db").path
        val flats = (1..50).map { "flat-%02d".format(it) }
        val start = flats.associateWith { 10_000L + 137L * flats.indexOf(it) }
        val november = flats.associateWith { 30L + 23L * (flats.indexOf(it) % 11) } // 30..260 kWh
        val expectedKwh = november.mapValues { BigDecimal(it.value) }.toMutableMap()
        var device = Engine.open(path)
        for (f in flats) {
            val first = device.recordReading("site", "kwh", read(f, "2026-11-01T00:00:00Z", start.getValue(f)))
            eq(first.status to first.records.size, ReadingStatus.ACCEPTED to 0, "$f first reading")
        }
        // flat-07 types 1xxx instead of 1xxxx: a dropped digit, refused, nothing queued.
        val typo = start.getValue("flat-07") + november.getValue("flat-07")
        val refused = device.recordReading("site", "kwh", read("flat-07", "2026-12-01T00:00:00Z", typo / 10))
        eq(refused.status, ReadingStatus.REJECTED, "a dropped digit is refused")
        check(refused.findings.any { it.rule == Rule.LIKELY_TYPO || it.rule == Rule.BACKWARDS_READING }) { readingOutcomeToJson(refused) }
        // flat-13's meter is exchanged on 20 Nov: old final = start + 50, new meter starts at 7.
        val ex = device.recordReading("site", "kwh", read("flat-13", "2026-11-20T00:00:00Z", 7),
            exchange = BigDecimal(start.getValue("flat-13") + 50))
        eq(ex.status to ex.consumption, ReadingStatus.ACCEPTED to BigDecimal(50), "declared exchange")
        // flat-21 is read on 20 Nov (40 kWh) and then 10 Dec (100 kWh over 20 days, 11 of them
        // in November — 20 Nov to 1 Dec — so 100 x 11/20 = 55 kWh pro rata).
        val mid = device.recordReading("site", "kwh", read("flat-21", "2026-11-20T00:00:00Z", start.getValue("flat-21") + 40))
        eq(mid.consumption, BigDecimal(40), "flat-21 mid-month")
        expectedKwh["flat-21"] = BigDecimal(40) + BigDecimal(55)
        var queued = 0
        for (f in flats) {
            val outcome = when (f) {
                "flat-13" -> device.recordReading("site", "kwh", read(f, "2026-12-01T00:00:00Z", 7 + november.getValue(f) - 50))
                "flat-21" -> device.recordReading("site", "kwh", read(f, "2026-12-10T00:00:00Z", start.getValue(f) + 40 + 100))
                else -> device.recordReading("site", "kwh", read(f, "2026-12-01T00:00:00Z", start.getValue(f) + november.getValue(f)))
            }
            check(outcome.status != ReadingStatus.REJECTED) { readingOutcomeToJson(outcome) }
            val earlier = when (f) { "flat-13" -> ex.records; "flat-21" -> mid.records; else -> listOf() }
            device.queue(outcome.records + earlier)
            queued += outcome.records.size
        }
        queued += ex.records.size + mid.records.size
        val killed = device
        device.close() // the app is killed after queueing, before the upload
        // A stale handle kept by the app fails with the one MeterkitException, not IllegalStateException.
        val stale = throws<MeterkitException>("a call on the closed engine") { killed.pendingCount("site") }
        eq(stale.kind(), "closed", "kind of a call after close")
        device = Engine.open(path)
        eq(device.pendingCount("site"), queued.toLong(), "every queued record survives the restart")
        val body = device.exportPendingJson("site", 10_000)
        val server = Engine.inMemory()
        eq(server.importJson(body).accepted, queued.toLong(), "server stores every record")
        device.close() // killed again before markUploaded: the upload will be retried
        device = Engine.open(path)
        val export = device.exportPending("site", 10_000)
        eq(export.json, body, "the same body after the second restart")
        val retry = server.importJson(export.json)
        eq(retry.accepted to retry.duplicates, 0L to queued.toLong(), "the retried upload counts nothing twice")
        eq(export.ids.size, queued, "the export names its ids")
        eq(device.markUploaded("site", export.ids), queued.toLong(), "marked")
        eq(device.pendingCount("site"), 0L, "queue empty")
        val tariff = Tariff.fromJson(slabJson)
        for (f in flats) {
            val req = BillRequest(tenant = "site", subject = f, metric = "kwh", periodStart = ts("2026-11-01T00:00:00Z"),
                periodEnd = ts("2026-12-01T00:00:00Z"), timeZone = "UTC")
            val bill = server.bill(tariff, req)
            val expected = slab(expectedKwh.getValue(f))
            check(bill.total.compareTo(expected) == 0) { "$f November bill: ${bill.total} != $expected" }
            eq(device.bill(tariff, req).total, bill.total, "$f: device estimate equals the server bill")
        }
        device.close(); server.close()
    }
}
