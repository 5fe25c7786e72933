import LifecycleEngine
import Yams

/// Reads the daemon sections (kafka, http, state) with their defaults.
struct SettingsReader {
    let yaml: YAMLCursor

    func settings(_ top: Node.Mapping, triggerTopics: [String: String]) throws(ConfigError) -> DaemonSettings {
        var settings = DaemonSettings()
        settings.kafka.triggerTopics = triggerTopics
        if let node = top["kafka"] { try kafka(node, &settings.kafka) }
        if let node = top["http"] {
            let map = try yaml.mapping(node, "http")
            try yaml.checkKeys(map, allowed: ["listen"], "http")
            if let listen = map["listen"] { settings.http.listen = try address(listen, "http.listen") }
        }
        if let node = top["state"] {
            let map = try yaml.mapping(node, "state")
            try yaml.checkKeys(map, allowed: ["dir", "checkpoint_interval"], "state")
            if let dir = map["dir"] { settings.state.directory = try yaml.nonEmptyString(dir, "state.dir") }
            if let interval = map["checkpoint_interval"] {
                settings.state.checkpointInterval = try yaml.duration(interval, "state.checkpoint_interval")
                guard settings.state.checkpointInterval >= Millis.second else {
                    throw yaml.error("state.checkpoint_interval: must be at least 1s", at: interval)
                }
            }
        }
        return settings
    }

    private func kafka(_ node: Node, _ kafka: inout DaemonSettings.Kafka) throws(ConfigError) {
        let map = try yaml.mapping(node, "kafka")
        try yaml.checkKeys(map, allowed: ["brokers", "group_id", "input_topics", "dead_letter_topic", "properties"], "kafka")
        if let value = map["brokers"] { kafka.brokers = try yaml.nonEmptyString(value, "kafka.brokers") }
        if let value = map["group_id"] { kafka.groupID = try yaml.nonEmptyString(value, "kafka.group_id") }
        if let value = map["input_topics"] { kafka.inputTopics = try yaml.names(value, "kafka.input_topics").map(\.value) }
        if let value = map["dead_letter_topic"] { kafka.deadLetterTopic = try yaml.nonEmptyString(value, "kafka.dead_letter_topic") }
        if let value = map["properties"] {
            for (key, property) in try yaml.mapping(value, "kafka.properties") {
                let name = try yaml.nonEmptyString(key, "kafka.properties")
                let value = try yaml.string(property, "kafka.properties.\(name)")
                // The consumer refuses it at start (eager rebalancing only): say so here already.
                if name == "partition.assignment.strategy", value.contains("cooperative") {
                    throw yaml.error(
                        "kafka.properties.\(name): '\(value)': cooperative rebalancing is not supported yet; use range or roundrobin",
                        at: property)
                }
                kafka.properties[name] = value
            }
        }
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
