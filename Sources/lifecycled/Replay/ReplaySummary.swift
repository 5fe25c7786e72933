import LifecycleCodec
import LifecycleEngine

/// What a replay saw, printed to standard error when it ends.
struct ReplaySummary {
    static let exampleLines = 5

    private let rules: CompiledRules
    var linesRead = 0
    var blankLines = 0
    var applied = 0
    var late = 0
    var erasing = 0
    var outOfRange = 0
    var invalidUser = 0
    /// Rejection reason -> (count, first line numbers).
    private(set) var rejected: [EventRejection: (count: Int, lines: [Int])] = [:]
    private(set) var stats: EngineStats?
    private(set) var armTotals: [ArmTotals] = []
    private(set) var usersPerStage: [Int] = []
    private(set) var users = 0
    private(set) var streamTime: Int64 = .min

    init(rules: CompiledRules) { self.rules = rules }

    mutating func record(_ outcome: IngestOutcome, line: Int) {
        switch outcome {
        case .applied: applied += 1
        case .late: late += 1
        case .erased: erasing += 1
        case .outOfRange: outOfRange += 1
        // Too far ahead of stream time: a bad clock, rejected like an unreadable time.
        case .tooFarAhead: reject(.badTime, line: line)
        case .invalidUser: invalidUser += 1
        }
    }

    mutating func reject(_ reason: EventRejection, line: Int) {
        var entry = rejected[reason] ?? (0, [])
        entry.count += 1
        if entry.lines.count < Self.exampleLines { entry.lines.append(line) }
        rejected[reason] = entry
    }

    mutating func finish(_ engine: PartitionEngine) {
        stats = engine.stats
        armTotals = engine.armTotals
        usersPerStage = engine.usersPerStage
        users = engine.userCount
        streamTime = engine.streamTime
    }

    var rejectedCount: Int { rejected.values.reduce(0) { $0 + $1.count } }

    func render(seconds: Double) -> String {
        var lines: [String] = []
        let events = linesRead - blankLines
        let rate = seconds > 0 ? Int(Double(events) / seconds) : events
        lines.append("replay: \(events) events in \(formatSeconds(seconds)) (\(rate) events/s)")
        lines.append("  applied \(applied), late (dropped) \(late), erase requests \(erasing), rejected \(rejectedCount + outOfRange + invalidUser)")
        for (reason, entry) in rejected.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let more = entry.count > entry.lines.count ? ", ..." : ""
            lines.append("  rejected \(reason.rawValue): \(entry.count) (line\(entry.lines.count > 1 ? "s" : "") \(entry.lines.map(String.init).joined(separator: ", "))\(more))")
        }
        if outOfRange > 0 { lines.append("  rejected time_out_of_range: \(outOfRange)") }
        if invalidUser > 0 { lines.append("  rejected bad_user_id: \(invalidUser)") }
        if let stats {
            lines.append("  triggers: " + list(rules.triggerNames, armTotals.map(\.fired)))
            lines.append("  conversions: " + list(rules.triggerNames, armTotals.map(\.converted)))
            lines += UpliftReport.lines(rules: rules, totals: armTotals, indent: "  ")
            if stats.suppressedByCooldown.contains(where: { $0 > 0 }) {
                lines.append("  suppressed by cooldown: " + list(rules.triggerNames, stats.suppressedByCooldown))
            }
            if stats.usersErased > 0 { lines.append("  users erased: \(stats.usersErased)") }
        }
        lines.append("  users: \(users) — " + list(rules.stageNames, usersPerStage))
        if streamTime != .min { lines.append("  stream time: \(RFC3339.format(millis: streamTime))") }
        return lines.joined(separator: "\n") + "\n"
    }

    private func list(_ names: [String], _ counts: [Int]) -> String {
        zip(names, counts).map { "\($0) \($1)" }.joined(separator: ", ")
    }
}

func formatSeconds(_ seconds: Double) -> String { fixed(seconds, decimals: 2) + " s" }
