#if canImport(Glibc)
import Glibc
#endif
import KernelStamps
import NTPLab
import ToolSupport

/// `ntplab run` and bare `ntplab`: a scenario with real sockets on loopback.
let liveTool = ToolDescription(
    name: "ntplab run",
    synopsis: [
        "ntplab run --scenario NAME [--duration S] [--poll P] [--compare chrony] [--json] [--svg FILE] [--csv FILE] [--seed S] [--rate-cycle PPM,PERIOD]...",
        "ntplab            (a one-minute lan-stratum1 run at poll 1 s, plot in ./ntplab-lan-stratum1.svg)",
    ],
    summary: """
    Runs a scenario live: the server (stratumd's serving loop) serves this host's clock on
    127.0.0.1, an impairment relay applies the scenario's network model to real packets, and
    the feedforward client (ntpclient's polling loop, kernel timestamps) polls through it and
    publishes its clock. Ground truth is the host clock: the relay rewrites the served
    timestamps by a known transform (a counter skew, a migration's jump and new rate, a server
    step become changes of the time served), and the truth follows it. Nothing touches the
    system clock.

    The client is measured at every exchange and by reading its published clock every poll/4
    between exchanges: |error| median, IQR, p99, max; the share of samples inside the bound it
    published at that moment; recovery after each event. Events happen at the same fraction
    of the run as in the scenario's simulated duration (migration: at a quarter).

    --compare chrony runs chronyd -x (it never adjusts the clock) as a second client through
    the same relay thread, on its own port with its own copy of the network model and poll, and reads its clock from its tracking
    report every poll/4: its error is the correction it holds (cooked minus system time)
    against the truth, its bound root delay/2 + root dispersion.

    Scenarios:
    \(Scenario.all.map { "  " + $0.name + String(repeating: " ", count: max(1, 15 - $0.name.count)) + $0.summary }.joined(separator: "\n"))
    """,
    options: [
        .value("scenario", "NAME", "A scenario from the list above (default lan-stratum1)."),
        .value("duration", "S", "Seconds to run, 10 to 86400 (default 600; bare ntplab: 60)."),
        .value("poll", "P", "Poll period in seconds, 1 to 1024 (default: the scenario's, 16;\nbare ntplab: 1). chronyd polls at the nearest power of two."),
        .value("compare", "chrony", "Also run chronyd -x through the same relay (a lane of its own) and compare."),
        .value("seed", "S", "Seed of the network model (default: the scenario's)."),
        .value("rate-cycle", "PPM,PERIOD", repeatable: true,
               "Serve time as if the client's counter rate followed a sine of PPM\namplitude and PERIOD (90s, 40min, 24h); repeat to add cycles. Not with\nerratic-rate or migration, which change the rate themselves."),
        .value("served-offset", "MS", "Add a constant offset in milliseconds to the time served (and to\nthe truth): every client should still show an error near zero."),
        .flag("json", "Print one JSON document instead of the table."),
        .value("svg", "FILE", "Write error against time with each client's bound as a band."),
        .value("csv", "FILE", "Write every sample as CSV: client, time s, error ns, bound ns."),
        .value("exchanges", "FILE", "Write our client's exchanges as JSON lines (as ntpclient --json)."),
        .value("calibration-tolerance", "US", "How far (µs) a client's path asymmetry may stray from the model's\nbefore the run fails (default 3): checked with SNTP probes through the\nrelay before the clients start, and for each client from the relay's\nown stamps of its exchanges at the end."),
        .flag("ignore-calibration", "Run and exit 0 even when a path fails the calibration check (the\nreport still says so)."),
        .value("relay-headroom", "US", "Hold every packet this many µs longer than the model says, both ways\n(default 500; 0 applies the model exactly). A sleeping relay reads a\npacket tens to hundreds of µs after it arrived; the headroom keeps it\nahead of the departure time. Being the same both ways it adds no\nasymmetry, only round trip. The report shows the wake-up delays seen."),
        .flag("lateness-histogram", "Also print the relay's send-lateness and wake-up histograms per direction."),
        .flag("realtime", "Run the lab's server and client threads and chronyd at SCHED_FIFO 10\n(root only). Off by default: it holds the relay back (see the report's\nlateness), since those threads keep their CPU after sending."),
        .value("chronyd", "PATH", "The chronyd to run (default: /usr/sbin/chronyd and the usual places)."),
        .flag("default-demo", "What bare 'ntplab' runs: lan-stratum1, 60 s, poll 1 s, SVG to\n./ntplab-lan-stratum1.svg (each of these can still be overridden); a failed\ncalibration is a warning, not a failure, unless --calibration-tolerance is given."),
    ],
    footer: """
    The relay is one thread for every client. It takes each packet's departure from the
    kernel's receive stamp plus the model's delay plus the headroom (the same both ways),
    sleeps until shortly before it and spins the rest, so it needs no privilege and little CPU; the report gives its send lateness
    (median, p99, max per direction), the packets it could only see after their departure
    time, its CPU share, and each client's path asymmetry from the relay's own stamps. A path
    more than the calibration tolerance off the model's fails the run (exit 1), since the
    clients' figures would then measure the lab, not the clients.

    Progress goes to stderr every 10 s. Exit status: 0 when the run finished, 1 when it could
    not run (no free port, chronyd missing or exiting), 2 on a usage error.
    """
)

