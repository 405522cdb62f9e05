/// Where each datagram of one send call really leaves, predicted from the server's own
/// measurements, so a basic-mode response can carry a transmit timestamp (t3) close to its
/// departure rather than the moment the batch was handed to the kernel (RFC 5905 §8: t3 is
/// the time the reply leaves; an early t3 shows to the client as a longer return path and
/// an offset too low by half the error).
///
/// One send call hands the kernel k datagrams; they leave one after another. Datagram `slot`
/// is predicted to leave at `stamp + lead + slot × spacing`:
/// - `spacing` is the send call's own duration divided by its datagrams, measured around
///   every call with two ~25 ns clock reads;
/// - `lead` is the time from the clock read to the first departure, tracked as the median
///   error of a sample of responses whose kernel TX stamp is read back: each check moves it
///   a small step toward the stamp, so it settles where half the checks are early and half
///   late, and one preempted send cannot drag it. The first send after the worker slept
///   has its own lead (`leadAfterWakeNanoseconds`): its path through the kernel is cold,
///   and on an otherwise idle host it was measured to leave 6–24 µs after the clock read
///   where a send among others leaves within about 1 µs.
///
/// The further a prediction extrapolates, the more it errs: the time to send one datagram
/// varies (the receiver's wake-up, softirq work, preemption). So the model also sets how
/// many datagrams one send call may carry: after every `windowChecks` checks it halves that
/// number if more than `windowMissesAllowed` missed the budget, and adds one if none did,
/// between 1 and the configured maximum. It settles where well under 1 % of the checks
/// miss, so the budget holds at p99, with as few send calls as the host allows: measured on a busy
/// 2-core loopback host under full load, checks beyond 5 µs were 0.2–0.4 % with one
/// datagram per call, 0.3–0.8 % with 2, 1.5–7 % with 4, 8–16 % with 16 and 14–26 % with 64.
///
/// Pure values in, values out; one per worker.
public struct DepartureModel: Sendable, Equatable {
    /// Predicted gap between consecutive datagrams of one send call.
    public private(set) var spacingNanoseconds: Int64
    /// Predicted time from the clock read to the first datagram's departure.
    public private(set) var leadNanoseconds: Int64
    /// The same for the first send call after the worker slept.
    public private(set) var leadAfterWakeNanoseconds: Int64
    /// A claim further than this from the kernel's TX stamp is a miss.
    public let budgetNanoseconds: Int64
    /// How many datagrams one send call may carry now (1 ... `maximumDatagramsPerSend`).
    public private(set) var datagramsPerSend: Int
    public let maximumDatagramsPerSend: Int
    private var windowCheckCount = 0
    private var afterWakeCheckCount = 0
    private var windowMissCount = 0

    /// Checks per adjustment of `datagramsPerSend`.
    static let windowChecks = 256
    /// Misses in a window that still keep `datagramsPerSend` (1 of 256 ≈ 0.4 %).
    static let windowMissesAllowed = 1

    /// How far one check moves `lead` (a median tracker's step).
    static let leadStepNanoseconds: Int64 = 20
    /// The step for `leadAfterWakeNanoseconds`, whose checks come at the rate of wake-ups,
    /// and the coarser step of its first `coarseAfterWakeChecks` checks (enough to reach
    /// 20 µs from the initial guess).
    static let leadAfterWakeStepNanoseconds: Int64 = 200
    static let leadAfterWakeCoarseStepNanoseconds: Int64 = 1_000
    static let coarseAfterWakeChecks = 20
    /// `lead` stays within 0 ... this: beyond it the send path itself is broken, not slow.
    static let leadLimitNanoseconds: Int64 = 50_000
    /// A send call slower than this per datagram was preempted: not a spacing sample.
    static let spacingLimitNanoseconds: Int64 = 20_000

    public init(budgetNanoseconds: Int64, maximumDatagramsPerSend: Int = 16, spacingNanoseconds: Int64 = 1_000,
                leadNanoseconds: Int64 = 500) {
        self.budgetNanoseconds = budgetNanoseconds
        self.maximumDatagramsPerSend = max(1, maximumDatagramsPerSend)
        datagramsPerSend = max(1, min(2, maximumDatagramsPerSend))
        self.spacingNanoseconds = spacingNanoseconds
        self.leadNanoseconds = leadNanoseconds
        leadAfterWakeNanoseconds = leadNanoseconds
    }

