#if canImport(Glibc)
import Glibc
#endif
import FeedforwardClock
import KernelStamps
import NTPClient
import NTPPacket
import PublishedClock
import Synchronization
import ToolSupport

// ntpclient: the feedforward-clock client. Options and output only; the logic is NTPClient.

let tool = ToolDescription(
    name: "ntpclient",
    synopsis: [
        "ntpclient [--poll SECONDS] [--count N] [--json] [--publish PATH] [--refclock-sock PATH]\n          [--refclock-shm UNIT] [--vmclock PATH|off] [--min-sources N] [--sources] HOST[:PORT]...",
        "ntpclient --once [--json] HOST[:PORT]",
        "ntpclient now --from PATH [--count N] [--json]",
    ],
    summary: """
    Polls an NTP server and runs a feedforward clock (RADclock-style) on CLOCK_MONOTONIC_RAW
    with kernel TX/RX timestamps. Prints one line per exchange. Never changes the system clock;
    runs unprivileged. HOST may be a name (resolved once) or an address; the port defaults to 123.

    With 2 to 8 servers each has its own poll schedule and filter over the same counter. After
    every stamp the sources' hard intervals (estimate ± maxError) are intersected: the largest
    set sharing a point is selected, any other usable source is a falseticker and is not used,
    and the published clock combines the selected ones (weighted by their error estimates,
    bound no wider than the best one's). Fewer than --min-sources agreeing: unsynchronised,
    with the reason in the status. Each line names its source.
    """,
    options: [
        .value("poll", "SECONDS", "Seconds between exchanges after the start-up burst of 8 exchanges\n2 s apart (default 16; 1 to 131072). A RATE kiss doubles it."),
        .value("timestamp-noise", "MICROSECONDS", "How far a quiet exchange's RTT lies above the path's minimum\n(default 5: kernel timestamps on a LAN; 0.5 to 10000). Raise it to 20-50\nwhen timestamps are taken in user space, and to the RTT's usual spread\n(100-1000) for a server several routed hops away: too small a value\nholds the offset on good exchanges and mistakes queueing for route\nchanges (docs/feedforward.md §6)."),
        .value("count", "N", "Stop after N exchanges: exit 0 if the clock is synchronised, 1 otherwise.\nWith 'now': print N readings (default 1)."),
        .flag("json", "JSON lines instead of text; units are in the key names."),
        .value("publish", "PATH", "After every update write the clock parameters to PATH (memory-mapped,\nsequence-locked) for 'ntpclient now --from PATH' and PublishedClockReader."),
        .value("refclock-sock", "PATH", "After every update send chronyd's SOCK refclock at PATH a sample (Ca and\nCLOCK_REALTIME read together, the leap state); none while unsynchronised.\nchrony.conf: refclock SOCK PATH (docs/published-clock.md)."),
        .value("refclock-shm", "UNIT", "The same into the NTP SHM segment of UNIT (key 0x4e545030 + UNIT, mode 1,\nnanosecond fields) for ntpd, NTPsec or chronyd: refclock SHM UNIT (0 to 255)."),
        .value("vmclock", "PATH", "The vmclock page to watch for counter disruptions (live migration):\ndefault /dev/vmclock0 when it exists; 'off' to ignore it. A disruption\nmarks the clock unsynchronised at once and polls a new burst."),
        .flag("once", "SNTP mode, like ntpdig: 4 exchanges 0.5 s apart, print the offset and delay\nof the best one with an error bound; exit 1 if no valid answer came."),
        .value("from", "PATH", "With 'now': the file written by --publish (waits up to 2 s for it to appear).\nExits 1 when its clock is stale, stopped, disrupted or unusable\n(docs/published-clock.md); C and Python readers: include/ffclock.h,\ncontrib/python/ffclock.py."),
        .value("server", "HOST[:PORT]", repeatable: true, "A server, as an option (for a configuration file: one 'server' line each);\nHOST arguments on the command line replace them."),
        .value("min-sources", "N", "Agreeing servers needed before the clock is synchronised\n(default: a majority of the servers given)."),
        .flag("sources", "With several servers, print every source's state after each round of\nexchanges, like 'chronyc sources' (JSON lines always carry it)."),
        configOption,
    ] + MetricsEndpoint.options,
    footer: """
    Columns and signs (text and JSON):
      rtt, minrtt         round-trip time of this exchange, and the filter's minimum RTT
      naive, theta        θ_j and θ̂: the uncorrected clock minus the server (positive: ahead)
      perr                statistical error of the period estimate, PPM
      err, maxerr         error estimate, and the hard bound on |feedforward clock − server|
      sysoff              CLOCK_REALTIME − feedforward clock, read together at the update
                          (positive: the system clock is ahead; chronyd -Q's "wrong by"
                          is the same quantity with the opposite sign)
      status              filter status words (unsync, warmup, starving, ...), then
                          user-tx-stamp/user-rx-stamp when a kernel stamp was missing
    --once prints the offset as server − system clock (ntpdig's sign: positive means the
    system clock is behind) and the round-trip delay, with an error bound.
    Exit status: 0 success, 1 runtime failure, 2 usage error.
    """)

