#if canImport(Glibc)
import Glibc
#endif
import CKernelStamps

/// The calling thread's timing: how late the kernel may wake it, and how much CPU it used.
///
/// Why: a thread that must act at a given instant (the lab's relay sends each packet at its
/// arrival plus the model's delay) sleeps until shortly before and spins the rest. Linux
/// lets a sleeping thread's timer fire up to its timer slack late (50 µs by default, more
/// for longer sleeps, prctl(2) PR_SET_TIMERSLACK), so the slack is set to its minimum.
public enum ThreadTiming {
    /// Sets the calling thread's timer slack (1 ns is the smallest the kernel takes; 0 would
    /// restore the default). False when the kernel refused.
    @discardableResult
    public static func setTimerSlack(nanoseconds: Int) -> Bool {
        ck_set_timer_slack(UInt(max(1, nanoseconds))) == 0
    }

    /// The calling thread's timer slack, nanoseconds (nil when it cannot be read).
    public static var timerSlackNanoseconds: Int? {
        let value = ck_get_timer_slack()
        return value < 0 ? nil : value
    }

    /// CPU time the calling thread has used so far, nanoseconds (CLOCK_THREAD_CPUTIME_ID).
    @inline(__always)
    public static func cpuNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
    }

    /// Sleeps until `clock` reads `nanoseconds` (clock_nanosleep with TIMER_ABSTIME, so a
    /// late start of the sleep does not move its end). Returns early on a signal; callers loop.
    public static func sleep(until nanoseconds: Int64, on clock: ClockID) {
        guard nanoseconds > 0 else { return }
        var deadline = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        _ = clock_nanosleep(clock.id, TIMER_ABSTIME, &deadline, nil)
    }
}

extension ThreadTiming {
    /// What `requestSchedulerSlice` did.
    public enum SliceRequest: Sendable, Equatable {
        case set
        /// The thread runs under a real-time policy, which already preempts normal work.
        case realtimeLeftAlone
        case refused(errno: Int32)
    }

    /// Asks for a short scheduler slice for the calling (SCHED_OTHER) thread: on Linux 6.12
    /// and later a thread with a shorter slice preempts a CPU-bound one as soon as it wakes,
    /// where otherwise it may wait out that one's slice (milliseconds). Needs no privilege;
    /// the kernel takes 0.1 ms to 100 ms.
    @discardableResult
    public static func requestSchedulerSlice(nanoseconds: Int64) -> SliceRequest {
        switch ck_request_scheduler_slice(UInt64(max(0, nanoseconds))) {
        case 0: return .set
        case 1: return .realtimeLeftAlone
        default: return .refused(errno: errno)
        }
    }
}
