/// RFC 5905 §7.3 leap indicator: warns of a leap second at the end of the current UTC day.
public enum NTPLeapIndicator: UInt8, Sendable, CaseIterable {
    case noWarning = 0
    /// Last minute of the day has 61 seconds.
    case lastMinuteHas61Seconds = 1
    /// Last minute of the day has 59 seconds.
    case lastMinuteHas59Seconds = 2
    /// Clock unsynchronized (ntpdig also sends this in its requests).
    case unsynchronized = 3
}

/// RFC 5905 §7.3 association mode.
public enum NTPMode: UInt8, Sendable, CaseIterable {
    case reserved = 0
    case symmetricActive = 1
    case symmetricPassive = 2
    case client = 3
    case server = 4
    case broadcast = 5
    /// NTP control message (mode 6, RFC 1305 appendix B); not an NTP header after the first byte.
    case control = 6
    case privateUse = 7
}

/// The 48-byte NTPv4 header of RFC 5905 §7.3, decoded into fields.
public struct NTPHeader: Hashable, Sendable {
    public static let byteCount = 48

    public var leapIndicator: NTPLeapIndicator
    /// 0...7 on the wire; `encode` keeps only the low 3 bits.
    public var version: UInt8
    public var mode: NTPMode
    /// 0 = unspecified or kiss-o'-death, 1 = primary, 2...15 secondary, 16 unsynchronized.
    public var stratum: UInt8
    /// log2 of the poll interval in seconds.
    public var poll: Int8
    /// log2 of the clock precision in seconds: signed (e.g. -25 = 0xE7).
    public var precision: Int8
    public var rootDelay: NTPShortTime
    public var rootDispersion: NTPShortTime
    public var referenceID: NTPReferenceID
    public var referenceTimestamp: NTPTimestamp
    public var originTimestamp: NTPTimestamp
    public var receiveTimestamp: NTPTimestamp
    public var transmitTimestamp: NTPTimestamp

    public init(
        leapIndicator: NTPLeapIndicator = .noWarning,
        version: UInt8 = 4,
        mode: NTPMode = .client,
        stratum: UInt8 = 0,
        poll: Int8 = 0,
        precision: Int8 = 0,
        rootDelay: NTPShortTime = .zero,
        rootDispersion: NTPShortTime = .zero,
        referenceID: NTPReferenceID = NTPReferenceID(rawValue: 0),
        referenceTimestamp: NTPTimestamp = .zero,
        originTimestamp: NTPTimestamp = .zero,
        receiveTimestamp: NTPTimestamp = .zero,
        transmitTimestamp: NTPTimestamp = .zero
    ) {
        self.leapIndicator = leapIndicator
        self.version = version
        self.mode = mode
        self.stratum = stratum
        self.poll = poll
        self.precision = precision
        self.rootDelay = rootDelay
        self.rootDispersion = rootDispersion
        self.referenceID = referenceID
        self.referenceTimestamp = referenceTimestamp
        self.originTimestamp = originTimestamp
        self.receiveTimestamp = receiveTimestamp
        self.transmitTimestamp = transmitTimestamp
    }

    /// Decodes the first 48 bytes; every bit pattern is a valid header, so the only error is
    /// a short buffer. Does not look past byte 48 (see `NTPParsedPacket` for that).
    public init(decoding bytes: UnsafeRawBufferPointer) throws(NTPPacketError) {
        guard bytes.count >= NTPHeader.byteCount else { throw .tooShort(length: bytes.count) }
        let first = bytes[0]
        // Both enums cover every value of their bit width, so these never fall back.
        leapIndicator = NTPLeapIndicator(rawValue: first >> 6) ?? .unsynchronized
        version = (first >> 3) & 0x7
        mode = NTPMode(rawValue: first & 0x7) ?? .reserved
        stratum = bytes[1]
        poll = Int8(bitPattern: bytes[2])
        precision = Int8(bitPattern: bytes[3])
        rootDelay = NTPShortTime(rawValue: bytes.loadBigEndianUInt32(at: 4))
        rootDispersion = NTPShortTime(rawValue: bytes.loadBigEndianUInt32(at: 8))
        referenceID = NTPReferenceID(rawValue: bytes.loadBigEndianUInt32(at: 12))
        referenceTimestamp = NTPTimestamp(rawValue: bytes.loadBigEndianUInt64(at: 16))
        originTimestamp = NTPTimestamp(rawValue: bytes.loadBigEndianUInt64(at: 24))
        receiveTimestamp = NTPTimestamp(rawValue: bytes.loadBigEndianUInt64(at: 32))
        transmitTimestamp = NTPTimestamp(rawValue: bytes.loadBigEndianUInt64(at: 40))
    }

    /// Writes the 48 header bytes at the start of `buffer`; returns 48.
    @discardableResult
    public func encode(into buffer: UnsafeMutableRawBufferPointer) throws(NTPPacketError) -> Int {
        guard buffer.count >= NTPHeader.byteCount else {
            throw .bufferTooSmall(needed: NTPHeader.byteCount, available: buffer.count)
        }
        buffer[0] = leapIndicator.rawValue << 6 | (version & 0x7) << 3 | mode.rawValue
        buffer[1] = stratum
        buffer[2] = UInt8(bitPattern: poll)
        buffer[3] = UInt8(bitPattern: precision)
        buffer.storeBigEndian(rootDelay.rawValue, at: 4)
        buffer.storeBigEndian(rootDispersion.rawValue, at: 8)
        buffer.storeBigEndian(referenceID.rawValue, at: 12)
        buffer.storeBigEndian(referenceTimestamp.rawValue, at: 16)
        buffer.storeBigEndian(originTimestamp.rawValue, at: 24)
        buffer.storeBigEndian(receiveTimestamp.rawValue, at: 32)
        buffer.storeBigEndian(transmitTimestamp.rawValue, at: 40)
        return NTPHeader.byteCount
    }

    /// Writes the header followed by `trailingBytes` (extension fields and/or MAC, e.g. copied
    /// from a received packet's `trailingBytes` range); returns the total length.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, appending trailingBytes: UnsafeRawBufferPointer) throws(NTPPacketError) -> Int {
        let total = NTPHeader.byteCount + trailingBytes.count
        guard buffer.count >= total else { throw .bufferTooSmall(needed: total, available: buffer.count) }
        try encode(into: buffer)
        buffer.copyBytes(from: trailingBytes, at: NTPHeader.byteCount)
        return total
    }

    /// RFC 5905 §7.4: a stratum-0 packet carries a kiss code in its reference ID.
    public var kissCode: NTPReferenceID? { stratum == 0 ? referenceID : nil }
}
