import Maths
import ToolSupport

/// Tick positions at "nice" steps: 1, 2 or 5 times a power of ten.
public enum NiceTicks {
    /// The nice step giving about `targetCount` intervals over `span`.
    public static func step(span: Double, targetCount: Int) -> Double {
        guard span > 0, span.isFinite, targetCount > 0 else { return 1 }
        let raw = span / Double(targetCount)
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let normalised = raw / magnitude
        let nice: Double = normalised <= 1 ? 1 : normalised <= 2 ? 2 : normalised <= 5 ? 5 : 10
        return nice * magnitude
    }

    /// Multiples of the nice step inside [lower, upper].
    public static func ticks(lower: Double, upper: Double, targetCount: Int) -> [Double] {
        let step = step(span: upper - lower, targetCount: targetCount)
        var ticks: [Double] = []
        var k = (lower / step).rounded(.up)
        while k * step <= upper + step * 1e-9, ticks.count < 1000 {
            let value = k * step
            ticks.append(abs(value) < step * 1e-9 ? 0 : value)
            k += 1
        }
        return ticks
    }
}

/// One client's error series, drawn as a line, with its published maxError as a band.
public struct PlotSeries: Sendable {
    public var name: String
    /// An SVG colour, e.g. "#1f77b4".
    public var colour: String
    public var samples: [ErrorSample]
    public var showsBound: Bool
    public init(name: String, colour: String, samples: [ErrorSample], showsBound: Bool = true) {
        self.name = name
        self.colour = colour
        self.samples = samples
        self.showsBound = showsBound
    }
}

/// Our own SVG writer for error against time, like RADclock's published plots: the error as
/// a line, ±maxError as a translucent band, axes with nice ticks, a legend, a title,
/// dashed markers at events. Long series are reduced per pixel column to their minimum
/// and maximum, so a week at poll 16 still makes a file of a few hundred kilobytes.
public struct SVGPlot: Sendable {
    public var title: String
    public var series: [PlotSeries]
    public var events: [LabEvent]
    public var width: Int = 960
    public var height: Int = 480
    /// Fixes the y range to ±this; by default it covers every error (not the bands, which
    /// can be huge after an outage and would flatten the errors).
    public var yLimitNanoseconds: Int64? = nil

    public static let oursColour = "#1f77b4"
    public static let peerColour = "#d62728"

    public init(title: String, series: [PlotSeries], events: [LabEvent] = []) {
        self.title = title
        self.series = series
        self.events = events
    }

    private struct Frame {
        var left = 80.0, right = 0.0, top = 40.0, bottom = 0.0
        var xMin = 0.0, xMax = 1.0, yMin = -1.0, yMax = 1.0
        func x(_ value: Double) -> Double { left + (value - xMin) / (xMax - xMin) * (right - left) }
        func y(_ value: Double) -> Double { bottom - (value - yMin) / (yMax - yMin) * (bottom - top) }
    }

