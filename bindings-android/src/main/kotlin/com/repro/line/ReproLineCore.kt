// The idiomatic Kotlin facade over the generated bindings (com.repro.line.ffi).
// Plain JVM: no Android import here, so the host tests compile this same file.
// The Android part (setup from a Context) is ReproLine.kt.
package com.repro.line

import com.repro.line.ffi.DeliveryListener
import com.repro.line.ffi.DeliveryReport
import com.repro.line.ffi.DeliveryState
import com.repro.line.ffi.FlushOutcome
import com.repro.line.ffi.ReproLineConfig
import com.repro.line.ffi.ReproLineException
import com.repro.line.ffi.validateChannelId
import com.repro.line.ffi.validateLineUserId
import com.repro.line.ffi.validateIdToken
import com.repro.line.ffi.uniffiEnsureInitialized
import com.repro.line.ffi.validateUserId
import java.io.File
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import com.repro.line.ffi.ReproLine as NativeClient

/**
 * The SDK facade. Apps use the [ReproLine] singleton; tests may create instances.
 *
 * Threading: every method may be called from any thread, including the main thread; none waits
 * for the network (each call validates its input and appends one record to a file). [flush] runs
 * on a background thread and calls back there. The delivery listener runs on the SDK's own
 * background thread.
 *
 * Calls made before [setup] are validated, kept in memory in call order (up to
 * [MAX_BUFFERED_CALLS]) and replayed by [setup].
 */
open class ReproLineCore {
    init {
        // Loads libreproline_ffi and checks that it was built from the same API as the generated
        // Kotlin ("UniFFI API checksum mismatch" otherwise): a packaging bug fails here, loudly.
        uniffiEnsureInitialized()
    }

    private val lock = Any()
    private var client: NativeClient? = null
    private val buffered = ArrayList<BufferedCall>()

    @Volatile
    private var listener: DeliveryListener? = null

    private val flushExecutor: ExecutorService by lazy {
        Executors.newSingleThreadExecutor { r -> Thread(r, "repro-line-flush").apply { isDaemon = true } }
    }

    /** True once [setup] succeeded (and [close] was not called since). */
    val isSetUp: Boolean
        get() = synchronized(lock) { client != null }

    /**
     * Opens the durable queue in [storageDir] and starts delivery, then replays the calls made
     * before setup. Returns the buffered calls the SDK refused at replay (normally none; e.g.
     * `UserIdNotSet` for a link made before any user ID was ever set, or `MissingChannelId`).
     *
     * @throws ReproLineException for a bad configuration (`InsecureEndpoint`, `InvalidConfig`)
     *   or an unusable directory (`Storage`); the buffered calls are kept.
     * @throws IllegalStateException when already set up.
     */
    @JvmOverloads
    fun setup(
        storageDir: File,
        sdkToken: String,
        endpoint: String,
        defaultChannelId: String? = null,
    ): List<ReproLineException> =
        setup(ReproLineConfig(sdkToken = sdkToken, endpoint = endpoint, storageDir = storageDir.path, defaultChannelId = defaultChannelId))

    /** [setup] with every option (timeouts, debounce, queue bounds). */
    fun setup(config: ReproLineConfig): List<ReproLineException> {
        synchronized(lock) {
            check(client == null) { "ReproLine.setup was already called" }
            val created = NativeClient(config, HttpUrlConnectionTransport())
            try {
                created.setDeliveryListener(Forwarder())
            } catch (e: ReproLineException) {
                created.close()
                throw e
            }
            client = created
            val failures = ArrayList<ReproLineException>()
            for (call in buffered) {
                try {
                    call.applyTo(created)
                } catch (e: ReproLineException) {
                    failures.add(e)
                }
            }
            buffered.clear()
            return failures
        }
    }

    /** `setUserID`: 1 to 191 characters, no control characters. */
    @Throws(ReproLineException::class)
    fun setUserId(userId: String) = submit(BufferedCall.SetUserId(userId))

    /** Alias of [setUserId] matching Repro's naming. */
    @Throws(ReproLineException::class)
    fun setUserID(userId: String) = setUserId(userId)

