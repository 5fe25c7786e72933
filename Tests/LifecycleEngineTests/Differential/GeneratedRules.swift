import LifecycleEngine

/// A rule set drawn from a small grammar, kept as a structure (what `ReferenceEngine` runs)
/// and written out as YAML (what the engine gets, through the config loader as `replay`).
struct GeneratedRules {
    struct Counter {
        enum Kind { case count, distinctDays, sum }
        var name: String
        var kind: Kind
        /// nil: any event.
        var events: [String]?
        var window: Int64
        /// nil: the documented default.
        var resolution: Int64?

        /// README: 1d buckets for distinct days, else 1h or the window if shorter.
        var bucketWidth: Int64 {
            kind == .distinctDays ? Millis.day : resolution ?? min(Millis.hour, window)
        }
    }

    struct Attribute {
        var name: String
        var path: String
        var on: [String]?
        var defaultValue: String
    }

    struct Transition {
        var from: [String]
        var to: String
        /// nil: `on: activity`.
        var when: Condition?
    }

    struct Goal {
        var event: [String]?
        var condition: Condition?
        var within: Int64
    }

    struct Trigger {
        enum Fire {
            case onEnter(String)
            case when(Condition)
        }
        var name: String
        var fire: Fire
        var cooldown: Int64
        var goal: Goal?
        var reason: String?
    }

    var version: String
    var lateness: Int64
    var counters: [Counter]
    var attributes: [Attribute]
    var stages: [String]
    var transitions: [Transition]
    var triggers: [Trigger]
    var eraseOn: [String]

    static let amountPath = "props.amount"
    static let planPath = "props.plan"

    var yaml: String {
        func list(_ names: [String]?) -> String { names.map { "[\($0.joined(separator: ", "))]" } ?? "any" }
        func duration(_ millis: Int64) -> String { Millis.formatDuration(millis) }
        var lines = [
            "version: \"\(version)\"",
            "events: {allowed_lateness: \(duration(lateness))}",
            "counters:",
        ]
        for counter in counters {
            var fields = ["events: \(list(counter.events))", "window: \(duration(counter.window))"]
            switch counter.kind {
            case .count: break
            case .distinctDays: fields.append("distinct: day")
            case .sum: fields.append("sum: \(Self.amountPath)")
            }
            if let resolution = counter.resolution { fields.append("resolution: \(duration(resolution))") }
            lines.append("  \(counter.name): {\(fields.joined(separator: ", "))}")
        }
        if !attributes.isEmpty { lines.append("attributes:") }
        for attribute in attributes {
            lines.append(
                "  \(attribute.name): {from: \(attribute.path), on: \(list(attribute.on)), default: \(attribute.defaultValue)}")
        }
        lines += ["lifecycle:", "  stages: [\(stages.joined(separator: ", "))]", "  initial: \(stages[0])", "  transitions:"]
        for transition in transitions {
            let condition = transition.when.map { "when: \"\($0.text)\"" } ?? "on: activity"
            lines.append("    - {from: \(list(transition.from)), to: \(transition.to), \(condition)}")
        }
        lines.append("triggers:")
        for trigger in triggers {
            var fields: [String]
            switch trigger.fire {
            case .onEnter(let stage): fields = ["on_enter: \(stage)"]
            case .when(let condition): fields = ["when: \"\(condition.text)\""]
            }
            fields.append("cooldown: \(duration(trigger.cooldown))")
            if let reason = trigger.reason { fields.append("reason: \"\(reason)\"") }
            if let goal = trigger.goal {
                var goalFields = ["event: \(list(goal.event))", "within: \(duration(goal.within))"]
                if let condition = goal.condition { goalFields.append("where: \"\(condition.text)\"") }
                fields.append("goal: {\(goalFields.joined(separator: ", "))}")
            }
            lines.append("  \(trigger.name): {\(fields.joined(separator: ", "))}")
        }
        lines.append("erase_on: \(list(eraseOn))")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The condition language's grammar, as the generator builds it and the reference evaluates it.
indirect enum Condition {
    enum Elapsed: String {
        case inactiveFor = "inactive_for", inStageFor = "in_stage_for"
    }

    case counter(String, Comparison, Double)
    case counters(String, Comparison, String)
    case attribute(String, equal: Bool, String)
    case stage(equal: Bool, String)
    case elapsed(Elapsed, Comparison, Int64)
    case not(Condition)
    case and(Condition, Condition)
    case or(Condition, Condition)

    /// Fully parenthesised, so the text means the tree whatever the precedence rules.
    var text: String {
        func equality(_ equal: Bool) -> String { equal ? "==" : "!=" }
        switch self {
        case .counter(let name, let op, let value):
            let number = value == value.rounded() ? "\(Int64(value))" : "\(value)"
            return "\(name) \(op.rawValue) \(number)"
        case .counters(let lhs, let op, let rhs): return "\(lhs) \(op.rawValue) \(rhs)"
        case .attribute(let name, let equal, let value): return "\(name) \(equality(equal)) '\(value)'"
        case .stage(let equal, let stage): return "stage \(equality(equal)) '\(stage)'"
        case .elapsed(let base, let op, let threshold): return "\(base.rawValue) \(op.rawValue) \(Millis.formatDuration(threshold))"
        case .not(let inner): return "not (\(inner.text))"
        case .and(let lhs, let rhs): return "(\(lhs.text) and \(rhs.text))"
        case .or(let lhs, let rhs): return "(\(lhs.text) or \(rhs.text))"
        }
    }

    /// The names a condition reads, left to right, each once: the evidence a trigger reports.
    var names: [String] {
        var seen: [String] = []
        for name in allNames where !seen.contains(name) { seen.append(name) }
        return seen
    }

    private var allNames: [String] {
        switch self {
        case .counter(let name, _, _), .attribute(let name, _, _): [name]
        case .counters(let lhs, _, let rhs): [lhs, rhs]
        case .stage: ["stage"]
        case .elapsed(let base, _, _): [base.rawValue]
        case .not(let inner): inner.allNames
        case .and(let lhs, let rhs), .or(let lhs, let rhs): lhs.allNames + rhs.allNames
        }
    }

    /// Every `inactive_for` / `in_stage_for` comparison in the condition.
    var elapsedComparisons: [(base: Elapsed, threshold: Int64)] {
        switch self {
        case .counter, .counters, .attribute, .stage: []
        case .elapsed(let base, _, let threshold): [(base, threshold)]
        case .not(let inner): inner.elapsedComparisons
        case .and(let lhs, let rhs), .or(let lhs, let rhs): lhs.elapsedComparisons + rhs.elapsedComparisons
        }
    }
}
