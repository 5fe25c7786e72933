import CRdKafka
import Logging

/// A queue of a consumer's messages that the partitions routed to it deliver to, read by
/// one thread: how several threads each consume their own partitions of one group member.
///
/// librdkafka's queues are thread-safe; what is not is this object's batch buffer, so one
/// thread reads it at a time (the processing thread it was handed to). A queue can itself be
/// forwarded to another queue: messages of a partition still being restored wait in a queue
/// of their own, which is forwarded to its processing thread's queue once the state is ready.
/// Keeps its consumer alive: librdkafka's queues must go before the client does.
public final class MessageQueue: @unchecked Sendable {
    let queue: OpaquePointer
    private let consumer: KafkaConsumer
    private let wakeup: QueueWakeup?
    private var batch: MessageBatch

    /// - Parameter wakeable: whether a thread will sleep on it (`Wakeable`), which costs a pipe.
    public init(consumer: KafkaConsumer, batchSize: Int = 1024, wakeable: Bool) throws(KafkaError) {
        let queue = rd_kafka_queue_new(consumer.handle)!
        if wakeable {
            do {
                wakeup = try QueueWakeup(queue: queue)
            } catch {
                rd_kafka_queue_destroy(queue)
                throw error
            }
        } else {
            wakeup = nil
        }
        self.queue = queue
        self.consumer = consumer
        batch = MessageBatch(size: batchSize)
    }

    deinit {
        wakeup?.close()
        rd_kafka_queue_destroy(queue)
    }

    /// Waits up to `timeoutMilliseconds` for a batch and hands each message to `body`;
    /// `onEndOfPartition` hears of partitions read to their end. Returns the messages handed over.
    @discardableResult
    public func poll(
        timeoutMilliseconds: Int32, onEndOfPartition: (TopicPartition) -> Void, _ body: (KafkaMessage) throws -> Void
    ) throws -> Int {
        try batch.read(queue, timeoutMilliseconds: timeoutMilliseconds, logger: consumer.logger, onEndOfPartition: onEndOfPartition, body)
    }

    /// Whether messages or events are waiting.
    public var hasQueued: Bool { rd_kafka_queue_length(queue) > 0 }

    /// Sends what is queued here, and everything that arrives later, on to `destination`.
    public func forward(to destination: MessageQueue) {
        rd_kafka_queue_forward(queue, destination.queue)
    }
}

extension MessageQueue: Wakeable {
    public var wakeupDescriptor: Int32 { wakeup?.readEnd ?? -1 }
    public func drainWakeups() { wakeup?.drain() }
}
