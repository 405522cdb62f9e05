// `ntpbench codec`: time and count heap allocations of NTPPacket's decode and encode over
// the 72 real packets of testdata/vectors (chrony, ntpsec, ntpdig; MACs, NTS fields, kiss codes).
import CMallocCounter
import NTPPacket
import ToolSupport
#if canImport(Glibc)
import Glibc
#endif

func runCodecBenchmark(_ arguments: [String]) -> Int32 {
    let options = parseBenchmarkOptions("codec", summary: "NTPPacket decode and encode over the 72 real packets of testdata/vectors:\nns per operation and heap allocations per operation.", options: [
        .value("operations", "N", "Operations per measurement (default 10000000)."),
        .value("vectors", "PATH", "The vectors file (default: testdata/vectors/real-implementations.json\nof the source tree ntpbench was built from, else of the working directory)."),
    ], arguments)
    let operations = optionOrExit("codec") { () throws(UsageError) in try options.integer("operations", default: 10_000_000, in: 1...Int(Int32.max)) }
    let vectorsPath = options.string("vectors")

    guard let (path, text) = readVectorsFile(explicitPath: vectorsPath) else {
        printError("ntpbench codec: cannot read \(vectorsPath ?? "testdata/vectors/real-implementations.json"); pass --vectors PATH (the file is testdata/vectors/real-implementations.json in the repository)")
        return 1
    }
    let packets = hexFields(in: text).map(decodeHex)
    guard !packets.isEmpty, packets.allSatisfy({ $0 != nil }) else {
        printError("ntpbench codec: \(path) holds no readable \"hex\" packets"); return 1
    }

    guard let selfCheck = mallocCounterSelfCheck("codec") else { return 1 }

    // All packets back to back in one buffer, allocated once, plus their ranges.
    let corpus = CodecCorpus(packets: packets.map { $0! })
    defer { corpus.deallocate() }
    guard let parsed = corpus.parseAll() else {
        printError("ntpbench codec: a vector failed to parse; run `swift test --filter PacketTests`"); return 1
    }
    let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
    defer { output.deallocate() }

    let decode = measure(operations, packetCount: corpus.ranges.count) { which, sink in
        let range = corpus.ranges[which]
        do throws(NTPPacketError) {
            let packet = try NTPParsedPacket(parsing: UnsafeRawBufferPointer(rebasing: corpus.bytes[range]))
            sink &+= packet.header.transmitTimestamp.rawValue &+ UInt64(packet.extensionFieldCount)
        } catch { sink &+= 1 }
    }
    let walk = measure(operations, packetCount: corpus.ranges.count) { which, sink in
        let range = corpus.ranges[which]
        let bytes = UnsafeRawBufferPointer(rebasing: corpus.bytes[range])
        do throws(NTPPacketError) {
            let packet = try NTPParsedPacket(parsing: bytes)
            var fields = packet.extensionFields(in: bytes)
            while let field = try fields.next() { sink &+= UInt64(field.fieldType.rawValue) }
            sink &+= UInt64(packet.mac?.keyID ?? 0)
        } catch { sink &+= 1 }
    }
    let encode = measure(operations, packetCount: corpus.ranges.count) { which, sink in
        let packet = parsed[which]
        let range = corpus.ranges[which]
        let trailing = UnsafeRawBufferPointer(rebasing: corpus.bytes[(range.lowerBound + packet.trailingBytes.lowerBound)..<range.upperBound])
        do throws(NTPPacketError) {
            let written = try packet.header.encode(into: output, appending: trailing)
            sink &+= UInt64(written) &+ UInt64(output[written - 1])
        } catch { sink &+= 1 }
    }
    let timestamps = measure(operations, packetCount: corpus.ranges.count) { which, sink in
        let stamp = parsed[which].header.transmitTimestamp
        let unix = stamp.unixNanoseconds(nearestTo: 1_795_286_605_000_000_000)
        sink &+= NTPTimestamp(unixNanoseconds: unix &+ Int64(sink & 0xFFFF)).rawValue
    }

    print("ntpbench codec: NTPPacket over \(corpus.ranges.count) real packets (\(corpus.bytes.count) bytes) from \(path)")
    print("malloc counter self-check: ok (\(selfCheck) allocations counted for a known allocation)")
    print("\(operations) operations per row, release build expected (swift run -c release ...)")
    print("")
    print("operation                                   ns/op   heap allocations/op   (total)")
    var allZero = true
    for (label, result) in [("decode: parse header + validate trailer", decode),
                            ("decode + walk extension fields and MAC", walk),
                            ("encode: header + copy of trailing bytes", encode),
                            ("timestamp: NTP -> Unix ns -> NTP", timestamps)] {
        let nanosecondsPerOperation = Double(result.nanoseconds) / Double(operations)
        let allocationsPerOperation = Double(result.allocations) / Double(operations)
        print("\(leftAligned(label, 42)) \(rightAligned(fixedDecimal(nanosecondsPerOperation, 1), 7))   \(rightAligned(fixedDecimal(allocationsPerOperation, 6), 19))   (\(result.allocations))")
        if result.allocations != 0 { allZero = false }
        if result.sink == 0x5EED { print("") }  // keeps the work observable
    }
    if !allZero {
        printError("ntpbench codec: a hot path allocated; see the table above")
        return 1
    }
    return 0
}

