import Foundation
import KernelStamps
import PublishedClock

/// A writer thread that publishes `invariantParameters(k)` for k = 1, 2, … as fast as it
/// can (with an optional busy pause between updates), so readers in other processes meet
/// the sequence lock mid-update as often as possible. `stop()` ends it and returns how many
/// updates it made.
final class BusyPublisher: @unchecked Sendable {
    private let stopFlag = StopFlag()
    private let counter = UpdateCounter()
    private var thread: Thread!

    init(_ writer: PublishedClockWriter, pauseNanoseconds: Int64 = 0) {
        thread = Thread { [stopFlag, counter] in
            var k: Int64 = 1
            while !stopFlag.isSet {
                writer.publish(invariantParameters(k))
                k += 1
                if k & 1023 == 0 { counter.value = k }
                if pauseNanoseconds > 0 {
                    let resume = monotonicRawNanoseconds() + pauseNanoseconds
                    while monotonicRawNanoseconds() < resume {}
                }
            }
            counter.value = k - 1
        }
        thread.start()
    }

    /// Updates published so far (in steps of 1024 while running; exact once stopped).
    var updates: Int64 { counter.value }

    @discardableResult
    func stop() -> Int64 {
        stopFlag.set()
        while !thread.isFinished { usleep(1000) }
        return counter.value
    }
}
