import XCTest
@testable import NTPLab

/// Several servers in simulation: the vote names a lying server at once and the combined
/// clock keeps the single-server accuracy (docs/feedforward.md, "Several sources").
final class FalsetickerTests: XCTestCase {
    private let quiet = SamplingOptions(keepSamplesForPlot: false)

    /// Three servers, the third steps +50 ms at 12 h: for three seeds, p99 within 1.2× of one
    /// honest server's at the same seed, no sample outside the bound, the liar flagged within
    /// 3 of its polls and never selected after, the honest two never called falsetickers.
    func testFalsetickerIsVotedOutAndAccuracyHolds() {
        for seed: UInt64 in [1, 2, 3] {
            let result = SimulationRunner.run(Scenario.falseticker.with(days: 1, seed: seed), sampling: quiet)
            let single = SimulationRunner.run(Scenario.lanStratum1.with(days: 1, seed: seed), sampling: quiet)
            let table = SimulationReport.table([result, single])
            XCTAssertEqual(result.scenario.promised.unmet(by: result.figures), [], table)
            XCTAssertLessThanOrEqual(result.figures.p99AbsErrorNanoseconds, 1.2 * single.figures.p99AbsErrorNanoseconds, table)
            XCTAssertEqual(result.boundViolationCount, 0, table)
            XCTAssertGreaterThan(result.figures.sampleCount, 3 * 20_000, table)
            XCTAssertEqual(result.sources.count, 3)
            let liar = result.sources[2]
            XCTAssertNotNil(liar.pollsUntilFlagged, table)
            XCTAssertLessThanOrEqual(liar.pollsUntilFlagged ?? .max, 3, table)
            XCTAssertEqual(liar.selectedAfterFlagged, 0, table)
            XCTAssertGreaterThan(liar.selectedVotes, 0, "selected before it lied")
            for honest in result.sources.prefix(2) {
                XCTAssertEqual(honest.falsetickerVotes, 0, table)
                XCTAssertGreaterThan(honest.selectedVotes, 10_000, table)
            }
        }
    }

    /// Two servers 50 ms apart and no third: no majority, so the combined clock never
    /// publishes an estimate and neither server is selected or called a falseticker; it never
    /// picks one silently.
    func testTwoServersThatDisagreeLeaveTheClockUnsynchronised() {
        var scenario = Scenario.falseticker.with(days: 0.05)
        var liar = ServerParameters()
        liar.offsetNanoseconds = 50 * Span.millisecond
        scenario.configuration.additionalServers = [SimulatedServer(network: scenario.configuration.network, server: liar)]
        let result = SimulationRunner.run(scenario, sampling: quiet)
        XCTAssertEqual(result.sources.count, 2)
        XCTAssertEqual(result.figures.sampleCount, 0, "no sample: the clock never had an estimate to read")
        for source in result.sources {
            XCTAssertEqual(source.selectedVotes, 0)
            XCTAssertEqual(source.falsetickerVotes, 0)
            XCTAssertGreaterThan(source.candidateVotes, 100)
        }
    }

    /// Live, each server is a relay lane with its own served-time transform: the third
    /// serves +50 ms from the step's scaled instant on, the other two serve the truth.
    func testLivePlanGivesTheLiarItsOwnServedTime() {
        let plan = LivePlan(scenario: .falseticker, durationNanoseconds: 120 * Span.second, pollSeconds: 2)
        XCTAssertEqual(plan.serverCount, 3)
        let origin: Int64 = 1_800_000_000 * Span.second
        let step = plan.events[0].atNanoseconds
        XCTAssertEqual(step, 30 * Span.second, "12 h of 2 days is a quarter of the run")
        for (t, lie) in [(step - Span.second, Int64(0)), (step + Span.second, 50 * Span.millisecond)] {
            let truth = plan.transform(originUnixNanoseconds: origin).served(atServerUnixNanoseconds: origin + t)
            XCTAssertEqual(plan.transform(originUnixNanoseconds: origin, server: 1).served(atServerUnixNanoseconds: origin + t), truth)
            XCTAssertEqual(plan.transform(originUnixNanoseconds: origin, server: 2).served(atServerUnixNanoseconds: origin + t) - truth, lie)
        }
    }
}
