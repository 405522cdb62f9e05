#if canImport(Glibc)
import Glibc
#endif

/// Drops root for good after binding privileged ports: looks the user up (getpwnam_r), sets
/// the supplementary groups to the user's primary group only, then the gid, then the uid
/// (in that order: after setuid the process may no longer change groups). Then verifies
/// that root cannot be regained. glibc applies set*id to every thread of the process.
public func dropPrivileges(toUser name: String) throws(KernelError) {
    var entry = passwd()
    var result: UnsafeMutablePointer<passwd>? = nil
    var bufferSize = Int(sysconf(Int32(_SC_GETPW_R_SIZE_MAX)))
    if bufferSize <= 0 { bufferSize = 16384 }
    var status: Int32 = ERANGE
    var uid: uid_t = 0
    var gid: gid_t = 0
    while status == ERANGE && bufferSize <= 1 << 20 {
        var buffer = [CChar](repeating: 0, count: bufferSize)
        status = getpwnam_r(name, &entry, &buffer, bufferSize, &result)
        if status == 0, result != nil {
            uid = entry.pw_uid
            gid = entry.pw_gid
        }
        bufferSize *= 2
    }
    if status != 0 { throw KernelError.fromErrno("look up user \"\(name)\"", status) }
    guard result != nil else {
        throw KernelError(operation: "drop privileges to \"\(name)\"", code: 0, detail: "no such user",
                          hint: "create the user or pass an existing one, e.g. --user nobody")
    }
    if getuid() == uid && geteuid() == uid { return } // already that user
    var groups = [gid]
    if setgroups(1, &groups) != 0 { throw KernelError.fromErrno("setgroups for \"\(name)\"") }
    if setgid(gid) != 0 { throw KernelError.fromErrno("setgid \(gid) for \"\(name)\"") }
    if setuid(uid) != 0 { throw KernelError.fromErrno("setuid \(uid) for \"\(name)\"") }
    if uid != 0 && (setuid(0) == 0 || seteuid(0) == 0) {
        throw KernelError(operation: "drop privileges to \"\(name)\"", code: 0,
                          detail: "root could be regained after setuid", hint: "refusing to run; check the user's uid")
    }
}

/// Whether this process runs with the root user's rights (effective user 0).
public func runningAsRoot() -> Bool { geteuid() == 0 }
