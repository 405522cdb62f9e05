/// One NTP exchange as the client would see it, with the truth the lab keeps beside it.
///
/// Stamps follow docs/feedforward.md §2: `ta` and `tf` are the client's raw counter (ns)
/// when the request left and the response arrived; `tb` and `te` are the server's receive
/// and transmit times in Unix nanoseconds, as the server reports them (its own offset
/// included). A lost exchange has `lost == true` and `tf == 0`; `tb` and `te` stay zero
/// only if the request itself was lost (when just the response is lost they are kept as
/// truth: the client must not use them).
public struct SimulatedExchange: Sendable, Equatable {
    /// Position among the yielded exchanges (0-based).
    public var index: Int
    public var ta: Int64
    public var tb: Int64
    public var te: Int64
    public var tf: Int64
    public var header: ServerHeader
    public var lost: Bool

    // Truth.
    /// True time the request left, ns since scenario start.
    public var trueNanosecondsAtTa: Int64
    /// True time the response arrived, ns since scenario start (0 if lost).
    public var trueNanosecondsAtTf: Int64
    /// True Unix time when the response arrived: what a perfect Ca(Tf) reads (0 if lost).
    public var trueUnixNanosecondsAtTf: Int64
    /// What the server's clock read at that instant: the reference for a client that can
    /// only follow its server (server-step). Equal to truth when the server is right.
    public var serverUnixNanosecondsAtTf: Int64
    /// The server's clock minus truth when it stamped `tb`.
    public var serverOffsetNanoseconds: Int64
    public var forwardDelayNanoseconds: Int64
    public var backwardDelayNanoseconds: Int64
}

/// Everything a simulation run needs.
public struct SimulationConfiguration: Sendable, Equatable {
    public var seed: UInt64 = 1
    public var durationNanoseconds: Int64 = Span.day
    public var pollNanoseconds: Int64 = 16 * Span.second
    /// Start-up burst: this many exchanges `startupBurstSpacingNanoseconds` apart, then poll.
    public var startupBurstCount: Int = 8
    public var startupBurstSpacingNanoseconds: Int64 = 2 * Span.second
    /// Unix time of true time zero (2024-01-01T00:00:00Z by default).
    public var startUnixNanoseconds: Int64 = 1_704_067_200 * Span.second
    public var oscillator = OscillatorParameters()
    public var network = NetworkParameters(forward: PathParameters(minimumDelayNanoseconds: 50 * Span.microsecond),
                                           backward: PathParameters(minimumDelayNanoseconds: 50 * Span.microsecond))
    public var server = ServerParameters()
    /// The platform signals the migration (the vmclock page's disruption marker changes at
    /// the resume; docs/published-clock.md, "Disruption"): readers see the change on their
    /// next read, the client notices within `disruptionNoticeNanoseconds`, declares the clock
    /// event and polls a new start-up burst from then.
    public var platformSignalsDisruption = false
    /// How long after the resume the client notices the changed marker: its check interval.
    public var disruptionNoticeNanoseconds: Int64 = 50 * Span.millisecond
    /// Further servers the client polls besides `server` over `network`, each over its own
    /// path (docs/feedforward.md, "Several sources"); empty for a single-server run.
    public var additionalServers: [SimulatedServer] = []
    public init() {}

    /// Servers the client polls: `server` plus `additionalServers`.
    public var serverCount: Int { 1 + additionalServers.count }

    /// When the client notices a platform-signalled migration, or nil without one.
    public var disruptionNoticedNanoseconds: Int64? {
        guard platformSignalsDisruption, let migration = oscillator.migration else { return nil }
        return migration.resumeNanoseconds + disruptionNoticeNanoseconds
    }

    /// The post-disruption burst's sends (true time): `startupBurstCount` exchanges
    /// `startupBurstSpacingNanoseconds` apart from the moment the client noticed, then
    /// doubling intervals up to the poll, as the client's `PollSchedule.restartBurst` does.
    public var disruptionBurstNanoseconds: [Int64] {
        guard let first = disruptionNoticedNanoseconds else { return [] }
        var sends = (0..<max(0, startupBurstCount)).map { first + Int64($0) * startupBurstSpacingNanoseconds }
        // Then the interval doubles up to the poll, so the new rate is measured over a
        // growing baseline before the gaps reach the poll.
        var interval = startupBurstSpacingNanoseconds * 2
        while interval < pollNanoseconds, let last = sends.last {
            sends.append(last + interval)
            interval *= 2
        }
        return sends
    }

    /// True send time of the k-th scheduled exchange (before blackouts are skipped).
    /// Polls are scheduled on true time: the lab's schedule, not the client's timer.
    public func scheduledNanoseconds(_ k: Int) -> Int64 {
        let burst = Int64(max(0, startupBurstCount))
        let k64 = Int64(k)
        if k64 < burst { return k64 * startupBurstSpacingNanoseconds }
        return (burst - 1) * startupBurstSpacingNanoseconds + (k64 - burst + 1) * pollNanoseconds
    }
}

/// Yields exchanges one by one over the configured duration without storing them.
extension SimulationConfiguration {
    /// The seed of server `serverIndex`'s path and server draws: the scenario's own for the
    /// first server, mixed with the index for each further one, so several servers have
    /// independent paths. The simulator and the live relay derive it the same way.
    public static func serverSeed(_ seed: UInt64, serverIndex: Int) -> UInt64 {
        serverIndex == 0 ? seed : seed &+ UInt64(serverIndex) &* 0x9E37_79B9_7F4A_7C15
    }
}

