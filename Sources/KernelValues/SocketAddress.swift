/// An IPv4 or IPv6 address with a port, as a plain value (no allocation to copy, compare or
/// hash). KernelStamps converts it to and from `sockaddr_storage` and parses and resolves text.
///
/// The address is kept as 128 bits in network order split into two `UInt64`s; an IPv4 address
/// is kept in its IPv4-mapped form (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2), so `key` is the same
/// for a client seen on an IPv4 socket and on a dual-stack IPv6 socket.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Sendable, Hashable {
        case ipv4
        case ipv6
    }

    /// A compact key for client tables: the 128-bit address without the port.
    public struct Key: Hashable, Sendable {
        public let high: UInt64
        public let low: UInt64
        public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }
    }

    public let family: Family
    /// Upper 64 bits of the (IPv4-mapped) IPv6 address, network bit order as a number.
    public let high: UInt64
    /// Lower 64 bits; for IPv4 `0x0000_ffff_aabb_ccdd`.
    public let low: UInt64
    public let port: UInt16
    /// IPv6 scope (interface index) for link-local addresses, 0 otherwise.
    public let scopeID: UInt32

    package static let mappedPrefixLow: UInt64 = 0x0000_ffff_0000_0000

    /// IPv4 address in host order (e.g. `0x7f00_0001` for 127.0.0.1).
    public init(ipv4 address: UInt32, port: UInt16) {
        family = .ipv4
        high = 0
        low = SocketAddress.mappedPrefixLow | UInt64(address)
        self.port = port
        scopeID = 0
    }

    /// IPv6 address as two 64-bit halves (e.g. `high: 0, low: 1` is `::1`).
    public init(ipv6High high: UInt64, low: UInt64, port: UInt16, scopeID: UInt32 = 0) {
        family = .ipv6
        self.high = high
        self.low = low
        self.port = port
        self.scopeID = scopeID
    }

    public static func loopbackIPv4(port: UInt16) -> SocketAddress { SocketAddress(ipv4: 0x7f00_0001, port: port) }
    public static func loopbackIPv6(port: UInt16) -> SocketAddress { SocketAddress(ipv6High: 0, low: 1, port: port) }
    public static func anyIPv4(port: UInt16) -> SocketAddress { SocketAddress(ipv4: 0, port: port) }
    public static func anyIPv6(port: UInt16) -> SocketAddress { SocketAddress(ipv6High: 0, low: 0, port: port) }

    /// The address without its port, for per-client tables (rate limiting, interleaved state).
    @inline(__always) public var key: Key { Key(high: high, low: low) }

    /// The IPv4 address in host order, if this is IPv4 or IPv4-mapped IPv6.
    public var ipv4Address: UInt32? {
        high == 0 && (low & 0xffff_ffff_0000_0000) == SocketAddress.mappedPrefixLow
            ? UInt32(truncatingIfNeeded: low) : nil
    }

    public func withPort(_ newPort: UInt16) -> SocketAddress {
        switch family {
        case .ipv4: return SocketAddress(ipv4: UInt32(truncatingIfNeeded: low), port: newPort)
        case .ipv6: return SocketAddress(ipv6High: high, low: low, port: newPort, scopeID: scopeID)
        }
    }

    // MARK: text (RFC 5952, as inet_ntop(3) writes it)

    /// "127.0.0.1:123", "[::1]:123", "[fe80::1%2]:123".
    public var description: String { family == .ipv6 ? "[\(hostDescription)]:\(port)" : "\(hostDescription):\(port)" }

    /// The address without port: "127.0.0.1", "::1", "fe80::1%2". IPv6 text follows RFC 5952
    /// §4 (lowercase, no leading zeros, the first longest run of two or more zero groups as
    /// "::") and, like inet_ntop, writes IPv4-mapped and IPv4-compatible addresses with a
    /// dotted tail (RFC 4291 §2.2 form 3).
    public var hostDescription: String {
        if family == .ipv4 { return SocketAddress.dottedQuad(UInt32(truncatingIfNeeded: low)) }
        var groups = [UInt16](repeating: 0, count: 8)
        for i in 0..<4 {
            groups[i] = UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64(i)))
            groups[i + 4] = UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64(i)))
        }
        // The first longest run of zero groups, if at least two long.
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0...8 {
            if i < 8 && groups[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1; bestLength = 0 }
        let dottedTail = bestStart == 0 && (bestLength == 6 || (bestLength == 5 && groups[5] == 0xffff))
        var text = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                text += i == 0 ? "::" : ":"
                i += bestLength
                continue
            }
            if dottedTail && i == 6 {
                text += SocketAddress.dottedQuad(UInt32(truncatingIfNeeded: low))
                break
            }
            text += String(groups[i], radix: 16)
            if i < 7 { text += ":" }
            i += 1
        }
        return scopeID != 0 ? "\(text)%\(scopeID)" : text
    }

    static func dottedQuad(_ address: UInt32) -> String {
        "\(address >> 24).\((address >> 16) & 0xff).\((address >> 8) & 0xff).\(address & 0xff)"
    }
}
