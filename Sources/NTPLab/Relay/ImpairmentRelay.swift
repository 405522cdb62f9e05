import KernelStamps
import NTPPacket
import Synchronization

/// What an impairment relay does: the network model it applies and the served-time transform.
public struct RelayConfiguration: Sendable {
    /// Where clients send; port 0 picks a free one (read `ImpairmentRelay.listenAddresses`).
    /// With several lanes each gets its own port, so the address must have port 0.
    public var listenAddress: SocketAddress = .loopbackIPv4(port: 0)
    /// Clients served by this one relay thread, each on its own listening port (its lane)
    /// with its own copy of the network model. One thread for all keeps whatever lateness
    /// the machine causes falling on every client alike.
    public var lanes: Int = 1
    /// The server the relay forwards to.
    public var upstreamAddress: SocketAddress
    /// Delays, loss, level shifts and outages: forward applies to requests, backward to responses.
    public var network: NetworkParameters
    /// Seed of every lane's model, unless `laneSeeds` gives each lane its own.
    public var seed: UInt64 = 1
    /// When not empty, lane k draws its delays from `laneSeeds[k]`. The live lab gives each
    /// server its own seed (independent paths, as the simulator has) and the same seed to
    /// every client's lane to one server: the k-th request of ntpclient and of chronyd then
    /// meets the same drawn delay (common random numbers), so a difference between the two
    /// clients is theirs, not the luck of their draws.
    public var laneSeeds: [UInt64] = []
    /// Applied to the server's timestamps in every response (identity: left alone).
    public var transform: ServedTimeTransform = .identity
    /// When not empty, lane k's responses get `laneTransforms[k]` instead of `transform`:
    /// each lane then stands for a server of its own, one of which may lie (several-server
    /// scenarios, docs/feedforward.md "Several sources").
    public var laneTransforms: [ServedTimeTransform] = []
    /// The scenario's time zero on CLOCK_MONOTONIC; nil: when `start()` is called.
    public var startMonotonicNanoseconds: Int64? = nil
    /// Packets held at once; more are dropped and counted as overflow.
    public var queueCapacity: Int = 4096
    /// Distinct client addresses served (each gets its own upstream socket).
    public var maximumClients: Int = 256
    /// Added to the model's delay in both directions. A sleeping thread on a virtual machine
    /// reads a packet tens of µs after its kernel receive stamp, and now and then hundreds
    /// (measured here, a 2-vCPU guest whose idle vCPUs halt: median 35, p99 110, max 2500 µs
    /// from stamp to read), which is longer than a LAN model's 70 µs. A request read after
    /// its departure time leaves late, which lengthens the forward path alone and biases
    /// every client by half the lateness (RFC 5905 §8: offset error is (forward − backward)/2).
    /// Holding both directions this much longer keeps the departure ahead of the wake-up
    /// without spinning between packets, and, being the same both ways, adds nothing to the
    /// asymmetry or the jitter a client sees: only the round trip grows, by twice this.
    /// 0 applies the model exactly; packets read too late are then counted.
    public var headroomEachWayNanoseconds: Int64 = 0
    /// How long before a packet's departure the relay stops sleeping and spins on the
    /// clock. A sleeping thread on a virtual machine wakes tens of µs to over a millisecond
    /// late; spinning this last stretch absorbs that, at a cost of at most this much CPU per
    /// packet (a packet due sooner than this after its arrival is spun for from arrival on).
    public var spinLeadNanoseconds: Int64 = 1_000_000
    /// After forwarding a request the relay looks for the answer without sleeping until it
    /// comes, for up to this long: a server answers within tens of µs, and a thread woken from sleep by the
    /// answer would hold it for its own wake-up latency, which the backward path does not have.
    public var responseWatchNanoseconds: Int64 = 2_000_000
    /// The relay thread's scheduling. Normal, never real-time, even when the lab's other
    /// threads are: a packet wakes a normal thread on the sender's CPU as the sender goes
    /// back to waiting, while a real-time thread is woken on another CPU, which on a virtual
    /// machine means waking an idle vCPU, tens of µs. Measured here as root: at SCHED_FIFO
    /// the relay saw 28–29 of 72 requests only after their departure time (median lateness
    /// 8–44 µs); at normal priority 8 of 108 (median 1 µs). Nice −20 where permitted keeps
    /// other work on the machine from crowding it out; it sleeps between packets.
    public var scheduling: ThreadScheduling = .normal(nice: -20)
    /// Within this much of a departure the relay spins on the clock alone.
    static let clockOnlySpinNanoseconds: Int64 = 20_000
    /// Exchanges remembered for `exchangeRecords()` (the latest ones).
    public var exchangeRecordCapacity: Int = 16_384

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
    /// Packets the relay saw only after their departure time had passed: the model's delay
    /// was shorter than this machine's wake-up, so the scenario's path could not be kept.
    public var requestsPastDeparture = 0
    public var responsesPastDeparture = 0
    /// CPU time the relay thread used, and the wall time it has run, ns (their ratio is
    /// the share of a core the relay took).
    public var cpuNanoseconds: Int64 = 0
    public var runningNanoseconds: Int64 = 0
    /// The relay thread got a 0.1 ms scheduler slice (normal scheduling on Linux 6.12+).
    public var shortSchedulerSlice = false
    public init() {}

