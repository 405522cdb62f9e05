#if canImport(Glibc)
import Glibc
#endif

/// The clocks KernelStamps reads. Kernel packet stamps are CLOCK_REALTIME; the feedforward
/// client counts in CLOCK_MONOTONIC_RAW, which is never stepped or slewed (docs/feedforward.md §1).
public enum ClockID: Sendable {
    case realtime
    case monotonic
    case monotonicRaw

    var id: clockid_t {
        switch self {
        case .realtime: return CLOCK_REALTIME
        case .monotonic: return CLOCK_MONOTONIC
        case .monotonicRaw: return CLOCK_MONOTONIC_RAW
        }
    }
}

/// clock_gettime of `clock` in integer nanoseconds.
@inline(__always)
public func clockNanoseconds(_ clock: ClockID) -> Int64 {
    var ts = timespec()
    clock_gettime(clock.id, &ts)
    return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
}

/// CLOCK_REALTIME, nanoseconds since 1970 (the domain of kernel packet stamps).
@inline(__always)
public func realtimeNanoseconds() -> Int64 { clockNanoseconds(.realtime) }

/// CLOCK_MONOTONIC_RAW, nanoseconds since boot: the feedforward raw counter.
@inline(__always)
public func monotonicRawNanoseconds() -> Int64 { clockNanoseconds(.monotonicRaw) }

/// clock_getres(2): the clock's resolution in nanoseconds.
public func clockResolutionNanoseconds(_ clock: ClockID) -> Int64 {
    var ts = timespec()
    clock_getres(clock.id, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// The offset between CLOCK_MONOTONIC_RAW and CLOCK_REALTIME at one moment, used to move a
/// kernel stamp from the realtime domain into the raw domain (docs/feedforward.md §1).
///
/// Measured by reading REALTIME, RAW, REALTIME back to back and taking the bracket with the
/// smallest width of a few tries; the raw read is paired with the midpoint of the realtime
/// reads. The conversion error is half the width plus the host's slew rate times the age of
/// the stamp (500 ppm × 100 µs = 50 ns at worst), so measure right after the syscall.
public struct ClockDomainShift: Sendable, Equatable {
    /// raw − realtime, nanoseconds.
    public let rawMinusRealtimeNanoseconds: Int64
    /// Width of the tightest REALTIME–REALTIME bracket: twice the bound on the pairing error.
    public let bracketWidthNanoseconds: Int64
    /// The raw reading of that bracket (when the shift was measured).
    public let rawNanoseconds: Int64

    public init(rawMinusRealtimeNanoseconds: Int64, bracketWidthNanoseconds: Int64, rawNanoseconds: Int64) {
        self.rawMinusRealtimeNanoseconds = rawMinusRealtimeNanoseconds
        self.bracketWidthNanoseconds = bracketWidthNanoseconds
        self.rawNanoseconds = rawNanoseconds
    }

    /// Measures the shift now (no allocation).
    public static func measure(tries: Int = 3) -> ClockDomainShift {
        var best = ClockDomainShift(rawMinusRealtimeNanoseconds: 0, bracketWidthNanoseconds: .max, rawNanoseconds: 0)
        for _ in 0..<max(1, tries) {
            let before = clockNanoseconds(.realtime)
            let raw = monotonicRawNanoseconds()
            let after = clockNanoseconds(.realtime)
            let width = after &- before
            // A negative width means REALTIME stepped backwards in between: discard.
            if width >= 0 && width < best.bracketWidthNanoseconds {
                let middle = before &+ width / 2
                best = ClockDomainShift(rawMinusRealtimeNanoseconds: raw &- middle, bracketWidthNanoseconds: width, rawNanoseconds: raw)
            }
        }
        return best
    }

    /// A CLOCK_REALTIME stamp (e.g. kernel RX/TX) expressed on CLOCK_MONOTONIC_RAW.
    @inline(__always)
    public func rawNanoseconds(fromRealtime realtime: Int64) -> Int64 { realtime &+ rawMinusRealtimeNanoseconds }

    /// The inverse: a raw reading expressed on CLOCK_REALTIME.
    @inline(__always)
    public func realtimeNanoseconds(fromRaw raw: Int64) -> Int64 { raw &- rawMinusRealtimeNanoseconds }
}

/// The system clock's precision for the NTP header (RFC 5905 §7.3: "log2 of the time to read
/// the clock", a signed exponent of seconds). Measured as the median of `samples` back-to-back
/// CLOCK_REALTIME read intervals, but never finer than clock_getres, rounded up (never claims
/// better precision than measured). Run at start, not in a hot path (allocates one array).
public func measuredClockPrecision(samples: Int = 1001) -> Int8 {
    let count = max(3, samples)
    var intervals = [Int64](repeating: 0, count: count)
    var previous = realtimeNanoseconds()
    for i in 0..<count {
        let now = realtimeNanoseconds()
        intervals[i] = now - previous
        previous = now
    }
    intervals.sort()
    let median = max(intervals[count / 2], clockResolutionNanoseconds(.realtime), 1)
    let exponent = ceil(log2(Double(median) * 1e-9))
    return Int8(clamping: Int(exponent))
}

/// Suspends the calling thread for about `nanoseconds` (nanosleep(2) on CLOCK_MONOTONIC;
/// resumed after a signal for the time left). The kernel adds its wake-up latency, tens of
/// microseconds to milliseconds on a busy host: for pacing, never for measuring.
public func sleepNanoseconds(_ nanoseconds: Int64) {
    guard nanoseconds > 0 else { return }
    var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
