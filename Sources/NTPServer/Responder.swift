import NTPPacket

/// Why a datagram got no answer. Each has its own counter (`ServerCounters`).
public enum DropReason: UInt8, Sendable, CaseIterable {
    /// Empty, shorter than the 48-byte header, or bytes after the header that are neither
    /// extension fields nor a MAC (RFC 7822 §7).
    case malformed
    /// Mode 6 (control, ntpq) or 7 (private, ntpdc): never answered; both were used for
    /// traffic amplification.
    case controlMode
    /// Any mode but 3 (client), including 1 (symmetric active) and 4/5 (server, broadcast).
    case notClientMode
    /// Version 0 or above 4 (RFC 5905 §7.3 defines 1...4 as answerable).
    case unsupportedVersion
    /// Over the client's rate limit, and a RATE kiss was already sent this interval.
    case rateLimited
}

/// The fields of a valid client request that the response depends on.
public struct ClientRequest: Sendable, Equatable {
    public var version: UInt8
    public var poll: Int8
    public var originTimestamp: NTPTimestamp
    public var receiveTimestamp: NTPTimestamp
    public var transmitTimestamp: NTPTimestamp
    /// Length of the request datagram: the response is never longer (no amplification).
    public var length: Int
}

/// What to send back to one valid request.
public enum ResponseKind: Sendable, Equatable {
    /// RFC 5905 §8: origin = request transmit, receive = this RX stamp, transmit written by
    /// the shell just before the send (`NTPResponder.patchTransmitTimestamp`).
    case basic
    /// RFC 9769: origin = the request's *receive* field, receive = this RX stamp, transmit =
    /// the kernel TX stamp of the previous response to this client.
    case interleaved(previousTransmit: NTPTimestamp)
    /// RFC 5905 §7.4 kiss-o'-death RATE: stratum 0, reference ID "RATE", LI 3.
    case rateKiss
}

/// The pure responder: request bytes in, verdict or response bytes out. No clock reads, no
/// I/O, no allocation: the serving loop and the tests drive the same code.
public enum NTPResponder {
    /// Every response is the bare 48-byte header (RFC 5905 §7.3).
    public static let responseLength = NTPHeader.byteCount
    /// Byte offset of the transmit timestamp in the header.
    public static let transmitTimestampOffset = 40

    /// RFC 5905 §7.3 MAXPOLL; the lower bound follows ntpd's fast_xmit (poll ≥ 3, 8 s), so a
    /// client polling faster is told, in the one field meant for it, to slow down.
    public static let pollRange: ClosedRange<Int8> = 3...17

    /// Decides whether `request` is a client request we answer, and extracts what the answer
    /// needs. Checks in this order: empty → malformed; mode 6/7 → controlMode (these are not
    /// NTP headers past the first byte, so their length does not matter); shorter than 48 →
    /// malformed; mode ≠ 3 → notClientMode; version 0 or > 4 → unsupportedVersion; bytes
    /// after the header that are not RFC 7822 extension fields and/or a MAC → malformed.
    ///
    /// Requests with extension fields or a MAC get a plain 48-byte answer: no keys are
    /// configured and NTS (RFC 8915) is not supported, so the client's check of the
    /// authenticator fails, as it should, rather than the server echoing unverified fields.
    @inline(__always)
    public static func examine(_ request: UnsafeRawBufferPointer) -> Result<ClientRequest, DropReasonError> {
        let length = request.count
        guard length > 0 else { return .failure(DropReasonError(.malformed)) }
        let first = request[0]
        let mode = first & 0x7
        if mode == 6 || mode == 7 { return .failure(DropReasonError(.controlMode)) }
        guard length >= NTPHeader.byteCount else { return .failure(DropReasonError(.malformed)) }
        if mode != NTPMode.client.rawValue { return .failure(DropReasonError(.notClientMode)) }
        let version = (first >> 3) & 0x7
        if version == 0 || version > 4 { return .failure(DropReasonError(.unsupportedVersion)) }
        if length > NTPHeader.byteCount {
            do throws(NTPPacketError) { _ = try NTPParsedPacket(parsing: request) } catch { return .failure(DropReasonError(.malformed)) }
        }
        return .success(ClientRequest(
            version: version,
            poll: Int8(bitPattern: request[2]),
            originTimestamp: NTPTimestamp(rawValue: loadBigEndian64(request, 24)),
            receiveTimestamp: NTPTimestamp(rawValue: loadBigEndian64(request, 32)),
            transmitTimestamp: NTPTimestamp(rawValue: loadBigEndian64(request, 40)),
            length: length))
    }

