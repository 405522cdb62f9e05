import ToolSupport
import FeedforwardClock

/// What the vote made of one simulated server over a run.
public struct SimulatedSourceSummary: Sendable, Equatable {
    public var serverIndex: Int
    public var exchanges: Int
    /// Votes (one per accepted stamp of any server) in which it was selected, a falseticker,
    /// unusable, or a candidate without majority.
    public var selectedVotes: Int
    public var falsetickerVotes: Int
    public var unusableVotes: Int
    public var candidateVotes: Int
    /// The server's first step (its time moved away from truth), if it has one.
    public var stepNanoseconds: Int64?
    /// First vote at or after the step that called it a falseticker (true time of the vote).
    public var flaggedNanoseconds: Int64?
    /// Its own polls from the step up to and including the one that got it flagged.
    public var pollsUntilFlagged: Int?
    /// Votes after it was first flagged in which it was nevertheless selected (goal 0).
    public var selectedAfterFlagged: Int

    public init(serverIndex: Int) {
        self.serverIndex = serverIndex
        exchanges = 0
        selectedVotes = 0; falsetickerVotes = 0; unusableVotes = 0; candidateVotes = 0
        stepNanoseconds = nil; flaggedNanoseconds = nil; pollsUntilFlagged = nil
        selectedAfterFlagged = 0
    }
}

/// Runs a scenario with several servers: one feedforward filter per server over the same
/// client counter, the vote and combination of `CombinedClock` after every accepted stamp,
/// and the figures of the combined clock a reader would see (the same sampling as
/// `SimulationRunner`: at each stamp and at evenly spaced instants between).
///
/// The servers' exchanges are merged in the order their requests leave; each server's
/// filter is told its own next exchange comes after the burst spacing or P.
enum MultiSourceRunner {
    static func run(_ scenario: Scenario, sampling: SamplingOptions, figureOptions: FigureOptions?) -> SimulationResult {
        let configuration = scenario.configuration
        let count = min(configuration.serverCount, SourceSelection.capacity)
        let pollSeconds = Double(configuration.pollNanoseconds) / 1e9
        let burstEnd = Int64(max(0, configuration.startupBurstCount - 1)) * configuration.startupBurstSpacingNanoseconds
        let burstSpacingSeconds = Double(configuration.startupBurstSpacingNanoseconds) / 1e9
        let start = configuration.startUnixNanoseconds
        var sampler = OscillatorModel(parameters: configuration.oscillator, seed: configuration.seed)

        var streams = (0..<count).map { Simulator(configuration: configuration, serverIndex: $0) }
        var heads = (0..<count).map { streams[$0].next() }
        var filters = (0..<count).map { _ in FeedforwardClock(configuration: FeedforwardConfiguration(pollPeriodSeconds: pollSeconds)) }
        var latest = InlineArray<8, ClockParameters>(repeating: .empty)
        var combined = CombinedClock(minimumSources: CombinedClock.majority(of: count))
        var summaries = (0..<count).map { SimulatedSourceSummary(serverIndex: $0) }
        for k in 0..<count {
            let steps = k == 0 ? configuration.server.steps : configuration.additionalServers[k - 1].server.steps
            summaries[k].stepNanoseconds = steps.map(\.atNanoseconds).min()
        }
        var pollsSinceStep = [Int](repeating: 0, count: count)

        var samples: [ErrorSample] = []
        samples.reserveCapacity(count * Int(configuration.durationNanoseconds / configuration.pollNanoseconds + 16)
                                * (sampling.samplesBetweenExchanges + 1))
        var exchanges = 0, lost = 0, accepted = 0, rejected = 0
        var declared: [LabEvent] = []
        var violations: [ErrorSample] = []
        var violationCount = 0
        var previousSampleTime: Int64 = 0

        func sample(at t: Int64) {
            let parameters = combined.parameters
            guard !parameters.status.contains(.noEstimate),
                  !(configuration.oscillator.migration?.blackout.contains(t) ?? false) else { return }
            let counter = sampler.counter(atTrueNanoseconds: t)
            let error = parameters.absoluteTime(atCounter: counter) - (start + t)
            let bound = parameters.maxError(atCounter: counter)
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
            for k in 1...n { sample(at: previousSampleTime + span * Int64(k) / Int64(n + 1)) }
        }

        while true {
            var k = -1
            for i in 0..<count {
                guard let head = heads[i] else { continue }
                if k < 0 || head.trueNanosecondsAtTa < heads[k]!.trueNanosecondsAtTa { k = i }
            }
            guard k >= 0, let exchange = heads[k] else { break }
            heads[k] = streams[k].next()
            exchanges += 1
            summaries[k].exchanges += 1
            if let step = summaries[k].stepNanoseconds, exchange.trueNanosecondsAtTa >= step { pollsSinceStep[k] += 1 }
            if exchange.lost {
                lost += 1
                continue
            }
            let arrival = exchange.trueNanosecondsAtTf
            // Stamps of different servers may arrive out of request order; sample only forward.
            let at = max(arrival, previousSampleTime)
            sampleBetween(until: at)
            let header = exchange.header
            let stamp = Stamp(ta: exchange.ta, tb: exchange.tb, te: exchange.te, tf: exchange.tf,
                              stratum: header.stratum, referenceID: header.referenceID, leap: header.leap,
                              rootDelayNanoseconds: header.rootDelayNanoseconds,
                              rootDispersionNanoseconds: header.rootDispersionNanoseconds)
            let next = exchange.trueNanosecondsAtTa < burstEnd ? burstSpacingSeconds : pollSeconds
            switch filters[k].process(stamp, nextExchangeInSeconds: next) {
            case .accepted:
                accepted += 1
                let status = filters[k].parameters.status
                if status.contains(.clockStep) { declared.append(LabEvent(name: "server \(k + 1) clock-step", atNanoseconds: arrival)) }
                if status.contains(.rateChange) { declared.append(LabEvent(name: "server \(k + 1) rate-change", atNanoseconds: arrival)) }
                latest[k] = filters[k].parameters
                let vote = combined.update(sources: latest, count: count, atCounter: exchange.tf, updatedSource: k)
                for i in 0..<count {
                    switch vote.verdicts[i] {
                    case .selected:
                        summaries[i].selectedVotes += 1
                        if summaries[i].flaggedNanoseconds != nil { summaries[i].selectedAfterFlagged += 1 }
                    case .falseticker:
                        summaries[i].falsetickerVotes += 1
                        if summaries[i].flaggedNanoseconds == nil, let step = summaries[i].stepNanoseconds, arrival >= step {
                            summaries[i].flaggedNanoseconds = arrival
                            summaries[i].pollsUntilFlagged = pollsSinceStep[i]
                        }
                    case .unusable: summaries[i].unusableVotes += 1
                    case .candidate: summaries[i].candidateVotes += 1
                    }
                }
            case .rejected:
                rejected += 1
            }
            sample(at: at)
            previousSampleTime = at
        }

        let figures = Figures(samples: samples, events: scenario.events,
                              options: figureOptions ?? scenario.figureOptions)
        var result = SimulationResult(scenario: scenario, figures: figures,
                                      samples: sampling.keepSamplesForPlot ? samples : [],
                                      exchanges: exchanges, lostExchanges: lost, acceptedStamps: accepted,
                                      rejectedStamps: rejected, declaredEvents: declared,
                                      boundViolations: violations, boundViolationCount: violationCount)
        result.sources = summaries
        return result
    }
}

