import XCTest
import FeedforwardClock
import KernelStamps
import NTPPacket
@testable import NTPClient

/// A fixed sequence of "random" words, to see exactly what request building does with them.
struct ScriptedGenerator: RandomNumberGenerator {
    var words: [UInt64]
    var index = 0
    mutating func next() -> UInt64 {
        defer { index += 1 }
        return words[index % words.count]
    }
}

let server = SocketAddress.loopbackIPv4(port: 12300)
let sentTransmit = NTPTimestamp(rawValue: 0x8a3f_01c2_7d55_e913)
/// 2026-11-21T18:43:25Z and a little later, as NTP timestamps.
let serverReceiveUnix: Int64 = 1_795_286_605_271_634_559
let serverTransmitUnix: Int64 = serverReceiveUnix + 27_000

func responseHeader(origin: NTPTimestamp = sentTransmit) -> NTPHeader {
    NTPHeader(leapIndicator: .noWarning, version: 4, mode: .server, stratum: 1, poll: 4, precision: -24,
              rootDelay: NTPShortTime(nanoseconds: 1_000_000), rootDispersion: NTPShortTime(nanoseconds: 500_000),
              referenceID: .gps, referenceTimestamp: NTPTimestamp(unixNanoseconds: serverReceiveUnix - 1_000_000_000),
              originTimestamp: origin,
              receiveTimestamp: NTPTimestamp(unixNanoseconds: serverReceiveUnix),
              transmitTimestamp: NTPTimestamp(unixNanoseconds: serverTransmitUnix))
}

func encoded(_ header: NTPHeader, extraBytes: Int = 0) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: NTPHeader.byteCount + extraBytes)
    bytes.withUnsafeMutableBytes { _ = try! header.encode(into: $0) }
    return bytes
}

func verdict(_ bytes: [UInt8], from source: SocketAddress? = server,
             request: OutstandingRequest = OutstandingRequest(transmitTimestamp: sentTransmit, server: server)) -> ResponseVerdict {
    bytes.withUnsafeBytes { validateResponse($0, from: source, for: request) }
}

func rejectionKind(_ v: ResponseVerdict) -> ResponseRejectionKind? {
    if case .rejected(let r) = v { return r.kind }
    return nil
}

final class RequestTests: XCTestCase {
    func testRequestIsModeThreeVersionFourWithOnlyTheTransmitTimestamp() throws {
        var buffer = [UInt8](repeating: 0xAA, count: 48)
        let transmit = NTPTimestamp(rawValue: 0x0123_4567_89ab_cdef)
        let written = try buffer.withUnsafeMutableBytes { try ClientRequest.encode(transmitTimestamp: transmit, into: $0) }
        XCTAssertEqual(written, 48)
        XCTAssertEqual(buffer[0], 0b00_100_011, "LI 0, version 4, mode 3")
        XCTAssertEqual(Array(buffer[1..<40]), [UInt8](repeating: 0, count: 39), "data minimization: nothing but the transmit field")
        XCTAssertEqual(Array(buffer[40..<48]), [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef])
        let decoded = try buffer.withUnsafeBytes { try NTPHeader(decoding: $0) }
        XCTAssertEqual(decoded.mode, .client)
        XCTAssertEqual(decoded.version, 4)
        XCTAssertEqual(decoded.transmitTimestamp, transmit)
    }

    func testTransmitTimestampIsTheGeneratorsWordAndNeverZero() {
        var scripted = ScriptedGenerator(words: [0, 0, 0xdead_beef_0000_0001])
        XCTAssertEqual(ClientRequest.randomTransmitTimestamp(using: &scripted).rawValue, 0xdead_beef_0000_0001)
        XCTAssertEqual(scripted.index, 3, "zero words are skipped")
    }

    func testSystemRandomTransmitTimestampsDiffer() {
        // Held in a class: passing a zero-sized local (SystemRandomNumberGenerator) inout hands
        // the callee an arbitrary address, which ThreadSanitizer's access check then faults on
        // (swift test --sanitize=thread, Swift 6.3). Exchanger holds its generator the same way.
        final class Holder { var generator = SystemRandomNumberGenerator() }
        let holder = Holder()
        let values = Set((0..<64).map { _ in ClientRequest.randomTransmitTimestamp(using: &holder.generator).rawValue })
        XCTAssertEqual(values.count, 64, "64 random 64-bit values collide with probability ~1e-16")
        XCTAssertFalse(values.contains(0))
        // Not the time: a real clock would put all of them within seconds of each other.
        let seconds = values.map { $0 >> 32 }
        XCTAssertGreaterThan(seconds.max()! - seconds.min()!, 1 << 20)
    }
}

