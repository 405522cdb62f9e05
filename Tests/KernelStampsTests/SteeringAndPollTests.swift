import XCTest
@testable import KernelStamps

final class SteeringAndPollTests: XCTestCase {
    /// With the steering program, every datagram from one source address reaches the same
    /// member of the SO_REUSEPORT group, whatever its source port; without it the kernel's
    /// 4-tuple hash would spread a client that changes ports over the members.
    func testSteeringKeepsOneAddressOnOneSocket() throws {
        var options = UDPSocket.Options()
        options.reusePort = true
        options.nonBlocking = true
        options.receiveTimestamps = false
        let first = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)
        let address = try first.localAddress()
        let group = [first] + (try (1..<4).map { _ in try UDPSocket(bindingTo: address, options: options) })
        do {
            try first.steerReusePortGroupBySourceAddress(workers: group.count)
        } catch {
            throw XCTSkip("skipped: the kernel refused the steering program: \(error)")
        }
        // 40 senders on 127.0.0.1 (40 source ports) and 40 on 127.0.0.2.
        var senders: [UDPSocket] = []
        for host in [SocketAddress(ipv4: 0x7f00_0001, port: 0), SocketAddress(ipv4: 0x7f00_0002, port: 0)] {
            for _ in 0..<40 { senders.append(try UDPSocket(bindingTo: host, options: UDPSocket.Options())) }
        }
        for sender in senders { try sender.send([1], to: address) }
        let pollSet = PollSet(capacity: group.count)
        for (index, socket) in group.enumerated() { pollSet.watch(socket.fileDescriptor, at: index) }
        var membersBySource: [UInt32: Set<Int>] = [:]
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 64)
        let deadline = clockNanoseconds(.monotonic) + 2_000_000_000
        while received < senders.count && clockNanoseconds(.monotonic) < deadline {
            guard pollSet.wait(count: group.count, timeoutMilliseconds: 100) > 0 else { continue }
            for index in 0..<group.count where pollSet.isReadable(index) {
                while let datagram = try buffer.withUnsafeMutableBytes({ try group[index].receive(into: $0) }) {
                    membersBySource[datagram.source?.ipv4Address ?? 0, default: []].insert(index)
                    received += 1
                }
            }
        }
        XCTAssertEqual(received, senders.count)
        XCTAssertEqual(membersBySource.count, 2)
        for (source, members) in membersBySource {
            XCTAssertEqual(members.count, 1, "source \(String(source, radix: 16)) reached members \(members)")
        }
    }

    /// The poll set reports which entry is ready, and times out when none is.
    func testPollSetReportsTheReadyEntry() throws {
        var options = UDPSocket.Options()
        options.nonBlocking = true
        let a = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)
        let b = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)
        let pollSet = PollSet(capacity: 3)
        pollSet.watch(a.fileDescriptor, at: 0)
        pollSet.watch(b.fileDescriptor, at: 1)
        pollSet.watch(-1, at: 2)
        XCTAssertEqual(pollSet.wait(count: 3, timeoutMilliseconds: 10), 0)
        try a.send([7], to: try b.localAddress())
        XCTAssertEqual(pollSet.wait(count: 3, timeoutMilliseconds: 1000), 1)
        XCTAssertFalse(pollSet.isReadable(0))
        XCTAssertTrue(pollSet.isReadable(1))
        XCTAssertFalse(pollSet.isReady(2))
    }
}