    /**
     * Links the LINE user ID (`U` + 32 letters or digits, from LINE Login's profile) to the
     * current user ID. [channelId] `null` uses the default channel given at setup.
     */
    @JvmOverloads
    @Throws(ReproLineException::class)
    fun setLineUserId(lineUserId: String, channelId: String? = null) =
        submit(BufferedCall.Link(lineUserId, channelId))

    /** Alias of [setLineUserId]. */
    @JvmOverloads
    @Throws(ReproLineException::class)
    fun linkLineID(lineUserId: String, channelId: String? = null) = setLineUserId(lineUserId, channelId)

    /**
     * Links the LINE user ID in a LINE Login ID token (`LineLoginResult.getLineIdToken().getRawString()`,
     * with `Scope.OPENID_CONNECT`) to the current user ID, once the endpoint verifies the token.
     * This is the default way to link: [linkLineID] sends a raw ID the app only claims.
     * Checked here: a compact JWT of at most 8 KiB whose `sub` is a LINE user ID. [lineChannelId]
     * is Repro's LINE channel ID (not the LINE Login channel); `null` uses the default channel.
     * The token is a secret: it never appears in logs, errors or reports (reports carry its `sub`).
     */
    @JvmOverloads
    @Throws(ReproLineException::class)
    fun linkLineIDToken(idToken: String, lineChannelId: String? = null) =
        submit(BufferedCall.LinkIdToken(idToken, lineChannelId))

    /** Removes the link if it belongs to the current user ID. */
    @JvmOverloads
    @Throws(ReproLineException::class)
    fun unlinkLineUserId(lineUserId: String, channelId: String? = null) =
        submit(BufferedCall.Unlink(lineUserId, channelId))

    /** Alias of [unlinkLineUserId]. */
    @JvmOverloads
    @Throws(ReproLineException::class)
    fun unlinkLineID(lineUserId: String, channelId: String? = null) = unlinkLineUserId(lineUserId, channelId)

    /** Persisted. `false` purges the queue (reported `Dropped(OptedOut)`) and ignores later calls. */
    @Throws(ReproLineException::class)
    fun optIn(optedIn: Boolean) = submit(BufferedCall.OptIn(optedIn))

    /** The current user ID: the stored one after setup, else the last one set before setup. */
    val userId: String?
        get() = synchronized(lock) {
            client?.userId()
                ?: buffered.filterIsInstance<BufferedCall.SetUserId>().lastOrNull()?.userId
        }

    /** A random UUID persisted with the queue; `null` before setup. */
    val deviceId: String?
        get() = synchronized(lock) { client?.deviceId() }

    /** Calls accepted but not yet reported (including calls buffered before setup). */
    val pendingOps: Long
        get() = synchronized(lock) { client?.pendingOps()?.toLong() ?: buffered.size.toLong() }

    /** Whether delivery is opted in (before setup: the last buffered [optIn], else `true`). */
    val isOptedIn: Boolean
        get() = synchronized(lock) {
            client?.optedIn() ?: buffered.filterIsInstance<BufferedCall.OptIn>().lastOrNull()?.value ?: true
        }

    /**
     * Receives one [DeliveryReport] per call and pause/resume changes, on the SDK's background
     * thread (not the main thread). `null` removes it. Exceptions it throws are caught.
     */
    fun setDeliveryListener(listener: DeliveryListener?) {
        this.listener = listener
    }

    /** Lambda form of [setDeliveryListener]. */
    fun setDeliveryListener(
        onStateChange: (DeliveryState) -> Unit = {},
        onReport: (DeliveryReport) -> Unit,
    ) = setDeliveryListener(object : DeliveryListener {
        override fun onReport(report: DeliveryReport) = onReport(report)
        override fun onStateChange(state: DeliveryState) = onStateChange(state)
    })

    /**
     * Sends everything now and calls [callback] on a background thread ("repro-line-flush") when
     * every call is reported, delivery pauses, or [timeoutMs] passes. Before setup (or after
     * [close]) the outcome is `TimedOut` with the number of calls waiting.
     */
    @JvmOverloads
    fun flush(timeoutMs: Long = DEFAULT_FLUSH_TIMEOUT_MS, callback: (FlushOutcome) -> Unit) {
        flushExecutor.execute {
            val outcome = flushBlocking(timeoutMs)
            try {
                callback(outcome)
            } catch (t: Throwable) {
                System.err.println("repro-line: flush callback threw: $t")
            }
        }
    }

