/// Rules validated as a whole and lowered to index-based tables the engine runs without
/// string lookups. Every semantic error is a `RuleError` at the config location it concerns;
/// problems of single transitions, triggers, stages and event names are all reported.
public final class CompiledRules: Sendable {
    public let rules: Rules
    /// Stamped on triggers and mixed into their ids.
    public let configVersion: String
    /// Dot paths of the event properties the rules read, in `EventInput.properties` order.
    public let propertyPaths: [String]
    /// How window buckets are packed, from the counters' windows and resolutions.
    let bucketLayout: BucketStore.Layout
    public let stageNames: [String]
    public let counterNames: [String]
    public let attributeNames: [String]
    public let triggerNames: [String]
    /// Each trigger's own holdout in basis points (0.01 %; 0: none), indexed like `triggerNames`.
    public let triggerHoldouts: [Int]
    /// Evaluated on the instance's aggregate, never per user (`AlertEvaluator`).
    public let alerts: [CompiledAlert]

    let initialStage: UInt8
    let counters: [CompiledCounter]
    let attributes: [CompiledAttribute]
    /// The steps of every condition (see `ConditionProgram`).
    let steps: [Step]
    /// Transitions out of each stage, in config order (first match wins).
    let transitionsFrom: FlatLists<CompiledTransition>
    let triggers: [CompiledTrigger]
    /// `on_enter` triggers of each stage.
    let onEnterTriggers: FlatLists<Int>
    /// The `when:` triggers, in config order, with their conditions.
    let conditionTriggers: [ConditionTrigger]
    /// Known event names; an event's id is its index here, unknown names get `eventNames.count`.
    let eventNames: [String]
    /// What an event does, by event id (the last entry is for names the rules never mention):
    /// the counters it counts in, the attributes it sets, the goals it may meet.
    let eventCounters: FlatLists<Int>
    let eventAttributes: FlatLists<Int>
    let eventGoals: FlatLists<Int>
    let eventErases: [Bool]
    /// The time comparisons that can change a user's evaluation while in each stage.
    let timeAtomsByStage: FlatLists<TimeAtom>
    /// Whether a counter decreasing as buckets leave their window can make a condition true,
    /// so users need a wake-up when their oldest bucket expires.
    let wakesOnCounterExpiry: Bool
    /// Which arm each user is in, per trigger.
    let holdouts: HoldoutPlan
    /// Each trigger's `firingLifetime`, for the bucket store's sweep.
    let firingLifetimes: [Int64]
    /// Each trigger's id hash after its name, so a firing hashes only what varies.
    let triggerIDSeeds: [StableHash]

    static let maxCounters = 64
    static let maxStages = 255

    public convenience init(_ rules: Rules, configVersion: String? = nil) throws(RuleErrors) {
        var problems: [RuleError] = []
        do {
            try self.init(rules, configVersion: configVersion, problems: &problems)
        } catch {
            throw RuleErrors(problems + [error])
        }
        guard problems.isEmpty else { throw RuleErrors(problems) }
    }

