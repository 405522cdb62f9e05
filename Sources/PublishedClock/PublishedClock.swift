import FeedforwardClock
import KernelStamps
import Synchronization

/// The shared-memory layout of published clock parameters (docs/feedforward.md §7: one
/// daemon runs the filter, any number of readers tell the time from its parameters and their
/// own read of the same counter). The byte-by-byte description, the sequence-lock protocol
/// and the versioning rules are in docs/published-clock.md; C (`include/ffclock.h`) and
/// Python (`contrib/python/ffclock.py`) readers follow the same document.
///
/// Fixed, versioned, little-endian 8-byte words:
///
/// | byte | word |
/// |---|---|
/// | 0 | magic "FFCLOCK1" (`magic`) |
/// | 8 | layout version (`version`) |
/// | 16 | sequence: odd while the writer is mid-update |
/// | 24 | counter clock id (1 = CLOCK_MONOTONIC_RAW, nanoseconds) |
/// | 32…176 | the `ClockParameters` fields in declaration order (`fieldCount` words; Doubles as bit patterns) |
/// | 184 | writer flags: bit 0 stopped (clean exit), bit 1 a vmclock page is watched |
/// | 192 | vmclock `disruption_marker` the parameters were computed under |
/// | 200 | vmclock `vm_generation_counter` the parameters were computed under (0: none) |
/// | 208 | stale grace, ns: how far past the due stamp the clock still counts as fresh |
/// | 256…511 | path of the watched vmclock page, NUL-terminated UTF-8 |
///
/// Sequence lock: the writer makes the sequence odd, writes, makes it even; a reader retries
/// when it saw an odd sequence or the sequence changed while it read. Every word is accessed
/// atomically (relaxed) with acquire/release on the sequence and fences between, so a reader
/// never acts on a torn set of parameters and there is no data race in the memory model.
public enum PublishedClockLayout {
    /// "FFCLOCK1" read as a little-endian UInt64.
    public static let magic: UInt64 = 0x314B_434F_4C43_4646
    /// 3: adds the writer flags (stopped), the vmclock markers the parameters belong to, the
    /// stale grace and the vmclock path. A version-2 reader would miss a disruption.
    public static let version: UInt64 = 3
    public static let counterClockMonotonicRaw: UInt64 = 1
    public static let fieldCount = 19
    static let magicWord = 0, versionWord = 1, sequenceWord = 2, clockWord = 3, firstFieldWord = 4
    static let writerFlagsWord = 23, disruptionMarkerWord = 24, generationWord = 25, staleGraceWord = 26
    /// Writer flag: the writer exited cleanly; nobody updates these parameters any more.
    public static let stoppedFlag: UInt64 = 1 << 0
    /// Writer flag: words 24 and 25 hold the markers of the page at `vmclockPathByteOffset`.
    public static let vmclockFlag: UInt64 = 1 << 1
    public static let vmclockPathByteOffset = 256
    /// Room for the path including its terminating NUL.
    public static let vmclockPathByteCount = 256
    /// Bytes the layout uses.
    public static let usedByteCount = 512
    /// Size of the published file: one page.
    public static let fileByteCount = 4096
    /// Added to the poll interval to make the stale grace: one lost answer does not make a
    /// live writer look dead, two missed polls (or a writer that died) do.
    public static let staleGraceSlackNanoseconds: Int64 = 2_000_000_000
}

/// What the writer publishes besides the filter's parameters.
public struct PublishedWriterState: Sendable, Equatable {
    /// Set on a clean exit: the parameters still age honestly, but no update will come.
    public var stopped: Bool
    /// The vmclock markers the parameters were computed under; nil when no page is watched.
    public var marker: VMClockMarker?
    /// Past the due stamp by more than this, the clock is stale (docs/published-clock.md,
    /// "Freshness"): the poll interval plus `staleGraceSlackNanoseconds`.
    public var staleGraceNanoseconds: Int64