    /// Writes the 48-byte response to `request` at the start of `buffer` (which must hold 48
    /// bytes) and returns 48. For `.basic` and `.rateKiss` the transmit field is left zero for
    /// `patchTransmitTimestamp`; `.interleaved` carries its final transmit field.
    @inline(__always)
    public static func writeResponse(to request: ClientRequest, kind: ResponseKind, receiveTimestamp: NTPTimestamp,
                                     state: ServerState, into buffer: UnsafeMutableRawPointer) -> Int {
        var leap = state.leapIndicator.rawValue
        var stratum = state.stratum
        var referenceID = state.referenceID.rawValue
        var origin = request.transmitTimestamp.rawValue
        var transmit: UInt64 = 0
        switch kind {
        case .basic:
            break
        case .interleaved(let previousTransmit):
            origin = request.receiveTimestamp.rawValue
            transmit = previousTransmit.rawValue
        case .rateKiss:
            leap = NTPLeapIndicator.unsynchronized.rawValue
            stratum = 0
            referenceID = NTPReferenceID.rate.rawValue
        }
        let poll = min(max(request.poll, pollRange.lowerBound), pollRange.upperBound)
        buffer.storeBytes(of: leap << 6 | request.version << 3 | NTPMode.server.rawValue, toByteOffset: 0, as: UInt8.self)
        buffer.storeBytes(of: stratum, toByteOffset: 1, as: UInt8.self)
        buffer.storeBytes(of: UInt8(bitPattern: poll), toByteOffset: 2, as: UInt8.self)
        buffer.storeBytes(of: UInt8(bitPattern: state.precision), toByteOffset: 3, as: UInt8.self)
        buffer.storeBytes(of: state.rootDelay.rawValue.bigEndian, toByteOffset: 4, as: UInt32.self)
        buffer.storeBytes(of: state.rootDispersion.rawValue.bigEndian, toByteOffset: 8, as: UInt32.self)
        buffer.storeBytes(of: referenceID.bigEndian, toByteOffset: 12, as: UInt32.self)
        buffer.storeBytes(of: state.referenceTimestamp.rawValue.bigEndian, toByteOffset: 16, as: UInt64.self)
        buffer.storeBytes(of: origin.bigEndian, toByteOffset: 24, as: UInt64.self)
        buffer.storeBytes(of: receiveTimestamp.rawValue.bigEndian, toByteOffset: 32, as: UInt64.self)
        buffer.storeBytes(of: transmit.bigEndian, toByteOffset: 40, as: UInt64.self)
        return responseLength
    }

    /// Writes the transmit timestamp of a response (the last 8 header bytes): called by the
    /// serving loop with a clock read taken right before sendmmsg (RFC 5905 §8: T3 as late as
    /// possible).
    @inline(__always)
    public static func patchTransmitTimestamp(_ timestamp: NTPTimestamp, in response: UnsafeMutableRawPointer) {
        response.storeBytes(of: timestamp.rawValue.bigEndian, toByteOffset: transmitTimestampOffset, as: UInt64.self)
    }

    @inline(__always)
    static func loadBigEndian64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}

/// A `DropReason` as an `Error`, so `examine` can return a `Result` without boxing.
public struct DropReasonError: Error, Sendable, Equatable {
    public let reason: DropReason
    public init(_ reason: DropReason) { self.reason = reason }
}