/// Packets stored back to back in one allocation made before any measurement.
private struct CodecCorpus {
    let bytes: UnsafeMutableRawBufferPointer
    let ranges: [Range<Int>]

    init(packets: [[UInt8]]) {
        bytes = .allocate(byteCount: packets.reduce(0) { $0 + $1.count }, alignment: 16)
        var offset = 0
        var ranges: [Range<Int>] = []
        for packet in packets {
            for (i, byte) in packet.enumerated() { bytes[offset + i] = byte }
            ranges.append(offset..<(offset + packet.count))
            offset += packet.count
        }
        self.ranges = ranges
    }

    func parseAll() -> [NTPParsedPacket]? {
        var parsed: [NTPParsedPacket] = []
        for range in ranges {
            guard let packet = try? NTPParsedPacket(parsing: UnsafeRawBufferPointer(rebasing: bytes[range])) else { return nil }
            parsed.append(packet)
        }
        return parsed
    }

    func deallocate() { bytes.deallocate() }
}

private struct Measurement {
    var nanoseconds: Int64
    var allocations: UInt64
    var sink: UInt64
}

/// Runs `body` `operations` times after a short warm-up; reads the clock and the malloc
/// counter only outside the loop.
/// `body` gets the packet index to use (cycling through `packetCount` without a division).
private func measure(_ operations: Int, packetCount: Int, _ body: (Int, inout UInt64) -> Void) -> Measurement {
    var sink: UInt64 = 0
    var which = 0
    for _ in 0..<Swift.min(operations, 100_000) {
        body(which, &sink)
        which += 1
        if which == packetCount { which = 0 }
    }
    let allocationsBefore = stratum_malloc_count()
    let start = monotonicNanoseconds()
    for _ in 0..<operations {
        body(which, &sink)
        which += 1
        if which == packetCount { which = 0 }
    }
    let end = monotonicNanoseconds()
    let allocationsAfter = stratum_malloc_count()
    return Measurement(nanoseconds: end - start, allocations: allocationsAfter - allocationsBefore, sink: sink)
}

/// Reads the vectors file: the explicit path, or the repository's testdata/vectors found from
/// this source file (where ntpbench was built) or from the working directory.
private func readVectorsFile(explicitPath: String?) -> (String, String)? {
    let sourceDirectory = String(#filePath.prefix(upTo: #filePath.lastIndex(of: "/") ?? #filePath.endIndex))
    let candidates = explicitPath.map { [$0] } ?? [
        sourceDirectory + "/../../testdata/vectors/real-implementations.json",
        "testdata/vectors/real-implementations.json",
    ]
    for path in candidates {
        guard let file = fopen(path, "rb") else { continue }
        defer { fclose(file) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            contents.append(contentsOf: chunk[0..<count])
        }
        return (path, String(decoding: contents, as: UTF8.self))
    }
    return nil
}

/// The values of every `"hex": "..."` member, in order (enough JSON for this one file).
private func hexFields(in text: String) -> [String] {
    let bytes = Array(text.utf8)
    let key = Array("\"hex\"".utf8)
    let quote = UInt8(ascii: "\"")
    var result: [String] = []
    var i = 0
    while i + key.count <= bytes.count {
        guard bytes[i..<(i + key.count)].elementsEqual(key) else { i += 1; continue }
        i += key.count
        while i < bytes.count && bytes[i] != quote { i += 1 }  // skip ": "
        let start = i + 1
        var end = start
        while end < bytes.count && bytes[end] != quote { end += 1 }
        guard end < bytes.count else { break }
        result.append(String(decoding: bytes[start..<end], as: UTF8.self))
        i = end + 1
    }
    return result
}

private func decodeHex(_ hex: String) -> [UInt8]? {
    let digits = Array(hex.utf8)
    guard digits.count % 2 == 0 else { return nil }
    func value(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x57
        case 0x41...0x46: return c - 0x37
        default: return nil
        }
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(digits.count / 2)
    var i = 0
    while i < digits.count {
        guard let high = value(digits[i]), let low = value(digits[i + 1]) else { return nil }
        bytes.append(high << 4 | low)
        i += 2
    }
    return bytes
}

