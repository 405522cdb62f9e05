/// The relay measured as an instrument: how late it sent, and what path each client got.
///
/// Why: a client's offset is biased by half the path's asymmetry (RFC 5905 §8: forward and
/// backward delays are assumed equal), and no client can see it. The relay knows, for every
/// packet, when the kernel stamped its arrival, when it was sent on and what delay the model
/// drew for it, so the lab can say how much of a client's error is the path the relay
/// actually delivered rather than the model's.

/// Send lateness (send time − due time), or the relay's wake-up delay (read time − kernel
/// receive stamp), counted in fixed bins, so a run of any length keeps
/// its distribution in a few hundred integers: 1 µs wide below 100 µs, 100 µs wide below
/// 10 ms, then one bin for everything later. Quantiles are the upper edge of their bin.
/// Pure.
public struct LatenessHistogram: Sendable, Equatable {
    static let fineBins = 100
    static let fineWidthNanoseconds: Int64 = 1_000
    static let coarseBins = 99
    static let coarseWidthNanoseconds: Int64 = 100_000
    public static let binCount = fineBins + coarseBins + 1

    public private(set) var counts: [Int]
    public private(set) var total = 0
    public private(set) var maximumNanoseconds: Int64 = 0

    public init() { counts = [Int](repeating: 0, count: LatenessHistogram.binCount) }

    /// A copy that shares no storage with `other` (so the relay thread, which owns `other`,
    /// keeps adding to it without copying it).
    init(copying other: LatenessHistogram) {
        counts = other.counts.map { $0 }
        total = other.total
        maximumNanoseconds = other.maximumNanoseconds
    }

    /// The bin holding `lateness` (negative counts as 0: sent on time).
    static func bin(ofNanoseconds lateness: Int64) -> Int {
        let value = max(0, lateness)
        if value < Int64(fineBins) * fineWidthNanoseconds { return Int(value / fineWidthNanoseconds) }
        let coarse = (value - Int64(fineBins) * fineWidthNanoseconds) / coarseWidthNanoseconds
        return fineBins + Int(min(coarse, Int64(coarseBins)))
    }

    /// The largest lateness a bin holds (its exclusive upper edge); the last bin is open.
    static func upperEdgeNanoseconds(ofBin bin: Int) -> Int64 {
        if bin < fineBins { return Int64(bin + 1) * fineWidthNanoseconds }
        if bin < fineBins + coarseBins {
            return Int64(fineBins) * fineWidthNanoseconds + Int64(bin - fineBins + 1) * coarseWidthNanoseconds
        }
        return .max
    }

    /// Counts one send. Allocates nothing (the bins exist from `init`).
    public mutating func add(_ latenessNanoseconds: Int64) {
        counts[LatenessHistogram.bin(ofNanoseconds: latenessNanoseconds)] += 1
        total += 1
        maximumNanoseconds = max(maximumNanoseconds, latenessNanoseconds)
    }

    /// The lateness below which a share `q` of the sends were (bin resolution, never above
    /// the maximum seen); 0 when nothing was sent.
    public func quantileNanoseconds(_ q: Double) -> Int64 {
        guard total > 0 else { return 0 }
        let rank = max(1, Int((q * Double(total)).rounded(.up)))
        var seen = 0
        for (bin, count) in counts.enumerated() {
            seen += count
            if seen >= rank { return min(LatenessHistogram.upperEdgeNanoseconds(ofBin: bin), maximumNanoseconds) }
        }
        return maximumNanoseconds
    }

    public var medianNanoseconds: Int64 { quantileNanoseconds(0.5) }
    public var p99Nanoseconds: Int64 { quantileNanoseconds(0.99) }

    /// Non-empty bins as (upper edge ns, count), for printing.
    public var occupiedBins: [(upperEdgeNanoseconds: Int64, count: Int)] {
        counts.enumerated().filter { $0.element > 0 }.map { (LatenessHistogram.upperEdgeNanoseconds(ofBin: $0.offset), $0.element) }
    }
}

/// One exchange (a request and the response to it) as the relay handled it, times on
/// CLOCK_MONOTONIC. Arrivals are the kernel's receive stamps; departures are read just
/// before the send (on loopback the receiver's stamp is taken inside that send).
public struct RelayExchangeRecord: Sendable, Equatable {
    /// Which client (the relay's lane) the exchange belongs to.
    public var lane: Int
    /// The request's transmit timestamp, raw NTP 32.32: the origin its answer carries, so a
    /// client's or a probe's own view of the exchange can be matched to it.
    public var requestTransmitTimestamp: UInt64
    public var requestArrivalNanoseconds: Int64
    public var requestDepartureNanoseconds: Int64
    /// The delay the model drew for the request and for the response.
    public var requestModelDelayNanoseconds: Int64
    public var responseArrivalNanoseconds: Int64
    public var responseDepartureNanoseconds: Int64
    public var responseModelDelayNanoseconds: Int64

    public init(lane: Int, requestTransmitTimestamp: UInt64, requestArrivalNanoseconds: Int64, requestDepartureNanoseconds: Int64,
                requestModelDelayNanoseconds: Int64, responseArrivalNanoseconds: Int64, responseDepartureNanoseconds: Int64,
                responseModelDelayNanoseconds: Int64) {
        self.lane = lane
        self.requestTransmitTimestamp = requestTransmitTimestamp
        self.requestArrivalNanoseconds = requestArrivalNanoseconds
        self.requestDepartureNanoseconds = requestDepartureNanoseconds
        self.requestModelDelayNanoseconds = requestModelDelayNanoseconds
        self.responseArrivalNanoseconds = responseArrivalNanoseconds
        self.responseDepartureNanoseconds = responseDepartureNanoseconds
        self.responseModelDelayNanoseconds = responseModelDelayNanoseconds
    }

