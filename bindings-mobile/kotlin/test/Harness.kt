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

/** The structured fields every error carries, read from the one `MeterkitException` base (no `when` over the kinds). */
data class ErrInfo(val kind: String, val code: String, val reason: String, val recordId: String?, val field: String?, val line: Long?)

val MeterkitException.info: ErrInfo
    get() = ErrInfo(kind(), code(), reason(), recordId(), field(), line())

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
