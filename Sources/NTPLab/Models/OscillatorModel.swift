import Maths
import Randomness
import ToolSupport

/// Nanoseconds in common spans, so scenario numbers read as they are stated.
public enum Span {
    public static let microsecond: Int64 = 1_000
    public static let millisecond: Int64 = 1_000_000
    public static let second: Int64 = 1_000_000_000
    public static let minute: Int64 = 60 * second
    public static let hour: Int64 = 3_600 * second
    public static let day: Int64 = 86_400 * second
}

/// A half-open interval of true time, nanoseconds since the scenario's start.
public struct LabInterval: Sendable, Equatable {
    public var startNanoseconds: Int64
    public var endNanoseconds: Int64
    public init(startNanoseconds: Int64, endNanoseconds: Int64) {
        self.startNanoseconds = startNanoseconds
        self.endNanoseconds = endNanoseconds
    }
    public func contains(_ nanoseconds: Int64) -> Bool {
        nanoseconds >= startNanoseconds && nanoseconds < endNanoseconds
    }
}

/// The counter's rate switching among several values at random times, as a guest's TSC
/// does when the host scales its CPU frequency (powernowd on the host).
public struct ErraticRate: Sendable, Equatable {
    /// Fractional rate errors (rate − 1) to choose among, uniformly at each switch.
    public var rateErrors: [Double]
    /// Mean of the exponential dwell time between switches.
    public var meanDwellNanoseconds: Int64
    public init(rateErrors: [Double], meanDwellNanoseconds: Int64) {
        self.rateErrors = rateErrors
        self.meanDwellNanoseconds = meanDwellNanoseconds
    }
}

/// A live migration: the guest pauses (blackout), then resumes on another host whose
/// counter differs by a constant and runs at another rate (Xen, propolis and KVM all move
/// a guest's TSC this way).
public struct Migration: Sendable, Equatable {
    /// When the guest pauses.
    public var atNanoseconds: Int64
    /// How long no exchange happens; the counter keeps running on the old host meanwhile.
    public var blackoutNanoseconds: Int64
    /// Added to the counter when the guest resumes (the new host's counter offset).
    public var counterJumpNanoseconds: Int64
    /// The new host's constant rate error; wander restarts from zero.
    public var newRateErrorPPM: Double
    public init(atNanoseconds: Int64, blackoutNanoseconds: Int64, counterJumpNanoseconds: Int64, newRateErrorPPM: Double) {
        self.atNanoseconds = atNanoseconds
        self.blackoutNanoseconds = blackoutNanoseconds
        self.counterJumpNanoseconds = counterJumpNanoseconds
        self.newRateErrorPPM = newRateErrorPPM
    }
    /// When the guest resumes on the new host.
    public var resumeNanoseconds: Int64 { atNanoseconds + blackoutNanoseconds }
    public var blackout: LabInterval { LabInterval(startNanoseconds: atNanoseconds, endNanoseconds: resumeNanoseconds) }
}

/// A sinusoidal cycle of the counter's rate: temperature over a day, an air-conditioning
/// cycle of tens of minutes. Real oscillators wander with their temperature, so a filter
/// must follow a rate that moves (docs/feedforward.md §6).
public struct RateCycle: Sendable, Equatable {
    /// Peak rate deviation, in PPM.
    public var amplitudePPM: Double
    public var periodNanoseconds: Int64
    /// Phase at true time zero, in radians.
    public var phaseRadians: Double
    public init(amplitudePPM: Double, periodNanoseconds: Int64, phaseRadians: Double = 0) {
        self.amplitudePPM = amplitudePPM
        self.periodNanoseconds = periodNanoseconds
        self.phaseRadians = phaseRadians
    }

