#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import CKernelStamps

/// How a thread is scheduled: the one vocabulary for the server's workers, the lab's relays,
/// its client thread and the thread that starts them.
public enum ThreadScheduling: Sendable, Equatable {
    /// Whatever the starting thread has (POSIX threads inherit policy and priority).
    case inherited
    /// SCHED_FIFO at `priority` (1–99): wakes ahead of every normal thread. For threads whose
    /// wake-up latency becomes measurement error. Needs root or CAP_SYS_NICE.
    case realtime(priority: Int32)
    /// SCHED_OTHER at `nice` (−20…19). A nice below the current one needs privilege and is
    /// left as it was without it. Right for a thread that spins: a spinning real-time thread
    /// starves the others and is throttled by the kernel (sched_rt_runtime_us).
    case normal(nice: Int32)

    /// Applies this scheduling to the calling thread. Returns false when the kernel refused
    /// (not permitted); the thread then keeps what it had. On Linux the nice value belongs to
    /// the thread, so `normal(nice:)` changes only the caller (setpriority with `who` 0).
    @discardableResult
    public func applyToCallingThread() -> Bool {
        var parameters = sched_param()
        switch self {
        case .inherited:
            return true
        case .realtime(let priority):
            parameters.sched_priority = priority
            return pthread_setschedparam(pthread_self(), SCHED_FIFO, &parameters) == 0
        case .normal(let nice):
            parameters.sched_priority = 0
            let policyChanged = pthread_setschedparam(pthread_self(), SCHED_OTHER, &parameters) == 0
            let niceChanged = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice) == 0
            return policyChanged && niceChanged
        }
    }
}

/// What a started thread is called, how it is scheduled and where it may run.
public struct ThreadOptions: Sendable, Equatable {
    /// Shown by `top -H` and `ps -L` (pthread_setname_np; the kernel keeps 15 bytes).
    public var name: String?
    public var scheduling: ThreadScheduling
    /// Pin the thread to this CPU (sched_setaffinity); nil: any CPU.
    public var cpu: Int?

    public init(name: String? = nil, scheduling: ThreadScheduling = .inherited, cpu: Int? = nil) {
        self.name = name
        self.scheduling = scheduling
        self.cpu = cpu
    }
}

/// A POSIX thread running a closure: the one thread starter. Threads are started at set-up,
/// never on a packet path. Scheduling, name and CPU are applied by the new thread itself
/// before `body` runs (nice is per thread on Linux, so only the thread can set its own);
/// refusals (no privilege, no such CPU) leave the thread as it would have been and are
/// reported by `optionsApplied` once the thread has begun.
public final class StartedThread: @unchecked Sendable {
    private var handle: pthread_t
    private var joined = false
    private let progress: Progress

    /// Set by the new thread once it has applied its options: 1 all applied, 0 some refused.
    private final class Progress: Sendable {
        let applied = Atomic<Int8>(-1)
    }

    /// Starts `body` on a new thread. Throws only when the thread could not be created.
    public init(_ options: ThreadOptions = ThreadOptions(), _ body: @escaping @Sendable () -> Void) throws(KernelError) {
        final class Start {
            let options: ThreadOptions
            let body: @Sendable () -> Void
            let progress: Progress
            init(_ options: ThreadOptions, _ body: @escaping @Sendable () -> Void, _ progress: Progress) {
                self.options = options
                self.body = body
                self.progress = progress
            }
        }
        progress = Progress()
        let context = Unmanaged.passRetained(Start(options, body, progress)).toOpaque()
        handle = pthread_t()
        let result = pthread_create(&handle, nil, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            var ok = true
            if let name = start.options.name { ok = ck_name_this_thread(name) == 0 && ok }
            if let cpu = start.options.cpu { ok = ck_pin_this_thread(Int32(clamping: cpu)) == 0 && ok }
            ok = start.options.scheduling.applyToCallingThread() && ok
            start.progress.applied.store(ok ? 1 : 0, ordering: .releasing)
            start.body()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<AnyObject>.fromOpaque(context).release()
            throw KernelError(operation: "start thread" + (options.name.map { " '\($0)'" } ?? ""), code: result)
        }
    }

    deinit { join() }

    /// Whether the name, CPU and scheduling were all applied; nil until the thread has begun.
    /// Read after `join()` (or after the body signalled) for a settled answer.
    public var optionsApplied: Bool? {
        let value = progress.applied.load(ordering: .acquiring)
        return value < 0 ? nil : value == 1
    }

    /// Waits for the thread's body to return (idempotent; from one thread only).
    public func join() {
        guard !joined else { return }
        pthread_join(handle, nil)
        joined = true
    }
}
