#if canImport(Glibc)
import Glibc
#endif
import CKernelStamps

extension HostClockStatus {
    /// Reads the state now (one adjtimex call with modes = 0).
    public static func read() throws(KernelError) -> HostClockStatus {
        var state = ck_clock_state()
        guard ck_read_clock_state(&state) == 0 else { throw KernelError.fromErrno("adjtimex (read-only)") }
        let leap: LeapState
        switch state.state {
        case 0: leap = .normal
        case 1: leap = .insertPending
        case 2: leap = .deletePending
        case 3: leap = .inProgress
        case 4: leap = .justOccurred
        default: leap = .error
        }
        return HostClockStatus(leapState: leap, statusBits: state.status,
                               maximumErrorMicroseconds: Int64(state.maxerror_us),
                               estimatedErrorMicroseconds: Int64(state.esterror_us),
                               frequencyScaledPPM: Int64(state.freq_scaled_ppm),
                               tickMicroseconds: Int64(state.tick_us),
                               taiOffsetSeconds: state.tai)
    }
}
