import XCTest
import KernelStamps
import NTPLab

/// The live lab in CI: one short lan-stratum1 run with real sockets on loopback,
/// and the check that the lab reads chronyd's clock with the right meaning and sign.
final class LabLiveTests: XCTestCase {
    // MARK: pure parts

    /// chrony's network float (candm.h): coefficient · 2^(exponent − 25), both signed.
    func testChronyFloatDecoding() {
        func word(exponent: Int, coefficient: Int) -> UInt32 {
            UInt32(exponent & 0x7f) << 25 | UInt32(coefficient & 0x1ff_ffff)
        }
        XCTAssertEqual(ChronyCommandProtocol.decodeFloat(word(exponent: 0, coefficient: 1 << 23)), 0.25)
        XCTAssertEqual(ChronyCommandProtocol.decodeFloat(word(exponent: 0, coefficient: -(1 << 23))), -0.25)
        XCTAssertEqual(ChronyCommandProtocol.decodeFloat(word(exponent: -10, coefficient: 3)), 3 * pow(2, -35))
        XCTAssertEqual(ChronyCommandProtocol.decodeFloat(word(exponent: 30, coefficient: 5)), 5 * 32)
        XCTAssertEqual(ChronyCommandProtocol.decodeFloat(0), 0)
    }

    /// A tracking request is padded to the reply's length; a reply is only accepted for the
    /// sequence asked, and its fields come from the offsets candm.h gives.
    func testTrackingRequestAndReply() throws {
        let request = ChronyCommandProtocol.trackingRequest(sequence: 0x0102_0304)
        XCTAssertEqual(request.count, 104)
        XCTAssertEqual(Array(request[0..<12]), [6, 1, 0, 0, 0, 33, 0, 0, 1, 2, 3, 4])

        var reply = [UInt8](repeating: 0, count: 104)
        reply[0] = 6; reply[1] = 2; reply[5] = 33; reply[7] = 5
        reply[16...19] = [1, 2, 3, 4]
        let d = 28
        reply[d + 25] = 1                                  // stratum 1
        reply[d + 28...d + 39] = [0, 0, 0, 0, 0x65, 0, 0, 0, 0, 0, 0, 0]   // ref time 0x65000000 s
        func put(_ k: Int, _ word: UInt32) {
            for b in 0..<4 { reply[d + 40 + 4 * k + b] = UInt8(truncatingIfNeeded: word >> (24 - 8 * UInt32(b))) }
        }
        put(0, UInt32(0) << 25 | UInt32(1 << 23))           // current correction 0.25 s
        put(6, UInt32(0) << 25 | UInt32(1 << 22))           // root delay 0.125 s
        put(7, UInt32(0) << 25 | UInt32(1 << 21))           // root dispersion 0.0625 s
        let tracking = try ChronyCommandProtocol.trackingReply(reply, sequence: 0x0102_0304).get()
        XCTAssertEqual(tracking.currentCorrectionSeconds, 0.25)
        XCTAssertEqual(tracking.maxErrorSeconds, 0.125 / 2 + 0.0625)
        XCTAssertEqual(tracking.stratum, 1)
        XCTAssertEqual(tracking.referenceUnixSeconds, 0x6500_0000)
        XCTAssertTrue(tracking.hasReference)
        XCTAssertEqual(ChronyCommandProtocol.trackingReply(reply, sequence: 9), .failure(.wrongSequence))
        XCTAssertEqual(ChronyCommandProtocol.trackingReply(Array(reply[0..<60]), sequence: 0x0102_0304), .failure(.tooShort(60)))
        reply[9] = 3
        XCTAssertEqual(ChronyCommandProtocol.trackingReply(reply, sequence: 0x0102_0304), .failure(.status(3)))
    }

