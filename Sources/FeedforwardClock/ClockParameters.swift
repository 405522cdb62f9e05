/// Status bits published with every update (docs/feedforward.md §7 and §8).
public struct ClockStatus: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Not synchronised: the published bound is more than twice what the path allows (the
    /// best stamp's RTT/2 plus the server's error plus the timestamp noise), or the epoch has
    /// fewer than four stamps, or stamps disagree with the estimate (a suspected clock event)
    /// (docs/feedforward.md §8.4). Without this bit a reader may rely on the time within
    /// `maxError`, and `maxError` is as small as this path allows.
    public static let unsynchronised = ClockStatus(rawValue: 1 << 0)
    /// Not yet synchronised because the epoch is young: p̂ still comes from the warm-up's
    /// far/near windows (docs/feedforward.md §3, §5). Set only together with `unsynchronised`;
    /// the estimate is often good long before warm-up ends, and then neither is set.
    public static let warmUp = ClockStatus(rawValue: 1 << 1)
    /// No stamp for 10 polls (§7). Set by the filter on the stamp that ends such a gap and
    /// by `ClockParameters.status(atCounter:)` while the gap lasts.
    public static let starving = ClockStatus(rawValue: 1 << 2)
    /// An upward RTT level shift was declared on this stamp (§4).
    public static let rttUpShift = ClockStatus(rawValue: 1 << 3)
    /// The global period changed on this stamp (§5).
    public static let periodUpdated = ClockStatus(rawValue: 1 << 4)
    /// A period candidate was refused by the sanity gate (§5).
    public static let periodSanity = ClockStatus(rawValue: 1 << 5)
    /// The local-period candidate failed the quality gate (§5).
    public static let localPeriodQuality = ClockStatus(rawValue: 1 << 6)
    /// The local-period candidate was refused by the sanity gate (§5).
    public static let localPeriodSanity = ClockStatus(rawValue: 1 << 7)
    /// No stamp in the offset window was good enough: θ̂ kept (§6).
    public static let offsetQuality = ClockStatus(rawValue: 1 << 8)
    /// The offset candidate was refused by the sanity gate: θ̂ kept (§6).
    public static let offsetSanity = ClockStatus(rawValue: 1 << 9)
    /// The server's stratum, refid or leap bits changed on this stamp (§2).
    public static let qualityWarning = ClockStatus(rawValue: 1 << 10)
    /// This stamp disagrees with the estimate beyond both error bounds (§8.1, pending event).
    public static let eventSuspected = ClockStatus(rawValue: 1 << 11)
    /// A clock step was declared on this stamp and θ̂ re-seeded (§8.1).
    public static let clockStep = ClockStatus(rawValue: 1 << 12)
    /// A rate change was declared on this stamp and p̂ and θ̂ re-seeded (§8.1).
    public static let rateChange = ClockStatus(rawValue: 1 << 13)
    /// No stamp has been accepted yet: nothing to read.
    public static let noEstimate = ClockStatus(rawValue: 1 << 14)

    /// Human words for output lines, in bit order.
    public static let names: [(ClockStatus, String)] = [
        (.unsynchronised, "unsync"), (.warmUp, "warmup"), (.starving, "starving"),
        (.rttUpShift, "rtt-upshift"), (.periodUpdated, "period-updated"),
        (.periodSanity, "period-sanity"), (.localPeriodQuality, "local-period-quality"),
        (.localPeriodSanity, "local-period-sanity"), (.offsetQuality, "offset-quality"),
        (.offsetSanity, "offset-sanity"), (.qualityWarning, "quality-warning"),
        (.eventSuspected, "event-suspected"), (.clockStep, "clock-step"),
        (.rateChange, "rate-change"), (.noEstimate, "no-estimate"),
    ]

    /// The words of the bits that are set, in `names` order (the tools' status column).
    public var words: [String] { ClockStatus.names.filter { contains($0.0) }.map { $0.1 } }
}

/// How far a reader may trust published parameters (docs/feedforward.md §7).
public enum ClockFreshness: Sendable, Equatable {
    /// Before the next stamp is due.
    case fresh
    /// The next stamp is overdue: the clock keeps running on its parameters, the bound grows.
    case stale
    /// More than 1024 s past the due stamp (the skew-model scale), or no estimate at all.
    case unusable
}

