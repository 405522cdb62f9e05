/// A small JSON object writer for `--json` output (one object per line). Keys are written
/// in the order given, so lines diff well; the tools put units in key names
/// (`rttNanoseconds`), per the house naming rule.
public struct JSONObject: Sendable {
    private var body = ""

    public init() {}

    public mutating func add(_ key: String, _ value: String) {
        appendKey(key)
        body += JSONObject.quote(value)
    }

    public mutating func add(_ key: String, _ value: Int64) {
        appendKey(key)
        body += String(value)
    }

    public mutating func add(_ key: String, _ value: Int) { add(key, Int64(value)) }

    /// Non-finite numbers have no JSON form: they are written as null.
    public mutating func add(_ key: String, _ value: Double) {
        appendKey(key)
        body += value.isFinite ? String(value) : "null"
    }

    public mutating func add(_ key: String, _ value: Bool) {
        appendKey(key)
        body += value ? "true" : "false"
    }

    public mutating func add(_ key: String, strings: [String]) {
        appendKey(key)
        body += "[" + strings.map(JSONObject.quote).joined(separator: ",") + "]"
    }

    /// Adds an already-encoded JSON value (an object or array built by another writer).
    public mutating func add(_ key: String, raw: String) {
        appendKey(key)
        body += raw
    }

    public mutating func addNull(_ key: String) {
        appendKey(key)
        body += "null"
    }

    public var text: String { "{" + body + "}" }

    private mutating func appendKey(_ key: String) {
        if !body.isEmpty { body += "," }
        body += JSONObject.quote(key) + ":"
    }

    /// RFC 8259 §7 string escaping.
    public static func quote(_ string: String) -> String {
        var out = "\""
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
        return out + "\""
    }
}
