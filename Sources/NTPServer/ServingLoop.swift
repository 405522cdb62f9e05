import Synchronization
import NTPPacket
import KernelStamps

/// How to run the server.
public struct ServerConfiguration: Sendable {
    public var listenAddresses: [SocketAddress]
    /// Worker threads per listen address; each has its own socket (SO_REUSEPORT).
    public var threads: Int
    public var identity: ServerState.Identity
    /// nil: no rate limiting.
    public var rateLimit: RateLimit?
    /// RFC 9769 interleaved mode for clients that ask for it.
    public var interleaved: Bool
    /// Client-table entries per worker (rate limit and interleaved state).
    public var clientTableCapacity: Int
    /// Datagrams per recvmmsg.
    public var batchSize: Int
    /// Datagrams per sendmmsg at most. Each call's datagrams leave one after another, so the
    /// last leaves (datagrams − 1) × the per-datagram send time after the clock read; the
    /// worker sends fewer per call (down to 1) while its transmit-time checks miss the
    /// budget (`DepartureModel.datagramsPerSend`).
    public var maximumDatagramsPerSend: Int
    /// How far a basic-mode response's transmit timestamp may be from the real departure
    /// (the kernel's TX stamp) before it counts as a miss (`ServerCounters.transmitEarlyMisses`).
    public var transmitBudgetNanoseconds: Int64
    /// One basic-mode response in this many asks for a kernel TX stamp, to check its transmit
    /// timestamp against the real departure (0: no checks). Each check costs one read of
    /// the socket's error queue.
    public var transmitCheckEveryResponses: Int

    public init(listenAddresses: [SocketAddress], threads: Int = 1, identity: ServerState.Identity = .init(),
                rateLimit: RateLimit? = .standard, interleaved: Bool = true, clientTableCapacity: Int = 65_536,
                batchSize: Int = 64, maximumDatagramsPerSend: Int = 16, transmitBudgetNanoseconds: Int64 = 5_000,
                transmitCheckEveryResponses: Int = 64) {
        self.maximumDatagramsPerSend = maximumDatagramsPerSend
        self.transmitBudgetNanoseconds = transmitBudgetNanoseconds
        self.transmitCheckEveryResponses = transmitCheckEveryResponses
        self.listenAddresses = listenAddresses
        self.threads = threads
        self.identity = identity
        self.rateLimit = rateLimit
        self.interleaved = interleaved
        self.clientTableCapacity = clientTableCapacity
        self.batchSize = batchSize
    }
}

/// The serving loop: binds every socket at construction (so privileges can be dropped
/// before `start`), then runs one thread per worker until `stop`.
///
/// Each listen address gets `threads` workers. A worker owns one SO_REUSEPORT socket, its
/// batches, client table and counters, so workers share nothing on the packet path. With one
/// socket, a worker sleeps in its own recvmmsg: a wake costs one system call, where waiting
/// in poll for several sockets costs poll and then recvmmsg. A client asks one server
/// address, so its state stays with that address's workers. Among them, the kernel
/// would spread clients over the sockets by 4-tuple, which would put one client's requests
/// from different source ports (chronyd opens a new port per request) on different
/// workers, splitting its rate-limit and interleaved state. So a classic BPF program
/// (SO_ATTACH_REUSEPORT_CBPF) steers by source *address* only: one client, one worker, one
/// table entry. If the kernel refuses the program, the 4-tuple hash is used and the
/// per-worker state is merely less exact.
public final class ServingLoop: @unchecked Sendable {
    public let configuration: ServerConfiguration
    private let workers: [Worker]
    private let wakeup: Wakeup
    private var threads: [StartedThread] = []
    /// True when the source-address steering program is attached (or not needed).
    public private(set) var steeringByAddress = true
    /// The bound addresses (ports resolved if 0 was asked for), one per listen address.
    public let boundAddresses: [SocketAddress]

