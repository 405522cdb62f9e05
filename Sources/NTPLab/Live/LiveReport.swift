import ToolSupport
/// Output of a live run: the figures table (ours and the peer side by side), JSON, the plot.
public enum LiveReport {
    /// The table, then a line per client with its counts and where the bound failed, and
    /// one line about the path (relay) and the server.
    public static func table(_ result: LiveResult) -> String {
        var rows = [(label: result.ours.label, figures: result.ours.figures)]
        if let peer = result.peer { rows.append((label: peer.label, figures: peer.figures)) }
        var out = Figures.table(rows)
        out += "\n"
        let plan = result.plan
        out += "\(plan.scenario.name) live: \(formatDuration(plan.durationNanoseconds)) at poll \(fixedDecimal(plan.pollSeconds, plan.pollSeconds < 10 ? 1 : 0)) s, seed \(plan.seed); "
            + "truth = host clock through the relay's served-time transform"
            + (plan.scenario.reference == .server ? " (the server's clock)" : "")
            + (result.realtimeScheduling ? "; lab threads and chronyd at SCHED_FIFO 10, the relay at normal priority" : "; normal scheduling (not permitted to raise it)")
            + "; one relay thread for every client, sleeping between packets\n"
        out += clientLine(result.ours, path: result.oursPath) + "; \(result.exchanges) exchanges, \(result.acceptedExchanges) accepted\n"
        if let peer = result.peer { out += clientLine(peer, path: result.peerPath) + "\n" }
        let model = plan.network.minimumDelays(atTrueNanoseconds: 0)
        func probe(_ check: ProbeCalibration?) -> String {
            check.map { "offset \(micro($0.medianOffsetNanoseconds)) µs, \(signedMicro($0.labAddedNanoseconds)) µs beyond the model and the direct path (\($0.probes) probes)" } ?? "no probe answered"
        }
        out += "relay-only check before time zero (SNTP probes, host clock both ends; an offset is the path's (fwd − bwd)/2): "
            + "ntpclient's lane \(probe(result.oursProbe))"
            + (result.peer != nil ? "; chronyd's lane \(probe(result.peerProbe))" : "")
            + "; direct to the server " + (result.directPath.map { "\(micro($0.asymmetryNanoseconds)) µs" } ?? "not measured")
            + " (model's minimum delays: \(micro((model.forward - model.backward) / 2)) µs, round trip \(micro(model.forward + model.backward)) µs)\n"
        out += result.calibrationFailures.isEmpty
            ? "calibration: every path within ±\(micro(result.calibrationToleranceNanoseconds)) µs of the model's asymmetry\n"
            : "CALIBRATION FAILED (tolerance ±\(micro(result.calibrationToleranceNanoseconds)) µs): " + result.calibrationFailures.joined(separator: "; ") + "\n"
        if !plan.events.isEmpty {
            out += "events: " + plan.events.map { "\($0.name) at \(formatDuration($0.atNanoseconds))" }.joined(separator: ", ") + "\n"
        }
        let relay = result.relayCounters
        out += "relay: \(relay.requestsForwarded)/\(relay.requestsReceived) requests and "
            + "\(relay.responsesForwarded)/\(relay.responsesReceived) responses passed, "
            + "delay min \(micro(relay.minimumRequestDelayNanoseconds)) / \(micro(relay.minimumResponseDelayNanoseconds)) µs, "
            + "max \(micro(relay.maximumRequestDelayNanoseconds)) / \(micro(relay.maximumResponseDelayNanoseconds)) µs (request / response)"
            + (result.relayHeadroomEachWayNanoseconds > 0 ? ", held \(micro(result.relayHeadroomEachWayNanoseconds)) µs longer each way (headroom)" : "")
            + (relay.overflowDrops + relay.sendErrors > 0 ? "; \(relay.overflowDrops) overflow drops, \(relay.sendErrors) send errors" : "")
            + "; CPU \(fixedDecimal(Double(relay.cpuNanoseconds) / 1e9, 3)) s in \(fixedDecimal(Double(relay.runningNanoseconds) / 1e9, 1)) s, "
            + "\(fixedDecimal(relay.cpuShare * 100, 2))% of a core"
            + (result.realtimeScheduling ? "" : relay.shortSchedulerSlice ? ", 0.1 ms scheduler slice" : ", default scheduler slice (a short one was refused)")
            + "\n"
        out += "relay send lateness: " + latenessLine("requests", result.requestLateness, pastDeparture: relay.requestsPastDeparture)
            + "; " + latenessLine("responses", result.responseLateness, pastDeparture: relay.responsesPastDeparture) + "\n"
        out += "relay wake-up (kernel receive stamp to read): " + wakeUpLine("requests", result.requestWakeUp)
            + "; " + wakeUpLine("responses", result.responseWakeUp) + "\n"
        let server = result.serverCounters
        out += "server: \(server.answered) answered; transmit time checked against the kernel's stamp \(server.transmitChecks) times, "
            + "\(server.transmitEarlyMisses) early and \(server.transmitLateMisses) late by more than its budget\n"
        if relay.requestsPastDeparture + relay.responsesPastDeparture > 0 {
            out += "the scenario's path could not be kept: \(relay.requestsPastDeparture) requests and \(relay.responsesPastDeparture) responses "
                + "reached the relay's thread only after their departure time (the model's delay"
                + (result.relayHeadroomEachWayNanoseconds > 0 ? " plus the headroom" : "") + " is shorter than this machine's wake-up; a larger --relay-headroom keeps it)\n"
        }
        return out
    }

