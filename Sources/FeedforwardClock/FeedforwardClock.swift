import Maths

/// The feedforward clock estimator (docs/feedforward.md §1–§8): stamps in, `ClockParameters` out.
///
/// Pure and deterministic: no clock reads, no I/O. All buffers are allocated in `init`;
/// `process` allocates nothing as long as this value is not copied while in use.
///
/// One update, in order: the counter checks (§2), the minimum RTT and level shifts (§4),
/// clock-event detection (§8.1), the long-term period p̂ (§5), the offset θ̂ and local rate
/// p̂_local from weighted local polynomial fits chosen by intersecting confidence intervals
/// (§6), then the hard bound, the status and publication (§7, §8.2, §8.4). Units: inside the
/// filter p̂ and p̂_local are nanoseconds per tick (`periodNanosecondsPerTick`); published in
/// `ClockParameters` they are seconds per tick.
public struct FeedforwardClock: Sendable {
    public let configuration: FeedforwardConfiguration
    public let windows: FeedforwardWindows
    /// Published after every accepted stamp.
    public private(set) var parameters: ClockParameters = .empty

    // Thresholds in the filter's own units (ns, fractions), from the configuration.
    private let offsetSanityMinimumNanoseconds: Double
    private let localPeriodQualityLimit: Double
    private let localPeriodSanityLimit: Double
    private let errorGrowthRate: Double
    private let offsetSanityRate: Double
    private let rateWanderBound: Double
    /// The 2σ margin of the local-rate checks (§6) and of the reader's rate allowance (§8.2).
    private var fitAgreementFactor: Double { configuration.fitAgreementFactor }

    // Stamp history.
    private var ring: [StoredStamp]
    private var stampCount = 0
    private var epochStart = 0
    /// The current epoch has been synchronised at some stamp (§8.4: the hold).
    private var synchronisedInEpoch = false
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
    /// p̂ in nanoseconds per tick, its relative error and hard bound (§5, `period`).
    private var periodNanosecondsPerTick: Double { period.nanosecondsPerTick }
    private var periodError: Double { period.error }
    private var periodErrorBound: Double { period.errorBound }
    private var localPeriodNanosecondsPerTick: Double = 1
    private var localPeriodValid = false
    private var theta: Double = 0
    private var thetaValid = false
    private var thetaUpdateCounter: Int64 = 0
    private var errorAtUpdate: Double = 0
    /// Hard bound of |Ca − server| at lastTf from consistent stamps, without server terms.
    private var consistentBound: Double = .infinity

    // Minimum RTT (§4).
    private var minimumRTT: MinimumRTT
    /// RTThat in ticks (§4).
    private var rttHat: Int64 { minimumRTT.ticks }
    private var farServer: Bool { minimumRTT.farServer }

    // Period (§5).
    private var period: PeriodEstimator
    private var inWarmUp: Bool { period.inWarmUp }

    // Clock events (§8.1, §8.2).
    private var suspects: SuspectQueue
    private var rateJumps: RateJumpMemory
    /// After a step-only event the rate is unverified until post-event stamps pin it (§8.1).
    private var rateVerification = RateVerification()

    /// Counter at which the platform signalled a disruption of the counter, until the first
    /// stamp after it re-anchors the clock.
    private var disruptionCounter: Int64? = nil
    /// §6: the offset and local-rate fits over windows of the newest stamps, and the choice among them.
    private(set) var offsetWindows: OffsetWindowChoice
    /// θ̂ and the local period when θ̂ was last estimated: while no stamp is good enough θ̂
    /// follows that local rate rather than staying put (which would run the clock at p̂).
    private var thetaAtUpdate: Double = 0
    private var localRateIsSignificant = false
    /// Standard error of the slope behind `localPeriodNanosecondsPerTick`, dimensionless (§6).
    private var localRateSlopeError = Double.infinity
    private var lastLocalPeriodCandidate: Double = 1