    /** Blocking [flush]: never call it on the main thread. */
    fun flushBlocking(timeoutMs: Long = DEFAULT_FLUSH_TIMEOUT_MS): FlushOutcome {
        val c = synchronized(lock) { client } ?: return FlushOutcome.TimedOut(pendingOps.toULong())
        return try {
            c.flush(timeoutMs.coerceAtLeast(0).toULong())
        } catch (e: ReproLineException) {
            System.err.println("repro-line: flush failed: ${e.message}")
            FlushOutcome.TimedOut(pendingOps.toULong())
        }
    }

    /** Uses a new SDK token and resumes delivery paused by `AuthFailed`. */
    @Throws(ReproLineException::class)
    fun setSdkToken(sdkToken: String) {
        val c = synchronized(lock) { client } ?: throw IllegalStateException("call ReproLine.setup first")
        c.setSdkToken(sdkToken)
    }

    /**
     * Flushes for up to [timeoutMs] (blocking), stops delivery and releases the native client.
     * Undelivered calls stay stored for the next [setup]. Not needed in apps (the process simply
     * ends); used by tests and by apps that switch storage.
     */
    @JvmOverloads
    fun close(timeoutMs: Long = 0): FlushOutcome? {
        val c = synchronized(lock) { client.also { client = null } } ?: return null
        return try {
            c.shutdown(timeoutMs.coerceAtLeast(0).toULong())
        } catch (e: ReproLineException) {
            null
        } finally {
            c.close()
        }
    }

    private fun submit(call: BufferedCall) {
        val c = synchronized(lock) {
            client ?: run {
                call.validate()
                if (buffered.size >= MAX_BUFFERED_CALLS) {
                    throw ReproLineException.Storage(
                        "storage error: $MAX_BUFFERED_CALLS calls are waiting for ReproLine.setup; call setup first",
                    )
                }
                buffered.add(call)
                return
            }
        }
        call.applyTo(c)
    }

    /** Forwards to the current listener; a throwing listener must not reach Rust. */
    private inner class Forwarder : DeliveryListener {
        override fun onReport(report: DeliveryReport) {
            val l = listener ?: return
            try {
                l.onReport(report)
            } catch (t: Throwable) {
                System.err.println("repro-line: delivery listener threw: $t")
            }
        }

        override fun onStateChange(state: DeliveryState) {
            val l = listener ?: return
            try {
                l.onStateChange(state)
            } catch (t: Throwable) {
                System.err.println("repro-line: delivery listener threw: $t")
            }
        }
    }

    private sealed class BufferedCall {
        abstract fun validate()
        abstract fun applyTo(c: NativeClient)

        data class SetUserId(val userId: String) : BufferedCall() {
            override fun validate() = validateUserId(userId)
            override fun applyTo(c: NativeClient) = c.setUserId(userId)
        }

        data class Link(val lineUserId: String, val channelId: String?) : BufferedCall() {
            override fun validate() {
                validateLineUserId(lineUserId)
                channelId?.let { validateChannelId(it) }
            }
            override fun applyTo(c: NativeClient) = c.setLineUserId(lineUserId, channelId)
        }

        data class Unlink(val lineUserId: String, val channelId: String?) : BufferedCall() {
            override fun validate() {
                validateLineUserId(lineUserId)
                channelId?.let { validateChannelId(it) }
            }
            override fun applyTo(c: NativeClient) = c.unlinkLineUserId(lineUserId, channelId)
        }

        /** Not a data class: its generated toString would print the token. */
        class LinkIdToken(val idToken: String, val channelId: String?) : BufferedCall() {
            override fun validate() {
                validateIdToken(idToken)
                channelId?.let { validateChannelId(it) }
            }
            override fun applyTo(c: NativeClient) = c.linkLineIdToken(idToken, channelId)
            override fun toString() = "LinkIdToken(<redacted>, $channelId)"
        }

        data class OptIn(val value: Boolean) : BufferedCall() {
            override fun validate() = Unit
            override fun applyTo(c: NativeClient) = c.setOptedIn(value)
        }
    }

    companion object {
        const val DEFAULT_FLUSH_TIMEOUT_MS = 10_000L
        const val MAX_BUFFERED_CALLS = 1_000
    }
}
