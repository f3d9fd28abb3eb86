package com.repro.line.sample

import android.app.Activity
import android.os.Bundle
import android.text.InputType
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.result.contract.ActivityResultContracts
import com.linecorp.linesdk.LineApiResponseCode
import com.linecorp.linesdk.Scope
import com.linecorp.linesdk.auth.LineAuthenticationParams
import com.linecorp.linesdk.auth.LineLoginApi
import com.repro.line.ReproLine
import com.repro.line.ffi.ReproLineException

/**
 * One screen: SDK settings (endpoint field pointing at a local emulator), a user ID, a
 * "Log in with LINE" button whose ID token goes to ReproLine.linkLineIDToken (verified by the
 * endpoint), and a report log.
 */
class MainActivity : ComponentActivity() {
    private lateinit var log: TextView
    private lateinit var endpoint: EditText
    private lateinit var token: EditText
    private lateinit var loginChannel: EditText
    private lateinit var reproLineChannel: EditText
    private lateinit var userId: EditText
    private var lastLineUserId: String? = null

    private val lineLogin = registerForActivityResult(ActivityResultContracts.StartActivityForResult()) { result ->
        if (result.resultCode != Activity.RESULT_OK && result.data == null) return@registerForActivityResult
        val login = LineLoginApi.getLoginResultFromIntent(result.data)
        when (login.responseCode) {
            LineApiResponseCode.SUCCESS -> {
                // The ID token (Scope.OPENID_CONNECT), not the profile's user ID: the endpoint verifies
                // it, so nobody can link someone else's LINE account. Never log the token (or the
                // LineIdToken object: its toString prints it).
                val idToken = login.lineIdToken ?: return@registerForActivityResult show("no ID token: request Scope.OPENID_CONNECT")
                lastLineUserId = idToken.subject
                guarded("linkLineIDToken") { ReproLine.linkLineIDToken(idToken.rawString) }
            }
            LineApiResponseCode.CANCEL -> show("LINE Login cancelled")
            else -> show("LINE Login failed: ${login.errorData}")
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val s = Settings.load(this)
        val column = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL; setPadding(32, 32, 32, 32) }
        fun field(hint: String, value: String) = EditText(this).apply {
            this.hint = hint
            setText(value)
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_URI
            column.addView(this)
        }
        fun button(label: String, onClick: () -> Unit) = Button(this).apply {
            text = label
            setOnClickListener { onClick() }
            column.addView(this)
        }
        endpoint = field("endpoint", s.endpoint)
        token = field("SDK token", s.sdkToken)
        loginChannel = field("LINE Login channel ID (for LINE Login only)", s.loginChannelId)
        reproLineChannel = field("Repro's LINE channel ID (Settings > LINE Settings)", s.reproLineChannelId)
        button("Save settings and start the SDK") { startSdk() }
        userId = field("your app's user ID", ReproLine.userId ?: "user123")
        button("setUserId") { guarded("setUserId") { ReproLine.setUserId(userId.text.toString()) } }
        button("Log in with LINE → linkLineIDToken") {
            val params = LineAuthenticationParams.Builder().scopes(listOf(Scope.OPENID_CONNECT, Scope.PROFILE)).build()
            lineLogin.launch(LineLoginApi.getLoginIntent(this, loginChannel.text.toString(), params))
        }
        button("unlinkLineID") {
            val id = lastLineUserId ?: return@button show("log in with LINE first")
            guarded("unlinkLineID") { ReproLine.unlinkLineID(id) }
        }
        button("Opt out") { guarded("optIn(false)") { ReproLine.optIn(false) } }
        button("Opt in") { guarded("optIn(true)") { ReproLine.optIn(true) } }
        button("Flush") { ReproLine.flush { outcome -> show("flush: $outcome") } }
        log = TextView(this).also { column.addView(it) }
        setContentView(ScrollView(this).apply { addView(column) })

        // Reports arrive on the SDK's background thread: hop to the main thread for the UI.
        ReproLine.setDeliveryListener(onStateChange = { show("state: $it") }) { report ->
            show("report #${report.seq} ${report.call}: ${report.status}")
        }
        show(if (ReproLine.isSetUp) "SDK running, device ${ReproLine.deviceId}" else "SDK not started: calls are buffered until you start it")
    }

    override fun onDestroy() {
        ReproLine.setDeliveryListener(null) // the listener holds this activity
        super.onDestroy()
    }

    private fun startSdk() {
        val s = Settings(
            endpoint.text.toString().trim(),
            token.text.toString().trim(),
            loginChannel.text.toString().trim(),
            reproLineChannel.text.toString().trim(),
        )
        s.save(this)
        if (ReproLine.isSetUp) return show("saved; the SDK already runs, restart the app to use new settings")
        guarded("setup") {
            val refused = ReproLine.setup(this, s.sdkToken, s.endpoint, s.reproLineChannelId)
            show("SDK started, device ${ReproLine.deviceId}; ${refused.size} buffered call(s) refused")
        }
    }

    /** Validation errors are typed exceptions whose message states the rule. */
    private fun guarded(what: String, block: () -> Unit) {
        try {
            block()
            show("$what: accepted")
        } catch (e: ReproLineException) {
            show("$what: ${e.javaClass.simpleName}: ${e.message}")
        }
    }

    private fun show(line: String) {
        runOnUiThread { log.append(line + "\n") }
    }
}
