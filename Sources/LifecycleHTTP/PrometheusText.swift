import LifecycleDaemon

/// The Prometheus text exposition format (version 0.0.4) of the daemon's metrics.
enum PrometheusText {
    static func render(_ snapshot: StatusBoard.Snapshot, now: Int64) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
            out += "# HELP lifecycled_\(name) \(help)\n# TYPE lifecycled_\(name) \(type)\n"
            for sample in samples {
                let value = sample.value.rounded() == sample.value && abs(sample.value) < 1e15
                    ? String(Int64(sample.value)) : String(sample.value)
                out += "lifecycled_\(name)\(sample.labels.isEmpty ? "" : "{\(sample.labels)}") \(value)\n"
            }
        }
        func label(_ name: String, _ value: String) -> String {
            "\(name)=\"\(value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n"))\""
        }
        let counters = snapshot.counters
        family("events_consumed_total", "counter", "Input messages consumed.", [("", Double(counters.eventsConsumed))])
        family("events_invalid_total", "counter", "Input messages sent to the dead-letter topic, by reason.",
               counters.eventsRejected.sorted { $0.key < $1.key }.map { (label("reason", $0.key), Double($0.value)) })
        family("events_late_total", "counter", "Events later than the allowed lateness, dropped.", [("", Double(counters.eventsLate))])
        family("events_key_mismatch_total", "counter", "Events whose Kafka key differs from their user id.",
               [("", Double(counters.keyMismatches))])
        family("triggers_fired_total", "counter", "Triggers fired, by trigger.",
               snapshot.triggersFired.map { (label("trigger", $0.trigger), Double($0.count)) })
        family("trigger_conversions_total", "counter", "Goal events within a trigger's goal window, by trigger.",
               snapshot.conversions.map { (label("trigger", $0.trigger), Double($0.count)) })
        family("users_tracked", "gauge", "Users with state on this instance.", [("", Double(snapshot.usersTracked))])
        family("users", "gauge", "Users in each lifecycle stage.",
               snapshot.usersPerStage.map { (label("stage", $0.stage), Double($0.users)) })
        family("consumer_lag", "gauge", "Messages behind the partition's high watermark.",
               snapshot.lag.map { (label("partition", $0.partition), Double($0.messages)) })
        family("checkpoints_total", "counter", "Partition checkpoints written.", [("", Double(counters.checkpoints))])
        if let seconds = snapshot.lastCheckpointSeconds {
            family("checkpoint_duration_seconds", "gauge", "Duration of the last commit cycle (flush, checkpoints, commit).",
                   [("", seconds)])
        }
        if let at = snapshot.lastCheckpointAt {
            family("checkpoint_age_seconds", "gauge", "Time since the last commit cycle finished.", [("", Double(now - at) / 1000)])
        }
        out += "# HELP lifecycled_event_to_trigger_seconds From consuming an event to Kafka acknowledging a trigger it caused.\n"
        out += "# TYPE lifecycled_event_to_trigger_seconds histogram\n"
        var cumulative = 0
        for (index, bound) in LatencyHistogram.bounds.enumerated() {
            cumulative += snapshot.latency.buckets[index]
            out += "lifecycled_event_to_trigger_seconds_bucket{le=\"\(bound)\"} \(cumulative)\n"
        }
        out += "lifecycled_event_to_trigger_seconds_bucket{le=\"+Inf\"} \(snapshot.latency.count)\n"
        out += "lifecycled_event_to_trigger_seconds_sum \(snapshot.latency.sum)\n"
        out += "lifecycled_event_to_trigger_seconds_count \(snapshot.latency.count)\n"
        family("rebalances_total", "counter", "Partition assignments and revocations.", [("", Double(counters.rebalances))])
        family("ready", "gauge", "1 when partitions are assigned and restored.", [("", snapshot.ready ? 1 : 0)])
        return out
    }
}
