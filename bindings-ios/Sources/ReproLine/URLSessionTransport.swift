// The SDK's HTTP on iOS: URLSession, so the device's trust store, ATS and the system proxy
// apply and the native library carries no HTTP or TLS code.
//
// NOT COMPILED on the machine that produced it (no Swift toolchain there): see README.md.

import Foundation
import ReproLineBindings

/// Sends the SDK's batch requests. The native library calls `send(request:)` on its own
/// `repro-line` thread, one request at a time, and blocks there until the outcome is back
/// (a semaphore wait on that thread is fine: it exists only to deliver). Never throws:
/// every failure is an outcome; messages never include headers (the SDK token stays out).
final class URLSessionTransport: HttpTransport, @unchecked Sendable {
    static let maxResponseBytes = 1024 * 1024

    private let session: URLSession

    init() {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        // Fail fast offline: the SDK retries with its own backoff.
        configuration.waitsForConnectivity = false
        session = URLSession(configuration: configuration, delegate: NoRedirects(), delegateQueue: nil)
    }

    func send(request: HttpRequest) -> HttpOutcome {
        guard let url = URL(string: request.url) else {
            return .networkError(message: "network: not a URL: \(request.url)")
        }
        let timeout = TimeInterval(max(request.timeoutMs, 1)) / 1000
        var urlRequest = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        urlRequest.httpMethod = "POST"
        for (name, value) in request.headers {
            urlRequest.setValue(value, forHTTPHeaderField: name)
        }
        urlRequest.httpBody = request.body

        let result = OutcomeBox()
        let done = DispatchSemaphore(value: 0)
        let task = session.dataTask(with: urlRequest) { data, response, error in
            result.value = URLSessionTransport.outcome(data: data, response: response, error: error, url: request.url)
            done.signal()
        }
        task.resume()
        // URLSession's own timeout normally ends the task first; this bound is the backstop.
        if done.wait(timeout: .now() + timeout + 5) == .timedOut {
            task.cancel()
            return .timeout(message: "timeout: no response within \(request.timeoutMs) ms from \(request.url)")
        }
        return result.value
    }

    private static func outcome(data: Data?, response: URLResponse?, error: Error?, url: String) -> HttpOutcome {
        if let error = error as? URLError {
            let what = "\(error.localizedDescription) (\(url))"
            if error.code == URLError.Code.timedOut {
                return .timeout(message: "timeout: " + what)
            }
            if dnsCodes.contains(error.code) {
                return .networkError(message: "DNS: " + what)
            }
            if tlsCodes.contains(error.code) {
                return .networkError(message: "TLS handshake failed: " + what)
            }
            if connectCodes.contains(error.code) {
                return .networkError(message: "connect: " + what)
            }
            return .networkError(message: "network: " + what)
        }
        if let error = error {
            return .networkError(message: "network: \(error.localizedDescription) (\(url))")
        }
        guard let http = response as? HTTPURLResponse else {
            return .networkError(message: "network: not an HTTP response from \(url)")
        }
        var body = data ?? Data()
        if body.count > maxResponseBytes {
            body = body.prefix(maxResponseBytes)
        }
        return .response(
            status: UInt16(clamping: http.statusCode),
            retryAfter: http.value(forHTTPHeaderField: "Retry-After"),
            body: body
        )
    }
}

// The leading word of a failure's message, as the Rust transport words it.
private let dnsCodes: Set<URLError.Code> = [URLError.Code.cannotFindHost, URLError.Code.dnsLookupFailed]
private let tlsCodes: Set<URLError.Code> = [
    URLError.Code.secureConnectionFailed, URLError.Code.serverCertificateHasBadDate,
    URLError.Code.serverCertificateUntrusted, URLError.Code.serverCertificateHasUnknownRoot,
    URLError.Code.serverCertificateNotYetValid, URLError.Code.clientCertificateRejected,
]
private let connectCodes: Set<URLError.Code> = [
    URLError.Code.cannotConnectToHost, URLError.Code.notConnectedToInternet, URLError.Code.networkConnectionLost,
]

/// Written by URLSession's queue, read after the semaphore: ordered by the semaphore.
private final class OutcomeBox: @unchecked Sendable {
    var value: HttpOutcome = .networkError(message: "network: no outcome")
}

/// A redirect means a wrong endpoint URL: the SDK reports the 3xx instead of following it.
private final class NoRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}
