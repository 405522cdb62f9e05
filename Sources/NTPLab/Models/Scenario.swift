/// A moment after which the figures measure a recovery (a step, a migration, an outage's end).
public struct LabEvent: Sendable, Equatable {
    public var name: String
    public var atNanoseconds: Int64
    /// False for an event that starts a disturbance whose end is a later event (an outage's
    /// start): its window is left out of the steady state, but no recovery is measured from it.
    public var measuresRecovery: Bool
    public init(name: String, atNanoseconds: Int64, measuresRecovery: Bool = true) {
        self.name = name
        self.atNanoseconds = atNanoseconds
        self.measuresRecovery = measuresRecovery
    }
}

/// The figures a scenario promises for a simulated day (or more) at poll 16 s and its own
/// random seed, asserted by LabTests so that a change that makes the filter worse fails CI;
/// nil means "not promised". Each promise is what the filter measurably achieves, with
/// margin (the numbers in each scenario's doc comment are `ntplab simulate` at random seeds
/// 5–16 and over a week).
public struct PromisedFigures: Sendable, Equatable {
    public var medianAbsErrorAtMostNanoseconds: Int64? = nil
    public var iqrAbsErrorAtMostNanoseconds: Int64? = nil
    public var p99AbsErrorAtMostNanoseconds: Int64? = nil
    public var maxAbsErrorAtMostNanoseconds: Int64? = nil
    /// Share of samples whose |error| is inside the published maxError (goal 1.0).
    public var insideBoundShareAtLeast: Double? = nil
    /// Longest recovery after any of the scenario's events.
    public var recoveryAtMostNanoseconds: Int64? = nil
    /// Longest time for |error| to get back under the scenario's fixed settle threshold
    /// (`FigureOptions.settleThresholdNanoseconds`) after any of its events.
    public var settleAtMostNanoseconds: Int64? = nil
    /// Samples with |error| > maxError: the bound must hold except where nothing can know
    /// (the samples between a server step or a counter jump and the first stamp after it).
    public var outsideBoundCountAtMost: Int? = nil
    /// Median of the published maxError: a tighter estimate must not buy itself a looser bound.
    public var medianMaxErrorAtMostNanoseconds: Int64? = nil
    public init() {}

    /// All promises at once, in microseconds (shares as fractions), for the scenario table.
    static func micro(median: Double? = nil, iqr: Double? = nil, p99: Double? = nil, max: Double? = nil,
                      inside: Double? = nil, outside: Int? = nil, bound: Double? = nil,
                      recovery: Int64? = nil, settle: Int64? = nil) -> PromisedFigures {
        func nanoseconds(_ micro: Double) -> Int64 { Int64((micro * 1_000).rounded()) }
        var p = PromisedFigures()
        p.medianAbsErrorAtMostNanoseconds = median.map(nanoseconds)
        p.iqrAbsErrorAtMostNanoseconds = iqr.map(nanoseconds)
        p.p99AbsErrorAtMostNanoseconds = p99.map(nanoseconds)
        p.maxAbsErrorAtMostNanoseconds = max.map(nanoseconds)
        p.outsideBoundCountAtMost = outside
        p.medianMaxErrorAtMostNanoseconds = bound.map(nanoseconds)
        p.insideBoundShareAtLeast = inside
        p.recoveryAtMostNanoseconds = recovery
        p.settleAtMostNanoseconds = settle
        return p
    }
}

/// Which reference the clock error is measured against.
public enum ErrorReference: String, Sendable, Equatable {
    /// True time: the default; an honest clock cannot beat its server's own error.
    case truth
    /// The server's clock: for server-step, where following the server is the right
    /// behaviour and truth would make recovery impossible by construction.
    case server
}

