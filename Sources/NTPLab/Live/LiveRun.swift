#if canImport(Glibc)
import Glibc
#endif
import FeedforwardClock
import KernelStamps
import NTPClient
import NTPServer
import PublishedClock
import Synchronization
import ToolSupport

/// One client's measurements in a live run.
public struct LiveClientResult: Sendable {
    public var label: String
    /// Every error sample, in time order (ns since the run's origin).
    public var samples: [ErrorSample]
    public var figures: Figures
    /// How many samples came from the exchanges themselves (ours only) and from reads between.
    public var exchangeSamples: Int
    public var betweenSamples: Int
    /// Reads that could not be used (no estimate yet, no answer, too wide a read bracket).
    public var skippedReads: Int
    /// |error| > bound: how many, and the first few (time, error, bound).
    public var boundViolationCount: Int
    public var boundViolations: [ErrorSample]
    public var notes: [String]
}

/// What a live run measured.
public struct LiveResult: Sendable {
    public var plan: LivePlan
    /// Host CLOCK_REALTIME at the run's time zero.
    public var originUnixNanoseconds: Int64
    public var ours: LiveClientResult
    public var peer: LiveClientResult?
    public var relayCounters: [RelayCounters]
    public var serverCounters: ServerCounters
    public var exchanges: Int
    public var acceptedExchanges: Int
    /// Our client's exchanges as `ntpclient --json` prints them, one JSON line each.
    public var exchangeLines: [String]
    /// The line `--exchanges FILE` holds for one exchange: the very bytes `ntpclient --json`
    /// prints for it, so the lab's files and the tool's output compare with `diff`.
    public static func exchangeLine(for report: ExchangeReport) -> String { report.jsonLine }
    /// True when the lab's threads and chronyd ran at real-time priority.
    public var realtimeScheduling: Bool
    /// True when the relays busy-polled (`LiveOptions.relayBusyPolling` with real-time scheduling).
    public var relaysBusyPolled: Bool
    /// Measured before time zero with SNTP exchanges (host clock at both ends): the path's
    /// (forward − backward)/2 and smallest round trip, direct to the server and through our
    /// relay. The model's own asymmetry is (forward − backward minimum)/2; the rest is the
    /// loopback, the server and the relay.
    public var directPath: (asymmetryNanoseconds: Int64, delayNanoseconds: Int64)?
    public var relayPath: (asymmetryNanoseconds: Int64, delayNanoseconds: Int64)?
    public var peerRelayPath: (asymmetryNanoseconds: Int64, delayNanoseconds: Int64)?
}

/// How a live run is set up apart from its plan.
public struct LiveOptions: Sendable {
    public var compareChrony = false
    /// chronyd's path; nil: the usual places.
    public var chronydPath: String? = nil
    /// Reads of each clock between exchanges: every poll / this (at least every 2 s).
    public var readsPerPoll: Int = 4
    /// Run the lab's threads and chronyd at SCHED_FIFO priority 10 when permitted (root).
    public var realtimeScheduling = true
    /// Relays poll without sleeping (`RelayConfiguration.busyPolling`): a core per relay for
    /// the run, in exchange for delivering packets on the model's schedule.
    public var relayBusyPolling = true
    /// Asked between reads; true ends the run at once with an error (chronyd, the relays and
    /// the server are stopped on the way out).
    public var interrupted: (@Sendable () -> Bool)? = nil
    public init() {}
}