    /// (held forward − held backward)/2: the asymmetry the relay actually gave this exchange.
    public var heldAsymmetryNanoseconds: Int64 {
        ((requestDepartureNanoseconds - requestArrivalNanoseconds) - (responseDepartureNanoseconds - responseArrivalNanoseconds)) / 2
    }

    /// (drawn forward − drawn backward)/2: the asymmetry the model asked for.
    public var modelAsymmetryNanoseconds: Int64 { (requestModelDelayNanoseconds - responseModelDelayNanoseconds) / 2 }
}

/// One client's path as the relay delivered it, from the exchanges that client made. Pure.
public struct PathAsymmetry: Sendable, Equatable {
    public var exchanges: Int
    /// Median over the exchanges of the relay's own stamps' asymmetry.
    public var measuredNanoseconds: Int64
    /// Median over the same exchanges of the model's drawn asymmetry.
    public var modelNanoseconds: Int64
    /// Median over the exchanges of (measured − model): the asymmetry the relay added by
    /// sending one direction later than the other. 0 for a relay that kept the schedule.
    public var relayAddedNanoseconds: Int64

    public init(exchanges: Int, measuredNanoseconds: Int64, modelNanoseconds: Int64, relayAddedNanoseconds: Int64) {
        self.exchanges = exchanges
        self.measuredNanoseconds = measuredNanoseconds
        self.modelNanoseconds = modelNanoseconds
        self.relayAddedNanoseconds = relayAddedNanoseconds
    }

    /// From the records of one lane; nil when there are none.
    public init?(_ records: [RelayExchangeRecord]) {
        guard !records.isEmpty else { return nil }
        exchanges = records.count
        measuredNanoseconds = median(records.map(\.heldAsymmetryNanoseconds))
        modelNanoseconds = median(records.map(\.modelAsymmetryNanoseconds))
        relayAddedNanoseconds = median(records.map { $0.heldAsymmetryNanoseconds - $0.modelAsymmetryNanoseconds })
    }
}

/// The relay-only check: SNTP probes through the relay with the host clock at both ends.
/// A probe's offset is (forward − backward)/2 of its whole path (loopback hops, relay and
/// server included, RFC 5905 §8); minus the model's drawn asymmetry for the same exchange,
/// and minus what the same prober measured straight to the server (its own stamping and the
/// server's, which every client of that server shares), it is what the relay adds to the
/// scenario. Pure.
public struct ProbeCalibration: Sendable, Equatable {
    public var probes: Int
    /// Median over the probes of (offset − the model's asymmetry for that exchange), less
    /// the direct path's asymmetry.
    public var labAddedNanoseconds: Int64
    /// The median probe offset (the path's asymmetry as a client would be biased by it).
    public var medianOffsetNanoseconds: Int64

    public init(probes: Int, labAddedNanoseconds: Int64, medianOffsetNanoseconds: Int64) {
        self.probes = probes
        self.labAddedNanoseconds = labAddedNanoseconds
        self.medianOffsetNanoseconds = medianOffsetNanoseconds
    }

    /// Matches each probe (its request's transmit timestamp and SNTP offset) to the relay's
    /// record of the same exchange; probes without a record are left out. Nil when none match.
    public init?(probes: [(requestTransmitTimestamp: UInt64, offsetNanoseconds: Int64)], records: [RelayExchangeRecord],
                 directAsymmetryNanoseconds: Int64 = 0) {
        var byTransmit: [UInt64: RelayExchangeRecord] = [:]
        for record in records { byTransmit[record.requestTransmitTimestamp] = record }
        let matched = probes.compactMap { probe in byTransmit[probe.requestTransmitTimestamp].map { (probe.offsetNanoseconds, $0) } }
        guard !matched.isEmpty else { return nil }
        self.probes = matched.count
        labAddedNanoseconds = median(matched.map { $0.0 - $0.1.modelAsymmetryNanoseconds }) - directAsymmetryNanoseconds
        medianOffsetNanoseconds = median(matched.map(\.0))
    }
}

/// The lower median of a non-empty list (an actual value, not a mean of two).
func median(_ values: [Int64]) -> Int64 {
    let sorted = values.sorted()
    return sorted[(sorted.count - 1) / 2]
}

/// What the relay thread records as it goes: lateness and wake-up histograms per direction and a ring
/// of the last `capacity` exchanges. Storage is allocated once; recording allocates nothing.
/// Lives behind the relay's lock; readers take copies (`snapshot`).
struct RelayLog: ~Copyable {
    var requestLateness = LatenessHistogram()
    var responseLateness = LatenessHistogram()
    var requestWakeUp = LatenessHistogram()
    var responseWakeUp = LatenessHistogram()
    /// Packets whose arrival was handled only after their departure time had passed (the
    /// relay woke too late to keep the model's delay), per direction.
    var requestsPastDeparture = 0
    var responsesPastDeparture = 0
    private let records: UnsafeMutableBufferPointer<RelayExchangeRecord>
    private var written = 0

    init(capacity: Int) {
        records = .allocate(capacity: max(1, capacity))
    }

    deinit { records.deallocate() }

    mutating func record(_ exchange: RelayExchangeRecord) {
        records.initializeElement(at: written % records.count, to: exchange)
        written += 1
    }

    /// The records still held, oldest first.
    func exchangeRecords() -> [RelayExchangeRecord] {
        let held = min(written, records.count)
        return (0..<held).map { records[(written - held + $0) % records.count] }
    }

    var exchangesRecorded: Int { written }
}
