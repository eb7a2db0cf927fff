// A tiny test harness (no JUnit on this machine's classpath): every test is a named lambda, the
// run prints one line per test and exits 1 when any failed.
package meterkit.tests

import meterkit.*
import java.math.BigDecimal
import java.time.Instant
import java.time.OffsetDateTime

class Failure(message: String) : AssertionError(message)

fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw Failure(message())
}

fun <T> eq(actual: T, expected: T, what: String) {
    if (actual != expected) throw Failure("$what: expected <$expected>, got <$actual>")
}

/** Exact decimal text (scale included): `12.50` is not `12.5`. */
fun eqDec(actual: BigDecimal?, expected: String?, what: String) =
    eq(actual?.toPlainString(), expected, what)

inline fun <reified E : Throwable> throws(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw Failure("$what: expected ${E::class.simpleName}, got $e")
    }
    throw Failure("$what: expected ${E::class.simpleName}, nothing was thrown")
}

fun dec(text: String) = BigDecimal(text)
fun ts(text: String): Instant = OffsetDateTime.parse(text).toInstant()

fun rec(
    id: String,
    subject: String,
    quantity: String,
    at: String,
    tenant: String = "t",
    metric: String = "kwh",
    dimensions: Map<String, String> = mapOf(),
) = UsageRecord(
    id = id, tenant = tenant, subject = subject, metric = metric, quantity = dec(quantity),
    timestamp = ts(at), end = null, dimensions = dimensions, quality = Quality.ACTUAL,
)

/** The structured fields every error variant carries. */
data class ErrInfo(val kind: String, val code: String, val reason: String, val recordId: String?, val field: String?, val line: ULong?)

val MeterkitException.info: ErrInfo
    get() = when (this) {
        is MeterkitException.InvalidRecord -> ErrInfo("invalid_record", code, reason, recordId, field, line)
        is MeterkitException.Conflict -> ErrInfo("conflict", code, reason, recordId, field, line)
        is MeterkitException.Parse -> ErrInfo("parse", code, reason, recordId, field, line)
        is MeterkitException.InvalidWindow -> ErrInfo("invalid_window", code, reason, recordId, field, line)
        is MeterkitException.InvalidTimeZone -> ErrInfo("invalid_time_zone", code, reason, recordId, field, line)
        is MeterkitException.InvalidQuery -> ErrInfo("invalid_query", code, reason, recordId, field, line)
        is MeterkitException.Overflow -> ErrInfo("overflow", code, reason, recordId, field, line)
        is MeterkitException.Tariff -> ErrInfo("tariff", code, reason, recordId, field, line)
        is MeterkitException.Validation -> ErrInfo("validation", code, reason, recordId, field, line)
        is MeterkitException.InvalidTransition -> ErrInfo("invalid_transition", code, reason, recordId, field, line)
        is MeterkitException.NotFound -> ErrInfo("not_found", code, reason, recordId, field, line)
        is MeterkitException.Store -> ErrInfo("store", code, reason, recordId, field, line)
        is MeterkitException.Internal -> ErrInfo("internal", code, reason, recordId, field, line)
    }

/** A JSON string literal (for the few values the tests put into JSON themselves). */
fun jsonString(s: String?): String =
    if (s == null) "null" else "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\""

class Suite {
    val tests = mutableListOf<Pair<String, () -> Unit>>()
    fun test(name: String, body: () -> Unit) { tests.add(name to body) }
}

fun main(args: Array<String>) {
    val vectors = java.io.File(args.getOrElse(0) { "tests/vectors" })
    val scratch = java.io.File(args.getOrElse(1) { System.getProperty("java.io.tmpdir") })
    val examples = java.io.File(args.getOrElse(2) { "examples" })
    val suite = Suite()
    apiTests(suite, scratch, examples, vectors)
    vectorTests(suite, vectors)
    fieldAppTests(suite, scratch)
    var failed = 0
    val started = System.nanoTime()
    for ((name, body) in suite.tests) {
        try {
            body()
            println("ok   $name")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
            e.printStackTrace(System.out)
        }
    }
    val ms = (System.nanoTime() - started) / 1_000_000
    println("${suite.tests.size - failed} passed, $failed failed (${suite.tests.size} tests, $ms ms)")
    kotlin.system.exitProcess(if (failed == 0) 0 else 1)
}
