import XCTest
@testable import NTPPacket
import Randomness

final class HeaderLayoutTests: XCTestCase {
    /// A header with a distinct value in every field: the in-place accessors must read what
    /// the codec wrote, and the setters must write what the codec writes, byte for byte.
    func testAccessorsAgreeWithTheCodec() throws {
        var generator = SeededRandom(seed: 0x4EAD_E12)   // fixed: a failure replays
        for _ in 0..<200 {
            let header = NTPHeader(leapIndicator: NTPLeapIndicator.allCases.randomElement(using: &generator)!,
                                   version: UInt8.random(in: 0...7, using: &generator),
                                   mode: NTPMode.allCases.randomElement(using: &generator)!,
                                   stratum: UInt8.random(in: 0...255, using: &generator),
                                   poll: Int8.random(in: -128...127, using: &generator),
                                   precision: Int8.random(in: -128...127, using: &generator),
                                   rootDelay: NTPShortTime(rawValue: generator.next()),
                                   rootDispersion: NTPShortTime(rawValue: generator.next()),
                                   referenceID: NTPReferenceID(rawValue: generator.next()),
                                   referenceTimestamp: NTPTimestamp(rawValue: generator.next()),
                                   originTimestamp: NTPTimestamp(rawValue: generator.next()),
                                   receiveTimestamp: NTPTimestamp(rawValue: generator.next()),
                                   transmitTimestamp: NTPTimestamp(rawValue: generator.next()))
            var encoded = [UInt8](repeating: 0xAA, count: 48)
            try encoded.withUnsafeMutableBytes { _ = try header.encode(into: $0) }
            try encoded.withUnsafeBytes { raw in
                let view = try XCTUnwrap(NTPHeaderBytes(raw))
                XCTAssertEqual(view.leapIndicatorBits, header.leapIndicator.rawValue)
                XCTAssertEqual(view.version, header.version)
                XCTAssertEqual(view.modeBits, header.mode.rawValue)
                XCTAssertEqual(view.stratum, header.stratum)
                XCTAssertEqual(view.poll, header.poll)
                XCTAssertEqual(view.precision, header.precision)
                XCTAssertEqual(view.rootDelay, header.rootDelay)
                XCTAssertEqual(view.rootDispersion, header.rootDispersion)
                XCTAssertEqual(view.referenceID, header.referenceID)
                XCTAssertEqual(view.referenceTimestamp, header.referenceTimestamp)
                XCTAssertEqual(view.originTimestamp, header.originTimestamp)
                XCTAssertEqual(view.receiveTimestamp, header.receiveTimestamp)
                XCTAssertEqual(view.transmitTimestamp, header.transmitTimestamp)
            }
            // Field by field through the setters, into different garbage.
            var written = [UInt8](repeating: 0x55, count: 48)
            written.withUnsafeMutableBytes { raw in
                let out = NTPMutableHeaderBytes(raw)!
                out.setFirstByte(leapIndicatorBits: header.leapIndicator.rawValue, version: header.version, modeBits: header.mode.rawValue)
                out.setStratum(header.stratum)
                out.setPoll(header.poll)
                out.setPrecision(header.precision)
                out.setRootDelay(header.rootDelay)
                out.setRootDispersion(header.rootDispersion)
                out.setReferenceID(header.referenceID)
                out.setTimestamp(header.referenceTimestamp, at: NTPHeaderLayout.referenceTimestampOffset)
                out.setTimestamp(header.originTimestamp, at: NTPHeaderLayout.originTimestampOffset)
                out.setTimestamp(header.receiveTimestamp, at: NTPHeaderLayout.receiveTimestampOffset)
                out.setTimestamp(header.transmitTimestamp, at: NTPHeaderLayout.transmitTimestampOffset)
            }
            XCTAssertEqual(written, encoded)
        }
    }

    /// The views refuse anything shorter than a header, so their accessors never read past it.
    func testViewsRefuseShortBuffers() {
        var bytes = [UInt8](repeating: 0, count: 47)
        bytes.withUnsafeBytes { XCTAssertNil(NTPHeaderBytes($0)) }
        bytes.withUnsafeMutableBytes { XCTAssertNil(NTPMutableHeaderBytes($0)) }
        bytes.append(0x23)
        bytes.withUnsafeBytes { XCTAssertEqual(NTPHeaderBytes($0)?.stratum, 0) }
    }

    /// RFC 5905 §7.3: LI in the top two bits, version in the next three, mode in the last three.
    func testFirstBytePacking() {
        XCTAssertEqual(NTPHeaderLayout.firstByte(leapIndicatorBits: 0, version: 4, modeBits: 3), 0x23)
        XCTAssertEqual(NTPHeaderLayout.firstByte(leapIndicatorBits: 3, version: 4, modeBits: 4), 0xE4)
        XCTAssertEqual(NTPHeaderLayout.leapIndicatorBits(ofFirstByte: 0xE4), 3)
        XCTAssertEqual(NTPHeaderLayout.version(ofFirstByte: 0xE4), 4)
        XCTAssertEqual(NTPHeaderLayout.modeBits(ofFirstByte: 0xE4), 4)
    }
}
