#if canImport(Glibc)
import Glibc
#endif
import CKernelStamps

/// An eventfd that another thread signals to wake workers blocked in
/// `UDPSocket.waitUntilReadable(…, wakeup:)`. For shutdown, signal once and never drain:
/// the eventfd stays readable, so every worker polling it wakes and sees `.woken`.
public final class Wakeup: @unchecked Sendable {
    public let fileDescriptor: Int32

    public init() throws(KernelError) {
        let fd = ck_eventfd()
        guard fd >= 0 else { throw KernelError.fromErrno("eventfd") }
        fileDescriptor = fd
    }

    deinit { _ = close(fileDescriptor) }

    /// Makes the eventfd readable (safe from any thread; async-signal-safe write).
    public func signal() { _ = ck_eventfd_signal(fileDescriptor) }

    /// Clears it; returns whether it had been signalled.
    @discardableResult
    public func drain() -> Bool { ck_eventfd_drain(fileDescriptor) == 1 }

    /// Whether it is signalled, without clearing.
    public var isSignalled: Bool {
        var fds = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
        return poll(&fds, 1, 0) == 1 && fds.revents & Int16(POLLIN) != 0
    }
}
