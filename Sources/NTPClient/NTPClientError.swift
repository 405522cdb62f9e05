import KernelValues
import NTPPacket

/// The one error type of NTPClient: what went wrong and what to do about it.
public enum NTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A socket, clock or file operation failed (the kernel's words and a hint).
    case kernel(KernelError)
    /// A published-clock file is not usable.
    case publishedClock(path: String, problem: String)
    /// The server sent DENY or RSTR: it will not serve us (RFC 5905 §7.4).
    case refused(server: SocketAddress, code: String)

    public var description: String {
        switch self {
        case .kernel(let error): return error.description
        case .publishedClock(let path, let problem): return "\(path): \(problem)"
        case .refused(let server, let code):
            return "\(server) sent kiss-o'-death \(code): it refuses to serve this client; polling stopped (ask its operator, or use another server)"
        }
    }
}
