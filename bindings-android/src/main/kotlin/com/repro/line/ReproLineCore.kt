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
import com.repro.line.ffi.ReplayFailure
import com.repro.line.ffi.ReproLineSdk
import com.repro.line.ffi.maxBufferedCalls
import com.repro.line.ffi.uniffiEnsureInitialized
import com.repro.line.ffi.uniffiCallbackInterfaceDeliveryListener
import com.repro.line.ffi.uniffiCallbackInterfaceHttpTransport
import com.sun.jna.CallbackThreadInitializer
import com.sun.jna.Native
import java.io.File
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * The SDK facade. Apps use the [ReproLine] singleton; tests may create instances.
 *
 * Threading: every method may be called from any thread, including the main thread; none waits
 * for the network (each call validates its input and appends one record to a file). [flush] runs
 * on a background thread and calls back there. The delivery listener runs on the SDK's own
 * background thread.
 *
 * Calls made before [setup] are validated, kept in memory in call order (up to
 * [MAX_BUFFERED_CALLS]) and replayed by [setup]: that state lives in the Rust library
 * (`ReproLineSdk`), shared with the Swift SDK; this class keeps the Kotlin names and glue.
 */
open class ReproLineCore {
    init {
        // Loads libreproline_ffi and checks that it was built from the same API as the generated
        // Kotlin ("UniFFI API checksum mismatch" otherwise): a packaging bug fails here, loudly.
        uniffiEnsureInitialized()
    }

    private val sdk = ReproLineSdk()

    /** For [Fast]: this SDK object, kept alive for the process (one reference). */
    private val fastHandle: Long = sdk.fastHandle().toLong()

    @Volatile
    private var listener: DeliveryListener? = null

    private val flushExecutor: ExecutorService by lazy {
        Executors.newSingleThreadExecutor { r -> Thread(r, "repro-line-flush").apply { isDaemon = true } }
    }