/// Runs a `LivePlan` with real sockets on loopback.
///
/// In-process, not child processes: the server is `ServingLoop` and the client `ClientRunner`,
/// the very code `stratumd` and `ntpclient` are thin shells over, each on its own threads.
/// Why: `swift run ntplab` builds only ntplab and its libraries, so the sibling executables
/// may not exist on a fresh checkout, and building them from inside a run would need the
/// source tree and minutes of compiling. The client still publishes its clock to a file and
/// the lab reads it back with `PublishedClockReader`, as another process would.
///
/// Truth: the server serves this host's CLOCK_REALTIME; the relay rewrites the served stamps
/// by the plan's known transform; so the true time at host time R is `served(R)`.
/// - Ours at each exchange: error = Ca − served(R) = −systemClockOffset − correction(R),
///   from the report `ntpclient --json` prints (R is read in the same raw/realtime bracket).
/// - Ours between exchanges: parameters from the published file, a raw/realtime bracket,
///   error = Ca(raw) − served(realtime), bound = maxError aged to that raw counter.
/// - chronyd: its tracking report's correction (cooked − system clock) read with a realtime
///   bracket: error = correction − (served(R) − R), bound = root delay/2 + root dispersion.
public enum LiveRunner {
    public static func run(_ plan: LivePlan, options: LiveOptions = LiveOptions(),
                           progress: (String) -> Void = { _ in }) throws(LabError) -> LiveResult {
        // The lab's threads (server, relays, client, reader) and chronyd inherit this
        // thread's scheduling: real-time when allowed, so that other work on the machine
        // does not turn into relay lateness (path asymmetry the scenario does not have).
        let realtimeScheduling = options.realtimeScheduling && ThreadScheduling.realtime(priority: 10).applyToCallingThread()
        defer { if realtimeScheduling { ThreadScheduling.normal(nice: 0).applyToCallingThread() } }
        // Relays spin only with real-time scheduling: spinning at the same priority as the
        // server and client would delay their wake-ups by a scheduler slice instead.
        let relaysBusyPoll = options.relayBusyPolling && realtimeScheduling
        // The server: this host's clock, served as a stratum-1 reference.
        var serverConfiguration = ServerConfiguration(listenAddresses: [.loopbackIPv4(port: 0)], threads: 1,
                                                      identity: ServerState.Identity(precision: measuredClockPrecision(),
                                                                                     serveUnsynchronised: true),
                                                      rateLimit: nil)
        serverConfiguration.clientTableCapacity = 64
        let server: ServingLoop
        do throws(ServerError) {
            server = try ServingLoop(configuration: serverConfiguration)
            try server.start()
        } catch {
            throw LabError("server: \(error.message)")
        }
        defer { server.stop() }
        let serverAddress = server.boundAddresses[0]
        // Warm the server's path first: a fresh process's first response can leave many
        // milliseconds after its transmit stamp was taken (page faults, lazy set-up), an
        // asymmetry no real stratum-1 server that has run for a while shows.
        let direct = try warmUp(serverAddress, exchanges: 6)

        // Time zero: CLOCK_REALTIME (for the transform and the samples) and CLOCK_MONOTONIC
        // (for the relays' network events), read together, a moment from now.
        let lead: Int64 = 500_000_000
        let origin = realtimeNanoseconds() + lead
        let startMonotonic = clockNanoseconds(.monotonic) + lead
        let transform = plan.transform(originUnixNanoseconds: origin)

        func relay() throws(LabError) -> ImpairmentRelay {
            var configuration = RelayConfiguration(upstreamAddress: serverAddress, network: plan.network)
            configuration.seed = plan.seed
            configuration.transform = transform
            configuration.startMonotonicNanoseconds = startMonotonic
            configuration.maximumClients = 64  // slots recycle: each request has a new source port
            configuration.busyPolling = relaysBusyPoll
            return try ImpairmentRelay(configuration)
        }
        let ourRelay = try relay()
        let peerRelay = options.compareChrony ? try relay() : nil

        // chronyd first: it takes a moment to come up, and its iburst should start with ours.
        var peer: ChronyPeer? = nil
        if let peerRelay {
            peer = try ChronyPeer(server: peerRelay.listenAddress, pollExponent: plan.chronyPollExponent,
                                  chronydPath: options.chronydPath)
        }
        defer {
            peer?.stop()
            peer?.removeDirectory()
        }
        try ourRelay.start()
        try peerRelay?.start()
        defer {
            ourRelay.stop()
            peerRelay?.stop()
        }
        // And each relay's (its first upstream socket, its first sends), before time zero.
        let throughRelay = try warmUp(ourRelay.listenAddress, exchanges: 9,
                                      servedCorrection: transform.correctionNanoseconds(atServerUnixNanoseconds: realtimeNanoseconds()))
        let throughPeerRelay = try peerRelay.flatMap { (relay) throws(LabError) in
            try warmUp(relay.listenAddress, exchanges: 9,
                       servedCorrection: transform.correctionNanoseconds(atServerUnixNanoseconds: realtimeNanoseconds()))
        }

        // Our client, publishing its clock to a private file.
        var pathTemplate = Array("/tmp/ntplab-clock-XXXXXX".utf8CString)
        let descriptor = mkstemp(&pathTemplate)
        guard descriptor >= 0 else { throw LabError("cannot make a temporary file in /tmp: \(String(cString: strerror(errno)))") }
        close(descriptor)
        let publishPath = pathTemplate.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { unlink(publishPath) }
        let runner: ClientRunner
        let reader: PublishedClockReader
        do {
            runner = try ClientRunner(server: ourRelay.listenAddress, pollSeconds: plan.pollSeconds, publishPath: publishPath)
            reader = try PublishedClockReader(path: publishPath)
        } catch {
            throw LabError("client: \(error)")
        }
        while realtimeNanoseconds() < origin { usleep(1_000) }
        let client = ClientThread(runner: runner, count: plan.exchangeCount)
        try client.start()

        // Read both clocks every poll / readsPerPoll until the end.
        let interval = min(Int64(2e9), Int64(plan.pollSeconds * 1e9) / Int64(max(1, options.readsPerPoll)))
        var ours = SampleCollector(label: "ntpclient", transform: transform, origin: origin, plan: plan)
        var theirs = SampleCollector(label: "chronyd -x", transform: transform, origin: origin, plan: plan)
        var next = origin + interval / 2
        var nextProgress = origin + 10 * Span.second
        let end = origin + plan.durationNanoseconds
        while true {
            let now = realtimeNanoseconds()
            if now >= end { break }
            if next > now {
                let wait = min(next, end) - now
                var pause = timespec(tv_sec: Int(wait / Span.second), tv_nsec: Int(wait % Span.second))
                _ = nanosleep(&pause, nil)  // an early wake-up (a signal) just loops
                continue
            }
            next += interval
            if options.interrupted?() == true {
                throw LabError("interrupted after \(formatDuration(now - origin)): no figures")
            }
            ours.readPublished(reader)
            if let peer {
                if let failure = peer.failure { throw LabError(failure) }
                theirs.readChrony(peer)
            }
            if now >= nextProgress {
                nextProgress += 10 * Span.second
                progress(ours.progressLine(elapsed: now - origin) + (peer != nil ? "; " + theirs.progressLine(elapsed: now - origin) : ""))
            }
        }
        client.join()
        if let failure = client.failure { throw LabError("client: \(failure)") }
        for report in client.reports { ours.addExchange(report) }

        let relays = [ourRelay.counters] + (peerRelay.map { [$0.counters] } ?? [])
        var oursResult = ours.result(notes: client.logMessages)
        oursResult.exchangeSamples = ours.exchangeSamples
        return LiveResult(plan: plan, originUnixNanoseconds: origin, ours: oursResult,
                          peer: peer == nil ? nil : theirs.result(notes: []),
                          relayCounters: relays, serverCounters: server.counters(),
                          exchanges: client.reports.count,
                          acceptedExchanges: client.reports.filter { $0.outcome == .accepted }.count,
                          exchangeLines: client.reports.map(LiveResult.exchangeLine(for:)),
                          realtimeScheduling: realtimeScheduling,
                          relaysBusyPolled: relaysBusyPoll,
                          directPath: direct.map { ($0.asymmetry, $0.delay) },
                          relayPath: throughRelay.map { ($0.asymmetry, $0.delay) },
                          peerRelayPath: throughPeerRelay.map { ($0.asymmetry, $0.delay) })
    }
}

