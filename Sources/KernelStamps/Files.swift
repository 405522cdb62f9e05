#if canImport(Glibc)
import Glibc
#endif

/// Files and standard streams: the writes, temporary files and removals the tools and the lab
/// need, each failure a `KernelError` naming the path. Not for hot paths.
public enum StandardStream: Sendable {
    case output
    case error

    public var fileDescriptor: Int32 { self == .output ? STDOUT_FILENO : STDERR_FILENO }

    /// Writes `text` unbuffered; a failed write (a closed pipe) is dropped, as there is
    /// nowhere left to report it.
    public func write(_ text: String) {
        try? writeAll(text, toDescriptor: fileDescriptor)
    }
}

/// Writes all of `bytes` to `descriptor`, retrying short writes and EINTR.
public func writeAll(_ bytes: UnsafeRawBufferPointer, toDescriptor descriptor: Int32) throws(KernelError) {
    guard var next = bytes.baseAddress else { return }
    var left = bytes.count
    while left > 0 {
        let written = write(descriptor, next, left)
        if written < 0 {
            if errno == EINTR { continue }
            throw KernelError.fromErrno("write to descriptor \(descriptor)")
        }
        next += written
        left -= written
    }
}

/// Writes all of `text` (UTF-8) to `descriptor`, retrying short writes and EINTR.
public func writeAll(_ text: String, toDescriptor descriptor: Int32) throws(KernelError) {
    var text = text
    var failure: KernelError? = nil
    text.withUTF8 { bytes in
        do throws(KernelError) { try writeAll(UnsafeRawBufferPointer(bytes), toDescriptor: descriptor) } catch { failure = error }
    }
    if let failure { throw failure }
}

/// Creates or truncates `path` (mode 0644) and writes `text` to it.
public func writeFile(atPath path: String, contents text: String) throws(KernelError) {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
        throw KernelError(operation: "create '\(path)'", code: errno, hint: "check the directory exists and is writable")
    }
    defer { close(descriptor) }
    do throws(KernelError) { try writeAll(text, toDescriptor: descriptor) } catch {
        throw KernelError(operation: "write '\(path)'", code: error.code)
    }
}

/// A new empty file named `prefix` + six random characters (mkstemp(3)); returns its path.
public func makeTemporaryFile(prefix: String) throws(KernelError) -> String {
    var template = Array((prefix + "XXXXXX").utf8CString)
    let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard descriptor >= 0 else { throw KernelError.fromErrno("make a temporary file '\(prefix)XXXXXX'") }
    close(descriptor)
    return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A new directory (mode 0700) named `prefix` + six random characters (mkdtemp(3)).
public func makeTemporaryDirectory(prefix: String) throws(KernelError) -> String {
    var template = Array((prefix + "XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    guard made != nil else { throw KernelError.fromErrno("make a temporary directory '\(prefix)XXXXXX'") }
    return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Removes a file; false when it could not be removed (for instance, it did not exist).
@discardableResult
public func removeFile(atPath path: String) -> Bool { unlink(path) == 0 }

/// Removes an empty directory; false when it could not be removed.
@discardableResult
public func removeEmptyDirectory(atPath path: String) -> Bool { rmdir(path) == 0 }

/// Whether `path` is a file this process may execute.
public func isExecutableFile(atPath path: String) -> Bool { access(path, X_OK) == 0 }

/// Ends the process with `status` (0 ok, 1 runtime failure, 2 usage error), flushing stdio.
public func exitProcess(_ status: Int32) -> Never { exit(status) }
