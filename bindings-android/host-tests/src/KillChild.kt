// The child process of the kill-and-resume host test: sets up on a state dir, makes N calls,
// prints "accepted N" and waits to be killed (SIGKILL) while the SDK thread delivers.
//   java ... com.repro.line.hosttests.KillChildKt STATE_DIR ENDPOINT TOKEN N
package com.repro.line.hosttests

import com.repro.line.ReproLineCore
import com.repro.line.ffi.ReproLineConfig
import kotlin.system.exitProcess

/** The Nth distinct LINE user ID (U + 32 hex digits). */
fun lineIdFor(n: Int): String = "U" + "%032x".format(n)

fun main(args: Array<String>) {
    if (args.size != 4) {
        System.err.println("usage: KillChildKt STATE_DIR ENDPOINT TOKEN N")
        exitProcess(2)
    }
    val (dir, endpoint, token) = args
    val n = args[3].toInt()
    val core = ReproLineCore()
    core.setup(
        ReproLineConfig(
            sdkToken = token,
            endpoint = endpoint,
            storageDir = dir,
            defaultChannelId = CHANNEL,
            debounceMs = 0uL,
            maxBatchOps = 5u,
            requestTimeoutMs = 10_000uL,
        ),
    )
    core.setUserID("kill-user")
    for (i in 0 until n) core.linkLineID(lineIdFor(i))
    println("accepted $n")
    System.out.flush()
    Thread.sleep(120_000)
    exitProcess(3) // the parent kills it long before
}
