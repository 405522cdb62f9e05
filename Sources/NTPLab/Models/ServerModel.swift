import Randomness

/// A step of the server's time (after such a disturbance a client must throw its history
/// out); steps add up and stay.
public struct ServerStep: Sendable, Equatable {
    public var atNanoseconds: Int64
    public var stepNanoseconds: Int64
    public init(atNanoseconds: Int64, stepNanoseconds: Int64) {
        self.atNanoseconds = atNanoseconds
        self.stepNanoseconds = stepNanoseconds
    }
}

/// Header values a server reports (RFC 5905 §7.3), in plain integers so the lab does not
/// depend on the codec's types. Root delay and dispersion are in nanoseconds here.
public struct ServerHeader: Sendable, Equatable {
    public var leap: UInt8
    public var stratum: UInt8
    public var referenceID: UInt32
    public var precision: Int8
    public var rootDelayNanoseconds: Int64
    public var rootDispersionNanoseconds: Int64
    public init(leap: UInt8, stratum: UInt8, referenceID: UInt32, precision: Int8, rootDelayNanoseconds: Int64, rootDispersionNanoseconds: Int64) {
        self.leap = leap
        self.stratum = stratum
        self.referenceID = referenceID
        self.precision = precision
        self.rootDelayNanoseconds = rootDelayNanoseconds
        self.rootDispersionNanoseconds = rootDispersionNanoseconds
    }
}

public struct ServerParameters: Sendable, Equatable {
    /// The server's constant offset from truth.
    public var offsetNanoseconds: Int64 = 0
    public var steps: [ServerStep] = []
    /// Periods the server reports leap 3 (alarm) and stratum 16, its time drifting at
    /// `unsynchronisedDriftPPM` from where it was; on resync its offset returns.
    public var unsynchronised: [LabInterval] = []
    public var unsynchronisedDriftPPM: Double = 0
    public var stratum: UInt8 = 1
    /// "GPS" as ASCII, the refid of a GPS-disciplined stratum-1 server.
    public var referenceID: UInt32 = 0x4750_5300
    public var precision: Int8 = -20
    public var rootDelayNanoseconds: Int64 = 0
    public var rootDispersionNanoseconds: Int64 = 10 * Span.microsecond
    /// Server processing time t3 − t2, uniform in [minimum, maximum].
    public var processingMinimumNanoseconds: Int64 = 2 * Span.microsecond
    public var processingMaximumNanoseconds: Int64 = 6 * Span.microsecond
    public init() {}
}

/// The server: its time relative to truth, its header, its processing time.
public struct ServerModel: Sendable {
    public let parameters: ServerParameters
    private var random: SeededRandom

    public init(parameters: ServerParameters, seed: UInt64) {
        self.parameters = parameters
        self.random = SeededRandom(seed: seed, stream: LabStream.server)
    }

    /// Time between the server's receive and transmit stamps (t3 − t2).
    public mutating func processingNanoseconds() -> Int64 {
        random.integer(parameters.processingMinimumNanoseconds, parameters.processingMaximumNanoseconds)
    }

    /// The server's clock minus truth at true time t.
    public func offsetNanoseconds(atTrueNanoseconds t: Int64) -> Int64 {
        var offset = parameters.offsetNanoseconds
        for step in parameters.steps where step.atNanoseconds <= t { offset += step.stepNanoseconds }
        if let period = unsynchronisedPeriod(containing: t) {
            offset += Int64(parameters.unsynchronisedDriftPPM * 1e-6 * Double(t - period.startNanoseconds))
        }
        return offset
    }

    /// The header the server sends at true time t: leap 3 and stratum 16 while
    /// unsynchronised, with root dispersion growing at 15 PPM (RFC 5905 PHI).
    public func header(atTrueNanoseconds t: Int64) -> ServerHeader {
        var header = ServerHeader(leap: 0, stratum: parameters.stratum, referenceID: parameters.referenceID,
                                  precision: parameters.precision, rootDelayNanoseconds: parameters.rootDelayNanoseconds,
                                  rootDispersionNanoseconds: parameters.rootDispersionNanoseconds)
        if let period = unsynchronisedPeriod(containing: t) {
            header.leap = 3
            header.stratum = 16
            header.rootDispersionNanoseconds += (t - period.startNanoseconds) / 1_000_000 * 15
        }
        return header
    }

    private func unsynchronisedPeriod(containing t: Int64) -> LabInterval? {
        for period in parameters.unsynchronised where period.contains(t) { return period }
        return nil
    }
}
