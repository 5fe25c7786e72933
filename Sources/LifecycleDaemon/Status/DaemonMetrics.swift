import LifecycleEngine
import Metrics

/// The daemon's metrics as swift-metrics handles, made by an injected factory rather than
/// the process-wide `MetricsSystem`: that can be bootstrapped only once, and tests run many
/// pipelines in one process. A handle's swift-metrics label is its Prometheus name.
///
/// Counters are not touched per event (each touch is an atomic or a lock): each processing
/// thread counts in `PipelineCounters`, plain integers of its own, and `update` pushes what
/// their sum gained when the coordinator publishes. Only the latency histogram is
/// recorded as things happen, once per acknowledged trigger. A handle per label value is
/// made the first time it is needed and kept.
public final class DaemonMetrics {
    public static let triggersFiredLabel = "lifecycled_triggers_fired_total"
    public static let conversionsLabel = "lifecycled_trigger_conversions_total"

    public static let latencyLabel = "lifecycled_event_to_trigger_seconds"
    /// The latency histogram's bucket bounds (the factory decides buckets, by label).
    public static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    private let factory: any MetricsFactory
    private let eventsConsumed: Counter
    private var eventsInvalid: Labeled<String, Counter>
    private let eventsLate: Counter
    private let keyMismatches: Counter
    private var triggersFired: Labeled<TriggerArm, Counter>
    private var conversions: Labeled<TriggerArm, Counter>
    private let checkpoints: Counter
    private let rebalances: Counter
    private let deadLettersFailed: Counter
    private let kafkaErrors: Counter
    private let changelogRecords: Counter
    private let changelogBytes: Counter
    private let restores: Counter
    private let restoredRecords: Counter
    private var restoreRemaining: Labeled<String, Gauge>
    private let usersTracked: Gauge
    private let stateBytes: Gauge
    private var usersPerStage: Labeled<String, Gauge>
    private var consumerLag: Labeled<String, Gauge>
    private var alertStates: Labeled<String, Gauge>
    /// Made at the first commit cycle: before it there is no duration or age to show.
    private var checkpointGauges: (duration: Gauge, age: Gauge)?
    private let ready: Gauge
    /// Event-to-trigger latency, recorded as each trigger is acknowledged.
    let latency: Timer
    /// The counters as of the last `update`.
    private var pushed = PipelineCounters()

    /// Makes every handle whose label values are known up front, so those series show from the
    /// start: each trigger's treatment arm, and its control arm if it has a holdout.
    init(factory: any MetricsFactory, triggers: [TriggerArm], stages: [String]) {
        self.factory = factory
        eventsConsumed = Counter(label: "lifecycled_events_consumed_total", factory: factory)
        eventsInvalid = Labeled { Counter(label: "lifecycled_events_invalid_total", dimensions: [("reason", $0)], factory: factory) }
        eventsLate = Counter(label: "lifecycled_events_late_total", factory: factory)
        keyMismatches = Counter(label: "lifecycled_events_key_mismatch_total", factory: factory)
        triggersFired = Labeled { Counter(label: Self.triggersFiredLabel, dimensions: Self.dimensions($0), factory: factory) }
        conversions = Labeled { Counter(label: Self.conversionsLabel, dimensions: Self.dimensions($0), factory: factory) }
        checkpoints = Counter(label: "lifecycled_checkpoints_total", factory: factory)
        rebalances = Counter(label: "lifecycled_rebalances_total", factory: factory)
        deadLettersFailed = Counter(label: "lifecycled_dead_letters_failed_total", factory: factory)
        kafkaErrors = Counter(label: "lifecycled_kafka_errors_total", factory: factory)
        changelogRecords = Counter(label: "lifecycled_changelog_records_total", factory: factory)
        changelogBytes = Counter(label: "lifecycled_changelog_bytes_total", factory: factory)
        restores = Counter(label: "lifecycled_restores_total", factory: factory)
        restoredRecords = Counter(label: "lifecycled_restore_records_total", factory: factory)
        restoreRemaining = Labeled { Gauge(label: "lifecycled_restore_remaining_records", dimensions: [("partition", $0)], factory: factory) }
        usersTracked = Gauge(label: "lifecycled_users_tracked", factory: factory)
        stateBytes = Gauge(label: "lifecycled_state_bytes", factory: factory)
        usersPerStage = Labeled { Gauge(label: "lifecycled_users", dimensions: [("stage", $0)], factory: factory) }
        consumerLag = Labeled { Gauge(label: "lifecycled_consumer_lag", dimensions: [("partition", $0)], factory: factory) }
        alertStates = Labeled { Gauge(label: "lifecycled_alert_state", dimensions: [("alert", $0)], factory: factory) }
        ready = Gauge(label: "lifecycled_ready", factory: factory)
        ready.record(0)  // until the loop says otherwise
        latency = Timer(label: Self.latencyLabel, factory: factory)
        for trigger in triggers {
            _ = triggersFired[trigger]
            _ = conversions[trigger]
        }
        for stage in stages { _ = usersPerStage[stage] }
    }