    /// The command line's `PPM,PERIOD`: amplitude in PPM, then the period with a unit
    /// (`40min`, `24h`, `1d`, `90s`; a bare number is seconds). Phase 0.
    public static func parse(_ text: String) throws(UsageError) -> RateCycle {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 else {
            throw UsageError("--rate-cycle wants PPM,PERIOD (for example 0.2,40min or 1.0,24h), not '\(text)'")
        }
        guard let amplitude = Double(parts[0]), amplitude.isFinite, abs(amplitude) <= 1_000 else {
            throw UsageError("--rate-cycle amplitude must be a number of PPM from -1000 to 1000, not '\(parts[0])'")
        }
        let units: [(String, Double)] = [("min", 60), ("ms", 1e-3), ("s", 1), ("h", 3_600), ("d", 86_400)]
        var number = parts[1]
        var scale = 1.0
        for (suffix, seconds) in units where number.hasSuffix(suffix) {
            number = String(number.dropLast(suffix.count))
            scale = seconds
            break
        }
        guard let value = Double(number), value.isFinite, value * scale >= 1, value * scale <= 365 * 86_400 else {
            throw UsageError("--rate-cycle period must be 1 s to 365 d with a unit (90s, 40min, 24h, 1d), not '\(parts[1])'")
        }
        return RateCycle(amplitudePPM: amplitude, periodNanoseconds: Int64((value * scale * 1e9).rounded()))
    }

    /// Rate deviation (fraction, not PPM) at true time `nanoseconds`.
    func rateError(atTrueNanoseconds nanoseconds: Int64) -> Double {
        guard amplitudePPM != 0, periodNanoseconds > 0 else { return 0 }
        let phase = 2 * Double.pi * Double(nanoseconds % periodNanoseconds) / Double(periodNanoseconds)
        return amplitudePPM * 1e-6 * sin(phase + phaseRadians)
    }
}

/// What makes the client's raw counter differ from true time.
public struct OscillatorParameters: Sendable, Equatable {
    /// Counter value at true time zero (a host that booted a while ago).
    public var initialCounterNanoseconds: Int64 = 0
    /// Constant rate error of a healthy oscillator, in PPM.
    public var rateErrorPPM: Double = 0
    /// Large constant skew as a fraction (0.2 = +20%: a VM gaining 2 min per 10 min).
    public var skew: Double = 0
    /// Random-walk wander: standard deviation of the rate change over one hour, in PPM.
    public var wanderPPMPerRootHour: Double = 0
    /// Sinusoidal rate cycles (temperature), added together.
    public var rateCycles: [RateCycle] = []
    public var erratic: ErraticRate? = nil
    public var migration: Migration? = nil
    /// The rate is piecewise constant over segments this long (and at events).
    public var segmentNanoseconds: Int64 = Span.second

    public init() {}
}

/// Maps true time (ns since scenario start) to the client's raw counter (ns) and back.
///
/// The rate is piecewise constant: segments on a fixed grid of `segmentNanoseconds`, cut
/// also at erratic switches and at the migration's resume. The counter is integrated
/// exactly per segment: whole nanoseconds in an Int64 plus a fractional accumulator in
/// [0, 1), and only the small rate error is a Double. So a week of segments drifts by
/// well under a nanosecond, and the result never depends on when the model is queried.
///
/// It is a forward cursor: queries must not go back before the current segment (the
/// simulator only moves forward), which keeps memory constant over any duration.
public struct OscillatorModel: Sendable {
    public let parameters: OscillatorParameters
    private var random: SeededRandom

    private var segmentStartNanoseconds: Int64 = 0
    private var segmentEndNanoseconds: Int64 = 0
    private var segmentStartCounter: Int64
    private var counterFraction: Double = 0
    /// Rate − 1 over the current segment.
    public private(set) var currentRateError: Double = 0

    private var baseRateError: Double
    private var wanderRateError: Double = 0
    private var erraticRateError: Double = 0
    private var nextErraticSwitchNanoseconds: Int64 = .max
    private var migrationPending: Bool

    public init(parameters: OscillatorParameters, seed: UInt64) {
        self.parameters = parameters
        self.random = SeededRandom(seed: seed, stream: LabStream.oscillator)
        self.segmentStartCounter = parameters.initialCounterNanoseconds
        self.baseRateError = parameters.rateErrorPPM * 1e-6
        self.migrationPending = parameters.migration != nil
        if let erratic = parameters.erratic, !erratic.rateErrors.isEmpty {
            erraticRateError = erratic.rateErrors[Int(random.integer(0, Int64(erratic.rateErrors.count - 1)))]
            nextErraticSwitchNanoseconds = drawDwell(erratic)
        }
        beginSegment()
    }

