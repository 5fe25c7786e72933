import Foundation
import LifecycleKafka
import Logging
import Synchronization
import Testing

/// The Kafka adapter against librdkafka's mock cluster: the real protocol over loopback.
@Suite("Kafka adapter on the mock cluster", .serialized)
struct MockClusterTests {
    static let logger = Logger(label: "test.kafka")

    func produce(_ count: Int, to topic: String, cluster: MockCluster, keyPrefix: String = "user") throws -> Int {
        nonisolated(unsafe) var acknowledged = 0
        nonisolated(unsafe) var failed = 0
        let producer = try KafkaProducer(
            properties: ["bootstrap.servers": cluster.bootstrapServers], logger: Self.logger
        ) { delivery in
            if delivery.error == nil { acknowledged += 1 } else { failed += 1 }
        }
        for index in 0..<count {
            try producer.produce(
                topic: topic, key: Array("\(keyPrefix)\(index % 97)".utf8), value: Array(#"{"n":"\#(keyPrefix)-\#(index)"}"#.utf8),
                header: index % 2 == 0 ? ("reason", "even") : nil, ticket: index + 1)
        }
        try producer.flush(timeoutMilliseconds: 10_000)
        #expect(failed == 0)
        return acknowledged
    }

    /// A group member with the tests' session timeout; `rebalance` says where assigned partitions start.
    func groupMember(
        of cluster: MockCluster, group: String, rebalance: @escaping (KafkaConsumer.Rebalance) throws -> [TopicPartition: Int64]
    ) throws -> KafkaConsumer {
        try KafkaConsumer(
            properties: ["bootstrap.servers": cluster.bootstrapServers, "group.id": group, "session.timeout.ms": "6000"],
            logger: Self.logger, rebalance: rebalance)
    }

    func consume(
        until expected: Int, group: String, topic: String, cluster: MockCluster, seconds: Double = 20,
        rebalances: (inout [String]) -> Void = { _ in }
    ) throws -> (values: [String], events: [String], offsets: [TopicPartition: Int64]) {
        nonisolated(unsafe) var events: [String] = []
        let consumer = try groupMember(of: cluster, group: group) { rebalance in
            switch rebalance {
            case .assigned(let partitions): events.append("assigned \(partitions.count)")
            case .revoked(let partitions): events.append("revoked \(partitions.count)")
            }
            return [:]
        }
        try consumer.subscribe([topic])
        var values: [String] = []
        var next: [TopicPartition: Int64] = [:]
        let deadline = Date().addingTimeInterval(seconds)
        while values.count < expected && Date() < deadline {
            try consumer.poll(timeoutMilliseconds: 100) { message in
                values.append(String(decoding: message.value, as: UTF8.self))
                let partition = TopicPartition(topic: message.topic, partition: message.partition)
                #expect(message.offset >= next[partition, default: 0], "offsets go forward within a partition")
                next[partition] = message.offset + 1
            }
        }
        try consumer.commit(next)
        try consumer.close()
        return (values, events, next)
    }

    @Test("messages produced with delivery reports are all consumed once, in order per partition")
    func produceAndConsume() throws {
        let cluster = try MockCluster()
        try cluster.createTopic("events", partitions: 4)
        #expect(try produce(2_000, to: "events", cluster: cluster) == 2_000)
        let result = try consume(until: 2_000, group: "g1", topic: "events", cluster: cluster)
        #expect(result.values.count == 2_000)
        #expect(Set(result.values).count == 2_000)
        #expect(result.offsets.count == 4)
        #expect(result.events.first == "assigned 4")
    }

    @Test("a restarted group member resumes from the committed offsets")
    func resumeFromCommit() throws {
        let cluster = try MockCluster()
        try cluster.createTopic("events", partitions: 2)
        _ = try produce(300, to: "events", cluster: cluster)
        let first = try consume(until: 300, group: "g2", topic: "events", cluster: cluster)
        #expect(first.values.count == 300)
        _ = try produce(50, to: "events", cluster: cluster, keyPrefix: "later")
        let second = try consume(until: 50, group: "g2", topic: "events", cluster: cluster)
        #expect(second.values.count == 50)
        #expect(Set(first.values).isDisjoint(with: second.values))
    }

    @Test("a partition held back for a restore and revoked before it started fetches when assigned again with an offset")
    func heldBackThenReassigned() throws {
        let cluster = try MockCluster()
        try cluster.createTopic("held", partitions: 1)
        try cluster.createTopic("other", partitions: 1)
        #expect(try produce(20, to: "held", cluster: cluster) == 20)
        nonisolated(unsafe) var assignments = 0
        let consumer = try groupMember(of: cluster, group: "g-held") { rebalance in
            guard case .assigned(let partitions) = rebalance else { return [:] }
            assignments += 1
            // The first time its state is still to be restored; then it starts from the first offset.
            return Dictionary(uniqueKeysWithValues: partitions.map { ($0, assignments == 1 ? KafkaConsumer.startLater : 0) })
        }
        var values = 0
        func poll(for seconds: Double, until done: () -> Bool) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while !done() && Date() < deadline { try consumer.poll(timeoutMilliseconds: 100) { _ in values += 1 } }
        }
        try consumer.subscribe(["held"])
        try poll(for: 20) { assignments == 1 }
        try #require(assignments == 1)
        try poll(for: 1) { false }
        #expect(values == 0, "held back: nothing fetched")
        // Another subscription: the (eager) group takes everything back and assigns it anew.
        try consumer.subscribe(["held", "other"])
        try poll(for: 20) { values == 20 }
        #expect(assignments == 2)
        #expect(values == 20)
        try consumer.close()
    }

