import XCTest
@testable import KernelStamps
#if canImport(Glibc)
import Glibc
#endif

final class ClockTests: XCTestCase {
    func testRealtimeToRawConversionIsConsistent() {
        // Take the best of a few attempts so a preemption between reads cannot fail the test.
        var bestError = Int64.max
        for _ in 0..<5 {
            let raw = monotonicRawNanoseconds()
            let realtime = realtimeNanoseconds()
            let shift = ClockDomainShift.measure()
            XCTAssertGreaterThanOrEqual(shift.bracketWidthNanoseconds, 0)
            XCTAssertEqual(shift.realtimeNanoseconds(fromRaw: shift.rawNanoseconds(fromRealtime: realtime)), realtime)
            bestError = min(bestError, abs(shift.rawNanoseconds(fromRealtime: realtime) - raw))
        }
        XCTAssertLessThan(bestError, 50_000, "realtime read converted to raw is \(bestError) ns from the raw read")
    }

    func testClocksAdvanceAndResolution() {
        let r1 = monotonicRawNanoseconds(), t1 = realtimeNanoseconds()
        let r2 = monotonicRawNanoseconds(), t2 = realtimeNanoseconds()
        XCTAssertGreaterThanOrEqual(r2, r1)
        XCTAssertGreaterThan(t1, 1_500_000_000 * 1_000_000_000 as Int64) // after 2017
        XCTAssertGreaterThanOrEqual(t2, t1)
        let resolution = clockResolutionNanoseconds(.realtime)
        XCTAssertGreaterThan(resolution, 0)
        XCTAssertLessThanOrEqual(resolution, 10_000_000)
    }

    func testMeasuredPrecisionIsPlausible() {
        let precision = measuredClockPrecision()
        // Not finer than the clock's resolution, and a clock read takes well under a millisecond.
        let resolutionSeconds = Double(clockResolutionNanoseconds(.realtime)) * 1e-9
        XCTAssertGreaterThanOrEqual(pow(2.0, Double(precision)), resolutionSeconds)
        XCTAssertLessThanOrEqual(precision, -10)
        XCTAssertGreaterThanOrEqual(precision, -32)
    }

    func testHostClockStatusReadsWithoutChangingTheClock() throws {
        let first = try HostClockStatus.read()
        let second = try HostClockStatus.read()
        // Reading must not change the discipline: status bits, frequency and tick stay put.
        XCTAssertEqual(first.statusBits, second.statusBits)
        XCTAssertEqual(first.frequencyScaledPPM, second.frequencyScaledPPM)
        XCTAssertEqual(first.tickMicroseconds, second.tickMicroseconds)
        XCTAssertEqual(first.unsynchronised, first.statusBits & 0x40 != 0)
        XCTAssertEqual(first.isSynchronised, !first.unsynchronised && first.leapState != .error)
        XCTAssertGreaterThanOrEqual(first.maximumErrorMicroseconds, 0)
        XCTAssertGreaterThanOrEqual(first.estimatedErrorMicroseconds, 0)
        XCTAssertGreaterThan(first.tickMicroseconds, 0)
    }

    func testHostClockStatusDerivesUnsyncFromBits() {
        let unsync = HostClockStatus(leapState: .error, statusBits: 0x40 | 0x2000, maximumErrorMicroseconds: 16_000_000, estimatedErrorMicroseconds: 0)
        XCTAssertTrue(unsync.unsynchronised)
        XCTAssertFalse(unsync.isSynchronised)
        let synced = HostClockStatus(leapState: .insertPending, statusBits: 0x01 | 0x10, maximumErrorMicroseconds: 1000, estimatedErrorMicroseconds: 5)
        XCTAssertTrue(synced.isSynchronised)
    }
}

final class ProcessTests: XCTestCase {
    func testDropPrivilegesToUnknownUserSaysSo() {
        XCTAssertThrowsError(try dropPrivileges(toUser: "no-such-user-kernelstamps")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("no-such-user-kernelstamps"), text)
            XCTAssertTrue(text.contains("no such user"), text)
        }
    }

    func testSignalArrivesOnSignalfd() throws {
        // SIGUSR2 blocked in this thread and raised at this thread only: it lands on the
        // signalfd and never reaches another thread's default action.
        let receiver = try SignalReceiver(signals: [SIGUSR2])
        defer { receiver.close() }
        XCTAssertNil(try receiver.pending())
        SignalReceiver.raiseInCurrentThread(SIGUSR2)
        XCTAssertEqual(try receiver.next(timeoutNanoseconds: 1_000_000_000), SIGUSR2)
        XCTAssertNil(try receiver.pending())
    }
}
