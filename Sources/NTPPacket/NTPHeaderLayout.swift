/// Where each field of the 48-byte NTPv4 header sits on the wire (RFC 5905 §7.3, figure 8),
/// and how the first byte packs leap indicator, version and mode. The one description of the
/// layout: the codec (`NTPHeader`), the server's responder, the lab's load generator and the
/// relay's rewriter all read and write through it.
public enum NTPHeaderLayout {
    public static let byteCount = 48

    /// LI (2 bits) | VN (3 bits) | Mode (3 bits).
    public static let leapVersionModeOffset = 0
    public static let stratumOffset = 1
    /// log2 seconds, signed.
    public static let pollOffset = 2
    /// log2 seconds, signed.
    public static let precisionOffset = 3
    /// NTP short format (16.16).
    public static let rootDelayOffset = 4
    public static let rootDispersionOffset = 8
    public static let referenceIDOffset = 12
    /// NTP timestamp format (32.32).
    public static let referenceTimestampOffset = 16
    public static let originTimestampOffset = 24
    public static let receiveTimestampOffset = 32
    public static let transmitTimestampOffset = 40

    @inlinable public static func leapIndicatorBits(ofFirstByte byte: UInt8) -> UInt8 { byte >> 6 }
    @inlinable public static func version(ofFirstByte byte: UInt8) -> UInt8 { (byte >> 3) & 0x7 }
    @inlinable public static func modeBits(ofFirstByte byte: UInt8) -> UInt8 { byte & 0x7 }

    /// The first byte; each part is cut to its width.
    @inlinable
    public static func firstByte(leapIndicatorBits: UInt8, version: UInt8, modeBits: UInt8) -> UInt8 {
        (leapIndicatorBits & 0x3) << 6 | (version & 0x7) << 3 | (modeBits & 0x7)
    }
}

/// Reads the fields of an NTP header in place, big-endian, without copying or allocating.
/// Only made from at least 48 bytes, so every accessor is in bounds.
@frozen
public struct NTPHeaderBytes {
    public let bytes: UnsafeRawBufferPointer

    /// nil when `bytes` is shorter than the header.
    @inlinable
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= NTPHeaderLayout.byteCount else { return nil }
        self.bytes = bytes
    }

    @inlinable public var firstByte: UInt8 { bytes[NTPHeaderLayout.leapVersionModeOffset] }
    @inlinable public var leapIndicatorBits: UInt8 { NTPHeaderLayout.leapIndicatorBits(ofFirstByte: firstByte) }
    @inlinable public var version: UInt8 { NTPHeaderLayout.version(ofFirstByte: firstByte) }
    @inlinable public var modeBits: UInt8 { NTPHeaderLayout.modeBits(ofFirstByte: firstByte) }
    @inlinable public var stratum: UInt8 { bytes[NTPHeaderLayout.stratumOffset] }
    @inlinable public var poll: Int8 { Int8(bitPattern: bytes[NTPHeaderLayout.pollOffset]) }
    @inlinable public var precision: Int8 { Int8(bitPattern: bytes[NTPHeaderLayout.precisionOffset]) }
    @inlinable public var rootDelay: NTPShortTime { NTPShortTime(rawValue: uint32(at: NTPHeaderLayout.rootDelayOffset)) }
    @inlinable public var rootDispersion: NTPShortTime { NTPShortTime(rawValue: uint32(at: NTPHeaderLayout.rootDispersionOffset)) }
    @inlinable public var referenceID: NTPReferenceID { NTPReferenceID(rawValue: uint32(at: NTPHeaderLayout.referenceIDOffset)) }
    @inlinable public var referenceTimestamp: NTPTimestamp { timestamp(at: NTPHeaderLayout.referenceTimestampOffset) }
    @inlinable public var originTimestamp: NTPTimestamp { timestamp(at: NTPHeaderLayout.originTimestampOffset) }
    @inlinable public var receiveTimestamp: NTPTimestamp { timestamp(at: NTPHeaderLayout.receiveTimestampOffset) }
    @inlinable public var transmitTimestamp: NTPTimestamp { timestamp(at: NTPHeaderLayout.transmitTimestampOffset) }

    /// The 32.32 timestamp at one of the layout's timestamp offsets.
    @inlinable
    public func timestamp(at offset: Int) -> NTPTimestamp {
        NTPTimestamp(rawValue: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
    }

    @inlinable
    func uint32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}

/// Writes the fields of an NTP header in place, big-endian, without allocating. Only made
/// from at least 48 bytes, so every store is in bounds.
@frozen
public struct NTPMutableHeaderBytes {
    public let bytes: UnsafeMutableRawBufferPointer

    /// nil when `bytes` is shorter than the header.
    @inlinable
    public init?(_ bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count >= NTPHeaderLayout.byteCount else { return nil }
        self.bytes = bytes
    }

    /// The 48 bytes at `start`, which the caller guarantees are writable.
    @inlinable
    public init(unsafeStart start: UnsafeMutableRawPointer) {
        bytes = UnsafeMutableRawBufferPointer(start: start, count: NTPHeaderLayout.byteCount)
    }

    /// Read access to the same bytes.
    @inlinable public var reading: NTPHeaderBytes { NTPHeaderBytes(UnsafeRawBufferPointer(bytes))! }

    @inlinable
    public func setFirstByte(leapIndicatorBits: UInt8, version: UInt8, modeBits: UInt8) {
        bytes[NTPHeaderLayout.leapVersionModeOffset] =
            NTPHeaderLayout.firstByte(leapIndicatorBits: leapIndicatorBits, version: version, modeBits: modeBits)
    }

    @inlinable public func setStratum(_ value: UInt8) { bytes[NTPHeaderLayout.stratumOffset] = value }
    @inlinable public func setPoll(_ value: Int8) { bytes[NTPHeaderLayout.pollOffset] = UInt8(bitPattern: value) }
    @inlinable public func setPrecision(_ value: Int8) { bytes[NTPHeaderLayout.precisionOffset] = UInt8(bitPattern: value) }
    @inlinable public func setRootDelay(_ value: NTPShortTime) { setUInt32(value.rawValue, at: NTPHeaderLayout.rootDelayOffset) }
    @inlinable public func setRootDispersion(_ value: NTPShortTime) { setUInt32(value.rawValue, at: NTPHeaderLayout.rootDispersionOffset) }
    @inlinable public func setReferenceID(_ value: NTPReferenceID) { setUInt32(value.rawValue, at: NTPHeaderLayout.referenceIDOffset) }

    /// Stores a 32.32 timestamp at one of the layout's timestamp offsets.
    @inlinable
    public func setTimestamp(_ value: NTPTimestamp, at offset: Int) {
        bytes.storeBytes(of: value.rawValue.bigEndian, toByteOffset: offset, as: UInt64.self)
    }

    @inlinable
    func setUInt32(_ value: UInt32, at offset: Int) {
        bytes.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }
}
