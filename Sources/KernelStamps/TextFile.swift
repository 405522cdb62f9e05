#if canImport(Glibc)
import Glibc
#endif

/// Reads a small text file whole (a configuration file): at most `maximumByteCount` bytes,
/// so a wrong path such as a device or a huge log is refused instead of read forever.
/// Not for hot paths.
public func readTextFile(atPath path: String, maximumByteCount: Int = 1 << 20) throws(KernelError) -> String {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw KernelError.fromErrno("open \(path)") }
    defer { _ = close(descriptor) }
    var info = stat()
    guard fstat(descriptor, &info) == 0 else { throw KernelError.fromErrno("stat \(path)") }
    guard info.st_mode & S_IFMT == S_IFREG else {
        throw KernelError(operation: "read \(path)", code: 0, detail: "it is not a regular file", hint: "give a text file")
    }
    var bytes = [UInt8](repeating: 0, count: maximumByteCount + 1)
    var total = 0
    while total < bytes.count {
        let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + total, $0.count - total) }
        if count < 0 {
            if errno == EINTR { continue }
            throw KernelError.fromErrno("read \(path)")
        }
        if count == 0 { break }
        total += count
    }
    guard total <= maximumByteCount else {
        throw KernelError(operation: "read \(path)", code: 0, detail: "longer than \(maximumByteCount) bytes",
                          hint: "is this the right file?")
    }
    return String(decoding: bytes[0..<total], as: UTF8.self)
}
