// libFuzzer harness for the NTPPacket codec. Built by scripts/fuzz with
// `swiftc -sanitize=fuzzer,address`. Invariants checked on every input:
// - parsing never traps (ASan/overflow traps are crashes);
// - every 48+ byte input decodes as a header and re-encodes to the same 48 bytes
//   (every bit pattern is a valid header, RFC 5905 §7.3);
// - a packet that parses re-encodes byte for byte from header + trailingBytes, its
//   extension fields tile extensionFieldBytes exactly, and the MAC (if any) ends the packet;
// - the timestamps round-trip through Unix nanoseconds within one fraction step.
import NTPPacket

@inline(never)
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant broken: \(message())") }
}

nonisolated(unsafe) let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCodec(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    checkHeader(bytes)
    checkParse(bytes)
    checkTimestamps(bytes)
    return 0
}

func checkHeader(_ bytes: UnsafeRawBufferPointer) {
    do {
        let header = try NTPHeader(decoding: bytes)
        require(bytes.count >= 48, "decoded a header from \(bytes.count) bytes")
        let written = try header.encode(into: output)
        require(written == 48, "header encode wrote \(written)")
        for i in 0..<48 where output[i] != bytes[i] {
            require(false, "header re-encode differs at byte \(i): \(output[i]) vs \(bytes[i])")
        }
        require(Int(header.version) == Int(bytes[0] >> 3 & 7), "version")
        require(header.kissCode == (bytes[1] == 0 ? header.referenceID : nil), "kiss code rule")
    } catch {
        require(bytes.count < 48, "header of \(bytes.count) bytes refused: \(error)")
        require(error == .tooShort(length: bytes.count), "wrong error \(error)")
    }
}

func checkParse(_ bytes: UnsafeRawBufferPointer) {
    let parsed: NTPParsedPacket
    do {
        parsed = try NTPParsedPacket(parsing: bytes)
    } catch {
        _ = error.description  // messages must build for any input
        return
    }
    require(parsed.length == bytes.count, "length \(parsed.length) for \(bytes.count) bytes")
    require(parsed.extensionFieldBytes.lowerBound == 48, "fields start at 48")
    require(parsed.extensionFieldBytes.upperBound <= bytes.count, "fields overrun")
    if parsed.header.version != 4 { require(parsed.extensionFieldCount == 0, "extension fields before NTPv4") }
    // Walk the fields: contiguous, each ≥ 16 and a multiple of 4, ending where the parser said.
    var walker = parsed.extensionFields(in: bytes)
    var expectedStart = 48
    var count = 0
    do {
        while let field = try walker.next() {
            require(field.bytes.lowerBound == expectedStart, "field gap at \(expectedStart)")
            require(field.length >= 16 && field.length % 4 == 0, "field length \(field.length)")
            require(field.value.upperBound == field.bytes.upperBound, "value range")
            expectedStart = field.bytes.upperBound
            count += 1
        }
    } catch {
        require(false, "walker over a parsed packet failed: \(error)")
    }
    require(count == parsed.extensionFieldCount, "walker saw \(count), parser \(parsed.extensionFieldCount)")
    require(expectedStart == parsed.extensionFieldBytes.upperBound, "fields end")
    // The last field without a MAC is at least 28 bytes (RFC 7822 §7).
    if let mac = parsed.mac {
        require(mac.bytes.lowerBound == parsed.extensionFieldBytes.upperBound && mac.bytes.upperBound == bytes.count, "MAC range")
        require(NTPMACTrailer.isMACLength(mac.bytes.count), "MAC length \(mac.bytes.count)")
        let expectedKind: NTPMACTrailer.Kind = mac.bytes.count == 4 ? .cryptoNAK : (mac.bytes.count == 20 ? .digest16 : .digest20)
        require(mac.kind == expectedKind, "MAC kind")
        require(mac.digest.count == mac.bytes.count - 4, "digest range")
    } else {
        require(parsed.extensionFieldBytes.upperBound == bytes.count, "unaccounted bytes without a MAC")
    }
    // Re-encode: header + trailing bytes gives back the input exactly.
    do {
        let trailing = UnsafeRawBufferPointer(rebasing: bytes[parsed.trailingBytes])
        if bytes.count <= output.count {
            let total = try parsed.header.encode(into: output, appending: trailing)
            require(total == bytes.count, "re-encoded \(total) of \(bytes.count)")
            for i in 0..<total where output[i] != bytes[i] { require(false, "re-encode differs at \(i)") }
            let again = try NTPParsedPacket(parsing: UnsafeRawBufferPointer(rebasing: output[0..<total]))
            require(again == parsed, "re-parse differs")
        }
    } catch {
        require(false, "re-encode of a parsed packet failed: \(error)")
    }
}

func checkTimestamps(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count >= 16 else { return }
    let raw = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
    let pivotRaw = bytes.loadUnaligned(fromByteOffset: 8, as: Int64.self)
    // A pivot anywhere in ±200 years of 1970, as a real caller's CLOCK_REALTIME could be.
    let pivot = pivotRaw % 6_311_390_400_000_000_000
    let stamp = NTPTimestamp(rawValue: raw)
    let unix = stamp.unixNanoseconds(nearestTo: pivot)
    let distance = unix.subtractingReportingOverflow(pivot)
    require(!distance.overflow && distance.partialValue.magnitude <= (1 << 31) * 1_000_000_000 + 1_000_000_000,
            "decoded \(unix) is not within an era half of pivot \(pivot)")
    let back = NTPTimestamp(unixNanoseconds: unix)
    // Truncating to ns then rounding the fraction up moves it by under 1 ns: < 5 fraction steps.
    let step = Int64(bitPattern: back.rawValue &- stamp.rawValue)
    require(step >= -5 && step <= 5, "round trip moved the timestamp by \(step) fraction units")
    require(stamp.nanoseconds(since: stamp) == 0, "self difference")
    let other = NTPTimestamp(rawValue: UInt64(bitPattern: pivotRaw))
    if other.rawValue &- stamp.rawValue == 1 << 63 { return }  // exactly half an era: no shorter way
    let forward = other.nanoseconds(since: stamp), backward = stamp.nanoseconds(since: other)
    require((forward &+ backward).magnitude <= 1, "difference not antisymmetric: \(forward) \(backward)")
    let short = NTPShortTime(rawValue: UInt32(truncatingIfNeeded: raw))
    require(NTPShortTime(nanoseconds: short.nanoseconds).rawValue &- short.rawValue <= 1, "short time round trip")
    _ = UTCTimeText.iso8601(unixNanoseconds: Int64(bitPattern: raw))
    _ = NTPReferenceID(rawValue: UInt32(truncatingIfNeeded: raw)).asciiCode
}
