import XCTest
import Foundation
import KernelStamps
import NTPPacket

/// stratumd as a real process, against our own request code, chronyd 4.3 (-Q and -x with
/// xleave) and ntpdig (in a network namespace, since it only talks to port 123).
/// chronyd is only ever run with -Q or -x: it never touches this machine's clock.
final class ServerInteropTests: XCTestCase {
    /// A stratumd process, stopped with SIGINT; its stdout is collected for the counters.
    final class Stratumd {
        let process = Process()
        let output = Pipe()
        let port: UInt16

        init(port: UInt16, arguments: [String], wrapper: [String] = []) throws {
            self.port = port
            let binary = try ServerInteropTests.executable("stratumd")
            if wrapper.isEmpty {
                process.executableURL = URL(fileURLWithPath: binary)
                process.arguments = arguments
            } else {
                process.executableURL = URL(fileURLWithPath: wrapper[0])
                process.arguments = Array(wrapper.dropFirst()) + [binary] + arguments
            }
            process.standardOutput = output
            process.standardError = output
            try process.run()
            if wrapper.isEmpty { try waitUntilBound() }
        }

        /// Waits until the kernel lists a UDP socket on `port` (a debug build on a loaded
        /// machine takes seconds to start, and a test's first exchange must not race that),
        /// watching /proc/net/udp{,6} so no datagram reaches the server's counters. A server
        /// that exits first fails the test with what it printed.
        func waitUntilBound(timeoutSeconds: Double = 30) throws {
            let portHex = String(format: ":%04X ", port)
            let deadline = Date().addingTimeInterval(timeoutSeconds)
            while Date() < deadline {
                for table in ["/proc/net/udp", "/proc/net/udp6"] {
                    // Read to the end: Foundation's String(contentsOfFile:) stops after the
                    // first page of a /proc file, which holds only the first few dozen sockets.
                    guard let handle = FileHandle(forReadingAtPath: table) else { continue }
                    let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
                    try? handle.close()
                    // Column 2 is local_address as HEXADDR:HEXPORT.
                    if text.split(separator: "\n").dropFirst().contains(where: { line in
                        line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.map { "\($0) ".hasSuffix(portHex) } ?? false
                    }) { return }
                }
                if !process.isRunning {
                    let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                    throw ExitedEarly(message: "stratumd exited with status \(process.terminationStatus) before binding port \(port): \(printed)")
                }
                usleep(20_000)
            }
            XCTFail("stratumd did not bind UDP port \(port) within \(timeoutSeconds) s")
        }

        /// SIGINT, wait, and return everything it printed.
        func stop() -> String {
            if process.isRunning { process.interrupt() }
            process.waitUntilExit()
            return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }

        struct ExitedEarly: Error, CustomStringConvertible { let message: String; var description: String { message } }

