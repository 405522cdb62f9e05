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
    /// The one relay every client's packets went through (lane 0 ours, lane 1 the peer's).
    public var relayCounters: RelayCounters
    /// Send lateness of the whole run, per direction.
    public var requestLateness: LatenessHistogram
    public var responseLateness: LatenessHistogram
    /// The relay's wake-up delay per direction (kernel receive stamp to read), and the
    /// headroom it held each packet for on top of the model's delay to cover it.
    public var requestWakeUp: LatenessHistogram
    public var responseWakeUp: LatenessHistogram
    public var relayHeadroomEachWayNanoseconds: Int64
    /// The path each client got, from the relay's stamps of the exchanges that client made.
    public var oursPath: PathAsymmetry?
    public var peerPath: PathAsymmetry?
    /// The relay-only check before time zero: SNTP probes through each lane.
    public var oursProbe: ProbeCalibration?
    public var peerProbe: ProbeCalibration?
    /// How far a path's asymmetry may stray from the model's before the run is not trusted.
    public var calibrationToleranceNanoseconds: Int64
    /// One line per check that failed (empty: the lab delivered the scenario's path).
    public var calibrationFailures: [String]
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
    /// Measured before time zero with SNTP exchanges straight to the server (host clock at
    /// both ends): the path's (forward − backward)/2 and smallest round trip, loopback and
    /// server only.
    public var directPath: (asymmetryNanoseconds: Int64, delayNanoseconds: Int64)?
}

/// How a live run is set up apart from its plan.
public struct LiveOptions: Sendable {
    public var compareChrony = false
    /// chronyd's path; nil: the usual places.
    public var chronydPath: String? = nil
    /// Reads of each clock between exchanges: every poll / this (at least every 2 s).
    public var readsPerPoll: Int = 4
    /// Run the lab's threads (server, client, reader; not the relay) and chronyd at
    /// SCHED_FIFO priority 10 when permitted (root). Off by default: the clients and the
    /// server use kernel stamps, so their own wake-ups do not matter, while a client thread
    /// at real-time priority keeps its CPU after sending and so holds back the relay, which a
    /// request wakes on that CPU. Measured here as root, lan-stratum1 at poll 1 s: with it,
    /// 21–29 of 72 requests reached the relay after their departure time and the relay added
    /// +6 to +23 µs of asymmetry; without it, as without root, +0.0 µs.
    public var realtimeScheduling = false
    /// The relay holds each packet this much longer than the model says, both ways
    /// (`RelayConfiguration.headroomEachWayNanoseconds`): enough that a sleeping relay has
    /// read a request before it is due, while adding no asymmetry. Measured here (a 2-vCPU
    /// guest whose idle vCPUs halt), the relay read requests 63–76 µs after their arrival at
    /// the median and 156–800 µs at p99 over six 10-minute runs; with 500 µs, 0–2 of about
    /// 108 requests per run were read after their departure time. The report prints the
    /// wake-up delay the run saw, so a machine that needs more shows it. 0 applies the
    /// model's delays exactly.
    public var relayHeadroomEachWayNanoseconds: Int64 = 500_000
    /// A client's path may differ from the model's by this much (half the difference of
    /// forward and backward, as it biases an offset) before the run is not trusted.
    public var calibrationToleranceNanoseconds: Int64 = 3_000
    /// Stop before the clients start when the relay-only probes find the path off the model
    /// by more than the tolerance. False runs anyway (the failures are still reported).
    public var stopOnFailedCalibration = true
    /// Asked between reads; true ends the run at once with an error (chronyd, the relay and
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
        // The lab's threads (server, relay, client, reader) and chronyd inherit this
        // thread's scheduling: real-time when allowed, so that other work on the machine
        // does not turn into relay lateness (path asymmetry the scenario does not have).
        let realtimeScheduling = options.realtimeScheduling && ThreadScheduling.realtime(priority: 10).applyToCallingThread()
        defer { if realtimeScheduling { ThreadScheduling.normal(nice: 0).applyToCallingThread() } }
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
        // 24 exchanges: the server's lead after a wake takes coarse steps for its first 20
        // checks (DepartureModel), which should be over before any calibration probe.
        let direct = try probe(serverAddress, exchanges: 24)

