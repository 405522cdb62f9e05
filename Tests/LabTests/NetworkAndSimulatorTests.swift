import XCTest
@testable import NTPLab
import Randomness

final class NetworkModelTests: XCTestCase {
    func testMinimumDelayIsNeverViolatedAcrossLevelShifts() {
        var parameters = Scenario.loadedLAN.configuration.network
        parameters.levelShifts = [LevelShift(atNanoseconds: Span.hour, forwardDeltaNanoseconds: 300 * Span.microsecond,
                                             backwardDeltaNanoseconds: -30 * Span.microsecond)]
        var network = NetworkModel(parameters: parameters, seed: 12)
        var t: Int64 = 0
        var forwardMinimumSeen = Int64.max
        while t < 2 * Span.hour {
            let minimum = parameters.minimumDelays(atTrueNanoseconds: t)
            if let forward = network.forwardDelay(sentAtNanoseconds: t) {
                XCTAssertGreaterThanOrEqual(forward, minimum.forward)
                if t >= Span.hour { forwardMinimumSeen = min(forwardMinimumSeen, forward) }
            }
            if let backward = network.backwardDelay(sentAtNanoseconds: t + 5_000) {
                XCTAssertGreaterThanOrEqual(backward, minimum.backward)
            }
            t += 250 * Span.millisecond
        }
        XCTAssertEqual(parameters.minimumDelays(atTrueNanoseconds: Span.hour).forward, 370 * Span.microsecond)
        XCTAssertEqual(parameters.minimumDelays(atTrueNanoseconds: Span.hour).backward, 50 * Span.microsecond)
        XCTAssertEqual(parameters.asymmetryNanoseconds(atTrueNanoseconds: 0), -10 * Span.microsecond)
        // The floor is approached, not just respected (14400 packets, 40 µs mean queueing).
        XCTAssertLessThan(forwardMinimumSeen, 371 * Span.microsecond)
    }

    func testLossRateIsWithinStatisticalBounds() {
        let p = 0.02
        let parameters = NetworkParameters(forward: PathParameters(minimumDelayNanoseconds: 1_000, lossProbability: p),
                                           backward: PathParameters(minimumDelayNanoseconds: 1_000))
        var network = NetworkModel(parameters: parameters, seed: 99)
        let n = 200_000
        var lost = 0
        for i in 0..<n where network.forwardDelay(sentAtNanoseconds: Int64(i) * Span.millisecond) == nil { lost += 1 }
        let sigma = (Double(n) * p * (1 - p)).squareRoot()
        XCTAssertLessThan(abs(Double(lost) - Double(n) * p), 5 * sigma, "lost \(lost) of \(n)")
    }

    func testBurstsGiveAHeavyTail() {
        var network = NetworkModel(parameters: Scenario.loadedLAN.configuration.network, seed: 3)
        var delays: [Int64] = []
        var t: Int64 = 0
        while t < 12 * Span.hour {
            if let d = network.forwardDelay(sentAtNanoseconds: t) { delays.append(d) }
            t += Span.second
        }
        delays.sort()
        let median = delays[delays.count / 2]
        let p999 = delays[delays.count * 999 / 1000]
        XCTAssertGreaterThan(p999, 10 * median)
        XCTAssertGreaterThanOrEqual(delays.last!, 2 * Span.millisecond)  // spikes happen
    }
}

final class SimulatorTests: XCTestCase {
    private func run(_ scenario: Scenario) -> [SimulatedExchange] { Array(scenario.simulator()) }

    func testSameSeedGivesIdenticalExchangesAndAnotherSeedDoesNot() {
        let scenario = Scenario.loadedLAN.with(days: 0.25)
        let first = run(scenario)
        let second = run(scenario)
        XCTAssertEqual(first, second)
        let other = run(scenario.with(seed: 12345))
        XCTAssertEqual(first.count, other.count)
        XCTAssertNotEqual(first.map(\.tb), other.map(\.tb))
        XCTAssertNotEqual(first.map(\.tf), other.map(\.tf))
    }

    func testScheduleIsABurstThenThePollPeriod() {
        let exchanges = run(Scenario.lanStratum1.with(days: 1))
        let sent = exchanges.map(\.trueNanosecondsAtTa)
        XCTAssertEqual(Array(sent.prefix(8)), (0..<8).map { Int64($0) * 2 * Span.second })
        XCTAssertEqual(sent[8] - sent[7], 16 * Span.second)
        XCTAssertEqual(sent[100] - sent[99], 16 * Span.second)
        XCTAssertEqual(exchanges.count, 8 + Int((Span.day - 14 * Span.second - 1) / (16 * Span.second)))
        XCTAssertEqual(Array(run(Scenario.lanStratum1.with(days: 0.1, pollSeconds: 64)).map(\.trueNanosecondsAtTa)[8...9]),
                       [14 * Span.second + 64 * Span.second, 14 * Span.second + 128 * Span.second])
    }

