import Foundation
import LifecycleKafka
import Logging
import Testing

/// One loop owning a consumer and a producer sleeps on both and wakes for either.
@Suite("Waiting on a consumer and a producer together", .serialized)
struct WakeupTests {
    static let logger = Logger(label: "test.kafka")
    /// Far longer than any wake-up takes: returning before it means the wait woke, not timed out.
    static let longWait: Int32 = 30_000

    struct Clients {
        let cluster: MockCluster
        let consumer: KafkaConsumer
        let producer: KafkaProducer
        let acknowledged: Acknowledged
    }

    final class Acknowledged: @unchecked Sendable { var tickets: [Int] = [] }

    func clients() throws -> Clients {
        let cluster = try MockCluster()
        try cluster.createTopic("in", partitions: 1)
        try cluster.createTopic("out", partitions: 1)
        let consumer = try KafkaConsumer(
            properties: ["bootstrap.servers": cluster.bootstrapServers, "group.id": "wakeups", "session.timeout.ms": "6000"],
            logger: Self.logger) { _ in [:] }
        try consumer.subscribe(["in"])
        let acknowledged = Acknowledged()
        let producer = try KafkaProducer(properties: ["bootstrap.servers": cluster.bootstrapServers], logger: Self.logger) { delivery in
            if delivery.error == nil { acknowledged.tickets.append(delivery.ticket) }
        }
        return Clients(cluster: cluster, consumer: consumer, producer: producer, acknowledged: acknowledged)
    }

    /// Arms, checks both queues, and sleeps only if both are empty; returns how long it slept.
    func waitOnce(_ clients: Clients, onMessage: () -> Void = {}) throws -> Double {
        var wakeups = Wakeups([clients.consumer, clients.producer])
        wakeups.arm()
        let consumed = try clients.consumer.poll(timeoutMilliseconds: 0) { _ in onMessage() }
        guard consumed == 0, clients.producer.poll() == 0, !clients.consumer.hasQueued else { return 0 }
        let start = Date()
        wakeups.wait(timeoutMilliseconds: Self.longWait)
        return Date().timeIntervalSince(start)
    }

    @Test("a delivery report wakes a loop that is waiting for messages")
    func deliveryReportWakes() throws {
        let clients = try clients()
        try clients.producer.produce(topic: "out", key: Array("k".utf8), value: Array("v".utf8), ticket: 7)
        var slept: [Double] = []
        while clients.acknowledged.tickets.isEmpty && slept.count < 100 && (slept.last ?? 0) < 15 {
            slept.append(try waitOnce(clients))
        }
        #expect(clients.acknowledged.tickets == [7])
        #expect(slept.allSatisfy { $0 < Double(Self.longWait) / 1000 / 2 }, "woken, not timed out: \(slept)")
        try clients.consumer.close()
    }

    @Test("a message wakes a loop that is waiting, once the group has assigned the partition")
    func messageWakes() throws {
        let clients = try clients()
        // Joining the group also wakes the loop (the assignment is an event on the same queue).
        let joinDeadline = Date().addingTimeInterval(60)
        while clients.consumer.assignment.isEmpty && Date() < joinDeadline { _ = try waitOnce(clients) }
        try #require(!clients.consumer.assignment.isEmpty)
        let sender = try KafkaProducer(properties: ["bootstrap.servers": clients.cluster.bootstrapServers], logger: Self.logger) { _ in }
        try sender.produce(topic: "in", key: Array("k".utf8), value: Array("hello".utf8), ticket: 1)
        try sender.flush(timeoutMilliseconds: 10_000)
        var received = 0
        var slept: [Double] = []
        while received == 0 && slept.count < 100 && (slept.last ?? 0) < 15 {
            slept.append(try waitOnce(clients) { received += 1 })
        }
        #expect(received == 1)
        #expect(slept.allSatisfy { $0 < Double(Self.longWait) / 1000 / 2 }, "woken, not timed out: \(slept)")
        try clients.consumer.close()
    }

    @Test("output topics are looked up ahead; with no broker answering, every topic is reported")
    func prepareReportsUnreachableTopics() throws {
        // A port nothing listens on.
        let producer = try KafkaProducer(properties: ["bootstrap.servers": "127.0.0.1:1"], logger: Self.logger) { _ in }
        let failures = producer.prepare(topics: ["a", "b"], timeoutMilliseconds: 500)
        #expect(failures.map(\.topic) == ["a", "b"])

        let clients = try clients()
        #expect(clients.producer.prepare(topics: ["out"], timeoutMilliseconds: 5_000).isEmpty)
        try clients.consumer.close()
    }
}
