import KernelStamps
import Synchronization

/// What an impairment relay does: the network model it applies and the served-time transform.
public struct RelayConfiguration: Sendable {
    /// Where clients send; port 0 picks a free one (read `ImpairmentRelay.listenAddress`).
    public var listenAddress: SocketAddress = .loopbackIPv4(port: 0)
    /// The server the relay forwards to.
    public var upstreamAddress: SocketAddress
    /// Delays, loss, level shifts and outages: forward applies to requests, backward to responses.
    public var network: NetworkParameters
    public var seed: UInt64 = 1
    /// Applied to the server's timestamps in every response (identity: left alone).
    public var transform: ServedTimeTransform = .identity
    /// The scenario's time zero on CLOCK_MONOTONIC; nil: when `start()` is called. Give two
    /// relays the same zero to put two clients through the same scenario instants.
    public var startMonotonicNanoseconds: Int64? = nil
    /// Packets held at once; more are dropped and counted as overflow.
    public var queueCapacity: Int = 4096
    /// Distinct client addresses served (each gets its own upstream socket).
    public var maximumClients: Int = 256
    /// Poll the sockets without ever sleeping, at normal (not real-time) policy, nice −20. On a
    /// virtual machine an idle thread takes 40 µs to over 1 ms to wake for a packet (measured
    /// here), more than a LAN's one-way delay, so a sleeping relay delivers late by that much,
    /// unevenly per direction: path asymmetry the scenario does not have. Spinning keeps a
    /// core busy for the run; at normal priority the lab's real-time threads still preempt it.
    public var busyPolling = false

    public init(upstreamAddress: SocketAddress, network: NetworkParameters) {
        self.upstreamAddress = upstreamAddress
        self.network = network
    }
}

/// What the relay has done so far.
public struct RelayCounters: Sendable, Equatable {
    public var requestsReceived = 0
    public var requestsForwarded = 0
    /// Lost by the model (loss or outage).
    public var requestsDropped = 0
    public var responsesReceived = 0
    public var responsesForwarded = 0
    public var responsesDropped = 0
    /// Responses whose server timestamps were rewritten by the transform.
    public var responsesRewritten = 0
    /// Dropped because the queue was full, the client table was full, or a packet too long.
    public var overflowDrops = 0
    public var sendErrors = 0
    public var clients = 0
    /// Client slots given to a new source address because the table was full.
    public var recycledClientSlots = 0
    /// Smallest and largest delay the model assigned (due − arrival), per direction, ns.
    public var minimumRequestDelayNanoseconds: Int64 = .max
    public var maximumRequestDelayNanoseconds: Int64 = 0
    public var minimumResponseDelayNanoseconds: Int64 = .max
    public var maximumResponseDelayNanoseconds: Int64 = 0
    /// Largest lateness of a send after its due time: how well the relay kept the schedule.
    public var maximumLatenessNanoseconds: Int64 = 0
    /// Summed lateness per direction. Their means' difference, halved, is roughly the
    /// asymmetry this relay added beyond the model, a bias in its client's offset.
    public var requestLatenessTotalNanoseconds: Int64 = 0
    public var responseLatenessTotalNanoseconds: Int64 = 0
    /// Mean lateness of forwarded requests and responses (0 before any was sent).
    public var meanRequestLatenessNanoseconds: Int64 {
        requestsForwarded == 0 ? 0 : requestLatenessTotalNanoseconds / Int64(requestsForwarded)
    }
    public var meanResponseLatenessNanoseconds: Int64 {
        responsesForwarded == 0 ? 0 : responseLatenessTotalNanoseconds / Int64(responsesForwarded)
    }
    public init() {}

    /// Widens `direction`'s range of model delays (due − arrival) to include `delayNanoseconds`.
    mutating func recordModelDelay(_ delayNanoseconds: Int64, _ direction: RelayDirection) {
        switch direction {
        case .request:
            minimumRequestDelayNanoseconds = min(minimumRequestDelayNanoseconds, delayNanoseconds)
            maximumRequestDelayNanoseconds = max(maximumRequestDelayNanoseconds, delayNanoseconds)
        case .response:
            minimumResponseDelayNanoseconds = min(minimumResponseDelayNanoseconds, delayNanoseconds)
            maximumResponseDelayNanoseconds = max(maximumResponseDelayNanoseconds, delayNanoseconds)
        }
    }
}