    public func render() -> String {
        var frame = Frame()
        frame.right = Double(width) - 20
        frame.bottom = Double(height) - 50
        let all = series.flatMap { $0.samples }
        let tMin = all.map(\.trueNanoseconds).min() ?? 0
        let tMax = all.map(\.trueNanoseconds).max() ?? Span.second
        let timeUnit = SVGPlot.timeUnit(span: tMax - tMin)
        frame.xMin = Double(tMin) / timeUnit.nanoseconds
        frame.xMax = max(Double(tMax) / timeUnit.nanoseconds, frame.xMin + 1e-9)
        let largest = yLimitNanoseconds.map { Double($0) } ?? Double(all.map { $0.errorNanoseconds.magnitude }.max() ?? 1_000)
        let errorUnit = SVGPlot.errorUnit(largest: largest)
        let yLimit = max(largest * 1.1, 1) / errorUnit.nanoseconds
        frame.yMin = -yLimit
        frame.yMax = yLimit

        var svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        svg += "<defs><clipPath id=\"plot\"><rect x=\"\(n(frame.left))\" y=\"\(n(frame.top))\" width=\"\(n(frame.right - frame.left))\" height=\"\(n(frame.bottom - frame.top))\"/></clipPath></defs>\n"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>\n"
        svg += "<text x=\"\(n(Double(width) / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">\(SVGPlot.escaped(title))</text>\n"

        // Grid and tick labels.
        svg += "<g stroke=\"#dddddd\" stroke-width=\"1\">\n"
        let xTicks = NiceTicks.ticks(lower: frame.xMin, upper: frame.xMax, targetCount: 8)
        let yTicks = NiceTicks.ticks(lower: frame.yMin, upper: frame.yMax, targetCount: 8)
        for tick in xTicks { svg += "<line x1=\"\(n(frame.x(tick)))\" y1=\"\(n(frame.top))\" x2=\"\(n(frame.x(tick)))\" y2=\"\(n(frame.bottom))\"/>\n" }
        for tick in yTicks { svg += "<line x1=\"\(n(frame.left))\" y1=\"\(n(frame.y(tick)))\" x2=\"\(n(frame.right))\" y2=\"\(n(frame.y(tick)))\"/>\n" }
        svg += "</g>\n<g fill=\"black\">\n"
        let xDecimals = SVGPlot.decimals(step: NiceTicks.step(span: frame.xMax - frame.xMin, targetCount: 8))
        let yDecimals = SVGPlot.decimals(step: NiceTicks.step(span: frame.yMax - frame.yMin, targetCount: 8))
        for tick in xTicks {
            svg += "<text class=\"xtick\" x=\"\(n(frame.x(tick)))\" y=\"\(n(frame.bottom + 18))\" text-anchor=\"middle\">\(fixedDecimal(tick, xDecimals))</text>\n"
        }
        for tick in yTicks {
            svg += "<text class=\"ytick\" x=\"\(n(frame.left - 6))\" y=\"\(n(frame.y(tick) + 4))\" text-anchor=\"end\">\(fixedDecimal(tick, yDecimals))</text>\n"
        }
        svg += "<text x=\"\(n((frame.left + frame.right) / 2))\" y=\"\(n(Double(height) - 10))\" text-anchor=\"middle\">true time [\(timeUnit.name)]</text>\n"
        svg += "<text x=\"16\" y=\"\(n((frame.top + frame.bottom) / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(n((frame.top + frame.bottom) / 2)))\">clock error [\(errorUnit.name)]</text>\n"
        svg += "</g>\n"

        // Bands, then lines, clipped to the plot area.
        svg += "<g clip-path=\"url(#plot)\">\n"
        for s in series where s.showsBound && !s.samples.isEmpty {
            svg += "<polygon fill=\"\(s.colour)\" fill-opacity=\"0.15\" stroke=\"none\" points=\"\(bandPoints(s.samples, frame, timeUnit.nanoseconds, errorUnit.nanoseconds))\"/>\n"
        }
        for s in series where !s.samples.isEmpty {
            svg += "<polyline fill=\"none\" stroke=\"\(s.colour)\" stroke-width=\"1\" points=\"\(linePoints(s.samples, frame, timeUnit.nanoseconds, errorUnit.nanoseconds))\"/>\n"
        }
        for event in events {
            let x = frame.x(Double(event.atNanoseconds) / timeUnit.nanoseconds)
            svg += "<line x1=\"\(n(x))\" y1=\"\(n(frame.top))\" x2=\"\(n(x))\" y2=\"\(n(frame.bottom))\" stroke=\"#555555\" stroke-dasharray=\"4 3\"/>\n"
        }
        svg += "</g>\n"
        svg += "<rect x=\"\(n(frame.left))\" y=\"\(n(frame.top))\" width=\"\(n(frame.right - frame.left))\" height=\"\(n(frame.bottom - frame.top))\" fill=\"none\" stroke=\"black\"/>\n"

        // Legend: sized from its longest label (about 6.6 px a character at the 12 px font),
        // on a white box so the band behind it does not hide it.
        let labels = series.map { SVGPlot.escaped($0.name) + ($0.showsBound ? " (band: ±maxError)" : "") }
        let legendWidth = 34 + 6.6 * Double(labels.map(\.count).max() ?? 0)
        let legendLeft = max(frame.left + 4, frame.right - legendWidth - 6)
        svg += "<g class=\"legend\">\n"
        svg += "<rect x=\"\(n(legendLeft))\" y=\"\(n(frame.top + 4))\" width=\"\(n(legendWidth))\" height=\"\(n(Double(series.count) * 16 + 6))\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999999\"/>\n"
        var legendY = frame.top + 18
        for (s, label) in zip(series, labels) {
            svg += "<rect x=\"\(n(legendLeft + 6))\" y=\"\(n(legendY - 9))\" width=\"18\" height=\"10\" fill=\"\(s.colour)\" fill-opacity=\"0.15\" stroke=\"\(s.colour)\"/>\n"
            svg += "<text x=\"\(n(legendLeft + 30))\" y=\"\(n(legendY))\">\(label)</text>\n"
            legendY += 16
        }
        svg += "</g>\n</svg>\n"
        return svg
    }