    public init(stopped: Bool = false, marker: VMClockMarker? = nil, staleGraceNanoseconds: Int64) {
        self.stopped = stopped
        self.marker = marker
        self.staleGraceNanoseconds = staleGraceNanoseconds
    }

    /// The grace for parameters whose next stamp is due one poll after their last.
    public static func grace(for parameters: ClockParameters) -> Int64 {
        max(0, parameters.nextStampExpectedCounter &- parameters.lastStampCounter) &+ PublishedClockLayout.staleGraceSlackNanoseconds
    }
}

/// One consistent read of the published words.
public struct PublishedSnapshot: Sendable, Equatable {
    public var parameters: ClockParameters
    public var writer: PublishedWriterState
    public var sequence: UInt64
    public init(parameters: ClockParameters, writer: PublishedWriterState, sequence: UInt64) {
        self.parameters = parameters
        self.writer = writer
        self.sequence = sequence
    }
}

/// A region holding the layout: the one wrapper of the raw pointer (house rule).
struct PublishedClockRegion {
    let words: UnsafeMutablePointer<Atomic<UInt64>>

    /// `base` must be 8-byte aligned and hold `PublishedClockLayout.usedByteCount` bytes.
    init(base: UnsafeMutableRawPointer) {
        precondition(Int(bitPattern: base) % 8 == 0, "published clock region must be 8-byte aligned")
        words = base.assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    @inline(__always) func load(_ index: Int) -> UInt64 { (words + index).pointee.load(ordering: .relaxed) }
    @inline(__always) func store(_ index: Int, _ value: UInt64) { (words + index).pointee.store(value, ordering: .relaxed) }

    func writeFields(_ p: ClockParameters, _ writer: PublishedWriterState) {
        var i = PublishedClockLayout.firstFieldWord
        func put(_ value: UInt64) { store(i, value); i += 1 }
        put(UInt64(bitPattern: p.counterOrigin))
        put(UInt64(bitPattern: p.timeAtOriginNanoseconds))
        put(p.timeAtOriginFraction.bitPattern)
        put(p.periodSecondsPerTick.bitPattern)
        put(p.periodError.bitPattern)
        put(p.periodErrorBound.bitPattern)
        put(p.localPeriodSecondsPerTick.bitPattern)
        put(p.offsetNanoseconds.bitPattern)
        put(p.errorEstimateNanoseconds.bitPattern)
        put(p.maxErrorNanoseconds.bitPattern)
        put(p.maxErrorGrowthRate.bitPattern)
        put(UInt64(bitPattern: p.lastStampCounter))
        put(UInt64(bitPattern: p.nextStampExpectedCounter))
        put(UInt64(p.leap))
        put(UInt64(p.status.rawValue))
        put(p.lastRTTNanoseconds.bitPattern)
        put(p.minimumRTTNanoseconds.bitPattern)
        put(p.naiveOffsetNanoseconds.bitPattern)
        put(UInt64(bitPattern: p.stampCount))
        var flags: UInt64 = 0
        if writer.stopped { flags |= PublishedClockLayout.stoppedFlag }
        if writer.marker != nil { flags |= PublishedClockLayout.vmclockFlag }
        store(PublishedClockLayout.writerFlagsWord, flags)
        store(PublishedClockLayout.disruptionMarkerWord, writer.marker?.disruptionMarker ?? 0)
        store(PublishedClockLayout.generationWord, writer.marker?.generation ?? 0)
        store(PublishedClockLayout.staleGraceWord, UInt64(bitPattern: writer.staleGraceNanoseconds))
    }

    func readFields() -> (ClockParameters, PublishedWriterState) {
        var i = PublishedClockLayout.firstFieldWord
        func next() -> UInt64 { defer { i += 1 }; return load(i) }
        func int() -> Int64 { Int64(bitPattern: next()) }
        func double() -> Double { Double(bitPattern: next()) }
        let counterOrigin = int(), timeAtOrigin = int(), fraction = double(), period = double()
        let periodError = double(), periodErrorBound = double(), localPeriod = double()
        let offset = double(), errorEstimate = double(), maxError = double(), growth = double()
        let lastStamp = int(), nextStamp = int()
        let leap = UInt8(truncatingIfNeeded: next())
        let status = ClockStatus(rawValue: UInt32(truncatingIfNeeded: next()))
        let lastRTT = double(), minimumRTT = double(), naive = double(), count = int()
        let flags = load(PublishedClockLayout.writerFlagsWord)
        let marker = flags & PublishedClockLayout.vmclockFlag == 0 ? nil
            : VMClockMarker(disruptionMarker: load(PublishedClockLayout.disruptionMarkerWord),
                            generation: load(PublishedClockLayout.generationWord))
        let writer = PublishedWriterState(stopped: flags & PublishedClockLayout.stoppedFlag != 0, marker: marker,
                                          staleGraceNanoseconds: Int64(bitPattern: load(PublishedClockLayout.staleGraceWord)))
        let parameters = ClockParameters(
            counterOrigin: counterOrigin, timeAtOriginNanoseconds: timeAtOrigin, timeAtOriginFraction: fraction,
            periodSecondsPerTick: period, periodError: periodError, periodErrorBound: periodErrorBound, localPeriodSecondsPerTick: localPeriod,
            offsetNanoseconds: offset, errorEstimateNanoseconds: errorEstimate, maxErrorNanoseconds: maxError,
            maxErrorGrowthRate: growth, lastStampCounter: lastStamp, nextStampExpectedCounter: nextStamp,
            leap: leap, status: status, lastRTTNanoseconds: lastRTT, minimumRTTNanoseconds: minimumRTT,
            naiveOffsetNanoseconds: naive, stampCount: count)
        return (parameters, writer)
    }

    /// Writes the header words and the vmclock path, magic last, and publishes
    /// `ClockParameters.empty`.
    func initialise(vmclockPath: String?) {
        store(PublishedClockLayout.versionWord, PublishedClockLayout.version)
        store(PublishedClockLayout.clockWord, PublishedClockLayout.counterClockMonotonicRaw)
        var pathBytes = Array((vmclockPath ?? "").utf8.prefix(PublishedClockLayout.vmclockPathByteCount - 1))
        pathBytes += Array(repeating: 0, count: PublishedClockLayout.vmclockPathByteCount - pathBytes.count)
        let firstPathWord = PublishedClockLayout.vmclockPathByteOffset / 8
        for w in 0..<(PublishedClockLayout.vmclockPathByteCount / 8) {
            var word: UInt64 = 0
            for b in 0..<8 { word |= UInt64(pathBytes[w * 8 + b]) << (8 * UInt64(b)) }
            store(firstPathWord + w, word)
        }
        publish(.empty, writer: PublishedWriterState(staleGraceNanoseconds: PublishedClockLayout.staleGraceSlackNanoseconds))
        (words + PublishedClockLayout.magicWord).pointee.store(PublishedClockLayout.magic, ordering: .releasing)
    }

    /// The vmclock path the writer stored, or nil when none.
    func vmclockPath() -> String? {
        var bytes: [UInt8] = []
        let firstPathWord = PublishedClockLayout.vmclockPathByteOffset / 8
        reading: for w in 0..<(PublishedClockLayout.vmclockPathByteCount / 8) {
            let word = load(firstPathWord + w)
            for b in 0..<8 {
                let byte = UInt8(truncatingIfNeeded: word >> (8 * UInt64(b)))
                if byte == 0 { break reading }
                bytes.append(byte)
            }
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    /// The writer's side of the sequence lock. One writer at a time.
    func publish(_ parameters: ClockParameters, writer: PublishedWriterState) {
        let sequenceWord = words + PublishedClockLayout.sequenceWord
        let old = sequenceWord.pointee.load(ordering: .relaxed)
        // Odd means a previous writer died mid-update: stay odd, move on.
        let begin = old & 1 == 0 ? old &+ 1 : old &+ 2
        sequenceWord.pointee.store(begin, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        writeFields(parameters, writer)
        sequenceWord.pointee.store(begin &+ 1, ordering: .releasing)
    }

    /// The reader's side: a consistent snapshot and how many times it had to retry, or nil
    /// when `maximumAttempts` reads all overlapped an update (the writer died mid-write).
    func snapshot(maximumAttempts: Int) -> (snapshot: PublishedSnapshot, retries: Int)? {
        let sequenceWord = words + PublishedClockLayout.sequenceWord
        for attempt in 0..<max(1, maximumAttempts) {
            let before = sequenceWord.pointee.load(ordering: .acquiring)
            if before & 1 == 1 { continue }
            let (parameters, writer) = readFields()
            atomicMemoryFence(ordering: .acquiring)
            let after = sequenceWord.pointee.load(ordering: .relaxed)
            if before == after {
                return (PublishedSnapshot(parameters: parameters, writer: writer, sequence: before), attempt)
            }
        }
        return nil
    }

    /// Checks magic, version and counter clock; the problem in words otherwise.
    func layoutProblem() -> String? {
        let magic = (words + PublishedClockLayout.magicWord).pointee.load(ordering: .acquiring)
        if magic != PublishedClockLayout.magic {
            return "no published clock here (bad magic number): is this a file written by 'ntpclient --publish'?"
        }
        let version = load(PublishedClockLayout.versionWord)
        if version != PublishedClockLayout.version {
            return "published clock layout version \(version); this reader understands version \(PublishedClockLayout.version): use matching ntpclient builds"
        }
        if load(PublishedClockLayout.clockWord) != PublishedClockLayout.counterClockMonotonicRaw {
            return "published clock counts a counter other than CLOCK_MONOTONIC_RAW: cannot read it"
        }
        return nil
    }
}

/// Why a published clock cannot be written or read: one line, with what to do.
public enum PublishedClockError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Opening or mapping a file failed (the kernel's words and a hint).
    case kernel(KernelError)
    /// The file is there but is not a usable published clock.
    case layout(path: String, problem: String)

    public var description: String {
        switch self {
        case .kernel(let error): return error.description
        case .layout(let path, let problem): return "\(path): \(problem)"
        }
    }
}

/// Publishes clock parameters into a memory-mapped file after every update (`--publish`).
/// The file exists, with a valid header and "no estimate", as soon as `init` returns, so a
/// reader started right after the writer never finds it missing.
public final class PublishedClockWriter: @unchecked Sendable {
    private let file: MappedFile
    private let region: PublishedClockRegion
    private var last: (parameters: ClockParameters, writer: PublishedWriterState)

    /// `vmclockPath`: the vmclock page the writer watches; readers compare its live marker
    /// with the one published (docs/published-clock.md, "Disruption").
    public init(path: String, vmclockPath: String? = nil) throws(PublishedClockError) {
        do {
            file = try MappedFile(creatingAt: path, byteCount: PublishedClockLayout.fileByteCount)
        } catch {
            throw .kernel(error)
        }
        region = PublishedClockRegion(base: file.baseAddress)
        region.initialise(vmclockPath: vmclockPath)
        last = (.empty, PublishedWriterState(staleGraceNanoseconds: PublishedClockLayout.staleGraceSlackNanoseconds))
    }

    public var path: String { file.path }

    /// Writes `parameters` under the sequence lock, with the vmclock markers they were
    /// computed under; allocation-free.
    public func publish(_ parameters: ClockParameters, marker: VMClockMarker? = nil) {
        let writer = PublishedWriterState(stopped: false, marker: marker,
                                          staleGraceNanoseconds: PublishedWriterState.grace(for: parameters))
        last = (parameters, writer)
        region.publish(parameters, writer: writer)
    }

    /// Marks the published clock stopped (a clean exit): readers then say "stopped" instead
    /// of trusting parameters nobody will update.
    public func markStopped() {
        last.writer.stopped = true
        region.publish(last.parameters, writer: last.writer)
    }
}

/// How a reader should take the time it read: the one summary word every reader (Swift, C,
/// Python) computes the same way (docs/published-clock.md, "Verdict").
public enum PublishedClockVerdict: String, Sendable, Equatable, CaseIterable {
    /// Synchronised, fresh, writer running, no disruption.
    case ok
    /// The filter does not vouch for its estimate yet (or after a clock event); the aged
    /// bound still holds.
    case unsynchronised = "unsync"
    /// The next stamp is overdue by more than the stale grace: the writer died or lost its
    /// server; the aged bound still holds but grows.
    case stale
    /// The writer exited cleanly.
    case stopped
    /// The vmclock page's marker differs from the one the parameters were computed under:
    /// the counter was disrupted (live migration); the time is unknown.
    case disrupted
    /// No estimate, or more than 1024 s overdue.
    case unusable

    /// True for the verdicts under which a program should not use the time.
    public var isFailure: Bool { self == .stale || self == .stopped || self == .disrupted || self == .unusable }
    /// Numeric code used by the C and Python readers.
    public var code: Int {
        switch self {
        case .ok: return 0
        case .unsynchronised: return 1
        case .stale: return 2
        case .stopped: return 3
        case .disrupted: return 4
        case .unusable: return 5
        }
    }
}

/// The time as told by published parameters and one read of the raw counter.
public struct PublishedTime: Sendable, Equatable {
    /// Ca(T_now), Unix nanoseconds.
    public var unixNanoseconds: Int64
    /// The hard bound aged to T_now (§8.2); +infinity when disrupted.
    public var maxErrorNanoseconds: Double
    /// Freshness with the stale grace applied.
    public var freshness: ClockFreshness
    /// Published status plus `starving` while no stamp comes (§7).
    public var status: ClockStatus
    public var verdict: PublishedClockVerdict
    /// The raw counter read used.
    public var counter: Int64
    /// The parameters read.
    public var parameters: ClockParameters
    public var writer: PublishedWriterState
    /// The vmclock page's markers read by this reader; nil when none is watched or the page
    /// could not be mapped here.
    public var liveMarker: VMClockMarker?
    /// Sequence-lock retries this read needed (contention with the writer).
    public var retries: Int

    /// The reader's decision: a pure function of one snapshot, the counter read after it,
    /// and the live vmclock markers (docs/published-clock.md, "Reading").
    public init(snapshot: PublishedSnapshot, counter: Int64, liveMarker: VMClockMarker?, retries: Int = 0) {
        let p = snapshot.parameters
        let writer = snapshot.writer
        let disrupted = writer.marker != nil && liveMarker != nil && writer.marker != liveMarker
        unixNanoseconds = p.absoluteTime(atCounter: counter)
        maxErrorNanoseconds = disrupted ? .infinity : p.maxError(atCounter: counter)
        // The grace shifts the whole freshness schedule: fresh until the due stamp plus the
        // grace, unusable 1024 s after that.
        freshness = p.freshness(atCounter: counter &- max(0, writer.staleGraceNanoseconds))
        status = p.status(atCounter: counter)
        if status.contains(.noEstimate) { verdict = .unusable }
        else if disrupted { verdict = .disrupted }
        else if writer.stopped { verdict = .stopped }
        else if freshness == .unusable { verdict = .unusable }
        else if freshness == .stale { verdict = .stale }
        else if status.contains(.unsynchronised) { verdict = .unsynchronised }
        else { verdict = .ok }
        self.counter = counter
        parameters = p
        self.writer = writer
        self.liveMarker = liveMarker
        self.retries = retries
    }
}

/// Reads the time from a file published by another process (`ntpclient now --from PATH`):
/// no filter, no state beyond the mappings — the stateless dependent clock (§7). When the
/// writer watches a vmclock page, the reader maps it too and compares its marker on every
/// read, so the first read after a migration already says `disrupted`.
public final class PublishedClockReader: @unchecked Sendable {
    private let file: MappedFile
    private let region: PublishedClockRegion
    /// The watched vmclock page, when the writer names one and this process can map it.
    public let vmclock: VMClockPage?
    /// Why the named vmclock page could not be mapped here (nil when it was, or none is named).
    public let vmclockProblem: String?

    public init(path: String) throws(PublishedClockError) {
        do {
            file = try MappedFile(openingForReadAt: path)
        } catch {
            throw .kernel(error)
        }
        guard file.byteCount >= PublishedClockLayout.usedByteCount else {
            throw .layout(path: path, problem: "the file holds \(file.byteCount) bytes, fewer than the \(PublishedClockLayout.usedByteCount) of a published clock")
        }
        region = PublishedClockRegion(base: file.baseAddress)
        if let problem = region.layoutProblem() { throw .layout(path: path, problem: problem) }
        if let vmclockPath = region.vmclockPath() {
            do {
                vmclock = try VMClockPage(path: vmclockPath)
                vmclockProblem = nil
            } catch {
                vmclock = nil
                vmclockProblem = error.description
            }
        } else {
            vmclock = nil
            vmclockProblem = nil
        }
    }

    /// Opens `path`, waiting up to `timeoutNanoseconds` for a writer started just before to
    /// create it (a missing, empty or not yet initialised file is retried every 10 ms).
    public convenience init(path: String, waitingUpToNanoseconds timeoutNanoseconds: Int64) throws(PublishedClockError) {
        let deadline = monotonicRawNanoseconds() &+ timeoutNanoseconds
        while true {
            do {
                try self.init(path: path)
                return
            } catch {
                if monotonicRawNanoseconds() >= deadline { throw error }
                pauseNanoseconds(10_000_000)
            }
        }
    }

    /// A consistent snapshot under the sequence lock. Retries for up to a second of updates
    /// overlapping the read; only a writer that died mid-update (or one that never pauses)
    /// makes it fail.
    public func snapshot() throws(PublishedClockError) -> (snapshot: PublishedSnapshot, retries: Int) {
        let deadline = monotonicRawNanoseconds() &+ 1_000_000_000
        var retries = 0
        var found = region.snapshot(maximumAttempts: 1000)
        while found == nil && monotonicRawNanoseconds() < deadline {
            retries += 1000
            found = region.snapshot(maximumAttempts: 1000)
        }
        guard let found else {
            throw .layout(path: file.path, problem: "the writer stopped in the middle of an update; restart it")
        }
        return (found.snapshot, found.retries + retries)
    }

    /// The parameters, the live vmclock markers, then the counter, and the time they give.
    public func read() throws(PublishedClockError) -> PublishedTime {
        let (snapshot, retries) = try snapshot()
        let live = vmclock?.marker()
        let counter = monotonicRawNanoseconds()
        return PublishedTime(snapshot: snapshot, counter: counter, liveMarker: live, retries: retries)
    }
}

/// Sequence-lock access to a caller-owned buffer of `PublishedClockLayout.usedByteCount`
/// bytes: the same code the mapped file uses, so the layout can be tested without a file.
public struct PublishedClockBuffer {
    let region: PublishedClockRegion
    /// `base` must be 8-byte aligned; `initialise` writes the header.
    public init(base: UnsafeMutableRawPointer, initialise: Bool, vmclockPath: String? = nil) {
        region = PublishedClockRegion(base: base)
        if initialise { region.initialise(vmclockPath: vmclockPath) }
    }
    public func publish(_ parameters: ClockParameters, writer: PublishedWriterState? = nil) {
        region.publish(parameters, writer: writer ?? PublishedWriterState(staleGraceNanoseconds: PublishedWriterState.grace(for: parameters)))
    }
    public func read() -> PublishedSnapshot? { region.snapshot(maximumAttempts: 1000)?.snapshot }
    public var layoutProblem: String? { region.layoutProblem() }
    public var vmclockPath: String? { region.vmclockPath() }
}
