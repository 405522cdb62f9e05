import Maths

// The filter's components that keep state of their own across stamps (docs/feedforward.md
// §4, §8.1, §8.2): the minimum RTT and its level shifts, the suspects of a clock event, the
// rate verification after a step and the memory of rate jumps. The clock itself (K, p̂, θ̂)
// stays in `FeedforwardClock`, which owns the stamp history these work over. Plain values,
// storage allocated once: an update allocates nothing.

/// §4: the minimum RTT (RTThat, in counter ticks) over the current and the previous half of
/// the history, and upward level shifts: a whole shift window above the old minimum.
struct MinimumRTT: Sendable {
    /// RTThat in ticks; `.max` before the first stamp.
    private(set) var ticks: Int64 = .max
    private var currentGeneration: Int64 = .max
    private var previousGeneration: Int64 = .max
    private var window: SlidingMinimum
    private let windowStamps: Int
    /// How far (ns) the window's minimum must rise above RTThat to be a shift; set when warm-up
    /// ends, infinite before.
    private(set) var shiftThresholdNanoseconds: Double = .infinity
    /// The server is far (RTT ≥ `farServerRTTNanoseconds`): its thresholds are wider.
    private(set) var farServer = false

    init(shiftWindowStamps: Int) {
        windowStamps = shiftWindowStamps
        window = SlidingMinimum(capacity: shiftWindowStamps + 1)
    }

    /// Every history/2 stamps the older generation's minimum is forgotten (§4).
    mutating func rotateGeneration() {
        previousGeneration = currentGeneration
        currentGeneration = .max
    }

    /// Adds stamp `index`'s RTT. With `detectShifts`, returns the new minimum when the whole
    /// window now lies more than the threshold above the old one (an upward shift), which
    /// then becomes RTThat.
    mutating func add(_ rtt: Int64, index: Int, detectShifts: Bool, nanosecondsPerTick: Double) -> Int64? {
        currentGeneration = min(currentGeneration, rtt)
        ticks = min(previousGeneration, currentGeneration)
        window.push(index: index, key: rtt)
        window.dropBefore(index - windowStamps + 1)
        guard detectShifts, let windowMinimum = window.minimumKey,
              nanosecondsPerTick * Double(windowMinimum - ticks) > shiftThresholdNanoseconds else { return nil }
        ticks = windowMinimum
        currentGeneration = windowMinimum
        previousGeneration = windowMinimum
        return windowMinimum
    }

    /// At the end of warm-up RTThat says how far the server is (§4).
    mutating func classifyServer(farServerRTTNanoseconds: Double, nanosecondsPerTick: Double,
                                 shiftNoises: Double, farServerShiftNoises: Double, timestampNoiseNanoseconds: Double) {
        farServer = nanosecondsPerTick * Double(ticks) >= farServerRTTNanoseconds
        shiftThresholdNanoseconds = (farServer ? farServerShiftNoises : shiftNoises) * timestampNoiseNanoseconds
    }

    /// A new epoch: the shift window starts empty and is refilled with `refill`.
    mutating func clearWindow() { window.reset() }
    mutating func refillWindow(index: Int, rtt: Int64) { window.push(index: index, key: rtt) }

    /// A rate change: RTT in ticks changed meaning, so the minimum restarts from the epoch's.
    mutating func restart(fromEpochMinimum minimum: Int64) {
        ticks = minimum
        currentGeneration = minimum
        previousGeneration = .max
    }
}

/// §8.1: the indices of stamps that disagree with the estimate beyond its hard bound, oldest
/// first, at most `capacity`; a full queue drops its oldest.
struct SuspectQueue: Sendable {
    private var indices: [Int]
    private(set) var count = 0

    init(capacity: Int) { indices = [Int](repeating: 0, count: max(capacity, 1)) }

    var isEmpty: Bool { count == 0 }
    subscript(position: Int) -> Int { indices[position] }
    var oldest: Int { indices[0] }
    var newest: Int { indices[count - 1] }

    mutating func append(_ index: Int) {
        if count == indices.count { dropOldest() }
        indices[count] = index
        count += 1
    }

    mutating func dropOldest() {
        guard count > 0 else { return }
        for k in 1..<count { indices[k - 1] = indices[k] }
        count -= 1
    }

    mutating func removeAll() { count = 0 }
}

/// §8.1: after a step-only event the rate is unverified (a migration moves to another counter,
/// so steps and rate changes come together). Every post-event stamp paired with the anchor
/// (the best post-event stamp) bounds the true period; `low...high` (ns/tick) is the
/// intersection of those hard intervals.
struct RateVerification: Sendable {
    private(set) var isUnverified = false
    private var anchor: StoredStamp? = nil
    private var low = 0.0
    private var high = 0.0

    /// A step: the rate is unverified, anything within `maximumRateErrorFraction` of p̂.
    /// Offer the event's stamps with `considerAnchor`, then `narrow` with each.
    mutating func begin(periodNanosecondsPerTick period: Double, maximumRateErrorFraction: Double) {
        isUnverified = true
        low = period * (1 - maximumRateErrorFraction)
        high = period * (1 + maximumRateErrorFraction)
        anchor = nil
    }