/// A few exchanges before time zero, so the first measured one is not a cold start. Their
/// answers say what no client can see: with this host's clock at both ends, the SNTP offset
/// (server − system clock) is (forward − backward delay) / 2, the path's asymmetry, which
/// biases every client by that much. Returns the offset of the exchange with the smallest
/// delay (the least queueing, so closest to the minimum delays' asymmetry) and that delay.
private func warmUp(_ address: SocketAddress, exchanges: Int,
                    servedCorrection: Int64 = 0) throws(LabError) -> (asymmetry: Int64, delay: Int64)? {
    var offsets: [Int64] = [], delays: [Int64] = []  // a few, once per run
    do throws(NTPClientError) {
        let exchanger = try Exchanger()
        for k in 0..<exchanges {
            if k > 0 { exchanger.sleep(nanoseconds: 10_000_000) }
            if case .answered(let result) = try exchanger.exchange(with: address, timeoutNanoseconds: 100_000_000, rejected: { _ in }),
               k > 0 {
                let exchange = result.systemClockExchange
                offsets.append(exchange.offsetNanoseconds - servedCorrection)
                delays.append(exchange.delayNanoseconds)
            }
        }
    } catch {
        throw LabError("warming up \(address): \(error)")
    }
    guard let best = delays.indices.min(by: { delays[$0] < delays[$1] }) else { return nil }
    return (offsets[best], delays[best])
}

/// Turns readings of one client's clock into error samples against the transform's truth.
struct SampleCollector {
    let label: String
    let transform: ServedTimeTransform
    let origin: Int64
    let plan: LivePlan
    var samples: [ErrorSample] = []
    var exchangeSamples = 0
    var betweenSamples = 0
    var skipped = 0
    var lastError: Int64 = 0
    var lastBound: Int64 = 0
    var widestBracketNanoseconds: Int64 = 0

    /// A read whose realtime bracket is wider than this is dropped (the reader was preempted).
    static let widestUsableBracketNanoseconds: Int64 = 1_000_000

    init(label: String, transform: ServedTimeTransform, origin: Int64, plan: LivePlan) {
        self.label = label
        self.transform = transform
        self.origin = origin
        self.plan = plan
    }

    /// Truth minus host clock at host time `realtime`.
    func correction(_ realtime: Int64) -> Int64 { transform.correctionNanoseconds(atServerUnixNanoseconds: realtime) }