    public init(configuration: ServerConfiguration) throws(ServerError) {
        guard !configuration.listenAddresses.isEmpty else { throw ServerError("no listen address: give at least one --listen ADDR:PORT") }
        guard configuration.threads >= 1 else { throw ServerError("--threads must be at least 1") }
        self.configuration = configuration
        do throws(KernelError) {
            wakeup = try Wakeup()
            var sockets: [UDPSocket] = []
            var bound: [SocketAddress] = []
            var options = UDPSocket.Options()
            options.reusePort = true
            // Blocking: the worker waits in recvmmsg itself, and SO_RCVTIMEO brings it back
            // for the once-a-second refresh when no request comes.
            options.receiveTimeoutNanoseconds = Worker.refreshIntervalNanoseconds
            options.receiveTimestamps = true
            // Responses are 48 bytes (never longer than the request): DF costs nothing and
            // spares the kernel an IP ID per response.
            options.dontFragment = true
            // Interleaved responses and the sampled checks ask for a TX stamp each; the rest take none.
            options.transmitTimestampsOnRequest = configuration.interleaved || configuration.transmitCheckEveryResponses > 0
            options.receiveBufferBytes = 4 << 20
            options.sendBufferBytes = 4 << 20
            for address in configuration.listenAddresses {
                var target = address
                var group: [UDPSocket] = []
                for w in 0..<configuration.threads {
                    let socket = try UDPSocket(bindingTo: target, options: options)
                    if w == 0 {
                        // Port 0: every worker must join the port the first one got.
                        target = try socket.localAddress()
                        bound.append(target)
                    }
                    sockets.append(socket)
                    group.append(socket)
                }
                if configuration.threads > 1 {
                    do throws(KernelError) { try group[0].steerReusePortGroupBySourceAddress(workers: configuration.threads) } catch {
                        steeringByAddress = false
                    }
                }
            }
            boundAddresses = bound
            let seed = UInt64(truncatingIfNeeded: monotonicRawNanoseconds()) &* 0x9E37_79B9_7F4A_7C15 | 1
            var built: [Worker] = []
            for (w, socket) in sockets.enumerated() {
                let core = ServerCore(state: ServerState(hostClock: (try? HostClockStatus.read()) ?? unsynchronisedStatus,
                                                         identity: configuration.identity, nowUnixNanoseconds: realtimeNanoseconds()),
                                      rateLimit: configuration.rateLimit, interleavedEnabled: configuration.interleaved,
                                      clientTableCapacity: configuration.clientTableCapacity, seed: seed &+ UInt64(w))
                built.append(Worker(socket: socket, core: core, identity: configuration.identity,
                                    configuration: configuration, wakeup: wakeup))
            }
            workers = built
        } catch {
            throw ServerError(error)
        }
    }

    /// Worker threads: `threads` per listen address.
    public var workerCount: Int { workers.count }

    /// Starts the worker threads (named `stratumd-wN`, scheduled like the caller).
    public func start() throws(ServerError) {
        for (index, worker) in workers.enumerated() {
            do throws(KernelError) {
                threads.append(try StartedThread(ThreadOptions(name: "stratumd-w\(index)")) { worker.run() })
            } catch {
                throw ServerError(error)
            }
        }
    }

    /// Wakes every worker, waits for them to finish and returns the final counters.
    @discardableResult
    public func stop() -> ServerCounters {
        wakeup.signal()
        // A worker asleep in its receive does not see the eventfd: shutting the socket's
        // receive side returns it from recvmmsg, and it then finds the wakeup signalled.
        for worker in workers { worker.socket.shutdownReceiving() }
        for thread in threads { thread.join() }
        threads.removeAll()
        for worker in workers { worker.socket.close() }
        return counters()
    }

    /// The sum of all workers' counters, as last published (at most a second old while
    /// running; exact after `stop`).
    public func counters() -> ServerCounters {
        var total = ServerCounters()
        for worker in workers { total.add(worker.published.withLock { $0 }) }
        return total
    }

    /// Each worker's counters as last published, in worker order (for per-worker metrics).
    /// Reads the same snapshots as `counters()`: the workers never wait for a reader.
    public func workerCounters() -> [ServerCounters] {
        workers.map { worker in worker.published.withLock { $0 } }
    }

    /// What the first worker serves (leap indicator, root dispersion, ...), as of its last
    /// once-a-second refresh; every worker derives the same from the same host clock.
    public func servedState() -> ServerState {
        workers[0].publishedState.withLock { $0 }
    }
}

