#if canImport(Glibc)
import Glibc
#endif

/// A file mapped into memory with MAP_SHARED, so several processes see the same bytes: the
/// carrier of the published clock parameters (docs/feedforward.md §7, "any number of readers
/// compose time from the published parameters"). Only the mapping lives here; the layout and
/// the sequence lock belong to the caller. Unmapped on deinit.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// Bytes mapped (the file's size when opened for reading).
    public let byteCount: Int
    /// Start of the mapping, page aligned. Read-only mappings must not be written through it.
    public let baseAddress: UnsafeMutableRawPointer
    public let writable: Bool

    /// Opens (creating with mode 0644 if needed) `path` read-write, sets its size to
    /// `byteCount` and maps it shared. Existing contents are kept, so readers that already
    /// mapped the file keep working when the writer restarts.
    public init(creatingAt path: String, byteCount: Int) throws(KernelError) {
        precondition(byteCount > 0, "a mapping needs at least one byte")
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw KernelError.fromErrno("open \(path) for writing")
        }
        defer { _ = close(descriptor) }
        guard ftruncate(descriptor, off_t(byteCount)) == 0 else {
            throw KernelError.fromErrno("resize \(path) to \(byteCount) bytes")
        }
        guard let mapping = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0),
              mapping != MAP_FAILED else {
            throw KernelError.fromErrno("mmap \(path) read-write")
        }
        self.path = path
        self.byteCount = byteCount
        self.baseAddress = mapping
        self.writable = true
    }

    /// Maps an existing file read-only, whole. Fails with a hint when the file is empty.
    public init(openingForReadAt path: String) throws(KernelError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            var error = KernelError.fromErrno("open \(path)")
            if error.code == ENOENT {
                error = KernelError(operation: "open \(path)", code: ENOENT,
                                    hint: "start 'ntpclient --publish \(path) HOST' first")
            }
            throw error
        }
        defer { _ = close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw KernelError.fromErrno("stat \(path)") }
        // mmap of a directory or device fails with ENODEV ("No such device"), which names
        // neither the problem nor the fix: say what the path is instead.
        guard info.st_mode & S_IFMT == S_IFREG else {
            let kind = info.st_mode & S_IFMT == S_IFDIR ? "a directory" : "not a regular file"
            throw KernelError(operation: "map \(path)", code: 0, detail: "it is \(kind)",
                              hint: "give the file written by 'ntpclient --publish PATH'")
        }
        let size = Int(info.st_size)
        guard size > 0 else {
            throw KernelError(operation: "map \(path)", code: 0, detail: "the file is empty",
                              hint: "is it a file written by 'ntpclient --publish'?")
        }
        guard let mapping = mmap(nil, size, PROT_READ, MAP_SHARED, descriptor, 0), mapping != MAP_FAILED else {
            throw KernelError.fromErrno("mmap \(path) read-only")
        }
        self.path = path
        self.byteCount = size
        self.baseAddress = mapping
        self.writable = false
    }

    deinit {
        _ = munmap(baseAddress, byteCount)
    }
}
