import Synchronization
import NTPPacket
import KernelStamps
import Randomness

/// How the timing probe that runs beside a load asks the server for the time.
///
/// The probe is an ordinary basic-mode client (RFC 5905 §8) on its own source address,
/// one request in flight, that takes t1 from the kernel's software TX stamp and t4 from the
/// kernel's RX stamp, so its own scheduling does not enter the figures. What is left is the
/// path and the server's t2 and t3: a server that claims a t3 earlier than the moment the
/// response really leaves shows it here as a longer RTT and a negative offset.
public struct ProbeConfiguration: Sendable {
    /// The probe's own address (on IPv4 loopback the load uses other addresses).
    public var source: SocketAddress
    public var count: Int
    public var intervalNanoseconds: Int64
    /// A response later than this is counted lost.
    public var timeoutNanoseconds: Int64
    /// Time to let the load settle before the first probe.
    public var startDelayNanoseconds: Int64

    public init(source: SocketAddress, count: Int = 400, intervalNanoseconds: Int64 = 10_000_000,
                timeoutNanoseconds: Int64 = 100_000_000, startDelayNanoseconds: Int64 = 500_000_000) {
        self.source = source
        self.count = count
        self.intervalNanoseconds = intervalNanoseconds
        self.timeoutNanoseconds = timeoutNanoseconds
        self.startDelayNanoseconds = startDelayNanoseconds
    }
}

/// What the probe measured, RFC 5905 §8: offset = ((t2 − t1) + (t3 − t4)) / 2 and
/// RTT = (t4 − t1) − (t3 − t2), all in nanoseconds.
public struct ProbeReport: Sendable, Equatable {
    public var sent = 0
    public var answered = 0
    /// Exchanges where the kernel gave no TX or RX stamp and a user-space clock read stood in.
    public var userSpaceStamps = 0
    public var roundTripMinimumNanoseconds: Int64 = 0
    public var roundTripMedianNanoseconds: Int64 = 0
    public var roundTripP99Nanoseconds: Int64 = 0
    public var offsetP1Nanoseconds: Int64 = 0
    public var offsetMedianNanoseconds: Int64 = 0
    public var offsetP99Nanoseconds: Int64 = 0
    /// The server's t3 − t2 as the probe saw it.
    public var serverDelayMedianNanoseconds: Int64 = 0

    public init() {}

    /// Summarises measured exchanges (order does not matter).
    public init(sent: Int, roundTrips: [Int64], offsets: [Int64], serverDelays: [Int64], userSpaceStamps: Int) {
        self.sent = sent
        answered = roundTrips.count
        self.userSpaceStamps = userSpaceStamps
        let rtt = roundTrips.sorted(), offset = offsets.sorted(), delay = serverDelays.sorted()
        roundTripMinimumNanoseconds = rtt.first ?? 0
        roundTripMedianNanoseconds = quantile(rtt, 0.5)
        roundTripP99Nanoseconds = quantile(rtt, 0.99)
        offsetP1Nanoseconds = quantile(offset, 0.01)
        offsetMedianNanoseconds = quantile(offset, 0.5)
        offsetP99Nanoseconds = quantile(offset, 0.99)
        serverDelayMedianNanoseconds = quantile(delay, 0.5)
    }
}

/// The value at rank ⌈fraction·n⌉ of sorted values (nearest rank); 0 when empty.
func quantile(_ sorted: [Int64], _ fraction: Double) -> Int64 {
    guard !sorted.isEmpty else { return 0 }
    let rank = max(1, Int((Double(sorted.count) * fraction).rounded(.up)))
    return sorted[min(rank, sorted.count) - 1]
}

/// One probe exchange's four timestamps turned into the RFC 5905 §8 figures.
struct ProbeExchange: Equatable {
    var roundTripNanoseconds: Int64
    var offsetNanoseconds: Int64
    var serverDelayNanoseconds: Int64

    init(t1: Int64, t2: Int64, t3: Int64, t4: Int64) {
        roundTripNanoseconds = (t4 - t1) - (t3 - t2)
        offsetNanoseconds = ((t2 - t1) + (t3 - t4)) / 2
        serverDelayNanoseconds = t3 - t2
    }
}

/// A probe running on its own thread while the caller runs the load; `finish()` stops it
/// (if still probing) and returns what it measured.
final class RunningProbe: @unchecked Sendable {
    private let stopRequested = Atomic<Bool>(false)
    private let result = Mutex(ProbeReport())
    private var thread: StartedThread?