/// One situation a client meets in practice, with its exact numbers and where they come from.
public struct Scenario: Sendable, Equatable {
    public var name: String
    public var summary: String
    /// Where the numbers come from: the observation the scenario reproduces.
    public var source: String
    public var configuration: SimulationConfiguration
    public var events: [LabEvent]
    public var reference: ErrorReference
    public var promised: PromisedFigures
    /// How this scenario's figures are computed (warm-up, event windows, recovery floor).
    public var figureOptions: FigureOptions = {
        var options = FigureOptions()
        options.settleThresholdNanoseconds = 50 * Span.microsecond
        return options
    }()

    public init(name: String, summary: String, source: String, configuration: SimulationConfiguration,
                events: [LabEvent] = [], reference: ErrorReference = .truth, promised: PromisedFigures = PromisedFigures()) {
        self.name = name
        self.summary = summary
        self.source = source
        self.configuration = configuration
        self.events = events
        self.reference = reference
        self.promised = promised
    }

    /// The same scenario with command-line overrides applied.
    /// `rateCycles` replaces the oscillator's cycles (an empty list removes them).
    public func with(days: Double? = nil, seed: UInt64? = nil, pollSeconds: Int? = nil,
                     rateCycles: [RateCycle]? = nil) -> Scenario {
        var copy = self
        if let rateCycles { copy.configuration.oscillator.rateCycles = rateCycles }
        if let days { copy.configuration.durationNanoseconds = Int64((days * Double(Span.day)).rounded()) }
        if let seed { copy.configuration.seed = seed }
        if let pollSeconds { copy.configuration.pollNanoseconds = Int64(pollSeconds) * Span.second }
        return copy
    }

    public func simulator() -> Simulator { Simulator(configuration: configuration) }

    public static func named(_ name: String) -> Scenario? { all.first { $0.name == name } }

    /// Every scenario, from the quiet LAN to the server step (vm-skew in two strengths).
    public static let all: [Scenario] = [
        lanStratum1, lanThermal, loadedLAN, vmSkew, vmSkew5, erraticRate, migration, migrationVMClock, serverOutage,
        routeChange, serverStep, falseticker,
    ]

    // MARK: - The scenarios

    /// The best case measured for RADclock under Xen: a quality stratum-1 server on the same
    /// LAN, lightly loaded, barely any traffic, a 16 s poll; RADclock's error there had a
    /// median of −2.5 to 3.4 µs and an IQR of 9.3 to 9.5 µs, and a Xen guest (DomU) saw
    /// RTTs of 100–200 µs. Hence: min RTT 150 µs (70 µs out, 80 µs back: 10 µs of
    /// asymmetry), 5 µs mean exponential queueing, rare short bursts, 0.1% loss; a few-PPM
    /// oscillator ("counters drift, temperature driven") with slow wander and a daily cycle.
    ///
    /// Promised (a day): median |error| ≤ 5.5 µs, IQR of |error| ≤ 1.0 µs, p99 ≤ 6.7 µs (what
    /// chronyd achieves on the same models), max ≤ 13 µs, no sample outside maxError, median
    /// maxError ≤ 97.5 µs. Measured (docs/feedforward.md §6 fits): median 5.0, IQR 0.7–0.8,
    /// p99 6.4–6.5, max 8.8–12.5 µs over the scenario's seed and two others; the max is a
    /// three-poll excursion while a short queueing episode pulls the short windows, which the
    /// quiet path's narrow window margin follows further than a 2σ margin did (8.6 µs; chronyd
    /// 8.5–10.3 µs) in exchange for the lower p99 and IQR. A fixed-window average had IQR 3.4,
    /// p99 9.0. The median is the −5 µs bias of the 10 µs path asymmetry, which no exchange
    /// can see.
    public static let lanStratum1: Scenario = {
        var c = SimulationConfiguration()
        c.seed = 1
        c.durationNanoseconds = 7 * Span.day
        c.oscillator = stableOscillator
        c.network = lanNetwork
        return Scenario(name: "lan-stratum1", summary: "stratum-1 server one LAN hop away, light load, poll 16 s",
                        source: "RADclock under Xen, ideal setup: stratum-1 on the LAN, 16 s polling, IQR 9.3 µs; DomU RTT 100–200 µs",
                        configuration: c,
                        promised: .micro(median: 5.5, iqr: 1.0, p99: 6.7, max: 13, inside: 1, outside: 0, bound: 97.5))
    }()

