// The mobile binding's benchmark (scripts/bench-mobile; not part of the tests): from Kotlin on
// the JVM through JNA,
//   (a) the per-call cost of one reading validation (validateReading with ten readings of
//       history, the field app's on-the-spot check);
//   (b) the per-record cost of a 100k-record batch: the boundary alone (countRecords /
//       countColumns / countPacked: lower in Kotlin, lift in Rust, count; no core records), the
//       Rust-side conversion of the lifted values into core records (rustBenchConvert*), and the
//       full ingest (Engine.ingest / Engine.ingestColumns into a fresh in-memory engine);
// each next to the Rust-side cost of the same work measured in the same process (rustBench*).
// Prints a Markdown table.
package meterkit.bench

import meterkit.*
import java.math.BigDecimal
import java.time.Instant

const val N = 100_000

fun records(n: Int): List<UsageRecord> {
    val base = 1_717_200_000L
    return (0 until n).map { i ->
        UsageRecord(
            id = "r$i", tenant = "t", subject = "m${i % 100}", metric = "kwh",
            quantity = BigDecimal.valueOf((i % 1000 + 1).toLong(), 3),
            timestamp = Instant.ofEpochSecond(base + i * 60L), end = null, dimensions = mapOf(), quality = Quality.ACTUAL,
        )
    }
}

fun columns(n: Int): RecordColumns {
    val base = 1_717_200_000L
    return RecordColumns(
        tenant = "t", metric = "kwh", ids = (0 until n).joinToString("\n") { "r$it" },
        subjectValues = (0 until 100).map { "m$it" }, subjectCodes = (0 until n).map { (it % 100) },
        mantissas = (0 until n).map { (it % 1000 + 1).toLong() }, scale = 3, timestamps = (0 until n).map { base + it * 60L },
    )
}

fun packed(n: Int): PackedColumns {
    val base = 1_717_200_000L
    val le = java.nio.ByteOrder.LITTLE_ENDIAN
    val codes = java.nio.ByteBuffer.allocate(n * 4).order(le)
    val mantissas = java.nio.ByteBuffer.allocate(n * 8).order(le)
    val timestamps = java.nio.ByteBuffer.allocate(n * 8).order(le)
    for (i in 0 until n) { codes.putInt(i % 100); mantissas.putLong((i % 1000 + 1).toLong()); timestamps.putLong(base + i * 60L) }
    return PackedColumns(tenant = "t", metric = "kwh", ids = (0 until n).joinToString("\n") { "r$it" },
        subjectValues = (0 until 100).map { "m$it" }, subjectCodes = codes.array(), mantissas = mantissas.array(), scale = 3,
        timestamps = timestamps.array())
}

/** Median of `reps` timings of `block`, in nanoseconds. */
fun median(reps: Int, block: () -> Unit): Long {
    val times = (0 until reps).map { val s = System.nanoTime(); block(); System.nanoTime() - s }.sorted()
    return times[times.size / 2]
}

