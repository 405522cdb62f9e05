import KernelStamps

/// The one option parser of stratumd, ntpclient, ntplab and ntpbench, so every tool reads
/// its command line the same way. GNU-style long options: `--name value`, `--name=value`, flags,
/// `--` ends options; `-h` and `--help`, `--version` are built in. Unknown options and
/// missing or malformed values are usage errors (exit status 2) whose message says what to do.
public struct OptionSpec: Sendable {
    public let name: String
    /// Placeholder shown in `--help` (e.g. "SECONDS"); nil for a flag.
    public let valueName: String?
    public let help: String
    public let repeatable: Bool
    public let shortName: Character?

    public static func flag(_ name: String, short: Character? = nil, _ help: String) -> OptionSpec {
        OptionSpec(name: name, valueName: nil, help: help, repeatable: false, shortName: short)
    }

    public static func value(_ name: String, _ valueName: String, short: Character? = nil,
                             repeatable: Bool = false, _ help: String) -> OptionSpec {
        OptionSpec(name: name, valueName: valueName, help: help, repeatable: repeatable, shortName: short)
    }
}

/// A usage error: the command line cannot be understood. Exit status 2.
public struct UsageError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What a tool is, for its `--help` and `--version`.
public struct ToolDescription: Sendable {
    public let name: String
    public let synopsis: [String]
    public let summary: String
    public let options: [OptionSpec]
    public let footer: String

    public init(name: String, synopsis: [String], summary: String, options: [OptionSpec], footer: String = "") {
        self.name = name
        self.synopsis = synopsis
        self.summary = summary
        self.options = options
        self.footer = footer
    }

    public var helpText: String {
        var text = "Usage:\n"
        for line in synopsis { text += "  \(line)\n" }
        text += "\n\(summary)\n\nOptions:\n"
        var rows: [(String, String)] = []
        for option in options + [.flag("help", short: "h", "Show this help and exit."),
                                 .flag("version", "Print the version and exit.")] {
            var left = "--\(option.name)"
            if let short = option.shortName { left = "-\(short), " + left }
            if let valueName = option.valueName { left += " \(valueName)" }
            rows.append((left, option.help))
        }
        let width = min(34, (rows.map { $0.0.count }.max() ?? 0) + 2)
        for (left, help) in rows {
            let helpLines = help.split(separator: "\n", omittingEmptySubsequences: false)
            if left.count + 2 > width {
                text += "  \(left)\n"
                for line in helpLines { text += "  " + String(repeating: " ", count: width) + line + "\n" }
            } else {
                for (index, line) in helpLines.enumerated() {
                    let head = index == 0 ? left : ""
                    text += "  " + head + String(repeating: " ", count: width - head.count) + line + "\n"
                }
            }
        }
        if !footer.isEmpty { text += "\n\(footer)\n" }
        return text
    }
}

/// The result of parsing: option values by name, in order, and the positional arguments.
public struct ParsedOptions: Sendable {
    public private(set) var values: [String: [String]] = [:]
    public private(set) var positionals: [String] = []
    public let toolName: String
    /// "PATH:LINE" of options that came from a configuration file.
    public private(set) var origins: [String: String] = [:]

    init(toolName: String) { self.toolName = toolName }

    public func has(_ name: String) -> Bool { values[name] != nil }
    public func string(_ name: String) -> String? { values[name]?.last }
    public func strings(_ name: String) -> [String] { values[name] ?? [] }

    /// How to name an option in an error: "--name" from the command line, "PATH:LINE: name"
    /// from a configuration file, so the user knows which to fix.
    public func describe(_ name: String) -> String {
        origins[name].map { "\($0): \(name)" } ?? "--\(name)"
    }

    /// An integer option within `range`, or `defaultValue` when absent.
    public func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(UsageError) -> Int {
        guard let text = string(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw UsageError("\(describe(name)) wants a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
        }
        return value
    }

    /// A decimal option within `range`, or `defaultValue` when absent.
    public func decimal(_ name: String, default defaultValue: Double, in range: ClosedRange<Double>) throws(UsageError) -> Double {
        guard let text = string(name) else { return defaultValue }
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            throw UsageError("\(describe(name)) wants a number from \(formatNumber(range.lowerBound)) to \(formatNumber(range.upperBound)), not '\(text)'")
        }
        return value
    }

    /// One of `choices`, or `defaultValue` when absent.
    public func choice(_ name: String, default defaultValue: String, from choices: [String]) throws(UsageError) -> String {
        guard let text = string(name) else { return defaultValue }
        guard choices.contains(text) else {
            throw UsageError("\(describe(name)) wants one of \(choices.joined(separator: ", ")), not '\(text)'")
        }
        return text
    }