/// Deterministic: the same configuration (seed included) gives identical exchanges.
///
/// No exchange starts during a migration blackout (the guest is paused); an exchange
/// whose flight overlaps the blackout is lost. An exchange in an outage is lost.
public struct Simulator: Sequence, IteratorProtocol, Sendable {
    public let configuration: SimulationConfiguration
    public private(set) var oscillator: OscillatorModel
    public private(set) var network: NetworkModel
    public private(set) var server: ServerModel
    /// Which of the configuration's servers this simulator polls (0: `server`).
    public let serverIndex: Int
    private let scheduleOffsetNanoseconds: Int64
    private var scheduleIndex = 0
    private var yielded = 0
    /// Pending post-disruption burst sends, ascending; the regular grid pauses meanwhile.
    private var burstSends: [Int64]
    private let burstWindow: LabInterval?

    /// The exchanges with server `serverIndex`. Every server sees the same client oscillator
    /// (same seed); each further server has its own path and server draws (seed mixed with its
    /// index) and polls `serverIndex`/`serverCount` of a poll later, as independent polls would.
    public init(configuration: SimulationConfiguration, serverIndex: Int = 0) {
        self.configuration = configuration
        self.serverIndex = serverIndex
        oscillator = OscillatorModel(parameters: configuration.oscillator, seed: configuration.seed)
        if serverIndex == 0 {
            network = NetworkModel(parameters: configuration.network, seed: configuration.seed)
            server = ServerModel(parameters: configuration.server, seed: configuration.seed)
            scheduleOffsetNanoseconds = 0
        } else {
            let other = configuration.additionalServers[serverIndex - 1]
            let seed = SimulationConfiguration.serverSeed(configuration.seed, serverIndex: serverIndex)
            network = NetworkModel(parameters: other.network, seed: seed)
            server = ServerModel(parameters: other.server, seed: seed)
            scheduleOffsetNanoseconds = configuration.pollNanoseconds * Int64(serverIndex) / Int64(configuration.serverCount)
        }
        let sends = configuration.disruptionBurstNanoseconds
        burstSends = sends
        burstWindow = sends.last.map {
            LabInterval(startNanoseconds: sends[0], endNanoseconds: $0 + configuration.startupBurstSpacingNanoseconds)
        }
    }

    public mutating func next() -> SimulatedExchange? {
        while true {
            let grid = configuration.scheduledNanoseconds(scheduleIndex) + scheduleOffsetNanoseconds
            let sent: Int64
            if let burst = burstSends.first, burst <= grid {
                sent = burst
                burstSends.removeFirst()
            } else {
                sent = grid
                scheduleIndex += 1
                // The client replaced its schedule with the burst.
                if burstWindow?.contains(sent) ?? false { continue }
            }
            guard sent < configuration.durationNanoseconds else { return nil }
            if oscillator.isInBlackout(sent) { continue }
            defer { yielded += 1 }
            return exchange(sentAtNanoseconds: sent)
        }
    }

    private mutating func exchange(sentAtNanoseconds sent: Int64) -> SimulatedExchange {
        let ta = oscillator.counter(atTrueNanoseconds: sent)
        var result = SimulatedExchange(index: yielded, ta: ta, tb: 0, te: 0, tf: 0,
                                       header: server.header(atTrueNanoseconds: sent), lost: true,
                                       trueNanosecondsAtTa: sent, trueNanosecondsAtTf: 0,
                                       trueUnixNanosecondsAtTf: 0, serverUnixNanosecondsAtTf: 0,
                                       serverOffsetNanoseconds: 0, forwardDelayNanoseconds: 0,
                                       backwardDelayNanoseconds: 0)
        // Draw every random quantity whether or not the packet survives, so one loss does
        // not shift the rest of the run.
        let forward = network.forwardDelay(sentAtNanoseconds: sent)
        let processing = server.processingNanoseconds()
        let received = sent + (forward ?? 0)
        let transmitted = received + processing
        let backward = network.backwardDelay(sentAtNanoseconds: transmitted)
        guard let forward else { return result }

        let start = configuration.startUnixNanoseconds
        let serverOffset = server.offsetNanoseconds(atTrueNanoseconds: received)
        result.header = server.header(atTrueNanoseconds: received)
        result.tb = start + received + serverOffset
        result.te = start + transmitted + serverOffset
        result.serverOffsetNanoseconds = serverOffset
        result.forwardDelayNanoseconds = forward
        guard let backward else { return result }

        let arrived = transmitted + backward
        if let migration = configuration.oscillator.migration,
           sent < migration.resumeNanoseconds, arrived >= migration.atNanoseconds {
            return result  // the guest was paused while the packet was in flight
        }
        result.backwardDelayNanoseconds = backward
        result.tf = oscillator.counter(atTrueNanoseconds: arrived)
        result.trueNanosecondsAtTf = arrived
        result.trueUnixNanosecondsAtTf = start + arrived
        result.serverUnixNanosecondsAtTf = start + arrived + server.offsetNanoseconds(atTrueNanoseconds: arrived)
        result.lost = false
        return result
    }
}
