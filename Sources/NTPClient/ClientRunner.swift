import FeedforwardClock
import KernelStamps
import NTPPacket
import PublishedClock

/// The system clock and the raw counter read together (docs/feedforward.md §1): raw, realtime,
/// raw, keeping the tightest of a few tries; the realtime read is paired with the middle of
/// its raw bracket.
public struct SystemClockReading: Sendable, Equatable {
    public var rawNanoseconds: Int64
    public var realtimeNanoseconds: Int64
    public var bracketWidthNanoseconds: Int64

    public static func read(tries: Int = 3) -> SystemClockReading {
        var best = SystemClockReading(rawNanoseconds: 0, realtimeNanoseconds: 0, bracketWidthNanoseconds: .max)
        for _ in 0..<max(1, tries) {
            let before = monotonicRawNanoseconds()
            let realtime = KernelStamps.realtimeNanoseconds()
            let after = monotonicRawNanoseconds()
            let width = after &- before
            if width < best.bracketWidthNanoseconds {
                best = SystemClockReading(rawNanoseconds: before &+ width / 2, realtimeNanoseconds: realtime,
                                          bracketWidthNanoseconds: width)
            }
        }
        return best
    }

    /// CLOCK_REALTIME − Ca at this reading, ns (positive: the system clock is ahead).
    public func systemClockOffset(from parameters: ClockParameters) -> Double {
        let ca = parameters.absoluteTimeParts(atCounter: rawNanoseconds)
        return Double(realtimeNanoseconds &- ca.nanoseconds) - ca.fraction
    }
}

/// One server of a `ClientRunner`: its own poll schedule, socket and filter over the shared
/// raw counter (docs/feedforward.md, "Several sources").
public struct ClientSource {
    /// HOST[:PORT] as the user gave it (the address when given as one).
    public let name: String
    public let server: SocketAddress
    public fileprivate(set) var schedule: PollSchedule
    public fileprivate(set) var clock: FeedforwardClock
    /// Exchanges made with this source (every attempt).
    public fileprivate(set) var exchanges = 0
    /// RFC 5905 §13's reach register: bit 0 is the last exchange, 1 when its stamp was used.
    public fileprivate(set) var reach: UInt8 = 0
    public fileprivate(set) var stratum: UInt8 = 0
    /// A DENY or RSTR kiss: this source is no longer polled.
    public fileprivate(set) var refused = false
    fileprivate let exchanger: Exchanger
    fileprivate var nextSend: Int64 = 0
}

/// The polling loop of `ntpclient HOST...`: exchanges with each server on its own
/// `PollSchedule`, one filter per server and, with several, the vote and combination of
/// `CombinedClock` (docs/feedforward.md, "Several sources"); the published parameters,
/// refclock samples for time daemons, and one `ExchangeReport` per exchange. With a vmclock
/// page it watches the page's disruption markers between and around exchanges
/// (docs/published-clock.md, "Disruption").
public final class ClientRunner {
    public private(set) var sources: [ClientSource]
    /// The vote over all sources (several servers only).
    public private(set) var combined: CombinedClock
    public private(set) var counters = ClientCounters()
    /// Disruptions the vmclock page signalled so far.
    public private(set) var disruptions = 0
    private var latest = InlineArray<8, ClockParameters>(repeating: .empty)
    private let publisher: PublishedClockWriter?
    private let refclocks: RefclockOutputs?
    private let vmclock: VMClockPage?
    /// The markers the current parameters were computed under.
    private var marker: VMClockMarker?

    /// The first (with one server: the only) server.
    public var server: SocketAddress { sources[0].server }
    public var schedule: PollSchedule { sources[0].schedule }
    public var clock: FeedforwardClock { sources[0].clock }

    /// The clock this runner publishes: the one filter's with one server, else the combination.
    public var parameters: ClockParameters {
        sources.count == 1 ? sources[0].clock.parameters : combined.parameters
    }

