import CRdKafka
import Logging

/// Reads one partition from an offset to the end it had when the read began, without joining
/// a consumer group: how a partition's state is restored from its changelog.
///
/// A consumer of its own (no group, no commits), owned by the thread that restores; the
/// group member's consumer goes on undisturbed meanwhile.
public final class PartitionReader {
    private let handle: OpaquePointer
    private let queue: OpaquePointer
    private let context: Unmanaged<HandleContext>
    private var batch = MessageBatch(size: 4096)
    private let logger: Logger

    public init(properties: [String: String], logger: Logger) throws(KafkaError) {
        var settings = properties
        // librdkafka assigns only with a group id; it never joins the group (no subscribe)
        // nor commits to it.
        settings["group.id"] = "lifecycled.partition-reader"
        settings["enable.auto.commit"] = "false"
        settings["enable.auto.offset.store"] = "false"
        settings["enable.partition.eof"] = "true"
        // An offset the topic no longer holds (cleaned up) reads on from the first it has.
        settings["auto.offset.reset"] = "earliest"
        // Past this many messages queued, librdkafka 2.0 skips fetching and decides again only
        // at its broker thread's next wake-up: with the default (100,000) a restore stalled for
        // ~0.9 s in every other partition (BENCHMARKS.md). The queue's byte limit (queued.max.messages.kbytes) still bounds memory.
        settings["queued.min.messages"] = "10000000"
        let conf = try KafkaProperties.make(settings)
        let retained = HandleContext(logger: logger).install(on: conf)
        let handle = try HandleContext.newHandle(
            RD_KAFKA_CONSUMER, conf: conf, context: retained, creating: "a partition reader", pollsConsumerQueue: true)
        self.handle = handle
        queue = rd_kafka_queue_get_consumer(handle)
        context = retained
        self.logger = logger
    }

    deinit {
        rd_kafka_queue_destroy(queue)
        let closing = rd_kafka_consumer_close(handle)
        if closing != RD_KAFKA_RESP_ERR_NO_ERROR { logger.warning("\(KafkaError(closing, while: "closing a partition reader"))") }
        rd_kafka_destroy(handle)
        context.release()
    }

    /// The partition's first and next-to-be-written offsets, asked of its leader.
    public func watermarks(_ partition: TopicPartition, timeoutMilliseconds: Int32) throws(KafkaError) -> (low: Int64, high: Int64) {
        try KafkaConsumer.watermarks(of: partition, through: handle, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Hands every message of `partition` from `offset` (or its first retained one, if later)
    /// up to `end` (exclusive) to `body`, in order. Gives up when nothing arrives for
    /// `stallMilliseconds` (brokers down), saying how far it got.
    public func read(
        _ partition: TopicPartition, from offset: Int64, to end: Int64, stallMilliseconds: Int32 = 30_000,
        _ body: (KafkaMessage) throws -> Void
    ) throws {
        guard offset < end else { return }
        let list = rd_kafka_topic_partition_list_new(1)!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)!.pointee.offset = offset
        try KafkaConsumer.check(rd_kafka_assign(handle, list), while: "reading \(partition)")
        defer { rd_kafka_assign(handle, nil) }
        var next = offset
        var reachedEnd = false
        var idle: Int32 = 0
        while next < end && !reachedEnd {
            let count = try batch.read(queue, timeoutMilliseconds: 100, logger: logger, onEndOfPartition: { _ in reachedEnd = true }) { message in
                guard message.offset < end else { return }
                next = message.offset + 1
                try body(message)
            }
            idle = count > 0 ? 0 : idle + 100
            guard idle < stallMilliseconds else {
                throw KafkaError(
                    code: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue,
                    message: "reading \(partition): nothing arrived for \(stallMilliseconds / 1000) s at offset \(next) of \(end)")
            }
        }
    }
}
