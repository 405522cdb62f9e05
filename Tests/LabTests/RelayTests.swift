import XCTest
import KernelStamps
import NTPPacket
@testable import NTPLab
import Randomness

/// The relay's pure parts, without sockets.
final class RelayPureTests: XCTestCase {
    func testDelayQueueReleasesInDueOrderAndArrivalOrderOnTies() {
        var queue = DelayQueue(capacity: 64, bufferSize: 16)
        var random = SeededRandom(seed: 5)
        var expected: [(Int64, UInt8)] = []
        for k in 0..<64 {
            let due = random.integer(0, 20)  // many ties
            let payload: [UInt8] = [UInt8(k)]
            XCTAssertTrue(payload.withUnsafeBytes { queue.enqueue($0, due: due, direction: k % 2 == 0 ? .request : .response, client: k) })
            expected.append((due, UInt8(k)))
        }
        XCTAssertTrue(queue.isFull)
        XCTAssertFalse([UInt8(1)].withUnsafeBytes { queue.enqueue($0, due: 0, direction: .request, client: 0) })
        expected.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }  // stable: arrival order on ties
        XCTAssertNil(queue.popDue(now: -1))
        XCTAssertEqual(queue.nextDue, expected[0].0)
        var popped: [(Int64, UInt8)] = []
        var now: Int64 = 0
        while queue.count > 0 {
            while let packet = queue.popDue(now: now) {
                let bytes = queue.bytes(packet.slot)
                XCTAssertEqual(bytes.count, 1)
                XCTAssertEqual(packet.client, Int(bytes[0]))
                XCTAssertEqual(packet.direction, bytes[0] % 2 == 0 ? .request : .response)
                XCTAssertLessThanOrEqual(packet.due, now)
                popped.append((packet.due, bytes[0]))
                queue.release(packet.slot)
            }
            now += 1
        }
        XCTAssertEqual(popped.map(\.0), expected.map(\.0))
        XCTAssertEqual(popped.map(\.1), expected.map(\.1))
        // Slots are reused: the queue takes a full load again.
        for k in 0..<64 { XCTAssertTrue([UInt8(k), 1, 2].withUnsafeBytes { queue.enqueue($0, due: 100, direction: .request, client: k) }) }
    }

    func testDelayQueueRefusesOversizePackets() {
        var queue = DelayQueue(capacity: 4, bufferSize: 48)
        XCTAssertFalse([UInt8](repeating: 0, count: 49).withUnsafeBytes { queue.enqueue($0, due: 0, direction: .request, client: 0) })
        XCTAssertTrue([UInt8](repeating: 7, count: 48).withUnsafeBytes { queue.enqueue($0, due: 0, direction: .request, client: 0) })
        let packet = queue.popDue(now: 0)!
        XCTAssertEqual(Array(queue.bytes(packet.slot)), [UInt8](repeating: 7, count: 48))
    }

    /// What the relay keeps with a packet comes back with it: arrival, the model's own delay
    /// (the due time may hold it longer) and how late the relay read it.
    func testDelayQueueKeepsEachPacketsTimes() {
        var queue = DelayQueue(capacity: 4, bufferSize: 48)
        XCTAssertTrue([UInt8(1)].withUnsafeBytes { queue.enqueue($0, due: 900, direction: .response, client: 2, arrival: 100, modelDelay: 80, wakeUp: 15) })
        XCTAssertTrue([UInt8(2)].withUnsafeBytes { queue.enqueue($0, due: 700, direction: .request, client: 3, arrival: 120, modelDelay: 70, wakeUp: 40) })
        let first = queue.popDue(now: 1_000)!
        XCTAssertEqual(first, HeldPacket(slot: first.slot, direction: .request, client: 3, due: 700, arrival: 120, modelDelayNanoseconds: 70, wakeUpNanoseconds: 40))
        queue.release(first.slot)
        let second = queue.popDue(now: 1_000)!
        XCTAssertEqual(second, HeldPacket(slot: second.slot, direction: .response, client: 2, due: 900, arrival: 100, modelDelayNanoseconds: 80, wakeUpNanoseconds: 15))
    }

    /// Due times respect each direction's minimum delay, honour loss, outages and level
    /// shifts, and map relay time onto scenario time.
    func testRelayDelaysFollowTheModel() {
        let start: Int64 = 5_000 * Span.second
        var parameters = NetworkParameters(
            forward: PathParameters(minimumDelayNanoseconds: 300 * Span.microsecond, jitterMeanNanoseconds: 50 * Span.microsecond, lossProbability: 0.1),
            backward: PathParameters(minimumDelayNanoseconds: 200 * Span.microsecond, jitterMeanNanoseconds: 20 * Span.microsecond))
        parameters.levelShifts = [LevelShift(atNanoseconds: 100 * Span.second, forwardDeltaNanoseconds: Span.millisecond, backwardDeltaNanoseconds: 0)]
        parameters.outages = [LabInterval(startNanoseconds: 200 * Span.second, endNanoseconds: 210 * Span.second)]
        var delays = RelayDelays(parameters: parameters, seed: 3, startMonotonicNanoseconds: start)
        var lost = 0, count = 0
        var t: Int64 = 0
        while t < 300 * Span.second {
            let arrival = start + t
            let request = delays.requestDue(arrivalMonotonicNanoseconds: arrival)
            let response = delays.responseDue(arrivalMonotonicNanoseconds: arrival)
            let inOutage = parameters.isInOutage(t)
            if inOutage {
                XCTAssertNil(request)
                XCTAssertNil(response)
            } else {
                count += 1
                if let request {
                    let floor = t >= 100 * Span.second ? 1_300 * Span.microsecond : 300 * Span.microsecond
                    XCTAssertGreaterThanOrEqual(request - arrival, floor)
                } else {
                    lost += 1
                }
                XCTAssertGreaterThanOrEqual(try XCTUnwrap(response) - arrival, 200 * Span.microsecond)
            }
            t += 50 * Span.millisecond
        }
        let share = Double(lost) / Double(count)
        XCTAssertEqual(share, 0.1, accuracy: 5 * (0.1 * 0.9 / Double(count)).squareRoot())
        // A packet stamped before the previous one is taken as sent at the previous instant.
        XCTAssertNotNil(delays.responseDue(arrivalMonotonicNanoseconds: start))
    }

    func testTransformIsPiecewiseLinearWithJumps() {
        let origin: Int64 = 1_700_000_000 * Span.second
        let transform = ServedTimeTransform(
            originUnixNanoseconds: origin, offsetNanoseconds: 2 * Span.millisecond, rateError: 10e-6,
            changes: [ServedTimeTransform.Change(atNanoseconds: 1_000 * Span.second, jumpNanoseconds: 2_500 * Span.millisecond, rateError: -0.2),
                      ServedTimeTransform.Change(atNanoseconds: 500 * Span.second, jumpNanoseconds: 0, rateError: 0)])
        XCTAssertEqual(transform.changes.map(\.atNanoseconds), [500 * Span.second, 1_000 * Span.second])
        XCTAssertEqual(transform.correctionNanoseconds(atServerUnixNanoseconds: origin), 2 * Span.millisecond)
        XCTAssertEqual(transform.correctionNanoseconds(atServerUnixNanoseconds: origin - 100 * Span.second), 2 * Span.millisecond - Span.millisecond)
        // 10 PPM over the first 500 s: +5 ms; then rate 0 until 1000 s.
        XCTAssertEqual(transform.correctionNanoseconds(atServerUnixNanoseconds: origin + 500 * Span.second), 7 * Span.millisecond)
        XCTAssertEqual(transform.correctionNanoseconds(atServerUnixNanoseconds: origin + 999 * Span.second), 7 * Span.millisecond)
        // At 1000 s: the jump, then the served clock runs 20% slow.
        XCTAssertEqual(transform.correctionNanoseconds(atServerUnixNanoseconds: origin + 1_000 * Span.second), 2_507 * Span.millisecond)
        XCTAssertEqual(transform.served(atServerUnixNanoseconds: origin + 1_010 * Span.second),
                       origin + 1_010 * Span.second + 2_507 * Span.millisecond - 2 * Span.second)
        XCTAssertTrue(ServedTimeTransform.identity.isIdentity)
        XCTAssertFalse(transform.isIdentity)
        XCTAssertEqual(ServedTimeTransform.identity.served(atServerUnixNanoseconds: origin + 123), origin + 123)
    }

    /// Builds a mode-4 response with the given timestamps.
    static func response(reference: UInt64, origin: UInt64, receive: UInt64, transmit: UInt64, mode: UInt8 = 4) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 48)
        bytes[0] = 0 << 6 | 4 << 3 | mode
        bytes[1] = 1
        for (offset, value) in [(16, reference), (24, origin), (32, receive), (40, transmit)] {
            for k in 0..<8 { bytes[offset + k] = UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64(k))) }
        }
        return bytes
    }

    static func timestamp(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[offset + $1]) }
    }

    func testRewriteMovesServerStampsByTheTransformOnly() {
        let now: Int64 = 1_700_000_000 * Span.second + 123_456_789
        let receive = NTPTimestamp(unixNanoseconds: now).rawValue | 0x3   // sub-ns bits that must survive
        let transmit = NTPTimestamp(unixNanoseconds: now + 25 * Span.microsecond).rawValue
        let reference = NTPTimestamp(unixNanoseconds: now - 16 * Span.second).rawValue
        let origin: UInt64 = 0xDEAD_BEEF_0123_4567
        let transform = ServedTimeTransform(originUnixNanoseconds: now - 1_000 * Span.second, offsetNanoseconds: -1_500 * Span.millisecond,
                                            rateError: 0.25)
        var packet = Self.response(reference: reference, origin: origin, receive: receive, transmit: transmit)
        let rewritten = packet.withUnsafeMutableBytes { ServedTimeRewriter.rewrite($0, by: transform, pivotUnixNanoseconds: now) }
        XCTAssertTrue(rewritten)
        XCTAssertEqual(Self.timestamp(packet, at: 24), origin)
        for (offset, before, unix) in [(32, receive, now), (40, transmit, now + 25 * Span.microsecond), (16, reference, now - 16 * Span.second)] {
            let after = NTPTimestamp(rawValue: Self.timestamp(packet, at: offset))
            let moved = after.nanoseconds(since: NTPTimestamp(rawValue: before))
            let correction = transform.correctionNanoseconds(atServerUnixNanoseconds: unix)
            XCTAssertEqual(Double(moved), Double(correction), accuracy: 1.0, "field at \(offset)")
        }
        XCTAssertEqual(Self.timestamp(packet, at: 32) & 0x3, (receive &+ ServedTimeRewriter.ntpUnits(ofNanoseconds: transform.correctionNanoseconds(atServerUnixNanoseconds: now))) & 0x3)
        // 1000 s at +25% minus 1.5 s: the receive stamp moved by 248.5 s.
        XCTAssertEqual(transform.correctionNanoseconds(atServerUnixNanoseconds: now), 248_500 * Span.millisecond)

        // Requests, short packets and zero fields are left alone.
        var request = Self.response(reference: 0, origin: 0, receive: 0, transmit: transmit, mode: 3)
        let original = request
        XCTAssertFalse(request.withUnsafeMutableBytes { ServedTimeRewriter.rewrite($0, by: transform, pivotUnixNanoseconds: now) })
        XCTAssertEqual(request, original)
        var short = [UInt8](repeating: 0x24, count: 47)
        XCTAssertFalse(short.withUnsafeMutableBytes { ServedTimeRewriter.rewrite($0, by: transform, pivotUnixNanoseconds: now) })
        var zeros = Self.response(reference: 0, origin: 0, receive: 0, transmit: transmit)
        XCTAssertTrue(zeros.withUnsafeMutableBytes { ServedTimeRewriter.rewrite($0, by: transform, pivotUnixNanoseconds: now) })
        XCTAssertEqual(Self.timestamp(zeros, at: 16), 0)
        XCTAssertEqual(Self.timestamp(zeros, at: 32), 0)
    }

    /// Bins: 1 µs wide below 100 µs, 100 µs wide below 10 ms, one open bin beyond; a
    /// quantile is its bin's upper edge but never more than the largest lateness seen.
    func testLatenessHistogramQuantiles() {
        var histogram = LatenessHistogram()
        XCTAssertEqual(histogram.medianNanoseconds, 0)
        for _ in 0..<98 { histogram.add(1_500) }         // bin 1: (1, 2] µs
        histogram.add(250_000)                            // bin (200, 300] µs
        histogram.add(-7)                                 // early counts as on time: bin 0
        XCTAssertEqual(histogram.total, 100)
        XCTAssertEqual(histogram.medianNanoseconds, 2_000)
        XCTAssertEqual(histogram.quantileNanoseconds(0.98), 2_000)
        XCTAssertEqual(histogram.quantileNanoseconds(0.99), 2_000)
        XCTAssertEqual(histogram.quantileNanoseconds(1.0), 250_000, "capped at the maximum, not the bin's edge")
        XCTAssertEqual(histogram.maximumNanoseconds, 250_000)
        XCTAssertEqual(histogram.occupiedBins.map(\.count), [1, 98, 1])
        histogram.add(50 * Span.second)
        XCTAssertEqual(LatenessHistogram.bin(ofNanoseconds: 50 * Span.second), LatenessHistogram.binCount - 1)
        XCTAssertEqual(histogram.quantileNanoseconds(1.0), 50 * Span.second)
        XCTAssertEqual(LatenessHistogram.bin(ofNanoseconds: 99_999), 99)
        XCTAssertEqual(LatenessHistogram.bin(ofNanoseconds: 100_000), 100)
        XCTAssertEqual(LatenessHistogram.upperEdgeNanoseconds(ofBin: 100), 200_000)
    }

    /// The path a client got: medians of the relay's held asymmetry, of the model's, and of
    /// their difference; a probe's offset minus the model's asymmetry of the same exchange.
    func testPathAsymmetryAndProbeCalibrationFromRecords() {
        func record(_ transmit: UInt64, held: (Int64, Int64), model: (Int64, Int64)) -> RelayExchangeRecord {
            RelayExchangeRecord(lane: 0, requestTransmitTimestamp: transmit, requestArrivalNanoseconds: 1_000,
                                requestDepartureNanoseconds: 1_000 + held.0, requestModelDelayNanoseconds: model.0,
                                responseArrivalNanoseconds: 5_000, responseDepartureNanoseconds: 5_000 + held.1,
                                responseModelDelayNanoseconds: model.1)
        }
        // Forward sent 4 µs late in two of three: the relay added +2 µs of asymmetry (median).
        let records = [record(1, held: (74_000, 80_000), model: (70_000, 80_000)),
                       record(2, held: (76_000, 81_000), model: (72_000, 81_000)),
                       record(3, held: (70_000, 90_000), model: (70_000, 90_000))]
        XCTAssertEqual(records[0].heldAsymmetryNanoseconds, -3_000)
        XCTAssertEqual(records[0].modelAsymmetryNanoseconds, -5_000)
        let path = PathAsymmetry(records)
        XCTAssertEqual(path, PathAsymmetry(exchanges: 3, measuredNanoseconds: -3_000, modelNanoseconds: -5_000, relayAddedNanoseconds: 2_000))
        XCTAssertNil(PathAsymmetry([]))
        // Probes: offsets −4, −3.5 and an unmatched one; lab added = offset − model.
        let probe = ProbeCalibration(probes: [(1, -4_000), (2, -3_500), (99, 1_000_000)], records: records)
        XCTAssertEqual(probe, ProbeCalibration(probes: 2, labAddedNanoseconds: 1_000, medianOffsetNanoseconds: -4_000))
        XCTAssertNil(ProbeCalibration(probes: [(99, 0)], records: records))
        // The prober's own asymmetry straight to the server is not the relay's: it is taken off.
        let relative = ProbeCalibration(probes: [(1, -4_000), (2, -3_500)], records: records, directAsymmetryNanoseconds: -1_500)
        XCTAssertEqual(relative, ProbeCalibration(probes: 2, labAddedNanoseconds: 2_500, medianOffsetNanoseconds: -4_000))
    }

    func testNTPUnitsOfNegativeAndPositiveNanoseconds() {
        XCTAssertEqual(ServedTimeRewriter.ntpUnits(ofNanoseconds: 0), 0)
        XCTAssertEqual(ServedTimeRewriter.ntpUnits(ofNanoseconds: Span.second), 1 << 32)
        XCTAssertEqual(ServedTimeRewriter.ntpUnits(ofNanoseconds: -Span.second), UInt64(bitPattern: -(1 << 32)))
        XCTAssertEqual(ServedTimeRewriter.ntpUnits(ofNanoseconds: 500 * Span.millisecond), 1 << 31)
        XCTAssertEqual(ServedTimeRewriter.ntpUnits(ofNanoseconds: -500 * Span.millisecond), UInt64(bitPattern: -(1 << 31)))
        let base = NTPTimestamp(unixNanoseconds: 1_700_000_000 * Span.second)
        for delta: Int64 in [-2_500_000_001, -1, 1, 999_999_999, 7_000_000_123] {
            let moved = NTPTimestamp(rawValue: base.rawValue &+ ServedTimeRewriter.ntpUnits(ofNanoseconds: delta))
            XCTAssertEqual(Double(moved.nanoseconds(since: base)), Double(delta), accuracy: 1)
        }
    }
}