    /// The lan-stratum1 network with an oscillator whose rate moves the way a real one does
    /// with temperature: 4.2 PPM plus a 1.0 PPM daily sine, plus a 0.2 PPM sine with a
    /// 40-minute period (an air-conditioning cycle), plus the usual wander. The rate then
    /// moves by up to 0.2 PPM per hour from the daily cycle and 1.9 PPM per hour from the
    /// 40-minute one: a filter whose offset and local rate lag a moving rate shows it here.
    ///
    /// Promised (a day): median |error| ≤ 5.5 µs, IQR ≤ 2.8 µs, p99 ≤ 10 µs (chronyd on the same
    /// models: IQR 3.5, p99 12.4–12.9), max ≤ 20 µs, no sample outside maxError, median
    /// maxError ≤ 105 µs. Measured: IQR 2.6, p99 9.2–9.3, max 12.4–12.9 µs, median bound
    /// 97 µs; the fits pick 16–32-stamp windows and a parabola where the 40-minute cycle bends
    /// the offset (a fixed-window average had IQR 25, p99 57). At poll 64 s over two days:
    /// IQR 5.3–5.4, p99 16.4 µs (chronyd: 8.7, 23.3); at poll 256 s the 40-minute cycle spans
    /// under ten polls and nothing can follow it (IQR 19–20, p99 69–79 µs; chronyd 60, 175).
    public static let lanThermal: Scenario = {
        var c = lanStratum1.configuration
        c.seed = 10
        c.durationNanoseconds = 2 * Span.day
        c.oscillator.rateCycles = [RateCycle(amplitudePPM: 1.0, periodNanoseconds: Span.day, phaseRadians: 1.0),
                                   RateCycle(amplitudePPM: 0.2, periodNanoseconds: 40 * Span.minute)]
        return Scenario(name: "lan-thermal", summary: "lan-stratum1 with a 1 PPM daily and a 0.2 PPM 40-min rate cycle",
                        source: "real oscillators drift with temperature; an air-conditioned room cycles it",
                        configuration: c,
                        promised: .micro(median: 5.5, iqr: 2.8, p99: 10, max: 20, inside: 1, outside: 0, bound: 105))
    }()

    /// A Xen guest (DomU) with some load, a variable poll and guests coming and going, where
    /// ntpd's error reached ±5000 µs; the hypervisor and the other guests add noise (the RTT
    /// grows from 30–70 µs native to 100–200 µs with four guests). Hence: the LAN of lan-stratum1
    /// plus 40 µs mean queueing, bursts on 30 s / off 2 min with a Lomax tail (scale 100 µs,
    /// shape 1.2, capped at 20 ms) in both directions, and 0.5% of packets delayed 2–8 ms.
    ///
    /// Promised: median |error| ≤ 6 µs, p99 ≤ 18 µs, max ≤ 96 µs (chronyd's on the same models),
    /// no sample outside maxError, median maxError ≤ 130 µs. Measured: median 5.1–5.3,
    /// p99 14.3–15.3, max 68–90 µs (the first minute, before p̂ is known); queueing only
    /// lengthens RTTs, and each stamp weighs by the inverse of the offset variance its excess
    /// RTT allows (docs/feedforward.md §6).
    public static let loadedLAN: Scenario = {
        var c = SimulationConfiguration()
        c.seed = 2
        c.durationNanoseconds = 2 * Span.day
        c.oscillator = stableOscillator
        c.network = lanNetwork
        let burst = BurstParameters(meanOnNanoseconds: 30 * Span.second, meanOffNanoseconds: 2 * Span.minute,
                                    scaleNanoseconds: 100 * Span.microsecond, shape: 1.2, capNanoseconds: 20 * Span.millisecond)
        let spikes = SpikeParameters(probability: 0.005, minimumNanoseconds: 2 * Span.millisecond, maximumNanoseconds: 8 * Span.millisecond)
        for path in [\NetworkParameters.forward, \NetworkParameters.backward] {
            c.network[keyPath: path].jitterMeanNanoseconds = 40 * Span.microsecond
            c.network[keyPath: path].burst = burst
            c.network[keyPath: path].spikes = spikes
        }
        return Scenario(name: "loaded-lan", summary: "the LAN with heavy bursty queueing both ways and multi-ms spikes",
                        source: "loaded Xen DomU with guest churn (ntpd ±5000 µs); RTT 100–200 µs with 4 guests",
                        configuration: c,
                        promised: .micro(median: 6, p99: 18, max: 96, inside: 1, outside: 0, bound: 130))
    }()

