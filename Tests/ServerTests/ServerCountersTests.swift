import XCTest
@testable import NTPServer

final class ServerCountersTests: XCTestCase {
    /// Totals over workers must carry every counter: `allCounters` lists each stored field
    /// once, and `add` sums each of them.
    func testAddSumsEveryCounter() {
        let fieldCount = Mirror(reflecting: ServerCounters()).children.count
        XCTAssertEqual(ServerCounters.allCounters.count, fieldCount, "a counter is missing from allCounters")
        XCTAssertEqual(Set(ServerCounters.allCounters).count, fieldCount, "a counter is listed twice")

        var a = ServerCounters(), b = ServerCounters()
        for (i, counter) in ServerCounters.allCounters.enumerated() {
            a[keyPath: counter] = UInt64(i + 1)
            b[keyPath: counter] = UInt64(100 * (i + 1))
        }
        a.add(b)
        for (i, counter) in ServerCounters.allCounters.enumerated() {
            XCTAssertEqual(a[keyPath: counter], UInt64(101 * (i + 1)), "counter \(i)")
        }
    }
}
