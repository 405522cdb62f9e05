#if canImport(Glibc)
import Glibc
#endif
import KernelStamps
import NTPLab
import ToolSupport

/// `ntplab simulate`: runs scenarios through the feedforward filter in simulated time and
/// prints the lab's figures (a text table, `--json`, `--svg`).
private let simulateTool = ToolDescription(
    name: "ntplab simulate",
    synopsis: [
        "ntplab simulate [--scenario NAME|all] [--days D] [--seed S] [--poll P] [--rate-cycle PPM,PERIOD]... [--json] [--svg FILE] [--csv FILE]",
    ],
    summary: """
    Runs each scenario's oscillator, network and server models through the feedforward filter
    in simulated time and measures the clock against the truth the models keep: |error|
    median, IQR, p99 and max; the share of samples inside the published maxError; the time to
    recover after each event. The clock is read at every exchange and at 3 evenly spaced
    instants between exchanges. Deterministic: the same seed gives the same output.

    By default every scenario runs for 1 simulated day at its own seed and poll 16 s: all of
    them take about 1 s in a release build (swift build -c release), and each
    scenario's promised figures, checked by the tests, hold for that run. --days 7 gives a
    week. The line under the table says what the filter declared, where |error| left the
    bound, and whether the scenario's promises were met. A scenario with several servers
    (falseticker) runs one filter per server over the same counter and measures the clock
    their vote publishes; a line per server says what the vote made of it.

    Scenarios:
    \(Scenario.all.map { "  " + $0.name.padding(15) + $0.summary }.joined(separator: "\n"))
    """,
    options: [
        .value("scenario", "NAME", "A scenario from the list above, or 'all' (default: all)."),
        .value("days", "D", "Simulated days to run, 0.01 to 60 (default: 1)."),
        .value("seed", "S", "Random seed for every model (default: each scenario's own)."),
        .value("poll", "P", "Poll period in seconds, 1 to 1024 (default: 16)."),
        .value("rate-cycle", "PPM,PERIOD", repeatable: true,
               "Replace the scenario's rate cycles with a sine of PPM amplitude and\nPERIOD (90s, 40min, 24h, 1d); repeat to add cycles. Tests your\nown oscillator: e.g. --rate-cycle 1.0,24h --rate-cycle 0.2,40min."),
        .flag("json", "Print one JSON document instead of the table."),
        .value("svg", "FILE", "Write error against time with the ±maxError band as SVG\n(one scenario only)."),
        .value("csv", "FILE", "Write every sample as CSV: true time s, error ns, maxError ns\n(one scenario only)."),
    ],
    footer: "Exit status: 0 when every run finished, 2 on a usage error."
)

func runSimulateCommand(_ arguments: [String]) -> Int32 {
    let options = parseCommandLineOrExit(simulateTool, arguments: arguments)
    let name = options.string("scenario") ?? "all"
    let days: Double
    let pollSeconds: Int
    var seed: UInt64? = nil
    var rateCycles: [RateCycle]? = nil
    do throws(UsageError) {
        let cycleTexts = options.strings("rate-cycle")
        if !cycleTexts.isEmpty {
            var cycles: [RateCycle] = []
            for text in cycleTexts { cycles.append(try RateCycle.parse(text)) }
            rateCycles = cycles
        }
        days = try options.decimal("days", default: 1, in: 0.01...60)
        pollSeconds = try options.integer("poll", default: 16, in: 1...1024)
        if let text = options.string("seed") {
            guard let value = UInt64(text) else {
                throw UsageError("--seed wants a whole number from 0 to \(UInt64.max), not '\(text)'")
            }
            seed = value
        }
    } catch {
        exitWithUsageError(simulateTool.name, error.message)
    }
    if !options.positionals.isEmpty {
        exitWithUsageError(simulateTool.name, "unexpected argument '\(options.positionals[0])': name a scenario with --scenario NAME")
    }
    let scenarios: [Scenario]
    if name == "all" {
        scenarios = Scenario.all
    } else if let scenario = Scenario.named(name) {
        scenarios = [scenario]
    } else {
        exitWithUsageError(simulateTool.name,
                           "no scenario '\(name)': use one of \(Scenario.all.map(\.name).joined(separator: ", ")) or all")
    }
    let svgPath = options.string("svg")
    let csvPath = options.string("csv")
    if (svgPath != nil || csvPath != nil) && scenarios.count != 1 {
        exitWithUsageError(simulateTool.name, "--svg and --csv describe one scenario: add --scenario NAME")
    }

    var results: [SimulationResult] = []
    for scenario in scenarios {
        let configured = scenario.with(days: days, seed: seed, pollSeconds: pollSeconds, rateCycles: rateCycles)
        results.append(SimulationRunner.run(configured, sampling: SamplingOptions(keepSamplesForPlot: svgPath != nil || csvPath != nil)))
    }

    if let result = results.first {
        do throws(LabError) {
            if let svgPath { try writeTextFile(svgPath, SimulationReport.plot(result).render()) }
            if let csvPath { try writeTextFile(csvPath, SimulationReport.csv(result.samples)) }
        } catch {
            printError(simulateTool.name, error.description)
            return ExitStatus.failure.rawValue
        }
    }
    if options.has("json") {
        printLine(JSONValue.object([JSONMember("scenarios", .array(results.map { $0.json() }))]).rendered())
    } else {
        StandardStream.output.write(SimulationReport.table(results))
        if let svgPath { printLine("plot written to \(svgPath)") }
        if let csvPath { printLine("samples written to \(csvPath)") }
    }
    return ExitStatus.success.rawValue
}

private extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
