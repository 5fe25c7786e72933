import Foundation
import LifecycleEngine

/// The non-rule sections of the config: where to read and write, and how to run.
public struct DaemonSettings: Sendable, Equatable {
    public struct Kafka: Sendable, Equatable {
        public var brokers = "localhost:9092"
        public var groupID = "lifecycled"
        public var inputTopics = ["user-events"]
        public var deadLetterTopic = "lifecycled.dlq"
        /// Where the control arm's triggers go (never to an action topic).
        public var holdoutTopic = "lifecycled.holdout"
        /// Where alert changes go (key: the alert's name).
        public var alertsTopic = "lifecycled.alerts"
        /// Trigger name → output topic (`topic:` on the trigger, default `lifecycled.<trigger>`).
        public var triggerTopics: [String: String] = [:]
        /// Passed to librdkafka unchanged (SASL, TLS, tuning); values as text.
        public var properties: [String: String] = [:]
        /// Whether the daemon may create the changelog topics it needs.
        public var createTopics = true
        /// Input topic → its changelog topic, where not the default `<group_id>.<topic>.changelog`.
        public var changelogTopics: [String: String] = [:]
        public init() {}

        /// The compacted topic that keeps the state of `inputTopic`'s partitions.
        public func changelogTopic(for inputTopic: String) -> String {
            changelogTopics[inputTopic] ?? "\(groupID).\(inputTopic).changelog"
        }
    }

    public struct HTTP: Sendable, Equatable {
        public var listen = "127.0.0.1:9464"
        public init() {}
        /// The host part, without the brackets of an IPv6 address (`[::1]:9464`).
        public var host: String {
            String(listen[..<(listen.lastIndex(of: ":") ?? listen.endIndex)]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        }
        public var port: Int { listen.lastIndex(of: ":").flatMap { Int(listen[listen.index(after: $0)...]) } ?? 9464 }
    }

    public struct State: Sendable, Equatable {
        public var directory = "/var/lib/lifecycled"
        public var checkpointInterval: Int64 = 10 * Millis.second
        /// Whether each partition's state is also kept in a changelog topic, so it moves
        /// with the partition to another instance.
        public var changelog = true
        public init() {}
    }

    public struct Processing: Sendable, Equatable {
        /// Processing threads (partitions are spread over them); nil: as many as the cores
        /// the process may use.
        public var threads: Int?
        public static let maxThreads = 256
        public init() {}
    }

    public var kafka = Kafka()
    public var http = HTTP()
    public var state = State()
    public var processing = Processing()
    public init() {}
}

/// A config that parsed, validated and compiled.
public struct LoadedConfig: Sendable {
    public var rules: Rules
    public var compiled: CompiledRules
    public var settings: DaemonSettings
    public var configVersion: String
}
