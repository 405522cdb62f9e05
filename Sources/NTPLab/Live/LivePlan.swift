import NTPClient
import Randomness

/// A scenario turned into what a live run does on loopback, with real sockets and the
/// host clock as ground truth.
///
/// How each model becomes real:
/// - **Network** (delays, loss, bursts, spikes, level shifts, outages): the impairment relay
///   applies it to real packets: one relay thread, a lane per client, each lane its own
///   copy of the model with the same seed and time zero.
/// - **Client clock** (vm-skew, erratic-rate, migration): chronyd's clock cannot be
///   transformed, so the change is applied to the time *served* instead: each
///   relay rewrites the server's timestamps by `ServedTimeTransform`, which puts both clients
///   in the same relative situation. A counter running fast by s is served time at rate
///   1/(1+s); a counter jump of +J is a served jump of −J. Truth follows the transform: a
///   client's error is its clock minus `served(host CLOCK_REALTIME)`.
/// - **Server** (offset, steps): also in the transform; server-step's error is against the
///   server's (served) clock, as in simulation.
/// - The host oscillator is real: the scenario's few-PPM rate, wander and daily cycle are
///   not added (only the migration's *change* of rate, new minus old). Rate cycles asked for
///   explicitly (`rateCycles`, the command line's `--rate-cycle`) are served as a rate that
///   changes in steps of a hundredth of the shortest cycle (at least 1 s), physical periods
///   (not scaled with the run).
/// - A migration's blackout is an outage of the path for its real length (no exchange can
///   happen while the guest is paused) and no sample is taken in it.
///
/// Event instants (migration, server step, level shifts, outages) keep their place in the
/// run: an event at 12 h of a 2-day simulation happens at a quarter of the live duration.
/// Interval lengths scale the same way, except the blackout, which is physical. Pure.
public struct LivePlan: Sendable, Equatable {
    public var scenario: Scenario
    public var durationNanoseconds: Int64
    public var pollSeconds: Double
    public var seed: UInt64
    /// What the relay applies (events already scaled).
    public var network: NetworkParameters
    /// Served-time changes relative to the run's origin (see `transform(origin…)`).
    public var servedOffsetNanoseconds: Int64
    public var servedRateError: Double
    public var servedChanges: [ServedTimeTransform.Change]
    /// The scenario's events at their live instants.
    public var events: [LabEvent]
    /// Instants in which no clock is read (a paused guest).
    public var blackouts: [LabInterval]
    public var figureOptions: FigureOptions
    /// Live duration / simulated duration.
    public var timeScale: Double
    /// Per further server of a several-server scenario: its served offset and steps (the
    /// client-clock changes of `servedChanges` apply to every server alike).
    public var additionalServedOffsetsNanoseconds: [Int64] = []
    public var additionalServedChanges: [[ServedTimeTransform.Change]] = []

