import Glibc
import LifecycleCodec
import LifecycleConfig
import LifecycleEngine
import LifecycleKafka
import Logging
import Metrics

/// The daemon's processing loop: Kafka in, one engine per assigned partition, triggers out.
///
/// Everything runs on the owner's thread, one `step` at a time: a batch is consumed and
/// applied, triggers and dead letters are produced, and delivery reports are served. Every
/// `checkpoint_interval` (and before a partition is revoked, and on `stop`) the commit cycle
/// runs: wait until Kafka acknowledged every trigger, write each partition's checkpoint,
/// then commit the input offsets. So an offset is committed only after the triggers its
/// events caused are acknowledged and the state that saw them is on disk (at-least-once,
/// and a replayed trigger carries the same id). A partition resumes at its checkpoint's
/// offset (or the earliest retained one without a checkpoint), never at a committed offset
/// alone, so state and position cannot disagree.
public final class TriggerPipeline {
    /// What a partition's engine has consumed.
    struct PartitionState {
        var engine: PartitionEngine
        /// The offset of the next message to read (what a commit records).
        var nextOffset: Int64
    }

    /// Plain integers bumped where things happen; `publish` pushes them to the metrics.
    public struct Counters: Sendable, Equatable {
        public var eventsConsumed = 0
        public var eventsRejected: [String: Int] = [:]
        public var eventsLate = 0
        public var keyMismatches = 0
        public var triggersProduced = 0
        /// By trigger name; only ever grow (Prometheus counters), whatever partitions move.
        public var triggersByName: [String: Int] = [:]
        public var conversionsByName: [String: Int] = [:]
        public var conversions = 0
        public var deadLettersFailed = 0
        /// Deliveries Kafka refused (triggers and dead letters), offset commits that failed, and
        /// errors the Kafka clients reported (brokers unreachable, connections failing).
        public var kafkaErrors = 0
        public var checkpoints = 0
        public var rebalances = 0
    }

    public static let deadLetterReasonHeader = "lifecycled-reason"
    /// Delivery reports are also served every this many messages within a batch, so an
    /// acknowledgement does not wait for the rest of the batch (steady 50k/s: p50 3.5 -> 1.5 ms).
    static let deliveryReportInterval = 16
    /// Delivery ticket of dead letters (triggers carry their event's consume time).
    static let deadLetterTicket = -1
    /// Partitions read to their end since they were assigned (no backlog).
    private var caughtUp: Set<TopicPartition> = []
    /// As of the last step.
    private var brokersReachable = true

    private var config: LoadedConfig
    private let logger: Logger
    private let wallClock: () -> Int64
    private let store: CheckpointStore
    private var consumer: KafkaConsumer!
    private var producer: KafkaProducer!
    private var partitions: [TopicPartition: PartitionState] = [:]
    private var decoder: EventDecoder
    private let encoder = TriggerEncoder()
    private var output = EngineOutput()
    private var encoded: [UInt8] = []
    private var deliveryFailure: KafkaError?
    private var lastCommit: Int64
    private var lastCheckpoint: (at: Int64, seconds: Double)?
    public private(set) var counters = Counters()
    private let metrics: DaemonMetrics
    /// Every latency observed, when a benchmark asks for exact percentiles.
    public var latencySamples: [Double]?
    /// Every consumed message's age (the wall clock minus its Kafka timestamp, in seconds), when
    /// a benchmark asks: the time before consumption, which `latencySamples` does not see.
    public var consumeAgeSamples: [Double]?
    /// When the message being applied was consumed (monotonic µs).
    private var consumedAt = 0
    /// Sees every trigger produced (e.g. `demo`'s sample of recent triggers).
    public var onTrigger: ((Trigger) -> Void)?

