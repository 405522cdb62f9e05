#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import NTPPacket
import KernelStamps

/// How to run the server.
public struct ServerConfiguration: Sendable {
    public var listenAddresses: [SocketAddress]
    /// Worker threads; each has its own socket per listen address (SO_REUSEPORT).
    public var threads: Int
    public var identity: ServerState.Identity
    /// nil: no rate limiting.
    public var rateLimit: RateLimit?
    /// RFC 9769 interleaved mode for clients that ask for it.
    public var interleaved: Bool
    /// Client-table entries per worker (rate limit and interleaved state).
    public var clientTableCapacity: Int
    /// Datagrams per recvmmsg/sendmmsg.
    public var batchSize: Int

    public init(listenAddresses: [SocketAddress], threads: Int = 1, identity: ServerState.Identity = .init(),
                rateLimit: RateLimit? = .standard, interleaved: Bool = true, clientTableCapacity: Int = 65_536,
                batchSize: Int = 64) {
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
/// Each worker owns, per listen address, an SO_REUSEPORT socket, and owns its batches,
/// client table and counters, so workers share nothing on the packet path. The kernel
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
            var socketsByWorker = [[UDPSocket]](repeating: [], count: configuration.threads)
            var bound: [SocketAddress] = []
            var options = UDPSocket.Options()
            options.reusePort = true
            options.nonBlocking = true
            options.receiveTimestamps = true
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
                    socketsByWorker[w].append(socket)
                    group.append(socket)
                }
                if configuration.threads > 1 && !attachAddressSteering(group[0], workers: configuration.threads, family: address.family) {
                    steeringByAddress = false
                }
            }
            boundAddresses = bound
            let seed = UInt64(truncatingIfNeeded: monotonicRawNanoseconds()) &* 0x9E37_79B9_7F4A_7C15 | 1
            var built: [Worker] = []
            for w in 0..<configuration.threads {
                let core = ServerCore(state: ServerState(hostClock: (try? HostClockStatus.read()) ?? unsynchronisedStatus,
                                                         identity: configuration.identity, nowUnixNanoseconds: realtimeNanoseconds()),
                                      rateLimit: configuration.rateLimit, interleavedEnabled: configuration.interleaved,
                                      clientTableCapacity: configuration.clientTableCapacity, seed: seed &+ UInt64(w))
                built.append(try Worker(sockets: socketsByWorker[w], core: core, identity: configuration.identity,
                                        batchSize: configuration.batchSize, wakeup: wakeup))
            }
            workers = built
        } catch {
            throw ServerError(error)
        }
    }

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
        for thread in threads { thread.join() }
        threads.removeAll()
        for worker in workers { worker.closeSockets() }
        return counters()
    }

    /// The sum of all workers' counters, as last published (at most a second old while
    /// running; exact after `stop`).
    public func counters() -> ServerCounters {
        var total = ServerCounters()
        for worker in workers { total.add(worker.published.withLock { $0 }) }
        return total
    }
}

private let unsynchronisedStatus = HostClockStatus(leapState: .error, statusBits: 0x40, maximumErrorMicroseconds: 16_000_000,
                                                   estimatedErrorMicroseconds: 16_000_000)

