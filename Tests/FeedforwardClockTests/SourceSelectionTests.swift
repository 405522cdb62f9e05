import XCTest
@testable import FeedforwardClock

final class SourceSelectionTests: XCTestCase {
    private func vote(_ list: [SourceInterval], minimum: Int? = nil, previousPeriodSource: Int? = nil) -> SourceSelection {
        var storage = InlineArray<8, SourceInterval>(repeating: .none)
        for (i, s) in list.enumerated() { storage[i] = s }
        return SourceSelection.select(storage, count: list.count,
                                      minimumSources: minimum ?? CombinedClock.majority(of: list.count),
                                      previousPeriodSource: previousPeriodSource)
    }

    private func verdicts(_ s: SourceSelection) -> [SourceVerdict] { (0..<s.count).map { s.verdicts[$0] } }

    private func source(_ offset: Double, _ bound: Double, error: Double = 10, periodError: Double = 1e-7) -> SourceInterval {
        SourceInterval(offsetNanoseconds: offset, maxErrorNanoseconds: bound,
                       errorEstimateNanoseconds: error, periodError: periodError)
    }

    /// The published bound must cover the whole intersection from the estimate and be no wider
    /// than the best survivor's.
    private func assertBoundHonest(_ s: SourceSelection, _ list: [SourceInterval], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertGreaterThanOrEqual(s.offsetNanoseconds, s.intersectionLowNanoseconds, file: file, line: line)
        XCTAssertLessThanOrEqual(s.offsetNanoseconds, s.intersectionHighNanoseconds, file: file, line: line)
        let proven = max(s.offsetNanoseconds - s.intersectionLowNanoseconds, s.intersectionHighNanoseconds - s.offsetNanoseconds)
        XCTAssertGreaterThanOrEqual(s.maxErrorNanoseconds, proven - 1e-9, file: file, line: line)
        let best = list.indices.filter { s.verdicts[$0] == .selected }.map { list[$0].maxErrorNanoseconds }.min()!
        XCTAssertLessThanOrEqual(s.maxErrorNanoseconds, best + 1e-9, file: file, line: line)
    }

    func testAllAgree() {
        let list = [source(0, 100), source(30, 100, error: 20), source(-20, 80)]
        let s = vote(list)
        XCTAssertEqual(s.outcome, .synchronised(agreeing: 3))
        XCTAssertEqual(verdicts(s), [.selected, .selected, .selected])
        XCTAssertEqual(s.intersectionLowNanoseconds, -70)
        XCTAssertEqual(s.intersectionHighNanoseconds, 60)
        // Weights 1/err²: (0·4 + 30·1 − 20·4) / 9.
        XCTAssertEqual(s.offsetNanoseconds, -50.0 / 9, accuracy: 1e-9)
        XCTAssertEqual(s.errorEstimateNanoseconds, (1 / (0.01 + 0.0025 + 0.01)).squareRoot(), accuracy: 1e-9)
        assertBoundHonest(s, list)
        XCTAssertLessThan(s.maxErrorNanoseconds, 80, "the intersection is tighter than any single bound")
    }

    func testOneLiarOfThree() {
        let list = [source(0, 100), source(50_000_000, 100), source(40, 100)]
        let s = vote(list)
        XCTAssertEqual(s.outcome, .synchronised(agreeing: 2))
        XCTAssertEqual(verdicts(s), [.selected, .falseticker, .selected])
        XCTAssertLessThan(abs(s.offsetNanoseconds - 20), 1e-9, "the liar moves nothing")
        assertBoundHonest(s, list)
    }

    func testTwoLiarsOfFive() {
        let list = [source(0, 1_000), source(5_000, 200), source(300, 1_000), source(-9_000, 500), source(-200, 800)]
        let s = vote(list)
        XCTAssertEqual(s.outcome, .synchronised(agreeing: 3))
        XCTAssertEqual(verdicts(s), [.selected, .falseticker, .selected, .falseticker, .selected])
        XCTAssertEqual(s.intersectionLowNanoseconds, -700)
        XCTAssertEqual(s.intersectionHighNanoseconds, 600)
        assertBoundHonest(s, list)
    }

    func testTwoThatDisagreeHaveNoMajority() {
        let list = [source(0, 100), source(1_000, 100)]
        let s = vote(list)
        XCTAssertEqual(s.outcome, .noMajority(largestAgreeing: 1, needed: 2))
        XCTAssertFalse(s.outcome.isSynchronised)
        XCTAssertEqual(verdicts(s), [.candidate, .candidate], "neither is picked nor called a falseticker")
        XCTAssertNil(s.periodSource)
        XCTAssertTrue(s.outcome.description.contains("no majority"))
    }

    func testTwoThatDisagreeWithOneNeededAreAmbiguous() {
        let s = vote([source(0, 100), source(1_000, 100)], minimum: 1)
        XCTAssertEqual(s.outcome, .ambiguous(largestAgreeing: 1), "never picks one silently")
        XCTAssertEqual(verdicts(s), [.candidate, .candidate])
    }

