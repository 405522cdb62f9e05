#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import CKernelStamps  // brings MSG_NOSIGNAL, which Glibc alone does not import in release builds

/// A Unix datagram socket that sends to one path: the channel to chronyd's SOCK refclock
/// (the daemon binds the path; we only send). Samples are fixed-size datagrams built by the
/// caller; sending never blocks (a daemon that is not reading loses samples, it never stalls
/// the client).
public final class UnixDatagramSender: @unchecked Sendable {
    public let path: String
    private let descriptor: Int32
    private var address = sockaddr_un()

    public init(path: String) throws(KernelError) {
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else {
            throw KernelError(operation: "unix socket \(path)", code: 0,
                              detail: "the path is longer than the \(capacity - 1) bytes a Unix socket address holds",
                              hint: "use a shorter path, e.g. under /run or /tmp")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw KernelError.fromErrno("socket(AF_UNIX, SOCK_DGRAM)") }
        descriptor = fd
        self.path = path
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
            raw[path.utf8.count] = 0
        }
    }

    deinit { _ = close(descriptor) }

    /// Sends one datagram. Throws with a hint when nobody listens at the path.
    public func send(_ bytes: UnsafeRawBufferPointer) throws(KernelError) {
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(descriptor, bytes.baseAddress, bytes.count, sendFlagNoSignal, $0,
                       socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard sent == bytes.count else {
            let code = errno
            let hint: String? = code == ENOENT || code == ECONNREFUSED
                ? "nothing listens there: start chronyd with 'refclock SOCK \(path)' first" : nil
            throw KernelError(operation: "send to \(path)", code: code, hint: hint)
        }
    }
}

/// A System V shared-memory segment attached read-write: the NTP SHM refclock channel that
/// ntpd, NTPsec and chronyd read (key 0x4e545030 + unit). Word stores are atomic, with
/// fences where the caller's protocol needs them; the layout belongs to the caller.
public final class SharedMemorySegment: @unchecked Sendable {
    public let key: Int32
    public let byteCount: Int
    private let id: Int32
    private let base: UnsafeMutableRawPointer

    /// Gets (creating with `mode` if needed) the segment `key` of `byteCount` bytes and
    /// attaches it.
    public init(key: Int32, byteCount: Int, mode: Int32 = 0o600) throws(KernelError) {
        let id = shmget(key_t(key), byteCount, IPC_CREAT | mode)
        guard id >= 0 else {
            let code = errno
            throw KernelError(operation: "shmget key 0x\(String(UInt32(bitPattern: key), radix: 16))", code: code,
                              hint: code == EINVAL ? "a smaller segment with this key exists: remove it (ipcrm -M 0x\(String(UInt32(bitPattern: key), radix: 16))) or pick another unit"
                                  : code == EACCES ? "the segment belongs to another user: run as that user or pick another unit" : nil)
        }
        guard let address = shmat(id, nil, 0), address != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw KernelError.fromErrno("shmat key 0x\(String(UInt32(bitPattern: key), radix: 16))")
        }
        self.key = key
        self.byteCount = byteCount
        self.id = id
        base = address
    }

    deinit { _ = shmdt(base) }

    /// Marks this segment for removal: it goes once every process detached.
    public func markForRemoval() { _ = shmctl(id, IPC_RMID, nil) }

    /// Marks segment `key` for removal (it goes once nobody is attached); for tests and
    /// cleanup. Does nothing when there is none.
    public static func remove(key: Int32) {
        let id = shmget(key_t(key), 0, 0)
        if id >= 0 { _ = shmctl(id, IPC_RMID, nil) }
    }

    public func store32(_ value: Int32, atByteOffset offset: Int) {
        precondition(offset % 4 == 0 && offset + 4 <= byteCount)
        (base + offset).assumingMemoryBound(to: Atomic<Int32>.self).pointee.store(value, ordering: .relaxed)
    }

    public func store64(_ value: Int64, atByteOffset offset: Int) {
        precondition(offset % 8 == 0 && offset + 8 <= byteCount)
        (base + offset).assumingMemoryBound(to: Atomic<Int64>.self).pointee.store(value, ordering: .relaxed)
    }

    public func load32(atByteOffset offset: Int) -> Int32 {
        precondition(offset % 4 == 0 && offset + 4 <= byteCount)
        return (base + offset).assumingMemoryBound(to: Atomic<Int32>.self).pointee.load(ordering: .relaxed)
    }

    public func load64(atByteOffset offset: Int) -> Int64 {
        precondition(offset % 8 == 0 && offset + 8 <= byteCount)
        return (base + offset).assumingMemoryBound(to: Atomic<Int64>.self).pointee.load(ordering: .relaxed)
    }

    /// Orders the stores before it against the stores after it (a reader in another process
    /// sees them in that order).
    public func fence() { atomicMemoryFence(ordering: .sequentiallyConsistent) }
}