    /// - Parameters:
    ///   - wallClock: epoch milliseconds now; used only to let caught-up partitions' timers
    ///     fire and to pace checkpoints (the engine itself never reads a clock).
    ///   - metrics: makes the metrics' handles; by default they go nowhere.
    public init(
        config: LoadedConfig, logger: Logger, wallClock: @escaping () -> Int64,
        metrics factory: any MetricsFactory = NOOPMetricsHandler.instance
    ) throws {
        self.config = config
        self.logger = logger
        self.wallClock = wallClock
        metrics = DaemonMetrics(factory: factory, triggers: config.compiled.triggerNames, stages: config.compiled.stageNames)
        store = CheckpointStore(directory: config.settings.state.directory)
        decoder = EventDecoder(fields: config.rules.events, propertyPaths: config.compiled.propertyPaths)
        lastCommit = wallClock()
        try store.prepare()
        let kafka = config.settings.kafka
        var common = kafka.properties
        common["bootstrap.servers"] = kafka.brokers
        var producerProperties = common
        // A trigger is worth more sooner than in a bigger batch (librdkafka 2.0 waits 5 ms).
        producerProperties["linger.ms"] = common["linger.ms"] ?? "1"
        producer = try KafkaProducer(properties: producerProperties, logger: logger) { [unowned self] ticket, error in
            if let error {
                counters.kafkaErrors += 1
                // A dead letter that cannot be delivered is counted, not fatal: bad input never
                // stops the daemon. A trigger that cannot be delivered is (nothing is committed).
                if ticket == Self.deadLetterTicket {
                    counters.deadLettersFailed += 1
                    logger.error("dead letter not delivered: \(error)")
                } else if deliveryFailure == nil {
                    deliveryFailure = error
                }
            }
            // A trigger's ticket is when its event was consumed (dead letters carry 0).
            if error == nil, ticket > 0 {
                let microseconds = MonotonicClock.microseconds() - ticket
                metrics.latency.recordMicroseconds(microseconds)
                latencySamples?.append(Double(microseconds) / 1_000_000)
            }
        }
        let outputTopics = Set(config.compiled.triggerNames.map(Self.triggerTopic(config.settings.kafka)) + [kafka.deadLetterTopic])
        for (topic, error) in producer.prepare(topics: outputTopics.sorted(), timeoutMilliseconds: 5_000) {
            logger.warning("output topic '\(topic)' not usable yet (\(error)); what goes there waits until it is")
        }
        var consumerProperties = common
        consumerProperties["group.id"] = kafka.groupID
        // A checkpoint's offset the topic no longer (or never) had stops the daemon instead
        // of librdkafka silently re-reading from the start or skipping to the end.
        consumerProperties["auto.offset.reset"] = common["auto.offset.reset"] ?? "error"
        consumer = try KafkaConsumer(properties: consumerProperties, logger: logger) { [unowned self] rebalance in
            try self.rebalance(rebalance)
        }
        consumer.onEndOfPartition = { [unowned self] partition in caughtUp.insert(partition) }
        try consumer.subscribe(kafka.inputTopics)
    }

