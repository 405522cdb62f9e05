import XCTest
import Foundation
import KernelStamps
import NTPClient

/// `--metrics` on the real stratumd and ntpclient: the scrape shows the daemon's own counters,
/// hostile or slow HTTP clients get a short error or a close and stall neither the metrics
/// thread nor NTP, and only loopback is allowed unless asked.
final class MetricsEndpointTests: XCTestCase {
    typealias Stratumd = ServerInteropTests.Stratumd

    /// Sends `request` to 127.0.0.1:`port` over TCP and reads until the server closes (or
    /// `timeoutSeconds`). Returns the response text and how long it took.
    static func exchangeHTTP(port: UInt16, _ request: String, timeoutSeconds: Double = 5) throws -> (text: String, seconds: Double) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: Int(timeoutSeconds), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let started = Date()
        let connected = SocketAddress.loopbackIPv4(port: port).withSockAddr { connect(descriptor, $0, $1) }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        if !request.isEmpty { _ = request.withCString { send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) } }
        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return (String(decoding: received, as: UTF8.self), Date().timeIntervalSince(started))
    }

    /// The value of an unlabelled sample in exposition text.
    static func sample(_ name: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }

    func testStratumdMetricsMatchItsCountersAndHostileClientsStallNothing() throws {
        let port = ServerInteropTests.port(10), metricsPort = ServerInteropTests.port(11)
        let server = try Stratumd(port: port, arguments: ["--listen", "127.0.0.1:\(port)", "--threads", "2", "--serve-unsynchronised",
                                                          "--rate-limit", "off", "--metrics", "127.0.0.1:\(metricsPort)"])
        var stopped = false
        defer { if !stopped { _ = server.stop() } }
        let exchanger = try Exchanger()
        var answered = 0
        for _ in 0..<10 {
            if case .answered = try exchanger.exchange(with: .loopbackIPv4(port: port), timeoutNanoseconds: 300_000_000, rejected: { _ in }) {
                answered += 1
            }
        }
        XCTAssertGreaterThan(answered, 5)

        // A client that connects and says nothing, and one that sends half a request line,
        // hold the thread at most its deadline; a proper scrape behind them still succeeds.
        let silent = Thread { _ = try? Self.exchangeHTTP(port: metricsPort, "") }
        silent.start()
        let partial = Thread { _ = try? Self.exchangeHTTP(port: metricsPort, "GET /met") }
        partial.start()
        usleep(100_000)
        // NTP is served meanwhile: the metrics thread is not on the packet path (a few tries:
        // a loaded test machine may delay one answer past its timeout).
        var servedMeanwhile = false
        for _ in 0..<3 where !servedMeanwhile {
            if case .answered = try exchanger.exchange(with: .loopbackIPv4(port: port), timeoutNanoseconds: 250_000_000, rejected: { _ in }) {
                servedMeanwhile = true
            }
        }
        XCTAssertTrue(servedMeanwhile, "stratumd did not answer while the metrics thread waited on slow clients")
        let scrape = try Self.exchangeHTTP(port: metricsPort, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertLessThan(scrape.seconds, 4.5, "two slow clients cost at most their deadlines (1 s each), not a stall")
        XCTAssertTrue(scrape.text.hasPrefix("HTTP/1.0 200 OK\r\n"), scrape.text)
        XCTAssertEqual(Self.sample("stratumd_workers", in: scrape.text), 2)
        XCTAssertEqual(Self.sample("stratumd_leap_indicator", in: scrape.text), 0, "--serve-unsynchronised serves leap 0")
        XCTAssertTrue(scrape.text.contains("stratumd_worker_answered_total{worker=\"1\"}"), scrape.text)

        for (request, status) in [("GET / HTTP/1.1\r\n\r\n", "404"), ("POST /metrics HTTP/1.1\r\n\r\n", "405"),
                                  ("\u{16}\u{03}\u{01}\u{02} not http\r\n\r\n", "400"), ("GET /metr", "400"),
                                  (String(repeating: "A", count: 10_000), "400")] {
            let answer = try Self.exchangeHTTP(port: metricsPort, request)
            XCTAssertTrue(answer.text.hasPrefix("HTTP/1.0 \(status) "), "\(request.prefix(20)): \(answer.text)")
            XCTAssertLessThan(answer.text.utf8.count, 300, "errors are short")
        }

        // Idle workers publish at once; after a pause the scrape equals the daemon's own count.
        usleep(1_500_000)
        let final = try Self.exchangeHTTP(port: metricsPort, "GET /metrics HTTP/1.0\r\n\r\n")
        let output = server.stop()
        stopped = true
        let own = try XCTUnwrap(Stratumd.counter("answered", in: output), output)
        XCTAssertEqual(Self.sample("stratumd_answered_total", in: final.text), Double(own), output)
        XCTAssertEqual(Self.sample("stratumd_received_total", in: final.text), Double(try XCTUnwrap(Stratumd.counter("received", in: output))))
    }

    func testNtpclientMetricsFollowItsExchanges() throws {
        let port = ServerInteropTests.port(12), metricsPort = ServerInteropTests.port(13)
        let server = try Stratumd(port: port, arguments: ["--listen", "127.0.0.1:\(port)", "--threads", "1", "--serve-unsynchronised", "--rate-limit", "off"])
        defer { _ = server.stop() }
        let client = Process()
        client.executableURL = URL(fileURLWithPath: try ServerInteropTests.executable("ntpclient"))
        client.arguments = ["--poll", "1", "--count", "6", "--metrics", "127.0.0.1:\(metricsPort)", "127.0.0.1:\(port)"]
        client.standardOutput = FileHandle.nullDevice
        client.standardError = FileHandle.nullDevice
        try client.run()
        defer { if client.isRunning { client.terminate() }; client.waitUntilExit() }
        usleep(4_500_000)
        let scrape = try Self.exchangeHTTP(port: metricsPort, "GET /metrics HTTP/1.1\r\n\r\n")
        let server_ = "{server=\"127.0.0.1:\(port)\"}"
        let sent = try XCTUnwrap(Self.sample("ntpclient_exchanges_sent_total" + server_, in: scrape.text), scrape.text)
        XCTAssertGreaterThanOrEqual(sent, 3)
        let answered = try XCTUnwrap(Self.sample("ntpclient_exchanges_answered_total" + server_, in: scrape.text))
        let timedOut = try XCTUnwrap(Self.sample("ntpclient_exchanges_timed_out_total" + server_, in: scrape.text))
        XCTAssertEqual(answered + timedOut, sent, "every exchange sent is answered or timed out")
        XCTAssertGreaterThan(answered, 0)
        let maxError = try XCTUnwrap(Self.sample("ntpclient_max_error_seconds" + server_, in: scrape.text), scrape.text)
        let offset = try XCTUnwrap(Self.sample("ntpclient_system_clock_offset_seconds" + server_, in: scrape.text))
        XCTAssertGreaterThanOrEqual(maxError, abs(offset), "maxError bounds the true error (same host clock on both ends)")
        XCTAssertTrue(scrape.text.contains("ntpclient_status{server=\"127.0.0.1:\(port)\",word=\"unsync\"}"), scrape.text)
        XCTAssertTrue(scrape.text.contains("ntpclient_kisses_received_total{server=\"127.0.0.1:\(port)\",code=\"DENY\"} 0"), scrape.text)
    }

    /// With two servers every source has its own labelled series, and the selection's verdict.
    func testNtpclientMetricsLabelEachSourceWithSeveralServers() throws {
        let first = ServerInteropTests.port(14), second = ServerInteropTests.port(15), metricsPort = ServerInteropTests.port(16)
        var servers: [Stratumd] = []
        for port in [first, second] {
            servers.append(try Stratumd(port: port, arguments: ["--listen", "127.0.0.1:\(port)", "--threads", "1", "--serve-unsynchronised", "--rate-limit", "off"]))
        }
        defer { for server in servers { _ = server.stop() } }
        let client = Process()
        client.executableURL = URL(fileURLWithPath: try ServerInteropTests.executable("ntpclient"))
        client.arguments = ["--poll", "1", "--count", "100", "--metrics", "127.0.0.1:\(metricsPort)", "127.0.0.1:\(first)", "127.0.0.1:\(second)"]
        client.standardOutput = FileHandle.nullDevice
        client.standardError = FileHandle.nullDevice
        try client.run()
        defer { if client.isRunning { client.terminate() }; client.waitUntilExit() }
        usleep(5_000_000)
        let scrape = try Self.exchangeHTTP(port: metricsPort, "GET /metrics HTTP/1.1\r\n\r\n")
        for port in [first, second] {
            let label = "source=\"127.0.0.1:\(port)\""
            XCTAssertNotNil(Self.sample("ntpclient_source_reach{\(label)}", in: scrape.text), scrape.text)
            let verdicts = ["selected", "falseticker", "unusable", "candidate"].compactMap {
                Self.sample("ntpclient_source_verdict{\(label),verdict=\"\($0)\"}", in: scrape.text)
            }
            XCTAssertEqual(verdicts.count, 4, scrape.text)
            XCTAssertEqual(verdicts.reduce(0, +), 1, "exactly one verdict per source: \(scrape.text)")
        }
    }

    func testRemoteMetricsAddressesNeedConsent() throws {
        let binary = try ServerInteropTests.executable("stratumd")
        let refused = try runChildProcess(binary, ["--listen", "127.0.0.1:0", "--metrics", "0.0.0.0:9123"], timeoutSeconds: 5)
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--metrics-allow-remote"), refused.stderr)
        let client = try runChildProcess(try ServerInteropTests.executable("ntpclient"),
                                         ["--metrics", "[::]:9124", "--count", "1", "127.0.0.1:9"], timeoutSeconds: 5)
        XCTAssertEqual(client.status, 2, client.stderr)
        XCTAssertTrue(client.stderr.contains("--metrics-allow-remote"), client.stderr)
    }
}