private let unsynchronisedStatus = HostClockStatus(leapState: .error, statusBits: 0x40, maximumErrorMicroseconds: 16_000_000,
                                                   estimatedErrorMicroseconds: 16_000_000)

/// Maps an OPT_ID key to the response it stamps: the client slot and receive timestamp sent
/// (interleaved mode), and the transmit time it claimed (a check; 0 when not a check).
struct PendingStamp {
    var id: UInt32 = 0
    var slot: Int32 = -1
    var receive: UInt64 = 0
    var claimedTransmitUnixNanoseconds: Int64 = 0
    /// Claimed with the lead of the first send after a wake.
    var afterWake = false
}

/// The worker's transmit-time state (see `Worker.transmitState`).
struct TransmitState {
    var departures: DepartureModel
    /// Basic responses left until the next one is checked against its TX stamp.
    var untilNextCheck: Int
    /// When the last check was chosen (monotonic): at light load a check is also taken
    /// every `checkIntervalNanoseconds`, so the lead after a wake is learnt at any rate.
    var lastCheckMonotonicNanoseconds: Int64 = 0
    /// The worker has slept since its last send.
    var afterWake = true
}

/// One worker: its socket, batches, core and counters; everything allocated in `init`.
final class Worker: @unchecked Sendable {
    let socket: UDPSocket
    let core: ServerCore
    let identity: ServerState.Identity
    let wakeup: Wakeup
    let receiveBatch: ReceiveBatch
    let sendBatch: SendBatch
    /// Per send slot: the response to patch with the transmit time just before sending (nil:
    /// none), and for a stamped response, which client entry its TX stamp belongs to.
    let transmitPatch: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let slotStamp: UnsafeMutablePointer<PendingStamp>
    static let ringSize = 4096
    /// How often the worker re-reads the host clock's status and publishes its state.
    static let refreshIntervalNanoseconds: Int64 = 1_000_000_000
    /// At least one check this often while responses flow (see `TransmitState`).
    static let checkIntervalNanoseconds: Int64 = 10_000_000
    /// A ring of pending TX stamps indexed by key, and the count pending (behind a pointer,
    /// like `transmitState`).
    let ring: UnsafeMutablePointer<PendingStamp>
    let pendingStamps: UnsafeMutablePointer<Int>
    let published = Mutex(ServerCounters())
    /// `core.state` as of the last refresh, for readers on other threads.
    let publishedState: Mutex<ServerState>
    let transmitStampsAvailable: Bool
    let transmitCheckEveryResponses: Int
    /// The transmit-time model and the countdown to the next check, behind a pointer: the
    /// packet path updates them for every response, and a class's stored `var` would cost a
    /// dynamic exclusivity check on each access.
    let transmitState: UnsafeMutablePointer<TransmitState>

    init(socket: UDPSocket, core: ServerCore, identity: ServerState.Identity, configuration: ServerConfiguration,
         wakeup: Wakeup) {
        let batchSize = max(1, configuration.batchSize)
        self.socket = socket
        self.core = core
        publishedState = Mutex(core.state)
        self.identity = identity
        self.wakeup = wakeup
        transmitCheckEveryResponses = max(0, configuration.transmitCheckEveryResponses)
        transmitState = .allocate(capacity: 1)
        transmitState.initialize(to: TransmitState(
            departures: DepartureModel(budgetNanoseconds: configuration.transmitBudgetNanoseconds,
                                       maximumDatagramsPerSend: min(max(1, configuration.maximumDatagramsPerSend), batchSize)),
            untilNextCheck: transmitCheckEveryResponses))
        receiveBatch = ReceiveBatch(capacity: batchSize, bufferSize: 2048)
        sendBatch = SendBatch(capacity: batchSize, bufferSize: NTPResponder.responseLength)
        transmitPatch = .allocate(capacity: batchSize)
        transmitPatch.initialize(repeating: nil, count: batchSize)
        slotStamp = .allocate(capacity: batchSize)
        slotStamp.initialize(repeating: PendingStamp(), count: batchSize)
        ring = .allocate(capacity: Worker.ringSize)
        ring.initialize(repeating: PendingStamp(), count: Worker.ringSize)
        pendingStamps = .allocate(capacity: 1)
        pendingStamps.initialize(to: 0)
        transmitStampsAvailable = core.interleavedEnabled
    }

