import FeedforwardClock
import KernelValues
import NTPPacket

/// The request a response must answer: what was sent, to whom, and whether it was answered.
public struct OutstandingRequest: Sendable, Equatable {
    /// The random transmit timestamp sent; a genuine response echoes it as its origin.
    public var transmitTimestamp: NTPTimestamp
    /// Where the request went (address and port).
    public var server: SocketAddress
    /// A valid response was already accepted: any further one is a duplicate (RFC 5905 §8).
    public var answered: Bool

    public init(transmitTimestamp: NTPTimestamp, server: SocketAddress, answered: Bool = false) {
        self.transmitTimestamp = transmitTimestamp
        self.server = server
        self.answered = answered
    }
}

/// What a kiss-o'-death asks of the client (RFC 5905 §7.4).
public enum KissAction: Sendable, Equatable {
    /// RATE: poll less often (the client doubles its interval).
    case reducePollRate
    /// DENY, RSTR: the server refuses us; stop polling it.
    case stopPolling
    /// Any other code: not a time sample; counted and otherwise ignored.
    case ignore

    public init(code: NTPReferenceID) {
        switch code {
        case .rate: self = .reducePollRate
        case .deny, .rstr: self = .stopPolling
        default: self = .ignore
        }
    }
}

/// One kind of refused response, for counting and for logging each kind once.
public enum ResponseRejectionKind: Int, CaseIterable, Sendable, Comparable {
    case malformed
    case wrongAddress
    case wrongPort
    case notServerMode
    case unsupportedVersion
    case bogusOrigin
    case duplicate
    case kissRate
    case kissDeny
    case kissRestrict
    case kissOther
    case zeroTimestamp
    case reversedTimestamps
    case serverUnsynchronised

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    /// Short name for counters in output.
    public var name: String {
        switch self {
        case .malformed: return "malformed"
        case .wrongAddress: return "wrong-address"
        case .wrongPort: return "wrong-port"
        case .notServerMode: return "not-server-mode"
        case .unsupportedVersion: return "unsupported-version"
        case .bogusOrigin: return "bogus-origin"
        case .duplicate: return "duplicate"
        case .kissRate: return "kiss-rate"
        case .kissDeny: return "kiss-deny"
        case .kissRestrict: return "kiss-rstr"
        case .kissOther: return "kiss-other"
        case .zeroTimestamp: return "zero-timestamp"
        case .reversedTimestamps: return "reversed-timestamps"
        case .serverUnsynchronised: return "server-unsynchronised"
        }
    }
}

/// Why a datagram is not a usable answer to the outstanding request (RFC 5905 §8 tests,
/// RFC 9109 §3 source checks). Each carries what a person needs to understand it.
public enum ResponseRejection: Sendable, Equatable, CustomStringConvertible {
    case malformed(NTPPacketError)
    case wrongAddress(SocketAddress?)
    case wrongPort(UInt16)
    case notServerMode(NTPMode)
    case unsupportedVersion(UInt8)
    /// The origin does not echo our transmit: forged, stale, or for another request.
    case bogusOrigin(NTPTimestamp)
    /// A second response to a request already answered (replay or network duplicate).
    case duplicate
    case kiss(NTPReferenceID, KissAction)
    case zeroTimestamp
    /// The server's transmit precedes its receive (Te < Tb).
    case reversedTimestamps
    /// LI 3 or stratum 16+: the server says it has no good time.
    case serverUnsynchronised(leap: UInt8, stratum: UInt8)

    /// A DENY or RSTR kiss: the server refuses this client and polling stops (RFC 5905 §7.4).
    public var endsPolling: Bool {
        if case .kiss(_, .stopPolling) = self { return true }
        return false
    }

