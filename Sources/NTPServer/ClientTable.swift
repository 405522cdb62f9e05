import KernelValues

/// Per-address rate limit: a token bucket of `burst` requests refilled at one per
/// `intervalNanoseconds` (kept as one "theoretical arrival time", the GCRA form of a token
/// bucket, so an entry needs one Int64 and no division).
///
/// Defaults: one request per 2 s on average with a burst of 16. That is more lenient than
/// chronyd's `ratelimit` defaults (interval 8 s, burst 8) and ntpd's `discard average 3`
/// (8 s), because it is on by default: it must never bother a normal client (chrony or ntpd
/// poll every 64 s or slower; iburst sends 4–8 quick requests) and still cap a flood.
public struct RateLimit: Sendable, Equatable {
    public var intervalNanoseconds: Int64
    public var burst: Int64
    public init(intervalNanoseconds: Int64, burst: Int64) {
        precondition(intervalNanoseconds > 0 && burst > 0)
        self.intervalNanoseconds = intervalNanoseconds
        self.burst = burst
    }
    public static let standard = RateLimit(intervalNanoseconds: 2_000_000_000, burst: 16)
}

/// One client's state, shared by the rate limiter and interleaved mode.
struct ClientEntry {
    var keyHigh: UInt64 = 0
    var keyLow: UInt64 = 0
    /// Monotonic ns of the last request; 0 = slot empty.
    var lastSeen: Int64 = 0
    /// GCRA theoretical arrival time (monotonic ns).
    var theoreticalArrival: Int64 = 0
    /// When the last RATE kiss was sent (monotonic ns); Int64.min = never.
    var lastKiss: Int64 = .min
    /// RFC 9769: the receive timestamp of our last response (NTP raw), 0 = none.
    var savedReceive: UInt64 = 0
    /// The kernel TX stamp of that response (NTP raw), 0 = not (yet) known.
    var savedTransmit: UInt64 = 0
}

/// The bounded client table: a fixed-size open-addressing hash table allocated once.
/// Lookup probes `probeWindow` consecutive slots; a new client takes an empty slot in the
/// window or evicts the one seen longest ago, so memory never grows and a flood of spoofed
/// addresses only evicts idle clients. One per worker, never shared (no locks): the
/// listening sockets steer each client address to one worker (see `ServingLoop`).
public final class ClientTable: @unchecked Sendable {
    public let capacity: Int
    public static let probeWindow = 8
    private let entries: UnsafeMutablePointer<ClientEntry>
    private let mask: Int
    private let seed: UInt64
    /// Clients evicted to make room (a sign the table is too small for the client count).
    public private(set) var evictions: UInt64 = 0

    /// `capacity` is rounded up to a power of two (at least 16).
    public init(capacity: Int = 65_536, seed: UInt64 = 0x5bd1_e995_9e37_79b9) {
        var size = 16
        while size < capacity { size <<= 1 }
        self.capacity = size
        mask = size - 1
        self.seed = seed
        entries = .allocate(capacity: size)
        entries.initialize(repeating: ClientEntry(), count: size)
    }

    deinit { entries.deallocate() }

    /// Bytes held by the table: fixed for its whole life.
    public var memoryBytes: Int { capacity * MemoryLayout<ClientEntry>.stride }

    @inline(__always)
    func home(_ key: SocketAddress.Key) -> Int {
        var h = (key.high ^ seed) &* 0x9E37_79B9_7F4A_7C15
        h ^= key.low &+ (h >> 29)
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 32
        return Int(truncatingIfNeeded: h) & mask
    }

    /// The slot of `key`, claiming one (empty or least recently seen in the window) if the
    /// client is new. Marks it seen at `now`.
    @inline(__always)
    public func slot(for key: SocketAddress.Key, now: Int64) -> Int {
        let start = home(key)
        var victim = start
        var victimSeen = Int64.max
        for step in 0..<ClientTable.probeWindow {
            let index = (start + step) & mask
            let entry = entries + index
            if entry.pointee.lastSeen != 0 && entry.pointee.keyHigh == key.high && entry.pointee.keyLow == key.low {
                entry.pointee.lastSeen = max(now, 1)
                return index
            }
            if entry.pointee.lastSeen < victimSeen {
                victimSeen = entry.pointee.lastSeen
                victim = index
            }
        }
        if victimSeen != 0 { evictions &+= 1 }
        entries[victim] = ClientEntry(keyHigh: key.high, keyLow: key.low, lastSeen: max(now, 1),
                                      theoreticalArrival: now, lastKiss: .min, savedReceive: 0, savedTransmit: 0)
        return victim
    }

    /// Whether `slot` still belongs to `key` (it may have been evicted since).
    public func slotHolds(_ slot: Int, key: SocketAddress.Key) -> Bool {
        let entry = entries[slot & mask]
        return entry.lastSeen != 0 && entry.keyHigh == key.high && entry.keyLow == key.low
    }

    public enum RateDecision: Sendable, Equatable {
        case allow
        /// Over the limit; the first time this interval: answer with a RATE kiss.
        case kiss
        /// Over the limit and already kissed this interval: drop.
        case drop
    }

    /// The GCRA step: conforming if `now` is no earlier than TAT − (burst − 1) × interval;
    /// a conforming request pushes TAT one interval on. Non-conforming requests do not.
    @inline(__always)
    public func admit(slot: Int, now: Int64, limit: RateLimit) -> RateDecision {
        let entry = entries + slot
        let tat = max(entry.pointee.theoreticalArrival, now)
        if tat &- now <= (limit.burst &- 1) &* limit.intervalNanoseconds {
            entry.pointee.theoreticalArrival = tat &+ limit.intervalNanoseconds
            return .allow
        }
        if entry.pointee.lastKiss == .min || now &- entry.pointee.lastKiss >= limit.intervalNanoseconds {
            entry.pointee.lastKiss = now
            return .kiss
        }
        return .drop
    }

    /// RFC 9769 state of the client's last response: (receive, kernel TX), NTP raw, 0 = none.
    @inline(__always)
    public func savedTimestamps(slot: Int) -> (receive: UInt64, transmit: UInt64) {
        (entries[slot].savedReceive, entries[slot].savedTransmit)
    }

    /// Records a new response's receive timestamp; its TX stamp is not known yet.
    @inline(__always)
    public func saveResponse(slot: Int, receive: UInt64) {
        entries[slot].savedReceive = receive
        entries[slot].savedTransmit = 0
    }

    /// Records the kernel TX stamp of the response whose receive timestamp was `receive`,
    /// if the slot still describes that response (the client may have been evicted, or sent
    /// again, meanwhile). Returns whether it was stored.
    @discardableResult
    public func saveTransmit(slot: Int, receive: UInt64, transmit: UInt64) -> Bool {
        let entry = entries + (slot & mask)
        guard entry.pointee.lastSeen != 0, entry.pointee.savedReceive == receive, receive != 0 else { return false }
        entry.pointee.savedTransmit = transmit
        return true
    }
}
