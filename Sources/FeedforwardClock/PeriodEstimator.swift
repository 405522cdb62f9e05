// §5 of docs/feedforward.md: the long-term period p̂, the stable rate behind the difference
// clock Cd. This room holds p̂, its error and hard bound, and the state that chooses the
// stamp pairs they come from; the filter hands it the stamp ring and acts on what it says.

/// The two phases of an epoch's period estimate (§5): warm-up pairs from the epoch's first
/// and newest quarters, then candidates against a fixed reference stamp.
enum EpochPhase: Sendable, Equatable {
    case warmUp
    case full
}

/// §5: p̂ from pairs of stamps far apart, each pair's estimate with a hard bound
/// (`periodFromPair`). In warm-up the best stamp of the epoch's first quarter is paired with
/// the best of its newest quarter; afterwards every good stamp is a candidate against a fixed
/// reference stamp, renewed every half history. Allocates in `init` only.
struct PeriodEstimator: Sendable {
    let configuration: FeedforwardConfiguration
    /// Stamps in warm-up (`FeedforwardWindows.warmUp`).
    let warmUpStamps: Int
    private let pointErrorLimitNanoseconds: Double
    private let qualityLimit: Double
    private let sanityLimit: Double
    private let wanderBound: Double

    /// p̂ in nanoseconds per tick.
    private(set) var nanosecondsPerTick: Double = 1
    /// p̂'s relative error estimate, and its hard bound (both dimensionless).
    private(set) var error: Double
    private(set) var errorBound: Double
    /// Where the epoch's period estimate stands.
    private(set) var phase = EpochPhase.warmUp
    var inWarmUp: Bool { phase == .warmUp }

    /// The best stamp of the warm-up's first quarter, once there is one.
    private var warmFarBest: Int? = nil
    private var warmFarEnd = 0
    private var warmNearMinimum: SlidingMinimum
    /// The last warm-up pair tried, so the same pair is not tried twice.
    private var lastPair: (far: Int, near: Int)? = nil
    /// The far stamp of full-phase candidates; nil until warm-up ends or a step re-anchors it.
    private var reference: StoredStamp? = nil
    /// The best stamp of the current history half, the next reference.
    private var generationBestCurrent: StoredStamp? = nil
    /// Step-only epochs keep the full phase; until this index a better stamp replaces the reference.
    private var referenceOpenUntil: Int? = nil

    /// What one update did, for the filter to act on.
    struct Outcome {
        /// p̂ took a new value.
        var updated = false
        /// The epoch's warm-up ended with this stamp.
        var warmUpEnded = false
    }

    init(configuration: FeedforwardConfiguration, warmUpStamps: Int) {
        self.configuration = configuration
        self.warmUpStamps = warmUpStamps
        pointErrorLimitNanoseconds = configuration.periodPointErrorNoises * configuration.timestampNoiseNanoseconds
        qualityLimit = configuration.periodQualityLimitPPM * 1e-6
        sanityLimit = configuration.periodSanityLimitPPM * 1e-6
        wanderBound = configuration.rateWanderBoundPPM * 1e-6
        warmNearMinimum = SlidingMinimum(capacity: warmUpStamps / 4 + 2)
        error = configuration.maximumRateErrorFraction
        errorBound = configuration.maximumRateErrorFraction
    }

