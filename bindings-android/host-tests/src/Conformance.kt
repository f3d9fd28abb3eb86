// Runs conformance/scenarios.json through the generated Kotlin bindings (the same file the
// Rust test core/tests/conformance.rs runs). Format: conformance/README.md.
package com.repro.line.hosttests

import com.repro.line.ffi.CallKind
import com.repro.line.ffi.DeliveryListener
import com.repro.line.ffi.DeliveryReport
import com.repro.line.ffi.DeliveryState
import com.repro.line.ffi.DeliveryStatus
import com.repro.line.ffi.DropReason
import com.repro.line.ffi.FlushOutcome
import com.repro.line.ffi.ReproLine
import com.repro.line.ffi.ReproLineConfig
import com.repro.line.ffi.ReproLineException
import java.io.File
import java.nio.file.Files

fun statusText(s: DeliveryStatus): String = when (s) {
    is DeliveryStatus.Delivered -> "Delivered"
    is DeliveryStatus.Duplicate -> "Duplicate"
    is DeliveryStatus.Rejected -> "Rejected:${s.code}"
    is DeliveryStatus.Dropped -> "Dropped:" + when (s.reason) {
        DropReason.QUEUE_FULL -> "QueueFull"
        DropReason.EXPIRED -> "Expired"
        DropReason.MALFORMED_BATCH -> "MalformedBatch"
        DropReason.PAYLOAD_TOO_LARGE -> "PayloadTooLarge"
        DropReason.OPTED_OUT -> "OptedOut"
    }
}

fun outcomeText(o: FlushOutcome): String = when (o) {
    is FlushOutcome.Drained -> "Drained"
    is FlushOutcome.TimedOut -> "TimedOut"
    is FlushOutcome.Paused -> "Paused"
}

/** The stable error kind: the variant name. */
fun errorKind(e: ReproLineException): String = e::class.simpleName ?: "?"

/** A string value: plain, or {"repeat": S, "times": N}. */
private fun text(v: Any?): String = when (v) {
    is String -> v
    is Map<*, *> -> (v["repeat"] as String).repeat((v["times"] as Long).toInt())
    else -> fail("expected a string value, got $v")
}

private fun optText(v: Any?): String? = if (v == null) null else text(v)

/** The report's LINE user ID (a token link's is its `sub`); null for setUserId. */
fun reportLineUserId(call: CallKind): String? = when (call) {
    is CallKind.SetUserId -> null
    is CallKind.LinkLineId -> call.lineUserId
    is CallKind.UnlinkLineId -> call.lineUserId
    is CallKind.LinkLineIdToken -> call.lineUserId
}

private class Recorder : DeliveryListener {
    private val reports = ArrayList<Triple<ULong, String, String?>>()

    override fun onReport(report: DeliveryReport) {
        synchronized(reports) {
            reports.add(Triple(report.seq, statusText(report.status), reportLineUserId(report.call)))
        }
    }

    override fun onStateChange(state: DeliveryState) {}

    /** (statuses, LINE user IDs) by seq since the last take. */
    fun take(): Pair<List<String>, List<String?>> = synchronized(reports) {
        val sorted = reports.sortedBy { it.first }
        reports.clear()
        sorted.map { it.second } to sorted.map { it.third }
    }
}

/** The token of a `link_id_token` step: {literal} or {mint, forge?} (see the file's description). */
private fun idToken(emu: EmulatorAdmin, spec: Map<String, Any?>): String {
    spec["literal"]?.let { return text(it) }
    val mint = spec["mint"].obj()
    val expiresIn = (mint["expires_in_s"] as Long?) ?: 3600L
    val token = emu.mintIdToken(
        text(mint["line_user_id"]),
        text(mint["login_channel_id"]),
        System.currentTimeMillis() / 1000 + expiresIn,
    )
    return when (val forge = spec["forge"] as String?) {
        null -> token
        "signature" -> {
            val at = token.lastIndexOf('.') + 1
            token.substring(0, at) + (if (token[at] == 'A') "B" else "A") + token.substring(at + 1)
        }
        else -> fail("unknown forge $forge")
    }
}

fun runConformance(emu: EmulatorAdmin, token: String, scenariosFile: File) {
    val doc = Json.parse(scenariosFile.readText(Charsets.UTF_8)).obj()
    check(doc["format"] == 1L) { "unsupported scenario format ${doc["format"]}" }
    val defaults = doc["defaults"].obj()
    val kinds = doc["error_kinds"].list().map { it as String }.toSet()
    for (scenario in doc["scenarios"].list().map { it.obj() }) {
        val name = scenario["name"] as String
        Harness.test("conformance: $name") { runScenario(emu, token, defaults, kinds, scenario) }
    }
}

