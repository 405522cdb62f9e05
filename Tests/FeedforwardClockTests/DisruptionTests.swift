import XCTest
import FeedforwardClock

/// `noteDisruption`: a clock event the platform declares (a vmclock disruption marker change
/// on live migration; docs/published-clock.md, "Disruption").
final class DisruptionTests: XCTestCase {
    func testDeclaredDisruptionIsUnsynchronisedAtOnceAndReanchorsOnTheNextStamp() {
        var s = Scenario(poll: 16)
        s.run(40)
        XCTAssertFalse(s.clock.parameters.status.contains(.unsynchronised))
        let inFlight = s.path.exchange()      // began on the old counter
        // The migration: the counter jumps 2.5 s and runs 37 PPM faster from now on.
        s.path.setRate(1 + 37e-6, counterJump: 2_500_000_000)
        let noticed = s.path.counter(at: s.path.now)
        s.clock.noteDisruption(atRawNanoseconds: noticed)
        let p = s.clock.parameters
        XCTAssertTrue(p.status.contains(.unsynchronised))
        XCTAssertEqual(p.maxError(atCounter: noticed + 1_000_000_000), .infinity, "no reader may take the old bound")
        XCTAssertEqual(s.clock.process(inFlight), .rejected(.beforeDisruption))
        // The next stamps re-anchor at once: a new epoch from the first of them, no suspects.
        s.path.advance(seconds: 0.05)
        s.inBurst = 8
        s.run(1)
        XCTAssertTrue(s.last.parameters.status.contains(.rateChange), "\(s.last.parameters.status.words)")
        XCTAssertLessThan(abs(s.last.errorNanoseconds), 1_000_000, "the 2.5 s jump is gone on the first stamp")
        s.run(20)
        XCTAssertEqual(s.boundViolations(from: 40).count, 0, "every stamp after the disruption inside its bound")
        XCTAssertTrue(s.betweenViolations.filter { $0.index >= 40 }.isEmpty, "and every read between stamps")
        XCTAssertFalse(s.last.parameters.status.contains(.unsynchronised))
        XCTAssertLessThan(s.worstError(from: 50), 50_000)
    }
}