    mutating func considerAnchor(_ s: StoredStamp) {
        if !s.qualityWarning && s.rtt < anchor?.rtt ?? .max { anchor = s }
    }

    /// A rate change or an epoch that needs none: nothing left to verify.
    mutating func end() { isUnverified = false }

    /// Intersects the interval with what one post-event stamp allows against the anchor:
    /// under a constant period r the server's midpoint (Tb+Te)/2 lies within r·RTT/2 of a line
    /// of slope r through the counter midpoints (Ta+Tf)/2 (§2: the server stamps lie between
    /// Ta and Tf), so |ΔS − r·ΔT| ≤ r·(RTT_a + RTT_b)/2. Half as wide as the pair estimate's bound.
    mutating func narrow(with b: StoredStamp) {
        guard let a = anchor, a.index != b.index, !a.qualityWarning, !b.qualityWarning else { return }
        let (far, near) = a.index < b.index ? (a, b) : (b, a)
        let counterSpan = (Double(near.ta - far.ta) + Double(near.tf - far.tf)) / 2
        let serverSpan = (Double(near.tb - far.tb) + Double(near.te - far.te)) / 2
        let halfRTTs = Double(far.rtt + near.rtt) / 2
        guard counterSpan > 2 * halfRTTs, serverSpan > 0 else { return }
        low = max(low, serverSpan / (counterSpan + halfRTTs))
        high = min(high, serverSpan / (counterSpan - halfRTTs))
    }

    /// Checks a stamp consistent with the estimate: returns the measured period (ns/tick)
    /// when p̂ lies outside the verified interval beyond `slack` (ns/tick), a rate change from
    /// the event on; marks the rate verified once the interval is no wider than ±`wander` of p̂.
    mutating func check(_ stamp: StoredStamp, periodNanosecondsPerTick period: Double, slack: Double,
                        wander: Double, maximumRateErrorFraction: Double) -> Double? {
        narrow(with: stamp)
        if low > high || period < low - slack || period > high + slack {
            isUnverified = false
            if low <= high { return (low + high) / 2 }
            return anchor.flatMap { periodFromPair($0, stamp, maximumRateErrorFraction: maximumRateErrorFraction) }?.period ?? period
        }
        if high - low <= 2 * period * wander { isUnverified = false }
        return nil
    }

    /// How far the true rate may lie from p̂ (relative) given the post-event stamps so far;
    /// 0 once verified.
    func allowance(periodNanosecondsPerTick period: Double) -> Double {
        guard isUnverified else { return 0 }
        return max(high / period - 1, 1 - low / period, 0)
    }
}

/// §8.2: the largest recently observed rate jump (relative, either direction) and the Tf at
/// which it was last renewed. A counter whose rate has jumped may jump again between two
/// stamps, and nothing but that history can say by how much.
struct RateJumpMemory: Sendable {
    private var size = 0.0
    private var counter: Int64 = 0
    private let memorySeconds: Double

    init(memorySeconds: Double) { self.memorySeconds = max(memorySeconds, 1) }

    /// Remembers a jump of relative size |ratio − 1| seen at `counter`.
    mutating func note(_ ratio: Double, at counter: Int64, nanosecondsPerTick: Double) {
        guard ratio > 0, ratio.isFinite else { return }
        let jump = max(abs(ratio - 1), abs(1 / ratio - 1))
        size = max(allowance(at: counter, nanosecondsPerTick: nanosecondsPerTick), jump)
        self.counter = counter
    }

    /// The allowance at `counter`: held for `memorySeconds` of quiet, then halving per such period.
    func allowance(at counter: Int64, nanosecondsPerTick: Double) -> Double {
        guard size > 0 else { return 0 }
        let quiet = nanosecondsPerTick * Double(counter - self.counter) * 1e-9
        return quiet <= memorySeconds ? size : size * exp2(-(quiet - memorySeconds) / memorySeconds)
    }
}

/// §5's pair estimate of the period (ns/tick) and a hard bound on its relative error: the
/// server stamps of each exchange lie between its Ta and Tf, so each ratio is off by at most
/// max(RTT)/Δ; `maximumRateErrorFraction` when the pair spans too little to say more.
func periodFromPair(_ far: StoredStamp, _ near: StoredStamp,
                    maximumRateErrorFraction: Double) -> (period: Double, bound: Double)? {
    let dTa = near.ta - far.ta, dTf = near.tf - far.tf
    let dTb = near.tb - far.tb, dTe = near.te - far.te
    guard dTa > 0, dTf > 0, dTb > 0, dTe > 0 else { return nil }
    let estimate = 0.5 * (Double(dTb) / Double(dTa) + Double(dTe) / Double(dTf))
    let spread = Double(far.rtt + near.rtt)
    let base = Double(min(dTa, dTf))
    let bound = base > 2 * spread ? spread / (base - spread) : maximumRateErrorFraction
    return (estimate, bound)
}
