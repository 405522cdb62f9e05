#if canImport(Glibc)
import Glibc
#endif
import CKernelStamps

/// The storage both batch kinds share: `capacity` packet buffers of `bufferSize` bytes,
/// address storage, one iovec and one mmsghdr per slot, wired together once.
struct MessageVector {
    let capacity: Int
    let bufferSize: Int
    let buffers: UnsafeMutableRawPointer
    let addresses: UnsafeMutablePointer<sockaddr_storage>
    let iovecs: UnsafeMutablePointer<iovec>
    let headers: UnsafeMutablePointer<ck_mmsghdr>

    /// `iovecLength` is each slot's initial iov_len: the whole buffer to receive into,
    /// 0 for a send slot not yet filled.
    init(capacity: Int, bufferSize: Int, iovecLength: (Int) -> Int) {
        self.capacity = capacity
        self.bufferSize = bufferSize
        buffers = .allocate(byteCount: capacity * bufferSize, alignment: 16)
        addresses = .allocate(capacity: capacity)
        addresses.initialize(repeating: sockaddr_storage(), count: capacity)
        iovecs = .allocate(capacity: capacity)
        headers = .allocate(capacity: capacity)
        for i in 0..<capacity {
            iovecs[i] = iovec(iov_base: buffers + i * bufferSize, iov_len: iovecLength(bufferSize))
            var header = ck_mmsghdr()
            header.msg_hdr.msg_iov = iovecs + i
            header.msg_hdr.msg_iovlen = 1
            header.msg_hdr.msg_name = UnsafeMutableRawPointer(addresses + i)
            headers[i] = header
        }
    }

    func deallocate() {
        buffers.deallocate()
        addresses.deallocate()
        iovecs.deallocate()
        headers.deallocate()
    }
}

/// Buffers for one recvmmsg(2) call, allocated once (packet buffers, address storage,
/// iovecs, mmsghdrs, control buffers, parsed stamps) and reused for every call: the receive
/// path allocates nothing. Owned by one worker thread.
public final class ReceiveBatch: @unchecked Sendable {
    public let capacity: Int
    public let bufferSize: Int
    /// Datagrams held from the last `receive(on:)`.
    public private(set) var count: Int = 0

    private let vector: MessageVector
    private var buffers: UnsafeMutableRawPointer { vector.buffers }
    private var addresses: UnsafeMutablePointer<sockaddr_storage> { vector.addresses }
    private var headers: UnsafeMutablePointer<ck_mmsghdr> { vector.headers }
    private let controls: UnsafeMutableRawPointer
    private let stamps: UnsafeMutablePointer<Int64>

    public init(capacity: Int = 64, bufferSize: Int = 2048) {
        precondition(capacity > 0 && capacity <= 1024 && bufferSize > 0, "ReceiveBatch: capacity 1...1024, bufferSize > 0")
        self.capacity = capacity
        self.bufferSize = bufferSize
        vector = MessageVector(capacity: capacity, bufferSize: bufferSize, iovecLength: { $0 })
        controls = .allocate(byteCount: capacity * controlBytesPerMessage, alignment: 16)
        stamps = .allocate(capacity: capacity)
        stamps.initialize(repeating: 0, count: capacity)
        for i in 0..<capacity {
            vector.headers[i].msg_hdr.msg_control = controls + i * controlBytesPerMessage
        }
    }

    deinit {
        vector.deallocate()
        controls.deallocate()
        stamps.deallocate()
    }

