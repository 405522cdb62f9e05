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
    public static let byteCount = NTPHeaderLayout.byteCount

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
        guard let header = NTPHeaderBytes(bytes) else { throw .tooShort(length: bytes.count) }
        // Both enums cover every value of their bit width, so these never fall back.
        leapIndicator = NTPLeapIndicator(rawValue: header.leapIndicatorBits) ?? .unsynchronized
        version = header.version
        mode = NTPMode(rawValue: header.modeBits) ?? .reserved
        stratum = header.stratum
        poll = header.poll
        precision = header.precision
        rootDelay = header.rootDelay
        rootDispersion = header.rootDispersion
        referenceID = header.referenceID
        referenceTimestamp = header.referenceTimestamp
        originTimestamp = header.originTimestamp
        receiveTimestamp = header.receiveTimestamp
        transmitTimestamp = header.transmitTimestamp
    }

    /// Writes the 48 header bytes at the start of `buffer`; returns 48.
    @discardableResult
    public func encode(into buffer: UnsafeMutableRawBufferPointer) throws(NTPPacketError) -> Int {
        guard let header = NTPMutableHeaderBytes(buffer) else {
            throw .bufferTooSmall(needed: NTPHeader.byteCount, available: buffer.count)
        }
        header.setFirstByte(leapIndicatorBits: leapIndicator.rawValue, version: version, modeBits: mode.rawValue)
        header.setStratum(stratum)
        header.setPoll(poll)
        header.setPrecision(precision)
        header.setRootDelay(rootDelay)
        header.setRootDispersion(rootDispersion)
        header.setReferenceID(referenceID)
        header.setTimestamp(referenceTimestamp, at: NTPHeaderLayout.referenceTimestampOffset)
        header.setTimestamp(originTimestamp, at: NTPHeaderLayout.originTimestampOffset)
        header.setTimestamp(receiveTimestamp, at: NTPHeaderLayout.receiveTimestampOffset)
        header.setTimestamp(transmitTimestamp, at: NTPHeaderLayout.transmitTimestampOffset)
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
