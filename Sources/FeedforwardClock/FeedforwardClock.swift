import Maths

/// Tunables of the filter (feedforward-spec §5, §6, §8). Defaults are RADclock's constants
/// except where noted.
public struct FeedforwardConfiguration: Sendable, Equatable {
    /// Poll period P in seconds: sizes every window (§3).
    public var pollPeriodSeconds: Double
    /// TS_LIMIT, the timestamping-noise unit every threshold scales from (§6).
    ///
    /// Default 5 µs rather than RADclock's 15 µs: with kernel RX/TX timestamps on loopback
    /// or a LAN the spread of RTT around its minimum is a few µs (DESIGN.md: software
    /// timestamps on both ends here), so 15 µs would make Eoffset = 150 µs and let
    /// stamps 100 µs off the minimum carry full weight. 5 µs keeps Eoffset (50 µs) and the
    /// level-shift threshold (50 µs near) above that noise while still discounting queueing.
    /// Raise it for paths with user-space timestamps or WAN servers.
    public var timestampingLimitNanoseconds: Double
    /// Consecutive stamps that must agree, against the estimate, before a clock event is
    /// declared (§8.1, "a handful").
    public var eventStampCount: Int
    /// Largest relative error of the nominal period the filter must absorb (§8.3: ±50%;
    /// the default 0.6 leaves a margin so a counter exactly 50% off is not at the edge).
    /// Also the rate bound used before a stamp pair exists, so the early bound is honest.
    public var maximumRateError: Double
    /// Allowance for the oscillator's rate wandering away from p̂ between its defining stamps,
    /// added to the hard rate bound that ages `maxError` (§8.2). Equal to §6's 0.5 PPM.
    public var rateWanderBound: Double
    /// Smallest believable RTT in counter ticks (§2).
    public var counterResolutionTicks: Int64
    /// Stamps an epoch needs before the clock is called synchronised (§8.4: the first four
    /// of the start-up burst give a period over 6 s and an offset from four stamps).
    public var stampsBeforeSynchronised: Int
    /// How long an observed rate jump keeps ageing the published bound at its full size
    /// (§8.2, §8.3): a counter whose rate has jumped may jump again between two stamps, and
    /// nothing but that history can say by how much. After this much quiet time the allowance
    /// halves for every further such period. Six hours: far above an erratic clock's dwell
    /// times (minutes), short enough that a one-off migration stops costing within a day.
    public var rateJumpMemorySeconds: Double

    public init(pollPeriodSeconds: Double = 16,
                timestampingLimitNanoseconds: Double = 5_000,
                eventStampCount: Int = 3,
                maximumRateError: Double = 0.6,
                rateWanderBound: Double = 0.5e-6,
                counterResolutionTicks: Int64 = 1,
                stampsBeforeSynchronised: Int = 4,
                rateJumpMemorySeconds: Double = 21_600) {
        self.pollPeriodSeconds = pollPeriodSeconds
        self.timestampingLimitNanoseconds = timestampingLimitNanoseconds
        self.eventStampCount = eventStampCount
        self.maximumRateError = maximumRateError
        self.rateWanderBound = rateWanderBound
        self.counterResolutionTicks = counterResolutionTicks
        self.stampsBeforeSynchronised = stampsBeforeSynchronised
        self.rateJumpMemorySeconds = rateJumpMemorySeconds
    }
}

/// Window sizes in stamps (feedforward-spec §3).
public struct FeedforwardWindows: Sendable, Equatable {
    /// 7 days of stamps: forgetting and reference renewal work in halves of it (§4, §5).
    public let history: Int
    public let shift: Int
    public let offset: Int
    public let localPeriod: Int
    /// Width of each local-period window: local-period/5 (§5).
    public let localPeriodNear: Int
    public let warmUp: Int

    public init(pollPeriodSeconds p: Double) {
        let poll = max(p, 1e-3)
        history = max(Int((604_800 / poll).rounded()), 2)
        shift = max(Int((1500 / poll).rounded(.up)), 100)
        offset = max(Int(1024 / poll), 2)
        localPeriod = max(Int((5 * Double(offset)).rounded(.up)), 4)
        localPeriodNear = max(localPeriod / 5, 1)
        warmUp = max(100, offset, shift, Int((1.5 * Double(localPeriod)).rounded(.up)))
    }
}