    /// A VMware guest that kept gaining two minutes for every ten minutes of wall-clock
    /// time: a constant skew of 120/600 = +20%. Applied to the client's raw counter
    /// (in live runs, by the relay's inverse transform of the served stamps).
    ///
    /// Promised: median |error| ≤ 5.5 µs, IQR ≤ 1.0 µs, p99 ≤ 6.7 µs (lan-stratum1's: the skew
    /// must cost nothing), max ≤ 400 ms, inside maxError 100%. Measured: median 5.0, IQR
    /// 0.7–0.8, p99 6.4–6.6 µs. The max (300 ms) is the first 1.5 s, before a second
    /// stamp gives any rate: read at the nominal rate, a +20% counter is 0.2 s/s off, and the
    /// published bound (aged at the 60% rate limit) covers it.
    public static let vmSkew: Scenario = {
        var c = SimulationConfiguration()
        c.seed = 3
        c.durationNanoseconds = 2 * Span.day
        c.oscillator = stableOscillator
        c.oscillator.skew = 0.2
        c.network = lanNetwork
        return Scenario(name: "vm-skew", summary: "client counter runs 20% fast (2 min per 10 min)",
                        source: "VMware guest gaining two minutes for every ten minutes",
                        configuration: c,
                        promised: .micro(median: 5.5, iqr: 1.0, p99: 6.7, max: 400_000, inside: 1, outside: 0, bound: 97.5))
    }()

    /// Hyper-V guests whose time skewed by more than a few minutes in an hour, beyond
    /// ntpd's reach (it steps only within 128 ms, and its frequency limit is 500 PPM). Three minutes an hour is +5%.
    ///
    /// Promised: median |error| ≤ 5.5 µs, IQR ≤ 1.0 µs, p99 ≤ 6.7 µs, max ≤ 100 ms (the first
    /// 1.5 s, as in vm-skew), inside maxError 100%. Measured: median 5.0, IQR 0.7–0.8, p99
    /// 6.4–6.5 µs, max 75 ms.
    public static let vmSkew5: Scenario = {
        var c = vmSkew.configuration
        c.seed = 4
        c.oscillator.skew = 0.05
        return Scenario(name: "vm-skew-5", summary: "client counter runs 5% fast (3 min per hour)",
                        source: "Hyper-V guest skew of more than a few minutes per hour; ntpd's 128 ms / 500 PPM limits",
                        configuration: c,
                        promised: .micro(median: 5.5, iqr: 1.0, p99: 6.7, max: 100_000, inside: 1, outside: 0, bound: 97.5))
    }()

