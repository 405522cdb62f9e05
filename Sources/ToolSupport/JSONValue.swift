/// The one JSON writer of the tools and the lab (RFC 8259). Every `--json` line, the lab's
/// reports and its exchange files are rendered here, so the same record prints the same bytes
/// whichever program prints it. Object members keep the order given, so lines diff well; the
/// tools put units in key names (`rttNanoseconds`), per the house naming rule.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    /// A measured or derived quantity. It is always written in Swift's shortest round-trip
    /// form (`16.0`, `0.25`, `1e+20`), never shortened to an integer, so a field holds the
    /// same JSON type on every line and parses back to the same `Double`. Non-finite values
    /// have no JSON form and are written as null.
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])

    /// A number, or null when there is none.
    public static func numberOrNull(_ value: Double?) -> JSONValue { value.map { .number($0) } ?? .null }

    /// An array of strings (status words, names).
    public static func strings(_ values: [String]) -> JSONValue { .array(values.map { .string($0) }) }

    /// Compact JSON text, no spaces and no newline.
    public func rendered() -> String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .integer(let value): out += String(value)
        case .number(let value): out += value.isFinite ? String(value) : "null"
        case .string(let value): JSONValue.writeQuoted(value, to: &out)
        case .array(let values):
            out += "["
            for (i, value) in values.enumerated() {
                if i > 0 { out += "," }
                value.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, member) in members.enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeQuoted(member.key, to: &out)
                out += ":"
                member.value.write(to: &out)
            }
            out += "}"
        }
    }

    /// RFC 8259 §7 string escaping: quote, backslash and control characters.
    private static func writeQuoted(_ string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

/// One member of a JSON object: its key and value, in the order the object lists them.
public struct JSONMember: Sendable, Equatable {
    public var key: String
    public var value: JSONValue
    public init(_ key: String, _ value: JSONValue) {
        self.key = key
        self.value = value
    }
}
