import XCTest
import Foundation
import KernelStamps
import NTPPacket

/// The tools' failure messages: one line saying what happened and what to do, and the exit
/// status the tools promise (0 ok, 1 runtime failure, 2 usage error).
final class ToolMessageTests: XCTestCase {
    func executable(_ name: String) throws -> String {
        let url = ClientLoopbackTests.productsDirectory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw XCTSkip("skipped: \(name) is not built next to the tests (\(url.path)); run 'swift build' first")
        }
        return url.path
    }

    /// stderr lines, without empty ones.
    func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    /// `ntpclient --once` against a server run by `script`: exit 1 and exactly one line, which
    /// must not ask whether a server is running (one did answer).
    func assertOnceFailsInOneLine(_ label: String, mentioning words: [String],
                                  script: @escaping ScriptedServer.Script) throws {
        let server = try ScriptedServer(script: script)
        addTeardownBlock { server.shutdown() }
        let result = try runChildProcess(try executable("ntpclient"), ["--once", "\(server.address)"])
        XCTAssertEqual(result.status, 1, "\(label): \(result.stderr)")
        XCTAssertEqual(lines(result.stderr).count, 1, "\(label): one line, got: \(result.stderr)")
        XCTAssertFalse(result.stderr.contains("running"), "\(label): a server answered, so do not ask whether one runs: \(result.stderr)")
        for word in words {
            XCTAssertTrue(result.stderr.contains(word), "\(label): should mention '\(word)': \(result.stderr)")
        }
    }

    func testOnceAgainstADeadPortSaysSoInOneLine() throws {
        let port = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))
        let address = try port.localAddress()
        port.close()
        let result = try runChildProcess(try executable("ntpclient"), ["--once", "\(address)"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(lines(result.stderr).count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("no answer") && result.stderr.contains("running"), result.stderr)
    }

    func testOnceAgainstAnUnsynchronisedServerNamesTheReason() throws {
        try assertOnceFailsInOneLine("LI 3", mentioning: ["unsynchronised"]) { request, reply, _ in
            var response = ScriptedServer.response(to: request)
            response.leapIndicator = .unsynchronized
            reply(response)
        }
    }

    func testOnceAgainstForgedOriginsNamesTheReason() throws {
        try assertOnceFailsInOneLine("bogus origin", mentioning: ["bogus-origin"]) { request, reply, _ in
            var response = ScriptedServer.response(to: request)
            response.originTimestamp = NTPTimestamp(rawValue: request.transmitTimestamp.rawValue ^ 1)
            reply(response)
        }
    }

    func testOnceAgainstAnUnknownKissCodeNamesIt() throws {
        try assertOnceFailsInOneLine("unknown kiss", mentioning: ["kiss", "ZZZZ"]) { request, reply, _ in
            reply(ScriptedServer.kiss(NTPReferenceID(code: "ZZZZ")!, to: request))
        }
    }

    func testDenyIsReportedOnce() throws {
        let server = try ScriptedServer.kissing(.deny)
        addTeardownBlock { server.shutdown() }
        for arguments in [["--once"], ["--poll", "1", "--count", "3"]] {
            let result = try runChildProcess(try executable("ntpclient"), arguments + ["\(server.address)"])
            XCTAssertEqual(result.status, 1, "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.components(separatedBy: "DENY").count - 1, 1, "\(arguments): reported once: \(result.stderr)")
        }
    }

    func testUnresolvableHostIsARuntimeFailure() throws {
        let result = try runChildProcess(try executable("ntpclient"), ["--once", "no-such-host.invalid"])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertEqual(lines(result.stderr).count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("no-such-host.invalid"), result.stderr)
    }

    func testPortZeroIsAUsageError() throws {
        for arguments in [["--once", "127.0.0.1:0"], ["--count", "1", "127.0.0.1:0"]] {
            let result = try runChildProcess(try executable("ntpclient"), arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("port 0") && !result.stderr.contains("Invalid argument"), result.stderr)
        }
    }

    func testNowFromADirectorySaysItIsADirectory() throws {
        let result = try runChildProcess(try executable("ntpclient"), ["now", "--from", NSTemporaryDirectory()])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("directory") && result.stderr.contains("--publish"), result.stderr)
        XCTAssertFalse(result.stderr.contains("No such device"), result.stderr)
    }

    func testBareNtplabReportsUnknownOptionsAsItsOwn() throws {
        let result = try runChildProcess(try executable("ntplab"), ["--bogus"])
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.hasPrefix("ntplab: unknown option --bogus"), result.stderr)
        XCTAssertFalse(result.stderr.contains("ntplab run"), result.stderr)
    }

    /// A run whose lab path strays past the calibration tolerance stops before its clients
    /// start and exits 1, saying why and how to run anyway; with --ignore-calibration the same
    /// run goes on and exits 0, the failure still said. (A tolerance of 0 µs no path meets.)
    func testFailedCalibrationStopsANamedRunUnlessIgnored() throws {
        let ntplab = try executable("ntplab")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calibration-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let arguments = ["run", "--scenario", "lan-stratum1", "--duration", "10", "--poll", "1", "--calibration-tolerance", "0",
                         "--svg", directory + "/plot.svg"]
        let stopped = try runChildProcess(ntplab, arguments)
        XCTAssertEqual(stopped.status, 1, stopped.stderr)
        XCTAssertTrue(stopped.stderr.contains("calibration") && stopped.stderr.contains("--ignore-calibration"), stopped.stderr)
        XCTAssertFalse(stopped.stdout.contains("ntpclient "), "a stopped run printed client figures: \(stopped.stdout)")
        let ignored = try runChildProcess(ntplab, arguments + ["--ignore-calibration"])
        XCTAssertEqual(ignored.status, 0, ignored.stderr)
        XCTAssertTrue(ignored.stdout.contains("CALIBRATION FAILED"), ignored.stdout)
        XCTAssertTrue(ignored.stdout.contains("ntpclient "), "no client figures: \(ignored.stdout)")
    }

    /// The plot a bare `ntplab` run writes must not show up as an untracked file.
    func testDefaultPlotIsIgnoredByGit() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/git"),
              FileManager.default.fileExists(atPath: root.appendingPathComponent(".git").path) else {
            throw XCTSkip("skipped: git or the checkout's .git is missing, so .gitignore cannot be asked")
        }
        let result = try runChildProcess("/usr/bin/git", ["-C", root.path, "check-ignore", "-q", "ntplab-lan-stratum1.svg"])
        XCTAssertEqual(result.status, 0, "git does not ignore ntplab-lan-stratum1.svg: \(result.stderr)")
    }

    // MARK: configuration files

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func writeTemporaryFile(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "stratum-config-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).conf"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { unlink(path) }
        return path
    }

    func testConfigurationErrorsNameTheFileAndLine() throws {
        let path = try writeTemporaryFile("# stratumd\nlisten 127.0.0.1:0\nthreads many\n")
        let bad = try runChildProcess(try executable("stratumd"), ["--config", path])
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertEqual(bad.stderr, "stratumd: \(path):3: threads wants a whole number from 1 to 256, not 'many'\n")
        let unknown = try writeTemporaryFile("listen 127.0.0.1:0\nlisten-on 127.0.0.1:0\n")
        let result = try runChildProcess(try executable("ntpclient"), ["--config", unknown])
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.hasPrefix("ntpclient: \(unknown):1: unknown option 'listen'"), result.stderr)
        let missing = try runChildProcess(try executable("stratumd"), ["--config", "/nonexistent/stratumd.conf"])
        XCTAssertEqual(missing.status, 1, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("/nonexistent/stratumd.conf") && missing.stderr.contains("No such file"), missing.stderr)
    }

    /// The shipped examples are accepted as they are, and the command line overrides them
    /// (here: the port 123 they name, which needs privileges).
    func testShippedExamplesAreAcceptedAndTheCommandLineOverridesThem() throws {
        let serverExample = Self.repositoryRoot.appendingPathComponent("examples/stratumd.conf").path
        let server = try runChildProcess(try executable("stratumd"),
                                         ["--config", serverExample, "--listen", "127.0.0.1:0", "--threads", "1"], timeoutSeconds: 3)
        XCTAssertEqual(server.status, 0, "stopped by SIGTERM after 3 s: \(server.stderr)")
        XCTAssertTrue(server.stdout.contains("serving on 127.0.0.1:") && server.stdout.contains("refid GPS")
                      && server.stdout.contains("with 1 worker"), server.stdout)
        let clientExample = Self.repositoryRoot.appendingPathComponent("examples/ntpclient.conf").path
        let silent = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))
        defer { silent.close() }
        let client = try runChildProcess(try executable("ntpclient"),
                                         ["--config", clientExample, "--count", "1", "--poll", "1", "\(try silent.localAddress())"])
        XCTAssertEqual(client.status, 1, client.stderr)
        XCTAssertTrue(client.stderr.contains("did not synchronise"), "the file was accepted and the HOST argument won: \(client.stderr)")
    }
}
