import Foundation
import XCTest
@testable import NTPPacket

/// Every packet captured from chrony 4.3, ntpsec 1.2.2 and ntpdig decodes to what Wireshark
/// decoded and re-encodes to the identical bytes (testdata/vectors/real-implementations.json,
/// whose packets are the UDP payloads of the captures in testdata/vectors/pcap).
final class VectorTests: XCTestCase {
    struct Vector {
        var index: Int
        var note: String
        var packet: [UInt8]
        var declaredLength: Int
        var wireshark: [String: String]
    }

    /// The repository's testdata/vectors, found from this file: part of every checkout.
    static let vectorsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("testdata/vectors")
    static let vectorsURL = vectorsDirectory.appendingPathComponent("real-implementations.json")

    func loadVectors() throws -> [Vector] {
        guard FileManager.default.fileExists(atPath: Self.vectorsURL.path) else {
            // Not a skip: the file is committed, so a missing one is a broken checkout.
            XCTFail("vector file not found at \(Self.vectorsURL.path); restore testdata/vectors from git")
            return []
        }
        let data = try Data(contentsOf: Self.vectorsURL)
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        return try list.enumerated().map { index, entry in
            let wireshark = try XCTUnwrap(entry["wireshark"] as? [String: Any])
            var fields: [String: String] = [:]
            for (key, value) in wireshark { fields[key] = "\(value)" }
            return Vector(index: index, note: entry["note"] as? String ?? "",
                          packet: bytes(fromHex: try XCTUnwrap(entry["hex"] as? String)),
                          declaredLength: try XCTUnwrap(entry["length"] as? Int), wireshark: fields)
        }
    }

    /// Wireshark's text for a timestamp: "NULL" when all zero, otherwise its era rule
    /// (seconds with the top bit set are era 0, others era 1), which is a pivot at the era start.
    func wiresharkText(_ timestamp: NTPTimestamp) -> String {
        if timestamp.isZero { return "NULL" }
        return UTCTimeText.wiresharkStyle(unixNanoseconds: timestamp.unixNanoseconds(nearestTo: NTPTimestamp.era1StartUnixNanoseconds))
    }

    func testAll72VectorsDecodeAsWiresharkDid() throws {
        let vectors = try loadVectors()
        XCTAssertEqual(vectors.count, 72)
        for v in vectors {
            let context = "vector \(v.index) (\(v.note))"
            XCTAssertEqual(v.packet.count, v.declaredLength, context)
            let parsed: NTPParsedPacket
            switch parse(v.packet) {
            case .success(let p): parsed = p
            case .failure(let error): XCTFail("\(context): \(error)"); continue
            }
            let h = parsed.header
            let w = v.wireshark
            XCTAssertEqual(w["flags.li"], String(h.leapIndicator.rawValue), context)
            XCTAssertEqual(w["flags.vn"], String(h.version), context)
            XCTAssertEqual(w["flags.mode"], String(h.mode.rawValue), context)
            XCTAssertEqual(w["stratum"], String(h.stratum), context)
            XCTAssertEqual(w["ppoll"], String(UInt8(bitPattern: h.poll)), context)
            XCTAssertEqual(w["precision"], String(UInt8(bitPattern: h.precision)), context)
            // tshark -T fields prints root delay and dispersion as the raw 16.16 integer.
            XCTAssertEqual(w["rootdelay"], String(h.rootDelay.rawValue), context)
            XCTAssertEqual(w["rootdispersion"], String(h.rootDispersion.rawValue), context)
            XCTAssertEqual(w["refid"], hex32(h.referenceID.rawValue), context)
            XCTAssertEqual(w["reftime"], wiresharkText(h.referenceTimestamp), context)
            XCTAssertEqual(w["org"], wiresharkText(h.originTimestamp), context)
            XCTAssertEqual(w["rec"], wiresharkText(h.receiveTimestamp), context)
            XCTAssertEqual(w["xmt"], wiresharkText(h.transmitTimestamp), context)

            let walked = try fields(of: v.packet, parsed)
            XCTAssertEqual(walked.count, parsed.extensionFieldCount, context)
            if let types = w["ext.type"] {
                let ours = walked.map { "0x" + hexString([UInt8($0.fieldType.rawValue >> 8), UInt8($0.fieldType.rawValue & 0xFF)]) }
                XCTAssertEqual(types, ours.joined(separator: ","), context)
                XCTAssertEqual(w["ext.length"], walked.map { String($0.length) }.joined(separator: ","), context)
            } else {
                XCTAssertEqual(parsed.extensionFieldCount, 0, context)
                XCTAssertTrue(parsed.extensionFieldBytes.isEmpty, context)
            }
            if let keyID = w["keyid"] {
                let mac = try XCTUnwrap(parsed.mac, context)
                XCTAssertEqual(keyID, hex32(mac.keyID), context)
                XCTAssertEqual(w["mac"], hexString(v.packet[mac.digest]), context)
                XCTAssertEqual(mac.kind, mac.digest.count == 16 ? .digest16 : .digest20, context)
                XCTAssertEqual(mac.bytes.upperBound, v.packet.count, context)
            } else {
                XCTAssertNil(parsed.mac, context)
            }
            XCTAssertEqual(try reencode(parsed, from: v.packet), v.packet, "\(context): re-encoding differs")
        }
    }

