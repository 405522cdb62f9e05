/// chronyd's tracking report, read over its command protocol (chrony 4.x candm.h, protocol
/// version 6, REQ_TRACKING → RPY_TRACKING): the same numbers `chronyc tracking` prints.
///
/// Why it measures chronyd's clock: with `-x` chronyd never touches the system clock; its
/// null clock driver keeps every correction it would have applied in an offset register,
/// and its idea of true time ("cooked" time) is the system clock plus `currentCorrection`
/// (chronyc's "System time: … slow of NTP time" when positive). So chronyd's clock error
/// against truth is `currentCorrection − (truth − system clock)`, checked against a served
/// offset of known size by LabLiveTests.
public struct ChronyTracking: Sendable, Equatable {
    /// Cooked minus system clock, seconds (positive: the system clock is slow of NTP time).
    public var currentCorrectionSeconds: Double
    public var lastOffsetSeconds: Double
    public var rmsOffsetSeconds: Double
    public var frequencyPPM: Double
    public var skewPPM: Double
    public var rootDelaySeconds: Double
    public var rootDispersionSeconds: Double
    public var stratum: UInt16
    public var leapStatus: UInt16
    public var referenceID: UInt32
    /// The reference time (the last clock update) as Unix seconds; 0 before the first.
    public var referenceUnixSeconds: Int64

    /// chronyd's own bound on the error of its clock: root delay / 2 + root dispersion
    /// (RFC 5905's root distance; chronyc's documentation states the same bound).
    public var maxErrorSeconds: Double { rootDelaySeconds / 2 + rootDispersionSeconds }
    /// True once chronyd has updated its clock from a source at least once.
    public var hasReference: Bool { referenceUnixSeconds != 0 }
}

/// Encoding and decoding of the two packets (pure; no socket).
public enum ChronyCommandProtocol {
    static let protocolVersion: UInt8 = 6
    static let requestType: UInt8 = 1
    static let replyType: UInt8 = 2
    static let trackingCommand: UInt16 = 33
    static let trackingReply: UInt16 = 5
    /// Reply header (28 bytes) + RPY_Tracking (76 bytes).
    public static let trackingReplyLength = 104
    /// A version 6 request is padded to the length of its reply (no amplification).
    public static let trackingRequestLength = trackingReplyLength

    /// A tracking request with `sequence` (echoed in the reply).
    public static func trackingRequest(sequence: UInt32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: trackingRequestLength)
        bytes[0] = protocolVersion
        bytes[1] = requestType
        bytes[4] = UInt8(trackingCommand >> 8)
        bytes[5] = UInt8(trackingCommand & 0xff)
        for k in 0..<4 { bytes[8 + k] = UInt8(truncatingIfNeeded: sequence >> (24 - 8 * UInt32(k))) }
        return bytes
    }

    /// What was wrong with a reply.
    public enum ReplyProblem: Error, Equatable, Sendable {
        case tooShort(Int)
        case notATrackingReply
        case wrongSequence
        case status(UInt16)
    }

    /// Decodes a tracking reply to the request with `sequence`.
    public static func trackingReply(_ bytes: [UInt8], sequence: UInt32) -> Result<ChronyTracking, ReplyProblem> {
        guard bytes.count >= trackingReplyLength else { return .failure(.tooShort(bytes.count)) }
        func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]) }
        func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) << 16 | UInt32(u16(i + 2)) }
        guard bytes[0] == protocolVersion, bytes[1] == replyType, u16(4) == trackingCommand else {
            return .failure(.notATrackingReply)
        }
        guard u32(16) == sequence else { return .failure(.wrongSequence) }
        guard u16(8) == 0 else { return .failure(.status(u16(8))) }
        guard u16(6) == trackingReply else { return .failure(.notATrackingReply) }
        let d = 28
        // ref_id 4, IPAddr 20, stratum 2, leap 2, Timespec 12, then nine Floats.
        let seconds = Int64(u32(d + 28)) << 32 | Int64(u32(d + 32))
        let high = u32(d + 28)
        let referenceSeconds = high == 0x7fff_ffff ? Int64(u32(d + 32)) : seconds
        func float(_ k: Int) -> Double { decodeFloat(u32(d + 40 + 4 * k)) }
        return .success(ChronyTracking(
            currentCorrectionSeconds: float(0), lastOffsetSeconds: float(1), rmsOffsetSeconds: float(2),
            frequencyPPM: float(3), skewPPM: float(5), rootDelaySeconds: float(6), rootDispersionSeconds: float(7),
            stratum: u16(d + 24), leapStatus: u16(d + 26), referenceID: u32(d),
            referenceUnixSeconds: referenceSeconds))
    }

    /// chrony's network float: 7-bit signed exponent, 25-bit signed coefficient,
    /// value = coefficient · 2^(exponent − 25) (util.c, UTI_FloatNetworkToHost).
    public static func decodeFloat(_ word: UInt32) -> Double {
        var exponent = Int(word >> 25)
        if exponent >= 64 { exponent -= 128 }
        var coefficient = Int(word & 0x1ff_ffff)
        if coefficient >= 1 << 24 { coefficient -= 1 << 25 }
        return Double(coefficient) * pow2(exponent - 25)
    }

    private static func pow2(_ exponent: Int) -> Double {
        var result = 1.0
        if exponent >= 0 { for _ in 0..<exponent { result *= 2 } } else { for _ in 0..<(-exponent) { result /= 2 } }
        return result
    }
}