/// A UDP proxy on loopback that applies a `NetworkModel` to real packets and can rewrite the
/// time a server serves (in user space: netem needs privileges and a kernel module that an
/// unprivileged lab cannot count on).
///
/// - Each client source address gets its own upstream socket, so responses go back to the
///   client that asked, and the server sees one peer per client.
/// - A packet's arrival is its kernel RX stamp (SO_TIMESTAMPNS, CLOCK_REALTIME) moved into
///   CLOCK_MONOTONIC, so the relay's own wake-up latency does not add to the delay; it is
///   held in a `DelayQueue` until arrival + the model's delay and then sent. Scheduling is on
///   CLOCK_MONOTONIC (never stepped). poll(2) only resolves milliseconds, so within 2 ms of a
///   due time the loop sleeps in slices of at most 100 µs and polls without waiting.
/// - The delay is added on top of loopback's own few µs per hop (two extra hops through
///   the relay); the model's minimum is a floor, not an exact value.
/// - Runs on its own thread from `start()` until `stop()`; `counters` may be read any time
///   (published before each wait, so they are current whenever the relay is idle).
public final class ImpairmentRelay: @unchecked Sendable {
    public let configuration: RelayConfiguration
    /// The bound listening address (the port resolved when 0 was asked for).
    public let listenAddress: SocketAddress
    /// The scenario's time zero on CLOCK_MONOTONIC, fixed by `start()`.
    public private(set) var startMonotonicNanoseconds: Int64 = 0

    private let listener: UDPSocket
    private let wakeup: Wakeup
    private let stopRequested = Atomic<Bool>(false)
    private let published = Mutex(RelayCounters())
    private var thread: StartedThread? = nil

    // Relay-thread state: touched only by the relay thread between start() and stop().
    private var queue: DelayQueue
    private var delays: RelayDelays
    private var local = RelayCounters()
    private var clientIndex: [SocketAddress: Int] = [:]
    private var clientAddresses: [SocketAddress] = []
    private var upstreams: [UDPSocket] = []
    private var nextRecycledSlot = 0
    private var spareUpstream: UDPSocket? = nil
    /// The wakeup, the listener, then one entry per upstream slot.
    private let pollSet: PollSet
    private let receiveBuffer: UnsafeMutableRawBufferPointer

    public init(_ configuration: RelayConfiguration) throws(LabError) {
        self.configuration = configuration
        var options = UDPSocket.Options()
        options.nonBlocking = true
        options.receiveTimestamps = true
        options.receiveBufferBytes = 1 << 20
        do {
            listener = try UDPSocket(bindingTo: configuration.listenAddress, options: options)
            listenAddress = try listener.localAddress()
            wakeup = try Wakeup()
        } catch {
            throw LabError("relay: cannot listen on \(configuration.listenAddress)", error)
        }
        queue = DelayQueue(capacity: max(1, configuration.queueCapacity))
        delays = RelayDelays(parameters: configuration.network, seed: configuration.seed, startMonotonicNanoseconds: 0)
        pollSet = PollSet(capacity: max(1, configuration.maximumClients) + 2)
        pollSet.watch(wakeup.fileDescriptor, at: 0)
        pollSet.watch(listener.fileDescriptor, at: 1)
        receiveBuffer = .allocate(byteCount: 2048, alignment: 16)
    }

    deinit {
        stop()
        listener.close()
        for socket in upstreams { socket.close() }
        spareUpstream?.close()
        receiveBuffer.deallocate()
    }

    /// What the relay has done so far (updated once per loop pass).
    public var counters: RelayCounters { published.withLock { $0 } }

    /// Starts the relay thread. Call once.
    public func start() throws(LabError) {
        guard thread == nil else { return }
        startMonotonicNanoseconds = configuration.startMonotonicNanoseconds ?? clockNanoseconds(.monotonic)
        delays = RelayDelays(parameters: configuration.network, seed: configuration.seed,
                             startMonotonicNanoseconds: startMonotonicNanoseconds)
        // A spinning real-time thread would starve the lab's other threads and be
        // throttled by the kernel (sched_rt_runtime_us) for tens of milliseconds at a time.
        // Normal policy at nice −20 instead (when permitted): the lab's real-time threads
        // preempt it, and other work on the machine gets only short slices of its core.
        let scheduling: ThreadScheduling = configuration.busyPolling ? .normal(nice: -20) : .inherited
        do throws(KernelError) {
            thread = try StartedThread(ThreadOptions(name: "lab-relay", scheduling: scheduling)) { self.runLoop() }
        } catch {
            throw LabError("relay: cannot start its thread", error)
        }
    }