/// The feedforward clock estimator (feedforward-spec §1–§8): stamps in, `ClockParameters` out.
///
/// Pure and deterministic: no clock reads, no I/O. All buffers are allocated in `init`;
/// `process` allocates nothing as long as this value is not copied while in use.
///
/// Choices the spec leaves open, by section:
/// - §1 The counter origin and K are rebased to each stamp's Tf, so p̂ changes are
///   continuous at T_prev for free; K is whole ns plus a Double fraction.
///   Naive offsets are recomputed from the raw stamps with the current p̂ and K, so a rate
///   seeded late (±50%) does not leave stale offsets behind.
/// - §2 Duplicate: the server's (Tb, Te) equal the previous stamp's. A server reporting
///   leap 3 or stratum 0/16+ is rejected outright.
/// - §4 Forgetting in generations of history/2 stamps: RTThat is the minimum over the
///   current and the previous generation, so it reflects the last 3.5–7 days.
/// - §5 Warm-up pair estimates replace p̂ only if their hard bound is no worse, or if they
///   are inconsistent with p̂ beyond both bounds (new evidence after a clock event). Full
///   phase reference: the far-window best at warm-up end, then renewed at each generation
///   boundary with the previous generation's lowest-point-error stamp once older than one
///   generation. The local-period sanity gate compares with the previous p̂_local.
/// - §6 θ̂'s sanity gap is the time since θ̂ last moved. Stamps with quality warnings or
///   under suspicion (§8) get no weight.
/// - §8.1 A stamp is *suspect* when its hard offset interval (θ_j ± RTT/2) is disjoint from
///   θ̂ ± the hard bound: impossible unless the clock, the counter or the server moved.
///   When `eventStampCount` consecutive suspects agree, under a new rate fitted to them
///   (rate event: the fit is resolved from p̂, or the suspects share no offset under p̂ but do
///   under the fit) or under p̂ (step), a new epoch starts from the first suspect: windows,
///   warm-up and reference restart there; a rate event also resets p̂ and RTThat (RTT in
///   ticks changed meaning). θ̂'s whole ns are folded into K at each re-seed. A step-only
///   event (after warm-up) keeps p̂, its error, p̂_local and the full phase: a step moves
///   offsets, not rates. Only pairs must not straddle the step, so the reference becomes the
///   best post-step stamp (re-chosen while a better one arrives within a warm-up's length), and
///   the local-period windows refill from the step while the old p̂_local stays in use; once
///   two near-window widths have passed, p̂_local is refreshed from the best stamp of the
///   epoch's first window to the near window's (same gates) until the far window is full.
///   A step leaves the rate *unverified*: a migration moves to another host's counter, so a
///   step and a rate change come together, and at short polls the suspects span a few seconds,
///   too little to resolve tens of PPM against their RTTs. Each later stamp consistent with
///   the estimate, paired with the best post-event stamp, bounds the true period r by
///   |ΔS − r·ΔT| ≤ r·(RTT_a + RTT_b)/2 (midpoints; the server stamps lie between Ta and Tf).
///   When p̂ falls outside the intersection of those intervals (beyond p̂'s hard bound and
///   `rateWanderBound`), a rate change is declared from the step on; once the intersection
///   is within ±`rateWanderBound` the old rate is verified.
/// - §8.2 maxError = min over the offset window of |θ̂ − θ_j| + RTT_j/2 + δ·age_j, plus the
///   last stamp's rootDelay/2 + rootDispersion; δ = hard bound of p̂ + |p̂_local/p̂ − 1| +
///   `rateWanderBound`, plus, while the rate is unverified after a step, the farthest rate
///   the post-event stamps still allow. While suspects are pending it also covers each of them.
///   The published growth rate (`maxErrorGrowthRate`, what readers age the bound with between
///   stamps) is δ plus the larger of: the rate the pending suspects imply (one suspect:
///   `maximumRateError`, since a rate change late in the gap explains any disagreement with
///   any rate, so nothing smaller is honest; two or more: the pair fit between the first and
///   newest, plus its bound), and the size of rate jumps observed recently (rate events, local-period sanity
///   failures), held for `rateJumpMemorySeconds` then halving per such period. Capped at
///   `maximumRateError`. Event detection keeps using δ alone, so a large allowance never hides
///   a disagreeing stamp.
/// - §1/§5 Readers extrapolate Ca from the last stamp at p̂_local (RADclock's reader does so
///   too): published `localPeriod` is p̂_local once it has passed its quality and sanity
///   gates, p̂ before. Cd stays on p̂.
/// - §8.4 Synchronised once the epoch holds `stampsBeforeSynchronised` stamps and no
///   suspect is pending.
public struct FeedforwardClock: Sendable {
    public let configuration: FeedforwardConfiguration
    public let windows: FeedforwardWindows
    /// Published after every accepted stamp.
    public private(set) var parameters: ClockParameters = .empty

    // Constants derived from TS_LIMIT (§5, §6).
    private let periodPointErrorLimit: Double        // Ep = 3·TS
    private let offsetErrorScale: Double             // Eoffset = 10·TS
    private let offsetSanityMinimum: Double          // 100·TS
    private let periodQualityLimit = 0.1e-6          // Ep_qual
    private let periodSanityLimit = 1.5e-6           // Ep_sanity
    private let localPeriodQualityLimit = 0.8e-6
    private let localPeriodSanityLimit = 1.5e-6
    private let ageingRate = 0.2e-6
    private let errorGrowthRate = 0.5e-6
    private let offsetSanityRate = 10e-6

    // Stamp history.
    private var ring: [StoredStamp]
    private var stampCount = 0
    private var epochStart = 0
    private var hasLast = false
    private var lastTa: Int64 = 0
    private var lastTb: Int64 = 0
    private var lastTe: Int64 = 0
    private var lastTf: Int64 = 0
    private var lastStratum: UInt8 = 0
    private var lastReferenceID: UInt32 = 0
    private var lastLeap: UInt8 = 0

    // The clock C(T) = K + p̂·(T − origin), K = kNanoseconds + kFraction.
    private var counterOrigin: Int64 = 0
    private var kNanoseconds: Int64 = 0
    private var kFraction: Double = 0
    /// p̂ in nanoseconds per tick.
    private var period: Double = 1
    private var periodError: Double = 0.5
    private var periodErrorBound: Double = 0.5
    private var localPeriod: Double = 1
    private var localPeriodValid = false
    private var theta: Double = 0
    private var thetaValid = false
    private var thetaUpdateCounter: Int64 = 0
    private var errorAtUpdate: Double = 0
    /// Hard bound of |Ca − server| at lastTf from consistent stamps, without server terms.
    private var consistentBound: Double = .infinity

    // Minimum RTT (§4).
    private var rttHat: Int64 = .max
    private var rttMinimumCurrentGeneration: Int64 = .max
    private var rttMinimumPreviousGeneration: Int64 = .max
    private var shiftMinimum: SlidingMinimum
    private var shiftThresholdNanoseconds: Double = .infinity
    private var farServer = false

    // Period (§5).
    private var inWarmUp = true
    private var warmFarBest = -1
    private var warmFarEnd = 0
    private var warmNearMinimum: SlidingMinimum
    private var lastPairFar = -1
    private var lastPairNear = -1
    private var reference = StoredStamp.none
    private var generationBestCurrent = StoredStamp.none
    private var generationBestPrevious = StoredStamp.none
    private var localNearMinimum: SlidingMinimum
    private var localFarMinimum: SlidingMinimum

