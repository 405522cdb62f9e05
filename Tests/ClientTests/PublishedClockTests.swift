import XCTest
import Foundation
import FeedforwardClock
import KernelStamps
import PublishedClock

/// A file laid out as the vmclock ABI page (Linux include/uapi/linux/vmclock-abi.h), written
/// in place so that mappings of it see every change, as a guest sees the hypervisor's page.
final class FakeVMClockPage {
    let path: String
    private let handle: FileHandle
    private var sequence: UInt32 = 0

    init(directory: String, marker: UInt64, generation: UInt64 = 0, byteCount: Int = 112, version: UInt16 = 1,
         magic: UInt32 = 0x4B4C_4356) throws {
        path = directory + "/vmclock-\(UInt32.random(in: 0...UInt32.max))"
        var bytes = [UInt8](repeating: 0, count: byteCount)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
        }
        put(magic, at: 0)
        put(UInt32(byteCount), at: 4)
        put(version, at: 8)
        put(marker, at: 16)
        if byteCount >= 112 {
            put(generation == 0 ? UInt64(0) : UInt64(1) << 8, at: 24)
            put(generation, at: 104)
        }
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
    }

    deinit {
        try? handle.close()
        unlink(path)
    }

    private func write<T: FixedWidthInteger>(_ value: T, at offset: UInt64) throws {
        try handle.seek(toOffset: offset)
        handle.write(withUnsafeBytes(of: value.littleEndian) { Data($0) })
    }

    /// A migration as the hypervisor signals it: sequence odd, new marker, sequence even.
    func disrupt(marker: UInt64, generation: UInt64? = nil) throws {
        sequence &+= 1
        try write(sequence, at: 12)
        try write(marker, at: 16)
        if let generation { try write(generation, at: 104) }
        sequence &+= 1
        try write(sequence, at: 12)
    }

    /// Leaves the page mid-update (sequence odd), as a hypervisor caught while writing.
    func beginUpdate() throws {
        sequence &+= 1
        try write(sequence, at: 12)
    }
}

func temporaryDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("published-clock-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// Synchronised parameters whose last stamp is at `counter`, next due one poll later.
func liveParameters(at counter: Int64, pollNanoseconds: Int64 = 16_000_000_000) -> ClockParameters {
    ClockParameters(
        counterOrigin: counter, timeAtOriginNanoseconds: 1_795_286_605_000_000_000, timeAtOriginFraction: 0.5,
        periodSecondsPerTick: 1.000_000_5e-9, periodError: 1e-8, periodErrorBound: 1e-7, localPeriodSecondsPerTick: 1.000_000_4e-9,
        offsetNanoseconds: 0, errorEstimateNanoseconds: 100, maxErrorNanoseconds: 10_000, maxErrorGrowthRate: 1e-6,
        lastStampCounter: counter, nextStampExpectedCounter: counter + pollNanoseconds, leap: 0, status: [],
        lastRTTNanoseconds: 50_000, minimumRTTNanoseconds: 40_000, naiveOffsetNanoseconds: 0, stampCount: 40)
}

final class PublishedClockTests: XCTestCase {
    var directory = ""
    override func setUpWithError() throws { directory = try temporaryDirectory() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func testVersionThreeWordsHoldWriterStateAndVMClockPath() throws {
        let base = UnsafeMutableRawPointer.allocate(byteCount: PublishedClockLayout.usedByteCount, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0xAA, count: PublishedClockLayout.usedByteCount)
        defer { base.deallocate() }
        let buffer = PublishedClockBuffer(base: base, initialise: true, vmclockPath: "/dev/vmclock0")
        XCTAssertNil(buffer.layoutProblem)
        XCTAssertEqual(buffer.vmclockPath, "/dev/vmclock0")
        let p = liveParameters(at: 5_000_000_000)
        let marker = VMClockMarker(disruptionMarker: 0x1122_3344_5566_7788, generation: 9)
        buffer.publish(p, writer: PublishedWriterState(stopped: true, marker: marker, staleGraceNanoseconds: 18_000_000_000))
        let bytes = UnsafeRawBufferPointer(start: base, count: PublishedClockLayout.usedByteCount)
        XCTAssertEqual(bytes.load(fromByteOffset: 8, as: UInt64.self), 3)
        XCTAssertEqual(bytes.load(fromByteOffset: 184, as: UInt64.self), 3, "stopped | vmclock")
        XCTAssertEqual(bytes.load(fromByteOffset: 192, as: UInt64.self), 0x1122_3344_5566_7788)
        XCTAssertEqual(bytes.load(fromByteOffset: 200, as: UInt64.self), 9)
        XCTAssertEqual(bytes.load(fromByteOffset: 208, as: Int64.self), 18_000_000_000)
        XCTAssertEqual(Array(bytes[256..<269]), Array("/dev/vmclock0".utf8))
        XCTAssertEqual(bytes[269], 0, "the path is NUL-terminated and the rest cleared")
        XCTAssertEqual(bytes[511], 0)
        let read = try XCTUnwrap(buffer.read())
        XCTAssertEqual(read.parameters, p)
        XCTAssertEqual(read.writer, PublishedWriterState(stopped: true, marker: marker, staleGraceNanoseconds: 18_000_000_000))
        // No vmclock: flag clear, markers zero, no path.
        let plain = PublishedClockBuffer(base: base, initialise: true)
        plain.publish(p)
        XCTAssertNil(plain.vmclockPath)
        XCTAssertEqual(plain.read()?.writer.marker, nil)
        XCTAssertEqual(plain.read()?.writer.staleGraceNanoseconds, 16_000_000_000 + PublishedClockLayout.staleGraceSlackNanoseconds)
    }

    func testVerdictOrderAndStaleGrace() {
        let last: Int64 = 1_000_000_000_000
        let p = liveParameters(at: last)
        let grace = PublishedWriterState.grace(for: p)
        XCTAssertEqual(grace, 18_000_000_000, "one poll plus the 2 s slack")
        func verdict(_ counter: Int64, stopped: Bool = false, published: VMClockMarker? = nil,
                     live: VMClockMarker? = nil, status: ClockStatus = []) -> PublishedTime {
            var q = p
            q.status = status
            let snapshot = PublishedSnapshot(parameters: q, writer: PublishedWriterState(stopped: stopped, marker: published, staleGraceNanoseconds: grace), sequence: 2)
            return PublishedTime(snapshot: snapshot, counter: counter, liveMarker: live)
        }
        let due = p.nextStampExpectedCounter
        XCTAssertEqual(verdict(due).verdict, .ok)
        XCTAssertEqual(verdict(due + grace).verdict, .ok, "fresh through the whole grace")
        XCTAssertEqual(verdict(due + grace + 1).verdict, .stale)
        XCTAssertEqual(verdict(due + grace + 1).freshness, .stale)
        XCTAssertEqual(verdict(due + grace + 1_025_000_000_000).verdict, .unusable)
        XCTAssertEqual(verdict(due, status: .unsynchronised).verdict, .unsynchronised)
        XCTAssertEqual(verdict(due, stopped: true).verdict, .stopped, "stopped wins over fresh")
        XCTAssertEqual(verdict(due + grace + 1, stopped: true).verdict, .stopped)
        let a = VMClockMarker(disruptionMarker: 1, generation: 0)
        let b = VMClockMarker(disruptionMarker: 2, generation: 0)
        let c = VMClockMarker(disruptionMarker: 1, generation: 5)
        XCTAssertEqual(verdict(due, published: a, live: a).verdict, .ok)
        XCTAssertEqual(verdict(due, published: a, live: b).verdict, .disrupted)
        XCTAssertEqual(verdict(due, published: a, live: c).verdict, .disrupted, "a snapshot restore counts too")
        XCTAssertEqual(verdict(due, stopped: true, published: a, live: b).verdict, .disrupted)
        XCTAssertEqual(verdict(due, published: a, live: b).maxErrorNanoseconds, .infinity,
                       "a disrupted clock's bound cannot be mistaken for good")
        XCTAssertEqual(verdict(due, published: a, live: nil).verdict, .ok, "an unreadable page is not a disruption")
        XCTAssertEqual(verdict(due, status: [.unsynchronised, .noEstimate]).verdict, .unusable)
        XCTAssertTrue(PublishedClockVerdict.stale.isFailure)
        XCTAssertTrue(PublishedClockVerdict.stopped.isFailure)
        XCTAssertFalse(PublishedClockVerdict.unsynchronised.isFailure)
    }

    func testFakeVMClockPageIsReadUnderItsLockAndChecked() throws {
        let page = try FakeVMClockPage(directory: directory, marker: 7, generation: 3)
        let mapped = try VMClockPage(path: page.path)
        XCTAssertEqual(mapped.marker(), VMClockMarker(disruptionMarker: 7, generation: 3))
        try page.disrupt(marker: 8)
        XCTAssertEqual(mapped.marker(), VMClockMarker(disruptionMarker: 8, generation: 3), "the mapping sees the change")
        try page.beginUpdate()
        XCTAssertNil(mapped.marker(maximumAttempts: 10), "never trust a page mid-update")
        // A page without the generation counter (the original 104-byte ABI).
        let short = try FakeVMClockPage(directory: directory, marker: 11, byteCount: 104)
        XCTAssertEqual(try VMClockPage(path: short.path).marker(), VMClockMarker(disruptionMarker: 11, generation: 0))
        // Wrong magic and version are refused with a reason.
        let bad = try FakeVMClockPage(directory: directory, marker: 1, magic: 0x1234)
        XCTAssertThrowsError(try VMClockPage(path: bad.path)) { XCTAssertTrue("\($0)".contains("bad magic"), "\($0)") }
        let newer = try FakeVMClockPage(directory: directory, marker: 1, version: 2)
        XCTAssertThrowsError(try VMClockPage(path: newer.path)) { XCTAssertTrue("\($0)".contains("version 2"), "\($0)") }
    }

    /// The very next read after a migration says "disrupted", with no exchange and no writer.
    func testReaderSeesDisruptionOnTheNextReadWithoutTheWriter() throws {
        let page = try FakeVMClockPage(directory: directory, marker: 100, generation: 1)
        let path = directory + "/clock"
        let writer = try PublishedClockWriter(path: path, vmclockPath: page.path)
        let marker = try XCTUnwrap(try VMClockPage(path: page.path).marker())
        writer.publish(liveParameters(at: monotonicRawNanoseconds()), marker: marker)
        let reader = try PublishedClockReader(path: path)
        XCTAssertNil(reader.vmclockProblem)
        XCTAssertEqual(try reader.read().verdict, .ok)
        try page.disrupt(marker: 101)
        let after = try reader.read()
        XCTAssertEqual(after.verdict, .disrupted)
        XCTAssertEqual(after.maxErrorNanoseconds, .infinity)
        XCTAssertEqual(after.liveMarker, VMClockMarker(disruptionMarker: 101, generation: 1))
        // The writer re-anchors under the new marker: good again.
        writer.publish(liveParameters(at: monotonicRawNanoseconds()), marker: VMClockMarker(disruptionMarker: 101, generation: 1))
        XCTAssertEqual(try reader.read().verdict, .ok)
        // A reader that cannot map the page says why, and reads on.
        let missing = directory + "/clock-missing-page"
        _ = try PublishedClockWriter(path: missing, vmclockPath: directory + "/no-such-page")
        let blind = try PublishedClockReader(path: missing)
        XCTAssertNotNil(blind.vmclockProblem)
        XCTAssertNil(blind.vmclock)
    }

    func testStoppedWriterAndStaleWriter() throws {
        let path = directory + "/clock"
        let writer = try PublishedClockWriter(path: path)
        let reader = try PublishedClockReader(path: path)
        XCTAssertEqual(try reader.read().verdict, .unusable, "a new file says 'no estimate' at once")
        let now = monotonicRawNanoseconds()
        writer.publish(liveParameters(at: now))
        XCTAssertEqual(try reader.read().verdict, .ok)
        writer.markStopped()
        let stopped = try reader.read()
        XCTAssertEqual(stopped.verdict, .stopped)
        XCTAssertEqual(stopped.parameters, liveParameters(at: now), "stopping keeps the last parameters")
        XCTAssertTrue(stopped.maxErrorNanoseconds.isFinite)
        // A writer that died without stopping: stale once the due stamp plus the grace passed.
        let dead = try PublishedClockWriter(path: path)
        dead.publish(liveParameters(at: now - 40_000_000_000))
        let stale = try reader.read()
        XCTAssertEqual(stale.verdict, .stale, "due 24 s ago, grace 18 s")
        XCTAssertEqual(stale.freshness, .stale)
    }

    func testReaderWaitsBrieflyForAWriterStartedJustBefore() throws {
        let path = directory + "/late-clock"
        let creator = Thread {
            usleep(200_000)
            _ = try? PublishedClockWriter(path: path)
        }
        creator.start()
        let reader = try PublishedClockReader(path: path, waitingUpToNanoseconds: 3_000_000_000)
        XCTAssertEqual(try reader.read().verdict, .unusable)
        XCTAssertThrowsError(try PublishedClockReader(path: directory + "/never", waitingUpToNanoseconds: 50_000_000)) {
            XCTAssertTrue("\($0)".contains("ntpclient --publish"), "\($0)")
        }
    }
}