    /// CPU time / wall time of the relay thread (0 before it ran).
    public var cpuShare: Double { runningNanoseconds > 0 ? Double(cpuNanoseconds) / Double(runningNanoseconds) : 0 }

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
/// - One thread serves every client of a run (`lanes`), so whatever lateness the machine
///   imposes falls on all clients alike; each lane has its own listening port and its own
///   copy of the model.
/// - Each client source address gets its own upstream socket, so responses go back to the
///   client that asked, and the server sees one peer per client.
/// - A packet's departure is its kernel RX stamp (moved into CLOCK_MONOTONIC) plus the
///   model's delay, never the time the relay woke up for it. The relay sleeps (ppoll(2) with
///   a nanosecond timeout, timer slack 1 ns) until `spinLeadNanoseconds` before the next
///   departure and spins on the clock for the rest. It sleeps in ppoll rather than
///   clock_nanosleep so that a packet arriving meanwhile wakes it.
/// - A packet first seen after its departure time is sent at once and counted
///   (`requestsPastDeparture`, `responsesPastDeparture`). A request that leaves late, for
///   whatever reason, has its answer held as much longer, so the exchange keeps the model's
///   asymmetry; a late answer cannot be made up for.
/// - `headroomEachWayNanoseconds` is added to the model's delay both ways, so that a thread
///   that sleeps between packets has read each one before it is due.
/// - Send lateness goes into a histogram per direction, and every exchange into a record
///   (`exchangeRecords()`), from which the path each client got is measured.
/// - The delay is added on top of loopback's own few µs per hop (two extra hops through
///   the relay); the model's minimum is a floor, not an exact value.
/// - Runs on its own thread from `start()` until `stop()`; `counters` may be read any time
///   (published before each sleep).
public final class ImpairmentRelay: @unchecked Sendable {
    public let configuration: RelayConfiguration
    /// The bound listening address of each lane (ports resolved when 0 was asked for).
    public let listenAddresses: [SocketAddress]
    /// Lane 0's listening address.
    public var listenAddress: SocketAddress { listenAddresses[0] }
    /// The scenario's time zero on CLOCK_MONOTONIC, fixed by `start()`.
    public private(set) var startMonotonicNanoseconds: Int64 = 0

    private let listeners: [UDPSocket]
    private let wakeup: Wakeup
    private let stopRequested = Atomic<Bool>(false)
    private let published = Mutex(RelayCounters())
    private let log: Mutex<RelayLog>
    private var thread: StartedThread? = nil

    // Relay-thread state: touched only by the relay thread between start() and stop().
    private var queue: DelayQueue
    private var laneDelays: [RelayDelays]
    private var local = RelayCounters()
    private var clientIndex: [LaneSource: Int] = [:]
    private var clientAddresses: [SocketAddress] = []
    private var clientLanes: [Int] = []
    private var upstreams: [UDPSocket] = []
    /// The request last forwarded on each client slot, waiting for its response.
    private var pendingRequests: [PendingRequest?]
    private var nextRecycledSlot = 0
    private var spareUpstream: UDPSocket? = nil
    /// Upstream sockets of recycled slots, closed when the relay is idle rather than on the
    /// path of the request that recycled them (close(2) takes microseconds).
    private var retiredUpstreams: [UDPSocket] = []
    private var watchResponsesUntil: Int64 = .min
    /// Requests forwarded whose answer has not come back yet (the watch ends when none is).
    private var requestsAwaitingResponse = 0
    private let pollSet: PollSet
    private let receiveBuffer: UnsafeMutableRawBufferPointer
    /// Poll slots: 0 the wakeup, 1 ..< 1 + lanes the listeners, then one per client slot.
    private var firstUpstreamPollSlot: Int { 1 + listeners.count }

