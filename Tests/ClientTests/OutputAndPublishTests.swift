import XCTest
import Foundation
import FeedforwardClock
import NTPPacket
@testable import NTPClient
import PublishedClock
import ToolSupport

/// Parameters whose every field is distinct, so a field written to the wrong word shows.
func distinctParameters(_ k: Int64) -> ClockParameters {
    ClockParameters(
        counterOrigin: 1_000 + k, timeAtOriginNanoseconds: 1_795_286_605_000_000_000 + k,
        timeAtOriginFraction: 0.25, periodSecondsPerTick: 1.000_002e-9, periodError: 3e-8, periodErrorBound: 4e-7,
        localPeriodSecondsPerTick: 1.000_001e-9, offsetNanoseconds: -1234.25, errorEstimateNanoseconds: 321.25,
        maxErrorNanoseconds: 45_678.5, maxErrorGrowthRate: 6e-7, lastStampCounter: 900 + k,
        nextStampExpectedCounter: 16_000_000_900 + k, leap: 1, status: [.warmUp, .periodUpdated],
        lastRTTNanoseconds: 81_000.5, minimumRTTNanoseconds: 80_000.25, naiveOffsetNanoseconds: -1100.75,
        stampCount: 17 + k)
}

final class OutputTests: XCTestCase {
    func testFormatFixed() {
        XCTAssertEqual(fixedDecimal(1.23456, 3), "1.235")
        XCTAssertEqual(fixedDecimal(-0.0004, 3), "0.000")
        XCTAssertEqual(fixedDecimal(-12.5, 0), "-13")
        XCTAssertEqual(fixedDecimal(0.05, 1), "0.1")
        XCTAssertEqual(fixedDecimal(-3.002, 2), "-3.00")
        XCTAssertEqual(fixedDecimal(7, 2), "7.00")
        XCTAssertEqual(fixedDecimal(.infinity, 2), "inf")
        XCTAssertEqual(fixedDecimal(.nan, 2), "nan")
    }

    func report(outcome: ExchangeReport.Outcome = .accepted, parameters: ClockParameters = distinctParameters(0)) -> ExchangeReport {
        ExchangeReport(exchange: 3, outcome: outcome, localTimeUnixNanoseconds: 1_795_286_605_271_634_559,
                       rttNanoseconds: 81_000.5, naiveOffsetNanoseconds: -1100.75, parameters: parameters,
                       maxErrorNanoseconds: 46_000, status: parameters.status, systemClockOffsetNanoseconds: 2_345.6,
                       userSpaceTransmitStamp: true, userSpaceReceiveStamp: false, stratum: 1, pollSeconds: 16)
    }

    func testTextLineColumns() {
        let line = report().textLine
        let columns = line.split(separator: " ").map(String.init)
        XCTAssertEqual(columns, ["2026-11-21T18:43:25.271634559Z", "81.001", "80.000", "-1.101", "-1.234", "0.030",
                                 "0.321", "46.000", "2.346", "warmup,period-updated,user-tx-stamp"])
        // Each value ends where its header column ends.
        let header = ExchangeReport.textHeader.split(separator: "\n")[0]
        for name in ["rtt_us", "minrtt_us", "naive_us", "theta_us", "perr_ppm", "err_us", "maxerr_us", "sysoff_us"] {
            let end = header.range(of: name)!.upperBound
            let offset = header.distance(from: header.startIndex, to: end)
            let index = line.index(line.startIndex, offsetBy: offset - 1)
            XCTAssertNotEqual(line[index], " ", "column \(name) misaligned")
            XCTAssertEqual(line[line.index(after: index)], " ", "column \(name) misaligned")
        }
    }

    func testTimeoutLineShowsDashesAndOutcome() {
        var r = report(outcome: .timedOut)
        r.rttNanoseconds = nil
        r.naiveOffsetNanoseconds = nil
        r.userSpaceTransmitStamp = false
        let columns = r.textLine.split(separator: " ").map(String.init)
        XCTAssertEqual(columns[1], "-")
        XCTAssertEqual(columns[3], "-")
        XCTAssertEqual(columns.last, "warmup,period-updated,timeout")
    }

    func testNoEstimateHidesClockColumns() {
        let r = report(parameters: .empty)
        let fields = Dictionary(uniqueKeysWithValues: r.fields.map { ($0.key, $0.value) })
        XCTAssertEqual(fields["maxErrorNanoseconds"], .null)
        XCTAssertEqual(fields["offsetEstimateNanoseconds"], .null)
        XCTAssertEqual(fields["status"], .strings(["unsync", "no-estimate", "user-tx-stamp"]))
    }

