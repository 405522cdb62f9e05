import XCTest
@testable import NTPPacket
import Randomness

/// Extension fields (RFC 7822) and the legacy MAC (RFC 5905 §7.3, RFC 8573), told apart per RFC 7822 §7.
final class TrailerTests: XCTestCase {
    func expectError(_ packet: [UInt8], _ expected: NTPPacketError, file: StaticString = #filePath, line: UInt = #line) {
        switch parse(packet) {
        case .success(let parsed): XCTFail("parsed, expected \(expected): \(parsed)", file: file, line: line)
        case .failure(let error): XCTAssertEqual(error, expected, file: file, line: line)
        }
    }

    func expectParsed(_ packet: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> NTPParsedPacket? {
        switch parse(packet) {
        case .success(let parsed): return parsed
        case .failure(let error): XCTFail("\(error)", file: file, line: line); return nil
        }
    }

    func testShortPacketsAreRejected() {
        for length in 0..<48 {
            expectError([UInt8](repeating: 0x23, count: length), .tooShort(length: length))
        }
    }

    func testExtensionFieldShorterThan16IsRejected() {
        for declared in [0, 4, 8, 12] {
            expectError(v4Packet(trailer: extensionField(type: 0x0104, declaredLength: declared, bodyLength: 28)),
                        .extensionFieldTooShort(offset: 48, length: declared))
        }
    }

    func testExtensionFieldLengthNotMultipleOf4IsRejected() {
        for declared in [17, 18, 19, 29, 31] {
            expectError(v4Packet(trailer: extensionField(type: 0x0104, declaredLength: declared, bodyLength: 32)),
                        .extensionFieldLengthNotMultipleOfFour(offset: 48, length: declared))
        }
    }

    func testExtensionFieldOverrunningThePacketIsRejected() {
        expectError(v4Packet(trailer: extensionField(type: 0x0204, declaredLength: 40, bodyLength: 32)),
                    .extensionFieldOverrunsPacket(offset: 48, length: 40, remaining: 36))
        expectError(v4Packet(trailer: extensionField(type: 0x0204, declaredLength: 0xFFFC, bodyLength: 100)),
                    .extensionFieldOverrunsPacket(offset: 48, length: 0xFFFC, remaining: 104))
        // The second field overruns.
        let first = extensionField(type: 0x0104, declaredLength: 16, bodyLength: 12)
        expectError(v4Packet(trailer: first + extensionField(type: 0x0404, declaredLength: 64, bodyLength: 28)),
                    .extensionFieldOverrunsPacket(offset: 64, length: 64, remaining: 32))
    }

    func testTrailingBytesThatAreNeitherFieldNorMACAreRejected() {
        for count in 1..<28 where !NTPMACTrailer.isMACLength(count) {
            expectError(v4Packet(trailer: [UInt8](repeating: 0, count: count)),
                        .trailingBytesNotExtensionFieldOrMAC(offset: 48, count: count))
            // ... also after a valid field.
            let field = extensionField(type: 0x0104, declaredLength: 32, bodyLength: 28)
            expectError(v4Packet(trailer: field + [UInt8](repeating: 0, count: count)),
                        .trailingBytesNotExtensionFieldOrMAC(offset: 80, count: count))
        }
    }

    func testLastFieldWithoutMACMustBe28() {
        // A lone 16- or 24-byte field cannot be told from a MAC, so RFC 7822 §7 forbids it.
        expectError(v4Packet(trailer: extensionField(type: 0x0104, declaredLength: 16, bodyLength: 12)),
                    .trailingBytesNotExtensionFieldOrMAC(offset: 48, count: 16))
        let lone = v4Packet(trailer: extensionField(type: 0x0104, declaredLength: 28, bodyLength: 24))
        let parsed = expectParsed(lone)
        XCTAssertEqual(parsed?.extensionFieldCount, 1)
        XCTAssertNil(parsed?.mac)
        XCTAssertEqual(parsed?.extensionFieldBytes, 48..<76)
    }

    func testMACTrailerSizes() {
        let keyID: [UInt8] = [0x00, 0x00, 0x00, 0x2A]
        for (digestLength, kind) in [(0, NTPMACTrailer.Kind.cryptoNAK), (16, .digest16), (20, .digest20)] {
            let digest = (0..<digestLength).map { UInt8($0 + 1) }
            let packet = v4Packet(trailer: keyID + digest)
            guard let parsed = expectParsed(packet), let mac = parsed.mac else { XCTFail("no MAC for \(digestLength)"); continue }
            XCTAssertEqual(mac.kind, kind)
            XCTAssertEqual(mac.keyID, 42)
            XCTAssertEqual(Array(packet[mac.digest]), digest)
            XCTAssertEqual(parsed.extensionFieldCount, 0)
            // NTPv3 carries the same MACs.
            XCTAssertEqual(expectParsed(v4Packet(trailer: keyID + digest, version: 3))?.mac?.kind, kind)
        }
    }

    func testFieldsFollowedByMAC() throws {
        let field = extensionField(type: 0x0204, declaredLength: 32, bodyLength: 28)
        for macLength in [4, 20, 24] {
            let mac = [UInt8](repeating: 0xCC, count: macLength)
            let packet = v4Packet(trailer: field + mac)
            let parsed = try XCTUnwrap(expectParsed(packet))
            XCTAssertEqual(parsed.extensionFieldCount, 1)
            XCTAssertEqual(parsed.extensionFieldBytes, 48..<80)
            XCTAssertEqual(parsed.mac?.bytes, 80..<(80 + macLength))
            XCTAssertEqual(parsed.mac?.keyID, 0xCCCC_CCCC)
            XCTAssertEqual(try reencode(parsed, from: packet), packet)
        }
    }

    func testTwentyOrTwentyFourRemainingBytesAreAlwaysAMAC() throws {
        // RFC 7822 §7: 20 or 24 bytes left are a MAC, even if they could be read as a
        // 16-byte field plus a crypto-NAK; a sender must not produce that shape.
        let unique = extensionField(type: 0x0104, declaredLength: 16, bodyLength: 12)
        let packet = v4Packet(trailer: unique + [0, 0, 0, 0])
        let parsed = try XCTUnwrap(expectParsed(packet))
        XCTAssertEqual(parsed.extensionFieldCount, 0)
        XCTAssertEqual(parsed.mac?.kind, .digest16)
        XCTAssertEqual(parsed.mac?.keyID, 0x0104_0010)
        // Two short fields then a 28-byte last field, no MAC.
        let three = v4Packet(trailer: unique + unique + extensionField(type: 0x0404, declaredLength: 28, bodyLength: 24))
        let threeParsed = try XCTUnwrap(expectParsed(three))
        XCTAssertEqual(try fields(of: three, threeParsed).map(\.fieldType), [.uniqueIdentifier, .uniqueIdentifier, .ntsAuthenticatorAndEncryptedExtensionFields])
        XCTAssertNil(threeParsed.mac)
    }

    func testOnlyNTPv4CarriesExtensionFields() {
        let field = extensionField(type: 0x0104, declaredLength: 32, bodyLength: 28)
        for version: UInt8 in [0, 1, 2, 3, 5, 7] {
            expectError(v4Packet(trailer: field, version: version), .trailerNotAMACForVersion(version: version, count: 32))
        }
    }

    func testErrorsExplainThemselves() {
        let errors: [NTPPacketError] = [
            .tooShort(length: 12), .extensionFieldTooShort(offset: 48, length: 8),
            .extensionFieldLengthNotMultipleOfFour(offset: 48, length: 17),
            .extensionFieldOverrunsPacket(offset: 48, length: 40, remaining: 36),
            .trailingBytesNotExtensionFieldOrMAC(offset: 80, count: 7), .trailerNotAMACForVersion(version: 3, count: 32),
            .bufferTooSmall(needed: 48, available: 10), .extensionFieldValueTooLong(valueLength: 70_000),
            .unsupportedMACDigestLength(12),
        ]
        for error in errors {
            let text = error.description
            XCTAssertGreaterThan(text.count, 30, text)
        }
        XCTAssertTrue(NTPPacketError.extensionFieldOverrunsPacket(offset: 48, length: 40, remaining: 36).description.contains("36"))
        XCTAssertEqual(Set(errors.map(\.description)).count, errors.count)
    }

    func testWritingFieldsAndMACBuildsAPacketThatParsesBack() throws {
        var buffer = [UInt8](repeating: 0xEE, count: 256)
        let header = NTPHeader(version: 4, mode: .client, poll: 6, precision: -20,
                               transmitTimestamp: NTPTimestamp(seconds: 0xEEAC_64CB, fraction: 0x782D_B81F))
        let uid = [UInt8](repeating: 0x11, count: 32)
        let cookie = [UInt8](repeating: 0x22, count: 13)  // padded to 20 bytes of field
        let digest = [UInt8](repeating: 0x33, count: 16)
        let total = try buffer.withUnsafeMutableBytes { out in
            var offset = try header.encode(into: out)
            offset += try uid.withUnsafeBytes { try NTPExtensionField.write(.uniqueIdentifier, value: $0, into: out, at: offset) }
            offset += try cookie.withUnsafeBytes { try NTPExtensionField.write(.ntsCookie, value: $0, into: out, at: offset) }
            offset += try NTPExtensionField.write(.ntsCookiePlaceholder, value: UnsafeRawBufferPointer(start: nil, count: 0), into: out, at: offset)
            offset += try digest.withUnsafeBytes { try NTPMACTrailer.write(keyID: 7, digest: $0, into: out, at: offset) }
            return offset
        }
        XCTAssertEqual(total, 48 + 36 + 20 + 16 + 20)
        let packet = Array(buffer[0..<total])
        let parsed = try XCTUnwrap(expectParsed(packet))
        XCTAssertEqual(parsed.header, header)
        let walked = try fields(of: packet, parsed)
        XCTAssertEqual(walked.map(\.fieldType), [.uniqueIdentifier, .ntsCookie, .ntsCookiePlaceholder])
        XCTAssertEqual(walked.map(\.length), [36, 20, 16])
        XCTAssertEqual(Array(packet[walked[1].value]), cookie + [0, 0, 0], "value padded with zeros")
        XCTAssertEqual(Array(packet[walked[2].value]), [UInt8](repeating: 0, count: 12))
        XCTAssertEqual(parsed.mac?.keyID, 7)
        XCTAssertEqual(parsed.mac?.kind, .digest16)
        XCTAssertEqual(Array(packet[try XCTUnwrap(parsed.mac).digest]), digest)
    }

    func testWritersRefuseSmallBuffersAndBadSizes() throws {
        var small = [UInt8](repeating: 0, count: 47)
        try small.withUnsafeMutableBytes { out in
            XCTAssertThrowsError(try NTPHeader().encode(into: out)) {
                XCTAssertEqual($0 as? NTPPacketError, .bufferTooSmall(needed: 48, available: 47))
            }
            XCTAssertThrowsError(try NTPExtensionField.write(.ntsCookie, value: UnsafeRawBufferPointer(start: nil, count: 0), into: out, at: 40)) {
                XCTAssertEqual($0 as? NTPPacketError, .bufferTooSmall(needed: 56, available: 47))
            }
            XCTAssertThrowsError(try NTPMACTrailer.write(keyID: 1, digest: UnsafeRawBufferPointer(start: nil, count: 0), into: out, at: 44)) {
                XCTAssertEqual($0 as? NTPPacketError, .bufferTooSmall(needed: 48, available: 47))
            }
        }
        let twelve = [UInt8](repeating: 0, count: 12)
        var big = [UInt8](repeating: 0, count: 70_000)
        try big.withUnsafeMutableBytes { out in
            try twelve.withUnsafeBytes { digest in
                XCTAssertThrowsError(try NTPMACTrailer.write(keyID: 1, digest: digest, into: out, at: 0)) {
                    XCTAssertEqual($0 as? NTPPacketError, .unsupportedMACDigestLength(12))
                }
            }
            XCTAssertThrowsError(try NTPExtensionField.write(.ntsCookie, value: UnsafeRawBufferPointer(rebasing: out[0..<65_533]), into: out, at: 0)) {
                XCTAssertEqual($0 as? NTPPacketError, .extensionFieldValueTooLong(valueLength: 65_533))
            }
        }
        let header = NTPHeader()
        var exact = [UInt8](repeating: 0, count: 60)
        try exact.withUnsafeMutableBytes { out in
            try twelve.withUnsafeBytes { trailing in
                XCTAssertEqual(try? header.encode(into: out, appending: trailing), 60)
                XCTAssertThrowsError(try header.encode(into: UnsafeMutableRawBufferPointer(rebasing: out[0..<59]), appending: trailing))
            }
        }
    }

    func testHeaderFieldsSurviveEncodeAndDecode() throws {
        var random = SeededRandom(seed: 48)
        for _ in 0..<10_000 {
            let header = NTPHeader(
                leapIndicator: NTPLeapIndicator(rawValue: UInt8(random.below(4)))!, version: UInt8(random.below(8)),
                mode: NTPMode(rawValue: UInt8(random.below(8)))!, stratum: UInt8(random.below(256)),
                poll: Int8(truncatingIfNeeded: random.next()), precision: Int8(truncatingIfNeeded: random.next()),
                rootDelay: NTPShortTime(rawValue: UInt32(truncatingIfNeeded: random.next())),
                rootDispersion: NTPShortTime(rawValue: UInt32(truncatingIfNeeded: random.next())),
                referenceID: NTPReferenceID(rawValue: UInt32(truncatingIfNeeded: random.next())),
                referenceTimestamp: NTPTimestamp(rawValue: random.next()), originTimestamp: NTPTimestamp(rawValue: random.next()),
                receiveTimestamp: NTPTimestamp(rawValue: random.next()), transmitTimestamp: NTPTimestamp(rawValue: random.next()))
            var buffer = [UInt8](repeating: 0, count: 48)
            try buffer.withUnsafeMutableBytes { _ = try header.encode(into: $0) }
            let decoded = try buffer.withUnsafeBytes { try NTPHeader(decoding: $0) }
            XCTAssertEqual(decoded, header)
        }
    }
}
