import XCTest
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import NTPLab
import ToolSupport

final class FiguresTests: XCTestCase {
    /// |error| = 1…100 ns (signs alternating), bound 50 ns. By hand, type-7 quantiles
    /// (h = 99q): median 50.5, Q1 = 25.75, Q3 = 75.25, p99 = 1 + 98.01 = 99.01, max 100;
    /// 50 of 100 inside the bound.
    func testFiguresOnAHandComputableSeries() {
        var samples: [ErrorSample] = []
        for i in 1...100 {
            let magnitude = Int64(i)
            let error: Int64 = i % 2 == 0 ? magnitude : -magnitude
            samples.append(ErrorSample(trueNanoseconds: magnitude * Span.second, errorNanoseconds: error, maxErrorNanoseconds: 50))
        }
        let figures = Figures(samples: samples.shuffled())
        XCTAssertEqual(figures.sampleCount, 100)
        XCTAssertEqual(figures.medianAbsErrorNanoseconds, 50.5, accuracy: 1e-9)
        XCTAssertEqual(figures.iqrAbsErrorNanoseconds, 75.25 - 25.75, accuracy: 1e-9)
        XCTAssertEqual(figures.p99AbsErrorNanoseconds, 99.01, accuracy: 1e-9)
        XCTAssertEqual(figures.maxAbsErrorNanoseconds, 100)
        XCTAssertEqual(figures.insideBoundShare, 0.5, accuracy: 1e-12)
        // Signed: −99, −97, …, −1, 2, 4, …, 100. Sorted, the 50th and 51st are −1 and 2.
        XCTAssertEqual(figures.medianErrorNanoseconds, 0.5, accuracy: 1e-9)
        // Q1 at h = 24.75: between the 25th (−51) and 26th (−49) → −49.5;
        // Q3 at h = 74.25: between the 75th (50) and 76th (52) → 50.5.
        XCTAssertEqual(figures.iqrErrorNanoseconds, 50.5 - -49.5, accuracy: 1e-9)
    }

    func testWarmupIsLeftOutAndEmptyIsZero() {
        var samples: [ErrorSample] = []
        for i in 0..<10 {
            let error: Int64 = i < 2 ? 1_000_000 : 10
            samples.append(ErrorSample(trueNanoseconds: Int64(i) * Span.hour, errorNanoseconds: error, maxErrorNanoseconds: 100))
        }
        var options = FigureOptions()
        options.warmupNanoseconds = 2 * Span.hour
        let figures = Figures(samples: samples, options: options)
        XCTAssertEqual(figures.sampleCount, 8)
        XCTAssertEqual(figures.maxAbsErrorNanoseconds, 10)
        XCTAssertEqual(figures.insideBoundShare, 1)
        let empty = Figures(samples: [])
        XCTAssertEqual(empty.sampleCount, 0)
        XCTAssertEqual(empty.p99AbsErrorNanoseconds, 0)
    }

    /// Samples every 10 s; steady |error| 10 ns (threshold 2 × 10 = 20 ns).
    /// Event A at 500 s: 1000 ns at 500–550 s, back to 10, out again at 570 s, then 10:
    /// recovered at the sample after 570 s, 80 s after the event.
    /// Event B at 1200 s: never disturbed → 0. Event C at 1500 s: out from 1700 s to the
    /// end (1800 s) → nil. The 400 s exclusion keeps the disturbances out of the steady state.
    func testRecoveryTimes() {
        var samples: [ErrorSample] = []
        for i in 0...180 {
            let t = Int64(i) * 10 * Span.second
            var error: Int64 = i % 2 == 0 ? 10 : -10
            if (500...550).contains(i * 10) || i * 10 == 570 { error = 1_000 }
            if i * 10 >= 1_700 { error = -5_000 }
            samples.append(ErrorSample(trueNanoseconds: t, errorNanoseconds: error, maxErrorNanoseconds: 2_000))
        }
        let events = [LabEvent(name: "C", atNanoseconds: 1_500 * Span.second),
                      LabEvent(name: "A", atNanoseconds: 500 * Span.second),
                      LabEvent(name: "B", atNanoseconds: 1_200 * Span.second)]
        var options = FigureOptions()
        options.eventExclusionNanoseconds = 400 * Span.second
        let figures = Figures(samples: samples, events: events, options: options)
        XCTAssertEqual(figures.steadyStateP99AbsErrorNanoseconds, 10)
        XCTAssertEqual(figures.recoveries.map(\.event.name), ["A", "B", "C"])
        XCTAssertEqual(figures.recoveries.map(\.thresholdNanoseconds), [20, 20, 20])
        XCTAssertEqual(figures.recoveries[0].recoveryNanoseconds, 80 * Span.second)
        XCTAssertEqual(figures.recoveries[1].recoveryNanoseconds, 0)
        XCTAssertNil(figures.recoveries[2].recoveryNanoseconds)
        // A floor on the threshold above the disturbance makes A instant too.
        options.minimumRecoveryThresholdNanoseconds = 1_000
        XCTAssertEqual(Figures(samples: samples, events: events, options: options).recoveries[0].recoveryNanoseconds, 0)
    }

