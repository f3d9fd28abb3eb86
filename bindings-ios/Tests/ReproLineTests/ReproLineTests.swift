// XCTests for the Swift wrapper. NOT RUN on the machine that wrote them (no Swift there).
// Run on a Mac after scripts/build-xcframework.sh --with-macos:
//   REPRO_LINE_EMULATOR_URL=http://127.0.0.1:PORT REPRO_LINE_TOKEN=T swift test
// (start the emulator with `repro-line emulator --port 0 --token T`). Tests that need the
// emulator are skipped without REPRO_LINE_EMULATOR_URL.

import Foundation
import XCTest
@testable import ReproLine

private let lineID = "U4af4980629a1b2c3d4e5f60718293a4b"
private let channel = "1234567890"

final class ReproLineTests: XCTestCase {
    private var dirs: [URL] = []

    override func tearDown() {
        for d in dirs { try? FileManager.default.removeItem(at: d) }
        dirs.removeAll()
        super.tearDown()
    }

    private func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("repro-line-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        dirs.append(d)
        return d
    }

    private func emulator() throws -> (url: String, token: String) {
        let env = ProcessInfo.processInfo.environment
        guard let url = env["REPRO_LINE_EMULATOR_URL"] else {
            throw XCTSkip("set REPRO_LINE_EMULATOR_URL to run against the emulator")
        }
        return (url, env["REPRO_LINE_TOKEN"] ?? "test-token")
    }

    /// Nothing listens on port 9 of loopback: calls queue and nothing is delivered.
    private let refusingEndpoint = "http://127.0.0.1:9"

    func testValidationErrorsAreTypedAndCarryTheRule() throws {
        let client = ReproLineClient()
        try client.setup(token: "t", endpoint: refusingEndpoint, defaultChannelID: channel, storageDirectory: tempDir())
        defer { client.close() }

        XCTAssertThrowsError(try client.linkLineID(lineID)) { error in
            guard case ReproLineError.UserIdNotSet(let message)? = error as? ReproLineError else {
                return XCTFail("\(error)")
            }
            XCTAssertTrue(message.contains("call set_user_id before linking"), message)
        }
        XCTAssertThrowsError(try client.set(userID: "")) { error in
            XCTAssertEqual((error as? ReproLineError)?.kind, "InvalidUserId")
            XCTAssertTrue((error as? ReproLineError)?.message.contains("1 to 191 characters") ?? false)
        }
        try client.set(userID: "user123")
        XCTAssertThrowsError(try client.setLineUserID("u4af4980629a1b2c3d4e5f60718293a4b")) { error in
            XCTAssertEqual((error as? ReproLineError)?.kind, "InvalidLineUserId")
            XCTAssertTrue((error as? ReproLineError)?.message.contains("U followed by 32 ASCII letters or digits") ?? false)
        }
        XCTAssertThrowsError(try client.linkLineID(lineID, channelID: "12-34")) { error in
            XCTAssertEqual((error as? ReproLineError)?.kind, "InvalidChannelId")
        }
        XCTAssertThrowsError(try ReproLineClient().setup(token: "t", endpoint: "http://repro.example.com", storageDirectory: tempDir())) { error in
            XCTAssertEqual((error as? ReproLineError)?.kind, "InsecureEndpoint")
        }
        XCTAssertEqual(client.pendingCalls, 1)
    }

    func testRustPanicArrivesAsInternalError() {
        XCTAssertThrowsError(try ReproLineClient.debugPanicForTests("boom")) { error in
            XCTAssertEqual((error as? ReproLineError)?.kind, "Internal")
            XCTAssertTrue((error as? ReproLineError)?.message.contains("panicked: boom") ?? false)
        }
    }

    func testCallsBeforeSetupAreBufferedAndReplayed() throws {
        let client = ReproLineClient()
        try client.set(userID: "first")
        try client.linkLineID(lineID)
        XCTAssertThrowsError(try client.linkLineID("nope"))
        XCTAssertEqual(client.userID, "first")
        XCTAssertNil(client.deviceID)
        XCTAssertEqual(client.pendingCalls, 2)
        let failures = try client.setup(token: "t", endpoint: refusingEndpoint, defaultChannelID: channel, storageDirectory: tempDir())
        defer { client.close() }
        XCTAssertTrue(failures.isEmpty)
        XCTAssertEqual(client.pendingCalls, 2)
        XCTAssertNotNil(client.deviceID)
    }

    func testDeliversAndReportsOnABackgroundThread() async throws {
        let emu = try emulator()
        let client = ReproLineClient()
        let reported = expectation(description: "two reports")
        reported.expectedFulfillmentCount = 2
        client.onReport = { report in
            XCTAssertFalse(Thread.isMainThread)
            XCTAssertEqual(report.status, .delivered)
            reported.fulfill()
        }
        try client.setup(token: emu.token, endpoint: emu.url, defaultChannelID: channel, storageDirectory: tempDir())
        defer { client.close() }
        try client.set(userID: "ios-user")
        try client.setLineUserID(lineID)
        let outcome = await client.flush(timeout: 10)
        XCTAssertEqual(outcome, .drained)
        await fulfillment(of: [reported], timeout: 5)
    }

    func testQueuedCallsSurviveCloseAndReopen() async throws {
        let emu = try emulator()
        let dir = try tempDir()
        let first = ReproLineClient()
        try first.setup(token: emu.token, endpoint: refusingEndpoint, defaultChannelID: channel, storageDirectory: dir)
        try first.set(userID: "durable")
        try first.linkLineID(lineID)
        let deviceID = first.deviceID
        first.close()

        let second = ReproLineClient()
        try second.setup(token: emu.token, endpoint: emu.url, defaultChannelID: channel, storageDirectory: dir)
        defer { second.close() }
        XCTAssertEqual(second.pendingCalls, 2)
        XCTAssertEqual(second.userID, "durable")
        XCTAssertEqual(second.deviceID, deviceID)
        let outcome = await second.flush(timeout: 10)
        XCTAssertEqual(outcome, .drained)
    }
}
