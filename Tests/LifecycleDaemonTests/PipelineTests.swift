import Foundation
import LifecycleCodec
import LifecycleConfig
import LifecycleDaemon
import LifecycleEngine
import LifecycleKafka
import Logging
import Metrics
import MetricsTestKit
import LifecycleTestSupport
import Synchronization
import Testing

/// The ids of the triggers a pipeline produced, heard from its processing threads.
final class TriggerIDs: PipelineObserver {
    private let heard = Mutex<[String]>([])
    var ids: [String] { heard.withLock { $0 } }
    func triggerProduced(_ trigger: Trigger) { heard.withLock { $0.append(trigger.id) } }
}

/// The pipeline against librdkafka's mock cluster: the real Kafka protocol over loopback.
@Suite("Trigger pipeline on the mock cluster", .serialized)
struct PipelineTests {
    static let logger = Logger(label: "test.pipeline")
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let sample = try! String(contentsOf: repository.appendingPathComponent("config/examples/sample-events.ndjson"), encoding: .utf8)
        .split(separator: "\n").map(String.init)
    static let triggerNames = StreamFixtures.triggerNames

    /// The reference playbook, changed by `edit`, pointed at the mock cluster and a fresh state
    /// directory; the group's changelog topic is created with the input topic's `partitions`
    /// (the mock cannot create topics on request).
    static func config(
        cluster: MockCluster, group: String, stateDirectory: String, partitions: Int32, edit: (String) -> String = { $0 }
    ) throws -> LoadedConfig {
        try cluster.createTopic("\(group).user-events.changelog", partitions: partitions)
        var text = edit(try String(contentsOf: repository.appendingPathComponent("config/lifecycled.yaml"), encoding: .utf8))
        text = text.replacingOccurrences(of: "brokers: \"localhost:9092\"", with: "brokers: \"\(cluster.bootstrapServers)\"")
            .replacingOccurrences(of: "group_id: lifecycled", with: "group_id: \(group)")
            .replacingOccurrences(of: "dir: /var/lib/lifecycled", with: "dir: \(stateDirectory)")
            .replacingOccurrences(of: "properties: {}", with: "properties: {session.timeout.ms: \"6000\"}")
            // The sample runs into 2027, ahead of the wall clock the future limit is measured from.
            .replacingOccurrences(of: "max_future: 1h", with: "max_future: 3650d")
        return try ConfigLoader.load(text: text, file: "test.yaml")
    }