    /// powernowd on the host scales the CPU's frequency as it sees fit, and a hosted guest's
    /// counter rate follows it. Rates switch uniformly
    /// among +0%, +10%, +20% and +35% with a 10-minute mean dwell (our choice of values;
    /// the VMware guest's net gain of 2 min per 10 min lies inside their range).
    ///
    /// Promised: median |error| ≤ 8 µs, p99 ≤ 8 s, max ≤ 30 s, inside maxError ≥ 99%.
    /// Measured: median 5.2 µs, p99 5.6 s, max 15 s; 100.00% inside (1 sample out of 21 625;
    /// 99.95–100% over random seeds 10–16; was 95.5% before the filter aged its bound at observed
    /// rate jumps). What no filter can avoid: a rate jump of up to 35% lands between two
    /// stamps, so the error grows at up to 0.35 s/s until stamps show it (seconds per poll);
    /// the filter declares a rate change three stamps later and is back within µs. The bound
    /// says so honestly: once a jump has been seen it ages at the jump's size (held 6 h,
    /// then decaying), and while suspects are pending at the rate they imply, so its median
    /// is 2.8 s here. The one sample out (at 27.9 min) lies between a jump larger than any
    /// seen before it and the first stamp after that jump: history cannot foretell it.
    public static let erraticRate: Scenario = {
        var c = SimulationConfiguration()
        c.seed = 5
        c.durationNanoseconds = 2 * Span.day
        c.oscillator = stableOscillator
        c.oscillator.erratic = ErraticRate(rateErrors: [0, 0.10, 0.20, 0.35], meanDwellNanoseconds: 10 * Span.minute)
        c.network = lanNetwork
        return Scenario(name: "erratic-rate", summary: "counter rate switches among +0/10/20/35% at random times",
                        source: "powernowd scaling the host CPU under a hosted VM",
                        configuration: c,
                        promised: .micro(median: 8, p99: 8_000_000, max: 30_000_000, inside: 0.99))
    }()

    /// Live migration: a migrated Xen guest's clock was off by up to 250 µs, and the new
    /// host's path asymmetry differs, so the clock jumps a little; propolis moves the guest
    /// TSC across hosts after a blackout window; on the new host the guest's TSC is another
    /// oscillator, and NTP should throw its history out. At 12 h the guest pauses 1.5 s, then resumes with
    /// its counter 2.5 s ahead, the new host's oscillator at +37 PPM (old: +4.2), min RTT
    /// 40 µs longer and the asymmetry changed by 30 µs (forward +35 µs, backward +5 µs).
    /// Recovery is measured from the resume.
    ///
    /// Promised: median |error| ≤ 15 µs, p99 ≤ 25 µs, recovery (and |error| < 50 µs) within
    /// 2 min of the resume, inside maxError ≥ 99.9%. Measured: recovery 44.5 s (three polls:
    /// the rate change is declared on the third disagreeing stamp); median 8.5 µs, because
    /// the new path's asymmetry moves the invisible bias from −5 to +10 µs. Out of bound:
    /// the 3 samples before the first post-migration stamp (the counter jumped 2.5 s; nothing
    /// can know). Between the suspect stamps the bound ages at the rate they imply (the
    /// 60% rate limit after one, their fitted rate after two), so it covers the new +33 PPM.
    /// At short polls (`--poll 1`, 2, 4) three suspects span 2–8 s, too little to resolve
    /// 33 PPM against a 200 µs RTT: the filter declares a step (poll 1, 2) or, since the
    /// suspects share no offset under the old rate, a rate change (poll 4); after a step the
    /// rate stays unverified, the bound ages at whatever rate the post-event stamps still
    /// allow, and the rate change follows once they rule the old rate out. Measured (random
    /// seeds 6, 11–13): |error| < 50 µs 7.5–12.5 s after the resume at polls 1, 2, 4 (peak 160 µs,
    /// inside the bound), 20.5 s at poll 8, 2.3 min at poll 64 (two polls); 100% inside
    /// maxError after the first post-resume stamp. (Before: poll 1 stepped every ~13 s on the
    /// old rate, 75% inside; poll 4 stayed 2.5 s off for up to 53 min.)
    public static let migration: Scenario = migrating(at: 12 * Span.hour)