    /// Throws for a problem that leaves nothing sound to check further (the stages, the
    /// counters); records the others in `problems` and goes on.
    private init(_ rules: Rules, configVersion: String?, problems: inout [RuleError]) throws(RuleError) {
        self.rules = rules
        self.configVersion = configVersion ?? rules.version ?? "unversioned"

        var paths: [String] = []
        func slot(_ path: String) -> Int {
            if let index = paths.firstIndex(of: path) { return index }
            paths.append(path)
            return paths.count - 1
        }

        // Stages.
        let lifecycle = rules.lifecycle
        var stageIndex: [String: UInt8] = [:]
        for stage in lifecycle.stages {
            guard stageIndex[stage.value] == nil else {
                throw RuleError("stage '\(stage.value)' is declared twice", at: stage.location)
            }
            guard stageIndex.count < Self.maxStages else {
                throw RuleError("too many stages: at most \(Self.maxStages)", at: stage.location)
            }
            stageIndex[stage.value] = UInt8(stageIndex.count)
        }
        func stage(_ name: Located<String>, _ role: String) throws(RuleError) -> UInt8 {
            guard let index = stageIndex[name.value] else {
                throw RuleError(
                    "\(role) names undeclared stage '\(name.value)': expected one of lifecycle.stages (\(lifecycle.stages.map(\.value).joined(separator: ", ")))",
                    at: name.location)
            }
            return index
        }
        guard !lifecycle.stages.isEmpty else {
            throw RuleError("lifecycle.stages is empty: declare at least the initial stage", at: lifecycle.initial.location)
        }
        initialStage = try stage(lifecycle.initial, "lifecycle.initial")
        stageNames = lifecycle.stages.map(\.value)

        // Counters and attributes share one namespace with the built-in names.
        var names: Set<String> = Self.reservedNames
        guard rules.counters.count <= Self.maxCounters else {
            throw RuleError("too many counters: at most \(Self.maxCounters)", at: rules.counters[Self.maxCounters].location)
        }
        var compiledCounters: [CompiledCounter] = []
        for counter in rules.counters {
            guard names.insert(counter.name).inserted else {
                throw RuleError("the name '\(counter.name)' is already used; counter names must be unique and not built-in", at: counter.location)
            }
            compiledCounters.append(try CompiledCounter(counter, propertySlot: slot))
        }
        counters = compiledCounters
        counterNames = rules.counters.map(\.name)
        let maxEntries = compiledCounters.reduce(0) { $0 + Int($1.window / $1.resolution) + 2 }
        guard maxEntries <= Int(UInt16.max) else {
            throw RuleError(
                "windows and resolutions need up to \(maxEntries) buckets per user (limit \(UInt16.max)): use a coarser resolution",
                at: rules.counters.first?.location ?? .unknown)
        }
        guard let layout = BucketStore.Layout(
            resolutions: compiledCounters.map(\.resolution), windows: compiledCounters.map(\.window),
            signed: compiledCounters.map { !$0.isIntegral }, triggers: rules.triggers.count)
        else {
            throw RuleError(
                "the longest window in buckets of the finest resolution does not fit a 4-byte bucket: use a coarser resolution for the short windows",
                at: rules.counters.first?.location ?? .unknown)
        }
        bucketLayout = layout

        var compiledAttributes: [CompiledAttribute] = []
        for attribute in rules.attributes {
            guard names.insert(attribute.name).inserted else {
                throw RuleError("the name '\(attribute.name)' is already used; attribute names must be unique and not built-in", at: attribute.location)
            }
            compiledAttributes.append(CompiledAttribute(
                name: attribute.name, propertySlot: slot(attribute.path), values: [attribute.defaultValue]))
        }
        propertyPaths = paths
        attributeNames = rules.attributes.map(\.name)

        // Copied: a nested function may not read `self` before all of it is initialized.
        let (counterNames, attributeNames) = (counterNames, attributeNames)
        func evidence(_ sources: [EvidenceSource]) -> EvidenceList {
            EvidenceList(sources, counterNames: counterNames, attributeNames: attributeNames)
        }
        var compiler = ConditionCompiler(
            counters: Dictionary(uniqueKeysWithValues: rules.counters.enumerated().map { ($1.name, $0) }),
            attributes: compiledAttributes, stages: stageIndex, counterNames: counterNames,
            counterScales: compiledCounters.map(\.scale))

        // Transitions.
        var transitionsFrom = Array(repeating: [CompiledTransition](), count: stageNames.count)
        var trees: [(from: [UInt8], tree: Condition)] = []
        var edges = Array(repeating: [UInt8](), count: stageNames.count)
        // Reachability means something only when every transition's stages are known.
        var allEdgesKnown = true
        for transition in lifecycle.transitions {
            let target: UInt8, sources: [UInt8]
            do {
                target = try stage(transition.to, "transition 'to'")
                sources = try transition.from.map { (from) throws(RuleError) in try stage(from, "transition 'from'") }
            } catch {
                problems.append(error)
                allEdgesKnown = false
                continue
            }
            for source in sources { edges[Int(source)].append(target) }
            let program: ConditionProgram?, reason: String, looked: [EvidenceSource]
            switch transition.condition {
            case .activity:
                (program, reason, looked) = (nil, "entered \(transition.to.value) on activity", [])
            case .when(let text):
                let condition: CompiledCondition
                do {
                    condition = try compiler.compile(text)
                } catch {
                    problems.append(error)
                    continue
                }
                (program, reason, looked) = (condition.program, "entered \(transition.to.value): \(text.value)", condition.evidence)
                trees.append((sources, condition.tree))
            }
            for source in sources {
                transitionsFrom[Int(source)].append(CompiledTransition(
                    from: source, to: target, condition: program, reason: reason, evidence: evidence(looked)))
            }
        }
        self.transitionsFrom = FlatLists(transitionsFrom)
        if allEdgesKnown { problems += Self.unreachableStages(lifecycle, initial: initialStage, edges: edges) }

        // Triggers.
        var compiledTriggers: [CompiledTrigger] = []
        var onEnter = Array(repeating: [Int](), count: stageNames.count)
        var conditionTriggers: [ConditionTrigger] = []
        var triggerTrees: [Condition] = []
        for trigger in rules.triggers {
            do throws(RuleError) {
                guard !compiledTriggers.contains(where: { $0.name == trigger.name }) else {
                    throw RuleError("trigger '\(trigger.name)' is defined twice", at: trigger.location)
                }
                var compiled = CompiledTrigger(
                    name: trigger.name, cooldown: trigger.cooldown, evidence: evidence([]), reason: trigger.reason ?? "",
                    goal: nil, holdout: trigger.holdout?.value ?? 0)
                switch trigger.fire {
                case .onEnter(let stageName):
                    let target = try stage(stageName, "trigger '\(trigger.name)' on_enter")
                    guard target != initialStage || !lifecycle.transitions.allSatisfy({ $0.to.value != stageName.value }) else {
                        throw RuleError(
                            "trigger '\(trigger.name)' fires on entering '\(stageName.value)', but users only start there and no transition enters it",
                            at: stageName.location)
                    }
                    onEnter[Int(target)].append(compiledTriggers.count)
                    if trigger.reason == nil {
                        compiled.reason = "entered \(stageName.value)"
                        compiled.reasonFromTransition = true
                    }
                case .when(let text):
                    let condition = try compiler.compile(text)
                    compiled.evidence = evidence(condition.evidence)
                    triggerTrees.append(condition.tree)
                    conditionTriggers.append(ConditionTrigger(trigger: compiledTriggers.count, condition: condition.program))
                    if trigger.reason == nil { compiled.reason = text.value }
                }
                if let holdout = trigger.holdout, let problem = Self.holdoutProblem(holdout, "trigger '\(trigger.name)' holdout") {
                    throw problem
                }
                if let goal = trigger.goal {
                    compiled.goal = CompiledGoal(
                        condition: try goal.condition.map { (text) throws(RuleError) in try compiler.compile(text).program },
                        within: goal.within)
                }
                compiledTriggers.append(compiled)
            } catch {
                problems.append(error)
            }
        }
        for index in compiledTriggers.indices {
            let trigger = compiledTriggers[index]
            compiledTriggers[index].firingLifetime =
                max(trigger.cooldown, trigger.goal?.within ?? 0) + rules.events.allowedLateness
        }
        triggers = compiledTriggers
        firingLifetimes = compiledTriggers.map(\.firingLifetime)
        triggerNames = compiledTriggers.map(\.name)
        triggerIDSeeds = triggerNames.map { name in
            var seed = StableHash()
            seed.combine(name)
            return seed
        }
        if let problem = Self.holdoutProblem(rules.holdout.global, "holdout.global") { problems.append(problem) }
        triggerHoldouts = compiledTriggers.map(\.holdout)
        holdouts = HoldoutPlan(
            salt: rules.holdout.salt, triggerNames: triggerNames, shares: triggerHoldouts, global: rules.holdout.global.value)
        onEnterTriggers = FlatLists(onEnter)
        var compiledAlerts: [CompiledAlert] = []
        let triggerGoals = compiledTriggers.map { (name: $0.name, hasGoal: $0.goal != nil) }
        for alert in rules.alerts {
            do throws(RuleError) {
                compiledAlerts.append(try CompiledAlert(alert, stages: lifecycle.stages.map(\.value), triggers: triggerGoals))
            } catch {
                problems.append(error)
            }
        }
        alerts = compiledAlerts
        self.conditionTriggers = conditionTriggers
        attributes = compiler.attributes
        steps = compiler.steps

        // Event plans: which counters, attributes, goals and erasure each event name touches.
        var eventNames: [String] = []
        func mention(_ selector: EventSelector) {
            guard case .names(let list) = selector else { return }
            for name in list where !eventNames.contains(name.value) {
                if let problem = Self.lengthProblem(name.value, "event name", at: name.location) { problems.append(problem) }
                eventNames.append(name.value)
            }
        }
        for counter in rules.counters { mention(counter.events) }
        for attribute in rules.attributes { mention(attribute.on) }
        for trigger in rules.triggers { if let goal = trigger.goal { mention(goal.event) } }
        mention(.names(rules.eraseOn))
        for (attribute, rule) in zip(compiler.attributes, rules.attributes) {
            for value in attribute.values {
                if let problem = Self.lengthProblem(value, "value of attribute '\(attribute.name)'", at: rule.location) {
                    problems.append(problem)
                }
            }
        }
        self.eventNames = eventNames
        func matches(_ selector: EventSelector, _ eventID: Int) -> Bool {
            switch selector {
            case .any: true
            case .names(let list): eventID < eventNames.count && list.contains { $0.value == eventNames[eventID] }
            }
        }
        let eventIDs = Array(0...eventNames.count)
        eventCounters = FlatLists(eventIDs.map { id in rules.counters.indices.filter { matches(rules.counters[$0].events, id) } })
        eventAttributes = FlatLists(eventIDs.map { id in rules.attributes.indices.filter { matches(rules.attributes[$0].on, id) } })
        eventGoals = FlatLists(eventIDs.map { id in
            rules.triggers.indices.filter { rules.triggers[$0].goal.map { matches($0.event, id) } ?? false }
        })
        eventErases = eventIDs.map { id in id < eventNames.count && rules.eraseOn.contains { $0.value == eventNames[id] } }

        // Timers: the time comparisons that matter in each stage.
        let triggerAtoms = triggerTrees.flatMap(\.timeAtoms)
        timeAtomsByStage = FlatLists(stageNames.indices.map { stage in
            trees.filter { $0.from.contains(UInt8(stage)) }.flatMap(\.tree.timeAtoms) + triggerAtoms
        })
        // A condition trigger mixing counters with timers or the stage (which a timer can
        // change) can go false as a window slides and true again on a timer: the slide must
        // be seen so the trigger is re-armed.
        let sums = Set(compiledCounters.indices.filter { if case .sum = compiledCounters[$0].kind { true } else { false } })
        wakesOnCounterExpiry = (trees.map(\.tree) + triggerTrees).contains { $0.canBecomeTrueAsWindowsSlide(negated: false, sums: sums) }
            || triggerTrees.contains { $0.readsCounters && (!$0.timeAtoms.isEmpty || $0.readsStage) }
    }

