import XCTest
@testable import ToolSupport

final class ConfigFileTests: XCTestCase {
    let tool = ToolDescription(
        name: "demo", synopsis: ["demo [--poll SECONDS] HOST"], summary: "A demo.",
        options: [.value("poll", "SECONDS", "Poll interval."),
                  .value("listen", "ADDR:PORT", repeatable: true, "Where to listen."),
                  .flag("json", "JSON lines."),
                  configOption])

    private func commandLine(_ arguments: [String]) throws -> ParsedOptions {
        guard case .run(let options) = try tool.parse(arguments) else { throw UsageError("no options") }
        return options
    }

    private func message(_ text: String) -> String? {
        do { _ = try tool.parseConfigFile(text, path: "demo.conf"); return nil } catch { return error.message }
    }

    func testLinesCommentsFlagsAndRepeats() throws {
        let entries = try tool.parseConfigFile("""
            # a comment line

              poll 16   # trailing comment
            listen 127.0.0.1:123
            listen\t[::1]:123
            json
            """, path: "demo.conf")
        XCTAssertEqual(entries.map { $0.name }, ["poll", "listen", "listen", "json"])
        XCTAssertEqual(entries.map { $0.value }, ["16", "127.0.0.1:123", "[::1]:123", nil])
        XCTAssertEqual(entries.map { $0.origin }, ["demo.conf:3", "demo.conf:4", "demo.conf:5", "demo.conf:6"])
    }

    func testHashInsideAWordIsPartOfTheValue() throws {
        let entries = try tool.parseConfigFile("listen a#b # comment\n", path: "x")
        XCTAssertEqual(entries.first?.value, "a#b")
    }

    func testErrorsNameTheFileAndLine() {
        XCTAssertEqual(message("poll 1\nbogus 2\n"),
                       "demo.conf:2: unknown option 'bogus' (the names are the long options of 'demo --help', without '--')")
        XCTAssertEqual(message("\n\npoll\n"), "demo.conf:3: 'poll' needs a value: poll SECONDS")
        XCTAssertEqual(message("json yes\n"),
                       "demo.conf:1: 'json' is a flag and takes no value; write it alone to switch it on, or delete the line")
        XCTAssertEqual(message("poll 1\npoll 2\n"), "demo.conf:2: 'poll' given twice; it takes one value")
        XCTAssertEqual(message("config other.conf\n"), "demo.conf:1: a configuration file cannot name another with 'config'")
    }

    func testCommandLineOverridesTheFile() throws {
        let entries = try tool.parseConfigFile("poll 16\nlisten a\nlisten b\njson\n", path: "demo.conf")
        let merged = try commandLine(["--poll", "4", "--listen", "c"]).addingDefaults(from: entries)
        XCTAssertEqual(merged.string("poll"), "4")
        XCTAssertEqual(merged.strings("listen"), ["c"], "the command line's list replaces the file's")
        XCTAssertTrue(merged.has("json"), "options only in the file still apply")
        let fileOnly = try commandLine([]).addingDefaults(from: entries)
        XCTAssertEqual(fileOnly.strings("listen"), ["a", "b"])
    }

    func testBadValuesFromTheFileNameTheFileAndLine() throws {
        let entries = try tool.parseConfigFile("\npoll soon\n", path: "demo.conf")
        let merged = try commandLine([]).addingDefaults(from: entries)
        XCTAssertThrowsError(try merged.integer("poll", default: 1, in: 1...100)) { error in
            XCTAssertEqual((error as? UsageError)?.message, "demo.conf:2: poll wants a whole number from 1 to 100, not 'soon'")
        }
        let fromCommandLine = try commandLine(["--poll", "soon"]).addingDefaults(from: entries)
        XCTAssertThrowsError(try fromCommandLine.integer("poll", default: 1, in: 1...100)) { error in
            XCTAssertEqual((error as? UsageError)?.message, "--poll wants a whole number from 1 to 100, not 'soon'")
        }
    }
}
