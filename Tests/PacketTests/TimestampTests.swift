import Glibc
import XCTest
@testable import NTPPacket
import Randomness

final class TimestampTests: XCTestCase {
    let nanosecondsPerSecond: Int64 = 1_000_000_000
    /// 2026-11-21T18:43:25Z, the capture date of the vectors, as a "now" pivot.
    let pivot2026: Int64 = 1_795_286_605 * 1_000_000_000

    func testLastSecondOfEra0() {
        let last = NTPTimestamp(seconds: .max, fraction: 0)
        let unix = last.unixNanoseconds(nearestTo: pivot2026)
        XCTAssertEqual(UTCTimeText.iso8601(unixNanoseconds: unix), "2036-02-07T06:28:15.000000000Z")
        XCTAssertEqual(unix, (Int64(UInt32.max) - NTPTimestamp.secondsFrom1900To1970) * nanosecondsPerSecond)
        XCTAssertEqual(NTPTimestamp(unixNanoseconds: unix), last)
    }

    func testFirstSecondOfEra1() {
        let first = NTPTimestamp(seconds: 0, fraction: 0)
        let unix = first.unixNanoseconds(nearestTo: pivot2026)
        XCTAssertEqual(UTCTimeText.iso8601(unixNanoseconds: unix), "2036-02-07T06:28:16.000000000Z")
        XCTAssertEqual(unix, NTPTimestamp.era1StartUnixNanoseconds)
        // Seconds roll over to 0: the era is not on the wire (RFC 5905 §6).
        XCTAssertEqual(NTPTimestamp(unixNanoseconds: unix + 1_500_000_000).seconds, 1)
        // One nanosecond before the rollover is the last second of era 0.
        XCTAssertEqual(NTPTimestamp(unixNanoseconds: unix - 1).seconds, .max)
    }

    func testAcrossTheRolloverDifferencesAreShort() {
        let before = NTPTimestamp(unixNanoseconds: NTPTimestamp.era1StartUnixNanoseconds - 250_000_000)
        let after = NTPTimestamp(unixNanoseconds: NTPTimestamp.era1StartUnixNanoseconds + 750_000_000)
        XCTAssertEqual(after.nanoseconds(since: before), 1_000_000_000)
        XCTAssertEqual(before.nanoseconds(since: after), -1_000_000_000)
        // A pivot just before the rollover still decodes 0-second timestamps into era 1.
        XCTAssertEqual(after.unixNanoseconds(nearestTo: NTPTimestamp.era1StartUnixNanoseconds - 10 * nanosecondsPerSecond),
                       NTPTimestamp.era1StartUnixNanoseconds + 750_000_000)
    }

    func testBefore1970() {
        XCTAssertEqual(NTPTimestamp(unixNanoseconds: -1).unixNanoseconds(nearestTo: 0), -1)
        XCTAssertEqual(UTCTimeText.iso8601(unixNanoseconds: -1), "1969-12-31T23:59:59.999999999Z")
        // NTP's epoch itself: era 0, second 0.
        let epoch = NTPTimestamp(seconds: 0, fraction: 0)
        let unix = epoch.unixNanoseconds(nearestTo: -2_000_000_000 * nanosecondsPerSecond)  // pivot 1906
        XCTAssertEqual(unix, -NTPTimestamp.secondsFrom1900To1970 * nanosecondsPerSecond)
        XCTAssertEqual(UTCTimeText.iso8601(unixNanoseconds: unix), "1900-01-01T00:00:00.000000000Z")
        XCTAssertEqual(NTPTimestamp(unixNanoseconds: -NTPTimestamp.secondsFrom1900To1970 * nanosecondsPerSecond), epoch)
    }

