import LifecycleEngine

/// What the pipeline has done, as plain integers: each processing thread counts its own
/// (no lock or atomic per event) and the coordinator adds them up for metrics and status.
/// Every field only grows, whatever partitions move between threads.
public struct PipelineCounters: Sendable, Equatable {
    public var eventsConsumed = 0
    public var eventsRejected: [String: Int] = [:]
    public var eventsLate = 0
    public var keyMismatches = 0
    public var triggersProduced = 0
    public var triggersByArm: [TriggerArm: Int] = [:]
    public var conversionsByArm: [TriggerArm: Int] = [:]
    public var conversions = 0
    public var deadLettersFailed = 0
    /// Deliveries Kafka refused (triggers and dead letters), offset commits that failed, and
    /// errors the Kafka clients reported (brokers unreachable, connections failing).
    public var kafkaErrors = 0
    public var checkpoints = 0
    public var rebalances = 0
    /// Changelog records written (users, tombstones, positions) and their key and value bytes.
    public var changelogRecords = 0
    public var changelogBytes = 0
    /// Changelog records read to restore partitions, and the partitions restored.
    public var restoredRecords = 0
    public var restores = 0

    public init() {}

    public static func += (total: inout PipelineCounters, part: PipelineCounters) {
        total.eventsConsumed += part.eventsConsumed
        total.eventsRejected.merge(part.eventsRejected, uniquingKeysWith: +)
        total.eventsLate += part.eventsLate
        total.keyMismatches += part.keyMismatches
        total.triggersProduced += part.triggersProduced
        total.triggersByArm.merge(part.triggersByArm, uniquingKeysWith: +)
        total.conversionsByArm.merge(part.conversionsByArm, uniquingKeysWith: +)
        total.conversions += part.conversions
        total.deadLettersFailed += part.deadLettersFailed
        total.kafkaErrors += part.kafkaErrors
        total.checkpoints += part.checkpoints
        total.rebalances += part.rebalances
        total.changelogRecords += part.changelogRecords
        total.changelogBytes += part.changelogBytes
        total.restoredRecords += part.restoredRecords
        total.restores += part.restores
    }
}

/// A trigger and an arm, as counters and metrics label them. A trigger without a holdout
/// reaches everyone, so its firings count as treatment.
public struct TriggerArm: Hashable, Sendable {
    public var trigger: String
    public var arm: Arm

    public init(_ trigger: String, _ arm: Arm?) {
        self.trigger = trigger
        self.arm = arm ?? .treatment
    }
}
