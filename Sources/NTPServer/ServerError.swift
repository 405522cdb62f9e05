import KernelValues

/// The one error type of NTPServer: what could not be set up, and what to do about it.
public struct ServerError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public init(_ error: KernelError) { message = error.description }
    public var description: String { message }
}