        // Time zero: CLOCK_REALTIME (for the transform and the samples) and CLOCK_MONOTONIC
        // (for the relay's network events), read together, a moment from now (after the
        // relay-only probes and chronyd's start).
        let lead: Int64 = 1_000_000_000
        let origin = realtimeNanoseconds() + lead
        let startMonotonic = clockNanoseconds(.monotonic) + lead
        let transform = plan.transform(originUnixNanoseconds: origin)

        // One relay thread for every client: lane 0 ours, lane 1 chronyd's. With several
        // servers, one lane per client and server: 0 ..< n ours, n ..< 2n chronyd's, lane k
        // serving server k mod n's time (one of them may lie).
        let servers = plan.serverCount
        let peerLane = servers
        var relayConfiguration = RelayConfiguration(upstreamAddress: serverAddress, network: plan.network)
        relayConfiguration.lanes = (options.compareChrony ? 2 : 1) * servers
        relayConfiguration.seed = plan.seed
        relayConfiguration.laneSeeds = (0..<relayConfiguration.lanes).map {
            SimulationConfiguration.serverSeed(plan.seed, serverIndex: $0 % servers)
        }
        relayConfiguration.transform = transform
        if servers > 1 {
            relayConfiguration.laneTransforms = (0..<relayConfiguration.lanes).map {
                plan.transform(originUnixNanoseconds: origin, server: $0 % servers)
            }
        }
        relayConfiguration.startMonotonicNanoseconds = startMonotonic
        relayConfiguration.maximumClients = 64  // slots recycle: each request has a new source port
        relayConfiguration.headroomEachWayNanoseconds = options.relayHeadroomEachWayNanoseconds
        let relay = try ImpairmentRelay(relayConfiguration)
        try relay.start()
        defer { relay.stop() }

        // The relay-only check: SNTP probes through each lane before any client starts
        // (their first sends also warm the relay's path). Each probe's offset is its whole
        // path's asymmetry; the relay's record of the same exchange says what the model drew.
        // Probes straight to the server take turns with them: what the prober and the server
        // add themselves (the server's transmit stamp, the prober's own) is the same on both
        // and is taken off, leaving what the relay adds. 32 pairs: each probe's hidden send
        // times vary by a few µs, and with 11 the median of two lanes differed by 3 µs.
        func probeLane(_ lane: Int) throws(LabError) -> ProbeCalibration? {
            let answers = try probes([(relay.listenAddresses[lane], transform.correctionNanoseconds(atServerUnixNanoseconds: realtimeNanoseconds())),
                                      (serverAddress, 0)], exchanges: 33)
            // Without direct answers now, the warm-up's direct figure stands in.
            let directNow = answers[1].isEmpty ? (direct?.asymmetryNanoseconds ?? 0) : median(answers[1].map(\.offsetNanoseconds))
            return ProbeCalibration(probes: answers[0].map { ($0.requestTransmitTimestamp, $0.offsetNanoseconds) },
                                    records: relay.exchangeRecords(lane: lane), directAsymmetryNanoseconds: directNow)
        }
        let oursProbe = try probeLane(0)
        let peerProbe = options.compareChrony ? try probeLane(peerLane) : nil
        let tolerance = options.calibrationToleranceNanoseconds
        var calibrationFailures: [String] = []
        var lanesToCheck = [("ntpclient's lane", oursProbe)]
        if options.compareChrony { lanesToCheck.append(("chronyd's lane", peerProbe)) }
        for (who, check) in lanesToCheck {
            guard let check else {
                calibrationFailures.append("relay-only check, \(who): no probe came back through the relay")
                continue
            }
            if abs(check.labAddedNanoseconds) > tolerance {
                calibrationFailures.append("relay-only check, \(who): SNTP probes through the relay found the path's asymmetry "
                    + "\(microseconds(check.labAddedNanoseconds)) µs off the model's (tolerance ±\(microseconds(tolerance)) µs)")
            }
        }
        if options.stopOnFailedCalibration, let failure = calibrationFailures.first {
            throw LabError("\(failure): the lab cannot deliver this scenario's path on this machine now; "
                           + "retry when it is quieter, or run anyway with --ignore-calibration")
        }

