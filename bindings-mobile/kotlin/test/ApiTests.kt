// Every exported function and method of the mobile binding, called from Kotlin, with the values
// and error fields it must give.
package meterkit.tests

import meterkit.*
import java.io.File
import java.math.BigDecimal
import java.time.Instant
import java.util.concurrent.CopyOnWriteArrayList

/** A Kotlin notifier that keeps every event. */
class Collecting : Notifier {
    val events = CopyOnWriteArrayList<MobileEvent>()
    override fun notify(event: MobileEvent) { events.add(event) }
}

/** A Kotlin notifier that always throws: the engine must carry on. */
class Throwing : Notifier {
    var calls = 0
    override fun notify(event: MobileEvent) { calls++; throw IllegalStateException("host bug") }
}

fun hourly(day: String = "2024-03-10", n: Int = 24, q: String = "0.5", subject: String = "meter-1", prefix: String = "m1") =
    (0 until n).map { h -> rec("$prefix-$h", subject, q, "${day}T%02d:00:00Z".format(h)) }

fun reading(register: String, at: String, digits: Int? = null, multiplier: String? = null, meter: String = "m1") =
    MeterReading(meter = meter, timestamp = ts(at), register = dec(register), registerDigits = digits?.toUByte(),
        multiplier = dec(multiplier ?: "1"), kind = ReadingKind.ACTUAL)