    /// Names the condition language gives a meaning of its own.
    public static let reservedNames: Set<String> = ["stage", "inactive_for", "in_stage_for", "and", "or", "not", "true", "false", "any"]

    /// Holdouts are whole basis points from 0 to `HoldoutRule.maxBasisPoints`.
    private static func holdoutProblem(_ share: Located<Int>, _ field: String) -> RuleError? {
        guard !(0...HoldoutRule.maxBasisPoints).contains(share.value) else { return nil }
        return RuleError(
            "\(field) is \(HoldoutRule.percentText(share.value)); expected 0% to \(HoldoutRule.percentText(HoldoutRule.maxBasisPoints))",
            at: share.location)
    }

    /// Whether `trigger`'s firings are split into arms (by its own holdout or the global one).
    public func hasHoldout(_ trigger: Int) -> Bool { holdouts.hasHoldout(trigger) }

    /// The user's arm for `trigger` (nil for a trigger without a holdout); hashes, so called
    /// only as a trigger fires or converts.
    public func arm(ofTrigger trigger: Int, userID: some Sequence<UInt8>) -> Arm? { holdouts.arm(trigger, userID: userID) }

    /// What `trigger`'s firings say: its rule's `reason`, or the one derived from the rule.
    public func reason(ofTrigger trigger: Int) -> String { triggers[trigger].reason }

