import LifecycleConfig
import LifecycleEngine
import Testing

/// Issue 10: generated rules and streams, a million events in all, through the engine and
/// through `ReferenceEngine`, must give the same triggers, conversions and user state.
@Suite("Differential: the engine against a simple reference")
struct DifferentialTests {
    static let shards = 10
    static let seedsPerShard = 10
    static let eventsPerSeed = 10_000

    @Test("the engine gives the reference's triggers, conversions and user state", arguments: 0..<shards)
    func sameAsReference(shard: Int) throws {
        var coverage = Coverage()
        for seed in (shard * Self.seedsPerShard)..<((shard + 1) * Self.seedsPerShard) {
            let rules = RuleGenerator.rules(seed: UInt64(seed))
            let compiled = try ConfigLoader.load(text: rules.yaml, file: "difftest-\(seed).yaml").compiled
            let steps = StreamGenerator.steps(seed: UInt64(seed), rules: rules, events: Self.eventsPerSeed)
            if let mismatch = try Self.run(steps, rules: rules, compiled: compiled, coverage: &coverage) {
                Issue.record("seed \(seed): \(mismatch)\nrules:\n\(rules.yaml)")
            }
        }
        // Each shard exercises every part of the semantics, so a generator change cannot
        // quietly stop testing one.
        #expect(coverage.onEnter > 0 && coverage.condition > 0 && coverage.timer > 0, "\(coverage)")
        #expect(coverage.conversions > 0 && coverage.suppressed > 0, "\(coverage)")
        #expect(coverage.lateApplied > 0 && coverage.lateDropped > 0 && coverage.erased > 0, "\(coverage)")
    }

    struct Coverage {
        var onEnter = 0, condition = 0, timer = 0, conversions = 0, suppressed = 0
        var lateApplied = 0, lateDropped = 0, erased = 0
    }

    /// Feeds both engines step by step; the first difference, with context, or nil.
    static func run(
        _ steps: [StreamStep], rules: GeneratedRules, compiled: CompiledRules, coverage: inout Coverage
    ) throws -> String? {
        var engine = PartitionEngine(rules: compiled)
        var reference = ReferenceEngine(rules: rules)
        var actual = EngineOutput()
        for (index, step) in steps.enumerated() {
            // Now and then the engine goes on from a snapshot of itself, as after a restart
            // (which starts its statistics afresh).
            if index % 1_000 == 999 {
                coverage.suppressed += engine.stats.suppressedByCooldown.reduce(0, +)
                engine = try PartitionEngine(rules: compiled, snapshot: engine.snapshot())
            }
            var expected = ReferenceEngine.Output()
            actual.removeAll()
            switch step {
            case .event(let event):
                let streamTime = engine.streamTime
                let outcome = engine.ingest(event, into: &actual)
                let expectedOutcome = reference.ingest(event, into: &expected)
                if outcome != expectedOutcome {
                    return difference(at: index, steps, "outcome \(outcome), expected \(expectedOutcome)")
                }
                switch outcome {
                case .applied where event.time < streamTime: coverage.lateApplied += 1
                case .late: coverage.lateDropped += 1
                case .erased: coverage.erased += 1
                default: break
                }
                coverage.timer += actual.triggers.filter { $0.firedAt < event.time }.count
            case .advance(let time):
                engine.advance(to: time, into: &actual)
                reference.advance(to: time, into: &expected)
                coverage.timer += actual.triggers.count
            }
            let fired = actual.makeTriggers(rules: compiled)
            // The user's state is compared every fourth step: it costs as much as the engine's work.
            if let problem = firstDifference(canonical(fired), canonical(expected.triggers), "trigger")
                ?? firstDifference(actual.conversions, expected.conversions, "conversion")
                ?? (index % 4 == 0 ? step.userID.flatMap { userDifference($0, engine, reference) } : nil) {
                return difference(at: index, steps, problem)
            }
            coverage.onEnter += fired.filter { $0.transition != nil }.count
            coverage.condition += fired.filter { $0.transition == nil }.count
            coverage.conversions += actual.conversions.count
        }
        coverage.suppressed += engine.stats.suppressedByCooldown.reduce(0, +)
        return nil
    }

    /// Users due at the same instant come out in an order the semantics leave open (the
    /// engine's user index): order by time and user, keeping each user's own order.
    static func canonical(_ triggers: [Trigger]) -> [Trigger] {
        guard triggers.count > 1 else { return triggers }
        return triggers.enumerated().sorted { ($0.element.firedAt, $0.element.userID, $0.offset) < ($1.element.firedAt, $1.element.userID, $1.offset) }
            .map(\.element)
    }

    static func firstDifference<T: Equatable>(_ actual: [T], _ expected: [T], _ kind: String) -> String? {
        guard actual != expected else { return nil }
        let index = zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(actual.count, expected.count)
        func item(_ list: [T]) -> String { index < list.count ? "\(list[index])" : "nothing" }
        return "\(kind) \(index): engine \(item(actual))\n  reference \(item(expected))\n"
            + "  (engine \(actual.count), reference \(expected.count) in this step)"
    }

    /// What `GET /v1/users/{id}` shows, as far as the reference models it; lists in rules order.
    struct UserView: Equatable {
        var stage: String
        var stageSince: Int64
        var lastSeen: Int64
        var counters: [Double]
        var attributes: [String]
        /// Firings that still matter (README: within the cooldown or the goal window, plus
        /// the allowed lateness); the engine forgets older ones when it next sweeps the user.
        var lastFired: [Int64?]

        init(
            stage: String, stageSince: Int64, lastSeen: Int64, counters: [Double], attributes: [String],
            lastFired: (String) -> Int64?, at now: Int64, rules: GeneratedRules
        ) {
            self.stage = stage
            self.stageSince = stageSince
            self.lastSeen = lastSeen
            self.counters = counters
            self.attributes = attributes
            self.lastFired = rules.triggers.map { trigger in
                lastFired(trigger.name).flatMap { time in
                    now - time < max(trigger.cooldown, trigger.goal?.within ?? 0) + rules.lateness ? time : nil
                }
            }
        }
    }

    static func userDifference(_ id: String, _ engine: PartitionEngine, _ reference: ReferenceEngine) -> String? {
        let rules = reference.rules, now = engine.streamTime
        let actual = engine.report(userID: id).map { report in
            UserView(
                stage: report.stage, stageSince: report.stageSince, lastSeen: report.lastSeen,
                counters: report.counters.map(\.value), attributes: report.attributes.map(\.value),
                lastFired: { name in report.lastFired.first { $0.trigger == name }?.at }, at: now, rules: rules)
        }
        let expected = reference.users[id].map { user in
            let counters = user.counterValues(at: now, rules: rules)
            return UserView(
                stage: user.stage, stageSince: user.stageSince, lastSeen: user.lastSeen,
                counters: rules.counters.map { counters[$0.name]! }, attributes: rules.attributes.map { user.attributes[$0.name]! },
                lastFired: { user.lastFired[$0] }, at: now, rules: rules)
        }
        return actual == expected ? nil : "user \(id): engine \(String(describing: actual))\n  reference \(String(describing: expected))"
    }

    /// The problem, with the steps before it that concern the same user.
    static func difference(at index: Int, _ steps: [StreamStep], _ problem: String) -> String {
        let user = steps[index].userID
        let context = steps[..<index].enumerated().filter { user == nil || $0.element.userID == user }.suffix(12)
        return "step \(index) (\(steps[index])): \(problem)\nbefore it:\n"
            + context.map { "  \($0.offset): \($0.element)" }.joined(separator: "\n")
    }
}