func runLiveCommand(_ arguments: [String]) -> Int32 {
    let options = parseCommandLineOrExit(liveTool, arguments: arguments)
    let demo = options.has("default-demo")
    if !options.positionals.isEmpty {
        exitWithUsageError(liveTool.name, "unexpected argument '\(options.positionals[0])': name a scenario with --scenario NAME")
    }
    let name = options.string("scenario") ?? "lan-stratum1"
    guard let scenario = Scenario.named(name) else {
        exitWithUsageError(liveTool.name, "no scenario '\(name)': use one of \(Scenario.all.map(\.name).joined(separator: ", "))")
    }
    if scenario.configuration.platformSignalsDisruption {
        exitWithUsageError(liveTool.name, "\(name) needs a platform that signals the migration (a vmclock page), which the live lab does not fake: run it with 'ntplab simulate --scenario \(name)', or live as 'migration'")
    }
    let durationSeconds: Double
    let pollSeconds: Int
    let servedOffsetMilliseconds: Double
    let toleranceMicroseconds: Double
    let headroomMicroseconds: Double
    var seed: UInt64? = nil
    var rateCycles: [RateCycle] = []
    do throws(UsageError) {
        for text in options.strings("rate-cycle") { rateCycles.append(try RateCycle.parse(text)) }
        if !rateCycles.isEmpty, scenario.configuration.oscillator.erratic != nil || scenario.configuration.oscillator.migration != nil {
            throw UsageError("--rate-cycle cannot be combined with \(scenario.name), whose counter rate already changes: pick another scenario")
        }
        durationSeconds = try options.decimal("duration", default: demo ? 60 : 600, in: 10...86_400)
        pollSeconds = try options.integer("poll", default: demo ? 1 : Int(scenario.configuration.pollNanoseconds / 1_000_000_000), in: 1...1024)
        servedOffsetMilliseconds = try options.decimal("served-offset", default: 0, in: -100_000...100_000)
        toleranceMicroseconds = try options.decimal("calibration-tolerance", default: 3, in: 0...1_000_000)
        headroomMicroseconds = try options.decimal("relay-headroom", default: Double(LiveOptions().relayHeadroomEachWayNanoseconds) / 1e3, in: 0...100_000)
        if let text = options.string("seed") {
            guard let value = UInt64(text) else { throw UsageError("--seed wants a whole number from 0 to \(UInt64.max), not '\(text)'") }
            seed = value
        }
        if let peer = options.string("compare"), peer != "chrony" {
            throw UsageError("--compare knows only 'chrony', not '\(peer)'")
        }
    } catch {
        exitWithUsageError(liveTool.name, error.message)
    }
    // SIGINT/SIGTERM arrive on a signalfd (blocked in every thread the run starts), so the
    // run can stop chronyd before it exits.
    let signals: SignalReceiver
    do throws(KernelError) { signals = try SignalReceiver(signals: [SIGINT, SIGTERM]) } catch {
        exitWithFailure(liveTool.name, "cannot set up signal handling: \(error.description)")
    }
    var liveOptions = LiveOptions()
    liveOptions.interrupted = { (try? signals.pending()) != nil }
    liveOptions.compareChrony = options.has("compare")
    liveOptions.realtimeScheduling = options.has("realtime")
    liveOptions.calibrationToleranceNanoseconds = Int64((toleranceMicroseconds * 1e3).rounded())
    liveOptions.relayHeadroomEachWayNanoseconds = Int64((headroomMicroseconds * 1e3).rounded())
    // The demo is a newcomer's first command: it shows its figures even when the lab's own path
    // strays (a busy or slow machine), with the failure said loudly; a named run fails instead.
    let ignoreCalibration = options.has("ignore-calibration") || (demo && !options.has("calibration-tolerance"))
    liveOptions.stopOnFailedCalibration = !ignoreCalibration
    liveOptions.chronydPath = options.string("chronyd")
    if liveOptions.compareChrony, liveOptions.chronydPath == nil, ChronyPeer.installedPath == nil {
        exitWithFailure(liveTool.name, "--compare chrony: chronyd is not installed (apt-get install chrony)")
    }
    let svgPath = options.string("svg") ?? (demo ? "ntplab-\(scenario.name).svg" : nil)
    let json = options.has("json")

    let plan = LivePlan(scenario: scenario, durationNanoseconds: Int64(durationSeconds * 1e9), pollSeconds: Double(pollSeconds),
                        seed: seed, extraServedOffsetNanoseconds: Int64((servedOffsetMilliseconds * 1e6).rounded()), rateCycles: rateCycles)
    printError("ntplab", "running \(scenario.name) live on loopback for \(formatDuration(plan.durationNanoseconds)) at poll \(pollSeconds) s"
               + (liveOptions.compareChrony ? ", chronyd -x alongside" : "") + " ...")
    let result: LiveResult
    do throws(LabError) {
        result = try LiveRunner.run(plan, options: liveOptions) { line in printError("ntplab", line) }
    } catch {
        printError(liveTool.name, error.message)
        return ExitStatus.failure.rawValue
    }
    if let svgPath {
        do throws(LabError) { try writeTextFile(svgPath, LiveReport.plot(result).render()) } catch {
            printError(liveTool.name, error.message)
            return ExitStatus.failure.rawValue
        }
    }
    if let csvPath = options.string("csv") {
        do throws(LabError) { try writeTextFile(csvPath, LiveReport.csv(result)) } catch {
            printError(liveTool.name, error.message)
            return ExitStatus.failure.rawValue
        }
    }
    if let exchangesPath = options.string("exchanges") {
        do throws(LabError) { try writeTextFile(exchangesPath, result.exchangeLines.map { $0 + "\n" }.joined()) } catch {
            printError(liveTool.name, error.message)
            return ExitStatus.failure.rawValue
        }
    }
    if json {
        printLine(LiveReport.json(result).rendered())
    } else {
        StandardStream.output.write(LiveReport.table(result))
        if options.has("lateness-histogram") { StandardStream.output.write(LiveReport.latenessHistogramText(result)) }
        if let svgPath { printLine("plot written to \(absolutePath(svgPath))") }
    }
    guard !result.calibrationFailures.isEmpty else { return ExitStatus.success.rawValue }
    let failures = result.calibrationFailures.joined(separator: "; ")
    if ignoreCalibration {
        printError(liveTool.name, "warning: calibration failed, so part of the error above is the lab's, not the client's: \(failures)")
        return ExitStatus.success.rawValue
    }
    printError(liveTool.name, "calibration failed: \(failures); "
               + "the figures measure the lab, not the clients: retry when the machine is quieter, or pass --ignore-calibration")
    return ExitStatus.failure.rawValue
}

/// `path` made absolute against the working directory, so the user knows where to look.
private func absolutePath(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buffer, buffer.count) != nil else { return path }
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } + "/" + path
}
