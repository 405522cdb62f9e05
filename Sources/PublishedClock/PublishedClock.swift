import FeedforwardClock
import KernelStamps
import Synchronization

/// The shared-memory layout of published clock parameters (feedforward-spec §7: one daemon
/// runs the filter, any number of readers tell the time from its parameters and their own
/// read of the same counter). Fixed, versioned, little-endian 8-byte words:
///
/// | byte | word |
/// |---|---|
/// | 0 | magic "FFCLOCK1" (`magic`) |
/// | 8 | layout version (`version`) |
/// | 16 | sequence: odd while the writer is mid-update |
/// | 24 | counter clock id (1 = CLOCK_MONOTONIC_RAW, nanoseconds) |
/// | 32… | the `ClockParameters` fields in declaration order (`fieldCount` words; Doubles as bit patterns) |
///
/// Sequence lock: the writer makes the sequence odd, writes, makes it even; a reader retries
/// when it saw an odd sequence or the sequence changed while it read. Every word is accessed
/// atomically (relaxed) with acquire/release on the sequence and fences between, so a reader
/// never acts on a torn set of parameters and there is no data race in the memory model.
public enum PublishedClockLayout {
    /// "FFCLOCK1" read as a little-endian UInt64.
    public static let magic: UInt64 = 0x314B_434F_4C43_4646
    /// 2: readers extrapolate Ca at `localPeriod` (p̂_local), not `period`; same words as 1,
    /// but a version-1 reader would tell a different time from the same parameters.
    public static let version: UInt64 = 2
    public static let counterClockMonotonicRaw: UInt64 = 1
    public static let fieldCount = 19
    static let magicWord = 0, versionWord = 1, sequenceWord = 2, clockWord = 3, firstFieldWord = 4
    /// Bytes the layout uses.
    public static let usedByteCount = (firstFieldWord + fieldCount) * 8
    /// Size of the published file: one page.
    public static let fileByteCount = 4096
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

    func writeFields(_ p: ClockParameters) {
        var i = PublishedClockLayout.firstFieldWord
        func put(_ value: UInt64) { store(i, value); i += 1 }
        put(UInt64(bitPattern: p.counterOrigin))
        put(UInt64(bitPattern: p.timeAtOriginNanoseconds))
        put(p.timeAtOriginFraction.bitPattern)
        put(p.period.bitPattern)
        put(p.periodError.bitPattern)
        put(p.periodErrorBound.bitPattern)
        put(p.localPeriod.bitPattern)
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
    }

    func readFields() -> ClockParameters {
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
        return ClockParameters(
            counterOrigin: counterOrigin, timeAtOriginNanoseconds: timeAtOrigin, timeAtOriginFraction: fraction,
            period: period, periodError: periodError, periodErrorBound: periodErrorBound, localPeriod: localPeriod,
            offsetNanoseconds: offset, errorEstimateNanoseconds: errorEstimate, maxErrorNanoseconds: maxError,
            maxErrorGrowthRate: growth, lastStampCounter: lastStamp, nextStampExpectedCounter: nextStamp,
            leap: leap, status: status, lastRTTNanoseconds: lastRTT, minimumRTTNanoseconds: minimumRTT,
            naiveOffsetNanoseconds: naive, stampCount: count)
    }

    /// Writes the header words, magic last, and publishes `ClockParameters.empty`.
    func initialise() {
        store(PublishedClockLayout.versionWord, PublishedClockLayout.version)
        store(PublishedClockLayout.clockWord, PublishedClockLayout.counterClockMonotonicRaw)
        publish(.empty)
        (words + PublishedClockLayout.magicWord).pointee.store(PublishedClockLayout.magic, ordering: .releasing)
    }

