import XCTest
import KernelStamps
@testable import NTPServer
import NTPPacket

final class InterleavedTests: XCTestCase {
    func replay(_ core: ServerCore, _ bytes: [UInt8], receive: NTPTimestamp) -> (HandleOutcome, [UInt8]) {
        var response = [UInt8](repeating: 0, count: 48)
        let outcome = bytes.withUnsafeBytes { raw in
            response.withUnsafeMutableBytes { out in
                core.handle(request: raw, source: SocketAddress.loopbackIPv4(port: 50000).key, receiveTimestamp: receive,
                            nowMonotonicNanoseconds: 1, response: out.baseAddress!)
            }
        }
        return (outcome, response)
    }

    /// Replays chrony 4.3's xleave capture: our RX stamps are set to chronyd's, and each
    /// response's kernel TX stamp to the transmit chronyd later sent in interleaved mode.
    /// Our responses must then equal chronyd's in origin, receive and transmit: basic, basic
    /// (first interleaved request: no TX stamp yet), interleaved, interleaved.
    func testChronyXleaveSequence() throws {
        let vectors = try loadVectors().filter { $0.origin.contains("xleave") }
        let requests = vectors.filter { $0.direction == "client->server" }.map(\.bytes)
        let responses = try vectors.filter { $0.direction == "server->client" }.map { try header($0.bytes) }
        XCTAssertEqual(requests.count, 4)
        XCTAssertEqual(responses.count, 4)
        let core = ServerCore(state: testState, rateLimit: nil)
        var expectedKinds: [String] = []
        for index in 0..<4 {
            let (outcome, bytes) = replay(core, requests[index], receive: responses[index].receiveTimestamp)
            let ours = try header(bytes)
            let chrony = responses[index]
            XCTAssertEqual(ours.originTimestamp, chrony.originTimestamp, "exchange \(index)")
            XCTAssertEqual(ours.receiveTimestamp, chrony.receiveTimestamp, "exchange \(index)")
            switch outcome.kind {
            case .interleaved?:
                expectedKinds.append("interleaved")
                XCTAssertEqual(ours.transmitTimestamp, chrony.transmitTimestamp, "exchange \(index)")
                XCTAssertFalse(outcome.needsTransmitPatch)
            default:
                expectedKinds.append("basic")
                XCTAssertTrue(ours.transmitTimestamp.isZero)
            }
            XCTAssertEqual(outcome.wantsTransmitStamp, index > 0, "only requests that show interleaved intent pay for a TX stamp")
            if index < 3 && outcome.wantsTransmitStamp {
                // Kernel TX stamp of this response = the transmit of chronyd's next (interleaved) response.
                XCTAssertTrue(core.storeTransmitStamp(slot: outcome.slot, receive: outcome.receiveTimestamp,
                                                      transmit: responses[index + 1].transmitTimestamp))
            }
        }
        XCTAssertEqual(expectedKinds, ["basic", "basic", "interleaved", "interleaved"])
        XCTAssertEqual(core.counters.interleaved, 2)
    }

    /// A TX stamp for an older response (the client has been answered since) is refused,
    /// so a late stamp can never be served as the transmit of the wrong exchange.
    func testStaleTransmitStampRefused() throws {
        let core = ServerCore(state: testState, rateLimit: nil)
        let first = replay(core, request(transmit: 1), receive: NTPTimestamp(rawValue: 100)).0
        let second = replay(core, request(origin: 100, receive: 7, transmit: 2), receive: NTPTimestamp(rawValue: 200)).0
        XCTAssertFalse(core.storeTransmitStamp(slot: first.slot, receive: first.receiveTimestamp, transmit: NTPTimestamp(rawValue: 150)))
        XCTAssertTrue(core.storeTransmitStamp(slot: second.slot, receive: second.receiveTimestamp, transmit: NTPTimestamp(rawValue: 250)))
        let (third, bytes) = replay(core, request(origin: 200, receive: 9, transmit: 3), receive: NTPTimestamp(rawValue: 300))
        XCTAssertEqual(third.kind, .interleaved(previousTransmit: NTPTimestamp(rawValue: 250)))
        let answer = try header(bytes)
        XCTAssertEqual(answer.originTimestamp.rawValue, 9, "origin echoes the request's receive field")
        XCTAssertEqual(answer.receiveTimestamp.rawValue, 300)
        XCTAssertEqual(answer.transmitTimestamp.rawValue, 250)
    }

    /// Basic clients (origin 0, or an origin that is not our last receive, or receive ==
    /// transmit) never get interleaved answers or TX stamp work; disabled mode never does.
    func testBasicClientsStayBasic() {
        let core = ServerCore(state: testState, rateLimit: nil)
        _ = replay(core, request(transmit: 1), receive: NTPTimestamp(rawValue: 100))
        let wrongOrigin = replay(core, request(origin: 101, receive: 5, transmit: 2), receive: NTPTimestamp(rawValue: 200)).0
        XCTAssertEqual(wrongOrigin.kind, .basic)
        XCTAssertFalse(wrongOrigin.wantsTransmitStamp)
        let sameFields = replay(core, request(origin: 200, receive: 3, transmit: 3), receive: NTPTimestamp(rawValue: 300)).0
        XCTAssertEqual(sameFields.kind, .basic)
        XCTAssertFalse(sameFields.wantsTransmitStamp)

        let off = ServerCore(state: testState, rateLimit: nil, interleavedEnabled: false)
        let a = replay(off, request(transmit: 1), receive: NTPTimestamp(rawValue: 100)).0
        XCTAssertEqual(a.slot, -1)
        let b = replay(off, request(origin: 100, receive: 5, transmit: 2), receive: NTPTimestamp(rawValue: 200)).0
        XCTAssertEqual(b.kind, .basic)
        XCTAssertFalse(b.wantsTransmitStamp)
    }
}
