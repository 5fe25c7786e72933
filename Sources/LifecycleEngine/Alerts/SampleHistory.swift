/// Past samples for one window length: a window's count is the current sample minus the
/// newest kept sample at least one window old. Samples are kept about `window / 60` apart,
/// so a window of W covers between W and W + W/60 (plus the sampling interval) of history,
/// in at most 62 samples whatever the window.
struct SampleHistory: Sendable {
    static let samplesPerWindow: Int64 = 60

    let window: Int64
    private let spacing: Int64
    /// Oldest first; the first is the newest at or before the last time minus the window.
    private var kept: [(time: Int64, sample: AlertSample)] = []

    init(window: Int64) {
        self.window = window
        spacing = max(1, window / Self.samplesPerWindow)
    }

    /// Keeps `sample` if it is `spacing` after the last one kept, and forgets the samples no
    /// window can start from any more. Times never decrease.
    mutating func record(_ sample: borrowing AlertSample, at time: Int64) {
        if kept.isEmpty || time - kept[kept.count - 1].time >= spacing { kept.append((time, copy sample)) }
        while kept.count >= 2, kept[1].time <= time - window { kept.removeFirst() }
    }

    /// A windowed alert's measure over the window ending at `time`, from the newest kept
    /// sample at least one window old (read in place: replay reads it at nearly every event);
    /// the reason instead while the history is shorter than the window or below `min_volume`.
    func read(_ alert: borrowing CompiledAlert, _ sample: borrowing AlertSample, at time: Int64) -> Result<Double, AlertSkipped> {
        guard !kept.isEmpty, kept[0].time <= time - window else {
            let covered = kept.isEmpty ? 0 : time - kept[0].time
            return .failure(.notEnoughHistory(window: window, covered: covered / Millis.second * Millis.second))
        }
        if let minVolume = alert.minVolume, let volume = alert.measure.volume(sample, since: kept[0].sample), volume.count < minVolume {
            return .failure(.belowMinVolume(count: volume.count, minVolume: minVolume, unit: volume.unit, window: window))
        }
        return alert.measure.value(sample, since: kept[0].sample)
    }
}