private fun runScenario(
    emu: EmulatorAdmin,
    token: String,
    defaults: Map<String, Any?>,
    kinds: Set<String>,
    scenario: Map<String, Any?>,
) {
    emu.setFaults("")
    emu.reset()
    // Identity settings outlive a reset: every scenario starts from protocol v1 behaviour.
    emu.setIdentity("any")
    emu.setLoginChannels(emptyMap())
    val opts = HashMap(defaults)
    (scenario["config"] as Map<*, *>?)?.forEach { (k, v) -> opts[k as String] = v }
    val dir: File = Files.createTempDirectory("repro-line-conformance").toFile()
    val config = ReproLineConfig(
        sdkToken = if (opts.containsKey("sdk_token")) text(opts["sdk_token"]) else token,
        endpoint = if (opts.containsKey("endpoint")) text(opts["endpoint"]) else emu.url,
        storageDir = dir.path,
        defaultChannelId = optText(opts["default_channel_id"]),
        debounceMs = (opts["debounce_ms"] as Long).toULong(),
        requestTimeoutMs = (opts["request_timeout_ms"] as Long).toULong(),
    )
    val flushTimeout = (opts["flush_timeout_ms"] as Long).toULong()

    val openError = scenario["open_error"] as String?
    if (openError != null) {
        check(openError in kinds) { "unknown error kind $openError" }
        val e = assertThrows<ReproLineException>("open") { openNative(config).close() }
        assertEq(openError, errorKind(e), "open error kind (${e.message})")
        (scenario["open_message_contains"] as String?)?.let { part ->
            check(e.message.orEmpty().contains(part)) { "open message <${e.message}> lacks <$part>" }
        }
        dir.deleteRecursively()
        return
    }

    val recorder = Recorder()
    var client = openNative(config)
    client.setDeliveryListener(recorder)
    try {
        for ((i, stepAny) in scenario["steps"].list().withIndex()) {
            val step = stepAny.obj()
            val what = step["do"] as String
            val at = "step $i ($what)"
            fun call(block: () -> Unit) {
                val want = step["error"] as String?
                if (want == null) {
                    try {
                        block()
                    } catch (e: ReproLineException) {
                        fail("$at: expected success, got ${errorKind(e)}: ${e.message}")
                    }
                    return
                }
                check(want in kinds) { "unknown error kind $want" }
                val e = assertThrows<ReproLineException>(at, block)
                assertEq(want, errorKind(e), "$at: error kind (${e.message})")
                (step["message_contains"] as String?)?.let { part ->
                    check(e.message.orEmpty().contains(part)) { "$at: message <${e.message}> lacks <$part>" }
                }
            }
            when (what) {
                "set_user_id" -> call { client.setUserId(text(step["user_id"])) }
                "link" -> call { client.setLineUserId(text(step["line_user_id"]), optText(step["channel_id"])) }
                "link_id_token" -> call {
                    client.linkLineIdToken(idToken(emu, step["token"].obj()), optText(step["channel_id"]))
                }
                "unlink" -> call { client.unlinkLineUserId(text(step["line_user_id"]), optText(step["channel_id"])) }
                "opt_in" -> call { client.setOptedIn(step["value"] as Boolean) }
                "flush" -> {
                    val outcome = client.flush(flushTimeout)
                    assertEq(step["outcome"] as String, outcomeText(outcome), "$at: outcome ($outcome)")
                    val (statuses, lines) = recorder.take()
                    assertEq(step["reports"].list().map { text(it) }, statuses, "$at: reports")
                    if (step.containsKey("report_line_user_ids")) {
                        assertEq(step["report_line_user_ids"].list().map { optText(it) }, lines, "$at: report LINE user IDs")
                    }
                }
                "expect_client" -> {
                    if (step.containsKey("user_id")) assertEq(optText(step["user_id"]), client.userId(), "$at: user_id")
                    (step["pending_ops"] as Long?)?.let { assertEq(it.toULong(), client.pendingOps(), "$at: pending_ops") }
                    (step["opted_in"] as Boolean?)?.let { assertEq(it, client.optedIn(), "$at: opted_in") }
                }
                "expect_state" -> {
                    assertEq(step["users"].list().map { text(it) }.sorted(), emu.users(), "$at: users")
                    assertEq(optText(step["device_user_id"]), emu.deviceUserId(), "$at: device user")
                    val want = step["links"].list().map {
                        val l = it.obj()
                        LinkRow(text(l["channel_id"]), text(l["line_user_id"]), optText(l["user_id"]))
                    }.sortedWith(compareBy({ it.channelId }, { it.lineUserId }))
                    assertEq(want, emu.links(), "$at: links")
                }
                "restart" -> {
                    // Drop without flush or shutdown, as when the process is killed.
                    client.close()
                    client = openNative(config)
                    client.setDeliveryListener(recorder)
                }
                "reset_emulator" -> emu.reset()
                "set_faults" -> emu.setFaults(step["spec"] as String)
                "set_identity" -> emu.setIdentity(step["mode"] as String)
                "set_login_channels" -> emu.setLoginChannels(
                    step["channels"].obj().mapValues { (_, v) -> v.list().map { it as String } },
                )
                else -> fail("$at: unknown step")
            }
        }
        val stats = emu.stats()
        assertEq(0L, stats["seq_regressions"], "seq regressions")
        assertEq(0L, stats["retry_after_violations"], "Retry-After violations")
    } finally {
        client.close()
        emu.setFaults("")
        dir.deleteRecursively()
    }
}