    /// Nanoseconds after the clock read that datagram `slot` (0-based) of a send call is
    /// predicted to leave; `afterWake` for the first call after the worker slept.
    @inline(__always)
    public func departureOffsetNanoseconds(slot: Int, afterWake: Bool = false) -> Int64 {
        (afterWake ? leadAfterWakeNanoseconds : leadNanoseconds) &+ Int64(slot) &* spacingNanoseconds
    }

    /// One send call of `datagrams` took `durationNanoseconds` from the clock read before it
    /// to the clock read after it. Calls of one datagram carry no spacing; a call slower than
    /// `spacingLimitNanoseconds` per datagram was interrupted and is ignored.
    @inline(__always)
    public mutating func observeSend(durationNanoseconds: Int64, datagrams: Int) {
        guard datagrams >= 2, durationNanoseconds > 0 else { return }
        let sample = durationNanoseconds / Int64(datagrams)
        guard sample < DepartureModel.spacingLimitNanoseconds else { return }
        // An exponential average over ~8 calls.
        spacingNanoseconds &+= (sample &- spacingNanoseconds) / 8
    }

    /// What a check found.
    public enum CheckResult: Sendable, Equatable {
        case withinBudget
        /// The response claimed a t3 earlier than its departure by more than the budget.
        case early
        /// The response claimed a t3 later than its departure by more than the budget.
        case late
    }

    /// A checked response claimed `claimedUnixNanoseconds` and the kernel stamped it leaving
    /// at `departedUnixNanoseconds`: classifies the error, moves the lead it was claimed with
    /// toward it, and at the end of a window of checks among other sends (not after a wake:
    /// the size of a call does not make those late) adjusts `datagramsPerSend`.
    @inline(__always)
    public mutating func observeCheck(claimedUnixNanoseconds: Int64, departedUnixNanoseconds: Int64,
                                      afterWake: Bool = false) -> CheckResult {
        let error = departedUnixNanoseconds &- claimedUnixNanoseconds
        let result: CheckResult = error > budgetNanoseconds ? .early : (error < -budgetNanoseconds ? .late : .withinBudget)
        if afterWake {
            // Checks after a wake come one per wake-up, at a lightly loaded server one per
            // client poll, so the small step alone would take minutes to learn a lead of
            // tens of µs: the first checks take large steps. Still a median tracker (a step
            // by the error's sign only), so the long tail of cold sends does not pull it
            // later than half the departures, which would make t3 late.
            let step = afterWakeCheckCount < DepartureModel.coarseAfterWakeChecks
                ? DepartureModel.leadAfterWakeCoarseStepNanoseconds : DepartureModel.leadAfterWakeStepNanoseconds
            afterWakeCheckCount += 1
            leadAfterWakeNanoseconds = DepartureModel.track(leadAfterWakeNanoseconds, error: error, step: step)
            return result
        }
        leadNanoseconds = DepartureModel.track(leadNanoseconds, error: error, step: DepartureModel.leadStepNanoseconds)
        windowCheckCount += 1
        if result != .withinBudget { windowMissCount += 1 }
        if windowCheckCount == DepartureModel.windowChecks {
            if windowMissCount > DepartureModel.windowMissesAllowed {
                datagramsPerSend = max(1, datagramsPerSend / 2)
            } else if windowMissCount == 0 {
                datagramsPerSend = min(maximumDatagramsPerSend, datagramsPerSend + 1)
            }
            windowCheckCount = 0
            windowMissCount = 0
        }
        return result
    }

    /// One step of a median tracker, kept within 0 ... `leadLimitNanoseconds`.
    @inline(__always)
    static func track(_ lead: Int64, error: Int64, step: Int64) -> Int64 {
        if error > 0 { return min(lead &+ step, leadLimitNanoseconds) }
        if error < 0 { return max(lead &- step, 0) }
        return lead
    }
}
