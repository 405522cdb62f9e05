#if canImport(Glibc)
import Glibc
#endif

/// The one error type of KernelStamps: which operation failed, on what, and the errno with its
/// meaning in words, plus a hint when the fix is known (DESIGN.md: messages a person can act on).
///
/// `description` reads like `bind 127.0.0.1:123: Permission denied (run as root or use a port
/// above 1023)`. Errors are only built on failure paths, never per packet.
public struct KernelError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What was attempted, with its object: "bind 127.0.0.1:123", "parse address \"x\"".
    public let operation: String
    /// The errno value, or 0 when the failure did not come from a system call (e.g. parsing).
    public let code: Int32
    /// Text used instead of strerror when `code` is 0, or appended details.
    public let detail: String?
    /// What a person can do about it, if known.
    public let hint: String?

    public init(operation: String, code: Int32, detail: String? = nil, hint: String? = nil) {
        self.operation = operation
        self.code = code
        self.detail = detail
        self.hint = hint
    }

    /// Builds the error from the current `errno`, adding a hint for the common cases.
    static func fromErrno(_ operation: String, port: UInt16? = nil, _ code: Int32 = errno) -> KernelError {
        KernelError(operation: operation, code: code, hint: hintFor(code: code, port: port))
    }

    /// strerror(3) of `code`: the errno's meaning in words.
    public var errnoText: String {
        guard code != 0, let text = strerror(code) else { return "" }
        return String(cString: text)
    }

    public var description: String {
        var text = operation + ": "
        if code != 0 {
            text += errnoText
            if let detail { text += " (" + detail + ")" }
        } else {
            text += detail ?? "failed"
        }
        if let hint { text += " (" + hint + ")" }
        return text
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
