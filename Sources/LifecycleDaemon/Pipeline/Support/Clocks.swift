import Glibc

/// A clock that never jumps, for measuring durations (the wall clock can be set back).
enum MonotonicClock {
    static func microseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int(now.tv_sec) * 1_000_000 + Int(now.tv_nsec) / 1000
    }
}

/// The wall clock, the one the daemon reads: to let caught-up partitions' timers fire, to
/// pace checkpoints, and for health. The engine never reads a clock.
public enum WallClock {
    /// Epoch milliseconds now.
    @Sendable public static func milliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
