import XCTest
import Foundation
import KernelStamps
import PublishedClock

/// The real ntpclient watching a fake vmclock page (a file in the ABI's layout that the test
/// changes, as a hypervisor changes the page on live migration): the next read says
/// "disrupted" with no exchange, the client declares the event, polls at once and
/// re-synchronises under the new marker (docs/published-clock.md, "Disruption").
final class VMClockClientTests: XCTestCase {
    func testClientReactsToAFakeMigration() throws {
        let stratumd = ClientLoopbackTests.productsDirectory.appendingPathComponent("stratumd").path
        let ntpclient = ClientLoopbackTests.productsDirectory.appendingPathComponent("ntpclient").path
        guard FileManager.default.isExecutableFile(atPath: ntpclient), FileManager.default.isExecutableFile(atPath: stratumd) else {
            throw XCTSkip("skipped: ntpclient/stratumd not built next to the tests; run 'swift build' first")
        }
        var template = Array("/tmp/stratum-vmclock-XXXXXX".utf8CString)
        let directory = String(cString: try XCTUnwrap(mkdtemp(&template)))
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let page = directory + "/vmclock"
        var bytes = [UInt8](repeating: 0, count: 112)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
        }
        put(UInt32(0x4B4C_4356), at: 0); put(UInt32(112), at: 4); put(UInt16(1), at: 8); put(UInt64(500), at: 16)
        XCTAssertTrue(FileManager.default.createFile(atPath: page, contents: Data(bytes)))

        let socket = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))
        let port = try socket.localAddress().port
        socket.close()
        var processes: [Process] = []
        defer { for p in processes where p.isRunning { p.terminate(); p.waitUntilExit() } }
        func start(_ path: String, _ arguments: [String], log: String) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
            XCTAssertTrue(FileManager.default.createFile(atPath: log, contents: nil), "cannot create \(log)")
            let handle = FileHandle(forWritingAtPath: log)
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            processes.append(process)
        }
        let clock = directory + "/clock"
        let log = directory + "/ntpclient.log"
        try start(stratumd, ["--listen", "127.0.0.1:\(port)", "--serve-unsynchronised", "--rate-limit", "off", "--threads", "1"], log: directory + "/stratumd.log")
        try start(ntpclient, ["--poll", "4", "--json", "--publish", clock, "--vmclock", page, "127.0.0.1:\(port)"], log: log)

        let reader = try PublishedClockReader(path: clock, waitingUpToNanoseconds: 5_000_000_000)
        XCTAssertNil(reader.vmclockProblem)
        var synchronisedAt: Date? = nil
        let deadline = Date().addingTimeInterval(40)
        while Date() < deadline {
            if try reader.read().verdict == .ok { synchronisedAt = Date(); break }
            usleep(200_000)
        }
        XCTAssertNotNil(synchronisedAt, "the client never synchronised: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        let before = try reader.read()
        XCTAssertEqual(before.writer.marker, VMClockMarker(disruptionMarker: 500, generation: 0))

        func exchanges() -> Int {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains("\"outcome\"") }.count
        }
        // Just after an exchange, so the next scheduled one is at least the burst's 2 s away:
        // an exchange within a second of the migration is the client polling at once.
        let base = exchanges()
        let waitForExchange = Date().addingTimeInterval(10)
        while exchanges() == base && Date() < waitForExchange { usleep(10_000) }
        let exchangesBefore = exchanges()

        // The migration: the page's marker moves (sequence odd, marker, sequence even).
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: page))
        func write<T: FixedWidthInteger>(_ value: T, at offset: UInt64) throws {
            try handle.seek(toOffset: offset)
            handle.write(withUnsafeBytes(of: value.littleEndian) { Data($0) })
        }
        try write(UInt32(1), at: 12); try write(UInt64(501), at: 16); try write(UInt32(2), at: 12)
        try handle.close()
        let disruptedAt = Date()
        let first = try reader.read()
        XCTAssertTrue(first.verdict == .disrupted || first.verdict == .unsynchronised,
                      "the first read after the migration must not be trusted: \(first.verdict)")
        XCTAssertEqual(first.maxErrorNanoseconds, .infinity)

        // The client notices within its check interval, publishes unsync under the new marker,
        // polls at once and re-synchronises.
        var noticed = false, resynchronised = false
        var firstExchangeAfter: Double? = nil
        while Date().timeIntervalSince(disruptedAt) < 60 {
            if firstExchangeAfter == nil, exchanges() > exchangesBefore {
                firstExchangeAfter = Date().timeIntervalSince(disruptedAt)
            }
            let now = try reader.read()
            if now.writer.marker?.disruptionMarker == 501 {
                noticed = true
                if now.verdict == .ok { resynchronised = true; break }
                XCTAssertTrue(now.verdict == .unsynchronised, "after the event: \(now.verdict)")
            }
            usleep(100_000)
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(noticed, "the writer never published under the new marker: \(text.suffix(2000))")
        XCTAssertTrue(resynchronised, "no re-synchronisation within 60 s: \(text.suffix(2000))")
        XCTAssertTrue(text.contains("vmclock: the counter was disrupted"), text)
        // It polls at once: the next scheduled exchange was at least 2 s away.
        let delay = try XCTUnwrap(firstExchangeAfter, "no exchange after the disruption")
        XCTAssertLessThan(delay, 1.0, "the client did not poll at once after the disruption")
        let exchangesAfter = text.split(separator: "\n").filter { $0.contains("\"outcome\"") }.count
        print("vmclock fake migration: re-synchronised \(String(format: "%.1f", Date().timeIntervalSince(disruptedAt))) s after the marker moved (\(exchangesAfter) exchanges in all; poll 4 s), first exchange \(String(format: "%.2f", firstExchangeAfter ?? -1)) s after the marker moved")
    }
}
