/// Which way a held packet goes when it is due.
public enum RelayDirection: UInt8, Sendable {
    /// Client → server: sent on the client's own upstream socket.
    case request
    /// Server → client: sent from the listening socket to the client's address.
    case response
}

/// A packet taken from a `DelayQueue`, with what was kept with it.
public struct HeldPacket: Sendable, Equatable {
    public var slot: Int
    public var direction: RelayDirection
    public var client: Int
    public var due: Int64
    public var arrival: Int64
    /// The delay the network model drew for it (its due time may add more: headroom, or
    /// the lateness of the request it answers).
    public var modelDelayNanoseconds: Int64
    /// From its arrival to when the relay read it.
    public var wakeUpNanoseconds: Int64
}

/// Packets held until their due time: a binary min-heap of (due, arrival order) over a pool
/// of fixed-size buffers allocated once, so holding and releasing a packet allocates nothing.
///
/// Pure: the caller supplies the times (CLOCK_MONOTONIC nanoseconds in the relay), so a
/// test drives it without a clock. Packets with equal due times leave in arrival order.
public struct DelayQueue: ~Copyable {
    public let capacity: Int
    public let bufferSize: Int
    private let storage: UnsafeMutableRawBufferPointer
    private let lengths: UnsafeMutableBufferPointer<Int>
    private let clients: UnsafeMutableBufferPointer<Int>
    private let directions: UnsafeMutableBufferPointer<RelayDirection>
    private let arrivalTimes: UnsafeMutableBufferPointer<Int64>
    private let modelDelays: UnsafeMutableBufferPointer<Int64>
    private let wakeUps: UnsafeMutableBufferPointer<Int64>
    private let heapDue: UnsafeMutableBufferPointer<Int64>
    private let heapOrder: UnsafeMutableBufferPointer<UInt64>
    private let heapSlot: UnsafeMutableBufferPointer<Int>
    private let freeSlots: UnsafeMutableBufferPointer<Int>
    private var freeCount: Int
    public private(set) var count = 0
    private var arrivals: UInt64 = 0

    public init(capacity: Int = 4096, bufferSize: Int = 2048) {
        precondition(capacity > 0 && bufferSize > 0)
        self.capacity = capacity
        self.bufferSize = bufferSize
        storage = .allocate(byteCount: capacity * bufferSize, alignment: 16)
        lengths = .allocate(capacity: capacity)
        clients = .allocate(capacity: capacity)
        directions = .allocate(capacity: capacity)
        arrivalTimes = .allocate(capacity: capacity)
        modelDelays = .allocate(capacity: capacity)
        wakeUps = .allocate(capacity: capacity)
        heapDue = .allocate(capacity: capacity)
        heapOrder = .allocate(capacity: capacity)
        heapSlot = .allocate(capacity: capacity)
        freeSlots = .allocate(capacity: capacity)
        for i in 0..<capacity { freeSlots[i] = capacity - 1 - i }
        freeCount = capacity
    }

    deinit {
        storage.deallocate()
        lengths.deallocate()
        clients.deallocate()
        directions.deallocate()
        arrivalTimes.deallocate()
        modelDelays.deallocate()
        wakeUps.deallocate()
        heapDue.deallocate()
        heapOrder.deallocate()
        heapSlot.deallocate()
        freeSlots.deallocate()
    }

    public var isFull: Bool { freeCount == 0 }
    /// The earliest due time held, if any.
    public var nextDue: Int64? { count > 0 ? heapDue[0] : nil }