    /// One recvmmsg call with MSG_WAITFORONE: on a blocking socket it waits for the first
    /// datagram (or SO_RCVTIMEO) and then takes whatever else is queued; on a non-blocking
    /// socket it returns at once. Returns the count (0 if nothing was queued or a signal
    /// interrupted). Invalidates the previous batch's bytes.
    @discardableResult
    public func receive(on socket: UDPSocket) throws(KernelError) -> Int {
        for i in 0..<capacity {
            headers[i].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            headers[i].msg_hdr.msg_controllen = controlBytesPerMessage
            headers[i].msg_hdr.msg_flags = 0
            headers[i].msg_len = 0
        }
        let result = ck_recvmmsg(socket.fileDescriptor, headers, UInt32(capacity), Int32(MSG_WAITFORONE))
        if result < 0 {
            count = 0
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return 0 }
            throw KernelError.fromErrno("recvmmsg", code)
        }
        count = Int(result)
        for i in 0..<count {
            stamps[i] = withUnsafeMutablePointer(to: &headers[i].msg_hdr) { receiveTimestamp(in: $0) } ?? 0
        }
        return count
    }

    /// The bytes of datagram `index` (valid until the next `receive`).
    @inline(__always)
    public func bytes(at index: Int) -> UnsafeRawBufferPointer {
        precondition(index < count)
        return UnsafeRawBufferPointer(start: buffers + index * bufferSize, count: Int(headers[index].msg_len))
    }

    /// Source of datagram `index`; nil only for a non-IP family (cannot happen on UDP/IP).
    @inline(__always)
    public func sourceAddress(at index: Int) -> SocketAddress? {
        precondition(index < count)
        return SocketAddress(sockaddr: addresses + index, length: Int(headers[index].msg_hdr.msg_namelen))
    }

    /// Kernel software RX stamp of datagram `index`, CLOCK_REALTIME ns; 0 if none.
    @inline(__always)
    public func receiveRealtimeNanoseconds(at index: Int) -> Int64 {
        precondition(index < count)
        return stamps[index]
    }

    /// The datagram was longer than `bufferSize` and was cut.
    @inline(__always)
    public func isTruncated(at index: Int) -> Bool {
        precondition(index < count)
        return headers[index].msg_hdr.msg_flags & Int32(MSG_TRUNC) != 0
    }
}

/// Buffers for one sendmmsg(2) call, allocated once. Fill slots with `nextBuffer()` and
/// `commit(length:to:requestingTransmitTimestamp:)`, then `send(on:)` sends them all and
/// empties the batch.
public final class SendBatch: @unchecked Sendable {
    public struct Result: Sendable, Equatable {
        /// Datagrams the kernel accepted (slots 0..<sent); the rest were dropped (EAGAIN).
        public let sent: Int
        /// OPT_ID key of the first stamped datagram sent. The stamped datagrams among the
        /// sent slots carry `firstTransmitID`, `firstTransmitID &+ 1`, … in slot order: every
        /// slot on a socket that stamps every datagram, only the slots committed with
        /// `requestingTransmitTimestamp` on a socket with stamps on request.
        public let firstTransmitID: UInt32
        /// How many sent datagrams will have a TX stamp (and so took a key).
        public let stampedCount: Int

        public init(sent: Int, firstTransmitID: UInt32, stampedCount: Int) {
            self.sent = sent
            self.firstTransmitID = firstTransmitID
            self.stampedCount = stampedCount
        }
    }

    public let capacity: Int
    public let bufferSize: Int
    public private(set) var count: Int = 0

    private let vector: MessageVector
    private var buffers: UnsafeMutableRawPointer { vector.buffers }
    private var addresses: UnsafeMutablePointer<sockaddr_storage> { vector.addresses }
    private var iovecs: UnsafeMutablePointer<iovec> { vector.iovecs }
    private var headers: UnsafeMutablePointer<ck_mmsghdr> { vector.headers }
    /// Per slot: a ready SO_TIMESTAMPING control message asking for a software TX stamp,
    /// attached to the slot's header only when the slot asks for a stamp.
    private let stampRequests: UnsafeMutableRawPointer
    private let stampRequested: UnsafeMutablePointer<Bool>

