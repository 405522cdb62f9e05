import FeedforwardClock
import KernelStamps

/// One sample for a time daemon's reference-clock driver: the feedforward clock Ca and the
/// system clock (CLOCK_REALTIME) read in the same raw-counter bracket, so the daemon sees
/// exactly `sysoff` with the opposite sign (docs/published-clock.md, "Feeding chronyd, ntpd
/// and NTPsec").
public struct RefclockSample: Sendable, Equatable {
    /// CLOCK_REALTIME at the bracket's middle, Unix ns.
    public var systemNanoseconds: Int64
    /// Ca at the same counter, whole Unix ns, and its sub-nanosecond part.
    public var referenceNanoseconds: Int64
    public var referenceFraction: Double
    /// 0 no warning, 1 insert a second, 2 delete a second (the server's leap indicator).
    public var leap: Int32
    /// The aged hard bound at the sample, ns.
    public var maxErrorNanoseconds: Double

    /// The sample of `reading` under `parameters`, or nil when the clock must not feed a
    /// daemon: no estimate, unsynchronised (a clock event or a disruption), or the server's
    /// leap indicator says it is not synchronised.
    public init?(parameters: ClockParameters, reading: SystemClockReading) {
        let status = parameters.status(atCounter: reading.rawNanoseconds)
        guard status.isDisjoint(with: [.noEstimate, .unsynchronised]), parameters.leap < 3 else { return nil }
        let ca = parameters.absoluteTimeParts(atCounter: reading.rawNanoseconds)
        systemNanoseconds = reading.realtimeNanoseconds
        referenceNanoseconds = ca.nanoseconds
        referenceFraction = ca.fraction
        leap = Int32(parameters.leap)
        maxErrorNanoseconds = parameters.maxError(atCounter: reading.rawNanoseconds)
    }

    /// Ca − CLOCK_REALTIME at `systemNanoseconds` truncated to `unitNanoseconds`, seconds
    /// (the daemons' offset: positive when the system clock is behind).
    func offsetSeconds(fromSystemTruncatedTo unitNanoseconds: Int64) -> Double {
        let system = floorDivide(systemNanoseconds, unitNanoseconds) * unitNanoseconds
        return (Double(referenceNanoseconds &- system) + referenceFraction) / 1e9
    }

    /// log2 of the bound in seconds, rounded up, as NTP's precision field: the quality the
    /// daemon is told.
    var precisionExponent: Int32 {
        let seconds = maxErrorNanoseconds / 1e9
        guard seconds.isFinite, seconds > 0 else { return 0 }
        let up = Int(seconds.exponent) + (seconds.significand > 1 ? 1 : 0)
        return Int32(max(-30, min(0, up)))
    }
}

func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

/// chrony's SOCK refclock sample (the protocol gpsd also speaks), on LP64 Linux, 40 bytes:
/// struct timeval of the system time (8 + 8), the offset reference − system in seconds
/// (double), `pulse` (int, 0), `leap` (int), padding (int), magic 0x534f434b (int).
public enum ChronySockSampleLayout {
    public static let byteCount = 40
    public static let magic: Int32 = 0x534F_434B

    /// Writes `sample` into `buffer` (at least `byteCount` bytes), native byte order.
    public static func encode(_ sample: RefclockSample, into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= byteCount)
        let seconds = floorDivide(sample.systemNanoseconds, 1_000_000_000)
        let microseconds = (sample.systemNanoseconds - seconds * 1_000_000_000) / 1_000
        buffer.storeBytes(of: seconds, toByteOffset: 0, as: Int64.self)
        buffer.storeBytes(of: microseconds, toByteOffset: 8, as: Int64.self)
        buffer.storeBytes(of: sample.offsetSeconds(fromSystemTruncatedTo: 1_000), toByteOffset: 16, as: Double.self)
        buffer.storeBytes(of: Int32(0), toByteOffset: 24, as: Int32.self)
        buffer.storeBytes(of: sample.leap, toByteOffset: 28, as: Int32.self)
        buffer.storeBytes(of: Int32(0), toByteOffset: 32, as: Int32.self)
        buffer.storeBytes(of: magic, toByteOffset: 36, as: Int32.self)
    }
}

