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
/// - With several servers (docs/feedforward.md, "Several sources") each has its own filter
///   over the same counter; their exchanges are merged in the order the requests leave, every
///   accepted stamp is followed by the vote (`CombinedClock`), the clock it publishes is the
///   one sampled, and `sources` says per server what the vote made of it.
/// - No samples while the guest is paused (a migration blackout: nobody can read a clock
///   then) or before the first estimate exists.
///
/// Deterministic: a second oscillator and server model built from the same parameters and
/// seed give the counter and server time at the sample instants, so the result depends
/// only on the scenario (seed included).
public enum SimulationRunner {
    public static func run(_ scenario: Scenario, sampling: SamplingOptions = SamplingOptions(),
                           figureOptions: FigureOptions? = nil) -> SimulationResult {
        let configuration = scenario.configuration
        let pollSeconds = Double(configuration.pollNanoseconds) / 1e9
        // Several servers (docs/feedforward.md, "Several sources"): one filter per server over
        // the same counter, merged in the order the requests leave, and the clock their vote
        // publishes is the one measured. One server: its filter's clock, as ntpclient publishes it.
        let serverCount = min(configuration.serverCount, SourceSelection.capacity)
        let several = serverCount > 1
        var clocks = (0..<serverCount).map { _ in
            FeedforwardClock(configuration: FeedforwardConfiguration(pollPeriodSeconds: pollSeconds))
        }
        var latest = InlineArray<8, ClockParameters>(repeating: .empty)
        var combined = CombinedClock(minimumSources: CombinedClock.majority(of: serverCount))
        func published() -> ClockParameters { several ? combined.parameters : clocks[0].parameters }
        var streams = (0..<serverCount).map { Simulator(configuration: configuration, serverIndex: $0) }
        var heads = (0..<serverCount).map { streams[$0].next() }
        var sources = several ? (0..<serverCount).map { SimulatedSourceSummary(serverIndex: $0) } : []
        for k in sources.indices {
            let steps = k == 0 ? configuration.server.steps : configuration.additionalServers[k - 1].server.steps
            sources[k].stepNanoseconds = steps.map(\.atNanoseconds).min()
        }
        var pollsSinceStep = [Int](repeating: 0, count: serverCount)

        var sampler = OscillatorModel(parameters: configuration.oscillator, seed: configuration.seed)
        let server = ServerModel(parameters: configuration.server, seed: configuration.seed)
        let start = configuration.startUnixNanoseconds
        let burstEnd = Int64(max(0, configuration.startupBurstCount - 1)) * configuration.startupBurstSpacingNanoseconds
        let burstSpacingSeconds = Double(configuration.startupBurstSpacingNanoseconds) / 1e9

        var samples: [ErrorSample] = []
        samples.reserveCapacity(serverCount * Int(configuration.durationNanoseconds / configuration.pollNanoseconds + 16)
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
            let counter = sampler.counter(atTrueNanoseconds: noticed)
            for k in clocks.indices {
                clocks[k].noteDisruption(atRawNanoseconds: counter)
                latest[k] = clocks[k].parameters
            }
            if several { combined.update(sources: latest, count: serverCount, atCounter: counter, updatedSource: 0) }
        }

        func sample(at t: Int64) {
            noticeDisruption(upTo: t)
            let parameters = published()
            guard !parameters.status.contains(.noEstimate),
                  !(configuration.oscillator.migration?.blackout.contains(t) ?? false) else { return }
            let counter = sampler.counter(atTrueNanoseconds: t)
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
        /// Samples up to and at `t` (never backwards: several servers' stamps can arrive out
        /// of their requests' order).
        func sampleThrough(_ t: Int64) {
            let at = max(t, previousSampleTime)
            sampleBetween(until: at)
            sample(at: at)
            previousSampleTime = at
        }
        /// The vote's verdicts after a stamp of any server, per server.
        func recordVote(_ vote: SourceSelection, at arrival: Int64) {
            for i in sources.indices {
                switch vote.verdicts[i] {
                case .selected:
                    sources[i].selectedVotes += 1
                    if sources[i].flaggedNanoseconds != nil { sources[i].selectedAfterFlagged += 1 }
                case .falseticker:
                    sources[i].falsetickerVotes += 1
                    if sources[i].flaggedNanoseconds == nil, let step = sources[i].stepNanoseconds, arrival >= step {
                        sources[i].flaggedNanoseconds = arrival
                        sources[i].pollsUntilFlagged = pollsSinceStep[i]
                    }
                case .unusable: sources[i].unusableVotes += 1
                case .candidate: sources[i].candidateVotes += 1
                }
            }
        }

        while true {
            var k = -1
            for i in heads.indices {
                guard let head = heads[i] else { continue }
                if k < 0 || head.trueNanosecondsAtTa < heads[k]!.trueNanosecondsAtTa { k = i }
            }
            guard k >= 0, let exchange = heads[k] else { break }
            heads[k] = streams[k].next()
            // The first read after the resume: the counter has jumped, nothing has been
            // exchanged yet (sampled in every migration scenario, signalled or not).
            if let migration = configuration.oscillator.migration,
               previousSampleTime < migration.resumeNanoseconds, exchange.trueNanosecondsAtTa >= migration.resumeNanoseconds {
                sampleThrough(migration.resumeNanoseconds)
            }
            exchanges += 1
            if several {
                sources[k].exchanges += 1
                if let step = sources[k].stepNanoseconds, exchange.trueNanosecondsAtTa >= step { pollsSinceStep[k] += 1 }
            }
            if exchange.lost {
                lost += 1
                sampleThrough(exchange.trueNanosecondsAtTa)
                continue
            }
            let arrival = exchange.trueNanosecondsAtTf
            let header = exchange.header
            // The client's response validation refuses an unsynchronised server before a
            // stamp is made (RFC 5905 §8); the filter only ever sees valid stamps.
            if header.leap == 3 || header.stratum == 0 || header.stratum >= 16 || exchange.te < exchange.tb {
                rejected += 1
                sampleThrough(arrival)
                continue
            }
            sampleBetween(until: max(arrival, previousSampleTime))
            let stamp = Stamp(ta: exchange.ta, tb: exchange.tb, te: exchange.te, tf: exchange.tf,
                              stratum: header.stratum, referenceID: header.referenceID, leap: header.leap,
                              rootDelayNanoseconds: header.rootDelayNanoseconds,
                              rootDispersionNanoseconds: header.rootDispersionNanoseconds)
            noticeDisruption(upTo: exchange.trueNanosecondsAtTa)
            var next = exchange.trueNanosecondsAtTa < burstEnd ? burstSpacingSeconds : pollSeconds
            if let i = burstSends.firstIndex(of: exchange.trueNanosecondsAtTa), i + 1 < burstSends.count {
                next = Double(burstSends[i + 1] - burstSends[i]) / 1e9
            }
            switch clocks[k].process(stamp, nextExchangeInSeconds: next) {
            case .accepted:
                accepted += 1
                let status = clocks[k].parameters.status
                let prefix = several ? "server \(k + 1) " : ""
                if status.contains(.clockStep) { declared.append(LabEvent(name: prefix + "clock-step", atNanoseconds: arrival)) }
                if status.contains(.rateChange) { declared.append(LabEvent(name: prefix + "rate-change", atNanoseconds: arrival)) }
                if status.contains(.rttUpShift) { declared.append(LabEvent(name: prefix + "rtt-upshift", atNanoseconds: arrival)) }
                if several {
                    latest[k] = clocks[k].parameters
                    recordVote(combined.update(sources: latest, count: serverCount, atCounter: exchange.tf, updatedSource: k),
                               at: arrival)
                }
            case .rejected:
                rejected += 1
            }
            let at = max(arrival, previousSampleTime)
            sample(at: at)
            previousSampleTime = at
        }

        let figures = Figures(samples: samples, events: scenario.events,
                              options: figureOptions ?? scenario.figureOptions)
        return SimulationResult(scenario: scenario, figures: figures,
                                samples: sampling.keepSamplesForPlot ? samples : [],
                                exchanges: exchanges, lostExchanges: lost, acceptedStamps: accepted,
                                rejectedStamps: rejected, declaredEvents: declared,
                                boundViolations: violations, boundViolationCount: violationCount,
                                sources: sources)
    }
}
