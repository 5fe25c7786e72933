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
    mutating func record(_ sample: AlertSample, at time: Int64) {
        if kept.last.map({ time - $0.time >= spacing }) ?? true { kept.append((time, sample)) }
        while kept.count >= 2, kept[1].time <= time - window { kept.removeFirst() }
    }

    /// The sample the window ending at `time` starts from; nil while the history is shorter
    /// than the window.
    func base(at time: Int64) -> AlertSample? {
        guard let first = kept.first, first.time <= time - window else { return nil }
        return first.sample
    }

    /// How much history there is at `time` (for "not enough history" reasons).
    func covered(at time: Int64) -> Int64 { kept.first.map { time - $0.time } ?? 0 }
}
