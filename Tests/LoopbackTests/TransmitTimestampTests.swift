import XCTest
import KernelStamps
import NTPLab
import NTPServer

/// A basic-mode response carries the time it is predicted to leave, and a sample of
/// responses is checked against the kernel's TX stamp. Under a load of full batches the
/// probe client (kernel stamps on its side) must see a sane exchange and the server must
/// have checked some responses and counted what it missed.
final class TransmitTimestampTests: XCTestCase {
    func testProbeBesideLoadAndServerChecksItsTransmitTimestamps() throws {
        var configuration = ServerConfiguration(listenAddresses: [.loopbackIPv4(port: 0)], threads: 1)
        configuration.rateLimit = nil
        configuration.identity.serveUnsynchronised = true
        configuration.transmitCheckEveryResponses = 8
        let loop = try ServingLoop(configuration: configuration)
        try loop.start()
        var load = LoadConfiguration(target: loop.boundAddresses[0], ratePerSecond: 20_000, durationNanoseconds: 1_500_000_000,
                                     clients: 64)
        load.probe = ProbeConfiguration(source: SocketAddress(ipv4: 0x7f00_0002, port: 0), count: 50,
                                        intervalNanoseconds: 10_000_000, startDelayNanoseconds: 200_000_000)
        let report = try runLoad(load)
        let counters = loop.stop()

        let probe = try XCTUnwrap(report.probe)
        XCTAssertEqual(probe.sent, 50)
        XCTAssertGreaterThanOrEqual(probe.answered, 45, "the probe lost more than a few of its 50 requests")
        // A round trip on loopback takes microseconds, never a negative time of more than a
        // miss; the p99 allows a loaded test host its scheduling delays.
        XCTAssertGreaterThan(probe.roundTripMinimumNanoseconds, -50_000)
        XCTAssertLessThan(probe.roundTripMedianNanoseconds, 5_000_000)
        XCTAssertGreaterThan(report.answered, 10_000)
        XCTAssertGreaterThan(counters.transmitChecks, report.answered / 16, "too few responses were checked against their TX stamp")
        XCTAssertLessThanOrEqual(counters.transmitEarlyMisses + counters.transmitLateMisses, counters.transmitChecks)
    }

    /// `--clients 0`: the probe alone, no load socket.
    func testProbeAlone() throws {
        var configuration = ServerConfiguration(listenAddresses: [.loopbackIPv4(port: 0)], threads: 1)
        configuration.rateLimit = nil  // 20 requests in 0.2 s are over the default limit
        configuration.identity.serveUnsynchronised = true
        let loop = try ServingLoop(configuration: configuration)
        try loop.start()
        var load = LoadConfiguration(target: loop.boundAddresses[0], durationNanoseconds: 400_000_000, clients: 0)
        load.probe = ProbeConfiguration(source: SocketAddress(ipv4: 0x7f00_0002, port: 0), count: 20,
                                        intervalNanoseconds: 10_000_000, startDelayNanoseconds: 0)
        let report = try runLoad(load)
        loop.stop()
        XCTAssertEqual(report.sent, 0)
        let probe = try XCTUnwrap(report.probe)
        XCTAssertEqual(probe.sent, 20, "a run without load lasts until the probe has sent everything")
        XCTAssertGreaterThanOrEqual(probe.answered, 18)
    }
}
