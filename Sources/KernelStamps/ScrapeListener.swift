#if canImport(Glibc)
import Glibc
#endif
import CKernelStamps  // socket constants: in release builds Glibc alone does not bring them

/// A TCP listener for a tiny HTTP/1.0 endpoint (the tools' `GET /metrics`): one connection at
/// a time, each given a fixed deadline to send its request head and take the answer, then
/// closed (RFC 1945: HTTP/1.0 closes after one response). A slow, silent or malformed client
/// costs the serving thread at most that deadline and never touches the NTP threads; the
/// socket syscalls live here, what to answer is the caller's closure.
public final class ScrapeListener: @unchecked Sendable {
    public let boundAddress: SocketAddress
    private var listenDescriptor: Int32
    /// Longest request head read; the request line decides, the rest is only drained.
    public static let maximumHeadBytes = 4096

    /// Binds and listens (SO_REUSEADDR, so a restarted daemon can bind while old connections
    /// linger in TIME_WAIT; non-blocking, close-on-exec).
    public init(bindingTo address: SocketAddress) throws(KernelError) {
        let domain = address.family == .ipv4 ? AF_INET : AF_INET6
        let descriptor = socket(domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard descriptor >= 0 else { throw KernelError.fromErrno("socket (TCP) for \(address)") }
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if address.family == .ipv6 {
            _ = setsockopt(descriptor, Int32(IPPROTO_IPV6), Int32(IPV6_V6ONLY), &one, socklen_t(MemoryLayout<Int32>.size))
        }
        let bound = address.withSockAddr { Glibc.bind(descriptor, $0, $1) }
        guard bound == 0 else {
            let error = KernelError.fromErrno("bind \(address) (TCP)", port: address.port)
            _ = Glibc.close(descriptor)
            throw error
        }
        guard listen(descriptor, 16) == 0 else {
            let error = KernelError.fromErrno("listen on \(address)")
            _ = Glibc.close(descriptor)
            throw error
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        let local = named == 0 ? withUnsafePointer(to: &storage) { SocketAddress(sockaddr: $0, length: Int(length)) } : nil
        listenDescriptor = descriptor
        boundAddress = local ?? address
    }

    deinit { close() }

    /// Closes the listening socket (idempotent). Stop `serve` first (its `Wakeup`).
    public func close() {
        if listenDescriptor >= 0 {
            _ = Glibc.close(listenDescriptor)
            listenDescriptor = -1
        }
    }

    /// Accepts and answers connections until `stop` is signalled. For each connection it
    /// reads the request head (up to the blank line, `maximumHeadBytes`, or the deadline),
    /// passes what came (if anything) to `answer`, sends what that returns (nil: nothing)
    /// and closes.
    /// `deadlineNanoseconds` bounds the whole exchange with one client.
    public func serve(until stop: Wakeup, deadlineNanoseconds: Int64 = 1_000_000_000,
                      answer: (_ requestHead: String) -> String?) {
        var descriptors = [pollfd(fd: listenDescriptor, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: stop.fileDescriptor, events: Int16(POLLIN), revents: 0)]
        var head = [UInt8](repeating: 0, count: Self.maximumHeadBytes)
        while true {
            descriptors[0].revents = 0
            descriptors[1].revents = 0
            let ready = poll(&descriptors, 2, -1)
            if ready < 0 && errno != EINTR { return }
            if descriptors[1].revents != 0 { return }
            guard descriptors[0].revents & Int16(POLLIN) != 0 else { continue }
            let connection = accept(listenDescriptor, nil, nil)
            guard connection >= 0 else { continue }  // the client gave up already, or EMFILE: try the next
            // Non-blocking so a stalled client can only cost the deadline; close-on-exec.
            _ = fcntl(connection, F_SETFL, fcntl(connection, F_GETFL) | O_NONBLOCK)
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            let deadline = monotonicRawNanoseconds() &+ deadlineNanoseconds
            let length = Self.readHead(connection, into: &head, deadline: deadline, stop: stop)
            if length > 0, let response = answer(String(decoding: head[0..<length], as: UTF8.self)) {
                Self.sendAll(connection, response, deadline: deadline)
            }
            _ = Glibc.close(connection)
        }
    }

    /// Reads until the head's blank line, a full buffer, end of stream or the deadline.
    private static func readHead(_ connection: Int32, into buffer: inout [UInt8], deadline: Int64, stop: Wakeup) -> Int {
        var length = 0
        while length < buffer.count {
            // Out of time: what came so far is answered (a short error unless it was a whole
            // request line), so a slow client learns why it was dropped.
            guard wait(connection, Int16(POLLIN), until: deadline, stop: stop) else { return stop.isSignalled ? 0 : length }
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress! + length, $0.count - length, 0) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return 0
            }
            if count == 0 { return length }  // the client closed its side: answer what came
            let searchFrom = max(0, length - 3)
            length += count
            if containsBlankLine(buffer, from: searchFrom, to: length) { return length }
        }
        return length
    }

    private static func containsBlankLine(_ buffer: [UInt8], from start: Int, to end: Int) -> Bool {
        var index = start
        while index + 1 < end {
            if buffer[index] == 0x0A && buffer[index + 1] == 0x0A { return true }
            if index + 3 < end && buffer[index] == 0x0D && buffer[index + 1] == 0x0A
                && buffer[index + 2] == 0x0D && buffer[index + 3] == 0x0A { return true }
            index += 1
        }
        return false
    }

    private static func sendAll(_ connection: Int32, _ text: String, deadline: Int64) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                // A client that hung up gives EPIPE, not SIGPIPE.
                let sent = send(connection, bytes.baseAddress! + offset, bytes.count - offset, sendFlagNoSignal)
                if sent > 0 { offset += sent; continue }
                if sent < 0 && (errno == EAGAIN || errno == EINTR) {
                    if waitWithoutStop(connection, Int16(POLLOUT), until: deadline) { continue }
                }
                return
            }
        }
    }

    /// Polls one descriptor (and the stop eventfd) until `events` or the deadline.
    private static func wait(_ descriptor: Int32, _ events: Int16, until deadline: Int64, stop: Wakeup) -> Bool {
        var descriptors = [pollfd(fd: descriptor, events: events, revents: 0),
                           pollfd(fd: stop.fileDescriptor, events: Int16(POLLIN), revents: 0)]
        while true {
            let left = deadline &- monotonicRawNanoseconds()
            if left <= 0 { return false }
            let ready = poll(&descriptors, 2, Int32(clamping: max(1, left / 1_000_000)))
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 || descriptors[1].revents != 0 { return false }
            return descriptors[0].revents != 0
        }
    }

    private static func waitWithoutStop(_ descriptor: Int32, _ events: Int16, until deadline: Int64) -> Bool {
        var descriptor = pollfd(fd: descriptor, events: events, revents: 0)
        let left = deadline &- monotonicRawNanoseconds()
        if left <= 0 { return false }
        return poll(&descriptor, 1, Int32(clamping: max(1, left / 1_000_000))) == 1
    }
}

/// MSG_NOSIGNAL (bits/socket.h): a send to a peer that went away fails with EPIPE instead of
/// raising SIGPIPE. Spelled out because files that do not import CKernelStamps do not see
/// the constant in release builds.
let sendFlagNoSignal: Int32 = 0x4000

extension SocketAddress {
    /// 127.0.0.0/8, ::1, or an IPv4-mapped loopback address: reachable from this host only.
    public var isLoopback: Bool {
        if let ipv4 = ipv4Address { return ipv4 >> 24 == 127 }
        return family == .ipv6 && high == 0 && low == 1
    }
}