    /// One server; see `init(servers:...)`.
    public convenience init(server: SocketAddress, pollSeconds: Double, publishPath: String? = nil,
                            refclockSocketPath: String? = nil, refclockSharedMemoryUnit: Int? = nil,
                            vmclockPath: String? = nil,
                            configuration: FeedforwardConfiguration? = nil) throws(NTPClientError) {
        try self.init(servers: [(name: "\(server)", address: server)], pollSeconds: pollSeconds,
                      publishPath: publishPath, refclockSocketPath: refclockSocketPath,
                      refclockSharedMemoryUnit: refclockSharedMemoryUnit, vmclockPath: vmclockPath,
                      configuration: configuration)
    }

    /// `servers`: 1 to `SourceSelection.capacity`; `minimumSources` agreeing ones make the
    /// clock synchronised (default: a majority of `servers`).
    /// `pollSeconds` sizes the filter's windows (§3) and spaces the exchanges after the burst.
    /// `refclockSocketPath` / `refclockSharedMemoryUnit`: send a sample after every update to
    /// chronyd's SOCK refclock / the NTP SHM segment of that unit. `vmclockPath`: the
    /// vmclock page to watch.
    public init(servers: [(name: String, address: SocketAddress)], pollSeconds: Double, publishPath: String? = nil,
                refclockSocketPath: String? = nil, refclockSharedMemoryUnit: Int? = nil,
                vmclockPath: String? = nil, minimumSources: Int? = nil,
                configuration: FeedforwardConfiguration? = nil) throws(NTPClientError) {
        precondition(!servers.isEmpty && servers.count <= SourceSelection.capacity, "1 to 8 servers")
        var filterConfiguration = configuration ?? FeedforwardConfiguration()
        filterConfiguration.pollPeriodSeconds = pollSeconds
        var made: [ClientSource] = []
        for server in servers {
            made.append(ClientSource(name: server.name, server: server.address,
                                     schedule: PollSchedule(pollSeconds: pollSeconds),
                                     clock: FeedforwardClock(configuration: filterConfiguration),
                                     exchanger: try Exchanger()))
        }
        sources = made
        combined = CombinedClock(minimumSources: minimumSources ?? CombinedClock.majority(of: servers.count))
        do {
            vmclock = try vmclockPath.map { (path) throws(KernelError) in try VMClockPage(path: path) }
        } catch {
            throw .kernel(error)
        }
        marker = vmclock?.marker()
        if vmclock != nil && marker == nil {
            throw .kernel(KernelError(operation: "read vmclock page \(vmclockPath ?? "")", code: 0,
                                      detail: "the page stayed mid-update for 1000 reads", hint: "try again"))
        }
        do {
            publisher = try publishPath.map { (path) throws(PublishedClockError) in
                try PublishedClockWriter(path: path, vmclockPath: vmclockPath)
            }
        } catch {
            switch error {
            case .kernel(let kernelError): throw .kernel(kernelError)
            case .layout(let path, let problem): throw .publishedClock(path: path, problem: problem)
            }
        }
        let outputs = try RefclockOutputs(socketPath: refclockSocketPath, sharedMemoryUnit: refclockSharedMemoryUnit)
        refclocks = outputs.isEmpty ? nil : outputs
    }

    /// Checks the vmclock page; on a changed marker declares the clock event to every filter,
    /// publishes the unsynchronised parameters under the new marker and restarts every
    /// source's burst at its next exchange. True when it did.
    private func checkDisruption(log: (String) -> Void) -> Bool {
        guard let vmclock, let live = vmclock.marker(), live != marker else { return false }
        let old = marker
        let noticed = monotonicRawNanoseconds()
        for k in sources.indices {
            sources[k].clock.noteDisruption(atRawNanoseconds: noticed)
            sources[k].schedule.restartBurst(atExchange: sources[k].exchanges)
            latest[k] = sources[k].clock.parameters
        }
        if sources.count > 1 {
            combined.update(sources: latest, count: sources.count, atCounter: noticed, updatedSource: 0)
        }
        marker = live
        disruptions += 1
        publisher?.publish(parameters, marker: live)
        log("vmclock: the counter was disrupted (disruption marker \(old.map { String($0.disruptionMarker) } ?? "?") → \(live.disruptionMarker), generation \(old.map { String($0.generation) } ?? "?") → \(live.generation)): clock unsynchronised until new stamps re-anchor it; polling at once")
        return true
    }