    // MARK: - Pieces

    /// Per pixel column, the first, minimum, maximum and last error, in time order.
    private func linePoints(_ samples: [ErrorSample], _ frame: Frame, _ timeScale: Double, _ errorScale: Double) -> String {
        var out = ""
        forEachColumn(samples, frame, timeScale) { x, slice in
            var low = slice.first!, high = slice.first!
            for s in slice {
                if s.errorNanoseconds < low.errorNanoseconds { low = s }
                if s.errorNanoseconds > high.errorNanoseconds { high = s }
            }
            var picks = [slice.first!, low, high, slice.last!]
            picks.sort { $0.trueNanoseconds < $1.trueNanoseconds }
            var previous: Int64? = nil
            for s in picks where s.trueNanoseconds != previous {
                previous = s.trueNanoseconds
                out += "\(n(frame.x(Double(s.trueNanoseconds) / timeScale))),\(n(clamp(frame.y(Double(s.errorNanoseconds) / errorScale), frame))) "
            }
        }
        return out
    }

    /// +maxError along time, then −maxError back: one polygon. Per column the widest bound.
    private func bandPoints(_ samples: [ErrorSample], _ frame: Frame, _ timeScale: Double, _ errorScale: Double) -> String {
        var upper: [(Double, Double)] = []
        forEachColumn(samples, frame, timeScale) { x, slice in
            let widest = slice.map { Double($0.maxErrorNanoseconds.magnitude) }.max() ?? 0
            upper.append((x, widest / errorScale))
        }
        var out = ""
        for (x, bound) in upper { out += "\(n(x)),\(n(clamp(frame.y(bound), frame))) " }
        for (x, bound) in upper.reversed() { out += "\(n(x)),\(n(clamp(frame.y(-bound), frame))) " }
        return out
    }

    private func forEachColumn(_ samples: [ErrorSample], _ frame: Frame, _ timeScale: Double,
                               _ body: (Double, ArraySlice<ErrorSample>) -> Void) {
        var start = 0
        while start < samples.count {
            let column = frame.x(Double(samples[start].trueNanoseconds) / timeScale).rounded(.down)
            var end = start + 1
            while end < samples.count, frame.x(Double(samples[end].trueNanoseconds) / timeScale).rounded(.down) == column { end += 1 }
            body(frame.x(Double(samples[start].trueNanoseconds) / timeScale), samples[start..<end])
            start = end
        }
    }

    /// Keeps far-off points just outside the frame, so coordinates stay small and finite.
    private func clamp(_ y: Double, _ frame: Frame) -> Double { min(max(y, frame.top - 10), frame.bottom + 10) }

    private func n(_ value: Double) -> String { fixedDecimal(value, 1) }

    static func decimals(step: Double) -> Int {
        guard step > 0, step.isFinite else { return 0 }
        return max(0, Int(-(log10(step)).rounded(.down)))
    }

    static func timeUnit(span: Int64) -> (name: String, nanoseconds: Double) {
        if span <= 5 * Span.minute { return ("s", 1e9) }
        if span <= 5 * Span.hour { return ("min", 6e10) }
        if span <= 3 * Span.day { return ("h", 3.6e12) }
        return ("day", 8.64e13)
    }

    static func errorUnit(largest: Double) -> (name: String, nanoseconds: Double) {
        if largest < 1e3 { return ("ns", 1) }
        if largest < 1e6 { return ("µs", 1e3) }
        if largest < 1e9 { return ("ms", 1e6) }
        return ("s", 1e9)
    }

    static func escaped(_ text: String) -> String {
        var out = ""
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }
}