    init(_ configuration: ProbeConfiguration, target: SocketAddress) throws(LabError) {
        var options = UDPSocket.Options()
        options.receiveTimestamps = true
        options.transmitTimestamps = true
        options.receiveTimeoutNanoseconds = 10_000_000
        let socket: UDPSocket
        do throws(KernelError) { socket = try UDPSocket(bindingTo: configuration.source, options: options) } catch {
            throw LabError("open probe socket on \(configuration.source)", error)
        }
        do throws(KernelError) {
            thread = try StartedThread(ThreadOptions(name: "ntplab-probe")) { [self] in
                let report = probe(socket, configuration, target)
                result.withLock { $0 = report }
            }
        } catch {
            throw LabError("start the probe thread", error)
        }
    }

    /// Stops the probe if `stopNow` (else lets it send all its requests) and returns its report.
    func finish(stopNow: Bool = true) -> ProbeReport {
        if stopNow { stopRequested.store(true, ordering: .releasing) }
        thread?.join()
        return result.withLock { $0 }
    }

    private func stopping() -> Bool { stopRequested.load(ordering: .acquiring) }

    private func probe(_ socket: UDPSocket, _ configuration: ProbeConfiguration, _ target: SocketAddress) -> ProbeReport {
        var roundTrips: [Int64] = [], offsets: [Int64] = [], delays: [Int64] = []
        roundTrips.reserveCapacity(configuration.count)
        offsets.reserveCapacity(configuration.count)
        delays.reserveCapacity(configuration.count)
        var random = SeededRandom(seed: UInt64(truncatingIfNeeded: monotonicRawNanoseconds()) ^ 0x70_726f_6265)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buffer.deallocate() }
        var sent = 0, userSpace = 0
        let start = monotonicRawNanoseconds() &+ configuration.startDelayNanoseconds
        while monotonicRawNanoseconds() < start {
            if stopping() { return ProbeReport() }
            sleepNanoseconds(10_000_000)
        }
        for index in 0..<configuration.count {
            if stopping() { break }
            let due = start &+ Int64(index) &* configuration.intervalNanoseconds
            sleepNanoseconds(due &- monotonicRawNanoseconds())
            // A random transmit timestamp: the response must echo it as its origin (RFC 5905 §8).
            var transmit = random.next()
            if transmit == 0 { transmit = 1 }
            let request = NTPHeader(version: 4, mode: .client, transmitTimestamp: NTPTimestamp(rawValue: transmit))
            _ = try? request.encode(into: buffer)
            let userT1 = realtimeNanoseconds()
            let key: UInt32
            do throws(KernelError) { key = try socket.send(UnsafeRawBufferPointer(rebasing: buffer[0..<NTPHeader.byteCount]), to: target) } catch {
                continue
            }
            sent += 1
            var t1 = userT1
            var kernelStamps = true
            let deadline = monotonicRawNanoseconds() &+ configuration.timeoutNanoseconds
            var answer: (header: NTPHeader, t4: Int64)?
            while answer == nil && monotonicRawNanoseconds() < deadline {
                guard let datagram = try? socket.receive(into: buffer) else { continue }
                guard datagram.source == target,
                      let header = try? NTPHeader(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<datagram.byteCount])),
                      header.mode == .server, header.stratum != 0, header.originTimestamp.rawValue == transmit else { continue }
                if let stamp = datagram.receiveRealtimeNanoseconds {
                    answer = (header, stamp)
                } else {
                    answer = (header, realtimeNanoseconds())
                    kernelStamps = false
                }
            }
            // The TX stamp was queued as the request left; older ones (a lost exchange) are skipped.
            var found = false
            while let stamp = try? socket.receiveTransmitTimestamp() {
                if stamp.id == key { t1 = stamp.realtimeNanoseconds; found = true }
            }
            if !found { kernelStamps = false }
            guard let (header, t4) = answer else { continue }
            if !kernelStamps { userSpace += 1 }
            let exchange = ProbeExchange(t1: t1, t2: header.receiveTimestamp.unixNanoseconds(nearestTo: t1),
                                         t3: header.transmitTimestamp.unixNanoseconds(nearestTo: t1), t4: t4)
            roundTrips.append(exchange.roundTripNanoseconds)
            offsets.append(exchange.offsetNanoseconds)
            delays.append(exchange.serverDelayNanoseconds)
        }
        socket.close()
        return ProbeReport(sent: sent, roundTrips: roundTrips, offsets: offsets, serverDelays: delays, userSpaceStamps: userSpace)
    }
}