    /// Marks the published clock stopped (a clean exit): readers then report `stopped`
    /// instead of trusting parameters nobody updates (docs/published-clock.md, "Writer").
    public func markStopped() { publisher?.markStopped() }

    /// Longest single wait between checks of `stopRequested` (and of the vmclock page).
    public static let checkIntervalNanoseconds: Int64 = 50_000_000

    /// Runs `count` exchanges in all (forever when nil), calling `report` after each and `log`
    /// once per kind of rejection. Each source polls on its own schedule, the sources' first
    /// exchanges a quarter second apart. Returns normally after `count`, or within
    /// `checkIntervalNanoseconds` of `stopRequested` turning true; throws when a socket fails,
    /// or when a server refuses us (DENY/RSTR) and no other is left to poll.
    public func run(count: Int?, stopRequested: () -> Bool = { false },
                    report: (ExchangeReport) -> Void, log: (String) -> Void) throws(NTPClientError) {
        var index = 0
        let start = monotonicRawNanoseconds()
        for k in sources.indices { sources[k].nextSend = start &+ Int64(k) * 250_000_000 }
        if let marker { publisher?.publish(parameters, marker: marker) }
        while count.map({ index < $0 }) ?? true {
            var k = -1
            for i in sources.indices where !sources[i].refused {
                if k < 0 || sources[i].nextSend < sources[k].nextSend { k = i }
            }
            if k < 0 { return }
            while true {
                if stopRequested() { return }
                if checkDisruption(log: log) { pollAllNow() }
                let wait = sources[k].nextSend &- monotonicRawNanoseconds()
                if wait <= 0 { break }
                sources[k].exchanger.sleep(nanoseconds: min(wait, ClientRunner.checkIntervalNanoseconds))
            }
            let sourceIndex = sources[k].exchanges
            let timeout = Int64(sources[k].schedule.timeoutSeconds(after: sourceIndex) * 1e9)
            let outcome = try sources[k].exchanger.exchange(with: sources[k].server, timeoutNanoseconds: timeout) { rejection in
                // DENY and RSTR end the run with an error that says so: logging them too
                // would report the same refusal twice.
                if counters.record(rejection), !rejection.endsPolling { log(rejection.description) }
            }
            // A disruption during the exchange: the filter refuses its stamp (it began on the
            // old counter) and the bursts restart after it.
            let disruptedDuringExchange = checkDisruption(log: log)
            var result = makeReport(for: outcome, source: k, index: index, log: log)
            sources[k].exchanges += 1
            index += 1
            if case .kiss(let code, .stopPolling) = outcome {
                report(result)
                let refusal = NTPClientError.refused(server: sources[k].server, code: code.asciiCode ?? String(code.rawValue, radix: 16))
                if sources.indices.allSatisfy({ $0 == k || sources[$0].refused }) { throw refusal }
                sources[k].refused = true
                log("\(refusal); the other servers are still polled")
                continue
            }
            if case .kiss(_, .reducePollRate) = outcome { sources[k].schedule.reducePollRate() }
            result.pollSeconds = sources[k].schedule.secondsToNextExchange(after: sourceIndex)
            report(result)
            sources[k].nextSend = sources[k].nextSend &+ Int64(result.pollSeconds * 1e9)
            if disruptedDuringExchange { pollAllNow() }
        }
    }

    /// After a disruption every source polls at once, a quarter second apart.
    private func pollAllNow() {
        let now = monotonicRawNanoseconds()
        for k in sources.indices { sources[k].nextSend = now &+ Int64(k) * 250_000_000 }
    }