    /// Adds to each counter what `counters` gained since the last call (they only grow).
    func update(_ counters: PipelineCounters) {
        func push(_ counter: Counter, _ now: Int, _ before: Int) {
            if now > before { counter.increment(by: now - before) }
        }
        push(eventsConsumed, counters.eventsConsumed, pushed.eventsConsumed)
        push(eventsLate, counters.eventsLate, pushed.eventsLate)
        push(keyMismatches, counters.keyMismatches, pushed.keyMismatches)
        push(checkpoints, counters.checkpoints, pushed.checkpoints)
        push(rebalances, counters.rebalances, pushed.rebalances)
        push(deadLettersFailed, counters.deadLettersFailed, pushed.deadLettersFailed)
        push(kafkaErrors, counters.kafkaErrors, pushed.kafkaErrors)
        push(changelogRecords, counters.changelogRecords, pushed.changelogRecords)
        push(changelogBytes, counters.changelogBytes, pushed.changelogBytes)
        push(restores, counters.restores, pushed.restores)
        push(restoredRecords, counters.restoredRecords, pushed.restoredRecords)
        for (reason, count) in counters.eventsRejected {
            push(eventsInvalid[reason], count, pushed.eventsRejected[reason, default: 0])
        }
        for (trigger, count) in counters.triggersByArm {
            push(triggersFired[trigger], count, pushed.triggersByArm[trigger, default: 0])
        }
        for (trigger, count) in counters.conversionsByArm {
            push(conversions[trigger], count, pushed.conversionsByArm[trigger, default: 0])
        }
        pushed = counters
    }

    /// A trigger counter's labels.
    public static func dimensions(_ key: TriggerArm) -> [(String, String)] { [("trigger", key.trigger), ("arm", key.arm.rawValue)] }

    /// Sets the gauges. `lag` holds the assigned partitions whose high watermark is known; a
    /// partition no longer assigned loses its series (whoever owns it now reports it).
    func set(
        usersTracked users: Int, stateBytes bytes: Int, usersPerStage stages: [(stage: String, users: Int)],
        lag: [(partition: String, messages: Int64)], assigned: Set<String>, restoring: [(partition: String, remaining: Int)] = [],
        lastCheckpoint: (at: Int64, seconds: Double)?, now: Int64, ready isReady: Bool
    ) {
        usersTracked.record(users)
        stateBytes.record(bytes)
        for (partition, remaining) in restoring { restoreRemaining[partition].record(remaining) }
        let stillRestoring = Set(restoring.map(\.partition))
        for partition in restoreRemaining.values where !stillRestoring.contains(partition) {
            restoreRemaining.remove(partition)?.destroy()
        }
        for (stage, count) in stages { usersPerStage[stage].record(count) }
        for (partition, messages) in lag { consumerLag[partition].record(messages) }
        for partition in consumerLag.values where !assigned.contains(partition) {
            consumerLag.remove(partition)?.destroy()
        }
        if let lastCheckpoint {
            let gauges = checkpointGauges ?? (
                Gauge(label: "lifecycled_checkpoint_duration_seconds", factory: factory),
                Gauge(label: "lifecycled_checkpoint_age_seconds", factory: factory))
            checkpointGauges = gauges
            gauges.duration.record(lastCheckpoint.seconds)
            gauges.age.record(Double(now - lastCheckpoint.at) / 1000)
        }
        ready.record(isReady ? 1 : 0)
    }
}

extension DaemonMetrics {
    /// Sets each alert's state: 0 ok, 1 pending, 2 firing at warn, 3 firing at critical. An
    /// alert a reload removed loses its series.
    func setAlerts(_ statuses: [AlertStatus]) {
        for status in statuses { alertStates[status.name].record(Self.alertStateValue(status)) }
        let names = Set(statuses.map(\.name))
        for name in alertStates.values where !names.contains(name) { alertStates.remove(name)?.destroy() }
    }

    private static func alertStateValue(_ status: AlertStatus) -> Int {
        switch status.state {
        case .ok: 0
        case .pending: 1
        case .firing: status.level == .critical ? 3 : 2
        }
    }
}

/// One handle per label value, made the first time the value is seen and kept.
private struct Labeled<Key: Hashable, Metric> {
    private let make: (Key) -> Metric
    private var handles: [Key: Metric] = [:]

    init(make: @escaping (Key) -> Metric) { self.make = make }

    var values: [Key] { Array(handles.keys) }

    subscript(value: Key) -> Metric {
        mutating get {
            if let handle = handles[value] { return handle }
            let handle = make(value)
            handles[value] = handle
            return handle
        }
    }

    mutating func remove(_ value: Key) -> Metric? { handles.removeValue(forKey: value) }
}