/// Real packets through the relay on loopback. The test thread plays both the clients and
/// the server (no echo thread), so every step is deterministic; no assertion depends on how
/// fast this machine is, only on floors the relay must respect.
final class RelayLoopbackTests: XCTestCase {
    private func socket() throws -> UDPSocket {
        var options = UDPSocket.Options()
        options.receiveTimeoutNanoseconds = 2 * Span.second
        return try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)
    }

    private func receive(_ socket: UDPSocket, _ buffer: UnsafeMutableRawBufferPointer) throws -> (bytes: [UInt8], source: SocketAddress)? {
        guard let datagram = try socket.receive(into: buffer), let source = datagram.source else { return nil }
        return (Array(UnsafeRawBufferPointer(rebasing: buffer[0..<datagram.byteCount])), source)
    }

    /// Two clients on one lane (each its own upstream socket), and the same again on two
    /// lanes (each client answered from the port it sent to).
    func testDelaysRewriteAndRoutingThroughTheRelay() throws {
        try checkDelaysRewriteAndRouting(lanes: 1)
    }

    /// Two lanes, and 1 ms of headroom each way: every packet is held the model's delay plus
    /// the headroom, while the records (and so the asymmetry checks) keep the model's own delay.
    func testDelaysRewriteAndRoutingThroughTwoLanesOfOneRelay() throws {
        try checkDelaysRewriteAndRouting(lanes: 2, headroom: Span.millisecond)
    }

    private func checkDelaysRewriteAndRouting(lanes: Int, headroom: Int64 = 0) throws {
        let server = try socket()
        let forwardMinimum = 3 * Span.millisecond, backwardMinimum = 2 * Span.millisecond
        let network = NetworkParameters(
            forward: PathParameters(minimumDelayNanoseconds: forwardMinimum, jitterMeanNanoseconds: 200 * Span.microsecond),
            backward: PathParameters(minimumDelayNanoseconds: backwardMinimum, jitterMeanNanoseconds: 100 * Span.microsecond))
        var configuration = RelayConfiguration(upstreamAddress: try server.localAddress(), network: network)
        let now = realtimeNanoseconds()
        configuration.transform = ServedTimeTransform(originUnixNanoseconds: now, offsetNanoseconds: 1_500 * Span.millisecond, rateError: 50e-6)
        configuration.lanes = lanes
        configuration.headroomEachWayNanoseconds = headroom
        let relay = try ImpairmentRelay(configuration)
        try relay.start()
        defer { relay.stop() }

        let clients = [try socket(), try socket()]
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        let rounds = 10
        var upstreamPorts = Set<UInt16>()
        XCTAssertEqual(relay.listenAddresses.count, lanes)
        XCTAssertEqual(Set(relay.listenAddresses).count, lanes, "each lane listens on its own port")
        for round in 0..<rounds {
            for (c, client) in clients.enumerated() {
                let laneAddress = relay.listenAddresses[c % lanes]
                // The request carries its sender in the transmit timestamp, as NTP clients do.
                let tag = UInt64(round * 2 + c + 1)
                let request = RelayPureTests.response(reference: 0, origin: 0, receive: 0, transmit: tag, mode: 3)
                let sent = clockNanoseconds(.monotonic)
                try client.send(request, to: laneAddress)
                let arrived = try XCTUnwrap(try receive(server, buffer), "request \(tag) never reached the server")
                let forwardElapsed = clockNanoseconds(.monotonic) - sent
                XCTAssertGreaterThanOrEqual(forwardElapsed, forwardMinimum + headroom)
                XCTAssertEqual(arrived.bytes, request)
                upstreamPorts.insert(arrived.source.port)

                // Answer as a server: origin echoes the request's transmit; known receive/transmit.
                let serverNow = realtimeNanoseconds()
                let receive = NTPTimestamp(unixNanoseconds: serverNow).rawValue
                let transmit = NTPTimestamp(unixNanoseconds: serverNow + 10 * Span.microsecond).rawValue
                let answer = RelayPureTests.response(reference: 0, origin: tag, receive: receive, transmit: transmit)
                let answered = clockNanoseconds(.monotonic)
                try server.send(answer, to: arrived.source)
                let back = try XCTUnwrap(try self.receive(client, buffer), "response \(tag) never came back")
                XCTAssertGreaterThanOrEqual(clockNanoseconds(.monotonic) - answered, backwardMinimum + headroom)
                XCTAssertEqual(back.source, laneAddress, "a response leaves from the lane its request came in on")
                XCTAssertEqual(RelayPureTests.timestamp(back.bytes, at: 24), tag, "the response went to the wrong client")
                var expected = answer
                expected.withUnsafeMutableBytes { _ = ServedTimeRewriter.rewrite($0, by: configuration.transform, pivotUnixNanoseconds: serverNow) }
                XCTAssertEqual(back.bytes, expected)
                let moved = NTPTimestamp(rawValue: RelayPureTests.timestamp(back.bytes, at: 32)).nanoseconds(since: NTPTimestamp(rawValue: receive))
                XCTAssertGreaterThanOrEqual(moved, 1_500 * Span.millisecond)
                XCTAssertLessThan(moved, 1_501 * Span.millisecond)  // 50 PPM of a few seconds
            }
        }
        XCTAssertEqual(upstreamPorts.count, 2, "each client needs its own upstream socket")
        relay.stop()
        let counters = relay.counters
        XCTAssertEqual(counters.clients, 2)
        XCTAssertEqual(counters.requestsReceived, 2 * rounds)
        XCTAssertEqual(counters.requestsForwarded, 2 * rounds)
        XCTAssertEqual(counters.responsesForwarded, 2 * rounds)
        XCTAssertEqual(counters.responsesRewritten, 2 * rounds)
        XCTAssertEqual(counters.requestsDropped + counters.responsesDropped + counters.overflowDrops + counters.sendErrors, 0)
        XCTAssertGreaterThanOrEqual(counters.minimumRequestDelayNanoseconds, forwardMinimum)
        XCTAssertGreaterThanOrEqual(counters.minimumResponseDelayNanoseconds, backwardMinimum)
        // Every send is in its direction's histogram; quantiles are ordered and within the maximum.
        let lateness = relay.latenessHistograms()
        for histogram in [lateness.request, lateness.response] {
            XCTAssertEqual(histogram.total, 2 * rounds)
            XCTAssertLessThanOrEqual(histogram.medianNanoseconds, histogram.p99Nanoseconds)
            XCTAssertLessThanOrEqual(histogram.p99Nanoseconds, histogram.maximumNanoseconds)
        }
        // Every exchange is recorded on its lane with the request's transmit timestamp, held
        // at least the model's delay each way (sent at or after arrival + delay).
        let records = relay.exchangeRecords()
        XCTAssertEqual(records.count, 2 * rounds)
        XCTAssertEqual(Set(records.map(\.requestTransmitTimestamp)), Set((1...(2 * rounds)).map { UInt64($0) }))
        for record in records {
            XCTAssertEqual(record.lane, Int(record.requestTransmitTimestamp - 1) % 2 % lanes)
            XCTAssertGreaterThanOrEqual(record.requestModelDelayNanoseconds, forwardMinimum)
            XCTAssertGreaterThanOrEqual(record.responseModelDelayNanoseconds, backwardMinimum)
            // The model's delay, without the headroom (the drawn jitter is 200 µs mean).
            XCTAssertLessThan(record.requestModelDelayNanoseconds, forwardMinimum + 900 * Span.microsecond)
            XCTAssertGreaterThanOrEqual(record.requestDepartureNanoseconds - record.requestArrivalNanoseconds, record.requestModelDelayNanoseconds + headroom)
            XCTAssertGreaterThanOrEqual(record.responseDepartureNanoseconds - record.responseArrivalNanoseconds, record.responseModelDelayNanoseconds + headroom)
        }
        XCTAssertEqual(relay.exchangeRecords(lane: 0).count, lanes == 1 ? 2 * rounds : rounds)
        XCTAssertGreaterThan(counters.cpuNanoseconds, 0)
        XCTAssertGreaterThan(counters.runningNanoseconds, counters.cpuNanoseconds / 2)
    }

    /// With no delay and no headroom every request is read after its departure time (the
    /// relay sleeps between them), so it leaves late; its answer must then be held as much
    /// longer, which keeps the exchange's asymmetry at the model's.
    func testAnswerToALateRequestIsHeldAsMuchLonger() throws {
        let server = try socket()
        let network = NetworkParameters(forward: PathParameters(minimumDelayNanoseconds: 0), backward: PathParameters(minimumDelayNanoseconds: 0))
        let relay = try ImpairmentRelay(RelayConfiguration(upstreamAddress: try server.localAddress(), network: network))
        try relay.start()
        defer { relay.stop() }
        let client = try socket()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        for tag in 1...20 {
            ThreadTiming.sleep(until: clockNanoseconds(.monotonic) + 5 * Span.millisecond, on: .monotonic)  // the relay goes back to sleep
            try client.send(RelayPureTests.response(reference: 0, origin: 0, receive: 0, transmit: UInt64(tag), mode: 3), to: relay.listenAddress)
            let arrived = try XCTUnwrap(try receive(server, buffer), "request \(tag) never reached the server")
            try server.send(RelayPureTests.response(reference: 0, origin: UInt64(tag), receive: 1, transmit: 2), to: arrived.source)
            XCTAssertNotNil(try receive(client, buffer), "response \(tag) never came back")
        }
        relay.stop()
        let records = relay.exchangeRecords()
        XCTAssertEqual(records.count, 20)
        var late = 0
        for record in records {
            let requestLateness = record.requestDepartureNanoseconds - record.requestArrivalNanoseconds - record.requestModelDelayNanoseconds
            if requestLateness > 5_000 { late += 1 }
            XCTAssertGreaterThanOrEqual(record.responseDepartureNanoseconds - record.responseArrivalNanoseconds,
                                        record.responseModelDelayNanoseconds + max(0, requestLateness),
                                        "the answer to a request \(requestLateness) ns late was not held as much longer")
        }
        XCTAssertGreaterThan(late, 0, "a relay asleep between requests should read some of them more than 5 µs after a zero delay")
        XCTAssertGreaterThan(relay.counters.requestsPastDeparture, 0)
        let added = PathAsymmetry(records)!.relayAddedNanoseconds
        XCTAssertLessThan(abs(added), 10_000, "late requests left \(added) ns of asymmetry in place")
    }

    func testLossRateOfRealPackets() throws {
        let server = try socket()
        let loss = 0.3
        let network = NetworkParameters(forward: PathParameters(minimumDelayNanoseconds: 100 * Span.microsecond, lossProbability: loss),
                                        backward: PathParameters(minimumDelayNanoseconds: 100 * Span.microsecond))
        var configuration = RelayConfiguration(upstreamAddress: try server.localAddress(), network: network)
        configuration.seed = 11
        let relay = try ImpairmentRelay(configuration)
        try relay.start()
        defer { relay.stop() }
        let client = try socket()
        try server.setReceiveTimeout(nanoseconds: 50 * Span.millisecond)
        let payload = [UInt8](repeating: 0xA5, count: 48)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        // Chunks of 20, each drained before the next, so no socket buffer can overflow.
        let count = 400
        var sent = 0, arrived = 0
        let deadline = clockNanoseconds(.monotonic) + 60 * Span.second
        while sent < count {
            for _ in 0..<20 { try client.send(payload, to: relay.listenAddress) }
            sent += 20
            while clockNanoseconds(.monotonic) < deadline {
                let counters = relay.counters
                if counters.requestsForwarded + counters.requestsDropped == sent && arrived == counters.requestsForwarded { break }
                if let datagram = try server.receive(into: buffer) {
                    XCTAssertEqual(Array(UnsafeRawBufferPointer(rebasing: buffer[0..<datagram.byteCount])), payload)
                    arrived += 1
                }
            }
        }
        let counters = relay.counters
        XCTAssertEqual(counters.requestsReceived, count, "loopback lost packets before the relay")
        XCTAssertEqual(counters.requestsForwarded + counters.requestsDropped, count)
        XCTAssertEqual(arrived, counters.requestsForwarded)
        let sigma = (Double(count) * loss * (1 - loss)).squareRoot()
        XCTAssertEqual(Double(counters.requestsDropped), Double(count) * loss, accuracy: 5 * sigma)
    }

    func testStopIsPromptAndIdempotentAndBindErrorsAreLabErrors() throws {
        let relay = try ImpairmentRelay(RelayConfiguration(upstreamAddress: .loopbackIPv4(port: 9), network: Scenario.lanStratum1.configuration.network))
        try relay.start()
        let stopping = clockNanoseconds(.monotonic)
        relay.stop()
        XCTAssertLessThan(clockNanoseconds(.monotonic) - stopping, Span.second, "a sleeping relay wakes to stop")
        relay.stop()
        var idle = relay.counters
        XCTAssertGreaterThan(idle.runningNanoseconds, 0)
        idle.cpuNanoseconds = 0
        idle.runningNanoseconds = 0
        idle.shortSchedulerSlice = false
        XCTAssertEqual(idle, RelayCounters(), "no packet, no count")

        var lanes = RelayConfiguration(upstreamAddress: .loopbackIPv4(port: 9), network: Scenario.lanStratum1.configuration.network)
        lanes.lanes = 2
        lanes.listenAddress = .loopbackIPv4(port: 1234)
        XCTAssertThrowsError(try ImpairmentRelay(lanes)) { error in
            XCTAssertTrue(String(describing: error).contains("port 0"), "\(error)")
        }

        var taken = RelayConfiguration(upstreamAddress: .loopbackIPv4(port: 9), network: Scenario.lanStratum1.configuration.network)
        taken.listenAddress = relay.listenAddress
        XCTAssertThrowsError(try ImpairmentRelay(taken)) { error in
            XCTAssertTrue(String(describing: error).contains("relay: cannot listen on 127.0.0.1:"), "\(error)")
        }
    }
}
