import CRdKafka
import Glibc
import Logging

public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
    public var description: String { "\(topic)[\(partition)]" }
}

/// One consumed message, borrowed: valid only inside the `poll` callback.
public struct KafkaMessage {
    /// The topic handle: the same for every message of a topic while the consumer lives,
    /// so callers can recognise a topic without building its name.
    public var topicHandle: OpaquePointer
    public var partition: Int32
    /// The topic's name (built on each call).
    public var topic: String { String(cString: rd_kafka_topic_name(topicHandle)) }
    public var offset: Int64
    public var key: UnsafeRawBufferPointer
    public var value: UnsafeRawBufferPointer
    /// The message timestamp (epoch ms), if the broker or producer set one.
    public var timestamp: Int64?
    let raw: UnsafeMutablePointer<rd_kafka_message_t>

    /// The last value of header `name`, as text.
    public func header(_ name: String) -> String? {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(raw, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else { return nil }
        var value: UnsafeRawPointer?
        var size = 0
        guard rd_kafka_header_get_last(headers, name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR, let value else {
            return nil
        }
        return String(decoding: UnsafeRawBufferPointer(start: value, count: size), as: UTF8.self)
    }
}

/// A group consumer with manual commits and rebalances handled by its owner.
///
/// Everything happens on the owner's thread inside `poll`: messages arrive in batches, and
/// an assignment or revocation is handed to `rebalance` before it takes effect, so the owner
/// can restore state and choose start offsets, or checkpoint and commit before a partition
/// leaves. Offsets are never committed automatically.
public final class KafkaConsumer {
    public enum Rebalance {
        /// Return the offset to start each partition from; partitions left out start from the
        /// group's committed offset (or the earliest).
        case assigned([TopicPartition])
        case revoked([TopicPartition])
    }

    /// A start offset meaning "the earliest offset the topic still retains".
    public static let earliestOffset: Int64 = lifecycled_offset_beginning
    /// A start offset meaning "not known yet": the partition is assigned but fetches nothing
    /// until `start(_:at:)` names where (its state is still being restored). A fetch from a
    /// guessed offset that retention has deleted would stop the partition for good under
    /// `auto.offset.reset=error`, and would prefetch what is then thrown away.
    public static let startLater: Int64 = .min

    /// Internal so that `MessageQueue`s can be made on it.
    let handle: OpaquePointer
    private let queue: OpaquePointer
    /// Readable when the queue (messages, rebalances, errors) has something.
    let wakeup: QueueWakeup
    private let context: Unmanaged<HandleContext>
    private var batch: MessageBatch
    /// Queues of partitions routed away from `queue`, by partition (released in `deinit`).
    private var routes: [TopicPartition: OpaquePointer] = [:]
    private var rebalanceFailure: Error?
    private var closed = false
    public let logger: Logger
    private(set) public var assignment: Set<TopicPartition> = []
    /// After revoking partitions under the cooperative protocol the member rejoins its group,
    /// until the assignment that ends that round. An offset commit sent then waits behind the
    /// pending JoinGroup on the coordinator's connection and is answered with the old
    /// generation, which librdkafka 2.0 takes as the whole assignment lost: commit later.
    public var rejoining: Bool { rejoin != .none }
    private enum Rejoin { case none, revoked, joining }
    private var rejoin = Rejoin.none
    /// librdkafka pauses the whole assignment while a rebalance waits for the handler, even the
    /// partitions a cooperative rebalance keeps, and resumes them when the handler (un)assigns;
    /// a partition restored elsewhere is resumed by `start`. But the broker threads notice a
    /// resume only at their next wake-up, up to a second later, and librdkafka's main thread
    /// applies it a moment after the call returns: so they are woken a few times over the
    /// next 200 ms (monotonic ms, soonest first).
    private var fetcherWakeUps: [Int] = []

    public init(
        properties: [String: String], logger: Logger, batchSize: Int = 1024,
        rebalance: @escaping (Rebalance) throws -> [TopicPartition: Int64]
    ) throws(KafkaError) {
        var settings = properties
        // End-of-partition events tell the owner when a partition has no backlog.
        settings["enable.partition.eof"] = "true"
        settings["enable.auto.commit"] = "false"
        settings["enable.auto.offset.store"] = "false"
        settings["auto.offset.reset"] = settings["auto.offset.reset"] ?? "earliest"
        // librdkafka 2.0 stops fetching for a whole second once `queued.min.messages` are
        // waiting (librdkafka#2879), and they are counted on the queue a partition forwards
        // to, which all of a worker's partitions share: with the default 100,000, a consumer
        // doing real work per message starved for input. Prefetch memory stays bounded by
        // `queued.max.messages.kbytes` (64 MB by default) per such queue. Measured in
        // BENCHMARKS.md.
        settings["queued.min.messages"] = settings["queued.min.messages"] ?? "1000000"
        let conf = try KafkaProperties.make(settings)
        let box = HandleContext(logger: logger)
        let retained = box.install(on: conf)
        // Offsets are committed without waiting: a refusal comes back here, on the polling
        // thread, and is counted like any Kafka error (librdkafka only logs COMMITFAIL).
        rd_kafka_conf_set_offset_commit_cb(conf) { handle, error, offsets, _ in
            guard error != RD_KAFKA_RESP_ERR_NO_ERROR, error != RD_KAFKA_RESP_ERR__NO_OFFSET, let context = HandleContext.from(handle) else { return }
            context.noteError()
            context.logger.warning("kafka: offsets not committed: \(KafkaError(error, while: "committing offsets"))")
        }
        rd_kafka_conf_set_rebalance_cb(conf) { handle, error, partitions, _ in
            guard let handle, let partitions, let context = HandleContext.from(handle) else { return }
            if let onRebalance = context.onRebalance {
                onRebalance(handle, error, partitions)
            } else {
                // The owner is gone (closing from deinit): just follow the group.
                KafkaConsumer.follow(handle, error, partitions)
            }
        }
        let handle = try HandleContext.newHandle(
            RD_KAFKA_CONSUMER, conf: conf, context: retained, creating: "the Kafka consumer", pollsConsumerQueue: true)
        self.handle = handle
        self.queue = rd_kafka_queue_get_consumer(handle)
        wakeup = try QueueWakeup.forNewClient(queue: queue, handle: handle, context: retained)
        self.context = retained
        self.logger = logger
        self.batch = MessageBatch(size: batchSize)
        box.onRebalance = { [unowned self] handle, error, partitions in
            self.handleRebalance(handle, error, partitions, rebalance)
        }
    }

    /// Whether messages or events are waiting to be polled.
    public var hasQueued: Bool { rd_kafka_queue_length(queue) > 0 }

    /// Errors the client reported since the last call (broker connections failing, every
    /// broker down, ...): logged as they happen, counted for the owner's metrics.
    public func takeErrorsReported() -> Int { context.takeUnretainedValue().takeErrorsReported() }

    deinit {
        // Leaving the group revokes partitions; the owner's handler must not run any more.
        context.takeUnretainedValue().onRebalance = nil
        if !closed, rd_kafka_consumer_close(handle) != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("kafka: the consumer did not leave its group cleanly; the group notices after the session timeout")
        }
        for partition in Array(routes.keys) { unroute(partition) }
        wakeup.close()
        rd_kafka_queue_destroy(queue)
        rd_kafka_destroy(handle)
        context.release()
    }

    public func subscribe(_ topics: [String]) throws(KafkaError) {
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, -1) }
        let result = rd_kafka_subscribe(handle, list)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, while: "subscribing to \(topics)") }
    }

    /// Waits up to `timeoutMilliseconds` for a batch and hands each message to `body`.
    /// Rebalances are served here too; a failure in the rebalance handler is rethrown (after
    /// the batch). Returns the number of messages handed over. Partitions routed elsewhere (`route`)
    /// deliver nothing here.
    @discardableResult
    public func poll(timeoutMilliseconds: Int32, _ body: (KafkaMessage) throws -> Void) throws -> Int {
        var delivered = 0
        var failure: Error?
        do {
            delivered = try batch.read(queue, timeoutMilliseconds: timeoutMilliseconds, logger: logger, onEndOfPartition: { _ in }, body)
        } catch {
            failure = error
        }
        // A failed rebalance matters more than a message's error: it is what stops the owner.
        if let failed = rebalanceFailure {
            rebalanceFailure = nil
            throw failed
        }
        if let due = fetcherWakeUps.first, due <= Self.monotonicMilliseconds() {
            fetcherWakeUps.removeAll { $0 <= Self.monotonicMilliseconds() }
            wakeFetchers()
        }
        if let failure { throw failure }
        return delivered
    }

    private func scheduleFetcherWakeUps() {
        let now = Self.monotonicMilliseconds()
        fetcherWakeUps = [now, now + 10, now + 50, now + 200]
    }

    private static func monotonicMilliseconds() -> Int {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int(time.tv_sec) * 1000 + Int(time.tv_nsec) / 1_000_000
    }

    /// Makes the broker threads of the assigned partitions look at them again now: a request
    /// to each partition's leader (the latest offsets; the answer is not needed) wakes its
    /// thread, which then fetches what was resumed. Blocks for about a round trip.
    private func wakeFetchers() {
        guard !assignment.isEmpty else { return }
        let list = Self.partitionList(Dictionary(uniqueKeysWithValues: assignment.map { ($0, Int64(RD_KAFKA_OFFSET_END)) }))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let result = rd_kafka_offsets_for_times(handle, list, 1_000)
        if result != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.debug("kafka: waking the fetchers after a rebalance: \(KafkaError(result, while: "asking for the latest offsets"))")
        }
    }

    /// Delivers `partition`'s messages and events to `queue` instead of the consumer's own
    /// queue, from now on and whenever the partition is assigned. Route before assigning
    /// (in the rebalance handler): librdkafka then never sends it to the consumer's queue.
    public func route(_ partition: TopicPartition, to queue: MessageQueue) throws(KafkaError) {
        let partitionQueue: OpaquePointer
        if let known = routes[partition] {
            partitionQueue = known
        } else {
            guard let made = rd_kafka_queue_get_partition(handle, partition.topic, partition.partition) else {
                throw KafkaError(kind: .setup, message: "no queue for \(partition) (not a consumer handle)")
            }
            partitionQueue = made
            routes[partition] = made
        }
        rd_kafka_queue_forward(partitionQueue, queue.queue)
    }

    /// Stops routing `partition` (after it was revoked); what was routed stays where it went.
    public func unroute(_ partition: TopicPartition) {
        guard let partitionQueue = routes.removeValue(forKey: partition) else { return }
        rd_kafka_queue_forward(partitionQueue, nil)
        rd_kafka_queue_destroy(partitionQueue)
    }

    /// Commits `nextOffset` (the offset of the next message to read) per partition; with
    /// `wait: false` the commit is sent and its outcome only logged by librdkafka.
    public func commit(_ offsets: [TopicPartition: Int64], wait: Bool = true) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = Self.partitionList(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let result = rd_kafka_commit(handle, list, wait ? 0 : 1)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, while: "committing offsets") }
    }

    /// Committed offsets of the group for `partitions` (nil where none is committed).
    public func committed(_ partitions: [TopicPartition], timeoutMilliseconds: Int32 = 5000) throws(KafkaError) -> [TopicPartition: Int64] {
        let list = Self.partitionList(Dictionary(uniqueKeysWithValues: partitions.map { ($0, lifecycled_offset_invalid) }))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let result = rd_kafka_committed(handle, list, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, while: "reading committed offsets") }
        var offsets: [TopicPartition: Int64] = [:]
        for element in Self.elements(list) where element.offset >= 0 {
            offsets[TopicPartition(topic: String(cString: element.topic), partition: element.partition)] = element.offset
        }
        return offsets
    }

    /// The newest offset of a partition as the consumer last saw it (for lag), if known.
    public func highWatermark(_ partition: TopicPartition) -> Int64? {
        var low: Int64 = 0
        var high: Int64 = 0
        let result = rd_kafka_get_watermark_offsets(handle, partition.topic, partition.partition, &low, &high)
        return result == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }

    /// Whether the brokers answer. Once librdkafka reported all of them down, each call
    /// probes the cluster (a metadata request of up to 200 ms) until one answers.
    public var brokersReachable: Bool {
        let context = context.takeUnretainedValue()
        guard context.allBrokersDown else { return true }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        if rd_kafka_metadata(handle, 0, nil, &metadata, 200) == RD_KAFKA_RESP_ERR_NO_ERROR {
            rd_kafka_metadata_destroy(metadata)
            context.allBrokersDown = false
        }
        return !context.allBrokersDown
    }

    /// Leaves the group; the final revocation is served through the rebalance handler, and
    /// its failure is rethrown.
    public func close() throws {
        guard !closed else { return }
        closed = true
        let result = rd_kafka_consumer_close(handle)
        if let failure = rebalanceFailure {
            rebalanceFailure = nil
            throw failure
        }
        try Self.check(result, while: "leaving the group")
    }

    /// Applies a rebalance the way the group's protocol wants it: eager protocols hand over
    /// the whole assignment each time (`assign`), the cooperative one only what changes owner
    /// (`incremental_assign`/`incremental_unassign`), so the partitions that stay are never
    /// taken away. Either way the owner hears only the partitions that come or go.
    private func handleRebalance(
        _ handle: OpaquePointer, _ error: rd_kafka_resp_err_t,
        _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
        _ rebalance: (Rebalance) throws -> [TopicPartition: Int64]
    ) {
        let partitions = Self.elements(list).map { TopicPartition(topic: String(cString: $0.topic), partition: $0.partition) }
        let names = partitions.map(\.description).sorted().joined(separator: ", ")
        let cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
        switch error {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            do {
                let starts = try rebalance(.assigned(partitions))
                var later: [TopicPartition: Int64] = [:]
                var now: [TopicPartition: Int64] = [:]
                for index in 0..<Int(list.pointee.cnt) {
                    let element = list.pointee.elems[index]
                    let partition = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
                    guard let start = starts[partition] else { continue }
                    // Paused, it fetches nothing, so any concrete offset will do; a logical one
                    // would be looked up, which librdkafka 2.0 puts off while paused and then
                    // retries only every 500 ms (and a late answer would undo the seek).
                    list.pointee.elems[index].offset = start == Self.startLater ? 0 : start
                    if start == Self.startLater { later[partition] = 0 } else { now[partition] = start }
                }
                // Paused before the assignment: librdkafka starts fetching while it applies an
                // assignment, so a pause that follows can come after a first fetch from the
                // provisional offset, which is then outside the partition and stops it.
                let paused = Self.partitionList(later)
                defer { rd_kafka_topic_partition_list_destroy(paused) }
                let pausedEarly = try pause(paused, names: names)
                try cooperative ? Self.check(rd_kafka_incremental_assign(handle, list), while: "assigning \(names)")
                    : Self.check(rd_kafka_assign(handle, list), while: "assigning \(names)")
                if !pausedEarly { _ = try pause(paused, names: names) }
                // The application's pause outlives an assignment: one paused for a restore and
                // revoked before it started would never fetch again.
                if !now.isEmpty {
                    let resumed = Self.partitionList(now)
                    defer { rd_kafka_topic_partition_list_destroy(resumed) }
                    try Self.check(rd_kafka_resume_partitions(handle, resumed), while: "resuming \(names)")
                }
                assignment.formUnion(partitions)
                // Right after a cooperative revocation librdkafka assigns nothing, then rejoins.
                rejoin = rejoin == .revoked ? .joining : .none
                logger.info("kafka: assigned \(names)\(cooperative ? " (cooperative)" : "")")
            } catch {
                rebalanceFailure = rebalanceFailure ?? error
                // Nothing half-assigned: the owner restored nothing it will consume.
                unassign(partitions, list: list, cooperative: cooperative)
            }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(handle) != 0
            do {
                _ = try rebalance(.revoked(partitions))
            } catch {
                rebalanceFailure = rebalanceFailure ?? error
            }
            unassign(partitions, list: list, cooperative: cooperative)
            rejoin = cooperative ? .revoked : .none
            if lost {
                // A session timeout or a fenced member: librdkafka logs it (SESSTMOUT, ...) but
                // reports no error, and the partitions may be someone else's already.
                context.takeUnretainedValue().noteError()
                logger.warning("kafka: lost \(names): the group moved on without this member (session timed out or member fenced)")
            } else {
                logger.info("kafka: revoked \(names)")
            }
        default:
            logger.error("kafka: rebalance failed: \(KafkaError(error, while: "rebalancing"))")
            unassign(Array(assignment), list: list, cooperative: false)
        }
        // What a cooperative rebalance kept was paused meanwhile (see `fetcherWakeUps`).
        if cooperative && !assignment.isEmpty { scheduleFetcherWakeUps() }
    }

    /// Pauses `list`'s partitions; false if librdkafka does not know some of them yet (they
    /// are paused once assigned).
    private func pause(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>, names: String) throws(KafkaError) -> Bool {
        guard list.pointee.cnt > 0 else { return true }
        try Self.check(rd_kafka_pause_partitions(handle, list), while: "pausing \(names) until their state is restored")
        return Self.elements(list).allSatisfy { $0.err == RD_KAFKA_RESP_ERR_NO_ERROR }
    }

    private func unassign(_ partitions: [TopicPartition], list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>, cooperative: Bool) {
        do {
            try cooperative ? Self.check(rd_kafka_incremental_unassign(handle, list), while: "unassigning")
                : Self.check(rd_kafka_assign(handle, nil), while: "unassigning")
        } catch {
            // The group goes on without these partitions either way; the owner is told.
            rebalanceFailure = rebalanceFailure ?? error
        }
        assignment.subtract(partitions)
    }

    /// Stops fetching assigned partitions whose messages must wait (a rules reload holds
    /// its input until its checkpoints are published): left fetching, librdkafka would go on
    /// prefetching them all that while.
    public func hold(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = Self.partitionList(Dictionary(uniqueKeysWithValues: partitions.map { ($0, 0) }))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try Self.check(rd_kafka_pause_partitions(handle, list), while: "holding \(partitions.map(\.description).joined(separator: ", "))")
    }

    /// Fetches paused partitions (held, or assigned with `startLater`) from the offsets
    /// given: where its owner goes on, never what librdkafka had queued and dropped. The seek
    /// is handed to each partition's fetcher without waiting for it (a partition still
    /// looking up its first offset can take seconds to answer): messages fetched before it
    /// carry an older version and are dropped when served, and an offset outside the
    /// partition comes back as that partition's error, like any fetch position.
    public func resume(at positions: [TopicPartition: Int64]) throws(KafkaError) {
        guard !positions.isEmpty else { return }
        let names = positions.map { "\($0.key) at \($0.value)" }.sorted().joined(separator: ", ")
        let list = Self.partitionList(positions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try Self.check(rd_kafka_seek_partitions(handle, list, 0), while: "seeking \(names)")
        try Self.check(rd_kafka_resume_partitions(handle, list), while: "resuming \(names)")
        scheduleFetcherWakeUps()
    }

    /// Starts fetching a partition assigned with `startLater`, at `offset`.
    /// `offset` may be `earliestOffset`: the partition's first offset is then asked for here,
    /// so that the seek is to a concrete offset (see the assignment in `handleRebalance`).
    public func start(_ partition: TopicPartition, at offset: Int64) throws(KafkaError) {
        var from = offset
        if offset == Self.earliestOffset {
            from = try watermarks(partition).low
        } else {
            try checkWithinEnd(partition, offset: offset)
        }
        try resume(at: [partition: from])
    }

    /// Throws, as an offset outside the partition, if `offset` lies beyond the partition's
    /// end: a topic recreated or emptied under a saved position. Brokers are not relied on to
    /// say so (some answer such a fetch with nothing, and the partition would wait forever).
    public func checkWithinEnd(_ partition: TopicPartition, offset: Int64) throws(KafkaError) {
        let end = try watermarks(partition).high
        guard offset <= end else {
            throw KafkaError(
                code: RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET.rawValue,
                message: "\(partition): offset \(offset) is beyond the partition's end (\(end))")
        }
    }

    private func watermarks(_ partition: TopicPartition) throws(KafkaError) -> (low: Int64, high: Int64) {
        try Self.watermarks(of: partition, through: handle, timeoutMilliseconds: 10_000)
    }

    /// The partition's first offset and the offset after its last, asked of its leader
    /// through the client `handle`.
    static func watermarks(
        of partition: TopicPartition, through handle: OpaquePointer, timeoutMilliseconds: Int32
    ) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        try check(
            rd_kafka_query_watermark_offsets(handle, partition.topic, partition.partition, &low, &high, timeoutMilliseconds),
            while: "reading the offsets of \(partition)")
        return (low, high)
    }

    /// Applies a rebalance with no owner to consult (closing from `deinit`).
    private static func follow(
        _ handle: OpaquePointer, _ error: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    ) {
        let assign = error == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS
        if String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE" {
            try? check(assign ? rd_kafka_incremental_assign(handle, list) : rd_kafka_incremental_unassign(handle, list), while: "rebalancing")
        } else {
            try? check(rd_kafka_assign(handle, assign ? list : nil), while: "rebalancing")
        }
    }

    /// Throws the error librdkafka returned as an object (and frees it).
    static func check(_ error: OpaquePointer?, while action: String) throws(KafkaError) {
        guard let error else { return }
        defer { rd_kafka_error_destroy(error) }
        throw KafkaError(code: rd_kafka_error_code(error).rawValue, message: "\(action): \(String(cString: rd_kafka_error_string(error)))")
    }

    static func check(_ result: rd_kafka_resp_err_t, while action: String) throws(KafkaError) {
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, while: action) }
    }

    private static func partitionList(_ offsets: [TopicPartition: Int64]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
        for (partition, offset) in offsets.sorted(by: { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }) {
            rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)!.pointee.offset = offset
        }
        return list
    }

    private static func elements(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> UnsafeMutableBufferPointer<rd_kafka_topic_partition_t> {
        UnsafeMutableBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
    }
}
