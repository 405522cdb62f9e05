import XCTest
import Foundation
@testable import KernelStamps
#if canImport(Glibc)
import Glibc
#endif

final class SocketTests: XCTestCase {
    /// The first timestamping socket on a quiet host turns kernel stamping on through a
    /// deferred static key; until it is on, datagrams carry no stamp (see
    /// `UDPSocket.enableReceiveTimestamps`). Wait (bounded) until a probe comes back stamped.
    /// The kernel also turns stamping off (deferred) once the last timestamping socket
    /// closes, so the probe stays open for the whole class, as ntpclient keeps one open for
    /// its lifetime: a test that opens its own socket then never races the static key.
    nonisolated(unsafe) static var stampingKeeper: UDPSocket?

    override class func setUp() {
        super.setUp()
        guard let socket = try? UDPSocket(bindingTo: .loopbackIPv4(port: 0)),
              let address = try? socket.localAddress() else { return }
        stampingKeeper = socket
        try? socket.setReceiveTimeout(nanoseconds: 100_000_000)
        var buffer = [UInt8](repeating: 0, count: 16)
        for _ in 0..<100 {
            _ = try? socket.send([0], to: address)
            let got = try? buffer.withUnsafeMutableBytes { try socket.receive(into: $0) }
            if got?.receiveRealtimeNanoseconds != nil { return }
            usleep(10_000)
        }
    }

    func makeReceiver(_ family: SocketAddress.Family = .ipv4) throws -> (UDPSocket, SocketAddress) {
        var options = UDPSocket.Options()
        options.receiveTimeoutNanoseconds = 2_000_000_000
        let bindAddress: SocketAddress = family == .ipv4 ? .loopbackIPv4(port: 0) : .loopbackIPv6(port: 0)
        let socket = try UDPSocket(bindingTo: bindAddress, options: options)
        return (socket, try socket.localAddress())
    }

    func testReceiveStampLiesBetweenReads() throws {
        let (receiver, address) = try makeReceiver()
        XCTAssertNotEqual(address.port, 0)
        let sender = try UDPSocket(family: .ipv4)
        let payload: [UInt8] = Array(0..<48)
        let before = realtimeNanoseconds()
        try sender.send(payload, to: address)
        var buffer = [UInt8](repeating: 0, count: 2048)
        let datagram = try buffer.withUnsafeMutableBytes { try receiver.receive(into: $0) }
        let after = realtimeNanoseconds()
        let received = try XCTUnwrap(datagram)
        XCTAssertEqual(received.byteCount, 48)
        XCTAssertEqual(Array(buffer[0..<48]), payload)
        XCTAssertFalse(received.truncated)
        let stamp = try XCTUnwrap(received.receiveRealtimeNanoseconds, "no kernel RX stamp")
        XCTAssertGreaterThanOrEqual(stamp, before)
        XCTAssertLessThanOrEqual(stamp, after)
        let source = try XCTUnwrap(received.source)
        XCTAssertEqual(source.ipv4Address, 0x7f00_0001)
    }

