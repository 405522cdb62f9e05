import XCTest
@testable import NTPPacket

final class ReferenceIDTests: XCTestCase {
    func testCodesReadAsASCII() {
        XCTAssertEqual(NTPReferenceID.locl.rawValue, 0x4C4F_434C)
        XCTAssertEqual(NTPReferenceID.kissInit.rawValue, 0x494E_4954)  // as in the ntpsec INIT vectors
        XCTAssertEqual(NTPReferenceID.gps.asciiCode, "GPS")
        XCTAssertEqual(NTPReferenceID(code: "GPS"), .gps)
        for code in ["RATE", "DENY", "RSTR", "INIT", "PPS", "LOCL", "NTSN", "ACST", "STEP"] {
            XCTAssertEqual(NTPReferenceID(code: code)?.asciiCode, code)
        }
        XCTAssertEqual(NTPReferenceID(code: "RATE"), .rate)
        XCTAssertEqual(NTPReferenceID(code: "DENY"), .deny)
        XCTAssertEqual(NTPReferenceID(code: "RSTR"), .rstr)
        XCTAssertEqual(NTPReferenceID(code: "PPS"), .pps)
        XCTAssertNil(NTPReferenceID(code: "TOOLONG"))
        XCTAssertNil(NTPReferenceID(code: "é"))
        XCTAssertNil(NTPReferenceID(rawValue: 0x7F7F_0101).asciiCode, "an address is not a code")
        XCTAssertNil(NTPReferenceID(rawValue: 0).asciiCode)
        XCTAssertNil(NTPReferenceID(rawValue: 0x4700_5300).asciiCode, "NUL inside a code")
    }

    func testIPv4() {
        let id = NTPReferenceID(ipv4: 127, 127, 1, 1)
        XCTAssertEqual(id.rawValue, 0x7F7F_0101)  // chrony's refid in the vectors
        XCTAssertEqual(id.ipv4Description, "127.127.1.1")
    }

    func testMD5AgainstRFC1321TestSuite() {
        let suite: [(String, String)] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            ("12345678901234567890123456789012345678901234567890123456789012345678901234567890", "57edf4a22be3c955ac49da2e2107b67a"),
        ]
        for (message, expected) in suite {
            let digest = Array(message.utf8).withUnsafeBytes { MD5.digest(of: $0) }
            let bytes = withUnsafeBytes(of: digest) { Array($0) }
            XCTAssertEqual(hexString(bytes), expected, message)
        }
    }

    func testIPv6ReferenceIDIsFirstFourOctetsOfMD5() {
        // ::1; MD5 of its 16 bytes computed independently (python3 hashlib.md5) is cf404dc8...
        let loopback: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                       UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
        XCTAssertEqual(hex32(NTPReferenceID(ipv6Address: loopback).rawValue), "cf404dc8")
    }
}