    /// The writer's side of the sequence lock. One writer at a time.
    func publish(_ parameters: ClockParameters) {
        let sequenceWord = words + PublishedClockLayout.sequenceWord
        let old = sequenceWord.pointee.load(ordering: .relaxed)
        // Odd means a previous writer died mid-update: stay odd, move on.
        let begin = old & 1 == 0 ? old &+ 1 : old &+ 2
        sequenceWord.pointee.store(begin, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        writeFields(parameters)
        sequenceWord.pointee.store(begin &+ 1, ordering: .releasing)
    }

    /// The reader's side: a consistent snapshot and how many times it had to retry, or nil
    /// when `maximumAttempts` reads all overlapped an update (the writer died mid-write).
    func snapshot(maximumAttempts: Int) -> (parameters: ClockParameters, sequence: UInt64, retries: Int)? {
        let sequenceWord = words + PublishedClockLayout.sequenceWord
        for attempt in 0..<max(1, maximumAttempts) {
            let before = sequenceWord.pointee.load(ordering: .acquiring)
            if before & 1 == 1 { continue }
            let parameters = readFields()
            atomicMemoryFence(ordering: .acquiring)
            let after = sequenceWord.pointee.load(ordering: .relaxed)
            if before == after { return (parameters, before, attempt) }
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

/// Publishes clock parameters into a memory-mapped file after every update (`--publish`).
public final class PublishedClockWriter: @unchecked Sendable {
    private let file: MappedFile
    private let region: PublishedClockRegion

    public init(path: String) throws(NTPClientError) {
        do {
            file = try MappedFile(creatingAt: path, byteCount: PublishedClockLayout.fileByteCount)
        } catch {
            throw .kernel(error)
        }
        region = PublishedClockRegion(base: file.baseAddress)
        region.initialise()
    }

    /// Writes `parameters` under the sequence lock; allocation-free.
    public func publish(_ parameters: ClockParameters) { region.publish(parameters) }
}

/// The time as told by published parameters and one read of the raw counter.
public struct PublishedTime: Sendable, Equatable {
    /// Ca(T_now), Unix nanoseconds.
    public var unixNanoseconds: Int64
    /// The hard bound aged to T_now (§8.2).
    public var maxErrorNanoseconds: Double
    public var freshness: ClockFreshness
    /// Published status plus `starving` while no stamp comes (§7).
    public var status: ClockStatus
    /// The raw counter read used.
    public var counter: Int64
    /// The parameters read.
    public var parameters: ClockParameters
    /// Sequence-lock retries this read needed (contention with the writer).
    public var retries: Int
}

/// Reads the time from a file published by another process (`ntpclient now --from PATH`):
/// no filter, no state beyond the mapping — the seeds' stateless dependent clock (§7).
public final class PublishedClockReader: @unchecked Sendable {
    private let file: MappedFile
    private let region: PublishedClockRegion

    public init(path: String) throws(NTPClientError) {
        do {
            file = try MappedFile(openingForReadAt: path)
        } catch {
            throw .kernel(error)
        }
        guard file.byteCount >= PublishedClockLayout.usedByteCount else {
            throw .publishedClock(path: path, problem: "the file holds \(file.byteCount) bytes, fewer than the \(PublishedClockLayout.usedByteCount) of a published clock")
        }
        region = PublishedClockRegion(base: file.baseAddress)
        if let problem = region.layoutProblem() { throw .publishedClock(path: path, problem: problem) }
    }

    /// A consistent set of parameters (sequence lock) and the time they give now. Retries for
    /// up to a second of updates overlapping the read; only a writer that died mid-update (or
    /// one that never pauses) makes it fail.
    public func read() throws(NTPClientError) -> PublishedTime {
        let deadline = monotonicRawNanoseconds() &+ 1_000_000_000
        var retries = 0
        var found = region.snapshot(maximumAttempts: 1000)
        while found == nil && monotonicRawNanoseconds() < deadline {
            retries += 1000
            found = region.snapshot(maximumAttempts: 1000)
        }
        guard var snapshot = found else {
            throw .publishedClock(path: file.path, problem: "the writer stopped in the middle of an update; restart it")
        }
        snapshot.retries += retries
        let counter = monotonicRawNanoseconds()
        let p = snapshot.parameters
        return PublishedTime(unixNanoseconds: p.absoluteTime(atCounter: counter),
                             maxErrorNanoseconds: p.maxError(atCounter: counter),
                             freshness: p.freshness(atCounter: counter),
                             status: p.status(atCounter: counter),
                             counter: counter, parameters: p, retries: snapshot.retries)
    }
}

/// Sequence-lock access to a caller-owned buffer of `PublishedClockLayout.usedByteCount`
/// bytes: the same code the mapped file uses, so the layout can be tested without a file.
public struct PublishedClockBuffer {
    let region: PublishedClockRegion
    /// `base` must be 8-byte aligned; `initialise` writes the header.
    public init(base: UnsafeMutableRawPointer, initialise: Bool) {
        region = PublishedClockRegion(base: base)
        if initialise { region.initialise() }
    }
    public func publish(_ parameters: ClockParameters) { region.publish(parameters) }
    public func read() -> (parameters: ClockParameters, sequence: UInt64)? {
        region.snapshot(maximumAttempts: 1000).map { ($0.parameters, $0.sequence) }
    }
    public var layoutProblem: String? { region.layoutProblem() }
}
