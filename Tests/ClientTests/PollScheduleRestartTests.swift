import XCTest
@testable import NTPClient

final class PollScheduleRestartTests: XCTestCase {
    /// After a disruption: the burst again, then doubling intervals up to the poll.
    func testRestartedBurstRampsUpToThePoll() {
        var schedule = PollSchedule(pollSeconds: 64)
        XCTAssertEqual((0..<10).map { schedule.secondsToNextExchange(after: $0) }, [2, 2, 2, 2, 2, 2, 2, 64, 64, 64],
                       "the start-up burst goes straight to the poll")
        schedule.restartBurst(atExchange: 100)
        XCTAssertEqual(schedule.secondsToNextExchange(after: 99), 64)
        XCTAssertEqual((100..<114).map { schedule.secondsToNextExchange(after: $0) },
                       [2, 2, 2, 2, 2, 2, 2, 4, 8, 16, 32, 64, 64, 64])
        schedule.reducePollRate()
        XCTAssertEqual(schedule.secondsToNextExchange(after: 108), 128, "a RATE kiss ends burst and ramp")
    }
}