/// SO_ATTACH_REUSEPORT_CBPF: pick socket (hash of the source address) mod workers.
/// The program reads the last 32 bits of the source address at a negative offset from the
/// network header (SKF_NET_OFF), which is valid for reuseport programs on UDP.
private func attachAddressSteering(_ socket: UDPSocket, workers: Int, family: SocketAddress.Family) -> Bool {
    struct SockFilter { var code: UInt16; var jt: UInt8; var jf: UInt8; var k: UInt32 }
    struct SockFprog { var length: UInt16; var filter: UnsafeMutablePointer<SockFilter> }
    let skfNetOffset: Int32 = -0x100000
    let sourceOffset: Int32 = family == .ipv4 ? 12 : 20
    let program = UnsafeMutablePointer<SockFilter>.allocate(capacity: 5)
    defer { program.deallocate() }
    program[0] = SockFilter(code: 0x20, jt: 0, jf: 0, k: UInt32(bitPattern: skfNetOffset + sourceOffset)) // ld [net+off]
    program[1] = SockFilter(code: 0x24, jt: 0, jf: 0, k: 0x9E37_79B1)                                    // mul
    program[2] = SockFilter(code: 0x74, jt: 0, jf: 0, k: 16)                                             // rsh 16
    program[3] = SockFilter(code: 0x94, jt: 0, jf: 0, k: UInt32(workers))                                // mod
    program[4] = SockFilter(code: 0x16, jt: 0, jf: 0, k: 0)                                              // ret a
    var fprog = SockFprog(length: 5, filter: program)
    let soAttachReuseportCBPF: Int32 = 51
    return setsockopt(socket.fileDescriptor, SOL_SOCKET, soAttachReuseportCBPF, &fprog,
                      socklen_t(MemoryLayout<SockFprog>.size)) == 0
}

/// SO_TIMESTAMPING flags (linux/net_tstamp.h): RX stamps always; TX stamps switched on
/// only around the sendmmsg of responses to interleaved clients, so basic clients cost no
/// error-queue traffic. OPT_ID stays set, so the key counts only stamped datagrams.
private let soTimestamping: Int32 = 37
private let timestampingBase: UInt32 = (1 << 3) | (1 << 4) | (1 << 7) | (1 << 11) // RX_SOFTWARE|SOFTWARE|OPT_ID|OPT_TSONLY
private let timestampingTransmit: UInt32 = 1 << 1 // TX_SOFTWARE

@inline(__always)
private func setTimestamping(_ socket: UDPSocket, _ flags: UInt32) -> Bool {
    var value = Int32(bitPattern: flags)
    return setsockopt(socket.fileDescriptor, SOL_SOCKET, soTimestamping, &value, socklen_t(MemoryLayout<Int32>.size)) == 0
}

/// Maps an OPT_ID key to the response it stamps: (client slot, receive timestamp sent).
struct PendingStamp {
    var id: UInt32 = 0
    var slot: Int32 = -1
    var receive: UInt64 = 0
}

/// One worker: its sockets, batches, core and counters; everything allocated in `init`.
final class Worker: @unchecked Sendable {
    let sockets: [UDPSocket]
    let core: ServerCore
    let identity: ServerState.Identity
    let wakeup: Wakeup
    let receiveBatch: ReceiveBatch
    let plainBatch: SendBatch
    let stampedBatch: SendBatch
    let plainPatch: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let stampedPatch: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let stampedMeta: UnsafeMutablePointer<PendingStamp>
    static let ringSize = 4096
    /// Per socket: a ring of pending TX stamps indexed by key, the next key, the count pending.
    let rings: UnsafeMutablePointer<PendingStamp>
    let nextStampID: UnsafeMutablePointer<UInt32>
    let pendingStamps: UnsafeMutablePointer<Int>
    let pollDescriptors: UnsafeMutablePointer<pollfd>
    let published = Mutex(ServerCounters())
    let transmitStampsAvailable: Bool

