package com.repro.line.sample

import android.app.Application
import android.content.Context
import android.util.Log
import com.repro.line.ReproLine
import com.repro.line.ffi.ReproLineException

/** Starts the SDK at launch when settings were saved before (see MainActivity). */
class SampleApp : Application() {
    override fun onCreate() {
        super.onCreate()
        val s = Settings.load(this)
        if (s.complete) {
            try {
                val refused = ReproLine.setup(this, s.sdkToken, s.endpoint, s.reproLineChannelId)
                refused.forEach { Log.w("repro-line-sample", "buffered call refused: ${it.message}") }
            } catch (e: ReproLineException) {
                Log.e("repro-line-sample", "setup failed: ${e.message}") // e.g. InsecureEndpoint
            }
        }
    }
}

/**
 * Endpoint, token and the two channel IDs, kept in SharedPreferences so they apply at the next
 * launch. `loginChannelId` is the LINE Login channel (only for logging in with the LINE SDK);
 * `reproLineChannelId` is Repro's LINE channel ID (Settings > LINE Settings > LINE Channel
 * Settings), the one the SDK sends: a link filed under the Login channel would be lost to Repro.
 */
data class Settings(
    val endpoint: String,
    val sdkToken: String,
    val loginChannelId: String,
    val reproLineChannelId: String,
) {
    val complete: Boolean
        get() = endpoint.isNotBlank() && sdkToken.isNotBlank() && loginChannelId.isNotBlank() &&
            reproLineChannelId.isNotBlank()

    fun save(context: Context) {
        context.getSharedPreferences(PREFS, Context.MODE_PRIVATE).edit()
            .putString("endpoint", endpoint).putString("token", sdkToken)
            .putString("loginChannel", loginChannelId).putString("reproLineChannel", reproLineChannelId)
            .apply()
    }

    companion object {
        private const val PREFS = "repro-line-sample"

        fun load(context: Context): Settings {
            val p = context.getSharedPreferences(PREFS, Context.MODE_PRIVATE)
            return Settings(
                // The emulator on your computer, reached through `adb reverse tcp:8080 tcp:8080`.
                endpoint = p.getString("endpoint", null) ?: "http://127.0.0.1:8080",
                sdkToken = p.getString("token", null) ?: "dev-token",
                loginChannelId = p.getString("loginChannel", null) ?: BuildConfig.LINE_LOGIN_CHANNEL_ID,
                reproLineChannelId = p.getString("reproLineChannel", null) ?: BuildConfig.REPRO_LINE_CHANNEL_ID,
            )
        }
    }
}