    public var kind: ResponseRejectionKind {
        switch self {
        case .malformed: return .malformed
        case .wrongAddress: return .wrongAddress
        case .wrongPort: return .wrongPort
        case .notServerMode: return .notServerMode
        case .unsupportedVersion: return .unsupportedVersion
        case .bogusOrigin: return .bogusOrigin
        case .duplicate: return .duplicate
        case .kiss(let code, _):
            switch code {
            case .rate: return .kissRate
            case .deny: return .kissDeny
            case .rstr: return .kissRestrict
            default: return .kissOther
            }
        case .zeroTimestamp: return .zeroTimestamp
        case .reversedTimestamps: return .reversedTimestamps
        case .serverUnsynchronised: return .serverUnsynchronised
        }
    }

    public var description: String {
        switch self {
        case .malformed(let error): return "malformed response: \(error)"
        case .wrongAddress(let source):
            return "datagram from \(source.map { "\($0)" } ?? "an unknown address"), not the server: ignored (RFC 9109)"
        case .wrongPort(let port): return "response from the server's address but port \(port): ignored (RFC 9109)"
        case .notServerMode(let mode): return "response in mode \(mode.rawValue), not 4 (server): ignored"
        case .unsupportedVersion(let version): return "response of NTP version \(version): only 3 and 4 are understood"
        case .bogusOrigin: return "origin timestamp does not echo our request's transmit timestamp: forged or stale (RFC 5905 §8)"
        case .duplicate: return "second response to an already answered request: duplicate or replay (RFC 5905 §8)"
        case .kiss(let code, let action):
            let name = code.asciiCode ?? "0x" + String(code.rawValue, radix: 16)
            switch action {
            case .reducePollRate: return "kiss-o'-death RATE: the server asks us to poll less often; doubling the poll interval"
            case .stopPolling: return "kiss-o'-death \(name): the server refuses to serve this client; stopping (ask its operator, or use another server)"
            case .ignore: return "kiss-o'-death \(name): not a time sample; ignored"
            }
        case .zeroTimestamp: return "response with a zero receive or transmit timestamp: incomplete, ignored"
        case .reversedTimestamps: return "response whose transmit timestamp precedes its receive timestamp: broken server clock, ignored"
        case .serverUnsynchronised(let leap, let stratum):
            return "server is unsynchronised (leap \(leap), stratum \(stratum)): not used for the clock"
        }
    }
}

/// A response that passed every test: the server's header, with its timestamps.
public struct ServerResponse: Sendable, Equatable {
    public var header: NTPHeader

    public init(header: NTPHeader) { self.header = header }

    /// The filter's stamp from our raw counter readings and this response. `pivot` resolves
    /// the NTP era (RFC 5905 §6): any Unix time within 68 years, e.g. CLOCK_REALTIME now.
    public func stamp(ta: Int64, tf: Int64, pivotUnixNanoseconds pivot: Int64) -> Stamp {
        Stamp(ta: ta,
              tb: header.receiveTimestamp.unixNanoseconds(nearestTo: pivot),
              te: header.transmitTimestamp.unixNanoseconds(nearestTo: pivot),
              tf: tf,
              stratum: header.stratum,
              referenceID: header.referenceID.rawValue,
              leap: header.leapIndicator.rawValue,
              rootDelayNanoseconds: header.rootDelay.nanoseconds,
              rootDispersionNanoseconds: header.rootDispersion.nanoseconds)
    }
}

public enum ResponseVerdict: Sendable, Equatable {
    case valid(ServerResponse)
    case rejected(ResponseRejection)
}