    func testVectorsCarryTheFeaturesTheirNotesDescribe() throws {
        let vectors = try loadVectors()
        var sawKiss = 0, sawLOCL = 0, sawNTS = 0, sawCMAC = 0, sawSHA1 = 0, sawV3 = 0
        for v in vectors {
            guard case .success(let p) = parse(v.packet) else { XCTFail("vector \(v.index) did not parse"); continue }
            if p.header.kissCode == .kissInit { sawKiss += 1 }
            if p.header.stratum == 1 && p.header.referenceID == .locl {
                sawLOCL += 1
                XCTAssertEqual(p.header.referenceID.asciiCode, "LOCL")
                XCTAssertEqual(p.header.leapIndicator, .unsynchronized)
            }
            if p.extensionFieldCount > 0 {
                sawNTS += 1
                let walked = try fields(of: v.packet, p)
                XCTAssertEqual(walked.first?.fieldType, .uniqueIdentifier)
                XCTAssertEqual(walked.last?.fieldType, .ntsAuthenticatorAndEncryptedExtensionFields)
                if p.header.mode == .client { XCTAssertTrue(walked.contains { $0.fieldType == .ntsCookie }) }
            }
            if p.mac?.kind == .digest16 { sawCMAC += 1 }
            if p.mac?.kind == .digest20 { sawSHA1 += 1 }
            if p.header.version == 3 { sawV3 += 1 }
            if p.header.mode == .server && p.header.stratum > 0 {
                // chrony and ntpsec advertise precision around 2^-25: a signed byte, not 231.
                XCTAssertLessThan(p.header.precision, 0, "vector \(v.index)")
            }
        }
        XCTAssertGreaterThan(sawKiss, 0)
        XCTAssertGreaterThan(sawLOCL, 0)
        XCTAssertEqual(sawNTS, 6)
        XCTAssertEqual(sawCMAC, 6)
        XCTAssertEqual(sawSHA1, 6)
        XCTAssertEqual(sawV3, 6)
    }

    /// The JSON file and the captures hold the same packets: every UDP payload of every
    /// pcapng capture is one of the JSON's packets, and together they are all of them.
    func testCapturesHoldExactlyTheVectorPackets() throws {
        let vectors = try loadVectors()
        XCTAssertEqual(vectors.count, 72)
        let directory = Self.vectorsDirectory.appendingPathComponent("pcap")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".pcap") }.sorted()
        XCTAssertEqual(names.count, 9, "captures in \(directory.path)")
        var payloads: [[UInt8]] = []
        for name in names {
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            let found = try udpPayloads(pcapng: [UInt8](data), name: name)
            XCTAssertFalse(found.isEmpty, "\(name) holds no UDP packets")
            for payload in found {
                guard case .success = parse(payload) else { XCTFail("\(name): a captured packet does not parse"); continue }
            }
            payloads += found
        }
        func ordered(_ list: [[UInt8]]) -> [String] { list.map { hexString($0) }.sorted() }
        XCTAssertEqual(ordered(payloads), ordered(vectors.map(\.packet)))
    }

    /// UDP payloads of the Ethernet frames in a pcapng file (little-endian sections only, as
    /// these captures are): Enhanced Packet Blocks (type 6) → Ethernet → IPv4/IPv6 → UDP.
    func udpPayloads(pcapng bytes: [UInt8], name: String) throws -> [[UInt8]] {
        func u16le(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
        func u32le(_ i: Int) -> Int { u16le(i) | u16le(i + 2) << 16 }
        guard bytes.count >= 12, u32le(0) == 0x0A0D_0D0A, u32le(8) == 0x1A2B_3C4D else {
            XCTFail("\(name) is not a little-endian pcapng file"); return []
        }
        var payloads: [[UInt8]] = []
        var block = 0
        while block + 12 <= bytes.count {
            let type = u32le(block), length = u32le(block + 4)
            guard length >= 12, block + length <= bytes.count else { XCTFail("\(name): block at \(block) overruns"); break }
            if type == 6 {
                let captured = u32le(block + 20)
                let frame = Array(bytes[(block + 28)..<(block + 28 + captured)])
                let etherType = Int(frame[12]) << 8 | Int(frame[13])
                var udp: Int
                switch etherType {
                case 0x0800:
                    XCTAssertEqual(frame[14 + 9], 17, "\(name): not UDP")
                    udp = 14 + Int(frame[14] & 0x0F) * 4
                case 0x86DD:
                    XCTAssertEqual(frame[14 + 6], 17, "\(name): not UDP")
                    udp = 14 + 40
                default:
                    XCTFail("\(name): EtherType \(etherType)"); continue
                }
                let udpLength = Int(frame[udp + 4]) << 8 | Int(frame[udp + 5])
                payloads.append(Array(frame[(udp + 8)..<(udp + udpLength)]))
            }
            block += length
        }
        return payloads
    }
}
