import KernelStamps

/// Configuration files for the tools' long options, so a service's settings live in a file
/// its unit names (`--config /etc/stratum/stratumd.conf`) instead of a long `ExecStart=` line.
///
/// The format is the command line written one option per line, so there is nothing new to
/// learn and `--help` documents both:
///
///     # comment; blank lines are ignored
///     listen 0.0.0.0:123          # a value option: its long name, then the value
///     listen [::]:123             # repeatable options may appear on several lines
///     serve-unsynchronised        # a flag: its name alone
///
/// Options on the command line override the file: a value option given on both uses the
/// command line's value (for a repeatable one, the command line's list replaces the file's).
/// Unknown names, missing values and values on flags are errors that name the file and line;
/// values the tool later finds malformed name them too (`ParsedOptions.origin`).
/// `parseConfigFile` and `addingDefaults` are pure text to options; only
/// `parseCommandLineAndConfigOrExit` reads the file (through KernelStamps).
public struct ConfigFileEntry: Sendable, Equatable {
    public let name: String
    /// nil for a flag.
    public let value: String?
    /// "PATH:LINE", for error messages.
    public let origin: String
}

extension ToolDescription {
    /// The option that names the configuration file; the file itself may not contain it.
    public static let configOptionName = "config"

    /// Parses a configuration file's text against this tool's options.
    public func parseConfigFile(_ text: String, path: String) throws(UsageError) -> [ConfigFileEntry] {
        var entries: [ConfigFileEntry] = []
        var seen: Set<String> = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let origin = "\(path):\(index + 1)"
            let line = Self.withoutComment(rawLine).trimmingBlanks()
            if line.isEmpty { continue }
            let nameEnd = line.firstIndex(where: { $0 == " " || $0 == "\t" }) ?? line.endIndex
            var name = String(line[..<nameEnd])
            if name.hasPrefix("--") { name.removeFirst(2) }   // tolerate a pasted "--listen"
            let valueText = line[nameEnd...].trimmingBlanks()
            guard name != Self.configOptionName else {
                throw UsageError("\(origin): a configuration file cannot name another with 'config'")
            }
            guard let spec = options.first(where: { $0.name == name }) else {
                throw UsageError("\(origin): unknown option '\(name)' (the names are the long options of '\(self.name) --help', without '--')")
            }
            if spec.valueName == nil {
                guard valueText.isEmpty else {
                    throw UsageError("\(origin): '\(name)' is a flag and takes no value; write it alone to switch it on, or delete the line")
                }
                entries.append(ConfigFileEntry(name: name, value: nil, origin: origin))
            } else {
                guard !valueText.isEmpty else {
                    throw UsageError("\(origin): '\(name)' needs a value: \(name) \(spec.valueName!)")
                }
                entries.append(ConfigFileEntry(name: name, value: String(valueText), origin: origin))
            }
            if !spec.repeatable && !seen.insert(name).inserted {
                throw UsageError("\(origin): '\(name)' given twice; it takes one value")
            }
        }
        return entries
    }

    /// `#` starts a comment at the start of a line or after a blank, so a value such as a
    /// path may still contain `#` inside a word.
    private static func withoutComment(_ line: Substring) -> Substring {
        var previous: Character = " "
        for index in line.indices {
            let character = line[index]
            if character == "#" && (previous == " " || previous == "\t") { return line[..<index] }
            previous = character
        }
        return line
    }
}

extension ParsedOptions {
    /// These options with `entries` from a configuration file added underneath: an option
    /// given on the command line keeps its command-line value(s).
    public func addingDefaults(from entries: [ConfigFileEntry]) -> ParsedOptions {
        var merged = self
        let fromCommandLine = Set(values.keys)
        for entry in entries where !fromCommandLine.contains(entry.name) {
            merged.append(entry.name, entry.value ?? "")
            merged.setOrigin(entry.name, entry.origin)
        }
        return merged
    }
}

extension Substring {
    func trimmingBlanks() -> Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" || first == "\r" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\r" { text.removeLast() }
        return text
    }
}

/// Parses the command line and, when it has `--config FILE`, the file under it (command line
/// wins). Usage errors exit 2; a file that cannot be read exits 1.
public func parseCommandLineAndConfigOrExit(_ tool: ToolDescription, arguments: [String]) -> ParsedOptions {
    let options = parseCommandLineOrExit(tool, arguments: arguments)
    guard let path = options.string(ToolDescription.configOptionName) else { return options }
    let text: String
    do throws(KernelError) { text = try readTextFile(atPath: path) } catch {
        exitWithFailure(tool.name, "cannot read the configuration file: \(error.description)")
    }
    do throws(UsageError) {
        return options.addingDefaults(from: try tool.parseConfigFile(text, path: path))
    } catch {
        exitWithUsageError(tool.name, error.message)
    }
}

/// The `--config FILE` option every configurable tool lists, with the same help text.
public let configOption = OptionSpec.value(
    ToolDescription.configOptionName, "FILE",
    "Read options from FILE: one 'option value' per line (flags alone),\nthe long option names without '--', '#' comments.\nOptions on the command line override the file.")
