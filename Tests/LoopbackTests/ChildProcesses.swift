import Foundation

/// What a child process printed and how it ended.
struct ChildProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String

    /// stdout parsed as JSON lines (the tools' `--json` output); lines that are not JSON objects are left out.
    var jsonLines: [[String: Any]] {
        stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}

/// Runs `path` to completion and collects its output, the one way every loopback test does it.
/// Both pipes are drained before waiting, so a chatty child cannot block on a full pipe; a child
/// still running at `timeoutSeconds` is terminated (its output so far is kept).
func runChildProcess(_ path: String, _ arguments: [String], timeoutSeconds: Double = 120) throws -> ChildProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeoutSeconds, execute: watchdog)
    // stderr drains on another thread; the semaphore orders its write before our read.
    let stderrBox = DataBox()
    let stderrDone = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        stderrBox.data = err.fileHandleForReading.readDataToEndOfFile()
        stderrDone.signal()
    }
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
    stderrDone.wait()
    let stderrData = stderrBox.data
    process.waitUntilExit()
    watchdog.cancel()
    return ChildProcessResult(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
                              stderr: String(decoding: stderrData, as: UTF8.self))
}

private final class DataBox: @unchecked Sendable {
    var data = Data()
}
