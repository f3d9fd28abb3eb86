// The SDK's HTTP on Android (and the host JVM): the platform's HttpURLConnection, so the
// device's trust store, the app's network security config and the system proxy apply, and
// the native library carries no HTTP or TLS code. Plain JVM: the host tests use this file.
package com.repro.line

import com.repro.line.ffi.HttpOutcome
import com.repro.line.ffi.HttpRequest
import com.repro.line.ffi.HttpTransport
import java.io.IOException
import java.io.InputStream
import java.net.ConnectException
import java.net.HttpURLConnection
import java.net.SocketTimeoutException
import java.net.URI
import java.net.UnknownHostException
import javax.net.ssl.SSLException

/**
 * Sends the SDK's batch requests. The native library calls [send] on its own `repro-line`
 * thread, one request at a time, and maps the [HttpOutcome] to its retry policy. Never throws:
 * every failure is an outcome (messages never include headers, so the SDK token stays out).
 */
class HttpUrlConnectionTransport : HttpTransport {
    override fun send(request: HttpRequest): HttpOutcome {
        val timeoutMs = request.timeoutMs.coerceAtLeast(1)
        val deadline = System.nanoTime() + timeoutMs * 1_000_000L
        var conn: HttpURLConnection? = null
        return try {
            conn = URI(request.url).toURL().openConnection() as HttpURLConnection
            conn.requestMethod = "POST"
            // A redirect means a wrong endpoint URL: the engine reports the 3xx instead of following it.
            conn.instanceFollowRedirects = false
            conn.useCaches = false
            conn.connectTimeout = minOf(timeoutMs, CONNECT_TIMEOUT_MS)
            conn.readTimeout = timeoutMs
            conn.doOutput = true
            conn.setFixedLengthStreamingMode(request.body.size)
            for ((name, value) in request.headers) conn.setRequestProperty(name, value)
            conn.outputStream.use { it.write(request.body) }
            val status = conn.responseCode
            if (status !in 100..599) return HttpOutcome.NetworkError("network: not an HTTP response from ${request.url}")
            val retryAfter = conn.getHeaderField("Retry-After")
            val stream: InputStream? = if (status >= 400) conn.errorStream else conn.inputStream
            val body = stream?.use { readAtMost(it, deadline) } ?: ByteArray(0)
            // Body read to the end and closed: the socket goes back to the keep-alive pool.
            HttpOutcome.Response(status.toUShort(), retryAfter, body)
        } catch (e: SocketTimeoutException) {
            conn?.disconnect()
            HttpOutcome.Timeout("timeout: no complete response within $timeoutMs ms from ${request.url}")
        } catch (e: UnknownHostException) {
            conn?.disconnect()
            HttpOutcome.NetworkError("DNS: cannot resolve ${e.message}")
        } catch (e: SSLException) {
            conn?.disconnect()
            HttpOutcome.NetworkError("TLS handshake failed: $e")
        } catch (e: ConnectException) {
            conn?.disconnect()
            HttpOutcome.NetworkError("connect: $e (${request.url})")
        } catch (e: IOException) {
            conn?.disconnect()
            HttpOutcome.NetworkError("network: $e (${request.url})")
        } catch (t: Throwable) {
            // Never let an exception reach the native thread.
            conn?.disconnect()
            HttpOutcome.NetworkError("network: unexpected $t")
        }
    }

    /** Reads at most [MAX_RESPONSE_BYTES] (the SDK ignores the rest) before [deadline]. */
    private fun readAtMost(input: InputStream, deadline: Long): ByteArray {
        val out = java.io.ByteArrayOutputStream()
        val buf = ByteArray(8 * 1024)
        while (out.size() < MAX_RESPONSE_BYTES) {
            if (System.nanoTime() > deadline) throw SocketTimeoutException("response body too slow")
            val n = input.read(buf, 0, minOf(buf.size, MAX_RESPONSE_BYTES - out.size()))
            if (n < 0) break
            out.write(buf, 0, n)
        }
        return out.toByteArray()
    }

    companion object {
        /** TCP + TLS set-up; the request's own timeout bounds the rest (as in the Rust transport). */
        const val CONNECT_TIMEOUT_MS = 10_000
        const val MAX_RESPONSE_BYTES = 1024 * 1024
    }
}