    public init(scenario: Scenario, durationNanoseconds: Int64, pollSeconds: Double, seed: UInt64? = nil,
                extraServedOffsetNanoseconds: Int64 = 0, rateCycles: [RateCycle] = []) {
        self.scenario = scenario
        self.durationNanoseconds = durationNanoseconds
        self.pollSeconds = pollSeconds
        let configuration = scenario.configuration
        self.seed = seed ?? configuration.seed
        let scale = Double(durationNanoseconds) / Double(max(1, configuration.durationNanoseconds))
        timeScale = scale
        func scaled(_ t: Int64) -> Int64 { Int64((Double(t) * scale).rounded()) }

        var network = configuration.network
        network.levelShifts = network.levelShifts.map {
            LevelShift(atNanoseconds: scaled($0.atNanoseconds), forwardDeltaNanoseconds: $0.forwardDeltaNanoseconds,
                       backwardDeltaNanoseconds: $0.backwardDeltaNanoseconds)
        }
        network.outages = network.outages.map {
            LabInterval(startNanoseconds: scaled($0.startNanoseconds), endNanoseconds: scaled($0.endNanoseconds))
        }
        var blackouts: [LabInterval] = []
        var changes: [ServedTimeTransform.Change] = []
        let oscillator = configuration.oscillator

        // A counter fast by s reads truth·(1+s): serve time at 1/(1+s) relative to the host.
        let baseRate = oscillator.skew
        servedRateError = 1 / (1 + baseRate) - 1
        servedOffsetNanoseconds = configuration.server.offsetNanoseconds + extraServedOffsetNanoseconds

        if let migration = oscillator.migration {
            // The level shift that comes with the new host is already in `network` (scaled with
            // the scenario's other instants); the resume must coincide with it.
            let pause = scaled(migration.atNanoseconds)
            let resume = pause + migration.blackoutNanoseconds
            let shiftAtResume = configuration.network.levelShifts.contains { $0.atNanoseconds == migration.resumeNanoseconds }
            if shiftAtResume {
                network.levelShifts = network.levelShifts.map { shift in
                    var s = shift
                    if shift.atNanoseconds == scaled(migration.resumeNanoseconds) { s.atNanoseconds = resume }
                    return s
                }
            }
            let blackout = LabInterval(startNanoseconds: pause, endNanoseconds: resume)
            blackouts.append(blackout)
            network.outages.append(blackout)
            // New host: counter ahead by J and rate (1 + new)/(1 + old) relative to the old one.
            let relative = (1 + migration.newRateErrorPPM * 1e-6) / (1 + oscillator.rateErrorPPM * 1e-6) - 1
            changes.append(ServedTimeTransform.Change(atNanoseconds: resume,
                                                      jumpNanoseconds: -migration.counterJumpNanoseconds,
                                                      rateError: 1 / ((1 + baseRate) * (1 + relative)) - 1))
        }
        if let erratic = oscillator.erratic, !erratic.rateErrors.isEmpty {
            // Switches at random instants; the dwell is the scenario's, but at most a sixth of
            // the run so that a short run still sees several switches.
            var random = SeededRandom(seed: self.seed, stream: LabStream.oscillator)
            let meanDwell = Double(min(erratic.meanDwellNanoseconds, max(Span.second, durationNanoseconds / 6)))
            var t: Int64 = 0
            var index = Int(random.integer(0, Int64(erratic.rateErrors.count - 1)))
            servedRateError = 1 / (1 + baseRate + erratic.rateErrors[index]) - 1
            while true {
                t += max(Span.second, Int64(random.exponential(mean: meanDwell)))
                if t >= durationNanoseconds { break }
                index = Int(random.integer(0, Int64(erratic.rateErrors.count - 1)))
                changes.append(ServedTimeTransform.Change(atNanoseconds: t, jumpNanoseconds: 0,
                                                          rateError: 1 / (1 + baseRate + erratic.rateErrors[index]) - 1))
            }
        }
        if !rateCycles.isEmpty, oscillator.erratic == nil, oscillator.migration == nil {
            // A counter fast by s(t) is served time at 1/(1 + s(t)), stepped finely enough that
            // each step's rate is within about 3% of the cycle's amplitude of the sine.
            let shortest = rateCycles.map(\.periodNanoseconds).min() ?? Span.day
            let step = max(Span.second, shortest / 100)
            func servedRate(at t: Int64) -> Double {
                1 / (1 + baseRate + rateCycles.reduce(0) { $0 + $1.rateError(atTrueNanoseconds: t + step / 2) }) - 1
            }
            servedRateError = servedRate(at: 0)
            var t = step
            while t < durationNanoseconds {
                changes.append(ServedTimeTransform.Change(atNanoseconds: t, jumpNanoseconds: 0, rateError: servedRate(at: t)))
                t += step
            }
        }
        // The client-clock changes alone: every server's served time follows them.
        let clockChanges = changes
        for step in configuration.server.steps {
            let at = scaled(step.atNanoseconds)
            let rate = changes.last { $0.atNanoseconds <= at }?.rateError ?? servedRateError
            changes.append(ServedTimeTransform.Change(atNanoseconds: at, jumpNanoseconds: step.stepNanoseconds, rateError: rate))
        }
        servedChanges = changes.sorted { $0.atNanoseconds < $1.atNanoseconds }
        for other in configuration.additionalServers {
            var own = clockChanges
            for step in other.server.steps {
                let at = scaled(step.atNanoseconds)
                let rate = clockChanges.last { $0.atNanoseconds <= at }?.rateError ?? servedRateError
                own.append(ServedTimeTransform.Change(atNanoseconds: at, jumpNanoseconds: step.stepNanoseconds, rateError: rate))
            }
            additionalServedChanges.append(own.sorted { $0.atNanoseconds < $1.atNanoseconds })
            additionalServedOffsetsNanoseconds.append(other.server.offsetNanoseconds + extraServedOffsetNanoseconds)
        }
        self.network = network
        self.blackouts = blackouts

        events = scenario.events.map { event in
            var e = event
            if let migration = oscillator.migration, event.atNanoseconds == migration.resumeNanoseconds {
                e.atNanoseconds = blackouts[0].endNanoseconds
            } else {
                e.atNanoseconds = scaled(event.atNanoseconds)
            }
            return e
        }
        // The steady state leaves out a quarter of the run after each event (at least the
        // scaled window and 4 polls): a client that takes longer than the scaled window to
        // recover (chronyd slewing 2.5 s away takes ~100 s at poll 16) would otherwise put its
        // recovery into the steady p99 and so into its own recovery threshold.
        var options = scenario.figureOptions
        options.eventExclusionNanoseconds = max(Int64(4 * pollSeconds * 1e9), scaled(options.eventExclusionNanoseconds),
                                                durationNanoseconds / 4)
        figureOptions = options
    }