    private func makeReport(for outcome: ExchangeOutcome, source k: Int, index: Int, log: (String) -> Void) -> ExchangeReport {
        var reportOutcome: ExchangeReport.Outcome
        var rtt: Double? = nil
        var naive: Double? = nil
        var userTransmit = false, userReceive = false
        var stratum: UInt8 = 0
        var accepted = false
        switch outcome {
        case .timedOut:
            counters.recordTimeout()
            reportOutcome = .timedOut
        case .kiss:
            reportOutcome = .kiss
        case .unusable:
            reportOutcome = .unusableAnswer
        case .answered(let result):
            userTransmit = result.userSpaceTransmitStamp
            userReceive = result.userSpaceReceiveStamp
            counters.recordUserSpaceStamps(transmit: userTransmit, receive: userReceive)
            stratum = result.response.header.stratum
            sources[k].stratum = stratum
            let stamp = result.stamp
            rtt = Double(stamp.roundTripTicks) * sources[k].clock.parameters.periodSecondsPerTick * 1e9
            let next = sources[k].schedule.secondsToNextExchange(after: sources[k].exchanges)
            switch sources[k].clock.process(stamp, nextExchangeInSeconds: next) {
            case .accepted:
                reportOutcome = .accepted
                let own = sources[k].clock.parameters
                rtt = own.lastRTTNanoseconds
                naive = own.naiveOffsetNanoseconds
                if sources.count > 1 {
                    latest[k] = own
                    combined.update(sources: latest, count: sources.count, atCounter: stamp.tf, updatedSource: k)
                }
                if !parameters.status.contains(.noEstimate) { publisher?.publish(parameters, marker: marker) }
                accepted = true
            case .rejected(let reason):
                reportOutcome = .filterRejected
                if counters.record(reason) { log("stamp refused by the filter: \(reason)") }
            }
        }
        sources[k].reach = sources[k].reach << 1 | (accepted ? 1 : 0)
        let reading = SystemClockReading.read()
        let parameters = self.parameters
        // The daemons get exactly this exchange's sysoff (same reading), once per update.
        if accepted, !parameters.status.contains(.noEstimate), let refclocks,
           let sample = RefclockSample(parameters: parameters, reading: reading) {
            refclocks.send(sample, log: log)
        }
        let hasEstimate = !parameters.status.contains(.noEstimate)
        var report = ExchangeReport(
            exchange: index, outcome: reportOutcome, localTimeUnixNanoseconds: reading.realtimeNanoseconds,
            rttNanoseconds: rtt, naiveOffsetNanoseconds: naive, parameters: parameters,
            maxErrorNanoseconds: parameters.maxError(atCounter: reading.rawNanoseconds),
            status: parameters.status(atCounter: reading.rawNanoseconds),
            systemClockOffsetNanoseconds: hasEstimate ? reading.systemClockOffset(from: parameters) : nil,
            userSpaceTransmitStamp: userTransmit, userSpaceReceiveStamp: userReceive,
            stratum: stratum, pollSeconds: sources[k].schedule.pollSeconds)
        if sources.count > 1 {
            let selection = combined.selection
            report.source = sources[k].name
            report.sourceVerdict = k < selection.count ? selection.verdicts[k] : .unusable
            if !selection.outcome.isSynchronised { report.selectionProblem = selection.outcome }
            report.sources = sourceReports(atCounter: reading.rawNanoseconds)
        }
        return report
    }

    /// Every source's state at `counter` against the published clock (`ntpclient --sources`).
    public func sourceReports(atCounter counter: Int64) -> [SourceReport] {
        let published = parameters
        let selection = combined.selection
        let publishedNow = published.absoluteTimeParts(atCounter: counter)
        return sources.indices.map { i in
            let own = sources[i].clock.parameters
            let hasEstimate = !own.status.contains(.noEstimate)
            var offset: Double? = nil
            if hasEstimate, !published.status.contains(.noEstimate) {
                let now = own.absoluteTimeParts(atCounter: counter)
                offset = Double(now.nanoseconds &- publishedNow.nanoseconds) + (now.fraction - publishedNow.fraction)
            }
            return SourceReport(
                name: sources[i].name, stratum: sources[i].stratum, reach: sources[i].reach,
                pollSeconds: sources[i].schedule.pollSeconds, offsetFromClockNanoseconds: offset,
                lastNaiveOffsetNanoseconds: hasEstimate ? own.naiveOffsetNanoseconds : nil,
                errorEstimateNanoseconds: hasEstimate ? own.errorEstimateNanoseconds : nil,
                maxErrorNanoseconds: hasEstimate ? own.maxError(atCounter: counter) : nil,
                condition: CombinedClock.condition(of: own, atCounter: counter),
                verdict: i < selection.count ? selection.verdicts[i] : .unusable,
                isPeriodSource: selection.periodSource == i)
        }
    }

