import XCTest
import Foundation
import FeedforwardClock
import KernelStamps
import PublishedClock

/// The three readers of the published clock (include/ffclock.h compiled with the system cc,
/// contrib/python/ffclock.py run by python3, and `ntpclient now`) against the same file:
/// the same parameters, the same time at the same counter, the same verdict
/// (docs/published-clock.md).
final class ReaderAgreementTests: XCTestCase {
    var directory = ""
    override func setUpWithError() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("reader-agreement-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        directory = url.path
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// The package root: three levels above this file.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func tool(_ name: String) -> String? {
        for directory in ["/usr/bin", "/usr/local/bin", "/bin"] + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) {
            let path = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// contrib/c/ffclock_now.c compiled with the system `cc` into the test's directory.
    func compiledCReader() throws -> String {
        guard let cc = Self.tool("cc") else {
            print("*** skipped: no system cc; the C reader (include/ffclock.h) was not compiled or checked ***")
            throw XCTSkip("skipped: no system cc to compile include/ffclock.h")
        }
        let root = Self.packageRoot.path
        let output = directory + "/ffclock_now"
        let result = try runChildProcess(cc, ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                                              "-I", root + "/include", "-o", output, root + "/contrib/c/ffclock_now.c", "-lm"])
        XCTAssertEqual(result.status, 0, "cc failed: \(result.stderr)")
        return output
    }

    func pythonReader() throws -> (python: String, script: String) {
        guard let python = Self.tool("python3") else {
            print("*** skipped: no python3; the Python reader was not checked ***")
            throw XCTSkip("skipped: no python3 for contrib/python/ffclock.py")
        }
        return (python, Self.packageRoot.path + "/contrib/python/ffclock.py")
    }

