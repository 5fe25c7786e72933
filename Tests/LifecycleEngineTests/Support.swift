import LifecycleEngine

/// Rules built in Swift, so the engine's semantics are tested without the YAML layer.
enum Fixture {
    static let t0: Int64 = 1_795_392_000_000  // 2026-11-23T00:00:00Z, a UTC midnight
    static let day = Millis.day
    static let hour = Millis.hour
    static let minute = Millis.minute

    static func names(_ list: String...) -> EventSelector { .names(list.map { Located($0) }) }
    static func stages(_ list: String...) -> [Located<String>] { list.map { Located($0) } }

    static func rules(
        counters: [CounterRule] = [],
        attributes: [AttributeRule] = [],
        stages: [String] = ["new"],
        transitions: [TransitionRule] = [],
        triggers: [TriggerRule] = [],
        eraseOn: [String] = [],
        lateness: Int64 = 10 * Millis.minute,
        version: String = "test"
    ) throws -> CompiledRules {
        try CompiledRules(Rules(
            version: version,
            events: EventFields(allowedLateness: lateness),
            counters: counters,
            attributes: attributes,
            lifecycle: LifecycleRule(
                stages: stages.map { Located($0) }, initial: Located(stages[0]), transitions: transitions),
            triggers: triggers,
            eraseOn: eraseOn.map { Located($0) }))
    }

    static func transition(_ from: [String], _ to: String, when: String? = nil) -> TransitionRule {
        TransitionRule(
            from: from.map { Located($0) }, to: Located(to),
            condition: when.map { .when(Located($0)) } ?? .activity)
    }

    /// The reference playbook of SPEC section 3; the arguments make variants of the same
    /// state shape, as a reload may bring.
    static func playbook(
        version: String = "test", coreActionsToActivate: Int = 3, churnGoal: EventSelector = .any
    ) throws -> CompiledRules {
        try rules(
            counters: [
                CounterRule(name: "core_actions_7d", events: names("core_action"), window: 7 * day),
                CounterRule(name: "active_days_14d", events: .any, window: 14 * day, aggregation: .distinctDays),
                CounterRule(name: "quota_hits_7d", events: names("quota_exceeded"), window: 7 * day),
                CounterRule(name: "premium_views_14d", events: names("premium_feature_viewed"), window: 14 * day),
                CounterRule(name: "revenue_30d", events: names("purchase"), window: 30 * day, aggregation: .sum(path: "props.amount")),
            ],
            attributes: [AttributeRule(name: "plan", path: "props.plan", on: names("signup", "plan_changed"), defaultValue: "free")],
            stages: ["new", "activated", "engaged", "at_risk", "dormant", "reactivated"],
            transitions: [
                transition(["new"], "activated", when: "core_actions_7d >= \(coreActionsToActivate)"),
                transition(["activated", "reactivated"], "engaged", when: "active_days_14d >= 4"),
                transition(["activated", "engaged", "reactivated"], "at_risk", when: "inactive_for >= 7d"),
                transition(["new", "at_risk"], "dormant", when: "inactive_for >= 30d"),
                transition(["at_risk", "dormant"], "reactivated"),
            ],
            triggers: [
                TriggerRule(name: "churn_risk", fire: .onEnter(Located("at_risk")), cooldown: 30 * day,
                            goal: GoalRule(event: churnGoal, within: 7 * day)),
                TriggerRule(name: "win_back", fire: .onEnter(Located("reactivated")), cooldown: 14 * day),
                TriggerRule(name: "activation_nudge", fire: .when(Located("stage == 'new' and in_stage_for >= 3d")), cooldown: 30 * day),
                TriggerRule(name: "upgrade_ready",
                            fire: .when(Located("plan == 'free' and quota_hits_7d >= 3 and premium_views_14d >= 2")),
                            cooldown: 30 * day,
                            goal: GoalRule(event: names("plan_changed"), condition: Located("plan != 'free'"), within: 14 * day)),
                TriggerRule(name: "power_user", fire: .when(Located("core_actions_7d >= 50")), cooldown: 7 * day),
            ],
            eraseOn: ["user_deleted"],
            version: version)
    }
}

/// A small driver that records everything the engine emits.
struct Harness {
    var engine: PartitionEngine
    var output = EngineOutput()

    init(_ rules: CompiledRules) { engine = PartitionEngine(rules: rules) }

    /// One engine that saw every event, then stream time moved to `time`: what a partition
    /// that never stopped or moved does, for comparison.
    static func straightThrough(_ events: [EventRecord], rules: CompiledRules, until time: Int64) -> Harness {
        var whole = Harness(rules)
        for event in events { whole.engine.ingest(event, into: &whole.output) }
        whole.advance(to: time)
        return whole
    }

    @discardableResult
    mutating func send(_ user: String, _ event: String, at time: Int64, _ properties: [String: EventRecord.Property] = [:]) -> IngestOutcome {
        engine.ingest(EventRecord(userID: user, name: event, time: time, properties: properties), into: &output)
    }

    mutating func advance(to time: Int64) { engine.advance(to: time, into: &output) }

    /// Every trigger fired so far, as owned values.
    var triggers: [Trigger] { output.makeTriggers(rules: engine.rules) }

    func fired(_ name: String, user: String? = nil) -> [Trigger] {
        triggers.filter { $0.name == name && (user == nil || $0.userID == user) }
    }

    func counter(_ name: String, of user: String) -> Double? {
        engine.report(userID: user)?.counters.first { $0.name == name }?.value
    }

    func stage(of user: String) -> String? { engine.report(userID: user)?.stage }
}