    func testJSONFieldsCarryUnitsAndValues() {
        let fields = report().fields
        let keys = fields.map(\.key)
        XCTAssertEqual(Set(keys).count, keys.count, "no duplicate keys")
        for key in keys where !["exchange", "time", "outcome", "stratum", "stampCount", "status"].contains(key) {
            XCTAssertTrue(["Nanoseconds", "PPM", "Seconds"].contains { key.hasSuffix($0) }, "\(key) has no unit")
        }
        let values = Dictionary(uniqueKeysWithValues: fields.map { ($0.key, $0.value) })
        XCTAssertEqual(values["rttNanoseconds"], .number(81_000.5))
        XCTAssertEqual(values["systemClockOffsetNanoseconds"], .number(2_345.6))
        XCTAssertEqual(values["maxErrorNanoseconds"], .number(46_000))
        XCTAssertEqual(values["minimumRTTNanoseconds"], .number(80_000.25))
        XCTAssertEqual(values["offsetEstimateNanoseconds"], .number(-1234.25))
        XCTAssertEqual(values["time"], .string("2026-11-21T18:43:25.271634559Z"))
        XCTAssertEqual(values["outcome"], .string("accepted"))
        if case .number(let ppm) = values["periodErrorPPM"] { XCTAssertEqual(ppm, 0.03, accuracy: 1e-12) } else { XCTFail() }
        if case .number(let ppm) = values["periodPPM"] { XCTAssertEqual(ppm, 2, accuracy: 1e-6) } else { XCTFail() }
    }

    func testSystemClockOffsetIsRealtimeMinusFeedforwardClock() {
        var p = distinctParameters(0)
        p.periodSecondsPerTick = 1e-9
        p.localPeriodSecondsPerTick = 1e-9
        p.timeAtOriginFraction = 0.25
        // Ca at counterOrigin + 1000 is timeAtOrigin + 1000.25 ns; the system clock reads 500 ns more.
        let reading = SystemClockReading(rawNanoseconds: p.counterOrigin + 1_000,
                                         realtimeNanoseconds: p.timeAtOriginNanoseconds + 1_500, bracketWidthNanoseconds: 40)
        XCTAssertEqual(reading.systemClockOffset(from: p), 499.75, accuracy: 1e-6)
    }

    func testSNTPPicksTheSmallestDelayAndUsesNTPSigns() {
        func result(t1: Int64, t2: Int64, t3: Int64, t4: Int64) -> ExchangeResult {
            var header = responseHeader()
            header.receiveTimestamp = NTPTimestamp(unixNanoseconds: t2)
            header.transmitTimestamp = NTPTimestamp(unixNanoseconds: t3)
            return ExchangeResult(response: ServerResponse(header: header), ta: 1, tf: 2, t1Realtime: t1, t4Realtime: t4,
                                  userSpaceTransmitStamp: false, userSpaceReceiveStamp: false)
        }
        let base = serverReceiveUnix
        // Server 10 µs ahead of the system clock, symmetric 20 µs paths, 5 µs in the server.
        let good = result(t1: base, t2: base + 30_000, t3: base + 35_000, t4: base + 45_000)
        // Same server, a slow return path.
        let slow = result(t1: base, t2: base + 30_000, t3: base + 35_000, t4: base + 245_000)
        let sntp = SNTPResult(results: [slow, good], attempts: 4)!
        XCTAssertEqual(sntp.offsetNanoseconds, 10_000)
        XCTAssertEqual(sntp.delayNanoseconds, 40_000)
        XCTAssertEqual(sntp.answers, 2)
        // delay/2 + root delay/2 + root dispersion, as the server's short-format fields say.
        let header = good.response.header
        XCTAssertEqual(sntp.errorBoundNanoseconds, 20_000 + header.rootDelay.nanoseconds / 2 + header.rootDispersion.nanoseconds)
        XCTAssertGreaterThan(sntp.errorBoundNanoseconds, 20_000 + 500_000 + 500_000, "short format rounds bounds up")
        XCTAssertNil(SNTPResult(results: [], attempts: 4))
    }
}