    /// The share of users expected in `trigger`'s control arm: its own holdout or the global one.
    public func controlShare(ofTrigger trigger: Int) -> Double {
        let own = Double(triggerHoldouts[trigger]) / 10_000, global = Double(rules.holdout.global.value) / 10_000
        return own + global - own * global
    }

    /// Event names and attribute values are interned with a one-byte length.
    private static func lengthProblem(_ text: String, _ what: String, at location: SourceLocation) -> RuleError? {
        guard text.utf8.count > Int(UInt8.max) else { return nil }
        return RuleError("\(what) is \(text.utf8.count) bytes long; at most \(UInt8.max) are supported", at: location)
    }

    /// Every declared stage must be reachable from the initial one.
    private static func unreachableStages(_ lifecycle: LifecycleRule, initial: UInt8, edges: [[UInt8]]) -> [RuleError] {
        var reached = Set([initial])
        var pending = [initial]
        while let next = pending.popLast() {
            for target in edges[Int(next)] where reached.insert(target).inserted { pending.append(target) }
        }
        return lifecycle.stages.indices.filter { !reached.contains(UInt8($0)) }.map { index in
            RuleError(
                "stage '\(lifecycle.stages[index].value)' is unreachable: no chain of transitions leads to it from '\(lifecycle.initial.value)'",
                at: lifecycle.stages[index].location)
        }
    }

