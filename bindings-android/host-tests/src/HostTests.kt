// Host tests for the Android bindings: the generated Kotlin + ReproLineCore.kt on the desktop
// JVM, calling the host libreproline_ffi.so through JNA, against the emulator over loopback.
//
//   REPRO_LINE_EMULATOR_URL=http://127.0.0.1:PORT REPRO_LINE_TOKEN=T \
//   REPRO_LINE_SCENARIOS=conformance/scenarios.json java -Djna.library.path=target/debug ... MainKt
//
// scripts/mobile-test.sh does all of that.
package com.repro.line.hosttests

import com.repro.line.HttpUrlConnectionTransport
import com.repro.line.ReproLineCore
import com.repro.line.ffi.DeliveryListener
import com.repro.line.ffi.DeliveryReport
import com.repro.line.ffi.DeliveryState
import com.repro.line.ffi.DeliveryStatus
import com.repro.line.ffi.DropReason
import com.repro.line.ffi.FlushOutcome
import com.repro.line.ffi.CallKind
import com.repro.line.ffi.PauseReason
import com.repro.line.ffi.ReproLine
import com.repro.line.ffi.ReproLineConfig
import com.repro.line.ffi.ReproLineException
import com.repro.line.ffi.debugPanicForTests
import com.repro.line.ffi.sdkVersion
import com.repro.line.ffi.uniffiEnsureInitialized
import com.repro.line.ffi.validateUserId
import java.io.File
import java.net.ServerSocket
import java.nio.file.Files
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicReference
import kotlin.system.exitProcess

const val L1 = "U4af4980629a1b2c3d4e5f60718293a4b"
const val L2 = "U0123456789abcdef0123456789abcdef"
const val CHANNEL = "1234567890"

lateinit var emu: EmulatorAdmin
lateinit var token: String

/** The generated client with the SDK's own transport (HttpURLConnection), as ReproLineCore opens it. */
fun openNative(cfg: ReproLineConfig): ReproLine = ReproLine(cfg, HttpUrlConnectionTransport())

fun tempDir(): File = Files.createTempDirectory("repro-line-host").toFile()

fun config(dir: File, endpoint: String = emu.url, channel: String? = CHANNEL, debounceMs: Long = 20) =
    ReproLineConfig(
        sdkToken = token,
        endpoint = endpoint,
        storageDir = dir.path,
        defaultChannelId = channel,
        debounceMs = debounceMs.toULong(),
        requestTimeoutMs = 5_000uL,
    )

/** Records every callback with the thread it ran on. */
class Recording : DeliveryListener {
    val reports = ArrayList<Pair<DeliveryReport, Thread>>()
    val states = ArrayList<Pair<DeliveryState, Thread>>()

    override fun onReport(report: DeliveryReport) {
        synchronized(this) { reports.add(report to Thread.currentThread()) }
    }

    override fun onStateChange(state: DeliveryState) {
        synchronized(this) { states.add(state to Thread.currentThread()) }
    }

    fun statuses(): List<String> = synchronized(this) { reports.sortedBy { it.first.seq }.map { statusText(it.first.status) } }

    fun threads(): List<Thread> = synchronized(this) { reports.map { it.second } + states.map { it.second } }

    fun stateList(): List<DeliveryState> = synchronized(this) { states.map { it.first } }
}

/** The facade's callback-style flush, waited for. */
fun flushAndWait(core: ReproLineCore, timeoutMs: Long = 15_000): Pair<FlushOutcome, Thread> {
    val latch = CountDownLatch(1)
    val result = AtomicReference<Pair<FlushOutcome, Thread>>()
    core.flush(timeoutMs) { outcome ->
        result.set(outcome to Thread.currentThread())
        latch.countDown()
    }
    check(latch.await(timeoutMs + 5_000, TimeUnit.MILLISECONDS)) { "flush callback never came" }
    return result.get()
}

fun freeClosedPort(): Int = ServerSocket(0).use { it.localPort }

