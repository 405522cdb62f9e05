// The only place NTPPacket touches raw memory: big-endian loads and stores at
// offsets the callers have already bounds-checked. Kept tiny so it can be read whole.

extension UnsafeRawBufferPointer {
    /// Big-endian UInt16 at `offset`; caller guarantees `offset + 2 <= count`.
    @inline(__always)
    func loadBigEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// Big-endian UInt32 at `offset`; caller guarantees `offset + 4 <= count`.
    @inline(__always)
    func loadBigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// Big-endian UInt64 at `offset`; caller guarantees `offset + 8 <= count`.
    @inline(__always)
    func loadBigEndianUInt64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Stores big-endian; caller guarantees `offset + 2 <= count`.
    @inline(__always)
    func storeBigEndian(_ value: UInt16, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// Stores big-endian; caller guarantees `offset + 4 <= count`.
    @inline(__always)
    func storeBigEndian(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    /// Stores big-endian; caller guarantees `offset + 8 <= count`.
    @inline(__always)
    func storeBigEndian(_ value: UInt64, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self)
    }

    /// Copies `source` to `offset`; caller guarantees `offset + source.count <= count`.
    @inline(__always)
    func copyBytes(from source: UnsafeRawBufferPointer, at offset: Int) {
        guard source.count > 0, let destination = baseAddress, let origin = source.baseAddress else { return }
        (destination + offset).copyMemory(from: origin, byteCount: source.count)
    }
}