    @Test("a held partition fetches nothing until resumed, then goes on exactly from the offset given")
    func holdAndResume() throws {
        let cluster = try MockCluster()
        try cluster.createTopic("reloading", partitions: 1)
        #expect(try produce(100, to: "reloading", cluster: cluster) == 100)
        let consumer = try groupMember(of: cluster, group: "g-hold") { rebalance in
            guard case .assigned(let partitions) = rebalance else { return [:] }
            return Dictionary(uniqueKeysWithValues: partitions.map { ($0, 0) })
        }
        var offsets: [Int64] = []
        func poll(for seconds: Double, until done: () -> Bool) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while !done() && Date() < deadline { try consumer.poll(timeoutMilliseconds: 50) { offsets.append($0.offset) } }
        }
        try consumer.subscribe(["reloading"])
        try poll(for: 20) { offsets.count == 100 }
        try #require(offsets == Array(0..<100))

        let partition = TopicPartition(topic: "reloading", partition: 0)
        try consumer.hold([partition])
        #expect(try produce(50, to: "reloading", cluster: cluster) == 50)
        try poll(for: 1.5) { false }
        #expect(offsets.count == 100, "held: nothing fetched while the 50 new messages wait")

        // Resumed behind where it stopped: the offset given wins over librdkafka's own position.
        try consumer.resume(at: [partition: 90])
        try poll(for: 20) { offsets.count == 160 }
        #expect(Array(offsets.dropFirst(100)) == Array(90..<150))
        try consumer.close()
    }

    @Test("a refused offset commit and a lost assignment count as Kafka errors (librdkafka only logs them)")
    func uncountedErrors() throws {
        let cluster = try MockCluster()
        try cluster.createTopic("events", partitions: 1)
        #expect(try produce(10, to: "events", cluster: cluster) == 10)
        nonisolated(unsafe) var revoked = 0
        let consumer = try groupMember(of: cluster, group: "g-errors") { rebalance in
            if case .revoked = rebalance { revoked += 1 }
            return [:]
        }
        try consumer.subscribe(["events"])
        var next: [TopicPartition: Int64] = [:]
        var errors = 0
        func poll(for seconds: Double, until done: () -> Bool) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while !done() && Date() < deadline {
                try consumer.poll(timeoutMilliseconds: 100) { next[TopicPartition(topic: $0.topic, partition: $0.partition)] = $0.offset + 1 }
                errors += consumer.takeErrorsReported()
            }
        }
        try poll(for: 20) { next.values.reduce(0, +) == 10 }
        try #require(next.values.reduce(0, +) == 10)
        errors = 0

        cluster.failNextRequests(apiKey: 8, with: [28])  // OffsetCommit: INVALID_COMMIT_OFFSET_SIZE
        try consumer.commit(next, wait: false)
        try poll(for: 10) { errors > 0 }
        #expect(errors == 1, "the refused commit")

        errors = 0
        cluster.failNextRequests(apiKey: 12, with: [25])  // Heartbeat: UNKNOWN_MEMBER_ID, the member was fenced
        try poll(for: 15) { revoked > 0 }
        #expect(revoked == 1)
        #expect(errors == 1, "the lost assignment")
        try consumer.close()
    }

    @Test("librdkafka's logs reach the logger on the thread that polls the client, never on librdkafka's own threads")
    func logsOnOwnerThread() throws {
        let records = ThreadRecords()
        var logger = Logger(label: "test.kafka.logs") { _ in ThreadRecordingHandler(records: records) }
        logger.logLevel = .debug
        // Nothing listens there: the broker thread logs each failed connection.
        let producer = try KafkaProducer(properties: ["bootstrap.servers": "127.0.0.1:1"], logger: logger) { _ in }
        let deadline = Date().addingTimeInterval(5)
        while !records.lines.contains(where: { $0.message.contains("Connection refused") }) && Date() < deadline {
            producer.poll(timeoutMilliseconds: 100)
        }
        let lines = records.lines
        #expect(lines.contains { $0.message.contains("Connection refused") }, "the broker thread's failed connections were logged")
        #expect(lines.allSatisfy { pthread_equal($0.thread, pthread_self()) != 0 }, "every line on this, the polling thread")
    }

    @Test("a bad librdkafka property is reported by name, as a configuration error")
    func badProperty() {
        #expect {
            _ = try KafkaProducer(properties: ["no.such.property": "1"], logger: Self.logger) { _ in }
        } throws: { error in
            "\(error)".contains("no.such.property") && (error as? KafkaError)?.kind == .configuration
        }
    }
}

/// librdkafka's log lines (metadata source "librdkafka") and the threads they were logged on.
final class ThreadRecords: Sendable {
    private let recorded = Mutex<[(thread: pthread_t, message: String)]>([])
    var lines: [(thread: pthread_t, message: String)] { recorded.withLock { $0 } }
    func append(_ thread: pthread_t, _ message: String) { recorded.withLock { $0.append((thread, message)) } }
}

struct ThreadRecordingHandler: LogHandler {
    let records: ThreadRecords
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        if event.metadata?["source"] == "librdkafka" { records.append(pthread_self(), "\(event.message)") }
    }
}
