import XCTest
import Foundation
import KernelStamps
import NTPClient

/// One daemon per address: SO_REUSEPORT would let a second stratumd (same user) join the
/// first one's socket group and take a share of its clients, so stratumd refuses to start on
/// an address another process serves, while its own workers still share the port.
final class AddressInUseTests: XCTestCase {
    typealias Stratumd = ServerInteropTests.Stratumd

    /// Waits (at most 5 s) until something answers NTP on 127.0.0.1:`port`: any answer,
    /// usable or not (chronyd without a source serves leap indicator 3).
    func waitForAnswer(port: UInt16) throws {
        let exchanger = try Exchanger()
        for _ in 0..<25 {
            if case .timedOut = try exchanger.exchange(with: .loopbackIPv4(port: port), timeoutNanoseconds: 200_000_000, rejected: { _ in }) {
                continue
            }
            return
        }
        throw NoAnswer(port: port)
    }

    struct NoAnswer: Error, CustomStringConvertible {
        let port: UInt16
        var description: String { "nothing answered on 127.0.0.1:\(port) within 5 s" }
    }

    func assertRefused(port: UInt16, listen: String, against label: String) throws {
        let binary = try ServerInteropTests.executable("stratumd")
        let second = try runChildProcess(binary, ["--listen", listen, "--threads", "2"], timeoutSeconds: 10)
        XCTAssertEqual(second.status, 1, "\(label): the second server must fail at start: \(second.stdout) \(second.stderr)")
        XCTAssertEqual(second.stderr, "stratumd: address in use: another server is listening on \(listen); stop it, or give another --listen address\n", label)
        XCTAssertFalse(second.stdout.contains("serving on"), label)
    }

    func testASecondStratumdOnTheSameAddressFailsAndTheFirstKeepsItsWorkers() throws {
        let port = ServerInteropTests.port(7)
        let first = try Stratumd(port: port, arguments: ["--listen", "127.0.0.1:\(port)", "--threads", "3",
                                                         "--serve-unsynchronised", "--rate-limit", "off"])
        defer { _ = first.stop() }
        try waitForAnswer(port: port)
        try assertRefused(port: port, listen: "127.0.0.1:\(port)", against: "stratumd")
        try assertRefused(port: port, listen: "0.0.0.0:\(port)", against: "stratumd (wildcard)")
        try waitForAnswer(port: port)
        let output = first.stop()
        XCTAssertTrue(output.contains("with 3 worker(s)"), "its own three workers shared the port: \(output)")
        XCTAssertGreaterThanOrEqual(Stratumd.counter("answered", in: output) ?? 0, 2, output)
    }

    /// chronyd -x (never touches the clock) serving on a high port of 127.0.0.1 with its own
    /// configuration, no command port and a private command socket.
    func testStratumdRefusesAnAddressChronydServes() throws {
        guard let chronyd = ServerInteropTests.tool("chronyd") else {
            throw XCTSkip("skipped: chronyd not installed (apt-get install chrony)")
        }
        let port = ServerInteropTests.port(8)
        let directory = try ServerInteropTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("chrony.conf")
        try """
        port \(port)
        bindaddress 127.0.0.1
        local stratum 1
        allow 127.0.0.1
        cmdport 0
        bindcmdaddress \(directory.path)/chronyd.sock
        pidfile \(directory.path)/chronyd.pid
        """.write(to: config, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chronyd)
        process.arguments = ["-x", "-d"] + ServerInteropTests.chronydUserArguments + ["-f", config.path]
        let log = directory.appendingPathComponent("chronyd.log")
        XCTAssertTrue(FileManager.default.createFile(atPath: log.path, contents: nil), "cannot create \(log.path)")
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = process.standardOutput
        try process.run()
        defer { if process.isRunning { process.terminate() }; process.waitUntilExit() }
        do {
            try waitForAnswer(port: port)
        } catch {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw XCTSkip("skipped: chronyd did not serve on 127.0.0.1:\(port) (\(error)); its log: \(text)")
        }
        try assertRefused(port: port, listen: "127.0.0.1:\(port)", against: "chronyd")
    }
}