fun main(args: Array<String>) {
    emu = EmulatorAdmin(System.getenv("REPRO_LINE_EMULATOR_URL") ?: run { System.err.println("set REPRO_LINE_EMULATOR_URL"); exitProcess(2) })
    token = System.getenv("REPRO_LINE_TOKEN") ?: "test-token"
    val scenarios = File(System.getenv("REPRO_LINE_SCENARIOS") ?: "conformance/scenarios.json")
    Harness.setFilter(args.firstOrNull() ?: System.getenv("REPRO_LINE_TEST_FILTER"))
    // The generated Kotlin checks the library's API checksums only when asked: a stale
    // libreproline_ffi must fail the run, not pass by luck.
    // ReproLineCore first, as in an app: it sets up the SDK thread's JNA attachment before
    // the bindings load the library (see ReproLineCore.keepSdkThreadAttached).
    check(ReproLineCore.MAX_BUFFERED_CALLS == 1_000) { "MAX_BUFFERED_CALLS" }
    uniffiEnsureInitialized()
    println("repro-line-ffi ${sdkVersion()}, emulator ${emu.url}")

    Harness.test("delivery end to end through the facade") {
        emu.reset()
        val core = ReproLineCore()
        val rec = Recording()
        core.setDeliveryListener(rec)
        val failures = core.setup(tempDir(), token, emu.url, CHANNEL)
        assertEq(emptyList<ReproLineException>(), failures, "replay failures")
        core.setUserID("user123")
        core.linkLineID(L1)
        assertEq("user123", core.userId, "userId")
        val (outcome, _) = flushAndWait(core)
        assertEq<FlushOutcome>(FlushOutcome.Drained, outcome, "flush outcome")
        assertEq(listOf(LinkRow(CHANNEL, L1, "user123")), emu.links(), "emulator links")
        val state = emu.state()
        val link = state["links"].list().single().obj()
        assertEq("deliverable", link["status"], "link status")
        val device = state["devices"].list().single().obj()
        assertEq(core.deviceId, device["device_id"], "device id reaches the endpoint")
        assertEq(listOf("Delivered", "Delivered"), rec.statuses(), "reports")
        val ops = synchronized(rec) { rec.reports.sortedBy { it.first.seq }.map { it.first.call } }
        assertEq<CallKind>(CallKind.SetUserId("user123"), ops[0], "first operation")
        assertEq<CallKind>(CallKind.LinkLineId("user123", L1, CHANNEL), ops[1], "second operation")
        core.close()
    }

    Harness.test("each validation error is a typed exception carrying the rule") {
        val core = ReproLineCore()
        core.setup(tempDir(), token, emu.url, CHANNEL)
        val notSet = assertThrows<ReproLineException.UserIdNotSet>("link before setUserId") { core.linkLineID(L1) }
        check(notSet.message!!.contains("call set_user_id before linking")) { notSet.message!! }
        val empty = assertThrows<ReproLineException.InvalidUserId>("empty user") { core.setUserId("") }
        check(empty.message!!.contains("a user ID is 1 to 191 characters")) { empty.message!! }
        val long = assertThrows<ReproLineException.InvalidUserId>("192 chars") { core.setUserId("あ".repeat(192)) }
        check(long.message!!.contains("it has 192 characters")) { long.message!! }
        val control = assertThrows<ReproLineException.InvalidUserId>("control") { core.setUserId("a\u0000b") }
        check(control.message!!.contains("control character")) { control.message!! }
        core.setUserId("あ".repeat(191))
        for (bad in listOf("", "U", L1.lowercase(), L1.dropLast(1), L1 + "0", L1.replace('4', '-'), "Ｕ" + L1.drop(1))) {
            val e = assertThrows<ReproLineException.InvalidLineUserId>("LINE ID <$bad>") { core.setLineUserId(bad) }
            check(e.message!!.contains("a LINE user ID is U followed by 32 ASCII letters or digits")) { e.message!! }
        }
        val channel = assertThrows<ReproLineException.InvalidChannelId>("channel") { core.linkLineID(L1, "12 34") }
        check(channel.message!!.contains("a channel ID is 1 to 64 ASCII letters or digits")) { channel.message!! }
        assertThrows<ReproLineException.InvalidChannelId>("unlink channel") { core.unlinkLineID(L1, "x".repeat(65)) }
        assertEq(1L, core.pendingOps, "only the valid call is queued")
        core.close()

        val noDefault = ReproLineCore()
        noDefault.setup(tempDir(), token, emu.url, null)
        noDefault.setUserId("u")
        val missing = assertThrows<ReproLineException.MissingChannelId>("no channel") { noDefault.linkLineID(L1) }
        check(missing.message!!.contains("pass one or set Config.default_channel_id")) { missing.message!! }
        noDefault.close()

        val insecure = assertThrows<ReproLineException.InsecureEndpoint>("http endpoint") {
            ReproLineCore().setup(tempDir(), token, "http://repro.example.com", CHANNEL)
        }
        check(insecure.message!!.contains("must use https unless its host is loopback")) { insecure.message!! }
        val badConfig = assertThrows<ReproLineException.InvalidConfig>("blank token") {
            ReproLineCore().setup(tempDir(), " ", emu.url, CHANNEL)
        }
        check(badConfig.message!!.contains("sdk_token is empty")) { badConfig.message!! }
        val batch = assertThrows<ReproLineException.InvalidConfig>("max batch") {
            openNative(config(tempDir()).copy(maxBatchOps = 0u)).close()
        }
        check(batch.message!!.contains("it must be 1 to 100")) { batch.message!! }
        val notADir = File.createTempFile("repro-line", ".file")
        assertThrows<ReproLineException.Storage>("storage dir is a file") {
            openNative(config(notADir)).close()
        }

        val raw = openNative(config(tempDir()))
        raw.shutdown(0uL)
        val down = assertThrows<ReproLineException.ShutDown>("after shutdown") { raw.setUserId("u") }
        check(down.message!!.contains("shut down")) { down.message!! }
        raw.close()
        assertThrows<IllegalStateException>("setup twice") {
            val twice = ReproLineCore()
            twice.setup(tempDir(), token, emu.url)
            try {
                twice.setup(tempDir(), token, emu.url)
            } finally {
                twice.close()
            }
        }
    }

    Harness.test("listener callbacks arrive on a background thread, not the caller's") {
        emu.reset()
        val testThread = Thread.currentThread()
        val core = ReproLineCore()
        val rec = Recording()
        core.setDeliveryListener(rec)
        core.setup(tempDir(), token, emu.url, CHANNEL)
        core.setUserId("u1")
        core.linkLineID(L1)
        eventually("two reports without flush") { rec.statuses().size == 2 }
        val (_, flushThread) = flushAndWait(core)
        check(flushThread != testThread) { "flush callback ran on the test thread" }
        assertEq("repro-line-flush", flushThread.name, "flush callback thread")
        core.setUserId("u2")
        core.linkLineID(L2)
        eventually("four reports") { rec.statuses().size == 4 }
        val threads = rec.threads()
        check(threads.isNotEmpty() && threads.none { it == testThread || it == flushThread }) {
            "listener ran on ${threads.map { it.name }}"
        }
        // One SDK thread, attached to the JVM once: not a new java.lang.Thread per callback.
        val distinct = threads.distinctBy { System.identityHashCode(it) }
        assertEq(1, distinct.size, "Java Thread objects the listener ran on (${threads.map { it.name }})")
        assertEq("repro-line", distinct.single().name, "listener thread name")
        core.close()
    }

    Harness.test("a bad token pauses (state callback), a new token resumes and delivers") {
        emu.reset()
        val rec = Recording()
        val client = openNative(config(tempDir()).copy(sdkToken = "wrong-token"))
        client.setDeliveryListener(rec)
        client.setUserId("u1")
        val paused = client.flush(10_000uL)
        assertEq<FlushOutcome>(FlushOutcome.Paused(PauseReason.AUTH_FAILED, 1uL), paused, "flush while paused")
        eventually("paused callback") { rec.stateList().isNotEmpty() }
        assertEq<DeliveryState>(DeliveryState.Paused(PauseReason.AUTH_FAILED), rec.stateList()[0], "state")
        client.setSdkToken(token)
        assertEq<FlushOutcome>(FlushOutcome.Drained, client.flush(10_000uL), "flush after new token")
        assertEq(listOf("Delivered"), rec.statuses(), "reports")
        check(rec.stateList().contains(DeliveryState.Resumed)) { "no Resumed: ${rec.stateList()}" }
        assertEq(listOf("u1"), emu.users(), "users")
        client.close()
    }

    Harness.test("a listener that throws does not crash the process; delivery goes on") {
        emu.reset()
        val calls = java.util.concurrent.atomic.AtomicInteger()
        val client = openNative(config(tempDir()))
        client.setDeliveryListener(object : DeliveryListener {
            override fun onReport(report: DeliveryReport) {
                calls.incrementAndGet()
                throw IllegalStateException("listener bug")
            }
            override fun onStateChange(state: DeliveryState) = throw IllegalStateException("listener bug")
        })
        client.setUserId("u1")
        client.setLineUserId(L1)
        assertEq<FlushOutcome>(FlushOutcome.Drained, client.flush(10_000uL), "flush")
        client.setUserId("u2")
        assertEq<FlushOutcome>(FlushOutcome.Drained, client.flush(10_000uL), "second flush")
        assertEq(3, calls.get(), "listener called for every report")
        assertEq(listOf("u1", "u2"), emu.users(), "users")
        client.close()
    }

    Harness.test("durability: calls queued while the endpoint refuses survive close and reopen") {
        emu.reset()
        val dir = tempDir()
        // Refused connections (reset before reading); the same endpoint throughout, since
        // a storage dir's queued calls are never sent to another endpoint.
        emu.setFaults("reset_before=1.0")
        val first = ReproLineCore()
        first.setup(config(dir))
        first.setUserId("durable-user")
        first.linkLineID(L1)
        val outcome = first.flushBlocking(1_500)
        assertEq<FlushOutcome>(FlushOutcome.TimedOut(2uL), outcome, "flush while every request is refused")
        val deviceId = first.deviceId
        first.close()
        emu.setFaults("")
        assertEq(emptyList<String>(), emu.users(), "nothing reached the emulator")

        val second = ReproLineCore()
        val rec = Recording()
        second.setDeliveryListener(rec)
        second.setup(config(dir))
        assertEq(2L, second.pendingOps, "pending after reopen")
        assertEq("durable-user", second.userId, "user ID after reopen")
        assertEq(deviceId, second.deviceId, "device ID after reopen")
        assertEq<FlushOutcome>(FlushOutcome.Drained, flushAndWait(second).first, "flush after reopen")
        assertEq(listOf("Delivered", "Delivered"), rec.statuses(), "reports after reopen")
        assertEq(listOf(LinkRow(CHANNEL, L1, "durable-user")), emu.links(), "links")
        assertEq(0L, emu.stats()["seq_regressions"], "seq regressions")
        second.close()
    }

    Harness.test("durability: a 503 endpoint, then a restart, then delivery") {
        emu.reset()
        emu.setFaults("503=1.0,retry_after=1")
        try {
            val dir = tempDir()
            val first = openNative(config(dir))
            first.setUserId("u503")
            assertEq("TimedOut", outcomeText(first.flush(1_500uL)), "flush while 503")
            first.close()
            emu.setFaults("")
            val second = openNative(config(dir))
            assertEq<FlushOutcome>(FlushOutcome.Drained, second.flush(10_000uL), "flush after restart")
            assertEq(listOf("u503"), emu.users(), "users")
            second.close()
        } finally {
            emu.setFaults("")
        }
    }

    Harness.test("opt-out purges the queue, later calls are ignored, opt-in resumes") {
        emu.reset()
        val rec = Recording()
        val core = ReproLineCore()
        core.setDeliveryListener(rec)
        core.setup(config(tempDir(), debounceMs = 60_000))
        core.setUserId("u1")
        core.linkLineID(L1)
        assertEq(2L, core.pendingOps, "queued")
        core.optIn(false)
        assertEq(false, core.isOptedIn, "opted out")
        assertEq(0L, core.pendingOps, "purged")
        eventually("purge reports") { rec.statuses().size == 2 }
        assertEq(listOf("Dropped:OptedOut", "Dropped:OptedOut"), rec.statuses(), "reports")
        val dropped = synchronized(rec) { rec.reports.map { it.first.status } }
        check(dropped.all { it == DeliveryStatus.Dropped(DropReason.OPTED_OUT) }) { "$dropped" }
        core.setUserId("ignored")
        assertEq(0L, core.pendingOps, "ignored while opted out")
        assertEq<FlushOutcome>(FlushOutcome.Drained, flushAndWait(core).first, "flush")
        assertEq(emptyList<String>(), emu.users(), "nothing delivered")
        core.optIn(true)
        core.setUserId("u2")
        assertEq<FlushOutcome>(FlushOutcome.Drained, flushAndWait(core).first, "flush after opt-in")
        assertEq(listOf("u2"), emu.users(), "delivered after opt-in")
        core.close()
    }

    Harness.test("calls before setup are buffered in order and replayed at setup") {
        emu.reset()
        val core = ReproLineCore()
        core.setUserId("first")
        core.linkLineID(L1)
        core.setUserId("second")
        core.setLineUserId(L2, "555")
        val bad = assertThrows<ReproLineException.InvalidLineUserId>("invalid before setup") { core.linkLineID("nope") }
        check(bad.message!!.contains("U followed by 32 ASCII letters or digits")) { bad.message!! }
        assertThrows<ReproLineException.InvalidUserId>("invalid user before setup") { core.setUserId("") }
        assertEq(false, core.isSetUp, "not set up")
        assertEq("second", core.userId, "userId before setup")
        assertEq(null, core.deviceId, "deviceId before setup")
        assertEq(4L, core.pendingOps, "buffered")
        assertEq<FlushOutcome>(FlushOutcome.TimedOut(4uL), flushAndWait(core).first, "flush before setup")
        val rec = Recording()
        core.setDeliveryListener(rec)
        assertEq(emptyList<ReproLineException>(), core.setup(tempDir(), token, emu.url, CHANNEL), "replay failures")
        assertEq<FlushOutcome>(FlushOutcome.Drained, flushAndWait(core).first, "flush")
        assertEq(listOf("Delivered", "Delivered", "Delivered", "Delivered"), rec.statuses(), "reports")
        val ops = synchronized(rec) { rec.reports.sortedBy { it.first.seq }.map { it.first.call } }
        assertEq<List<CallKind>>(
            listOf(
                CallKind.SetUserId("first"),
                CallKind.LinkLineId("first", L1, CHANNEL),
                CallKind.SetUserId("second"),
                CallKind.LinkLineId("second", L2, "555"),
            ),
            ops,
            "replayed in call order",
        )
        assertEq(listOf(LinkRow(CHANNEL, L1, "first"), LinkRow("555", L2, "second")), emu.links(), "links")
        assertEq("second", emu.deviceUserId(), "device user")
        core.close()

        val orphan = ReproLineCore()
        orphan.linkLineID(L1)
        orphan.setUserId("later")
        val failures = orphan.setup(tempDir(), token, emu.url, CHANNEL)
        assertEq(1, failures.size, "one buffered call refused at replay")
        check(failures[0] is ReproLineException.UserIdNotSet) { "${failures[0]}" }
        assertEq("later", orphan.userId, "later calls still replayed")
        orphan.close()
    }

    Harness.test("linkLineIDToken: buffered before setup, verified by the endpoint, reported with its sub") {
        emu.reset()
        emu.setIdentity("id_token")
        emu.setLoginChannels(mapOf(CHANNEL to listOf("1650000000")))
        try {
            val now = System.currentTimeMillis() / 1000
            val good = emu.mintIdToken(L1, "1650000000", now + 3600)
            val wrongAud = emu.mintIdToken(L2, "1659999999", now + 3600)
            val core = ReproLineCore()
            core.setUserId("user123")
            core.linkLineIDToken(good)
            val bad = assertThrows<ReproLineException.InvalidIdToken>("not a JWT") { core.linkLineIDToken("a.b") }
            check(bad.message!!.contains("compact JWT")) { bad.message!! }
            check(!bad.message!!.contains(good.substring(0, 20))) { "token in ${bad.message}" }
            val rec = Recording()
            core.setDeliveryListener(rec)
            assertEq(emptyList<ReproLineException>(), core.setup(tempDir(), token, emu.url, CHANNEL), "replay failures")
            core.linkLineIDToken(wrongAud)
            core.linkLineID(L2) // raw: refused where ID tokens are required
            assertEq<FlushOutcome>(FlushOutcome.Drained, flushAndWait(core).first, "flush")
            assertEq(listOf("Delivered", "Delivered", "Rejected:1008", "Rejected:1007"), rec.statuses(), "reports")
            val ops = synchronized(rec) { rec.reports.sortedBy { it.first.seq }.map { it.first.call } }
            assertEq<CallKind>(CallKind.LinkLineIdToken("user123", L1, CHANNEL), ops[1], "reported with the token's sub")
            assertEq(listOf(LinkRow(CHANNEL, L1, "user123")), emu.links(), "only the verified link")
            core.close()
        } finally {
            emu.setIdentity("any")
            emu.setLoginChannels(emptyMap())
        }
    }

    Harness.test("one client per storage dir: a second one gets StateDirInUse, nothing is lost") {
        emu.reset()
        val dir = tempDir()
        val first = openNative(config(dir, debounceMs = 60_000))
        first.setUserId("lock-user")
        val e = assertThrows<ReproLineException.StateDirInUse>("second client on the same dir") {
            openNative(config(dir)).close()
        }
        check(e.message!!.contains(dir.path) && e.message!!.contains("pid ${ProcessHandle.current().pid()}")) { e.message!! }
        first.setLineUserId(L1, null)
        first.close()
        val second = openNative(config(dir))
        assertEq(2uL, second.pendingOps(), "the first client's calls, once")
        assertEq<FlushOutcome>(FlushOutcome.Drained, second.flush(10_000uL), "flush by the next owner")
        assertEq(listOf(LinkRow(CHANNEL, L1, "lock-user")), emu.links(), "links")
        assertEq(2L, emu.stats()["ops_applied"], "each call applied once")
        second.close()
    }

    Harness.test("a Rust panic surfaces as ReproLineException.Internal, not a crash") {
        val e = assertThrows<ReproLineException.Internal>("debugPanicForTests") { debugPanicForTests("boom from the test") }
        check(e.message!!.contains("panicked: boom from the test")) { e.message!! }
        assertThrows<ReproLineException.Internal>("second panic") { debugPanicForTests("again") }
        validateUserId("still-works")
        val client = openNative(config(tempDir()))
        client.setUserId("after-panic")
        client.close()
    }

    Harness.test("HttpURLConnection transport: a request past its timeout is retried, delivered once") {
        emu.reset()
        // Every answer comes after the client's 400 ms timeout until the faults are cleared.
        emu.setFaults("latency_ms=1500")
        val client = openNative(config(tempDir()).copy(requestTimeoutMs = 400uL))
        try {
            val rec = Recording()
            client.setDeliveryListener(rec)
            client.setUserId("slow-user")
            assertEq("TimedOut", outcomeText(client.flush(1_200uL)), "flush while every request times out")
            emu.setFaults("")
            assertEq<FlushOutcome>(FlushOutcome.Drained, client.flush(15_000uL), "flush after the endpoint recovers")
            val statuses = rec.statuses()
            assertEq(1, statuses.size, "one report")
            check(statuses[0] == "Delivered" || statuses[0] == "Duplicate") { "report $statuses" }
            assertEq(listOf("slow-user"), emu.users(), "users")
        } finally {
            client.close()
            emu.setFaults("")
            // Requests the client gave up on still finish in the emulator: let them, before the next reset.
            Thread.sleep(2_000)
        }
    }

    Harness.test("kill and resume: a process killed mid-delivery loses and doubles nothing") {
        emu.reset()
        // Slow batches of 5: the kill lands while a request is in flight and others are queued.
        emu.setFaults("latency_ms=150")
        val dir = tempDir()
        val n = 40
        val java = ProcessHandle.current().info().command().orElse("java")
        val child = ProcessBuilder(
            java,
            "-Djna.library.path=" + System.getProperty("jna.library.path"),
            "-cp", System.getProperty("java.class.path"),
            "com.repro.line.hosttests.KillChildKt", dir.path, emu.url, token, n.toString(),
        ).redirectError(ProcessBuilder.Redirect.INHERIT).start()
        try {
            val line = child.inputStream.bufferedReader().readLine()
            assertEq("accepted $n", line, "child output")
            eventually("some batches applied before the kill") { (emu.stats()["ops_applied"] as Long) >= 6 }
            child.destroyForcibly() // SIGKILL: no shutdown hook, no flush
            check(child.waitFor(10, TimeUnit.SECONDS)) { "child did not die" }
            val applied = emu.stats()["ops_applied"] as Long
            check(applied < n + 1) { "everything was delivered before the kill ($applied); the test proves nothing" }
            emu.setFaults("")

            val resumed = ReproLineCore()
            val rec = Recording()
            resumed.setDeliveryListener(rec)
            resumed.setup(config(dir))
            check(resumed.pendingOps > 0) { "nothing left to resume" }
            assertEq<FlushOutcome>(FlushOutcome.Drained, flushAndWait(resumed).first, "flush after restart")
            val stats = emu.stats()
            assertEq((n + 1).toLong(), stats["ops_applied"], "each call applied exactly once")
            assertEq(0L, stats["seq_regressions"], "seq regressions")
            val links = emu.links()
            assertEq((0 until n).map { LinkRow(CHANNEL, lineIdFor(it), "kill-user") }.sortedBy { it.lineUserId }, links, "links")
            resumed.close()
        } finally {
            child.destroyForcibly()
            emu.setFaults("")
        }
    }

    runConformance(emu, token, scenarios)

    exitProcess(Harness.summary())
}