    /// True when the published parameters say the clock is synchronised (with several
    /// servers: a majority agreed at the last vote).
    public var isSynchronised: Bool {
        let status = parameters.status
        if status.contains(.unsynchronised) || status.contains(.noEstimate) { return false }
        return sources.count == 1 || combined.selection.outcome.isSynchronised
    }
}

/// SNTP mode (`ntpclient --once`, like ntpdig): a few exchanges, the one with the smallest
/// delay wins (RFC 4330 §5's single-sample arithmetic, best of a few as chronyd -Q does).
public struct SNTPResult: Sendable, Equatable {
    /// Server minus system clock (positive: the system clock is behind), ns.
    public var offsetNanoseconds: Int64
    public var delayNanoseconds: Int64
    /// Hard bound on the offset's error: delay/2 + the server's root delay/2 + root dispersion.
    public var errorBoundNanoseconds: Int64
    public var stratum: UInt8
    public var leap: NTPLeapIndicator
    public var referenceID: NTPReferenceID
    public var answers: Int
    public var attempts: Int

    /// Picks the best of `results` (smallest delay); nil when there are none.
    public init?(results: [ExchangeResult], attempts: Int) {
        guard let best = results.min(by: { $0.systemClockExchange.delayNanoseconds < $1.systemClockExchange.delayNanoseconds })
        else { return nil }
        let (offset, delay) = best.systemClockExchange
        let header = best.response.header
        offsetNanoseconds = offset
        delayNanoseconds = delay
        errorBoundNanoseconds = max(0, delay) / 2 + header.rootDelay.nanoseconds / 2 + header.rootDispersion.nanoseconds
        stratum = header.stratum
        leap = header.leapIndicator
        referenceID = header.referenceID
        answers = results.count
        self.attempts = attempts
    }
}

/// What an SNTP run (`Exchanger.sntp`) found: the best answer, if any, and why the other
/// attempts gave nothing, so the caller can say it in one line.
public struct SNTPOutcome: Sendable, Equatable {
    public var result: SNTPResult?
    /// Attempts that got no answer before their timeout.
    public var timeouts: Int
    /// Every refused datagram, by kind.
    public var counters: ClientCounters
    /// The first refused datagram that answered our request, to name why none was usable.
    public var firstRejection: ResponseRejection?
    /// A RATE kiss ended the run early.
    public var rateKissed: Bool
}

extension Exchanger {
    /// `attempts` exchanges `intervalNanoseconds` apart; stops early on a kiss. Silent: the
    /// outcome carries what went wrong, so a tool prints one line, not one per attempt.
    /// Throws when the server refuses us (DENY, RSTR: RFC 5905 §7.4) or a socket fails.
    public func sntp(server: SocketAddress, attempts: Int = 4, intervalNanoseconds: Int64 = 500_000_000,
                     timeoutNanoseconds: Int64 = 1_000_000_000) throws(NTPClientError) -> SNTPOutcome {
        var results: [ExchangeResult] = []
        var outcome = SNTPOutcome(result: nil, timeouts: 0, counters: ClientCounters(), firstRejection: nil, rateKissed: false)
        var made = 0
        for attempt in 0..<attempts {
            if attempt > 0 { sleep(nanoseconds: intervalNanoseconds) }
            made = attempt + 1
            let exchanged = try exchange(with: server, timeoutNanoseconds: timeoutNanoseconds) { rejection in
                _ = outcome.counters.record(rejection)
            }
            switch exchanged {
            case .answered(let result): results.append(result)
            case .unusable(let rejection): if outcome.firstRejection == nil { outcome.firstRejection = rejection }
            case .timedOut: outcome.timeouts += 1
            case .kiss(let code, let action):
                if action == .stopPolling {
                    throw .refused(server: server, code: code.asciiCode ?? String(code.rawValue, radix: 16))
                }
                if outcome.firstRejection == nil { outcome.firstRejection = .kiss(code, action) }
                if action == .reducePollRate { outcome.rateKissed = true }
            }
            if outcome.rateKissed { break }
        }
        outcome.result = SNTPResult(results: results, attempts: made)
        return outcome
    }
}