    /// The migration scenario with its blackout starting at `start` of the run instead of at
    /// 12 h, so a test can reach it in a shorter run (at poll 1 s warm-up lasts 2.1 h: a
    /// migration before that restarts an epoch still in warm-up, one after it the full phase).
    public static func migrating(at start: Int64) -> Scenario {
        var c = SimulationConfiguration()
        c.seed = 6
        c.durationNanoseconds = 2 * Span.day
        c.oscillator = stableOscillator
        let move = Migration(atNanoseconds: start, blackoutNanoseconds: 1_500 * Span.millisecond,
                             counterJumpNanoseconds: 2_500 * Span.millisecond, newRateErrorPPM: 37)
        c.oscillator.migration = move
        c.network = lanNetwork
        c.network.levelShifts = [LevelShift(atNanoseconds: move.resumeNanoseconds,
                                            forwardDeltaNanoseconds: 35 * Span.microsecond,
                                            backwardDeltaNanoseconds: 5 * Span.microsecond)]
        var scenario = Scenario(name: "migration", summary: "1.5 s blackout at 12 h, then a new host: counter +2.5 s, +37 PPM, new path",
                                source: "Xen migration shock (250 µs), propolis TSC migration, KVM TSC after migration",
                                configuration: c,
                                events: [LabEvent(name: "migration", atNanoseconds: move.resumeNanoseconds)],
                                promised: .micro(median: 15, p99: 25, inside: 0.999, outside: 4, bound: 109.5,
                                                 recovery: 45 * Span.second, settle: 2 * Span.minute))
        // Recovery is "back within twice the steady p99", but never under 25 µs: the new path
        // moves the invisible bias from −5 to +10 µs, and twice a 6.5 µs p99 is 13 µs, 3 µs
        // above that bias. A threshold there measures the noise around the new bias, not the
        // recovery, and one sample in hours decides it.
        scenario.figureOptions.minimumRecoveryThresholdNanoseconds = 25 * Span.microsecond
        return scenario
    }

    /// The migration scenario on a platform that signals it: the vmclock page's
    /// `disruption_marker` changes at the resume (Linux vmclock-abi.h, from the KVM migration
    /// discussion). Every reader compares the marker itself, so the first read after the
    /// resume already reports an infinite bound; the client notices within its 50 ms check
    /// interval, declares the event to the filter (unsynchronised, infinite bound), refuses
    /// stamps from before it, polls a new 8-exchange burst 2 s apart, then 4, 8, 16, 32 s up
    /// to the poll, and starts a new epoch on the first post-resume stamp
    /// (docs/published-clock.md, "Disruption"). No read happens inside the blackout (the
    /// guest is paused); the read at the resume instant is sampled.
    ///
    /// Promised: what `migration` promises, but every sample inside maxError, and recovery no
    /// slower than `migration`'s 2 min. Measured (seeds 5, 6, 7, 11 at polls 4, 16, 64 s):
    /// 100% inside maxError (migration: 99.88–99.99%, the reads between the resume and the
    /// first suspect stamps 2.5 s off inside a 100 µs bound); |error| < 50 µs 2.1 s after the
    /// resume (migration: 8.5 s at poll 4, 44.5 s at 16, 2.3 min at 64). The recovery figure
    /// (back within twice the steady p99, about 25 µs) is 2.1 s in every one of six seeds at
    /// polls 4 and 16 (migration: 8.5–28.5 s and 44.5 s) and in most at poll 64 (migration:
    /// 2.3 min). A run can still show a late figure, with the signal or without: after
    /// either migration the clock sits on the new path's invisible +10 µs asymmetry bias,
    /// and now and then, when the newest stamps all queue, the offset fit follows them by
    /// 10–14 µs, with a slope, for one poll (before the migration too, up and down, about
    /// as often in both scenarios); one that goes up crosses the threshold and moves that
    /// run's figure to hours. Over 40 seeds at poll 64 that happened in 2 signalled runs and
    /// 1 unsignalled one, so the tests compare the figure over several seeds.
    public static let migrationVMClock: Scenario = migratingWithVMClock(at: 12 * Span.hour)