    // Clock events (§8.1).
    private var pending: [Int]
    private var pendingCount = 0
    /// Largest recently observed rate jump (relative) and the Tf at which it was last renewed (§8.2).
    private var rateJump: Double = 0
    private var rateJumpCounter: Int64 = 0
    /// Step-only epochs keep the full phase; until this index a better stamp replaces the reference.
    private var referenceOpenUntil = -1
    /// Step-only epochs keep p̂_local and refresh it from a growing baseline while the
    /// local-period windows refill; `epochFarBest` is the best of the epoch's first window.
    private var refreshingLocalPeriod = false
    private var epochFarBest = -1
    /// After a step-only event the rate is unverified (§8.1: a migration moves to another
    /// counter, so steps and rate changes come together): every post-event stamp paired with
    /// `verifyAnchor` bounds the true period; `verifyLow...verifyHigh` (ns/tick) is the
    /// intersection of those hard intervals.
    private var rateUnverified = false
    private var verifyAnchor = StoredStamp.none
    private var verifyLow: Double = 0
    private var verifyHigh: Double = 0

    /// Counter at which the platform signalled a disruption of the counter, until the first
    /// stamp after it re-anchors the clock.
    private var disruptionCounter: Int64? = nil

    public init(configuration: FeedforwardConfiguration = FeedforwardConfiguration()) {
        self.configuration = configuration
        let windows = FeedforwardWindows(pollPeriodSeconds: configuration.pollPeriodSeconds)
        self.windows = windows
        let ts = configuration.timestampingLimitNanoseconds
        periodPointErrorLimit = 3 * ts
        offsetErrorScale = 10 * ts
        offsetSanityMinimum = 100 * ts
        let eventCapacity = max(configuration.eventStampCount, 1) + 1
        let capacity = max(windows.warmUp, windows.localPeriod + windows.localPeriodNear,
                           windows.shift, windows.offset) + 2 * eventCapacity + 2
        ring = [StoredStamp](repeating: .none, count: capacity)
        shiftMinimum = SlidingMinimum(capacity: windows.shift + 1)
        warmNearMinimum = SlidingMinimum(capacity: windows.warmUp / 4 + 2)
        localNearMinimum = SlidingMinimum(capacity: windows.localPeriodNear + 1)
        localFarMinimum = SlidingMinimum(capacity: windows.localPeriodNear + 1)
        pending = [Int](repeating: 0, count: eventCapacity)
        periodError = configuration.maximumRateError
        periodErrorBound = configuration.maximumRateError
    }

    // MARK: - Processing one stamp

    /// Feeds one exchange; on acceptance `parameters` is republished.
    /// `nextExchangeInSeconds` tells when the caller will poll next (the start-up burst
    /// polls faster than P); by default P.
    public mutating func process(_ stamp: Stamp, nextExchangeInSeconds: Double? = nil) -> StampVerdict {
        if let reason = rejection(of: stamp) { return .rejected(reason) }
        if let disrupted = disruptionCounter, stamp.ta < disrupted { return .rejected(.beforeDisruption) }
        let index = stampCount
        var status: ClockStatus = []
        let warned = hasLast && (stamp.stratum != lastStratum || stamp.referenceID != lastReferenceID
                                 || stamp.leap != lastLeap)
        if warned { status.insert(.qualityWarning) }
        if index == 0 {
            counterOrigin = stamp.ta
            kNanoseconds = stamp.tb      // C(Ta0) = Tb0 (§1)
            kFraction = 0
        } else {
            let gapNanoseconds = period * Double(stamp.tf - lastTf)
            if gapNanoseconds > 10 * configuration.pollPeriodSeconds * 1e9 { status.insert(.starving) }
        }
        let delayHalf = stamp.rootDelayNanoseconds / 2
        ring[slot(index)] = StoredStamp(
            ta: stamp.ta, tb: stamp.tb, te: stamp.te, tf: stamp.tf, rtt: stamp.roundTripTicks,
            rttHat: 0, serverErrorNanoseconds: delayHalf + stamp.rootDispersionNanoseconds,
            qualityWarning: warned, suspect: false, index: index)
        stampCount += 1

        let previousParameters = parameters
        var disruptionDeclared = false
        if disruptionCounter != nil {
            disruptionCounter = nil
            if index > 0 {
                // The platform said the counter was disrupted (another host's counter: its
                // offset and rate are both new): this stamp starts a new epoch at once, as a
                // rate change (§8.1), without waiting for suspects to agree.
                restartEpoch(from: index, upTo: index, rateChanged: true)
                consistentBound = .infinity
                status.insert(.rateChange)
                disruptionDeclared = true
            }
        }
        updateMinimumRTT(index, status: &status)
        let epochBefore = epochStart
        detectClockEvent(index, status: &status)
        let eventDeclared = disruptionDeclared || epochStart != epochBefore
            || !status.isDisjoint(with: [.clockStep, .rateChange])
        updatePeriod(index, status: &status)
        updateLocalPeriod(index, status: &status)
        updateOffset(index, status: &status)
        publish(index, stamp: stamp, previous: previousParameters, eventDeclared: eventDeclared, status: status,
                nextExchangeInSeconds: nextExchangeInSeconds ?? configuration.pollPeriodSeconds)

        hasLast = true
        lastTa = stamp.ta
        lastTb = stamp.tb
        lastTe = stamp.te
        lastTf = stamp.tf
        lastStratum = stamp.stratum
        lastReferenceID = stamp.referenceID
        lastLeap = stamp.leap
        return .accepted
    }

