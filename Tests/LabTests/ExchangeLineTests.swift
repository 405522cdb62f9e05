import XCTest
import Foundation
import FeedforwardClock
import NTPClient
import NTPLab
import ToolSupport

/// The lab's `--exchanges` file and `ntpclient --json` print the same record; a reader must be
/// able to `diff` them. Integral values (a 16 s poll, a whole-nanosecond bound) are where two
/// number formats used to part ways, so the report below has both integral and fractional ones.
final class ExchangeLineTests: XCTestCase {
    func report(parameters: ClockParameters, outcome: ExchangeReport.Outcome) -> ExchangeReport {
        ExchangeReport(exchange: 7, outcome: outcome, localTimeUnixNanoseconds: 1_795_286_605_271_634_559,
                       rttNanoseconds: 81_000, naiveOffsetNanoseconds: -1100.75, parameters: parameters,
                       maxErrorNanoseconds: 46_000, status: parameters.status,
                       systemClockOffsetNanoseconds: outcome == .accepted ? 2_345.5 : nil,
                       userSpaceTransmitStamp: false, userSpaceReceiveStamp: true, stratum: 2, pollSeconds: 16)
    }

    func testLabExchangeLineIsByteIdenticalToNTPClientJSON() throws {
        var estimated = ClockParameters.empty
        estimated.status = [.warmUp]
        estimated.offsetNanoseconds = -1234
        estimated.minimumRTTNanoseconds = 80_000.25
        estimated.errorEstimateNanoseconds = 321
        estimated.stampCount = 17
        for (parameters, outcome) in [(estimated, ExchangeReport.Outcome.accepted), (.empty, .timedOut)] {
            let r = report(parameters: parameters, outcome: outcome)
            let labLine = LiveResult.exchangeLine(for: r)
            XCTAssertEqual(Array(labLine.utf8), Array(r.jsonLine.utf8), "lab and ntpclient --json differ for \(outcome)")

            // Both say a number the same way: integral doubles keep their fraction, so a field
            // has one JSON type on every line.
            XCTAssertTrue(labLine.contains(#""pollSeconds":16.0,"#), labLine)
            XCTAssertTrue(labLine.contains(#""rttNanoseconds":81000.0,"#), labLine)
            XCTAssertFalse(labLine.contains(" "), "compact: no spaces")

            // And the line reads back as the report's values.
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(labLine.utf8)) as? [String: Any])
            XCTAssertEqual((object["exchange"] as? NSNumber)?.intValue, 7)
            XCTAssertEqual((object["naiveOffsetNanoseconds"] as? NSNumber)?.doubleValue, -1100.75)
            XCTAssertEqual(object["outcome"] as? String, outcome.rawValue)
            XCTAssertEqual(object["status"] as? [String], r.statusWords)
            if outcome == .accepted {
                XCTAssertEqual((object["offsetEstimateNanoseconds"] as? NSNumber)?.doubleValue, -1234)
                XCTAssertEqual((object["maxErrorNanoseconds"] as? NSNumber)?.doubleValue, 46_000)
            } else {
                XCTAssertTrue(object["offsetEstimateNanoseconds"] is NSNull, "no estimate: null, not a number")
                XCTAssertTrue(object["systemClockOffsetNanoseconds"] is NSNull)
            }
        }
    }
}