    /** True once [setup] succeeded (and [close] was not called since). */
    val isSetUp: Boolean
        get() = sdk.isSetUp()

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
        check(!sdk.isSetUp()) { "ReproLine.setup was already called" }
        return sdk.setup(config, HttpUrlConnectionTransport(), Forwarder()).map { it.toException() }
    }

    /** `setUserID`: 1 to 191 characters, no control characters. */
    @Throws(ReproLineException::class)
    fun setUserId(userId: String) {
        val bytes = userId.toByteArray(Charsets.UTF_8)
        if (Fast.reproline_fast_set_user_id(fastHandle, bytes, bytes.size) != Fast.ACCEPTED) {
            sdk.setUserId(userId) // not accepted: the generated call throws the typed exception
        }
    }

    /** Alias of [setUserId] matching Repro's naming. */
    @Throws(ReproLineException::class)
    fun setUserID(userId: String) = setUserId(userId)

    /**
     * Links the LINE user ID (`U` + 32 letters or digits, from LINE Login's profile) to the
     * current user ID. [channelId] `null` uses the default channel given at setup.
     */
    @JvmOverloads
    @Throws(ReproLineException::class)
    fun setLineUserId(lineUserId: String, channelId: String? = null) {
        val line = lineUserId.toByteArray(Charsets.UTF_8)
        val channel = channelId?.toByteArray(Charsets.UTF_8)
        if (Fast.reproline_fast_link_line_id(fastHandle, line, line.size, channel, channel?.size ?: -1) != Fast.ACCEPTED) {
            sdk.linkLineId(lineUserId, channelId) // not accepted: the generated call throws the typed exception
        }
    }

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
        sdk.linkLineIdToken(idToken, lineChannelId)

    /** Removes the link if it belongs to the current user ID. */
    @JvmOverloads
    @Throws(ReproLineException::class)
    fun unlinkLineUserId(lineUserId: String, channelId: String? = null) =
        sdk.unlinkLineId(lineUserId, channelId)

    /** Alias of [unlinkLineUserId]. */
    @JvmOverloads
    @Throws(ReproLineException::class)
    fun unlinkLineID(lineUserId: String, channelId: String? = null) = unlinkLineUserId(lineUserId, channelId)

    /** Persisted. `false` purges the queue (reported `Dropped(OptedOut)`) and ignores later calls. */
    @Throws(ReproLineException::class)
    fun optIn(optedIn: Boolean) = sdk.optIn(optedIn)

    /** The current user ID: the stored one after setup, else the last one set before setup. */
    val userId: String?
        get() = sdk.userId()

    /** A random UUID persisted with the queue; `null` before setup. */
    val deviceId: String?
        get() = sdk.deviceId()

    /** Calls accepted but not yet reported (including calls buffered before setup). */
    val pendingOps: Long
        get() = sdk.pendingOps().toLong()

    /** Whether delivery is opted in (before setup: the last buffered [optIn], else `true`). */
    val isOptedIn: Boolean
        get() = sdk.optedIn()

    /** `setUserID`, as Java sees Repro's name for the getter. */
    fun getUserID(): String? = userId

    /** The device ID, as Java sees Repro's name for the getter. */
    fun getDeviceID(): String? = deviceId

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
        val c = sdk.client() ?: return FlushOutcome.TimedOut(pendingOps.toULong())
        return try {
            c.use { it.flush(timeoutMs.coerceAtLeast(0).toULong()) }
        } catch (e: ReproLineException) {
            System.err.println("repro-line: flush failed: ${e.message}")
            FlushOutcome.TimedOut(pendingOps.toULong())
        }
    }

    /** Uses a new SDK token and resumes delivery paused by `AuthFailed`. */
    @Throws(ReproLineException::class)
    fun setSdkToken(sdkToken: String) {
        val c = sdk.client() ?: throw IllegalStateException("call ReproLine.setup first")
        c.use { it.setSdkToken(sdkToken) }
    }

    /**
     * Flushes for up to [timeoutMs] (blocking), stops delivery and releases the native client.
     * Undelivered calls stay stored for the next [setup]. Not needed in apps (the process simply
     * ends); used by tests and by apps that switch storage.
     */
    @JvmOverloads
    fun close(timeoutMs: Long = 0): FlushOutcome? = sdk.close(timeoutMs.coerceAtLeast(0).toULong())

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

    /**
     * The hot calls through JNA direct mapping with byte arrays and an int result: the
     * generated bindings cost ~50 µs a call on the JVM (RustBuffer per string, a JNA
     * structure per call). Any failure is repeated through the generated call, which throws
     * the typed exception; nothing was accepted by the failed fast call.
     */
    private object Fast {
        const val ACCEPTED = 0

        init {
            Native.register(Fast::class.java, "reproline_ffi")
        }

        external fun reproline_fast_link_line_id(handle: Long, lineUserId: ByteArray, lineUserIdLen: Int, channelId: ByteArray?, channelLen: Int): Int

        external fun reproline_fast_set_user_id(handle: Long, userId: ByteArray, userIdLen: Int): Int
    }

    /** The exception the call would have thrown, by the Rust error kind. */
    private fun ReplayFailure.toException(): ReproLineException = when (kind) {
        "InvalidLineUserId" -> ReproLineException.InvalidLineUserId(message)
        "InvalidUserId" -> ReproLineException.InvalidUserId(message)
        "InvalidChannelId" -> ReproLineException.InvalidChannelId(message)
        "MissingChannelId" -> ReproLineException.MissingChannelId(message)
        "UserIdNotSet" -> ReproLineException.UserIdNotSet(message)
        "InvalidIdToken" -> ReproLineException.InvalidIdToken(message)
        "InvalidConfig" -> ReproLineException.InvalidConfig(message)
        "InsecureEndpoint" -> ReproLineException.InsecureEndpoint(message)
        "Storage" -> ReproLineException.Storage(message)
        "ShutDown" -> ReproLineException.ShutDown(message)
        "StateDirInUse" -> ReproLineException.StateDirInUse(message)
        "StateDirBoundToEndpoint" -> ReproLineException.StateDirBoundToEndpoint(message)
        else -> ReproLineException.Internal(message)
    }

    companion object {
        /**
         * JNA attaches the SDK's native `repro-line` thread to the JVM for each callback and by
         * default detaches it afterwards, so every report arrived on a new java.lang.Thread
         * ("Thread-1554"). Kept attached (JNA detaches it when the native thread ends) and named
         * once instead: one Thread object, named as the README says.
         */
        private val sdkThread = CallbackThreadInitializer(true, false, "repro-line")

        init {
            // JNA reads a callback's initializer when the callback is first handed to native
            // code, i.e. when the generated bindings load the library: this must come first.
            keepSdkThreadAttached()
        }

        private fun keepSdkThreadAttached() {
            listOf(
                    uniffiCallbackInterfaceDeliveryListener.`onReport`,
                    uniffiCallbackInterfaceDeliveryListener.`onStateChange`,
                    uniffiCallbackInterfaceDeliveryListener.uniffiFree,
                    uniffiCallbackInterfaceDeliveryListener.uniffiClone,
                    uniffiCallbackInterfaceHttpTransport.`send`,
                    uniffiCallbackInterfaceHttpTransport.uniffiFree,
                    uniffiCallbackInterfaceHttpTransport.uniffiClone,
            ).forEach { Native.setCallbackThreadInitializer(it, sdkThread) }
        }

        const val DEFAULT_FLUSH_TIMEOUT_MS = 10_000L
        /** Calls kept before [setup] (the Rust library's limit). */
        @JvmField
        val MAX_BUFFERED_CALLS: Int = maxBufferedCalls().toInt()
    }
}