    /// Partitions assigned and restored: what `/readyz` reports.
    public var assignedPartitions: [TopicPartition] { partitions.keys.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) } }

    /// Consumes one batch (waiting up to `timeoutMilliseconds`), fires caught-up partitions'
    /// timers, and runs the commit cycle when it is due. Throws on what must stop the daemon:
    /// an unusable checkpoint, a trigger Kafka refused.
    public func step(timeoutMilliseconds: Int32 = 100) throws {
        // Sleep only with both queues empty, and wake for either: an acknowledgement must not
        // wait for the next message (a trigger's latency ends when Kafka acknowledges it).
        KafkaWakeups.arm(consumer, producer)
        let consumed = try consumeBatch()
        let served = producer.poll()
        if consumed == 0, served == 0, !consumer.hasQueued {
            KafkaWakeups.wait(consumer, producer, timeoutMilliseconds: timeoutMilliseconds)
            try consumeBatch()
            producer.poll()
        }
        // Probed once per step: while the brokers are down each probe can wait 200 ms.
        brokersReachable = consumer.brokersReachable
        counters.kafkaErrors += consumer.takeErrorsReported() + producer.takeErrorsReported()
        try advanceCaughtUpPartitions()
        if wallClock() - lastCommit >= config.settings.state.checkpointInterval {
            try commit(partitions.keys)
        }
    }

    /// The final commit cycle, then leaves the group. Throws if Kafka did not acknowledge
    /// every trigger in time: then nothing was checkpointed, and a restart re-sends them.
    public func stop() throws {
        guard try commit(partitions.keys, flushTimeout: 30_000, waitForCommit: true) else {
            throw KafkaError(code: -1, message: "stopping: triggers not acknowledged within 30 s; state left at the last checkpoint")
        }
        try consumer.close()
    }

    /// Swaps in new rules, keeping every partition's state: each engine is snapshotted and
    /// restored under them (timers re-timed). Rules that change the state's shape (counters,
    /// attributes, stages or triggers added, removed or redefined) are refused with the
    /// reason, and the running rules stay. Kafka, HTTP and state settings are not changed.
    public func replaceRules(with loaded: LoadedConfig) throws {
        // Checkpoint under the old rules first: a crash right after the swap must replay the
        // stretch before it under the rules (and config version, part of the ids) it ran with.
        guard try commit(partitions.keys) else {
            throw KafkaError(code: -1, message: "triggers not yet acknowledged; try the reload again")
        }
        var rebuilt: [TopicPartition: PartitionState] = [:]
        for (partition, state) in partitions {
            do {
                rebuilt[partition] = PartitionState(
                    engine: try PartitionEngine(rules: loaded.compiled, snapshot: state.engine.snapshot()),
                    nextOffset: state.nextOffset)
            } catch {
                throw CheckpointError(
                    path: "\(partition)", reason: "the new rules cannot take over the running state: \(error.reason); restart to apply them")
            }
        }
        partitions = rebuilt
        lastPartition = nil
        config.rules = loaded.rules
        config.compiled = loaded.compiled
        config.configVersion = loaded.configVersion
        decoder = EventDecoder(fields: loaded.rules.events, propertyPaths: loaded.compiled.propertyPaths)
    }

    /// Posts what the HTTP port shows (metrics included), and answers the user lookups it queued.
    public func publish(to board: StatusBoard, now: Int64) {
        var users = 0
        var lag: [(partition: String, messages: Int64)] = []
        for (partition, state) in partitions.sorted(by: { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }) {
            users += state.engine.userCount
            if let high = consumer.highWatermark(partition) {
                lag.append((partition.description, max(0, high - max(state.nextOffset, 0))))
            }
        }
        let names = config.compiled.triggerNames
        let stages = usersPerStage
        let assigned = assignedPartitions.map(\.description)
        let reachable = brokersReachable
        let ready = !assigned.isEmpty && reachable
        metrics.update(counters)
        metrics.set(
            usersTracked: users, usersPerStage: stages, lag: lag, assigned: Set(assigned),
            lastCheckpoint: lastCheckpoint, now: now, ready: ready)
        board.publish { snapshot in
            snapshot.heartbeat = now
            snapshot.assignedPartitions = assigned
            snapshot.ready = ready
            snapshot.notReadyReason = !reachable ? "Kafka brokers unreachable; reconnecting"
                : assigned.isEmpty ? "no partitions assigned yet (joining the group)" : ""
            snapshot.counters = counters
            snapshot.triggersFired = names.map { ($0, counters.triggersByName[$0, default: 0]) }
            snapshot.conversions = names.map { ($0, counters.conversionsByName[$0, default: 0]) }
            snapshot.usersPerStage = stages
            snapshot.usersTracked = users
        }
        board.answerLookups { report(userID: $0) }
    }

    /// The engine's view of a user, from whichever partition holds them.
    public func report(userID: String) -> UserReport? {
        partitions.values.lazy.compactMap { $0.engine.report(userID: userID) }.first
    }

    /// Users per stage over all assigned partitions.
    public var usersPerStage: [(stage: String, users: Int)] {
        config.compiled.stageNames.indices.map { index in
            (config.compiled.stageNames[index], partitions.values.reduce(0) { $0 + $1.engine.usersPerStage[index] })
        }
    }

    // MARK: - Consuming

    @discardableResult
    private func consumeBatch() throws -> Int {
        do {
            return try consumer.poll(timeoutMilliseconds: 0) { message in try consume(message) }
        } catch let error as KafkaError where error.isOffsetOutOfRange {
            throw KafkaError(
                code: error.code,
                message: "\(error.message). The topic no longer holds the offset the partition's checkpoint (or "
                    + "its last position) resumes from: events were deleted by retention before they were read, or "
                    + "the topic was recreated, so the saved state cannot simply go on. To go on from the "
                    + "earliest retained offset with the saved state, set kafka.properties auto.offset.reset: earliest "
                    + "and restart; to rebuild the partition's state from the topic, move its checkpoint file out of "
                    + "\(config.settings.state.directory) and restart.")
        }
    }

    /// The last message's partition and where its state is, so a run of messages from one
    /// partition looks it up once. Cleared whenever `partitions` gains or loses a key (an
    /// index is only valid until then).
    private var lastPartition: (topic: OpaquePointer, partition: Int32, index: Dictionary<TopicPartition, PartitionState>.Index?)?

    private func consume(_ message: KafkaMessage) throws {
        let found: Dictionary<TopicPartition, PartitionState>.Index?
        if let last = lastPartition, last.topic == message.topicHandle, last.partition == message.partition {
            found = last.index
        } else {
            // Then the state is reached by index and mutated in place: reading
            // `partitions[partition]` as a value would copy (retain and release) the engine.
            found = partitions.index(forKey: TopicPartition(topic: message.topic, partition: message.partition))
            lastPartition = (message.topicHandle, message.partition, found)
        }
        guard let index = found else { return }
        consumedAt = MonotonicClock.microseconds()
        if consumeAgeSamples != nil, let timestamp = message.timestamp {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            consumeAgeSamples!.append(Double(Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000 - timestamp) / 1000)
        }
        partitions.values[index].nextOffset = message.offset + 1
        counters.eventsConsumed += 1
        if counters.eventsConsumed % Self.deliveryReportInterval == 0 { producer.poll() }
        var outcome = IngestOutcome.applied
        let rejection = decoder.decode(message.value, fallbackTime: message.timestamp) { event in
            if !message.key.isEmpty, !message.key.elementsEqual(event.userID) { counters.keyMismatches += 1 }
            outcome = partitions.values[index].engine.ingest(event, into: &output)
        }
        if let rejection {
            try deadLetter(message, reason: rejection.rawValue)
        } else if outcome == .late {
            counters.eventsLate += 1
        } else if outcome == .outOfRange || outcome == .invalidUser {
            try deadLetter(message, reason: outcome == .outOfRange ? "bad_time" : "bad_user_id")
        }
        if !output.triggers.isEmpty || !output.conversions.isEmpty { try produceOutput() }
    }

    /// A trigger's output topic: its `topic:`, or `lifecycled.<trigger>`.
    static func triggerTopic(_ kafka: DaemonSettings.Kafka) -> (String) -> String {
        { name in kafka.triggerTopics[name] ?? "lifecycled.\(name)" }
    }

    private func deadLetter(_ message: KafkaMessage, reason: String) throws {
        counters.eventsRejected[reason, default: 0] += 1
        // An oversized message is cut to the size limit, so the dead letter itself fits.
        let limit = config.rules.events.maxEventBytes
        let value = message.value.count > limit ? UnsafeRawBufferPointer(rebasing: message.value[0..<limit]) : message.value
        let header = message.value.count > limit ? "\(reason); \(message.value.count) bytes, first \(limit) kept" : reason
        try producer.produce(
            topic: config.settings.kafka.deadLetterTopic, key: message.key, value: value,
            header: (Self.deadLetterReasonHeader, header), ticket: Self.deadLetterTicket)
    }

    private func produceOutput() throws {
        for trigger in output.triggers {
            encoded.removeAll(keepingCapacity: true)
            encoder.encode(trigger, into: &encoded)
            let topic = Self.triggerTopic(config.settings.kafka)(trigger.name)
            try producer.produce(topic: topic, key: Array(trigger.userID.utf8), value: encoded, ticket: consumedAt)
            counters.triggersProduced += 1
            counters.triggersByName[trigger.name, default: 0] += 1
            onTrigger?(trigger)
        }
        counters.conversions += output.conversions.count
        for conversion in output.conversions { counters.conversionsByName[conversion.trigger, default: 0] += 1 }
        output.removeAll()
    }

    /// A partition with no backlog moves its stream time with the wall clock, so quiet users'
    /// timers fire; one still catching up does not, so a restart never fires them early.
    /// It trails the wall clock by the allowed lateness, the delay events are allowed anyway,
    /// so a timer does not fire before an event that was still allowed to arrive.
    /// "No backlog" is an end-of-partition event since the assignment, not a cached high
    /// watermark (stale during an outage); and nothing advances while the brokers are down,
    /// since events may be waiting there.
    private func advanceCaughtUpPartitions() throws {
        guard !caughtUp.isEmpty, brokersReachable else { return }
        let now = wallClock() - config.rules.events.allowedLateness
        // Over a copy of the keys: iterating the dictionary's own keys while mutating its
        // values would copy every engine's state.
        for partition in Array(partitions.keys) where caughtUp.contains(partition) {
            partitions[partition]!.engine.advance(to: now, into: &output)
            consumedAt = 0  // timer triggers have no event to measure from
            try produceOutput()
        }
    }

    // MARK: - Commit cycle and rebalances

    /// The commit cycle for `which`: wait for Kafka to acknowledge every trigger, write the
    /// checkpoints, commit the offsets. Returns false, having saved nothing, if the triggers
    /// were not acknowledged within `flushTimeout` (a broker outage): the cycle is retried
    /// later, and the daemon keeps running. A trigger Kafka refused throws.
    @discardableResult
    private func commit(
        _ which: some Collection<TopicPartition>, flushTimeout: Int32 = 5_000, waitForCommit: Bool = false
    ) throws -> Bool {
        let started = wallClock()
        lastCommit = started
        do {
            try producer.flush(timeoutMilliseconds: flushTimeout)
        } catch {
            logger.warning("commit cycle postponed: \(producer.outstanding) messages not yet acknowledged (\(error))")
            return false
        }
        if let failure = deliveryFailure { throw failure }
        guard !which.isEmpty else { return true }
        var offsets: [TopicPartition: Int64] = [:]
        for partition in which {
            // A partition that has consumed nothing yet has nothing to save.
            guard let state = partitions[partition], state.nextOffset >= 0 else { continue }
            try store.write(
                Checkpoint(nextOffset: state.nextOffset, configVersion: config.configVersion, engineSnapshot: state.engine.snapshot()),
                topic: partition.topic, partition: partition.partition)
            counters.checkpoints += 1
            offsets[partition] = state.nextOffset
        }
        // Where a partition resumes comes from its checkpoint, so the group's committed offsets
        // serve lag monitoring and other tools: a commit refused during a rebalance is not fatal.
        do {
            try consumer.commit(offsets, wait: waitForCommit)
        } catch {
            counters.kafkaErrors += 1
            logger.warning("offsets not committed (\(error)); the checkpoints hold them")
        }
        let finished = wallClock()
        lastCheckpoint = (finished, Double(finished - started) / 1000)
        return true
    }

    private func rebalance(_ event: KafkaConsumer.Rebalance) throws -> [TopicPartition: Int64] {
        counters.rebalances += 1
        lastPartition = nil
        switch event {
        case .revoked(let revoked):
            defer {
                for partition in revoked {
                    partitions[partition] = nil
                    caughtUp.remove(partition)
                }
            }
            // Unacknowledged triggers leave the older checkpoint in place: the next owner
            // replays from it and re-sends them with the same ids.
            if try !commit(revoked) { logger.warning("revoked \(revoked) without a new checkpoint") }
            return [:]
        case .assigned(let assigned):
            var starts: [TopicPartition: Int64] = [:]
            for partition in assigned {
                caughtUp.remove(partition)
                if let checkpoint = try store.read(topic: partition.topic, partition: partition.partition) {
                    let engine: PartitionEngine
                    do {
                        engine = try PartitionEngine(rules: config.compiled, snapshot: checkpoint.engineSnapshot)
                    } catch {
                        throw CheckpointError.unusable(store.path(topic: partition.topic, partition: partition.partition), error.reason)
                    }
                    partitions[partition] = PartitionState(engine: engine, nextOffset: checkpoint.nextOffset)
                    starts[partition] = checkpoint.nextOffset
                    logger.info("restored \(partition) at offset \(checkpoint.nextOffset): \(engine.userCount) users")
                } else {
                    // No state for this partition: rebuild it from everything the topic retains.
                    partitions[partition] = PartitionState(engine: PartitionEngine(rules: config.compiled), nextOffset: -1)
                    starts[partition] = KafkaConsumer.earliestOffset
                    logger.notice("no checkpoint for \(partition): rebuilding its state from the earliest retained offset")
                }
            }
            return starts
        }
    }
}
