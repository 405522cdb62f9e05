/// When to poll (docs/feedforward.md §8.4): a start-up burst of `burstCount` exchanges
/// `burstInterval` apart (never slower than the poll itself), then every poll period.
/// A RATE kiss doubles the poll period (RFC 5905 §7.4), up to `maximumPollSeconds`.
public struct PollSchedule: Sendable, Equatable {
    public private(set) var pollSeconds: Double
    public private(set) var burstCount: Int
    public let burstIntervalSeconds: Double
    /// The exchange the current burst started at: 0, or where `restartBurst` put it.
    public private(set) var burstStartExchange = 0
    /// True after `restartBurst`: the burst is followed by doubling intervals.
    public private(set) var rampsAfterBurst = false
    private let initialBurstCount: Int
    /// 2^17 s (36 h): RFC 5905's largest poll exponent.
    public static let maximumPollSeconds: Double = 131_072

    public init(pollSeconds: Double, burstCount: Int = 8, burstIntervalSeconds: Double = 2) {
        self.pollSeconds = pollSeconds
        self.burstCount = burstCount
        self.initialBurstCount = burstCount
        self.burstIntervalSeconds = burstIntervalSeconds
    }

    /// Seconds from exchange number `index` (0-based, counting every attempt, answered or not)
    /// to the next one. This is what the filter is told as `nextExchangeInSeconds`.
    public func secondsToNextExchange(after index: Int) -> Double {
        if index >= burstStartExchange && index + 1 < burstStartExchange + burstCount {
            return min(burstIntervalSeconds, pollSeconds)
        }
        let afterBurst = index - (burstStartExchange + burstCount - 1)
        if rampsAfterBurst && afterBurst >= 0 {
            let ramp = burstIntervalSeconds * Double(1 << min(afterBurst + 1, 30))
            if ramp < pollSeconds { return ramp }
        }
        return pollSeconds
    }

    /// How long to wait for an answer: 1 s, but at most half the interval to the next exchange
    /// so a lost packet never delays the schedule.
    public func timeoutSeconds(after index: Int) -> Double {
        min(1, secondsToNextExchange(after: index) / 2)
    }

    /// A new burst from exchange `index` on: after a disruption of the counter the filter
    /// needs fresh stamps quickly to re-anchor (docs/published-clock.md, "Disruption").
    /// After it the interval doubles from twice the burst spacing up to the poll, so the
    /// new counter's rate is measured over a growing baseline before the gaps reach the poll
    /// (in simulation at poll 64 s this halves the worst recovery after a migration).
    public mutating func restartBurst(atExchange index: Int) {
        burstStartExchange = index
        burstCount = initialBurstCount
        rampsAfterBurst = true
    }

    /// RATE kiss: poll half as often, and end any start-up burst at once.
    public mutating func reducePollRate() {
        burstCount = 0
        rampsAfterBurst = false
        pollSeconds = min(pollSeconds * 2, PollSchedule.maximumPollSeconds)
    }
}