    func testPivotChoosesTheNearestEra() {
        // 0x10000000 seconds: 1908-07-04 in era 0, 2044-08-10 in era 1.
        let stamp = NTPTimestamp(seconds: 0x1000_0000, fraction: 0)
        XCTAssertEqual(UTCTimeText.iso8601(unixNanoseconds: stamp.unixNanoseconds(nearestTo: pivot2026)).prefix(10), "2044-08-10")
        XCTAssertEqual(UTCTimeText.iso8601(unixNanoseconds: stamp.unixNanoseconds(nearestTo: 0)).prefix(10), "1908-07-04")
        // Exactly 2^31 s from the era-1 pivot: Wireshark's rule puts 0x80000000 in era 0.
        let half = NTPTimestamp(seconds: 0x8000_0000, fraction: 0)
        XCTAssertEqual(UTCTimeText.iso8601(unixNanoseconds: half.unixNanoseconds(nearestTo: NTPTimestamp.era1StartUnixNanoseconds)),
                       "1968-01-20T03:14:08.000000000Z")
    }

    func testDecodedTimeIsAlwaysWithinHalfAnEraOfThePivotAndCongruent() {
        var random = SeededRandom(seed: 0xE7A)
        for _ in 0..<100_000 {
            let stamp = NTPTimestamp(rawValue: random.next())
            // Pivots from about 1780 to 2160, so every answer fits Int64 nanoseconds.
            let pivot = Int64(bitPattern: random.next()) % (6_000_000_000 * nanosecondsPerSecond)
            let unix = stamp.unixNanoseconds(nearestTo: pivot)
            let distanceSeconds = (unix - pivot) / nanosecondsPerSecond
            XCTAssertLessThanOrEqual(abs(distanceSeconds), 1 << 31)
            let ntpSeconds = floorDivide(unix, nanosecondsPerSecond).quotient + NTPTimestamp.secondsFrom1900To1970
            XCTAssertEqual(UInt32(truncatingIfNeeded: ntpSeconds), stamp.seconds)
            // Back to NTP: moves the fraction by less than 1 ns (2^32 / 1e9 < 4.3 units).
            let again = NTPTimestamp(unixNanoseconds: unix)
            XCTAssertEqual(again.seconds, stamp.seconds)
            XCTAssertLessThanOrEqual(stamp.fraction - again.fraction, 4)
            XCTAssertEqual(again.unixNanoseconds(nearestTo: pivot), unix)
        }
    }

    func testNanosecondsRoundTripExactly() {
        var random = SeededRandom(seed: 42)
        for _ in 0..<100_000 {
            let unix = Int64(bitPattern: random.next()) % (4_000_000_000 * nanosecondsPerSecond)
            XCTAssertEqual(NTPTimestamp(unixNanoseconds: unix).unixNanoseconds(nearestTo: unix), unix)
            // and with a pivot a few decades off
            let pivot = unix + Int64(random.below(2_000_000_000)) * nanosecondsPerSecond - 1_000_000_000 * nanosecondsPerSecond
            XCTAssertEqual(NTPTimestamp(unixNanoseconds: unix).unixNanoseconds(nearestTo: pivot), unix)
        }
    }

    func testExtremePivotsSaturateInsteadOfTrapping() {
        // The ends of Int64 nanoseconds (years 1677 and 2262) round-trip exactly ...
        let latest = NTPTimestamp(unixNanoseconds: .max)
        let earliest = NTPTimestamp(unixNanoseconds: .min)
        XCTAssertEqual(latest.unixNanoseconds(nearestTo: .max), .max)
        XCTAssertEqual(earliest.unixNanoseconds(nearestTo: .min), .min)
        // ... and a time just beyond them saturates instead of overflowing.
        XCTAssertEqual(NTPTimestamp(seconds: latest.seconds &+ 10, fraction: 0).unixNanoseconds(nearestTo: .max), .max)
        XCTAssertEqual(NTPTimestamp(seconds: earliest.seconds &- 10, fraction: 0).unixNanoseconds(nearestTo: .min), .min)
    }

