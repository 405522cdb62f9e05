#if canImport(Glibc)
import Glibc
#endif

extension KernelError {
    /// An error with `errnoText` read from strerror(3) for `code`.
    public init(operation: String, code: Int32, detail: String? = nil, hint: String? = nil) {
        let text = code != 0 ? strerror(code).map { String(cString: $0) } ?? "" : ""
        self.init(operation: operation, code: code, errnoText: text, detail: detail, hint: hint)
    }

    /// Builds the error from the current `errno`, adding a hint for the common cases.
    static func fromErrno(_ operation: String, port: UInt16? = nil, _ code: Int32 = errno) -> KernelError {
        KernelError(operation: operation, code: code, hint: hintFor(code: code, port: port))
    }

    static func hintFor(code: Int32, port: UInt16?) -> String? {
        switch code {
        case EACCES, EPERM:
            if let port, port != 0, port < 1024 { return "run as root or use a port above 1023" }
            return "this needs root or CAP_NET_ADMIN / CAP_SETUID"
        case EADDRINUSE:
            return "another socket already holds this address; stop it, pick another port, or use SO_REUSEPORT on every socket"
        case EADDRNOTAVAIL:
            return "no local interface has this address"
        case EAFNOSUPPORT:
            return "this address family (IPv6?) is disabled on this host"
        case ECONNREFUSED:
            return "nothing is listening at the destination"
        case EMFILE, ENFILE:
            return "too many open files; raise the limit with ulimit -n"
        default:
            return nil
        }
    }
}
