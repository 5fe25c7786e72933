import Glibc

/// Prints progress to standard error for long runs: nothing during the first two seconds,
/// then a line every two seconds.
final class ProgressReporter {
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant
    private var lastPrinted: ContinuousClock.Instant
    private let interval: Duration = .seconds(2)
    private let enabled: Bool

    init(enabled: Bool) {
        self.enabled = enabled
        started = clock.now
        lastPrinted = started
    }

    var elapsedSeconds: Double {
        let elapsed = clock.now - started
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    func report(linesRead: Int, users: Int) {
        guard enabled, clock.now - lastPrinted >= interval else { return }
        lastPrinted = clock.now
        let seconds = elapsedSeconds
        let rate = Int(Double(linesRead) / max(seconds, 0.001))
        StandardError.write("replay: \(linesRead) lines, \(rate) lines/s, \(users) users, \(Int(seconds)) s\n")
    }
}