    /// The event id for a name (`eventNames.count` for names the rules never mention).
    func eventID(named name: String) -> Int { eventNames.firstIndex(of: name) ?? eventNames.count }
}

struct CompiledCounter: Sendable {
    enum Kind: Sendable { case count, sum(slot: Int), distinctDays }
    var kind: Kind
    var window: Int64
    /// Bucket width: the window may include at most one bucket of events older than itself.
    var resolution: Int64

    init(_ rule: CounterRule, propertySlot: (String) -> Int) throws(RuleError) {
        guard rule.window >= Millis.minute else {
            throw RuleError("counter '\(rule.name)': the window must be at least 1m", at: rule.location)
        }
        switch rule.aggregation {
        case .count: kind = .count
        case .sum(let path): kind = .sum(slot: propertySlot(path))
        case .distinctDays: kind = .distinctDays
        }
        if case .distinctDays = kind {
            guard rule.resolution == nil || rule.resolution == Millis.day else {
                throw RuleError("counter '\(rule.name)': distinct days are counted in 1d buckets; remove 'resolution'", at: rule.location)
            }
            resolution = Millis.day
        } else {
            resolution = rule.resolution ?? min(Millis.hour, rule.window)
        }
        guard resolution >= Millis.minute, resolution <= rule.window else {
            throw RuleError(
                "counter '\(rule.name)': resolution must be between 1m and the window (\(Millis.formatDuration(rule.window)))",
                at: rule.location)
        }
        window = rule.window
    }

    var isIntegral: Bool {
        if case .sum = kind { return false }
        return true
    }

