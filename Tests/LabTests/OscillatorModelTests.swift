import XCTest
@testable import NTPLab

final class OscillatorModelTests: XCTestCase {
    func testCounterIsMonotoneAndRateMatchesSkewOverADay() {
        var parameters = OscillatorParameters()
        parameters.initialCounterNanoseconds = 5 * Span.second
        parameters.skew = 0.2
        var oscillator = OscillatorModel(parameters: parameters, seed: 1)
        var previous = oscillator.counter(atTrueNanoseconds: 0)
        XCTAssertEqual(previous, 5 * Span.second)
        var t: Int64 = 0
        while t < Span.day {
            t += 1_234_567_891  // not aligned with the 1 s segments
            let counter = oscillator.counter(atTrueNanoseconds: t)
            XCTAssertGreaterThanOrEqual(counter, previous)
            previous = counter
        }
        let rate = Double(previous - 5 * Span.second) / Double(t)
        XCTAssertEqual(rate - 1, 0.2, accuracy: 1e-9)
    }

    func testMonotoneWithWanderTemperatureAndErraticRates() {
        var parameters = Scenario.erraticRate.configuration.oscillator
        parameters.wanderPPMPerRootHour = 5  // far stronger than any scenario
        var oscillator = OscillatorModel(parameters: parameters, seed: 77)
        var previous = oscillator.counter(atTrueNanoseconds: 0)
        var t: Int64 = 0
        while t < 6 * Span.hour {
            t += 333_333_333
            let counter = oscillator.counter(atTrueNanoseconds: t)
            XCTAssertGreaterThan(counter, previous)
            previous = counter
        }
    }

    /// Seven days of 1 s segments must land where one multiplication says, to the
    /// nanosecond: the integer-plus-fraction accumulator must not drift.
    func testIntegrationIsExactOverSevenDays() {
        var parameters = OscillatorParameters()
        parameters.initialCounterNanoseconds = 123_456_789
        parameters.rateErrorPPM = 12.5
        var oscillator = OscillatorModel(parameters: parameters, seed: 3)
        let week = 7 * Span.day
        var t: Int64 = 0
        while t < week {
            t = min(week, t + 16 * Span.second + 7)
            _ = oscillator.counter(atTrueNanoseconds: t)
        }
        let counter = oscillator.counter(atTrueNanoseconds: week)
        // Closed form: 12.5 PPM of 604800 s is exactly 7.56 s.
        let expected = 123_456_789 + week + 7_560_000_000
        XCTAssertLessThanOrEqual(abs(counter - expected), 1, "drifted by \(counter - expected) ns")
    }

    /// Where a query falls must not change the counter: segments follow a fixed grid.
    func testCounterDoesNotDependOnQueryPattern() {
        var parameters = Scenario.erraticRate.configuration.oscillator
        parameters.wanderPPMPerRootHour = 0.5
        var fine = OscillatorModel(parameters: parameters, seed: 11)
        var coarse = OscillatorModel(parameters: parameters, seed: 11)
        var fineValues: [Int64: Int64] = [:]
        var t: Int64 = 0
        while t <= 12 * Span.hour {
            fineValues[t] = fine.counter(atTrueNanoseconds: t)
            t += 100 * Span.millisecond
        }
        var checked = 0
        var u: Int64 = 0
        while u <= 12 * Span.hour {
            XCTAssertEqual(coarse.counter(atTrueNanoseconds: u), fineValues[u])
            checked += 1
            u += 997 * Span.second + 300 * Span.millisecond
        }
        XCTAssertGreaterThan(checked, 40)
    }

    /// A sinusoidal cycle sampled over whole periods averages to zero: the mean rate over
    /// a day is the constant rate.
    func testTemperatureCycleAveragesOutOverADay() {
        var parameters = OscillatorParameters()
        parameters.rateErrorPPM = -3
        parameters.rateCycles = [RateCycle(amplitudePPM: 2, periodNanoseconds: Span.day, phaseRadians: 0.7)]
        var oscillator = OscillatorModel(parameters: parameters, seed: 5)
        let quarter = oscillator.counter(atTrueNanoseconds: Span.day / 4)
        let day = oscillator.counter(atTrueNanoseconds: Span.day)
        XCTAssertEqual(Double(day) / Double(Span.day) - 1, -3e-6, accuracy: 1e-9)
        // Over the first quarter the cycle does not cancel: the rate differs visibly.
        XCTAssertGreaterThan(abs(Double(quarter) / Double(Span.day / 4) - 1 + 3e-6), 0.5e-6)
    }

