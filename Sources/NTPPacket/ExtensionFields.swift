/// RFC 7822 extension field type (16 bits). The NTS types of RFC 8915 §5.7 are named.
public struct NTPExtensionFieldType: Hashable, Sendable, RawRepresentable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// RFC 8915 §5.3: random bytes the server echoes, binding response to request.
    public static let uniqueIdentifier = NTPExtensionFieldType(rawValue: 0x0104)
    /// RFC 8915 §5.4: an NTS cookie.
    public static let ntsCookie = NTPExtensionFieldType(rawValue: 0x0204)
    /// RFC 8915 §5.5: asks the server for one more cookie, same length as a cookie.
    public static let ntsCookiePlaceholder = NTPExtensionFieldType(rawValue: 0x0304)
    /// RFC 8915 §5.6: the AEAD authenticator and encrypted extension fields.
    public static let ntsAuthenticatorAndEncryptedExtensionFields = NTPExtensionFieldType(rawValue: 0x0404)
}

/// One extension field, as positions in the caller's packet buffer (nothing copied).
public struct NTPExtensionField: Hashable, Sendable {
    public var fieldType: NTPExtensionFieldType
    /// The whole field: type, length, value and padding.
    public var bytes: Range<Int>
    /// The value after the 4-byte type and length (including any padding).
    public var value: Range<Int> { (bytes.lowerBound + 4)..<bytes.upperBound }
    public var length: Int { bytes.count }

    /// RFC 7822 §3: a field is at least 16 bytes, padded to a multiple of 4.
    public static let minimumLength = 16
    /// RFC 7822 §7: without a MAC after it, the last field must be at least 28 bytes, so
    /// that it cannot be mistaken for a MAC (at most 24 bytes).
    public static let minimumLastLengthWithoutMAC = 28

    /// Writes a field of `fieldType` holding `value`, zero-padded to a multiple of 4 and to the
    /// 16-byte minimum, at `offset` in `buffer`; returns the field's length.
    /// (Padding up to 28 when it is the last field without a MAC is the caller's choice of value.)
    public static func write(
        _ fieldType: NTPExtensionFieldType, value: UnsafeRawBufferPointer,
        into buffer: UnsafeMutableRawBufferPointer, at offset: Int
    ) throws(NTPPacketError) -> Int {
        guard value.count <= 65_532 else { throw .extensionFieldValueTooLong(valueLength: value.count) }
        let length = Swift.max(minimumLength, (4 + value.count + 3) & ~3)
        guard offset >= 0, offset <= buffer.count, buffer.count - offset >= length else {
            throw .bufferTooSmall(needed: offset + length, available: buffer.count)
        }
        buffer.storeBigEndian(fieldType.rawValue, at: offset)
        buffer.storeBigEndian(UInt16(length), at: offset + 2)
        buffer.copyBytes(from: value, at: offset + 4)
        for index in (offset + 4 + value.count)..<(offset + length) { buffer[index] = 0 }
        return length
    }
}

/// Walks the extension fields after the header without allocating (RFC 7822 §7).
///
/// At each step, with `remaining` bytes left: 0 ends the walk; exactly 4, 20 or 24 is a MAC
/// (crypto-NAK, 16-byte or 20-byte digest) and ends the walk; fewer than 28 is an error;
/// otherwise an extension field starts here and must have a valid length. This is the one rule
/// the parser uses, so a walker over a parsed packet yields exactly what the parser checked.
public struct NTPExtensionFieldWalker {
    private let packet: UnsafeRawBufferPointer
    /// Where the next field (or, once the walk is over, the MAC) starts.
    public private(set) var offset: Int

    /// `packet` is the whole packet; the walk starts after the 48-byte header.
    public init(packet: UnsafeRawBufferPointer) {
        self.packet = packet
        offset = Swift.min(NTPHeader.byteCount, packet.count)
    }

    /// The next field, or nil when only a MAC (or nothing) is left.
    public mutating func next() throws(NTPPacketError) -> NTPExtensionField? {
        let remaining = packet.count - offset
        if remaining == 0 || NTPMACTrailer.isMACLength(remaining) { return nil }
        guard remaining >= NTPExtensionField.minimumLastLengthWithoutMAC else {
            throw .trailingBytesNotExtensionFieldOrMAC(offset: offset, count: remaining)
        }
        let fieldType = packet.loadBigEndianUInt16(at: offset)
        let length = Int(packet.loadBigEndianUInt16(at: offset + 2))
        guard length >= NTPExtensionField.minimumLength else {
            throw .extensionFieldTooShort(offset: offset, length: length)
        }
        guard length % 4 == 0 else {
            throw .extensionFieldLengthNotMultipleOfFour(offset: offset, length: length)
        }
        guard length <= remaining else {
            throw .extensionFieldOverrunsPacket(offset: offset, length: length, remaining: remaining)
        }
        let field = NTPExtensionField(fieldType: NTPExtensionFieldType(rawValue: fieldType), bytes: offset..<(offset + length))
        offset += length
        return field
    }
}
