// A tiny test harness (no JUnit here): named tests, assertions, a JSON reader and the
// emulator's admin routes. The last line printed is "N passed, N failed".
package com.repro.line.hosttests

import java.net.HttpURLConnection
import java.net.URI

class AssertionFailed(message: String) : Exception(message)

object Harness {
    var passed = 0
        private set
    var failed = 0
        private set
    private val failures = ArrayList<String>()
    private var filter: String? = null

    fun setFilter(f: String?) {
        filter = f?.takeIf { it.isNotBlank() }
    }

    fun test(name: String, body: () -> Unit) {
        val f = filter
        if (f != null && !name.contains(f)) return
        val start = System.nanoTime()
        try {
            body()
            passed++
            println("ok    $name (${(System.nanoTime() - start) / 1_000_000} ms)")
        } catch (t: Throwable) {
            failed++
            failures.add(name)
            println("FAIL  $name: $t")
            if (t !is AssertionFailed) t.printStackTrace(System.out)
        }
    }

    fun summary(): Int {
        if (failures.isNotEmpty()) println("failed: ${failures.joinToString(", ")}")
        println("$passed passed, $failed failed")
        return if (failed == 0 && passed > 0) 0 else 1
    }
}

fun fail(message: String): Nothing = throw AssertionFailed(message)

fun check(condition: Boolean, message: () -> String) {
    if (!condition) fail(message())
}

fun <T> assertEq(expected: T, actual: T, what: String) {
    if (expected != actual) fail("$what: expected <$expected>, got <$actual>")
}

inline fun <reified E : Throwable> assertThrows(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (t: Throwable) {
        if (t is E) return t
        fail("$what: expected ${E::class.simpleName}, got $t")
    }
    fail("$what: expected ${E::class.simpleName}, nothing was thrown")
}

/** Waits until [condition] holds or [timeoutMs] passes. */
fun eventually(what: String, timeoutMs: Long = 10_000, condition: () -> Boolean) {
    val deadline = System.currentTimeMillis() + timeoutMs
    while (!condition()) {
        if (System.currentTimeMillis() > deadline) fail("timed out waiting for $what")
        Thread.sleep(10)
    }
}

/** A minimal JSON reader: objects → Map, arrays → List, numbers → Long or Double. */
class Json private constructor(private val s: String) {
    private var i = 0

    companion object {
        fun parse(text: String): Any? {
            val p = Json(text)
            val v = p.value()
            p.ws()
            if (p.i != text.length) throw IllegalArgumentException("trailing JSON at ${p.i}")
            return v
        }
    }

    private fun ws() {
        while (i < s.length && s[i].isWhitespace()) i++
    }

    private fun value(): Any? {
        ws()
        return when (val c = s[i]) {
            '{' -> obj()
            '[' -> arr()
            '"' -> str()
            't' -> lit("true", true)
            'f' -> lit("false", false)
            'n' -> lit("null", null)
            else -> if (c == '-' || c.isDigit()) num() else throw IllegalArgumentException("bad JSON at $i: $c")
        }
    }

    private fun lit(word: String, v: Any?): Any? {
        if (!s.startsWith(word, i)) throw IllegalArgumentException("bad JSON at $i")
        i += word.length
        return v
    }

    private fun num(): Any {
        val start = i
        while (i < s.length && (s[i].isDigit() || s[i] in "+-.eE")) i++
        val t = s.substring(start, i)
        return t.toLongOrNull() ?: t.toDouble()
    }

    private fun str(): String {
        val b = StringBuilder()
        i++ // opening quote
        while (true) {
            val c = s[i++]
            when (c) {
                '"' -> return b.toString()
                '\\' -> {
                    when (val e = s[i++]) {
                        'n' -> b.append('\n')
                        't' -> b.append('\t')
                        'r' -> b.append('\r')
                        'b' -> b.append('\b')
                        'f' -> b.append('\u000C')
                        'u' -> {
                            b.append(s.substring(i, i + 4).toInt(16).toChar())
                            i += 4
                        }
                        else -> b.append(e)
                    }
                }
                else -> b.append(c)
            }
        }
    }