        // chronyd through its own lane.
        var peer: ChronyPeer? = nil
        if options.compareChrony {
            peer = try ChronyPeer(servers: Array(relay.listenAddresses[peerLane..<(peerLane + servers)]),
                                  pollExponent: plan.chronyPollExponent, chronydPath: options.chronydPath)
        }
        defer {
            peer?.stop()
            peer?.removeDirectory()
        }

        // Our client, publishing its clock to a private file.
        let publishPath: String
        do throws(KernelError) { publishPath = try makeTemporaryFile(prefix: "/tmp/ntplab-clock-") } catch {
            throw LabError("cannot make the client's clock file", error)
        }
        defer { removeFile(atPath: publishPath) }
        let runner: ClientRunner
        let reader: PublishedClockReader
        do {
            runner = try ClientRunner(servers: relay.listenAddresses[0..<servers].enumerated().map { (name: "server \($0.offset + 1) \($0.element)", address: $0.element) },
                                      pollSeconds: plan.pollSeconds, publishPath: publishPath)
            reader = try PublishedClockReader(path: publishPath)
        } catch {
            throw LabError("client: \(error)")
        }
        while realtimeNanoseconds() < origin { ThreadTiming.sleep(until: origin, on: .realtime) }
        let client = ClientThread(runner: runner, count: plan.exchangeCount * servers)
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
                ThreadTiming.sleep(until: min(next, end), on: .realtime)  // an early wake-up (a signal) just loops
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

        relay.stop()
        let lateness = relay.latenessHistograms()
        let wakeUp = relay.wakeUpHistograms()
        let oursPath = PathAsymmetry(relay.exchangeRecords(lane: 0).filter { $0.requestArrivalNanoseconds >= startMonotonic })
        let peerPath = options.compareChrony
            ? PathAsymmetry(relay.exchangeRecords(lane: peerLane).filter { $0.requestArrivalNanoseconds >= startMonotonic }) : nil
        for (who, path) in [("ntpclient", oursPath), ("chronyd", peerPath)] {
            guard let path else { continue }
            if abs(path.relayAddedNanoseconds) > tolerance {
                calibrationFailures.append("\(who)'s path: the relay's stamps of its \(path.exchanges) exchanges give an asymmetry "
                    + "\(microseconds(path.relayAddedNanoseconds)) µs off the model's for the same packets (tolerance ±\(microseconds(tolerance)) µs)")
            }
        }
        if let oursPath, let peerPath, abs(oursPath.relayAddedNanoseconds - peerPath.relayAddedNanoseconds) > tolerance {
            calibrationFailures.append("the two clients' paths differ: the relay added \(microseconds(oursPath.relayAddedNanoseconds)) µs "
                + "of asymmetry to ntpclient's and \(microseconds(peerPath.relayAddedNanoseconds)) µs to chronyd's (tolerance ±\(microseconds(tolerance)) µs)")
        }
        var oursResult = ours.result(notes: client.logMessages + falsetickerNotes(client.reports, origin: origin))
        oursResult.exchangeSamples = ours.exchangeSamples
        return LiveResult(plan: plan, originUnixNanoseconds: origin, ours: oursResult,
                          peer: peer == nil ? nil : theirs.result(notes: []),
                          relayCounters: relay.counters,
                          requestLateness: lateness.request, responseLateness: lateness.response,
                          requestWakeUp: wakeUp.request, responseWakeUp: wakeUp.response,
                          relayHeadroomEachWayNanoseconds: options.relayHeadroomEachWayNanoseconds,
                          oursPath: oursPath, peerPath: peerPath, oursProbe: oursProbe, peerProbe: peerProbe,
                          calibrationToleranceNanoseconds: tolerance, calibrationFailures: calibrationFailures,
                          serverCounters: server.counters(),
                          exchanges: client.reports.count,
                          acceptedExchanges: client.reports.filter { $0.outcome == .accepted }.count,
                          exchangeLines: client.reports.map(LiveResult.exchangeLine(for:)),
                          realtimeScheduling: realtimeScheduling,
                          directPath: direct)
    }
}

