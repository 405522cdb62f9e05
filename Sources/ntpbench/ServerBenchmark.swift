// `ntpbench server`: proves the serving path allocates nothing per request, and times it.
// Phase 1 drives ServerCore (responder + client table + rate limiter + interleaved state)
// and the transmit patch in a loop; phase 2 drives the real serving loop (ServingLoop: one
// worker thread, recvmmsg → respond → sendmmsg → error queue) over loopback with batches
// from this thread. The malloc counter is process-wide, so phase 2 counts both sides.
import CMallocCounter
import NTPPacket
import NTPServer
import ToolSupport
import KernelStamps
#if canImport(Glibc)
import Glibc
#endif

func runServerBenchmark(_ arguments: [String]) -> Int32 {
    let benchOptions = parseBenchmarkOptions("server", summary: "stratumd's request path, pure core and real serving loop over loopback:\nns per request and heap allocations per request.", options: [
        .value("requests", "N", "Requests in phase 1 (default 2000000); phase 2 sends N/10 over sockets."),
    ], arguments)
    let requests = optionOrExit("server") { () throws(UsageError) in try benchOptions.integer("requests", default: 2_000_000, in: 1000...Int(Int32.max)) }
    guard let probeCount = mallocCounterSelfCheck("server") else { return 1 }

    // ---- Phase 1: the pure core.
    let state = ServerState(leapIndicator: .noWarning, stratum: 1, precision: -24, rootDelay: .zero,
                            rootDispersion: NTPShortTime(rawValue: 1), referenceID: .locl, referenceTimestamp: NTPTimestamp(rawValue: 1 << 40))
    let core = ServerCore(state: state, rateLimit: RateLimit(intervalNanoseconds: 1_000_000, burst: 64))
    let request = UnsafeMutableRawBufferPointer.allocate(byteCount: 48, alignment: 16)
    let response = UnsafeMutableRawPointer.allocate(byteCount: 48, alignment: 16)
    defer { request.deallocate(); response.deallocate() }
    request.initializeMemory(as: UInt8.self, repeating: 0)
    let requestHeader = NTPMutableHeaderBytes(request)!
    requestHeader.setFirstByte(leapIndicatorBits: 0, version: 4, modeBits: NTPMode.client.rawValue)
    var origins = [UInt64](repeating: 0, count: 1024) // per simulated client: last receive we sent
    var sink: UInt64 = 0
    func phase1(_ count: Int) {
        for i in 0..<count {
            let client = i & 1023
            let interleavedClient = client & 3 == 0
            let origin = interleavedClient ? origins[client] : 0
            requestHeader.setTimestamp(NTPTimestamp(rawValue: origin), at: NTPHeaderLayout.originTimestampOffset)
            requestHeader.setTimestamp(NTPTimestamp(rawValue: UInt64(i &+ 7)), at: NTPHeaderLayout.receiveTimestampOffset)
            requestHeader.setTimestamp(NTPTimestamp(rawValue: UInt64(i)), at: NTPHeaderLayout.transmitTimestampOffset)
            let source = SocketAddress(ipv4: 0x0A00_0000 | UInt32(client), port: 123)
            let outcome = core.handle(request: UnsafeRawBufferPointer(request), source: source.key,
                                      receiveUnixNanoseconds: 1_800_000_000_000_000_000 &+ Int64(i) &* 1000,
                                      nowMonotonicNanoseconds: Int64(i) &* 1000, response: response)
            if outcome.needsTransmitPatch {
                NTPResponder.patchTransmitTimestamp(NTPTimestamp(rawValue: UInt64(i) << 8), in: response)
            }
            if outcome.wantsTransmitStamp {
                core.storeTransmitStamp(slot: outcome.slot, receive: outcome.receiveTimestamp,
                                        transmitUnixNanoseconds: 1_800_000_000_000_000_000 &+ Int64(i) &* 1000 &+ 500)
            }
            if interleavedClient && outcome.length > 0 && outcome.kind != .rateKiss { origins[client] = outcome.receiveTimestamp }
            sink &+= response.load(fromByteOffset: 40, as: UInt64.self)
        }
    }
    phase1(10_000) // warm-up
    let before1 = stratum_malloc_count()
    let start1 = monotonicRawNanoseconds()
    phase1(requests)
    let elapsed1 = monotonicRawNanoseconds() - start1
    let allocations1 = stratum_malloc_count() - before1
    let counters1 = core.counters

    // ---- Phase 2: the real serving loop over loopback.
    var configuration = ServerConfiguration(listenAddresses: [.loopbackIPv4(port: 0)], threads: 1)
    configuration.rateLimit = nil
    configuration.identity.serveUnsynchronised = true
    let loop: ServingLoop
    do throws(ServerError) { loop = try ServingLoop(configuration: configuration) } catch {
        printError("ntpbench server: \(error.message)"); return 1
    }
    do throws(ServerError) { try loop.start() } catch {
        printError("ntpbench server: \(error.message)"); return 1
    }
    let target = loop.boundAddresses[0]
    var options = UDPSocket.Options()
    options.receiveTimeoutNanoseconds = 100_000_000
    options.receiveTimestamps = false
    options.receiveBufferBytes = 1 << 20
    let client: UDPSocket
    do throws(KernelError) { client = try UDPSocket(bindingTo: .loopbackIPv4(port: 0), options: options) } catch {
        printError("ntpbench server: \(error.description)"); return 1
    }
    // A second client on its own address speaks interleaved mode (one request in flight).
    let xclient: UDPSocket
    do throws(KernelError) { xclient = try UDPSocket(bindingTo: SocketAddress(ipv4: 0x7f00_0002, port: 0), options: options) } catch {
        printError("ntpbench server: \(error.description)"); return 1
    }
    let sendBatch = SendBatch(capacity: 32, bufferSize: 48)
    let xBatch = SendBatch(capacity: 1, bufferSize: 48)
    let receiveBatch = ReceiveBatch(capacity: 64, bufferSize: 256)
    var answered = 0
    var lastReceive: UInt64 = 0
    var interleavedSeen = 0
    func phase2(_ batches: Int) {
        for b in 0..<batches {
            for k in 0..<32 {
                let header = NTPMutableHeaderBytes(unsafeStart: sendBatch.nextBuffer()!.baseAddress!)
                header.bytes.initializeMemory(as: UInt8.self, repeating: 0)
                header.setFirstByte(leapIndicatorBits: 0, version: 4, modeBits: NTPMode.client.rawValue)
                header.setTimestamp(NTPTimestamp(rawValue: UInt64(b) << 8 | UInt64(k) | 1 << 63), at: NTPHeaderLayout.transmitTimestampOffset)
                sendBatch.commit(length: NTPHeaderLayout.byteCount, to: target)
            }
            _ = try? sendBatch.send(on: client)
            let x = NTPMutableHeaderBytes(unsafeStart: xBatch.nextBuffer()!.baseAddress!)
            x.bytes.initializeMemory(as: UInt8.self, repeating: 0)
            x.setFirstByte(leapIndicatorBits: 0, version: 4, modeBits: NTPMode.client.rawValue)
            x.setTimestamp(NTPTimestamp(rawValue: lastReceive), at: NTPHeaderLayout.originTimestampOffset)
            x.setTimestamp(NTPTimestamp(rawValue: UInt64(b &+ 3)), at: NTPHeaderLayout.receiveTimestampOffset)
            x.setTimestamp(NTPTimestamp(rawValue: UInt64(b &+ 1_000_000)), at: NTPHeaderLayout.transmitTimestampOffset)
            xBatch.commit(length: NTPHeaderLayout.byteCount, to: target)
            _ = try? xBatch.send(on: xclient)
            var got = 0
            while got < 32 {
                let count = (try? receiveBatch.receive(on: client)) ?? 0
                if count == 0 { break }
                got += count
            }
            if (try? receiveBatch.receive(on: xclient)) ?? 0 > 0 {
                let bytes = receiveBatch.bytes(at: 0)
                if bytes.count == NTPHeaderLayout.byteCount, let header = NTPHeaderBytes(bytes) {
                    if header.originTimestamp.rawValue == UInt64(b &+ 3) { interleavedSeen += 1 }
                    lastReceive = header.receiveTimestamp.rawValue
                    got += 1
                }
            }
            answered += got
        }
    }
    phase2(200) // warm-up (and lets kernel RX stamping switch on)
    let batches = max(10, requests / 10 / 32)
    answered = 0
    let before2 = stratum_malloc_count()
    let start2 = monotonicRawNanoseconds()
    phase2(batches)
    let elapsed2 = monotonicRawNanoseconds() - start2
    let allocations2 = stratum_malloc_count() - before2
    let answered2 = answered
    let counters2 = loop.stop()

    print("ntpbench server: heap allocations in the serving path (malloc counter self-check ok: \(probeCount) counted for a known allocation)")
    print("phase 1, ServerCore.handle + transmit patch (1/4 interleaved clients, rate limit on):")
    print("  \(requests) requests, \(Double(elapsed1) / Double(requests)) ns/request, allocations \(allocations1) (\(Double(allocations1) / Double(requests))/request)")
    print("  interleaved \(counters1.interleaved), kisses \(counters1.rateKissesSent), dropped \(counters1.rateLimitedDropped)")
    print("phase 2, ServingLoop over loopback (1 worker; 32-request batches plus one interleaved client):")
    print("  \(batches * 33) requests sent, \(interleavedSeen) interleaved answers seen, \(answered2) answered, \(Double(answered2) * 1e9 / Double(max(1, elapsed2))) answered/s, allocations (both sides) \(allocations2) (\(Double(allocations2) / Double(max(1, answered2)))/request)")
    print("  server counters: \(counters2.summary)")
    if sink == 0x5EED { print("") }
    if allocations1 != 0 || allocations2 != 0 {
        printError("ntpbench server: the serving path allocated; see above")
        return 1
    }
    return 0
}