    /// The client's raw counter at true time `trueNanoseconds`.
    /// Precondition: not before the start of the current segment.
    public mutating func counter(atTrueNanoseconds trueNanoseconds: Int64) -> Int64 {
        precondition(trueNanoseconds >= segmentStartNanoseconds,
                     "OscillatorModel is a forward cursor: asked for \(trueNanoseconds) ns, already at \(segmentStartNanoseconds) ns")
        while trueNanoseconds >= segmentEndNanoseconds { closeSegment() }
        return counterInSegment(trueNanoseconds - segmentStartNanoseconds)
    }

    /// The earliest true time at which the counter reads at least `counter`; nil when that
    /// lies before the current segment (history is not kept). Advances the cursor.
    public mutating func trueNanoseconds(atCounter counter: Int64) -> Int64? {
        if counter < segmentStartCounter { return nil }
        while counter >= counterInSegment(segmentEndNanoseconds - segmentStartNanoseconds) {
            closeSegment()
            if counter < segmentStartCounter { return segmentStartNanoseconds }  // inside a forward jump
        }
        let rate = 1 + currentRateError
        var elapsed = Int64(((Double(counter - segmentStartCounter) - counterFraction) / rate).rounded(.down))
        elapsed = max(0, elapsed)
        while counterInSegment(elapsed) < counter { elapsed += 1 }
        while elapsed > 0 && counterInSegment(elapsed - 1) >= counter { elapsed -= 1 }
        return segmentStartNanoseconds + elapsed
    }

    /// True when the guest is paused by a migration at `trueNanoseconds`.
    public func isInBlackout(_ trueNanoseconds: Int64) -> Bool {
        parameters.migration?.blackout.contains(trueNanoseconds) ?? false
    }

    @inline(__always)
    private func counterInSegment(_ elapsed: Int64) -> Int64 {
        let extra = (currentRateError * Double(elapsed) + counterFraction).rounded(.down)
        return segmentStartCounter + elapsed + Int64(extra)
    }

    private mutating func closeSegment() {
        let length = segmentEndNanoseconds - segmentStartNanoseconds
        let extra = currentRateError * Double(length) + counterFraction
        let whole = extra.rounded(.down)
        segmentStartCounter += length + Int64(whole)
        counterFraction = extra - whole
        segmentStartNanoseconds = segmentEndNanoseconds

        if let erratic = parameters.erratic, segmentStartNanoseconds == nextErraticSwitchNanoseconds {
            erraticRateError = erratic.rateErrors[Int(random.integer(0, Int64(erratic.rateErrors.count - 1)))]
            nextErraticSwitchNanoseconds = segmentStartNanoseconds + drawDwell(erratic)
        }
        if migrationPending, let migration = parameters.migration,
           segmentStartNanoseconds == migration.resumeNanoseconds {
            migrationPending = false
            segmentStartCounter += migration.counterJumpNanoseconds
            baseRateError = migration.newRateErrorPPM * 1e-6
            wanderRateError = 0
        }
        beginSegment()
    }

    /// Draws this segment's wander step, sets its rate and its end.
    private mutating func beginSegment() {
        let start = segmentStartNanoseconds
        let grid = parameters.segmentNanoseconds
        var end = (start / grid + 1) * grid
        if nextErraticSwitchNanoseconds < end { end = nextErraticSwitchNanoseconds }
        if migrationPending, let migration = parameters.migration, migration.resumeNanoseconds > start,
           migration.resumeNanoseconds < end {
            end = migration.resumeNanoseconds
        }
        segmentEndNanoseconds = end

        if parameters.wanderPPMPerRootHour > 0 {
            let hours = Double(end - start) / Double(Span.hour)
            wanderRateError += random.normal() * parameters.wanderPPMPerRootHour * 1e-6 * hours.squareRoot()
        }
        var temperature = 0.0
        for cycle in parameters.rateCycles { temperature += cycle.rateError(atTrueNanoseconds: start) }
        // A counter never runs backwards: clamp the total rate to stay positive.
        currentRateError = max(-0.9, baseRateError + parameters.skew + wanderRateError + temperature + erraticRateError)
    }

    private mutating func drawDwell(_ erratic: ErraticRate) -> Int64 {
        let dwell = Int64(random.exponential(mean: Double(erratic.meanDwellNanoseconds)))
        return max(Span.millisecond, dwell)
    }
}
