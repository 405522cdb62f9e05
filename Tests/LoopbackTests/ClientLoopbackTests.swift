import XCTest
import Foundation
import FeedforwardClock
import KernelStamps
import NTPClient
import PublishedClock
import NTPPacket

/// The real `ntpclient` executable against real servers on 127.0.0.1 (stratumd, chronyd), the
/// published clock read by another process, and the exchanger against a scripted server.
final class ClientLoopbackTests: XCTestCase {
    // MARK: helpers

    /// Server output files of this test, printed on failure and removed afterwards.
    var serverLogs: [String] = []

    override func tearDown() {
        for path in serverLogs {
            if (testRun?.failureCount ?? 0) > 0, let text = try? String(contentsOfFile: path, encoding: .utf8) {
                print("--- \(path):\n\(text)")
            }
            unlink(path)
        }
        serverLogs = []
        super.tearDown()
    }

    /// The directory holding the built executables: next to the test bundle.
    static var productsDirectory: URL {
        var candidates = [Bundle(for: ClientLoopbackTests.self).bundleURL.deletingLastPathComponent(),
                          Bundle.main.bundleURL]
        if let first = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: first).deletingLastPathComponent())
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("ntpclient").path) }
            ?? candidates[0]
    }

    func executable(_ name: String) throws -> URL {
        let url = Self.productsDirectory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw XCTSkip("skipped: \(name) is not built next to the tests (\(url.path)); run 'swift build' first")
        }
        return url
    }

    /// A free UDP port on 127.0.0.1 chosen by the kernel (unique, high).
    func freePort() throws -> UInt16 {
        let socket = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))
        defer { socket.close() }
        return try socket.localAddress().port
    }

    func start(_ url: URL, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        // Output to a file, not a pipe nobody drains: a chatty server must never block.
        let logPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("ntpclient-test-\(url.lastPathComponent)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log").path
        guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: logPath])
        }
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = log
        process.standardError = log
        try process.run()
        serverLogs.append(logPath)
        addTeardownBlock {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
        return process
    }

    /// Waits (bounded) until an NTP server answers at `address` with a usable response.
    func waitForServer(_ address: SocketAddress) throws {
        let exchanger = try Exchanger()
        for _ in 0..<50 {
            if case .answered = try exchanger.exchange(with: address, timeoutNanoseconds: 200_000_000, rejected: { _ in }) {
                return
            }
            usleep(100_000)
        }
        XCTFail("no usable answer from \(address) within 15 s")
    }

    func run(_ url: URL, _ arguments: [String]) throws -> ChildProcessResult {
        try runChildProcess(url.path, arguments)
    }

    /// What a working client shows on one `ntpclient --poll 1 --count 20 --json` run.
    func assertClientTracksServer(_ address: SocketAddress, label: String, publishPath: String? = nil) throws {
        let client = try executable("ntpclient")
        let publish = publishPath.map { ["--publish", $0] } ?? []
        let result = try run(client, ["--poll", "1", "--count", "20", "--json"] + publish + ["\(address)"])
        XCTAssertEqual(result.status, 0, "\(label): ntpclient failed: \(result.stderr)")
        let lines = result.jsonLines
        XCTAssertEqual(lines.count, 20, "\(label): one JSON line per exchange")
        var worstAfterBurst = 0.0, tightestMargin = Double.infinity, userSpaceStamps = 0, accepted = 0
        for line in lines {
            let exchange = line["exchange"] as? Int ?? -1
            let status = line["status"] as? [String] ?? []
            userSpaceStamps += status.filter { $0 == "user-tx-stamp" || $0 == "user-rx-stamp" }.count
            guard line["outcome"] as? String == "accepted" else { continue }
            accepted += 1
            guard let offset = line["systemClockOffsetNanoseconds"] as? Double,
                  let maxError = line["maxErrorNanoseconds"] as? Double else {
                XCTFail("\(label): accepted exchange \(exchange) without offset or maxError: \(line)")
                continue
            }
            // maxError is a hard bound: it must cover the true error on every exchange. Here the
            // server serves this host's CLOCK_REALTIME, so the system clock's offset from the
            // feedforward clock is the true error.
            XCTAssertGreaterThanOrEqual(maxError, abs(offset), "\(label): exchange \(exchange) maxError does not cover the error")
            tightestMargin = min(tightestMargin, maxError - abs(offset))
            if exchange >= 8 {
                XCTAssertLessThanOrEqual(abs(offset), 50_000, "\(label): exchange \(exchange) off by \(offset) ns after the burst")
                worstAfterBurst = max(worstAfterBurst, abs(offset))
            }
        }
        XCTAssertGreaterThanOrEqual(accepted, 18, "\(label): too many exchanges lost or refused: \(result.stderr)")
        XCTAssertLessThanOrEqual(userSpaceStamps, 1, "\(label): kernel TX/RX stamps missing: the keep-alive socket should keep stamping on")
        print("\(label): worst |system clock − Ca| after the burst \(Int(worstAfterBurst)) ns; "
              + "smallest maxError − |offset| \(Int(tightestMargin)) ns; \(accepted)/20 accepted; stderr: \(result.stderr)")
    }

    // MARK: against real servers

    func testClientAgainstStratumd() throws {
        let stratumd = try executable("stratumd")
        let port = try freePort()
        _ = try start(stratumd, ["--listen", "127.0.0.1:\(port)", "--serve-unsynchronised", "--rate-limit", "off", "--threads", "1"])
        let address = SocketAddress.loopbackIPv4(port: port)
        try waitForServer(address)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ntpclient-stratumd-\(getpid()).clock").path
        addTeardownBlock { unlink(path) }
        try assertClientTracksServer(address, label: "stratumd", publishPath: path)

        // The dependent clock: another reader of the published parameters tells the same time,
        // within its bound, with no filter of its own (docs/feedforward.md §7).
        let now = try PublishedClockReader(path: path).read()
        XCTAssertEqual(now.parameters.stampCount, 20)
        XCTAssertNotEqual(now.freshness, .unusable)
        XCTAssertFalse(now.status.contains(.unsynchronised))
        // The same parameters at a raw counter read paired with the host clock by the kernel
        // layer's bracket (the tightest of several REALTIME–RAW–REALTIME reads): a thread
        // preempted between two clock reads (a millisecond on a busy VM) must not look like
        // clock error.
        let pair = ClockDomainShift.measure(tries: 20)
        let counter = pair.rawNanoseconds
        let hostTime = counter - pair.rawMinusRealtimeNanoseconds
        let p = now.parameters
        let lag = Double(hostTime - p.absoluteTime(atCounter: counter))
        let allowed = p.maxError(atCounter: counter) + Double(pair.bracketWidthNanoseconds) / 2 + 100_000
        XCTAssertLessThanOrEqual(abs(lag), allowed, "reader time off by \(lag) ns (bracket \(pair.bracketWidthNanoseconds) ns)")
        // The writer exited cleanly after --count, so the file says so and 'now' exits 1,
        // still telling the time the last parameters give.
        XCTAssertEqual(now.verdict, .stopped)
        let child = try run(try executable("ntpclient"), ["now", "--from", path, "--json"])
        XCTAssertEqual(child.status, 1, child.stderr)
        XCTAssertEqual(child.jsonLines.first?["verdict"] as? String, "stopped")
        let childTime = try XCTUnwrap(child.jsonLines.first?["timeUnixNanoseconds"] as? NSNumber).int64Value
        XCTAssertLessThan(abs(Double(childTime - realtimeNanoseconds())), 1e9, "now --from tells a time far from the host clock")
    }

    func testClientAgainstChronyd() throws {
        let chronyd = ["/usr/sbin/chronyd", "/usr/bin/chronyd", "/sbin/chronyd"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let chronyd else {
            print("*** skipped: chronyd not installed (apt-get install chrony); the chronyd loopback test did not run ***")
            throw XCTSkip("skipped: chronyd not installed (apt-get install chrony)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ntpclient-chrony-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // chronyd started as root drops to its own user: let it write its pid file here.
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory.path)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let port = try freePort()
        let configuration = """
        local stratum 1
        allow 127.0.0.1
        bindaddress 127.0.0.1
        port \(port)
        cmdport 0
        pidfile \(directory.path)/chronyd.pid

        """
        let configurationPath = directory.appendingPathComponent("chrony.conf").path
        try configuration.write(toFile: configurationPath, atomically: true, encoding: .utf8)
        // -x: never touch the system clock; -d: stay in the foreground; -U: allow a non-root start.
        var arguments = ["-x", "-d", "-f", configurationPath]
        if getuid() != 0 { arguments.insert("-U", at: 0) }
        _ = try start(URL(fileURLWithPath: chronyd), arguments)
        let address = SocketAddress.loopbackIPv4(port: port)
        try waitForServer(address)
        try assertClientTracksServer(address, label: "chronyd")
    }

    /// A writer stopped by SIGTERM (systemd's stop) marks its published clock stopped before
    /// it exits 0, so readers stop trusting parameters nobody will update
    /// (docs/published-clock.md, "Writer").
    func testWriterStoppedBySignalLeavesTheClockMarkedStopped() throws {
        let stratumd = try executable("stratumd")
        let port = try freePort()
        _ = try start(stratumd, ["--listen", "127.0.0.1:\(port)", "--serve-unsynchronised", "--rate-limit", "off", "--threads", "1"])
        try waitForServer(.loopbackIPv4(port: port))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ntpclient-signal-\(getpid()).clock").path
        addTeardownBlock { unlink(path) }
        let writer = try start(try executable("ntpclient"), ["--poll", "1", "--publish", path, "127.0.0.1:\(port)"])
        let reader = try PublishedClockReader(path: path, waitingUpToNanoseconds: 5_000_000_000)
        let deadline = Date().addingTimeInterval(30)
        while try reader.read().parameters.stampCount < 3 && Date() < deadline { usleep(100_000) }
        XCTAssertNotEqual(try reader.read().verdict, .stopped, "stopped before the signal")
        writer.terminate()
        writer.waitUntilExit()
        XCTAssertEqual(writer.terminationReason, .exit, "ntpclient died of the signal instead of handling it")
        XCTAssertEqual(writer.terminationStatus, 0)
        XCTAssertEqual(try reader.read().verdict, .stopped)
        let now = try run(try executable("ntpclient"), ["now", "--from", path])
        XCTAssertEqual(now.status, 1, "now must not trust a stopped writer's clock: \(now.stdout)")
        XCTAssertTrue((now.stdout + now.stderr).contains("stopped"), now.stdout + now.stderr)
    }

    func testOnceAgainstStratumd() throws {
        let stratumd = try executable("stratumd")
        let client = try executable("ntpclient")
        let port = try freePort()
        _ = try start(stratumd, ["--listen", "127.0.0.1:\(port)", "--serve-unsynchronised", "--rate-limit", "off", "--threads", "1"])
        try waitForServer(.loopbackIPv4(port: port))
        let result = try run(client, ["--once", "--json", "127.0.0.1:\(port)"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let line = try XCTUnwrap(result.jsonLines.first)
        let offset = try XCTUnwrap(line["offsetNanoseconds"] as? Int)
        let delay = try XCTUnwrap(line["delayNanoseconds"] as? Int)
        let bound = try XCTUnwrap(line["errorBoundNanoseconds"] as? Int)
        // Same host clock on both ends: the offset is really 0, and the bound must cover it.
        XCTAssertLessThanOrEqual(abs(offset), bound)
        XCTAssertGreaterThan(delay, 0)
        XCTAssertLessThan(delay, 5_000_000)

        // Nothing listening: exit 1 with a message that says so.
        let silentPort = try freePort()
        let silent = try run(client, ["--once", "127.0.0.1:\(silentPort)"])
        XCTAssertEqual(silent.status, 1)
        XCTAssertTrue(silent.stderr.contains("no answer from"), silent.stderr)
    }

    // MARK: the published clock, read by another process

    func testPublishedClockReadFromAnotherProcessIsNeverTorn() throws {
        let client = try executable("ntpclient")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ntpclient-publish-\(getpid()).clock").path
        addTeardownBlock { unlink(path) }
        let writer = try PublishedClockWriter(path: path)
        writer.publish(invariantParameters(0))
        // About a million updates a second: far faster than any poll, with the short pause
        // between updates a real writer always has.
        let publisher = BusyPublisher(writer, pauseNanoseconds: 500)
        defer { publisher.stop() }
        let result = try run(client, ["now", "--from", path, "--count", "10000", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.jsonLines
        XCTAssertEqual(lines.count, 10000)
        var seen = Set<Int64>()
        var previous: Int64 = -1
        for line in lines {
            guard let count = (line["stampCount"] as? NSNumber)?.int64Value,
                  let origin = (line["counterOriginNanoseconds"] as? NSNumber)?.int64Value,
                  let timeAtOrigin = (line["timeAtOriginNanoseconds"] as? NSNumber)?.int64Value,
                  let lastStamp = (line["lastStampCounterNanoseconds"] as? NSNumber)?.int64Value,
                  let counter = (line["counterNanoseconds"] as? NSNumber)?.int64Value,
                  let time = (line["timeUnixNanoseconds"] as? NSNumber)?.int64Value else {
                XCTFail("line lacks fields: \(line)")
                continue
            }
            let k = count - 1
            let expected = invariantParameters(k)
            // Every field must come from the same update.
            XCTAssertEqual(origin, expected.counterOrigin, "torn read at k=\(k)")
            XCTAssertEqual(timeAtOrigin, expected.timeAtOriginNanoseconds, "torn read at k=\(k)")
            XCTAssertEqual(lastStamp, expected.lastStampCounter, "torn read at k=\(k)")
            // And the time the reader told is Ca of those parameters at its own counter read.
            XCTAssertEqual(time, expected.absoluteTime(atCounter: counter))
            XCTAssertGreaterThanOrEqual(k, previous, "the reader went back to older parameters")
            previous = k
            seen.insert(k)
        }
        XCTAssertGreaterThan(seen.count, 1, "the reader never overlapped an update")
        print("published clock: 10000 reads in another process saw \(seen.count) distinct updates, none torn")
    }

    // MARK: the exchanger against a scripted server

    func testForgedAndMisdirectedAnswersAreSkippedForTheGenuineOne() throws {
        let server = try ScriptedServer { request, reply, replyFromOtherPort in
            var forged = ScriptedServer.response(to: request)
            forged.originTimestamp = NTPTimestamp(rawValue: request.transmitTimestamp.rawValue &+ 1)
            reply(forged)
            replyFromOtherPort(ScriptedServer.response(to: request))
            reply(ScriptedServer.response(to: request))
        }
        addTeardownBlock { server.shutdown() }
        let exchanger = try Exchanger()
        var seen: [ResponseRejectionKind] = []
        let outcome = try exchanger.exchange(with: server.address, timeoutNanoseconds: 1_000_000_000) { seen.append($0.kind) }
        guard case .answered(let result) = outcome else { return XCTFail("expected an answer, got \(outcome)") }
        XCTAssertEqual(seen, [.bogusOrigin, .wrongPort])
        XCTAssertFalse(result.userSpaceTransmitStamp)
        XCTAssertFalse(result.userSpaceReceiveStamp)
        XCTAssertGreaterThan(result.tf, result.ta)
        XCTAssertLessThan(result.tf - result.ta, 1_000_000_000)
        XCTAssertEqual(server.sourcePorts.count, 1)
    }

    func testEachRequestUsesAFreshSourcePortAndRandomTransmit() throws {
        let server = try ScriptedServer { request, reply, _ in reply(ScriptedServer.response(to: request)) }
        addTeardownBlock { server.shutdown() }
        let exchanger = try Exchanger()
        for _ in 0..<5 {
            let outcome = try exchanger.exchange(with: server.address, timeoutNanoseconds: 1_000_000_000) { _ in }
            guard case .answered = outcome else { return XCTFail("expected an answer, got \(outcome)") }
        }
        XCTAssertEqual(Set(server.sourcePorts).count, 5, "ports \(server.sourcePorts)")
        XCTAssertEqual(Set(server.transmitTimestamps).count, 5)
        let now = NTPTimestamp(unixNanoseconds: realtimeNanoseconds())
        XCTAssertTrue(server.transmitTimestamps.contains { abs($0.nanoseconds(since: now)) > 1_000_000_000_000 },
                      "transmit timestamps should be random, not the clock")
    }

    func testKissDenyStopsTheClientWithAClearMessage() throws {
        let server = try ScriptedServer.kissing(.deny)
        addTeardownBlock { server.shutdown() }
        let client = try executable("ntpclient")
        let result = try run(client, ["--poll", "1", "--count", "5", "\(server.address)"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("DENY") && result.stderr.contains("stopped"), result.stderr)
        XCTAssertEqual(server.sourcePorts.count, 1, "no request after DENY")
    }

    func testKissRateDoublesThePoll() throws {
        let server = try ScriptedServer.kissing(.rate)
        addTeardownBlock { server.shutdown() }
        let client = try executable("ntpclient")
        let result = try run(client, ["--poll", "1", "--count", "2", "--json", "\(server.address)"])
        XCTAssertEqual(result.status, 1, "never synchronised")
        let polls = result.jsonLines.compactMap { $0["pollSeconds"] as? Double }
        XCTAssertEqual(polls, [2, 4])
        XCTAssertEqual(result.jsonLines.compactMap { $0["outcome"] as? String }, ["kiss", "kiss"])
        XCTAssertEqual(result.stderr.components(separatedBy: "RATE").count - 1, 1, "logged once: \(result.stderr)")
    }
}

/// Parameters whose fields all derive from k, so a torn read shows as a mismatch.
func invariantParameters(_ k: Int64) -> ClockParameters {
    ClockParameters(
        counterOrigin: 5_000_000 + k, timeAtOriginNanoseconds: 1_795_286_605_000_000_000 + 1_000 * k,
        timeAtOriginFraction: 0.5, periodSecondsPerTick: 1e-9, periodError: 1e-8, periodErrorBound: 1e-7, localPeriodSecondsPerTick: 1e-9,
        offsetNanoseconds: 0, errorEstimateNanoseconds: 100, maxErrorNanoseconds: 1_000, maxErrorGrowthRate: 1e-6,
        lastStampCounter: 4_000_000 + k, nextStampExpectedCounter: .max / 2, leap: 0, status: [],
        lastRTTNanoseconds: 50_000, minimumRTTNanoseconds: 40_000, naiveOffsetNanoseconds: 0, stampCount: k + 1)
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}

/// A UDP "server" on 127.0.0.1 whose answers a test scripts; it records each request.
final class ScriptedServer: @unchecked Sendable {
    typealias Script = @Sendable (_ request: NTPHeader, _ reply: (NTPHeader) -> Void, _ replyFromOtherPort: (NTPHeader) -> Void) -> Void
    let address: SocketAddress
    private let socket: UDPSocket
    private let otherSocket: UDPSocket
    private let lock = NSLock()
    private var ports: [UInt16] = []
    private var transmits: [NTPTimestamp] = []
    private let stop = StopFlag()
    private var thread: Thread!

    var sourcePorts: [UInt16] { lock.lock(); defer { lock.unlock() }; return ports }
    var transmitTimestamps: [NTPTimestamp] { lock.lock(); defer { lock.unlock() }; return transmits }

    init(script: @escaping Script) throws {
        var options = UDPSocket.Options()
        options.receiveTimeoutNanoseconds = 50_000_000
        socket = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)
        otherSocket = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))
        address = try socket.localAddress()
        thread = Thread { [self] in self.serve(script) }
        thread.start()
    }

    /// Stops the serving thread (it holds the server until then).
    func shutdown() {
        stop.set()
        while !thread.isFinished { usleep(1000) }
    }

    private func serve(_ script: Script) {
        var buffer = [UInt8](repeating: 0, count: 2048)
        while !stop.isSet {
            guard let datagram = try? buffer.withUnsafeMutableBytes({ try socket.receive(into: $0) }),
                  let source = datagram.source,
                  let request = try? buffer.withUnsafeBytes({ try NTPHeader(decoding: UnsafeRawBufferPointer(rebasing: $0[0..<datagram.byteCount])) })
            else { continue }
            lock.lock()
            ports.append(source.port)
            transmits.append(request.transmitTimestamp)
            lock.unlock()
            script(request, { self.send($0, from: self.socket, to: source) }, { self.send($0, from: self.otherSocket, to: source) })
        }
    }

    private func send(_ header: NTPHeader, from socket: UDPSocket, to destination: SocketAddress) {
        var bytes = [UInt8](repeating: 0, count: 48)
        bytes.withUnsafeMutableBytes { _ = try? header.encode(into: $0) }
        _ = try? socket.send(bytes, to: destination)
    }

    /// A server that answers every request with the kiss-o'-death `code`.
    static func kissing(_ code: NTPReferenceID) throws -> ScriptedServer {
        try ScriptedServer { request, reply, _ in reply(kiss(code, to: request)) }
    }

    /// A kiss-o'-death answering `request`: stratum 0 and the kiss code as reference ID
    /// (RFC 5905 §7.4), with an origin that proves it answers the request.
    static func kiss(_ code: NTPReferenceID, to request: NTPHeader) -> NTPHeader {
        var kiss = response(to: request)
        kiss.stratum = 0
        kiss.referenceID = code
        return kiss
    }

    /// A genuine server response to `request`, stamped with this host's clock.
    static func response(to request: NTPHeader) -> NTPHeader {
        let now = realtimeNanoseconds()
        return NTPHeader(leapIndicator: .noWarning, version: 4, mode: .server, stratum: 1, poll: 0, precision: -20,
                         referenceID: .locl, referenceTimestamp: NTPTimestamp(unixNanoseconds: now - 1_000_000_000),
                         originTimestamp: request.transmitTimestamp,
                         receiveTimestamp: NTPTimestamp(unixNanoseconds: now),
                         transmitTimestamp: NTPTimestamp(unixNanoseconds: now + 1_000))
    }
}