    /// A clock event the platform signalled (a vmclock `disruption_marker` change: a live
    /// migration or snapshot restore disrupted the counter at `counter`; docs/published-clock.md,
    /// "Disruption"). The published parameters say unsynchronised with an infinite bound at
    /// once, so no reader mistakes them for good; stamps that began before `counter` are
    /// refused, and the first one after it starts a new epoch (a rate change: the platform
    /// says every calibration of the counter is void, §8.1).
    public mutating func noteDisruption(atRawNanoseconds counter: Int64) {
        disruptionCounter = max(counter, disruptionCounter ?? counter)
        parameters.status.insert(.unsynchronised)
        parameters.maxErrorNanoseconds = .infinity
    }

    /// §2: refuse what cannot be a real exchange before it touches any estimate.
    private func rejection(of s: Stamp) -> StampRejection? {
        if s.ta == 0 || s.tb == 0 || s.te == 0 || s.tf == 0 { return .zeroTimestamp }
        if s.leap == 3 || s.stratum == 0 || s.stratum >= 16 { return .serverUnsynchronised }
        if s.rootDelayNanoseconds < 0 || s.rootDispersionNanoseconds < 0 { return .negativeRootDelayOrDispersion }
        if s.tf < s.ta { return .responseBeforeRequest }
        if s.te < s.tb { return .serverTransmitBeforeReceive }
        if s.tf - s.ta < configuration.counterResolutionTicks { return .roundTripBelowResolution }
        if hasLast {
            if s.tb == lastTb && s.te == lastTe { return .duplicate }
            if s.ta <= lastTa || s.tf <= lastTf { return .counterNotIncreasing }
        }
        return nil
    }

    // MARK: - §4 Minimum RTT, level shifts, forgetting

    private mutating func updateMinimumRTT(_ i: Int, status: inout ClockStatus) {
        let position = i - epochStart
        let generation = max(windows.history / 2, 1)
        if position > 0 && position % generation == 0 { rotateGeneration(at: i) }
        let rtt = ring[slot(i)].rtt
        rttMinimumCurrentGeneration = min(rttMinimumCurrentGeneration, rtt)
        rttHat = min(rttMinimumPreviousGeneration, rttMinimumCurrentGeneration)

        shiftMinimum.push(index: i, key: rtt)
        shiftMinimum.dropBefore(i - windows.shift + 1)
        if !inWarmUp, position >= windows.shift - 1, let windowMinimum = shiftMinimum.minimumKey,
           period * Double(windowMinimum - rttHat) > shiftThresholdNanoseconds {
            // Upward shift: the whole shift window lies above the old minimum.
            rttHat = windowMinimum
            rttMinimumCurrentGeneration = windowMinimum
            rttMinimumPreviousGeneration = windowMinimum
            for j in max(epochStart, i - windows.shift + 1)..<i { ring[slot(j)].rttHat = windowMinimum }
            status.insert(.rttUpShift)
        }
        ring[slot(i)].rttHat = rttHat
    }

    /// Every history/2 stamps: forget the older generation's minimum, renew the reference.
    private mutating func rotateGeneration(at i: Int) {
        rttMinimumPreviousGeneration = rttMinimumCurrentGeneration
        rttMinimumCurrentGeneration = .max
        let generation = max(windows.history / 2, 1)
        if !inWarmUp, reference.index >= 0, reference.index < i - generation,
           generationBestCurrent.index >= 0 {
            reference = generationBestCurrent
        }
        generationBestPrevious = generationBestCurrent
        generationBestCurrent = .none
    }

    // MARK: - §8.1 Clock events

    private mutating func detectClockEvent(_ i: Int, status: inout ClockStatus) {
        let stamp = ring[slot(i)]
        guard thetaValid, hasLast, !stamp.qualityWarning, consistentBound.isFinite else { return }
        let delta = rateBound
        let predicted = consistentBound + delta * period * Double(stamp.tf - lastTf)
        let spread = halfWidth(stamp.rtt, delta)
        if abs(naiveOffset(stamp) - theta) <= predicted + spread {
            pendingCount = 0
            // Only stamps consistent with the estimate check the rate: a suspect may be a new step.
            if rateUnverified { verifyRate(with: stamp, status: &status) }
            return
        }
        ring[slot(i)].suspect = true
        status.insert(.eventSuspected)
        if pendingCount == pending.count {
            for k in 1..<pendingCount { pending[k - 1] = pending[k] }
            pendingCount -= 1
        }
        pending[pendingCount] = i
        pendingCount += 1
        guard pendingCount >= configuration.eventStampCount, pendingCount >= 2 else { return }

        let first = ring[slot(pending[0])]
        let agreeUnderPeriod = pendingAgree(period: period, slack: delta)
        if let fitted = pairPeriod(first, stamp) {
            // A rate event when the fitted rate is resolved from p̂, and also when the suspects
            // cannot share one offset under p̂ but can under their fitted rate: at short polls
            // three stamps span too little time to resolve a rate change by the pair bound,
            // yet already rule p̂ out.
            let moved = abs(fitted.period / period - 1) > fitted.bound + delta
            if (moved || !agreeUnderPeriod)
                && pendingAgree(period: fitted.period, slack: fitted.bound + configuration.rateWanderBound) {
                noteRateJump(fitted.period / period, at: stamp.tf)
                restartEpoch(from: pending[0], upTo: i, rateChanged: true)
                status.insert(.rateChange)
                return
            }
        }
        if agreeUnderPeriod {
            restartEpoch(from: pending[0], upTo: i, rateChanged: false)
            status.insert(.clockStep)
            return
        }
        // The suspects do not agree with each other: forget the oldest and keep watching.
        for k in 1..<pendingCount { pending[k - 1] = pending[k] }
        pendingCount -= 1
    }