/// Everything a reader needs to tell the time, published after every stamp (§7).
///
/// A plain value of fixed-size fields, so it can be copied into shared memory as is.
/// Rebased at each update so that `counter − counterOrigin` stays small:
/// `Ca(T) = timeAtOriginNanoseconds + timeAtOriginFraction + localPeriodSecondsPerTick·1e9·(T − counterOrigin)`,
/// which is `p̂·T + K − θ̂` at the last stamp (docs/feedforward.md §1), extrapolated from there at the local
/// rate as RADclock's reader does (§5: θ̂ drifts at p̂_local − p̂ between stamps), with the
/// whole nanoseconds kept in an Int64 so that every published time resolves 1 ns (§1).
/// The difference clock Cd stays on `periodSecondsPerTick`.
public struct ClockParameters: Sendable, Equatable {
    /// Raw counter (ns of CLOCK_MONOTONIC_RAW) at which `timeAtOrigin…` holds.
    public var counterOrigin: Int64
    /// Whole Unix nanoseconds of the absolute clock Ca at `counterOrigin`.
    public var timeAtOriginNanoseconds: Int64
    /// Sub-nanosecond part of Ca at `counterOrigin`, in [0, 1).
    public var timeAtOriginFraction: Double
    /// p̂ in seconds per counter tick (nominally 1e-9); the filter works in ns per tick.
    public var periodSecondsPerTick: Double
    /// Statistical relative error of p̂ (§5: perr / p̂), dimensionless.
    public var periodError: Double
    /// Hard relative bound on the error of p̂ from its defining stamp pair (§8.2), dimensionless.
    public var periodErrorBound: Double
    /// p̂_local in seconds per tick: p̂ corrected by the slope of the chosen offset fit (§6)
    /// once it has passed its quality and jump gates, else p̂. Ca extrapolates from
    /// `counterOrigin` at this rate.
    public var localPeriodSecondsPerTick: Double
    /// θ̂ in nanoseconds: the uncorrected clock C minus the server's time (positive: C ahead).
    public var offsetNanoseconds: Double
    /// Statistical error estimate at `lastStampCounter` (§6).
    public var errorEstimateNanoseconds: Double
    /// Hard bound on |Ca − server's UTC| at `lastStampCounter` (§8.2).
    public var maxErrorNanoseconds: Double
    /// Seconds of bound gained per second elapsed after `lastStampCounter` (dimensionless):
    /// the rate-error bound, plus the rate pending suspects imply and recently observed rate
    /// jumps (§8.2), so the aged bound stays honest between stamps.
    public var maxErrorGrowthRate: Double
    /// Raw counter of the last stamp's Tf.
    public var lastStampCounter: Int64
    /// Raw counter at which the next stamp is due; fresh until then.
    public var nextStampExpectedCounter: Int64
    /// The server's leap indicator from the last stamp.
    public var leap: UInt8
    public var status: ClockStatus
    /// Diagnostics of the last stamp, for the client's output line.
    public var lastRTTNanoseconds: Double
    public var minimumRTTNanoseconds: Double
    /// θ_j of the last stamp with the published parameters (§2).
    public var naiveOffsetNanoseconds: Double
    /// Stamps accepted so far.
    public var stampCount: Int64

    /// Parameters before any stamp: unusable, unsynchronised.
    public static let empty = ClockParameters(
        counterOrigin: 0, timeAtOriginNanoseconds: 0, timeAtOriginFraction: 0, periodSecondsPerTick: 1e-9,
        periodError: 0.5, periodErrorBound: 0.5, localPeriodSecondsPerTick: 1e-9, offsetNanoseconds: 0,
        errorEstimateNanoseconds: .infinity, maxErrorNanoseconds: .infinity, maxErrorGrowthRate: 0.5,
        lastStampCounter: 0, nextStampExpectedCounter: 0, leap: 3,
        status: [.unsynchronised, .noEstimate], lastRTTNanoseconds: 0, minimumRTTNanoseconds: 0,
        naiveOffsetNanoseconds: 0, stampCount: 0)

