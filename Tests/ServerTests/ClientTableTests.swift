import XCTest
import KernelStamps
@testable import NTPServer
import NTPPacket

final class RateLimitTests: XCTestCase {
    let limit = RateLimit(intervalNanoseconds: 2_000_000_000, burst: 16)

    /// A burst of 16 passes, the 17th gets one RATE kiss, the rest of the interval is dropped.
    func testBurstThenKissOnceThenDrop() throws {
        let core = ServerCore(state: testState, rateLimit: limit)
        let t: Int64 = 10_000_000_000
        for i in 0..<16 {
            let (outcome, _) = respond(core, request(transmit: UInt64(i + 1)), now: t)
            XCTAssertEqual(outcome.kind, .basic, "request \(i)")
        }
        let (kiss, response) = respond(core, request(transmit: 99), now: t)
        XCTAssertEqual(kiss.kind, .rateKiss)
        XCTAssertEqual(response.count, 48)
        let kissHeader = try header(response)
        XCTAssertEqual(kissHeader.stratum, 0)
        XCTAssertEqual(kissHeader.kissCode, .rate)
        XCTAssertEqual(kissHeader.leapIndicator, .unsynchronized)
        XCTAssertEqual(kissHeader.originTimestamp, NTPTimestamp(rawValue: 99))
        for _ in 0..<10 {
            let (dropped, bytes) = respond(core, request(), now: t + 1_000_000_000)
            XCTAssertEqual(dropped.drop, .rateLimited)
            XCTAssertTrue(bytes.isEmpty)
        }
        XCTAssertEqual(core.counters.rateKissesSent, 1)
        XCTAssertEqual(core.counters.rateLimitedDropped, 10)
        // One interval after the kiss: one more request is allowed (one token refilled).
        let (refilled, _) = respond(core, request(), now: t + 2_000_000_000)
        XCTAssertEqual(refilled.kind, .basic)
        let (again, _) = respond(core, request(), now: t + 2_000_000_000)
        XCTAssertEqual(again.kind, .rateKiss, "a new interval allows a new kiss")
    }

    /// A client at exactly the average rate is never limited; another address is independent.
    func testSteadyRateNeverLimitedAndClientsIndependent() {
        let core = ServerCore(state: testState, rateLimit: limit)
        let other = SocketAddress(ipv4: 0x0A00_0001, port: 123)
        for i in 0..<1000 {
            let (outcome, _) = respond(core, request(), now: Int64(i) * 2_000_000_000 + 1)
            XCTAssertEqual(outcome.kind, .basic)
        }
        for _ in 0..<16 { XCTAssertEqual(respond(core, request(), source: other, now: 5).0.kind, .basic) }
        XCTAssertEqual(respond(core, request(), source: other, now: 5).0.kind, .rateKiss)
    }

    /// The table never grows: a flood of distinct addresses evicts (the stalest in the probe
    /// window) and a returning busy client keeps working.
    func testTableIsBoundedUnderAddressFlood() {
        let table = ClientTable(capacity: 1024)
        let bytes = table.memoryBytes
        var now: Int64 = 1
        for i in 0..<100_000 {
            now += 1
            let slot = table.slot(for: SocketAddress(ipv4: UInt32(i) &* 2_654_435_761, port: 1).key, now: now)
            XCTAssertTrue((0..<table.capacity).contains(slot))
        }
        XCTAssertEqual(table.memoryBytes, bytes)
        XCTAssertEqual(table.capacity, 1024)
        XCTAssertGreaterThanOrEqual(table.evictions, UInt64(100_000 - 1024))
        let key = SocketAddress(ipv4: 0x0A0B_0C0D, port: 1).key
        let slot = table.slot(for: key, now: now + 1)
        XCTAssertTrue(table.slotHolds(slot, key: key))
        XCTAssertEqual(table.slot(for: key, now: now + 2), slot, "a known client finds its own slot")
    }

    /// Eviction picks the least recently seen entry of the newcomer's probe window.
    func testEvictionTakesStalestInWindow() {
        let table = ClientTable(capacity: 16)
        var occupant: [Int: (key: SocketAddress.Key, seen: Int64)] = [:]
        var i: UInt32 = 0
        while occupant.count < 16 {
            i += 1
            let key = SocketAddress(ipv4: i, port: 1).key
            let now = Int64(i) * 10
            occupant[table.slot(for: key, now: now)] = (key, now)
        }
        let newcomer = SocketAddress(ipv4: 0xFFFF_0001, port: 1).key
        let window = (0..<ClientTable.probeWindow).map { (table.home(newcomer) + $0) & 15 }
        let expected = window.min { occupant[$0]!.seen < occupant[$1]!.seen }!
        let evictionsBefore = table.evictions
        let slot = table.slot(for: newcomer, now: 1_000_000)
        XCTAssertEqual(slot, expected)
        XCTAssertTrue(table.slotHolds(slot, key: newcomer))
        XCTAssertFalse(table.slotHolds(slot, key: occupant[expected]!.key))
        XCTAssertEqual(table.evictions, evictionsBefore + 1)
        for other in window where other != expected {
            XCTAssertTrue(table.slotHolds(other, key: occupant[other]!.key), "only the stalest is evicted")
        }
    }

    func testRateLimitOffNeverLimits() {
        let core = ServerCore(state: testState, rateLimit: nil)
        for _ in 0..<1000 { XCTAssertEqual(respond(core, request(), now: 1).0.kind, .basic) }
        XCTAssertEqual(core.counters.rateKissesSent + core.counters.rateLimitedDropped, 0)
    }
}
