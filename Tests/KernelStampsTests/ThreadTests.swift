import XCTest
import Synchronization
@testable import KernelStamps
#if canImport(Glibc)
import Glibc
#endif

final class ThreadTests: XCTestCase {
    /// The body runs on another thread, with the name and nice value it was started with
    /// (raising one's own nice needs no privilege), and `join` waits for it to finish.
    func testStartedThreadRunsBodyWithItsOptions() throws {
        let seen = Mutex<(nice: Int32, name: String, sameThread: Bool)?>(nil)
        let starter = pthread_self()
        let thread = try StartedThread(ThreadOptions(name: "ks-test-thread", scheduling: .normal(nice: 7))) {
            errno = 0
            let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            let name = callingThreadName()
            let same = pthread_equal(pthread_self(), starter) != 0
            seen.withLock { $0 = (nice, name, same) }
        }
        thread.join()
        let result = try XCTUnwrap(seen.withLock { $0 }, "the body did not run before join returned")
        XCTAssertFalse(result.sameThread, "the body ran on the starting thread")
        XCTAssertEqual(result.nice, 7)
        XCTAssertEqual(result.name, "ks-test-thread")
        XCTAssertEqual(thread.optionsApplied, true)
    }

    /// A name longer than the kernel's 15 bytes is cut, not refused.
    func testLongNameIsTruncated() throws {
        let seen = Mutex<String?>(nil)
        let thread = try StartedThread(ThreadOptions(name: "a-name-much-longer-than-fifteen-bytes")) {
            let name = callingThreadName()
            seen.withLock { $0 = name }
        }
        thread.join()
        XCTAssertEqual(seen.withLock { $0 }, "a-name-much-lon")
        XCTAssertEqual(thread.optionsApplied, true)
    }

    /// A CPU that does not exist is reported as not applied, and the body still runs.
    func testImpossibleCPUIsReportedNotApplied() throws {
        let ran = Mutex(false)
        let thread = try StartedThread(ThreadOptions(cpu: 100_000)) { ran.withLock { $0 = true } }
        thread.join()
        XCTAssertTrue(ran.withLock { $0 })
        XCTAssertEqual(thread.optionsApplied, false)
    }
}

/// The calling thread's name as the kernel keeps it (/proc/thread-self/comm).
private func callingThreadName() -> String {
    var buffer = [UInt8](repeating: 0, count: 32)
    let fd = open("/proc/thread-self/comm", O_RDONLY)
    guard fd >= 0 else { return "" }
    let count = read(fd, &buffer, buffer.count)
    close(fd)
    guard count > 0 else { return "" }
    return String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}
