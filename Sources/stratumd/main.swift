#if canImport(Glibc)
import Glibc
#endif
import NTPPacket
import KernelStamps
import NTPServer
import ToolSupport

// stratumd: a stratum-1 NTPv4 server with kernel timestamps. Options → ServerConfiguration,
// then bind, drop privileges, serve until SIGINT/SIGTERM. Everything that decides lives in
// NTPServer.

let tool = ToolDescription(
    name: "stratumd",
    synopsis: ["stratumd [--listen ADDR:PORT]... [--threads N] [--user NAME] [options]"],
    summary: """
    Serves NTPv4 (RFC 5905) to clients: mode 3 requests of versions 1-4 get a mode 4
    response stamped by the kernel on receipt (SO_TIMESTAMPING) and as late as possible
    before the send. Clients that use interleaved mode (RFC 9769, chronyd's 'xleave') get the
    kernel transmit stamp of the previous response. Never answers control (mode 6/7),
    symmetric (mode 1: no peer associations are kept, so answering would only be an
    unauthenticated reflector) or malformed packets, and a response is never longer than its
    request. NTS and symmetric keys are not supported: authenticated requests get a plain
    48-byte response, which their clients reject.

    Its own state comes from the host clock (adjtimex, read-only, every second): leap
    indicator, root dispersion (the kernel's maxerror) and synchronisation. A host clock the
    kernel calls unsynchronised is served with leap indicator 3 (clients will not use it)
    unless you pass --serve-unsynchronised. stratumd never changes the clock.
    """,
    options: [
        .value("listen", "ADDR:PORT", repeatable: true,
               "Address to serve on; repeat for several (IPv6: [::1]:123).\nDefault 127.0.0.1:12300, which needs no privileges.\nPort 123 needs root: add --user to drop privileges after binding."),
        .value("threads", "N", "Worker threads per listen address, each with its own socket\n(SO_REUSEPORT, steered by client address). Default: one per CPU."),
        .value("user", "NAME", "After binding, switch to this user (e.g. nobody) for good."),
        .value("stratum", "N", "Stratum to announce, 1-15. Default 1 (primary server)."),
        .value("refid", "CODE", "Reference ID, up to 4 ASCII letters (GPS, PPS, GAL, ...).\nDefault LOCL (an undisciplined local clock)."),
        .flag("serve-unsynchronised", "Serve the host clock as a valid reference (leap indicator 0,\nroot dispersion of one precision step) even when the kernel\nsays it is not synchronised, like chronyd's 'local stratum 1'.\nWithout it such a clock is served with leap indicator 3."),
        .value("rate-limit", "SPEC", "Per-address limit: 'INTERVAL,BURST' (seconds between\nrequests on average, requests allowed at once) or 'off'.\nDefault 2,16. Excess requests get one RATE kiss-o'-death\nper interval; the rest are dropped."),
        .flag("no-interleaved", "Answer every request in basic mode (no RFC 9769)."),
        .value("client-table", "N", "Client entries per worker for rate limits and interleaved\nstate (fixed memory, ~64 bytes each). Default 65536."),
        configOption,
    ] + MetricsEndpoint.options,
    footer: """
    Metrics: with --metrics, GET /metrics gives every counter in total and per worker
    (stratumd_answered_total, stratumd_worker_answered_total{worker="0"}, ...) and the served
    state (leap indicator, root dispersion, host clock synchronised); see stratumd(8).
    Signals: SIGUSR1 prints the counters; SIGINT or SIGTERM stop cleanly and print them.
    Exit status: 0 after a clean stop, 1 if serving could not start, 2 for a usage error.
    Examples:
      stratumd                                   # 127.0.0.1:12300, try: ntpclient --once 127.0.0.1:12300
      sudo stratumd --listen 0.0.0.0:123 --listen [::]:123 --user nobody --refid GPS
    """)

prepareToolProcess()
let options = parseCommandLineAndConfigOrExit(tool, arguments: Array(CommandLine.arguments.dropFirst()))
if let extra = options.positionals.first { exitWithUsageError("stratumd", "unexpected argument '\(extra)' (addresses go after --listen)") }

var listen: [SocketAddress] = []
for text in options.strings("listen").isEmpty ? ["127.0.0.1:12300"] : options.strings("listen") {
    do throws(KernelError) { listen.append(try SocketAddress(parsing: text, defaultPort: 123)) } catch {
        exitWithUsageError("stratumd", "\(options.describe("listen")) \(text): \(error.description)")
    }
}
// Every worker socket sets SO_REUSEPORT, so a second stratumd of the same user would join
// this address's group and silently take a share of the clients. A plain bind (no
// SO_REUSEPORT, no SO_REUSEADDR) first fails if any other socket holds the address, whether
// another stratumd, chronyd or ntpd; our own workers bind after it and still share the port.
for address in listen where address.port != 0 {
    var probeOptions = UDPSocket.Options()
    probeOptions.receiveTimestamps = false
    do throws(KernelError) {
        try UDPSocket(bindingTo: address, options: probeOptions).close()
    } catch {
        if error.code == EADDRINUSE {
            exitWithFailure("stratumd", "address in use: another server is listening on \(address); stop it, or give another --listen address")
        }
        // Anything else (EACCES for port 123 without privileges) is reported by the real bind.
    }
}

