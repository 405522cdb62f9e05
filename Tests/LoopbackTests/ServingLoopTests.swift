import XCTest
import Foundation
import KernelStamps
import NTPPacket
import NTPServer

/// A worker owns one socket and sleeps in its own recvmmsg. It must still stop at once, count
/// nothing false when its socket is shut, and read a response's TX stamp back before the same
/// client's next request, although the stamp does not wake it.
final class ServingLoopTests: XCTestCase {
    struct NoResponse: Error { let server: SocketAddress }

    private func configuration(_ addresses: [SocketAddress]) -> ServerConfiguration {
        var configuration = ServerConfiguration(listenAddresses: addresses, threads: 1)
        configuration.rateLimit = nil
        configuration.identity.serveUnsynchronised = true
        return configuration
    }

    /// One exchange from `client`: sends `request`, returns the decoded response and the
    /// client's kernel RX stamp of it.
    private func exchange(_ client: UDPSocket, to server: SocketAddress, _ request: NTPHeader,
                          file: StaticString = #filePath, line: UInt = #line) throws -> (NTPHeader, Int64) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        defer { buffer.deallocate() }
        _ = try request.encode(into: buffer)
        try client.send(UnsafeRawBufferPointer(rebasing: buffer[0..<NTPHeader.byteCount]), to: server)
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            if let received = try client.receive(into: buffer), received.source == server {
                let header = try NTPHeader(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<received.byteCount]))
                return (header, try XCTUnwrap(received.receiveRealtimeNanoseconds, "no RX stamp", file: file, line: line))
            }
        }
        throw NoResponse(server: server)
    }

    private func client() throws -> UDPSocket {
        var options = UDPSocket.Options()
        options.receiveTimeoutNanoseconds = 100_000_000
        return try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)
    }

    func testWorkerWaitingInItsReceiveStopsAtOnceAndCountsNothingFalse() throws {
        let loop = try ServingLoop(configuration: configuration([.loopbackIPv4(port: 0)]))
        try loop.start()
        let client = try client()
        for i in 0..<5 {
            let (response, _) = try exchange(client, to: loop.boundAddresses[0],
                                             NTPHeader(transmitTimestamp: NTPTimestamp(rawValue: 0x1234_0000 + UInt64(i))))
            XCTAssertEqual(response.originTimestamp.rawValue, 0x1234_0000 + UInt64(i))
        }
        // Idle long enough that the worker is asleep in recvmmsg, well short of its
        // once-a-second receive timeout: only the shutdown of its socket can wake it in time.
        Thread.sleep(forTimeInterval: 0.2)
        let started = Date()
        let counters = loop.stop()
        let took = Date().timeIntervalSince(started)
        XCTAssertLessThan(took, 0.5, "stop waited for the receive timeout instead of waking the worker")
        XCTAssertEqual(counters.received, 5, "the shut-down socket's empty read was counted as a datagram")
        XCTAssertEqual(counters.malformed, 0)
        XCTAssertEqual(counters.answered, 5)
    }

    /// RFC 9769: the third request of an interleaved client, sent after an idle gap, must get
    /// the kernel TX stamp of the second response as its transmit timestamp. The worker sleeps
    /// in recvmmsg between them and the stamp on the error queue does not wake it: the loop
    /// itself must read the error queue around its batches.
    func testInterleavedStampIsReadBeforeTheNextRequestAfterAnIdleGap() throws {
        let loop = try ServingLoop(configuration: configuration([.loopbackIPv4(port: 0)]))
        try loop.start()
        defer { loop.stop() }
        let server = loop.boundAddresses[0]
        let client = try client()
        // Basic request: the server keeps its receive timestamp for this client.
        let (first, _) = try exchange(client, to: server, NTPHeader(transmitTimestamp: NTPTimestamp(rawValue: 0xA000_0001)))
        Thread.sleep(forTimeInterval: 0.1)
        // Origin = the last response's receive: an interleaved client. The server asks for the
        // TX stamp of this response but has none to send yet.
        let (second, secondArrival) = try exchange(client, to: server, NTPHeader(
            originTimestamp: first.receiveTimestamp, receiveTimestamp: NTPTimestamp(rawValue: 0xB000_0001),
            transmitTimestamp: NTPTimestamp(rawValue: 0xA000_0002)))
        Thread.sleep(forTimeInterval: 0.1)
        let (third, _) = try exchange(client, to: server, NTPHeader(
            originTimestamp: second.receiveTimestamp, receiveTimestamp: NTPTimestamp(rawValue: 0xB000_0002),
            transmitTimestamp: NTPTimestamp(rawValue: 0xA000_0003)))
        XCTAssertEqual(third.originTimestamp.rawValue, 0xB000_0002, "the third response is not interleaved (RFC 9769: origin = request's receive)")
        let stamp = third.transmitTimestamp.unixNanoseconds(nearestTo: secondArrival)
        // The second response left before the client received it, and not long before.
        XCTAssertLessThanOrEqual(stamp, secondArrival)
        XCTAssertGreaterThan(stamp, secondArrival - 50_000_000)
        XCTAssertGreaterThanOrEqual(loop.stop().interleaved, 1)
    }

    /// Each listen address has its own workers, each asleep in its own receive.
    func testEachListenAddressHasItsOwnWorkersThatAnswerAndStop() throws {
        let first = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: UDPSocket.Options())
        let second = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: UDPSocket.Options())
        let ports = [try first.localAddress(), try second.localAddress()]
        first.close(); second.close()
        var twoEach = configuration(ports)
        twoEach.threads = 2
        let loop = try ServingLoop(configuration: twoEach)
        XCTAssertEqual(loop.workerCount, 4)
        try loop.start()
        let client = try client()
        for (i, address) in loop.boundAddresses.enumerated() {
            let (response, _) = try exchange(client, to: address, NTPHeader(transmitTimestamp: NTPTimestamp(rawValue: 0xC000 + UInt64(i))))
            XCTAssertEqual(response.originTimestamp.rawValue, 0xC000 + UInt64(i), "no answer on \(address)")
        }
        Thread.sleep(forTimeInterval: 0.2)
        let started = Date()
        let counters = loop.stop()
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.5)
        XCTAssertEqual(counters.answered, 2)
    }
}