    func testJSONAndTableCarryTheFigures() throws {
        var samples: [ErrorSample] = []
        for i in 0..<50 {
            let error = Int64(i * 1_000 - 20_000)
            samples.append(ErrorSample(trueNanoseconds: Int64(i) * Span.second, errorNanoseconds: error, maxErrorNanoseconds: 30_000))
        }
        let figures = Figures(samples: samples, events: [LabEvent(name: "step \"1\"", atNanoseconds: 10 * Span.second)])
        let text = figures.json(label: "ours").rendered()
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(object["label"] as? String, "ours")
        XCTAssertEqual((object["samples"] as? NSNumber)?.intValue, 50)
        XCTAssertEqual((object["p99AbsErrorNanoseconds"] as? NSNumber)?.doubleValue, figures.p99AbsErrorNanoseconds.rounded())
        XCTAssertEqual((object["insideBoundShare"] as? NSNumber)?.doubleValue, figures.insideBoundShare)
        let recoveries = try XCTUnwrap(object["recoveries"] as? [[String: Any]])
        XCTAssertEqual(recoveries.first?["event"] as? String, "step \"1\"")

        XCTAssertEqual(JSONValue.number(.nan).rendered(), "null")
        XCTAssertEqual(JSONValue.string("a\u{1}\n").rendered(), "\"a\\u0001\\n\"")

        let table = Figures.table([(label: "ours", figures: figures), (label: "chrony", figures: Figures(samples: []))])
        let lines = table.split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        XCTAssertTrue(lines[1].hasPrefix("ours"))
        XCTAssertTrue(lines[2].hasPrefix("chrony"))
        XCTAssertTrue(lines[1].contains(fixedDecimal(figures.p99AbsErrorNanoseconds / 1_000, 1)))
    }

    func testFixedDecimal() {
        XCTAssertEqual(fixedDecimal(1.25, 1), "1.3")
        XCTAssertEqual(fixedDecimal(-0.04, 1), "0.0")
        XCTAssertEqual(fixedDecimal(-12.345, 2), "-12.35")
        XCTAssertEqual(fixedDecimal(7, 0), "7")
        XCTAssertEqual(fixedDecimal(0.05, 3), "0.050")
        XCTAssertEqual(formatDuration(80 * Span.second), "1.3 min")
        XCTAssertEqual(formatDuration(250 * Span.millisecond), "250 ms")
    }
}

final class SVGPlotTests: XCTestCase {
    func testTicksAreNice() {
        for (lower, upper) in [(0.0, 1.0), (-37.5, 37.5), (0.0, 168.0), (3.2, 3.9), (-0.002, 0.013), (0, 86_400.0), (-1e6, 2.5e6)] {
            let step = NiceTicks.step(span: upper - lower, targetCount: 8)
            let mantissa = step / pow(10, log10(step).rounded(.down))
            XCTAssertTrue([1.0, 2.0, 5.0].contains { abs($0 - mantissa) < 1e-9 }, "step \(step) for \(lower)…\(upper)")
            let ticks = NiceTicks.ticks(lower: lower, upper: upper, targetCount: 8)
            XCTAssertGreaterThanOrEqual(ticks.count, 4, "\(lower)…\(upper)")
            XCTAssertLessThanOrEqual(ticks.count, 17)
            for tick in ticks {
                XCTAssertGreaterThanOrEqual(tick, lower - step * 1e-6)
                XCTAssertLessThanOrEqual(tick, upper + step * 1e-6)
                XCTAssertEqual((tick / step).rounded(), tick / step, accuracy: 1e-6)
            }
            XCTAssertLessThan(ticks.first! - lower, step * (1 + 1e-9))
            XCTAssertLessThan(upper - ticks.last!, step * (1 + 1e-9))
        }
    }