/// With several servers: for each source the vote called a falseticker, when it first did
/// and whether it was selected after that (the lying server must be named, then left out).
func falsetickerNotes(_ reports: [ExchangeReport], origin: Int64) -> [String] {
    var notes: [String] = []
    var flagged: [String: (at: Int64, selectedAfter: Int)] = [:]
    var order: [String] = []
    for report in reports {
        for source in report.sources {
            if source.verdict == .falseticker, flagged[source.name] == nil {
                flagged[source.name] = (report.localTimeUnixNanoseconds, 0)
                order.append(source.name)
            } else if source.verdict == .selected, let first = flagged[source.name] {
                flagged[source.name] = (first.at, first.selectedAfter + 1)
            }
        }
    }
    for name in order {
        let entry = flagged[name]!
        notes.append("\(name) voted out as a falseticker at \(formatDuration(entry.at - origin)); selected \(entry.selectedAfter) times after")
    }
    return notes
}

/// Nanoseconds as microseconds with one decimal.
func microseconds(_ nanoseconds: Int64) -> String { fixedDecimal(Double(nanoseconds) / 1e3, 1) }

/// SNTP exchanges before time zero, one every 10 ms, so the first measured one is not a
/// cold start. Their answers say what no client can see: with this host's clock at both
/// ends, the SNTP offset (server − system clock, minus what the relay adds to the served
/// time) is (forward − backward delay) / 2, the path's asymmetry, which biases every client
/// by that much (RFC 5905 §8). The first exchange is left out (it warms the path).
private func probes(_ address: SocketAddress, exchanges: Int,
                    servedCorrection: Int64 = 0) throws(LabError) -> [(requestTransmitTimestamp: UInt64, offsetNanoseconds: Int64, delayNanoseconds: Int64)] {
    try probes([(address, servedCorrection)], exchanges: exchanges)[0]
}

/// The same, taking turns among several paths (one exchange on each per round), so that
/// paths compared with each other are measured under the same conditions: answers per path.
private func probes(_ paths: [(address: SocketAddress, servedCorrection: Int64)],
                    exchanges: Int) throws(LabError) -> [[(requestTransmitTimestamp: UInt64, offsetNanoseconds: Int64, delayNanoseconds: Int64)]] {
    var answers = [[(requestTransmitTimestamp: UInt64, offsetNanoseconds: Int64, delayNanoseconds: Int64)]](repeating: [], count: paths.count)
    do throws(NTPClientError) {
        let exchanger = try Exchanger()
        for k in 0..<exchanges {
            for (p, path) in paths.enumerated() {
                if k > 0 || p > 0 { exchanger.sleep(nanoseconds: 10_000_000) }
                if case .answered(let result) = try exchanger.exchange(with: path.address, timeoutNanoseconds: 100_000_000, rejected: { _ in }),
                   k > 0 {
                    let exchange = result.systemClockExchange
                    answers[p].append((result.response.header.originTimestamp.rawValue, exchange.offsetNanoseconds - path.servedCorrection,
                                       exchange.delayNanoseconds))
                }
            }
        }
    } catch {
        throw LabError("probing \(paths.map { "\($0.address)" }.joined(separator: ", ")): \(error)")
    }
    return answers
}

/// The median offset of the probes (the path's asymmetry as the prober sees it, its own
/// stamping and the server's included) and the smallest delay.
private func probe(_ address: SocketAddress, exchanges: Int) throws(LabError) -> (asymmetryNanoseconds: Int64, delayNanoseconds: Int64)? {
    let answers = try probes(address, exchanges: exchanges)
    guard let fastest = answers.min(by: { $0.delayNanoseconds < $1.delayNanoseconds }) else { return nil }
    return (median(answers.map(\.offsetNanoseconds)), fastest.delayNanoseconds)
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