    /// Do all pending stamps admit one offset under `period` (ns/tick), each interval
    /// widened by `slack` of its RTT and of its age relative to the newest?
    private func pendingAgree(period candidate: Double, slack: Double) -> Bool {
        let first = ring[slot(pending[0])]
        let newest = ring[slot(pending[pendingCount - 1])]
        var low = -Double.infinity
        var high = Double.infinity
        for k in 0..<pendingCount {
            let s = ring[slot(pending[k])]
            let middle = candidate * (Double(s.ta - first.ta) + Double(s.tf - first.ta)) / 2
                - (Double(s.tb - first.tb) + Double(s.te - first.tb)) / 2
            let age = candidate * Double(newest.tf - s.tf)
            let width = candidate * Double(s.rtt) * (0.5 + slack) + slack * age
            low = max(low, middle - width)
            high = min(high, middle + width)
        }
        return low <= high
    }

    /// After a step-only event (§8.1): narrows the interval of periods the post-event stamps
    /// allow and declares a rate change, from the event on, once p̂ lies outside it beyond
    /// p̂'s own bound and the wander allowance. The rate counts as verified once the interval
    /// is no wider than ±`rateWanderBound`.
    private mutating func verifyRate(with stamp: StoredStamp, status: inout ClockStatus) {
        narrowVerifiedPeriod(verifyAnchor, stamp)
        let slack = period * (periodErrorBound + configuration.rateWanderBound)
        if verifyLow > verifyHigh || period < verifyLow - slack || period > verifyHigh + slack {
            let measured = verifyLow <= verifyHigh ? (verifyLow + verifyHigh) / 2
                : pairPeriod(verifyAnchor, stamp)?.period ?? period
            rateUnverified = false
            noteRateJump(measured / period, at: stamp.tf)
            // From the step, or (a far server verifying for hours) from as far back as the ring holds.
            restartEpoch(from: max(epochStart, stamp.index - windows.warmUp + 1), upTo: stamp.index, rateChanged: true)
            status.insert(.rateChange)
            return
        }
        if verifyHigh - verifyLow <= 2 * period * configuration.rateWanderBound { rateUnverified = false }
    }

    /// Intersects the verification interval with what one post-event pair allows: under a
    /// constant period r the server's midpoint (Tb+Te)/2 lies within r·RTT/2 of a line of slope
    /// r through the counter midpoints (Ta+Tf)/2 (§2: the server stamps lie between Ta and Tf),
    /// so |ΔS − r·ΔT| ≤ r·(RTT_a + RTT_b)/2. Half as wide as the pair estimate's bound.
    private mutating func narrowVerifiedPeriod(_ a: StoredStamp, _ b: StoredStamp) {
        guard a.index >= 0, b.index >= 0, a.index != b.index, !a.qualityWarning, !b.qualityWarning else { return }
        let (far, near) = a.index < b.index ? (a, b) : (b, a)
        let counterSpan = (Double(near.ta - far.ta) + Double(near.tf - far.tf)) / 2
        let serverSpan = (Double(near.tb - far.tb) + Double(near.te - far.te)) / 2
        let halfRTTs = Double(far.rtt + near.rtt) / 2
        guard counterSpan > 2 * halfRTTs, serverSpan > 0 else { return }
        verifyLow = max(verifyLow, serverSpan / (counterSpan + halfRTTs))
        verifyHigh = min(verifyHigh, serverSpan / (counterSpan - halfRTTs))
    }

    /// Unverified-rate allowance: how far the true rate may lie from p̂ given the post-event
    /// stamps so far (relative), 0 once verified.
    private var unverifiedRate: Double {
        guard rateUnverified else { return 0 }
        return max(verifyHigh / period - 1, 1 - verifyLow / period, 0)
    }

    /// Start a new epoch at stamp `start` (the first post-event stamp).
    private mutating func restartEpoch(from start: Int, upTo i: Int, rateChanged: Bool) {
        let keepRates = !rateChanged && !inWarmUp
        rateUnverified = !rateChanged
        if rateUnverified {
            // A step leaves the rate unverified: anchor the check on the best post-event
            // stamp and start from what the event's own stamps allow.
            verifyLow = period * (1 - configuration.maximumRateError)
            verifyHigh = period * (1 + configuration.maximumRateError)
            verifyAnchor = .none
            for j in start...i {
                let s = ring[slot(j)]
                if !s.qualityWarning && (verifyAnchor.index < 0 || s.rtt < verifyAnchor.rtt) { verifyAnchor = s }
            }
            for j in start...i { narrowVerifiedPeriod(verifyAnchor, ring[slot(j)]) }
        }
        epochStart = start
        pendingCount = 0
        lastPairFar = -1
        lastPairNear = -1
        generationBestCurrent = .none
        generationBestPrevious = .none
        thetaValid = false
        if keepRates {
            // A step moves offsets, not rates: keep p̂ (and its error) and p̂_local; re-anchor
            // the reference on this side of the step.
            reference = .none
            for j in start...i {
                let s = ring[slot(j)]
                if reference.index < 0 || s.rtt - s.rttHat < reference.rtt - reference.rttHat { reference = s }
            }
            referenceOpenUntil = start + windows.warmUp
            refreshingLocalPeriod = true
            epochFarBest = -1
            for j in start..<i where j - start < windows.localPeriodNear {
                let s = ring[slot(j)]
                if !s.qualityWarning && (epochFarBest < 0 || s.rtt < ring[slot(epochFarBest)].rtt) { epochFarBest = j }
            }
        } else {
            refreshingLocalPeriod = false
            inWarmUp = true
            warmFarBest = -1
            warmFarEnd = start
            reference = .none
            referenceOpenUntil = -1
            localPeriodValid = false
        }
        shiftMinimum.reset()
        warmNearMinimum.reset()
        localNearMinimum.reset()
        localFarMinimum.reset()
        var epochMinimum = Int64.max
        for j in start...i {
            ring[slot(j)].suspect = false
            epochMinimum = min(epochMinimum, ring[slot(j)].rtt)
        }
        if rateChanged {
            // RTT in ticks changed meaning with the rate: restart the minimum from the epoch.
            rttHat = epochMinimum
            rttMinimumCurrentGeneration = epochMinimum
            rttMinimumPreviousGeneration = .max
            for j in start...i { ring[slot(j)].rttHat = epochMinimum }
            periodErrorBound = configuration.maximumRateError
            periodError = configuration.maximumRateError
        }
        for j in start..<i {
            let s = ring[slot(j)]
            shiftMinimum.push(index: j, key: s.rtt)
            warmNearMinimum.push(index: j, key: periodKey(s))
            localNearMinimum.push(index: j, key: periodKey(s))
        }
    }