    func testFractionMatchesWiresharksTruncation() {
        // 0x80000000 is exactly half a second; 1 unit is 0.2328 ns and truncates to 0.
        XCTAssertEqual(NTPTimestamp(seconds: 0x83AA_7E80, fraction: 0x8000_0000).unixNanoseconds(nearestTo: 0), 500_000_000)
        XCTAssertEqual(NTPTimestamp(seconds: 0x83AA_7E80, fraction: 1).unixNanoseconds(nearestTo: 0), 0)
        XCTAssertEqual(NTPTimestamp(seconds: 0x83AA_7E80, fraction: .max).unixNanoseconds(nearestTo: 0), 999_999_999)
    }

    func testShortFormatExtremes() {
        XCTAssertEqual(NTPShortTime.zero.nanoseconds, 0)
        // 0xFFFFFFFF = 65535 + 65535/65536 s.
        XCTAssertEqual(NTPShortTime.max.nanoseconds, (65_535 * 65_536 + 65_535) * nanosecondsPerSecond / 65_536)
        XCTAssertEqual(NTPShortTime(nanoseconds: -1), .zero)
        XCTAssertEqual(NTPShortTime(nanoseconds: .min), .zero)
        XCTAssertEqual(NTPShortTime(nanoseconds: 65_536 * nanosecondsPerSecond), .max)
        XCTAssertEqual(NTPShortTime(nanoseconds: .max), .max)
        XCTAssertEqual(NTPShortTime(nanoseconds: NTPShortTime.max.nanoseconds), .max)
        XCTAssertEqual(NTPShortTime(nanoseconds: 1).rawValue, 1, "rounds up, never understating an error bound")
        XCTAssertEqual(NTPShortTime(nanoseconds: 1_000_000_000).rawValue, 0x0001_0000)
        XCTAssertEqual(NTPShortTime(nanoseconds: 500_000_000).rawValue, 0x0000_8000)
        XCTAssertEqual(NTPShortTime(rawValue: 0x0001_8000).seconds, 1.5)
    }

    func testShortFormatRawRoundTrip() {
        var random = SeededRandom(seed: 7)
        for _ in 0..<100_000 {
            let raw = UInt32(truncatingIfNeeded: random.next())
            XCTAssertEqual(NTPShortTime(nanoseconds: NTPShortTime(rawValue: raw).nanoseconds).rawValue, raw)
        }
    }

    func testCivilCalendarAgreesWithGlibc() {
        var random = SeededRandom(seed: 1900)
        for _ in 0..<50_000 {
            // Years 1685 to 2255 (the range Int64 nanoseconds can hold).
            let seconds = Int64(bitPattern: random.next()) % 9_000_000_000
            var t = time_t(seconds)
            var fields = tm()
            XCTAssertNotNil(gmtime_r(&t, &fields))
            let ours = CivilTime(unixNanoseconds: seconds * nanosecondsPerSecond + 123)
            XCTAssertEqual(ours.year, Int64(fields.tm_year) + 1900)
            XCTAssertEqual(ours.month, Int64(fields.tm_mon) + 1)
            XCTAssertEqual(ours.day, Int64(fields.tm_mday))
            XCTAssertEqual(ours.hour, Int64(fields.tm_hour))
            XCTAssertEqual(ours.minute, Int64(fields.tm_min))
            XCTAssertEqual(ours.second, Int64(fields.tm_sec))
            XCTAssertEqual(ours.nanosecond, 123)
        }
    }

    func testTextFormats() {
        XCTAssertEqual(UTCTimeText.iso8601(unixNanoseconds: 0), "1970-01-01T00:00:00.000000000Z")
        XCTAssertEqual(UTCTimeText.iso8601(unixNanoseconds: 951_782_400 * nanosecondsPerSecond + 7), "2000-02-29T00:00:00.000000007Z")
        XCTAssertEqual(UTCTimeText.wiresharkStyle(unixNanoseconds: 951_782_400 * nanosecondsPerSecond), "Feb 29, 2000 00:00:00.000000000 UTC")
        XCTAssertEqual(UTCTimeText.wiresharkStyle(unixNanoseconds: 1_000_000_000 * nanosecondsPerSecond), "Sep  9, 2001 01:46:40.000000000 UTC")
    }
}