    /// Migration, live: the blackout at a quarter of the run for its real 1.5 s, then a served
    /// jump of −2.5 s (the counter's +2.5 s) and a served rate of −32.8 PPM (new host +37 PPM
    /// against the old +4.2), the path's level shift at the resume; truth follows.
    func testMigrationPlan() {
        let plan = LivePlan(scenario: Scenario.migration, durationNanoseconds: 600 * Span.second, pollSeconds: 16)
        XCTAssertEqual(plan.blackouts, [LabInterval(startNanoseconds: 150 * Span.second, endNanoseconds: 151_500 * Span.millisecond)])
        XCTAssertEqual(plan.events.map(\.atNanoseconds), [151_500 * Span.millisecond])
        XCTAssertEqual(plan.network.levelShifts.map(\.atNanoseconds), [151_500 * Span.millisecond])
        XCTAssertTrue(plan.network.isInOutage(150_500 * Span.millisecond))
        let origin: Int64 = 1_700_000_000 * Span.second
        let transform = plan.transform(originUnixNanoseconds: origin)
        XCTAssertEqual(transform.correctionNanoseconds(atServerUnixNanoseconds: origin + 151 * Span.second), 0)
        let after = transform.correctionNanoseconds(atServerUnixNanoseconds: origin + 251_500 * Span.millisecond)
        // 100 s at (1 + 4.2e-6) / (1 + 37e-6) − 1 ≈ −32.8 PPM after the −2.5 s jump: −3.28 ms.
        XCTAssertEqual(Double(after + 2_500 * Span.millisecond), -3_279_700, accuracy: 1_000)
        XCTAssertEqual(plan.exchangeCount, 44)  // 8 at 2 s, then every 16 s from 30 s: 30 … 590

        let lan = LivePlan(scenario: Scenario.lanStratum1, durationNanoseconds: 60 * Span.second, pollSeconds: 1)
        XCTAssertTrue(lan.transform(originUnixNanoseconds: origin).isIdentity)
        XCTAssertEqual(lan.exchangeCount, 60)
        XCTAssertEqual(lan.chronyPollExponent, 0)
        let skew = LivePlan(scenario: Scenario.vmSkew, durationNanoseconds: 60 * Span.second, pollSeconds: 1)
        // A counter 20% fast: served time runs at 1/1.2, so 6 s of host time serve 5 s.
        XCTAssertEqual(Double(skew.transform(originUnixNanoseconds: origin).correctionNanoseconds(atServerUnixNanoseconds: origin + 6 * Span.second)),
                       -1e9, accuracy: 2)
    }

    // MARK: live