    /// Median, p99 and maximum of one direction's lateness, and how many packets were seen
    /// only after their departure time.
    static func latenessLine(_ name: String, _ histogram: LatenessHistogram, pastDeparture: Int) -> String {
        "\(name) median \(micro(histogram.medianNanoseconds)) / p99 \(micro(histogram.p99Nanoseconds)) / max \(micro(histogram.maximumNanoseconds)) µs "
            + "(\(histogram.total) sent, \(pastDeparture) seen after their departure time)"
    }

    /// Median, p99 and maximum of one direction's wake-up delay.
    static func wakeUpLine(_ name: String, _ histogram: LatenessHistogram) -> String {
        "\(name) median \(micro(histogram.medianNanoseconds)) / p99 \(micro(histogram.p99Nanoseconds)) / max \(micro(histogram.maximumNanoseconds)) µs"
    }

    /// The lateness and wake-up histograms, one line per direction: "≤ upper edge µs: count" per bin.
    public static func latenessHistogramText(_ result: LiveResult) -> String {
        func line(_ name: String, _ histogram: LatenessHistogram) -> String {
            "\(name): " + histogram.occupiedBins.map { "≤\($0.upperEdgeNanoseconds == .max ? "∞" : micro($0.upperEdgeNanoseconds)) µs \($0.count)" }
                .joined(separator: ", ")
        }
        return line("request lateness", result.requestLateness) + "\n" + line("response lateness", result.responseLateness) + "\n"
            + line("request wake-up", result.requestWakeUp) + "\n" + line("response wake-up", result.responseWakeUp) + "\n"
    }

    static func clientLine(_ client: LiveClientResult, path: PathAsymmetry?) -> String {
        var line = "\(client.label): path asymmetry "
            + (path.map { "\(micro($0.measuredNanoseconds)) µs by the relay's stamps, model \(micro($0.modelNanoseconds)) µs for the same packets "
                + "(relay added \(signedMicro($0.relayAddedNanoseconds)) µs, \($0.exchanges) exchanges)" } ?? "not measured (no exchange completed)")
            + "; \(client.samples.count) samples (\(client.exchangeSamples) at exchanges, "
            + "\(client.betweenSamples) read between; \(client.skippedReads) reads unusable or before the first estimate)"
        if client.boundViolationCount > 0, let first = client.boundViolations.first {
            line += "; |error| > bound in \(client.boundViolationCount), first at \(formatDuration(first.trueNanoseconds)) "
                + "(error \(fixedDecimal(Double(first.errorNanoseconds) / 1e3, 1)) µs, bound \(fixedDecimal(Double(first.maxErrorNanoseconds) / 1e3, 1)) µs)"
        }
        if !client.notes.isEmpty { line += "; notes: " + client.notes.joined(separator: "; ") }
        return line
    }

    private static func micro(_ nanoseconds: Int64) -> String {
        nanoseconds == .max ? "-" : fixedDecimal(Double(nanoseconds) / 1e3, 1)
    }

