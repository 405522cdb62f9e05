#if canImport(Glibc)
import Glibc
#endif

/// Sleeps the calling thread for about `nanoseconds` (nanosleep; an early wake-up by a
/// signal just returns early). For short waits off the hot path, e.g. a reader waiting for a
/// writer to create its file.
public func pauseNanoseconds(_ nanoseconds: Int64) {
    guard nanoseconds > 0 else { return }
    var pause = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    _ = nanosleep(&pause, nil)
}
