// `ntpbench filter`: time and heap allocations of one FeedforwardClock update (one stamp
// through `process`) at poll 16 s with the 7-day history full (docs/feedforward.md §3).
import CMallocCounter
import FeedforwardClock
import Randomness
import ToolSupport
#if canImport(Glibc)
import Glibc
#endif

/// Entry point for `ntpbench filter`.
func runFilterBenchmark(_ arguments: [String]) -> Int32 {
    let options = parseBenchmarkOptions("filter", summary: "One FeedforwardClock update (one stamp through process) at poll 16 s with the\n7-day history full: ns per update and heap allocations per update.", options: [
        .value("history", "N", "Stamps fed before timing (default 40320: 7 days at poll 16\nplus a margin, so both RTT generations have rotated)."),
        .value("updates", "N", "Timed filter updates (default 200000)."),
        .value("poll", "SECONDS", "The filter's poll period, which sizes its windows (default 16)."),
    ], arguments)
    let history = optionOrExit("filter") { () throws(UsageError) in try options.integer("history", default: 40_320, in: 1...100_000_000) }
    let updates = optionOrExit("filter") { () throws(UsageError) in try options.integer("updates", default: 200_000, in: 1...100_000_000) }
    let poll = optionOrExit("filter") { () throws(UsageError) in try options.decimal("poll", default: 16, in: 1...131_072) }
    guard let selfCheck = mallocCounterSelfCheck("filter") else { return 1 }
    print("malloc counter self-check: \(selfCheck) allocation(s) seen for one known array")

    // Every stamp is made before any measurement, so the timed loop runs only the filter.
    var path = SyntheticPath(pollSeconds: poll)
    let warmStamps = (0..<history).map { _ in path.next() }
    let timedStamps = (0..<updates).map { _ in path.next() }
    let sampledStamps = (0..<min(updates, 100_000)).map { _ in path.next() }
    var perUpdate = [Int64](repeating: 0, count: sampledStamps.count)

    var clock = FeedforwardClock(configuration: FeedforwardConfiguration(pollPeriodSeconds: poll))
    var rejected = 0
    for stamp in warmStamps where clock.process(stamp) != .accepted { rejected += 1 }
    let afterHistory = clock.parameters

    // Timed loop: one clock read and one counter read on each side of it only.
    var sink = 0.0
    let allocationsBefore = stratum_malloc_count()
    let start = monotonicNanoseconds()
    for stamp in timedStamps {
        if clock.process(stamp) != .accepted { rejected += 1 }
        sink += clock.parameters.offsetNanoseconds
    }
    let end = monotonicNanoseconds()
    let allocations = stratum_malloc_count() - allocationsBefore

    // Distribution: each update timed alone (adds two clock reads of overhead to each).
    for (i, stamp) in sampledStamps.enumerated() {
        let before = monotonicNanoseconds()
        if clock.process(stamp) != .accepted { rejected += 1 }
        perUpdate[i] = monotonicNanoseconds() - before
    }
    perUpdate.sort()

    let windows = clock.windows
    let meanNanoseconds = Double(end - start) / Double(updates)
    print("ntpbench filter: FeedforwardClock.process at poll \(fixedDecimal(poll, 0)) s")
    print("windows (stamps): history \(windows.history), shift \(windows.shift), offset \(windows.offset), "
          + "warm-up \(windows.warmUp)")
    print("history fed first: \(history) stamps (\(fixedDecimal(Double(history) * poll / 86_400, 1)) days); "
          + "status after it: \(statusWords(afterHistory.status)); stamps rejected: \(rejected)")
    print("")
    print("timed updates          \(updates)")
    print("ns per update (mean)   \(fixedDecimal(meanNanoseconds, 1))")
    print("ns per update p50/p99/max (\(perUpdate.count) timed alone)   "
          + "\(perUpdate[perUpdate.count / 2]) / \(perUpdate[perUpdate.count * 99 / 100]) / \(perUpdate[perUpdate.count - 1])")
    print("heap allocations       \(allocations) total, \(fixedDecimal(Double(allocations) / Double(updates), 6)) per update")
    print("final: maxError \(fixedDecimal(clock.parameters.maxErrorNanoseconds, 0)) ns, "
          + "status \(statusWords(clock.parameters.status))")
    if sink.isNaN { print("") }   // keeps the work observable
    if rejected > 0 {
        printError("ntpbench filter: the filter rejected \(rejected) synthetic stamps; the figures do not measure the normal path")
        return 1
    }
    if allocations > 0 {
        printError("ntpbench filter: a filter update allocated (\(allocations) allocations in \(updates) updates)")
        return 1
    }
    return 0
}

/// A server at true time, a client counter 37 PPM fast, 40 µs minimum RTT with exponential
/// queueing (mean 8 µs each way): a quiet LAN path. A fixed seed, so every run is the same.
private struct SyntheticPath {
    var random = SeededRandom(seed: 0x5EED_F11E)
    var trueTime: Int64 = 1_795_286_605_000_000_000
    let counterAnchor: Int64 = 3_600_000_000_000
    let trueAnchor: Int64 = 1_795_286_605_000_000_000
    let rate = 1.000_037
    let pollNanoseconds: Int64

    init(pollSeconds: Double) { pollNanoseconds = Int64(pollSeconds * 1e9) }

    func counter(_ time: Int64) -> Int64 { counterAnchor + Int64(Double(time - trueAnchor) * rate) }

    mutating func next() -> Stamp {
        let sent = trueTime
        let receive = sent + 20_000 + Int64(random.exponential(mean: 8_000))
        let transmit = receive + 5_000
        let back = transmit + 20_000 + Int64(random.exponential(mean: 8_000))
        trueTime += pollNanoseconds
        return Stamp(ta: counter(sent), tb: receive, te: transmit, tf: counter(back),
                     stratum: 1, referenceID: 0x4750_5300, leap: 0,
                     rootDelayNanoseconds: 0, rootDispersionNanoseconds: 15_000)
    }
}

private func statusWords(_ status: ClockStatus) -> String {
    let words = status.words
    return words.isEmpty ? "ok" : words.joined(separator: ",")
}