/// Decides whether `bytes`, received from `source`, answer `request` (RFC 5905 §8, RFC 9109).
/// Pure: no clock, no I/O. The tests run in this order so the cheapest forgery checks come
/// first and a kiss-o'-death is believed only once its origin proves it answers our request
/// (otherwise anyone could silence the client with a spoofed DENY).
public func validateResponse(_ bytes: UnsafeRawBufferPointer, from source: SocketAddress?,
                             for request: OutstandingRequest) -> ResponseVerdict {
    guard let source, source.key == request.server.key else {
        return .rejected(.wrongAddress(source))
    }
    guard source.port == request.server.port else { return .rejected(.wrongPort(source.port)) }
    let header: NTPHeader
    do {
        header = try NTPParsedPacket(parsing: bytes).header
    } catch {
        return .rejected(.malformed(error))
    }
    guard header.mode == .server else { return .rejected(.notServerMode(header.mode)) }
    guard header.version == 3 || header.version == 4 else { return .rejected(.unsupportedVersion(header.version)) }
    guard header.originTimestamp == request.transmitTimestamp else {
        return .rejected(.bogusOrigin(header.originTimestamp))
    }
    if request.answered { return .rejected(.duplicate) }
    if let code = header.kissCode { return .rejected(.kiss(code, KissAction(code: code))) }
    if header.receiveTimestamp.isZero || header.transmitTimestamp.isZero { return .rejected(.zeroTimestamp) }
    // Te < Tb, compared the short way round the era (RFC 5905 §6).
    if header.transmitTimestamp.nanoseconds(since: header.receiveTimestamp) < 0 {
        return .rejected(.reversedTimestamps)
    }
    if header.leapIndicator == .unsynchronized || header.stratum >= 16 {
        return .rejected(.serverUnsynchronised(leap: header.leapIndicator.rawValue, stratum: header.stratum))
    }
    return .valid(ServerResponse(header: header))
}

/// Counts of everything refused or missed, and which kinds were already logged, so each kind
/// is reported once (a flood of forgeries must not flood the log) and totals come at the end.
public struct ClientCounters: Sendable, Equatable {
    public private(set) var responses = [Int](repeating: 0, count: ResponseRejectionKind.allCases.count)
    /// Stamps the filter refused (docs/feedforward.md §2), by `StampRejection.rawValue`.
    public private(set) var stamps = [Int](repeating: 0, count: StampRejection.allCases.count)
    public private(set) var timeouts = 0
    /// Exchanges where the kernel gave no TX (or RX) stamp and a user-space read stood in.
    public private(set) var userSpaceTransmitStamps = 0
    public private(set) var userSpaceReceiveStamps = 0

    public init() {}

    /// Counts a rejection; true the first time this kind is seen (log it then).
    public mutating func record(_ rejection: ResponseRejection) -> Bool {
        let index = rejection.kind.rawValue
        responses[index] += 1
        return responses[index] == 1
    }

    /// Counts a filter rejection; true the first time this kind is seen.
    public mutating func record(_ rejection: StampRejection) -> Bool {
        let index = Int(rejection.rawValue)
        if index >= stamps.count { stamps += [Int](repeating: 0, count: index - stamps.count + 1) }
        stamps[index] += 1
        return stamps[index] == 1
    }

    public mutating func recordTimeout() { timeouts += 1 }
    public mutating func recordUserSpaceStamps(transmit: Bool, receive: Bool) {
        if transmit { userSpaceTransmitStamps += 1 }
        if receive { userSpaceReceiveStamps += 1 }
    }

    public func count(_ kind: ResponseRejectionKind) -> Int { responses[kind.rawValue] }

    /// Refused datagrams of every kind.
    public var totalRefused: Int { responses.reduce(0, +) }

    /// "timeouts 2, bogus-origin 1" (only nonzero counts), or "none".
    public var summary: String {
        var parts: [String] = []
        if timeouts > 0 { parts.append("timeouts \(timeouts)") }
        for kind in ResponseRejectionKind.allCases where responses[kind.rawValue] > 0 {
            parts.append("\(kind.name) \(responses[kind.rawValue])")
        }
        for (index, count) in stamps.enumerated() where count > 0 {
            let name = StampRejection(rawValue: UInt8(index)).map { "\($0)" } ?? "stamp-\(index)"
            parts.append("filter refused (\(name)) \(count)")
        }
        if userSpaceTransmitStamps > 0 { parts.append("user-space TX stamps \(userSpaceTransmitStamps)") }
        if userSpaceReceiveStamps > 0 { parts.append("user-space RX stamps \(userSpaceReceiveStamps)") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }
}
