import ToolSupport
import FeedforwardClock

/// How a simulation samples the clock it measures.
public struct SamplingOptions: Sendable, Equatable {
    /// Extra samples at evenly spaced true instants between two exchanges. Sampling only at
    /// the exchanges would see the clock just after each correction; a reader asks for the
    /// time at any moment, so the error (and the aged bound) between stamps counts too.
    public var samplesBetweenExchanges: Int = 3
    /// Keep every sample in the result (for a plot or a test); the figures use them either way.
    public var keepSamplesForPlot: Bool = true
    public init(samplesBetweenExchanges: Int = 3, keepSamplesForPlot: Bool = true) {
        self.samplesBetweenExchanges = samplesBetweenExchanges
        self.keepSamplesForPlot = keepSamplesForPlot
    }
}

/// What one simulated run of a scenario measured.
public struct SimulationResult: Sendable {
    public var scenario: Scenario
    public var figures: Figures
    /// Every error sample in true-time order (empty when not kept).
    public var samples: [ErrorSample]
    public var exchanges: Int
    public var lostExchanges: Int
    public var acceptedStamps: Int
    public var rejectedStamps: Int
    /// Clock events the filter declared (§8.1), with the true time of the stamp that declared them.
    public var declaredEvents: [LabEvent]
    /// Samples whose |error| exceeded the published maxError, as (true time, error, bound),
    /// the first 20 of them: where bound honesty fails, so a report can say exactly where.
    public var boundViolations: [ErrorSample]
    public var boundViolationCount: Int
    /// Per server, what the vote made of it (several-server scenarios only; empty otherwise).
    public var sources: [SimulatedSourceSummary] = []

    /// Machine-readable form: the figures plus the run's counts and its scenario.
    public func json() -> JSONValue {
        let configuration = scenario.configuration
        var members = [
            JSONMember("scenario", .string(scenario.name)),
            JSONMember("seed", .integer(Int64(bitPattern: configuration.seed))),
            JSONMember("durationNanoseconds", .integer(configuration.durationNanoseconds)),
            JSONMember("pollNanoseconds", .integer(configuration.pollNanoseconds)),
            JSONMember("reference", .string(scenario.reference.rawValue)),
            JSONMember("exchanges", .integer(Int64(exchanges))),
            JSONMember("lostExchanges", .integer(Int64(lostExchanges))),
            JSONMember("acceptedStamps", .integer(Int64(acceptedStamps))),
            JSONMember("rejectedStamps", .integer(Int64(rejectedStamps))),
            JSONMember("boundViolations", .integer(Int64(boundViolationCount))),
        ]
        members.append(JSONMember("declaredEvents", .array(declaredEvents.map {
            .object([JSONMember("event", .string($0.name)), JSONMember("atNanoseconds", .integer($0.atNanoseconds))])
        })))
        if !sources.isEmpty { members.append(JSONMember("sources", .array(sources.map { $0.json() }))) }
        members.append(JSONMember("figures", figures.json(label: scenario.name)))
        return .object(members)
    }
}