    /// Stops the relay thread and waits for it; held packets are discarded. Idempotent.
    public func stop() {
        guard let thread else { return }
        stopRequested.store(true, ordering: .releasing)
        wakeup.signal()
        thread.join()
        self.thread = nil
    }

    // MARK: - The relay thread

    private func runLoop() {
        if configuration.busyPolling {
            while !stopRequested.load(ordering: .acquiring) {
                var active = sendDuePackets()
                if waitForPackets(timeoutMilliseconds: 0) > 0 {
                    receivePackets()
                    active = true
                }
                // Idle passes touch nothing shared: they are millions a second.
                if active { published.withLock { $0 = local } } else if queue.count == 0 { prepareSpareUpstream() }
            }
            published.withLock { $0 = local }
            return
        }
        while !stopRequested.load(ordering: .acquiring) {
            sendDuePackets()
            prepareSpareUpstream()
            published.withLock { $0 = local }  // before a wait that may last until the next packet
            let now = clockNanoseconds(.monotonic)
            var timeoutMilliseconds: Int32 = -1
            var sliceNanoseconds: Int64 = 0
            if let due = queue.nextDue {
                let wait = due - now
                if wait > 2_000_000 {
                    timeoutMilliseconds = Int32(clamping: (wait - 1_000_000) / 1_000_000)
                } else {
                    timeoutMilliseconds = 0
                    sliceNanoseconds = min(max(wait, 0), 100_000)
                }
            }
            let ready = waitForPackets(timeoutMilliseconds: timeoutMilliseconds)
            if ready == 0 && sliceNanoseconds > 0 {
                sleepNanoseconds(sliceNanoseconds)
            }
            if ready > 0 { receivePackets() }
        }
        published.withLock { $0 = local }
    }

    /// poll(2) over the wakeup, the listener and every upstream socket; returns how many are
    /// ready. The descriptor array is kept up to date as slots change (`watchUpstream`), not
    /// rebuilt here: a busy-polling relay calls this millions of times a second.
    private func waitForPackets(timeoutMilliseconds: Int32) -> Int {
        pollSet.wait(count: upstreams.count + 2, timeoutMilliseconds: timeoutMilliseconds)
    }

    private func receivePackets() {
        if pollSet.isReady(1) {
            while let datagram = try? listener.receive(into: receiveBuffer) {
                local.requestsReceived += 1
                guard let source = datagram.source, !datagram.truncated else { local.overflowDrops += 1; continue }
                let arrival = arrivalMonotonic(datagram)
                guard let client = clientSlot(for: source) else { local.overflowDrops += 1; continue }
                guard let due = delays.requestDue(arrivalMonotonicNanoseconds: arrival) else {
                    local.requestsDropped += 1
                    continue
                }
                local.recordModelDelay(due - arrival, .request)
                let bytes = UnsafeRawBufferPointer(rebasing: receiveBuffer[0..<datagram.byteCount])
                if !queue.enqueue(bytes, due: due, direction: .request, client: client) { local.overflowDrops += 1 }
            }
        }
        for i in 0..<upstreams.count where pollSet.isReady(i + 2) {
            while let datagram = try? upstreams[i].receive(into: receiveBuffer) {
                local.responsesReceived += 1
                if datagram.truncated { local.overflowDrops += 1; continue }
                let arrival = arrivalMonotonic(datagram)
                guard let due = delays.responseDue(arrivalMonotonicNanoseconds: arrival) else {
                    local.responsesDropped += 1
                    continue
                }
                local.recordModelDelay(due - arrival, .response)
                let packet = UnsafeMutableRawBufferPointer(rebasing: receiveBuffer[0..<datagram.byteCount])
                if !configuration.transform.isIdentity,
                   ServedTimeRewriter.rewrite(packet, by: configuration.transform, pivotUnixNanoseconds: realtimeNanoseconds()) {
                    local.responsesRewritten += 1
                }
                if !queue.enqueue(UnsafeRawBufferPointer(packet), due: due, direction: .response, client: i) {
                    local.overflowDrops += 1
                }
            }
        }
        if pollSet.isReady(0) { _ = wakeup.drain() }
    }

