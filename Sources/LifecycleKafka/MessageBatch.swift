import CRdKafka
import Logging

/// Reads a batch of messages from a librdkafka queue and hands them over one by one, for
/// the consumer's own queue and for the queues partitions are routed to alike.
///
/// Per-message events are handled here too: an end of partition is reported (the owner
/// learns a partition has no backlog), an offset outside the partition throws (the owner
/// decides what to do, nothing is skipped silently), and transient fetch errors are logged.
struct MessageBatch {
    private var slots: [UnsafeMutablePointer<rd_kafka_message_t>?]

    init(size: Int) { slots = Array(repeating: nil, count: size) }

    /// Waits up to `timeoutMilliseconds` for messages on `queue`; returns how many messages
    /// (not events) were handed to `body`. Every message is destroyed before returning.
    mutating func read(
        _ queue: OpaquePointer, timeoutMilliseconds: Int32, logger: Logger,
        onEndOfPartition: (TopicPartition) -> Void, _ body: (KafkaMessage) throws -> Void
    ) throws -> Int {
        let count = slots.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_consume_batch_queue(queue, timeoutMilliseconds, buffer.baseAddress, buffer.count)
        }
        guard count > 0 else { return 0 }
        defer { for index in 0..<count { rd_kafka_message_destroy(slots[index]) } }
        var delivered = 0
        for index in 0..<count {
            let raw = slots[index]!
            let message = raw.pointee
            if message.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                let partition = TopicPartition(
                    topic: message.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?", partition: message.partition)
                if message.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    onEndOfPartition(partition)
                } else if message.err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET {
                    throw KafkaError(
                        code: message.err.rawValue,
                        message: "\(partition): offset \(message.offset) is outside the partition: \(String(cString: rd_kafka_message_errstr(raw)))")
                } else {
                    logger.warning("kafka consumer: \(KafkaError(message.err, while: "consuming \(partition)"))")
                }
                continue
            }
            var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let timestamp = rd_kafka_message_timestamp(raw, &timestampType)
            try body(KafkaMessage(
                topicHandle: message.rkt,
                partition: message.partition,
                offset: message.offset,
                key: UnsafeRawBufferPointer(start: message.key, count: message.key == nil ? 0 : message.key_len),
                value: UnsafeRawBufferPointer(start: message.payload, count: message.payload == nil ? 0 : message.len),
                timestamp: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp,
                raw: raw))
            delivered += 1
        }
        return delivered
    }
}
