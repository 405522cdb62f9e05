// libFuzzer harness for the server's request→response path (ServerCore + NTPResponder).
// Each input is one datagram, handled by a fresh ServerCore as a client would send
// it: once, then 20 more times at the same instant from the same address (rate limit: kiss,
// then drops), then as an RFC 9769 follow-up (origin = our last receive) from a second
// address after a TX stamp was stored (interleaved path). Invariants on every answer:
// - never longer than the request (no amplification), and exactly 48 bytes when sent;
// - modes 6 and 7, non-client modes, versions 0 and 5-7, short or malformed datagrams:
//   never answered, and counted under the right reason;
// - the answer is mode 4, the request's version, origin = request transmit (basic, kiss) or
//   request receive (interleaved), receive = our RX stamp, poll clamped to 3...17,
//   server fields from ServerState, a kiss is stratum 0 "RATE" with LI 3; it parses;
// - the counters add up: received = answered + every drop reason.
import NTPPacket
import KernelStamps
import NTPServer

@inline(never)
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant broken: \(message())") }
}

let state = ServerState(leapIndicator: .noWarning, stratum: 1, precision: -23, rootDelay: NTPShortTime(rawValue: 0x10),
                        rootDispersion: NTPShortTime(rawValue: 0x20), referenceID: .gps,
                        referenceTimestamp: NTPTimestamp(rawValue: 0xEEAC_64CB_782D_B81F))
nonisolated(unsafe) let response = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
nonisolated(unsafe) let followUp = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 8)
let receive = NTPTimestamp(rawValue: 0xEEAC_64CD_4589_D7AD)

func load64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
    UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
}