    private func twoClientPlot() -> String {
        var ours: [ErrorSample] = [], peer: [ErrorSample] = []
        for i in 0..<20_000 {
            let t = Int64(i) * 16 * Span.second
            ours.append(ErrorSample(trueNanoseconds: t, errorNanoseconds: Int64(8_000 * sin(Double(i) / 300)), maxErrorNanoseconds: 20_000 + Int64(i % 7) * 1_000))
            peer.append(ErrorSample(trueNanoseconds: t, errorNanoseconds: Int64(i % 50) * 400 - 10_000, maxErrorNanoseconds: 0))
        }
        var plot = SVGPlot(title: "lan-stratum1 <sim> & chrony", series: [
            PlotSeries(name: "ntpclient", colour: SVGPlot.oursColour, samples: ours),
            PlotSeries(name: "chronyd", colour: SVGPlot.peerColour, samples: peer, showsBound: false),
        ], events: [LabEvent(name: "migration", atNanoseconds: 12 * Span.hour)])
        plot.width = 800
        return plot.render()
    }

    func testSVGIsWellFormedWithBothSeries() throws {
        let svg = twoClientPlot()
        // Our own balance check: every opened tag is closed, in order.
        var stack: [String] = []
        var rest = Substring(svg)
        while let open = rest.firstIndex(of: "<") {
            let close = try XCTUnwrap(rest[open...].firstIndex(of: ">"))
            let tag = rest[rest.index(after: open)..<close]
            rest = rest[rest.index(after: close)...]
            if tag.hasPrefix("?") { continue }
            let name = String(tag.prefix { $0 != " " && $0 != "/" && $0 != ">" })
            if tag.hasPrefix("/") { XCTAssertEqual(stack.popLast(), String(tag.dropFirst())) }
            else if !tag.hasSuffix("/") { stack.append(name) }
        }
        XCTAssertEqual(stack, [])
        // And an independent XML parser agrees.
        let parser = XMLParser(data: Data(svg.utf8))
        XCTAssertTrue(parser.parse(), "\(String(describing: parser.parserError))")

        XCTAssertTrue(svg.contains(SVGPlot.oursColour))
        XCTAssertTrue(svg.contains(SVGPlot.peerColour))
        XCTAssertTrue(svg.contains("ntpclient (band: ±maxError)"))
        XCTAssertTrue(svg.contains(">chronyd<"))
        XCTAssertTrue(svg.contains("&lt;sim&gt; &amp; chrony"))
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2)
        XCTAssertEqual(svg.components(separatedBy: "<polygon").count - 1, 1)
        XCTAssertTrue(svg.contains("true time [day]"))
        XCTAssertTrue(svg.contains("clock error [µs]"))
        for bad in ["nan", "inf"] { XCTAssertFalse(svg.lowercased().contains(bad)) }

        // Every number in the drawing is finite and near the canvas.
        let withoutColours = svg.replacingOccurrences(of: "#[0-9a-fA-F]{6}", with: "", options: .regularExpression)
        let numbers = withoutColours.split { !"0123456789.-".contains($0) }.compactMap { Double($0) }
        XCTAssertGreaterThan(numbers.count, 1_000)
        for number in numbers { XCTAssertTrue(number.isFinite && abs(number) < 100_000, "\(number)") }
        // Decimation keeps the file bounded: 40k samples, a few points per pixel column.
        XCTAssertLessThan(svg.utf8.count, 200_000)
        // Tick labels are the nice ticks, printed as such.
        let xLabels = svg.components(separatedBy: "class=\"xtick\"").dropFirst().map { $0.split(separator: ">")[1].split(separator: "<")[0] }
        // 20000 × 16 s = 3.7 days: day units, nice step 0.5 (span/8 = 0.46).
        let xValues = xLabels.compactMap { Double(String($0)) }
        XCTAssertEqual(xValues.count, xLabels.count)
        XCTAssertEqual(xValues.first, 0)
        XCTAssertEqual(xLabels.first, "0.0")
        for (a, b) in zip(xValues, xValues.dropFirst()) { XCTAssertEqual(b - a, 0.5, accuracy: 1e-9) }
        XCTAssertEqual(xValues.last, 3.5)
    }

    func testSVGWithoutSamplesIsStillWellFormed() {
        let svg = SVGPlot(title: "empty", series: [PlotSeries(name: "x", colour: "#000000", samples: [])]).render()
        XCTAssertTrue(XMLParser(data: Data(svg.utf8)).parse())
        XCTAssertFalse(svg.lowercased().contains("nan"))
    }
}
