import KernelValues

/// The NTPLab module's one error type: what failed, in words a person can act on (one clear
/// line per error, as every tool prints them).
public struct LabError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    /// Wraps a socket error with what the lab was doing at the time.
    public init(_ doing: String, _ underlying: KernelError) { self.message = "\(doing): \(underlying.description)" }
    public var description: String { message }
}
