import NTPPacket

/// A known transform of the time a client is served: server true time → served time.
///
/// Why: chronyd's clock cannot be transformed, so a scenario that changes the
/// client's clock (skew, erratic rate, migration) is applied instead to the time each client
/// is served, which puts both clients in the same relative situation. The relay rewrites the
/// server's receive and transmit timestamps by this function; truth follows it, so the lab
/// computes a client's error against `served(…)` of the host clock.
///
/// Piecewise linear in the server's time u, counted from `originUnixNanoseconds`:
/// `served(u) = u + offset + Σ rate_k · (time spent in segment k) + Σ jumps already passed`.
/// Segment 0 runs at `rateError` from the origin (and, linearly, before it); each change
/// adds its jump at its instant and sets the rate from there on. To emulate a client counter
/// that runs fast by s (+20%: s = 0.2), serve time at rate 1/(1+s): `rateError = 1/(1+s) − 1`.
/// Pure: a function of its fields and its argument.
public struct ServedTimeTransform: Sendable, Equatable {
    /// From `atNanoseconds` after the origin on: add `jumpNanoseconds`, run at `rateError`.
    public struct Change: Sendable, Equatable {
        public var atNanoseconds: Int64
        public var jumpNanoseconds: Int64
        public var rateError: Double
        public init(atNanoseconds: Int64, jumpNanoseconds: Int64, rateError: Double) {
            self.atNanoseconds = atNanoseconds
            self.jumpNanoseconds = jumpNanoseconds
            self.rateError = rateError
        }
    }

    public var originUnixNanoseconds: Int64
    public var offsetNanoseconds: Int64
    /// Fractional rate error of the served time before the first change (0.00001 = +10 PPM).
    public var rateError: Double
    /// In increasing `atNanoseconds` order, each at or after the origin (earlier ones are ignored).
    public var changes: [Change]

    public init(originUnixNanoseconds: Int64, offsetNanoseconds: Int64 = 0, rateError: Double = 0, changes: [Change] = []) {
        self.originUnixNanoseconds = originUnixNanoseconds
        self.offsetNanoseconds = offsetNanoseconds
        self.rateError = rateError
        self.changes = changes.sorted { $0.atNanoseconds < $1.atNanoseconds }
    }

    /// Serves the server's time unchanged.
    public static let identity = ServedTimeTransform(originUnixNanoseconds: 0)

    public var isIdentity: Bool { offsetNanoseconds == 0 && rateError == 0 && changes.allSatisfy { $0.jumpNanoseconds == 0 && $0.rateError == 0 } }

    /// Served minus server time at server time `u` (Unix ns): what the relay adds.
    public func correctionNanoseconds(atServerUnixNanoseconds u: Int64) -> Int64 {
        let elapsed = u &- originUnixNanoseconds
        var correction = Double(offsetNanoseconds)
        var rate = rateError
        var segmentStart: Int64 = 0
        var jumps: Int64 = 0
        for change in changes where change.atNanoseconds <= elapsed && change.atNanoseconds >= 0 {
            correction += rate * Double(change.atNanoseconds - segmentStart)
            jumps &+= change.jumpNanoseconds
            rate = change.rateError
            segmentStart = change.atNanoseconds
        }
        correction += rate * Double(elapsed - segmentStart)
        return Int64(correction.rounded()) &+ jumps
    }

    /// The time served at server time `u` (Unix ns).
    public func served(atServerUnixNanoseconds u: Int64) -> Int64 {
        u &+ correctionNanoseconds(atServerUnixNanoseconds: u)
    }
}

/// Rewriting a server's response on the wire (RFC 5905 §7.3 layout).
public enum ServedTimeRewriter {
    /// Byte offsets of the timestamps the server sets: reference, receive, transmit.
    /// The origin timestamp is the client's own and stays.
    static let serverTimestampOffsets = [NTPHeaderLayout.referenceTimestampOffset, NTPHeaderLayout.receiveTimestampOffset,
                                         NTPHeaderLayout.transmitTimestampOffset]

    /// Rewrites the reference, receive and transmit timestamps of a server-mode (4) or
    /// broadcast (5) packet by `transform`, each at its own value; zero fields stay zero.
    /// Works on the 64-bit NTP value directly, adding the correction in NTP units, so the
    /// sub-nanosecond part of each stamp survives. `pivotUnixNanoseconds` (the host clock
    /// now) resolves the NTP era. Returns false, leaving the bytes alone, for anything that
    /// is not a server response of at least 48 bytes. Allocates nothing.
    @discardableResult
    public static func rewrite(_ packet: UnsafeMutableRawBufferPointer, by transform: ServedTimeTransform,
                               pivotUnixNanoseconds: Int64) -> Bool {
        guard let header = NTPMutableHeaderBytes(packet) else { return false }
        let mode = header.reading.modeBits
        guard mode == NTPMode.server.rawValue || mode == NTPMode.broadcast.rawValue else { return false }
        for offset in serverTimestampOffsets {
            let stamp = header.reading.timestamp(at: offset)
            guard stamp.rawValue != 0 else { continue }
            let unix = stamp.unixNanoseconds(nearestTo: pivotUnixNanoseconds)
            let correction = transform.correctionNanoseconds(atServerUnixNanoseconds: unix)
            header.setTimestamp(NTPTimestamp(rawValue: stamp.rawValue &+ ntpUnits(ofNanoseconds: correction)), at: offset)
        }
        return true
    }

    /// Signed nanoseconds as a 32.32 NTP difference (two's complement), rounded to nearest.
    static func ntpUnits(ofNanoseconds nanoseconds: Int64) -> UInt64 {
        let seconds = nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : -((-nanoseconds + 999_999_999) / 1_000_000_000)
        let remainder = UInt64(nanoseconds - seconds * 1_000_000_000)  // 0 ..< 1e9
        let fraction = (remainder << 32 + 500_000_000) / 1_000_000_000
        return UInt64(bitPattern: seconds) << 32 &+ fraction
    }
}
