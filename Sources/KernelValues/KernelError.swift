/// The one error type of the kernel layer (KernelStamps): which operation failed, on what, and
/// the errno with its meaning in words, plus a hint when the fix is known: a message a person
/// can act on.
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

    /// strerror(3) of `code`: the errno's meaning in words ("" when `code` is 0). Kept as
    /// text so the error can be read, compared and printed without calling into the C library.
    public let errnoText: String

    /// KernelStamps fills `errnoText` from `code`; failures that are not system calls (parsing)
    /// pass code 0 and an empty text.
    public init(operation: String, code: Int32, errnoText: String, detail: String? = nil, hint: String? = nil) {
        self.operation = operation
        self.code = code
        self.errnoText = errnoText
        self.detail = detail
        self.hint = hint
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
}