    /// `migrating(at:)` with the platform signalling the disruption.
    public static func migratingWithVMClock(at start: Int64) -> Scenario {
        var scenario = migrating(at: start)
        scenario.name = "migration-vmclock"
        scenario.summary = "migration, with the vmclock page signalling it: readers and client see it at once"
        scenario.source += "; Linux vmclock disruption_marker"
        scenario.configuration.platformSignalsDisruption = true
        scenario.promised = .micro(median: 15, p99: 25, inside: 1, recovery: 2 * Span.minute, settle: 2 * Span.minute)
        return scenario
    }

    /// ntpd loses stability when starved of good exchanges; here the server is unreachable
    /// for one hour from 12 h, then returns.
    ///
    /// Promised (a day, the outage included): median |error| ≤ 6 µs, p99 ≤ 30 µs, max ≤ 60 µs,
    /// no sample outside maxError, recovery within 1 min of the server's return.
    /// Measured: max 20–25 µs at the outage's end (was 66–96 µs), always inside the growing
    /// bound; readers extrapolate from the last stamp at p̂_local, the slope of the chosen fit
    /// (docs/feedforward.md §6); back in 14 s (the first stamp after the outage).
    public static let serverOutage: Scenario = {
        var c = SimulationConfiguration()
        c.seed = 7
        c.durationNanoseconds = 2 * Span.day
        c.oscillator = stableOscillator
        c.network = lanNetwork
        let outage = LabInterval(startNanoseconds: 12 * Span.hour, endNanoseconds: 13 * Span.hour)
        c.network.outages = [outage]
        return Scenario(name: "server-outage", summary: "server unreachable from 12 h to 13 h",
                        source: "a client starved of exchanges; generic",
                        configuration: c,
                        events: [LabEvent(name: "outage-start", atNanoseconds: outage.startNanoseconds, measuresRecovery: false),
                                 LabEvent(name: "outage-end", atNanoseconds: outage.endNanoseconds)],
                        promised: .micro(median: 6, p99: 30, max: 60, inside: 1, outside: 0, bound: 97.7,
                                         recovery: Span.minute, settle: Span.minute))
    }()

    /// Level-shift handling (docs/feedforward.md §4): min RTT steps up by 0.5 ms at 12 h
    /// (250 µs each way, so the offset truth is unchanged and only the shift is tested),
    /// and back down at 18 h.
    ///
    /// Promised: median |error| ≤ 6 µs, p99 ≤ 20 µs, max ≤ 130 µs, no sample outside maxError,
    /// recovery within 35 min of each shift. Measured: the up-shift is declared after the
    /// 100-stamp shift window (docs/feedforward.md §4, 1500 s); meanwhile every stamp is
    /// 500 µs above the old minimum, takes no part in the fit, and θ̂ is held (p99 7.0–7.6,
    /// max 10–12.4 µs; was 120–129 µs). The down-shift is absorbed at once.
    public static let routeChange: Scenario = {
        var c = SimulationConfiguration()
        c.seed = 8
        c.durationNanoseconds = 2 * Span.day
        c.oscillator = stableOscillator
        c.network = lanNetwork
        c.network.levelShifts = [
            LevelShift(atNanoseconds: 12 * Span.hour, forwardDeltaNanoseconds: 250 * Span.microsecond, backwardDeltaNanoseconds: 250 * Span.microsecond),
            LevelShift(atNanoseconds: 18 * Span.hour, forwardDeltaNanoseconds: -250 * Span.microsecond, backwardDeltaNanoseconds: -250 * Span.microsecond),
        ]
        return Scenario(name: "route-change", summary: "min RTT +0.5 ms at 12 h, back down at 18 h",
                        source: "a route change: the minimum RTT steps up, later back down",
                        configuration: c,
                        events: [LabEvent(name: "shift-up", atNanoseconds: 12 * Span.hour),
                                 LabEvent(name: "shift-down", atNanoseconds: 18 * Span.hour)],
                        promised: .micro(median: 6, p99: 20, max: 130, inside: 1, outside: 0, bound: 99.6, recovery: 35 * Span.minute))
    }()

