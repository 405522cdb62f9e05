// §6 of docs/feedforward.md: the offset θ̂ and the local rate come from weighted fits over
// windows of the newest stamps, and the data choose the window. This room holds that choice
// and its state; the filter hands it the stamp ring and the frame the naive offsets are
// measured in, and takes back one fit.

/// The frame naive offsets are computed in (§2): θ_j = [C(Ta) + C(Tf)]/2 − (Tb + Te)/2 with
/// C(T) = p̂·(T − origin) + K, K split into whole ns and a fraction for precision.
struct NaiveOffsetFrame {
    var periodNanosecondsPerTick: Double
    var kNanoseconds: Int64
    var kFraction: Double
    var counterOrigin: Int64

    /// θ_j of stamp `s` in this frame, in ns: the one definition the filter uses, also in its
    /// hot loop (inlined, so the frame's fields are read once per update).
    @inline(__always)
    func naiveOffset(_ s: StoredStamp) -> Double {
        let receive = Double(kNanoseconds - s.tb)
        let transmit = Double(kNanoseconds - s.te)
        let counterPart = periodNanosecondsPerTick * (Double(s.ta - counterOrigin) + Double(s.tf - counterOrigin)) / 2
        return (receive + transmit) / 2 + kFraction + counterPart
    }
}

/// §6: fits of naive offsets against time over windows of 8, 16, 32, … stamps ending at the
/// newest, and the intersection of their confidence intervals that picks one. Allocates its
/// scratch once; an update allocates nothing.
struct OffsetWindowChoice: Sendable {
    let configuration: FeedforwardConfiguration
    /// Shortest window in stamps: `fitShortestWindowSeconds` of stamps, at least 3.
    let minimumStamps: Int
    /// Longest window in stamps (`fitLongestWindowStamps`).
    let maximumStamps: Int
    /// `fitNoiseReferenceStamps` and `fitMinimumNoiseScale`.
    let noiseReferenceStamps: Int
    let minimumNoiseScale: Double
    /// How far the stamps scatter relative to what their weights say (1: as modelled),
    /// from the newest stamps' second differences at the previous update.
    private(set) var noiseScale = 1.0
    /// Share of the newest `noiseReferenceStamps` usable stamps that were queued, from the
    /// last update: above `queuedPathShare` the window choice takes the wider margin.
    private(set) var queuedStampShare = 0.0
    /// The margin of the window choice at this update: `fitAgreementFactor` on a path that
    /// queues, `fitAgreementQuietFactor` on a quiet one.
    var windowAgreementFactor: Double {
        queuedStampShare > configuration.queuedPathShare ? configuration.fitAgreementFactor : configuration.fitAgreementQuietFactor
    }
    // Candidate fits of the current update and their order, allocated once.
    private var candidates = [FitLine](repeating: FitLine(), count: 40)
    private var offsetOrder = [Int](repeating: 0, count: 40)
    private var slopeOrder = [Int](repeating: 0, count: 40)

    init(configuration: FeedforwardConfiguration) {
        self.configuration = configuration
        minimumStamps = max(3, Int((configuration.fitShortestWindowSeconds / max(configuration.pollPeriodSeconds, 1e-3)).rounded()))
        maximumStamps = configuration.fitLongestWindowStamps
        noiseReferenceStamps = max(3, configuration.fitNoiseReferenceStamps)
        minimumNoiseScale = configuration.fitMinimumNoiseScale
    }

    /// The chosen fit of naive offsets against time over the newest stamps (§6).
    struct OffsetFit {
        var offsetNanoseconds: Double
        /// dθ/dt, dimensionless (ns per ns); nil when no window spans enough stamps.
        var slope: Double?
        /// Standard error of `slope`, dimensionless.
        var slopeError: Double = .infinity
        var standardErrorNanoseconds: Double
        var smallestPointErrorNanoseconds: Double
    }

    /// Puts candidate `index` (the newest) into `order`, the first `index` candidates sorted
    /// by decreasing offset error (`slopes` false) or slope error, after those with the same
    /// error: an insertion sort, one element per call.
    private static func insert(_ index: Int, into order: inout [Int], of candidates: [FitLine], slopes: Bool) {
        let key = slopes ? candidates[index].slopeError : candidates[index].offsetError
        var m = index
        while m > 0 {
            let previous = candidates[order[m - 1]]
            guard (slopes ? previous.slopeError : previous.offsetError) < key else { break }
            order[m] = order[m - 1]
            m -= 1
        }
        order[m] = index
    }

