import ToolSupport
/// Text, plot and promise checks for simulation results.
public enum SimulationReport {
    /// The figures table (one row per scenario), then one line per scenario with the run's
    /// counts, declared clock events, where the bound failed (if it did) and the promises.
    public static func table(_ results: [SimulationResult]) -> String {
        var out = Figures.table(results.map { (label: $0.scenario.name, figures: $0.figures) })
        out += "\n"
        for result in results {
            let c = result.scenario.configuration
            var line = "\(result.scenario.name): \(fixedDecimal(Double(c.durationNanoseconds) / Double(Span.day), 2)) d, seed \(c.seed), "
                + "poll \(c.pollNanoseconds / Span.second) s, \(result.exchanges) exchanges (\(result.lostExchanges) lost, "
                + "\(result.rejectedStamps) rejected)"
            if result.scenario.reference == .server { line += ", error against the server's clock" }
            if !result.declaredEvents.isEmpty {
                line += "; filter declared " + result.declaredEvents.map { "\($0.name) at \(formatDuration($0.atNanoseconds))" }
                    .joined(separator: ", ")
            }
            if result.boundViolationCount > 0, let first = result.boundViolations.first {
                line += "; |error| > maxError in \(result.boundViolationCount) samples, first at \(formatDuration(first.trueNanoseconds))"
                    + " (error \(fixedDecimal(Double(first.errorNanoseconds) / 1e3, 1)) µs, bound \(fixedDecimal(Double(first.maxErrorNanoseconds) / 1e3, 1)) µs)"
            }
            let unmet = result.scenario.promised.unmet(by: result.figures)
            if result.scenario.promised != PromisedFigures() {
                line += unmet.isEmpty ? "; promises met" : "; PROMISE NOT MET: " + unmet.joined(separator: "; ")
            }
            out += line + "\n"
            for source in result.sources { out += "  " + source.line + "\n" }
        }
        return out
    }

    /// Every sample as CSV with a header line: true time in seconds, error and maxError in ns.
    public static func csv(_ samples: [ErrorSample]) -> String {
        var out = "true_time_s,error_ns,max_error_ns\n"
        for s in samples {
            out += "\(fixedDecimal(Double(s.trueNanoseconds) / 1e9, 6)),\(s.errorNanoseconds),\(s.maxErrorNanoseconds)\n"
        }
        return out
    }

    /// Error against time with the ±maxError band and dashed lines at the scenario's events.
    public static func plot(_ result: SimulationResult) -> SVGPlot {
        let scenario = result.scenario
        let days = fixedDecimal(Double(scenario.configuration.durationNanoseconds) / Double(Span.day), 2)
        var plot = SVGPlot(title: "\(scenario.name) (simulated, \(days) d, seed \(scenario.configuration.seed))",
                           series: [PlotSeries(name: "ntpclient filter", colour: SVGPlot.oursColour, samples: result.samples)],
                           events: scenario.events)
        // Keep the y range on the steady error, not on a transient of seconds after an event.
        let steady = result.figures.steadyStateP99AbsErrorNanoseconds
        if steady > 0, result.figures.maxAbsErrorNanoseconds > 20 * steady {
            plot.yLimitNanoseconds = Int64(8 * steady)
        }
        return plot
    }
}

extension PromisedFigures {
    /// Each promise the figures break, in words; empty when all hold.
    public func unmet(by figures: Figures) -> [String] {
        var broken: [String] = []
        func micro(_ value: Double) -> String { fixedDecimal(value / 1e3, 1) + " µs" }
        if let limit = medianAbsErrorAtMostNanoseconds, figures.medianAbsErrorNanoseconds > Double(limit) {
            broken.append("median |error| \(micro(figures.medianAbsErrorNanoseconds)) > \(micro(Double(limit)))")
        }
        if let limit = iqrAbsErrorAtMostNanoseconds, figures.iqrAbsErrorNanoseconds > Double(limit) {
            broken.append("IQR |error| \(micro(figures.iqrAbsErrorNanoseconds)) > \(micro(Double(limit)))")
        }
        if let limit = p99AbsErrorAtMostNanoseconds, figures.p99AbsErrorNanoseconds > Double(limit) {
            broken.append("p99 |error| \(micro(figures.p99AbsErrorNanoseconds)) > \(micro(Double(limit)))")
        }
        if let limit = maxAbsErrorAtMostNanoseconds, figures.maxAbsErrorNanoseconds > Double(limit) {
            broken.append("max |error| \(micro(figures.maxAbsErrorNanoseconds)) > \(micro(Double(limit)))")
        }
        if let share = insideBoundShareAtLeast, figures.insideBoundShare < share {
            broken.append("inside maxError \(fixedDecimal(figures.insideBoundShare * 100, 3))% < \(fixedDecimal(share * 100, 3))%")
        }
        if let limit = outsideBoundCountAtMost, figures.outsideBoundCount > limit {
            broken.append("\(figures.outsideBoundCount) samples outside maxError > \(limit)")
        }
        if let limit = medianMaxErrorAtMostNanoseconds, figures.medianMaxErrorNanoseconds > Double(limit) {
            broken.append("median maxError \(micro(figures.medianMaxErrorNanoseconds)) > \(micro(Double(limit)))")
        }
        // Recoveries (back to the steady error) and settlings (under a fixed level) are the
        // same measurement with different thresholds: each must happen, and within its limit.
        func checkTimes(_ times: [Recovery], limit: Int64?, never: (Recovery) -> String, what: String) {
            guard let limit else { return }
            for time in times {
                guard let took = time.recoveryNanoseconds else { broken.append(never(time)); continue }
                if took > limit { broken.append("\(what) after \(time.event.name) took \(formatDuration(took)) > \(formatDuration(limit))") }
            }
        }
        checkTimes(figures.recoveries, limit: recoveryAtMostNanoseconds,
                   never: { "no recovery after \($0.event.name)" }, what: "recovery")
        checkTimes(figures.settlings, limit: settleAtMostNanoseconds,
                   never: { "|error| never settled under \(micro($0.thresholdNanoseconds)) after \($0.event.name)" }, what: "settling")
        return broken
    }
}
