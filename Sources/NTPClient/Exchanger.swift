import FeedforwardClock
import KernelStamps
import NTPPacket

/// One answered exchange with its four timestamps.
public struct ExchangeResult: Sendable, Equatable {
    public var response: ServerResponse
    /// Raw counter (CLOCK_MONOTONIC_RAW ns) when the request left and the response arrived
    /// (docs/feedforward.md §1–§2): kernel stamps moved from CLOCK_REALTIME into the raw domain
    /// with a `ClockDomainShift` measured right after the syscall.
    public var ta: Int64
    public var tf: Int64
    /// The same two moments on CLOCK_REALTIME (the system clock), for SNTP mode (T1, T4).
    public var t1Realtime: Int64
    public var t4Realtime: Int64
    /// The kernel gave no TX / RX stamp, so a user-space clock read stood in (less precise).
    public var userSpaceTransmitStamp: Bool
    public var userSpaceReceiveStamp: Bool

    /// The filter's stamp.
    public var stamp: Stamp { response.stamp(ta: ta, tf: tf, pivotUnixNanoseconds: t4Realtime) }

    /// RFC 5905 §8 on the system clock: offset θ = ((T2 − T1) + (T3 − T4)) / 2, server minus
    /// system clock (ntpdig's sign: positive means the system clock is behind), and delay δ.
    public var systemClockExchange: (offsetNanoseconds: Int64, delayNanoseconds: Int64) {
        let t2 = response.header.receiveTimestamp.unixNanoseconds(nearestTo: t4Realtime)
        let t3 = response.header.transmitTimestamp.unixNanoseconds(nearestTo: t4Realtime)
        let offset = ((t2 - t1Realtime) + (t3 - t4Realtime)) / 2
        let delay = (t4Realtime - t1Realtime) - (t3 - t2)
        return (offset, delay)
    }
}

public enum ExchangeOutcome: Sendable, Equatable {
    case answered(ExchangeResult)
    /// A kiss-o'-death that passed the origin test (so it really answers our request).
    case kiss(NTPReferenceID, KissAction)
    /// A genuine answer (origin matched) that cannot be used: zero or reversed timestamps,
    /// or an unsynchronised server. Waiting longer would not help.
    case unusable(ResponseRejection)
    case timedOut
}

/// Sends requests and collects answers with kernel timestamps (the shell around
/// `validateResponse`). Runs unprivileged and never touches the system clock.
///
/// Each request goes out on a fresh socket bound to port 0: Linux picks a random ephemeral
/// port (RFC 6056), which is what RFC 9109 §3 asks of a client. One more timestamping socket
/// stays open for the life of the exchanger: the kernel turns software stamping on lazily
/// when the host's first timestamping socket appears (see `UDPSocket.enableReceiveTimestamps`),
/// and keeping one open means the per-request sockets never fall into that unstamped window.
public final class Exchanger {
    private let keepAlive: UDPSocket
    private let receiveBuffer: UnsafeMutableRawBufferPointer
    private let requestBuffer: UnsafeMutableRawBufferPointer
    private var generator = SystemRandomNumberGenerator()

