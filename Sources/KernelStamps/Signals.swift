#if canImport(Glibc)
import Glibc
#endif
import CKernelStamps

/// Delivers SIGINT/SIGTERM/SIGUSR1 (or any set) as readable events on a signalfd instead of
/// asynchronous handlers, so a daemon's main thread can wait for them and shut down cleanly
/// (or print counters) with ordinary code.
///
/// Create it on the main thread **before** starting worker threads: the signals are blocked
/// in the creating thread and threads created afterwards inherit that mask, so no thread
/// takes the default action (termination) and every signal lands on the signalfd.
public final class SignalReceiver: @unchecked Sendable {
    public let fileDescriptor: Int32
    private let oldMask: UnsafeMutableRawPointer
    private var closed = false

    public init(signals: [Int32] = [SIGINT, SIGTERM, SIGUSR1]) throws(KernelError) {
        let mask = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 16)
        mask.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
        let fd = signals.withUnsafeBufferPointer { ck_signalfd_block($0.baseAddress, Int32($0.count), mask) }
        guard fd >= 0 else {
            mask.deallocate()
            throw KernelError.fromErrno("signalfd")
        }
        fileDescriptor = fd
        oldMask = mask
    }

    deinit {
        close()
        oldMask.deallocate()
    }

    /// A pending signal's number, or nil if none is pending (does not wait).
    public func pending() throws(KernelError) -> Int32? {
        let result = ck_signalfd_read(fileDescriptor)
        if result < 0 { throw KernelError.fromErrno("read signalfd") }
        return result == 0 ? nil : result
    }

    /// Waits up to `timeoutNanoseconds` (nil: forever) for a signal; nil on timeout.
    public func next(timeoutNanoseconds: Int64?) throws(KernelError) -> Int32? {
        if let signal = try pending() { return signal }
        let milliseconds: Int32 = timeoutNanoseconds.map { Int32(clamping: max(0, ($0 + 999_999) / 1_000_000)) } ?? -1
        var fds = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
        let result = poll(&fds, 1, milliseconds)
        if result < 0 && errno != EINTR { throw KernelError.fromErrno("poll signalfd") }
        return try pending()
    }

    /// Closes the signalfd and restores the creating thread's previous signal mask. Call it
    /// from the thread that created the receiver.
    public func close() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(fileDescriptor)
        _ = ck_restore_sigmask(oldMask)
    }

    /// Sends `signal` to the calling thread only (for tests: a blocked, thread-directed
    /// signal is read from this thread's signalfd and never reaches another thread).
    public static func raiseInCurrentThread(_ signal: Int32) {
        _ = ck_raise_in_this_thread(signal)
    }
}

/// Ignores SIGPIPE for the whole process, so a write to a pipe whose reader went away fails
/// with EPIPE instead of killing the process.
public func ignoreBrokenPipeSignal() {
    signal(SIGPIPE, SIG_IGN)
}
