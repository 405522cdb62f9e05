// ntpbench: measurements that must not regress (speed and heap allocations of hot paths).
// Each subcommand lives in its own file and registers itself in `benchmarkCommands` below.
#if canImport(Glibc)
import Glibc
#endif

struct BenchmarkCommand {
    var name: String
    var summary: String
    /// Receives the arguments after the subcommand name; returns the exit status.
    var run: ([String]) -> Int32
}

let benchmarkCommands: [BenchmarkCommand] = [
    BenchmarkCommand(name: "codec", summary: "NTPPacket decode/encode: ns per operation and heap allocations per operation",
                     run: runCodecBenchmark),
    BenchmarkCommand(name: "server", summary: "stratumd's request path: ns per request and heap allocations per request",
                     run: runServerBenchmark),
    BenchmarkCommand(name: "filter", summary: "FeedforwardClock: ns per filter update and heap allocations per update at poll 16",
                     run: runFilterBenchmark),
    BenchmarkCommand(name: "selection", summary: "Source selection: ns per vote among 8 sources and heap allocations per vote",
                     run: runSelectionBenchmark),
]

/// One line on stderr (fd 2), for errors; avoids Glibc's non-Sendable `stderr` global.
func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
}

@MainActor
func printUsage() {
    print("usage: ntpbench COMMAND [OPTIONS]   (build with -c release for meaningful figures)")
    print("commands:")
    for command in benchmarkCommands {
        let padding = String(repeating: " ", count: max(1, 11 - command.name.count))
        print("  \(command.name)\(padding)\(command.summary)")
    }
    print("run `ntpbench COMMAND --help` for a command's options")
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.isEmpty || arguments[0] == "--help" || arguments[0] == "-h" {
    printUsage()
    exit(arguments.isEmpty ? 2 : 0)
}
if arguments[0] == "--version" {
    print("ntpbench 0.1")
    exit(0)
}
guard let command = benchmarkCommands.first(where: { $0.name == arguments[0] }) else {
    printError("ntpbench: unknown command '\(arguments[0])'; run `ntpbench --help` for the list")
    exit(2)
}
exit(command.run(Array(arguments.dropFirst())))
