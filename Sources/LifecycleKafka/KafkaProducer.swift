import CRdKafka
import Logging

/// What Kafka said about one produced message.
public struct Delivery: Sendable {
    /// The caller's ticket, given to `produce`.
    public var ticket: Int
    /// nil when the message was acknowledged.
    public var error: KafkaError?
    public var partition: Int32
    /// Where the message was written (when acknowledged).
    public var offset: Int64
}

/// A Kafka producer with delivery reports, owned by one thread.
///
/// Delivery reports are served only inside `poll`/`flush`, on the caller's thread, so the
/// owner learns which messages Kafka acknowledged without any locking. Each message carries
/// a caller-chosen ticket that comes back in its report.
public final class KafkaProducer {
    private let handle: OpaquePointer
    private let context: Unmanaged<HandleContext>
    /// The queue delivery reports and errors arrive on (what `poll` serves).
    private let events: OpaquePointer
    /// Readable when `events` has something.
    let wakeup: QueueWakeup
    /// Handles of the topics `prepare` looked up, kept so librdkafka keeps their metadata.
    private var preparedTopics: [OpaquePointer] = []
    public let logger: Logger

    /// `onDelivery` is called from `poll`/`flush` once per produced message.
    public init(
        properties: [String: String], logger: Logger, onDelivery: @escaping (Delivery) -> Void
    ) throws(KafkaError) {
        var settings = properties
        // Acknowledged means written to all in-sync replicas, and retries never duplicate.
        settings["enable.idempotence"] = settings["enable.idempotence"] ?? "true"
        // Retry through broker outages instead of failing messages after 5 minutes.
        settings["message.timeout.ms"] = settings["message.timeout.ms"] ?? "0"
        let conf = try KafkaProperties.make(settings)
        let box = HandleContext(logger: logger)
        box.onDelivery = onDelivery
        let retained = box.install(on: conf)
        rd_kafka_conf_set_dr_msg_cb(conf) { handle, message, _ in
            guard let context = HandleContext.from(handle), let message else { return }
            let report = message.pointee
            context.onDelivery?(Delivery(
                ticket: Int(bitPattern: report._private),
                error: report.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(report.err, while: "delivering a message"),
                partition: report.partition, offset: report.offset))
        }
        let handle = try HandleContext.newHandle(RD_KAFKA_PRODUCER, conf: conf, context: retained, creating: "the Kafka producer")
        events = rd_kafka_queue_get_main(handle)
        wakeup = try QueueWakeup.forNewClient(queue: events, handle: handle, context: retained)
        self.handle = handle
        self.context = retained
        self.logger = logger
    }

    /// Errors the client reported since the last call (broker connections failing, every
    /// broker down, ...): logged as they happen, counted for the owner's metrics.
    public func takeErrorsReported() -> Int { context.takeUnretainedValue().takeErrorsReported() }

    deinit {
        for topic in preparedTopics { rd_kafka_topic_destroy(topic) }
        wakeup.close()
        rd_kafka_queue_destroy(events)
        rd_kafka_destroy(handle)
        context.release()
    }

    /// Looks `topics` up before any message needs them, in one metadata request. Without it
    /// the first message to each topic waits for librdkafka's next metadata refresh (0.5 s
    /// measured on the mock cluster; see BENCHMARKS.md). Returns the topics the cluster
    /// reported an error for, or every topic if the lookup itself failed (brokers down).
    public func prepare(topics: [String], timeoutMilliseconds: Int32) -> [(topic: String, error: KafkaError)] {
        for topic in topics {
            if let topicHandle = rd_kafka_topic_new(handle, topic, nil) { preparedTopics.append(topicHandle) }
        }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        // all_topics = 0 and no topic: the topics this handle knows, the ones just added.
        let result = rd_kafka_metadata(handle, 0, nil, &metadata, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            return topics.map { ($0, KafkaError(result, while: "looking up topic '\($0)'")) }
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var failures: [(topic: String, error: KafkaError)] = []
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let entry = metadata.pointee.topics[index]
            let name = String(cString: entry.topic)
            if entry.err != RD_KAFKA_RESP_ERR_NO_ERROR, topics.contains(name) {
                failures.append((name, KafkaError(entry.err, while: "looking up topic '\(name)'")))
            }
        }
        return failures
    }

    /// Queues a message (key and value are copied; an empty value is a tombstone) for
    /// `partition`, or for the one the partitioner picks from the key. `QUEUE_FULL` is retried
    /// after serving delivery reports, so a burst waits for Kafka instead of failing.
    public func produce(
        topic: String, partition: Int32? = nil, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer?,
        header: (name: String, value: String)? = nil, ticket: Int
    ) throws(KafkaError) {
        while true {
            let opaque = UnsafeMutableRawPointer(bitPattern: ticket)
            let result: rd_kafka_resp_err_t
            if let header {
                result = header.value.utf8CString.withUnsafeBufferPointer { headerValue in
                    lifecycled_produce_with_header(
                        handle, topic, partition ?? lifecycled_partition_unassigned, key.baseAddress, key.count,
                        value?.baseAddress, value?.count ?? 0, header.name, headerValue.baseAddress, headerValue.count - 1, opaque)
                }
            } else {
                result = lifecycled_produce(
                    handle, topic, partition ?? lifecycled_partition_unassigned, key.baseAddress, key.count,
                    value?.baseAddress, value?.count ?? 0, opaque)
            }
            if result == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                rd_kafka_poll(handle, 10)
                continue
            }
            guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, while: "producing to '\(topic)'") }
            return
        }
    }

    /// `produce` for owned bytes; a nil value is a tombstone.
    public func produce(
        topic: String, partition: Int32? = nil, key: [UInt8], value: [UInt8]?, header: (name: String, value: String)? = nil,
        ticket: Int
    ) throws {
        try key.withUnsafeBytes { key in
            guard let value else { return try produce(topic: topic, partition: partition, key: key, value: nil, header: header, ticket: ticket) }
            try value.withUnsafeBytes { value in
                try produce(topic: topic, partition: partition, key: key, value: value, header: header, ticket: ticket)
            }
        }
    }

    /// Serves delivery reports; returns how many events were served.
    @discardableResult
    public func poll(timeoutMilliseconds: Int32 = 0) -> Int {
        Int(rd_kafka_poll(handle, timeoutMilliseconds))
    }

    /// Waits until every queued message is acknowledged or failed (reports are served).
    public func flush(timeoutMilliseconds: Int32) throws(KafkaError) {
        let result = rd_kafka_flush(handle, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, while: "flushing the producer") }
    }

    /// Messages queued or in flight.
    public var outstanding: Int { Int(rd_kafka_outq_len(handle)) }
}