    mutating func append(_ name: String, _ value: String) { values[name, default: []].append(value) }
    mutating func appendPositional(_ value: String) { positionals.append(value) }
    mutating func setOrigin(_ name: String, _ origin: String) { origins[name] = origin }
}

private func formatNumber(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
}

/// What the caller should do after parsing.
public enum ParseOutcome: Sendable {
    case run(ParsedOptions)
    case showHelp
    case showVersion
}

extension ToolDescription {
    /// Parses `arguments` (without the program name).
    public func parse(_ arguments: [String]) throws(UsageError) -> ParseOutcome {
        var result = ParsedOptions(toolName: name)
        var index = 0
        var optionsEnded = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if optionsEnded || argument == "-" || !argument.hasPrefix("-") {
                result.appendPositional(argument)
                continue
            }
            if argument == "--" { optionsEnded = true; continue }
            if argument == "--help" || argument == "-h" { return .showHelp }
            if argument == "--version" { return .showVersion }

            var key: Substring
            var inlineValue: String?
            let spec: OptionSpec
            if argument.hasPrefix("--") {
                key = argument.dropFirst(2)
                if let equals = key.firstIndex(of: "=") {
                    inlineValue = String(key[key.index(after: equals)...])
                    key = key[..<equals]
                }
                guard let found = options.first(where: { $0.name == key }) else {
                    throw UsageError("unknown option --\(key) (see '\(name) --help')")
                }
                spec = found
            } else {
                let letters = argument.dropFirst()
                guard letters.count == 1, let found = options.first(where: { $0.shortName == letters.first }) else {
                    throw UsageError("unknown option \(argument) (see '\(name) --help')")
                }
                spec = found
            }
            if spec.valueName == nil {
                if inlineValue != nil { throw UsageError("--\(spec.name) takes no value") }
                result.append(spec.name, "")
                continue
            }
            let value: String
            if let inlineValue {
                value = inlineValue
            } else {
                guard index < arguments.count else {
                    throw UsageError("--\(spec.name) needs a value: --\(spec.name) \(spec.valueName!)")
                }
                value = arguments[index]
                index += 1
            }
            if !spec.repeatable && result.has(spec.name) {
                throw UsageError("--\(spec.name) given twice; it takes one value")
            }
            result.append(spec.name, value)
        }
        return .run(result)
    }
}

/// Exit statuses shared by the tools: 0 success, 1 runtime failure, 2 usage error.
public enum ExitStatus: Int32, Sendable {
    case success = 0
    case failure = 1
    case usage = 2
}

/// Writes one line to standard error, prefixed by the tool's name.
public func printError(_ tool: String, _ message: String) {
    StandardStream.error.write("\(tool): \(message)\n")
}

/// Writes a line to standard output unbuffered, so piped output arrives line by line.
public func printLine(_ line: String) {
    StandardStream.output.write(line + "\n")
}

/// Parses the process's arguments against `tool`, handling `--help`, `--version` and usage
/// errors (message on stderr, exit 2) so each tool's `main` only sees a valid command line.
public func parseCommandLineOrExit(_ tool: ToolDescription, arguments: [String], version: String = toolkitVersion) -> ParsedOptions {
    do {
        switch try tool.parse(arguments) {
        case .run(let options): return options
        case .showHelp:
            StandardStream.output.write(tool.helpText)
            exitProcess(ExitStatus.success.rawValue)
        case .showVersion:
            printLine("\(tool.name) \(version)")
            exitProcess(ExitStatus.success.rawValue)
        }
    } catch {
        printError(tool.name, error.message)
        exitProcess(ExitStatus.usage.rawValue)
    }
}

/// Exits with a usage error message (status 2).
public func exitWithUsageError(_ tool: String, _ message: String) -> Never {
    printError(tool, message)
    exitProcess(ExitStatus.usage.rawValue)
}

/// Exits with a runtime failure message (status 1).
public func exitWithFailure(_ tool: String, _ message: String) -> Never {
    printError(tool, message)
    exitProcess(ExitStatus.failure.rawValue)
}

/// The toolkit's version, printed by every tool's `--version`.
public let toolkitVersion = "0.1.0"

/// Process-wide setup every tool does first: ignore SIGPIPE, so a reader that goes away
/// (a closed pipe on stdout or stderr, `ntpclient | head`) makes writes fail with EPIPE
/// instead of killing a server or client mid-run.
public func prepareToolProcess() {
    ignoreBrokenPipeSignal()
}