    public init(capacity: Int = 64, bufferSize: Int = 2048) {
        precondition(capacity > 0 && capacity <= 1024 && bufferSize > 0, "SendBatch: capacity 1...1024, bufferSize > 0")
        self.capacity = capacity
        self.bufferSize = bufferSize
        vector = MessageVector(capacity: capacity, bufferSize: bufferSize, iovecLength: { _ in 0 })
        stampRequests = .allocate(byteCount: capacity * transmitStampRequestBytes, alignment: 16)
        stampRequests.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * transmitStampRequestBytes)
        for i in 0..<capacity { writeTransmitStampRequest(at: stampRequests + i * transmitStampRequestBytes) }
        stampRequested = .allocate(capacity: capacity)
        stampRequested.initialize(repeating: false, count: capacity)
    }

    deinit {
        vector.deallocate()
        stampRequests.deallocate()
        stampRequested.deallocate()
    }

    public var isFull: Bool { count == capacity }

    /// The buffer of the next free slot, to write a datagram into; nil when the batch is full.
    @inline(__always)
    public func nextBuffer() -> UnsafeMutableRawBufferPointer? {
        guard count < capacity else { return nil }
        return UnsafeMutableRawBufferPointer(start: buffers + count * bufferSize, count: bufferSize)
    }

    /// Marks the next slot filled with `length` bytes for `destination`. With
    /// `requestingTransmitTimestamp` the datagram carries its own request for a software TX
    /// stamp (effective on a socket with `transmitTimestampsOnRequest`).
    @inline(__always)
    public func commit(length: Int, to destination: SocketAddress, requestingTransmitTimestamp: Bool = false) {
        precondition(count < capacity && length >= 0 && length <= bufferSize, "SendBatch.commit: full or bad length")
        iovecs[count].iov_len = length
        headers[count].msg_hdr.msg_namelen = destination.write(to: addresses + count)
        if requestingTransmitTimestamp {
            headers[count].msg_hdr.msg_control = stampRequests + count * transmitStampRequestBytes
            headers[count].msg_hdr.msg_controllen = transmitStampRequestBytes
        } else {
            headers[count].msg_hdr.msg_control = nil
            headers[count].msg_hdr.msg_controllen = 0
        }
        stampRequested[count] = requestingTransmitTimestamp
        count += 1
    }

    /// Copies `bytes` into the next slot; false if full or too long.
    @discardableResult
    public func append(_ bytes: UnsafeRawBufferPointer, to destination: SocketAddress, requestingTransmitTimestamp: Bool = false) -> Bool {
        guard let buffer = nextBuffer(), bytes.count <= buffer.count else { return false }
        if let base = bytes.baseAddress { buffer.baseAddress!.copyMemory(from: base, byteCount: bytes.count) }
        commit(length: bytes.count, to: destination, requestingTransmitTimestamp: requestingTransmitTimestamp)
        return true
    }

    public func removeAll() { count = 0 }

    /// Whether slot `index` asked for a TX stamp; after `send`, whether it was sent asking,
    /// so the stamped slots in order carry `Result.firstTransmitID`, +1, … (valid until the
    /// next `commit` to that slot).
    @inline(__always)
    public func requestsTransmitTimestamp(at index: Int) -> Bool {
        precondition(index < capacity)
        return stampRequested[index]
    }

    /// Sends every filled slot with as few sendmmsg calls as the kernel allows (normally one)
    /// and empties the batch. A full socket buffer (EAGAIN) drops the rest, as UDP would.
    /// `waiting: false` sends with MSG_DONTWAIT, so a blocking socket (one whose thread waits
    /// in its receive rather than in poll) still drops rather than stalls when its buffer is full.
    @discardableResult
    public func send(on socket: UDPSocket, waiting: Bool = true) throws(KernelError) -> Result {
        let flags = Int32(MSG_NOSIGNAL) | (waiting ? 0 : Int32(MSG_DONTWAIT))
        let firstID = socket.nextTransmitID
        let everyDatagram = socket.stampsEveryDatagram
        let keyed = socket.transmitKeysEnabled
        var sent = 0
        var stamped = 0
        defer {
            count = 0
            if keyed { socket.nextTransmitID = firstID &+ UInt32(truncatingIfNeeded: stamped) }
        }
        while sent < count {
            let result = ck_sendmmsg(socket.fileDescriptor, headers + sent, UInt32(count - sent), flags)
            if result < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { break }
                if sent == 0 { throw KernelError.fromErrno("sendmmsg", code) }
                // One bad destination: skip it and carry on with the rest. It took no key, so
                // it no longer counts as asking (see `requestsTransmitTimestamp(at:)`).
                stampRequested[sent] = false
                sent += 1
                continue
            }
            if result == 0 { break }
            for slot in sent..<(sent + Int(result)) where everyDatagram || stampRequested[slot] { stamped += 1 }
            sent += Int(result)
        }
        return Result(sent: sent, firstTransmitID: firstID, stampedCount: keyed ? stamped : 0)
    }
}