fun main() {
    val history = (0..10).map { i ->
        MeterReading(meter = "m1", timestamp = Instant.parse("2024-05-01T00:00:00Z").plusSeconds(86_400L * i),
            register = BigDecimal(1000 + i * 10), registerDigits = 8u, multiplier = BigDecimal.ONE, kind = ReadingKind.ACTUAL)
    }
    val next = history.last().copy(timestamp = history.last().timestamp.plusSeconds(86_400), register = BigDecimal(1111))
    val now = Instant.parse("2030-03-17T17:46:40Z") // 1_900_000_000, as rust_bench_validate_reading
    val cfg: ValidationConfig? = null

    // (a) one reading validation per call
    repeat(2_000) { validateReading("t", "kwh", history, next, cfg, now) } // JIT warm-up
    val calls = 20_000
    val perCall = median(5) { repeat(calls) { validateReading("t", "kwh", history, next, cfg, now) } } / calls
    val rustPerCall = (0 until 5).map { rustBenchValidateReading(history, next, calls) }.sorted()[2] / calls
    val noop = median(5) { repeat(calls) { version() } } / calls

    // (b) 100k batch
    val recs = records(N)
    val cols = columns(N)
    val pack = packed(N)
    repeat(3) { countRecords(recs); countColumns(cols); countPacked(pack) } // warm-up
    val boundaryRecords = median(7) { countRecords(recs) }
    val boundaryColumns = median(7) { countColumns(cols) }
    val boundaryPacked = median(7) { countPacked(pack) }
    val rustConvert = (0 until 7).map { rustBenchConvert(N) }.sorted()[3]
    val rustConvertColumns = (0 until 7).map { rustBenchConvertColumns(N) }.sorted()[3]
    val ingestRecords = median(3) { Engine.inMemory().use { it.ingest(recs) } }
    val ingestColumns = median(3) { Engine.inMemory().use { it.ingestColumns(cols) } }
    val ingestPacked = median(3) { Engine.inMemory().use { it.ingestPacked(pack) } }
    val rustIngest = (0 until 3).map { rustBenchIngest(N) }.sorted()[1]

    // (c) the reading store: Engine.recordReading per call (a month's interval, so each call
    // stores the reading and ~30 daily consumption records atomically), in memory and on a SQLite
    // file; then the queue and the bill of the field app.
    fun readingCalls(engine: Engine, meters: Int, history: Int): Pair<Long, Long> {
        val t0 = Instant.parse("2024-01-01T00:00:00Z")
        fun r(m: Int, k: Int) = MeterReading(meter = "m$m", timestamp = t0.plusSeconds(30L * 86_400 * k),
            register = BigDecimal(1000 + 150 * k), registerDigits = 6u, multiplier = BigDecimal.ONE, kind = ReadingKind.ACTUAL)
        for (m in 0 until meters) for (k in 0 until history) engine.recordReading("t", "kwh", r(m, k))
        val s = System.nanoTime()
        for (m in 0 until meters) engine.recordReading("t", "kwh", r(m, history))
        val first = (System.nanoTime() - s) / meters
        val s2 = System.nanoTime()
        for (m in 0 until meters) engine.recordReading("t", "kwh", r(m, history)) // resent: nothing stored
        return first to (System.nanoTime() - s2) / meters
    }
    Engine.inMemory().use { readingCalls(it, 50, 3) } // warm-up
    val (memReading, memResent) = Engine.inMemory().use { readingCalls(it, 500, 10) }
    val dbFile = java.io.File.createTempFile("meterkit-bench", ".db")
    dbFile.delete()
    val (dbReading, dbResent) = Engine.open(dbFile.path).use { readingCalls(it, 200, 10) }
    val device = Engine.open(dbFile.path)
    val toQueue = device.records("t", "kwh", Instant.parse("2023-01-01T00:00:00Z"), Instant.parse("2026-01-01T00:00:00Z"), null)
    val queueNs = median(1) { device.queue(toQueue) }
    val countNs = median(5) { device.pendingCount("t") }
    val exportNs = median(3) { device.exportPending("t", 10_000) }
    device.close()
    dbFile.delete()

    fun per(ns: Long) = "%.0f".format(ns.toDouble() / N)
    fun ratio(a: Long, b: Long) = "%.2f".format(a.toDouble() / b)
    println("| measurement (Kotlin/JVM → Rust via JNA) | Kotlin | Rust side, same run | ratio |")
    println("|---|---:|---:|---:|")
    println("| empty call (`version()`), ns/call | $noop | – | – |")
    println("| one reading validation (`validateReading`, 10 readings of history), ns/call | $perCall | $rustPerCall | ${ratio(perCall, rustPerCall)} |")
    println("| 100k batch, boundary only, list of records (`countRecords`), ns/record | ${per(boundaryRecords)} | – | – |")
    println("| 100k batch, Rust only: lifted records → core records (`rustBenchConvert`), ns/record | – | ${per(rustConvert)} | – |")
    println("| 100k batch, boundary only, columns (`countColumns`), ns/record | ${per(boundaryColumns)} | – | – |")
    println("| 100k batch, boundary only, packed byte columns (`countPacked`), ns/record | ${per(boundaryPacked)} | – | – |")
    println("| 100k batch, Rust only: lifted columns → core records (`rustBenchConvertColumns`), ns/record | – | ${per(rustConvertColumns)} | – |")
    println("| 100k batch, full ingest, list of records (`Engine.ingest`), ns/record | ${per(ingestRecords)} | ${per(rustIngest)} | ${ratio(ingestRecords, rustIngest)} |")
    println("| 100k batch, full ingest, columns (`Engine.ingestColumns`), ns/record | ${per(ingestColumns)} | ${per(rustIngest)} | ${ratio(ingestColumns, rustIngest)} |")
    println("| 100k batch, full ingest, packed byte columns (`Engine.ingestPacked`), ns/record | ${per(ingestPacked)} | ${per(rustIngest)} | ${ratio(ingestPacked, rustIngest)} |")
    println("| `Engine.recordReading`, in memory, 10 stored readings, a month's interval (≈30 records), µs/call | ${memReading / 1000} | – | – |")
    println("| `Engine.recordReading` resent (nothing stored), in memory, µs/call | ${memResent / 1000} | – | – |")
    println("| `Engine.recordReading`, SQLite file, 10 stored readings, a month's interval, µs/call | ${dbReading / 1000} | – | – |")
    println("| `Engine.recordReading` resent, SQLite file, µs/call | ${dbResent / 1000} | – | – |")
    println("| `Engine.queue` of ${toQueue.size} stored records, SQLite, ms | ${queueNs / 1_000_000} | – | – |")
    println("| `Engine.pendingCount` with ${toQueue.size} pending, SQLite, µs | ${countNs / 1000} | – | – |")
    println("| `Engine.exportPending` of 10 000 of ${toQueue.size} pending records, SQLite, ms | ${exportNs / 1_000_000} | – | – |")
}
