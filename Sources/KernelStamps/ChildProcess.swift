#if canImport(Glibc)
import Glibc
#endif

/// A child process started with posix_spawn, its output going to a file (never to a pipe
/// nobody drains). The one place the repository starts other programs (the lab's chronyd);
/// the C strings live only inside `init`.
public final class ChildProcess: @unchecked Sendable {
    public let path: String
    public let processID: pid_t
    private var exitStatus: Int32? = nil

    /// Starts `path` with `arguments`, stdout and stderr appended to `logPath`.
    public init(path: String, arguments: [String], logPath: String) throws(KernelError) {
        self.path = path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO)
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        // The child starts with no signal blocked and default actions, whatever the lab
        // blocked for its own signalfd: chronyd must see SIGTERM.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw KernelError(operation: "start \(path)", code: result)
        }
        processID = pid
    }

    deinit { _ = stop() }

    /// The exit status if the process has ended (reaps it), nil while it runs.
    public func exitedStatus() -> Int32? {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        let result = waitpid(processID, &status, WNOHANG)
        guard result == processID else { return nil }
        exitStatus = ChildProcess.decode(status)
        return exitStatus
    }

    /// SIGTERM, then up to 3 s for it to end, then SIGKILL. Returns the exit status.
    @discardableResult
    public func stop() -> Int32 {
        if let status = exitedStatus() { return status }
        kill(processID, SIGTERM)
        for _ in 0..<300 {
            if let status = exitedStatus() { return status }
            usleep(10_000)
        }
        kill(processID, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(processID, &status, 0)
        exitStatus = ChildProcess.decode(status)
        return exitStatus!
    }

    /// Exit code, or 128 + signal number when killed by a signal.
    private static func decode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}

/// The last non-empty line of a text file (a child's last complaint), or "" if none.
public func lastLine(ofFile path: String) -> String {
    guard let text = try? readTextFile(atPath: path) else { return "" }
    return text.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
}