    public init(counterOrigin: Int64, timeAtOriginNanoseconds: Int64, timeAtOriginFraction: Double,
                periodSecondsPerTick: Double, periodError: Double, periodErrorBound: Double, localPeriodSecondsPerTick: Double,
                offsetNanoseconds: Double, errorEstimateNanoseconds: Double, maxErrorNanoseconds: Double,
                maxErrorGrowthRate: Double, lastStampCounter: Int64, nextStampExpectedCounter: Int64,
                leap: UInt8, status: ClockStatus, lastRTTNanoseconds: Double,
                minimumRTTNanoseconds: Double, naiveOffsetNanoseconds: Double, stampCount: Int64) {
        self.counterOrigin = counterOrigin
        self.timeAtOriginNanoseconds = timeAtOriginNanoseconds
        self.timeAtOriginFraction = timeAtOriginFraction
        self.periodSecondsPerTick = periodSecondsPerTick
        self.periodError = periodError
        self.periodErrorBound = periodErrorBound
        self.localPeriodSecondsPerTick = localPeriodSecondsPerTick
        self.offsetNanoseconds = offsetNanoseconds
        self.errorEstimateNanoseconds = errorEstimateNanoseconds
        self.maxErrorNanoseconds = maxErrorNanoseconds
        self.maxErrorGrowthRate = maxErrorGrowthRate
        self.lastStampCounter = lastStampCounter
        self.nextStampExpectedCounter = nextStampExpectedCounter
        self.leap = leap
        self.status = status
        self.lastRTTNanoseconds = lastRTTNanoseconds
        self.minimumRTTNanoseconds = minimumRTTNanoseconds
        self.naiveOffsetNanoseconds = naiveOffsetNanoseconds
        self.stampCount = stampCount
    }
}

// MARK: - The stateless reader (§1, §7)

extension ClockParameters {
    /// Ca(T) in Unix nanoseconds, floored to the nanosecond. A pure function of the
    /// parameters and the caller's own counter read, so any process can call it.
    @inlinable public func absoluteTime(atCounter counter: Int64) -> Int64 {
        let parts = absoluteTimeParts(atCounter: counter)
        return parts.nanoseconds
    }

    /// Ca(T) as whole Unix nanoseconds plus a fraction in [0, 1), extrapolated from the last
    /// stamp at p̂_local (`localPeriodSecondsPerTick`).
    @inlinable public func absoluteTimeParts(atCounter counter: Int64) -> (nanoseconds: Int64, fraction: Double) {
        let elapsed = (localPeriodSecondsPerTick * 1e9) * Double(counter &- counterOrigin) + timeAtOriginFraction
        let whole = elapsed.rounded(.down)
        return (timeAtOriginNanoseconds &+ Int64(whole), elapsed - whole)
    }

    /// Cd(T1, T2) = p̂·(T2 − T1) in nanoseconds (§1). Meant for intervals below the
    /// skew-model scale (1024 s); above it subtract two `absoluteTime` readings.
    @inlinable public func difference(fromCounter start: Int64, toCounter end: Int64) -> Double {
        (periodSecondsPerTick * 1e9) * Double(end &- start)
    }

    /// The hard bound aged to `counter` at `maxErrorGrowthRate` (§8.2).
    @inlinable public func maxError(atCounter counter: Int64) -> Double {
        let elapsed = max(0, (periodSecondsPerTick * 1e9) * Double(counter &- lastStampCounter))
        return maxErrorNanoseconds + maxErrorGrowthRate * elapsed
    }

    /// Fresh until the next stamp is due, stale after, unusable 1024 s after that (§7).
    @inlinable public func freshness(atCounter counter: Int64) -> ClockFreshness {
        if status.contains(.noEstimate) { return .unusable }
        if counter <= nextStampExpectedCounter { return .fresh }
        let lateNanoseconds = (periodSecondsPerTick * 1e9) * Double(counter &- nextStampExpectedCounter)
        return lateNanoseconds > 1024e9 ? .unusable : .stale
    }

    /// The published status plus `starving` when no stamp came for 10 polls (§7).
    @inlinable public func status(atCounter counter: Int64) -> ClockStatus {
        var result = status
        if isStarving(atCounter: counter) { result.insert(.starving) }
        return result
    }

    /// Polls without a stamp after which the clock is `starving` (docs/feedforward.md §7).
    public static let starvingPolls: Int64 = 10

    /// The one definition of starving: more than `starvingPolls` of the interval the client
    /// announced for its next exchange have passed since the last stamp. The filter asks it of
    /// the previous parameters when a stamp ends a gap; readers ask it while the gap lasts.
    @inlinable public func isStarving(atCounter counter: Int64) -> Bool {
        let poll = nextStampExpectedCounter &- lastStampCounter
        return poll > 0 && counter &- lastStampCounter > ClockParameters.starvingPolls &* poll
    }

    /// p̂'s statistical error in PPM, for output.
    @inlinable public var periodErrorPPM: Double { periodError * 1e6 }
    /// p̂ against the nominal 1 ns per tick, in PPM: positive when a tick lasts longer than
    /// 1 ns (the counter runs slow against the server).
    @inlinable public var periodOffsetPPM: Double { (periodSecondsPerTick * 1e9 - 1) * 1e6 }
}
