import KernelStamps
import NTPPacket
import NTPServer
import ToolSupport

/// stratumd's Prometheus metrics: every counter the workers keep, in total and per worker,
/// and the state it serves. Built from the snapshots the workers publish (at most a second
/// old under load, current when idle), so a scrape never touches the packet path.
///
/// Totals and per-worker series are separate families (`stratumd_answered_total` and
/// `stratumd_worker_answered_total{worker="0"}`), so `sum()` over either never counts twice.
func serverMetricFamilies(workers: [ServerCounters], state: ServerState, hostClock: HostClockStatus?) -> [MetricFamily] {
    var total = ServerCounters()
    for worker in workers { total.add(worker) }

    /// One counter, as a total family and a per-worker family.
    func counter(_ name: String, _ help: String, _ value: (ServerCounters) -> UInt64) -> [MetricFamily] {
        [MetricFamily("stratumd_\(name)_total", .counter, help: help, value: Double(value(total))),
         MetricFamily("stratumd_worker_\(name)_total", .counter, help: help + " Per worker thread.",
                      samples: workers.enumerated().map { .init(Double(value($1)), labels: [("worker", String($0))]) })]
    }

    let dropReasons: [(String, (ServerCounters) -> UInt64)] = [
        ("rate-limited", { $0.rateLimitedDropped }), ("malformed", { $0.malformed }),
        ("control-mode", { $0.controlMode }), ("not-client-mode", { $0.notClientMode }),
        ("unsupported-version", { $0.unsupportedVersion }),
    ]
    let dropHelp = "Requests not answered, by reason (rate-limited beyond the one RATE kiss per interval, malformed, control mode 6/7, not client mode, unsupported version), count."
    var families: [MetricFamily] = []
    families += counter("received", "NTP datagrams received on the serving sockets, count.") { $0.received }
    families += counter("answered", "Responses handed to the kernel (basic, interleaved and kiss-o'-death), count.") { $0.answered }
    families += counter("interleaved", "Responses in interleaved mode (RFC 9769), count.") { $0.interleaved }
    families += counter("rate_kisses", "RATE kiss-o'-death responses sent to clients over the rate limit, count.") { $0.rateKissesSent }
    families.append(MetricFamily("stratumd_dropped_total", .counter, help: dropHelp,
                                 samples: dropReasons.map { .init(Double($0.1(total)), labels: [("reason", $0.0)]) }))
    families.append(MetricFamily("stratumd_worker_dropped_total", .counter, help: dropHelp + " Per worker thread.",
                                 samples: workers.enumerated().flatMap { index, worker in
                                     dropReasons.map { .init(Double($0.1(worker)), labels: [("worker", String(index)), ("reason", $0.0)]) }
                                 }))
    families += counter("receive_stamps_missing", "Requests without a kernel receive stamp (a user-space clock read stood in), count.") { $0.missingReceiveStamp }
    families += counter("transmit_stamps", "Kernel transmit stamps read back and kept for interleaved mode, count.") { $0.transmitStampsStored }
    families += counter("send_failures", "Responses the kernel refused to send (full send buffer), count.") { $0.sendFailures }
    families += counter("transmit_checks", "Basic-mode responses (a sample) whose transmit timestamp was compared with the kernel's transmit stamp, count.") { $0.transmitChecks }
    families += counter("transmit_early_misses", "Checked responses whose transmit timestamp was earlier than the kernel's transmit stamp by more than the budget (5 us): the client sees an offset too low, count.") { $0.transmitEarlyMisses }
    families += counter("transmit_late_misses", "Checked responses whose transmit timestamp was later than the kernel's transmit stamp by more than the budget (5 us), count.") { $0.transmitLateMisses }

    families.append(MetricFamily("stratumd_workers", .gauge, help: "Worker threads serving, count.", value: Double(workers.count)))
    families.append(MetricFamily("stratumd_leap_indicator", .gauge,
                                 help: "Leap indicator served (RFC 5905 §7.3): 0 no warning, 1 insert a second, 2 delete a second, 3 unsynchronised (clients will not use the responses).",
                                 value: Double(state.leapIndicator.rawValue)))
    families.append(MetricFamily("stratumd_stratum", .gauge, help: "Stratum served, 1 (primary) to 15.", value: Double(state.stratum)))
    families.append(MetricFamily("stratumd_root_dispersion_seconds", .gauge,
                                 help: "Root dispersion served, seconds: the host clock's error bound (the kernel's maxerror) or one precision step with --serve-unsynchronised.",
                                 value: Double(state.rootDispersion.nanoseconds) / 1e9))
    if let hostClock {
        families.append(MetricFamily("stratumd_host_clock_synchronised", .gauge,
                                     help: "1 when the kernel says the host clock is synchronised (adjtimex, read-only), 0 otherwise.",
                                     value: hostClock.isSynchronised ? 1 : 0))
        families.append(MetricFamily("stratumd_host_clock_max_error_seconds", .gauge,
                                     help: "The kernel's bound on the host clock's error (adjtimex maxerror), seconds.",
                                     value: Double(hostClock.maximumErrorMicroseconds) / 1e6))
    }
    return families
}
