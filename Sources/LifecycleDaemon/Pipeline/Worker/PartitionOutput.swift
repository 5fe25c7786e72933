import LifecycleCodec
import LifecycleConfig
import LifecycleEngine
import LifecycleKafka
import Logging
import Metrics

/// Where a worker's partitions send what they produce: its own Kafka producer (triggers,
/// dead letters), the delivery tracking that says what Kafka has acknowledged, and the
/// worker's counters. One per worker thread, used only on that thread: delivery reports
/// are served by its `poll`, so acknowledgements need no lock.
final class PartitionOutput {
    static let deadLetterReasonHeader = "lifecycled-reason"
    /// Delivery reports are also served every this many messages within a batch, so an
    /// acknowledgement does not wait for the rest of the batch (steady 50k/s: p50 3.5 -> 1.5 ms).
    static let deliveryReportInterval = 16

    private(set) var producer: KafkaProducer!
    private var deliveries = DeliveryTracker()
    /// The first trigger Kafka refused: the worker stops on it (nothing after it may be committed).
    private(set) var deliveryFailure: KafkaError?
    var counters = PipelineCounters()
    private let logger: Logger
    private let latency: Timer
    private let observer: (any PipelineObserver)?
    private var topicByTrigger: [String: String]
    /// Where control triggers go: never to an action topic.
    private let holdoutTopic: String
    private var hasHoldouts: Bool
    private var deadLetterTopic: String
    /// Changelog topics, numbered by their place here (`PartitionTask.changelog`).
    let changelogTopics: [String]
    /// Per changelog topic and partition: the offset after the last record acknowledged.
    private var changelogEnds: [[Int32: Int64]]
    private var maxEventBytes: Int
    private var encoder = TriggerEncoder()
    private var encoded: [UInt8] = []

    init(
        config: LoadedConfig, changelogTopics: [String], producerProperties: [String: String], logger: Logger, latency: Timer,
        observer: (any PipelineObserver)?
    ) throws {
        self.changelogTopics = changelogTopics
        changelogEnds = Array(repeating: [:], count: changelogTopics.count)
        self.logger = logger
        self.latency = latency
        self.observer = observer
        topicByTrigger = Self.topics(config)
        holdoutTopic = config.settings.kafka.holdoutTopic
        hasHoldouts = Self.hasHoldouts(config)
        deadLetterTopic = config.settings.kafka.deadLetterTopic
        maxEventBytes = config.rules.events.maxEventBytes
        producer = try KafkaProducer(properties: producerProperties, logger: logger) { [unowned self] delivery in
            delivered(delivery)
        }
    }

    /// A trigger's output topic: its `topic:`, or `lifecycled.<trigger>`.
    static func topics(_ config: LoadedConfig) -> [String: String] {
        Dictionary(uniqueKeysWithValues: config.compiled.triggerNames.map {
            ($0, config.settings.kafka.triggerTopics[$0] ?? "lifecycled.\($0)")
        })
    }

    static func hasHoldouts(_ config: LoadedConfig) -> Bool {
        config.compiled.triggerNames.indices.contains(where: config.compiled.hasHoldout)
    }

    /// Every topic this output writes to.
    var topics: [String] {
        Set(topicByTrigger.values).union([deadLetterTopic] + (hasHoldouts ? [holdoutTopic] : [])).union(changelogTopics).sorted()
    }

    /// Rules swapped: triggers may have other topics or holdouts (the Kafka settings themselves stay).
    func rulesChanged(_ config: LoadedConfig) {
        topicByTrigger = Self.topics(config)
        hasHoldouts = Self.hasHoldouts(config)
        maxEventBytes = config.rules.events.maxEventBytes
    }

    /// Every message produced before this number (its delivery ticket) is acknowledged.
    var acknowledgedBelow: Int { deliveries.acknowledgedBelow }
    /// The number the next message will get.
    var produced: Int { deliveries.produced }
    var unacknowledged: Int { deliveries.unacknowledged }

    /// Produces the triggers in `output` (then emptied), fired under `rules`, and counts its
    /// conversions: a held-out user's trigger goes to the holdout topic, never to the trigger's
    /// action topic. `consumedAt`: when the event that caused them was consumed (monotonic µs), 0 for timers.
    func emit(_ output: inout EngineOutput, rules: CompiledRules, consumedAt: Int) throws {
        for trigger in output.triggers {
            encoded.removeAll(keepingCapacity: true)
            encoder.encode(trigger, of: output, rules: rules, into: &encoded)
            let name = rules.triggerNames[trigger.trigger]
            let topic = trigger.arm == .control ? holdoutTopic : topicByTrigger[name]!
            try output.userID(of: trigger).withUnsafeBytes { key in
                try produce(topic: topic, key: key, value: encoded, kind: .trigger(consumedAt: consumedAt))
            }
            counters.triggersProduced += 1
            counters.triggersByArm[TriggerArm(name, trigger.arm), default: 0] += 1
            observer?.triggerProduced(Trigger(trigger, in: output, rules: rules))
        }
        counters.conversions += output.conversions.count
        for conversion in output.conversions { counters.conversionsByArm[TriggerArm(conversion.trigger, conversion.arm), default: 0] += 1 }
        output.removeAll()
    }