final class ValidationTests: XCTestCase {
    func testGenuineResponseIsValidAndGivesTheServerTimes() throws {
        let v = verdict(encoded(responseHeader()))
        guard case .valid(let response) = v else { return XCTFail("expected valid, got \(v)") }
        let stamp = response.stamp(ta: 1_000, tf: 100_000, pivotUnixNanoseconds: serverReceiveUnix)
        XCTAssertEqual(stamp.ta, 1_000)
        XCTAssertEqual(stamp.tf, 100_000)
        XCTAssertEqual(stamp.tb, serverReceiveUnix)
        XCTAssertEqual(stamp.te, serverTransmitUnix)
        XCTAssertEqual(stamp.stratum, 1)
        XCTAssertEqual(stamp.referenceID, NTPReferenceID.gps.rawValue)
        XCTAssertEqual(stamp.leap, 0)
        // Short format truncates to whole ns of its 1/65536 s steps.
        XCTAssertEqual(Double(stamp.rootDelayNanoseconds), 1_000_000, accuracy: 16_000)
        XCTAssertEqual(Double(stamp.rootDispersionNanoseconds), 500_000, accuracy: 16_000)
    }

    func testVersionThreeResponseIsAccepted() {
        var header = responseHeader()
        header.version = 3
        XCTAssertNil(rejectionKind(verdict(encoded(header))))
    }

    func testForgedOriginIsBogus() {
        let v = verdict(encoded(responseHeader(origin: NTPTimestamp(rawValue: sentTransmit.rawValue ^ 1))))
        XCTAssertEqual(rejectionKind(v), .bogusOrigin)
        XCTAssertEqual(rejectionKind(verdict(encoded(responseHeader(origin: .zero)))), .bogusOrigin)
    }

    func testWrongPortAndWrongAddressAreRejected() {
        let bytes = encoded(responseHeader())
        XCTAssertEqual(rejectionKind(verdict(bytes, from: server.withPort(12301))), .wrongPort)
        XCTAssertEqual(rejectionKind(verdict(bytes, from: SocketAddress(ipv4: 0x7f00_0002, port: 12300))), .wrongAddress)
        XCTAssertEqual(rejectionKind(verdict(bytes, from: .loopbackIPv6(port: 12300))), .wrongAddress)
        XCTAssertEqual(rejectionKind(verdict(bytes, from: nil)), .wrongAddress)
    }

    func testSecondResponseToAnsweredRequestIsDuplicate() {
        let request = OutstandingRequest(transmitTimestamp: sentTransmit, server: server, answered: true)
        XCTAssertEqual(rejectionKind(verdict(encoded(responseHeader()), request: request)), .duplicate)
    }

    func testZeroTimestampsAreRejected() {
        var header = responseHeader()
        header.receiveTimestamp = .zero
        XCTAssertEqual(rejectionKind(verdict(encoded(header))), .zeroTimestamp)
        header = responseHeader()
        header.transmitTimestamp = .zero
        XCTAssertEqual(rejectionKind(verdict(encoded(header))), .zeroTimestamp)
    }

    func testTransmitBeforeReceiveIsRejected() {
        var header = responseHeader()
        header.transmitTimestamp = NTPTimestamp(unixNanoseconds: serverReceiveUnix - 1_000)
        XCTAssertEqual(rejectionKind(verdict(encoded(header))), .reversedTimestamps)
    }

    func testTimestampsAcrossTheEraBoundaryAreNotReversed() {
        var header = responseHeader()
        header.receiveTimestamp = NTPTimestamp(seconds: .max, fraction: .max - 100)
        header.transmitTimestamp = NTPTimestamp(seconds: 0, fraction: 100)
        XCTAssertNil(rejectionKind(verdict(encoded(header))), "2036 rollover: Te is 47 ns after Tb")
    }

    func testUnsynchronisedServerIsNotUsed() {
        var header = responseHeader()
        header.leapIndicator = .unsynchronized
        XCTAssertEqual(rejectionKind(verdict(encoded(header))), .serverUnsynchronised)
        header = responseHeader()
        header.stratum = 16
        XCTAssertEqual(rejectionKind(verdict(encoded(header))), .serverUnsynchronised)
        header.stratum = 200
        XCTAssertEqual(rejectionKind(verdict(encoded(header))), .serverUnsynchronised)
    }

