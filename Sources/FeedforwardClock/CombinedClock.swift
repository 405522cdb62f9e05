/// One clock from several sources' feedforward filters (docs/feedforward.md, "Several sources").
///
/// Each source has its own filter over the same raw counter, so at any counter T every source
/// offers Ca_i(T) with its hard bound. `CombinedClock` turns those parameters into intervals on a
/// common axis, votes with `SourceSelection`, and publishes one `ClockParameters` that readers
/// use exactly like a single source's. Pure: the caller passes every source's latest parameters.
public struct CombinedClock: Sendable {
    /// Agreeing sources needed to call the clock synchronised.
    public let minimumSources: Int
    /// The last published combination (`.empty` until a majority first agreed).
    public private(set) var parameters: ClockParameters = .empty
    /// The last vote.
    public private(set) var selection = SourceSelection(count: 0)
    /// Each source's condition at the last vote.
    public private(set) var conditions = InlineArray<8, SourceCondition>(repeating: .stale)

    /// A majority of `configured` sources: more than half must agree.
    public static func majority(of configured: Int) -> Int { configured / 2 + 1 }

    public init(minimumSources: Int) {
        self.minimumSources = max(1, minimumSources)
    }

    /// What a source's parameters say about it at `counter` (§7, §8.1).
    public static func condition(of source: ClockParameters, atCounter counter: Int64) -> SourceCondition {
        let status = source.status(atCounter: counter)
        if status.contains(.noEstimate) || source.freshness(atCounter: counter) == .unusable { return .stale }
        if status.contains(.eventSuspected) { return .pendingEvent }
        if status.contains(.starving) { return .starving }
        if status.contains(.unsynchronised) { return .unsynchronised }
        return .usable
    }

    /// The source's interval at `counter` relative to `reference` (whole Unix ns).
    ///
    /// Usable: Ca(T) ± maxError aged to T (§8.2). Pending event: the last stamp's own hard
    /// interval, θ̂ − θ_j ± RTT_j/2 from Ca at the stamp (§8.1), aged at the period bound, since
    /// the estimate itself then covers the suspects and proves nothing; it can only mark the
    /// source a falseticker, never select it. The stamp's root delay and dispersion are not
    /// published, so a stratum-2+ server's pending stamp is judged on its path alone.
    public static func interval(of source: ClockParameters, atCounter counter: Int64,
                                reference: Int64, condition: SourceCondition) -> SourceInterval {
        let now = source.absoluteTimeParts(atCounter: counter)
        let offset = Double(now.nanoseconds &- reference) + now.fraction
        switch condition {
        case .usable:
            return SourceInterval(offsetNanoseconds: offset, maxErrorNanoseconds: source.maxError(atCounter: counter),
                                  errorEstimateNanoseconds: source.errorEstimateNanoseconds,
                                  periodError: source.periodError, condition: .usable)
        case .pendingEvent:
            let elapsed = max(0, source.periodSecondsPerTick * 1e9 * Double(counter &- source.lastStampCounter))
            let centre = offset + (source.offsetNanoseconds - source.naiveOffsetNanoseconds)
            return SourceInterval(offsetNanoseconds: centre,
                                  maxErrorNanoseconds: source.lastRTTNanoseconds / 2 + source.periodErrorBound * elapsed,
                                  errorEstimateNanoseconds: .infinity, periodError: 1, condition: .pendingEvent)
        default:
            var none = SourceInterval.none
            none.condition = condition
            return none
        }
    }

    /// Votes at `counter` (normally the Tf of the stamp that just updated `updatedSource`) and
    /// publishes the combination. Returns the new vote.
    ///
    /// Synchronised: Ca(T) is the weighted estimate, p̂ and p̂_local come from the period source,
    /// the bound is the selection's, and it ages at the smallest rate any survivor justifies
    /// (its own growth rate plus the gap between its p̂_local and the one the clock now runs on).
    /// Otherwise the last combination stays published, marked unsynchronised, and
    /// `selection.outcome` says why.
    @discardableResult
    public mutating func update(sources: InlineArray<8, ClockParameters>, count: Int,
                                atCounter counter: Int64, updatedSource: Int) -> SourceSelection {
        let n = min(max(count, 0), SourceSelection.capacity)
        var reference: Int64 = 0
        var haveReference = false
        for i in 0..<n where !sources[i].status.contains(.noEstimate) {
            reference = sources[i].absoluteTime(atCounter: counter)
            haveReference = true
            break
        }
        var intervals = InlineArray<8, SourceInterval>(repeating: .none)
        for i in 0..<n {
            let condition = CombinedClock.condition(of: sources[i], atCounter: counter)
            conditions[i] = condition
            if haveReference {
                intervals[i] = CombinedClock.interval(of: sources[i], atCounter: counter,
                                                      reference: reference, condition: condition)
            }
        }
        let vote = SourceSelection.select(intervals, count: n, minimumSources: minimumSources,
                                          previousPeriodSource: selection.periodSource)
        selection = vote
        guard vote.outcome.isSynchronised, let periodSource = vote.periodSource else {
            parameters.status.insert(.unsynchronised)
            return vote
        }

        let base = sources[periodSource]
        var growth = Double.infinity
        var nextExpected = counter
        var stamps: Int64 = 0
        for i in 0..<n {
            stamps += sources[i].stampCount
            guard vote.verdicts[i] == .selected else { continue }
            let s = sources[i]
            growth = min(growth, s.maxErrorGrowthRate + abs(base.localPeriodSecondsPerTick / s.localPeriodSecondsPerTick - 1))
            nextExpected = max(nextExpected, s.nextStampExpectedCounter)
        }
        let whole = vote.offsetNanoseconds.rounded(.down)
        let combinedTime = reference &+ Int64(whole)
        // θ̂ on the period source's uncorrected clock: C_b − θ̂ = combined Ca at T.
        let baseNow = base.absoluteTimeParts(atCounter: counter)
        let shift = Double(baseNow.nanoseconds &- combinedTime) + (baseNow.fraction - (vote.offsetNanoseconds - whole))
        let updated = sources[min(max(updatedSource, 0), n - 1)]
        var status: ClockStatus = []
        if base.status.contains(.warmUp) { status.insert(.warmUp) }
        parameters = ClockParameters(
            counterOrigin: counter,
            timeAtOriginNanoseconds: combinedTime,
            timeAtOriginFraction: vote.offsetNanoseconds - whole,
            periodSecondsPerTick: base.periodSecondsPerTick,
            periodError: base.periodError,
            periodErrorBound: base.periodErrorBound,
            localPeriodSecondsPerTick: base.localPeriodSecondsPerTick,
            offsetNanoseconds: base.offsetNanoseconds + shift,
            errorEstimateNanoseconds: vote.errorEstimateNanoseconds,
            maxErrorNanoseconds: vote.maxErrorNanoseconds,
            maxErrorGrowthRate: growth,
            lastStampCounter: counter,
            nextStampExpectedCounter: nextExpected,
            leap: base.leap,
            status: status,
            lastRTTNanoseconds: updated.lastRTTNanoseconds,
            minimumRTTNanoseconds: updated.minimumRTTNanoseconds,
            naiveOffsetNanoseconds: updated.naiveOffsetNanoseconds,
            stampCount: stamps)
        return vote
    }
}
