/// Selection among several servers by their hard bounds (docs/feedforward.md, "Several sources").
///
/// Every source's estimate comes with a hard bound: if the server tells the truth, the true
/// time lies inside [estimate − maxError, estimate + maxError]. Intersecting such intervals is
/// therefore rigorous: the largest set of sources whose intervals share a point (Marzullo's
/// algorithm, the intersection step of RFC 5905 §11.2.1, with closed intervals so that intervals
/// which only touch still agree) holds the truth if a majority of servers is honest, and every
/// source outside it is a falseticker: its interval cannot contain the time the majority proves.
///
/// Pure and allocation-free: at most `SourceSelection.capacity` sources, kept in fixed-size
/// inline storage.

/// Why a source takes no part in the vote at this instant.
public enum SourceCondition: UInt8, Sendable, Equatable, CustomStringConvertible {
    /// Synchronised, fresh, no pending clock event: its interval votes.
    case usable
    /// Its last stamps disagree with its own estimate (a suspected clock event, §8.1): its
    /// estimate votes for nothing, but its last stamp can still prove it a falseticker.
    case pendingEvent
    /// Its filter is not synchronised yet (start-up, or settling after a clock event).
    case unsynchronised
    /// No stamp for 10 polls (§7).
    case starving
    /// Its parameters are more than 1024 s overdue, or it has no estimate at all (§7).
    case stale

    public var description: String {
        switch self {
        case .usable: return "usable"
        case .pendingEvent: return "pending-event"
        case .unsynchronised: return "unsync"
        case .starving: return "starving"
        case .stale: return "stale"
        }
    }
}

/// One source at the instant of a selection, relative to a common reference time.
///
/// `offsetNanoseconds` is the source's corrected time Ca(T) minus a reference shared by all
/// sources at the same counter T (any one value: only differences matter), so that every
/// interval is expressed on the same axis without Unix-epoch-sized doubles.
public struct SourceInterval: Sendable, Equatable {
    /// The source's estimate of the time at T, minus the common reference, in ns. For a source
    /// with a pending event: the centre of its last stamp's hard interval instead.
    public var offsetNanoseconds: Double
    /// Half-width of the hard interval, ns: the aged maxError (§8.2), or for a source with a
    /// pending event the last stamp's own half round trip aged at its period bound.
    public var maxErrorNanoseconds: Double
    /// Statistical error estimate (§6), ns: the combination's weight.
    public var errorEstimateNanoseconds: Double
    /// Statistical relative error of the source's p̂ (§5): the period source is the best one.
    public var periodError: Double
    public var condition: SourceCondition

    public init(offsetNanoseconds: Double, maxErrorNanoseconds: Double,
                errorEstimateNanoseconds: Double, periodError: Double = 1e-6,
                condition: SourceCondition = .usable) {
        self.offsetNanoseconds = offsetNanoseconds
        self.maxErrorNanoseconds = maxErrorNanoseconds
        self.errorEstimateNanoseconds = errorEstimateNanoseconds
        self.periodError = periodError
        self.condition = condition
    }

    public static let none = SourceInterval(offsetNanoseconds: 0, maxErrorNanoseconds: .infinity,
                                            errorEstimateNanoseconds: .infinity, periodError: 1,
                                            condition: .stale)

    @inlinable public var low: Double { offsetNanoseconds - maxErrorNanoseconds }
    @inlinable public var high: Double { offsetNanoseconds + maxErrorNanoseconds }
}

/// What the vote made of one source.
public enum SourceVerdict: UInt8, Sendable, Equatable, CustomStringConvertible {
    /// In the agreeing majority: its estimate is part of the combination.
    case selected
    /// Its interval (or, with a pending event, its last stamp's) is disjoint from what the
    /// majority proves: it cannot be telling the time. Nothing of it is used.
    case falseticker
    /// Takes no part: see its `SourceCondition`.
    case unusable
    /// Usable, but no majority agrees, so no source is selected (none is picked silently).
    case candidate

