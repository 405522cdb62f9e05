import XCTest
@testable import ToolSupport

final class OptionsTests: XCTestCase {
    let tool = ToolDescription(
        name: "demo", synopsis: ["demo [--poll SECONDS] HOST"], summary: "A demo.",
        options: [.value("poll", "SECONDS", "Poll interval."),
                  .value("listen", "ADDR:PORT", repeatable: true, "Where to listen."),
                  .flag("json", short: "j", "JSON lines.")])

    private func run(_ arguments: [String]) throws -> ParsedOptions {
        guard case .run(let options) = try tool.parse(arguments) else {
            XCTFail("expected options"); throw UsageError("no")
        }
        return options
    }

    func testValuesFlagsAndPositionals() throws {
        let options = try run(["--poll", "16", "-j", "host:123", "--listen=a", "--listen", "b"])
        XCTAssertEqual(try options.integer("poll", default: 1, in: 1...3600), 16)
        XCTAssertTrue(options.has("json"))
        XCTAssertEqual(options.strings("listen"), ["a", "b"])
        XCTAssertEqual(options.positionals, ["host:123"])
    }

    func testDoubleDashEndsOptions() throws {
        let options = try run(["--", "--poll"])
        XCTAssertEqual(options.positionals, ["--poll"])
        XCTAssertFalse(options.has("poll"))
    }

    func testUsageErrorsSayWhatToDo() {
        XCTAssertThrowsError(try tool.parse(["--bogus"])) { error in
            XCTAssertEqual((error as? UsageError)?.message, "unknown option --bogus (see 'demo --help')")
        }
        XCTAssertThrowsError(try tool.parse(["--poll"])) { error in
            XCTAssertEqual((error as? UsageError)?.message, "--poll needs a value: --poll SECONDS")
        }
        XCTAssertThrowsError(try tool.parse(["--poll", "1", "--poll", "2"]))
        XCTAssertThrowsError(try tool.parse(["--json=yes"]))
        XCTAssertThrowsError(try run(["--poll", "0"]).integer("poll", default: 16, in: 1...3600)) { error in
            XCTAssertEqual((error as? UsageError)?.message, "--poll wants a whole number from 1 to 3600, not '0'")
        }
        XCTAssertThrowsError(try run(["--poll", "nan"]).decimal("poll", default: 1, in: 0.1...10))
    }

    func testHelpAndVersion() throws {
        guard case .showHelp = try tool.parse(["x", "--help"]) else { return XCTFail("help") }
        guard case .showVersion = try tool.parse(["--version"]) else { return XCTFail("version") }
        let help = tool.helpText
        XCTAssertTrue(help.contains("--poll SECONDS"))
        XCTAssertTrue(help.contains("-j, --json"))
        XCTAssertTrue(help.contains("--help"))
    }

    func testJSONEscapingAndOrder() {
        let object = JSONValue.object([
            JSONMember("name", .string("a\"b\\c\n\u{01}")),
            JSONMember("rttNanoseconds", .integer(-5)),
            JSONMember("ratio", .number(.nan)),
            JSONMember("ok", .bool(true)),
            JSONMember("pollSeconds", .number(16)),
            JSONMember("words", .strings(["a", "b"])),
            JSONMember("none", .numberOrNull(nil)),
        ])
        XCTAssertEqual(object.rendered(), #"{"name":"a\"b\\c\n\u0001","rttNanoseconds":-5,"ratio":null,"ok":true,"pollSeconds":16.0,"words":["a","b"],"none":null}"#)
    }
}
