/// Everything that can be wrong with bytes handed to the codec (the module's one error type).
/// Each case carries the numbers a person needs to find the problem in a capture.
public enum NTPPacketError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer than the 48 bytes of the RFC 5905 §7.3 header.
    case tooShort(length: Int)
    /// RFC 7822 §3: an extension field is at least 16 bytes.
    case extensionFieldTooShort(offset: Int, length: Int)
    /// RFC 7822 §3: an extension field's length is a multiple of 4.
    case extensionFieldLengthNotMultipleOfFour(offset: Int, length: Int)
    /// The extension field's length runs past the end of the packet.
    case extensionFieldOverrunsPacket(offset: Int, length: Int, remaining: Int)
    /// RFC 7822 §7: bytes left after the extension fields that are too short to be an
    /// extension field (a last field without MAC needs 28) and are not a 4, 20 or 24 byte MAC.
    case trailingBytesNotExtensionFieldOrMAC(offset: Int, count: Int)
    /// Only NTPv4 carries extension fields; before it, only a MAC may follow the header.
    case trailerNotAMACForVersion(version: UInt8, count: Int)
    /// Encoding: the caller's buffer cannot hold what would be written.
    case bufferTooSmall(needed: Int, available: Int)
    /// Encoding: an extension field's value is too long for the 16-bit length field.
    case extensionFieldValueTooLong(valueLength: Int)
    /// Encoding: a MAC digest must be 16 (AES-CMAC, MD5) or 20 (SHA-1) bytes, or absent (crypto-NAK).
    case unsupportedMACDigestLength(Int)

    public var description: String {
        switch self {
        case .tooShort(let length):
            return "packet is \(length) bytes; an NTP header needs 48 (RFC 5905 §7.3)"
        case .extensionFieldTooShort(let offset, let length):
            return "extension field at byte \(offset) declares length \(length); the minimum is 16 (RFC 7822 §3)"
        case .extensionFieldLengthNotMultipleOfFour(let offset, let length):
            return "extension field at byte \(offset) declares length \(length), which is not a multiple of 4 (RFC 7822 §3)"
        case .extensionFieldOverrunsPacket(let offset, let length, let remaining):
            return "extension field at byte \(offset) declares length \(length) but only \(remaining) bytes remain in the packet"
        case .trailingBytesNotExtensionFieldOrMAC(let offset, let count):
            return "\(count) bytes at byte \(offset) are neither an extension field (a last field needs 28 bytes) nor a MAC (4, 20 or 24 bytes) (RFC 7822 §7)"
        case .trailerNotAMACForVersion(let version, let count):
            return "NTPv\(version) packet has \(count) bytes after the header; before NTPv4 only a MAC of 4, 20 or 24 bytes may follow"
        case .bufferTooSmall(let needed, let available):
            return "output buffer holds \(available) bytes but \(needed) are needed; pass a larger buffer"
        case .extensionFieldValueTooLong(let valueLength):
            return "extension field value of \(valueLength) bytes does not fit the 16-bit length field (at most 65532 bytes of value)"
        case .unsupportedMACDigestLength(let length):
            return "MAC digest of \(length) bytes: use 16 (AES-CMAC per RFC 8573, or MD5) or 20 (SHA-1)"
        }
    }
}
