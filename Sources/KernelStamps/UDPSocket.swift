#if canImport(Glibc)
import Glibc
#endif
import CKernelStamps

/// A kernel software transmit timestamp read from a socket's error queue.
public struct TransmitTimestamp: Sendable, Equatable {
    /// The SOF_TIMESTAMPING_OPT_ID key: the index of the datagram on this socket, counted per
    /// datagram sent (each message of a sendmmsg counts once) from 0 when TX stamps were
    /// enabled. `UDPSocket.send` returns it and `UDPSocket.nextTransmitID` predicts it.
    public let id: UInt32
    /// CLOCK_REALTIME nanoseconds when the datagram left the stack (software stamp).
    public let realtimeNanoseconds: Int64
}

/// One datagram received by `UDPSocket.receive(into:)`.
public struct ReceivedDatagram: Sendable, Equatable {
    public let byteCount: Int
    public let source: SocketAddress?
    /// Kernel software RX stamp, CLOCK_REALTIME nanoseconds; nil if the kernel gave none.
    public let receiveRealtimeNanoseconds: Int64?
    /// The datagram was longer than the buffer and was cut.
    public let truncated: Bool
}

/// What `waitUntilReadable` saw. Empty means the timeout passed (or a signal interrupted).
public struct Readiness: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// A datagram is queued.
    public static let readable = Readiness(rawValue: 1)
    /// The error queue holds entries (TX timestamps): read them with `receiveTransmitTimestamp`.
    public static let errorQueue = Readiness(rawValue: 2)
    /// The `Wakeup` was signalled: time to stop.
    public static let woken = Readiness(rawValue: 4)
}

/// A UDP socket with kernel timestamps. One owner thread at a time: the single-packet
/// receive path and `nextTransmitID` are not synchronised. Closed by `close()` or deinit.
public final class UDPSocket: @unchecked Sendable {
    public struct Options: Sendable {
        /// SO_REUSEPORT: several sockets (one per worker) on one address; the kernel spreads load.
        public var reusePort = false
        /// O_NONBLOCK: receives return nil/0 at once when nothing is queued.
        public var nonBlocking = false
        /// SO_RCVTIMEO for a blocking socket: receives give up after this long.
        public var receiveTimeoutNanoseconds: Int64? = nil
        /// Kernel software RX stamps on every datagram (SO_TIMESTAMPING RX_SOFTWARE|SOFTWARE).
        public var receiveTimestamps = true
        /// Kernel software TX stamps on the error queue for every datagram
        /// (TX_SOFTWARE|SOFTWARE|OPT_TSONLY|OPT_ID).
        public var transmitTimestamps = false
        /// Kernel software TX stamps only for the datagrams that ask for one
        /// (`SendBatch.commit(length:to:requestingTransmitTimestamp:)`): the socket is set up
        /// for keyed stamps (SOFTWARE|OPT_TSONLY|OPT_ID) and each such message carries its own
        /// SO_TIMESTAMPING control message, as chrony's server does, so datagrams that need no
        /// stamp cost no error-queue traffic and no setsockopt per send.
        public var transmitTimestampsOnRequest = false
        /// IPV6_V6ONLY for IPv6 sockets (true: listen on IPv6 only; add an IPv4 socket for v4).
        public var ipv6Only = true
        /// IPv4 only: IP_MTU_DISCOVER = IP_PMTUDISC_DO, so every datagram leaves with DF set
        /// and is never fragmented. Linux then writes IP ID 0 (allowed for such "atomic"
        /// datagrams, RFC 6864 §4.1) instead of hashing a fresh ID for each datagram of an
        /// unconnected socket, one keyed hash and one shared atomic counter less per send.
        /// Only for sockets whose datagrams are small: one larger than the path MTU fails
        /// with EMSGSIZE instead of being fragmented.
        public var dontFragment = false
        public var receiveBufferBytes: Int? = nil
        public var sendBufferBytes: Int? = nil
        public init() {}
    }

    public let family: SocketAddress.Family
    /// The descriptor, -1 once closed.
    public private(set) var fileDescriptor: Int32
    /// The OPT_ID key the next stamped datagram sent on this socket will carry (see
    /// `TransmitTimestamp.id`). The kernel counts only datagrams that are stamped: every one
    /// after `enableTransmitTimestamps`, only those that ask after `enableTransmitTimestampsOnRequest`.
    public internal(set) var nextTransmitID: UInt32 = 0
    private var timestampingFlags: UInt32 = 0
    private let control: UnsafeMutableRawPointer
    private let addressStorage: UnsafeMutablePointer<sockaddr_storage>