    init(sockets: [UDPSocket], core: ServerCore, identity: ServerState.Identity, batchSize: Int, wakeup: Wakeup) throws(KernelError) {
        self.sockets = sockets
        self.core = core
        self.identity = identity
        self.wakeup = wakeup
        receiveBatch = ReceiveBatch(capacity: batchSize, bufferSize: 2048)
        plainBatch = SendBatch(capacity: batchSize, bufferSize: NTPResponder.responseLength)
        stampedBatch = SendBatch(capacity: batchSize, bufferSize: NTPResponder.responseLength)
        plainPatch = .allocate(capacity: batchSize)
        plainPatch.initialize(repeating: nil, count: batchSize)
        stampedPatch = .allocate(capacity: batchSize)
        stampedPatch.initialize(repeating: nil, count: batchSize)
        stampedMeta = .allocate(capacity: batchSize)
        stampedMeta.initialize(repeating: PendingStamp(), count: batchSize)
        rings = .allocate(capacity: Worker.ringSize * sockets.count)
        rings.initialize(repeating: PendingStamp(), count: Worker.ringSize * sockets.count)
        nextStampID = .allocate(capacity: sockets.count)
        nextStampID.initialize(repeating: 0, count: sockets.count)
        pendingStamps = .allocate(capacity: sockets.count)
        pendingStamps.initialize(repeating: 0, count: sockets.count)
        pollDescriptors = .allocate(capacity: sockets.count + 1)
        var stampsOK = true
        for socket in sockets where !setTimestamping(socket, timestampingBase) { stampsOK = false }
        transmitStampsAvailable = stampsOK && core.interleavedEnabled
    }

    deinit {
        plainPatch.deallocate(); stampedPatch.deallocate(); stampedMeta.deallocate()
        rings.deallocate(); nextStampID.deallocate(); pendingStamps.deallocate(); pollDescriptors.deallocate()
    }

    func closeSockets() { for socket in sockets { socket.close() } }

    func refreshState() {
        if let status = try? HostClockStatus.read() {
            core.state = ServerState(hostClock: status, identity: identity, nowUnixNanoseconds: realtimeNanoseconds())
        }
        publishCounters()
    }

    func publishCounters() {
        let snapshot = core.counters
        published.withLock { $0 = snapshot }
    }

    func run() {
        var nextRefresh: Int64 = 0
        while true {
            let now = monotonicRawNanoseconds()
            if now >= nextRefresh {
                refreshState()
                if wakeup.isSignalled { break }
                nextRefresh = now &+ 1_000_000_000
            }
            var received = 0
            for index in 0..<sockets.count {
                let count = (try? receiveBatch.receive(on: sockets[index])) ?? 0
                if count > 0 {
                    received += count
                    process(count: count, socketIndex: index, now: now)
                }
                if pendingStamps[index] > 0 { drainTransmitStamps(socketIndex: index) }
            }
            if received == 0 {
                publishCounters()
                // Idle: sleep until a datagram, a TX stamp, the wakeup, or the next refresh.
                for index in 0..<sockets.count {
                    pollDescriptors[index] = pollfd(fd: sockets[index].fileDescriptor, events: Int16(POLLIN), revents: 0)
                }
                pollDescriptors[sockets.count] = pollfd(fd: wakeup.fileDescriptor, events: Int16(POLLIN), revents: 0)
                let waitMilliseconds = Int32(clamping: max(1, (nextRefresh &- now) / 1_000_000))
                _ = poll(pollDescriptors, nfds_t(sockets.count + 1), waitMilliseconds)
                if pollDescriptors[sockets.count].revents & Int16(POLLIN) != 0 { break }
                for index in 0..<sockets.count where pollDescriptors[index].revents & Int16(POLLERR) != 0 {
                    drainTransmitStamps(socketIndex: index)
                }
            }
        }
        refreshState()
    }

