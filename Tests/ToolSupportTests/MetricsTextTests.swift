import XCTest
@testable import ToolSupport

final class MetricsTextTests: XCTestCase {
    func testFamiliesRenderHelpTypeAndSamples() {
        let text = metricsExpositionText([
            MetricFamily("demo_answered_total", .counter, help: "Responses sent, count.", value: 42),
            MetricFamily("demo_offset_seconds", .gauge, help: "Offset, seconds.",
                         samples: [.init(-0.000_001_5, labels: [("server", "127.0.0.1:123")]), .init(.nan, labels: [("server", "b")])]),
            MetricFamily("demo_empty", .gauge, help: "Never shown.", samples: []),
        ])
        XCTAssertEqual(text, """
            # HELP demo_answered_total Responses sent, count.
            # TYPE demo_answered_total counter
            demo_answered_total 42
            # HELP demo_offset_seconds Offset, seconds.
            # TYPE demo_offset_seconds gauge
            demo_offset_seconds{server="127.0.0.1:123"} -1.5e-06
            demo_offset_seconds{server="b"} NaN

            """)
    }

    func testEscapingAndValues() {
        XCTAssertEqual(escapedLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd")
        XCTAssertEqual(escapedHelp("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"")
        XCTAssertEqual(metricValueText(18_446_744_073_709), "18446744073709")
        XCTAssertEqual(metricValueText(.infinity), "+Inf")
        XCTAssertEqual(metricValueText(-.infinity), "-Inf")
        XCTAssertEqual(metricValueText(0.25), "0.25")
        XCTAssertEqual(metricValueText(1e300), "1e+300")
    }

    func testOnlyGetMetricsGetsTheMetrics() {
        XCTAssertEqual(MetricsRequestVerdict(requestHead: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), .metrics)
        XCTAssertEqual(MetricsRequestVerdict(requestHead: "GET /metrics?x=1 HTTP/1.0\n\n"), .metrics)
        XCTAssertEqual(MetricsRequestVerdict(requestHead: "HEAD /metrics HTTP/1.0\r\n\r\n"), .metrics)
        XCTAssertEqual(MetricsRequestVerdict(requestHead: "GET / HTTP/1.1\r\n\r\n"), .notFound)
        XCTAssertEqual(MetricsRequestVerdict(requestHead: "POST /metrics HTTP/1.1\r\n\r\n"), .methodNotAllowed)
        XCTAssertEqual(MetricsRequestVerdict(requestHead: "GET /metrics\r\n\r\n"), .badRequest)
        XCTAssertEqual(MetricsRequestVerdict(requestHead: "GET /metrics HTTP/1.1"), .badRequest, "no end of line")
        XCTAssertEqual(MetricsRequestVerdict(requestHead: "\u{16}\u{03}\u{01} binary\r\n"), .badRequest)
        XCTAssertEqual(MetricsRequestVerdict(requestHead: "get /metrics HTTP/1.1\r\n\r\n"), .badRequest)
    }

    func testResponsesCarryLengthAndCloseAndTheBodyOnlyWhenAsked() {
        var asked = false
        let notFound = MetricsRequestVerdict.notFound.response { asked = true; return "x" }
        XCTAssertFalse(asked, "an error response must not render the metrics")
        XCTAssertTrue(notFound.hasPrefix("HTTP/1.0 404 Not Found\r\n"))
        let body = "demo 1\n"
        let ok = MetricsRequestVerdict.metrics.response { body }
        XCTAssertTrue(ok.hasPrefix("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4"), ok)
        XCTAssertTrue(ok.contains("Content-Length: \(body.utf8.count)\r\n") && ok.contains("Connection: close\r\n"))
        XCTAssertTrue(ok.hasSuffix("\r\n\r\n" + body))
        let head = MetricsRequestVerdict.metrics.response(isHead: true) { body }
        XCTAssertTrue(head.hasSuffix("\r\n\r\n"), "HEAD: headers only")
        XCTAssertTrue(MetricsRequestVerdict.methodNotAllowed.response { "" }.contains("Allow: GET, HEAD\r\n"))
    }
}
