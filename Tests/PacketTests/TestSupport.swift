import XCTest
@testable import NTPPacket

/// Hex text to bytes; fails the test on malformed input.
func bytes(fromHex hex: String, file: StaticString = #filePath, line: UInt = #line) -> [UInt8] {
    let digits = Array(hex.utf8)
    guard digits.count % 2 == 0 else { XCTFail("odd-length hex", file: file, line: line); return [] }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
    var out: [UInt8] = []
    var index = 0
    while index < digits.count {
        guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else {
            XCTFail("bad hex digit", file: file, line: line); return []
        }
        out.append(high << 4 | low)
        index += 2
    }
    return out
}

func hexString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 0xF)]) }
    return String(decoding: out, as: UTF8.self)
}

func hex32(_ value: UInt32) -> String {
    hexString([UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)])
}

/// Parses `packet`, returning the result or the error, for tests that look at both.
func parse(_ packet: [UInt8]) -> Result<NTPParsedPacket, NTPPacketError> {
    packet.withUnsafeBytes { raw in
        do throws(NTPPacketError) { return .success(try NTPParsedPacket(parsing: raw)) }
        catch { return .failure(error) }
    }
}

/// All extension fields of a parsed packet, via the walker.
func fields(of packet: [UInt8], _ parsed: NTPParsedPacket) throws -> [NTPExtensionField] {
    try packet.withUnsafeBytes { raw in
        var walker = parsed.extensionFields(in: raw)
        var out: [NTPExtensionField] = []
        while let field = try walker.next() { out.append(field) }
        return out
    }
}

/// Header + the original trailing bytes, encoded into a fresh buffer.
func reencode(_ parsed: NTPParsedPacket, from packet: [UInt8]) throws -> [UInt8] {
    var out = [UInt8](repeating: 0xAA, count: parsed.length + 16)
    let written = try packet.withUnsafeBytes { source in
        try out.withUnsafeMutableBytes { destination in
            try parsed.header.encode(into: destination, appending: UnsafeRawBufferPointer(rebasing: source[parsed.trailingBytes]))
        }
    }
    return Array(out[0..<written])
}

/// A 48-byte NTPv4 client header (LI 0, VN 4, mode 3) followed by `trailer`.
func v4Packet(trailer: [UInt8], version: UInt8 = 4) -> [UInt8] {
    var packet = [UInt8](repeating: 0, count: 48)
    packet[0] = version << 3 | 3
    return packet + trailer
}

/// An extension field with the given type and declared length, `bodyLength` bytes of value.
func extensionField(type: UInt16, declaredLength: Int, bodyLength: Int) -> [UInt8] {
    [UInt8(type >> 8), UInt8(type & 0xFF), UInt8(declaredLength >> 8 & 0xFF), UInt8(declaredLength & 0xFF)]
        + [UInt8](repeating: 0x5A, count: bodyLength)
}