    func testIntervalsThatOnlyTouchAgree() {
        let list = [source(0, 100), source(200, 100), source(100, 300)]
        let s = vote(list)
        XCTAssertEqual(s.outcome, .synchronised(agreeing: 3))
        XCTAssertEqual(s.intersectionLowNanoseconds, 100)
        XCTAssertEqual(s.intersectionHighNanoseconds, 100)
        XCTAssertEqual(s.offsetNanoseconds, 100)
        XCTAssertEqual(s.maxErrorNanoseconds, 0, "a single shared point is proven exactly")
        // Two that only touch: one point, both selected.
        let pair = vote([source(0, 100), source(200, 100)])
        XCTAssertEqual(pair.outcome, .synchronised(agreeing: 2))
        XCTAssertEqual(verdicts(pair), [.selected, .selected])
    }

    func testUnusableSourcesDoNotVoteButCountAgainstTheMajority() {
        var starving = source(0, 100); starving.condition = .starving
        let list = [source(0, 100), starving, source(10, 100)]
        let s = vote(list)
        XCTAssertEqual(s.outcome, .synchronised(agreeing: 2))
        XCTAssertEqual(verdicts(s), [.selected, .unusable, .selected])
        var unsync = source(0, 100); unsync.condition = .unsynchronised
        let lonely = vote([source(0, 100), unsync, starving])
        XCTAssertEqual(lonely.outcome, .noMajority(largestAgreeing: 1, needed: 2))
        XCTAssertEqual(vote([unsync]).outcome, .noUsableSource)
    }

    func testPendingSourceIsAFalsetickerOnlyWhenItsStampMissesTheIntersection() {
        var lying = source(50_000_000, 50); lying.condition = .pendingEvent
        var honest = source(20, 50); honest.condition = .pendingEvent
        let s = vote([source(0, 100), source(10, 100), lying, honest], minimum: 2)
        XCTAssertEqual(verdicts(s), [.selected, .selected, .falseticker, .unusable])
    }

    func testWeightedEstimateIsClampedToTheBestSurvivorsBound() {
        // A tight source at one edge of a wide one's interval, a very confident wide source: the
        // weighted mean would sit far from the tight source, the bound must stay ≤ 10.
        let list = [source(0, 10, error: 100), source(1_000, 1_010, error: 1)]
        let s = vote(list)
        XCTAssertEqual(s.outcome, .synchronised(agreeing: 2))
        XCTAssertEqual(s.intersectionLowNanoseconds, -10)
        XCTAssertEqual(s.intersectionHighNanoseconds, 10)
        assertBoundHonest(s, list)
    }

    func testPeriodSourceIsTheBestPeriodAndSticksWhileComparable() {
        let list = [source(0, 100, periodError: 3e-8), source(0, 100, periodError: 2e-8), source(0, 100, periodError: 5e-8)]
        XCTAssertEqual(vote(list).periodSource, 1)
        XCTAssertEqual(vote(list, previousPeriodSource: 0).periodSource, 0, "within twice the best: kept")
        XCTAssertEqual(vote(list, previousPeriodSource: 2).periodSource, 1, "more than twice the best: replaced")
    }

    func testCombinedClockPublishesTheVoteAndStaysUnsynchronisedWithoutMajority() {
        func params(offsetFromTruth: Double, bound: Double) -> ClockParameters {
            var p = ClockParameters.empty
            p.status = []
            p.timeAtOriginNanoseconds = 1_700_000_000_000_000_000 + Int64(offsetFromTruth)
            p.counterOrigin = 1_000
            p.lastStampCounter = 1_000
            p.nextStampExpectedCounter = 1_000 + 16_000_000_000
            p.maxErrorNanoseconds = bound
            p.maxErrorGrowthRate = 1e-7
            p.errorEstimateNanoseconds = 10
            p.periodError = 1e-8
            p.periodErrorBound = 1e-7
            p.leap = 0
            return p
        }
        var sources = InlineArray<8, ClockParameters>(repeating: .empty)
        sources[0] = params(offsetFromTruth: 0, bound: 100)
        sources[1] = params(offsetFromTruth: 40, bound: 100)
        sources[2] = params(offsetFromTruth: 50_000_000, bound: 100)
        var clock = CombinedClock(minimumSources: 2)
        let s = clock.update(sources: sources, count: 3, atCounter: 1_000, updatedSource: 2)
        XCTAssertEqual(verdicts(s), [.selected, .selected, .falseticker])
        XCTAssertFalse(clock.parameters.status.contains(.unsynchronised))
        XCTAssertEqual(clock.parameters.absoluteTime(atCounter: 1_000), 1_700_000_000_000_000_020)
        XCTAssertEqual(clock.parameters.maxErrorNanoseconds, 80, accuracy: 1e-6)

        var split = InlineArray<8, ClockParameters>(repeating: .empty)
        split[0] = sources[0]
        split[1] = sources[2]
        var pair = CombinedClock(minimumSources: CombinedClock.majority(of: 2))
        let none = pair.update(sources: split, count: 2, atCounter: 1_000, updatedSource: 0)
        XCTAssertEqual(none.outcome, .noMajority(largestAgreeing: 1, needed: 2))
        XCTAssertTrue(pair.parameters.status.contains(.unsynchronised))
    }
}
