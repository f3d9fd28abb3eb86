import Foundation
import LineSDK
import ReproLine

/// Settings (endpoint field pointing at a local emulator), the SDK calls, and a report log.
@MainActor
final class SampleModel: ObservableObject {
    /// For LINE Login only (the LINE SDK's `LoginManager`).
    static let lineLoginChannelID = Bundle.main.object(forInfoDictionaryKey: "LineLoginChannelID") as? String ?? ""
    /// Repro's LINE channel ID (Settings > LINE Settings > LINE Channel Settings): what repro-line sends.
    static let reproLineChannelID = Bundle.main.object(forInfoDictionaryKey: "ReproLineChannelID") as? String ?? ""

    @Published var endpoint = UserDefaults.standard.string(forKey: "endpoint") ?? "http://127.0.0.1:8080"
    @Published var token = UserDefaults.standard.string(forKey: "token") ?? "dev-token"
    @Published var userID = "user123"
    @Published private(set) var log: [String] = []
    @Published private(set) var started = false
    private var lineUserID: String?

    init() {
        // Reports arrive on the SDK's background thread: hop to the main actor for the UI.
        ReproLine.onReport = { [weak self] report in
            Task { @MainActor in self?.append("report #\(report.seq): \(report.status)") }
        }
        ReproLine.client.onStateChange = { [weak self] state in
            Task { @MainActor in self?.append("state: \(state)") }
        }
        if UserDefaults.standard.string(forKey: "endpoint") != nil {
            start() // started before: start at every launch
        }
    }

    func start() {
        UserDefaults.standard.set(endpoint, forKey: "endpoint")
        UserDefaults.standard.set(token, forKey: "token")
        guard !started else { return append("saved; relaunch to use new settings") }
        attempt("setup") {
            let refused = try ReproLine.setup(token: token, endpoint: endpoint, defaultChannelID: Self.reproLineChannelID)
            started = true
            append("device \(ReproLine.deviceID ?? "?"); \(refused.count) buffered call(s) refused")
        }
    }

    func setUser() {
        attempt("set(userID:)") { try ReproLine.set(userID: userID) }
    }

    func loginWithLINE() {
        LoginManager.shared.login(permissions: [.openID, .profile], in: nil) { [weak self] result in
            guard let self = self else { return }
            switch result {
            case .success(let login):
                // The ID token (.openID), not the profile's user ID: the endpoint verifies it, so
                // nobody can link someone else's LINE account. Never log the token.
                guard let idToken = login.accessToken.IDTokenRaw else {
                    return self.append("no ID token: request the .openID permission")
                }
                self.lineUserID = login.accessToken.IDToken?.payload.subject
                self.attempt("linkLineID(idToken:)") { try ReproLine.linkLineID(idToken: idToken) }
            case .failure(let error):
                self.append("LINE Login failed: \(error.localizedDescription)")
            }
        }
    }

    func unlink() {
        guard let id = lineUserID else { return append("log in with LINE first") }
        attempt("unlinkLineID") { try ReproLine.unlinkLineID(id) }
    }

    func optIn(_ value: Bool) {
        attempt("optIn(\(value))") { try ReproLine.optIn(value) }
    }

    func flush() {
        Task {
            let outcome = await ReproLine.flush()
            append("flush: \(outcome)")
        }
    }

    /// Validation errors carry the rule: e.g. "InvalidLineUserId: … U followed by 32 ASCII letters or digits".
    private func attempt(_ what: String, _ body: () throws -> Void) {
        do {
            try body()
            append("\(what): accepted")
        } catch let error as ReproLineError {
            append("\(what): \(error.kind): \(error.message)")
        } catch {
            append("\(what): \(error)")
        }
    }

    private func append(_ line: String) {
        log.append(line)
    }
}