    func testStampsAgreeWithTheirTruth() {
        let scenario = Scenario.vmSkew.with(days: 0.5)
        let start = scenario.configuration.startUnixNanoseconds
        var received = 0
        for e in run(scenario) where !e.lost {
            received += 1
            XCTAssertGreaterThan(e.tf, e.ta)
            XCTAssertEqual(e.trueNanosecondsAtTf, e.trueNanosecondsAtTa + e.forwardDelayNanoseconds + (e.te - e.tb) + e.backwardDelayNanoseconds)
            XCTAssertEqual(e.tb, start + e.trueNanosecondsAtTa + e.forwardDelayNanoseconds + e.serverOffsetNanoseconds)
            XCTAssertTrue((2_000...6_000).contains(e.te - e.tb))
            XCTAssertEqual(e.trueUnixNanosecondsAtTf, start + e.trueNanosecondsAtTf)
            // +20% skew: the counter's RTT is 1.2 times the true one (±2 ns of rounding).
            let trueRTT = Double(e.trueNanosecondsAtTf - e.trueNanosecondsAtTa)
            XCTAssertEqual(Double(e.tf - e.ta), trueRTT * 1.2, accuracy: trueRTT * 1e-5 + 2)
        }
        XCTAssertGreaterThan(received, 2_600)
    }

    func testEveryScenarioRunsADay() {
        XCTAssertEqual(Scenario.all.map(\.name), ["lan-stratum1", "lan-thermal", "loaded-lan", "vm-skew", "vm-skew-5", "erratic-rate",
                                                  "migration", "migration-vmclock", "server-outage", "route-change", "server-step", "falseticker"])
        for scenario in Scenario.all {
            XCTAssertEqual(Scenario.named(scenario.name)?.name, scenario.name)
            XCTAssertFalse(scenario.source.isEmpty)
            var count = 0, lost = 0
            for e in scenario.with(days: 1).simulator() {
                count += 1
                if e.lost { lost += 1 }
            }
            XCTAssertGreaterThan(count, 5_000, scenario.name)
            XCTAssertLessThan(Double(lost) / Double(count), 0.06, scenario.name)  // outage: 225 of 5400
        }
        XCTAssertNil(Scenario.named("no-such-scenario"))
    }

    func testOutageYieldsNoExchanges() {
        let scenario = Scenario.serverOutage.with(days: 1)
        let outage = scenario.configuration.network.outages[0]
        var inside = 0
        for e in scenario.simulator() {
            let flight = e.trueNanosecondsAtTa
            if outage.contains(flight) {
                inside += 1
                XCTAssertTrue(e.lost)
                XCTAssertEqual(e.tb, 0)
            }
            if !e.lost { XCTAssertFalse(outage.contains(e.trueNanosecondsAtTf)) }
        }
        XCTAssertEqual(inside, Int(Span.hour / (16 * Span.second)) + 0)
    }

    func testMigrationBlackoutAndJumpInExchanges() {
        let scenario = Scenario.migration.with(days: 1)
        let move = scenario.configuration.oscillator.migration!
        let exchanges = run(scenario)
        XCTAssertFalse(exchanges.contains { move.blackout.contains($0.trueNanosecondsAtTa) })
        let before = exchanges.last { $0.trueNanosecondsAtTa < move.atNanoseconds && !$0.lost }!
        let after = exchanges.first { $0.trueNanosecondsAtTa >= move.resumeNanoseconds && !$0.lost }!
        XCTAssertLessThan(after.trueNanosecondsAtTa - before.trueNanosecondsAtTa, 32 * Span.second + move.blackoutNanoseconds)
        // Counter advance between the two minus the true elapsed time is the jump, plus
        // the rate errors (4.2 PPM before, 37 PPM after) over at most half a minute.
        let counterAdvance = after.ta - before.ta
        let trueAdvance = after.trueNanosecondsAtTa - before.trueNanosecondsAtTa
        XCTAssertEqual(Double(counterAdvance - trueAdvance), Double(move.counterJumpNanoseconds), accuracy: 38e-6 * Double(trueAdvance))
        XCTAssertGreaterThan(Double(counterAdvance - trueAdvance), Double(move.counterJumpNanoseconds) + 4e-6 * Double(trueAdvance))
        // The new host's path: min delay 35 µs longer forward.
        let forwardAfter = exchanges.filter { $0.trueNanosecondsAtTa >= move.resumeNanoseconds && !$0.lost }.map(\.forwardDelayNanoseconds).min()!
        XCTAssertGreaterThanOrEqual(forwardAfter, 105 * Span.microsecond)
        XCTAssertLessThan(forwardAfter, 106 * Span.microsecond)
    }

