import FeedforwardClock
import Randomness

#if canImport(Glibc)
import Glibc
#endif

/// Known truth: a client counter running at `rate` ticks per true ns, a server serving
/// true time plus `serverOffsetNanoseconds`, minimum one-way delays and exponential queueing.
struct PathSimulator {
    var random = SeededRandom(seed: 0x5EED_F00D)
    /// True Unix time now, ns.
    var now: Int64 = 1_700_000_000_000_000_000
    var counterAnchor: Int64 = 987_654_321_000
    var trueAnchor: Int64 = 1_700_000_000_000_000_000
    var rate: Double = 1
    var serverOffsetNanoseconds: Int64 = 0
    var upMinimumNanoseconds: Int64 = 20_000
    var downMinimumNanoseconds: Int64 = 20_000
    var upJitterMeanNanoseconds: Double = 5_000
    var downJitterMeanNanoseconds: Double = 5_000
    var processingNanoseconds: Int64 = 10_000
    var stratum: UInt8 = 1
    var referenceID: UInt32 = 0x4750_5300   // "GPS"
    var rootDispersionNanoseconds: Int64 = 0

    init(rate: Double = 1, seed: UInt64 = 0x5EED_F00D) {
        self.rate = rate
        random = SeededRandom(seed: seed)
    }

    func counter(at trueTime: Int64) -> Int64 {
        counterAnchor + Int64((Double(trueTime - trueAnchor) * rate).rounded(.down))
    }

    /// The server's time when the counter reads `counter` (what the filter estimates).
    func serverTime(atCounter counter: Int64) -> Double {
        Double(trueAnchor + serverOffsetNanoseconds) + Double(counter - counterAnchor) / rate
    }

    /// Counter rate change, optionally with a jump of the counter (a migration).
    mutating func setRate(_ newRate: Double, counterJump: Int64 = 0) {
        counterAnchor = counter(at: now) + counterJump
        trueAnchor = now
        rate = newRate
    }

    mutating func advance(seconds: Double) { now += Int64(seconds * 1e9) }

    mutating func exchange() -> Stamp {
        let ta = counter(at: now)
        let receive = now + upMinimumNanoseconds + Int64(random.exponential(mean: upJitterMeanNanoseconds))
        let transmit = receive + processingNanoseconds
        let back = transmit + downMinimumNanoseconds + Int64(random.exponential(mean: downJitterMeanNanoseconds))
        let tf = counter(at: back)
        return Stamp(ta: ta, tb: receive + serverOffsetNanoseconds, te: transmit + serverOffsetNanoseconds, tf: tf,
                     stratum: stratum, referenceID: referenceID, leap: 0,
                     rootDelayNanoseconds: 0, rootDispersionNanoseconds: rootDispersionNanoseconds)
    }
}

/// One accepted stamp's outcome.
struct Observation {
    var index: Int
    var parameters: ClockParameters
    /// Ca(Tf) − server time at Tf, ns.
    var errorNanoseconds: Double
}

/// Drives a clock: the start-up burst (8 exchanges 2 s apart) when `burst`, then polls.
struct Scenario {
    var clock: FeedforwardClock
    var path: PathSimulator
    var poll: Double
    var observations: [Observation] = []
    var inBurst: Int
    /// A rate change to apply inside the next poll interval, after `quarter` quarters of it
    /// (1...3), so it lands between two stamps as a real one would.
    var rateChangeInNextInterval: (quarter: Int, rate: Double)? = nil
    /// Reads of the published parameters at each quarter of every poll interval (what a
    /// reader between stamps sees) whose true error exceeded the aged bound.
    var betweenViolations: [(index: Int, errorNanoseconds: Double, boundNanoseconds: Double)] = []
    /// Largest |error| seen by those between-stamp reads, per stamp interval (index of the stamp before).
    var betweenWorst: [Double] = []

    init(poll: Double = 16, path: PathSimulator = PathSimulator(), burst: Bool = true,
         configuration: FeedforwardConfiguration? = nil) {
        self.poll = poll
        self.path = path
        clock = FeedforwardClock(configuration: configuration ?? FeedforwardConfiguration(pollPeriodSeconds: poll))
        inBurst = burst ? 8 : 0
    }

    mutating func step() {
        let stamp = path.exchange()
        let interval = inBurst > 1 ? 2.0 : poll
        let verdict = clock.process(stamp, nextExchangeInSeconds: interval)
        precondition(verdict == .accepted, "simulated stamp rejected: \(verdict)")
        if inBurst > 0 { inBurst -= 1 }
        let p = clock.parameters
        let ca = p.absoluteTimeParts(atCounter: stamp.tf)
        let truth = path.serverTime(atCounter: stamp.tf)
        let error = Double(ca.nanoseconds - Int64(truth.rounded(.down))) + ca.fraction - (truth - truth.rounded(.down))
        observations.append(Observation(index: observations.count, parameters: p, errorNanoseconds: error))
        // Walk the interval in quarters, reading the clock as a reader would at each.
        var worst = 0.0
        for quarter in 1...4 {
            path.advance(seconds: interval / 4)
            if let change = rateChangeInNextInterval, change.quarter == quarter {
                path.setRate(change.rate)
                rateChangeInNextInterval = nil
            }
            if quarter == 4 { break }   // the next exchange reads at this instant
            let counter = path.counter(at: path.now)
            let read = p.absoluteTimeParts(atCounter: counter)
            let truthThen = path.serverTime(atCounter: counter)
            let readError = Double(read.nanoseconds - Int64(truthThen.rounded(.down))) + read.fraction
                - (truthThen - truthThen.rounded(.down))
            let bound = p.maxError(atCounter: counter)
            worst = max(worst, abs(readError))
            if abs(readError) > bound + 1 {
                betweenViolations.append((observations.count - 1, readError, bound))
            }
        }
        betweenWorst.append(worst)
    }

    mutating func run(_ count: Int) { for _ in 0..<count { step() } }

    var last: Observation { observations[observations.count - 1] }

    /// Stamps whose true error exceeded the published hard bound (+1 ns for flooring).
    func boundViolations(from start: Int = 0) -> [Observation] {
        observations[start...].filter { abs($0.errorNanoseconds) > $0.parameters.maxErrorNanoseconds + 1 }
    }

    func worstError(from start: Int, to end: Int? = nil) -> Double {
        observations[start..<(end ?? observations.count)].map { abs($0.errorNanoseconds) }.max() ?? 0
    }

    func firstIndex(from start: Int, with bit: ClockStatus) -> Int? {
        observations[start...].first { $0.parameters.status.contains(bit) }?.index
    }
}

extension Scenario {
    /// One line of figures, for diagnosis when a bound is tuned.
    func summary(_ name: String, from start: Int) -> String {
        let tail = observations[start...]
        let worst = tail.map { abs($0.errorNanoseconds) }.max() ?? 0
        let bounds = tail.map { $0.parameters.maxErrorNanoseconds }.sorted()
        let median = bounds.isEmpty ? 0 : bounds[bounds.count / 2]
        let tightness = tail.map { abs($0.errorNanoseconds) / $0.parameters.maxErrorNanoseconds }.max() ?? 0
        return "\(name): worst |error| \(Int(worst)) ns, median maxError \(Int(median)) ns, max error/bound \(tightness)"
    }
}
