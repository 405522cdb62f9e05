/// Tunables of the filter (docs/feedforward.md §3–§8). Every threshold lives here, with its
/// unit in its name; the defaults are what docs/feedforward.md argues for.
public struct FeedforwardConfiguration: Sendable, Equatable {
    /// Poll period P in seconds: sizes every window (§3).
    public var pollPeriodSeconds: Double
    /// Timestamping noise: the spread of a stamp's RTT around the path's minimum when nothing
    /// queues (§6). Every RTT threshold scales from it (RADclock's TS_LIMIT).
    ///
    /// Default 5 µs: kernel RX/TX timestamps on both ends of a LAN or loopback scatter by a
    /// few µs. Raise it when the timestamps are taken in user space (tens of µs) or for a
    /// server behind several routed hops, whose RTT never comes within 5 µs of its minimum
    /// (100 µs to 1 ms): too small a value makes the level-shift detector fire on queueing
    /// noise and the offset quality gate hold θ̂ for good stamps.
    public var timestampNoiseNanoseconds: Double
    /// The noise of a stamp at the minimum RTT, as a share of `timestampNoiseNanoseconds` (§6):
    /// the floor of each stamp's offset variance in the fit's weights. The best stamps are
    /// far more exact than the typical spread, and weighting them so is what lets a short
    /// window follow a moving rate.
    public var bestStampNoiseShare: Double
    /// Shortest offset-fit window, in seconds of stamps (at least 3 stamps) (§6): two minutes
    /// of a LAN at poll 16 s is the fewest stamps whose fitted line beats the newest stamp.
    public var fitShortestWindowSeconds: Double
    /// Longest offset-fit window in stamps (§6): the work per update is linear in it, and 256
    /// (68 min at poll 16 s) keeps an update under 5 µs; 512 gains a tenth of a µs of p99.
    public var fitLongestWindowStamps: Int
    /// Windows of at least this many stamps also fit a parabola (§6), which follows a steadily
    /// changing rate; fewer stamps make it too noisy to help.
    public var fitParabolaMinimumStamps: Int
    /// Two fits agree when they differ by at most this many standard errors (§6), on a path
    /// that queues (see `queuedPathShare`), and in the rate checks of §6 and §8.2. Queueing in
    /// bursts makes neighbouring stamps' errors alike, which the fits' standard errors do not
    /// see, so the window choice needs this wider margin there.
    public var fitAgreementFactor: Double
    /// The same margin for the window choice on a quiet path (§6): there the stamps' errors
    /// are independent and the standard errors honest, and a narrower margin lets the choice
    /// stop as soon as a rate that moves with temperature bends the longer fits.
    public var fitAgreementQuietFactor: Double
    /// A stamp counts as queued when its RTT exceeds the minimum by more than this many
    /// `timestampNoiseNanoseconds` (§6): 4 × 5 µs = 20 µs, which a tenth of a quiet LAN's
    /// stamps exceed and nine tenths of a loaded one's.
    public var queuedStampExcessNoises: Double
    /// A path queues when more than this share of the newest `fitNoiseReferenceStamps` usable
    /// stamps are queued (§6); then the window choice uses `fitAgreementFactor`, else
    /// `fitAgreementQuietFactor`.
    public var queuedPathShare: Double
    /// The newest stamps whose second differences measure how far the stamps scatter relative
    /// to their weights (the fits' noise scale), and whose queueing decides the margin (§6):
    /// 64 is enough for a stable scale and short enough to follow a change of path.
    public var fitNoiseReferenceStamps: Int
    /// Floor of the fits' noise scale (§6): the weights may be ten times too pessimistic in σ,
    /// no more, so a run of lucky stamps cannot make every fit look exact.
    public var fitMinimumNoiseScale: Double
    /// Consecutive stamps that must agree, against the estimate, before a clock event is
    /// declared (§8.1, "a handful").
    public var eventStampCount: Int
    /// Largest relative error of the nominal period the filter must absorb, as a fraction
    /// (§8.3: ±50%; 0.6 leaves a margin so a counter exactly 50% off is not at the edge).
    /// Also the rate bound used before a stamp pair exists, so the early bound is honest.
    public var maximumRateErrorFraction: Double
    /// Allowance for the oscillator's rate wandering away from p̂ between its defining stamps,
    /// added to the hard rate bound that ages `maxError` (§8.2), in PPM.
    public var rateWanderBoundPPM: Double
    /// Smallest believable RTT in counter ticks (§2).
    public var counterResolutionTicks: Int64
    /// Stamps an epoch needs before the clock can be called synchronised (§8.4).
    public var stampsBeforeSynchronised: Int
    /// The clock is synchronised once its hard bound is at most this many times what the path
    /// itself allows: the best stamp's RTT/2 plus the server's own error plus one
    /// `timestampNoiseNanoseconds` (§8.4). 2: the estimate's own uncertainty has shrunk to
    /// the size of the path's.
    public var synchronisedBoundFactor: Double
    /// The bound that always counts as synchronised, whatever the path, in ns (§8.4). On a
    /// very short path (loopback, a switch away: RTT 20–40 µs) the path's own share is a few
    /// tens of µs, while ageing across one poll at the early rate bound alone adds as much, so
    /// the relative test above would call a clock that is good to 50 µs unsynchronised for
    /// minutes. 100 µs is still four orders below the distances at which ntpd (1.5 s) and
    /// chrony (`maxdistance` 3 s) stop trusting a source.
    public var synchronisedBoundMinimumNanoseconds: Double
    /// Once synchronised, an epoch stays synchronised while its bound is within this many
    /// times the allowance that let it in (§8.4). The bound at a stamp moves with that stamp's
    /// own queueing, so a single threshold makes the status flicker from one exchange to the
    /// next although nothing a reader relies on changed; ntpd and chrony likewise keep a
    /// source synchronised until something real (an event, a distance far past the limit)
    /// says otherwise.
    public var synchronisedHoldFactor: Double
    /// How long an observed rate jump keeps ageing the published bound at its full size
    /// (§8.2, §8.3): a counter whose rate has jumped may jump again between two stamps, and
    /// nothing but that history can say by how much. After this much quiet time the allowance
    /// halves for every further such period. Six hours: far above an erratic clock's dwell
    /// times (minutes), short enough that a one-off migration stops costing within a day.
    public var rateJumpMemorySeconds: Double
    /// p̂ pair candidates: a stamp more than this many `timestampNoiseNanoseconds` above the
    /// minimum RTT is not used (§5, RADclock's Ep = 3·TS).
    public var periodPointErrorNoises: Double
    /// p̂ is replaced only by a candidate with a smaller error, or one below this (§5), in PPM.
    public var periodQualityLimitPPM: Double
    /// A full-phase p̂ candidate further than this from p̂ is refused (§5), in PPM.
    public var periodSanityLimitPPM: Double
    /// The local rate is published only when its standard error is below this (§6), in PPM.
    public var localRateErrorLimitPPM: Double
    /// A local rate that moves further than this (beyond its own noise) between two stamps is
    /// a rate jump, refused and remembered (§6, §8.2), in PPM.
    public var localRateJumpLimitPPM: Double
    /// θ̂ is held when no stamp in the window is within this many `timestampNoiseNanoseconds`
    /// of the minimum RTT (§6: 3·Eoffset = 30·TS; twice that for a far server).
    public var offsetQualityNoises: Double
    /// θ̂ moves by at most this many `timestampNoiseNanoseconds` plus `offsetSanityGrowthPPM`
    /// per second since its last move, unless the hard bound allows more (§6: 100·TS).
    public var offsetSanityNoises: Double
    public var offsetSanityGrowthPPM: Double
    /// Growth of the statistical error estimate after the last θ̂ update (§6), in PPM.
    public var errorEstimateGrowthPPM: Double
    /// An upward RTT level shift is declared when the whole shift window lies this many
    /// `timestampNoiseNanoseconds` above the minimum (§4: 10·TS, 30·TS for a far server).
    public var levelShiftNoises: Double
    public var levelShiftFarServerNoises: Double
    /// A server whose minimum RTT is at least this far is "far" (§4, §6).
    public var farServerRTTNanoseconds: Double

