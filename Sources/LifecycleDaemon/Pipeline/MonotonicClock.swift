import Glibc

/// A clock that never jumps, for measuring durations (the wall clock can be set back).
enum MonotonicClock {
    static func microseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int(now.tv_sec) * 1_000_000 + Int(now.tv_nsec) / 1000
    }
}