    /// Opens a UDP socket (close-on-exec) of the family.
    public init(family: SocketAddress.Family) throws(KernelError) {
        let domain = family == .ipv4 ? AF_INET : AF_INET6
        let fd = socket(domain, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw KernelError.fromErrno(family == .ipv4 ? "socket(IPv4 UDP)" : "socket(IPv6 UDP)") }
        self.family = family
        fileDescriptor = fd
        control = UnsafeMutableRawPointer.allocate(byteCount: controlBytesPerMessage, alignment: 16)
        addressStorage = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)
    }

    /// Opens a socket of the address's family, applies `options` and binds it.
    public convenience init(bindingTo address: SocketAddress, options: Options = Options()) throws(KernelError) {
        try self.init(family: address.family)
        do {
            try apply(options)
            try bind(to: address)
        } catch {
            close()
            throw error
        }
    }

    deinit {
        close()
        control.deallocate()
        addressStorage.deallocate()
    }

    /// Closes the descriptor (idempotent). Another thread blocked on it must be woken by a
    /// `Wakeup` first: closing under a waiting thread is a race in any language.
    public func close() {
        if fileDescriptor >= 0 {
            _ = Glibc.close(fileDescriptor)
            fileDescriptor = -1
        }
    }

    /// shutdown(SHUT_RD): a thread blocked receiving on this socket returns at once (Linux
    /// wakes the waiters even on an unconnected UDP socket, and answers ENOTCONN, which is
    /// expected and ignored), and every later receive returns an empty datagram instead of
    /// waiting. This is how a worker blocked in `ReceiveBatch.receive(on:)` is stopped: an
    /// eventfd cannot wake a thread that is not in poll.
    public func shutdownReceiving() {
        if fileDescriptor >= 0 { _ = Glibc.shutdown(fileDescriptor, Int32(SHUT_RD)) }
    }

    // MARK: options

    public func apply(_ options: Options) throws(KernelError) {
        if family == .ipv6 { try setOption(Int32(IPPROTO_IPV6), Int32(IPV6_V6ONLY), options.ipv6Only ? 1 : 0, "IPV6_V6ONLY") }
        if options.reusePort { try setOption(SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT") }
        if options.dontFragment && family == .ipv4 {
            try setOption(Int32(IPPROTO_IP), IP_MTU_DISCOVER, IP_PMTUDISC_DO, "IP_MTU_DISCOVER")
        }
        if let bytes = options.receiveBufferBytes { try setOption(SOL_SOCKET, SO_RCVBUF, Int32(clamping: bytes), "SO_RCVBUF") }
        if let bytes = options.sendBufferBytes { try setOption(SOL_SOCKET, SO_SNDBUF, Int32(clamping: bytes), "SO_SNDBUF") }
        if options.nonBlocking { try setNonBlocking(true) }
        if let timeout = options.receiveTimeoutNanoseconds { try setReceiveTimeout(nanoseconds: timeout) }
        if options.receiveTimestamps { try enableReceiveTimestamps() }
        if options.transmitTimestamps { try enableTransmitTimestamps() }
        if options.transmitTimestampsOnRequest { try enableTransmitTimestampsOnRequest() }
    }

    func setOption(_ level: Int32, _ name: Int32, _ value: Int32, _ label: String) throws(KernelError) {
        var v = value
        if setsockopt(fileDescriptor, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw KernelError.fromErrno("setsockopt \(label)")
        }
    }

    public func setNonBlocking(_ on: Bool) throws(KernelError) {
        let flags = fcntl(fileDescriptor, F_GETFL)
        guard flags >= 0 else { throw KernelError.fromErrno("fcntl F_GETFL") }
        let updated = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if fcntl(fileDescriptor, F_SETFL, updated) != 0 { throw KernelError.fromErrno("fcntl F_SETFL O_NONBLOCK") }
    }

    /// SO_RCVTIMEO: a blocking receive returns nil after this long (0 = wait forever).
    public func setReceiveTimeout(nanoseconds: Int64) throws(KernelError) {
        var tv = timeval(tv_sec: Int(nanoseconds / 1_000_000_000), tv_usec: Int((nanoseconds % 1_000_000_000) / 1000))
        if nanoseconds > 0 && tv.tv_sec == 0 && tv.tv_usec == 0 { tv.tv_usec = 1 }
        if setsockopt(fileDescriptor, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size)) != 0 {
            throw KernelError.fromErrno("setsockopt SO_RCVTIMEO")
        }
    }

    /// Kernel software RX stamps (CLOCK_REALTIME) on every datagram from now on.
    ///
    /// SO_TIMESTAMPING rather than SO_TIMESTAMPNS: when the host's first timestamping socket
    /// appears, the kernel enables stamping through a deferred static key, and datagrams in
    /// that short window (milliseconds) carry no stamp. SO_TIMESTAMPNS would silently stamp
    /// them at recvmsg time instead (a false, late stamp); here they report nil/0, so the
    /// caller can fall back to a user-space clock read knowingly.
    public func enableReceiveTimestamps() throws(KernelError) {
        try setTimestamping(timestampingFlags | UInt32(CK_SOF_TIMESTAMPING_RX_SOFTWARE) | UInt32(CK_SOF_TIMESTAMPING_SOFTWARE))
    }

    /// Kernel software TX stamps on the error queue, keyed by OPT_ID (counting from 0 from the
    /// first time this is enabled; enabling again does not reset the count). OPT_TSONLY: the
    /// queue carries only the stamp, not a copy of the packet.
    public func enableTransmitTimestamps() throws(KernelError) {
        let flags = UInt32(CK_SOF_TIMESTAMPING_TX_SOFTWARE) | UInt32(CK_SOF_TIMESTAMPING_SOFTWARE)
            | UInt32(CK_SOF_TIMESTAMPING_OPT_TSONLY) | UInt32(CK_SOF_TIMESTAMPING_OPT_ID)
        let first = timestampingFlags & UInt32(CK_SOF_TIMESTAMPING_OPT_ID) == 0
        try setTimestamping(timestampingFlags | flags)
        if first { nextTransmitID = 0 }
    }

    /// Keyed TX stamps for the datagrams that ask for one with a control message (see
    /// `Options.transmitTimestampsOnRequest`); the key counts only those datagrams, from 0 the
    /// first time keys are enabled.
    public func enableTransmitTimestampsOnRequest() throws(KernelError) {
        let flags = UInt32(CK_SOF_TIMESTAMPING_SOFTWARE) | UInt32(CK_SOF_TIMESTAMPING_OPT_TSONLY)
            | UInt32(CK_SOF_TIMESTAMPING_OPT_ID)
        let first = timestampingFlags & UInt32(CK_SOF_TIMESTAMPING_OPT_ID) == 0
        try setTimestamping(timestampingFlags | flags)
        if first { nextTransmitID = 0 }
    }

    private func setTimestamping(_ flags: UInt32) throws(KernelError) {
        try setOption(SOL_SOCKET, Int32(CK_SO_TIMESTAMPING), Int32(bitPattern: flags), "SO_TIMESTAMPING")
        timestampingFlags = flags
    }

    /// Stamped datagrams carry OPT_ID keys (every datagram or on request).
    var transmitKeysEnabled: Bool { timestampingFlags & UInt32(CK_SOF_TIMESTAMPING_OPT_ID) != 0 }

    /// Every datagram is stamped (and so takes a key), not only those that ask.
    var stampsEveryDatagram: Bool { transmitKeysEnabled && timestampingFlags & UInt32(CK_SOF_TIMESTAMPING_TX_SOFTWARE) != 0 }

    // MARK: addresses

    public func bind(to address: SocketAddress) throws(KernelError) {
        let result = address.withSockAddr { Glibc.bind(fileDescriptor, $0, $1) }
        if result != 0 { throw KernelError.fromErrno("bind \(address)", port: address.port) }
    }

    /// Fixes the peer: plain `send(_:)` works without an address and only that peer's
    /// datagrams are received; an ICMP port-unreachable shows up as ECONNREFUSED.
    public func connect(to address: SocketAddress) throws(KernelError) {
        let result = address.withSockAddr { Glibc.connect(fileDescriptor, $0, $1) }
        if result != 0 { throw KernelError.fromErrno("connect \(address)") }
    }

    /// The bound address (useful after binding port 0).
    public func localAddress() throws(KernelError) -> SocketAddress {
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = addressStorage.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            getsockname(fileDescriptor, $0, &length)
        }
        guard result == 0 else { throw KernelError.fromErrno("getsockname") }
        guard let address = SocketAddress(sockaddr: addressStorage, length: Int(length)) else {
            throw KernelError(operation: "getsockname", code: 0, detail: "not an IPv4/IPv6 address")
        }
        return address
    }

    // MARK: single datagrams (client convenience)

    /// Sends one datagram (to `destination`, or to the connected peer if nil). Returns the
    /// OPT_ID key its TX stamp will carry. Throws on failure, including EAGAIN.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to destination: SocketAddress? = nil) throws(KernelError) -> UInt32 {
        while true {
            let sent: Int
            if let destination {
                sent = destination.withSockAddr { Glibc.sendto(fileDescriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, $1) }
            } else {
                sent = Glibc.send(fileDescriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                let id = nextTransmitID
                if stampsEveryDatagram { nextTransmitID &+= 1 }
                return id
            }
            if errno == EINTR { continue }
            throw KernelError.fromErrno(destination.map { "send to \($0)" } ?? "send")
        }
    }

    @discardableResult
    public func send(_ bytes: [UInt8], to destination: SocketAddress? = nil) throws(KernelError) -> UInt32 {
        var result: Result<UInt32, KernelError> = .success(0)
        bytes.withUnsafeBytes { raw in
            do throws(KernelError) { result = .success(try send(raw, to: destination)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    /// Receives one datagram with its source and kernel RX stamp. Returns nil when nothing
    /// arrived (non-blocking socket, SO_RCVTIMEO expired, or interrupted by a signal).
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(KernelError) -> ReceivedDatagram? {
        var iov = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
        var message = msghdr()
        let received: Int = withUnsafeMutablePointer(to: &iov) { iovPointer in
            message.msg_name = UnsafeMutableRawPointer(addressStorage)
            message.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            message.msg_iov = iovPointer
            message.msg_iovlen = 1
            message.msg_control = control
            message.msg_controllen = controlBytesPerMessage
            return recvmsg(fileDescriptor, &message, 0)
        }
        if received < 0 {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return nil }
            throw KernelError.fromErrno("receive", code)
        }
        let stamp = receiveTimestamp(in: &message)
        return ReceivedDatagram(byteCount: received,
                                source: SocketAddress(sockaddr: addressStorage, length: Int(message.msg_namelen)),
                                receiveRealtimeNanoseconds: stamp,
                                truncated: message.msg_flags & Int32(MSG_TRUNC) != 0)
    }

    // MARK: TX timestamps

    /// Reads one TX stamp from the error queue without waiting; nil when the queue is empty.
    /// Entries that are not TX stamps (ICMP errors) are skipped.
    public func receiveTransmitTimestamp() throws(KernelError) -> TransmitTimestamp? {
        while true {
            var message = msghdr()
            message.msg_control = control
            message.msg_controllen = controlBytesPerMessage
            let result = recvmsg(fileDescriptor, &message, Int32(CK_MSG_ERRQUEUE) | Int32(MSG_DONTWAIT))
            if result < 0 {
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK { return nil }
                if code == EINTR { continue }
                throw KernelError.fromErrno("receive error queue (TX timestamps)", code)
            }
            if let stamp = transmitTimestamp(in: &message) { return stamp }
        }
    }

    /// Waits up to `timeoutNanoseconds` for a TX stamp (the kernel queues it as the datagram
    /// leaves, normally within microseconds on loopback).
    public func waitForTransmitTimestamp(timeoutNanoseconds: Int64) throws(KernelError) -> TransmitTimestamp? {
        let deadline = monotonicRawNanoseconds() &+ timeoutNanoseconds
        while true {
            if let stamp = try receiveTransmitTimestamp() { return stamp }
            let left = deadline &- monotonicRawNanoseconds()
            if left <= 0 { return nil }
            _ = try wait(events: 0, timeoutNanoseconds: left, wakeup: nil)
        }
    }

    // MARK: waiting

    /// poll(2) for a datagram, error-queue entries, or the wakeup; nil timeout waits forever.
    /// The timeout is rounded up to whole milliseconds.
    public func waitUntilReadable(timeoutNanoseconds: Int64?, wakeup: Wakeup? = nil) throws(KernelError) -> Readiness {
        try wait(events: Int16(POLLIN), timeoutNanoseconds: timeoutNanoseconds, wakeup: wakeup)
    }

    private func wait(events: Int16, timeoutNanoseconds: Int64?, wakeup: Wakeup?) throws(KernelError) -> Readiness {
        let timeoutMilliseconds: Int32
        if let timeoutNanoseconds {
            timeoutMilliseconds = Int32(clamping: max(0, (timeoutNanoseconds + 999_999) / 1_000_000))
        } else {
            timeoutMilliseconds = -1
        }
        var fds = (pollfd(fd: fileDescriptor, events: events, revents: 0),
                   pollfd(fd: wakeup?.fileDescriptor ?? -1, events: Int16(POLLIN), revents: 0))
        let count: nfds_t = wakeup == nil ? 1 : 2
        let result = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, count, timeoutMilliseconds) }
        }
        if result < 0 {
            if errno == EINTR { return [] }
            throw KernelError.fromErrno("poll")
        }
        var readiness: Readiness = []
        if fds.0.revents & Int16(POLLIN) != 0 { readiness.insert(.readable) }
        if fds.0.revents & Int16(POLLERR) != 0 { readiness.insert(.errorQueue) }
        if fds.0.revents & Int16(POLLNVAL) != 0 { throw KernelError(operation: "poll", code: EBADF, hint: "the socket was closed") }
        if fds.1.revents & Int16(POLLIN) != 0 { readiness.insert(.woken) }
        return readiness
    }
}
