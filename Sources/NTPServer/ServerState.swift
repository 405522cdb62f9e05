import NTPPacket
import KernelValues

/// What the server says about itself in every response (RFC 5905 §7.3): the fields a client
/// uses to judge the server's quality. Derived once a second from the host clock
/// (`init(hostClock:...)`), never per packet.
public struct ServerState: Sendable, Equatable {
    public var leapIndicator: NTPLeapIndicator
    public var stratum: UInt8
    /// log2 seconds, measured at start (`measuredClockPrecision`).
    public var precision: Int8
    public var rootDelay: NTPShortTime
    public var rootDispersion: NTPShortTime
    public var referenceID: NTPReferenceID
    /// When the host clock was last known good: here, the time the state was derived.
    public var referenceTimestamp: NTPTimestamp

    public init(leapIndicator: NTPLeapIndicator, stratum: UInt8, precision: Int8, rootDelay: NTPShortTime,
                rootDispersion: NTPShortTime, referenceID: NTPReferenceID, referenceTimestamp: NTPTimestamp) {
        self.leapIndicator = leapIndicator
        self.stratum = stratum
        self.precision = precision
        self.rootDelay = rootDelay
        self.rootDispersion = rootDispersion
        self.referenceID = referenceID
        self.referenceTimestamp = referenceTimestamp
    }

    /// What the user configured: it does not change while the server runs.
    public struct Identity: Sendable, Equatable {
        /// 1 for a primary server (RFC 5905 §7.3); 1...15.
        public var stratum: UInt8
        /// Reference clock code for stratum 1 (RFC 5905 Figure 12), e.g. LOCL, GPS, PPS.
        public var referenceID: NTPReferenceID
        public var precision: Int8
        /// Serve a host clock the kernel reports as unsynchronised as if it were the reference
        /// (like chronyd's `local stratum N`); otherwise such a clock is served with LI 3.
        public var serveUnsynchronised: Bool

        public init(stratum: UInt8 = 1, referenceID: NTPReferenceID = .locl, precision: Int8 = -20,
                    serveUnsynchronised: Bool = false) {
            self.stratum = stratum
            self.referenceID = referenceID
            self.precision = precision
            self.serveUnsynchronised = serveUnsynchronised
        }
    }

    /// Derives the state from the kernel's view of the host clock (adjtimex, read-only).
    ///
    /// - Synchronised: LI from the kernel's leap state (TIME_INS → 1, TIME_DEL → 2), root
    ///   dispersion = maxerror (the kernel's bound on the clock error, RFC 5905 §7.3).
    /// - Unsynchronised (STA_UNSYNC or TIME_ERROR): LI 3, "alarm", so clients reject the
    ///   server (RFC 5905 §7.3) — unless `serveUnsynchronised`, in which case the local
    ///   clock *is* the reference by the user's declaration: LI 0 and root dispersion of one
    ///   precision step (maxerror then means nothing: it grows to 16 s on an undisciplined host).
    public init(hostClock: HostClockStatus, identity: Identity, nowUnixNanoseconds: Int64) {
        let synchronised = hostClock.isSynchronised
        if !synchronised && !identity.serveUnsynchronised {
            leapIndicator = .unsynchronized
        } else {
            switch hostClock.leapState {
            case .insertPending: leapIndicator = .lastMinuteHas61Seconds
            case .deletePending: leapIndicator = .lastMinuteHas59Seconds
            default: leapIndicator = .noWarning
            }
        }
        stratum = identity.stratum
        precision = identity.precision
        rootDelay = .zero
        if synchronised || !identity.serveUnsynchronised {
            rootDispersion = NTPShortTime(nanoseconds: max(0, hostClock.maximumErrorMicroseconds) &* 1000)
        } else {
            let precisionNanoseconds: Int64 = identity.precision >= 0 ? 1_000_000_000
                : max(1, 1_000_000_000 >> Int64(min(62, -Int(identity.precision))))
            rootDispersion = NTPShortTime(nanoseconds: precisionNanoseconds)
        }
        referenceID = identity.referenceID
        referenceTimestamp = NTPTimestamp(unixNanoseconds: nowUnixNanoseconds)
    }
}