    public init(configuration: FeedforwardConfiguration = FeedforwardConfiguration()) {
        self.configuration = configuration
        let windows = FeedforwardWindows(pollPeriodSeconds: configuration.pollPeriodSeconds)
        self.windows = windows
        let ts = configuration.timestampNoiseNanoseconds
        offsetSanityMinimumNanoseconds = configuration.offsetSanityNoises * ts
        localPeriodQualityLimit = configuration.localRateErrorLimitPPM * 1e-6
        localPeriodSanityLimit = configuration.localRateJumpLimitPPM * 1e-6
        errorGrowthRate = configuration.errorEstimateGrowthPPM * 1e-6
        offsetSanityRate = configuration.offsetSanityGrowthPPM * 1e-6
        rateWanderBound = configuration.rateWanderBoundPPM * 1e-6
        let eventCapacity = max(configuration.eventStampCount, 1) + 1
        let capacity = max(windows.warmUp, windows.shift, windows.offset, configuration.fitLongestWindowStamps) + 2 * eventCapacity + 2
        offsetWindows = OffsetWindowChoice(configuration: configuration)
        ring = [StoredStamp](repeating: .unwritten, count: capacity)
        minimumRTT = MinimumRTT(shiftWindowStamps: windows.shift)
        rateJumps = RateJumpMemory(memorySeconds: configuration.rateJumpMemorySeconds)
        period = PeriodEstimator(configuration: configuration, warmUpStamps: windows.warmUp)
        suspects = SuspectQueue(capacity: eventCapacity)
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
            if parameters.isStarving(atCounter: stamp.tf) { status.insert(.starving) }
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
        synchronisedInEpoch = false
        parameters.status.insert(.unsynchronised)
        parameters.maxErrorNanoseconds = .infinity
    }

    /// §2: refuse what cannot be a real exchange before it touches any estimate. The server's
    /// side (zero or reversed server timestamps, an unsynchronised server) is the response
    /// validation's job before a stamp is made (RFC 5905 §8); what only the counter history
    /// can show is checked here.
    private func rejection(of s: Stamp) -> StampRejection? {
        if s.ta == 0 || s.tf == 0 { return .zeroTimestamp }
        if s.rootDelayNanoseconds < 0 || s.rootDispersionNanoseconds < 0 { return .negativeRootDelayOrDispersion }
        if s.tf < s.ta { return .responseBeforeRequest }
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
        if let windowMinimum = minimumRTT.add(ring[slot(i)].rtt, index: i,
                                              detectShifts: !inWarmUp && position >= windows.shift - 1,
                                              nanosecondsPerTick: periodNanosecondsPerTick) {
            // Upward shift: the whole shift window lies above the old minimum.
            for j in max(epochStart, i - windows.shift + 1)..<i { ring[slot(j)].rttHat = windowMinimum }
            status.insert(.rttUpShift)
        }
        ring[slot(i)].rttHat = rttHat
    }

    /// Every history/2 stamps: forget the older generation's minimum, renew the reference.
    private mutating func rotateGeneration(at i: Int) {
        minimumRTT.rotateGeneration()
        period.rotateGeneration(at: i, generationStamps: max(windows.history / 2, 1))
    }

    // MARK: - §8.1 Clock events

