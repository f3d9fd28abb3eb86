// The Android entry point. Everything but the Context lives in ReproLineCore.kt.
package com.repro.line

import android.content.Context
import com.repro.line.ffi.ReproLineException
import java.io.File

/**
 * The repro-line SDK for Android.
 *
 * ```kotlin
 * // Application.onCreate
 * ReproLine.setup(this, sdkToken = "YOUR_SDK_TOKEN", endpoint = "https://…", defaultChannelId = "1234567890")
 * ReproLine.setUserId("user123")
 * // after LINE Login (Scope.OPENID_CONNECT): the endpoint verifies the token
 * ReproLine.linkLineIDToken(loginResult.lineIdToken!!.rawString)
 * ```
 *
 * The queue is stored in `context.filesDir/repro-line` (app-private). Exclude that directory
 * from Auto Backup (see README): its device ID belongs to this install.
 */
object ReproLine : ReproLineCore() {
    /** Directory name under `Context.getFilesDir()` (the app's main process). */
    const val STORAGE_DIR_NAME = "repro-line"

    /** Parent of the state dirs of the app's other processes (`android:process`), one each. */
    const val PROCESS_STORAGE_DIR_NAME = "repro-line-processes"

    /**
     * Opens the queue under `context.filesDir` and replays calls made before setup. See [ReproLineCore.setup].
     * State lives in `filesDir` (never a cache dir: the OS may delete those). A second app process
     * gets its own state dir (`filesDir/repro-line-processes/<process suffix>`): one client per dir,
     * and two processes sharing one would fail with `StateDirInUse`.
     */
    @JvmStatic
    @JvmOverloads
    @Throws(ReproLineException::class)
    fun setup(
        context: Context,
        sdkToken: String,
        endpoint: String,
        defaultChannelId: String? = null,
    ): List<ReproLineException> =
        setup(storageDir(context), sdkToken, endpoint, defaultChannelId)

    /** This process's state dir (see [setup]). */
    @JvmStatic
    fun storageDir(context: Context): File {
        val app = context.applicationContext
        val process = currentProcessName()
        if (process == null || process == app.packageName) return File(app.filesDir, STORAGE_DIR_NAME)
        // "com.example:sync" → "sync"; a private name without the package → sanitized whole name.
        val suffix = process.substringAfter(':').replace(Regex("[^A-Za-z0-9._-]"), "_")
        return File(File(app.filesDir, PROCESS_STORAGE_DIR_NAME), suffix)
    }

    private fun currentProcessName(): String? =
        if (android.os.Build.VERSION.SDK_INT >= 28) {
            android.app.Application.getProcessName()
        } else {
            try {
                File("/proc/self/cmdline").readText().trimEnd('\u0000').takeIf { it.isNotEmpty() }
            } catch (e: java.io.IOException) {
                null
            }
        }
}
