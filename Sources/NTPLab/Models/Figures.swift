import ToolSupport
/// One measurement of the client's clock against the reference.
public struct ErrorSample: Sendable, Equatable {
    /// True time of the sample, ns since scenario start.
    public var trueNanoseconds: Int64
    /// Client clock minus reference (Ca − truth), ns.
    public var errorNanoseconds: Int64
    /// The bound the client published at that moment, ns.
    public var maxErrorNanoseconds: Int64
    public init(trueNanoseconds: Int64, errorNanoseconds: Int64, maxErrorNanoseconds: Int64) {
        self.trueNanoseconds = trueNanoseconds
        self.errorNanoseconds = errorNanoseconds
        self.maxErrorNanoseconds = maxErrorNanoseconds
    }
}

/// How figures are computed.
public struct FigureOptions: Sendable, Equatable {
    /// Samples before this true time are the filter's warm-up and are left out.
    public var warmupNanoseconds: Int64 = 0
    /// Samples this long after each event are left out of the steady state.
    public var eventExclusionNanoseconds: Int64 = 6 * Span.hour
    /// Recovery: |error| back within this multiple of the steady-state p99 (2: back in the
    /// steady state's range, not merely smaller).
    public var recoveryFactor: Double = 2
    /// A floor for the recovery threshold, so a near-perfect steady state is not a
    /// threshold of a few nanoseconds.
    public var minimumRecoveryThresholdNanoseconds: Int64 = 0
    /// A fixed |error| level for a second, coarser recovery figure ("settled"): how long
    /// until an event is absorbed at all, apart from how long the last few µs take.
    public var settleThresholdNanoseconds: Int64? = nil
    public init() {}
}

/// Recovery after one event.
public struct Recovery: Sendable, Equatable {
    public var event: LabEvent
    /// |error| limit that counts as recovered: factor × steady-state p99 (or the floor).
    public var thresholdNanoseconds: Double
    /// Time from the event until |error| is within the threshold and stays there until
    /// the next event (or the end); 0 if it never left; nil if it never came back.
    public var recoveryNanoseconds: Int64?
}

/// The lab's figures: |error| median, IQR, p99, max; share inside the published bound;
/// recovery after each event. Also the signed median and IQR, the way RADclock's own
/// evaluations report its error (median −2.5 µs, IQR 9.3 µs on a quiet LAN).
/// Quantiles interpolate linearly between order statistics (Hyndman–Fan type 7).
/// With no samples every figure is 0 and `sampleCount` says so.
public struct Figures: Sendable, Equatable {
    public var sampleCount: Int
    public var medianAbsErrorNanoseconds: Double
    public var iqrAbsErrorNanoseconds: Double
    public var p99AbsErrorNanoseconds: Double
    public var maxAbsErrorNanoseconds: Double
    public var medianErrorNanoseconds: Double
    public var iqrErrorNanoseconds: Double
    /// Share (0…1) of samples with |error| ≤ maxError.
    public var insideBoundShare: Double
    /// Samples with |error| > maxError: printed beside the share, which rounds one sample in
    /// twenty thousand to 100.00%.
    public var outsideBoundCount: Int
    /// Median of the published maxError: what the bound costs a reader who relies on it.
    public var medianMaxErrorNanoseconds: Double
    /// p99 of |error| outside warm-up and event windows.
    public var steadyStateP99AbsErrorNanoseconds: Double
    public var recoveries: [Recovery]
    /// Time to get back under `FigureOptions.settleThresholdNanoseconds` after each event
    /// (empty when no settle threshold is set).
    public var settlings: [Recovery]

