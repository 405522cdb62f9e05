import XCTest
import KernelStamps
@testable import NTPServer
import NTPPacket

final class ResponderTests: XCTestCase {
    /// Every client request captured from chrony and ntpdig gets a response that obeys
    /// RFC 5905 §8: mode 4, version copied, origin = request transmit, receive = our RX
    /// stamp, server fields from the state, 48 bytes, no longer than the request.
    func testVectorRequestsGetConformingResponses() throws {
        let requests = try loadVectors().filter { $0.direction == "client->server" }
        XCTAssertGreaterThan(requests.count, 20)
        for (index, vector) in requests.enumerated() {
            let core = ServerCore(state: testState, rateLimit: nil)
            let rx: Int64 = 1_795_000_000_000_000_000 + Int64(index)
            let (outcome, response) = respond(core, vector.bytes, receive: rx)
            let requestHeader = try header(vector.bytes)
            XCTAssertEqual(outcome.length, 48, vector.origin)
            XCTAssertLessThanOrEqual(response.count, vector.bytes.count)
            let answer = try header(response)
            XCTAssertEqual(answer.mode, .server)
            XCTAssertEqual(answer.version, requestHeader.version, vector.origin)
            XCTAssertEqual(answer.originTimestamp, requestHeader.transmitTimestamp, vector.origin)
            XCTAssertEqual(answer.receiveTimestamp, NTPTimestamp(unixNanoseconds: rx))
            XCTAssertEqual(answer.stratum, 1)
            XCTAssertEqual(answer.referenceID, .gps)
            XCTAssertEqual(answer.precision, -24)
            XCTAssertEqual(answer.rootDispersion, NTPShortTime(rawValue: 3))
            XCTAssertEqual(answer.leapIndicator, .noWarning, "ntpdig's LI 3 in requests must not leak into responses")
            XCTAssertEqual(answer.referenceTimestamp, testState.referenceTimestamp)
            XCTAssertTrue(answer.transmitTimestamp.isZero, "transmit is left for the send-time patch")
            XCTAssertTrue(outcome.needsTransmitPatch)
            XCTAssertTrue(NTPResponder.pollRange.contains(answer.poll))
        }
    }

    /// The server's responses in the vectors are not requests: mode 4 is never answered.
    func testVectorResponsesAreNotAnswered() throws {
        for vector in try loadVectors().filter({ $0.direction == "server->client" }) {
            let core = ServerCore(state: testState, rateLimit: nil)
            let (outcome, _) = respond(core, vector.bytes)
            XCTAssertEqual(outcome.length, 0)
            XCTAssertEqual(outcome.drop, .notClientMode)
        }
    }

    /// Modes 0–7 × versions 0–7: only mode 3 with version 1...4 is answered; modes 6/7 are
    /// control; the rest are counted as not client mode or bad version.
    func testOnlyClientModeVersionsOneToFourAreAnswered() {
        for mode: UInt8 in 0...7 {
            for version: UInt8 in 0...7 {
                let core = ServerCore(state: testState, rateLimit: nil)
                let (outcome, response) = respond(core, request(mode: mode, version: version))
                let answerable = mode == 3 && (1...4).contains(version)
                XCTAssertEqual(outcome.length > 0, answerable, "mode \(mode) version \(version)")
                if answerable {
                    XCTAssertEqual(response[0] & 7, 4)
                    XCTAssertEqual((response[0] >> 3) & 7, version)
                } else if mode == 6 || mode == 7 {
                    XCTAssertEqual(outcome.drop, .controlMode)
                    XCTAssertEqual(core.counters.controlMode, 1)
                } else if mode != 3 {
                    XCTAssertEqual(outcome.drop, .notClientMode)
                    XCTAssertEqual(core.counters.notClientMode, 1)
                } else {
                    XCTAssertEqual(outcome.drop, .unsupportedVersion)
                    XCTAssertEqual(core.counters.unsupportedVersion, 1)
                }
            }
        }
    }

    /// No amplification: for every length 0...1500 of a mode-3 v4 request (padded with
    /// zeros, or with a valid MAC-shaped trailer), the response is never longer than the
    /// request, and requests shorter than 48 bytes get nothing.
    func testResponseNeverLongerThanRequest() {
        let core = ServerCore(state: testState, rateLimit: nil)
        for length in 0...1500 {
            for fill: UInt8 in [0x00, 0x5A] {
                var bytes = request(length: max(length, 48))
                bytes = Array(bytes.prefix(length))
                if length > 48 { for i in 48..<length { bytes[i] = fill } }
                let (outcome, response) = respond(core, bytes)
                XCTAssertLessThanOrEqual(response.count, length, "length \(length)")
                XCTAssertLessThanOrEqual(outcome.length, length)
                if length < 48 { XCTAssertEqual(outcome.length, 0) }
            }
        }
    }