    /// Sums are kept in hundredths (exact for amounts like 9.99, ±21,474,836.47 per bucket),
    /// so counter values and thresholds are compared as whole numbers.
    var scale: Double { isIntegral ? 1 : 100 }
}

struct CompiledAttribute: Sendable {
    var name: String
    var propertySlot: Int
    /// Values known at compile time: the default (id 0) and every literal the conditions use.
    var values: [String]
}

struct CompiledTransition: Sendable {
    var from: UInt8
    var to: UInt8
    /// nil: any activity (an event from the user).
    var condition: ConditionProgram?
    /// What an `on_enter` trigger without a reason of its own says when this transition fires it.
    var reason: String
    var evidence: EvidenceList
}

struct CompiledTrigger: Sendable {
    var name: String
    var cooldown: Int64
    /// How long a firing is kept: while it can still hold back a firing (cooldown) or be
    /// converted (goal), measured from any later evaluation, which is at most the allowed
    /// lateness before the time it was last checked.
    var firingLifetime: Int64 = 0
    var evidence: EvidenceList
    var reason: String
    /// An `on_enter` trigger without a reason of its own says the transition's (`CompiledTransition.reason`).
    var reasonFromTransition = false
    var goal: CompiledGoal?
    /// Basis points held out (0: none).
    var holdout: Int
}

/// A `when:` trigger's index and condition, side by side for the loops that run them per event.
struct ConditionTrigger: Sendable {
    var trigger: Int
    var condition: ConditionProgram
}

struct CompiledGoal: Sendable {
    var condition: ConditionProgram?
    var within: Int64
}

/// Lists of lists stored flat, one array of items and a range per list, so reading a list
/// on the hot path copies no array and touches no reference count.
struct FlatLists<Element: Sendable>: Sendable {
    private(set) var items: [Element] = []
    private var ranges: [Range<Int>] = []

    init(_ lists: [[Element]]) {
        for list in lists {
            ranges.append(items.count..<(items.count + list.count))
            items.append(contentsOf: list)
        }
    }

    @inline(__always) func range(of list: Int) -> Range<Int> { ranges[list] }
    @inline(__always) subscript(item item: Int) -> Element { items[item] }
}

/// What a trigger reports as evidence: the names its rule looked at, and when the user was last seen.
enum EvidenceSource: Sendable, Equatable {
    case counter(Int)
    case attribute(Int)
    case stage
    case elapsed(TimeBase)
    case lastSeen
}

/// A firing's evidence: the values its rule looked at, then `last_seen`.
struct EvidenceList: Sendable {
    let sources: [EvidenceSource]
    /// As triggers print them, one per source.
    let names: [String]

    init(_ looked: [EvidenceSource], counterNames: [String], attributeNames: [String]) {
        sources = looked + [.lastSeen]
        names = sources.map { source in
            switch source {
            case .counter(let index): counterNames[index]
            case .attribute(let index): attributeNames[index]
            case .stage: "stage"
            case .elapsed(let base): base.name
            case .lastSeen: "last_seen"
            }
        }
    }
}

enum TimeBase: Sendable {
    case lastSeen, stageEntered
    var name: String { self == .lastSeen ? "inactive_for" : "in_stage_for" }
}

/// A time comparison `elapsed-since-base OP threshold`; its truth can only change at
/// `base + threshold` or one millisecond later, which is where the engine sets timers.
struct TimeAtom: Sendable {
    var base: TimeBase
    var comparison: Comparison
    var threshold: Int64

    /// When `now - base OP threshold` can change truth, for `base` + `threshold` = `deadline`:
    /// `>=` and `<` change at the deadline, `>` and `<=` a millisecond later.
    func changes(at deadline: Int64) -> (first: Int64, second: Int64?) {
        switch comparison {
        case .greaterOrEqual, .less: (deadline, nil)
        case .greater, .lessOrEqual: (deadline + 1, nil)
        case .equal, .notEqual: (deadline, deadline + 1)
        }
    }
}
