import NTPPacket

/// Building a client request (RFC 5905 §7.3, mode 3, version 4).
///
/// Every field but version, mode and transmit is zero (the IETF NTP data-minimization
/// recommendation: a client has nothing to tell the server). The transmit timestamp is not
/// the time: it is 64 random bits, as chrony sends, so an off-path attacker who cannot see
/// the request cannot forge the origin of a response (RFC 9109 §3, RFC 5905 §8 "bogus").
/// The client keeps its own send time from the kernel TX stamp instead.
public enum ClientRequest {
    public static let byteCount = NTPHeader.byteCount

    /// A random, nonzero transmit timestamp (zero means "unknown" in RFC 5905 §7.3 and would
    /// let any response with a zero origin match).
    public static func randomTransmitTimestamp<G: RandomNumberGenerator>(using generator: inout G) -> NTPTimestamp {
        while true {
            let value = generator.next()
            if value != 0 { return NTPTimestamp(rawValue: value) }
        }
    }

    /// The request header carrying `transmitTimestamp`.
    public static func header(transmitTimestamp: NTPTimestamp) -> NTPHeader {
        NTPHeader(leapIndicator: .noWarning, version: 4, mode: .client, stratum: 0, poll: 0, precision: 0,
                  transmitTimestamp: transmitTimestamp)
    }

    /// Writes the 48-byte request into `buffer`; returns 48.
    @discardableResult
    public static func encode(transmitTimestamp: NTPTimestamp,
                              into buffer: UnsafeMutableRawBufferPointer) throws(NTPPacketError) -> Int {
        try header(transmitTimestamp: transmitTimestamp).encode(into: buffer)
    }
}
