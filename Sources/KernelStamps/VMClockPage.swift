#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// What a hypervisor's vmclock page says about counter continuity: the `disruption_marker`
/// changes whenever the guest's counter is disrupted (a live migration), and the
/// `vm_generation_counter` whenever the guest is restored from a snapshot. Any change of
/// either means every calibration of the counter against UTC is void (docs/published-clock.md,
/// "Disruption").
public struct VMClockMarker: Sendable, Equatable, Hashable {
    public var disruptionMarker: UInt64
    /// 0 when the page does not carry a generation counter.
    public var generation: UInt64
    public init(disruptionMarker: UInt64, generation: UInt64) {
        self.disruptionMarker = disruptionMarker
        self.generation = generation
    }
}

/// The vmclock page (Linux `include/uapi/linux/vmclock-abi.h`) mapped read-only, from
/// `/dev/vmclock0` or from a file laid out the same way (tests use one). Only the words
/// this project needs are read, under the page's own sequence lock.
///
/// Byte offsets used (little-endian): 0 magic "VCLK" (le32 0x4b4c4356), 4 size (le32),
/// 8 version (le16, 1), 12 seq_count (le32, odd while the hypervisor updates), 16
/// disruption_marker (le64), 24 flags (le64; bit 8: the generation counter is present),
/// 104 vm_generation_counter (le64, when size ≥ 112 and the flag is set).
public final class VMClockPage: @unchecked Sendable {
    public static let magic: UInt32 = 0x4B4C_4356
    public static let supportedVersion: UInt16 = 1
    public static let defaultPath = "/dev/vmclock0"
    public static let generationPresentFlag: UInt64 = 1 << 8
    /// Bytes up to and including `vm_generation_counter`.
    public static let byteCountWithGeneration = 112
    /// Bytes up to and including `disruption_marker`: the least a page must hold.
    public static let minimumByteCount = 24

    /// `defaultPath` when that device exists on this machine (a guest with a vmclock device).
    public static var defaultPathIfPresent: String? { access(defaultPath, F_OK) == 0 ? defaultPath : nil }

    public let path: String
    private let file: MappedFile
    private let byteCount: Int

    /// Maps `path` read-only and checks magic and version; the problem in words otherwise.
    public init(path: String) throws(KernelError) {
        file = try MappedFile(openingForReadAt: path)
        let base = UnsafeRawPointer(file.baseAddress)
        guard file.byteCount >= VMClockPage.minimumByteCount else {
            throw KernelError(operation: "map vmclock page \(path)", code: 0,
                              detail: "it holds \(file.byteCount) bytes, fewer than a vmclock page's \(VMClockPage.minimumByteCount)",
                              hint: "give the vmclock device, e.g. \(VMClockPage.defaultPath)")
        }
        let magic = UInt32(littleEndian: base.load(as: UInt32.self))
        guard magic == VMClockPage.magic else {
            throw KernelError(operation: "map vmclock page \(path)", code: 0,
                              detail: "bad magic 0x\(String(magic, radix: 16)), not a vmclock page",
                              hint: "give the vmclock device, e.g. \(VMClockPage.defaultPath)")
        }
        let version = UInt16(littleEndian: base.load(fromByteOffset: 8, as: UInt16.self))
        guard version == VMClockPage.supportedVersion else {
            throw KernelError(operation: "map vmclock page \(path)", code: 0,
                              detail: "vmclock ABI version \(version), this build understands \(VMClockPage.supportedVersion)",
                              hint: "run without --vmclock, or update ntpclient")
        }
        let declared = Int(UInt32(littleEndian: base.load(fromByteOffset: 4, as: UInt32.self)))
        self.path = path
        byteCount = min(declared, file.byteCount)
    }

    /// The markers read under the page's sequence lock, or nil when every attempt overlapped
    /// an update (the hypervisor never pauses between them: try again later).
    public func marker(maximumAttempts: Int = 1000) -> VMClockMarker? {
        // The page is written by another party (the hypervisor, or a test) while we read it:
        // every word is loaded atomically and the fences order the loads around the
        // sequence reads, as the ABI's sequence-lock protocol requires.
        let base = file.baseAddress
        let sequence = (base + 12).assumingMemoryBound(to: Atomic<UInt32>.self)
        func word(_ offset: Int) -> UInt64 {
            UInt64(littleEndian: (base + offset).assumingMemoryBound(to: Atomic<UInt64>.self).pointee.load(ordering: .relaxed))
        }
        let hasGenerationRoom = byteCount >= VMClockPage.byteCountWithGeneration
        for _ in 0..<max(1, maximumAttempts) {
            let before = UInt32(littleEndian: sequence.pointee.load(ordering: .acquiring))
            if before & 1 == 1 { continue }
            let marker = word(16)
            let flags = word(24)
            let generation = hasGenerationRoom && flags & VMClockPage.generationPresentFlag != 0 ? word(104) : 0
            atomicMemoryFence(ordering: .acquiring)
            if UInt32(littleEndian: sequence.pointee.load(ordering: .relaxed)) == before {
                return VMClockMarker(disruptionMarker: marker, generation: generation)
            }
        }
        return nil
    }
}
