import XCTest
@testable import NTPLab

/// migration-vmclock: the platform signals the migration, so every sample (the first read
/// after the resume included) lies inside the published bound, and recovery is no slower
/// than in `migration`, where the filter must find the event from its stamps.
final class VMClockScenarioTests: XCTestCase {
    func testSignalledMigrationKeepsEverySampleInsideTheBound() {
        let days = 0.75
        let signalled = SimulationRunner.run(Scenario.migrationVMClock.with(days: days))
        let silent = SimulationRunner.run(Scenario.migration.with(days: days))
        let table = SimulationReport.table([silent, signalled])
        XCTAssertEqual(Scenario.migrationVMClock.promised.unmet(by: signalled.figures), [], table)
        XCTAssertEqual(signalled.boundViolationCount, 0, table)
        XCTAssertEqual(signalled.figures.insideBoundShare, 1, table)
        XCTAssertGreaterThan(silent.boundViolationCount, 0, "the unsignalled migration shows what the signal fixes: \(table)")
        // The read at the resume instant is sampled in both, and only the signalled one is honest.
        let resume = Scenario.migration.events[0].atNanoseconds
        let first = signalled.samples.first { $0.trueNanosecondsAtLeast(resume) }
        XCTAssertEqual(first?.trueNanoseconds, resume, table)
        XCTAssertGreaterThan(first?.errorNanoseconds.magnitude ?? 0, 1_000_000_000, "the counter jumped 2.5 s")
        XCTAssertEqual(first?.maxErrorNanoseconds, Int64.max, "the reader saw the changed marker")
        // Back under 50 µs no later than without the signal. (The finer recovery figure,
        // twice the steady p99, is compared over several seeds below: one run's figure
        // depends on where its last rare excursion falls.)
        let signalledSettle = signalled.figures.settlings.first?.recoveryNanoseconds ?? .max
        let silentSettle = silent.figures.settlings.first?.recoveryNanoseconds ?? .max
        XCTAssertLessThanOrEqual(signalledSettle, silentSettle, table)
        XCTAssertLessThanOrEqual(signalled.figures.recoveries.first?.recoveryNanoseconds ?? .max, 2 * Span.minute, table)
        print("migration vs migration-vmclock:\n\(table)")
    }

    /// At other polls and seeds: every sample inside the bound, and back under 50 µs no later
    /// than without the signal.
    func testSignalledRecoveryIsNoSlowerAtOtherPollsAndSeeds() {
        for (poll, seed) in [(4, UInt64(11)), (64, UInt64(5))] {
            let signalled = SimulationRunner.run(Scenario.migrationVMClock.with(days: 0.6, seed: seed, pollSeconds: poll),
                                                 sampling: SamplingOptions(keepSamplesForPlot: false))
            let silent = SimulationRunner.run(Scenario.migration.with(days: 0.6, seed: seed, pollSeconds: poll),
                                              sampling: SamplingOptions(keepSamplesForPlot: false))
            let table = SimulationReport.table([silent, signalled])
            XCTAssertEqual(signalled.boundViolationCount, 0, "poll \(poll): \(table)")
            XCTAssertLessThanOrEqual(signalled.figures.settlings.first?.recoveryNanoseconds ?? .max,
                                     silent.figures.settlings.first?.recoveryNanoseconds ?? .max, "poll \(poll): \(table)")
        }
    }
}

extension VMClockScenarioTests {
    /// The finer recovery figure (back within twice the steady p99, at least the scenario's
    /// 25 µs floor) compared
    /// fairly: over several seeds, by the median and by how many runs the signal wins or
    /// ties. One run is not enough: after either migration the clock sits on the new
    /// path's invisible +10 µs asymmetry bias, and now and then, when the newest stamps all
    /// queue, the offset fit follows them by 10–14 µs for one poll, before a migration as
    /// after it, with the signal and without, up and down. One that goes up after the migration crosses the
    /// threshold and moves that run's recovery figure to hours; the signalled client's
    /// extra burst exchanges shift the random draws, so which of the two runs it hits is
    /// chance, not the signal's handling.
    func testSignalledRecoveryIsNoSlowerOverSeveralSeeds() {
        let seeds: [UInt64] = [6, 5, 7, 11, 21, 31]
        for poll in [16, 64] {
            var signalled = [Int64](), silent = [Int64](), tables = [String]()
            for seed in seeds {
                let withSignal = SimulationRunner.run(Scenario.migrationVMClock.with(days: 0.6, seed: seed, pollSeconds: poll),
                                                      sampling: SamplingOptions(keepSamplesForPlot: false))
                let without = SimulationRunner.run(Scenario.migration.with(days: 0.6, seed: seed, pollSeconds: poll),
                                                   sampling: SamplingOptions(keepSamplesForPlot: false))
                XCTAssertEqual(withSignal.boundViolationCount, 0, "poll \(poll), seed \(seed)")
                signalled.append(withSignal.figures.recoveries.first?.recoveryNanoseconds ?? .max)
                silent.append(without.figures.recoveries.first?.recoveryNanoseconds ?? .max)
                tables.append(SimulationReport.table([without, withSignal]))
            }
            let report = "poll \(poll):\n" + tables.joined(separator: "\n")
            XCTAssertLessThanOrEqual(median(signalled), median(silent), report)
            let winsOrTies = zip(signalled, silent).filter { $0 <= $1 }.count
            XCTAssertGreaterThan(2 * winsOrTies, seeds.count, report)
        }
    }

    private func median(_ values: [Int64]) -> Int64 {
        let sorted = values.sorted()
        return sorted[(sorted.count - 1) / 2]
    }
}

private extension ErrorSample {
    func trueNanosecondsAtLeast(_ t: Int64) -> Bool { trueNanoseconds >= t }
}
