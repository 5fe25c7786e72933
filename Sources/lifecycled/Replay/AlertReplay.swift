import LifecycleCodec
import LifecycleEngine

/// The rules' alerts back-tested in stream time: the replay is sampled at the first event of
/// each stream-time second, at each minute `--until` moves stream time through after the last
/// event (`steps`), and once more when it ends, so the same input gives the same samples,
/// and the same changes, on every run. Replay has no consumer lag: `lag` alerts are never
/// evaluated.
struct AlertReplay {
    static let sampleInterval = Millis.second
    static let untilStep = Millis.minute
    /// Changes listed per alert in the summary; the `--alerts` file has them all.
    static let summaryLimit = 10

    private var evaluator: AlertEvaluator
    /// Refilled at each sample; its buffers are copied only when a history kept the last one.
    private var sample: AlertSample
    private var lastSample = Int64.min
    /// Every change so far, for the summary.
    private(set) var changes: [AlertChange] = []

    init(rules: CompiledRules) {
        evaluator = AlertEvaluator(rules.alerts)
        let triggers = [Int](repeating: 0, count: rules.triggerNames.count)
        sample = AlertSample(
            usersPerStage: [Int](repeating: 0, count: rules.stageNames.count), fired: triggers, converted: triggers, events: 0)
    }

    /// Evaluates the alerts on `session` if a stream-time second has passed since the last
    /// sample, or at the end (`final`); returns the changes.
    mutating func sample(_ session: borrowing ReplaySession, final: Bool = false) -> ArraySlice<AlertChange> {
        let time = session.streamTime
        guard !evaluator.isEmpty, time != .min,
              final || lastSample == .min || time - lastSample >= Self.sampleInterval
        else { return [] }
        lastSample = time
        session.updateAlertSample(&sample)
        let new = evaluator.evaluate(sample, at: time)
        guard !new.isEmpty else { return [] }
        let start = changes.count
        changes += new
        return changes[start...]
    }

    /// Where `--until` stops on its way from the last event's stream time to `until`, so the
    /// alerts see what the timers firing there do; none without alerts.
    func steps(from start: Int64, to until: Int64) -> StrideTo<Int64> {
        guard !evaluator.isEmpty, start != .min else { return stride(from: 0, to: 0, by: Int(Self.untilStep)) }
        return stride(from: start + Self.untilStep, to: until, by: Int(Self.untilStep))
    }

    /// The summary's alert lines: each alert's changes in stream time.
    func lines(indent: String) -> [String] {
        guard !evaluator.isEmpty else { return [] }
        var lines = [indent + "alerts (in stream time: sampled each second with events, each minute of --until):"]
        for alert in evaluator.alerts {
            if evaluator.lagAlerts.contains(alert.name) {
                lines.append(indent + "  \(alert.name): reads lag, which replay does not have: not evaluated")
                continue
            }
            let own = changes.filter { $0.alert == alert.name }
            let listed = own.prefix(Self.summaryLimit).map { describe($0, of: alert) }
            let more = own.count > listed.count ? ", ... \(own.count - listed.count) more (all in --alerts FILE)" : ""
            lines.append(indent + "  \(alert.name): " + (own.isEmpty ? "no changes" : listed.joined(separator: ", ") + more))
        }
        return lines
    }

    /// `firing critical 2026-11-23T10:00:00Z (0.27 > 0.25)`.
    private func describe(_ change: AlertChange, of alert: CompiledAlert) -> String {
        var text = change.state.rawValue + (change.level.map { " \($0.rawValue)" } ?? "") + " " + RFC3339.format(millis: change.at)
        let threshold = change.level.flatMap(alert.threshold)
        if let value = change.value {
            text += " (\(Self.display(value))\(threshold.map { " \($0)" } ?? ""))"
        } else if let reason = change.reason {
            text += " (\(reason))"
        }
        return text
    }

    /// A measure's value to three decimals, whole numbers without a point.
    static func display(_ value: Double) -> String { AlertThreshold.format((value * 1000).rounded() / 1000) }
}