    /// One stamp, the newest (`i`), of the epoch that began at `epochStart`; `minimumRTTTicks`
    /// is RTThat now (§4). Sanity refusals are noted in `status`.
    mutating func update(ring: [StoredStamp], newest i: Int, epochStart: Int, minimumRTTTicks rttHat: Int64,
                         status: inout ClockStatus) -> Outcome {
        let ringCount = ring.count
        let stamp = ring[i % ringCount]
        trackGenerationBest(stamp)
        var outcome = Outcome()
        let count = i - epochStart + 1
        if inWarmUp {
            let width = max(1, count / 4)
            while warmFarEnd < epochStart + width {
                let candidate = ring[warmFarEnd % ringCount]
                if Self.key(candidate) != .max
                    && (warmFarBest.map { candidate.rtt < ring[$0 % ringCount].rtt } ?? true) {
                    warmFarBest = warmFarEnd
                }
                warmFarEnd += 1
            }
            warmNearMinimum.push(index: i, key: Self.key(stamp))
            warmNearMinimum.dropBefore(i - width + 1)
            if let farIndex = warmFarBest, let near = warmNearMinimum.minimumIndex,
               warmNearMinimum.minimumKey != .max, near > farIndex,
               lastPair.map({ $0.near != near || $0.far != farIndex }) ?? true {
                lastPair = (farIndex, near)
                let far = ring[farIndex % ringCount]
                let nearStamp = ring[near % ringCount]
                if let pair = pairPeriod(far, nearStamp) {
                    let inconsistent = abs(pair.period / nanosecondsPerTick - 1) > pair.bound + errorBound + wanderBound
                    if pair.bound <= errorBound || inconsistent {
                        let spread = Double(far.rtt - rttHat) + Double(nearStamp.rtt - rttHat)
                        nanosecondsPerTick = pair.period
                        error = pair.period * spread / Double(nearStamp.tb - far.tb)
                        errorBound = min(pair.bound, configuration.maximumRateErrorFraction)
                        status.insert(.periodUpdated)
                        outcome.updated = true
                    }
                }
            }
            if count >= warmUpStamps {
                phase = .full
                if let farIndex = warmFarBest { reference = ring[farIndex % ringCount] }
                outcome.warmUpEnded = true
            }
            return outcome
        }

        // Full phase: candidate against the reference stamp.
        guard let reference else { return outcome }
        if stamp.qualityWarning {
            status.insert(.periodSanity)
            return outcome
        }
        if let openUntil = referenceOpenUntil, i <= openUntil, !stamp.suspect, stamp.rtt - stamp.rttHat < reference.rtt - reference.rttHat {
            self.reference = stamp    // a better anchor on this side of a step
            return outcome
        }
        let pointError = nanosecondsPerTick * Double(stamp.rtt - stamp.rttHat)
        guard pointError < pointErrorLimitNanoseconds, let pair = pairPeriod(reference, stamp) else { return outcome }
        let referenceError = nanosecondsPerTick * Double(reference.rtt - reference.rttHat)
        let candidateError = (abs(pointError) + abs(referenceError)
                              + nanosecondsPerTick * Double(abs(rttHat - reference.rttHat))) / Double(stamp.tb - reference.tb)
        guard candidateError < error || candidateError < qualityLimit else { return outcome }
        if abs(pair.period / nanosecondsPerTick - 1) > sanityLimit {
            status.insert(.periodSanity)
            return outcome
        }
        nanosecondsPerTick = pair.period
        error = candidateError
        errorBound = pair.bound
        status.insert(.periodUpdated)
        outcome.updated = true
        return outcome
    }

    /// Every history/2 stamps (§4's forgetting): the best stamp of the half just ended becomes
    /// the reference once the current one is older than a generation.
    mutating func rotateGeneration(at i: Int, generationStamps generation: Int) {
        if !inWarmUp, let current = reference, current.index < i - generation, let best = generationBestCurrent {
            reference = best
        }
        generationBestCurrent = nil
    }

    /// A new epoch from stamp `start` to the newest `i` (§8.1). A step keeps p̂ and re-anchors
    /// the reference on this side of it (`keepingRates`); otherwise warm-up starts over, and
    /// after a rate change p̂'s error and bound are back at the largest rate error allowed.
    /// The stamps' suspect flags must already be cleared.
    mutating func restartEpoch(ring: [StoredStamp], from start: Int, upTo i: Int, keepingRates: Bool, rateChanged: Bool) {
        let ringCount = ring.count
        lastPair = nil
        generationBestCurrent = nil
        if keepingRates {
            reference = nil
            for j in start...i {
                let s = ring[j % ringCount]
                if s.rtt - s.rttHat < reference.map({ $0.rtt - $0.rttHat }) ?? .max { reference = s }
            }
            referenceOpenUntil = start + warmUpStamps
        } else {
            phase = .warmUp
            warmFarBest = nil
            warmFarEnd = start
            reference = nil
            referenceOpenUntil = nil
        }
        warmNearMinimum.reset()
        if rateChanged {
            errorBound = configuration.maximumRateErrorFraction
            error = configuration.maximumRateErrorFraction
        }
        for j in start..<i { warmNearMinimum.push(index: j, key: Self.key(ring[j % ringCount])) }
    }

    private mutating func trackGenerationBest(_ stamp: StoredStamp) {
        guard !stamp.qualityWarning, !stamp.suspect else { return }
        if stamp.rtt - stamp.rttHat < generationBestCurrent.map({ $0.rtt - $0.rttHat }) ?? .max {
            generationBestCurrent = stamp
        }
    }

    /// §5's pair estimate and its hard bound (`periodFromPair`).
    func pairPeriod(_ far: StoredStamp, _ near: StoredStamp) -> (period: Double, bound: Double)? {
        periodFromPair(far, near, maximumRateErrorFraction: configuration.maximumRateErrorFraction)
    }

    /// A stamp's key for the warm-up's sliding minimum: its RTT, or never for a stamp that
    /// must not anchor a pair.
    static func key(_ s: StoredStamp) -> Int64 {
        s.qualityWarning || s.suspect ? .max : s.rtt
    }
}
