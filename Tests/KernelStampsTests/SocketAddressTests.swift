import XCTest
@testable import KernelStamps
#if canImport(Glibc)
import Glibc
#endif

final class SocketAddressTests: XCTestCase {
    func testParseFormatRoundTrips() throws {
        let cases: [(String, UInt16, String)] = [
            ("127.0.0.1:12300", 123, "127.0.0.1:12300"),
            ("10.1.2.3", 123, "10.1.2.3:123"),
            ("[::1]:123", 9, "[::1]:123"),
            ("[::1]", 9, "[::1]:9"),
            ("::1", 9, "[::1]:9"),
            ("[2001:db8::42]:65535", 1, "[2001:db8::42]:65535"),
            ("[fe80::1%3]:5", 1, "[fe80::1%3]:5"),
            ("localhost:4000", 1, "127.0.0.1:4000"),
            ("localhost", 77, "127.0.0.1:77"),
        ]
        for (text, port, expected) in cases {
            let address = try SocketAddress(parsing: text, defaultPort: port)
            XCTAssertEqual(address.description, expected, text)
            XCTAssertEqual(try SocketAddress(parsing: address.description, defaultPort: 0), address, text)
        }
    }

    func testParsedValues() throws {
        let v4 = try SocketAddress(parsing: "192.168.1.20:123", defaultPort: 0)
        XCTAssertEqual(v4.family, .ipv4)
        XCTAssertEqual(v4.ipv4Address, 0xc0a8_0114)
        XCTAssertEqual(v4.port, 123)
        let v6 = try SocketAddress(parsing: "[2001:db8::1:2]:7", defaultPort: 0)
        XCTAssertEqual(v6.family, .ipv6)
        XCTAssertEqual(v6.high, 0x2001_0db8_0000_0000)
        XCTAssertEqual(v6.low, 0x0000_0000_0001_0002)
        XCTAssertNil(v6.ipv4Address)
    }

    func testRejectsGarbageWithClearError() {
        let garbage = ["", "hello", "1.2.3", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:12a",
                       "[::1", "[::1]x", "[1.2.3.4]:5", "256.1.1.1", "::g", "[::1]:99999", ":123"]
        for text in garbage {
            XCTAssertThrowsError(try SocketAddress(parsing: text, defaultPort: 123), text) { error in
                guard let error = error as? KernelError else { return XCTFail("not a KernelError: \(error)") }
                XCTAssertTrue(error.description.contains("\"\(text)\""), error.description)
                XCTAssertTrue(error.description.contains("expected") || error.description.contains("port"), error.description)
            }
        }
    }

    func testSockaddrRoundTripAndKey() throws {
        for address in [SocketAddress(ipv4: 0x7f00_0001, port: 4242),
                        SocketAddress(ipv6High: 0x2001_0db8_0000_0000, low: 99, port: 1, scopeID: 0),
                        SocketAddress(ipv6High: 0xfe80_0000_0000_0000, low: 5, port: 65535, scopeID: 2)] {
            var storage = sockaddr_storage()
            let length = address.write(to: &storage)
            let back = withUnsafePointer(to: &storage) { SocketAddress(sockaddr: $0, length: Int(length)) }
            XCTAssertEqual(back, address)
        }
        // An IPv4 client and the same client seen as IPv4-mapped on a dual-stack socket share a key.
        let v4 = SocketAddress(ipv4: 0x0a00_0001, port: 1000)
        let mapped = try SocketAddress(parsing: "[::ffff:10.0.0.1]:2000", defaultPort: 0)
        XCTAssertEqual(v4.key, mapped.key)
        XCTAssertNotEqual(v4, mapped)
        XCTAssertEqual(mapped.ipv4Address, 0x0a00_0001)
        XCTAssertNotEqual(v4.key, SocketAddress(ipv4: 0x0a00_0002, port: 1000).key)
        // A short or foreign sockaddr is rejected, not trapped on.
        var storage = sockaddr_storage()
        storage.ss_family = sa_family_t(AF_UNIX)
        XCTAssertNil(withUnsafePointer(to: &storage) { SocketAddress(sockaddr: $0, length: 110) })
        XCTAssertNil(withUnsafePointer(to: &storage) { SocketAddress(sockaddr: $0, length: 1) })
    }

    func testResolveLocalhostName() throws {
        let address = try SocketAddress.resolve("localhost:55", defaultPort: 1)
        XCTAssertEqual(address.port, 55)
        XCTAssertTrue(address == .loopbackIPv4(port: 55) || address == .loopbackIPv6(port: 55), address.description)
        XCTAssertThrowsError(try SocketAddress.resolve("no-such-host.invalid", defaultPort: 1)) { error in
            XCTAssertTrue("\(error)".contains("no-such-host.invalid"), "\(error)")
        }
    }
}