    func testTransmitStampsCarryOptIDAndLieBetweenReads() throws {
        let (receiver, address) = try makeReceiver()
        var options = UDPSocket.Options()
        options.transmitTimestamps = true
        let sender = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)
        var windows: [(UInt32, Int64, Int64)] = []
        for i in 0..<3 {
            let before = realtimeNanoseconds()
            let id = try sender.send([UInt8(i)], to: address)
            let stamp = try XCTUnwrap(try sender.waitForTransmitTimestamp(timeoutNanoseconds: 1_000_000_000), "no TX stamp \(i)")
            let after = realtimeNanoseconds()
            XCTAssertEqual(id, UInt32(i))
            XCTAssertEqual(stamp.id, id)
            XCTAssertGreaterThanOrEqual(stamp.realtimeNanoseconds, before)
            XCTAssertLessThanOrEqual(stamp.realtimeNanoseconds, after)
            windows.append((id, before, after))
        }
        XCTAssertEqual(sender.nextTransmitID, 3)
        // A sendmmsg batch: each message gets its own key, continuing the count.
        let batch = SendBatch(capacity: 4, bufferSize: 64)
        for i in 0..<4 { XCTAssertTrue([UInt8(10 + i)].withUnsafeBytes { batch.append($0, to: address) }) }
        let result = try batch.send(on: sender)
        XCTAssertEqual(result, SendBatch.Result(sent: 4, firstTransmitID: 3, stampedCount: 4))
        var ids: [UInt32] = []
        while ids.count < 4, let stamp = try sender.waitForTransmitTimestamp(timeoutNanoseconds: 1_000_000_000) {
            ids.append(stamp.id)
        }
        XCTAssertEqual(ids, [3, 4, 5, 6])
        XCTAssertEqual(sender.nextTransmitID, 7)
        XCTAssertNil(try sender.receiveTransmitTimestamp())
        _ = receiver
    }

    /// With stamps on request, only the messages that carry the request are stamped, and the
    /// key (and `nextTransmitID`) counts only those: the server relies on this to match a
    /// stamp to the interleaved client it belongs to.
    func testTransmitStampsOnRequestStampOnlyTheAskingMessages() throws {
        let (receiver, address) = try makeReceiver()
        var options = UDPSocket.Options()
        options.transmitTimestampsOnRequest = true
        let sender = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)
        // A plain single send asks for nothing and takes no key.
        XCTAssertEqual(try sender.send([0], to: address), 0)
        XCTAssertEqual(sender.nextTransmitID, 0)
        let batch = SendBatch(capacity: 6, bufferSize: 64)
        let asks = [false, true, false, true, true, false]
        for (i, ask) in asks.enumerated() {
            XCTAssertTrue([UInt8(20 + i)].withUnsafeBytes { batch.append($0, to: address, requestingTransmitTimestamp: ask) })
        }
        let before = realtimeNanoseconds()
        let first = try batch.send(on: sender)
        XCTAssertEqual(first, SendBatch.Result(sent: 6, firstTransmitID: 0, stampedCount: 3))
        XCTAssertEqual(sender.nextTransmitID, 3)
        // A second batch continues the count from where the first left it.
        for (i, ask) in [true, false].enumerated() {
            XCTAssertTrue([UInt8(30 + i)].withUnsafeBytes { batch.append($0, to: address, requestingTransmitTimestamp: ask) })
        }
        let second = try batch.send(on: sender)
        XCTAssertEqual(second, SendBatch.Result(sent: 2, firstTransmitID: 3, stampedCount: 1))
        XCTAssertEqual(sender.nextTransmitID, 4)
        var ids: [UInt32] = []
        while ids.count < 5, let stamp = try sender.waitForTransmitTimestamp(timeoutNanoseconds: 1_000_000_000) {
            XCTAssertGreaterThanOrEqual(stamp.realtimeNanoseconds, before)
            ids.append(stamp.id)
        }
        XCTAssertEqual(ids, [0, 1, 2, 3], "one stamp per asking message, keyed in order")
        XCTAssertNil(try sender.receiveTransmitTimestamp())
        _ = receiver
    }

    func testBatchOfEightFromTwoSockets() throws {
        let (receiver, address) = try makeReceiver()
        let a = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))
        let b = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))
        let addressA = try a.localAddress(), addressB = try b.localAddress()
        let before = realtimeNanoseconds()
        for i in 0..<8 {
            let payload = [UInt8](repeating: UInt8(i), count: 10 + i)
            try (i % 2 == 0 ? a : b).send(payload, to: address)
        }
        let batch = ReceiveBatch(capacity: 16, bufferSize: 2048)
        var seen = 0
        var order: [Int] = []
        while seen < 8 {
            let count = try batch.receive(on: receiver)
            XCTAssertGreaterThan(count, 0, "timed out after \(seen) datagrams")
            if count == 0 { break }
            for j in 0..<count {
                let bytes = batch.bytes(at: j)
                let i = Int(bytes[0])
                order.append(i)
                XCTAssertEqual(bytes.count, 10 + i)
                XCTAssertTrue(bytes.allSatisfy { $0 == UInt8(i) })
                XCTAssertEqual(batch.sourceAddress(at: j), i % 2 == 0 ? addressA : addressB)
                XCTAssertFalse(batch.isTruncated(at: j))
                let stamp = batch.receiveRealtimeNanoseconds(at: j)
                XCTAssertGreaterThanOrEqual(stamp, before)
                XCTAssertLessThanOrEqual(stamp, realtimeNanoseconds())
            }
            seen += count
        }
        XCTAssertEqual(order, Array(0..<8))
    }

    func testSendBatchReachesEachDestination() throws {
        let (r1, a1) = try makeReceiver()
        let (r2, a2) = try makeReceiver()
        let sender = try UDPSocket(family: .ipv4)
        let batch = SendBatch(capacity: 3, bufferSize: 16)
        for (i, destination) in [a1, a2, a1].enumerated() {
            let buffer = try XCTUnwrap(batch.nextBuffer())
            buffer[0] = UInt8(i); buffer[1] = 0xee
            batch.commit(length: 2, to: destination)
        }
        XCTAssertTrue(batch.isFull)
        XCTAssertNil(batch.nextBuffer())
        XCTAssertEqual(try batch.send(on: sender).sent, 3)
        XCTAssertEqual(batch.count, 0)
        var buffer = [UInt8](repeating: 0, count: 16)
        var firsts: [UInt8] = []
        for receiver in [r1, r1, r2] {
            let got = try buffer.withUnsafeMutableBytes { try receiver.receive(into: $0) }
            XCTAssertEqual(got?.byteCount, 2)
            firsts.append(buffer[0])
        }
        XCTAssertEqual(firsts, [0, 2, 1])
    }

    func testIPv6Loopback() throws {
        let probe: UDPSocket
        do {
            probe = try UDPSocket(bindingTo: .loopbackIPv6(port: 0))
        } catch {
            throw XCTSkip("SKIPPED LOUDLY: IPv6 ::1 unavailable on this host: \(error)")
        }
        probe.close()
        let (receiver, address) = try makeReceiver(.ipv6)
        XCTAssertEqual(address.family, .ipv6)
        let sender = try UDPSocket(bindingTo: .loopbackIPv6(port: 0))
        let senderAddress = try sender.localAddress()
        let before = realtimeNanoseconds()
        try sender.send([1, 2, 3, 4, 5, 6], to: address)
        let batch = ReceiveBatch(capacity: 4)
        XCTAssertEqual(try batch.receive(on: receiver), 1)
        XCTAssertEqual(Array(batch.bytes(at: 0)), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(batch.sourceAddress(at: 0), senderAddress)
        XCTAssertEqual(batch.sourceAddress(at: 0)?.description, "[::1]:\(senderAddress.port)")
        XCTAssertGreaterThanOrEqual(batch.receiveRealtimeNanoseconds(at: 0), before)
        XCTAssertLessThanOrEqual(batch.receiveRealtimeNanoseconds(at: 0), realtimeNanoseconds())
    }

    func testBindingABoundPortNamesAddressAndErrno() throws {
        let (first, address) = try makeReceiver()
        XCTAssertThrowsError(try UDPSocket(bindingTo: address)) { error in
            guard let error = error as? KernelError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.code, EADDRINUSE)
            XCTAssertTrue(error.description.hasPrefix("bind \(address): "), error.description)
            XCTAssertTrue(error.description.contains(String(cString: strerror(EADDRINUSE))), error.description)
            XCTAssertNotNil(error.hint)
        }
        _ = first
        // With SO_REUSEPORT on both sockets the same address binds twice.
        var options = UDPSocket.Options()
        options.reusePort = true
        let shared = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)
        let sharedAddress = try shared.localAddress()
        XCTAssertNoThrow(try UDPSocket(bindingTo: sharedAddress, options: options))
    }

    func testNonBlockingReceiveReturnsNothingAndWakeupWakes() throws {
        var options = UDPSocket.Options()
        options.nonBlocking = true
        let socket = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)
        var buffer = [UInt8](repeating: 0, count: 64)
        XCTAssertNil(try buffer.withUnsafeMutableBytes { try socket.receive(into: $0) })
        XCTAssertEqual(try ReceiveBatch(capacity: 2).receive(on: socket), 0)
        XCTAssertEqual(try socket.waitUntilReadable(timeoutNanoseconds: 0), [])
        let wakeup = try Wakeup()
        XCTAssertFalse(wakeup.isSignalled)
        let thread = Thread { wakeup.signal() }
        thread.start()
        let readiness = try socket.waitUntilReadable(timeoutNanoseconds: 5_000_000_000, wakeup: wakeup)
        XCTAssertEqual(readiness, .woken)
        XCTAssertTrue(wakeup.isSignalled)
        XCTAssertTrue(wakeup.drain())
        XCTAssertFalse(wakeup.isSignalled)
        try socket.send([7], to: try socket.localAddress())
        XCTAssertEqual(try socket.waitUntilReadable(timeoutNanoseconds: 1_000_000_000, wakeup: wakeup), .readable)
    }

    /// A thread blocked in recvmmsg (no timeout) returns when another thread shuts the
    /// socket's receive side, with one empty datagram, and a datagram queued before the
    /// shutdown is still delivered first.
    func testShutdownReceivingWakesABlockedBatchReceive() throws {
        let socket = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))
        let batch = ReceiveBatch(capacity: 4)
        let started = Date()
        let thread = Thread { usleep(100_000); socket.shutdownReceiving() }
        thread.start()
        XCTAssertEqual(try batch.receive(on: socket), 1)
        XCTAssertEqual(batch.bytes(at: 0).count, 0)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.09, "returned before the shutdown")
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)

        let queued = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))
        try queued.send([1, 2, 3], to: try queued.localAddress())
        usleep(10_000)
        queued.shutdownReceiving()
        XCTAssertEqual(try batch.receive(on: queued), 1)
        XCTAssertEqual(Array(batch.bytes(at: 0)), [1, 2, 3])
    }

    /// `dontFragment` sets IP_PMTUDISC_DO on IPv4 sockets (DF on every datagram) and leaves
    /// the kernel's default otherwise; IPv6 sockets ignore it.
    func testDontFragmentSetsPathMTUDiscoveryDo() throws {
        func discovery(_ socket: UDPSocket) -> Int32 {
            var value: Int32 = -1
            var length = socklen_t(MemoryLayout<Int32>.size)
            XCTAssertEqual(getsockopt(socket.fileDescriptor, Int32(IPPROTO_IP), IP_MTU_DISCOVER, &value, &length), 0)
            return value
        }
        var options = UDPSocket.Options()
        options.dontFragment = true
        XCTAssertEqual(discovery(try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options)), IP_PMTUDISC_DO)
        XCTAssertNotEqual(discovery(try UDPSocket(bindingTo: .loopbackIPv4(port: 0))), IP_PMTUDISC_DO)
        let v6 = try UDPSocket(bindingTo: .loopbackIPv6(port: 0), options: options)
        try v6.send([9], to: try v6.localAddress())
    }

    func testConnectedSocketSeesRefusal() throws {
        // A port with nothing bound: bind, note the port, close.
        let temporary = try UDPSocket(bindingTo: .loopbackIPv4(port: 0))
        let dead = try temporary.localAddress()
        temporary.close()
        let socket = try UDPSocket(family: .ipv4)
        try socket.setReceiveTimeout(nanoseconds: 1_000_000_000)
        try socket.connect(to: dead)
        try socket.send([1])
        var buffer = [UInt8](repeating: 0, count: 8)
        XCTAssertThrowsError(try buffer.withUnsafeMutableBytes { try socket.receive(into: $0) }) { error in
            XCTAssertEqual((error as? KernelError)?.code, ECONNREFUSED)
            XCTAssertTrue("\(error)".contains("nothing is listening"), "\(error)")
        }
    }
}
