/// Event-to-trigger latency: from the moment the daemon consumed an event to the moment
/// Kafka acknowledged a trigger it caused. Fixed buckets, as Prometheus histograms want.
public struct LatencyHistogram: Sendable, Equatable {
    /// Upper bounds in seconds.
    public static let bounds: [Double] = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// Observations at or below each bound (not cumulative), plus one for above the last.
    public private(set) var buckets = Array(repeating: 0, count: bounds.count + 1)
    public private(set) var count = 0
    public private(set) var sum = 0.0

    public init() {}

    public mutating func observe(seconds: Double) {
        let index = Self.bounds.firstIndex { seconds <= $0 } ?? Self.bounds.count
        buckets[index] += 1
        count += 1
        sum += seconds
    }
}
