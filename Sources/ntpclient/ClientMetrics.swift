import FeedforwardClock
import NTPClient
import ToolSupport

/// What the metrics thread shows: the state after the last exchange, copied there by the
/// polling thread once per exchange (never per scrape), so a scrape never waits on it.
struct ClientMetricsSnapshot: Sendable {
    var server: String
    var report: ExchangeReport?
    var counters = ClientCounters()
    var exchangesSent = 0
    var exchangesAnswered = 0

    init(server: String) { self.server = server }

    mutating func record(_ report: ExchangeReport, counters: ClientCounters) {
        self.report = report
        self.counters = counters
        exchangesSent += 1
        if report.outcome != .timedOut { exchangesAnswered += 1 }
    }
}

/// ntpclient's Prometheus metrics: the clock's estimates in seconds (Prometheus base unit),
/// its status words as 0/1 gauges, and the exchange counters by outcome and reason. Signs are
/// those of the text output (docs in `ntpclient --help`): offsets are the uncorrected
/// feedforward clock minus the server.
func clientMetricFamilies(_ snapshot: ClientMetricsSnapshot) -> [MetricFamily] {
    let serverLabel = [("server", snapshot.server)]
    func gauge(_ name: String, _ help: String, _ value: Double?) -> MetricFamily {
        MetricFamily("ntpclient_\(name)", .gauge, help: help, samples: value.map { [.init($0, labels: serverLabel)] } ?? [])
    }
    func counter(_ name: String, _ help: String, _ value: Int) -> MetricFamily {
        MetricFamily("ntpclient_\(name)_total", .counter, help: help, samples: [.init(Double(value), labels: serverLabel)])
    }
    var families: [MetricFamily] = []
    if let report = snapshot.report {
        let parameters = report.parameters
        let hasEstimate = !parameters.status.contains(.noEstimate)
        func estimate(_ nanoseconds: Double) -> Double? { hasEstimate ? nanoseconds / 1e9 : nil }
        families += [
            gauge("offset_estimate_seconds", "Offset estimate θ̂: the uncorrected feedforward clock minus the server, seconds (positive: the clock is ahead).",
                  estimate(parameters.offsetNanoseconds)),
            gauge("max_error_seconds", "Hard bound on |feedforward clock − server| at the last exchange, seconds.",
                  estimate(report.maxErrorNanoseconds)),
            gauge("error_estimate_seconds", "Statistical error estimate of the feedforward clock, seconds.",
                  estimate(parameters.errorEstimateNanoseconds)),
            gauge("period_seconds", "Estimated length of one counter tick (one CLOCK_MONOTONIC_RAW nanosecond), seconds; 1e-9 is a perfect oscillator.",
                  parameters.periodSecondsPerTick),
            gauge("period_error_ratio", "Statistical error of the period estimate, relative to the period (1e-6 is 1 PPM).",
                  parameters.periodError),
            gauge("minimum_rtt_seconds", "The filter's minimum round-trip time, seconds.", estimate(parameters.minimumRTTNanoseconds)),
            gauge("last_rtt_seconds", "Round-trip time of the last answered exchange, seconds.", report.rttNanoseconds.map { $0 / 1e9 }),
            gauge("system_clock_offset_seconds", "CLOCK_REALTIME minus the feedforward clock at the last exchange, seconds (positive: the system clock is ahead).",
                  report.systemClockOffsetNanoseconds.map { $0 / 1e9 }),
            gauge("poll_seconds", "Seconds between exchanges now (doubled by each RATE kiss).", report.pollSeconds),
            gauge("stratum", "Stratum of the server's last answer (0: none yet).", Double(report.stratum)),
            MetricFamily("ntpclient_status", .gauge,
                         help: "The clock's status words (ntpclient --help, 'status' column): 1 when set after the last exchange, 0 otherwise.",
                         samples: ClockStatus.names.map { .init(report.status.contains($0.0) ? 1 : 0, labels: serverLabel + [("word", $0.1)]) }),
            counter("stamps_accepted", "Stamps the filter has used since start, count.", Int(parameters.stampCount)),
        ]
        families += sourceFamilies(report.sources)
    }
    let counters = snapshot.counters
    families += [
        counter("exchanges_sent", "Requests sent to the server, count.", snapshot.exchangesSent),
        counter("exchanges_answered", "Exchanges that got a genuine answer (used, refused by the filter, unusable, or a kiss), count.", snapshot.exchangesAnswered),
        counter("exchanges_timed_out", "Exchanges without a valid answer before the timeout, count.", counters.timeouts),
        MetricFamily("ntpclient_responses_rejected_total", .counter,
                     help: "Datagrams refused as answers, by reason (RFC 5905 §8 tests, RFC 9109 source checks, kiss-o'-death), count.",
                     samples: ResponseRejectionKind.allCases.map { .init(Double(counters.count($0)), labels: serverLabel + [("reason", $0.name)]) }),
        MetricFamily("ntpclient_stamps_rejected_total", .counter,
                     help: "Valid answers whose stamp the filter refused, by reason, count.",
                     samples: StampRejection.allCases.map { .init(Double(counters.stamps[Int($0.rawValue)]),
                                                                  labels: serverLabel + [("reason", stampRejectionLabel($0))]) }),
        MetricFamily("ntpclient_kisses_received_total", .counter,
                     help: "Kiss-o'-death answers received, by code (RFC 5905 §7.4; 'other' for codes without a meaning here), count.",
                     samples: [("RATE", ResponseRejectionKind.kissRate), ("DENY", .kissDeny), ("RSTR", .kissRestrict), ("other", .kissOther)]
                        .map { .init(Double(counters.count($0.1)), labels: serverLabel + [("code", $0.0)]) }),
    ]
    return families
}