    public var description: String {
        switch self {
        case .selected: return "selected"
        case .falseticker: return "falseticker"
        case .unusable: return "unusable"
        case .candidate: return "candidate"
        }
    }
}

/// The vote's outcome for the combined clock.
public enum SelectionOutcome: Sendable, Equatable, CustomStringConvertible {
    /// A majority of `agreeing` sources shares a point; the clock is synchronised.
    case synchronised(agreeing: Int)
    /// No source is usable at all.
    case noUsableSource
    /// The largest agreeing set is smaller than `minimumSources`.
    case noMajority(largestAgreeing: Int, needed: Int)
    /// Two or more disjoint sets of the same, largest size agree among themselves: the
    /// intervals cannot say which one holds the truth.
    case ambiguous(largestAgreeing: Int)

    public var isSynchronised: Bool {
        if case .synchronised = self { return true }
        return false
    }

    /// One line saying why the clock is or is not synchronised.
    public var description: String {
        switch self {
        case .synchronised(let n): return "synchronised: \(n) sources agree"
        case .noUsableSource: return "unsynchronised: no source is usable"
        case .noMajority(let largest, let needed):
            return "unsynchronised: no majority, at most \(largest) sources agree and \(needed) are needed"
        case .ambiguous(let largest):
            return "unsynchronised: separate groups of \(largest) sources disagree with each other and none is larger"
        }
    }
}

/// The result of one vote, and the combination of the survivors (docs/feedforward.md,
/// "Several sources").
public struct SourceSelection: Sendable {
    /// Most sources one selection takes; a client configures 1 to this many.
    public static let capacity = 8

    public var outcome: SelectionOutcome
    /// Per source, in input order (first `count` entries meaningful).
    public var verdicts: InlineArray<8, SourceVerdict>
    public var count: Int
    /// The intersection of the selected sources' intervals: the truth lies in it.
    public var intersectionLowNanoseconds: Double
    public var intersectionHighNanoseconds: Double
    /// The combined estimate, on the inputs' common axis.
    public var offsetNanoseconds: Double
    /// Its hard bound: the farther edge of the intersection from the estimate. Never wider than
    /// the best survivor's own bound, never narrower than the intersection proves.
    public var maxErrorNanoseconds: Double
    /// Statistical error of the weighted mean, assuming independent paths.
    public var errorEstimateNanoseconds: Double
    /// Index of the survivor whose p̂ the combined clock runs on; nil when none survived.
    public var periodSource: Int?

    public init(count: Int) {
        outcome = .noUsableSource
        verdicts = InlineArray(repeating: .unusable)
        self.count = count
        intersectionLowNanoseconds = -.infinity
        intersectionHighNanoseconds = .infinity
        offsetNanoseconds = 0
        maxErrorNanoseconds = .infinity
        errorEstimateNanoseconds = .infinity
        periodSource = nil
    }