    @inline(__always)
    func process(count: Int, socketIndex: Int, now: Int64) {
        let socket = sockets[socketIndex]
        for i in 0..<count {
            if receiveBatch.isTruncated(at: i) {
                core.counters.received &+= 1
                core.counters.malformed &+= 1
                continue
            }
            guard let source = receiveBatch.sourceAddress(at: i), let buffer = plainBatch.nextBuffer() else { continue }
            var receiveNanoseconds = receiveBatch.receiveRealtimeNanoseconds(at: i)
            if receiveNanoseconds == 0 {
                receiveNanoseconds = realtimeNanoseconds()
                core.counters.missingReceiveStamp &+= 1
            }
            let outcome = core.handle(request: receiveBatch.bytes(at: i), source: source.key,
                                      receiveUnixNanoseconds: receiveNanoseconds, nowMonotonicNanoseconds: now,
                                      response: buffer.baseAddress!)
            if outcome.length == 0 { continue }
            if outcome.wantsTransmitStamp && transmitStampsAvailable, let stamped = stampedBatch.nextBuffer() {
                let slot = stampedBatch.count
                stamped.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: outcome.length)
                stampedPatch[slot] = outcome.needsTransmitPatch ? stamped.baseAddress : nil
                stampedMeta[slot] = PendingStamp(id: 0, slot: Int32(outcome.slot), receive: outcome.receiveTimestamp)
                stampedBatch.commit(length: outcome.length, to: source)
            } else {
                plainPatch[plainBatch.count] = outcome.needsTransmitPatch ? buffer.baseAddress : nil
                plainBatch.commit(length: outcome.length, to: source)
            }
        }
        if plainBatch.count > 0 {
            let filled = plainBatch.count
            let transmit = NTPTimestamp(unixNanoseconds: realtimeNanoseconds())
            for slot in 0..<filled {
                if let response = plainPatch[slot] { NTPResponder.patchTransmitTimestamp(transmit, in: response) }
            }
            let sent = (try? plainBatch.send(on: socket).sent) ?? 0
            plainBatch.removeAll()
            core.counters.answered &+= UInt64(sent)
            core.counters.sendFailures &+= UInt64(filled - sent)
        }
        if stampedBatch.count > 0 { sendStamped(socketIndex: socketIndex) }
    }

    /// Sends the responses to interleaved clients with TX stamping switched on, and notes
    /// which key each stamp will carry.
    func sendStamped(socketIndex: Int) {
        let socket = sockets[socketIndex]
        let filled = stampedBatch.count
        _ = setTimestamping(socket, timestampingBase | timestampingTransmit)
        let transmit = NTPTimestamp(unixNanoseconds: realtimeNanoseconds())
        for slot in 0..<filled {
            if let response = stampedPatch[slot] { NTPResponder.patchTransmitTimestamp(transmit, in: response) }
        }
        let sent = (try? stampedBatch.send(on: socket).sent) ?? 0
        stampedBatch.removeAll()
        _ = setTimestamping(socket, timestampingBase)
        let ring = rings + socketIndex * Worker.ringSize
        for slot in 0..<sent {
            let id = nextStampID[socketIndex] &+ UInt32(slot)
            var meta = stampedMeta[slot]
            meta.id = id
            ring[Int(id) & (Worker.ringSize - 1)] = meta
        }
        nextStampID[socketIndex] &+= UInt32(sent)
        pendingStamps[socketIndex] += sent
        core.counters.answered &+= UInt64(sent)
        core.counters.sendFailures &+= UInt64(filled - sent)
    }

    /// Reads queued TX stamps and stores each in its client's entry.
    func drainTransmitStamps(socketIndex: Int) {
        let socket = sockets[socketIndex]
        let ring = rings + socketIndex * Worker.ringSize
        while let stamp = try? socket.receiveTransmitTimestamp() {
            let meta = ring[Int(stamp.id) & (Worker.ringSize - 1)]
            if meta.id == stamp.id && meta.slot >= 0 {
                core.storeTransmitStamp(slot: Int(meta.slot), receive: meta.receive, transmitUnixNanoseconds: stamp.realtimeNanoseconds)
            }
            pendingStamps[socketIndex] = max(0, pendingStamps[socketIndex] - 1)
        }
        // Stamps the kernel never delivers (dropped under memory pressure) must not make us
        // read the error queue after every batch forever: stamps that come later still wake
        // the idle poll (POLLERR) and are drained there.
        if pendingStamps[socketIndex] > Worker.ringSize { pendingStamps[socketIndex] = 0 }
    }
}
