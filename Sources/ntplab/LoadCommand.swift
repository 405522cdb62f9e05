#if canImport(Glibc)
import Glibc
#endif
import KernelStamps
import NTPLab
import ToolSupport

/// `ntplab load`: offers NTP client requests to any server and counts valid answers.
private let loadTool = ToolDescription(
    name: "ntplab load",
    synopsis: ["ntplab load --target HOST:PORT [--rate R] [--duration S] [--clients N] [--probe] [--json]"],
    summary: """
    Sends NTPv4 client requests in sendmmsg batches from N sockets (on IPv4 loopback each
    on its own source address, 127.0.0.2, .3, ...), each request with a random transmit
    timestamp, and counts only responses that answer a request still outstanding: right
    source, mode 4, origin equal to that transmit timestamp. Prints offered and answered
    rates, loss, and the server's receive-to-transmit delay (t3 - t2) median and p99 taken
    from the responses' own timestamps. Only send load to servers you run yourself.

    With --probe, a separate basic-mode client on its own address (127.0.0.2 on loopback;
    the load then starts at 127.0.0.3) sends one request every --probe-interval-ms, one in
    flight, with t1 from the kernel's TX stamp and t4 from its RX stamp, and reports the
    RTT and offset distribution (RFC 5905 §8). A server whose transmit timestamp is earlier
    than the moment its response really leaves shows it as a longer RTT and a negative
    offset; this is how a server's timestamp quality under load is judged. --clients 0
    runs the probe alone (the unloaded reference) until it has sent all its requests.
    """,
    options: [
        .value("target", "HOST:PORT", "Server to load (port defaults to 123)."),
        .value("rate", "R", "Requests per second to offer; 0 = as many as the server answers\n(closed loop, at most --outstanding in flight). Default 0."),
        .value("duration", "S", "Seconds to run, 0.1 to 3600. Default 5."),
        .value("clients", "N", "Client sockets, 0 to 4096 (0: no load, only --probe). Default 16."),
        .value("outstanding", "N", "Requests in flight at most when --rate is 0. Default 2048."),
        .flag("probe", "Run the timing probe beside the load (see above)."),
        .value("probe-count", "N", "Probe requests, 1 to 100000. Default 400."),
        .value("probe-interval-ms", "MS", "Milliseconds between probe requests, 1 to 10000. Default 10."),
        .value("probe-source", "ADDR", "The probe's own address. Default 127.0.0.2 for an IPv4 loopback\ntarget, else any address of the target's family."),
        .flag("json", "Print one JSON object instead of text."),
    ])