    private struct LaneSource: Hashable {
        var lane: Int
        var address: SocketAddress
    }

    private struct PendingRequest {
        var transmitTimestamp: UInt64
        var arrivalNanoseconds: Int64
        var departureNanoseconds: Int64
        var modelDelayNanoseconds: Int64
        /// How late the request left (0 if on time): its answer is held this much longer.
        var latenessNanoseconds: Int64
    }

    public init(_ configuration: RelayConfiguration) throws(LabError) {
        self.configuration = configuration
        let laneCount = max(1, configuration.lanes)
        if laneCount > 1 && configuration.listenAddress.port != 0 {
            throw LabError("relay: \(laneCount) lanes need a listening address with port 0 (each lane takes its own port), not \(configuration.listenAddress)")
        }
        var options = UDPSocket.Options()
        options.nonBlocking = true
        options.receiveTimestamps = true
        options.receiveBufferBytes = 1 << 20
        var listeners: [UDPSocket] = []
        var addresses: [SocketAddress] = []
        do {
            for _ in 0..<laneCount {
                let listener = try UDPSocket(bindingTo: configuration.listenAddress, options: options)
                listeners.append(listener)
                addresses.append(try listener.localAddress())
            }
            wakeup = try Wakeup()
        } catch {
            for listener in listeners { listener.close() }
            throw LabError("relay: cannot listen on \(configuration.listenAddress)", error)
        }
        self.listeners = listeners
        listenAddresses = addresses
        queue = DelayQueue(capacity: max(1, configuration.queueCapacity))
        laneDelays = []
        let maximumClients = max(1, configuration.maximumClients)
        pendingRequests = [PendingRequest?](repeating: nil, count: maximumClients)
        clientIndex.reserveCapacity(maximumClients)
        clientAddresses.reserveCapacity(maximumClients)
        clientLanes.reserveCapacity(maximumClients)
        upstreams.reserveCapacity(maximumClients)
        retiredUpstreams.reserveCapacity(maximumClients)
        log = Mutex(RelayLog(capacity: configuration.exchangeRecordCapacity))
        pollSet = PollSet(capacity: maximumClients + 1 + laneCount)
        pollSet.watch(wakeup.fileDescriptor, at: 0)
        for (lane, listener) in listeners.enumerated() { pollSet.watch(listener.fileDescriptor, at: 1 + lane) }
        receiveBuffer = .allocate(byteCount: 2048, alignment: 16)
    }

    deinit {
        stop()
        for listener in listeners { listener.close() }
        for socket in upstreams { socket.close() }
        spareUpstream?.close()
        for socket in retiredUpstreams { socket.close() }
        receiveBuffer.deallocate()
    }

    /// What the relay has done so far (published before each sleep and at the end).
    public var counters: RelayCounters { published.withLock { $0 } }

    /// Send lateness so far, per direction.
    public func latenessHistograms() -> (request: LatenessHistogram, response: LatenessHistogram) {
        log.withLock { (LatenessHistogram(copying: $0.requestLateness), LatenessHistogram(copying: $0.responseLateness)) }
    }

    /// Wake-up delay so far, per direction: from a packet's kernel receive stamp to the relay
    /// thread reading it. What `headroomEachWayNanoseconds` has to cover.
    public func wakeUpHistograms() -> (request: LatenessHistogram, response: LatenessHistogram) {
        log.withLock { (LatenessHistogram(copying: $0.requestWakeUp), LatenessHistogram(copying: $0.responseWakeUp)) }
    }

    /// The latest exchanges (at most `exchangeRecordCapacity`), oldest first; `lane` picks one client.
    public func exchangeRecords(lane: Int? = nil) -> [RelayExchangeRecord] {
        let all = log.withLock { $0.exchangeRecords() }
        guard let lane else { return all }
        return all.filter { $0.lane == lane }
    }