/// The NTP SHM segment (ntpd's `struct shmTime`, read by ntpd, NTPsec and chronyd) on LP64
/// Linux: key 0x4e545030 + unit, 96 bytes, written in mode 1 (count bumped before and after
/// the fields, `valid` set last) with nanosecond fields.
public enum NTPSharedMemoryLayout {
    public static let keyBase: Int32 = 0x4E54_5030
    public static let byteCount = 96
    static let mode = 0, count = 4, clockSeconds = 8, clockMicroseconds = 16, receiveSeconds = 24
    static let receiveMicroseconds = 32, leap = 36, precision = 40, samples = 44, valid = 48
    static let clockNanoseconds = 52, receiveNanoseconds = 56

    /// Writes `sample` into `segment` under the mode-1 protocol: the reference time is Ca,
    /// the receive time the system clock.
    public static func write(_ sample: RefclockSample, to segment: SharedMemorySegment) {
        let clock = splitNanoseconds(sample.referenceNanoseconds)
        let receive = splitNanoseconds(sample.systemNanoseconds)
        segment.store32(1, atByteOffset: mode)
        segment.store32(0, atByteOffset: valid)
        let started = segment.load32(atByteOffset: count) &+ 1
        segment.store32(started, atByteOffset: count)
        segment.fence()
        segment.store64(clock.seconds, atByteOffset: clockSeconds)
        segment.store32(Int32(clock.nanoseconds / 1_000), atByteOffset: clockMicroseconds)
        segment.store32(Int32(bitPattern: UInt32(clock.nanoseconds)), atByteOffset: clockNanoseconds)
        segment.store64(receive.seconds, atByteOffset: receiveSeconds)
        segment.store32(Int32(receive.nanoseconds / 1_000), atByteOffset: receiveMicroseconds)
        segment.store32(Int32(bitPattern: UInt32(receive.nanoseconds)), atByteOffset: receiveNanoseconds)
        segment.store32(sample.leap, atByteOffset: leap)
        segment.store32(sample.precisionExponent, atByteOffset: precision)
        segment.store32(0, atByteOffset: samples)
        segment.fence()
        segment.store32(started &+ 1, atByteOffset: count)
        segment.fence()
        segment.store32(1, atByteOffset: valid)
    }

    static func splitNanoseconds(_ unixNanoseconds: Int64) -> (seconds: Int64, nanoseconds: Int64) {
        let seconds = floorDivide(unixNanoseconds, 1_000_000_000)
        return (seconds, unixNanoseconds - seconds * 1_000_000_000)
    }
}

/// Where the client sends refclock samples: chronyd's SOCK and/or an NTP SHM unit.
public final class RefclockOutputs {
    private let socket: UnixDatagramSender?
    private let segment: SharedMemorySegment?
    private let buffer: UnsafeMutableRawBufferPointer
    private var lastSendFailure: Int32 = 0

    public init(socketPath: String?, sharedMemoryUnit: Int?) throws(NTPClientError) {
        do {
            socket = try socketPath.map { (path) throws(KernelError) in try UnixDatagramSender(path: path) }
            segment = try sharedMemoryUnit.map { (unit) throws(KernelError) in
                try SharedMemorySegment(key: NTPSharedMemoryLayout.keyBase &+ Int32(unit), byteCount: NTPSharedMemoryLayout.byteCount)
            }
        } catch {
            throw .kernel(error)
        }
        buffer = .allocate(byteCount: ChronySockSampleLayout.byteCount, alignment: 8)
    }

    deinit { buffer.deallocate() }

    public var isEmpty: Bool { socket == nil && segment == nil }

    /// Sends `sample` to every channel; a failed send is logged once per kind of failure
    /// (chronyd not started yet, restarted, ...) and polling goes on.
    public func send(_ sample: RefclockSample, log: (String) -> Void) {
        if let segment { NTPSharedMemoryLayout.write(sample, to: segment) }
        if let socket {
            ChronySockSampleLayout.encode(sample, into: buffer)
            do {
                try socket.send(UnsafeRawBufferPointer(buffer))
                lastSendFailure = 0
            } catch {
                if error.code != lastSendFailure { log("refclock sample not delivered: \(error)") }
                lastSendFailure = error.code
            }
        }
    }
}