    public init(samples: [ErrorSample], events: [LabEvent] = [], options: FigureOptions = FigureOptions()) {
        let measured = samples.filter { $0.trueNanoseconds >= options.warmupNanoseconds }
        sampleCount = measured.count
        var absolute = measured.map { Double($0.errorNanoseconds.magnitude) }
        var signed = measured.map { Double($0.errorNanoseconds) }
        absolute.sort()
        signed.sort()
        medianAbsErrorNanoseconds = Figures.quantile(absolute, 0.5)
        iqrAbsErrorNanoseconds = Figures.quantile(absolute, 0.75) - Figures.quantile(absolute, 0.25)
        p99AbsErrorNanoseconds = Figures.quantile(absolute, 0.99)
        maxAbsErrorNanoseconds = absolute.last ?? 0
        medianErrorNanoseconds = Figures.quantile(signed, 0.5)
        iqrErrorNanoseconds = Figures.quantile(signed, 0.75) - Figures.quantile(signed, 0.25)
        let inside = measured.reduce(0) { $0 + ($1.errorNanoseconds.magnitude <= $1.maxErrorNanoseconds.magnitude ? 1 : 0) }
        insideBoundShare = measured.isEmpty ? 0 : Double(inside) / Double(measured.count)
        outsideBoundCount = measured.count - inside
        var bounds = measured.map { Double($0.maxErrorNanoseconds.magnitude) }
        bounds.sort()
        medianMaxErrorNanoseconds = Figures.quantile(bounds, 0.5)

        var steady = measured.filter { sample in
            !events.contains { sample.trueNanoseconds >= $0.atNanoseconds
                && sample.trueNanoseconds < $0.atNanoseconds + options.eventExclusionNanoseconds }
        }.map { Double($0.errorNanoseconds.magnitude) }
        steady.sort()
        steadyStateP99AbsErrorNanoseconds = Figures.quantile(steady, 0.99)

        let threshold = max(options.recoveryFactor * steadyStateP99AbsErrorNanoseconds,
                            Double(options.minimumRecoveryThresholdNanoseconds))
        let ordered = events.sorted { $0.atNanoseconds < $1.atNanoseconds }
        func measure(_ level: Double) -> [Recovery] {
            ordered.enumerated().compactMap { i, event in
                guard event.measuresRecovery else { return nil }
                let end = i + 1 < ordered.count ? ordered[i + 1].atNanoseconds : .max
                return Recovery(event: event, thresholdNanoseconds: level,
                                recoveryNanoseconds: Figures.recovery(samples, from: event.atNanoseconds, until: end, threshold: level))
            }
        }
        recoveries = measure(threshold)
        settlings = options.settleThresholdNanoseconds.map { measure(Double($0)) } ?? []
    }

    /// Type-7 quantile of sorted values: h = (n−1)q, interpolate between ⌊h⌋ and ⌊h⌋+1.
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let h = Double(sorted.count - 1) * min(max(q, 0), 1)
        let lower = Int(h.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        return sorted[lower] + (h - Double(lower)) * (sorted[upper] - sorted[lower])
    }

    /// Time from `from` until the first sample after the last one above `threshold` in
    /// [from, until); 0 if none exceeds it; nil if the last sample exceeds it or there are
    /// no samples. Samples are taken in time order.
    static func recovery(_ samples: [ErrorSample], from: Int64, until: Int64, threshold: Double) -> Int64? {
        var sawSample = false
        var lastViolationIndex: Int? = nil
        var lastIndex = 0
        for (i, sample) in samples.enumerated() where sample.trueNanoseconds >= from && sample.trueNanoseconds < until {
            sawSample = true
            lastIndex = i
            if Double(sample.errorNanoseconds.magnitude) > threshold { lastViolationIndex = i }
        }
        guard sawSample else { return nil }
        guard let violation = lastViolationIndex else { return 0 }
        guard violation < lastIndex else { return nil }
        return samples[violation + 1].trueNanoseconds - from
    }

    // MARK: - Output

