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
    /** Directory name under `Context.getFilesDir()`. */
    const val STORAGE_DIR_NAME = "repro-line"

    /** Opens the queue under `context.filesDir` and replays calls made before setup. See [ReproLineCore.setup]. */
    @JvmStatic
    @JvmOverloads
    @Throws(ReproLineException::class)
    fun setup(
        context: Context,
        sdkToken: String,
        endpoint: String,
        defaultChannelId: String? = null,
    ): List<ReproLineException> =
        setup(File(context.applicationContext.filesDir, STORAGE_DIR_NAME), sdkToken, endpoint, defaultChannelId)
}