    /// Requests with a MAC (chrony's AES-CMAC and SHA1 vectors, 68/72 bytes) or NTS extension
    /// fields (228 bytes) get a plain 48-byte response; garbage after the header is dropped.
    func testTrailersGetPlainResponsesAndGarbageIsMalformed() throws {
        let vectors = try loadVectors().filter { $0.direction == "client->server" && $0.bytes.count > 48 }
        XCTAssertFalse(vectors.isEmpty)
        for vector in vectors {
            let (outcome, response) = respond(ServerCore(state: testState, rateLimit: nil), vector.bytes)
            XCTAssertEqual(response.count, 48, vector.origin)
            XCTAssertEqual(outcome.drop, nil)
        }
        // 48 + 7 bytes: neither an extension field nor a 4/20/24-byte MAC.
        let core = ServerCore(state: testState, rateLimit: nil)
        let (outcome, _) = respond(core, request(length: 55))
        XCTAssertEqual(outcome.drop, .malformed)
        XCTAssertEqual(core.counters.malformed, 1)
    }

    /// Poll is echoed within [3, 17].
    func testPollIsClampedEcho() throws {
        for (sent, expected) in [(Int8(-6), Int8(3)), (3, 3), (6, 6), (10, 10), (17, 17), (30, 17), (127, 17)] {
            let (_, response) = respond(ServerCore(state: testState, rateLimit: nil), request(poll: sent))
            XCTAssertEqual(try header(response).poll, expected, "poll \(sent)")
        }
    }

    func testTransmitPatchWritesLastEightBytes() throws {
        var (_, response) = respond(ServerCore(state: testState, rateLimit: nil), request())
        let stamp = NTPTimestamp(unixNanoseconds: 1_800_000_000_500_000_000)
        let before = Array(response.prefix(40))
        response.withUnsafeMutableBytes { NTPResponder.patchTransmitTimestamp(stamp, in: $0.baseAddress!) }
        XCTAssertEqual(try header(response).transmitTimestamp, stamp)
        XCTAssertEqual(Array(response.prefix(40)), before)
    }

    /// Host clock → state: unsynchronised is LI 3 unless served explicitly; leap pending
    /// shows in LI; root dispersion is maxerror when synchronised.
    func testStateFromHostClock() {
        let identity = ServerState.Identity(stratum: 1, referenceID: .pps, precision: -20, serveUnsynchronised: false)
        let unsync = HostClockStatus(leapState: .error, statusBits: 0x40, maximumErrorMicroseconds: 16_000_000, estimatedErrorMicroseconds: 16_000_000)
        XCTAssertEqual(ServerState(hostClock: unsync, identity: identity, nowUnixNanoseconds: 0).leapIndicator, .unsynchronized)
        var serving = identity
        serving.serveUnsynchronised = true
        let served = ServerState(hostClock: unsync, identity: serving, nowUnixNanoseconds: 0)
        XCTAssertEqual(served.leapIndicator, .noWarning)
        XCTAssertLessThanOrEqual(served.rootDispersion.nanoseconds, 15_259, "one precision step, rounded up to the 16.16 format (15.3 µs), not 16 s")
        let insert = HostClockStatus(leapState: .insertPending, statusBits: 0x1, maximumErrorMicroseconds: 1500, estimatedErrorMicroseconds: 10)
        let state = ServerState(hostClock: insert, identity: identity, nowUnixNanoseconds: 1_700_000_000_000_000_000)
        XCTAssertEqual(state.leapIndicator, .lastMinuteHas61Seconds)
        XCTAssertEqual(state.rootDispersion, NTPShortTime(nanoseconds: 1_500_000))
        XCTAssertEqual(state.referenceTimestamp, NTPTimestamp(unixNanoseconds: 1_700_000_000_000_000_000))
        XCTAssertEqual(state.referenceID, .pps)
        let delete = HostClockStatus(leapState: .deletePending, statusBits: 0, maximumErrorMicroseconds: 1, estimatedErrorMicroseconds: 1)
        XCTAssertEqual(ServerState(hostClock: delete, identity: identity, nowUnixNanoseconds: 0).leapIndicator, .lastMinuteHas59Seconds)
    }
}
