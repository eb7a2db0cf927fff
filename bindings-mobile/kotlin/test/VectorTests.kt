// Every case in tests/vectors/ run through the typed Kotlin API and compared with the canonical
// JSON of its "expected" part (tests/vectors/README.md), as the Rust, Python and Node runners do.
// The canonicalisation is the Rust runner's own (`canonicalJson` calls `meterkit::canonical_json`).
package meterkit.tests

import meterkit.*
import java.io.File

private fun at(json: String, pointer: String): String? = jsonAt(json, pointer)
private fun str(json: String, pointer: String): String = jsonStrAt(json, pointer) ?: throw Failure("no string at $pointer")

fun runRollup(case: String): String {
    val engine = Engine.inMemory()
    val reports = mutableListOf<String>()
    var i = 0
    while (true) {
        val batch = at(case, "/input/batches/$i") ?: break
        reports.add(ingestReportToJson(engine.ingest(recordsFromJson(batch))))
        i++
    }
    var r = 0
    while (at(case, "/input/retract/$r") != null) {
        engine.retract(str(case, "/input/retract/$r/0"), str(case, "/input/retract/$r/1"))
        r++
    }
    val buckets = engine.query(queryFromJson(at(case, "/input/query")!!))
    engine.close()
    return "{\"report\":[" + reports.joinToString(",") + "],\"buckets\":" + bucketsToJson(buckets) + "}"
}

fun runBill(case: String): String = try {
    val tariff = Tariff.fromAny(at(case, "/input/tariff")!!)
    // The request's own fields (a bill request refuses the vector's tariff and records keys).
    val request = BillRequest(tenant = jsonStrAt(case, "/input/tenant") ?: "", subject = str(case, "/input/subject"),
        metric = str(case, "/input/metric"), periodStart = ts(str(case, "/input/period_start")),
        periodEnd = ts(str(case, "/input/period_end")), timeZone = str(case, "/input/time_zone"))
    val records = recordsFromJson(at(case, "/input/records")!!)
    billToJson(tariff.bill(request, records))
} catch (e: MeterkitException) {
    "{\"error\":{\"kind\":${jsonString(e.info.kind)},\"field\":${jsonString(e.info.field)}}}"
}

fun runValidate(case: String): String {
    val config = ValidationConfig.fromJson(at(case, "/input/config")!!)
    val now = ts(str(case, "/input/now"))
    val records = recordsFromJson(at(case, "/input/records")!!)
    val findings = if (at(case, "/input/metrics") != null) {
        val configs = mutableMapOf<String, ValidationConfig>()
        var i = 0
        while (at(case, "/input/metrics/$i") != null) {
            configs[str(case, "/input/metrics/$i")] = config
            i++
        }
        validateRecords(configs, records, null, now)
    } else {
        validateRecords(mapOf(), records, config, now)
    }
    return findingsToJson(findings)
}

/** The projection the reading vectors compare (tests/vectors/README.md), from the outcome's JSON. */
fun projectOutcome(json: String): String {
    fun raw(j: String, p: String) = at(j, p) ?: "null"
    fun list(p: String) = generateSequence(0) { it + 1 }.map { at(json, "$p/$it") }.takeWhile { it != null }.map { it!! }.toList()
    val findings = list("/findings").map { f ->
        "{\"rule\":${raw(f, "/rule")},\"severity\":${raw(f, "/severity")},\"action\":${raw(f, "/action")}}"
    }
    val records = list("/records").map { r ->
        "{\"id\":${raw(r, "/id")},\"timestamp\":${raw(r, "/timestamp")},\"end\":${raw(r, "/end")}," +
            "\"quantity\":${raw(r, "/quantity")},\"quality\":${at(r, "/quality") ?: "\"actual\""}}"
    }
    return "{" + listOf("meter", "timestamp", "reading", "status", "consumption").joinToString(",") { "\"$it\":${raw(json, "/$it")}" } +
        ",\"findings\":[" + findings.joinToString(",") + "],\"records\":[" + records.joinToString(",") + "]}"
}

fun runReading(case: String): String {
    val engine = Engine.inMemory()
    val tenant = str(case, "/input/tenant")
    val metric = str(case, "/input/metric")
    val options = at(case, "/input/options") ?: "{}"
    val outcomes = mutableListOf<String>()
    var i = 0
    while (true) {
        val item = at(case, "/input/readings/$i") ?: break
        val kind = when (jsonStrAt(item, "/reading/kind")) {
            "estimated" -> ReadingKind.ESTIMATED
            "customer" -> ReadingKind.CUSTOMER
            else -> ReadingKind.ACTUAL
        }
        val reading = MeterReading(
            meter = str(item, "/reading/meter"), timestamp = ts(str(item, "/reading/timestamp")),
            register = dec(str(item, "/reading/register")),
            registerDigits = at(item, "/reading/register_digits")?.toInt()?.toUByte(),
            multiplier = dec(jsonStrAt(item, "/reading/multiplier") ?: "1"), kind = kind)
        val outcome = engine.recordReading(tenant, metric, reading, jsonStrAt(item, "/exchange")?.let { dec(it) }, options)
        outcomes.add(projectOutcome(readingOutcomeToJson(outcome)))
        i++
    }
    engine.close()
    return "{\"outcomes\":[" + outcomes.joinToString(",") + "]}"
}