func runLoadCommand(_ arguments: [String]) -> Int32 {
    let options = parseCommandLineOrExit(loadTool, arguments: arguments)
    guard let targetText = options.string("target") ?? options.positionals.first else {
        exitWithUsageError("ntplab load", "--target HOST:PORT is required (e.g. --target 127.0.0.1:12300)")
    }
    let target: SocketAddress
    do throws(KernelError) { target = try SocketAddress.resolve(targetText, defaultPort: 123) } catch {
        exitWithUsageError("ntplab load", "--target: \(error.description)")
    }
    var configuration = LoadConfiguration(target: target)
    do throws(UsageError) {
        configuration.ratePerSecond = try options.decimal("rate", default: 0, in: 0...10_000_000)
        configuration.durationNanoseconds = Int64(try options.decimal("duration", default: 5, in: 0.1...3600) * 1e9)
        configuration.clients = try options.integer("clients", default: 16, in: 0...4096)
        configuration.maximumOutstanding = try options.integer("outstanding", default: 2048, in: 1...1_000_000)
        if options.has("probe") {
            let loopbackIPv4 = target.ipv4Address.map { $0 >> 24 == 127 } ?? false
            var source: SocketAddress = loopbackIPv4 ? SocketAddress(ipv4: 0x7f00_0002, port: 0)
                : (target.family == .ipv4 ? .anyIPv4(port: 0) : .anyIPv6(port: 0))
            if let text = options.string("probe-source") {
                do throws(KernelError) { source = try SocketAddress.resolve(text, defaultPort: 0) } catch {
                    throw UsageError("--probe-source: \(error.description)")
                }
            }
            configuration.probe = ProbeConfiguration(
                source: source, count: try options.integer("probe-count", default: 400, in: 1...100_000),
                intervalNanoseconds: Int64(try options.integer("probe-interval-ms", default: 10, in: 1...10_000)) * 1_000_000)
        } else if configuration.clients == 0 {
            throw UsageError("--clients 0 sends no load: add --probe, or give at least 1 client")
        }
    } catch {
        exitWithUsageError("ntplab load", error.message)
    }
    let report: LoadReport
    do throws(LabError) { report = try runLoad(configuration) } catch {
        printError("ntplab load", error.message)
        return ExitStatus.failure.rawValue
    }
    if options.has("json") {
        printLine(JSONValue.object([
            JSONMember("target", .string(target.description)),
            JSONMember("durationNanoseconds", .integer(report.durationNanoseconds)),
            JSONMember("sent", .integer(Int64(report.sent))),
            JSONMember("answered", .integer(Int64(report.answered))),
            JSONMember("kisses", .integer(Int64(report.kisses))),
            JSONMember("rejected", .integer(Int64(report.rejected))),
            JSONMember("offeredPerSecond", .number(report.offeredPerSecond.rounded())),
            JSONMember("answeredPerSecond", .number(report.answeredPerSecond.rounded())),
            JSONMember("loss", .number(report.lossFraction)),
            JSONMember("serverDelayMedianNanoseconds", .integer(report.serverDelayMedianNanoseconds)),
            JSONMember("serverDelayP99Nanoseconds", .integer(report.serverDelayP99Nanoseconds)),
            JSONMember("negativeServerDelays", .integer(Int64(report.negativeServerDelays))),
            JSONMember("probe", report.probe.map(probeJSON) ?? .null),
        ]).rendered())
    } else {
        printLine("target \(target)  duration \(format3(Double(report.durationNanoseconds) / 1e9)) s")
        printLine("offered \(Int(report.offeredPerSecond.rounded()))/s  answered \(Int(report.answeredPerSecond.rounded()))/s  "
                  + "loss \(format3(report.lossFraction * 100))%  (sent \(report.sent), answered \(report.answered), "
                  + "kisses \(report.kisses), rejected \(report.rejected))")
        printLine("server t3-t2: median \(report.serverDelayMedianNanoseconds) ns  p99 \(report.serverDelayP99Nanoseconds) ns"
                  + (report.negativeServerDelays > 0 ? "  (\(report.negativeServerDelays) responses had t3 < t2!)" : ""))
        if let probe = report.probe {
            printLine("probe: \(probe.answered)/\(probe.sent) answered  RTT min \(micro(probe.roundTripMinimumNanoseconds)) "
                      + "median \(micro(probe.roundTripMedianNanoseconds)) p99 \(micro(probe.roundTripP99Nanoseconds)) µs  "
                      + "offset p1 \(micro(probe.offsetP1Nanoseconds)) median \(micro(probe.offsetMedianNanoseconds)) "
                      + "p99 \(micro(probe.offsetP99Nanoseconds)) µs  t3-t2 median \(micro(probe.serverDelayMedianNanoseconds)) µs"
                      + (probe.userSpaceStamps > 0 ? "  (\(probe.userSpaceStamps) without kernel stamps)" : ""))
        }
    }
    let answered = configuration.clients == 0 ? UInt64(report.probe?.answered ?? 0) : report.answered
    return answered > 0 ? ExitStatus.success.rawValue : ExitStatus.failure.rawValue
}

private func probeJSON(_ probe: ProbeReport) -> JSONValue {
    .object([
        JSONMember("sent", .integer(Int64(probe.sent))),
        JSONMember("answered", .integer(Int64(probe.answered))),
        JSONMember("userSpaceStamps", .integer(Int64(probe.userSpaceStamps))),
        JSONMember("roundTripMinimumNanoseconds", .integer(probe.roundTripMinimumNanoseconds)),
        JSONMember("roundTripMedianNanoseconds", .integer(probe.roundTripMedianNanoseconds)),
        JSONMember("roundTripP99Nanoseconds", .integer(probe.roundTripP99Nanoseconds)),
        JSONMember("offsetP1Nanoseconds", .integer(probe.offsetP1Nanoseconds)),
        JSONMember("offsetMedianNanoseconds", .integer(probe.offsetMedianNanoseconds)),
        JSONMember("offsetP99Nanoseconds", .integer(probe.offsetP99Nanoseconds)),
        JSONMember("serverDelayMedianNanoseconds", .integer(probe.serverDelayMedianNanoseconds)),
    ])
}

private func micro(_ nanoseconds: Int64) -> String { format3(Double(nanoseconds) / 1000) }

private func format3(_ value: Double) -> String {
    let scaled = (value * 1000).rounded() / 1000
    return String(scaled)
}