    public init(pollPeriodSeconds: Double = 16,
                timestampNoiseNanoseconds: Double = 5_000,
                bestStampNoiseShare: Double = 0.15,
                fitShortestWindowSeconds: Double = 128,
                fitLongestWindowStamps: Int = 256,
                fitParabolaMinimumStamps: Int = 16,
                fitAgreementFactor: Double = 2,
                fitAgreementQuietFactor: Double = 1.5,
                queuedStampExcessNoises: Double = 4,
                queuedPathShare: Double = 0.5,
                fitNoiseReferenceStamps: Int = 64,
                fitMinimumNoiseScale: Double = 0.01,
                eventStampCount: Int = 3,
                maximumRateErrorFraction: Double = 0.6,
                rateWanderBoundPPM: Double = 0.5,
                counterResolutionTicks: Int64 = 1,
                stampsBeforeSynchronised: Int = 4,
                synchronisedBoundFactor: Double = 2,
                synchronisedBoundMinimumNanoseconds: Double = 100_000,
                synchronisedHoldFactor: Double = 2,
                rateJumpMemorySeconds: Double = 21_600,
                periodPointErrorNoises: Double = 3,
                periodQualityLimitPPM: Double = 0.1,
                periodSanityLimitPPM: Double = 1.5,
                localRateErrorLimitPPM: Double = 0.8,
                localRateJumpLimitPPM: Double = 1.5,
                offsetQualityNoises: Double = 30,
                offsetSanityNoises: Double = 100,
                offsetSanityGrowthPPM: Double = 10,
                errorEstimateGrowthPPM: Double = 0.5,
                levelShiftNoises: Double = 10,
                levelShiftFarServerNoises: Double = 30,
                farServerRTTNanoseconds: Double = 3e6) {
        self.pollPeriodSeconds = pollPeriodSeconds
        self.timestampNoiseNanoseconds = timestampNoiseNanoseconds
        self.bestStampNoiseShare = bestStampNoiseShare
        self.fitShortestWindowSeconds = fitShortestWindowSeconds
        self.fitLongestWindowStamps = fitLongestWindowStamps
        self.fitParabolaMinimumStamps = fitParabolaMinimumStamps
        self.fitAgreementFactor = fitAgreementFactor
        self.fitAgreementQuietFactor = fitAgreementQuietFactor
        self.queuedStampExcessNoises = queuedStampExcessNoises
        self.queuedPathShare = queuedPathShare
        self.fitNoiseReferenceStamps = fitNoiseReferenceStamps
        self.fitMinimumNoiseScale = fitMinimumNoiseScale
        self.eventStampCount = eventStampCount
        self.maximumRateErrorFraction = maximumRateErrorFraction
        self.rateWanderBoundPPM = rateWanderBoundPPM
        self.counterResolutionTicks = counterResolutionTicks
        self.stampsBeforeSynchronised = stampsBeforeSynchronised
        self.synchronisedBoundFactor = synchronisedBoundFactor
        self.synchronisedBoundMinimumNanoseconds = synchronisedBoundMinimumNanoseconds
        self.synchronisedHoldFactor = synchronisedHoldFactor
        self.rateJumpMemorySeconds = rateJumpMemorySeconds
        self.periodPointErrorNoises = periodPointErrorNoises
        self.periodQualityLimitPPM = periodQualityLimitPPM
        self.periodSanityLimitPPM = periodSanityLimitPPM
        self.localRateErrorLimitPPM = localRateErrorLimitPPM
        self.localRateJumpLimitPPM = localRateJumpLimitPPM
        self.offsetQualityNoises = offsetQualityNoises
        self.offsetSanityNoises = offsetSanityNoises
        self.offsetSanityGrowthPPM = offsetSanityGrowthPPM
        self.errorEstimateGrowthPPM = errorEstimateGrowthPPM
        self.levelShiftNoises = levelShiftNoises
        self.levelShiftFarServerNoises = levelShiftFarServerNoises
        self.farServerRTTNanoseconds = farServerRTTNanoseconds
    }
}

/// Window sizes in stamps (docs/feedforward.md §3).
public struct FeedforwardWindows: Sendable, Equatable {
    /// 7 days of stamps: forgetting and reference renewal work in halves of it (§4, §5).
    public let history: Int
    public let shift: Int
    /// The hard bound's window: 1024 s of stamps (§3, §8.2).
    public let offset: Int
    /// Warm-up: 7.5 offset windows (two hours at poll 16 s), at least the shift window (§3, §5).
    public let warmUp: Int

    public init(pollPeriodSeconds p: Double) {
        let poll = max(p, 1e-3)
        history = max(Int((604_800 / poll).rounded()), 2)
        shift = max(Int((1500 / poll).rounded(.up)), 100)
        offset = max(Int(1024 / poll), 2)
        warmUp = max(100, offset, shift, Int((7.5 * Double(max(offset, 3))).rounded(.up)))
    }
}