    func testLevelShiftIsVisibleInMinimumRTT() {
        let scenario = Scenario.routeChange.with(days: 1)
        func minimumRTT(_ from: Int64, _ to: Int64) -> Int64 {
            scenario.simulator().filter { !$0.lost && $0.trueNanosecondsAtTa >= from && $0.trueNanosecondsAtTa < to }
                .map { $0.tf - $0.ta }.min()!
        }
        let base = minimumRTT(6 * Span.hour, 12 * Span.hour)
        let shifted = minimumRTT(12 * Span.hour, 18 * Span.hour)
        let back = minimumRTT(18 * Span.hour, 24 * Span.hour)
        XCTAssertEqual(Double(shifted - base), 500_000, accuracy: 1_000)
        XCTAssertEqual(Double(back - base), 0, accuracy: 1_000)
        XCTAssertGreaterThanOrEqual(base, 150 * Span.microsecond)
    }

    func testServerStepAndUnsynchronisedPeriod() {
        var configuration = Scenario.serverStep.configuration
        configuration.durationNanoseconds = Span.day
        configuration.server.unsynchronised = [LabInterval(startNanoseconds: 20 * Span.hour, endNanoseconds: 21 * Span.hour)]
        configuration.server.unsynchronisedDriftPPM = 10
        for e in Simulator(configuration: configuration) where !e.lost {
            let stamped = e.trueNanosecondsAtTa + e.forwardDelayNanoseconds
            let inUnsync = stamped >= 20 * Span.hour && stamped < 21 * Span.hour
            XCTAssertEqual(e.header.leap, inUnsync ? 3 : 0)
            XCTAssertEqual(e.header.stratum, inUnsync ? 16 : 1)
            let step: Int64 = stamped >= 12 * Span.hour ? 100 * Span.millisecond : 0
            let drift = inUnsync ? Int64(10e-6 * Double(stamped - 20 * Span.hour)) : 0
            XCTAssertEqual(e.serverOffsetNanoseconds, step + drift)
            XCTAssertEqual(e.serverUnixNanosecondsAtTf - e.trueUnixNanosecondsAtTf,
                           (e.trueNanosecondsAtTf >= 12 * Span.hour ? 100 * Span.millisecond : 0)
                           + (inUnsync ? Int64(10e-6 * Double(e.trueNanosecondsAtTf - 20 * Span.hour)) : 0))
        }
    }

    func testOverridesApply() {
        let s = Scenario.migration.with(days: 0.5, seed: 42, pollSeconds: 64)
        XCTAssertEqual(s.configuration.durationNanoseconds, 12 * Span.hour)
        XCTAssertEqual(s.configuration.seed, 42)
        XCTAssertEqual(s.configuration.pollNanoseconds, 64 * Span.second)
        XCTAssertEqual(s.configuration.oscillator, Scenario.migration.configuration.oscillator)
    }

    func testRandomStreamsAreReproducibleAndDistributionsPlausible() {
        var a = SeededRandom(seed: 7, stream: 1), b = SeededRandom(seed: 7, stream: 1), c = SeededRandom(seed: 7, stream: 2)
        let xs = (0..<100).map { _ in a.next() }
        XCTAssertEqual(xs, (0..<100).map { _ in b.next() })
        XCTAssertNotEqual(xs, (0..<100).map { _ in c.next() })
        var r = SeededRandom(seed: 1)
        let n = 100_000
        var sum = 0.0, sumSquares = 0.0, expSum = 0.0, paretoBelow = 0
        for _ in 0..<n {
            let z = r.normal()
            sum += z; sumSquares += z * z
            expSum += r.exponential(mean: 3)
            if r.pareto(scale: 1, shape: 1.5) < 2 { paretoBelow += 1 }
        }
        XCTAssertEqual(sum / Double(n), 0, accuracy: 0.02)
        XCTAssertEqual(sumSquares / Double(n), 1, accuracy: 0.03)
        XCTAssertEqual(expSum / Double(n), 3, accuracy: 0.06)
        // P(X < 2) = 1 − 2^−1.5 = 0.6464
        XCTAssertEqual(Double(paretoBelow) / Double(n), 1 - 1 / (2 as Double).squareRoot() / 2, accuracy: 0.01)
    }
}