    // MARK: - §5 Period

    private mutating func updatePeriod(_ i: Int, status: inout ClockStatus) {
        let stamp = ring[slot(i)]
        trackGenerationBest(stamp)
        let count = i - epochStart + 1
        if inWarmUp {
            let width = max(1, count / 4)
            while warmFarEnd < epochStart + width {
                let candidate = ring[slot(warmFarEnd)]
                if periodKey(candidate) != .max
                    && (warmFarBest < 0 || candidate.rtt < ring[slot(warmFarBest)].rtt) {
                    warmFarBest = warmFarEnd
                }
                warmFarEnd += 1
            }
            warmNearMinimum.push(index: i, key: periodKey(stamp))
            warmNearMinimum.dropBefore(i - width + 1)
            if warmFarBest >= 0, let near = warmNearMinimum.minimumIndex,
               warmNearMinimum.minimumKey != .max, near > warmFarBest,
               near != lastPairNear || warmFarBest != lastPairFar {
                lastPairNear = near
                lastPairFar = warmFarBest
                let far = ring[slot(warmFarBest)]
                let nearStamp = ring[slot(near)]
                if let pair = pairPeriod(far, nearStamp) {
                    let inconsistent = abs(pair.period / period - 1) > pair.bound + periodErrorBound + configuration.rateWanderBound
                    if pair.bound <= periodErrorBound || inconsistent {
                        let spread = Double(far.rtt - rttHat) + Double(nearStamp.rtt - rttHat)
                        setPeriod(pair.period)
                        periodError = pair.period * spread / Double(nearStamp.tb - far.tb)
                        periodErrorBound = min(pair.bound, configuration.maximumRateError)
                        status.insert(.periodUpdated)
                    }
                }
            }
            if count >= windows.warmUp { endWarmUp() }
            return
        }

        // Full phase: candidate against the reference stamp.
        guard reference.index >= 0 else { return }
        if stamp.qualityWarning {
            status.insert(.periodSanity)
            return
        }
        if i <= referenceOpenUntil, !stamp.suspect, stamp.rtt - stamp.rttHat < reference.rtt - reference.rttHat {
            reference = stamp    // a better anchor on this side of a step
            return
        }
        let pointError = period * Double(stamp.rtt - stamp.rttHat)
        guard pointError < periodPointErrorLimit, let pair = pairPeriod(reference, stamp) else { return }
        let referenceError = period * Double(reference.rtt - reference.rttHat)
        let candidateError = (abs(pointError) + abs(referenceError)
                              + period * Double(abs(rttHat - reference.rttHat))) / Double(stamp.tb - reference.tb)
        guard candidateError < periodError || candidateError < periodQualityLimit else { return }
        if abs(pair.period / period - 1) > periodSanityLimit {
            status.insert(.periodSanity)
            return
        }
        setPeriod(pair.period)
        periodError = candidateError
        periodErrorBound = pair.bound
        status.insert(.periodUpdated)
    }

    private mutating func endWarmUp() {
        inWarmUp = false
        if warmFarBest >= 0 { reference = ring[slot(warmFarBest)] }
        let ts = configuration.timestampingLimitNanoseconds
        farServer = period * Double(rttHat) >= 3e6
        shiftThresholdNanoseconds = (farServer ? 30 : 10) * ts
    }

    private mutating func trackGenerationBest(_ stamp: StoredStamp) {
        guard !stamp.qualityWarning, !stamp.suspect else { return }
        if generationBestCurrent.index < 0
            || stamp.rtt - stamp.rttHat < generationBestCurrent.rtt - generationBestCurrent.rttHat {
            generationBestCurrent = stamp
        }
    }

    /// p̂ changes keep C continuous at the counter origin, which is T_prev (§1).
    private mutating func setPeriod(_ newPeriod: Double) {
        period = newPeriod
        if !localPeriodValid { localPeriod = newPeriod }
    }

    /// §5's pair estimate and a hard bound on its relative error: the server stamps of each
    /// exchange lie between its Ta and Tf, so each ratio is off by at most max(RTT)/Δ.
    private func pairPeriod(_ far: StoredStamp, _ near: StoredStamp) -> (period: Double, bound: Double)? {
        let dTa = near.ta - far.ta, dTf = near.tf - far.tf
        let dTb = near.tb - far.tb, dTe = near.te - far.te
        guard dTa > 0, dTf > 0, dTb > 0, dTe > 0 else { return nil }
        let estimate = 0.5 * (Double(dTb) / Double(dTa) + Double(dTe) / Double(dTf))
        let spread = Double(far.rtt + near.rtt)
        let base = Double(min(dTa, dTf))
        let bound = base > 2 * spread ? spread / (base - spread) : configuration.maximumRateError
        return (estimate, bound)
    }

    private func periodKey(_ s: StoredStamp) -> Int64 {
        s.qualityWarning || s.suspect ? .max : s.rtt
    }

    // MARK: - §5 Local period