    mutating func append(realtime: Int64, error: Int64, bound: Double, fromExchange: Bool) {
        let t = realtime - origin
        guard !plan.isInBlackout(t) else { skipped += 1; return }
        let boundNanoseconds = bound.isFinite && bound < 9e18 ? Int64(bound.rounded(.up)) : Int64.max
        samples.append(ErrorSample(trueNanoseconds: t, errorNanoseconds: error, maxErrorNanoseconds: boundNanoseconds))
        if fromExchange { exchangeSamples += 1 } else { betweenSamples += 1 }
        lastError = error
        lastBound = boundNanoseconds
    }

    mutating func readPublished(_ reader: PublishedClockReader) {
        guard let published = try? reader.read(), !published.parameters.status.contains(.noEstimate) else {
            skipped += 1
            return
        }
        let p = published.parameters
        let reading = SystemClockReading.read()
        widestBracketNanoseconds = max(widestBracketNanoseconds, reading.bracketWidthNanoseconds)
        guard reading.bracketWidthNanoseconds <= SampleCollector.widestUsableBracketNanoseconds else { skipped += 1; return }
        let ca = p.absoluteTimeParts(atCounter: reading.rawNanoseconds)
        let error = ca.nanoseconds - reading.realtimeNanoseconds - correction(reading.realtimeNanoseconds)
        append(realtime: reading.realtimeNanoseconds, error: error, bound: p.maxError(atCounter: reading.rawNanoseconds),
               fromExchange: false)
    }

    mutating func readChrony(_ peer: ChronyPeer) {
        guard let answer = peer.tracking(), answer.tracking.hasReference, answer.tracking.leapStatus != 3 else {
            skipped += 1
            return
        }
        let width = answer.realtimeAfter - answer.realtimeBefore
        widestBracketNanoseconds = max(widestBracketNanoseconds, width)
        guard width <= SampleCollector.widestUsableBracketNanoseconds else { skipped += 1; return }
        let realtime = answer.realtimeBefore + width / 2
        let chronyCorrection = Int64((answer.tracking.currentCorrectionSeconds * 1e9).rounded())
        append(realtime: realtime, error: chronyCorrection - correction(realtime),
               bound: answer.tracking.maxErrorSeconds * 1e9, fromExchange: false)
    }

    mutating func addExchange(_ report: ExchangeReport) {
        guard let offset = report.systemClockOffsetNanoseconds, !report.parameters.status.contains(.noEstimate) else { return }
        let realtime = report.localTimeUnixNanoseconds
        // systemClockOffset = R − Ca, so Ca − served(R) = −offset − correction(R).
        let error = Int64((-offset).rounded()) - correction(realtime)
        append(realtime: realtime, error: error, bound: report.maxErrorNanoseconds, fromExchange: true)
    }

    func progressLine(elapsed: Int64) -> String {
        "\(label) at \(elapsed / Span.second) s: error \(fixedDecimal(Double(lastError) / 1e3, 1)) µs, bound \(lastBound == .max ? "none" : fixedDecimal(Double(lastBound) / 1e3, 1) + " µs")"
    }

    func result(notes: [String]) -> LiveClientResult {
        let sorted = samples.sorted { $0.trueNanoseconds < $1.trueNanoseconds }
        let violations = sorted.filter { $0.errorNanoseconds.magnitude > $0.maxErrorNanoseconds.magnitude }
        return LiveClientResult(label: label, samples: sorted,
                                figures: Figures(samples: sorted, events: plan.events, options: plan.figureOptions),
                                exchangeSamples: exchangeSamples, betweenSamples: betweenSamples, skippedReads: skipped,
                                boundViolationCount: violations.count, boundViolations: Array(violations.prefix(10)),
                                notes: notes)
    }
}

/// The client's polling loop on its own thread; reports are collected for the end.
final class ClientThread: @unchecked Sendable {
    private let runner: ClientRunner
    private let count: Int
    private var thread: StartedThread? = nil
    private let state = Mutex<(reports: [ExchangeReport], log: [String], failure: String?)>(([], [], nil))

    init(runner: ClientRunner, count: Int) {
        self.runner = runner
        self.count = count
    }

    func start() throws(LabError) {
        do throws(KernelError) {
            thread = try StartedThread(ThreadOptions(name: "lab-client")) { self.body() }
        } catch {
            throw LabError("cannot start the client thread", error)
        }
    }

    private func body() {
        do throws(NTPClientError) {
            try runner.run(count: count, report: { report in
                state.withLock { $0.reports.append(report) }
            }, log: { message in
                state.withLock { $0.log.append(message) }
            })
        } catch {
            state.withLock { $0.failure = "\(error)" }
        }
    }

    func join() {
        thread?.join()
        thread = nil
    }

    var reports: [ExchangeReport] { state.withLock { $0.reports } }
    var logMessages: [String] { state.withLock { $0.log } }
    var failure: String? { state.withLock { $0.failure } }
}
