import XCTest
import Foundation
import FeedforwardClock
import KernelStamps
@testable import NTPClient

final class RefclockSampleTests: XCTestCase {
    func synchronised(leap: UInt8 = 1) -> ClockParameters {
        var p = liveParameters(at: 10_000_000_000)
        p.leap = leap
        return p
    }

    func testSampleIsCaAndRealtimeFromOneReadingAndNoneWhileUnsynchronised() throws {
        let p = synchronised()
        let reading = SystemClockReading(rawNanoseconds: 10_500_000_000, realtimeNanoseconds: 1_795_286_605_500_001_234,
                                         bracketWidthNanoseconds: 40)
        let sample = try XCTUnwrap(RefclockSample(parameters: p, reading: reading))
        XCTAssertEqual(sample.systemNanoseconds, reading.realtimeNanoseconds)
        XCTAssertEqual(sample.referenceNanoseconds, p.absoluteTime(atCounter: reading.rawNanoseconds))
        XCTAssertEqual(sample.leap, 1)
        // The daemon's offset is exactly −sysoff of the same reading.
        XCTAssertEqual(sample.offsetSeconds(fromSystemTruncatedTo: 1) * 1e9, -reading.systemClockOffset(from: p), accuracy: 1e-3)
        var unsync = p
        unsync.status.insert(.unsynchronised)
        XCTAssertNil(RefclockSample(parameters: unsync, reading: reading), "an unsynchronised clock sends nothing")
        XCTAssertNil(RefclockSample(parameters: .empty, reading: reading))
        XCTAssertNil(RefclockSample(parameters: synchronised(leap: 3), reading: reading), "nor one whose server is not synchronised")
    }

    func testChronySockSampleBytes() throws {
        let p = synchronised(leap: 2)
        let reading = SystemClockReading(rawNanoseconds: 10_500_000_000, realtimeNanoseconds: 1_795_286_605_500_001_234,
                                         bracketWidthNanoseconds: 40)
        let sample = try XCTUnwrap(RefclockSample(parameters: p, reading: reading))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ChronySockSampleLayout.byteCount, alignment: 8)
        defer { buffer.deallocate() }
        ChronySockSampleLayout.encode(sample, into: buffer)
        XCTAssertEqual(buffer.load(fromByteOffset: 0, as: Int64.self), 1_795_286_605)
        XCTAssertEqual(buffer.load(fromByteOffset: 8, as: Int64.self), 500_001, "microseconds, truncated")
        let offset = buffer.load(fromByteOffset: 16, as: Double.self)
        // Relative to the truncated timeval: Ca − 1_795_286_605.500001 s.
        let expected = (Double(sample.referenceNanoseconds - 1_795_286_605_500_001_000) + sample.referenceFraction) / 1e9
        XCTAssertEqual(offset, expected, accuracy: 1e-12)
        XCTAssertEqual(buffer.load(fromByteOffset: 24, as: Int32.self), 0, "not a pulse")
        XCTAssertEqual(buffer.load(fromByteOffset: 28, as: Int32.self), 2, "delete a second")
        XCTAssertEqual(buffer.load(fromByteOffset: 36, as: Int32.self), 0x534F_434B)
    }

    func testSharedMemorySegmentFollowsModeOne() throws {
        // IPC_PRIVATE (key 0): a fresh segment nobody else sees.
        let segment = try SharedMemorySegment(key: 0, byteCount: NTPSharedMemoryLayout.byteCount)
        defer { segment.markForRemoval() }
        let p = synchronised(leap: 0)
        let reading = SystemClockReading(rawNanoseconds: 10_500_000_000, realtimeNanoseconds: 1_795_286_605_500_001_234,
                                         bracketWidthNanoseconds: 40)
        let sample = try XCTUnwrap(RefclockSample(parameters: p, reading: reading))
        NTPSharedMemoryLayout.write(sample, to: segment)
        NTPSharedMemoryLayout.write(sample, to: segment)
        XCTAssertEqual(segment.load32(atByteOffset: 0), 1, "mode 1")
        XCTAssertEqual(segment.load32(atByteOffset: 4), 4, "count bumped before and after each write")
        XCTAssertEqual(segment.load32(atByteOffset: 48), 1, "valid")
        XCTAssertEqual(segment.load64(atByteOffset: 8) * 1_000_000_000 + Int64(UInt32(bitPattern: segment.load32(atByteOffset: 52))),
                       sample.referenceNanoseconds, "clock time = Ca, nanosecond field")
        XCTAssertEqual(segment.load64(atByteOffset: 24), 1_795_286_605)
        XCTAssertEqual(segment.load32(atByteOffset: 32), 500_001)
        XCTAssertEqual(segment.load32(atByteOffset: 56), 500_001_234, "receive time = CLOCK_REALTIME")
        XCTAssertEqual(segment.load32(atByteOffset: 40), -16, "precision: 10 µs bound rounds up to 2^-16 s")
    }
}