extension SimulatedSourceSummary {
    /// One line for the report: the server's votes and, if it stepped, when it was flagged.
    public var line: String {
        var text = "server \(serverIndex + 1): \(exchanges) exchanges; votes selected \(selectedVotes), "
            + "falseticker \(falsetickerVotes), unusable \(unusableVotes), no-majority \(candidateVotes)"
        if let step = stepNanoseconds {
            if let flagged = flaggedNanoseconds, let polls = pollsUntilFlagged {
                text += "; stepped at \(formatDuration(step)), flagged falseticker \(formatDuration(flagged - step)) later "
                    + "(poll \(polls) after the step), selected \(selectedAfterFlagged) times after"
            } else {
                text += "; stepped at \(formatDuration(step)), NEVER flagged"
            }
        }
        return text
    }

    func json() -> JSONValue {
        var members = [
            JSONMember("server", .integer(Int64(serverIndex + 1))),
            JSONMember("exchanges", .integer(Int64(exchanges))),
            JSONMember("selectedVotes", .integer(Int64(selectedVotes))),
            JSONMember("falsetickerVotes", .integer(Int64(falsetickerVotes))),
            JSONMember("unusableVotes", .integer(Int64(unusableVotes))),
            JSONMember("noMajorityVotes", .integer(Int64(candidateVotes))),
            JSONMember("selectedAfterFlagged", .integer(Int64(selectedAfterFlagged))),
        ]
        if let step = stepNanoseconds { members.append(JSONMember("stepNanoseconds", .integer(step))) }
        if let flagged = flaggedNanoseconds { members.append(JSONMember("flaggedNanoseconds", .integer(flagged))) }
        if let polls = pollsUntilFlagged { members.append(JSONMember("pollsUntilFlagged", .integer(Int64(polls)))) }
        return .object(members)
    }
}
