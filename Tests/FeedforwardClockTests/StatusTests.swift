import XCTest
import FeedforwardClock

/// What the status words promise (docs/feedforward.md §8.4).
final class StatusTests: XCTestCase {
    /// A loopback-like path: minimum RTT about 10 µs and heavy queueing, polled every second
    /// after the burst.
    private func shortPath() -> PathSimulator {
        var path = PathSimulator(rate: 1 + 4.2e-6, seed: 0x1009_BAC4)
        path.upMinimumNanoseconds = 4_000
        path.downMinimumNanoseconds = 4_000
        path.upJitterMeanNanoseconds = 10_000
        path.downJitterMeanNanoseconds = 10_000
        path.processingNanoseconds = 2_000
        return path
    }

    private func run(_ configuration: FeedforwardConfiguration, stamps: Int = 40) -> Scenario {
        var s = Scenario(poll: 1, path: shortPath(), configuration: configuration)
        s.run(stamps)
        XCTAssertTrue(s.boundViolations().isEmpty)
        XCTAssertTrue(s.betweenViolations.isEmpty)
        return s
    }

    private func unsynchronised(_ s: Scenario, from start: Int = 0) -> [Int] {
        s.observations[start...].filter { $0.parameters.status.contains(.unsynchronised) }.map(\.index)
    }

    /// With the defaults, a short path at poll 1 s is synchronised once the burst is over
    /// and stays so, its bound well under the 100 µs that always counts.
    func testShortPathSynchronisesDuringTheBurstAndStays() {
        let s = run(FeedforwardConfiguration(pollPeriodSeconds: 1))
        XCTAssertEqual(unsynchronised(s, from: 8), [])
        for o in s.observations[8...] { XCTAssertLessThan(o.parameters.maxErrorNanoseconds, 100_000) }
    }

    /// The bound at each stamp moves with that stamp's queueing. Without the hold, a clock
    /// whose bound hovers at the allowance flickers between synchronised and not; with it, a
    /// synchronised epoch stays synchronised.
    func testSynchronisedEpochHoldsWhileItsBoundHovers() {
        var configuration = FeedforwardConfiguration(pollPeriodSeconds: 1)
        configuration.synchronisedBoundMinimumNanoseconds = 0
        configuration.synchronisedBoundFactor = 1
        configuration.synchronisedHoldFactor = 1
        let flickering = run(configuration)
        let first = try? XCTUnwrap(flickering.observations.first { !$0.parameters.status.contains(.unsynchronised) }?.index)
        XCTAssertNotNil(first)
        XCTAssertFalse(unsynchronised(flickering, from: first ?? 0).isEmpty, "this path is meant to hover at the allowance")

        configuration.synchronisedHoldFactor = 2
        let held = run(configuration)
        XCTAssertEqual(held.observations.first { !$0.parameters.status.contains(.unsynchronised) }?.index, first)
        XCTAssertEqual(unsynchronised(held, from: first ?? 0), [])
    }

    /// A bound under the absolute minimum counts as synchronised even when the path-relative
    /// test cannot be met; without the minimum the same clock never is.
    func testAbsoluteMinimumAllowsABoundThePathTestRefuses() {
        var configuration = FeedforwardConfiguration(pollPeriodSeconds: 1)
        configuration.synchronisedBoundFactor = 0.1      // no bound can be this tight
        XCTAssertEqual(unsynchronised(run(configuration), from: 8), [])
        configuration.synchronisedBoundMinimumNanoseconds = 0
        XCTAssertEqual(unsynchronised(run(configuration)).count, 40)
    }
}