    /// Sends every packet whose time has come; true when there was one.
    @discardableResult
    private func sendDuePackets() -> Bool {
        var sentAny = false
        while let packet = queue.popDue(now: clockNanoseconds(.monotonic)) {
            // Before the send: loopback delivers inside sendmsg, and the receiver's kernel
            // stamp is taken early in it, so the call's own duration is not lateness.
            let lateness = clockNanoseconds(.monotonic) - packet.due
            let bytes = UnsafeRawBufferPointer(queue.bytes(packet.slot))
            do {
                switch packet.direction {
                case .request:
                    try upstreams[packet.client].send(bytes)
                    local.requestsForwarded += 1
                case .response:
                    try listener.send(bytes, to: clientAddresses[packet.client])
                    local.responsesForwarded += 1
                }
            } catch {
                local.sendErrors += 1
            }
            local.maximumLatenessNanoseconds = max(local.maximumLatenessNanoseconds, lateness)
            switch packet.direction {
            case .request: local.requestLatenessTotalNanoseconds += lateness
            case .response: local.responseLatenessTotalNanoseconds += lateness
            }
            queue.release(packet.slot)
            sentAny = true
        }
        return sentAny
    }

    /// The kernel RX stamp moved from CLOCK_REALTIME to CLOCK_MONOTONIC by reading both now.
    private func arrivalMonotonic(_ datagram: ReceivedDatagram) -> Int64 {
        // Realtime first: the age is then never overestimated, so no delay comes out short.
        let realtimeNow = realtimeNanoseconds()
        let monotonicNow = clockNanoseconds(.monotonic)
        guard let stamp = datagram.receiveRealtimeNanoseconds else { return monotonicNow }
        return monotonicNow - max(0, realtimeNow - stamp)
    }

    /// The client's slot, giving it an upstream socket the first time it is seen.
    private func clientSlot(for source: SocketAddress) -> Int? {
        if let index = clientIndex[source] { return index }
        guard let socket = spareUpstream ?? makeUpstream() else { return nil }
        spareUpstream = nil
        if upstreams.count >= configuration.maximumClients {
            return recycleOldestSlot(for: source, socket: socket)
        }
        let index = upstreams.count
        upstreams.append(socket)
        watchUpstream(index)
        clientAddresses.append(source)
        clientIndex[source] = index
        self.local.clients = upstreams.count
        return index
    }

    /// Points the slot's poll entry at its (new) upstream socket; nothing is ready on it yet.
    private func watchUpstream(_ slot: Int) {
        pollSet.watch(upstreams[slot].fileDescriptor, at: slot + 2)
    }

    /// A fresh upstream socket connected to the server.
    private func makeUpstream() -> UDPSocket? {
        var options = UDPSocket.Options()
        options.nonBlocking = true
        options.receiveTimestamps = true
        let upstream = configuration.upstreamAddress
        let local = upstream.family == .ipv4 ? SocketAddress.loopbackIPv4(port: 0) : SocketAddress.loopbackIPv6(port: 0)
        guard let socket = try? UDPSocket(bindingTo: local, options: options) else { return nil }
        do { try socket.connect(to: upstream) } catch { socket.close(); return nil }
        return socket
    }

    /// Opens the next client's upstream socket while nothing is held, so that the tens of
    /// microseconds of socket(), bind() and connect() are not spent on a request's path
    /// (they made the forward path measurably longer than the backward one).
    private func prepareSpareUpstream() {
        if spareUpstream == nil && queue.count == 0 { spareUpstream = makeUpstream() }
    }

    /// NTP clients send each request from a fresh source port (RFC 9109 §3; ntpclient and
    /// chronyd both do), so a long run sees far more source addresses than it has slots.
    /// When the table is full, the slot opened longest ago gets a new upstream socket for the
    /// new address. Its old client's exchange ended long before (it is `maximumClients`
    /// sources back), so no response in flight is misdirected in practice.
    private func recycleOldestSlot(for source: SocketAddress, socket: UDPSocket) -> Int? {
        guard !upstreams.isEmpty else { socket.close(); return nil }
        let slot = nextRecycledSlot
        upstreams[slot].close()
        upstreams[slot] = socket
        watchUpstream(slot)
        clientIndex.removeValue(forKey: clientAddresses[slot])
        clientAddresses[slot] = source
        clientIndex[source] = slot
        nextRecycledSlot = (slot + 1) % upstreams.count
        self.local.recycledClientSlots += 1
        return slot
    }
}