    private mutating func detectClockEvent(_ i: Int, status: inout ClockStatus) {
        let stamp = ring[slot(i)]
        guard thetaValid, hasLast, !stamp.qualityWarning, consistentBound.isFinite else { return }
        let delta = rateBound
        let predicted = consistentBound + delta * periodNanosecondsPerTick * Double(stamp.tf - lastTf)
        let spread = halfWidth(stamp.rtt, delta)
        if abs(naiveOffset(stamp) - theta) <= predicted + spread {
            suspects.removeAll()
            // Only stamps consistent with the estimate check the rate: a suspect may be a new step.
            if rateVerification.isUnverified { verifyRate(with: stamp, status: &status) }
            return
        }
        ring[slot(i)].suspect = true
        status.insert(.eventSuspected)
        suspects.append(i)
        guard suspects.count >= configuration.eventStampCount, suspects.count >= 2 else { return }

        let first = ring[slot(suspects.oldest)]
        let agreeUnderPeriod = pendingAgree(period: periodNanosecondsPerTick, slack: delta)
        if let fitted = period.pairPeriod(first, stamp) {
            // A rate event when the fitted rate is resolved from p̂, and also when the suspects
            // cannot share one offset under p̂ but can under their fitted rate: at short polls
            // three stamps span too little time to resolve a rate change by the pair bound,
            // yet already rule p̂ out.
            let moved = abs(fitted.period / periodNanosecondsPerTick - 1) > fitted.bound + delta
            if (moved || !agreeUnderPeriod)
                && pendingAgree(period: fitted.period, slack: fitted.bound + rateWanderBound) {
                noteRateJump(fitted.period / periodNanosecondsPerTick, at: stamp.tf)
                restartEpoch(from: suspects.oldest, upTo: i, rateChanged: true)
                status.insert(.rateChange)
                return
            }
        }
        if agreeUnderPeriod {
            restartEpoch(from: suspects.oldest, upTo: i, rateChanged: false)
            status.insert(.clockStep)
            return
        }
        // The suspects do not agree with each other: forget the oldest and keep watching.
        suspects.dropOldest()
    }

