/// One NTP exchange as the filter sees it (docs/feedforward.md §2).
///
/// `ta` and `tf` are raw counter readings (nanoseconds of CLOCK_MONOTONIC_RAW: one tick is
/// nominally 1 ns); `tb` and `te` are the server's receive and transmit timestamps as Unix
/// nanoseconds, with the NTP era already resolved by the caller.
public struct Stamp: Sendable, Equatable {
    /// Raw counter when the request left (kernel TX timestamp where available).
    public var ta: Int64
    /// Server receive time, Unix nanoseconds.
    public var tb: Int64
    /// Server transmit time, Unix nanoseconds.
    public var te: Int64
    /// Raw counter when the response arrived (kernel RX timestamp).
    public var tf: Int64
    public var stratum: UInt8
    public var referenceID: UInt32
    /// Leap indicator, 0...3 (3: server unsynchronised).
    public var leap: UInt8
    public var rootDelayNanoseconds: Int64
    public var rootDispersionNanoseconds: Int64

    public init(ta: Int64, tb: Int64, te: Int64, tf: Int64,
                stratum: UInt8 = 1, referenceID: UInt32 = 0, leap: UInt8 = 0,
                rootDelayNanoseconds: Int64 = 0, rootDispersionNanoseconds: Int64 = 0) {
        self.ta = ta
        self.tb = tb
        self.te = te
        self.tf = tf
        self.stratum = stratum
        self.referenceID = referenceID
        self.leap = leap
        self.rootDelayNanoseconds = rootDelayNanoseconds
        self.rootDispersionNanoseconds = rootDispersionNanoseconds
    }

    /// Round-trip time in counter ticks (§2: counter units, so a bad period cannot corrupt it).
    @inlinable public var roundTripTicks: Int64 { tf &- ta }
}

/// Why a stamp was refused before the algorithm saw it (docs/feedforward.md §2).
public enum StampRejection: UInt8, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    case zeroTimestamp
    case counterNotIncreasing
    case duplicate
    case responseBeforeRequest
    case roundTripBelowResolution
    case negativeRootDelayOrDispersion
    case beforeDisruption

    public var description: String {
        switch self {
        case .zeroTimestamp: return "a counter reading is zero: the exchange is incomplete, drop it"
        case .counterNotIncreasing: return "Ta is not after the previous stamp's Ta: the counter went backwards or the stamp is stale"
        case .duplicate: return "the server timestamps repeat the previous stamp's: a replayed or duplicated response"
        case .responseBeforeRequest: return "Tf is before Ta: the RX and TX counter readings are inconsistent"
        case .roundTripBelowResolution: return "the round trip is below the counter's resolution: the timestamps cannot be real"
        case .negativeRootDelayOrDispersion: return "the server reports a negative root delay or dispersion"
        case .beforeDisruption: return "the exchange began before the platform disrupted the counter (live migration): its counter readings belong to the old counter"
        }
    }
}

/// What `FeedforwardClock.process` did with a stamp.
public enum StampVerdict: Sendable, Equatable {
    case accepted
    case rejected(StampRejection)
}