    /// A mock cluster with a one-partition input topic holding `events`, and the output topics.
    static func onePartitionCluster(events: [String]) throws -> MockCluster {
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 1)
        try StreamFixtures.createOutputTopics(cluster: cluster, partitions: 1)
        try StreamFixtures.produce(events, cluster: cluster)
        return cluster
    }

    static func temporaryDirectory() -> String {
        TestDirectory.path("pipeline")
    }

    /// Runs a pipeline until it has consumed `count` events (or `seconds` pass), publishes to
    /// `board`, then stops it.
    static func run(
        _ config: LoadedConfig, until count: Int, seconds: Double = 30, metrics: any MetricsFactory = NOOPMetricsHandler.instance,
        board: StatusBoard = StatusBoard()
    ) throws -> PipelineCounters {
        let pipeline = try PipelineCoordinator(config: config, logger: logger, wallClock: { 0 }, metrics: metrics)
        let deadline = Date().addingTimeInterval(seconds)
        // Until the events are in and every partition restored (the board then shows all state).
        repeat {
            try pipeline.step()
            pipeline.publish(to: board, now: 0)
        } while (pipeline.counters.eventsConsumed < count || !board.current.ready) && Date() < deadline
        try pipeline.stop()
        return pipeline.counters
    }

    /// Every message on `topics` (read by a fresh group), with its topic and the header `header` if asked.
    static func read(_ topics: [String], expecting count: Int, cluster: MockCluster, header: String? = nil)
        throws -> [(topic: String, key: String, value: String, header: String?)]
    {
        let consumer = try KafkaConsumer(
            properties: ["bootstrap.servers": cluster.bootstrapServers, "group.id": "reader-\(UUID().uuidString)",
                         "session.timeout.ms": "6000"],
            logger: logger) { _ in [:] }
        try consumer.subscribe(topics)
        var messages: [(topic: String, key: String, value: String, header: String?)] = []
        let deadline = Date().addingTimeInterval(count == 0 ? 6 : 20)
        while messages.count < count || count == 0, Date() < deadline {
            try consumer.poll(timeoutMilliseconds: 100) { message in
                messages.append((message.topic, String(decoding: message.key, as: UTF8.self), String(decoding: message.value, as: UTF8.self),
                                 header.flatMap { message.header($0) }))
            }
        }
        try consumer.close()
        return messages
    }

    @Test("a message with a 1 MB key is dead-lettered with its key cut, and says so; a dead letter Kafka refuses is counted, never fatal")
    func hugeDeadLetters() throws {
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 1)
        try StreamFixtures.createOutputTopics(cluster: cluster, partitions: 1)
        try cluster.createTopic("lifecycled.dlq", partitions: 1)
        let producer = try KafkaProducer(
            properties: ["bootstrap.servers": cluster.bootstrapServers, "message.max.bytes": "4000000"], logger: Self.logger) { _ in }
        let hugeKey = [UInt8](repeating: UInt8(ascii: "k"), count: 1_000_000)
        try producer.produce(topic: "user-events", key: hugeKey, value: Array("not json".utf8), ticket: 0)
        // Not too large for the rules (their limit is raised below), but too large for Kafka.
        try producer.produce(topic: "user-events", key: Array("big".utf8), value: Array(repeating: UInt8(ascii: "x"), count: 1_500_000), ticket: 1)
        try producer.flush(timeoutMilliseconds: 10_000)
        try StreamFixtures.produce(Self.sample, cluster: cluster)
        let config = try Self.config(cluster: cluster, group: "huge", stateDirectory: Self.temporaryDirectory(), partitions: 1) {
            $0.replacingOccurrences(of: "max_event_bytes: 65536", with: "max_event_bytes: 2000000")
        }
        let result = try Self.run(config, until: Self.sample.count + 2)
        #expect(result.eventsConsumed == Self.sample.count + 2)
        #expect(result.eventsRejected == ["not_json": 2])
        #expect(result.deadLettersFailed == 1)
        #expect(result.triggersProduced > 0, "the partition went on after both")
        let letters = try Self.read(["lifecycled.dlq"], expecting: 1, cluster: cluster, header: PipelineCoordinator.deadLetterReasonHeader)
        #expect(letters.map(\.key) == [String(repeating: "k", count: 1024)])
        #expect(letters.map(\.header) == ["not_json; key of 1000000 bytes, first 1024 kept"])
    }

    @Test("events in, triggers out on their topics, bad input to the dead-letter topic, all counted in the metrics; a restart re-sends nothing")
    func endToEnd() throws {
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 4)
        try StreamFixtures.createOutputTopics(cluster: cluster, partitions: 2)
        try cluster.createTopic("lifecycled.dlq", partitions: 1)
        let oversized = #"{"user_id":"big","pad":""# + String(repeating: "x", count: 70_000) + #""}"#
        // A wrong producer clock too: valid, but decades ahead of the wall clock (events.max_future).
        // (The sample's own events reach into 2027; the test's limit is ten years.)
        let bad = [("x", "not json"), ("y", #"{"event":"login","ts":1795392000000}"#), ("z", #"{"user_id":"z","event":"login","ts":"soon"}"#),
                   ("w", #"{"user_id":"w","event":"login","ts":"2089-12-31T00:00:00Z"}"#), ("big", oversized)]
        try StreamFixtures.produce(Self.sample + bad.map(\.1), cluster: cluster)
        let state = Self.temporaryDirectory()
        let config = try Self.config(cluster: cluster, group: "lifecycled-e2e", stateDirectory: state, partitions: 4)

        let metrics = TestMetrics()
        let firstBoard = StatusBoard()
        let first = try Self.run(config, until: Self.sample.count + bad.count, metrics: metrics, board: firstBoard)
        #expect(first.eventsConsumed == Self.sample.count + bad.count)
        #expect(first.eventsRejected == ["not_json": 1, "missing_user_id": 1, "bad_time": 2, "too_large": 1])
        #expect(first.triggersProduced > 0)
        // What the counters held at the publish is what the metrics got; each acknowledged
        // trigger (all caused by an event here) was timed.
        #expect(metrics.counterTotal(label: "lifecycled_events_consumed_total") == Int64(first.eventsConsumed))
        for (reason, count) in first.eventsRejected {
            #expect(metrics.counterTotal(label: "lifecycled_events_invalid_total", dimensions: [("reason", reason)]) == Int64(count))
        }
        for name in Self.triggerNames {
            for arm in Arm.allCases {
                let key = TriggerArm(name, arm)
                for (label, counts) in [(DaemonMetrics.triggersFiredLabel, first.triggersByArm), (DaemonMetrics.conversionsLabel, first.conversionsByArm)] {
                    #expect(metrics.counterTotal(label: label, dimensions: DaemonMetrics.dimensions(key)) == Int64(counts[key, default: 0]),
                            "\(label) \(name) \(arm)")
                }
            }
        }
        #expect(first.triggersByArm.values.reduce(0, +) == first.triggersProduced)
        // The board's per-arm totals (from the engines) agree with what was produced.
        let totals = Dictionary(uniqueKeysWithValues: firstBoard.current.triggers.map { ($0.name, $0.totals) })
        for (key, count) in first.triggersByArm { #expect(totals[key.trigger]?[key.arm].fired == count, "\(key)") }
        #expect(try metrics.expectGauge("lifecycled_ready").lastValue == 1)
        #expect(try metrics.expectGauge("lifecycled_users_tracked").lastValue == 4)  // the sample's users but erin, deleted
        // The engines' heap bytes: more than the 4 users' records, far less than a megabyte.
        let stateBytes = try #require(try metrics.expectGauge("lifecycled_state_bytes").lastValue)
        #expect(stateBytes > 4 * 40 && stateBytes < 1_048_576, "\(stateBytes)")
        #expect(try metrics.expectTimer(DaemonMetrics.latencyLabel).values.count == first.triggersProduced)

        let triggers = try Self.read(StreamFixtures.outputTopics, expecting: first.triggersProduced, cluster: cluster)
        #expect(triggers.count == first.triggersProduced)
        for trigger in triggers {
            let object = try #require(JSONSerialization.jsonObject(with: Data(trigger.value.utf8)) as? [String: Any])
            #expect(object["user_id"] as? String == trigger.key, "keyed by user id")
            #expect((object["id"] as? String)?.count == 32)
            #expect(object["fired_at"] is Int)
        }
        let letters = try Self.read(["lifecycled.dlq"], expecting: 5, cluster: cluster, header: PipelineCoordinator.deadLetterReasonHeader)
        // Dead letters carry the message unchanged, but an oversized one is cut to the limit.
        #expect(Set(letters.map(\.value)) == Set(bad.map(\.1).dropLast() + [String(oversized.prefix(65_536))]))
        #expect(Set(letters.compactMap(\.header))
            == ["not_json", "missing_user_id", "bad_time", "too_large; \(oversized.utf8.count) bytes, first 65536 kept"])
        #expect(FileManager.default.fileExists(atPath: "\(state)/user-events.0.checkpoint"))

        // Restarted on the same state and group with one new event: only that event is
        // consumed (the checkpoints' offsets were used), and nothing is re-sent.
        try StreamFixtures.produce([#"{"user_id":"newcomer","event":"page_view","ts":1797000000000}"#], cluster: cluster)
        let secondBoard = StatusBoard()
        let second = try Self.run(config, until: 1, seconds: 20, board: secondBoard)
        #expect(second.eventsConsumed == 1)
        #expect(second.triggersProduced == 0)
        // The per-arm totals came back with the state.
        #expect(secondBoard.current.triggers.map(\.totals) == firstBoard.current.triggers.map(\.totals))
        #expect(firstBoard.current.triggers.contains { $0.totals.fired > 0 })
    }

    @Test("a state directory from another Kafka cluster (a recreated one with the same topic) is refused, naming the checkpoint and the clusters")
    func checkpointOfAnotherCluster() throws {
        let first = try Self.onePartitionCluster(events: Array(Self.sample.prefix(10)))
        let state = Self.temporaryDirectory()
        #expect(try Self.run(Self.config(cluster: first, group: "moved", stateDirectory: state, partitions: 1), until: 10).eventsConsumed == 10)

        // Another cluster, the same names: the checkpoint's offset would point into unrelated events.
        let second = try Self.onePartitionCluster(events: Array(Self.sample.prefix(20)))
        let pipeline = try PipelineCoordinator(
            config: Self.config(cluster: second, group: "moved", stateDirectory: state, partitions: 1), logger: Self.logger, wallClock: { 0 })
        let deadline = Date().addingTimeInterval(30)
        var failure: Error?
        while failure == nil && Date() < deadline {
            do { try pipeline.step() } catch { failure = error }
        }
        let text = "\(try #require(failure))"
        #expect(text.hasPrefix("\(state)/user-events.0.checkpoint: taken on Kafka cluster mockCluster"), "\(text)")
        #expect(text.contains("but the brokers now are cluster mockCluster"))
        #expect(pipeline.counters.eventsConsumed == 0)
        withExtendedLifetime(first) {}  // a mock cluster's id comes from its address: two at once differ
    }

    @Test("a checkpoint's offset beyond the topic's end stops the pipeline before it fetches, naming the partition, the offset, the end and what to do")
    func checkpointOffsetOutsideTopic() throws {
        let cluster = try Self.onePartitionCluster(events: Array(Self.sample.prefix(10)))
        let state = Self.temporaryDirectory()
        var config = try Self.config(cluster: cluster, group: "out-of-range", stateDirectory: state, partitions: 1)
        // The local checkpoint alone (a changelog would hold the real position and correct it).
        config.settings.state.changelog = false
        #expect(try Self.run(config, until: 10).eventsConsumed == 10)

        // As if the topic had been recreated: the checkpoint points past everything it holds.
        let store = CheckpointStore(directory: state)
        var checkpoint = try #require(try store.read(topic: "user-events", partition: 0))
        #expect(checkpoint.nextOffset == 10)
        checkpoint.nextOffset = 1_000
        try store.write(checkpoint, topic: "user-events", partition: 0)

        let pipeline = try PipelineCoordinator(config: config, logger: Self.logger, wallClock: { 0 })
        let deadline = Date().addingTimeInterval(30)
        var failure: KafkaError?
        while failure == nil && Date() < deadline {
            do { try pipeline.step() } catch let error as KafkaError { failure = error }
        }
        let error = try #require(failure)
        #expect(error.isOffsetOutOfRange)
        // Found by the daemon itself against the partition's end, not left to the broker's answer.
        #expect(error.message.contains("user-events[0]: offset 1000 is beyond the partition's end (10)"), "\(error)")
        #expect(error.message.contains("auto.offset.reset: earliest") && error.message.contains(state), "\(error)")
        #expect(pipeline.counters.eventsConsumed == 0, "nothing re-read from the start")
    }

    @Test("on one partition whose timers fall before its last event, run and replay give the same trigger ids")
    func runMatchesReplay() throws {
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 1)
        try StreamFixtures.createOutputTopics(cluster: cluster, partitions: 1)
        try StreamFixtures.produce(Self.sample, cluster: cluster)
        let config = try Self.config(cluster: cluster, group: "lifecycled-replay", stateDirectory: Self.temporaryDirectory(), partitions: 1)
        let counters = try Self.run(config, until: Self.sample.count)
        let live = try Self.read(StreamFixtures.outputTopics, expecting: counters.triggersProduced, cluster: cluster)
        let liveIDs = Set(try live.map { try #require(JSONSerialization.jsonObject(with: Data($0.value.utf8)) as? [String: Any])["id"] as? String })

        let replayed = StreamFixtures.replayIDs(config, [Self.sample])
        #expect(replayed.count >= 5)
        #expect(liveIDs == replayed)
    }
}

@Suite("Consumer group of two on the mock cluster", .serialized)
struct ConsumerGroupTests {
    @Test("two members split the partitions, and each one's triggers are those of its partitions (eager and cooperative rebalancing)",
          arguments: ["range,roundrobin", "cooperative-sticky"])
    func twoMembers(strategy: String) throws {
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 4)
        try StreamFixtures.createOutputTopics(cluster: cluster, partitions: 1)
        let heard = [TriggerIDs(), TriggerIDs()]
        let members = try heard.map { ids in
            var config = try PipelineTests.config(cluster: cluster, group: "pair", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 4)
            config.settings.kafka.properties["partition.assignment.strategy"] = strategy
            return try PipelineCoordinator(config: config, logger: PipelineTests.logger, wallClock: { 0 }, observer: ids)
        }
        let joinDeadline = Date().addingTimeInterval(30)
        while members.contains(where: { $0.assignedPartitions.isEmpty }) && Date() < joinDeadline {
            for member in members { try member.step(timeoutMilliseconds: 50) }
        }
        let owned = members.map { Set($0.assignedPartitions.map(\.partition)) }
        #expect(owned.allSatisfy { !$0.isEmpty }, "both members own partitions: \(owned)")
        #expect(owned[0].isDisjoint(with: owned[1]) && owned[0].union(owned[1]) == [0, 1, 2, 3])

        try StreamFixtures.produce(PipelineTests.sample, cluster: cluster)
        let deadline = Date().addingTimeInterval(30)
        while members.reduce(0, { $0 + $1.counters.eventsConsumed }) < PipelineTests.sample.count && Date() < deadline {
            for member in members { try member.step(timeoutMilliseconds: 50) }
        }
        #expect(members.map(\.counters.eventsConsumed).allSatisfy { $0 > 0 })
        #expect(members.reduce(0) { $0 + $1.counters.eventsConsumed } == PipelineTests.sample.count)
        for member in members { try member.stop() }

        // What each partition should fire: its own events, replayed alone.
        let config = try PipelineTests.config(cluster: cluster, group: "unused", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 4)
        let linesByPartition = try StreamFixtures.inputByPartition(cluster: cluster, count: PipelineTests.sample.count)
        func expected(_ partitions: Set<Int32>) -> Set<String> {
            StreamFixtures.replayIDs(config, partitions.map { linesByPartition[$0] ?? [] })
        }
        let produced = heard.map(\.ids)
        for index in members.indices {
            #expect(Set(produced[index]) == expected(owned[index]), "member \(index) owning \(owned[index].sorted())")
        }
        #expect(!produced[0].isEmpty || !produced[1].isEmpty)
    }
}

@Suite("Broker outage on the mock cluster", .serialized)
struct BrokerOutageTests {
    @Test("while the broker is down the pipeline stays up and reports not ready; then it reconnects and catches up")
    func outage() throws {
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 1)
        try StreamFixtures.createOutputTopics(cluster: cluster, partitions: 1)
        let config = try PipelineTests.config(cluster: cluster, group: "outage", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 1)
        let pipeline = try PipelineCoordinator(config: config, logger: PipelineTests.logger, wallClock: { 0 })
        let board = StatusBoard()
        func stepFor(_ seconds: Double, until done: () -> Bool) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while !done() && Date() < deadline {
                try pipeline.step(timeoutMilliseconds: 50)
                pipeline.publish(to: board, now: 0)
            }
        }
        try stepFor(30) { board.current.ready }
        #expect(board.current.ready)

        #expect(pipeline.counters.kafkaErrors == 0)
        try cluster.setBroker(1, up: false)
        try stepFor(30) { !board.current.ready }
        #expect(!board.current.ready)
        #expect(pipeline.counters.kafkaErrors > 0, "the clients' errors during the outage are counted")
        #expect(board.current.notReadyReason.contains("unreachable"), "\(board.current.notReadyReason)")

        try cluster.setBroker(1, up: true)
        try StreamFixtures.produce(Array(PipelineTests.sample.prefix(20)), cluster: cluster)
        try stepFor(40) { board.current.ready && pipeline.counters.eventsConsumed == 20 }
        #expect(board.current.ready)
        #expect(pipeline.counters.eventsConsumed == 20)
        try pipeline.stop()
    }
}