final class PublishTests: XCTestCase {
    func withBuffer(_ body: (UnsafeMutableRawPointer) throws -> Void) rethrows {
        let base = UnsafeMutableRawPointer.allocate(byteCount: PublishedClockLayout.usedByteCount, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: PublishedClockLayout.usedByteCount)
        defer { base.deallocate() }
        try body(base)
    }

    func testLayoutRoundTripAndHeader() throws {
        try withBuffer { base in
            let unset = PublishedClockBuffer(base: base, initialise: false)
            XCTAssertNotNil(unset.layoutProblem, "an all-zero region is not a published clock")
            let buffer = PublishedClockBuffer(base: base, initialise: true)
            XCTAssertNil(buffer.layoutProblem)
            let first = try XCTUnwrap(buffer.read())
            XCTAssertEqual(first.parameters, .empty, "a fresh region publishes 'no estimate'")
            let p = distinctParameters(42)
            buffer.publish(p)
            let read = try XCTUnwrap(buffer.read())
            XCTAssertEqual(read.parameters, p)
            XCTAssertEqual(read.sequence, first.sequence + 2, "one update moves the sequence by two")
            // The documented fixed layout: magic "FFCLOCK1", version 3, raw counter, then fields.
            let bytes = UnsafeRawBufferPointer(start: base, count: PublishedClockLayout.usedByteCount)
            XCTAssertEqual(Array(bytes[0..<8]), Array("FFCLOCK1".utf8))
            XCTAssertEqual(bytes.load(fromByteOffset: 8, as: UInt64.self), 3)
            XCTAssertEqual(bytes.load(fromByteOffset: 24, as: UInt64.self), 1)
            XCTAssertEqual(bytes.load(fromByteOffset: 32, as: Int64.self), p.counterOrigin)
            XCTAssertEqual(bytes.load(fromByteOffset: 40, as: Int64.self), p.timeAtOriginNanoseconds)
            XCTAssertEqual(bytes.load(fromByteOffset: 32 + 18 * 8, as: Int64.self), p.stampCount)
        }
    }

    func testWrongVersionIsReportedAndOddSequenceIsNeverRead() throws {
        try withBuffer { base in
            let buffer = PublishedClockBuffer(base: base, initialise: true)
            buffer.publish(distinctParameters(1))
            // A writer that died mid-update leaves the sequence odd: readers must not trust it.
            let sequence = base.advanced(by: 16).assumingMemoryBound(to: UInt64.self)
            let saved = sequence.pointee
            sequence.pointee = saved + 1
            XCTAssertNil(buffer.read())
            // The next writer moves on from it.
            buffer.publish(distinctParameters(2))
            XCTAssertEqual(buffer.read()?.parameters, distinctParameters(2))
            XCTAssertEqual(sequence.pointee % 2, 0)
            base.advanced(by: 8).storeBytes(of: UInt64(99), as: UInt64.self)
            XCTAssertTrue(buffer.layoutProblem?.contains("version 99") ?? false)
        }
    }

    /// A reader thread racing a writer thread never sees a torn parameter set: every field
    /// must come from the same update k.
    func testConcurrentReaderSeesWholeUpdates() throws {
        let base = UnsafeMutableRawPointer.allocate(byteCount: PublishedClockLayout.usedByteCount, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: PublishedClockLayout.usedByteCount)
        defer { base.deallocate() }
        let buffer = PublishedClockBuffer(base: base, initialise: true)
        buffer.publish(distinctParameters(0))
        let address = Int(bitPattern: base)
        let done = Atomic_Flag()
        let writer = Thread {
            let buffer = PublishedClockBuffer(base: UnsafeMutableRawPointer(bitPattern: address)!, initialise: false)
            var k: Int64 = 1
            while !done.isSet { buffer.publish(distinctParameters(k)); k += 1 }
        }
        writer.start()
        var seen = Set<Int64>()
        var previous: Int64 = -1
        for _ in 0..<200_000 {
            guard let read = buffer.read() else { continue }
            let k = read.parameters.stampCount - 17
            XCTAssertEqual(read.parameters, distinctParameters(k), "torn read")
            XCTAssertGreaterThanOrEqual(k, previous, "went backwards")
            previous = k
            seen.insert(k)
            if seen.count > 1000 { break }
        }
        done.set()
        while !writer.isFinished { usleep(1000) }
        XCTAssertGreaterThan(seen.count, 1, "the reader never overlapped the writer")
    }
}

/// A flag shared with the writer thread (the test's only shared mutable state).
final class Atomic_Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