    /// Starts the relay thread. Call once.
    public func start() throws(LabError) {
        guard thread == nil else { return }
        startMonotonicNanoseconds = configuration.startMonotonicNanoseconds ?? clockNanoseconds(.monotonic)
        laneDelays = (0..<listeners.count).map {
            RelayDelays(parameters: configuration.network,
                        seed: $0 < configuration.laneSeeds.count ? configuration.laneSeeds[$0] : configuration.seed,
                        startMonotonicNanoseconds: startMonotonicNanoseconds)
        }
        do throws(KernelError) {
            thread = try StartedThread(ThreadOptions(name: "lab-relay", scheduling: configuration.scheduling)) { self.runLoop() }
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
        ThreadTiming.setTimerSlack(nanoseconds: 1)
        // Under CPU load a woken normal thread can wait out a busy task's slice (ms) before
        // it runs: a short slice of its own lets the relay preempt at once (no privilege).
        let slice = ThreadTiming.requestSchedulerSlice(nanoseconds: 100_000)
        published.withLock { $0.shortSchedulerSlice = slice == .set }
        local.shortSchedulerSlice = slice == .set
        let cpuAtStart = ThreadTiming.cpuNanoseconds()
        let startedAt = clockNanoseconds(.monotonic)
        func publish() {
            local.cpuNanoseconds = ThreadTiming.cpuNanoseconds() - cpuAtStart
            local.runningNanoseconds = clockNanoseconds(.monotonic) - startedAt
            published.withLock { $0 = local }
        }
        while !stopRequested.load(ordering: .acquiring) {
            sendDuePackets()
            let now = clockNanoseconds(.monotonic)
            var timeout: Int64? = nil
            if let due = queue.nextDue {
                if due - now <= RelayConfiguration.clockOnlySpinNanoseconds {
                    // The last few µs: watch only the clock (a look at every socket costs µs
                    // itself); a packet arriving meanwhile keeps its kernel stamp and is
                    // read right after this send.
                    while clockNanoseconds(.monotonic) < due {}
                    continue
                }
                timeout = max(0, due - configuration.spinLeadNanoseconds - now)
            }
            if now < watchResponsesUntil {
                timeout = 0
            } else if requestsAwaitingResponse > 0 {
                requestsAwaitingResponse = 0  // lost, or answered too late to watch for
            }
            if timeout != 0 {
                // About to sleep: make the figures current, and open the next client's
                // upstream socket now rather than on a request's path.
                if queue.count == 0 { prepareSpareUpstream() }
                publish()
            }
            if pollSet.wait(count: firstUpstreamPollSlot + upstreams.count, timeoutNanoseconds: timeout) > 0 { receivePackets() }
        }
        publish()
    }

    private func receivePackets() {
        for lane in 0..<listeners.count where pollSet.isReady(1 + lane) {
            while let datagram = try? listeners[lane].receive(into: receiveBuffer) {
                local.requestsReceived += 1
                guard let source = datagram.source, !datagram.truncated else { local.overflowDrops += 1; continue }
                let (arrival, now) = arrivalMonotonic(datagram)
                guard let client = clientSlot(for: source, lane: lane) else { local.overflowDrops += 1; continue }
                guard let modelDue = laneDelays[lane].requestDue(arrivalMonotonicNanoseconds: arrival) else {
                    local.requestsDropped += 1
                    continue
                }
                local.recordModelDelay(modelDue - arrival, .request)
                let due = modelDue + configuration.headroomEachWayNanoseconds
                if now > due { local.requestsPastDeparture += 1 }
                let bytes = UnsafeRawBufferPointer(rebasing: receiveBuffer[0..<datagram.byteCount])
                if !queue.enqueue(bytes, due: due, direction: .request, client: client, arrival: arrival,
                                  modelDelay: modelDue - arrival, wakeUp: now - arrival) {
                    local.overflowDrops += 1
                }
            }
        }
        let first = firstUpstreamPollSlot
        for i in 0..<upstreams.count where pollSet.isReady(first + i) {
            while let datagram = try? upstreams[i].receive(into: receiveBuffer) {
                guard datagram.source == configuration.upstreamAddress else { continue }
                local.responsesReceived += 1
                requestsAwaitingResponse = max(0, requestsAwaitingResponse - 1)
                if requestsAwaitingResponse == 0 { watchResponsesUntil = .min }
                if datagram.truncated { local.overflowDrops += 1; continue }
                let (arrival, now) = arrivalMonotonic(datagram)
                guard let modelDue = laneDelays[clientLanes[i]].responseDue(arrivalMonotonicNanoseconds: arrival) else {
                    local.responsesDropped += 1
                    continue
                }
                local.recordModelDelay(modelDue - arrival, .response)
                // A request sent late made the forward path longer than the model's; holding
                // its answer as much longer puts the same on the backward path, so the
                // exchange keeps the model's asymmetry (only its round trip grows).
                let due = modelDue + configuration.headroomEachWayNanoseconds + (pendingRequests[i]?.latenessNanoseconds ?? 0)
                if now > due { local.responsesPastDeparture += 1 }
                let packet = UnsafeMutableRawBufferPointer(rebasing: receiveBuffer[0..<datagram.byteCount])
                let transform = clientLanes[i] < configuration.laneTransforms.count
                    ? configuration.laneTransforms[clientLanes[i]] : configuration.transform
                if !transform.isIdentity,
                   ServedTimeRewriter.rewrite(packet, by: transform, pivotUnixNanoseconds: realtimeNanoseconds()) {
                    local.responsesRewritten += 1
                }
                if !queue.enqueue(UnsafeRawBufferPointer(packet), due: due, direction: .response, client: i, arrival: arrival,
                                  modelDelay: modelDue - arrival, wakeUp: now - arrival) {
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
            let departure = clockNanoseconds(.monotonic)
            let lateness = departure - packet.due
            let bytes = UnsafeRawBufferPointer(queue.bytes(packet.slot))
            do {
                switch packet.direction {
                case .request:
                    try upstreams[packet.client].send(bytes, to: configuration.upstreamAddress)
                    local.requestsForwarded += 1
                    watchResponsesUntil = departure + configuration.responseWatchNanoseconds
                    requestsAwaitingResponse += 1
                    pendingRequests[packet.client] = PendingRequest(transmitTimestamp: transmitTimestamp(of: bytes), arrivalNanoseconds: packet.arrival,
                                                                    departureNanoseconds: departure, modelDelayNanoseconds: packet.modelDelayNanoseconds,
                                                                    latenessNanoseconds: max(0, lateness))
                case .response:
                    try listeners[clientLanes[packet.client]].send(bytes, to: clientAddresses[packet.client])
                    local.responsesForwarded += 1
                }
            } catch {
                local.sendErrors += 1
            }
            let lane = clientLanes[packet.client]
            let completed = packet.direction == .response ? pendingRequests[packet.client] : nil
            if completed != nil { pendingRequests[packet.client] = nil }
            log.withLock { log in
                switch packet.direction {
                case .request:
                    log.requestLateness.add(lateness)
                    log.requestWakeUp.add(packet.wakeUpNanoseconds)
                case .response:
                    log.responseLateness.add(lateness)
                    log.responseWakeUp.add(packet.wakeUpNanoseconds)
                }
                if let request = completed {
                    log.record(RelayExchangeRecord(lane: lane, requestTransmitTimestamp: request.transmitTimestamp,
                                                   requestArrivalNanoseconds: request.arrivalNanoseconds, requestDepartureNanoseconds: request.departureNanoseconds,
                                                   requestModelDelayNanoseconds: request.modelDelayNanoseconds,
                                                   responseArrivalNanoseconds: packet.arrival, responseDepartureNanoseconds: departure,
                                                   responseModelDelayNanoseconds: packet.modelDelayNanoseconds))
                }
            }
            queue.release(packet.slot)
            sentAny = true
        }
        return sentAny
    }

    /// The kernel RX stamp moved from CLOCK_REALTIME to CLOCK_MONOTONIC by reading both now;
    /// also returns now (monotonic), when the relay got to the packet.
    private func arrivalMonotonic(_ datagram: ReceivedDatagram) -> (arrival: Int64, now: Int64) {
        // Realtime first: the age is then never overestimated, so no delay comes out short.
        let realtimeNow = realtimeNanoseconds()
        let monotonicNow = clockNanoseconds(.monotonic)
        guard let stamp = datagram.receiveRealtimeNanoseconds else { return (monotonicNow, monotonicNow) }
        return (monotonicNow - max(0, realtimeNow - stamp), monotonicNow)
    }

    /// The transmit timestamp of a request (RFC 5905 §7.3), raw; 0 if it is too short.
    private func transmitTimestamp(of bytes: UnsafeRawBufferPointer) -> UInt64 {
        NTPHeaderBytes(bytes)?.transmitTimestamp.rawValue ?? 0
    }

    /// The client's slot, giving it an upstream socket the first time it is seen.
    private func clientSlot(for source: SocketAddress, lane: Int) -> Int? {
        let key = LaneSource(lane: lane, address: source)
        if let index = clientIndex[key] { return index }
        guard let socket = spareUpstream ?? makeUpstream() else { return nil }
        spareUpstream = nil
        if upstreams.count >= max(1, configuration.maximumClients) {
            return recycleOldestSlot(for: key, socket: socket)
        }
        let index = upstreams.count
        upstreams.append(socket)
        watchUpstream(index)
        clientAddresses.append(source)
        clientLanes.append(lane)
        clientIndex[key] = index
        self.local.clients = upstreams.count
        return index
    }

    /// Points the slot's poll entry at its (new) upstream socket.
    private func watchUpstream(_ slot: Int) {
        pollSet.watch(upstreams[slot].fileDescriptor, at: firstUpstreamPollSlot + slot)
    }

    /// A fresh upstream socket for one client, not connected: the relay sends the other way
    /// from an unconnected listener (to each client's address), and sendto(2) on an
    /// unconnected socket looks up its route on every call, which on loopback puts the
    /// receiver's stamp about 4–5 µs later than send(2) on a connected one (measured here:
    /// median 7.7 against 2.6 µs from the call to the receiver's kernel stamp). The relay's
    /// own stamps cannot see that, and only in one direction it would be 2–2.5 µs of
    /// asymmetry; sending the same way both ways keeps it out. Responses from any other
    /// source are dropped.
    private func makeUpstream() -> UDPSocket? {
        var options = UDPSocket.Options()
        options.nonBlocking = true
        options.receiveTimestamps = true
        let upstream = configuration.upstreamAddress
        let local = upstream.family == .ipv4 ? SocketAddress.loopbackIPv4(port: 0) : SocketAddress.loopbackIPv6(port: 0)
        guard let socket = try? UDPSocket(bindingTo: local, options: options) else { return nil }
        return socket
    }

    /// Opens the next client's upstream socket while nothing is held, so that the tens of
    /// microseconds of socket() and bind() are not spent on a request's path
    /// (they made the forward path measurably longer than the backward one).
    /// Also closes the sockets of recycled slots.
    private func prepareSpareUpstream() {
        guard queue.count == 0 else { return }
        if spareUpstream == nil { spareUpstream = makeUpstream() }
        for socket in retiredUpstreams { socket.close() }
        retiredUpstreams.removeAll(keepingCapacity: true)
    }

    /// NTP clients send each request from a fresh source port (RFC 9109 §3; ntpclient and
    /// chronyd both do), so a long run sees far more source addresses than it has slots.
    /// When the table is full, the slot opened longest ago gets a new upstream socket for the
    /// new address. Its old client's exchange ended long before (it is `maximumClients`
    /// sources back), so no response in flight is misdirected in practice.
    private func recycleOldestSlot(for key: LaneSource, socket: UDPSocket) -> Int? {
        guard !upstreams.isEmpty else { socket.close(); return nil }
        let slot = nextRecycledSlot
        retiredUpstreams.append(upstreams[slot])
        upstreams[slot] = socket
        watchUpstream(slot)
        clientIndex.removeValue(forKey: LaneSource(lane: clientLanes[slot], address: clientAddresses[slot]))
        clientAddresses[slot] = key.address
        clientLanes[slot] = key.lane
        clientIndex[key] = slot
        pendingRequests[slot] = nil
        nextRecycledSlot = (slot + 1) % upstreams.count
        self.local.recycledClientSlots += 1
        return slot
    }
}