    /// The intersection of confidence intervals over the first `count` candidates, for the
    /// offsets (`slopes` false) or the slopes: taken in order of decreasing error, the index of
    /// the last one whose interval value ± `windowAgreementFactor`·error still meets all before
    /// it, and whether a later one already failed to.
    private func intersectIntervals(_ count: Int, slopes: Bool) -> (index: Int, closed: Bool) {
        let order = slopes ? slopeOrder : offsetOrder
        var low = -Double.infinity, high = Double.infinity
        var best = order[0]
        let factor = windowAgreementFactor
        for k in 0..<count {
            let c = candidates[order[k]]
            let e = slopes ? c.slopeError : c.offsetError
            guard e.isFinite else { continue }
            let value = slopes ? c.slope : c.offset
            low = max(low, value - factor * e)
            high = min(high, value + factor * e)
            if low > high { return (best, true) }
            best = order[k]
        }
        return (best, false)
    }

    /// §6: weighted local linear regression of θ_j against time over windows of 8, 16, 32, …
    /// stamps ending at the newest. Each stamp weighs 1/(σ₀² + excess²/12): its offset lies
    /// within half its excess RTT of the truth, spread like a uniform variable, plus the
    /// timestamping noise σ₀. The offset comes from the longest window whose offset at now
    /// agrees with every shorter window's within `windowAgreementFactor` of the shorter one's
    /// standard error (Lepski's rule): longer windows average noise away until the rate's
    /// curvature makes them disagree with the short ones. The local rate is chosen the same
    /// way among the windows' slopes (longer: a slope is noisier than an offset).
    ///
    /// The chosen offset and slope at stamp `i` of `ring` (indices count stamps; the ring holds
    /// them modulo its size), from the stamps of the epoch that began at `epochStart`; nil
    /// when no stamp among the newest `fitShortestWindowSeconds` is good enough and an estimate
    /// already exists (`holdsEstimate`), which is then held. Each stamp's weight is cached in
    /// the ring until the minimum RTT changes.
    mutating func choose(ring: inout [StoredStamp], newest i: Int, epochStart: Int, frame: NaiveOffsetFrame,
                         minimumRTTTicks: Int64, qualityLimitNanoseconds: Double, holdsEstimate: Bool,
                         slopeErrorLimit: Double) -> OffsetFit? {
        let now = ring[i % ring.count].tf
        let oldest = max(epochStart, i - maximumStamps + 1)
        let noise = configuration.timestampNoiseNanoseconds * configuration.bestStampNoiseShare
        let noiseVariance = noise * noise
        var sums = FitSums()
        var smallest = Double.infinity
        var smallestOffset = 0.0
        var nextBoundary = minimumStamps
        var windowCount = 0
        var candidateCount = 0
        var closedSpan: Int? = nil
        var offsetChoice = (index: 0, closed: false), slopeChoice = (index: 0, closed: false)
        // Noise scale from second differences (a stamp against the line through its two
        // neighbours), which neither a rate nor its slow change can inflate.
        var scaleSum = 0.0, scaleCount = 0
        var recentCount = 0, recentQueued = 0
        let queuedExcess = configuration.queuedStampExcessNoises * configuration.timestampNoiseNanoseconds
        var newer = (x: 0.0, y: 0.0, v: 0.0), newest = (x: 0.0, y: 0.0, v: 0.0)
        var j = i
        // One pass from the newest stamp back, keeping the sums at each window's end. The
        // loop is the update's hot path: slots step down without a division, and the naive
        // offset is the frame's one definition, inlined.
        var recentUsable = 0
        let ringCount = ring.count
        var k = i % ringCount
        let p = frame.periodNanosecondsPerTick
        let minimum = minimumRTTTicks, qualityLimit = qualityLimitNanoseconds
        let secondsPerTick = p * 1e-9
        while j >= oldest {
            var s = ring[k]
            // Against the lower of the minimum then and now: a stamp that was the minimum
            // when it came (the first of an epoch) is judged by what came after it too.
            // Its excess and weight are kept with it until that minimum changes.
            let hat = min(s.rttHat, minimum)
            if hat != s.fitMinimumRTTTicks {
                s.fitMinimumRTTTicks = hat
                s.fitExcessNanoseconds = p * Double(s.rtt - hat)
                s.fitWeight = 1 / (noiseVariance + s.fitExcessNanoseconds * s.fitExcessNanoseconds / 12)
                ring[k] = s
            }
            k = k == 0 ? ringCount - 1 : k - 1
            let excess = s.fitExcessNanoseconds
            // A stamp far above the minimum says nothing about the offset that its neighbours
            // do not say better (and a level shift not yet declared makes every new stamp so):
            // it takes no part in the fit.
            if !s.qualityWarning && !s.suspect && excess < qualityLimit {
                let y = frame.naiveOffset(s)
                if excess < smallest { smallest = excess; smallestOffset = y }
                if i - j < minimumStamps { recentUsable += 1 }
                let x = secondsPerTick * Double(s.tf - now)
                let w = s.fitWeight
                sums.add(x: x, y: y, weight: w, excessNanoseconds: excess)
                // The newest stamps also measure the noise scale and the path's queueing
                // (the loop only moves away from them, so the rest skip this).
                if i - j < noiseReferenceStamps {
                    let v = 1 / w
                    recentCount += 1
                    if excess > queuedExcess { recentQueued += 1 }
                    if sums.count >= 3 && newest.x > x {
                        let alpha = (newer.x - x) / (newest.x - x)      // weight of the newest in the line at newer.x
                        let d = newer.y - (alpha * newest.y + (1 - alpha) * y)
                        scaleSum += d * d / (newer.v + alpha * alpha * newest.v + (1 - alpha) * (1 - alpha) * v)
                        scaleCount += 1
                    }
                    newest = newer
                    newer = (x, y, v)
                }
            }
            let span = i - j + 1
            j -= 1
            guard span == nextBoundary || j < oldest else { continue }
            nextBoundary *= 2
            guard sums.count >= minimumStamps else { continue }
            windowCount += 1
            // Intersection of confidence intervals: every window gives a line and (from
            // `fitParabolaMinimumStamps`) a parabola; taken from the least to the most precise,
            // each estimate must share a value with all before it, else the longer windows see
            // curvature or a change. Longer windows are more precise, so once neither the
            // offsets' nor the slopes' intersection can take more, the scan stops.
            var linear = sums.line(scale: noiseScale)
            linear.smallestExcessNanoseconds = sums.smallestExcessNanoseconds
            candidates[candidateCount] = linear
            Self.insert(candidateCount, into: &offsetOrder, of: candidates, slopes: false)
            Self.insert(candidateCount, into: &slopeOrder, of: candidates, slopes: true)
            candidateCount += 1
            if sums.count >= configuration.fitParabolaMinimumStamps, var parabola = sums.parabola(scale: noiseScale) {
                parabola.smallestExcessNanoseconds = sums.smallestExcessNanoseconds
                candidates[candidateCount] = parabola
                Self.insert(candidateCount, into: &offsetOrder, of: candidates, slopes: false)
                Self.insert(candidateCount, into: &slopeOrder, of: candidates, slopes: true)
                candidateCount += 1
            }
            offsetChoice = intersectIntervals(candidateCount, slopes: false)
            slopeChoice = intersectIntervals(candidateCount, slopes: true)
            // (Two windows more than needed: a parabola's error can exceed a longer line's.)
            if offsetChoice.closed && slopeChoice.closed {
                closedSpan = closedSpan ?? span
                if let closedSpan, span >= 4 * closedSpan, i - j >= noiseReferenceStamps { break }
            }
        }
        // The noise scale for the next update, from this one's second differences.
        if scaleCount > 0 { noiseScale = max(scaleSum / Double(scaleCount), minimumNoiseScale) }
        // And whether the path queues, for the next update's margin.
        if recentCount > 0 { queuedStampShare = Double(recentQueued) / Double(recentCount) }
        // No usable stamp among the newest: θ̂ is held (§6's quality gate).
        guard recentUsable > 0 || !holdsEstimate else { return nil }
        guard smallest.isFinite else { return nil }
        guard windowCount > 0 else {
            // Too few stamps for a line: their weighted mean, on p̂.
            guard sums.s0 > 0 else {
                return OffsetFit(offsetNanoseconds: smallestOffset, slope: nil,
                                 standardErrorNanoseconds: smallest, smallestPointErrorNanoseconds: smallest)
            }
            return OffsetFit(offsetNanoseconds: sums.sy / sums.s0, slope: nil,
                             standardErrorNanoseconds: (1 / sums.s0).squareRoot(), smallestPointErrorNanoseconds: smallest)
        }
        let chosen = candidates[offsetChoice.index]
        let slopeFit = candidates[slopeChoice.index]
        let slope = slopeFit.slope
        let slopeError = slopeFit.slopeError * 1e-9
        return OffsetFit(offsetNanoseconds: chosen.offset, slope: slopeError <= slopeErrorLimit ? slope * 1e-9 : nil,
                         slopeError: slopeError,
                         standardErrorNanoseconds: chosen.offsetError,
                         smallestPointErrorNanoseconds: chosen.smallestExcessNanoseconds)
    }
}
