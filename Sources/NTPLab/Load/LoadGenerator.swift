import NTPPacket
import KernelStamps
import Randomness

/// How `runLoad` drives a server.
public struct LoadConfiguration: Sendable {
    public var target: SocketAddress
    /// Requests per second to offer; 0 = as fast as the server answers (closed loop with at
    /// most `maximumOutstanding` unanswered requests in flight).
    public var ratePerSecond: Double
    public var durationNanoseconds: Int64
    /// Client sockets. On IPv4 loopback each binds its own source address (127.0.0.2,
    /// 127.0.0.3, ..., or from 127.0.0.3 when the probe takes 127.0.0.2) so a server that
    /// steers by address sees distinct clients. 0: no load, only the probe, for as long as
    /// it takes to send all its requests.
    public var clients: Int
    public var batchSize: Int
    public var maximumOutstanding: Int
    /// A timing probe beside the load (nil: none).
    public var probe: ProbeConfiguration?

    public init(target: SocketAddress, ratePerSecond: Double = 0, durationNanoseconds: Int64 = 5_000_000_000,
                clients: Int = 16, batchSize: Int = 32, maximumOutstanding: Int = 2048, probe: ProbeConfiguration? = nil) {
        self.target = target
        self.probe = probe
        self.ratePerSecond = ratePerSecond
        self.durationNanoseconds = durationNanoseconds
        self.clients = clients
        self.batchSize = batchSize
        self.maximumOutstanding = maximumOutstanding
    }
}

/// What a load run measured. Only responses that answer a request we sent and still wait
/// for (right source, mode 4, origin = our random transmit timestamp, not yet answered)
/// count as answered.
public struct LoadReport: Sendable {
    public var sent: UInt64 = 0
    public var answered: UInt64 = 0
    /// Valid, matched RATE (or other) kiss-o'-death responses: not counted as answered.
    public var kisses: UInt64 = 0
    /// Datagrams that matched nothing outstanding or were not valid responses.
    public var rejected: UInt64 = 0
    public var durationNanoseconds: Int64 = 0
    /// Server's t3 − t2 (transmit − receive) over answered responses.
    public var serverDelayMedianNanoseconds: Int64 = 0
    public var serverDelayP99Nanoseconds: Int64 = 0
    /// Responses whose transmit field was earlier than their receive field (must be 0).
    public var negativeServerDelays: UInt64 = 0
    /// What the timing probe measured while the load ran (nil: no probe).
    public var probe: ProbeReport?

    public var offeredPerSecond: Double { durationNanoseconds > 0 ? Double(sent) * 1e9 / Double(durationNanoseconds) : 0 }
    public var answeredPerSecond: Double { durationNanoseconds > 0 ? Double(answered) * 1e9 / Double(durationNanoseconds) : 0 }
    public var lossFraction: Double { sent > 0 ? 1 - Double(answered + kisses) / Double(sent) : 0 }
}

/// A histogram of t3 − t2 in 10 ns bins up to 10 ms (and one overflow bin), allocated once.
struct DelayHistogram {
    static let binNanoseconds: Int64 = 10
    static let bins = 1_000_000
    var counts: [UInt64] = [UInt64](repeating: 0, count: DelayHistogram.bins + 1)
    var total: UInt64 = 0

    mutating func add(_ nanoseconds: Int64) {
        let bin = min(Int(max(0, nanoseconds) / DelayHistogram.binNanoseconds), DelayHistogram.bins)
        counts[bin] &+= 1
        total &+= 1
    }

    /// The value below which `fraction` of the samples lie (bin upper edge); 0 if empty.
    func quantile(_ fraction: Double) -> Int64 {
        guard total > 0 else { return 0 }
        let rank = UInt64((Double(total) * fraction).rounded(.up))
        var seen: UInt64 = 0
        for (bin, count) in counts.enumerated() {
            seen += count
            if seen >= max(rank, 1) { return Int64(bin + 1) * DelayHistogram.binNanoseconds }
        }
        return Int64(DelayHistogram.bins) * DelayHistogram.binNanoseconds
    }
}

/// Outstanding requests of one client socket: a ring indexed by the low bits of the
/// transmit timestamp we sent; the high bits are random, so a response matches only if its
/// origin equals the whole 64-bit value still stored (RFC 5905 §8's origin check).
final class OutstandingRing {
    static let bits = 12
    static let size = 1 << bits
    let values: UnsafeMutablePointer<UInt64>
    var sequence: UInt64 = 0
    init() {
        values = .allocate(capacity: OutstandingRing.size)
        values.initialize(repeating: 0, count: OutstandingRing.size)
    }
    deinit { values.deallocate() }
}

