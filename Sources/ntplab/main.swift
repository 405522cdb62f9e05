#if canImport(Glibc)
import Glibc
#endif
import ToolSupport

// ntplab: the lab. Each subcommand lives in its own file; this file only dispatches.
prepareToolProcess()
let arguments = Array(CommandLine.arguments.dropFirst())
let subcommand = arguments.first.flatMap { $0.hasPrefix("-") ? nil : $0 }
let rest = subcommand == nil ? arguments : Array(arguments.dropFirst())

switch subcommand {
case "load":
    exit(runLoadCommand(rest))
case "simulate":
    exit(runSimulateCommand(rest))
case "run":
    exit(runLiveCommand(rest))
case nil:
    if arguments.contains("--help") || arguments.contains("-h") {
        printLine("""
        Usage:
          ntplab                     a short live lan-stratum1 run on loopback (about a minute)
          ntplab simulate --scenario NAME [--days D] [--seed S]
          ntplab run --scenario NAME [--duration S] [--poll P] [--compare chrony]
          ntplab load --target HOST:PORT [--rate R] [--duration S] [--clients N]

        Run 'ntplab COMMAND --help' for a command's options.
        """)
        exit(ExitStatus.success.rawValue)
    }
    if arguments.contains("--version") { printLine("ntplab \(toolkitVersion)"); exit(0) }
    // Bare 'ntplab' takes the live run's options; a mistake in them is reported as
    // ntplab's, since the user never typed 'run'.
    let bareTool = ToolDescription(name: "ntplab", synopsis: liveTool.synopsis, summary: liveTool.summary,
                                   options: liveTool.options, footer: liveTool.footer)
    do throws(UsageError) { _ = try bareTool.parse(arguments) } catch { exitWithUsageError("ntplab", error.message) }
    exit(runLiveCommand(["--default-demo"] + arguments))
default:
    exitWithUsageError("ntplab", "unknown command '\(subcommand!)': use simulate, run or load (see 'ntplab --help')")
}
