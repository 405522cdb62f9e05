import XCTest
@testable import NTPPacket
import Randomness

/// Parsing never traps: a few hundred thousand random and half-plausible inputs, fixed seed.
/// Whatever parses must also be self-consistent and re-encode to the same bytes.
final class RandomInputTests: XCTestCase {
    func checkConsistent(_ parsed: NTPParsedPacket, _ packet: UnsafeRawBufferPointer) {
        XCTAssertEqual(parsed.length, packet.count)
        XCTAssertEqual(parsed.extensionFieldBytes.lowerBound, 48)
        var walker = parsed.extensionFields(in: packet)
        var count = 0
        var end = 48
        do {
            while let field = try walker.next() {
                XCTAssertEqual(field.bytes.lowerBound, end)
                XCTAssertGreaterThanOrEqual(field.length, 16)
                XCTAssertEqual(field.length % 4, 0)
                end = field.bytes.upperBound
                count += 1
            }
        } catch {
            XCTFail("walker disagrees with parser: \(error)")
        }
        XCTAssertEqual(count, parsed.extensionFieldCount)
        XCTAssertEqual(end, parsed.extensionFieldBytes.upperBound)
        XCTAssertEqual(parsed.mac?.bytes.upperBound ?? end, packet.count)
        if let mac = parsed.mac { XCTAssertTrue(NTPMACTrailer.isMACLength(mac.bytes.count)) }
        var out = [UInt8](repeating: 0, count: packet.count)
        let written = out.withUnsafeMutableBytes { destination in
            try? parsed.header.encode(into: destination, appending: UnsafeRawBufferPointer(rebasing: packet[parsed.trailingBytes]))
        }
        XCTAssertEqual(written, packet.count)
        XCTAssertTrue(out.elementsEqual(packet))
    }

    func testRandomBytesNeverTrap() {
        var random = SeededRandom(seed: 0x5EED_0001)
        var buffer = [UInt8](repeating: 0, count: 1500)
        var parsedCount = 0, errorCount = 0
        for round in 0..<300_000 {
            // Mostly the lengths real packets have, sometimes anything up to 1500.
            var length = round % 10 == 0 ? random.below(1501) : random.below(260)
            let structured = round % 2 == 0
            buffer.withUnsafeMutableBytes { raw in
                var offset = 0
                // Fresh random bytes up to `length`; beyond it the buffer keeps earlier random bytes.
                while offset < length {
                    let word = random.next()
                    for shift in stride(from: 0, to: 64, by: 8) where offset < length {
                        raw[offset] = UInt8(truncatingIfNeeded: word >> UInt64(shift)); offset += 1
                    }
                }
                guard structured && length >= 48 else { return }
                // A v4 header, extension-field headers with mostly valid lengths, then a trailer
                // of a MAC's length or not, so parsing goes deep and often succeeds.
                raw[0] = UInt8(random.below(4)) << 6 | 4 << 3 | UInt8(random.below(8))
                var position = 48
                while position + 4 <= length && random.below(4) != 0 {
                    let fieldLength = random.below(8) == 0 ? random.below(80) : 16 + 4 * random.below(10)
                    raw[position + 2] = UInt8(fieldLength >> 8)
                    raw[position + 3] = UInt8(fieldLength & 0xFF)
                    position += max(fieldLength, 4)
                }
                let trailer = [0, 4, 20, 24, 0, 4, 20, 24, random.below(30)][random.below(9)]
                length = min(1500, position + trailer)
            }
            buffer.withUnsafeBytes { raw in
                let packet = UnsafeRawBufferPointer(rebasing: raw[0..<length])
                do throws(NTPPacketError) {
                    let parsed = try NTPParsedPacket(parsing: packet)
                    parsedCount += 1
                    if parsedCount % 16 == 0 || parsed.extensionFieldCount > 0 { checkConsistent(parsed, packet) }
                } catch {
                    errorCount += 1
                }
            }
        }
        XCTAssertEqual(parsedCount + errorCount, 300_000)
        // Both outcomes must be exercised, or the generator is not testing the rules.
        XCTAssertGreaterThan(parsedCount, 10_000)
        XCTAssertGreaterThan(errorCount, 10_000)
    }
}