/// Runs a scenario's simulated exchanges through the feedforward filter and measures the
/// clock against the truth the simulator keeps.
///
/// - Every non-lost exchange becomes a `Stamp` (the server header included); a lost one
///   only lets time pass. During the start-up burst the filter is told the next exchange
///   comes after the burst spacing, not after P.
/// - The clock is sampled at each stamp's Tf just after the update, and at
///   `samplesBetweenExchanges` evenly spaced true instants in between, by reading the
///   published parameters at the counter value the client's oscillator shows at that true
///   instant: error = Ca(counter) − reference, bound = maxError aged to that counter.
///   That is exactly what a reader of the published parameters would see.
/// - The reference is true Unix time, or the server's clock for `.server` scenarios.
/// - No samples while the guest is paused (a migration blackout: nobody can read a clock
///   then) or before the first estimate exists.
///
/// Deterministic: a second oscillator and server model built from the same parameters and
/// seed give the counter and server time at the sample instants, so the result depends
/// only on the scenario (seed included).
public enum SimulationRunner {
    public static func run(_ scenario: Scenario, sampling: SamplingOptions = SamplingOptions(),
                           figureOptions: FigureOptions? = nil) -> SimulationResult {
        if !scenario.configuration.additionalServers.isEmpty {
            return MultiSourceRunner.run(scenario, sampling: sampling, figureOptions: figureOptions)
        }
        let configuration = scenario.configuration
        let pollSeconds = Double(configuration.pollNanoseconds) / 1e9
        var clock = FeedforwardClock(configuration: FeedforwardConfiguration(pollPeriodSeconds: pollSeconds))
        var sampler = OscillatorModel(parameters: configuration.oscillator, seed: configuration.seed)
        let server = ServerModel(parameters: configuration.server, seed: configuration.seed)
        let start = configuration.startUnixNanoseconds
        let burstEnd = Int64(max(0, configuration.startupBurstCount - 1)) * configuration.startupBurstSpacingNanoseconds
        let burstSpacingSeconds = Double(configuration.startupBurstSpacingNanoseconds) / 1e9

        var samples: [ErrorSample] = []
        samples.reserveCapacity(Int(configuration.durationNanoseconds / configuration.pollNanoseconds + 16)
                                * (sampling.samplesBetweenExchanges + 1))
        var exchanges = 0, lost = 0, accepted = 0, rejected = 0
        var declared: [LabEvent] = []
        var violations: [ErrorSample] = []
        var violationCount = 0
        var previousSampleTime: Int64 = 0
        // A platform-signalled migration (vmclock): the page's marker changes at the resume;
        // the client notices it `disruptionNoticeNanoseconds` later and declares the event.
        let signalled = configuration.disruptionNoticedNanoseconds != nil ? configuration.oscillator.migration : nil
        var disruptionNoticed = false
        let burstSends = configuration.disruptionBurstNanoseconds
        func noticeDisruption(upTo t: Int64) {
            guard let noticed = configuration.disruptionNoticedNanoseconds, !disruptionNoticed, t >= noticed else { return }
            disruptionNoticed = true
            clock.noteDisruption(atRawNanoseconds: sampler.counter(atTrueNanoseconds: noticed))
        }

        func sample(at t: Int64) {
            noticeDisruption(upTo: t)
            guard !clock.parameters.status.contains(.noEstimate),
                  !(configuration.oscillator.migration?.blackout.contains(t) ?? false) else { return }
            let counter = sampler.counter(atTrueNanoseconds: t)
            let parameters = clock.parameters
            var reference = start + t
            if scenario.reference == .server { reference += server.offsetNanoseconds(atTrueNanoseconds: t) }
            let error = parameters.absoluteTime(atCounter: counter) - reference
            // What a reader of the published file sees: it compares the page's live marker
            // (changed at the resume) with the one the parameters were published under
            // (changed when the client noticed) and reports an infinite bound on a mismatch.
            let readerSeesDisruption = signalled.map { t >= $0.resumeNanoseconds && !disruptionNoticed } ?? false
            let bound = readerSeesDisruption ? .infinity : parameters.maxError(atCounter: counter)
            let boundNanoseconds = bound.isFinite && bound < 9e18 ? Int64(bound.rounded(.up)) : Int64.max
            let point = ErrorSample(trueNanoseconds: t, errorNanoseconds: error, maxErrorNanoseconds: boundNanoseconds)
            if error.magnitude > boundNanoseconds.magnitude {
                violationCount += 1
                if violations.count < 20 { violations.append(point) }
            }
            samples.append(point)
        }
        func sampleBetween(until end: Int64) {
            let n = sampling.samplesBetweenExchanges
            guard n > 0, end > previousSampleTime else { return }
            let span = end - previousSampleTime
            for k in 1...n {
                sample(at: previousSampleTime + span * Int64(k) / Int64(n + 1))
            }
        }

        for exchange in configuration.simulatorSequence() {
            // The first read after the resume: the counter has jumped, nothing has been
            // exchanged yet (sampled in every migration scenario, signalled or not).
            if let migration = configuration.oscillator.migration,
               previousSampleTime < migration.resumeNanoseconds, exchange.trueNanosecondsAtTa >= migration.resumeNanoseconds {
                sampleBetween(until: migration.resumeNanoseconds)
                sample(at: migration.resumeNanoseconds)
                previousSampleTime = migration.resumeNanoseconds
            }
            exchanges += 1
            if exchange.lost {
                lost += 1
                sampleBetween(until: exchange.trueNanosecondsAtTa)
                sample(at: exchange.trueNanosecondsAtTa)
                previousSampleTime = exchange.trueNanosecondsAtTa
                continue
            }
            let arrival = exchange.trueNanosecondsAtTf
            sampleBetween(until: arrival)
            let header = exchange.header
            // The client's response validation refuses an unsynchronised server before a
            // stamp is made (RFC 5905 §8); the filter only ever sees valid stamps.
            if header.leap == 3 || header.stratum == 0 || header.stratum >= 16 || exchange.te < exchange.tb {
                rejected += 1
                sample(at: arrival)
                previousSampleTime = arrival
                continue
            }
            let stamp = Stamp(ta: exchange.ta, tb: exchange.tb, te: exchange.te, tf: exchange.tf,
                              stratum: header.stratum, referenceID: header.referenceID, leap: header.leap,
                              rootDelayNanoseconds: header.rootDelayNanoseconds,
                              rootDispersionNanoseconds: header.rootDispersionNanoseconds)
            noticeDisruption(upTo: exchange.trueNanosecondsAtTa)
            var next = exchange.trueNanosecondsAtTa < burstEnd ? burstSpacingSeconds : pollSeconds
            if let i = burstSends.firstIndex(of: exchange.trueNanosecondsAtTa), i + 1 < burstSends.count {
                next = Double(burstSends[i + 1] - burstSends[i]) / 1e9
            }
            switch clock.process(stamp, nextExchangeInSeconds: next) {
            case .accepted:
                accepted += 1
                let status = clock.parameters.status
                if status.contains(.clockStep) { declared.append(LabEvent(name: "clock-step", atNanoseconds: arrival)) }
                if status.contains(.rateChange) { declared.append(LabEvent(name: "rate-change", atNanoseconds: arrival)) }
                if status.contains(.rttUpShift) { declared.append(LabEvent(name: "rtt-upshift", atNanoseconds: arrival)) }
            case .rejected:
                rejected += 1
            }
            sample(at: arrival)
            previousSampleTime = arrival
        }

        let figures = Figures(samples: samples, events: scenario.events,
                              options: figureOptions ?? scenario.figureOptions)
        return SimulationResult(scenario: scenario, figures: figures,
                                samples: sampling.keepSamplesForPlot ? samples : [],
                                exchanges: exchanges, lostExchanges: lost, acceptedStamps: accepted,
                                rejectedStamps: rejected, declaredEvents: declared,
                                boundViolations: violations, boundViolationCount: violationCount)
    }
}

extension SimulationConfiguration {
    /// The exchanges of this configuration, one by one.
    func simulatorSequence() -> Simulator { Simulator(configuration: self) }
}