let cpuCount = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
var configuration = ServerConfiguration(listenAddresses: listen)
do throws(UsageError) {
    configuration.threads = try options.integer("threads", default: cpuCount, in: 1...256)
    configuration.identity.stratum = UInt8(try options.integer("stratum", default: 1, in: 1...15))
    configuration.clientTableCapacity = try options.integer("client-table", default: 65_536, in: 16...(1 << 24))
} catch {
    exitWithUsageError("stratumd", error.message)
}
if let code = options.string("refid") {
    guard let referenceID = NTPReferenceID(code: code), !code.isEmpty else {
        exitWithUsageError("stratumd", "\(options.describe("refid")) wants 1 to 4 printable ASCII characters (e.g. GPS), not '\(code)'")
    }
    configuration.identity.referenceID = referenceID
}
configuration.identity.serveUnsynchronised = options.has("serve-unsynchronised")
configuration.identity.precision = measuredClockPrecision()
configuration.interleaved = !options.has("no-interleaved")
if let spec = options.string("rate-limit") {
    if spec == "off" {
        configuration.rateLimit = nil
    } else {
        let parts = spec.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 2, let interval = Double(parts[0]), interval > 0, interval <= 86_400,
              let burst = Int64(parts[1]), burst >= 1, burst <= 1_000_000 else {
            exitWithUsageError("stratumd", "\(options.describe("rate-limit")) wants 'INTERVAL,BURST' (e.g. 2,16: seconds > 0, burst >= 1) or 'off', not '\(spec)'")
        }
        configuration.rateLimit = RateLimit(intervalNanoseconds: Int64(interval * 1e9), burst: burst)
    }
}
let metricsAddress: SocketAddress?
do throws(UsageError) { metricsAddress = try MetricsEndpoint.address(from: options) } catch {
    exitWithUsageError("stratumd", error.message)
}

// Signals first: worker threads inherit the blocked mask, so every signal reaches the signalfd.
let signals: SignalReceiver
do throws(KernelError) { signals = try SignalReceiver(signals: [SIGINT, SIGTERM, SIGUSR1]) } catch {
    exitWithFailure("stratumd", "cannot set up signal handling: \(error.description)")
}
let server: ServingLoop
do throws(ServerError) { server = try ServingLoop(configuration: configuration) } catch {
    exitWithFailure("stratumd", error.message)
}
// Bound before privileges are dropped, like the NTP sockets, so a low port works too.
var metrics: MetricsEndpoint? = nil
if let metricsAddress {
    do throws(KernelError) { metrics = try MetricsEndpoint(address: metricsAddress) } catch {
        exitWithFailure("stratumd", "--metrics: \(error.description)")
    }
}
if let user = options.string("user") {
    do throws(KernelError) { try dropPrivileges(toUser: user) } catch {
        exitWithFailure("stratumd", error.description)
    }
}
let limitText = configuration.rateLimit.map { "rate limit 1 per \(Double($0.intervalNanoseconds) / 1e9) s, burst \($0.burst)" } ?? "rate limit off"
printLine("stratumd: serving on \(server.boundAddresses.map { $0.description }.joined(separator: " ")) with \(server.workerCount) worker(s); "
          + "stratum \(configuration.identity.stratum), refid \(configuration.identity.referenceID.asciiCode ?? "?"), "
          + "precision \(configuration.identity.precision), \(limitText), interleaved \(configuration.interleaved ? "on" : "off")"
          + (server.steeringByAddress ? "" : " (clients steered by 4-tuple: kernel refused the address steering program)"))
if let status = try? HostClockStatus.read(), !status.isSynchronised, !configuration.identity.serveUnsynchronised {
    printError("stratumd", "note: the host clock is not synchronised, so responses carry leap indicator 3 and clients will not use them; pass --serve-unsynchronised to serve it anyway")
}
do throws(ServerError) { try server.start() } catch {
    exitWithFailure("stratumd", error.message)
}
if let metrics {
    do throws(KernelError) {
        try metrics.start {
            metricsExpositionText(serverMetricFamilies(workers: server.workerCounters(), state: server.servedState(),
                                                       hostClock: try? HostClockStatus.read()))
        }
    } catch {
        exitWithFailure("stratumd", "--metrics: \(error.description)")
    }
    printLine("stratumd: metrics at http://\(metrics.boundAddress)/metrics")
}
while true {
    let signal = (try? signals.next(timeoutNanoseconds: nil)) ?? nil
    guard let signal else { continue }
    if signal == SIGUSR1 {
        printLine("counters: " + server.counters().summary)
        continue
    }
    metrics?.shutdown()
    let final = server.stop()
    printLine("counters: " + final.summary)
    printLine("stratumd: stopped on signal \(signal)")
    exit(ExitStatus.success.rawValue)
}