    func testErraticRatesAreAmongConfiguredValuesAndSwitch() {
        var parameters = OscillatorParameters()
        let values = [0.0, 0.1, 0.2, 0.35]
        parameters.erratic = ErraticRate(rateErrors: values, meanDwellNanoseconds: 10 * Span.minute)
        var oscillator = OscillatorModel(parameters: parameters, seed: 9)
        var seen = Set<Double>()
        var t: Int64 = 0
        var switches = 0
        var last = -1.0
        while t < Span.day {
            _ = oscillator.counter(atTrueNanoseconds: t)
            XCTAssertTrue(values.contains(oscillator.currentRateError), "rate \(oscillator.currentRateError)")
            seen.insert(oscillator.currentRateError)
            if oscillator.currentRateError != last { switches += 1; last = oscillator.currentRateError }
            t += 30 * Span.second
        }
        XCTAssertEqual(seen.count, values.count)
        // 144 dwell periods in a day, ~3/4 of them change the value.
        XCTAssertGreaterThan(switches, 60)
        XCTAssertLessThan(switches, 160)
    }

    func testMigrationJumpsAtResumeWithNewRate() {
        var parameters = OscillatorParameters()
        parameters.rateErrorPPM = 4
        let move = Migration(atNanoseconds: 3 * Span.hour + 123, blackoutNanoseconds: 2 * Span.second,
                             counterJumpNanoseconds: -7 * Span.second, newRateErrorPPM: 40)
        parameters.migration = move
        var oscillator = OscillatorModel(parameters: parameters, seed: 2)
        let before = oscillator.counter(atTrueNanoseconds: move.resumeNanoseconds - 1)
        let after = oscillator.counter(atTrueNanoseconds: move.resumeNanoseconds)
        // Old host: the counter kept running through the blackout at +4 PPM.
        let expectedBefore = move.resumeNanoseconds - 1 + Int64((4e-6 * Double(move.resumeNanoseconds - 1)).rounded(.down))
        XCTAssertLessThanOrEqual(abs(before - expectedBefore), 1)
        XCTAssertLessThanOrEqual(abs(after - before - (1 - 7 * Span.second)), 1)
        let later = oscillator.counter(atTrueNanoseconds: move.resumeNanoseconds + Span.hour)
        XCTAssertEqual(Double(later - after) / Double(Span.hour) - 1, 40e-6, accuracy: 1e-9)
        XCTAssertTrue(oscillator.isInBlackout(move.atNanoseconds))
        XCTAssertTrue(oscillator.isInBlackout(move.resumeNanoseconds - 1))
        XCTAssertFalse(oscillator.isInBlackout(move.resumeNanoseconds))
        XCTAssertFalse(oscillator.isInBlackout(move.atNanoseconds - 1))
    }

    func testInverseFindsEarliestTrueTime() {
        var parameters = OscillatorParameters()
        parameters.skew = -0.3  // slower than true time: several ns share one counter value
        parameters.rateCycles = [RateCycle(amplitudePPM: 50, periodNanoseconds: Span.day)]
        var forward = OscillatorModel(parameters: parameters, seed: 4)
        var backward = OscillatorModel(parameters: parameters, seed: 4)
        var t: Int64 = 17
        while t < 2 * Span.hour {
            let counter = forward.counter(atTrueNanoseconds: t)
            guard let found = backward.trueNanoseconds(atCounter: counter) else { return XCTFail("no inverse at \(t)") }
            XCTAssertLessThanOrEqual(found, t)
            var probe = OscillatorModel(parameters: parameters, seed: 4)
            if found > 0 { XCTAssertLessThan(probe.counter(atTrueNanoseconds: found - 1), counter) }
            XCTAssertEqual(probe.counter(atTrueNanoseconds: found), counter)
            t += 7 * Span.minute + 13
        }
        XCTAssertNil(backward.trueNanoseconds(atCounter: -5))
    }
}