fun apiTests(suite: Suite, scratch: File, examples: File, vectors: File) {
    val t = suite::test

    // ---- module functions ------------------------------------------------------------------
    t("version and error codes") {
        eq(version(), "0.1.0", "version")
        val codes = errorCodes()
        eq(codes.size, 13, "number of codes: the core's 12 and E_CLOSED")
        eq(codes.first { it.code == "E_CONFLICT" }.kind, "conflict", "kind of E_CONFLICT")
        eq(codes.last().code to codes.last().kind, "E_CLOSED" to "closed", "the binding's own code")
        eq(codes.map { it.code }.toSet().size, 13, "codes are distinct")
    }
    t("one MeterkitException base gives the whole envelope without a when over the kinds") {
        val e: MeterkitException = try {
            Engine.inMemory().use { it.query(Query(tenant = "t", metric = "kwh", window = "fortnight", timeZone = "UTC", filters = mapOf(), fill = Fill.NONE)) }
            throw Failure("nothing thrown")
        } catch (e: MeterkitException) { e }
        eq(e.code(), "E_INVALID_WINDOW", "code()")
        eq(e.kind(), "invalid_window", "kind()")
        check(e.reason().isNotBlank()) { "reason()" }
        eq(e.retryable(), false, "retryable()")
        eq(e.recordId(), null, "recordId()")
        check(e.toString().startsWith("E_INVALID_WINDOW: ")) { "toString(): $e" }
        // The per-kind subclass is still there for an app that catches one kind, with the same values as properties.
        val w = e as MeterkitException.InvalidWindow
        eq(w.code to w.kind, e.code() to e.kind(), "subclass properties")
        // Every code errorCodes() lists has a kind that the base reports the same way.
        val p = throws<MeterkitException>("parse") { parseDecimal("twelve") }
        eq(errorCodes().first { it.code == p.code() }.kind, p.kind(), "kind of E_PARSE")
        // A line number is a Long.
        val toml = throws<MeterkitException>("toml") { Tariff.fromToml("currency = \"GBP\"\n[[charges]\n") }
        check((toml.line() ?: 0L) >= 1L) { "line(): ${toml.line()}" }
    }
    t("every call after close() throws MeterkitException.Closed, not IllegalStateException") {
        val engine = Engine.inMemory()
        engine.ingest(hourly(n = 2))
        engine.close()
        engine.close() // twice is allowed
        val e = throws<MeterkitException.Closed>("pendingCount after close") { engine.pendingCount("t") }
        eq(e.code() to e.kind(), "E_CLOSED" to "closed", "code and kind")
        eq(e.retryable(), false, "not retryable")
        check(e.reason().contains("Engine is closed")) { e.reason() }
        throws<MeterkitException.Closed>("recordReading after close") { engine.recordReading("t", "kwh", reading("1", "2024-01-01T00:00:00Z")) }
        throws<MeterkitException.Closed>("queue after close") { engine.queue(hourly(n = 1)) }
        val tariff = Tariff.fromToml(File(examples, "tariffs/flat.toml").readText())
        tariff.close()
        val t = throws<MeterkitException>("a Tariff after close") { tariff.currency() }
        check(t.reason().contains("Tariff is closed")) { t.reason() }
    }
    t("a negative count or size is a MeterkitException naming the argument") {
        Engine.inMemory().use { engine ->
            val limit = throws<MeterkitException.InvalidQuery>("limit -1") { engine.pendingUploads("t", -1) }
            eq(limit.field(), "limit", "field")
            check(limit.reason().contains("-1")) { limit.reason() }
            eq(throws<MeterkitException>("export -5") { engine.exportPending("t", -5) }.field(), "limit", "export field")
            val q = Query(tenant = "t", metric = "kwh", window = "day", timeZone = "UTC", filters = mapOf(), fill = Fill.NONE)
            eq(throws<MeterkitException>("n -1") { engine.topN(q, "sum", -1) }.field(), "n", "topN field")
        }
        eq(throws<MeterkitException>("scale -2") { allocate(dec("1"), listOf(dec("1")), -2) }.field(), "scale", "allocate field")
        eq(throws<MeterkitException>("gap -1") { alertsOf(listOf(), listOf(), gap = -1) }.field(), "gap", "alertsOf field")
    }
    t("parseDecimal keeps the exact value and scale") {
        eqDec(parseDecimal("12.50"), "12.50", "plain")
        eqDec(parseDecimal("1e-3"), "0.001", "scientific")
        val e = throws<MeterkitException.Parse>("not a number") { parseDecimal("twelve") }
        eq(e.info.code, "E_PARSE", "code")
    }
    t("decimals cross as java.math.BigDecimal, exactly") {
        val big = "79228162514264337593543950335" // the largest 96-bit decimal
        val r = rec("d1", "m", big, "2024-01-01T00:00:00Z")
        eq(recordsFromJson(recordsToJson(listOf(r)))[0].quantity, BigDecimal(big), "round trip")
        val tiny = rec("d2", "m", "0.0000000000000000000000000001", "2024-01-01T00:00:00Z")
        eqDec(recordsFromJson(recordsToJson(listOf(tiny)))[0].quantity, "0.0000000000000000000000000001", "28 places")
    }
    t("a BigDecimal out of the 96-bit range is a Parse error with its field") {
        val e = throws<MeterkitException.Parse>("1e40") {
            countRecords(listOf(rec("x", "m", "1", "2024-01-01T00:00:00Z").copy(quantity = BigDecimal("1e40"))))
        }
        eq(e.info.field, "decimal", "field")
        eq(e.info.code, "E_PARSE", "code")
    }
    t("timestamps cross as java.time.Instant with nanoseconds") {
        val at = Instant.parse("2024-03-01T09:00:00.123456789Z")
        val r = rec("n1", "m", "1", "2024-03-01T09:00:00Z").copy(timestamp = at, end = at.plusSeconds(900))
        val json = recordsToJson(listOf(r))
        check(json.contains("\"timestamp\":\"2024-03-01T09:00:00.123456789Z\"")) { json }
        check(json.contains("\"end\":\"2024-03-01T09:15:00.123456789Z\"")) { json }
        val back = recordsFromJson(json)[0]
        eq(back.timestamp, at, "timestamp")
        eq(back.end, at.plusSeconds(900), "end")
        // Before 1970 too (not within the last second before the epoch: uniffi's timestamp
        // encoding loses the sign of -0 seconds there; see the README).
        val before1970 = r.copy(timestamp = Instant.parse("1969-07-20T20:17:40.5Z"), end = null)
        eq(recordsFromJson(recordsToJson(listOf(before1970)))[0].timestamp, Instant.parse("1969-07-20T20:17:40.5Z"), "pre-1970")
        check(recordsToJson(listOf(before1970)).contains("\"1969-07-20T20:17:40.500Z\"")) { "pre-1970 JSON" }
    }
    t("records JSON: one object or an array, offsets to UTC, dimensions") {
        val one = recordsFromJson("""{"id":"r1","tenant":"t","subject":"sim-1","metric":"bytes","quantity":1024,"timestamp":"2024-03-01T10:00:00+01:00","dimensions":{"carrier":"acme"}}""")
        eq(one.size, 1, "count")
        eq(one[0].timestamp, ts("2024-03-01T09:00:00Z"), "UTC")
        eq(one[0].dimensions, mapOf("carrier" to "acme"), "dimensions")
        eqDec(one[0].quantity, "1024", "quantity")
        val e = throws<MeterkitException.Parse>("bad JSON") { recordsFromJson("[{\"id\":1}]") }
        check(e.info.reason.contains("usage record batch")) { e.info.reason }
    }
    t("canonicalJson, jsonAt and jsonStrAt") {
        eq(canonicalJson("{\"b\": 1, \"a\": [true, null, \"\u00e9\"]}"), "{\"a\":[true,null,\"\u00e9\"],\"b\":1}", "canonical")
        eq(jsonAt("{\"a\":{\"b\":[1,2]}}", "/a/b/1"), "2", "pointer")
        eq(jsonAt("{\"a\":1}", "/x"), null, "absent")
        eq(jsonStrAt("{\"a\":\"x\"}", "/a"), "x", "string")
        eq(jsonStrAt("{\"a\":3}", "/a"), null, "not a string")
        throws<MeterkitException.Parse>("not JSON") { canonicalJson("{") }
    }
    t("a Rust panic: InternalException where the library unwinds, the process ends where it aborts (shipped build)") {
        if (!panicAborts()) {
            val e = throws<InternalException>("panic") { panicForTests() }
            check(e.message!!.contains("deliberate panic")) { "message: ${e.message}" }
            eq(version(), "0.1.0", "still usable")
            throws<InternalException>("panic twice") { panicForTests() }
        }
        // What an app sees, in a child JVM (a panic in an aborting library would end this one).
        val java = File(System.getProperty("java.home"), "bin/java").path
        val child = ProcessBuilder(java, "-Djna.library.path=" + System.getProperty("jna.library.path"),
            "-cp", System.getProperty("java.class.path"), "meterkit.tests.PanicChildKt")
            .redirectErrorStream(true).start()
        val out = child.inputStream.bufferedReader().readText()
        val code = child.waitFor()
        check(out.contains("deliberate panic")) { "the panic message is shown: $out" }
        if (panicAborts()) {
            check(code != 0 && !out.contains("caught")) { "abort (SIGABRT: exit 134), nothing caught: exit $code, $out" }
        } else {
            check(code == 0 && out.contains("caught InternalException")) { "caught: exit $code, $out" }
        }
    }

    // ---- engine ----------------------------------------------------------------------------
    t("engine: ingest, duplicates, conflicts, ingestOne") {
        val engine = Engine.inMemory()
        val batch = hourly(n = 3)
        val first = engine.ingest(batch + batch[0])
        eq(first.accepted, 3L, "accepted")
        eq(first.duplicates, 1L, "duplicates")
        val conflict = engine.ingestOne(batch[1].copy(quantity = dec("9")))
        eq(conflict.accepted, 0L, "conflict accepted")
        eq(conflict.rejected.size, 1, "rejected")
        eq(conflict.rejected[0].kind, "conflict", "kind")
        eq(conflict.rejected[0].code, "E_CONFLICT", "code")
        eq(conflict.rejected[0].id, "m1-1", "id")
        val invalid = engine.ingestOne(rec("", "m", "1", "2024-01-01T00:00:00Z"))
        eq(invalid.rejected[0].kind, "invalid_record", "empty id")
        engine.close()
    }
    t("engine: a daily quota, ingestFrom and lastIngestedAt, a repeated batch") {
        val events = Collecting()
        val engine = Engine.inMemory(events)
        engine.addQuota(Quota(id = "cap", tenant = "t", metric = "kwh", subject = null, period = "day", timeZone = "UTC",
            limit = dec("10"), levels = listOf(dec("100")), tariff = null))
        val bad = throws<MeterkitException.InvalidWindow>("minutes:7") {
            engine.addQuota(Quota(id = "q", tenant = "t", metric = "kwh", subject = null, period = "minutes:7",
                timeZone = "UTC", limit = dec("1"), levels = listOf(dec("100")), tariff = null))
        }
        eq(bad.info.field, "period", "field")
        eq(engine.lastIngestedAt("t", "sync"), null, "no watermark yet")
        val day = hourly(n = 24, q = "0.5") + hourly(day = "2024-03-11", n = 24, q = "0.5", prefix = "m2") +
            hourly(day = "2024-03-12", n = 18, q = "0.5", prefix = "m3")
        eq(engine.ingestFrom("sync", day).accepted, 66L, "accepted")
        eq(engine.ingestFrom("sync", day).duplicates, 66L, "a repeated batch is all duplicates")
        eq(engine.lastIngestedAt("t", "sync"), ts("2024-03-12T17:00:00Z"), "watermark")
        val crossed = events.events.filterIsInstance<MobileEvent.ThresholdCrossed>()
        eq(crossed.map { it.periodStart }, listOf(ts("2024-03-10T00:00:00Z"), ts("2024-03-11T00:00:00Z")), "12 kWh days crossed")
        eqDec(crossed[0].used, "12.0", "used (24 × 0.5 kWh, scale kept)")
        throws<MeterkitException.InvalidQuery>("empty source") { engine.ingestFrom("", day) }
        val revised = engine.replace(listOf(day[0].copy(quantity = dec("2"))))
        eq(revised.replaced, 1L, "replaced")
        eq(engine.history("t", day[0].id).map { it.quantity }, listOf(dec("0.5")), "history")
        throws<MeterkitException.InvalidRecord>("a key twice") { engine.replace(listOf(day[1], day[1])) }
        engine.close()
    }
    t("engine: query by local days in New York (23-hour day), fill zero") {
        val engine = Engine.inMemory()
        engine.ingest(hourly())
        val q = Query(tenant = "t", metric = "kwh", window = "day", timeZone = "America/New_York", subject = null,
            filters = mapOf(), groupBy = listOf(), unique = listOf(), from = ts("2024-03-10T00:00:00Z"),
            to = ts("2024-03-10T23:00:00Z"), fill = Fill.ZERO)
        val days = engine.query(q)
        eq(days.size, 2, "days")
        eqDec(days[0].sum, "2.5", "9 March (00:00-04:59 UTC)")
        eqDec(days[1].sum, "9.5", "10 March")
        eq(days[1].windowStart, ts("2024-03-10T05:00:00Z"), "window start")
        eq(days[1].windowEnd, ts("2024-03-11T04:00:00Z"), "window end (23 hours later)")
        eq(days[1].count, 19L, "count")
        eq(bucketsToJson(days).contains("\"sum\":\"9.5\""), true, "buckets JSON")
        val bad = throws<MeterkitException.InvalidWindow>("window") { engine.query(q.copy(window = "fortnight")) }
        eq(bad.info.code, "E_INVALID_WINDOW", "code")
        throws<MeterkitException.InvalidTimeZone>("zone") { engine.query(q.copy(timeZone = "Mars/Olympus")) }
        engine.close()
    }
    t("engine: a tenant's own spec, removeSpec, a pooled quota over a set of subjects") {
        val events = Collecting()
        val engine = Engine.inMemory(events)
        eq(engine.addSpec("kwh", "cycle:15", "Asia/Kolkata", listOf("subject"), "t"), 0L, "the tenant's own spec")
        engine.addQuota(Quota(id = "acct", tenant = "t", metric = "kwh", subject = null, subjects = listOf("a", "b"),
            pooled = true, period = "month", timeZone = "UTC", limit = dec("10"), levels = listOf(dec("100")), tariff = null))
        // a 4 × 1 + b 4 × 2 = 12 ≥ 10 together (neither alone): one event with an empty subject.
        engine.ingest(hourly(n = 4, q = "1", subject = "a", prefix = "a") + hourly(n = 4, q = "2", subject = "b", prefix = "b"))
        val crossed = events.events.filterIsInstance<MobileEvent.ThresholdCrossed>()
        eq(crossed.map { it.subject }, listOf(""), "pooled subject")
        eqDec(crossed[0].used, "12", "pooled usage")
        throws<MeterkitException.Conflict>("a quota's spec") { engine.removeSpec("kwh", "month", "UTC", listOf("subject"), "t") }
        eq(engine.removeSpec("kwh", "cycle:15", "Asia/Kolkata", listOf("subject"), "t"), 0L, "removed")
        throws<MeterkitException.NotFound>("removed twice") { engine.removeSpec("kwh", "cycle:15", "Asia/Kolkata", listOf("subject"), "t") }
        engine.close()
    }
    t("engine: addSpec, topN, totals, records, retract") {
        val engine = Engine.inMemory()
        eq(engine.addSpec("kwh", "day", "UTC", listOf("subject")), 0L, "first spec id")
        eq(engine.addSpec("kwh", "hour", "UTC"), 1L, "second spec id")
        throws<MeterkitException.InvalidTimeZone>("spec zone") { engine.addSpec("kwh", "day", "Nowhere/Else") }
        engine.ingest(hourly(n = 4, q = "1", subject = "a", prefix = "a") + hourly(n = 4, q = "2", subject = "b", prefix = "b") +
            hourly(day = "2024-03-09", n = 2, q = "3", subject = "a", prefix = "y"))
        val q = Query(tenant = "t", metric = "kwh", window = "day", timeZone = "UTC", subject = null, filters = mapOf(),
            groupBy = listOf("subject"), unique = listOf(), from = ts("2024-03-10T00:00:00Z"), to = ts("2024-03-11T00:00:00Z"), fill = Fill.NONE)
        val top = engine.topN(q, "sum", 1)
        eq(top.size, 1, "n")
        eq(top[0].subject, "b", "largest")
        eqDec(top[0].sum, "8", "its sum")
        val e = throws<MeterkitException.Parse>("by") { engine.topN(q, "median", 1) }
        eq(e.info.field, "by", "field")
        val totals = engine.totals("t", "kwh", "day", "UTC", ts("2024-03-10T12:00:00Z"))
        eqDec(totals.current.sum, "12", "today")
        eqDec(totals.previous.sum, "6", "yesterday")
        eqDec(totals.changePercent, "100", "change (12 vs 6)")
        val recs = engine.records("t", "kwh", ts("2024-03-10T00:00:00Z"), ts("2024-03-10T02:00:00Z"), "a")
        eq(recs.map { it.id }, listOf("a-0", "a-1"), "records of a")
        val gone = engine.retract("t", "b-3")
        eqDec(gone.quantity, "2", "retracted")
        eqDec(engine.topN(q, "sum", 1)[0].sum, "6", "after retract")
        val nf = throws<MeterkitException.NotFound>("again") { engine.retract("t", "b-3") }
        eq(nf.info.code, "E_NOT_FOUND", "code")
        engine.close()
    }
    t("engine: Kotlin notifier gets RecordRejected and WindowClosed; closeWindows counts") {
        val events = Collecting()
        val engine = Engine.inMemory(events)
        engine.addSpec("kwh", "day", "UTC")
        engine.ingest(hourly(n = 2))
        engine.ingest(listOf(hourly(n = 1)[0].copy(quantity = dec("7"))))
        val rejected = events.events.filterIsInstance<MobileEvent.RecordRejected>()
        eq(rejected.size, 1, "rejections")
        eq(rejected[0].kind, "conflict", "kind")
        eq(rejected[0].id, "m1-0", "id")
        val closed = engine.closeWindows("t", ts("2024-03-12T00:00:00Z"), 3600L)
        eq(closed, 1L, "closed")
        val windows = events.events.filterIsInstance<MobileEvent.WindowClosed>()
        eq(windows.size, 1, "events")
        eqDec(windows[0].bucket.sum, "1", "final bucket (0.5 + 0.5, normalised by the core)")
        eq(windows[0].window, "day", "window")
        eq(engine.notifierFailures(), 0L, "no failures")
        throws<MeterkitException.InvalidQuery>("lateness") { engine.closeWindows("t", Instant.now(), Long.MAX_VALUE) }
        engine.close()
    }
    t("engine: an exception thrown by a Kotlin notifier is counted, never fatal") {
        val bad = Throwing()
        val engine = Engine.inMemory(bad)
        engine.ingest(hourly(n = 1))
        val report = engine.ingest(listOf(hourly(n = 1)[0].copy(quantity = dec("2"))))
        eq(report.rejected.size, 1, "the ingest still reports")
        eq(bad.calls, 1, "notifier called")
        eq(engine.notifierFailures(), 1L, "failure counted")
        eq(engine.ingest(hourly(n = 3)).accepted, 2L, "engine still works")
        engine.close()
    }
    t("engine: validation on ingest (setValidation, setValidationNow), AnomalyDetected") {
        val events = Collecting()
        val engine = Engine.inMemory(events)
        engine.setValidation("kwh", ValidationConfig())
        engine.setValidationNow(ts("2024-03-11T00:00:00Z"))
        val report = engine.ingest(listOf(rec("neg", "m1", "-1", "2024-03-10T00:00:00Z"), rec("ok", "m1", "1", "2024-03-10T01:00:00Z")))
        eq(report.accepted, 1L, "accepted")
        eq(report.rejected.map { it.kind }, listOf("validation"), "rejected by validation")
        eq(report.findings[0].rule, Rule.NEGATIVE_QUANTITY, "rule")
        eq(report.findings[0].action, Action.REJECT, "action")
        eq(report.findings[0].id, "neg", "id")
        val json = ingestReportToJson(report)
        check(json.contains("\"rule\":\"negative_quantity\"")) { json }
        check(events.events.any { it is MobileEvent.AnomalyDetected && it.finding.rule == Rule.NEGATIVE_QUANTITY }) { "no anomaly event: ${events.events}" }
        engine.setValidationNow(null)
        val future = engine.ingestOne(rec("future", "m1", "1", "2099-01-01T00:00:00Z"))
        eq(future.findings.map { it.rule }, listOf(Rule.FUTURE_TIMESTAMP), "wall clock")
        engine.close()
    }
    t("ValidationConfig: defaults, naive, JSON, errors") {
        check(ValidationConfig().toJson().contains("\"window\":10")) { ValidationConfig().toJson() }
        check(ValidationConfig.naive().toJson().contains("\"confirm\":false")) { ValidationConfig.naive().toJson() }
        check(ValidationConfig.fromJson("{\"high_limit\":\"50\"}").toJson().contains("\"high_limit\":\"50\"")) { "high_limit" }
        throws<MeterkitException.Parse>("unknown key") { ValidationConfig.fromJson("{\"bogus\":1}") }
        val e = throws<MeterkitException.Validation>("bad window") { ValidationConfig.fromJson("{\"window\":1000}") }
        eq(e.info.code, "E_VALIDATION", "code")
    }
    t("alertsOf and AlertRaised/AlertResolved: one alert for a day of zeros") {
        // 400 hours alternating 1.0 / 1.2 (past the 288-value warm-up), a day of zeros, then normal.
        val start = java.time.Instant.parse("2024-05-01T00:00:00Z")
        val records = (0 until 600).map { h ->
            rec("h$h", "m1", if (h in 400 until 424) "0" else if (h % 2 == 0) "1.0" else "1.2", start.plusSeconds(3600L * h).toString())
        }
        val now = ts("2024-07-01T00:00:00Z")
        val alerts = alertsOf(records, validateRecords(mapOf("kwh" to ValidationConfig()), records, null, now))
        eq(alerts.size, 1, "one alert")
        eq(alerts[0].start, ts("2024-05-17T16:00:00Z"), "starts at the first zero")
        check(alerts[0].rules.contains(Rule.ZERO_STREAK)) { "rules ${alerts[0].rules}" }
        eq(alerts[0].severity, Severity.WARNING, "severity")
        eqDec(alerts[0].peak, "0", "peak")
        eq(alertsOf(records, validateRecords(mapOf("kwh" to ValidationConfig()), records, null, now), warmup = 500).size, 0, "warm-up")
        val events = Collecting()
        val engine = Engine.inMemory(events)
        engine.setValidation("kwh", ValidationConfig())
        engine.setValidationNow(now)
        engine.ingest(records)
        val raised = events.events.filterIsInstance<MobileEvent.AlertRaised>()
        val resolved = events.events.filterIsInstance<MobileEvent.AlertResolved>()
        eq(raised.size, 1, "raised")
        eq(resolved.size, 1, "resolved")
        eq(resolved[0].alert.start, raised[0].alert.start, "same alert")
        engine.close()
    }
    t("validateRecords: per-metric configs, default, unknown metric") {
        val now = ts("2024-06-01T00:00:00Z")
        val findings = validateRecords(mapOf("kwh" to ValidationConfig()), listOf(rec("a", "m", "-2", "2024-05-01T00:00:00Z"),
            rec("b", "m", "1", "2024-05-01T00:00:00Z", metric = "gas")), null, now)
        eq(findings.map { it.rule }, listOf(Rule.NEGATIVE_QUANTITY, Rule.UNKNOWN_METRIC), "rules")
        eq(findings[0].severity != Severity.INFO, true, "alert")
        eqDec(findings[0].value, "-2", "value")
        check(findingsToJson(findings).startsWith("[{\"rule\":\"negative_quantity\"")) { findingsToJson(findings) }
        eq(validateRecords(mapOf(), listOf(rec("c", "m", "1", "2024-05-01T00:00:00Z", metric = "gas")), ValidationConfig(), now).size, 0, "default")
    }

    // ---- field checks ----------------------------------------------------------------------
    t("validateReading: a plausible reading against the last ten") {
        val history = (0..10).map { i -> reading((1000 + i * 10).toString(), "2024-05-%02dT00:00:00Z".format(i + 1)) }
        val check = validateReading("t", "kwh", history, reading("1110", "2024-05-12T00:00:00Z"), null, ts("2024-06-01T00:00:00Z"))
        eq(check.findings, listOf(), "no findings")
        eqDec(check.consumption!!.quantity, "10", "consumption")
        eq(check.consumption!!.timestamp, ts("2024-05-11T00:00:00Z"), "from the previous reading")
        eq(check.consumption!!.end, ts("2024-05-12T00:00:00Z"), "to this one")
        eq(check.rejected, false, "kept")
    }
    t("validateReading: a spike against the last ten is flagged") {
        val steps = listOf(10, 12, 9, 11, 10, 13, 8, 11, 10, 12)
        var register = 1000
        val history = mutableListOf(reading("1000", "2024-05-01T00:00:00Z"))
        steps.forEachIndexed { i, s -> register += s; history.add(reading(register.toString(), "2024-05-%02dT00:00:00Z".format(i + 2))) }
        val check = validateReading("t", "kwh", history, reading((register + 110).toString(), "2024-05-12T00:00:00Z"), ValidationConfig(), ts("2024-06-01T00:00:00Z"))
        eqDec(check.consumption!!.quantity, "110", "consumption")
        eq(check.findings.map { it.rule }, listOf(Rule.SPIKE), "spike")
        eq(check.findings[0].severity, Severity.WARNING, "severity")
        eq(check.flagged, true, "flagged")
        check(check.findings[0].expected!!.high < dec("20")) { "expected range ${check.findings[0].expected}" }
    }
    t("validateReading: register roll-over on 8 digits") {
        val check = validateReading("t", "kwh", listOf(reading("99999678", "2024-01-01T00:00:00Z", digits = 8)),
            reading("123", "2024-02-01T00:00:00Z", digits = 8), null, ts("2024-03-01T00:00:00Z"))
        eqDec(check.consumption!!.quantity, "445", "rolled over")
        eq(check.findings[0].rule, Rule.ROLLOVER, "rule")
        eq(check.findings[0].action, Action.ACCEPT, "accepted")
        eq(check.rejected, false, "not rejected")
    }
    t("validateReading: an out-of-order reading is rejected") {
        val check = validateReading("t", "kwh", listOf(reading("100", "2024-02-01T00:00:00Z")), reading("90", "2024-01-01T00:00:00Z"))
        eq(check.consumption, null, "no consumption")
        eq(check.findings.map { it.rule }, listOf(Rule.OUT_OF_ORDER_READING), "rule")
        eq(check.rejected, true, "rejected")
    }
    t("consumption: multiplier, meter exchange, invalid reading") {
        val c = consumption("t", "kwh", reading("100.5", "2024-01-01T00:00:00Z", multiplier = "40"), reading("150.25", "2024-02-01T00:00:00Z", multiplier = "40"))
        eqDec(c.consumption!!.quantity, "1990", "(150.25 - 100.5) x 40")
        eq(c.consumption!!.id, "m1@2024-02-01T00:00:00Z", "id")
        eq(c.findings, listOf(), "no findings")
        val exchange = consumption("t", "kwh", reading("5000", "2024-01-01T00:00:00Z"), reading("12", "2024-02-01T00:00:00Z"))
        eq(exchange.consumption, null, "nothing across an exchange")
        eq(exchange.findings.map { it.rule }, listOf(Rule.METER_EXCHANGE), "exchange")
        eq(exchange.flagged, true, "flagged")
        val invalid = consumption("t", "kwh", reading("1", "2024-01-01T00:00:00Z"), reading("-5", "2024-02-01T00:00:00Z"))
        eq(invalid.findings.map { it.rule }, listOf(Rule.INVALID_READING), "negative register")
        eq(invalid.rejected, true, "rejected")
    }

    // ---- tariffs and bills -----------------------------------------------------------------
    val flatToml = File(examples, "tariffs/flat.toml").readText()
    val january = BillRequest(tenant = "t", subject = "home", metric = "kwh", periodStart = ts("2024-01-01T00:00:00Z"),
        periodEnd = ts("2024-02-01T00:00:00Z"), timeZone = "Europe/London")
    val usage = listOf(rec("u1", "home", "60", "2024-01-10T12:00:00Z"), rec("u2", "home", "40", "2024-01-20T12:00:00Z"),
        rec("u3", "other", "999", "2024-01-20T12:00:00Z"))
    // Standing 31 x 0.5335 = 16.5385 -> 16.54; energy 100 x 0.2862 = 28.62; subtotal 45.16;
    // VAT 5 % of 45.16 = 2.258 -> 2.26 (half up); total 47.42.
    t("Tariff: TOML, bill with exact money, estimateBill") {
        val tariff = Tariff.fromToml(flatToml)
        eq(tariff.currency(), "GBP", "currency")
        eq(tariff.minorUnits(), 2, "minor units")
        val bill = tariff.bill(january, usage)
        eq(bill.lines.map { it.charge }, listOf("standing", "energy", "vat"), "lines")
        eqDec(bill.lines[0].amount, "16.54", "standing")
        eqDec(bill.lines[1].amount, "28.62", "energy")
        eqDec(bill.subtotal, "45.16", "subtotal")
        eqDec(bill.taxes, "2.26", "VAT")
        eqDec(bill.total, "47.42", "total")
        eq(estimateBill(tariff, january, usage), bill, "estimateBill is the bill to date")
        check(billToJson(bill).contains("\"total\":\"47.42\"")) { billToJson(bill) }
    }
    t("Tariff: JSON, URDB, any; errors with line and kind") {
        val fromToml = Tariff.fromToml(flatToml)
        val again = Tariff.fromJson(fromToml.toJson())
        eq(again.bill(january, usage), fromToml.bill(january, usage), "JSON round trip")
        eq(Tariff.fromAny(flatToml).currency(), "GBP", "any: TOML")
        val urdb = jsonAt(File(vectors, "bill/urdb_tiers_fixed.json").readText(), "/input/tariff")!!
        eq(Tariff.fromUrdb(urdb).currency(), "USD", "URDB")
        eq(Tariff.fromAny(urdb).currency(), "USD", "any: URDB")
        val e = throws<MeterkitException.Parse>("bad TOML") { Tariff.fromToml("currency = \"GBP\"\n[[charges]\n") }
        check(e.info.line != null) { "line: ${e.info}" }
        throws<MeterkitException>("bad JSON") { Tariff.fromJson("{\"currency\":\"GBP\",\"charges\":[{\"id\":\"x\",\"type\":\"nope\"}]}") }
        val empty = throws<MeterkitException.InvalidQuery>("empty period") { fromToml.bill(january.copy(periodEnd = january.periodStart), usage) }
        eq(empty.info.code, "E_INVALID_QUERY", "code")
    }
    t("URDB options, notes and compareTariffs (the core's Tariff::compare)") {
        val zeros = "[" + List(12) { "[" + List(24) { "0" }.joinToString(",") + "]" }.joinToString(",") + "]"
        val daily = "{\"sector\":\"Residential\",\"energyratestructure\":[[{\"rate\":0.12,\"unit\":\"kWh\"}]]," +
            "\"energyweekdayschedule\":" + zeros + ",\"energyweekendschedule\":" + zeros + "," +
            "\"fixedchargefirstmeter\":0.5,\"fixedchargeunits\":\"$/day\"}"
        val actual = Tariff.fromUrdb(daily)
        val pysam = Tariff.fromUrdbWith(daily, true, 6)
        eq(actual.notes(), listOf("sector: Residential"), "notes")
        val twoMonths = january.copy(periodEnd = ts("2024-03-01T00:00:00Z"), timeZone = "UTC")
        val records = (1..29).map { d -> rec("h$d", "home", "10", "2024-02-%02dT12:00:00Z".format(d)) }
        val ranked = compareTariffs(listOf(NamedTariff("actual", actual), NamedTariff("pysam", pysam)), twoMonths, records)
        // January 31 x 0.50 = 15.50 vs 0.5 x 365 / 12 = 15.21; February 290 x 0.12 + 29 x 0.50 = 49.30 vs 50.01.
        eq(ranked.map { it.tariff }, listOf("actual", "pysam"), "cheapest first")
        eqDec(ranked[0].total, "64.80", "actual total")
        eq(ranked[0].periods.map { it.period }, listOf("2024-01", "2024-02"), "months")
        eqDec(ranked[0].periods[0].total, "15.50", "January")
        eqDec(ranked[1].total, "65.22", "PySAM's day count")
        eq(ranked[1].error, null, "no error")
    }
    t("PreparedLoad prices as compareTariffs and Tariff.bill on a real year") {
        // The real household's 8760 hourly kWh of 2021 (the PySAM oracle's load) and a real URDB rate.
        val rows = File(examples, "data/uk-smart-meter-hourly.csv").readLines().drop(1)
            .map { it.split(",") }.filter { it[0].startsWith("2021") }
        eq(rows.size, 8760, "hours")
        val records = rows.mapIndexed { i, r -> rec("h$i", "home", r[1], r[0].replace(' ', 'T')) }
        val urdb = Tariff.fromUrdb(File(vectors.parentFile, "data/urdb/urdb-539f6a23ec4f024411ec8beb-south-central-ppd-lp1.json").readText())
        val tariffs = listOf(NamedTariff("urdb", urdb), NamedTariff("flat", Tariff.fromToml(flatToml)))
        val year = january.copy(periodStart = ts("2021-01-01T00:00:00Z"), periodEnd = ts("2022-01-01T00:00:00Z"), timeZone = "America/Chicago")
        val load = PreparedLoad(year, records)
        // The UTC year in Chicago's local months: 2020-12 (6 hours), 2021-01 … 2021-12 (cut).
        eq(load.len(), 13u, "months")
        eq(load.monthRequest(0u)?.periodEnd, ts("2021-01-01T06:00:00Z"), "first month ends at local midnight")
        eq(load.monthRequest(12u)?.periodEnd, year.periodEnd, "last month")
        eq(load.monthRequest(13u), null, "past the last month")
        val ranked = load.compare(tariffs)
        eq(ranked, compareTariffs(tariffs, year, records), "compare is compareTariffs")
        eq(ranked.map { it.error }, listOf(null, null), "both price the load")
        for (nt in tariffs) {
            val bills = load.bills(nt.tariff)
            eq(bills, (0 until 13).map { nt.tariff.bill(load.monthRequest(it.toUInt())!!, records) }, "${nt.name}: bills month by month")
            val row = ranked.first { it.tariff == nt.name }
            eq(row.periods.map { it.total }, bills.map { it.total }, "${nt.name}: period totals")
            check(row.total!! > BigDecimal.ZERO) { "${nt.name}: ${row.total}" }
        }
        throws<MeterkitException.InvalidQuery>("a period of more than 1,200 months") {
            PreparedLoad(year.copy(periodStart = ts("1900-01-01T00:00:00Z")), records)
        }
    }
    t("engine.bill from stored records equals the tariff's bill; billRequestFromJson") {
        val engine = Engine.inMemory()
        engine.ingest(usage)
        val tariff = Tariff.fromToml(flatToml)
        eq(engine.bill(tariff, january), tariff.bill(january, usage), "same bill")
        val req = billRequestFromJson("{\"tenant\":\"t\",\"subject\":\"home\",\"metric\":\"kwh\",\"period_start\":\"2024-01-01T00:00:00Z\",\"period_end\":\"2024-02-01T00:00:00Z\",\"time_zone\":\"Europe/London\"}")
        eq(req, january, "request from JSON")
        val q = queryFromJson("{\"tenant\":\"t\",\"metric\":\"kwh\",\"window\":\"minutes:15\",\"time_zone\":\"UTC\",\"fill\":\"zero\"}")
        eq(q.window, "minutes:15", "window")
        eq(q.fill, Fill.ZERO, "fill")
        engine.close()
    }

    // ---- queue, export/import, SQLite --------------------------------------------------------
    t("queue: pending, export, idempotent import, markUploaded, never twice") {
        val device = Engine.inMemory()
        val readings = hourly(n = 3)
        eq(device.queue(readings).accepted, 3L, "stored")
        eq(device.pendingCount("t"), 3L, "pending")
        eq(device.pendingUploads("t", 2).map { it.id }, listOf("m1-0", "m1-1"), "first page")
        val body = device.exportPendingJson("t", 100)
        val server = Engine.inMemory()
        eq(server.importJson(body).accepted, 3L, "server stores once")
        val again = server.importJson(body)
        eq(again.accepted to again.duplicates, 0L to 3L, "a retried upload counts nothing twice")
        eq(device.markUploaded("t", listOf("m1-0", "m1-1", "m1-2", "nope")), 3L, "marked")
        eq(device.pendingCount("t"), 0L, "queue empty")
        eq(device.queue(readings).duplicates, 3L, "queued again: duplicates")
        eq(device.pendingCount("t"), 0L, "not uploaded twice")
        val conflict = device.queue(listOf(readings[0].copy(quantity = dec("5")), rec("m1-9", "meter-1", "1", "2024-03-10T09:00:00Z")))
        eq(conflict.rejected.map { it.id }, listOf("m1-0"), "conflict rejected")
        eq(device.pendingUploads("t", 10).map { it.id }, listOf("m1-9"), "only the new record")
        eq(device.markUploaded("t", listOf("m1-0")), 0L, "already uploaded")
        throws<MeterkitException.Parse>("bad import") { server.importJson("[{]") }
        device.close(); server.close()
    }
    t("purgeUploads: sent markers expire, pending survive") {
        val device = Engine.inMemory()
        device.queue(hourly(n = 2))
        eq(device.markUploaded("t", listOf("m1-0")), 1L, "acknowledged now")
        eq(device.purgeUploads("t", ts("2000-01-01T00:00:00Z")), 0L, "nothing acknowledged that early")
        eq(device.purgeUploads("t", Instant.now().plusSeconds(60)), 1L, "the sent marker of m1-0")
        eq(device.pendingCount("t"), 1L, "m1-1 still pending")
        eq(device.queue(hourly(n = 1)).duplicates, 1L, "stored already")
        eq(device.pendingCount("t"), 2L, "after its retention, m1-0 queues again")
        device.close()
    }
    t("checkReading: the engine's decision, nothing stored") {
        val e = Engine.inMemory()
        e.recordReading("t", "kwh", reading("11663", "2026-11-01T00:00:00Z", digits = 5))
        val back = e.checkReading("t", "kwh", reading("11662", "2026-11-02T00:00:00Z", digits = 5))
        eq(back.status, ReadingStatus.REJECTED, "backwards")
        eq(back.findings[0].rule, Rule.BACKWARDS_READING, "rule")
        val up = e.checkReading("t", "kwh", reading("11670", "2026-11-02T00:00:00Z", digits = 5))
        eqDec(up.consumption, "7", "consumption")
        eq(e.records("t", "kwh", ts("2026-01-01T00:00:00Z"), ts("2027-01-01T00:00:00Z")).size, 0, "nothing stored")
        eq(e.recordReading("t", "kwh", reading("11670", "2026-11-02T00:00:00Z", digits = 5)).records, up.records, "same records when stored")
        e.close()
    }
    t("allocate, splitSharedMeter, estimateGaps") {
        eq(allocate(dec("10.00"), listOf(dec("1"), dec("1"), dec("1")), 2).map { it.toPlainString() }, listOf("3.34", "3.33", "3.33"), "largest remainder")
        throws<MeterkitException.InvalidQuery>("no weights") { allocate(dec("1"), listOf(), 2) }
        val pump = SharedMeter(meter = "pump", metric = "pump_kwh", shares = listOf(Share("A1", dec("1")), Share("A2", dec("2"))), scale = 2)
        val parts = splitSharedMeter(pump, "t", dec("10"), ts("2024-01-01T00:00:00Z"))
        eq(parts.map { it.subject }, listOf("A1", "A2"), "one record per share")
        eq(parts.fold(BigDecimal.ZERO) { a, r -> a + r.quantity }.compareTo(dec("10")), 0, "sums to the total")
        val hours = (0 until 6).filter { it != 2 && it != 3 }.map { h -> rec("h$h", "m", (h + 1).toString(), "2024-01-01T%02d:00:00Z".format(h)) }
        val filled = estimateGaps(hours, EstimateConfig(intervalSecs = 3600L))
        eq(filled.map { it.timestamp }, listOf(ts("2024-01-01T02:00:00Z"), ts("2024-01-01T03:00:00Z")), "the gap's hours")
        eq(filled.map { it.quality }, listOf(Quality.ESTIMATED, Quality.ESTIMATED), "estimated")
        throws<MeterkitException.Validation>("interval 0") { estimateGaps(hours, EstimateConfig(intervalSecs = 0L)) }
    }
    t("monthPeriod, windowSpan, Tariff.quantityTotal, validationSummary") {
        val march = monthPeriod("2024-03", "Europe/London")
        eq(march.start, ts("2024-03-01T00:00:00Z"), "March starts at GMT midnight")
        eq(march.end, ts("2024-03-31T23:00:00Z"), "April starts at BST midnight")
        throws<MeterkitException.Parse>("bad month") { monthPeriod("2024-13", "UTC") }
        val day = windowSpan("day", ts("2024-03-10T12:00:00Z"), "America/New_York")
        eq(day.start, ts("2024-03-10T05:00:00Z"), "local midnight EST")
        eq(day.end, ts("2024-03-11T04:00:00Z"), "a 23-hour day")
        throws<MeterkitException.InvalidWindow>("bad window") { windowSpan("fortnight", ts("2024-03-10T12:00:00Z"), "UTC") }
        val slab = Tariff.fromToml("currency = \"GBP\"\n[[charges]]\nid = \"energy\"\ntype = \"graduated\"\nunit = \"kWh\"\n" +
            "tiers = [{ up_to = \"100\", rate = \"0.20\" }, { rate = \"0.30\" }]\n")
        eq(slab.quantityTotal(dec("150")).compareTo(dec("35")), 0, "100 x 0.20 + 50 x 0.30 = 35")
        val flat = Tariff.fromToml(File(examples, "tariffs/flat.toml").readText())
        throws<MeterkitException.Tariff>("a standing charge needs a calendar") { flat.quantityTotal(dec("1")) }
        val e = Engine.inMemory()
        e.setValidation("kwh", ValidationConfig())
        e.setValidationNow(ts("2024-03-11T00:00:00Z"))
        val report = e.ingest(listOf(rec("neg", "m1", "-1", "2024-03-10T00:00:00Z"), rec("ok", "m1", "1", "2024-03-10T01:00:00Z")))
        val summary = validationSummary(report.findings)
        check(summary.contains("negative_quantity")) { "the rule is counted: $summary" }
        eq(validationSummary(listOf()).contains("negative_quantity"), false, "no findings, no rule")
        e.close()
    }
    t("invoices: create, issue, pay, void, overdue, reminders") {
        val e = Engine.inMemory()
        val tariff = Tariff.fromToml(File(examples, "tariffs/flat.toml").readText())
        val req = BillRequest(tenant = "t", subject = "home", metric = "kwh", periodStart = ts("2024-01-01T00:00:00Z"),
            periodEnd = ts("2024-02-01T00:00:00Z"), timeZone = "Europe/London")
        val bill = e.bill(tariff, req)
        val draft = createInvoice("inv-1", bill, 14)
        eq(draft.status, InvoiceStatus.DRAFT, "draft")
        val issued = e.issueInvoice(draft, ts("2024-02-01T09:00:00Z"))
        eq(issued.dueAt, ts("2024-02-15T09:00:00Z"), "due in 14 days")
        eq(e.invoices("t").map { it.id }, listOf("inv-1"), "stored")
        eq(e.remindersDue("t", ts("2024-02-13T00:00:00Z"), 3).map { it.id }, listOf("inv-1"), "reminder due")
        eq(e.markOverdue("t", ts("2024-03-01T00:00:00Z")).map { it.status }, listOf(InvoiceStatus.OVERDUE), "overdue")
        eq(e.payInvoice("t", "inv-1", ts("2024-03-02T00:00:00Z")).status, InvoiceStatus.PAID, "paid")
        throws<MeterkitException.InvalidTransition>("void after paid") { e.voidInvoice("t", "inv-1", ts("2024-03-03T00:00:00Z")) }
        e.issueInvoice(createInvoice("inv-2", bill, 7), ts("2024-02-01T00:00:00Z"))
        eq(e.voidInvoice("t", "inv-2", ts("2024-02-02T00:00:00Z")).status, InvoiceStatus.VOID, "void")
        e.close()
    }
    t("SQLite on the device: the queue and the records survive a restart") {
        val path = File(scratch, "device-${System.nanoTime()}.db").path
        Engine.open(path).use { e ->
            e.queue(hourly(n = 5))
            e.markUploaded("t", listOf("m1-0"))
        }
        Engine.open(path).use { e ->
            eq(e.pendingCount("t"), 4L, "pending after restart")
            val q = Query(tenant = "t", metric = "kwh", window = "day", timeZone = "UTC", subject = null, filters = mapOf(),
                groupBy = listOf(), unique = listOf(), from = null, to = null, fill = Fill.NONE)
            eqDec(e.query(q)[0].sum, "2.5", "stored sum")
        }
        val bad = throws<MeterkitException.Store>("unopenable") { Engine.open("/proc/definitely/not/here.db") }
        eq(bad.info.code, "E_STORE", "code")
    }

    // ---- batches, columns, threads, bench helpers ------------------------------------------
    t("ingestColumns and countColumns: rows from parallel columns") {
        val n = 1000
        val cols = RecordColumns(tenant = "t", metric = "kwh", ids = (0 until n).joinToString("\n") { "c$it" },
            subjectValues = listOf("a", "b"), subjectCodes = (0 until n).map { (it % 2) },
            mantissas = (0 until n).map { 1500L }, scale = 3, timestamps = (0 until n).map { 1_709_251_200L + it * 60L })
        eq(countColumns(cols), 1000L, "count")
        val engine = Engine.inMemory()
        eq(engine.ingestColumns(cols).accepted, 1000L, "accepted")
        val q = Query(tenant = "t", metric = "kwh", window = "day", timeZone = "UTC", subject = "a", filters = mapOf(),
            groupBy = listOf(), unique = listOf(), from = null, to = null, fill = Fill.NONE)
        eqDec(engine.query(q)[0].sum, "750", "500 rows x 1.500")
        val e = throws<MeterkitException.InvalidRecord>("short column") { engine.ingestColumns(cols.copy(mantissas = listOf(1L))) }
        eq(e.info.code, "E_INVALID_RECORD", "code")
        throws<MeterkitException.InvalidRecord>("ids short of a line") { countColumns(cols.copy(ids = "a\nb")) }
        eq(countColumns(cols.copy(ids = "", subjectCodes = listOf(), mantissas = listOf(), timestamps = listOf())), 0L, "empty batch")
        eq(engine.records("t", "kwh", Instant.ofEpochSecond(1_709_251_200L), Instant.ofEpochSecond(1_709_251_201L)).map { it.id }, listOf("c0"), "first row's id")
        throws<MeterkitException.InvalidRecord>("code out of range") { engine.ingestColumns(cols.copy(subjectCodes = cols.subjectCodes.map { 7 })) }
        engine.close()
    }
    t("ingestPacked and countPacked: little-endian byte columns") {
        val n = 300
        fun longs(f: (Int) -> Long) = java.nio.ByteBuffer.allocate(n * 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).also { b -> (0 until n).forEach { b.putLong(f(it)) } }.array()
        val codes = java.nio.ByteBuffer.allocate(n * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN).also { b -> (0 until n).forEach { b.putInt(it % 3) } }.array()
        val packed = PackedColumns(tenant = "t", metric = "kwh", ids = (0 until n).joinToString("\n") { "p$it" },
            subjectValues = listOf("a", "b", "c"), subjectCodes = codes, mantissas = longs { -25L }, scale = 1,
            timestamps = longs { 1_709_251_200L + it * 3600L })
        eq(countPacked(packed), 300L, "count")
        val engine = Engine.inMemory()
        eq(engine.ingestPacked(packed).accepted, 300L, "accepted")
        val q = Query(tenant = "t", metric = "kwh", window = "year", timeZone = "UTC", subject = "c", filters = mapOf(),
            groupBy = listOf(), unique = listOf(), from = null, to = null, fill = Fill.NONE)
        eqDec(engine.query(q)[0].sum, "-250", "100 rows x -2.5")
        eq(engine.records("t", "kwh", Instant.ofEpochSecond(1_709_254_800L), Instant.ofEpochSecond(1_709_254_801L)).map { it.subject }, listOf("b"), "row 1")
        val e = throws<MeterkitException.InvalidRecord>("ragged bytes") { engine.ingestPacked(packed.copy(mantissas = ByteArray(7))) }
        eq(e.info.code, "E_INVALID_RECORD", "code")
        engine.close()
    }
    t("countRecords and the Rust-side bench helpers") {
        eq(countRecords(hourly(n = 10)), 10L, "count")
        check(rustBenchIngest(1000) > 0L) { "ingest timing" }
        check(rustBenchConvert(1000) > 0L) { "convert timing" }
        check(rustBenchConvertColumns(1000) > 0L) { "columns convert timing" }
        check(rustBenchValidateReading(listOf(reading("1", "2024-01-01T00:00:00Z")), reading("2", "2024-01-02T00:00:00Z"), 10) > 0L) { "validate timing" }
    }
    t("one engine, four Kotlin threads") {
        val engine = Engine.inMemory()
        val threads = (0 until 4).map { k -> Thread { engine.ingest(hourly(n = 24, prefix = "th$k", subject = "s$k")) } }
        threads.forEach { it.start() }; threads.forEach { it.join() }
        val q = Query(tenant = "t", metric = "kwh", window = "day", timeZone = "UTC", subject = null, filters = mapOf(),
            groupBy = listOf(), unique = listOf(), from = null, to = null, fill = Fill.NONE)
        eq(engine.query(q)[0].count, 96L, "every record once")
        engine.close()
    }
    t("issue 14: bucket firstAt/lastAt, localStart, group subject; an account bill") {
        val engine = Engine.inMemory()
        val acct = mapOf("account" to "A")
        engine.ingest(listOf(rec("1", "s1", "40", "2024-12-31T18:30:00Z", dimensions = acct),
            rec("2", "s1", "20", "2025-01-10T09:00:00.250Z", dimensions = acct),
            rec("3", "s2", "50", "2025-01-04T00:00:00Z", dimensions = acct), rec("4", "s3", "30", "2025-01-05T00:00:00Z")))
        val q = Query(tenant = "t", metric = "kwh", window = "month", timeZone = "Asia/Kolkata", subject = null, filters = mapOf(),
            groupBy = listOf("subject"), unique = listOf(), from = null, to = null, fill = Fill.NONE)
        val s1 = engine.query(q)[0]
        eq(s1.localStart, "2025-01-01T00:00:00+05:30", "local start")
        eq(s1.group["subject"], "s1", "group subject")
        eq(s1.firstAt, ts("2024-12-31T18:30:00Z"), "first")
        eq(s1.lastAt, ts("2025-01-10T09:00:00.250Z"), "last")
        val tariff = Tariff.fromJson("""{"currency":"USD","charges":[{"id":"e","type":"graduated","tiers":[{"up_to":"100","rate":"0.10"},{"rate":"0.05"}]}]}""")
        val req = BillRequest(tenant = "t", subject = "", metric = "kwh", periodStart = ts("2024-12-01T00:00:00Z"),
            periodEnd = ts("2025-02-01T00:00:00Z"), timeZone = "UTC", subjects = listOf("s1", "s2"), perSubject = true)
        val bill = engine.bill(tariff, req)
        eqDec(bill.total, "10.50", "110 rated together")
        eq(bill.perSubject.map { it.subject to it.records }, listOf("s1" to 2UL, "s2" to 1UL), "per subject")
        eqDec(engine.bill(tariff, req.copy(subjects = listOf(), filter = acct, perSubject = false)).total, "10.50", "filter")
        eqDec(engine.bill(tariff, req.copy(subjects = listOf())).total, "12.00", "whole tenant")
        throws<MeterkitException.InvalidQuery>("subject and subjects") { engine.bill(tariff, req.copy(subject = "s1")) }
        eq(localInstant("2025-01-01", "Asia/Kolkata"), ts("2024-12-31T18:30:00Z"), "local date")
        throws<MeterkitException.Parse>("a repeated local time") { localInstant("2024-11-03T01:30", "America/New_York") }
        engine.close()
    }

    t("trackCounters: the tracker state survives a restart; a 32-bit counter wraps") {
        val path = File(scratch, "counters-${System.nanoTime()}.db").path
        fun read(at: String, v: String) = MeterReading(meter = "s1", timestamp = ts(at), register = dec(v),
            registerBits = 32.toUByte(), multiplier = BigDecimal.ONE, kind = ReadingKind.ACTUAL)
        val first = Engine.open(path)
        val out = first.trackCounters("isp", "bytes", listOf(read("2024-03-01T10:00:00Z", "4294967000")), "{\"dating\":\"end\"}")
        eq(out.records.size, 0, "a baseline")
        first.close()
        val engine = Engine.open(path)
        eqDec(engine.counterState("isp", "bytes", "s1")!!.register, "4294967000", "state after the restart")
        eq(engine.counterState("isp", "bytes", "nope"), null, "no state")
        // 2^32 - 4294967000 + 704 = 296 + 704 = 1000.
        val next = engine.trackCounters("isp", "bytes", listOf(read("2024-03-01T10:05:00Z", "704")), "{\"dating\":\"end\"}")
        eq(next.records.map { it.id }, listOf("s1@2024-03-01T10:05:00Z"), "id")
        eqDec(next.records[0].quantity, "1000", "wrapped delta")
        eq(next.findings.map { it.rule }, listOf(Rule.ROLLOVER), "rollover")
        throws<MeterkitException.Parse>("unknown option") { engine.trackCounters("isp", "bytes", listOf(), "{\"datng\":\"end\"}") }
        engine.close()
    }
}