/// Short label values for the filter's refusals. A switch, so a new refusal cannot go
/// unexported: the compiler asks for its label.
private func stampRejectionLabel(_ rejection: StampRejection) -> String {
    switch rejection {
    case .zeroTimestamp: return "zero-timestamp"
    case .counterNotIncreasing: return "counter-not-increasing"
    case .duplicate: return "duplicate"
    case .responseBeforeRequest: return "response-before-request"
    case .roundTripBelowResolution: return "round-trip-below-resolution"
    case .negativeRootDelayOrDispersion: return "negative-root-delay-or-dispersion"
    case .beforeDisruption: return "before-disruption"
    }
}

/// With several servers, each source's own state after the last exchange, labelled by the
/// server as given: the selection's view (RFC 5905 §11.2.1 style intersection of hard bounds).
private func sourceFamilies(_ sources: [SourceReport]) -> [MetricFamily] {
    guard !sources.isEmpty else { return [] }
    func gauge(_ name: String, _ help: String, _ value: (SourceReport) -> Double?) -> MetricFamily {
        MetricFamily("ntpclient_source_\(name)", .gauge, help: help,
                     samples: sources.compactMap { source in value(source).map { .init($0, labels: [("source", source.name)]) } })
    }
    let verdicts: [SourceVerdict] = [.selected, .falseticker, .unusable, .candidate]
    return [
        gauge("offset_from_clock_seconds", "This source's clock minus the published clock, seconds.", { $0.offsetFromClockNanoseconds.map { $0 / 1e9 } }),
        gauge("error_estimate_seconds", "This source's statistical error estimate, seconds.", { $0.errorEstimateNanoseconds.map { $0 / 1e9 } }),
        gauge("max_error_seconds", "This source's own hard bound, seconds.", { $0.maxErrorNanoseconds.map { $0 / 1e9 } }),
        gauge("reach", "The last 8 exchanges, newest in bit 0, 1 when the filter used the stamp (RFC 5905 reach register), 0 to 255.", { Double($0.reach) }),
        gauge("poll_seconds", "Seconds between this source's exchanges.", { $0.pollSeconds }),
        gauge("stratum", "Stratum of this source's last answer.", { Double($0.stratum) }),
        MetricFamily("ntpclient_source_verdict", .gauge,
                     help: "The selection's verdict on each source: 1 for the current one (selected, falseticker, unusable, candidate), 0 for the others.",
                     samples: sources.flatMap { source in
                         verdicts.map { .init(source.verdict == $0 ? 1 : 0, labels: [("source", source.name), ("verdict", $0.description)]) }
                     }),
    ]
}
