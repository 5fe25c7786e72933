import Foundation
import LifecycleCodec
import LifecycleEngine

/// Each user's first firing of each trigger under one rule set: what tells which users a
/// rules change gains or loses, with the evidence that fired it.
struct FirstFirings {
    /// The rules that fire what is recorded.
    let rules: CompiledRules
    private(set) var byTrigger: [String: [String: Trigger]] = [:]

    mutating func record(_ output: borrowing EngineOutput) {
        for trigger in output.makeTriggers(rules: rules) where byTrigger[trigger.name]?[trigger.userID] == nil {
            byTrigger[trigger.name, default: [:]][trigger.userID] = trigger
        }
    }
}

/// A rules change back-tested on the same events: per trigger, old against new.
struct RulesDiff {
    /// One rule set's result for a trigger.
    struct Side: Equatable {
        var rule: String
        var fired: Int
        var converted: Int
        var users: Int
        var hasGoal: Bool
        /// nil before any firing, or without a goal.
        var conversionRate: Double? { hasGoal && fired > 0 ? Double(converted) / Double(fired) : nil }
    }

    struct TriggerChange {
        var name: String
        /// nil where the trigger is not in that rule set.
        var old: Side?
        var new: Side?
        /// Users who get the trigger only under the new rules, and only under the old: the first
        /// `examples` of each by time, with their first firing (under the rules that fired it).
        var gained: (count: Int, examples: [Trigger])
        var lost: (count: Int, examples: [Trigger])

        var isUnchanged: Bool { old == new && gained.count == 0 && lost.count == 0 }
    }

    struct Run {
        var rules: CompiledRules
        var summary: ReplaySummary
        var firings: FirstFirings
    }

    let events: Int
    let streamTime: Int64
    let triggers: [TriggerChange]

    init(old: Run, new: Run, examples: Int) {
        events = new.summary.linesRead - new.summary.blankLines
        streamTime = max(old.summary.streamTime, new.summary.streamTime)
        let names = new.rules.triggerNames + old.rules.triggerNames.filter { !new.rules.triggerNames.contains($0) }
        triggers = names.map { name in
            let before = old.firings.byTrigger[name] ?? [:], after = new.firings.byTrigger[name] ?? [:]
            func firstByTime(_ users: [String: Trigger], missingFrom other: [String: Trigger]) -> (count: Int, examples: [Trigger]) {
                let only = users.values.filter { other[$0.userID] == nil }
                let earliest = only.sorted { ($0.firedAt, $0.userID) < ($1.firedAt, $1.userID) }
                return (only.count, Array(earliest.prefix(examples)))
            }
            return TriggerChange(
                name: name, old: Self.side(name, old), new: Self.side(name, new),
                gained: firstByTime(after, missingFrom: before), lost: firstByTime(before, missingFrom: after))
        }
    }

    private static func side(_ name: String, _ run: Run) -> Side? {
        guard let index = run.rules.triggerNames.firstIndex(of: name) else { return nil }
        let totals = run.summary.armTotals[index]
        return Side(
            rule: CheckCommand.describe(run.rules.rules.triggers[index]), fired: totals.fired, converted: totals.converted,
            users: run.firings.byTrigger[name]?.count ?? 0, hasGoal: run.rules.rules.triggers[index].goal != nil)
    }

    // MARK: - Text

    func text(newPath: String, oldPath: String, inputPath: String) -> String {
        var lines = ["diff: \(newPath) against \(oldPath) over \(inputPath): \(events) events"
            + (streamTime == .min ? "" : ", stream time \(RFC3339.format(millis: streamTime))")]
        for change in triggers {
            guard let old = change.old, let new = change.new else {
                let (side, word) = change.new.map { ($0, "only in the new rules") } ?? (change.old!, "only in the old rules")
                lines.append("\(change.name): \(word) (\(side.rule)): fired \(side.fired), users \(side.users), converted \(side.converted)")
                continue
            }
            if change.isUnchanged {
                lines.append("\(change.name): unchanged: fired \(new.fired), users \(new.users), converted \(new.converted)")
                continue
            }
            lines.append("\(change.name): fired \(old.fired) → \(new.fired), users \(old.users) → \(new.users) "
                + "(gained \(change.gained.count), lost \(change.lost.count)), converted \(old.converted) → \(new.converted), "
                + "conversion rate \(Self.rate(old)) → \(Self.rate(new))")
            if old.rule != new.rule { lines.append("  rule: \(old.rule) → \(new.rule)") }
            for (sign, examples) in [("+", change.gained.examples), ("-", change.lost.examples)] {
                for firing in examples {
                    lines.append("  \(sign) \(firing.userID), first fired \(RFC3339.format(millis: firing.firedAt)): "
                        + firing.evidence.map { "\($0.name) \(Self.text($0))" }.joined(separator: ", "))
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func rate(_ side: Side) -> String {
        side.conversionRate.map { fixed($0 * 100, decimals: 1) + "%" } ?? "-"
    }

    /// Times as times and elapsed times as durations; the rest as they are.
    private static func text(_ evidence: Evidence) -> String {
        switch evidence.value {
        case .integer(let value) where evidence.name == "last_seen": RFC3339.format(millis: value)
        case .integer(let value) where evidence.name == "inactive_for" || evidence.name == "in_stage_for": Millis.formatDuration(value)
        case .integer(let value): "\(value)"
        case .number(let value): "\(value)"
        case .text(let value): value
        }
    }

    // MARK: - JSON

    func json(newPath: String, oldPath: String, inputPath: String) -> Data {
        let object: [String: Any] = [
            "new": newPath, "old": oldPath, "input": inputPath, "events": events,
            "stream_time": streamTime == .min ? NSNull() : streamTime,
            "triggers": triggers.map { change -> [String: Any] in
                func pair(_ value: (Side) -> Any?) -> [String: Any] {
                    ["old": change.old.flatMap(value) ?? NSNull(), "new": change.new.flatMap(value) ?? NSNull()]
                }
                return [
                    "trigger": change.name,
                    "unchanged": change.isUnchanged,
                    "rule": pair(\.rule),
                    "fired": pair(\.fired),
                    "users": pair(\.users),
                    "converted": pair(\.converted),
                    "conversion_rate": pair(\.conversionRate),
                    "gained": ["count": change.gained.count, "examples": change.gained.examples.map(Self.example)],
                    "lost": ["count": change.lost.count, "examples": change.lost.examples.map(Self.example)],
                ]
            },
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    private static func example(_ firing: Trigger) -> [String: Any] {
        var evidence: [String: Any] = [:]
        for item in firing.evidence {
            switch item.value {
            case .integer(let value): evidence[item.name] = value
            case .number(let value): evidence[item.name] = value
            case .text(let value): evidence[item.name] = value
            }
        }
        return ["user_id": firing.userID, "fired_at": firing.firedAt, "trigger_id": firing.id, "evidence": evidence]
    }
}