/** Like tests/support.rs run_counter_case: each call through Engine.trackCounters on one engine,
 *  projected to the fields the counter vectors compare. */
fun runCounter(case: String): String {
    val engine = Engine.inMemory()
    val tenant = str(case, "/input/tenant")
    val metric = str(case, "/input/metric")
    fun raw(j: String, p: String) = at(j, p) ?: "null"
    fun list(j: String, p: String) =
        generateSequence(0) { it + 1 }.map { at(j, "$p/$it") }.takeWhile { it != null }.map { it!! }.toList()
    val calls = mutableListOf<String>()
    var c = 0
    while (at(case, "/input/calls/$c") != null) {
        val call = at(case, "/input/calls/$c")!!
        val readings = list(call, "/readings").map { r ->
            MeterReading(meter = str(r, "/meter"), timestamp = ts(str(r, "/timestamp")), register = dec(str(r, "/register")),
                registerDigits = at(r, "/register_digits")?.toInt()?.toUByte(),
                registerBits = at(r, "/register_bits")?.toInt()?.toUByte(),
                multiplier = dec(jsonStrAt(r, "/multiplier") ?: "1"), kind = ReadingKind.ACTUAL)
        }
        val out = engine.trackCounters(tenant, metric, readings, at(call, "/options") ?: "{}")
        val report = ingestReportToJson(out.report)
        val records = list(recordsToJson(out.records), "").map { r ->
            "{\"id\":${raw(r, "/id")},\"timestamp\":${raw(r, "/timestamp")},\"end\":${raw(r, "/end")}," +
                "\"quantity\":${raw(r, "/quantity")},\"quality\":${at(r, "/quality") ?: "\"actual\""}}"
        }
        val findings = list(findingsToJson(out.findings), "").map { f ->
            "{" + listOf("rule", "severity", "action", "subject", "timestamp").joinToString(",") { "\"$it\":${raw(f, "/$it")}" } + "}"
        }
        calls.add("{\"accepted\":${raw(report, "/accepted")},\"duplicates\":${raw(report, "/duplicates")}," +
            "\"rejected\":${list(report, "/rejected").size},\"records\":[" + records.joinToString(",") +
            "],\"findings\":[" + findings.joinToString(",") + "]}")
        c++
    }
    engine.close()
    return "{\"calls\":[" + calls.joinToString(",") + "]}"
}

/** Like tests/support.rs run_partial_case: each partition through partialRollup, all merged,
 *  finalized for the query's tenant, and imported twice (an import sets) before the query. */
fun runPartial(case: String): String {
    val spec = at(case, "/input/spec")!!
    val states = mutableListOf<String>()
    var i = 0
    while (true) {
        val part = at(case, "/input/partitions/$i") ?: break
        states.add(partialRollup(recordsFromJson(part), spec))
        i++
    }
    val merged = mergePartials("[" + states.joinToString(",") + "]", spec)
    val engine = Engine.inMemory()
    engine.importPartials(merged, spec)
    engine.importPartials(merged, spec)
    val query = queryFromJson(at(case, "/input/query")!!)
    val rows = states.map { state -> generateSequence(0) { it + 1 }.takeWhile { at(state, "/tenant/$it") != null }.count() }
    val out = "{\"partial_rows\":" + rows.joinToString(",", "[", "]") +
        ",\"buckets\":" + bucketsToJson(finalizePartials(merged, spec, query.tenant)) +
        ",\"imported\":" + bucketsToJson(engine.query(query)) + "}"
    engine.close()
    return out
}

fun vectorTests(suite: Suite, dir: File) {
    val files = dir.walkTopDown().filter { it.isFile && it.name.endsWith(".json") }.sortedBy { it.path }.toList()
    suite.test("vectors: the directory has cases") { check(files.size >= 50) { "only ${files.size} vector files in $dir" } }
    for (file in files) {
        suite.test("vector ${file.parentFile.name}/${file.name}") {
            val case = file.readText()
            eq(jsonStrAt(case, "/name"), file.nameWithoutExtension, "name")
            val actual = when (val kind = jsonStrAt(case, "/kind")) {
                "rollup" -> runRollup(case)
                "bill" -> runBill(case)
                "validate" -> runValidate(case)
                "reading" -> runReading(case)
                "counter" -> runCounter(case)
                "partial" -> runPartial(case)
                else -> throw Failure("no Kotlin runner for vector kind $kind")
            }
            eq(canonicalJson(actual), canonicalJson(at(case, "/expected")!!), "canonical JSON")
        }
    }
}
