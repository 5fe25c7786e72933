import Foundation
import LifecycleCodec
import LifecycleConfig
import LifecycleEngine
import LifecycleKafka
import Logging

/// What the mock-cluster tests of several targets share: events in, keyed like producers key
/// them, and what `replay` says each partition must fire.
public enum StreamFixtures {
    static let logger = Logger(label: "test.fixtures")
    /// The reference playbook's triggers.
    public static let triggerNames = ["churn_risk", "win_back", "activation_nudge", "upgrade_ready", "power_user"]
    public static let holdoutTopic = "lifecycled.holdout"
    /// Every topic the reference playbook's triggers go to: one per trigger, and the holdout topic.
    public static let outputTopics = triggerNames.map { "lifecycled.\($0)" } + [holdoutTopic]

    public static func createOutputTopics(cluster: MockCluster, partitions: Int32) throws {
        for topic in outputTopics { try cluster.createTopic(topic, partitions: partitions) }
    }

    /// Produces JSON event lines to `topic`, each keyed by its `user_id` (as producers must).
    public static func produce(_ lines: [String], to topic: String = "user-events", cluster: MockCluster) throws {
        let producer = try KafkaProducer(properties: ["bootstrap.servers": cluster.bootstrapServers], logger: logger) { _ in }
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let key = (object?["user_id"] as? String) ?? "none"
            try producer.produce(topic: topic, key: Array(key.utf8), value: Array(line.utf8), ticket: 0)
        }
        try producer.flush(timeoutMilliseconds: 10_000)
    }

    /// The topic's messages as each partition holds them (read by a fresh group).
    public static func inputByPartition(cluster: MockCluster, count: Int, topic: String = "user-events") throws -> [Int32: [String]] {
        var lines: [Int32: [String]] = [:]
        let reader = try KafkaConsumer(
            properties: ["bootstrap.servers": cluster.bootstrapServers, "group.id": "input-\(UUID().uuidString)", "session.timeout.ms": "6000"],
            logger: logger) { _ in [:] }
        try reader.subscribe([topic])
        let deadline = Date().addingTimeInterval(20)
        while lines.values.reduce(0, { $0 + $1.count }) < count && Date() < deadline {
            try reader.poll(timeoutMilliseconds: 100) { message in
                lines[message.partition, default: []].append(String(decoding: message.value, as: UTF8.self))
            }
        }
        try reader.close()
        return lines
    }

    /// What `replay` gives: each partition's lines through an engine of its own; the triggers
    /// of all, and the per-arm totals added up.
    public static func replay(_ config: LoadedConfig, _ partitions: [[String]]) -> (triggers: [Trigger], totals: [ArmTotals]) {
        var triggers: [Trigger] = []
        var totals = Array(repeating: ArmTotals(), count: config.compiled.triggerNames.count)
        for lines in partitions {
            var engine = PartitionEngine(rules: config.compiled)
            var decoder = EventDecoder(fields: config.rules.events, propertyPaths: config.compiled.propertyPaths)
            var output = EngineOutput()
            for line in lines {
                var bytes = Array(line.utf8)
                _ = bytes.withUnsafeMutableBytes { raw in
                    decoder.decode(UnsafeRawBufferPointer(raw), fallbackTime: nil) { engine.ingest($0, into: &output) }
                }
            }
            triggers += output.makeTriggers(rules: config.compiled)
            for (trigger, partitionTotals) in engine.armTotals.enumerated() { totals[trigger] += partitionTotals }
        }
        return (triggers, totals)
    }

    /// The trigger ids `replay` gives (see `replay`).
    public static func replayIDs(_ config: LoadedConfig, _ partitions: [[String]]) -> Set<String> {
        Set(replay(config, partitions).triggers.map(\.id))
    }
}