    private mutating func updateLocalPeriod(_ i: Int, status: inout ClockStatus) {
        let stamp = ring[slot(i)]
        let width = windows.localPeriodNear
        localNearMinimum.push(index: i, key: periodKey(stamp))
        localNearMinimum.dropBefore(i - width + 1)
        let farEnd = i - windows.localPeriod
        if farEnd >= epochStart {
            localFarMinimum.push(index: farEnd, key: periodKey(ring[slot(farEnd)]))
            localFarMinimum.dropBefore(farEnd - width + 1)
        }
        let position = i - epochStart
        if refreshingLocalPeriod && position < width && periodKey(stamp) != .max
            && (epochFarBest < 0 || stamp.rtt < ring[slot(epochFarBest)].rtt) {
            epochFarBest = i
        }
        var farIndex = -1, nearIndex = -1
        if let near = localNearMinimum.minimumIndex, localNearMinimum.minimumKey != .max { nearIndex = near }
        if farEnd - width + 1 >= epochStart {
            if let far = localFarMinimum.minimumIndex, localFarMinimum.minimumKey != .max { farIndex = far }
        } else if refreshingLocalPeriod && position + 1 >= 2 * width {
            // After a step-only event the kept p̂_local would go stale while the windows
            // refill: until they do, the far window is the epoch's first one, fixed.
            farIndex = epochFarBest
        }
        guard farIndex >= 0, nearIndex >= 0 else {
            if !localPeriodValid { localPeriod = period }
            return
        }
        let far = ring[slot(farIndex)], near = ring[slot(nearIndex)]
        guard let pair = pairPeriod(far, near) else { return }
        let error = period * (Double(far.rtt - far.rttHat) + Double(near.rtt - near.rttHat)) / Double(near.tb - far.tb)
        if error > localPeriodQualityLimit {
            status.insert(.localPeriodQuality)
            if !localPeriodValid { localPeriod = period }
            return
        }
        if localPeriodValid && abs(pair.period / localPeriod - 1) > localPeriodSanityLimit {
            status.insert(.localPeriodSanity)
            noteRateJump(pair.period / localPeriod, at: stamp.tf)
            return
        }
        localPeriod = pair.period
        localPeriodValid = true
    }

    // MARK: - §6 Offset

    private mutating func updateOffset(_ i: Int, status: inout ClockStatus) {
        let now = ring[slot(i)].tf
        let low = max(epochStart, i - windows.offset + 1)
        let localCorrection = localPeriod / period - 1
        var weightSum = 0.0, weightedSum = 0.0
        var smallest = Double.infinity, secondSmallest = Double.infinity
        var smallestOffset = 0.0
        for j in low...i {
            let s = ring[slot(j)]
            if s.qualityWarning || s.suspect { continue }
            let age = period * Double(now - s.tf)
            let pointError = period * Double(s.rtt - s.rttHat) + ageingRate * age
            let value = naiveOffset(s) - localCorrection * age
            let ratio = pointError / offsetErrorScale
            let weight = exp(-ratio * ratio)
            weightSum += weight
            weightedSum += weight * value
            if pointError < smallest {
                secondSmallest = smallest
                smallest = pointError
                smallestOffset = value
            } else if pointError < secondSmallest {
                secondSmallest = pointError
            }
        }
        guard smallest.isFinite else { return }   // nothing usable in the window
        let candidate = weightSum > 0 ? weightedSum / weightSum : smallestOffset
        if thetaValid {
            let qualityLimit = (farServer ? 6 : 3) * offsetErrorScale
            if smallest >= qualityLimit {
                status.insert(.offsetQuality)
                return
            }
            let sinceUpdate = period * Double(now - thetaUpdateCounter)
            // A candidate inside θ̂'s own hard bound (aged to now) cannot be insane: it is
            // consistent with everything the stamps prove. Without this, a θ̂ seeded by a
            // first stamp with a long, lopsided delay (its RTT then *was* the minimum) kept
            // every later, better candidate out for good once they differed by more than
            // the sanity minimum: the live lab saw a 1.4 ms error that stayed, inside the bound.
            let provenBound = consistentBound + rateBound * period * Double(now - lastTf)
            if abs(candidate - theta) > max(offsetSanityMinimum + offsetSanityRate * sinceUpdate, provenBound) {
                status.insert(.offsetSanity)
                return
            }
            theta = candidate
        } else {
            // First offset of an epoch: fold its whole ns into K so θ̂ stays small (§1).
            let whole = candidate.rounded()
            kNanoseconds -= Int64(whole)
            theta = candidate - whole
            thetaValid = true
        }
        thetaUpdateCounter = now
        errorAtUpdate = secondSmallest.isFinite ? secondSmallest : smallest
    }

    /// θ_j = [C(Ta) + C(Tf)]/2 − (Tb + Te)/2 with the current C (§2), in ns.
    private func naiveOffset(_ s: StoredStamp) -> Double {
        let receive = Double(kNanoseconds - s.tb)
        let transmit = Double(kNanoseconds - s.te)
        let counterPart = period * (Double(s.ta - counterOrigin) + Double(s.tf - counterOrigin)) / 2
        return (receive + transmit) / 2 + kFraction + counterPart
    }

    /// Half-width of a stamp's hard offset interval: the server's stamps lie between Ta and
    /// Tf, so θ_j is within RTT/2 of C's offset, plus δ·RTT for C's drift across the RTT.
    private func halfWidth(_ rtt: Int64, _ delta: Double) -> Double {
        period * Double(rtt) * (0.5 + delta)
    }

    /// δ: hard bound on the rate error used to age offsets and the bound (§8.2).
    private var rateBound: Double {
        min(periodErrorBound + abs(localPeriod / period - 1) + configuration.rateWanderBound + unverifiedRate,
            configuration.maximumRateError)
    }

    /// Remembers a rate jump of relative size |ratio − 1| (either direction) seen at `counter`.
    private mutating func noteRateJump(_ ratio: Double, at counter: Int64) {
        guard ratio > 0, ratio.isFinite else { return }
        let size = max(abs(ratio - 1), abs(1 / ratio - 1))
        rateJump = max(rateJumpAllowance(at: counter), size)
        rateJumpCounter = counter
    }