    deinit {
        transmitPatch.deallocate(); slotStamp.deallocate(); transmitState.deallocate()
        ring.deallocate(); pendingStamps.deallocate()
    }

    func refreshState() {
        if let status = try? HostClockStatus.read() {
            core.state = ServerState(hostClock: status, identity: identity, nowUnixNanoseconds: realtimeNanoseconds())
            let state = core.state
            publishedState.withLock { $0 = state }
        }
        publishCounters()
    }

    func publishCounters() {
        let snapshot = core.counters
        published.withLock { $0 = snapshot }
    }

    /// Each wake costs one recvmmsg: it blocks for the first datagram and takes whatever else
    /// is queued. A TX stamp on the error queue does not wake the worker; stamps are read
    /// before each batch is answered, which is before any client can ask again for the
    /// interleaved response that needs its stamp.
    func run() {
        var nextRefresh: Int64 = 0
        while true {
            let count = (try? receiveBatch.receive(on: socket)) ?? 0
            let now = monotonicRawNanoseconds()
            // Nothing within SO_RCVTIMEO, or the empty datagram a shut-down socket returns.
            if count == 0 || receiveBatch.bytes(at: 0).isEmpty, wakeup.isSignalled { break }
            if now >= nextRefresh {
                refreshState()
                nextRefresh = now &+ Worker.refreshIntervalNanoseconds
            }
            if pendingStamps.pointee > 0 { drainTransmitStamps() }
            if count > 0 { process(count: count, now: now) }
            if count < receiveBatch.capacity {
                // The queue was empty when the kernel filled the batch: the next receive sleeps.
                publishCounters()
                transmitState.pointee.afterWake = true
            }
        }
        refreshState()
    }

    @inline(__always)
    func process(count: Int, now: Int64) {
        for i in 0..<count {
            if receiveBatch.isTruncated(at: i) {
                core.counters.received &+= 1
                core.counters.malformed &+= 1
                continue
            }
            guard let source = receiveBatch.sourceAddress(at: i), let buffer = sendBatch.nextBuffer() else { continue }
            var receiveNanoseconds = receiveBatch.receiveRealtimeNanoseconds(at: i)
            if receiveNanoseconds == 0 {
                receiveNanoseconds = realtimeNanoseconds()
                core.counters.missingReceiveStamp &+= 1
            }
            let outcome = core.handle(request: receiveBatch.bytes(at: i), source: source.key,
                                      receiveUnixNanoseconds: receiveNanoseconds, nowMonotonicNanoseconds: now,
                                      response: buffer.baseAddress!)
            if outcome.length == 0 { continue }
            let slot = sendBatch.count
            let interleavedStamp = outcome.wantsTransmitStamp && transmitStampsAvailable
            var check = false
            if outcome.needsTransmitPatch && transmitCheckEveryResponses > 0 {
                transmitState.pointee.untilNextCheck -= 1
                if transmitState.pointee.untilNextCheck <= 0
                    || now &- transmitState.pointee.lastCheckMonotonicNanoseconds >= Worker.checkIntervalNanoseconds {
                    check = true
                    transmitState.pointee.untilNextCheck = transmitCheckEveryResponses
                    transmitState.pointee.lastCheckMonotonicNanoseconds = now
                }
            }
            transmitPatch[slot] = outcome.needsTransmitPatch ? buffer.baseAddress : nil
            if interleavedStamp || check {
                // The claimed transmit time is filled in by sendResponses; a response that both
                // starts an interleaved exchange and is basic is checked as well (it is a sample).
                slotStamp[slot] = PendingStamp(id: 0, slot: interleavedStamp ? Int32(outcome.slot) : -1,
                                               receive: outcome.receiveTimestamp, claimedTransmitUnixNanoseconds: 0)
            }
            sendBatch.commit(length: outcome.length, to: source, requestingTransmitTimestamp: interleavedStamp || check)
            if sendBatch.count >= transmitState.pointee.departures.datagramsPerSend { sendResponses() }
        }
        if sendBatch.count > 0 { sendResponses() }
    }

