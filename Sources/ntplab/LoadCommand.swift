#if canImport(Glibc)
import Glibc
#endif
import KernelStamps
import NTPLab
import ToolSupport

/// `ntplab load`: offers NTP client requests to any server and counts valid answers.
private let loadTool = ToolDescription(
    name: "ntplab load",
    synopsis: ["ntplab load --target HOST:PORT [--rate R] [--duration S] [--clients N] [--json]"],
    summary: """
    Sends NTPv4 client requests in sendmmsg batches from N sockets (on IPv4 loopback each
    on its own source address, 127.0.0.2, .3, ...), each request with a random transmit
    timestamp, and counts only responses that answer a request still outstanding: right
    source, mode 4, origin equal to that transmit timestamp. Prints offered and answered
    rates, loss, and the server's receive-to-transmit delay (t3 - t2) median and p99 taken
    from the responses' own timestamps. Only send load to servers you run yourself.
    """,
    options: [
        .value("target", "HOST:PORT", "Server to load (port defaults to 123)."),
        .value("rate", "R", "Requests per second to offer; 0 = as many as the server answers\n(closed loop, at most --outstanding in flight). Default 0."),
        .value("duration", "S", "Seconds to run, 0.1 to 3600. Default 5."),
        .value("clients", "N", "Client sockets, 1 to 1024. Default 16."),
        .value("outstanding", "N", "Requests in flight at most when --rate is 0. Default 2048."),
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
        configuration.clients = try options.integer("clients", default: 16, in: 1...1024)
        configuration.maximumOutstanding = try options.integer("outstanding", default: 2048, in: 1...1_000_000)
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
        ]).rendered())
    } else {
        printLine("target \(target)  duration \(format3(Double(report.durationNanoseconds) / 1e9)) s")
        printLine("offered \(Int(report.offeredPerSecond.rounded()))/s  answered \(Int(report.answeredPerSecond.rounded()))/s  "
                  + "loss \(format3(report.lossFraction * 100))%  (sent \(report.sent), answered \(report.answered), "
                  + "kisses \(report.kisses), rejected \(report.rejected))")
        printLine("server t3-t2: median \(report.serverDelayMedianNanoseconds) ns  p99 \(report.serverDelayP99Nanoseconds) ns"
                  + (report.negativeServerDelays > 0 ? "  (\(report.negativeServerDelays) responses had t3 < t2!)" : ""))
    }
    return report.answered > 0 ? ExitStatus.success.rawValue : ExitStatus.failure.rawValue
}

private func format3(_ value: Double) -> String {
    let scaled = (value * 1000).rounded() / 1000
    return String(scaled)
}
