import ArgumentParser
import LifecycleConfig
import LifecycleEngine

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a config file and summarise its rules.",
        discussion: "On error prints FILE:LINE:COL: message and exits 1."
    )

    @Option(name: .shortAndLong, help: "The config file (YAML).")
    var config: String

    func run() throws {
        let loaded = try loadConfig(config)
        print(Self.summary(of: loaded, path: config), terminator: "")
    }

    static func summary(of loaded: LoadedConfig, path: String) -> String {
        let rules = loaded.rules
        var lines = ["\(path): ok (config_version \(loaded.configVersion))"]
        lines.append("counters (\(rules.counters.count)):")
        for counter in rules.counters {
            let what: String
            switch counter.aggregation {
            case .count: what = "count"
            case .sum(let path): what = "sum of \(path)"
            case .distinctDays: what = "distinct days"
            }
            lines.append("  \(counter.name): \(what) of \(describe(counter.events)) over \(Millis.formatDuration(counter.window))")
        }
        if !rules.attributes.isEmpty {
            lines.append("attributes (\(rules.attributes.count)):")
            for attribute in rules.attributes {
                lines.append("  \(attribute.name): from \(attribute.path) on \(describe(attribute.on)), default '\(attribute.defaultValue)'")
            }
        }
        let lifecycle = rules.lifecycle
        lines.append("stages (\(lifecycle.stages.count)): \(lifecycle.stages.map(\.value).joined(separator: ", ")); initial \(lifecycle.initial.value); \(lifecycle.transitions.count) transitions")
        lines.append("triggers (\(rules.triggers.count)):")
        let holdoutTopic = loaded.settings.kafka.holdoutTopic
        for (index, trigger) in rules.triggers.enumerated() {
            var text = describe(trigger)
            if loaded.compiled.hasHoldout(index) {
                text += ", holdout \(UpliftReport.share(loaded.compiled.controlShare(ofTrigger: index))) (control -> \(holdoutTopic))"
            }
            let topic = loaded.settings.kafka.triggerTopics[trigger.name].map { " -> \($0)" } ?? ""
            lines.append("  \(trigger.name): \(text)\(topic)")
        }
        if !rules.eraseOn.isEmpty { lines.append("erase on: \(rules.eraseOn.map(\.value).joined(separator: ", "))") }
        if rules.holdout.global.value > 0 {
            lines.append("global holdout: \(HoldoutRule.percentText(rules.holdout.global.value)) of users, out of every trigger")
        }
        if !rules.alerts.isEmpty {
            lines.append("alerts (\(rules.alerts.count)) -> \(loaded.settings.kafka.alertsTopic):")
            lines += rules.alerts.map { "  \($0.name): \(describe($0))" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Its measure, thresholds, damping and minimum volume.
    static func describe(_ alert: AlertRule) -> String {
        var parts = [alert.warn.map { "warn \($0.value)" }, alert.critical.map { "critical \($0.value)" }].compactMap { $0 }
        if alert.holdFor > 0 { parts.append("for \(Millis.formatDuration(alert.holdFor))") }
        if alert.keepFiringFor > 0 { parts.append("keep firing \(Millis.formatDuration(alert.keepFiringFor))") }
        if alert.minUsers > 0 { parts.append("min users \(alert.minUsers)") }
        if let volume = alert.minVolume { parts.append("min volume \(volume.value)") }
        return alert.when.value + ": " + parts.joined(separator: ", ")
    }

    /// When a trigger fires, its cooldown and goal.
    static func describe(_ trigger: TriggerRule) -> String {
        var text: String
        switch trigger.fire {
        case .onEnter(let stage): text = "on entering \(stage.value)"
        case .when(let condition): text = "when \(condition.value)"
        }
        if trigger.cooldown > 0 { text += ", cooldown \(Millis.formatDuration(trigger.cooldown))" }
        if let goal = trigger.goal { text += ", goal \(describe(goal.event)) within \(Millis.formatDuration(goal.within))" }
        return text
    }

    private static func describe(_ selector: EventSelector) -> String {
        switch selector {
        case .any: "any event"
        case .names(let names): names.map(\.value).joined(separator: "|")
        }
    }
}
