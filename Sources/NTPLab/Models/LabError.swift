#if canImport(Glibc)
import Glibc
#endif
import KernelStamps

/// The NTPLab module's one error type: what failed, in words a person can act on (one clear
/// line per error, as every tool prints them).
public struct LabError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    /// Wraps a socket error with what the lab was doing at the time.
    public init(_ doing: String, _ underlying: KernelError) { self.message = "\(doing): \(underlying.description)" }
    public var description: String { message }
}

/// Writes `text` to `path` (created or truncated, mode 0644), for plots and reports.
public func writeTextFile(_ path: String, _ text: String) throws(LabError) {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
        throw LabError("cannot write '\(path)': \(String(cString: strerror(errno))); check the directory exists and is writable")
    }
    defer { close(descriptor) }
    var text = text
    let failure: Int32 = text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += written
        }
        return 0
    }
    if failure != 0 { throw LabError("writing '\(path)' failed: \(String(cString: strerror(failure)))") }
}