    private static func signedMicro(_ nanoseconds: Int64) -> String { (nanoseconds >= 0 ? "+" : "") + micro(nanoseconds) }

    /// Every sample of every client as CSV: client, time s, error ns, bound ns, source.
    public static func csv(_ result: LiveResult) -> String {
        var out = "client,time_s,error_ns,max_error_ns\n"
        for client in [result.ours] + (result.peer.map { [$0] } ?? []) {
            for s in client.samples {
                out += "\(client.label),\(fixedDecimal(Double(s.trueNanoseconds) / 1e9, 6)),\(s.errorNanoseconds),\(s.maxErrorNanoseconds)\n"
            }
        }
        return out
    }

    public static func json(_ result: LiveResult) -> JSONValue {
        func path(_ p: PathAsymmetry?) -> JSONValue {
            p.map { .object([
                JSONMember("exchanges", .integer(Int64($0.exchanges))),
                JSONMember("measuredAsymmetryNanoseconds", .integer($0.measuredNanoseconds)),
                JSONMember("modelAsymmetryNanoseconds", .integer($0.modelNanoseconds)),
                JSONMember("relayAddedAsymmetryNanoseconds", .integer($0.relayAddedNanoseconds)),
            ]) } ?? .null
        }
        func probe(_ p: ProbeCalibration?) -> JSONValue {
            p.map { .object([
                JSONMember("probes", .integer(Int64($0.probes))),
                JSONMember("medianOffsetNanoseconds", .integer($0.medianOffsetNanoseconds)),
                JSONMember("labAddedAsymmetryNanoseconds", .integer($0.labAddedNanoseconds)),
            ]) } ?? .null
        }
        func client(_ c: LiveClientResult, _ p: PathAsymmetry?, _ check: ProbeCalibration?) -> JSONValue {
            .object([
                JSONMember("label", .string(c.label)),
                JSONMember("path", path(p)),
                JSONMember("relayOnlyCheck", probe(check)),
                JSONMember("exchangeSamples", .integer(Int64(c.exchangeSamples))),
                JSONMember("betweenSamples", .integer(Int64(c.betweenSamples))),
                JSONMember("skippedReads", .integer(Int64(c.skippedReads))),
                JSONMember("boundViolations", .integer(Int64(c.boundViolationCount))),
                JSONMember("notes", .array(c.notes.map { .string($0) })),
                JSONMember("figures", c.figures.json(label: c.label)),
            ])
        }
        let plan = result.plan
        var members = [
            JSONMember("scenario", .string(plan.scenario.name)),
            JSONMember("mode", .string("live")),
            JSONMember("seed", .integer(Int64(bitPattern: plan.seed))),
            JSONMember("durationNanoseconds", .integer(plan.durationNanoseconds)),
            JSONMember("pollSeconds", .number(plan.pollSeconds)),
            JSONMember("originUnixNanoseconds", .integer(result.originUnixNanoseconds)),
            JSONMember("realtimeScheduling", .bool(result.realtimeScheduling)),
            JSONMember("directPathAsymmetryNanoseconds", result.directPath.map { .integer($0.asymmetryNanoseconds) } ?? .null),
            JSONMember("calibrationToleranceNanoseconds", .integer(result.calibrationToleranceNanoseconds)),
            JSONMember("calibrationFailures", .array(result.calibrationFailures.map { .string($0) })),
            JSONMember("exchanges", .integer(Int64(result.exchanges))),
            JSONMember("acceptedExchanges", .integer(Int64(result.acceptedExchanges))),
            JSONMember("events", .array(plan.events.map {
                .object([JSONMember("event", .string($0.name)), JSONMember("atNanoseconds", .integer($0.atNanoseconds))])
            })),
            JSONMember("ours", client(result.ours, result.oursPath, result.oursProbe)),
        ]
        if let peer = result.peer { members.append(JSONMember("peer", client(peer, result.peerPath, result.peerProbe))) }
        func lateness(_ h: LatenessHistogram) -> JSONValue {
            .object([
                JSONMember("sent", .integer(Int64(h.total))),
                JSONMember("medianNanoseconds", .integer(h.medianNanoseconds)),
                JSONMember("p99Nanoseconds", .integer(h.p99Nanoseconds)),
                JSONMember("maximumNanoseconds", .integer(h.maximumNanoseconds)),
                JSONMember("bins", .array(h.occupiedBins.map {
                    .object([JSONMember("upToNanoseconds", $0.upperEdgeNanoseconds == .max ? .null : .integer($0.upperEdgeNanoseconds)),
                             JSONMember("count", .integer(Int64($0.count)))])
                })),
            ])
        }
        let r = result.relayCounters
        members.append(JSONMember("relay", .object([
            JSONMember("requestsReceived", .integer(Int64(r.requestsReceived))),
            JSONMember("requestsForwarded", .integer(Int64(r.requestsForwarded))),
            JSONMember("responsesReceived", .integer(Int64(r.responsesReceived))),
            JSONMember("responsesForwarded", .integer(Int64(r.responsesForwarded))),
            JSONMember("responsesRewritten", .integer(Int64(r.responsesRewritten))),
            JSONMember("requestsDropped", .integer(Int64(r.requestsDropped))),
            JSONMember("responsesDropped", .integer(Int64(r.responsesDropped))),
            JSONMember("overflowDrops", .integer(Int64(r.overflowDrops))),
            JSONMember("sendErrors", .integer(Int64(r.sendErrors))),
            JSONMember("requestsPastDeparture", .integer(Int64(r.requestsPastDeparture))),
            JSONMember("responsesPastDeparture", .integer(Int64(r.responsesPastDeparture))),
            JSONMember("requestLateness", lateness(result.requestLateness)),
            JSONMember("responseLateness", lateness(result.responseLateness)),
            JSONMember("headroomEachWayNanoseconds", .integer(result.relayHeadroomEachWayNanoseconds)),
            JSONMember("requestWakeUp", lateness(result.requestWakeUp)),
            JSONMember("responseWakeUp", lateness(result.responseWakeUp)),
            JSONMember("cpuNanoseconds", .integer(r.cpuNanoseconds)),
            JSONMember("runningNanoseconds", .integer(r.runningNanoseconds)),
            JSONMember("cpuShare", .number(r.cpuShare)),
        ])))
        // The server's own transmit-time checks: an early t3 biases every client alike.
        let server = result.serverCounters
        members.append(JSONMember("server", .object([
            JSONMember("answered", .integer(Int64(server.answered))),
            JSONMember("transmitChecks", .integer(Int64(server.transmitChecks))),
            JSONMember("transmitEarlyMisses", .integer(Int64(server.transmitEarlyMisses))),
            JSONMember("transmitLateMisses", .integer(Int64(server.transmitLateMisses))),
        ])))
        return .object(members)
    }