    /// The served-time transform for a run whose time zero is host time `origin`.
    public func transform(originUnixNanoseconds origin: Int64) -> ServedTimeTransform {
        ServedTimeTransform(originUnixNanoseconds: origin, offsetNanoseconds: servedOffsetNanoseconds,
                            rateError: servedRateError, changes: servedChanges)
    }

    /// The served-time transform of server `server` (0: the scenario's `server`, whose
    /// transform is also the truth; k: its k-th additional server).
    public func transform(originUnixNanoseconds origin: Int64, server: Int) -> ServedTimeTransform {
        guard server > 0, server <= additionalServedChanges.count else { return transform(originUnixNanoseconds: origin) }
        return ServedTimeTransform(originUnixNanoseconds: origin, offsetNanoseconds: additionalServedOffsetsNanoseconds[server - 1],
                                   rateError: servedRateError, changes: additionalServedChanges[server - 1])
    }

    /// Servers each client polls.
    public var serverCount: Int { 1 + additionalServedChanges.count }

    /// True when no clock may be read at run time `t` (ns since the origin).
    public func isInBlackout(_ t: Int64) -> Bool { blackouts.contains { $0.contains(t) } }

    /// Exchanges `ntpclient` makes in the run: the start-up burst (8 exchanges 2 s apart,
    /// never slower than the poll), then one per poll, all starting before the end.
    public var exchangeCount: Int {
        let schedule = PollSchedule(pollSeconds: pollSeconds)
        var t = 0.0, count = 0
        let duration = Double(durationNanoseconds) / 1e9
        while t < duration {
            t += schedule.secondsToNextExchange(after: count)
            count += 1
        }
        return count
    }

    /// chronyd's poll exponent for our poll period: log2, rounded, within chrony's −6…24.
    public var chronyPollExponent: Int {
        Int(max(-6, min(24, log2Rounded(pollSeconds))))
    }
}

private func log2Rounded(_ value: Double) -> Double {
    var exponent = 0.0
    var v = value
    while v >= 1.5 { v /= 2; exponent += 1 }
    while v < 0.75 { v *= 2; exponent -= 1 }
    return exponent
}
