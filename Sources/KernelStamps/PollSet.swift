#if canImport(Glibc)
import Glibc
#endif
import CKernelStamps

/// A fixed set of descriptors for poll(2), allocated once and kept up to date entry by entry,
/// so a loop that waits millions of times a second (a busy-polling relay, an idle server
/// worker) neither rebuilds nor allocates anything per wait. One owner thread.
public final class PollSet: @unchecked Sendable {
    public let capacity: Int
    private let entries: UnsafeMutablePointer<pollfd>

    public init(capacity: Int) {
        precondition(capacity > 0, "PollSet: capacity must be at least 1")
        self.capacity = capacity
        entries = .allocate(capacity: capacity)
        entries.initialize(repeating: pollfd(fd: -1, events: 0, revents: 0), count: capacity)
    }

    deinit { entries.deallocate() }

    /// Watches `fileDescriptor` for incoming data (and errors, which poll always reports) at
    /// `index`; -1 makes the entry ignored.
    @inline(__always)
    public func watch(_ fileDescriptor: Int32, at index: Int) {
        precondition(index < capacity)
        entries[index] = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
    }

    /// Waits until one of entries 0..<count is ready or `timeoutMilliseconds` pass (0: look
    /// and return; -1: wait without limit). Returns how many entries are ready; 0 on timeout
    /// or when a signal interrupted the wait.
    @inline(__always)
    @discardableResult
    public func wait(count: Int, timeoutMilliseconds: Int32) -> Int {
        precondition(count <= capacity)
        return max(0, Int(poll(entries, nfds_t(count), timeoutMilliseconds)))
    }

    /// As `wait(count:timeoutMilliseconds:)` with a timeout in nanoseconds (ppoll(2); nil:
    /// without limit), for a thread that must wake at a given instant, not at the next
    /// millisecond. Ends no earlier than asked, and no later than the thread's timer slack.
    @inline(__always)
    @discardableResult
    public func wait(count: Int, timeoutNanoseconds: Int64?) -> Int {
        precondition(count <= capacity)
        return max(0, Int(ck_ppoll_nanoseconds(entries, UInt(count), timeoutNanoseconds.map { max(0, $0) } ?? -1)))
    }

    /// Entry `index` had something to read at the last `wait`.
    @inline(__always)
    public func isReadable(_ index: Int) -> Bool { entries[index].revents & Int16(POLLIN) != 0 }

    /// Entry `index` had error-queue entries (TX stamps, ICMP errors) at the last `wait`.
    @inline(__always)
    public func hasErrorQueue(_ index: Int) -> Bool { entries[index].revents & Int16(POLLERR) != 0 }

    /// Entry `index` reported anything at all at the last `wait`.
    @inline(__always)
    public func isReady(_ index: Int) -> Bool { entries[index].revents != 0 }
}
