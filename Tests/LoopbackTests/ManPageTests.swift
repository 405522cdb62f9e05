import XCTest
import Foundation

/// Every option a tool's `--help` lists is documented in its man page, so a new option
/// cannot ship without one (scripts/check-service also lints the pages with mandoc).
final class ManPageTests: XCTestCase {
    static let manDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("man")

    /// The long options of a `--help` text: "--name" at the start of an option row.
    static func options(inHelp help: String) -> [String] {
        help.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("  ") else { return nil }
            var row = line.drop { $0 == " " }
            if row.hasPrefix("-"), !row.hasPrefix("--"), let comma = row.firstIndex(of: ",") {
                row = row[row.index(after: comma)...].drop { $0 == " " }
            }
            guard row.hasPrefix("--") else { return nil }
            let name = row.dropFirst(2).prefix { $0.isLetter || $0.isNumber || $0 == "-" }
            return name.isEmpty ? nil : String(name)
        }
    }

    func assertDocumented(_ tool: String, _ arguments: [String], page: String) throws {
        let binary = try ServerInteropTests.executable(tool)
        let help = try runChildProcess(binary, arguments + ["--help"])
        XCTAssertEqual(help.status, 0, help.stderr)
        let options = Self.options(inHelp: help.stdout)
        XCTAssertGreaterThan(options.count, 3, "no options found in \(tool) \(arguments) --help: \(help.stdout)")
        let source = try String(contentsOf: Self.manDirectory.appendingPathComponent(page), encoding: .utf8)
        for option in options {
            // mdoc writes --name as "Fl -name" (Fl adds the first dash).
            let documented = source.range(of: "Fl -\(option)(\\s|$)", options: .regularExpression) != nil
            XCTAssertTrue(documented, "man/\(page) does not document --\(option) from '\(([tool] + arguments).joined(separator: " ")) --help'")
        }
    }

    func testStratumdPageCoversItsHelp() throws { try assertDocumented("stratumd", [], page: "stratumd.8") }
    func testNtpclientPageCoversItsHelp() throws { try assertDocumented("ntpclient", [], page: "ntpclient.1") }
    func testNtplabPageCoversEveryCommandsHelp() throws {
        for command in ["run", "simulate", "load"] { try assertDocumented("ntplab", [command], page: "ntplab.1") }
    }
}
