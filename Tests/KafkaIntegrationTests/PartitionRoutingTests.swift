import Foundation
import LifecycleKafka
import Logging
import Testing

/// Partitions routed to queues of their own: how several threads each consume their own
/// partitions of one group member.
@Suite("Partition routing on the mock cluster", .serialized)
struct PartitionRoutingTests {
    static let logger = Logger(label: "test.routing")

    /// Two one-partition topics, so that where each message goes does not depend on a partitioner.
    func send(_ values: [(topic: String, value: String)], cluster: MockCluster) throws {
        let producer = try KafkaProducer(properties: ["bootstrap.servers": cluster.bootstrapServers], logger: Self.logger) { _ in }
        for (topic, value) in values {
            try producer.produce(topic: topic, key: [], value: Array(value.utf8), ticket: 0)
        }
        try producer.flush(timeoutMilliseconds: 10_000)
    }

    @Test("a routed partition delivers to its queue, never to the consumer's; a holding queue forwarded later delivers all, in order")
    func routing() throws {
        let cluster = try MockCluster()
        for topic in ["left", "right"] { try cluster.createTopic(topic, partitions: 1) }
        final class Queues: @unchecked Sendable {
            var worker: MessageQueue?
            var holding: MessageQueue?
        }
        let queues = Queues()
        nonisolated(unsafe) var consumerRef: KafkaConsumer?
        let consumer = try KafkaConsumer(
            properties: ["bootstrap.servers": cluster.bootstrapServers, "group.id": "routing", "session.timeout.ms": "6000",
                         "enable.partition.eof": "true"],
            logger: Self.logger
        ) { rebalance in
            // Routed in the handler, before librdkafka assigns: nothing ever reaches the consumer's queue.
            if case .assigned(let partitions) = rebalance, let consumer = consumerRef {
                for partition in partitions {
                    try consumer.route(partition, to: partition.topic == "left" ? queues.worker! : queues.holding!)
                }
            }
            return [:]
        }
        consumerRef = consumer
        queues.worker = try MessageQueue(consumer: consumer, wakeable: true)
        queues.holding = try MessageQueue(consumer: consumer, wakeable: false)
        try consumer.subscribe(["left", "right"])
        try send([("left", "a1"), ("right", "b1"), ("left", "a2"), ("right", "b2")], cluster: cluster)

        var onConsumer = 0
        var received: [String] = []
        var ended: Set<String> = []
        func pump(until done: () -> Bool) throws {
            let deadline = Date().addingTimeInterval(30)
            while !done() && Date() < deadline {
                onConsumer += try consumer.poll(timeoutMilliseconds: 20) { _ in }
                try queues.worker!.poll(timeoutMilliseconds: 20, onEndOfPartition: { ended.insert($0.topic) }) { message in
                    received.append(String(decoding: message.value, as: UTF8.self))
                }
            }
        }
        try pump { received.count == 2 && ended.contains("left") }
        #expect(received == ["a1", "a2"], "only the partition routed here; the other waits in its holding queue")
        #expect(ended == ["left"])

        // Forwarded: what waited arrives first, then what comes later, and the end of partition.
        queues.holding!.forward(to: queues.worker!)
        try send([("right", "b3")], cluster: cluster)
        try pump { received.count == 5 && ended.contains("right") }
        #expect(received == ["a1", "a2", "b1", "b2", "b3"])
        #expect(onConsumer == 0, "no message reached the consumer's own queue")

        for partition in consumer.assignment { consumer.unroute(partition) }
        try consumer.close()
        consumerRef = nil
    }
}
