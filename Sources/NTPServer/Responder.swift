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

/// The fields of a client request that passed `NTPResponder.examine`: all the response
/// depends on. (Building a request to send is the client's `ClientRequest`.)
public struct ExaminedRequest: Sendable, Equatable {
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
    public static func examine(_ request: UnsafeRawBufferPointer) -> Result<ExaminedRequest, DropReasonError> {
        let length = request.count
        guard length > 0 else { return .failure(DropReasonError(.malformed)) }
        let mode = NTPHeaderLayout.modeBits(ofFirstByte: request[NTPHeaderLayout.leapVersionModeOffset])
        if mode == NTPMode.control.rawValue || mode == NTPMode.privateUse.rawValue { return .failure(DropReasonError(.controlMode)) }
        guard let header = NTPHeaderBytes(request) else { return .failure(DropReasonError(.malformed)) }
        if mode != NTPMode.client.rawValue { return .failure(DropReasonError(.notClientMode)) }
        let version = header.version
        if version == 0 || version > 4 { return .failure(DropReasonError(.unsupportedVersion)) }
        if length > NTPHeader.byteCount {
            do throws(NTPPacketError) { _ = try NTPParsedPacket(parsing: request) } catch { return .failure(DropReasonError(.malformed)) }
        }
        return .success(ExaminedRequest(
            version: version,
            poll: header.poll,
            originTimestamp: header.originTimestamp,
            receiveTimestamp: header.receiveTimestamp,
            transmitTimestamp: header.transmitTimestamp,
            length: length))
    }

    /// Writes the 48-byte response to `request` at the start of `buffer` (which must hold 48
    /// bytes) and returns 48. For `.basic` and `.rateKiss` the transmit field is left zero for
    /// `patchTransmitTimestamp`; `.interleaved` carries its final transmit field.
    @inline(__always)
    public static func writeResponse(to request: ExaminedRequest, kind: ResponseKind, receiveTimestamp: NTPTimestamp,
                                     state: ServerState, into buffer: UnsafeMutableRawPointer) -> Int {
        var leap = state.leapIndicator.rawValue
        var stratum = state.stratum
        var referenceID = state.referenceID
        var origin = request.transmitTimestamp
        var transmit = NTPTimestamp(rawValue: 0)
        switch kind {
        case .basic:
            break
        case .interleaved(let previousTransmit):
            origin = request.receiveTimestamp
            transmit = previousTransmit
        case .rateKiss:
            leap = NTPLeapIndicator.unsynchronized.rawValue
            stratum = 0
            referenceID = NTPReferenceID.rate
        }
        let poll = min(max(request.poll, pollRange.lowerBound), pollRange.upperBound)
        let header = NTPMutableHeaderBytes(unsafeStart: buffer)
        header.setFirstByte(leapIndicatorBits: leap, version: request.version, modeBits: NTPMode.server.rawValue)
        header.setStratum(stratum)
        header.setPoll(poll)
        header.setPrecision(state.precision)
        header.setRootDelay(state.rootDelay)
        header.setRootDispersion(state.rootDispersion)
        header.setReferenceID(referenceID)
        header.setTimestamp(state.referenceTimestamp, at: NTPHeaderLayout.referenceTimestampOffset)
        header.setTimestamp(origin, at: NTPHeaderLayout.originTimestampOffset)
        header.setTimestamp(receiveTimestamp, at: NTPHeaderLayout.receiveTimestampOffset)
        header.setTimestamp(transmit, at: NTPHeaderLayout.transmitTimestampOffset)
        return responseLength
    }

    /// Writes the transmit timestamp of a response (the last 8 header bytes): called by the
    /// serving loop with a clock read taken right before sendmmsg (RFC 5905 §8: T3 as late as
    /// possible).
    @inline(__always)
    public static func patchTransmitTimestamp(_ timestamp: NTPTimestamp, in response: UnsafeMutableRawPointer) {
        NTPMutableHeaderBytes(unsafeStart: response).setTimestamp(timestamp, at: NTPHeaderLayout.transmitTimestampOffset)
    }
}

/// A `DropReason` as an `Error`, so `examine` can return a `Result` without boxing.
public struct DropReasonError: Error, Sendable, Equatable {
    public let reason: DropReason
    public init(_ reason: DropReason) { self.reason = reason }
}