    /// Do all pending stamps admit one offset under `period` (ns/tick), each interval
    /// widened by `slack` of its RTT and of its age relative to the newest?
    private func pendingAgree(period candidate: Double, slack: Double) -> Bool {
        let first = ring[slot(suspects.oldest)]
        let newest = ring[slot(suspects.newest)]
        var low = -Double.infinity
        var high = Double.infinity
        for k in 0..<suspects.count {
            let s = ring[slot(suspects[k])]
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
    /// p̂'s own bound and the wander allowance (`RateVerification`).
    private mutating func verifyRate(with stamp: StoredStamp, status: inout ClockStatus) {
        let slack = periodNanosecondsPerTick * (periodErrorBound + rateWanderBound)
        guard let measured = rateVerification.check(stamp, periodNanosecondsPerTick: periodNanosecondsPerTick, slack: slack,
                                                    wander: rateWanderBound,
                                                    maximumRateErrorFraction: configuration.maximumRateErrorFraction) else { return }
        noteRateJump(measured / periodNanosecondsPerTick, at: stamp.tf)
        // From the step, or (a far server verifying for hours) from as far back as the ring holds.
        restartEpoch(from: max(epochStart, stamp.index - windows.warmUp + 1), upTo: stamp.index, rateChanged: true)
        status.insert(.rateChange)
    }

    /// Unverified-rate allowance: how far the true rate may lie from p̂ given the post-event
    /// stamps so far (relative), 0 once verified.
    private var unverifiedRate: Double {
        rateVerification.allowance(periodNanosecondsPerTick: periodNanosecondsPerTick)
    }

    /// Start a new epoch at stamp `start` (the first post-event stamp).
    private mutating func restartEpoch(from start: Int, upTo i: Int, rateChanged: Bool) {
        let keepRates = !rateChanged && !inWarmUp
        if rateChanged {
            rateVerification.end()
        } else {
            // A step leaves the rate unverified: anchor the check on the best post-event
            // stamp and start from what the event's own stamps allow.
            rateVerification.begin(periodNanosecondsPerTick: periodNanosecondsPerTick,
                                   maximumRateErrorFraction: configuration.maximumRateErrorFraction)
            for j in start...i { rateVerification.considerAnchor(ring[slot(j)]) }
            for j in start...i { rateVerification.narrow(with: ring[slot(j)]) }
        }
        epochStart = start
        synchronisedInEpoch = false
        suspects.removeAll()
        thetaValid = false
        if !keepRates {
            // A step moves offsets, not rates: p̂ (and its error) and p̂_local stay; anything
            // else starts the local rate over too.
            localPeriodValid = false
            localRateSlopeError = .infinity
        }
        minimumRTT.clearWindow()
        var epochMinimum = Int64.max
        for j in start...i {
            ring[slot(j)].suspect = false
            epochMinimum = min(epochMinimum, ring[slot(j)].rtt)
        }
        if rateChanged {
            // RTT in ticks changed meaning with the rate: restart the minimum from the epoch.
            minimumRTT.restart(fromEpochMinimum: epochMinimum)
            for j in start...i { ring[slot(j)].rttHat = epochMinimum }
        }
        for j in start..<i { minimumRTT.refillWindow(index: j, rtt: ring[slot(j)].rtt) }
        // A step re-anchors p̂'s reference on this side of it; a rate change restarts warm-up.
        period.restartEpoch(ring: ring, from: start, upTo: i, keepingRates: keepRates, rateChanged: rateChanged)
    }

    // MARK: - §5 Period

    /// p̂ from this stamp (`PeriodEstimator`). A new p̂ keeps C continuous at the counter
    /// origin, which is T_prev (§1), and stands in for p̂_local until the fits give one.
    private mutating func updatePeriod(_ i: Int, status: inout ClockStatus) {
        let outcome = period.update(ring: ring, newest: i, epochStart: epochStart, minimumRTTTicks: rttHat, status: &status)
        if outcome.updated && !localPeriodValid { localPeriodNanosecondsPerTick = periodNanosecondsPerTick }
        if outcome.warmUpEnded {
            minimumRTT.classifyServer(farServerRTTNanoseconds: configuration.farServerRTTNanoseconds,
                                      nanosecondsPerTick: periodNanosecondsPerTick,
                                      shiftNoises: configuration.levelShiftNoises,
                                      farServerShiftNoises: configuration.levelShiftFarServerNoises,
                                      timestampNoiseNanoseconds: configuration.timestampNoiseNanoseconds)
        }
    }

    // MARK: - §6 Offset

    private mutating func updateOffset(_ i: Int, status: inout ClockStatus) {
        let now = ring[slot(i)].tf
        guard let fit = offsetWindows.choose(ring: &ring, newest: i, epochStart: epochStart, frame: naiveOffsetFrame,
                                             minimumRTTTicks: rttHat, qualityLimitNanoseconds: offsetQualityLimitNanoseconds,
                                             holdsEstimate: thetaValid, slopeErrorLimit: localPeriodQualityLimit) else {
            // No stamp good enough among the newest: θ̂ is held (§6).
            if thetaValid { status.insert(.offsetQuality) }
            followLocalRate(now)
            return
        }
        let candidate = fit.offsetNanoseconds
        if thetaValid {
            let sinceUpdate = periodNanosecondsPerTick * Double(now - thetaUpdateCounter)
            // A candidate inside θ̂'s own hard bound (aged to now) cannot be insane: it is
            // consistent with everything the stamps prove. Without this, a θ̂ seeded by a
            // first stamp with a long, lopsided delay (its RTT then *was* the minimum) kept
            // every later, better candidate out for good once they differed by more than
            // the sanity minimum: the live lab saw a 1.4 ms error that stayed, inside the bound.
            let provenBound = consistentBound + rateBound * periodNanosecondsPerTick * Double(now - lastTf)
            if abs(candidate - theta) > max(offsetSanityMinimumNanoseconds + offsetSanityRate * sinceUpdate, provenBound) {
                status.insert(.offsetSanity)
                followLocalRate(now)
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
        if let slope = fit.slope {
            let candidateLocal = periodNanosecondsPerTick * (1 - slope)
            // In warm-up p̂ itself moves by more than the limit: the gate would compare
            // local rates measured against different p̂.
            // A jump counts only beyond what the slope's own noise explains.
            // Two candidates in a row that agree confirm a real change of rate.
            let limit = localPeriodSanityLimit + fitAgreementFactor * fit.slopeError
            let confirmed = abs(candidateLocal / lastLocalPeriodCandidate - 1) <= limit
            lastLocalPeriodCandidate = candidateLocal
            if localPeriodValid && !inWarmUp && !confirmed && abs(candidateLocal / localPeriodNanosecondsPerTick - 1) > limit {
                status.insert(.localPeriodSanity)
                noteRateJump(candidateLocal / localPeriodNanosecondsPerTick, at: now)
            } else {
                localPeriodNanosecondsPerTick = candidateLocal
                localPeriodValid = true
                localRateIsSignificant = abs(slope) > fitAgreementFactor * fit.slopeError
                localRateSlopeError = fit.slopeError
            }
        }
        thetaUpdateCounter = now
        thetaAtUpdate = theta
        errorAtUpdate = fit.standardErrorNanoseconds
    }

    /// §6: a stamp further than this above the minimum RTT carries no weight, and θ̂ is held
    /// while the newest stamps are all so.
    private var offsetQualityLimitNanoseconds: Double {
        (farServer ? 2 : 1) * configuration.offsetQualityNoises * configuration.timestampNoiseNanoseconds
    }

    /// θ̂ while no candidate is taken: extrapolated from its last estimate at the local rate
    /// when that rate differs from p̂ beyond its own noise, else held (the clock runs on p̂).
    /// Over a long hold (a level shift not yet declared) a noisy slope would cost more than it gains.
    private mutating func followLocalRate(_ now: Int64) {
        guard thetaValid, localPeriodValid, localRateIsSignificant else { return }
        theta = thetaAtUpdate - (localPeriodNanosecondsPerTick / periodNanosecondsPerTick - 1) * periodNanosecondsPerTick * Double(now - thetaUpdateCounter)
    }

    /// θ_j = [C(Ta) + C(Tf)]/2 − (Tb + Te)/2 with the current C (§2), in ns.
    private func naiveOffset(_ s: StoredStamp) -> Double { naiveOffsetFrame.naiveOffset(s) }

    /// The frame of `naiveOffset`: the current C.
    private var naiveOffsetFrame: NaiveOffsetFrame {
        NaiveOffsetFrame(periodNanosecondsPerTick: periodNanosecondsPerTick, kNanoseconds: kNanoseconds,
                         kFraction: kFraction, counterOrigin: counterOrigin)
    }

    /// Half-width of a stamp's hard offset interval: the server's stamps lie between Ta and
    /// Tf, so θ_j is within RTT/2 of C's offset, plus δ·RTT for C's drift across the RTT.
    private func halfWidth(_ rtt: Int64, _ delta: Double) -> Double {
        periodNanosecondsPerTick * Double(rtt) * (0.5 + delta)
    }

    /// δ: hard bound on the rate error used to age offsets and the bound (§8.2).
    private var rateBound: Double {
        min(periodErrorBound + abs(localPeriodNanosecondsPerTick / periodNanosecondsPerTick - 1) + rateWanderBound + unverifiedRate,
            configuration.maximumRateErrorFraction)
    }

    /// Remembers a rate jump of relative size |ratio − 1| (either direction) seen at `counter`.
    private mutating func noteRateJump(_ ratio: Double, at counter: Int64) {
        rateJumps.note(ratio, at: counter, nanosecondsPerTick: periodNanosecondsPerTick)
    }

    /// The observed-jump allowance at `counter` (§8.2).
    private func rateJumpAllowance(at counter: Int64) -> Double {
        rateJumps.allowance(at: counter, nanosecondsPerTick: periodNanosecondsPerTick)
    }

    /// The rate the pending suspects imply, beyond p̂ (§8.1, §8.2): 0 with none.
    private func pendingRate() -> Double {
        guard !suspects.isEmpty else { return 0 }
        let newest = ring[slot(suspects.newest)]
        if suspects.count >= 2, let fitted = period.pairPeriod(ring[slot(suspects.oldest)], newest) {
            return abs(fitted.period / periodNanosecondsPerTick - 1) + fitted.bound
        }
        return configuration.maximumRateErrorFraction
    }

    // MARK: - §7 Publication and §8.2 the hard bound

    private mutating func publish(_ i: Int, stamp: Stamp, previous: ClockParameters, eventDeclared: Bool,
                                  status incoming: ClockStatus,
                                  nextExchangeInSeconds: Double) {
        var status = incoming
        let current = ring[slot(i)]
        let now = current.tf
        let delta = rateBound
        let localCorrection = localPeriodNanosecondsPerTick / periodNanosecondsPerTick - 1
        let low = max(epochStart, i - windows.offset + 1)

        // Hard bound from every consistent stamp in the window (§8.2).
        // Each stamp's offset is carried to now two ways, both hard: at the local rate (true
        // rate within δ of it) and at p̂ (true rate within p̂'s bound and the wander of it),
        // which is the tighter one when the local rate is noisy.
        var bound = Double.infinity
        let longTermDelta = min(periodErrorBound + rateWanderBound + unverifiedRate,
                                configuration.maximumRateErrorFraction)
        // Slots step up without a division: the loop runs over the 64-stamp window per update.
        let ringCount = ring.count
        var k = slot(low)
        for _ in low...i {
            let s = ring[k]
            k = k + 1 == ringCount ? 0 : k + 1
            if s.suspect { continue }
            let age = periodNanosecondsPerTick * Double(now - s.tf)
            let naive = naiveOffset(s)
            let value = naive - localCorrection * age
            let spread = halfWidth(s.rtt, delta)
            bound = min(bound, abs(theta - value) + spread + delta * age,
                        abs(theta - naive) + spread + longTermDelta * age)
        }
        // The previous bound, aged, also holds for the previous Ca; add how far Ca moved.
        // Not across a clock event: the event proved that bound's premise wrong.
        if hasLast, !eventDeclared, previous.maxErrorNanoseconds.isFinite, consistentBound.isFinite {
            let oldNow = previous.absoluteTimeParts(atCounter: now)
            let newNow = caParts(atCounter: now)
            let moved = Double(newNow.nanoseconds - oldNow.nanoseconds) + (newNow.fraction - oldNow.fraction)
            let aged = consistentBound + previous.maxErrorGrowthRate * periodNanosecondsPerTick * Double(now - lastTf)
            bound = min(bound, aged + abs(moved))
        }
        consistentBound = bound
        var published = bound
        for k in 0..<suspects.count {
            let s = ring[slot(suspects[k])]
            let age = periodNanosecondsPerTick * Double(now - s.tf)
            let spread = halfWidth(s.rtt, delta)
            published = max(published, abs(theta - naiveOffset(s)) + spread + delta * age)
        }
        published += Double(current.serverErrorNanoseconds)

        // §8.4: synchronised once the hard bound is within `synchronisedBoundFactor` of what the
        // path itself allows (the best stamp's RTT/2, the server's own error, the timestamp
        // noise): the estimate's own uncertainty is then no larger than the path's. A bound
        // under `synchronisedBoundMinimumNanoseconds` always qualifies, and a synchronised
        // epoch holds while its bound stays within `synchronisedHoldFactor` of that allowance.
        // Warm-up is reported only while it still matters, before that.
        let epochCount = i - epochStart + 1
        let pathFloorNanoseconds = periodNanosecondsPerTick * Double(rttHat) / 2 + Double(current.serverErrorNanoseconds)
            + configuration.timestampNoiseNanoseconds
        let allowance = max(configuration.synchronisedBoundFactor * pathFloorNanoseconds,
                            configuration.synchronisedBoundMinimumNanoseconds)
        let limit = synchronisedInEpoch ? configuration.synchronisedHoldFactor * allowance : allowance
        if !suspects.isEmpty || epochCount < configuration.stampsBeforeSynchronised || !thetaValid
            || !(published <= limit) {
            status.insert(.unsynchronised)
            if inWarmUp { status.insert(.warmUp) }
        } else {
            synchronisedInEpoch = true
        }

        // Rebase C at this stamp so counter deltas stay small (§1).
        let shift = periodNanosecondsPerTick * Double(now - counterOrigin) + kFraction
        let wholeShift = shift.rounded(.down)
        kNanoseconds += Int64(wholeShift)
        kFraction = shift - wholeShift
        counterOrigin = now

        let ca = kFraction - theta
        let caWhole = ca.rounded(.down)
        let sinceUpdate = periodNanosecondsPerTick * Double(now - thetaUpdateCounter)
        let nextTicks = Int64((nextExchangeInSeconds * 1e9 / periodNanosecondsPerTick).rounded())
        // Readers run Ca at p̂_local, so between stamps their error moves at |true rate − p̂_local|.
        // δ covers that through p̂ (p̂'s bound + |p̂_local/p̂ − 1| + wander), which charges a
        // real, measured rate cycle in full even while p̂_local follows it. Out of warm-up the
        // fit's own slope interval (`fitAgreementFactor` standard errors) plus the wander also
        // covers it, and is far tighter when the rate cycles (§8.2); the smaller is aged.
        let readerDelta = inWarmUp ? delta
            : min(delta, fitAgreementFactor * localRateSlopeError + rateWanderBound + unverifiedRate)
        let growth = min(readerDelta + max(pendingRate(), rateJumpAllowance(at: now)),
                         configuration.maximumRateErrorFraction)
        parameters = ClockParameters(
            counterOrigin: now,
            timeAtOriginNanoseconds: kNanoseconds + Int64(caWhole),
            timeAtOriginFraction: ca - caWhole,
            periodSecondsPerTick: periodNanosecondsPerTick * 1e-9,
            periodError: periodError,
            periodErrorBound: periodErrorBound,
            localPeriodSecondsPerTick: (localPeriodValid ? localPeriodNanosecondsPerTick : periodNanosecondsPerTick) * 1e-9,
            offsetNanoseconds: theta,
            errorEstimateNanoseconds: errorAtUpdate + errorGrowthRate * sinceUpdate,
            maxErrorNanoseconds: published,
            maxErrorGrowthRate: max(growth, readerDelta),
            lastStampCounter: now,
            nextStampExpectedCounter: now + max(nextTicks, 1),
            leap: stamp.leap,
            status: status,
            lastRTTNanoseconds: periodNanosecondsPerTick * Double(current.rtt),
            minimumRTTNanoseconds: periodNanosecondsPerTick * Double(rttHat),
            naiveOffsetNanoseconds: naiveOffset(current),
            stampCount: Int64(stampCount))
    }

    /// Ca(T) with the working parameters (before rebasing), for bound continuity.
    private func caParts(atCounter counter: Int64) -> (nanoseconds: Int64, fraction: Double) {
        let value = periodNanosecondsPerTick * Double(counter - counterOrigin) + kFraction - theta
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
    /// Global stamp index.
    var index: Int
    /// The minimum RTT (ticks) its fit excess and weight were computed against (§6), and them.
    var fitMinimumRTTTicks: Int64? = nil
    var fitExcessNanoseconds: Double = 0
    var fitWeight: Double = 0

    /// Fills the ring before stamps arrive. Never read: a slot is read only for an index
    /// already stored (`epochStart...newest`, within the ring's capacity).
    static let unwritten = StoredStamp(ta: 0, tb: 0, te: 0, tf: 0, rtt: 0, rttHat: 0, serverErrorNanoseconds: 0,
                                       qualityWarning: false, suspect: false, index: 0)
}