/// Sends NTP client requests from several sockets in sendmmsg batches and measures what
/// comes back. One thread; allocation only at setup.
public func runLoad(_ configuration: LoadConfiguration) throws(LabError) -> LoadReport {
    let loadEnabled = configuration.clients > 0
    let clientCount = max(1, configuration.clients)
    let batchSize = max(1, min(configuration.batchSize, 256))
    var sockets: [UDPSocket] = []
    var sendBatches: [SendBatch] = []
    var rings: [OutstandingRing] = []
    var options = UDPSocket.Options()
    options.nonBlocking = true
    options.receiveTimestamps = false
    options.receiveBufferBytes = 4 << 20
    options.sendBufferBytes = 4 << 20
    let loopbackIPv4 = configuration.target.ipv4Address.map { $0 >> 24 == 127 } ?? false
    let firstClientAddress: UInt32 = configuration.probe == nil ? 0x7f00_0002 : 0x7f00_0003
    for index in 0..<(loadEnabled ? clientCount : 0) {
        let local: SocketAddress
        if loopbackIPv4 {
            local = SocketAddress(ipv4: firstClientAddress &+ UInt32(index), port: 0)
        } else {
            local = configuration.target.family == .ipv4 ? .anyIPv4(port: 0) : .anyIPv6(port: 0)
        }
        do throws(KernelError) {
            sockets.append(try UDPSocket(bindingTo: local, options: options))
        } catch {
            throw LabError("open load client socket \(index) on \(local)", error)
        }
        sendBatches.append(SendBatch(capacity: batchSize, bufferSize: NTPHeader.byteCount))
        rings.append(OutstandingRing())
    }
    let receiveBatch = ReceiveBatch(capacity: 64, bufferSize: 256)
    var histogram = DelayHistogram()
    var report = LoadReport()
    var random = SeededRandom(seed: UInt64(truncatingIfNeeded: monotonicRawNanoseconds()))
    let target = configuration.target
    let probe = try configuration.probe.map { (probe) throws(LabError) in try RunningProbe(probe, target: target) }
    let start = monotonicRawNanoseconds()
    let end = start &+ configuration.durationNanoseconds
    var outstanding = 0
    var lastProgress = start
    var client = 0

    func receiveAll(_ index: Int) {
        let socket = sockets[index]
        while true {
            let count = (try? receiveBatch.receive(on: socket)) ?? 0
            if count == 0 { return }
            for i in 0..<count {
                guard let header = NTPHeaderBytes(receiveBatch.bytes(at: i)), receiveBatch.sourceAddress(at: i) == target,
                      header.modeBits == NTPMode.server.rawValue else { report.rejected &+= 1; continue }
                let origin = header.originTimestamp.rawValue
                let ring = rings[index]
                let slot = Int(origin & UInt64(OutstandingRing.size - 1))
                guard origin != 0, ring.values[slot] == origin else { report.rejected &+= 1; continue }
                ring.values[slot] = 0
                outstanding -= 1
                if header.stratum == 0 { report.kisses &+= 1; continue }
                report.answered &+= 1
                let delay = header.transmitTimestamp.nanoseconds(since: header.receiveTimestamp)
                if delay < 0 { report.negativeServerDelays &+= 1 }
                histogram.add(delay)
            }
            lastProgress = monotonicRawNanoseconds()
            if count < 64 { return }
        }
    }

    while loadEnabled {
        let now = monotonicRawNanoseconds()
        if now >= end { break }
        // How many may be sent now.
        var budget: Int
        if configuration.ratePerSecond > 0 {
            let due = UInt64(Double(now &- start) * configuration.ratePerSecond / 1e9)
            budget = due > report.sent ? Int(min(due - report.sent, UInt64(batchSize))) : 0
        } else {
            if outstanding > 0 && now &- lastProgress > 20_000_000 {
                // Nothing came back for 20 ms: count the requests in flight as lost.
                outstanding = 0
                lastProgress = now
            }
            budget = min(batchSize, configuration.maximumOutstanding - outstanding)
        }
        if budget > 0 {
            let batch = sendBatches[client]
            let ring = rings[client]
            for _ in 0..<budget {
                guard let buffer = batch.nextBuffer() else { break }
                let slot = ring.sequence & UInt64(OutstandingRing.size - 1)
                ring.sequence &+= 1
                if ring.values[Int(slot)] != 0 { outstanding -= 1 } // overwritten: lost
                var transmit = (random.next() & ~UInt64(OutstandingRing.size - 1)) | slot
                if transmit == 0 { transmit = 1 << 32 }
                ring.values[Int(slot)] = transmit
                let request = NTPMutableHeaderBytes(unsafeStart: buffer.baseAddress!)
                request.bytes.initializeMemory(as: UInt8.self, repeating: 0)
                request.setFirstByte(leapIndicatorBits: NTPLeapIndicator.noWarning.rawValue, version: 4, modeBits: NTPMode.client.rawValue)
                request.setPoll(6)
                request.setTimestamp(NTPTimestamp(rawValue: transmit), at: NTPHeaderLayout.transmitTimestampOffset)
                batch.commit(length: NTPHeader.byteCount, to: target)
            }
            let filled = batch.count
            let sent = (try? batch.send(on: sockets[client]).sent) ?? 0
            batch.removeAll()
            report.sent &+= UInt64(filled) // unsent ones count as offered and lost
            outstanding += sent
        }
        // Each socket is read once per round of sends: its answers have queued meanwhile,
        // so every recvmmsg returns a full batch instead of most returning nothing.
        receiveAll(client)
        client = (client + 1) % clientCount
        if budget == 0 && configuration.ratePerSecond > 0 {
            // Paced: sleep a little until the next request is due.
            sleepNanoseconds(50_000)
        }
    }
    // With no load the run lasts as long as the probe needs; with load, the probe ends with it.
    report.probe = probe?.finish(stopNow: loadEnabled)
    let measuredEnd = monotonicRawNanoseconds()
    // Collect stragglers for 100 ms (not counted in the duration).
    let drainEnd = measuredEnd &+ 100_000_000
    while monotonicRawNanoseconds() < drainEnd {
        for index in 0..<sockets.count { receiveAll(index) }
        sleepNanoseconds(1_000_000)
    }
    report.durationNanoseconds = measuredEnd &- start
    report.serverDelayMedianNanoseconds = histogram.quantile(0.5)
    report.serverDelayP99Nanoseconds = histogram.quantile(0.99)
    return report
}