    public func json(label: String) -> JSONValue {
        let recoveryValues: [JSONValue] = recoveries.map { r in
            .object([JSONMember("event", .string(r.event.name)),
                     JSONMember("atNanoseconds", .integer(r.event.atNanoseconds)),
                     JSONMember("thresholdNanoseconds", .number(r.thresholdNanoseconds.rounded())),
                     JSONMember("recoveryNanoseconds", r.recoveryNanoseconds.map { .integer($0) } ?? .null)])
        }
        let settleValues: [JSONValue] = settlings.map { r in
            .object([JSONMember("event", .string(r.event.name)),
                     JSONMember("thresholdNanoseconds", .number(r.thresholdNanoseconds.rounded())),
                     JSONMember("settleNanoseconds", r.recoveryNanoseconds.map { .integer($0) } ?? .null)])
        }
        return .object([
            JSONMember("label", .string(label)),
            JSONMember("samples", .integer(Int64(sampleCount))),
            JSONMember("medianAbsErrorNanoseconds", .number(medianAbsErrorNanoseconds.rounded())),
            JSONMember("iqrAbsErrorNanoseconds", .number(iqrAbsErrorNanoseconds.rounded())),
            JSONMember("p99AbsErrorNanoseconds", .number(p99AbsErrorNanoseconds.rounded())),
            JSONMember("maxAbsErrorNanoseconds", .number(maxAbsErrorNanoseconds.rounded())),
            JSONMember("medianErrorNanoseconds", .number(medianErrorNanoseconds.rounded())),
            JSONMember("iqrErrorNanoseconds", .number(iqrErrorNanoseconds.rounded())),
            JSONMember("insideBoundShare", .number(insideBoundShare)),
            JSONMember("outsideBoundCount", .integer(Int64(outsideBoundCount))),
            JSONMember("medianMaxErrorNanoseconds", .number(medianMaxErrorNanoseconds.rounded())),
            JSONMember("steadyStateP99AbsErrorNanoseconds", .number(steadyStateP99AbsErrorNanoseconds.rounded())),
            JSONMember("recoveries", .array(recoveryValues)),
            JSONMember("settlings", .array(settleValues)),
        ])
    }

    /// A text table, one row per labelled run (ours and a peer side by side), µs with one
    /// decimal, recoveries as "event=duration" (or "never").
    public static func table(_ rows: [(label: String, figures: Figures)]) -> String {
        let header = ["client", "samples", "med|e| µs", "IQR|e| µs", "p99|e| µs", "max|e| µs", "med e µs", "IQR e µs", "in bound", "out", "med bound µs", "recovery"]
        var cells: [[String]] = [header]
        for row in rows {
            let f = row.figures
            let recovery = f.recoveries.enumerated().map { i, r in
                var text = "\(r.event.name)=\(r.recoveryNanoseconds.map(formatDuration) ?? "never")"
                if i < f.settlings.count {
                    let settle = f.settlings[i]
                    text += " (<\(fixedDecimal(settle.thresholdNanoseconds / 1_000, 0)) µs: \(settle.recoveryNanoseconds.map(formatDuration) ?? "never"))"
                }
                return text
            }
            cells.append([row.label, String(f.sampleCount), micro(f.medianAbsErrorNanoseconds), micro(f.iqrAbsErrorNanoseconds),
                          micro(f.p99AbsErrorNanoseconds), micro(f.maxAbsErrorNanoseconds), micro(f.medianErrorNanoseconds),
                          micro(f.iqrErrorNanoseconds), fixedDecimal(f.insideBoundShare * 100, 2) + "%",
                          String(f.outsideBoundCount), micro(f.medianMaxErrorNanoseconds),
                          recovery.isEmpty ? "-" : recovery.joined(separator: " ")])
        }
        var widths = [Int](repeating: 0, count: header.count)
        for line in cells { for (i, cell) in line.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for line in cells {
            var text = ""
            for (i, cell) in line.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                // Numbers right-aligned, names and the recovery list left-aligned.
                text += (i == 0 || i == line.count - 1) ? cell + pad : pad + cell
                if i < line.count - 1 { text += "  " }
            }
            while text.hasSuffix(" ") { text.removeLast() }
            out += text + "\n"
        }
        return out
    }

    private static func micro(_ nanoseconds: Double) -> String { fixedDecimal(nanoseconds / 1_000, 1) }
}

/// A duration as the largest fitting unit: "850 ms", "12.5 s", "3.2 min", "1.5 h".
public func formatDuration(_ nanoseconds: Int64) -> String {
    let value = Double(nanoseconds)
    if nanoseconds.magnitude < UInt64(Span.second) { return fixedDecimal(value / 1e6, 0) + " ms" }
    if nanoseconds.magnitude < UInt64(Span.minute) { return fixedDecimal(value / 1e9, 1) + " s" }
    if nanoseconds.magnitude < UInt64(Span.hour) { return fixedDecimal(value / 6e10, 1) + " min" }
    return fixedDecimal(value / 3.6e12, 2) + " h"
}
