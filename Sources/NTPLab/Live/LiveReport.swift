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
            + (result.realtimeScheduling ? "; lab threads and chronyd at SCHED_FIFO 10" : "; normal scheduling (not permitted to raise it)")
            + (result.relaysBusyPolled ? "; relays busy-poll" : "; relays sleep between packets") + "\n"
        out += clientLine(result.ours) + "; \(result.exchanges) exchanges, \(result.acceptedExchanges) accepted\n"
        if let peer = result.peer { out += clientLine(peer) + "\n" }
        func path(_ measured: (asymmetryNanoseconds: Int64, delayNanoseconds: Int64)?) -> String {
            measured.map { "(fwd − bwd)/2 \(micro($0.asymmetryNanoseconds)) µs, round trip \(micro($0.delayNanoseconds)) µs" } ?? "not measured"
        }
        let model = plan.network.minimumDelays(atTrueNanoseconds: 0)
        out += "path before time zero (SNTP, host clock both ends; a client's error is biased by the asymmetry): direct \(path(result.directPath)); "
            + "through our relay \(path(result.relayPath))"
            + (result.peer != nil ? "; through chronyd's relay \(path(result.peerRelayPath))" : "")
            + " (model: \(micro((model.forward - model.backward) / 2)) µs, \(micro(model.forward + model.backward)) µs)\n"
        if !plan.events.isEmpty {
            out += "events: " + plan.events.map { "\($0.name) at \(formatDuration($0.atNanoseconds))" }.joined(separator: ", ") + "\n"
        }
        for (i, relay) in result.relayCounters.enumerated() {
            let who = i == 0 ? result.ours.label : (result.peer?.label ?? "peer")
            out += "relay for \(who): \(relay.requestsForwarded)/\(relay.requestsReceived) requests and "
                + "\(relay.responsesForwarded)/\(relay.responsesReceived) responses passed, "
                + "delay min \(micro(relay.minimumRequestDelayNanoseconds)) / \(micro(relay.minimumResponseDelayNanoseconds)) µs, "
                + "max \(micro(relay.maximumRequestDelayNanoseconds)) / \(micro(relay.maximumResponseDelayNanoseconds)) µs "
                + "(request / response), sends late by \(micro(relay.meanRequestLatenessNanoseconds)) / "
                + "\(micro(relay.meanResponseLatenessNanoseconds)) µs on average, at most \(micro(relay.maximumLatenessNanoseconds)) µs"
                + (relay.overflowDrops + relay.sendErrors > 0 ? "; \(relay.overflowDrops) overflow drops, \(relay.sendErrors) send errors" : "") + "\n"
        }
        return out
    }

    static func clientLine(_ client: LiveClientResult) -> String {
        var line = "\(client.label): \(client.samples.count) samples (\(client.exchangeSamples) at exchanges, "
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
        func client(_ c: LiveClientResult) -> JSONValue {
            .object([
                JSONMember("label", .string(c.label)),
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
            JSONMember("relaysBusyPolled", .bool(result.relaysBusyPolled)),
            JSONMember("directPathAsymmetryNanoseconds", result.directPath.map { .integer($0.asymmetryNanoseconds) } ?? .null),
            JSONMember("relayPathAsymmetryNanoseconds", result.relayPath.map { .integer($0.asymmetryNanoseconds) } ?? .null),
            JSONMember("relayPathDelayNanoseconds", result.relayPath.map { .integer($0.delayNanoseconds) } ?? .null),
            JSONMember("peerRelayPathAsymmetryNanoseconds", result.peerRelayPath.map { .integer($0.asymmetryNanoseconds) } ?? .null),
            JSONMember("exchanges", .integer(Int64(result.exchanges))),
            JSONMember("acceptedExchanges", .integer(Int64(result.acceptedExchanges))),
            JSONMember("events", .array(plan.events.map {
                .object([JSONMember("event", .string($0.name)), JSONMember("atNanoseconds", .integer($0.atNanoseconds))])
            })),
            JSONMember("ours", client(result.ours)),
        ]
        if let peer = result.peer { members.append(JSONMember("peer", client(peer))) }
        members.append(JSONMember("relays", .array(result.relayCounters.map { r in
            .object([
                JSONMember("requestsReceived", .integer(Int64(r.requestsReceived))),
                JSONMember("requestsForwarded", .integer(Int64(r.requestsForwarded))),
                JSONMember("responsesReceived", .integer(Int64(r.responsesReceived))),
                JSONMember("responsesForwarded", .integer(Int64(r.responsesForwarded))),
                JSONMember("responsesRewritten", .integer(Int64(r.responsesRewritten))),
                JSONMember("requestsDropped", .integer(Int64(r.requestsDropped))),
                JSONMember("responsesDropped", .integer(Int64(r.responsesDropped))),
                JSONMember("overflowDrops", .integer(Int64(r.overflowDrops))),
                JSONMember("sendErrors", .integer(Int64(r.sendErrors))),
                JSONMember("maximumLatenessNanoseconds", .integer(r.maximumLatenessNanoseconds)),
                JSONMember("meanRequestLatenessNanoseconds", .integer(r.meanRequestLatenessNanoseconds)),
                JSONMember("meanResponseLatenessNanoseconds", .integer(r.meanResponseLatenessNanoseconds)),
            ])
        })))
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
