// libFuzzer harness for the client's response validation (NTPClient.validateResponse).
// Each input is one datagram arriving at a client whose outstanding request
// carried the transmit timestamp below (make-seeds.py rewrites captured responses to echo
// it). Invariants:
// - a datagram that validates really answers the outstanding request: right address and
//   port, mode 4, version 3 or 4, origin = our transmit, not yet answered, not a kiss,
//   nonzero receive and transmit with transmit ≥ receive, synchronised (LI ≠ 3, stratum
//   1...15), it parses, and the header handed back is the one on the wire;
// - the same bytes from another address, another port, no address, or after the request
//   was answered are never valid; a kiss is believed only when its origin matches;
// - the filter's stamp of a valid response is computed without trapping, and the
//   feedforward filter takes it without trapping (a server may send any timestamps).
import NTPPacket
import KernelStamps
import FeedforwardClock
import NTPClient

@inline(never)
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant broken: \(message())") }
}

let transmit = NTPTimestamp(rawValue: 0xF2F0_575D_B12A_642B)
let server = SocketAddress.loopbackIPv4(port: 123)
let otherPort = SocketAddress.loopbackIPv4(port: 124)
let otherAddress = SocketAddress(ipv4: 0x7F00_0002, port: 123)
// 2026-11-21, the day the vectors were captured: the era pivot and the filter's clock.
let pivot: Int64 = 1_795_286_605_000_000_000

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClient(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let request = OutstandingRequest(transmitTimestamp: transmit, server: server)
    let verdict = validateResponse(bytes, from: server, for: request)
    // Whatever the bytes, these sources or states never yield a valid answer.
    for (source, label) in [(otherPort, "another port"), (otherAddress, "another address")] {
        if case .valid = validateResponse(bytes, from: source, for: request) { require(false, "accepted from \(label)") }
    }
    if case .valid = validateResponse(bytes, from: nil, for: request) { require(false, "accepted from no address") }
    var answered = request
    answered.answered = true
    if case .valid = validateResponse(bytes, from: server, for: answered) { require(false, "accepted a duplicate") }

    switch verdict {
    case .rejected(let rejection):
        _ = rejection.description
        if case .kiss = rejection {
            require(size >= 48 && bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self) == transmit.rawValue.bigEndian,
                    "kiss believed without a matching origin")
            require(bytes[1] == 0, "kiss from a nonzero stratum")
        }
    case .valid(let response):
        let header = response.header
        let wire: NTPParsedPacket
        do throws(NTPPacketError) { wire = try NTPParsedPacket(parsing: bytes) } catch {
            fatalError("invariant broken: accepted bytes that do not parse: \(error)")
        }
        require(wire.header == header, "header handed back differs from the wire")
        require(header.mode == .server, "accepted mode \(header.mode)")
        require(header.version == 3 || header.version == 4, "accepted version \(header.version)")
        require(header.originTimestamp == transmit, "accepted a response whose origin is not our transmit")
        require(header.stratum >= 1 && header.stratum <= 15, "accepted stratum \(header.stratum)")
        require(header.leapIndicator != .unsynchronized, "accepted an unsynchronised server")
        require(!header.receiveTimestamp.isZero && !header.transmitTimestamp.isZero, "accepted a zero timestamp")
        require(header.transmitTimestamp.nanoseconds(since: header.receiveTimestamp) >= 0, "accepted Te < Tb")
        // The stamp and one filter update must not trap, whatever the server's timestamps.
        let stamp = response.stamp(ta: 1_000_000_000, tf: 1_000_050_000, pivotUnixNanoseconds: pivot)
        var clock = FeedforwardClock()
        _ = clock.process(stamp, nextExchangeInSeconds: 16)
        let later = Stamp(ta: 17_000_000_000, tb: stamp.tb &+ 16_000_000_000, te: stamp.te &+ 16_000_000_000,
                          tf: 17_000_050_000, stratum: stamp.stratum, referenceID: stamp.referenceID, leap: stamp.leap,
                          rootDelayNanoseconds: stamp.rootDelayNanoseconds,
                          rootDispersionNanoseconds: stamp.rootDispersionNanoseconds)
        _ = clock.process(later, nextExchangeInSeconds: 16)
        _ = clock.parameters.maxError(atCounter: 18_000_000_000)
    }
    return 0
}
