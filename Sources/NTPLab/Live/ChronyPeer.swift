import KernelStamps

/// chronyd as a second client, so a live run compares our filter with a widely used
/// client on the same path (`--compare chrony`): `chronyd -x -d` (never `-x`
/// less: it must not touch the clock) with a configuration in a private temporary directory,
/// polling one server at a fixed poll, serving nobody (`port 0`), answering `tracking` on a
/// private command port on 127.0.0.1, logging tracking/measurements/statistics there too.
public final class ChronyPeer: @unchecked Sendable {
    public let directory: String
    public let commandAddress: SocketAddress
    public let process: ChildProcess
    private let socket: UDPSocket
    private var sequence: UInt32 = 1
    private let receiveBuffer: UnsafeMutableRawBufferPointer

    /// Where chronyd is usually installed (Debian's chrony package).
    public static let candidatePaths = ["/usr/sbin/chronyd", "/usr/bin/chronyd", "/sbin/chronyd", "/usr/local/sbin/chronyd"]
    public static var installedPath: String? { candidatePaths.first(where: isExecutableFile(atPath:)) }

    /// The configuration for servers at `servers` polled every 2^`pollExponent` s.
    public static func configuration(servers: [SocketAddress], pollExponent: Int, commandPort: UInt16, directory: String) -> String {
        let serverLines = servers.map {
            "server \($0.hostDescription) port \($0.port) minpoll \(pollExponent) maxpoll \(pollExponent) iburst"
        }.joined(separator: "\n")
        return """
        # ntplab --compare chrony: a client of the relay only; never serves, never steps (-x).
        \(serverLines)
        port 0
        cmdport \(commandPort)
        bindcmdaddress 127.0.0.1
        bindcmdaddress \(directory)/chronyd.sock
        pidfile \(directory)/chronyd.pid
        driftfile \(directory)/chrony.drift
        logdir \(directory)
        log tracking measurements statistics

        """
    }

    /// Starts chronyd polling `servers`. Throws when chronyd is missing or exits at once.
    public init(servers: [SocketAddress], pollExponent: Int, chronydPath: String? = nil) throws(LabError) {
        guard let path = chronydPath ?? ChronyPeer.installedPath else {
            throw LabError("chronyd not found (looked in \(ChronyPeer.candidatePaths.joined(separator: ", "))): install chrony (apt-get install chrony) or leave out --compare chrony")
        }
        do throws(KernelError) { directory = try makeTemporaryDirectory(prefix: "/tmp/ntplab-chrony-") } catch {
            throw LabError("cannot make chronyd's directory", error)
        }
        let port: UInt16
        do throws(KernelError) {
            let probe = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))
            port = try probe.localAddress().port
            probe.close()
            var options = UDPSocket.Options()
            options.receiveTimestamps = false
            options.receiveTimeoutNanoseconds = 200_000_000
            socket = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)
        } catch {
            throw LabError("chrony command socket", error)
        }
        commandAddress = .loopbackIPv4(port: port)
        try writeTextFile(directory + "/chrony.conf",
                          ChronyPeer.configuration(servers: servers, pollExponent: pollExponent, commandPort: port, directory: directory))
        // -x: never touch the clock. -d: foreground, log to stderr. As root, -u root keeps
        // chronyd from dropping to its own user, who could not write in our 0700 directory;
        // as anyone else, -U allows the unprivileged start.
        let user = runningAsRoot() ? ["-u", "root"] : ["-U"]
        do throws(KernelError) {
            process = try ChildProcess(path: path, arguments: ["-x", "-d"] + user + ["-f", directory + "/chrony.conf"],
                                       logPath: directory + "/chronyd.log")
        } catch {
            throw LabError("chronyd", error)
        }
        receiveBuffer = .allocate(byteCount: 512, alignment: 16)
    }

    deinit {
        stop()
        socket.close()
        receiveBuffer.deallocate()
    }

    /// Stops chronyd. The directory (logs included) stays until `removeDirectory()`.
    public func stop() { process.stop() }

    /// Why chronyd is not running, if it is not.
    public var failure: String? {
        guard let status = process.exitedStatus() else { return nil }
        return "chronyd exited with status \(status): \(lastLine(ofFile: directory + "/chronyd.log"))"
    }

    /// One tracking report with the host realtime read just before sending and just after
    /// the reply; nil when chronyd did not answer within 200 ms (or is not up yet).
    public func tracking() -> (tracking: ChronyTracking, realtimeBefore: Int64, realtimeAfter: Int64)? {
        sequence &+= 1
        let request = ChronyCommandProtocol.trackingRequest(sequence: sequence)
        let before = realtimeNanoseconds()
        do throws(KernelError) {
            try socket.send(request, to: commandAddress)
            while true {
                guard let datagram = try socket.receive(into: receiveBuffer) else { return nil }
                let after = realtimeNanoseconds()
                let bytes = Array(UnsafeRawBufferPointer(rebasing: receiveBuffer[0..<datagram.byteCount]))
                switch ChronyCommandProtocol.trackingReply(bytes, sequence: sequence) {
                case .success(let tracking): return (tracking, before, after)
                case .failure(.wrongSequence): continue   // a late answer to an earlier request
                case .failure: return nil
                }
            }
        } catch {
            return nil
        }
    }

    /// Waits up to `timeoutNanoseconds` for chronyd to answer on its command port.
    public func waitUntilAnswering(timeoutNanoseconds: Int64) throws(LabError) {
        let deadline = clockNanoseconds(.monotonic) + timeoutNanoseconds
        while clockNanoseconds(.monotonic) < deadline {
            if let failure { throw LabError(failure) }
            if tracking() != nil { return }
            sleepNanoseconds(20_000_000)
        }
        throw LabError("chronyd did not answer on its command port \(commandAddress) within \(timeoutNanoseconds / 1_000_000_000) s; see \(directory)/chronyd.log")
    }

    /// Removes the temporary directory and everything in it.
    public func removeDirectory() {
        for name in ["chrony.conf", "chronyd.log", "chronyd.pid", "chronyd.sock", "chrony.drift",
                     "tracking.log", "measurements.log", "statistics.log"] {
            removeFile(atPath: directory + "/" + name)
        }
        removeEmptyDirectory(atPath: directory)
    }
}
