import XCTest
@testable import KernelStamps

final class FileAndProcessTests: XCTestCase {
    func testWriteReadAndRemoveATemporaryFile() throws {
        let path = try makeTemporaryFile(prefix: "/tmp/ks-test-")
        XCTAssertTrue(path.hasPrefix("/tmp/ks-test-") && path.count == "/tmp/ks-test-".count + 6, path)
        XCTAssertEqual(try readTextFile(atPath: path), "")
        // Long, with multi-byte characters, so short reads and writes show.
        let text = String(repeating: "µs line\n", count: 2000)
        try writeFile(atPath: path, contents: text)
        XCTAssertEqual(try readTextFile(atPath: path), text)
        try writeFile(atPath: path, contents: "first\r\nlast one\n\n")
        XCTAssertEqual(lastLine(ofFile: path), "last one")
        XCTAssertTrue(removeFile(atPath: path))
        XCTAssertNil(try? readTextFile(atPath: path))
        XCTAssertFalse(removeFile(atPath: path))
    }

    func testWriteToAMissingDirectoryNamesThePath() {
        XCTAssertThrowsError(try writeFile(atPath: "/nonexistent-dir/x.txt", contents: "x")) { error in
            let text = (error as? KernelError)?.description ?? ""
            XCTAssertTrue(text.contains("/nonexistent-dir/x.txt") && text.contains("No such file"), text)
        }
    }

    func testTemporaryDirectoryIsMadeAndRemoved() throws {
        let directory = try makeTemporaryDirectory(prefix: "/tmp/ks-dir-")
        try writeFile(atPath: directory + "/a", contents: "a")
        XCTAssertFalse(removeEmptyDirectory(atPath: directory), "a directory with a file in it was removed")
        XCTAssertTrue(removeFile(atPath: directory + "/a"))
        XCTAssertTrue(removeEmptyDirectory(atPath: directory))
    }

    /// A child's output goes to its log file, its exit status is reported, and `stop` ends
    /// one that would run on.
    func testChildProcessLogsExitsAndStops() throws {
        guard isExecutableFile(atPath: "/bin/sh") else { throw XCTSkip("skipped: no /bin/sh to start") }
        let log = try makeTemporaryFile(prefix: "/tmp/ks-child-")
        defer { removeFile(atPath: log) }
        let quick = try ChildProcess(path: "/bin/sh", arguments: ["-c", "echo hello; echo complaint >&2; exit 3"], logPath: log)
        let deadline = clockNanoseconds(.monotonic) + 5_000_000_000
        while quick.exitedStatus() == nil && clockNanoseconds(.monotonic) < deadline { sleepNanoseconds(5_000_000) }
        XCTAssertEqual(quick.exitedStatus(), 3)
        XCTAssertEqual(try readTextFile(atPath: log), "hello\ncomplaint\n")
        let slow = try ChildProcess(path: "/bin/sh", arguments: ["-c", "sleep 30"], logPath: log)
        XCTAssertNil(slow.exitedStatus())
        XCTAssertEqual(slow.stop(), 128 + 15, "SIGTERM should end it")
        XCTAssertThrowsError(try ChildProcess(path: "/nonexistent/program", arguments: [], logPath: log))
    }
}
