import LifecycleEngine
import Yams

/// Reads the daemon sections (kafka, http, state, processing) with their defaults.
struct SettingsReader {
    let yaml: YAMLCursor

    /// Records each problem (see `YAMLCursor.recover`); a field that fails keeps its default.
    func settings(_ top: Node.Mapping, triggerTopics: [String: String]) -> DaemonSettings {
        var settings = DaemonSettings()
        settings.kafka.triggerTopics = triggerTopics
        section(top, "kafka", ["brokers", "group_id", "input_topics", "dead_letter_topic", "properties", "create_topics", "changelog_topics", "holdout_topic", "alerts_topic"]) { (map) throws(ConfigError) in
            yaml.read(map, "brokers", of: "kafka", into: &settings.kafka.brokers, yaml.nonEmptyString)
            yaml.read(map, "group_id", of: "kafka", into: &settings.kafka.groupID, yaml.nonEmptyString)
            yaml.read(map, "input_topics", of: "kafka", into: &settings.kafka.inputTopics) { (node, path) throws(ConfigError) in
                try yaml.names(node, path).map(\.value)
            }
            yaml.read(map, "dead_letter_topic", of: "kafka", into: &settings.kafka.deadLetterTopic, yaml.nonEmptyString)
            yaml.read(map, "holdout_topic", of: "kafka", into: &settings.kafka.holdoutTopic, yaml.nonEmptyString)
            yaml.read(map, "alerts_topic", of: "kafka", into: &settings.kafka.alertsTopic, yaml.nonEmptyString)
            yaml.read(map, "properties", of: "kafka", into: &settings.kafka.properties, properties)
            yaml.read(map, "create_topics", of: "kafka", into: &settings.kafka.createTopics, yaml.boolean)
            yaml.read(map, "changelog_topics", of: "kafka", into: &settings.kafka.changelogTopics, topicNames)
        }
        section(top, "http", ["listen"]) { (map) throws(ConfigError) in
            yaml.read(map, "listen", of: "http", into: &settings.http.listen, address)
        }
        section(top, "state", ["dir", "checkpoint_interval", "changelog"]) { (map) throws(ConfigError) in
            yaml.read(map, "changelog", of: "state", into: &settings.state.changelog, yaml.boolean)
            yaml.read(map, "dir", of: "state", into: &settings.state.directory, yaml.nonEmptyString)
            yaml.read(map, "checkpoint_interval", of: "state", into: &settings.state.checkpointInterval) { (node, path) throws(ConfigError) in
                let interval = try yaml.duration(node, path)
                guard interval >= Millis.second else { throw yaml.error("\(path): must be at least 1s", at: node) }
                return interval
            }
        }
        section(top, "processing", ["threads"]) { (map) throws(ConfigError) in
            yaml.read(map, "threads", of: "processing", into: &settings.processing.threads) { (node, path) throws(ConfigError) in
                let count = try yaml.positiveInteger(node, path)
                guard count <= DaemonSettings.Processing.maxThreads else {
                    throw yaml.error("\(path): must be from 1 to \(DaemonSettings.Processing.maxThreads) (omit it to use every core the process may use)", at: node)
                }
                return count
            }
        }
        return settings
    }

    /// Reads the top-level mapping `name`, if present, with its allowed keys.
    private func section(
        _ top: Node.Mapping, _ name: String, _ allowed: [String], _ body: (Node.Mapping) throws(ConfigError) -> Void
    ) {
        guard let node = top[name] else { return }
        _ = yaml.recover { () throws(ConfigError) in
            let map = try yaml.mapping(node, name)
            yaml.checkKeys(map, allowed: allowed, name)
            try body(map)
        }
    }

    private func properties(_ node: Node, _ path: String) throws(ConfigError) -> [String: String] {
        var properties: [String: String] = [:]
        for (key, property) in try yaml.mapping(node, path) {
            let name = try yaml.nonEmptyString(key, path)
            properties[name] = try yaml.string(property, "\(path).\(name)")
        }
        return properties
    }

    /// Input topic → changelog topic.
    private func topicNames(_ node: Node, _ path: String) throws(ConfigError) -> [String: String] {
        var names: [String: String] = [:]
        for (key, value) in try yaml.mapping(node, path) {
            let topic = try yaml.nonEmptyString(key, path)
            names[topic] = try yaml.nonEmptyString(value, "\(path).\(topic)")
        }
        return names
    }

    /// `host:port` with a port from 0 to 65535 (IPv6 hosts in brackets).
    private func address(_ node: Node, _ path: String) throws(ConfigError) -> String {
        let text = try yaml.nonEmptyString(node, path)
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
              let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port)
        else { throw yaml.error("\(path): '\(text)' is not host:port (e.g. 127.0.0.1:9464)", at: node) }
        return text
    }
}