    public init() throws(NTPClientError) {
        do {
            keepAlive = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))
        } catch {
            throw .kernel(error)
        }
        receiveBuffer = .allocate(byteCount: 2048, alignment: 8)
        requestBuffer = .allocate(byteCount: ClientRequest.byteCount, alignment: 8)
    }

    deinit {
        receiveBuffer.deallocate()
        requestBuffer.deallocate()
    }

    /// Waits `nanoseconds` (poll(2) on the idle keep-alive socket: KernelStamps does the waiting).
    public func sleep(nanoseconds: Int64) {
        let deadline = monotonicRawNanoseconds() &+ nanoseconds
        while true {
            let left = deadline &- monotonicRawNanoseconds()
            if left <= 0 { return }
            _ = try? keepAlive.waitUntilReadable(timeoutNanoseconds: left)
        }
    }

    /// One exchange with `server`: send, then wait up to `timeoutNanoseconds` for a valid
    /// answer. Invalid datagrams are handed to `rejected` and waiting continues (a forgery
    /// must not cost us the genuine answer).
    public func exchange(with server: SocketAddress, timeoutNanoseconds: Int64,
                         rejected: (ResponseRejection) -> Void) throws(NTPClientError) -> ExchangeOutcome {
        do {
            return try performExchange(server, timeoutNanoseconds, rejected)
        } catch {
            throw .kernel(error)
        }
    }

    private func performExchange(_ server: SocketAddress, _ timeoutNanoseconds: Int64,
                                 _ rejected: (ResponseRejection) -> Void) throws(KernelError) -> ExchangeOutcome {
        // sendto(2) to port 0 fails with EINVAL ("Invalid argument"), which names neither
        // the cause nor the fix.
        guard server.port != 0 else {
            throw KernelError(operation: "send to \(server)", code: 0, detail: "port 0 is not a server port",
                              hint: "give the server's port, or none for NTP's 123")
        }
        var options = UDPSocket.Options()
        options.receiveTimestamps = true
        options.transmitTimestamps = true
        options.nonBlocking = true
        let bindAddress: SocketAddress = server.family == .ipv4 ? .anyIPv4(port: 0) : .anyIPv6(port: 0)
        let socket = try UDPSocket(bindingTo: bindAddress, options: options)
        defer { socket.close() }

        var request = OutstandingRequest(
            transmitTimestamp: ClientRequest.randomTransmitTimestamp(using: &generator), server: server)
        do {
            try ClientRequest.encode(transmitTimestamp: request.transmitTimestamp, into: requestBuffer)
        } catch {
            preconditionFailure("a 48-byte buffer holds a request")
        }

        // User-space fallbacks bracket the send; the kernel stamp lies between them.
        let rawBeforeSend = monotonicRawNanoseconds()
        let realtimeBeforeSend = realtimeNanoseconds()
        let transmitID = try socket.send(UnsafeRawBufferPointer(requestBuffer), to: server)
        let sendShift = ClockDomainShift.measure()
        let deadline = sendShift.rawNanoseconds &+ timeoutNanoseconds

        var transmitRealtime: Int64? = nil
        func collectTransmitStamp() throws(KernelError) {
            while transmitRealtime == nil, let stamp = try socket.receiveTransmitTimestamp() {
                if stamp.id == transmitID { transmitRealtime = stamp.realtimeNanoseconds }
            }
        }
        // On loopback and LANs the stamp is queued within microseconds of send.
        if let stamp = try socket.waitForTransmitTimestamp(timeoutNanoseconds: 20_000_000), stamp.id == transmitID {
            transmitRealtime = stamp.realtimeNanoseconds
        }

        while true {
            let left = deadline &- monotonicRawNanoseconds()
            if left <= 0 { return .timedOut }
            let readiness = try socket.waitUntilReadable(timeoutNanoseconds: left)
            if readiness.contains(.errorQueue) { try collectTransmitStamp() }
            guard readiness.contains(.readable) else { continue }
            while let datagram = try socket.receive(into: receiveBuffer) {
                let receiveShift = ClockDomainShift.measure()
                let bytes = UnsafeRawBufferPointer(rebasing: receiveBuffer[0..<datagram.byteCount])
                switch validateResponse(bytes, from: datagram.source, for: request) {
                case .rejected(let rejection):
                    if case .kiss(let code, let action) = rejection {
                        // Origin already checked: this kiss answers our request.
                        rejected(rejection)
                        return .kiss(code, action)
                    }
                    rejected(rejection)
                    switch rejection.kind {
                    case .zeroTimestamp, .reversedTimestamps, .serverUnsynchronised: return .unusable(rejection)
                    default: break
                    }
                case .valid(let response):
                    request.answered = true
                    try collectTransmitStamp()
                    let ta: Int64, t1: Int64
                    if let transmitRealtime {
                        ta = sendShift.rawNanoseconds(fromRealtime: transmitRealtime)
                        t1 = transmitRealtime
                    } else {
                        ta = rawBeforeSend
                        t1 = realtimeBeforeSend
                    }
                    let tf: Int64, t4: Int64
                    if let receiveRealtime = datagram.receiveRealtimeNanoseconds, receiveRealtime != 0 {
                        tf = receiveShift.rawNanoseconds(fromRealtime: receiveRealtime)
                        t4 = receiveRealtime
                    } else {
                        tf = receiveShift.rawNanoseconds
                        t4 = receiveShift.realtimeNanoseconds(fromRaw: tf)
                    }
                    return .answered(ExchangeResult(
                        response: response, ta: ta, tf: tf, t1Realtime: t1, t4Realtime: t4,
                        userSpaceTransmitStamp: transmitRealtime == nil,
                        userSpaceReceiveStamp: datagram.receiveRealtimeNanoseconds ?? 0 == 0))
                }
            }
        }
    }
}