        static func counter(_ name: String, in text: String) -> Int? {
            guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("counters:") }) else { return nil }
            for field in line.split(separator: " ") where field.hasPrefix(name + "=") {
                return Int(field.dropFirst(name.count + 1))
            }
            return nil
        }
    }

    static func executable(_ name: String, file: StaticString = #filePath) throws -> String {
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [bundleDirectory.appendingPathComponent(name).path]
        var root = URL(fileURLWithPath: "\(file)")
        for _ in 0..<3 { root.deleteLastPathComponent() }
        candidates.append(root.appendingPathComponent(".build/debug/\(name)").path)
        for path in candidates where FileManager.default.isExecutableFile(atPath: path) { return path }
        throw XCTSkip("skipped: \(name) executable not found next to the tests (\(candidates.joined(separator: ", "))); run 'swift build' first")
    }

    static func tool(_ name: String) -> String? {
        for directory in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
            let path = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// A high port unique to this process and test.
    /// chronyd keeps root when the tests are root (-u root: it must not switch to a system
    /// user that cannot read the test's files), and as an ordinary user it is told it is one
    /// (-U), since it refuses to start unprivileged otherwise.
    static var chronydUserArguments: [String] { getuid() == 0 ? ["-u", "root"] : ["-U"] }

    static func port(_ offset: Int) -> UInt16 { UInt16(30_000 + Int(getpid()) % 9_000 * 3 + offset) }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("stratumd-interop-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs a process to completion (with a deadline) and returns its stdout then its stderr.
    static func run(_ path: String, _ arguments: [String], timeoutSeconds: Double = 30) throws -> (status: Int32, output: String) {
        let result = try runChildProcess(path, arguments, timeoutSeconds: timeoutSeconds)
        return (result.status, result.stdout + result.stderr)
    }

    /// One request from a UDP socket; returns the request's transmit, the response and the
    /// local clock around the exchange. Retries while stratumd starts.
    func exchange(port: UInt16) throws -> (sent: NTPTimestamp, response: NTPHeader, before: Int64, after: Int64, length: Int) {
        var options = UDPSocket.Options()
        options.receiveTimeoutNanoseconds = 200_000_000
        let socket = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)
        var buffer = [UInt8](repeating: 0, count: 512)
        for attempt in 0..<25 {
            let before = realtimeNanoseconds()
            let transmit = NTPTimestamp(rawValue: 0x0123_4567_89AB_CDEF &+ UInt64(attempt))
            var request = [UInt8](repeating: 0, count: 48)
            _ = try request.withUnsafeMutableBytes { raw in
                try NTPHeader(leapIndicator: .unsynchronized, version: 4, mode: .client, poll: 6, transmitTimestamp: transmit).encode(into: raw)
            }
            try socket.send(request, to: .loopbackIPv4(port: port))
            let received = try buffer.withUnsafeMutableBytes { try socket.receive(into: $0) }
            let after = realtimeNanoseconds()
            if let received {
                let header = try buffer.withUnsafeBytes { try NTPHeader(decoding: UnsafeRawBufferPointer(rebasing: $0[0..<received.byteCount])) }
                return (transmit, header, before, after, received.byteCount)
            }
        }
        // A server that started but never answers is a failure, not a missing peer.
        throw NoAnswer(port: port)
    }

    struct NoAnswer: Error, CustomStringConvertible {
        let port: UInt16
        var description: String { "stratumd did not answer 25 requests on 127.0.0.1:\(port) in 5 s" }
    }

    /// (1) Our own request over a socket: every field of the response checked against the request.
    func testOwnRequestIsAnsweredCorrectly() throws {
        let port = Self.port(0)
        let server = try Stratumd(port: port, arguments: ["--listen", "127.0.0.1:\(port)", "--threads", "2", "--serve-unsynchronised", "--refid", "GPS"])
        defer { _ = server.stop() }
        let result = try exchange(port: port)
        XCTAssertEqual(result.length, 48)
        XCTAssertEqual(result.response.mode, .server)
        XCTAssertEqual(result.response.version, 4)
        XCTAssertEqual(result.response.stratum, 1)
        XCTAssertEqual(result.response.referenceID, .gps)
        XCTAssertEqual(result.response.leapIndicator, .noWarning)
        XCTAssertEqual(result.response.originTimestamp, result.sent)
        let pivot = result.before
        let receive = result.response.receiveTimestamp.unixNanoseconds(nearestTo: pivot)
        let transmit = result.response.transmitTimestamp.unixNanoseconds(nearestTo: pivot)
        XCTAssertGreaterThanOrEqual(receive, result.before - 1)
        XCTAssertLessThanOrEqual(receive, transmit)
        XCTAssertLessThanOrEqual(transmit, result.after + 1)
        let output = server.stop()
        XCTAssertGreaterThanOrEqual(Stratumd.counter("answered", in: output) ?? 0, 1, output)
    }

    /// (2) chronyd -Q measures stratumd once and reports the offset: within 100 µs.
    func testChronydQuickMeasurementWithin100Microseconds() throws {
        guard let chronyd = Self.tool("chronyd") else { throw XCTSkip("skipped: chronyd not installed (apt-get install chrony)") }
        let port = Self.port(1)
        let server = try Stratumd(port: port, arguments: ["--listen", "127.0.0.1:\(port)", "--serve-unsynchronised"])
        defer { _ = server.stop() }
        _ = try exchange(port: port)
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("chrony.conf")
        try """
        server 127.0.0.1 port \(port) iburst minpoll -2 maxpoll -2
        pidfile \(directory.path)/chronyd.pid
        cmdport 0
        """.write(to: config, atomically: true, encoding: .utf8)
        let (status, output) = try Self.run(chronyd, ["-Q", "-u", "root", "-f", config.path], timeoutSeconds: 30)
        XCTAssertEqual(status, 0, output)
        guard let range = output.range(of: "System clock wrong by ") else { return XCTFail("no offset line in chronyd -Q output: \(output)") }
        let number = output[range.upperBound...].prefix { $0 != " " }
        let offset = try XCTUnwrap(Double(number), output)
        XCTAssertLessThan(abs(offset), 100e-6, output)
    }

    /// (3) chronyd -x with xleave: stratumd answers in interleaved mode (its counter rises),
    /// chronyd's measurements log shows interleaved samples ("4I") with offsets within 100 µs.
    func testChronydInterleavedWithin100Microseconds() throws {
        guard let chronyd = Self.tool("chronyd") else { throw XCTSkip("skipped: chronyd not installed (apt-get install chrony)") }
        let port = Self.port(2)
        let server = try Stratumd(port: port, arguments: ["--listen", "127.0.0.1:\(port)", "--serve-unsynchronised", "--rate-limit", "off"])
        _ = try exchange(port: port)
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("chrony.conf")
        try """
        server 127.0.0.1 port \(port) minpoll -2 maxpoll -2 xleave
        pidfile \(directory.path)/chronyd.pid
        cmdport 0
        logdir \(directory.path)
        log measurements
        """.write(to: config, atomically: true, encoding: .utf8)
        // -x: never touch the clock. Runs ~6 s at 4 requests/s, then is stopped. chronyd
        // refuses to start as an ordinary user ("Fatal error : Not superuser") unless told
        // with -U not to check; -x needs no privilege, and kernel RX/TX stamps (SO_TIMESTAMPING,
        // which interleaved mode relies on) work unprivileged, so the test runs as any user.
        let privilege = Self.chronydUserArguments
        let chronydRun = try Self.run(chronyd, ["-x", "-d"] + privilege + ["-f", config.path], timeoutSeconds: 6)
        let output = server.stop()
        if chronydRun.output.contains("Not superuser") {
            print("*** skipped: chronyd \(privilege.joined(separator: " ")) would not start as uid \(getuid()): \(chronydRun.output) ***")
            throw XCTSkip("skipped: chronyd would not start as uid \(getuid()) (Not superuser): \(chronydRun.output)")
        }
        let interleaved = Stratumd.counter("interleaved", in: output) ?? 0
        XCTAssertGreaterThan(interleaved, 5, output)
        let log = (try? String(contentsOf: directory.appendingPathComponent("measurements.log"), encoding: .utf8)) ?? ""
        let samples = log.split(separator: "\n").filter { $0.hasPrefix("20") && $0.contains("127.0.0.1") }
        let interleavedSamples = samples.filter { $0.hasSuffix("4I K K") }
        XCTAssertGreaterThan(interleavedSamples.count, 3, "chronyd saw no interleaved samples with kernel stamps: \(log)")
        for line in interleavedSamples {
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            let offset = try XCTUnwrap(Double(columns[11]), String(line))
            XCTAssertLessThan(abs(offset), 100e-6, String(line))
        }
    }

    /// (4) ntpdig only talks to port 123: stratumd runs in a fresh network namespace on its
    /// loopback, port 123, and ntpdig reports stratum 1 from it.
    func testNtpdigInNetworkNamespaceSeesStratumOne() throws {
        guard let ntpdig = Self.tool("ntpdig") else { throw XCTSkip("skipped: ntpdig not installed (apt-get install ntpsec-ntpdig)") }
        guard let ip = Self.tool("ip") else { throw XCTSkip("skipped: ip (iproute2) not installed") }
        let namespace = "stratumd-test-\(getpid())"
        let added = try Self.run(ip, ["netns", "add", namespace])
        guard added.status == 0 else { throw XCTSkip("skipped: cannot create a network namespace (needs root): \(added.output)") }
        defer { _ = try? Self.run(ip, ["netns", "del", namespace]) }
        XCTAssertEqual(try Self.run(ip, ["netns", "exec", namespace, ip, "link", "set", "lo", "up"]).status, 0)
        let server = try Stratumd(port: 123, arguments: ["--listen", "127.0.0.1:123", "--serve-unsynchronised"],
                                  wrapper: [ip, "netns", "exec", namespace])
        defer { _ = server.stop() }
        usleep(500_000)
        let (status, output) = try Self.run(ip, ["netns", "exec", namespace, ntpdig, "127.0.0.1"], timeoutSeconds: 20)
        XCTAssertEqual(status, 0, output)
        // e.g. "2026-11-21 19:19:16.150664 (+0000) -0.000010 +/- 0.000117 127.0.0.1 s1 no-leap"
        XCTAssertTrue(output.contains("127.0.0.1 s1 "), output)
        let fields = output.split(separator: " ")
        // ntpdig stamps in user space, so on a loaded machine its offset can exceed a
        // millisecond; it must still lie within its own stated uncertainty (+/-) plus 1 ms.
        if let index = fields.firstIndex(of: "(+0000)"), index + 3 < fields.count,
           let offset = Double(fields[index + 1]), fields[index + 2] == "+/-", let uncertainty = Double(fields[index + 3]) {
            XCTAssertLessThan(abs(offset), uncertainty + 0.001, output)
        } else {
            XCTFail("cannot read ntpdig's offset and uncertainty: \(output)")
        }
    }
}