    /// The observed-jump allowance at `counter`: held for `rateJumpMemorySeconds` of quiet,
    /// then halving per such period (§8.2).
    private func rateJumpAllowance(at counter: Int64) -> Double {
        guard rateJump > 0 else { return 0 }
        let memory = max(configuration.rateJumpMemorySeconds, 1)
        let quiet = period * Double(counter - rateJumpCounter) * 1e-9
        return quiet <= memory ? rateJump : rateJump * exp2(-(quiet - memory) / memory)
    }

    /// The rate the pending suspects imply, beyond p̂ (§8.1, §8.2): 0 with none.
    private func pendingRate() -> Double {
        guard pendingCount > 0 else { return 0 }
        let newest = ring[slot(pending[pendingCount - 1])]
        if pendingCount >= 2, let fitted = pairPeriod(ring[slot(pending[0])], newest) {
            return abs(fitted.period / period - 1) + fitted.bound
        }
        return configuration.maximumRateError
    }

    // MARK: - §7 Publication and §8.2 the hard bound

    private mutating func publish(_ i: Int, stamp: Stamp, previous: ClockParameters, eventDeclared: Bool,
                                  status incoming: ClockStatus,
                                  nextExchangeInSeconds: Double) {
        var status = incoming
        let current = ring[slot(i)]
        let now = current.tf
        let delta = rateBound
        let localCorrection = localPeriod / period - 1
        let low = max(epochStart, i - windows.offset + 1)

        // Hard bound from every consistent stamp in the window (§8.2).
        var bound = Double.infinity
        for j in low...i {
            let s = ring[slot(j)]
            if s.suspect { continue }
            let age = period * Double(now - s.tf)
            let value = naiveOffset(s) - localCorrection * age
            let spread = halfWidth(s.rtt, delta)
            bound = min(bound, abs(theta - value) + spread + delta * age)
        }
        // The previous bound, aged, also holds for the previous Ca; add how far Ca moved.
        // Not across a clock event: the event proved that bound's premise wrong.
        if hasLast, !eventDeclared, previous.maxErrorNanoseconds.isFinite, consistentBound.isFinite {
            let oldNow = previous.absoluteTimeParts(atCounter: now)
            let newNow = caParts(atCounter: now)
            let moved = Double(newNow.nanoseconds - oldNow.nanoseconds) + (newNow.fraction - oldNow.fraction)
            let aged = consistentBound + previous.maxErrorGrowthRate * period * Double(now - lastTf)
            bound = min(bound, aged + abs(moved))
        }
        consistentBound = bound
        var published = bound
        for k in 0..<pendingCount {
            let s = ring[slot(pending[k])]
            let age = period * Double(now - s.tf)
            let spread = halfWidth(s.rtt, delta)
            published = max(published, abs(theta - naiveOffset(s)) + spread + delta * age)
        }
        published += Double(current.serverErrorNanoseconds)

        let epochCount = i - epochStart + 1
        if pendingCount > 0 || epochCount < configuration.stampsBeforeSynchronised || !thetaValid {
            status.insert(.unsynchronised)
        }
        if inWarmUp { status.insert(.warmUp) }

        // Rebase C at this stamp so counter deltas stay small (§1).
        let shift = period * Double(now - counterOrigin) + kFraction
        let wholeShift = shift.rounded(.down)
        kNanoseconds += Int64(wholeShift)
        kFraction = shift - wholeShift
        counterOrigin = now

        let ca = kFraction - theta
        let caWhole = ca.rounded(.down)
        let sinceUpdate = period * Double(now - thetaUpdateCounter)
        let nextTicks = Int64((nextExchangeInSeconds * 1e9 / period).rounded())
        let growth = min(delta + max(pendingRate(), rateJumpAllowance(at: now)),
                         configuration.maximumRateError)
        parameters = ClockParameters(
            counterOrigin: now,
            timeAtOriginNanoseconds: kNanoseconds + Int64(caWhole),
            timeAtOriginFraction: ca - caWhole,
            period: period * 1e-9,
            periodError: periodError,
            periodErrorBound: periodErrorBound,
            localPeriod: (localPeriodValid ? localPeriod : period) * 1e-9,
            offsetNanoseconds: theta,
            errorEstimateNanoseconds: errorAtUpdate + errorGrowthRate * sinceUpdate,
            maxErrorNanoseconds: published,
            maxErrorGrowthRate: max(growth, delta),
            lastStampCounter: now,
            nextStampExpectedCounter: now + max(nextTicks, 1),
            leap: stamp.leap,
            status: status,
            lastRTTNanoseconds: period * Double(current.rtt),
            minimumRTTNanoseconds: period * Double(rttHat),
            naiveOffsetNanoseconds: naiveOffset(current),
            stampCount: Int64(stampCount))
    }

    /// Ca(T) with the working parameters (before rebasing), for bound continuity.
    private func caParts(atCounter counter: Int64) -> (nanoseconds: Int64, fraction: Double) {
        let value = period * Double(counter - counterOrigin) + kFraction - theta
        let whole = value.rounded(.down)
        return (kNanoseconds + Int64(whole), value - whole)
    }

    @inline(__always) private func slot(_ index: Int) -> Int { index % ring.count }
}

/// One accepted stamp as kept in the history ring.
struct StoredStamp: Sendable {
    var ta: Int64
    var tb: Int64
    var te: Int64
    var tf: Int64
    /// RTT in counter ticks.
    var rtt: Int64
    /// RTThat in ticks when the stamp arrived; rewritten on an upward shift (§4).
    var rttHat: Int64
    var serverErrorNanoseconds: Int64
    var qualityWarning: Bool
    /// Disagrees with the estimate beyond the hard bound (§8.1); no weight until an event adopts it.
    var suspect: Bool
    /// Global stamp index; −1 for an empty slot.
    var index: Int

    static let none = StoredStamp(ta: 0, tb: 0, te: 0, tf: 0, rtt: 0, rttHat: 0, serverErrorNanoseconds: 0,
                                  qualityWarning: false, suspect: false, index: -1)
}
