import Randomness

/// Bursty queueing: a two-state (on/off) process with exponential dwell times; while on,
/// each packet waits an extra heavy-tailed (Lomax) time. Models cross traffic arriving in
/// bursts, the load and noise that loaded virtual-machine guests see.
public struct BurstParameters: Sendable, Equatable {
    public var meanOnNanoseconds: Int64
    public var meanOffNanoseconds: Int64
    /// Lomax scale: the typical extra wait while a burst is on.
    public var scaleNanoseconds: Int64
    /// Lomax tail index; below 2 the variance is infinite (a genuinely heavy tail).
    public var shape: Double
    /// Longest extra wait (a queue is finite).
    public var capNanoseconds: Int64
    public init(meanOnNanoseconds: Int64, meanOffNanoseconds: Int64, scaleNanoseconds: Int64, shape: Double, capNanoseconds: Int64) {
        self.meanOnNanoseconds = meanOnNanoseconds
        self.meanOffNanoseconds = meanOffNanoseconds
        self.scaleNanoseconds = scaleNanoseconds
        self.shape = shape
        self.capNanoseconds = capNanoseconds
    }
}

/// Occasional multi-millisecond delays of a single packet (a loaded LAN, a descheduled vCPU).
public struct SpikeParameters: Sendable, Equatable {
    public var probability: Double
    public var minimumNanoseconds: Int64
    public var maximumNanoseconds: Int64
    public init(probability: Double, minimumNanoseconds: Int64, maximumNanoseconds: Int64) {
        self.probability = probability
        self.minimumNanoseconds = minimumNanoseconds
        self.maximumNanoseconds = maximumNanoseconds
    }
}

/// One direction of the path (client → server is forward, server → client backward).
public struct PathParameters: Sendable, Equatable {
    /// The floor no packet beats: propagation plus transmission plus the hosts' stacks.
    public var minimumDelayNanoseconds: Int64
    /// Mean of the light exponential queueing every packet sees.
    public var jitterMeanNanoseconds: Int64 = 0
    public var burst: BurstParameters? = nil
    public var spikes: SpikeParameters? = nil
    /// Independent per-packet loss.
    public var lossProbability: Double = 0
    public init(minimumDelayNanoseconds: Int64, jitterMeanNanoseconds: Int64 = 0, burst: BurstParameters? = nil,
                spikes: SpikeParameters? = nil, lossProbability: Double = 0) {
        self.minimumDelayNanoseconds = minimumDelayNanoseconds
        self.jitterMeanNanoseconds = jitterMeanNanoseconds
        self.burst = burst
        self.spikes = spikes
        self.lossProbability = lossProbability
    }
}

/// A step of the minimum delay (a route change, a new host after migration): from
/// `atNanoseconds` on, each direction's minimum delay changes by its delta; shifts add up.
public struct LevelShift: Sendable, Equatable {
    public var atNanoseconds: Int64
    public var forwardDeltaNanoseconds: Int64
    public var backwardDeltaNanoseconds: Int64
    public init(atNanoseconds: Int64, forwardDeltaNanoseconds: Int64, backwardDeltaNanoseconds: Int64) {
        self.atNanoseconds = atNanoseconds
        self.forwardDeltaNanoseconds = forwardDeltaNanoseconds
        self.backwardDeltaNanoseconds = backwardDeltaNanoseconds
    }
}

