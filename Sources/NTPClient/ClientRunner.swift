import FeedforwardClock
import KernelStamps
import NTPPacket
import PublishedClock

/// The system clock and the raw counter read together (feedforward-spec §1): raw, realtime,
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

/// The polling loop of `ntpclient HOST`: exchanges on the `PollSchedule`, the filter, the
/// published parameters, refclock samples for time daemons, and one `ExchangeReport` per
/// exchange. With a vmclock page it watches the page's disruption markers between and
/// around exchanges (docs/published-clock.md, "Disruption").
public final class ClientRunner {
    public let server: SocketAddress
    public private(set) var schedule: PollSchedule
    public private(set) var clock: FeedforwardClock
    public private(set) var counters = ClientCounters()
    /// Disruptions the vmclock page signalled so far.
    public private(set) var disruptions = 0
    private let exchanger: Exchanger
    private let publisher: PublishedClockWriter?
    private let refclocks: RefclockOutputs?
    private let vmclock: VMClockPage?
    /// The markers the current parameters were computed under.
    private var marker: VMClockMarker?

    /// `pollSeconds` sizes the filter's windows (§3) and spaces the exchanges after the burst.
    /// `refclockSocketPath` / `refclockSharedMemoryUnit`: send a sample after every update to
    /// chronyd's SOCK refclock / the NTP SHM segment of that unit. `vmclockPath`: the
    /// vmclock page to watch.
    public init(server: SocketAddress, pollSeconds: Double, publishPath: String? = nil,
                refclockSocketPath: String? = nil, refclockSharedMemoryUnit: Int? = nil,
                vmclockPath: String? = nil,
                configuration: FeedforwardConfiguration? = nil) throws(NTPClientError) {
        self.server = server
        schedule = PollSchedule(pollSeconds: pollSeconds)
        var filterConfiguration = configuration ?? FeedforwardConfiguration()
        filterConfiguration.pollPeriodSeconds = pollSeconds
        clock = FeedforwardClock(configuration: filterConfiguration)
        exchanger = try Exchanger()
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

    /// Checks the vmclock page; on a changed marker declares the clock event to the filter,
    /// publishes the unsynchronised parameters under the new marker and restarts the burst at
    /// exchange `index`. True when it did.
    private func checkDisruption(nextExchange index: Int, log: (String) -> Void) -> Bool {
        guard let vmclock, let live = vmclock.marker(), live != marker else { return false }
        let old = marker
        let noticed = monotonicRawNanoseconds()
        clock.noteDisruption(atRawNanoseconds: noticed)
        marker = live
        disruptions += 1
        publisher?.publish(clock.parameters, marker: live)
        schedule.restartBurst(atExchange: index)
        log("vmclock: the counter was disrupted (disruption marker \(old.map { String($0.disruptionMarker) } ?? "?") → \(live.disruptionMarker), generation \(old.map { String($0.generation) } ?? "?") → \(live.generation)): clock unsynchronised until new stamps re-anchor it; polling at once")
        return true
    }

    /// Marks the published clock stopped (a clean exit): readers then report `stopped`
    /// instead of trusting parameters nobody updates (docs/published-clock.md, "Writer").
    public func markStopped() { publisher?.markStopped() }

    /// Longest single wait between checks of `stopRequested` (and of the vmclock page).
    public static let checkIntervalNanoseconds: Int64 = 50_000_000

    /// Runs `count` exchanges (forever when nil), calling `report` after each and `log` once
    /// per kind of rejection. Returns normally after `count`, or within
    /// `checkIntervalNanoseconds` of `stopRequested` turning true; throws when the server
    /// refuses us (DENY/RSTR) or a socket fails.
    public func run(count: Int?, stopRequested: () -> Bool = { false },
                    report: (ExchangeReport) -> Void, log: (String) -> Void) throws(NTPClientError) {
        var index = 0
        var nextSend = monotonicRawNanoseconds()
        if let marker { publisher?.publish(clock.parameters, marker: marker) }
        while count.map({ index < $0 }) ?? true {
            while true {
                if stopRequested() { return }
                if checkDisruption(nextExchange: index, log: log) { nextSend = monotonicRawNanoseconds() }
                let wait = nextSend &- monotonicRawNanoseconds()
                if wait <= 0 { break }
                exchanger.sleep(nanoseconds: min(wait, ClientRunner.checkIntervalNanoseconds))
            }
            let timeout = Int64(schedule.timeoutSeconds(after: index) * 1e9)
            let outcome = try exchanger.exchange(with: server, timeoutNanoseconds: timeout) { rejection in
                // DENY and RSTR end the run with an error that says so: logging them too
                // would report the same refusal twice.
                if counters.record(rejection), !rejection.endsPolling { log(rejection.description) }
            }
            // A disruption during the exchange: the filter refuses its stamp (it began on the
            // old counter) and the burst restarts after it.
            let disruptedDuringExchange = checkDisruption(nextExchange: index + 1, log: log)
            var result = makeReport(for: outcome, index: index, log: log)
            if case .kiss(let code, .stopPolling) = outcome {
                report(result)
                throw .refused(server: server, code: code.asciiCode ?? String(code.rawValue, radix: 16))
            }
            if case .kiss(_, .reducePollRate) = outcome { schedule.reducePollRate() }
            result.pollSeconds = schedule.secondsToNextExchange(after: index)
            report(result)
            nextSend = nextSend &+ Int64(result.pollSeconds * 1e9)
            if disruptedDuringExchange { nextSend = monotonicRawNanoseconds() }
            index += 1
        }
    }

    private func makeReport(for outcome: ExchangeOutcome, index: Int, log: (String) -> Void) -> ExchangeReport {
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
            let stamp = result.stamp
            rtt = Double(stamp.roundTripTicks) * clock.parameters.period * 1e9
            switch clock.process(stamp, nextExchangeInSeconds: schedule.secondsToNextExchange(after: index)) {
            case .accepted:
                reportOutcome = .accepted
                rtt = clock.parameters.lastRTTNanoseconds
                naive = clock.parameters.naiveOffsetNanoseconds
                publisher?.publish(clock.parameters, marker: marker)
                accepted = true
            case .rejected(let reason):
                reportOutcome = .filterRejected
                if counters.record(reason) { log("stamp refused by the filter: \(reason)") }
            }
        }
        let reading = SystemClockReading.read()
        let parameters = clock.parameters
        // The daemons get exactly this exchange's sysoff (same reading), once per update.
        if accepted, let refclocks, let sample = RefclockSample(parameters: parameters, reading: reading) {
            refclocks.send(sample, log: log)
        }
        let hasEstimate = !parameters.status.contains(.noEstimate)
        return ExchangeReport(
            exchange: index, outcome: reportOutcome, localTimeUnixNanoseconds: reading.realtimeNanoseconds,
            rttNanoseconds: rtt, naiveOffsetNanoseconds: naive, parameters: parameters,
            maxErrorNanoseconds: parameters.maxError(atCounter: reading.rawNanoseconds),
            status: parameters.status(atCounter: reading.rawNanoseconds),
            systemClockOffsetNanoseconds: hasEstimate ? reading.systemClockOffset(from: parameters) : nil,
            userSpaceTransmitStamp: userTransmit, userSpaceReceiveStamp: userReceive,
            stratum: stratum, pollSeconds: schedule.pollSeconds)
    }

    /// True when the last published parameters say the clock is synchronised.
    public var isSynchronised: Bool {
        !clock.parameters.status.contains(.unsynchronised) && !clock.parameters.status.contains(.noEstimate)
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