    /// Dead letters keep at most this much of a message's key: a key near Kafka's size limit
    /// must not make the dead letter too large to send.
    static let deadLetterKeyBytes = 1024

    /// Sends a message the pipeline could not use to the dead-letter topic, with the reason
    /// in a header. An oversized value or key is cut (the header says so), so the dead letter
    /// fits; one that Kafka refuses all the same is counted and logged, never fatal.
    func deadLetter(_ message: KafkaMessage, reason: String) throws {
        counters.eventsRejected[reason, default: 0] += 1
        let limit = maxEventBytes
        let value = message.value.count > limit ? UnsafeRawBufferPointer(rebasing: message.value[0..<limit]) : message.value
        let keyLimit = Self.deadLetterKeyBytes
        let key = message.key.count > keyLimit ? UnsafeRawBufferPointer(rebasing: message.key[0..<keyLimit]) : message.key
        var header = reason
        if message.value.count > limit { header += "; \(message.value.count) bytes, first \(limit) kept" }
        if message.key.count > keyLimit { header += "; key of \(message.key.count) bytes, first \(keyLimit) kept" }
        try makeRoom()
        let ticket = deliveries.register(.deadLetter)
        do {
            try producer.produce(topic: deadLetterTopic, key: key, value: value, header: (Self.deadLetterReasonHeader, header), ticket: ticket)
        } catch {
            // Refused before it left (too large for the producer, say): settled here as its
            // delivery report would have been.
            _ = deliveries.complete(ticket, failed: true, now: MonotonicClock.microseconds())
            counters.kafkaErrors += 1
            deadLetterLost(error)
        }
    }

    /// Writes a changelog record (a nil value is a tombstone) to the partition of changelog
    /// topic `topic` that mirrors the input partition.
    func writeChangelog(_ topic: Int, partition: Int32, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer?) throws {
        try makeRoom()
        let ticket = deliveries.register(.changelog(topic: topic))
        try producer.produce(topic: changelogTopics[topic], partition: partition, key: key, value: value, ticket: ticket)
        counters.changelogRecords += 1
        counters.changelogBytes += key.count + (value?.count ?? 0)
    }

    /// The offset after the last changelog record Kafka acknowledged for this partition.
    func changelogEnd(_ topic: Int, partition: Int32) -> Int64? { changelogEnds[topic][partition] }

    /// Counts a consumed event; serves delivery reports every few, so acknowledgements
    /// are not held up by a long batch.
    func eventConsumed(_ message: KafkaMessage, of partition: TopicPartition) {
        counters.eventsConsumed += 1
        if counters.eventsConsumed % Self.deliveryReportInterval == 0 { producer.poll() }
        observer?.eventConsumed(partition, ageMilliseconds: message.timestamp.map { WallClock.milliseconds() - $0 })
    }

    /// Serves delivery reports; returns how many were served.
    @discardableResult
    func serveDeliveries() -> Int {
        let served = producer.poll()
        counters.kafkaErrors += producer.takeErrorsReported()
        return served
    }

    private func produce(topic: String, key: UnsafeRawBufferPointer, value: [UInt8], kind: DeliveryTracker.Kind) throws {
        try makeRoom()
        let ticket = deliveries.register(kind)
        try value.withUnsafeBytes { try producer.produce(topic: topic, key: key, value: $0, ticket: ticket) }
    }

    /// Waits for acknowledgements while the delivery ring is full (only with a producer
    /// allowed more messages in flight than the ring holds).
    private func makeRoom() throws {
        while deliveries.isFull {
            if let deliveryFailure { throw deliveryFailure }
            producer.poll(timeoutMilliseconds: 10)
        }
    }

    private func delivered(_ delivery: Delivery) {
        let error = delivery.error
        if error != nil { counters.kafkaErrors += 1 }
        switch deliveries.complete(delivery.ticket, failed: error != nil, now: MonotonicClock.microseconds()) {
        case .acknowledged(let latencyMicroseconds?):
            latency.recordMicroseconds(latencyMicroseconds)
            observer?.triggerAcknowledged(afterMicroseconds: latencyMicroseconds)
        case .acknowledged(nil):
            break
        case .changelogAcknowledged(let topic):
            changelogEnds[topic][delivery.partition] = max(changelogEnds[topic][delivery.partition] ?? 0, delivery.offset + 1)
        case .deadLetterLost:
            deadLetterLost(error)
        case .lost:
            if deliveryFailure == nil { deliveryFailure = error }
        }
    }

    private func deadLetterLost(_ error: KafkaError?) {
        counters.deadLettersFailed += 1
        logger.error("dead letter not delivered: \(error.map(String.init(describing:)) ?? "")")
    }
}
