/// The legacy MAC after the header and extension fields (RFC 5905 §7.3, RFC 8573):
/// a 4-byte key ID then the digest. Positions refer to the caller's packet buffer.
public struct NTPMACTrailer: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// Key ID alone (4 bytes): "crypto-NAK", the server could not authenticate (RFC 5905 §7.4).
        case cryptoNAK
        /// 16-byte digest: AES-CMAC (RFC 8573) or legacy MD5; the key ID says which.
        case digest16
        /// 20-byte digest: SHA-1.
        case digest20
    }

    public var kind: Kind
    public var keyID: UInt32
    /// Key ID and digest together.
    public var bytes: Range<Int>
    /// The digest alone (empty for a crypto-NAK).
    public var digest: Range<Int> { (bytes.lowerBound + 4)..<bytes.upperBound }

    /// The three lengths RFC 7822 §7 lets a trailer have.
    @inline(__always)
    public static func isMACLength(_ count: Int) -> Bool { count == 4 || count == 20 || count == 24 }

    /// Writes key ID and digest at `offset`; `digest` must be 0 (crypto-NAK), 16 or 20 bytes.
    /// Returns the bytes written.
    public static func write(
        keyID: UInt32, digest: UnsafeRawBufferPointer,
        into buffer: UnsafeMutableRawBufferPointer, at offset: Int
    ) throws(NTPPacketError) -> Int {
        guard digest.count == 0 || digest.count == 16 || digest.count == 20 else {
            throw .unsupportedMACDigestLength(digest.count)
        }
        let length = 4 + digest.count
        guard offset >= 0, offset <= buffer.count, buffer.count - offset >= length else {
            throw .bufferTooSmall(needed: offset + length, available: buffer.count)
        }
        buffer.storeBigEndian(keyID, at: offset)
        buffer.copyBytes(from: digest, at: offset + 4)
        return length
    }
}

/// A received packet checked from end to end: the decoded header, and where the extension
/// fields and MAC lie in the caller's buffer (no bytes copied, nothing allocated).
public struct NTPParsedPacket: Hashable, Sendable {
    public var header: NTPHeader
    /// Total length of the packet parsed.
    public var length: Int
    /// All extension fields, back to back (empty if none). Walk them with `extensionFields(in:)`.
    public var extensionFieldBytes: Range<Int>
    public var extensionFieldCount: Int
    public var mac: NTPMACTrailer?

    /// Everything after the header (extension fields then MAC): copy these bytes after
    /// `header.encode` to rebuild the packet exactly.
    public var trailingBytes: Range<Int> { NTPHeader.byteCount..<length }

    /// Parses a whole packet. Throws `NTPPacketError` (never traps) when the header is short or
    /// the bytes after it are not extension fields optionally followed by a MAC (RFC 7822 §7).
    /// Versions other than 4 may carry only a MAC after the header.
    public init(parsing packet: UnsafeRawBufferPointer) throws(NTPPacketError) {
        header = try NTPHeader(decoding: packet)
        length = packet.count
        let afterHeader = length - NTPHeader.byteCount
        var fieldsEnd = NTPHeader.byteCount
        var count = 0
        if header.version == 4 {
            var walker = NTPExtensionFieldWalker(packet: packet)
            while try walker.next() != nil { count += 1 }
            fieldsEnd = walker.offset
        } else if afterHeader != 0 && !NTPMACTrailer.isMACLength(afterHeader) {
            throw .trailerNotAMACForVersion(version: header.version, count: afterHeader)
        }
        extensionFieldBytes = NTPHeader.byteCount..<fieldsEnd
        extensionFieldCount = count
        let macLength = length - fieldsEnd
        if macLength == 0 {
            mac = nil
        } else {
            let kind: NTPMACTrailer.Kind = macLength == 4 ? .cryptoNAK : (macLength == 20 ? .digest16 : .digest20)
            mac = NTPMACTrailer(kind: kind, keyID: packet.loadBigEndianUInt32(at: fieldsEnd), bytes: fieldsEnd..<length)
        }
    }

    /// A walker over this packet's extension fields; `packet` must be the buffer that was parsed.
    public func extensionFields(in packet: UnsafeRawBufferPointer) -> NTPExtensionFieldWalker {
        NTPExtensionFieldWalker(packet: UnsafeRawBufferPointer(rebasing: packet[0..<Swift.min(length, packet.count)]))
    }
}
