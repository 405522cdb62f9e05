import KernelStamps

/// `--metrics ADDR:PORT`: serves `GET /metrics` (Prometheus text format) from a thread of its
/// own. The thread only reads what the tool already publishes (the server's per-worker
/// counter snapshots, the client's state after each exchange) through `render`, so the NTP
/// paths pay nothing for it. Off unless asked for; loopback only unless the user also passes
/// `--metrics-allow-remote`, since the counters tell a stranger how busy and how well
/// synchronised the host is.
public final class MetricsEndpoint: @unchecked Sendable {
    public let boundAddress: SocketAddress
    private let listener: ScrapeListener
    private let stop: Wakeup
    private var thread: StartedThread?

    /// The options every tool with metrics lists.
    public static let options: [OptionSpec] = [
        .value("metrics", "ADDR:PORT", "Serve Prometheus metrics at http://ADDR:PORT/metrics from a thread\nof its own (off by default). Loopback addresses only, unless\n--metrics-allow-remote is given too."),
        .flag("metrics-allow-remote", "Allow --metrics on an address other hosts can reach (the\nmetrics tell how busy and how well synchronised the host is)."),
    ]

    /// The address of `--metrics` checked against `--metrics-allow-remote`; nil when the
    /// option is absent. Errors are usage errors naming the option (or its file and line).
    public static func address(from options: ParsedOptions) throws(UsageError) -> SocketAddress? {
        guard let text = options.string("metrics") else { return nil }
        let address: SocketAddress
        do throws(KernelError) { address = try SocketAddress(parsing: text, defaultPort: 0) } catch {
            throw UsageError("\(options.describe("metrics")) \(text): \(error.description)")
        }
        guard address.port != 0 else {
            throw UsageError("\(options.describe("metrics")) wants ADDR:PORT with a port (e.g. 127.0.0.1:9123), not '\(text)'")
        }
        if !address.isLoopback && !options.has("metrics-allow-remote") {
            throw UsageError("\(options.describe("metrics")) \(text) is reachable from other hosts; use a loopback address (127.0.0.1, [::1]) or add --metrics-allow-remote")
        }
        return address
    }

    /// Binds now (so a taken port fails at start, before serving begins); `start` serves.
    public init(address: SocketAddress) throws(KernelError) {
        listener = try ScrapeListener(bindingTo: address)
        boundAddress = listener.boundAddress
        stop = try Wakeup()
    }

    /// Starts the thread; `render` is called once per scrape, on that thread.
    public func start(render: @escaping @Sendable () -> String) throws(KernelError) {
        let listener = self.listener, stop = self.stop
        thread = try StartedThread(ThreadOptions(name: "metrics")) {
            listener.serve(until: stop) { head in
                let verdict = MetricsRequestVerdict(requestHead: head)
                return verdict.response(isHead: head.hasPrefix("HEAD "), body: render)
            }
        }
    }

    /// Stops and joins the thread, then closes the socket.
    public func shutdown() {
        stop.signal()
        thread?.join()
        thread = nil
        listener.close()
    }
}