    /// Votes among the first `count` intervals and combines the survivors.
    ///
    /// - `minimumSources`: agreeing sources needed before the clock is synchronised (at least 1);
    ///   a client defaults it to a majority of the sources it configured.
    /// - `previousPeriodSource`: the period source of the last selection; it stays the period
    ///   source while it survives and its period error is within twice the best, so the
    ///   difference clock does not flip between sources of equal quality.
    public static func select(_ intervals: InlineArray<8, SourceInterval>, count: Int,
                              minimumSources: Int, previousPeriodSource: Int? = nil) -> SourceSelection {
        let n = min(max(count, 0), capacity)
        var result = SourceSelection(count: n)
        var usableCount = 0
        for i in 0..<n where intervals[i].condition == .usable && intervals[i].maxErrorNanoseconds.isFinite {
            usableCount += 1
        }
        if usableCount == 0 { return result }

        // Marzullo: sweep the 2·n endpoints in order, starts before ends at equal positions so
        // that touching closed intervals count as sharing their common point.
        var positions = InlineArray<16, Double>(repeating: 0)
        var kinds = InlineArray<16, Int8>(repeating: 0)   // −1: start, +1: end
        var m = 0
        for i in 0..<n where intervals[i].condition == .usable && intervals[i].maxErrorNanoseconds.isFinite {
            positions[m] = intervals[i].low; kinds[m] = -1; m += 1
            positions[m] = intervals[i].high; kinds[m] = 1; m += 1
        }
        // Insertion sort: at most 16 endpoints.
        var a = 1
        while a < m {
            let p = positions[a], k = kinds[a]
            var b = a - 1
            while b >= 0 && (positions[b] > p || (positions[b] == p && kinds[b] > k)) {
                positions[b + 1] = positions[b]; kinds[b + 1] = kinds[b]; b -= 1
            }
            positions[b + 1] = p; kinds[b + 1] = k
            a += 1
        }
        var depth = 0, best = 0, regions = 0
        var low = 0.0, high = 0.0
        for e in 0..<m {
            if kinds[e] < 0 {
                depth += 1
                if depth > best {
                    best = depth; regions = 1
                    low = positions[e]; high = positions[e + 1]
                } else if depth == best {
                    regions += 1
                }
            } else {
                depth -= 1
            }
        }
        let needed = max(1, minimumSources)
        if best < needed {
            result.outcome = .noMajority(largestAgreeing: best, needed: needed)
        } else if regions > 1 {
            result.outcome = .ambiguous(largestAgreeing: best)
        } else {
            result.outcome = .synchronised(agreeing: best)
            result.intersectionLowNanoseconds = low
            result.intersectionHighNanoseconds = high
        }

        guard result.outcome.isSynchronised else {
            for i in 0..<n where intervals[i].condition == .usable && intervals[i].maxErrorNanoseconds.isFinite {
                result.verdicts[i] = .candidate
            }
            return result
        }

        // Survivors contain the whole intersection; every other source is a falseticker. A
        // source with a pending event is proven one when its last stamp misses the intersection.
        var weightSum = 0.0, weightedSum = 0.0
        var bestBound = Double.infinity
        var periodSource: Int? = nil
        for i in 0..<n {
            let s = intervals[i]
            switch s.condition {
            case .usable where s.maxErrorNanoseconds.isFinite:
                if s.low <= low && s.high >= high {
                    result.verdicts[i] = .selected
                    let error = max(s.errorEstimateNanoseconds, 1)
                    let weight = 1 / (error * error)
                    weightSum += weight
                    weightedSum += weight * s.offsetNanoseconds
                    bestBound = min(bestBound, s.maxErrorNanoseconds)
                    if periodSource.map({ s.periodError < intervals[$0].periodError }) ?? true { periodSource = i }
                } else {
                    result.verdicts[i] = .falseticker
                }
            case .pendingEvent where s.high < low || s.low > high:
                result.verdicts[i] = .falseticker
            default:
                result.verdicts[i] = .unusable
            }
        }
        if let previous = previousPeriodSource, let best = periodSource, previous >= 0, previous < n,
           result.verdicts[previous] == .selected,
           intervals[previous].periodError <= 2 * intervals[best].periodError {
            periodSource = previous
        }
        result.periodSource = periodSource

        // Weighted mean, kept where the bound it earns is no wider than the best survivor's:
        // inside [high − bestBound, low + bestBound] ∩ [low, high] (non-empty, since the best
        // survivor's interval, of half-width bestBound, contains the intersection).
        var estimate = weightedSum / weightSum
        estimate = min(max(estimate, max(low, high - bestBound)), min(high, low + bestBound))
        result.offsetNanoseconds = estimate
        result.maxErrorNanoseconds = max(estimate - low, high - estimate)
        result.errorEstimateNanoseconds = (1 / weightSum).squareRoot()
        return result
    }
}
