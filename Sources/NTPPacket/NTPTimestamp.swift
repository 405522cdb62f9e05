/// RFC 5905 §6 timestamp format: 32-bit seconds since the start of the current era
/// (era 0 began 1900-01-01T00:00:00Z) and a 32-bit binary fraction, carried as one UInt64.
///
/// The era number is not on the wire, so converting to Unix time needs a pivot: the caller's
/// idea of "about now". The decoded time is the one, among all eras, nearest the pivot.
public struct NTPTimestamp: Hashable, Sendable {
    /// Seconds in the high 32 bits, fraction in the low 32, exactly as on the wire.
    public var rawValue: UInt64

    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(seconds: UInt32, fraction: UInt32) {
        rawValue = UInt64(seconds) << 32 | UInt64(fraction)
    }

    public var seconds: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 32) }
    public var fraction: UInt32 { UInt32(truncatingIfNeeded: rawValue) }

    /// All zeros: RFC 5905 §7.3 uses it for "unknown" (e.g. the origin of a first request).
    public static let zero = NTPTimestamp(rawValue: 0)
    public var isZero: Bool { rawValue == 0 }

    /// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
    public static let secondsFrom1900To1970: Int64 = 2_208_988_800
    /// 2036-02-07T06:28:16Z, where era 1 begins (RFC 5905 §6). Used as a pivot it decodes
    /// every timestamp into 1968-01-20 ... 2104-02-26, which is how Wireshark shows them.
    public static let era1StartUnixNanoseconds: Int64 = (1 << 32 - secondsFrom1900To1970) * 1_000_000_000

    /// The timestamp of a Unix time; the era is dropped, as on the wire (RFC 5905 §6).
    /// The fraction is rounded up, so decoding gives back exactly `unixNanoseconds`
    /// and re-encoding a decoded value moves it by less than 1 ns.
    public init(unixNanoseconds: Int64) {
        let (unixSeconds, nanoseconds) = floorDivide(unixNanoseconds, 1_000_000_000)
        let ntpSeconds = unixSeconds &+ NTPTimestamp.secondsFrom1900To1970
        // ceil(ns * 2^32 / 1e9) < 2^32 for every ns < 1e9.
        let fraction = (UInt64(nanoseconds) << 32 + 999_999_999) / 1_000_000_000
        rawValue = UInt64(UInt32(truncatingIfNeeded: ntpSeconds)) << 32 | fraction
    }

    /// Unix nanoseconds of this timestamp in the era that puts it nearest `pivotUnixNanoseconds`
    /// (RFC 5905 §6): within 2^31 s (68 years) of the pivot. The fraction is truncated to whole
    /// nanoseconds (as Wireshark shows it). Saturates if the pivot is so near Int64's limits
    /// that the answer does not fit.
    public func unixNanoseconds(nearestTo pivotUnixNanoseconds: Int64) -> Int64 {
        let pivotSeconds = floorDivide(pivotUnixNanoseconds, 1_000_000_000).quotient &+ NTPTimestamp.secondsFrom1900To1970
        // Signed distance in seconds, modulo 2^32, from the pivot's position in its era.
        let step = Int64(Int32(bitPattern: seconds &- UInt32(truncatingIfNeeded: pivotSeconds)))
        let ntpSeconds = pivotSeconds + step  // |pivotSeconds| < 9.3e9, cannot overflow
        let unixSeconds = ntpSeconds - NTPTimestamp.secondsFrom1900To1970
        let fractionNanoseconds = Int64((UInt64(fraction) * 1_000_000_000) >> 32)
        let (whole, overflowA) = unixSeconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, overflowB) = whole.addingReportingOverflow(fractionNanoseconds)
        if overflowA || overflowB { return unixSeconds < 0 ? .min : .max }
        return total
    }

    /// Signed nanoseconds from `earlier` to `self`, taking the shorter way round the era
    /// (valid when the two are within 68 years, RFC 5905 §6). Truncated toward minus infinity.
    public func nanoseconds(since earlier: NTPTimestamp) -> Int64 {
        let difference = Int64(bitPattern: rawValue &- earlier.rawValue)
        let wholeSeconds = difference >> 32
        let fractionNanoseconds = Int64((UInt64(UInt32(truncatingIfNeeded: difference)) * 1_000_000_000) >> 32)
        return wholeSeconds * 1_000_000_000 + fractionNanoseconds
    }
}

/// RFC 5905 §6 short format: unsigned 16.16 seconds, used for root delay and root dispersion.
public struct NTPShortTime: Hashable, Sendable {
    public var rawValue: UInt32

    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let zero = NTPShortTime(rawValue: 0)
    /// 65535.99998 s, the largest value the format holds.
    public static let max = NTPShortTime(rawValue: .max)

    /// Rounds up to the next 1/65536 s (so an error bound is never understated); negative
    /// values become 0 and values of 65536 s or more saturate at `.max`.
    public init(nanoseconds: Int64) {
        if nanoseconds <= 0 { rawValue = 0; return }
        if nanoseconds >= 65_536 * 1_000_000_000 { rawValue = .max; return }
        let scaled = (UInt64(nanoseconds) << 16 + 999_999_999) / 1_000_000_000
        rawValue = scaled > UInt64(UInt32.max) ? .max : UInt32(scaled)
    }

    /// Nanoseconds, truncated (at most 65_535_999_985_000).
    public var nanoseconds: Int64 { Int64((UInt64(rawValue) * 1_000_000_000) >> 16) }

    /// For display only; a small quantity, so a Double is fine.
    public var seconds: Double { Double(rawValue) / 65_536 }
}

/// Floor division for a positive divisor: remainder always in 0..<divisor.
@inline(__always)
func floorDivide(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
    var quotient = value / divisor
    var remainder = value % divisor
    if remainder < 0 { quotient -= 1; remainder += divisor }
    return (quotient, remainder)
}