/// Handles `request` and checks the answer; returns it for follow-ups.
func handleAndCheck(_ core: ServerCore, _ request: UnsafeRawBufferPointer, source: SocketAddress.Key,
                    now: Int64, receive: NTPTimestamp) -> HandleOutcome {
    for i in 0..<response.count { response[i] = 0xA5 }
    let outcome = core.handle(request: request, source: source, receiveTimestamp: receive,
                              nowMonotonicNanoseconds: now, response: response.baseAddress!)
    let length = request.count
    let mode = length > 0 ? request[0] & 7 : 0
    let version = length > 0 ? request[0] >> 3 & 7 : 0
    require(outcome.length == 0 || outcome.length == 48, "response of \(outcome.length) bytes")
    require(outcome.length <= length, "amplification: \(outcome.length) bytes for a \(length)-byte request")
    if length > 0 && (mode == 6 || mode == 7) {
        require(outcome.length == 0 && outcome.drop == .controlMode, "mode \(mode) not dropped as control: \(outcome)")
    }
    var wellFormed = false
    do throws(NTPPacketError) { _ = try NTPParsedPacket(parsing: request); wellFormed = true } catch {}
    if outcome.length == 0 {
        require(outcome.drop != nil, "no answer and no reason")
        switch outcome.drop! {
        case .malformed: require(length < 48 && !(length > 0 && mode >= 6) || !wellFormed, "well-formed request called malformed")
        case .controlMode: require(mode == 6 || mode == 7, "control drop for mode \(mode)")
        case .notClientMode: require(mode != 3 && mode < 6 && length >= 48, "notClientMode for mode \(mode)")
        case .unsupportedVersion: require(mode == 3 && (version == 0 || version > 4), "bad-version drop for v\(version)")
        case .rateLimited: require(wellFormed && mode == 3, "rate limit drop of a request we would not answer")
        }
        return outcome
    }
    require(wellFormed, "answered a malformed \(length)-byte request")
    require(mode == 3, "answered mode \(mode)")
    require(version >= 1 && version <= 4, "answered version \(version)")
    let answer = UnsafeRawBufferPointer(rebasing: response[0..<48])
    require(response[48] == 0xA5, "wrote past 48 bytes")
    let parsed: NTPParsedPacket
    do throws(NTPPacketError) { parsed = try NTPParsedPacket(parsing: answer) } catch {
        fatalError("invariant broken: response does not parse: \(error)")
    }
    let header = parsed.header
    require(header.mode == .server && header.version == version, "response mode/version \(header.mode) v\(header.version)")
    require(header.receiveTimestamp == receive, "receive field")
    require(header.poll >= 3 && header.poll <= 17, "poll \(header.poll)")
    let requestPoll = Int8(bitPattern: request[2])
    require(header.poll == min(max(requestPoll, 3), 17), "poll not the clamped request poll")
    require(header.precision == state.precision && header.rootDelay == state.rootDelay
            && header.rootDispersion == state.rootDispersion && header.referenceTimestamp == state.referenceTimestamp,
            "server fields")
    switch outcome.kind {
    case .rateKiss?:
        require(header.stratum == 0 && header.referenceID == .rate && header.leapIndicator == .unsynchronized, "RATE kiss fields")
        require(header.originTimestamp.rawValue == load64(request, 40), "kiss origin")
    case .basic?:
        require(header.stratum == state.stratum && header.referenceID == state.referenceID
                && header.leapIndicator == state.leapIndicator, "basic fields")
        require(header.originTimestamp.rawValue == load64(request, 40), "basic origin ≠ request transmit")
        require(header.transmitTimestamp.isZero && outcome.needsTransmitPatch, "basic transmit left for the patch")
    case .interleaved(let previous)?:
        require(header.originTimestamp.rawValue == load64(request, 32), "interleaved origin ≠ request receive")
        require(header.transmitTimestamp == previous && !previous.isZero, "interleaved transmit")
        require(header.stratum == state.stratum, "interleaved stratum")
    case nil:
        require(false, "answer without a kind")
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let request = UnsafeRawBufferPointer(start: data, count: size)
    guard size <= followUp.count else { return 0 }  // UDP over Ethernet never carries more
    let core = ServerCore(state: state, rateLimit: RateLimit(intervalNanoseconds: 1_000_000_000, burst: 4),
                          interleavedEnabled: true, clientTableCapacity: 16, seed: 7)
    let first = SocketAddress.Key(high: 0, low: 0xFFFF_7F00_0001)
    let second = SocketAddress.Key(high: 0, low: 0xFFFF_7F00_0002)
    var answered: UInt64 = 0
    var outcome = handleAndCheck(core, request, source: first, now: 1_000, receive: receive)
    if outcome.length > 0 { answered += 1 }
    var kisses = 0
    for _ in 0..<20 {
        let again = handleAndCheck(core, request, source: first, now: 1_000, receive: receive)
        if again.length > 0 { answered += 1 }
        if again.kind == .rateKiss { kisses += 1 }
    }
    if outcome.length > 0 {
        // Burst 4: three more conform, one kiss, then drops until the interval passes.
        require(kisses == 1 && core.counters.rateLimitedDropped == 16, "rate limit: \(kisses) kisses, \(core.counters)")
    }
    // Interleaved follow-up from a fresh address: first exchange, TX stamp stored, then a
    // request whose origin is our receive and whose receive ≠ transmit.
    outcome = handleAndCheck(core, request, source: second, now: 5_000_000_000, receive: receive)
    if outcome.length > 0 {
        answered += 1
        core.storeTransmitStamp(slot: outcome.slot, receive: outcome.receiveTimestamp,
                                transmit: NTPTimestamp(rawValue: receive.rawValue &+ 1000))
        followUp.copyMemory(from: request)
        followUp.storeBytes(of: receive.rawValue.bigEndian, toByteOffset: 24, as: UInt64.self)
        // Its receive field must differ from its transmit field (the request's own): equal ones
        // mark a basic client that copies fields, answered in basic mode (chrony's rule; a
        // fuzz find of the harness's own assumption, covered by InterleavedTests).
        let transmitField = load64(request, 40)
        let receiveField = receive.rawValue &+ 77 == transmitField ? receive.rawValue &+ 78 : receive.rawValue &+ 77
        followUp.storeBytes(of: receiveField.bigEndian, toByteOffset: 32, as: UInt64.self)
        let second2 = handleAndCheck(core, UnsafeRawBufferPointer(rebasing: followUp[0..<size]), source: second,
                                     now: 6_000_000_000, receive: NTPTimestamp(rawValue: receive.rawValue &+ 5000))
        if second2.length > 0 { answered += 1 }
        require(second2.kind == .interleaved(previousTransmit: NTPTimestamp(rawValue: receive.rawValue &+ 1000)),
                "follow-up not interleaved: \(String(describing: second2.kind))")
    }
    let c = core.counters
    require(c.received == c.rateLimitedDropped + c.malformed + c.controlMode + c.notClientMode + c.unsupportedVersion + answered,
            "counters do not account for every datagram: \(c.summary), answered \(answered)")
    require(UInt64(kisses) <= c.rateKissesSent, "kiss count")
    return 0
}