prepareToolProcess()
let options = parseCommandLineAndConfigOrExit(tool, arguments: Array(CommandLine.arguments.dropFirst()))
let json = options.has("json")

func fail(_ message: String) -> Never { exitWithFailure(tool.name, message) }
func usage(_ message: String) -> Never { exitWithUsageError(tool.name, message) }

/// One JSON line of the tool's own records (`now`, `--once`); exchanges use `ExchangeReport.jsonLine`.
func jsonLine(_ members: [JSONMember]) -> String { JSONValue.object(members).rendered() }

/// A malformed HOST[:PORT] is a usage error (2); a well-formed name that does not resolve is
/// a runtime failure (1): the command line was right, the network or DNS said no.
func resolveServer(_ text: String) -> SocketAddress {
    let server: SocketAddress
    do {
        server = try SocketAddress.resolve(text, defaultPort: 123)
    } catch {
        if error.operation.hasPrefix("resolve") { fail("\(error)") }
        usage("\(error)")
    }
    if server.port == 0 { usage("\(text): port 0 is not a server port; give HOST:PORT with a port from 1 to 65535, or HOST alone for 123") }
    return server
}

func freshnessWord(_ freshness: ClockFreshness) -> String {
    switch freshness {
    case .fresh: return "fresh"
    case .stale: return "stale"
    case .unusable: return "unusable"
    }
}

// MARK: now --from PATH

func runNow() -> Never {
    guard let path = options.string("from") else { usage("'now' needs --from PATH (the file written by --publish)") }
    let count: Int
    do { count = try options.integer("count", default: 1, in: 1...10_000_000) } catch { usage(error.message) }
    // A writer started just before ('ntpclient --publish PATH HOST &') creates the file
    // before its first exchange; wait briefly for it rather than racing it.
    let reader: PublishedClockReader
    do { reader = try PublishedClockReader(path: path, waitingUpToNanoseconds: 2_000_000_000) } catch { fail("\(error)") }
    if let problem = reader.vmclockProblem {
        printError(tool.name, "cannot check the vmclock page the writer watches, so a migration would go unnoticed by this reader: \(problem)")
    }
    var failed = false
    for _ in 0..<count {
        let now: PublishedTime
        do { now = try reader.read() } catch { fail("\(error)") }
        let words = now.status.words
        failed = now.verdict.isFailure
        if json {
            let p = now.parameters
            printLine(jsonLine([
                JSONMember("time", .string(UTCTimeText.iso8601(unixNanoseconds: now.unixNanoseconds))),
                JSONMember("timeUnixNanoseconds", .integer(now.unixNanoseconds)),
                JSONMember("maxErrorNanoseconds", .number(now.maxErrorNanoseconds)),
                JSONMember("verdict", .string(now.verdict.rawValue)),
                JSONMember("freshness", .string(freshnessWord(now.freshness))),
                JSONMember("status", .strings(words)),
                JSONMember("counterNanoseconds", .integer(now.counter)),
                JSONMember("counterOriginNanoseconds", .integer(p.counterOrigin)),
                JSONMember("timeAtOriginNanoseconds", .integer(p.timeAtOriginNanoseconds)),
                JSONMember("periodSecondsPerTick", .number(p.periodSecondsPerTick)),
                JSONMember("publishedMaxErrorNanoseconds", .number(p.maxErrorNanoseconds)),
                JSONMember("lastStampCounterNanoseconds", .integer(p.lastStampCounter)),
                JSONMember("stampCount", .integer(p.stampCount)),
                JSONMember("retries", .integer(Int64(now.retries))),
            ]))
        } else {
            switch now.verdict {
            case .unusable:
                printLine("no usable time: \(now.parameters.status.contains(.noEstimate) ? "the publisher has no estimate yet" : "the parameters are over 1024 s overdue") (status \(words.joined(separator: ",")))")
            case .disrupted:
                printLine("no usable time: the vmclock page says the counter was disrupted (live migration) after these parameters; wait for the writer to re-synchronise")
            case .stopped:
                printLine("\(UTCTimeText.iso8601(unixNanoseconds: now.unixNanoseconds)) ± \(fixedDecimal(now.maxErrorNanoseconds / 1000, 3)) µs stopped: the writer exited; restart 'ntpclient --publish'")
            case .stale:
                printLine("\(UTCTimeText.iso8601(unixNanoseconds: now.unixNanoseconds)) ± \(fixedDecimal(now.maxErrorNanoseconds / 1000, 3)) µs stale: no update for \(fixedDecimal(Double(now.counter - now.parameters.lastStampCounter) / 1e9, 1)) s; is the writer running?")
            case .ok, .unsynchronised:
                printLine("\(UTCTimeText.iso8601(unixNanoseconds: now.unixNanoseconds)) ± \(fixedDecimal(now.maxErrorNanoseconds / 1000, 3)) µs \(now.verdict.rawValue) \(words.isEmpty ? "ok" : words.joined(separator: ","))")
            }
        }
    }
    exit(failed ? ExitStatus.failure.rawValue : ExitStatus.success.rawValue)
}

