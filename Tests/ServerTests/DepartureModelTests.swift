import XCTest
@testable import NTPServer

final class DepartureModelTests: XCTestCase {
    /// Later datagrams of one send call are predicted to leave later, by the measured spacing.
    func testSpacingFollowsMeasuredSendCalls() {
        var model = DepartureModel(budgetNanoseconds: 5_000, spacingNanoseconds: 100, leadNanoseconds: 0)
        for _ in 0..<200 { model.observeSend(durationNanoseconds: 16 * 1_500, datagrams: 16) }
        XCTAssertEqual(Double(model.spacingNanoseconds), 1_500, accuracy: 20)
        XCTAssertEqual(model.departureOffsetNanoseconds(slot: 10) - model.departureOffsetNanoseconds(slot: 0),
                       10 * model.spacingNanoseconds)
    }

    /// A preempted call (far slower per datagram than any real send) and single-datagram calls
    /// teach nothing about spacing.
    func testOutliersAndSingleSendsAreIgnored() {
        var model = DepartureModel(budgetNanoseconds: 5_000, spacingNanoseconds: 1_000, leadNanoseconds: 0)
        model.observeSend(durationNanoseconds: 4 * 5_000_000, datagrams: 4)
        model.observeSend(durationNanoseconds: 50_000, datagrams: 1)
        XCTAssertEqual(model.spacingNanoseconds, 1_000)
    }

    /// The lead settles at the median error of the checks, so a rare huge miss cannot drag it,
    /// and misses beyond the budget are classified by direction.
    func testLeadTracksTheMedianCheckError() {
        var model = DepartureModel(budgetNanoseconds: 5_000, spacingNanoseconds: 1_000, leadNanoseconds: 0)
        var early = 0
        for i in 0..<2_000 {
            // True lead 800 ns ± 300 ns, and one check in 100 preempted by 1 ms.
            let truth: Int64 = i % 100 == 0 ? 1_000_000 : 800 + Int64((i * 7919) % 601) - 300
            let claimed = 1_000_000_000 + model.departureOffsetNanoseconds(slot: 0)
            if model.observeCheck(claimedUnixNanoseconds: claimed, departedUnixNanoseconds: 1_000_000_000 + truth) == .early { early += 1 }
        }
        XCTAssertEqual(Double(model.leadNanoseconds), 800, accuracy: 150)
        XCTAssertEqual(early, 20, "only the preempted checks miss")
        XCTAssertEqual(model.observeCheck(claimedUnixNanoseconds: 10_000, departedUnixNanoseconds: 0), .late)
    }

    /// Send calls carry fewer datagrams while checks miss the budget, and more (up to the
    /// maximum) while none do.
    func testDatagramsPerSendFollowTheMissRate() {
        var model = DepartureModel(budgetNanoseconds: 5_000, maximumDatagramsPerSend: 16, spacingNanoseconds: 1_000, leadNanoseconds: 0)
        XCTAssertEqual(model.datagramsPerSend, 2)
        func window(missEvery: Int) {
            for i in 0..<DepartureModel.windowChecks {
                let error: Int64 = missEvery > 0 && i % missEvery == 0 ? 50_000 : 0
                _ = model.observeCheck(claimedUnixNanoseconds: 1_000_000 + model.leadNanoseconds,
                                       departedUnixNanoseconds: 1_000_000 + error)
            }
        }
        for _ in 0..<30 { window(missEvery: 0) }
        XCTAssertEqual(model.datagramsPerSend, 16, "no misses: grows to the maximum and stays there")
        window(missEvery: 32)
        XCTAssertEqual(model.datagramsPerSend, 8, "4 misses in a window: halves")
        window(missEvery: 300)
        XCTAssertEqual(model.datagramsPerSend, 8, "one miss in a window: keeps")
        for _ in 0..<6 { window(missEvery: 10) }
        XCTAssertEqual(model.datagramsPerSend, 1, "never below one datagram per call")
    }

    /// The first send after a wake learns its own, longer lead, and its checks leave the
    /// lead of sends among others and the size of send calls alone.
    func testLeadAfterWakeIsLearntSeparately() {
        var model = DepartureModel(budgetNanoseconds: 5_000, maximumDatagramsPerSend: 16, spacingNanoseconds: 1_000, leadNanoseconds: 500)
        let sizeBefore = model.datagramsPerSend
        for _ in 0..<200 {
            let claimed = 1_000_000 + model.departureOffsetNanoseconds(slot: 0, afterWake: true)
            _ = model.observeCheck(claimedUnixNanoseconds: claimed, departedUnixNanoseconds: 1_000_000 + 18_000, afterWake: true)
        }
        XCTAssertEqual(Double(model.leadAfterWakeNanoseconds), 18_000, accuracy: 400)
        XCTAssertEqual(model.leadNanoseconds, 500)
        XCTAssertEqual(model.datagramsPerSend, sizeBefore)
        XCTAssertEqual(model.departureOffsetNanoseconds(slot: 2, afterWake: true) - model.departureOffsetNanoseconds(slot: 0, afterWake: true), 2_000)
    }

    /// At light load a check after a wake comes once per client poll, so the lead after a
    /// wake must be learnt in a few checks, not a few hundred; after that one preempted send
    /// (a millisecond late) moves it by one fine step, and a tail of late sends does not
    /// pull it past the median.
    func testLeadAfterWakeSettlesInAFewChecksAndShrugsOffOneOutlier() {
        var model = DepartureModel(budgetNanoseconds: 5_000, maximumDatagramsPerSend: 16, spacingNanoseconds: 1_000, leadNanoseconds: 500)
        func check(departingAfter lead: Int64) {
            let claimed = 1_000_000 + model.departureOffsetNanoseconds(slot: 0, afterWake: true)
            _ = model.observeCheck(claimedUnixNanoseconds: claimed, departedUnixNanoseconds: 1_000_000 + lead, afterWake: true)
        }
        for _ in 0..<20 { check(departingAfter: 18_000) }
        XCTAssertEqual(Double(model.leadAfterWakeNanoseconds), 18_000, accuracy: 1_000, "learnt within twenty checks")
        for _ in 0..<10 { check(departingAfter: 18_000) }
        let settled = model.leadAfterWakeNanoseconds
        XCTAssertEqual(Double(settled), 18_000, accuracy: 200, "then settles with the fine step")
        check(departingAfter: 1_000_000)
        XCTAssertLessThanOrEqual(model.leadAfterWakeNanoseconds - settled, 200, "one outlier moves it by one fine step")
        // A long tail of cold sends (a quarter of them 30 µs late) does not pull it past the median.
        for k in 0..<400 { check(departingAfter: k % 4 == 0 ? 48_000 : 18_000 + Int64(k % 3) * 100) }
        XCTAssertEqual(Double(model.leadAfterWakeNanoseconds), 18_100, accuracy: 400, "the median, not the mean (25.6 µs)")
    }
}