    func testKissCodesAreRecognisedWithTheirActions() {
        let cases: [(NTPReferenceID, ResponseRejectionKind, KissAction)] = [
            (.rate, .kissRate, .reducePollRate),
            (.deny, .kissDeny, .stopPolling),
            (.rstr, .kissRestrict, .stopPolling),
            (.kissInit, .kissOther, .ignore),
            (.step, .kissOther, .ignore),
        ]
        for (code, kind, action) in cases {
            var header = responseHeader()
            header.stratum = 0
            header.referenceID = code
            let v = verdict(encoded(header))
            XCTAssertEqual(rejectionKind(v), kind, "\(code.asciiCode ?? "?")")
            XCTAssertEqual(v, .rejected(.kiss(code, action)))
        }
    }

    func testKissWithForgedOriginIsNotBelieved() {
        var header = responseHeader(origin: NTPTimestamp(rawValue: 12345))
        header.stratum = 0
        header.referenceID = .deny
        XCTAssertEqual(rejectionKind(verdict(encoded(header))), .bogusOrigin,
                       "an off-path DENY must not stop the client")
    }

    func testWrongModeAndVersionAreRejected() {
        var header = responseHeader()
        header.mode = .client
        XCTAssertEqual(rejectionKind(verdict(encoded(header))), .notServerMode)
        header.mode = .symmetricPassive
        XCTAssertEqual(rejectionKind(verdict(encoded(header))), .notServerMode)
        header = responseHeader()
        header.version = 5
        XCTAssertEqual(rejectionKind(verdict(encoded(header))), .unsupportedVersion)
    }

    func testShortOrMalformedPacketIsRejected() {
        XCTAssertEqual(rejectionKind(verdict(Array(encoded(responseHeader()).prefix(47)))), .malformed)
        XCTAssertEqual(rejectionKind(verdict(encoded(responseHeader(), extraBytes: 7))), .malformed)
        // A 20-byte MAC trailer is fine.
        XCTAssertNil(rejectionKind(verdict(encoded(responseHeader(), extraBytes: 20))))
    }

    func testCountersHoldEveryKindOfStampRefusal() {
        // A refusal added to the filter must have a counter slot: recording each one once
        // counts it once and logs it once.
        var counters = ClientCounters()
        for rejection in StampRejection.allCases {
            XCTAssertTrue(counters.record(rejection), "\(rejection)")
            XCTAssertFalse(counters.record(rejection), "\(rejection)")
        }
        XCTAssertEqual(counters.stamps, [Int](repeating: 2, count: StampRejection.allCases.count))
    }

    func testCountersLogEachKindOnce() {
        var counters = ClientCounters()
        XCTAssertTrue(counters.record(.bogusOrigin(.zero)))
        XCTAssertFalse(counters.record(.bogusOrigin(NTPTimestamp(rawValue: 7))))
        XCTAssertTrue(counters.record(.wrongPort(1)))
        XCTAssertTrue(counters.record(StampRejection.duplicate))
        XCTAssertFalse(counters.record(StampRejection.duplicate))
        counters.recordTimeout()
        XCTAssertEqual(counters.count(.bogusOrigin), 2)
        XCTAssertEqual(counters.count(.wrongPort), 1)
        XCTAssertEqual(counters.count(.duplicate), 0)
        XCTAssertEqual(counters.timeouts, 1)
        XCTAssertTrue(counters.summary.hasPrefix("timeouts 1, wrong-port 1, bogus-origin 2"), counters.summary)
        XCTAssertEqual(ClientCounters().summary, "none")
    }
}

final class PollScheduleTests: XCTestCase {
    func testBurstOfEightTwoSecondsApartThenPoll() {
        let schedule = PollSchedule(pollSeconds: 16)
        XCTAssertEqual((0..<10).map { schedule.secondsToNextExchange(after: $0) }, [2, 2, 2, 2, 2, 2, 2, 16, 16, 16])
        XCTAssertEqual(schedule.timeoutSeconds(after: 0), 1)
        XCTAssertEqual(schedule.timeoutSeconds(after: 9), 1)
    }

    func testShortPollIsNeverSlowedByTheBurst() {
        let schedule = PollSchedule(pollSeconds: 1)
        XCTAssertEqual((0..<10).map { schedule.secondsToNextExchange(after: $0) }, [Double](repeating: 1, count: 10))
        XCTAssertEqual(schedule.timeoutSeconds(after: 3), 0.5)
    }

    func testRateKissDoublesThePollAndEndsTheBurst() {
        var schedule = PollSchedule(pollSeconds: 16)
        schedule.reducePollRate()
        XCTAssertEqual(schedule.pollSeconds, 32)
        XCTAssertEqual(schedule.secondsToNextExchange(after: 1), 32)
        for _ in 0..<30 { schedule.reducePollRate() }
        XCTAssertEqual(schedule.pollSeconds, PollSchedule.maximumPollSeconds)
    }
}