// MARK: --once

func runOnce(_ serverText: String) -> Never {
    let server = resolveServer(serverText)
    let outcome: SNTPOutcome
    do {
        let exchanger = try Exchanger()
        outcome = try exchanger.sntp(server: server)
    } catch {
        fail("\(error)")
    }
    guard let result = outcome.result else {
        // One line: what came back (if anything) decides what to suggest.
        if outcome.rateKissed {
            fail("\(server) sent kiss-o'-death RATE: it asks for fewer requests; wait a minute and try again")
        }
        if let rejection = outcome.firstRejection {
            fail("no usable answer from \(server) in 4 tries: \(rejection.description)")
        }
        if outcome.counters.totalRefused > 0 {
            fail("no valid answer from \(server) in 4 tries; refused datagrams: \(outcome.counters.summary)")
        }
        fail("no answer from \(server) in 4 tries of 1 s: is an NTP server running there, and reachable on UDP?")
    }
    let now = realtimeNanoseconds()
    if json {
        printLine(jsonLine([
            JSONMember("time", .string(UTCTimeText.iso8601(unixNanoseconds: now))),
            JSONMember("server", .string("\(server)")),
            JSONMember("offsetNanoseconds", .integer(result.offsetNanoseconds)),
            JSONMember("delayNanoseconds", .integer(result.delayNanoseconds)),
            JSONMember("errorBoundNanoseconds", .integer(result.errorBoundNanoseconds)),
            JSONMember("stratum", .integer(Int64(result.stratum))),
            JSONMember("leap", .integer(Int64(result.leap.rawValue))),
            JSONMember("answers", .integer(Int64(result.answers))),
            JSONMember("attempts", .integer(Int64(result.attempts))),
        ]))
    } else {
        let sign = result.offsetNanoseconds >= 0 ? "+" : ""
        printLine("\(UTCTimeText.iso8601(unixNanoseconds: now)) \(sign)\(fixedDecimal(Double(result.offsetNanoseconds) / 1e9, 9)) +/- \(fixedDecimal(Double(result.errorBoundNanoseconds) / 1e9, 9)) s delay \(fixedDecimal(Double(result.delayNanoseconds) / 1e9, 9)) s \(server) s\(result.stratum) (\(result.answers)/\(result.attempts) answers; offset = server − system clock)")
    }
    exit(ExitStatus.success.rawValue)
}

// MARK: polling

