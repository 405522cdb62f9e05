import XCTest
import Foundation
import KernelStamps
@testable import NTPServer
import NTPPacket

struct Vector {
    let origin: String
    let direction: String
    let bytes: [UInt8]
}

/// The packets real implementations sent (testdata/vectors/real-implementations.json, found
/// from this file: part of every checkout, so a missing file fails rather than skips).
func loadVectors(file: StaticString = #filePath) throws -> [Vector] {
    // Tests/ServerTests/ServerTestSupport.swift → repository root → testdata/vectors
    var url = URL(fileURLWithPath: "\(file)")
    for _ in 0..<3 { url.deleteLastPathComponent() }
    let path = url.appendingPathComponent("testdata/vectors/real-implementations.json").path
    guard let data = FileManager.default.contents(atPath: path) else {
        XCTFail("vector file not found at \(path); restore testdata/vectors from git")
        return []
    }
    let list = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]])
    return try list.map { entry in
        let hex = try XCTUnwrap(entry["hex"] as? String)
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(try XCTUnwrap(UInt8(hex[index..<next], radix: 16)))
            index = next
        }
        return Vector(origin: entry["origin"] as? String ?? "", direction: entry["direction"] as? String ?? "", bytes: bytes)
    }
}

let testState = ServerState(leapIndicator: .noWarning, stratum: 1, precision: -24, rootDelay: .zero,
                            rootDispersion: NTPShortTime(rawValue: 3), referenceID: .gps,
                            referenceTimestamp: NTPTimestamp(rawValue: 0xEEAC_6B00_0000_0000))

/// Runs `core.handle` on `request` and returns the outcome and the response bytes.
func respond(_ core: ServerCore, _ request: [UInt8], source: SocketAddress = .loopbackIPv4(port: 40000),
             receive: Int64 = 1_800_000_000_123_456_789, now: Int64 = 1_000_000_000) -> (HandleOutcome, [UInt8]) {
    var response = [UInt8](repeating: 0xEE, count: 64)
    let outcome = request.withUnsafeBytes { raw in
        response.withUnsafeMutableBytes { out in
            core.handle(request: raw, source: source.key, receiveUnixNanoseconds: receive,
                        nowMonotonicNanoseconds: now, response: out.baseAddress!)
        }
    }
    return (outcome, Array(response.prefix(outcome.length)))
}

func header(_ bytes: [UInt8]) throws -> NTPHeader {
    try bytes.withUnsafeBytes { raw in try NTPHeader(decoding: raw) }
}

func request(mode: UInt8 = 3, version: UInt8 = 4, poll: Int8 = 6, origin: UInt64 = 0, receive: UInt64 = 0,
             transmit: UInt64 = 0x1234_5678_9ABC_DEF0, length: Int = 48) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: max(length, 48))
    bytes[0] = version << 3 | mode
    bytes[2] = UInt8(bitPattern: poll)
    for i in 0..<8 {
        bytes[24 + i] = UInt8(truncatingIfNeeded: origin >> (56 - 8 * UInt64(i)))
        bytes[32 + i] = UInt8(truncatingIfNeeded: receive >> (56 - 8 * UInt64(i)))
        bytes[40 + i] = UInt8(truncatingIfNeeded: transmit >> (56 - 8 * UInt64(i)))
    }
    return Array(bytes.prefix(length))
}
