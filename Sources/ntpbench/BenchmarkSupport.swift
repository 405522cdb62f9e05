// What every benchmark shares: option parsing (ToolSupport's one parser), a monotonic
// clock for timing, and the malloc counter's self-check.
import CMallocCounter
import ToolSupport
#if canImport(Glibc)
import Glibc
#endif

/// Parses a benchmark's options with the tools' one parser; `--help` prints and exits 0,
/// usage errors exit 2.
func parseBenchmarkOptions(_ name: String, summary: String, options: [OptionSpec], _ arguments: [String]) -> ParsedOptions {
    let tool = ToolDescription(name: "ntpbench \(name)", synopsis: ["ntpbench \(name) [options]"],
                               summary: summary + "\nBuild with -c release for meaningful figures.", options: options)
    let parsed = parseCommandLineOrExit(tool, arguments: arguments)
    if let extra = parsed.positionals.first { exitWithUsageError(tool.name, "unexpected argument '\(extra)'") }
    return parsed
}

/// Reads an option or exits with its usage error.
func optionOrExit<T>(_ name: String, _ read: () throws(UsageError) -> T) -> T {
    do throws(UsageError) { return try read() } catch { exitWithUsageError("ntpbench \(name)", error.message) }
}

/// CLOCK_MONOTONIC in nanoseconds, for timing loops.
func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// Mallocs counted for one known allocation; nil, after saying so on stderr, if the counter
/// saw none (then every "0 allocations" figure would be meaningless and the benchmark `name`
/// must not print it).
func mallocCounterSelfCheck(_ name: String) -> UInt64? {
    let before = stratum_malloc_count()
    let array = makeArray(count: 1000)
    let after = stratum_malloc_count()
    guard array.count == 1000, after > before else {
        printError("ntpbench \(name)", "the malloc counter did not see a known allocation; allocation figures would be meaningless (is CMallocCounter linked?)")
        return nil
    }
    return after - before
}

@inline(never)
private func makeArray(count: Int) -> [Int] {
    var array = [Int](repeating: 0, count: count)
    array[count / 2] = count
    return array
}
