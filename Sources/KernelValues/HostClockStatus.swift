/// The host clock's synchronisation state as the kernel reports it (adjtimex(2) with
/// modes = 0: read-only, never changes the clock; KernelStamps reads it). The server derives its leap indicator,
/// root dispersion and synchronisation from this (RFC 5905 §7.3).
public struct HostClockStatus: Sendable, Equatable {
    /// adjtimex's return value: the leap-second state machine.
    public enum LeapState: Sendable, Equatable {
        /// TIME_OK: no leap second pending.
        case normal
        /// TIME_INS: a leap second will be inserted at the end of the UTC day.
        case insertPending
        /// TIME_DEL: a leap second will be deleted at the end of the UTC day.
        case deletePending
        /// TIME_OOP: a leap second is in progress.
        case inProgress
        /// TIME_WAIT: a leap second has just happened.
        case justOccurred
        /// TIME_ERROR (TIME_BAD): the clock is not synchronised.
        case error
    }

    public let leapState: LeapState
    /// STA_* bits of `timex.status`.
    public let statusBits: Int32
    /// STA_UNSYNC: no one is disciplining this clock (or the discipline gave up).
    public let unsynchronised: Bool
    /// timex.maxerror: the kernel's bound on the clock error, microseconds (grows 500 ppm
    /// while nothing disciplines the clock; capped at 16 s).
    public let maximumErrorMicroseconds: Int64
    /// timex.esterror: the discipline's estimated error, microseconds.
    public let estimatedErrorMicroseconds: Int64
    /// timex.freq: frequency correction in ppm with a 16-bit fraction.
    public let frequencyScaledPPM: Int64
    /// timex.tick, microseconds per tick.
    public let tickMicroseconds: Int64
    /// TAI − UTC, seconds, as far as the kernel knows (0 if never set).
    public let taiOffsetSeconds: Int32

    public init(leapState: LeapState, statusBits: Int32, maximumErrorMicroseconds: Int64, estimatedErrorMicroseconds: Int64,
                frequencyScaledPPM: Int64 = 0, tickMicroseconds: Int64 = 10_000, taiOffsetSeconds: Int32 = 0) {
        self.leapState = leapState
        self.statusBits = statusBits
        self.unsynchronised = statusBits & HostClockStatus.unsynchronisedBit != 0
        self.maximumErrorMicroseconds = maximumErrorMicroseconds
        self.estimatedErrorMicroseconds = estimatedErrorMicroseconds
        self.frequencyScaledPPM = frequencyScaledPPM
        self.tickMicroseconds = tickMicroseconds
        self.taiOffsetSeconds = taiOffsetSeconds
    }

    /// STA_UNSYNC in `timex.status` (linux/timex.h; the shim asserts the value).
    public static let unsynchronisedBit: Int32 = 0x0040

    /// Synchronised in the kernel's view: STA_UNSYNC clear and not TIME_ERROR.
    public var isSynchronised: Bool { !unsynchronised && leapState != .error }
}
