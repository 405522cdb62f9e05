import XCTest
import FeedforwardClock
import ToolSupport
@testable import NTPClient

/// With several servers each exchange line names its source and what the vote made of it,
/// and the `--sources` table and JSON carry every source's state.
final class SourceReportTests: XCTestCase {
    private func report() -> ExchangeReport {
        var parameters = ClockParameters.empty
        parameters.status = [.unsynchronised]
        return ExchangeReport(exchange: 4, outcome: .accepted, localTimeUnixNanoseconds: 1_700_000_000_000_000_000,
                              rttNanoseconds: 150_000, naiveOffsetNanoseconds: 50_000_000, parameters: parameters,
                              maxErrorNanoseconds: 80_000, status: parameters.status, systemClockOffsetNanoseconds: nil,
                              userSpaceTransmitStamp: false, userSpaceReceiveStamp: false, stratum: 1, pollSeconds: 16)
    }

    private let liar = SourceReport(name: "b.example:123", stratum: 1, reach: 0o377, pollSeconds: 16,
                                    offsetFromClockNanoseconds: 50_000_000, lastNaiveOffsetNanoseconds: -50_000_000,
                                    errorEstimateNanoseconds: 1_000, maxErrorNanoseconds: 90_000,
                                    condition: .usable, verdict: .falseticker, isPeriodSource: false)

    func testSingleServerLineIsUnchanged() {
        let line = report().textLine
        XCTAssertTrue(line.hasSuffix("unsync"), line)
        XCTAssertNil(report().fields.first { $0.key == "source" })
    }

    func testLineNamesSourceVerdictAndMissingMajority() {
        var r = report()
        r.source = "b.example:123"
        r.sourceVerdict = .falseticker
        r.selectionProblem = .noMajority(largestAgreeing: 1, needed: 2)
        r.sources = [liar]
        XCTAssertTrue(r.textLine.hasSuffix("unsync,source-falseticker,no-majority  b.example:123"), r.textLine)
        let json = r.jsonLine
        XCTAssertTrue(json.contains("\"source\":\"b.example:123\""), json)
        XCTAssertTrue(json.contains("\"sourceState\":\"falseticker\""), json)
        XCTAssertTrue(json.contains("\"selection\":\"unsynchronised: no majority, at most 1 sources agree and 2 are needed\""), json)
        XCTAssertTrue(json.contains("\"sources\":[{\"source\":\"b.example:123\",\"state\":\"falseticker\""), json)
    }

    func testSourcesTableLikeChronyc() {
        let line = liar.tableLine
        XCTAssertTrue(line.hasPrefix("x b.example:123"), line)
        XCTAssertTrue(line.contains(" 377 "), "reach in octal: \(line)")
        XCTAssertTrue(line.contains("50000.000"), line)
        XCTAssertTrue(line.hasSuffix("falseticker"), line)
        var selected = liar
        selected.verdict = .selected
        selected.isPeriodSource = true
        XCTAssertEqual(selected.mark, "*")
        selected.verdict = .unusable
        selected.condition = .pendingEvent
        XCTAssertEqual(selected.stateWord, "unusable(pending-event)")
        XCTAssertTrue(SourceReport.tableHeader.hasPrefix("M source"))
    }
}