func runPolling(_ serverTexts: [String]) -> Never {
    let poll: Double
    let timestampNoiseMicroseconds: Double
    let count: Int?
    let sharedMemoryUnit: Int?
    let minimumSources: Int
    do {
        poll = try options.decimal("poll", default: 16, in: 1...PollSchedule.maximumPollSeconds)
        timestampNoiseMicroseconds = try options.decimal("timestamp-noise", default: 5, in: 0.5...10_000)
        count = options.has("count") ? try options.integer("count", default: 1, in: 1...Int(Int32.max)) : nil
        minimumSources = try options.integer("min-sources", default: CombinedClock.majority(of: serverTexts.count),
                                             in: 1...serverTexts.count)
        sharedMemoryUnit = options.has("refclock-shm") ? try options.integer("refclock-shm", default: 0, in: 0...255) : nil
    } catch {
        usage(error.message)
    }
    // Names are resolved once, each failure named by itself.
    let servers = serverTexts.map { (name: $0, address: resolveServer($0)) }
    let showSources = options.has("sources") && servers.count > 1
    let vmclockOption = options.string("vmclock")
    let vmclockPath = vmclockOption == "off" ? nil : vmclockOption ?? VMClockPage.defaultPathIfPresent
    // SIGINT/SIGTERM end the loop cleanly, so the published clock is marked stopped.
    let signals: SignalReceiver
    do { signals = try SignalReceiver(signals: [SIGINT, SIGTERM]) } catch { fail("\(error)") }
    let runner: ClientRunner
    do {
        runner = try ClientRunner(servers: servers, pollSeconds: poll, publishPath: options.string("publish"),
                                  refclockSocketPath: options.string("refclock-sock"),
                                  refclockSharedMemoryUnit: sharedMemoryUnit, vmclockPath: vmclockPath,
                                  minimumSources: minimumSources,
                                  configuration: FeedforwardConfiguration(timestampNoiseNanoseconds: timestampNoiseMicroseconds * 1_000))
    } catch {
        fail("\(error)")
    }
    let metricsAddress: SocketAddress?
    do { metricsAddress = try MetricsEndpoint.address(from: options) } catch { usage(error.message) }
    let snapshot = Mutex(ClientMetricsSnapshot(server: servers.map { "\($0.address)" }.joined(separator: ",")))
    var metrics: MetricsEndpoint? = nil
    if let metricsAddress {
        do {
            let endpoint = try MetricsEndpoint(address: metricsAddress)
            try endpoint.start { metricsExpositionText(clientMetricFamilies(snapshot.withLock { $0 })) }
            metrics = endpoint
        } catch {
            fail("--metrics: \(error)")
        }
        printError(tool.name, "metrics at http://\(metrics!.boundAddress)/metrics")
    }
    if !json { printLine(servers.count > 1 ? ExchangeReport.textHeaderWithSource : ExchangeReport.textHeader) }
    var stoppedBySignal = false
    do {
        try runner.run(count: count, stopRequested: {
            if (try? signals.pending()) != nil { stoppedBySignal = true }
            return stoppedBySignal
        }, report: { report in
            printLine(json ? report.jsonLine : report.textLine)
            if showSources, !json, report.exchange % servers.count == servers.count - 1 {
                printLine(SourceReport.tableHeader)
                for source in report.sources { printLine(source.tableLine) }
            }
            if metrics != nil {
                let counters = runner.counters
                snapshot.withLock { $0.record(report, counters: counters) }
            }
        }, log: { message in printError(tool.name, message) })
    } catch {
        runner.markStopped()
        fail("\(error)")
    }
    runner.markStopped()
    let counters = runner.counters
    if stoppedBySignal {
        printError(tool.name, "stopped by signal; published clock marked stopped; refused/missed: \(counters.summary)")
        exit(ExitStatus.success.rawValue)
    }
    if runner.isSynchronised {
        printError(tool.name, "done: clock synchronised; refused/missed: \(counters.summary)")
        exit(ExitStatus.success.rawValue)
    }
    fail("the clock did not synchronise in \(count ?? 0) exchanges (refused/missed: \(counters.summary)); try more exchanges or check the server")
}

// HOST arguments replace the configuration's 'server' lines.
let positionals = options.positionals.isEmpty ? options.strings("server") : options.positionals
if positionals.first == "now" {
    if positionals.count > 1 { usage("'now' takes no host: ntpclient now --from PATH") }
    runNow()
}
if options.has("from") { usage("--from goes with 'now': ntpclient now --from PATH") }
guard (1...SourceSelection.capacity).contains(positionals.count) else {
    usage(positionals.isEmpty ? "give the server: ntpclient HOST[:PORT] (see 'ntpclient --help')"
                              : "at most \(SourceSelection.capacity) servers, got \(positionals.count): \(positionals.joined(separator: " "))")
}
if options.has("once") {
    if positionals.count > 1 { usage("--once asks one server, got \(positionals.count): \(positionals.joined(separator: " "))") }
    if options.has("poll") || options.has("count") || options.has("publish") || options.has("refclock-sock")
        || options.has("refclock-shm") || options.has("vmclock") {
        usage("--once takes no --poll, --count, --publish, --refclock-sock, --refclock-shm or --vmclock")
    }
    runOnce(positionals[0])
}
runPolling(positionals)
