// `ntpbench selection`: time and heap allocations of one vote among eight sources and the
// combined clock it publishes (`CombinedClock.update`, docs/feedforward.md "Several sources"),
// which a client with several servers runs after every accepted stamp.
import CMallocCounter
import FeedforwardClock
import ToolSupport

/// Entry point for `ntpbench selection`.
func runSelectionBenchmark(_ arguments: [String]) -> Int32 {
    let options = parseBenchmarkOptions("selection", summary: "One vote among 8 sources (one of them 50 ms off) and the combined clock it\npublishes: ns per update and heap allocations per update.", options: [
        .value("updates", "N", "Timed updates (default 1000000)."),
    ], arguments)
    let updates = optionOrExit("selection") { () throws(UsageError) in try options.integer("updates", default: 1_000_000, in: 1...100_000_000) }
    guard let selfCheck = mallocCounterSelfCheck("selection") else { return 1 }
    print("malloc counter self-check: \(selfCheck) allocation(s) seen for one known array")

    // Eight synchronised sources a few µs apart with bounds of ~100 µs; the last one lies.
    var sources = InlineArray<8, ClockParameters>(repeating: .empty)
    for k in 0..<8 {
        var p = ClockParameters.empty
        p.status = []
        p.counterOrigin = 1_000_000_000
        p.lastStampCounter = 1_000_000_000
        p.nextStampExpectedCounter = 17_000_000_000
        p.timeAtOriginNanoseconds = 1_800_000_000_000_000_000 + Int64(k * 3_000) + (k == 7 ? 50_000_000 : 0)
        p.maxErrorNanoseconds = 100_000 + Double(k) * 1_000
        p.maxErrorGrowthRate = 1e-7
        p.errorEstimateNanoseconds = 2_000 + Double(k) * 100
        p.periodError = 1e-8 * Double(k + 1)
        p.periodErrorBound = 1e-7
        p.leap = 0
        sources[k] = p
    }
    var clock = CombinedClock(minimumSources: CombinedClock.majority(of: 8))
    // One vote before counting: the runtime builds the generic types' metadata on first use.
    var sink = clock.update(sources: sources, count: 8, atCounter: 1_000_000_000, updatedSource: 0).maxErrorNanoseconds
    let allocationsBefore = stratum_malloc_count()
    let start = monotonicNanoseconds()
    for i in 0..<updates {
        let vote = clock.update(sources: sources, count: 8, atCounter: 1_000_000_000 + Int64(i & 1023) * 1_000, updatedSource: i & 7)
        sink += vote.maxErrorNanoseconds
    }
    let end = monotonicNanoseconds()
    let allocations = stratum_malloc_count() - allocationsBefore
    let vote = clock.selection
    print("ntpbench selection: CombinedClock.update over 8 sources")
    print("outcome: \(vote.outcome); falsetickers: \((0..<vote.count).filter { vote.verdicts[$0] == .falseticker }.map { String($0 + 1) }.joined(separator: ","))")
    print("timed updates          \(updates)")
    print("ns per update (mean)   \(fixedDecimal(Double(end - start) / Double(updates), 1))")
    print("heap allocations       \(allocations) total, \(fixedDecimal(Double(allocations) / Double(updates), 6)) per update")
    if sink.isNaN { print("") }   // keeps the work observable
    guard vote.outcome == .synchronised(agreeing: 7), vote.verdicts[7] == .falseticker else {
        printError("ntpbench selection: the vote did not find the one liar among 8; the figures do not measure the normal path")
        return 1
    }
    if allocations > 0 {
        printError("ntpbench selection: a vote allocated (\(allocations) allocations in \(updates) updates)")
        return 1
    }
    return 0
}
