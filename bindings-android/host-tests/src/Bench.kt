// The JVM per-call benchmark of the Kotlin SDK (scripts/mobile-bench.sh): linkLineID through
// ReproLineCore → generated Kotlin → JNA → libreproline_ffi, as an app calls it. Warm JIT,
// then N timed calls one at a time; the endpoint is down (a closed loopback port), as in
// the measurement, so only the call's own cost (validate + journal append) is timed.
//   java -Djna.library.path=target/mobile -cp host-tests.jar:jna.jar:kotlin-stdlib.jar \
//     com.repro.line.hosttests.BenchKt [CALLS]
package com.repro.line.hosttests

import com.repro.line.ReproLineCore
import com.repro.line.ffi.DeliveryListener
import com.repro.line.ffi.DeliveryReport
import com.repro.line.ffi.DeliveryState
import com.repro.line.ffi.ReproLineConfig
import java.util.Collections
import java.util.IdentityHashMap

fun main(args: Array<String>) {
    val calls = args.firstOrNull()?.toInt() ?: 100_000
    val warmup = 20_000
    val core = ReproLineCore()
    val threads = Collections.newSetFromMap(IdentityHashMap<Thread, Boolean>())
    val names = HashSet<String>()
    core.setDeliveryListener(object : DeliveryListener {
        override fun onReport(report: DeliveryReport) = seen()
        override fun onStateChange(state: DeliveryState) = seen()
        private fun seen() {
            val t = Thread.currentThread()
            synchronized(threads) {
                threads.add(t)
                names.add(t.name)
            }
        }
    })
    val down = "http://127.0.0.1:${freeClosedPort()}"
    core.setup(
        ReproLineConfig(
            sdkToken = "bench-token",
            endpoint = down,
            storageDir = tempDir().path,
            defaultChannelId = CHANNEL,
            // Bounded queue as in an app; drops beyond it reach the listener (counted above).
            maxQueueOps = 10_000u,
        ),
    )
    core.setUserID("bench-user")
    val ids = Array(1024) { lineIdFor(it) }
    repeat(warmup) { core.linkLineID(ids[it and 1023]) }
    val ns = LongArray(calls)
    for (i in 0 until calls) {
        val t0 = System.nanoTime()
        core.linkLineID(ids[i and 1023])
        ns[i] = System.nanoTime() - t0
    }
    ns.sort()
    fun pct(p: Double) = ns[((calls - 1) * p).toInt()] / 1000.0
    println("linkLineID from Kotlin: $calls calls after $warmup warm-up")
    println("  p50 %.1f µs  p90 %.1f µs  p99 %.1f µs  p99.9 %.1f µs  max %.1f µs".format(pct(0.50), pct(0.90), pct(0.99), pct(0.999), ns.last() / 1000.0))
    core.close()
    synchronized(threads) {
        println("listener: ${threads.size} Java Thread object(s), names $names")
    }
}
