// Run by ApiTests.kt in a child JVM: calls the library's deliberate panic the way an app would.
// An unwinding library raises InternalException (printed, exit 0); an aborting one (profile
// `mobile`, panic = "abort") ends this process with SIGABRT before anything is printed here.
package meterkit.tests

import meterkit.InternalException
import meterkit.panicForTests

fun main() {
    try {
        panicForTests()
        println("no panic")
    } catch (e: InternalException) {
        println("caught InternalException: ${e.message}")
    }
}
