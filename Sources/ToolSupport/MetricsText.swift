/// The Prometheus text exposition format, version 0.0.4 (the format every Prometheus server
/// and `promtool check metrics` read): one `# HELP` and one `# TYPE` line per family, then one
/// line per sample, `name{label="value",...} number`. Pure: values in, text out; the tools
/// decide what to export, `MetricsEndpoint` serves it.
///
/// Naming follows the Prometheus conventions: base units (seconds, not nanoseconds), a
/// `_seconds` or `_ratio` suffix naming the unit, `_total` on counters; the help text says the
/// unit and the sign in words.
public struct MetricFamily: Sendable, Equatable {
    public enum Kind: String, Sendable { case counter, gauge }

    public struct Sample: Sendable, Equatable {
        public var labels: [(name: String, value: String)]
        public var value: Double

        public init(_ value: Double, labels: [(name: String, value: String)] = []) {
            self.value = value
            self.labels = labels
        }

        public static func == (a: Sample, b: Sample) -> Bool {
            a.value.bitPattern == b.value.bitPattern && a.labels.elementsEqual(b.labels, by: { $0 == $1 })
        }
    }

    public var name: String
    public var help: String
    public var kind: Kind
    public var samples: [Sample]

    public init(_ name: String, _ kind: Kind, help: String, samples: [Sample]) {
        self.name = name
        self.kind = kind
        self.help = help
        self.samples = samples
    }

    /// A family with one unlabelled sample.
    public init(_ name: String, _ kind: Kind, help: String, value: Double) {
        self.init(name, kind, help: help, samples: [Sample(value)])
    }
}

/// The exposition text of `families`, in order; a family without samples is left out (its
/// HELP alone would describe nothing).
public func metricsExpositionText(_ families: [MetricFamily]) -> String {
    var text = ""
    for family in families where !family.samples.isEmpty {
        text += "# HELP \(family.name) \(escapedHelp(family.help))\n"
        text += "# TYPE \(family.name) \(family.kind.rawValue)\n"
        for sample in family.samples {
            text += family.name
            if !sample.labels.isEmpty {
                text += "{" + sample.labels.map { "\($0.name)=\"\(escapedLabelValue($0.value))\"" }.joined(separator: ",") + "}"
            }
            text += " " + metricValueText(sample.value) + "\n"
        }
    }
    return text
}

/// The content type a scrape response carries for this format.
public let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

/// A sample value: whole numbers exactly (counters up to 2^53 stay exact), others with
/// Swift's shortest round-tripping form, and the format's spellings of NaN and infinities.
public func metricValueText(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
    if value == value.rounded(), abs(value) < 9.007_199_254_740_992e15 { return String(Int64(value)) }
    return "\(value)"
}

/// The exposition format's escaping: backslash and newline everywhere, and the double quote
/// too inside a label value, where it would end the value (HELP text keeps its quotes).
func escapedMetricText(_ text: String, escapingQuotes: Bool) -> String {
    var result = ""
    for character in text {
        switch character {
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\"" where escapingQuotes: result += "\\\""
        default: result.append(character)
        }
    }
    return result
}

/// HELP text escapes only backslash and newline.
func escapedHelp(_ text: String) -> String { escapedMetricText(text, escapingQuotes: false) }

/// Label values escape backslash, double quote and newline.
func escapedLabelValue(_ text: String) -> String { escapedMetricText(text, escapingQuotes: true) }

/// What the metrics endpoint answers to one HTTP request head (the bytes up to the blank
/// line). Only `GET /metrics` (optionally with a query, as Prometheus sends none but a
/// browser may) gets the metrics; anything else gets a short error and the connection is
/// closed either way (HTTP/1.0, RFC 1945 §6: no keep-alive to hold the thread).
public enum MetricsRequestVerdict: Sendable, Equatable {
    case metrics
    case badRequest
    case notFound
    case methodNotAllowed

    public init(requestHead: String) {
        guard let lineEnd = requestHead.firstIndex(where: { $0.isNewline }) else {  // "\r\n" is one Character
            self = .badRequest
            return
        }
        let parts = requestHead[..<lineEnd].split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1."), parts[1].hasPrefix("/") else {
            self = .badRequest
            return
        }
        guard parts[0] == "GET" || parts[0] == "HEAD" else {
            self = parts[0].allSatisfy({ $0.isLetter && $0.isUppercase }) ? .methodNotAllowed : .badRequest
            return
        }
        let path = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        self = path == "/metrics" ? .metrics : .notFound
    }

    /// The full HTTP/1.0 response; `body` is only asked for when the verdict is `.metrics`.
    /// HEAD gets the headers alone.
    public func response(isHead: Bool = false, body: () -> String) -> String {
        let status: String, contentType: String, content: String
        switch self {
        case .metrics: status = "200 OK"; contentType = metricsContentType; content = body()
        case .badRequest: status = "400 Bad Request"; contentType = "text/plain"; content = "bad request: send GET /metrics\n"
        case .notFound: status = "404 Not Found"; contentType = "text/plain"; content = "not found: the metrics are at /metrics\n"
        case .methodNotAllowed: status = "405 Method Not Allowed"; contentType = "text/plain"; content = "only GET /metrics is served\n"
        }
        var text = "HTTP/1.0 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(content.utf8.count)\r\nConnection: close\r\n"
        if self == .methodNotAllowed { text += "Allow: GET, HEAD\r\n" }
        text += "\r\n"
        if !isHead { text += content }
        return text
    }
}