    /// After a disturbance a client must throw its history out. The server's time steps
    /// by +100 ms at 12 h and stays: below ntpd's 128 ms step threshold, so a feedback
    /// client would slew it for a long time. Error is measured
    /// against the server's clock (the client can only follow its server).
    ///
    /// Promised: median |error| ≤ 8 µs, p99 ≤ 15 µs, |error| < 50 µs and full recovery
    /// (2 × steady p99) within 2 min of the step, inside maxError ≥ 99.9%.
    /// Measured: the step is declared on the third stamp and the clock is fully back 46 s
    /// after it (p99 8.8 µs): a step-only event keeps p̂ and p̂_local (a step moves offsets,
    /// not rates), where restarting them used to leave a −20 µs bias for 1.7 h. Out of
    /// bound: the 3 samples between the step and the first stamp after it (the server
    /// moved; nothing can know).
    public static let serverStep: Scenario = {
        var c = SimulationConfiguration()
        c.seed = 9
        c.durationNanoseconds = 2 * Span.day
        c.oscillator = stableOscillator
        c.network = lanNetwork
        c.server.steps = [ServerStep(atNanoseconds: 12 * Span.hour, stepNanoseconds: 100 * Span.millisecond)]
        return Scenario(name: "server-step", summary: "server time steps +100 ms at 12 h and stays",
                        source: "a server step a client must follow at once; ntpd's 128 ms step threshold",
                        configuration: c,
                        events: [LabEvent(name: "server-step", atNanoseconds: 12 * Span.hour)],
                        reference: .server,
                        promised: .micro(median: 6, p99: 8.8, inside: 0.999, outside: 3, bound: 97.6,
                                         recovery: 2 * Span.minute, settle: 2 * Span.minute))
    }()

    // MARK: - Shared parts

    /// A few-PPM oscillator with slow wander and a daily temperature cycle: real counters
    /// are imperfect and drift, driven by temperature.
    static let stableOscillator: OscillatorParameters = {
        var o = OscillatorParameters()
        o.initialCounterNanoseconds = 3_600 * Span.second
        o.rateErrorPPM = 4.2
        o.wanderPPMPerRootHour = 0.002
        o.rateCycles = [RateCycle(amplitudePPM: 0.1, periodNanoseconds: Span.day, phaseRadians: 1.0)]
        return o
    }()

    /// One LAN hop to a stratum-1 server (as in lan-stratum1): min RTT 150 µs, 10 µs asymmetry,
    /// light exponential queueing, rare short bursts, 0.1% loss each way.
    static let lanNetwork: NetworkParameters = {
        let burst = BurstParameters(meanOnNanoseconds: 2 * Span.second, meanOffNanoseconds: 10 * Span.minute,
                                    scaleNanoseconds: 20 * Span.microsecond, shape: 1.5, capNanoseconds: 2 * Span.millisecond)
        return NetworkParameters(
            forward: PathParameters(minimumDelayNanoseconds: 70 * Span.microsecond, jitterMeanNanoseconds: 5 * Span.microsecond,
                                    burst: burst, lossProbability: 0.001),
            backward: PathParameters(minimumDelayNanoseconds: 80 * Span.microsecond, jitterMeanNanoseconds: 5 * Span.microsecond,
                                     burst: burst, lossProbability: 0.001))
    }()
}
