/// MD5 (RFC 1321), only because RFC 5905 §7.3 names it for IPv6 reference IDs. Not for
/// security. Small, allocation-free, checked against RFC 1321's test suite.
enum MD5 {
    private static let shifts: [UInt32] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]

    // K[i] = floor(abs(sin(i + 1)) * 2^32), RFC 1321 §3.4.
    private static let constants: [UInt32] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
        0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
        0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
        0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
        0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
        0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
        0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
    ]

    typealias Digest = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    static func digest(of message: UnsafeRawBufferPointer) -> Digest {
        var state: (UInt32, UInt32, UInt32, UInt32) = (0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476)
        var block = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        let length = message.count
        // Padding: 0x80, zeros, then the bit length little-endian, to a multiple of 64 bytes.
        let paddedLength = (length + 8) / 64 * 64 + 64
        withUnsafeMutableBytes(of: &block) { blockBytes in
            var blockStart = 0
            while blockStart < paddedLength {
                for i in 0..<64 {
                    let position = blockStart + i
                    let byte: UInt8
                    if position < length { byte = message[position] }
                    else if position == length { byte = 0x80 }
                    else if position >= paddedLength - 8 {
                        byte = UInt8(truncatingIfNeeded: (UInt64(length) &* 8) >> (8 * UInt64(position - (paddedLength - 8))))
                    } else { byte = 0 }
                    blockBytes[i] = byte
                }
                compress(&state, UnsafeRawBufferPointer(blockBytes))
                blockStart += 64
            }
        }
        var digest: Digest = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digest) { out in
            let words = [state.0, state.1, state.2, state.3]
            for (index, word) in words.enumerated() {
                out.storeBytes(of: word.littleEndian, toByteOffset: index * 4, as: UInt32.self)
            }
        }
        return digest
    }

    private static func compress(_ state: inout (UInt32, UInt32, UInt32, UInt32), _ block: UnsafeRawBufferPointer) {
        var a = state.0, b = state.1, c = state.2, d = state.3
        for i in 0..<64 {
            var f: UInt32
            let g: Int
            switch i {
            case 0..<16: f = (b & c) | (~b & d); g = i
            case 16..<32: f = (d & b) | (~d & c); g = (5 * i + 1) % 16
            case 32..<48: f = b ^ c ^ d; g = (3 * i + 5) % 16
            default: f = c ^ (b | ~d); g = (7 * i) % 16
            }
            let word = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: g * 4, as: UInt32.self))
            f = f &+ a &+ constants[i] &+ word
            a = d; d = c; c = b
            let shift = shifts[(i / 16) * 4 + i % 4]
            b = b &+ (f << shift | f >> (32 - shift))
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}