    /// CI's live run: a minute of lan-stratum1 at poll 1 s through the relay.
    /// Asserts, on samples after the first 10 s (the start-up burst and the filter's first
    /// rate estimate): p99 |error| under 150 µs, and the published bound covering the true
    /// error at every sample, between exchanges included.
    ///
    /// Why 150 µs and not the simulation's 15: one minute at poll 1 s is the filter's warm-up
    /// (its rate estimate is young and it reports 'warmup' throughout), the relay's user-space
    /// hops add their own asymmetry, and this 2-core machine is shared with parallel builds.
    /// Measured on it (debug build, as `swift test` runs it): p99 |error| after warm-up 72 µs
    /// while the relay slept through each packet's delay (sending 100–400 µs late on
    /// average); since it sleeps only until shortly before each departure and spins the rest,
    /// 9–90 µs as an ordinary user with the machine fully loaded by builds (load 6–13 on 2
    /// cores). Bound honesty held in every run: 100%. It runs as root or not.
    ///
    /// Under a sanitizer the accuracy limit is 500 µs: instrumentation slows the in-process
    /// server between reading t3 and the send, and the relay's hops, unevenly per direction.
    /// Measured under ThreadSanitizer: whole-minute p99 87–134 µs, median error +54 µs against
    /// −2 µs in a release build, so 150 µs had too thin a margin there. 500 µs still catches
    /// the failure this test exists for (a clock stuck milliseconds off), and honesty is
    /// asserted unchanged.
    func testShortLiveRunTracksTruthWithinItsBound() throws {
        let result = try Self.shortRun.get()
        let plan = result.plan
        XCTAssertGreaterThanOrEqual(result.acceptedExchanges, 55, "most exchanges should be answered and accepted")
        XCTAssertEqual(result.ours.exchangeSamples, result.exchanges, "one sample per exchange")
        XCTAssertGreaterThan(result.ours.betweenSamples, 200, "the published clock is read every 250 ms")
        XCTAssertEqual(result.ours.boundViolationCount, 0,
                       "maxError must cover the true error at every sample: \(result.ours.boundViolations)")
        var options = plan.figureOptions
        options.warmupNanoseconds = 10 * Span.second
        let steady = Figures(samples: result.ours.samples, options: options)
        let limitNanoseconds: Double = SanitizerRuntime.active == nil ? 150_000 : 500_000
        print("after warm-up: p99 |error| \((steady.p99AbsErrorNanoseconds / 100).rounded() / 10) µs, limit \(Int(limitNanoseconds / 1000)) µs (sanitizer: \(SanitizerRuntime.active?.rawValue ?? "none"))")
        XCTAssertLessThan(steady.p99AbsErrorNanoseconds, limitNanoseconds,
                          "p99 |error| after warm-up (sanitizer: \(SanitizerRuntime.active?.rawValue ?? "none"))")
        XCTAssertEqual(steady.insideBoundShare, 1)
        let relay = result.relayCounters
        XCTAssertEqual(relay.overflowDrops, 0)
        XCTAssertGreaterThanOrEqual(relay.minimumRequestDelayNanoseconds, 70_000, "the model's minimum delay is a floor")
    }

    /// The minute of lan-stratum1 both live tests look at, run once, as `swift test` runs it
    /// (as root or not). The calibration is reported, not enforced, so that each test
    /// asserts its own part.
    private static let shortRun: Result<LiveResult, LabError> = Result { () throws(LabError) in
        let plan = LivePlan(scenario: Scenario.lanStratum1, durationNanoseconds: 60 * Span.second, pollSeconds: 1)
        var options = LiveOptions()
        options.stopOnFailedCalibration = false
        let result = try LiveRunner.run(plan, options: options)
        print(LiveReport.table(result))
        print(LiveReport.latenessHistogramText(result))
        return result
    }