    /// Patches into each basic response the time it is predicted to leave (`DepartureModel`:
    /// the clock read now, plus the lead to the first departure, plus its place in the call
    /// times the per-datagram send time), sends, times the call, and notes for each requested
    /// TX stamp, by the key it will carry, which client entry it belongs to and what it claimed.
    func sendResponses() {
        let filled = sendBatch.count
        let departures = transmitState.pointee.departures
        let afterWake = transmitState.pointee.afterWake
        transmitState.pointee.afterWake = false
        let clockRead = realtimeNanoseconds()
        let base = NTPTimestamp(unixNanoseconds: clockRead &+ departures.departureOffsetNanoseconds(slot: 0, afterWake: afterWake)).rawValue
        // The spacing in NTP fraction units (2^-32 s), so each slot costs one multiply-add.
        let spacingFraction = UInt64(departures.spacingNanoseconds) << 32 / 1_000_000_000
        for slot in 0..<filled {
            if let response = transmitPatch[slot] {
                NTPResponder.patchTransmitTimestamp(NTPTimestamp(rawValue: base &+ UInt64(slot) &* spacingFraction), in: response)
                if sendBatch.requestsTransmitTimestamp(at: slot) {
                    slotStamp[slot].claimedTransmitUnixNanoseconds = clockRead &+ departures.departureOffsetNanoseconds(slot: slot, afterWake: afterWake)
                    slotStamp[slot].afterWake = afterWake
                }
            } else if sendBatch.requestsTransmitTimestamp(at: slot) {
                slotStamp[slot].claimedTransmitUnixNanoseconds = 0
            }
        }
        let result = (try? sendBatch.send(on: socket, waiting: false)) ?? SendBatch.Result(sent: 0, firstTransmitID: socket.nextTransmitID, stampedCount: 0)
        // A single datagram tells nothing about spacing: no second clock read for it.
        if result.sent >= 2 {
            transmitState.pointee.departures.observeSend(durationNanoseconds: realtimeNanoseconds() &- clockRead, datagrams: result.sent)
        }
        if result.stampedCount > 0 {
            var id = result.firstTransmitID
            for slot in 0..<result.sent where sendBatch.requestsTransmitTimestamp(at: slot) {
                var meta = slotStamp[slot]
                meta.id = id
                ring[Int(id) & (Worker.ringSize - 1)] = meta
                id &+= 1
            }
            pendingStamps.pointee += result.stampedCount
        }
        core.counters.answered &+= UInt64(result.sent)
        core.counters.sendFailures &+= UInt64(filled - result.sent)
    }
    /// Reads queued TX stamps and stores each in its client's entry.
    func drainTransmitStamps() {
        while let stamp = try? socket.receiveTransmitTimestamp() {
            let meta = ring[Int(stamp.id) & (Worker.ringSize - 1)]
            if meta.id == stamp.id && meta.slot >= 0 {
                core.storeTransmitStamp(slot: Int(meta.slot), receive: meta.receive, transmitUnixNanoseconds: stamp.realtimeNanoseconds)
            }
            if meta.id == stamp.id && meta.claimedTransmitUnixNanoseconds != 0 {
                core.counters.transmitChecks &+= 1
                switch transmitState.pointee.departures.observeCheck(claimedUnixNanoseconds: meta.claimedTransmitUnixNanoseconds,
                                                                     departedUnixNanoseconds: stamp.realtimeNanoseconds,
                                                                     afterWake: meta.afterWake) {
                case .withinBudget: break
                case .early: core.counters.transmitEarlyMisses &+= 1
                case .late: core.counters.transmitLateMisses &+= 1
                }
            }
            pendingStamps.pointee = max(0, pendingStamps.pointee - 1)
            // Every stamp asked for is in: stop before a read that would find the queue empty.
            if pendingStamps.pointee == 0 { break }
        }
        // Stamps the kernel never delivers (dropped under memory pressure) must not make us
        // read the error queue before every batch forever: stamps that come later are still
        // read, before a later batch or when the receive times out.
        if pendingStamps.pointee > Worker.ringSize { pendingStamps.pointee = 0 }
    }
}
