/// RFC 5905 §7.3 reference ID: four ASCII characters at stratum 0 (kiss code, §7.4) and
/// stratum 1 (reference clock, Figure 12), an IPv4 address or an IPv6 hash above that.
public struct NTPReferenceID: Hashable, Sendable, RawRepresentable {
    /// The four bytes in wire order, read big-endian ("LOCL" = 0x4C4F434C).
    public var rawValue: UInt32

    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Four bytes in wire order; pad short codes with 0 ("GPS" = G, P, S, 0).
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// An ASCII code of at most four characters, NUL-padded (RFC 5905 Figure 12).
    /// Returns nil for longer or non-ASCII text. Not for hot paths: use the constants.
    public init?(code: String) {
        let utf8 = Array(code.utf8)
        guard utf8.count <= 4, utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
        let padded = utf8 + [UInt8](repeating: 0, count: 4 - utf8.count)
        self.init(padded[0], padded[1], padded[2], padded[3])
    }

    /// An IPv4 address of an upstream server (strata 2 and above), octets in written order.
    public init(ipv4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) { self.init(a, b, c, d) }

    /// RFC 5905 §7.3: for an IPv6 upstream, the first four octets of the MD5 hash of the address.
    public init(ipv6Address: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                              UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)) {
        var address = ipv6Address
        let digest = withUnsafeBytes(of: &address) { MD5.digest(of: $0) }
        self.init(digest.0, digest.1, digest.2, digest.3)
    }

    /// The four bytes in wire order.
    public var octets: (UInt8, UInt8, UInt8, UInt8) {
        (UInt8(truncatingIfNeeded: rawValue >> 24), UInt8(truncatingIfNeeded: rawValue >> 16),
         UInt8(truncatingIfNeeded: rawValue >> 8), UInt8(truncatingIfNeeded: rawValue))
    }

    /// The ASCII code with trailing NULs removed, or nil if the bytes are not printable ASCII
    /// followed only by NULs. For display and logs, not hot paths.
    public var asciiCode: String? {
        let bytes = [octets.0, octets.1, octets.2, octets.3]
        var length = 4
        while length > 0 && bytes[length - 1] == 0 { length -= 1 }
        guard length > 0 else { return nil }
        for byte in bytes[0..<length] where byte < 0x20 || byte >= 0x7F { return nil }
        return String(decoding: bytes[0..<length], as: UTF8.self)
    }

    /// Dotted quad, for strata 2 and above.
    public var ipv4Description: String {
        let o = octets
        return "\(o.0).\(o.1).\(o.2).\(o.3)"
    }

    // Kiss codes, RFC 5905 §7.4 (and RFC 8915 §5.7 for NTSN).
    /// The association belongs to an anycast server.
    public static let acst = NTPReferenceID(0x41, 0x43, 0x53, 0x54)
    /// Server authentication failed.
    public static let auth = NTPReferenceID(0x41, 0x55, 0x54, 0x48)
    /// Autokey sequence failed.
    public static let auto = NTPReferenceID(0x41, 0x55, 0x54, 0x4F)
    /// The association belongs to a broadcast server.
    public static let bcst = NTPReferenceID(0x42, 0x43, 0x53, 0x54)
    /// Cryptographic authentication or identification failed.
    public static let cryp = NTPReferenceID(0x43, 0x52, 0x59, 0x50)
    /// Access denied by remote server.
    public static let deny = NTPReferenceID(0x44, 0x45, 0x4E, 0x59)
    /// Lost peer in symmetric mode.
    public static let drop = NTPReferenceID(0x44, 0x52, 0x4F, 0x50)
    /// Access denied due to local policy.
    public static let rstr = NTPReferenceID(0x52, 0x53, 0x54, 0x52)
    /// The association has not yet synchronized for the first time.
    public static let kissInit = NTPReferenceID(0x49, 0x4E, 0x49, 0x54)
    /// The association belongs to a dynamically discovered server.
    public static let mcst = NTPReferenceID(0x4D, 0x43, 0x53, 0x54)
    /// No key found.
    public static let nkey = NTPReferenceID(0x4E, 0x4B, 0x45, 0x59)
    /// NTS negative acknowledgment: the cookie could not be used (RFC 8915 §5.7).
    public static let ntsn = NTPReferenceID(0x4E, 0x54, 0x53, 0x4E)
    /// Rate exceeded: reduce the polling rate.
    public static let rate = NTPReferenceID(0x52, 0x41, 0x54, 0x45)
    /// Alteration of association from a remote host running ntpdc.
    public static let rmot = NTPReferenceID(0x52, 0x4D, 0x4F, 0x54)
    /// A step change in system time has occurred.
    public static let step = NTPReferenceID(0x53, 0x54, 0x45, 0x50)

    // Reference clock codes, RFC 5905 Figure 12, plus LOCL (an undisciplined local clock).
    public static let locl = NTPReferenceID(0x4C, 0x4F, 0x43, 0x4C)
    public static let gps = NTPReferenceID(0x47, 0x50, 0x53, 0x00)
    public static let gal = NTPReferenceID(0x47, 0x41, 0x4C, 0x00)
    public static let pps = NTPReferenceID(0x50, 0x50, 0x53, 0x00)
    public static let goes = NTPReferenceID(0x47, 0x4F, 0x45, 0x53)
    public static let irig = NTPReferenceID(0x49, 0x52, 0x49, 0x47)
    public static let wwvb = NTPReferenceID(0x57, 0x57, 0x56, 0x42)
    public static let dcf = NTPReferenceID(0x44, 0x43, 0x46, 0x00)
    public static let msf = NTPReferenceID(0x4D, 0x53, 0x46, 0x00)
    public static let jjy = NTPReferenceID(0x4A, 0x4A, 0x59, 0x00)
    public static let ptb = NTPReferenceID(0x50, 0x54, 0x42, 0x00)
    public static let nist = NTPReferenceID(0x4E, 0x49, 0x53, 0x54)
}