    private fun arr(): List<Any?> {
        val out = ArrayList<Any?>()
        i++
        ws()
        if (s[i] == ']') {
            i++
            return out
        }
        while (true) {
            out.add(value())
            ws()
            when (s[i++]) {
                ',' -> continue
                ']' -> return out
                else -> throw IllegalArgumentException("bad JSON array at ${i - 1}")
            }
        }
    }

    private fun obj(): Map<String, Any?> {
        val out = LinkedHashMap<String, Any?>()
        i++
        ws()
        if (s[i] == '}') {
            i++
            return out
        }
        while (true) {
            ws()
            val k = str()
            ws()
            if (s[i++] != ':') throw IllegalArgumentException("bad JSON object at ${i - 1}")
            out[k] = value()
            ws()
            when (s[i++]) {
                ',' -> continue
                '}' -> return out
                else -> throw IllegalArgumentException("bad JSON object at ${i - 1}")
            }
        }
    }
}

@Suppress("UNCHECKED_CAST")
fun Any?.obj(): Map<String, Any?> = this as Map<String, Any?>

@Suppress("UNCHECKED_CAST")
fun Any?.list(): List<Any?> = this as List<Any?>

data class LinkRow(val channelId: String, val lineUserId: String, val userId: String?)

/** The emulator's admin routes (docs: emulator/README.md). */
class EmulatorAdmin(val url: String) {
    private fun request(method: String, path: String, body: String? = null): String {
        val c = URI("$url$path").toURL().openConnection() as HttpURLConnection
        c.requestMethod = method
        c.connectTimeout = 5_000
        c.readTimeout = 10_000
        if (body != null) {
            c.doOutput = true
            c.outputStream.use { it.write(body.toByteArray()) }
        }
        val code = c.responseCode
        val text = (if (code < 400) c.inputStream else c.errorStream)?.use { it.readBytes().decodeToString() } ?: ""
        if (code >= 400) throw IllegalStateException("$method $path: $code $text")
        return text
    }

    fun state(): Map<String, Any?> = Json.parse(request("GET", "/admin/state")).obj()

    fun stats(): Map<String, Any?> = Json.parse(request("GET", "/admin/stats")).obj()

    fun reset() {
        request("POST", "/admin/reset")
    }

    fun setFaults(spec: String) {
        request("PUT", "/admin/faults", spec)
    }

    /** `PUT /admin/identity`: `id_token` (raw links refused 1007) or `any`. */
    fun setIdentity(mode: String) {
        request("PUT", "/admin/identity", mode)
    }

    /** `PUT /admin/line/login-channels`: Repro channel ID → LINE Login channel IDs allowed to link to it. */
    fun setLoginChannels(map: Map<String, List<String>>) {
        val body = map.entries.joinToString(",", "{", "}") { (k, v) ->
            jsonString(k) + ":" + v.joinToString(",", "[", "]") { jsonString(it) }
        }
        request("PUT", "/admin/line/login-channels", body)
    }

    /** `POST /admin/line/id-tokens`: an ES256 ID token as LINE issues it, signed with the emulator's key. */
    fun mintIdToken(lineUserId: String, loginChannelId: String, expiresAt: Long): String {
        val body = "{\"line_user_id\":${jsonString(lineUserId)},\"login_channel_id\":${jsonString(loginChannelId)},\"expires_at\":$expiresAt}"
        return Json.parse(request("POST", "/admin/line/id-tokens", body)).obj()["id_token"] as String
    }

    private fun jsonString(s: String): String =
        "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\""

    fun users(): List<String> = state()["users"].list().map { it as String }.sorted()

    fun deviceUserId(): String? = state()["devices"].list().firstOrNull()?.obj()?.get("current_user_id") as String?

    fun links(): List<LinkRow> =
        state()["links"].list().map {
            val l = it.obj()
            LinkRow(l["channel_id"] as String, l["line_user_id"] as String, l["user_id"] as String?)
        }.sortedWith(compareBy({ it.channelId }, { it.lineUserId }))
}