    /// Holds a copy of `bytes` until `due`; false (packet dropped) when full or too long.
    /// `arrival`, `modelDelay` and `wakeUp` are kept with it (the relay measures the time
    /// each packet was held against what the model asked, and how late it read it).
    public mutating func enqueue(_ bytes: UnsafeRawBufferPointer, due: Int64, direction: RelayDirection, client: Int,
                                 arrival: Int64 = 0, modelDelay: Int64 = 0, wakeUp: Int64 = 0) -> Bool {
        guard freeCount > 0, bytes.count <= bufferSize else { return false }
        freeCount -= 1
        let slot = freeSlots[freeCount]
        if bytes.count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: storage[slot * bufferSize ..< slot * bufferSize + bytes.count])
                .copyMemory(from: bytes)
        }
        lengths[slot] = bytes.count
        clients[slot] = client
        directions[slot] = direction
        arrivalTimes[slot] = arrival
        modelDelays[slot] = modelDelay
        wakeUps[slot] = wakeUp
        var i = count
        count += 1
        let order = arrivals
        arrivals &+= 1
        // Sift up.
        while i > 0 {
            let parent = (i - 1) / 2
            if !DelayQueue.before(due, order, heapDue[parent], heapOrder[parent]) { break }
            heapDue[i] = heapDue[parent]; heapOrder[i] = heapOrder[parent]; heapSlot[i] = heapSlot[parent]
            i = parent
        }
        heapDue[i] = due; heapOrder[i] = order; heapSlot[i] = slot
        return true
    }

    /// Takes the earliest packet if it is due at `now`; hand the slot back with `release`.
    public mutating func popDue(now: Int64) -> HeldPacket? {
        guard count > 0, heapDue[0] <= now else { return nil }
        let slot = heapSlot[0], due = heapDue[0]
        count -= 1
        if count > 0 {
            let lastDue = heapDue[count], lastOrder = heapOrder[count], lastSlot = heapSlot[count]
            var i = 0
            while true {
                let left = 2 * i + 1
                if left >= count { break }
                var child = left
                let right = left + 1
                if right < count && DelayQueue.before(heapDue[right], heapOrder[right], heapDue[left], heapOrder[left]) { child = right }
                if !DelayQueue.before(heapDue[child], heapOrder[child], lastDue, lastOrder) { break }
                heapDue[i] = heapDue[child]; heapOrder[i] = heapOrder[child]; heapSlot[i] = heapSlot[child]
                i = child
            }
            heapDue[i] = lastDue; heapOrder[i] = lastOrder; heapSlot[i] = lastSlot
        }
        return HeldPacket(slot: slot, direction: directions[slot], client: clients[slot], due: due, arrival: arrivalTimes[slot],
                          modelDelayNanoseconds: modelDelays[slot], wakeUpNanoseconds: wakeUps[slot])
    }

    /// The held bytes of a popped slot (valid until `release`).
    public func bytes(_ slot: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: storage[slot * bufferSize ..< slot * bufferSize + lengths[slot]])
    }

    public mutating func release(_ slot: Int) {
        freeSlots[freeCount] = slot
        freeCount += 1
    }

    @inline(__always)
    private static func before(_ dueA: Int64, _ orderA: UInt64, _ dueB: Int64, _ orderB: UInt64) -> Bool {
        dueA < dueB || (dueA == dueB && orderA < orderB)
    }
}

/// Delays (or losses) for real packets from a `NetworkModel` (live runs).
///
/// The model's true time is the relay's CLOCK_MONOTONIC minus its start, so level shifts,
/// outages and bursts happen at the scenario's instants. Each direction's model is a forward
/// cursor, so a packet stamped slightly before the previous one (two sockets, one loop) is
/// treated as sent at the previous instant. Pure and deterministic for a given seed and
/// sequence of arrival times.
public struct RelayDelays: Sendable {
    public private(set) var network: NetworkModel
    public let startMonotonicNanoseconds: Int64
    private var lastRequestNanoseconds: Int64 = .min
    private var lastResponseNanoseconds: Int64 = .min

    public init(parameters: NetworkParameters, seed: UInt64, startMonotonicNanoseconds: Int64) {
        network = NetworkModel(parameters: parameters, seed: seed)
        self.startMonotonicNanoseconds = startMonotonicNanoseconds
    }

    /// Due time (monotonic ns) of a request that reached the relay at `arrival`, or nil if lost.
    public mutating func requestDue(arrivalMonotonicNanoseconds arrival: Int64) -> Int64? {
        let t = max(arrival - startMonotonicNanoseconds, lastRequestNanoseconds, 0)
        lastRequestNanoseconds = t
        return network.forwardDelay(sentAtNanoseconds: t).map { arrival + $0 }
    }

    /// Due time (monotonic ns) of a response that reached the relay at `arrival`, or nil if lost.
    public mutating func responseDue(arrivalMonotonicNanoseconds arrival: Int64) -> Int64? {
        let t = max(arrival - startMonotonicNanoseconds, lastResponseNanoseconds, 0)
        lastResponseNanoseconds = t
        return network.backwardDelay(sentAtNanoseconds: t).map { arrival + $0 }
    }
}
