import XCTest
import Foundation
import KernelStamps

/// The real `ntpclient` with several servers (docs/feedforward.md, "Several sources"): two
/// stratumd instances serving this host's clock and a scripted server that lies by +50 ms.
/// Every server is on 127.0.0.1, so the truth is the host clock and `sysoff` is the error.
final class SeveralServersTests: XCTestCase {
    private static let lieNanoseconds: Int64 = 50_000_000

    private func stratumd() throws -> ServerInteropTests.Stratumd {
        let socket = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))   // a free port, chosen by the kernel
        let port = try socket.localAddress().port
        socket.close()
        let server = try ServerInteropTests.Stratumd(port: port, arguments: [
            "--listen", "127.0.0.1:\(port)", "--threads", "1", "--serve-unsynchronised", "--rate-limit", "off"])
        addTeardownBlock { _ = server.stop() }
        return server
    }

    private func liar() throws -> ForgedAnswerTests.ForgingServer {
        let server = try ForgedAnswerTests.ForgingServer { request, _, send in
            send(.server, ForgedAnswerTests.ForgingServer.encode(
                ForgedAnswerTests.ForgingServer.answer(to: request, offsetNanoseconds: Self.lieNanoseconds)))
        }
        addTeardownBlock { server.shutdown() }
        return server
    }

    private func ntpclient(_ arguments: [String]) throws -> ChildProcessResult {
        try runChildProcess(try ServerInteropTests.executable("ntpclient"), arguments)
    }

    /// Two honest servers and one liar: the liar is named a falseticker, never selected once
    /// named, and the published clock follows the honest two (the majority of three).
    func testTheLiarAmongThreeIsVotedOutAndNeverFollowed() throws {
        let a = try stratumd(), b = try stratumd(), lying = try liar()
        let names = ["127.0.0.1:\(a.port)", "127.0.0.1:\(b.port)", "\(lying.address)"]
        let result = try ntpclient(["--poll", "1", "--count", "36", "--json"] + names)
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.jsonLines
        XCTAssertEqual(lines.count, 36, result.stderr)
        for name in names {
            XCTAssertGreaterThanOrEqual(lines.filter { $0["source"] as? String == name }.count, 10, "\(name) polled on its own schedule")
        }
        // The vote: the liar is a falseticker from some line on, and never selected after it.
        let liarName = names[2]
        let states = lines.map { line -> String? in
            (line["sources"] as? [[String: Any]])?.first { $0["source"] as? String == liarName }?["state"] as? String
        }
        let named = try XCTUnwrap(states.firstIndex(of: "falseticker"), "the liar was never named: \(states)")
        XCTAssertFalse(states[named...].contains("selected"), "the liar was selected after it was named: \(states)")
        XCTAssertLessThan(named, 30, "named only at line \(named)")
        let last = try XCTUnwrap(lines.last?["sources"] as? [[String: Any]])
        for honest in names[0..<2] {
            XCTAssertEqual(last.first { $0["source"] as? String == honest }?["state"] as? String, "selected", "\(last)")
        }
        // The clock: within 1 ms of the host clock after the liar is named, never near its +50 ms.
        for line in lines[named...] {
            guard let offset = line["systemClockOffsetNanoseconds"] as? Double else { continue }
            XCTAssertLessThan(abs(offset), 1_000_000, "the published clock moved towards the liar: \(line)")
        }
        print("several servers: liar \(liarName) named a falseticker at line \(named) of 36, never selected after; "
              + "last |sysoff| \(Int(abs(lines.last?["systemClockOffsetNanoseconds"] as? Double ?? .nan))) ns")
    }

    /// Two servers that disagree: no majority (two are needed by default), so the clock is
    /// never synchronised, says why, and the client exits 1; it never picks one silently.
    func testTwoServersThatDisagreeNeverSynchronise() throws {
        let a = try stratumd(), lying = try liar()
        let result = try ntpclient(["--poll", "1", "--count", "24", "--json", "127.0.0.1:\(a.port)", "\(lying.address)"])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("did not synchronise"), result.stderr)
        let lines = result.jsonLines
        XCTAssertEqual(lines.count, 24)
        for line in lines {
            XCTAssertTrue((line["status"] as? [String] ?? []).contains("unsync"), "\(line)")
        }
        let reasons = lines.compactMap { $0["selection"] as? String }
        XCTAssertTrue(reasons.contains { $0.contains("no majority") || $0.contains("disagree") }, "\(reasons)")
    }

    /// Servers from the configuration's `server` lines, one schedule each; more than eight
    /// servers is a usage error that says the limit.
    func testConfigurationServerLinesAndTheLimit() throws {
        let a = try stratumd(), b = try stratumd()
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("several-\(getpid()).conf").path
        try "# two servers\nserver 127.0.0.1:\(a.port)\nserver 127.0.0.1:\(b.port)\npoll 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        addTeardownBlock { unlink(config) }
        let result = try ntpclient(["--config", config, "--count", "4", "--json"])
        let sources = Set(result.jsonLines.compactMap { $0["source"] as? String })
        XCTAssertEqual(sources, ["127.0.0.1:\(a.port)", "127.0.0.1:\(b.port)"], result.stderr)

        let nine = (1...9).map { "127.0.0.1:\(12_000 + $0)" }
        let tooMany = try ntpclient(nine)
        XCTAssertEqual(tooMany.status, 2)
        XCTAssertTrue(tooMany.stderr.contains("at most 8 servers"), tooMany.stderr)
    }
}