    func ntpclient() throws -> String {
        let url = ClientLoopbackTests.productsDirectory.appendingPathComponent("ntpclient")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw XCTSkip("skipped: ntpclient is not built next to the tests; run 'swift build' first")
        }
        return url.path
    }

    struct Reading {
        var time: Int64
        var counter: Int64
        var verdict: String
        var maxError: Double?
        var fields: [String: Int64]
        var numbers: [String: Double]
    }

    static let comparedFields = ["counterOriginNanoseconds", "timeAtOriginNanoseconds", "lastStampCounterNanoseconds", "stampCount",
                                 "nextStampExpectedCounterNanoseconds", "statusBits", "leap", "disruptionMarker", "generation"]
    static let comparedNumbers = ["periodSecondsPerTick", "localPeriodSecondsPerTick", "differenceNanosecondsOver1e9Ticks"]

    func readings(_ result: ChildProcessResult, label: String) -> [Reading] {
        result.jsonLines.compactMap { line in
            guard let time = (line["timeUnixNanoseconds"] as? NSNumber)?.int64Value,
                  let counter = (line["counterNanoseconds"] as? NSNumber)?.int64Value,
                  let verdict = line["verdict"] as? String else {
                XCTFail("\(label): line lacks fields: \(line)")
                return nil
            }
            var fields: [String: Int64] = [:]
            for key in Self.comparedFields { fields[key] = (line[key] as? NSNumber)?.int64Value }
            var numbers: [String: Double] = [:]
            for key in Self.comparedNumbers { numbers[key] = (line[key] as? NSNumber)?.doubleValue }
            return Reading(time: time, counter: counter, verdict: verdict,
                           maxError: (line["maxErrorNanoseconds"] as? NSNumber)?.doubleValue, fields: fields, numbers: numbers)
        }
    }

    /// Reads `path` with all three readers and Swift in-process; returns the largest time
    /// disagreement, ns, after carrying each reading to one common counter at p̂_local.
    @discardableResult
    func assertReadersAgree(on path: String, expectedVerdict: String, label: String) throws -> Double {
        let c = try compiledCReader()
        let (python, script) = try pythonReader()
        let client = try ntpclient()
        let swift = try PublishedClockReader(path: path).read()
        let cResult = try runChildProcess(c, [path])
        let pyResult = try runChildProcess(python, [script, path])
        let nowResult = try runChildProcess(client, ["now", "--from", path, "--json"])
        let expectedStatus: Int32 = PublishedClockVerdict(rawValue: expectedVerdict)!.isFailure ? 1 : 0
        for (name, result) in [("C", cResult), ("Python", pyResult), ("ntpclient now", nowResult)] {
            XCTAssertEqual(result.status, expectedStatus, "\(label): \(name) exit status; stderr: \(result.stderr)")
        }
        let all = [("C", readings(cResult, label: "C")), ("Python", readings(pyResult, label: "Python")),
                   ("ntpclient now", readings(nowResult, label: "now"))]
        let p = swift.parameters
        var worst = 0.0
        for (name, list) in all {
            let r = try XCTUnwrap(list.first, "\(label): \(name) printed nothing")
            XCTAssertEqual(r.verdict, expectedVerdict, "\(label): \(name) verdict")
            XCTAssertEqual(r.fields["counterOriginNanoseconds"], p.counterOrigin, "\(label): \(name)")
            XCTAssertEqual(r.fields["timeAtOriginNanoseconds"], p.timeAtOriginNanoseconds, "\(label): \(name)")
            XCTAssertEqual(r.fields["lastStampCounterNanoseconds"], p.lastStampCounter, "\(label): \(name)")
            XCTAssertEqual(r.fields["stampCount"], p.stampCount, "\(label): \(name)")
            // Periods to a few units in the last place: C prints 17 significant digits, and
            // Foundation's JSON parser does not round those back to the nearest double.
            func samePeriod(_ key: String, _ expected: Double) {
                XCTAssertEqual(r.numbers[key] ?? .nan, expected, accuracy: expected * 1e-15, "\(label): \(name) \(key)")
            }
            samePeriod("periodSecondsPerTick", p.periodSecondsPerTick)
            if name != "ntpclient now" {
                // The C and Python readers print every published field; ntpclient now the everyday ones.
                samePeriod("localPeriodSecondsPerTick", p.localPeriodSecondsPerTick)
                XCTAssertEqual(r.fields["nextStampExpectedCounterNanoseconds"], p.nextStampExpectedCounter, "\(label): \(name)")
                XCTAssertEqual(r.fields["statusBits"], Int64(p.status.rawValue), "\(label): \(name)")
                XCTAssertEqual(r.fields["leap"], Int64(p.leap), "\(label): \(name)")
                XCTAssertEqual(r.fields["disruptionMarker"], swift.writer.marker.map { Int64(bitPattern: $0.disruptionMarker) } ?? 0, "\(label): \(name)")
                XCTAssertEqual(r.fields["generation"], swift.writer.marker.map { Int64(bitPattern: $0.generation) } ?? 0, "\(label): \(name)")
                // Cd, the difference clock: the interval one second of counter measures.
                let second = p.difference(fromCounter: r.counter, toCounter: r.counter + 1_000_000_000)
                XCTAssertEqual(try XCTUnwrap(r.numbers["differenceNanosecondsOver1e9Ticks"], "\(label): \(name) Cd"),
                               second, accuracy: 1e-6, "\(label): \(name) measures intervals differently")
            }
            // Same time: exactly Ca of the shared parameters at the reader's own counter read,
            // and within 2 µs of Swift's reading once carried to Swift's counter.
            XCTAssertEqual(r.time, p.absoluteTime(atCounter: r.counter), "\(label): \(name) computes Ca differently")
            let carried = r.time + Int64((p.localPeriodSecondsPerTick * 1e9 * Double(swift.counter - r.counter)).rounded())
            let difference = Double((carried - swift.unixNanoseconds).magnitude)
            worst = max(worst, difference)
            XCTAssertLessThanOrEqual(difference, 2_000, "\(label): \(name) and Swift disagree by \(difference) ns")
            if swift.maxErrorNanoseconds.isFinite {
                let aged = p.maxError(atCounter: r.counter)
                XCTAssertEqual(try XCTUnwrap(r.maxError, "\(label): \(name) maxError"), aged, accuracy: max(1e-6 * aged, 1e-3),
                               "\(label): \(name) ages the bound differently")
            } else {
                XCTAssertNil(r.maxError, "\(label): \(name) must print no finite bound")
            }
        }
        print("\(label): C, Python and ntpclient now agree with the Swift reader within \(Int(worst.rounded(.up))) ns (limit 2000), verdict \(expectedVerdict)")
        return worst
    }

    func parameters(at counter: Int64) -> ClockParameters {
        ClockParameters(
            counterOrigin: counter - 3_000_000_000, timeAtOriginNanoseconds: realtimeNanoseconds() - 3_000_000_000,
            timeAtOriginFraction: 0.375, periodSecondsPerTick: 1.000_000_512e-9, periodError: 2e-9, periodErrorBound: 5e-8,
            localPeriodSecondsPerTick: 1.000_000_498e-9, offsetNanoseconds: 12.5, errorEstimateNanoseconds: 80,
            maxErrorNanoseconds: 25_000.25, maxErrorGrowthRate: 5e-7, lastStampCounter: counter - 3_000_000_000,
            nextStampExpectedCounter: counter + 13_000_000_000, leap: 0, status: [.periodUpdated],
            lastRTTNanoseconds: 60_000, minimumRTTNanoseconds: 55_000, naiveOffsetNanoseconds: 10, stampCount: 99)
    }

    func testReadersAgreeOnEveryVerdict() throws {
        let pagePath = directory + "/vmclock"
        try writeVMClockPage(pagePath, marker: 41)
        let path = directory + "/clock"
        let writer = try PublishedClockWriter(path: path, vmclockPath: pagePath)
        try assertReadersAgree(on: path, expectedVerdict: "unusable", label: "no estimate")
        let now = monotonicRawNanoseconds()
        let marker = VMClockMarker(disruptionMarker: 41, generation: 0)
        writer.publish(parameters(at: now), marker: marker)
        try assertReadersAgree(on: path, expectedVerdict: "ok", label: "ok")
        var unsync = parameters(at: now)
        unsync.status.insert(.unsynchronised)
        writer.publish(unsync, marker: marker)
        try assertReadersAgree(on: path, expectedVerdict: "unsync", label: "unsync")
        writer.publish(parameters(at: now - 60_000_000_000), marker: marker)
        try assertReadersAgree(on: path, expectedVerdict: "stale", label: "stale (writer died)")
        writer.publish(parameters(at: now), marker: marker)
        writer.markStopped()
        try assertReadersAgree(on: path, expectedVerdict: "stopped", label: "stopped (clean exit)")
        writer.publish(parameters(at: now), marker: marker)
        try writeVMClockPage(pagePath, marker: 42, inPlace: true)
        try assertReadersAgree(on: path, expectedVerdict: "disrupted", label: "disrupted (vmclock marker moved)")
    }

    /// Every reader refuses a file that is not a published clock it can read, with exit 1 and
    /// one line that says what is wrong (docs/published-clock.md, "Versioning"): no file, an
    /// empty one, another file's bytes, a layout version it does not know.
    func testReadersSayWhatIsWrongWithAFile() throws {
        let c = try compiledCReader()
        let (python, script) = try pythonReader()
        let client = try ntpclient()
        let good = directory + "/good"
        try PublishedClockWriter(path: good).publish(parameters(at: monotonicRawNanoseconds()))
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: good))
        var wrongVersion = [UInt8](bytes)
        wrongVersion[8] &+= 1                      // word 1, little-endian: the layout version
        let cases: [(name: String, contents: [UInt8]?, says: [String])] = [
            ("missing", nil, ["no such file", "cannot open"]),
            ("empty", [], ["empty", "smaller"]),
            ("not-a-clock", [UInt8](repeating: 0x41, count: 4096), ["bad magic"]),
            ("wrong-version", wrongVersion, ["version"]),
        ]
        for test in cases {
            let path = directory + "/" + test.name
            if let contents = test.contents {
                XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(contents)))
            }
            for (reader, result) in [("C", try runChildProcess(c, [path])),
                                     ("Python", try runChildProcess(python, [script, path])),
                                     ("ntpclient now", try runChildProcess(client, ["now", "--from", path]))] {
                XCTAssertEqual(result.status, 1, "\(test.name): \(reader) exit status; \(result.stderr)")
                XCTAssertEqual(result.stdout, "", "\(test.name): \(reader) printed a time for a file it cannot read")
                let lines = result.stderr.split(separator: "\n")
                XCTAssertEqual(lines.count, 1, "\(test.name): \(reader) says it in one line: \(result.stderr)")
                XCTAssertTrue(test.says.contains { result.stderr.lowercased().contains($0) },
                              "\(test.name): \(reader) does not say what is wrong: \(result.stderr)")
            }
        }
    }

    /// A vmclock ABI page with `marker` (112 bytes, no generation counter), written in place.
    func writeVMClockPage(_ path: String, marker: UInt64, inPlace: Bool = false) throws {
        var bytes = [UInt8](repeating: 0, count: 112)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
        }
        put(UInt32(0x4B4C_4356), at: 0)
        put(UInt32(112), at: 4)
        put(UInt16(1), at: 8)
        put(UInt32(inPlace ? 2 : 0), at: 12)
        put(marker, at: 16)
        if inPlace {
            let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
            defer { try? handle.close() }
            handle.write(Data(bytes))
        } else {
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        }
    }

    /// C and Python read 20 000 times while this process updates the file as fast as it can:
    /// every reading must come whole from one update.
    func testCAndPythonNeverTearWhileTheWriterRunsFlatOut() throws {
        let c = try compiledCReader()
        let (python, script) = try pythonReader()
        let path = directory + "/busy-clock"
        let writer = try PublishedClockWriter(path: path)
        writer.publish(invariantParameters(0))
        let publisher = BusyPublisher(writer)
        defer { publisher.stop() }
        for (name, result) in [("C", try runChildProcess(c, [path, "20000"])),
                               ("Python", try runChildProcess(python, [script, path, "20000"]))] {
            XCTAssertEqual(result.status, 0, "\(name): \(result.stderr)")
            let lines = readings(result, label: name)
            XCTAssertEqual(lines.count, 20000, name)
            var distinct = Set<Int64>()
            var torn = 0
            for r in lines {
                guard let count = r.fields["stampCount"] else { continue }
                let expected = invariantParameters(count - 1)
                if r.fields["counterOriginNanoseconds"] != expected.counterOrigin
                    || r.fields["timeAtOriginNanoseconds"] != expected.timeAtOriginNanoseconds
                    || r.fields["lastStampCounterNanoseconds"] != expected.lastStampCounter
                    || r.time != expected.absoluteTime(atCounter: r.counter) {
                    torn += 1
                }
                distinct.insert(count)
            }
            XCTAssertEqual(torn, 0, "\(name): \(torn) torn readings")
            XCTAssertGreaterThan(distinct.count, 10, "\(name): the reads did not overlap the writer's updates")
            print("\(name) reader: 20000 reads over \(distinct.count) distinct updates while the writer ran flat out, 0 torn")
        }
        XCTAssertGreaterThan(publisher.updates, 10_000)
    }
}

final class UpdateCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Int64 = 0
    var value: Int64 {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