    /// Error against time, with each client's bound as a band; events as dashed lines.
    public static func plot(_ result: LiveResult) -> SVGPlot {
        let plan = result.plan
        var series = [PlotSeries(name: "ntpclient (feedforward)", colour: SVGPlot.oursColour, samples: result.ours.samples)]
        if let peer = result.peer {
            series.append(PlotSeries(name: "chronyd -x", colour: SVGPlot.peerColour, samples: peer.samples))
        }
        var plot = SVGPlot(title: "\(plan.scenario.name) (live on loopback, \(formatDuration(plan.durationNanoseconds)), poll \(fixedDecimal(plan.pollSeconds, 0)) s)",
                           series: series, events: plan.events)
        // The y range shows the steady error and the typical band (the median bound), not a
        // transient after an event or the start, which would flatten everything else.
        let steady = max(result.ours.figures.steadyStateP99AbsErrorNanoseconds, result.peer?.figures.steadyStateP99AbsErrorNanoseconds ?? 0)
        let largest = max(result.ours.figures.maxAbsErrorNanoseconds, result.peer?.figures.maxAbsErrorNanoseconds ?? 0)
        let bounds = result.ours.samples.map { Double($0.maxErrorNanoseconds) }.filter { $0 < 9e18 }.sorted()
        let typicalBound = Figures.quantile(bounds, 0.5)
        let errorRange = steady > 0 && largest > 20 * steady ? 8 * steady : largest
        let limit = max(errorRange * 1.1, typicalBound * 1.3)
        if limit > 0, limit.isFinite { plot.yLimitNanoseconds = Int64(limit) }
        return plot
    }
}