public struct NetworkParameters: Sendable, Equatable {
    public var forward: PathParameters
    public var backward: PathParameters
    public var levelShifts: [LevelShift] = []
    /// Intervals in which every packet, either way, is lost (server unreachable).
    public var outages: [LabInterval] = []
    public init(forward: PathParameters, backward: PathParameters, levelShifts: [LevelShift] = [], outages: [LabInterval] = []) {
        self.forward = forward
        self.backward = backward
        self.levelShifts = levelShifts
        self.outages = outages
    }
    /// Path asymmetry at true time t: forward minus backward minimum delay. An offset
    /// estimate is biased by half of it, and no exchange can observe it (RFC 5905 §8: the
    /// offset is exact only on a symmetric path).
    public func asymmetryNanoseconds(atTrueNanoseconds t: Int64) -> Int64 {
        let minimum = minimumDelays(atTrueNanoseconds: t)
        return minimum.forward - minimum.backward
    }
    public func minimumDelays(atTrueNanoseconds t: Int64) -> (forward: Int64, backward: Int64) {
        var forwardDelay = forward.minimumDelayNanoseconds
        var backwardDelay = backward.minimumDelayNanoseconds
        for shift in levelShifts where shift.atNanoseconds <= t {
            forwardDelay += shift.forwardDeltaNanoseconds
            backwardDelay += shift.backwardDeltaNanoseconds
        }
        return (forwardDelay, backwardDelay)
    }
    public func isInOutage(_ t: Int64) -> Bool {
        for outage in outages where outage.contains(t) { return true }
        return false
    }
}

/// One direction's delay process. A forward cursor in time (the burst state advances).
struct PathModel: Sendable {
    let parameters: PathParameters
    var random: SeededRandom
    private var burstOn = false
    private var nextBurstSwitchNanoseconds: Int64 = .max

    init(parameters: PathParameters, random: SeededRandom) {
        self.parameters = parameters
        self.random = random
        if let burst = parameters.burst {
            nextBurstSwitchNanoseconds = Int64(self.random.exponential(mean: Double(burst.meanOffNanoseconds)))
        }
    }

    /// Queueing delay (above the minimum) of a packet sent at t, or nil if it is lost.
    /// Draws the same number of random values for every packet, lost or not, so the loss
    /// probability does not reshuffle the delays.
    mutating func queueingDelay(sentAtNanoseconds t: Int64) -> Int64? {
        var queueing = random.exponential(mean: Double(parameters.jitterMeanNanoseconds))
        if let burst = parameters.burst {
            while t >= nextBurstSwitchNanoseconds {
                burstOn.toggle()
                let mean = burstOn ? burst.meanOnNanoseconds : burst.meanOffNanoseconds
                nextBurstSwitchNanoseconds += max(1, Int64(random.exponential(mean: Double(mean))))
            }
            let extra = random.lomax(scale: Double(burst.scaleNanoseconds), shape: burst.shape)
            if burstOn { queueing += min(extra, Double(burst.capNanoseconds)) }
        }
        if let spikes = parameters.spikes {
            let hit = random.bernoulli(spikes.probability)
            let size = random.uniform(Double(spikes.minimumNanoseconds), Double(spikes.maximumNanoseconds))
            if hit { queueing += size }
        }
        let lost = random.bernoulli(parameters.lossProbability)
        return lost ? nil : Int64(queueing)
    }
}

/// The path between client and server: minimum delay per direction, queueing with a
/// heavy tail, asymmetry, loss, level shifts and outages.
public struct NetworkModel: Sendable {
    public let parameters: NetworkParameters
    private var forwardPath: PathModel
    private var backwardPath: PathModel

    public init(parameters: NetworkParameters, seed: UInt64) {
        self.parameters = parameters
        forwardPath = PathModel(parameters: parameters.forward, random: SeededRandom(seed: seed, stream: LabStream.forwardPath))
        backwardPath = PathModel(parameters: parameters.backward, random: SeededRandom(seed: seed, stream: LabStream.backwardPath))
    }

    /// One-way delay of a request sent at true time t, or nil if it is lost.
    /// Calls must come in non-decreasing t.
    public mutating func forwardDelay(sentAtNanoseconds t: Int64) -> Int64? {
        let queueing = forwardPath.queueingDelay(sentAtNanoseconds: t)
        guard let queueing, !parameters.isInOutage(t) else { return nil }
        return parameters.minimumDelays(atTrueNanoseconds: t).forward + queueing
    }

    /// One-way delay of a response sent at true time t, or nil if it is lost.
    public mutating func backwardDelay(sentAtNanoseconds t: Int64) -> Int64? {
        let queueing = backwardPath.queueingDelay(sentAtNanoseconds: t)
        guard let queueing, !parameters.isInOutage(t) else { return nil }
        return parameters.minimumDelays(atTrueNanoseconds: t).backward + queueing
    }
}