    /// The relay as an instrument, on the same minute: the client's path through it keeps the
    /// model's asymmetry, it records the client's exchanges and
    /// SNTP probes through it, its calibration check fails exactly when the path it delivered
    /// is off the model's by more than the tolerance, and it sleeps between packets (at most
    /// 10% of a core at poll 1 s; measured: well under 1%, 25% allowed under a sanitizer). A
    /// relay that spins for the run fails the CPU limit; a check that misses a bad path fails
    /// the calibration assertions.
    func testRelayKeepsTheModelsPathWithoutOwningACore() throws {
        let result = try Self.shortRun.get()
        let sanitizer = SanitizerRuntime.active
        let path = try XCTUnwrap(result.oursPath, "the relay recorded none of the client's exchanges")
        XCTAssertGreaterThanOrEqual(path.exchanges, 50)
        let probe = try XCTUnwrap(result.oursProbe, "no SNTP probe through the relay was matched to its record")
        XCTAssertGreaterThanOrEqual(probe.probes, 8)
        print("relay added \(path.relayAddedNanoseconds) ns to the client's path and \(probe.labAddedNanoseconds) ns to the probes' "
              + "(tolerance \(result.calibrationToleranceNanoseconds) ns, sanitizer: \(sanitizer?.rawValue ?? "none")); calibration: "
              + (result.calibrationFailures.isEmpty ? "ok" : result.calibrationFailures.joined(separator: "; ")))
        // And the instrument tells: a path or probe check outside the tolerance is reported
        // as a failed calibration (a run stops on it unless told to go on), and one inside it
        // is not.
        let tolerance = result.calibrationToleranceNanoseconds
        // The calibration itself: with the headroom covering the relay's wake-up and a late
        // request's answer held as much longer, the client's path through the relay has the
        // model's asymmetry within the tolerance (median over its exchanges). Under a
        // sanitizer the relay's own sends slow unevenly: 10 µs there.
        let pathLimit = sanitizer == nil ? tolerance : 10_000
        XCTAssertLessThanOrEqual(abs(path.relayAddedNanoseconds), pathLimit,
                                 "the relay gave the client's path \(path.relayAddedNanoseconds) ns of asymmetry the model does not have")
        XCTAssertEqual(abs(path.relayAddedNanoseconds) > tolerance,
                       result.calibrationFailures.contains { $0.hasPrefix("ntpclient's path") },
                       "the path check must fail exactly when the relay added more than the tolerance: \(result.calibrationFailures)")
        XCTAssertEqual(abs(probe.labAddedNanoseconds) > tolerance,
                       result.calibrationFailures.contains { $0.hasPrefix("relay-only check") },
                       "the relay-only check must fail exactly when the probes saw more than the tolerance: \(result.calibrationFailures)")
        let relay = result.relayCounters
        let cpuLimit = sanitizer == nil ? 0.10 : 0.25
        print("relay CPU \(relay.cpuNanoseconds / 1_000_000) ms in \(relay.runningNanoseconds / 1_000_000) ms: "
              + "\((relay.cpuShare * 1000).rounded() / 10)% of a core, limit \(Int(cpuLimit * 100))%")
        XCTAssertGreaterThan(relay.cpuNanoseconds, 0, "the relay's CPU time was not measured")
        XCTAssertGreaterThan(relay.runningNanoseconds, 55 * Span.second)
        XCTAssertLessThanOrEqual(relay.cpuShare, cpuLimit, "the relay should sleep between packets")
    }

    /// The meaning and sign of each clock reading, checked by serving a known offset: the relay
    /// adds +5 ms to every served timestamp, so truth is host clock + 5 ms. chronyd's clock then
    /// holds a correction of ≈ +5 ms ("5 ms slow of NTP time") and ours a system-clock offset
    /// of ≈ −5 ms; read with the right meaning and sign, both errors are near zero. A reading
    /// with the wrong sign would show ≈ ±10 ms, one that ignores the correction ≈ −5 ms.
    func testKnownServedOffsetReadsAsZeroErrorForBothClients() throws {
        guard ChronyPeer.installedPath != nil else {
            print("*** skipped: chronyd not installed (apt-get install chrony); the chrony reading check did not run ***")
            throw XCTSkip("skipped: chronyd not installed (apt-get install chrony)")
        }
        let plan = LivePlan(scenario: Scenario.lanStratum1, durationNanoseconds: 30 * Span.second, pollSeconds: 1,
                            extraServedOffsetNanoseconds: 5 * Span.millisecond)
        var options = LiveOptions()
        options.compareChrony = true
        options.stopOnFailedCalibration = false  // this test is about signs, not microseconds
        let result = try LiveRunner.run(plan, options: options)
        print(LiveReport.table(result))
        let peer = try XCTUnwrap(result.peer)
        XCTAssertGreaterThan(peer.samples.count, 50, "chronyd's clock should be read every 250 ms once it has a reference")
        XCTAssertLessThan(abs(peer.figures.medianErrorNanoseconds), 1_000_000, "chronyd's clock, read as system clock + correction, against host + 5 ms")
        XCTAssertLessThan(abs(result.ours.figures.medianErrorNanoseconds), 1_000_000, "our clock against host + 5 ms")
        // Every response chronyd got carried the offset (so a correction of 0 would be 5 ms off).
        XCTAssertEqual(result.relayCounters.responsesRewritten, result.relayCounters.responsesReceived)
        XCTAssertNotNil(result.peerPath, "chronyd's exchanges went through the relay's second lane")
    }
}
