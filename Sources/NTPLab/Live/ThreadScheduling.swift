#if canImport(Glibc)
import Glibc
#endif

/// The lab's two scheduling classes, in one place: real-time for the threads whose wake-up
/// latency becomes path asymmetry, normal for everything else (and for a relay that spins).
enum ThreadScheduling {
    /// SCHED_FIFO priority 10 for the calling thread (inherited by the threads and children
    /// it starts); false when not permitted (not root).
    static func raiseToRealtime() -> Bool {
        var parameters = sched_param()
        parameters.sched_priority = 10
        return pthread_setschedparam(pthread_self(), SCHED_FIFO, &parameters) == 0
    }

    /// SCHED_OTHER for the calling thread at `nice` (a lower nice needs privilege and is
    /// silently left as it was without it). On Linux nice is per thread and `who` 0 is the caller.
    static func returnToNormal(nice: Int32 = 0) {
        var parameters = sched_param()
        parameters.sched_priority = 0
        _ = pthread_setschedparam(pthread_self(), SCHED_OTHER, &parameters)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
    }
}
