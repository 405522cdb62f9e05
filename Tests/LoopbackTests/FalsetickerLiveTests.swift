import XCTest
import KernelStamps
import NTPLab

/// The falseticker scenario live: three relay lanes, the third serving +50 ms from a quarter
/// of the run on. The client must name that server and never follow it.
final class FalsetickerLiveTests: XCTestCase {
    func testLyingServerIsNamedAndNotFollowed() throws {
        let plan = LivePlan(scenario: Scenario.falseticker, durationNanoseconds: 40 * Span.second, pollSeconds: 1)
        var options = LiveOptions()
        options.stopOnFailedCalibration = false  // about a 50 ms lie, not microseconds
        let result = try LiveRunner.run(plan, options: options)
        print(LiveReport.table(result))
        let named = result.ours.notes.filter { $0.contains("voted out as a falseticker") }
        XCTAssertEqual(named.count, 1, "exactly one server named: \(result.ours.notes)")
        XCTAssertTrue(named.first?.hasPrefix("server 3 ") ?? false, "the third server lied: \(named)")
        XCTAssertTrue(named.first?.hasSuffix("selected 0 times after") ?? false, "never selected after: \(named)")
        XCTAssertGreaterThan(result.ours.samples.count, 100)
        XCTAssertLessThan(result.ours.figures.maxAbsErrorNanoseconds, 1_000_000,
                          "the clock never moved towards the +50 ms server")
        // A loaded machine can delay a read past what the bound allows; the lie never can.
        XCTAssertGreaterThanOrEqual(result.ours.figures.insideBoundShare, 0.99)
    }
}
