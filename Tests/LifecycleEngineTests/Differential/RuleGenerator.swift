import LifecycleEngine

/// Seeded draws spelled out with `next() % n`, so that a seed names the same rules and
/// stream whatever the Swift version's algorithms for `random(in:using:)`.
struct Dice {
    private var rng: SplitMix64
    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func below(_ bound: Int) -> Int { Int(rng.next() % UInt64(bound)) }
    mutating func below(_ bound: Int64) -> Int64 { Int64(rng.next() % UInt64(bound)) }
    mutating func chance(_ probability: Double) -> Bool { rng.unit() < probability }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// A non-empty subset of `items`, in their order.
    mutating func subset<T>(_ items: [T]) -> [T] {
        let chosen = items.filter { _ in chance(0.4) }
        return chosen.isEmpty ? [pick(items)] : chosen
    }
}

/// Rules from a small grammar: counters of each kind, an attribute, a stage machine with
/// `when:` and `on: activity` transitions, `on_enter` and `when:` triggers with cooldowns
/// and goals, conditions over all of it, lateness and an erase event.
struct RuleGenerator {
    static let eventNames = ["view", "click", "buy", "refund", "login", "set_plan"]
    static let eraseEvent = "forget_me"
    static let planValues = ["free", "pro", "team"]
    /// Event amounts, in hundredths: few, so that sums repeat, and some adding up to quarters.
    static let priceHundredths: [Int64] = [29, 71, 25, 50, 999, 1, 2_000, -425]

    private var dice: Dice
    private var rules: GeneratedRules
    /// Some rule sets compare counters only in ways that turn true as counts rise (`>=`, `>`;
    /// no sums, no `not`, triggers without timers): the engine then sets no timers at bucket
    /// expiries, and the reference, which evaluates there too, shows whether they are needed.
    private var risingOnly = false

    static func rules(seed: UInt64) -> GeneratedRules {
        var generator = RuleGenerator(seed: seed)
        generator.generate()
        return generator.rules
    }

    private init(seed: UInt64) {
        dice = Dice(seed: seed)
        rules = GeneratedRules(
            version: "difftest-\(seed)", lateness: 0, counters: [], attributes: [], stages: [], transitions: [],
            triggers: [], eraseOn: [Self.eraseEvent])
    }

    private mutating func generate() {
        let m = Millis.minute, h = Millis.hour, d = Millis.day
        rules.lateness = dice.pick([0, m, 10 * m, h, 6 * h])
        risingOnly = dice.chance(0.25)
        for index in 0..<(1 + dice.below(4)) {
            let kind = dice.pick(risingOnly ? [.count, .distinctDays] : [GeneratedRules.Counter.Kind.count, .distinctDays, .sum])
            let window = kind == .distinctDays ? dice.pick([d, 2 * d, 3 * d, 7 * d]) : dice.pick([2 * m, 10 * m, h, 3 * h, d, 2 * d, 7 * d])
            let resolutions = [m, 5 * m, 10 * m, 30 * m, h, 6 * h, d].filter { $0 <= window && window / $0 <= 2_000 }
            let resolution = kind != .distinctDays && dice.chance(0.5) ? dice.pick(resolutions) : nil
            let events = dice.chance(0.3) ? nil : dice.subset(Self.eventNames)
            let prefix = switch kind {
            case .count: "count"
            case .distinctDays: "days"
            case .sum: "amount"
            }
            rules.counters.append(.init(name: "\(prefix)\(index)", kind: kind, events: events, window: window, resolution: resolution))
        }
        if dice.chance(0.6) {
            rules.attributes.append(.init(
                name: "plan", path: GeneratedRules.planPath, on: dice.chance(0.3) ? nil : ["set_plan"],
                defaultValue: Self.planValues[0]))
        }
        rules.stages = (0..<(2 + dice.below(4))).map { "s\($0)" }
        // Transitions go forward in stage order, and back only after some time in the stage,
        // so one evaluation takes at most one step back and the machine comes to rest within
        // a lap of the stages. A machine that never rests would show at which instants users
        // are evaluated, which is the engine's to choose (the reference evaluates more often).
        // A chain through every stage keeps each reachable.
        for (from, to) in zip(rules.stages, rules.stages.dropFirst()) {
            rules.transitions.append(.init(from: [from], to: to, when: transitionCondition()))
        }
        let stageCount = rules.stages.count
        for _ in 0..<dice.below(4) {
            if dice.chance(0.5) {
                let to = 1 + dice.below(stageCount - 1)
                rules.transitions.append(.init(from: dice.subset(Array(rules.stages[..<to])), to: rules.stages[to], when: transitionCondition()))
            } else {
                let to = dice.below(stageCount - 1)
                let settled = Condition.elapsed(.inStageFor, .greaterOrEqual, dice.pick([Millis.hour, 6 * Millis.hour, Millis.day]))
                rules.transitions.append(.init(
                    from: dice.subset(Array(rules.stages[(to + 1)...])), to: rules.stages[to],
                    when: dice.chance(0.3) ? settled : .and(settled, condition(depth: 1, inTrigger: false))))
            }
        }
        for index in 0..<(1 + dice.below(4)) {
            let enterable = Set(rules.transitions.map(\.to)).sorted()
            let fire: GeneratedRules.Trigger.Fire =
                dice.chance(0.4) ? .onEnter(dice.pick(enterable)) : .when(condition(depth: 2, inTrigger: true))
            let goal = dice.chance(0.3) ? GeneratedRules.Goal(
                event: dice.chance(0.3) ? nil : [dice.pick(Self.eventNames)],
                condition: dice.chance(0.3) ? condition(depth: 1, inTrigger: false) : nil,
                within: dice.pick([10 * m, h, d, 3 * d])) : nil
            rules.triggers.append(.init(
                name: "t\(index)", fire: fire, cooldown: dice.pick([0, 10 * m, h, d, 3 * d]), goal: goal,
                reason: dice.chance(0.2) ? "reason of t\(index)" : nil))
        }
    }

    private mutating func transitionCondition() -> Condition? {
        dice.chance(0.25) ? nil : condition(depth: 2, inTrigger: false)
    }

    private mutating func condition(depth: Int, inTrigger: Bool) -> Condition {
        guard depth > 0, dice.chance(0.4) else { return comparison(inTrigger: inTrigger) }
        switch dice.below(risingOnly ? 2 : 3) {
        case 0: return .and(condition(depth: depth - 1, inTrigger: inTrigger), condition(depth: depth - 1, inTrigger: inTrigger))
        case 1: return .or(condition(depth: depth - 1, inTrigger: inTrigger), condition(depth: depth - 1, inTrigger: inTrigger))
        default: return .not(condition(depth: depth - 1, inTrigger: inTrigger))
        }
    }

    private mutating func comparison(inTrigger: Bool) -> Condition {
        let op = dice.pick(Comparison.allCases)
        let h = Millis.hour, m = Millis.minute
        switch dice.below(risingOnly && inTrigger ? 6 : 10) {
        case 0..<4:
            let counter = dice.pick(rules.counters)
            if risingOnly {
                return .counter(counter.name, dice.pick([.greaterOrEqual, .greater]), threshold(counter.kind))
            }
            if rules.counters.count > 1, dice.chance(0.1) {
                return .counters(counter.name, op, dice.pick(rules.counters).name)
            }
            return .counter(counter.name, op, threshold(counter.kind))
        case 4:
            guard let attribute = rules.attributes.first else { return comparison(inTrigger: inTrigger) }
            return .attribute(attribute.name, equal: dice.chance(0.5), dice.pick(Self.planValues))
        case 5:
            return .stage(equal: dice.chance(0.5), dice.pick(rules.stages))
        default:
            let base = dice.pick([Condition.Elapsed.inactiveFor, .inStageFor])
            return .elapsed(base, op, dice.pick([0, m, 10 * m, h, 6 * h, Millis.day, 3 * Millis.day]))
        }
    }

    private mutating func threshold(_ kind: GeneratedRules.Counter.Kind) -> Double {
        switch kind {
        case .count: Double(dice.below(7))
        case .distinctDays: Double(dice.below(4))
        // A few prices' worth, so that sums often land exactly on a threshold, rounded to a
        // quarter: the engine scales a threshold such as 0.29 to 28.999999999999996
        // hundredths, so a sum of exactly 0.29 is not `<= 0.29` (a discrepancy left out here).
        case .sum:
            Double(((0..<(1 + dice.below(3))).reduce(0) { total, _ in total + dice.pick(Self.priceHundredths) } / 25) * 25) / 100
        }
    }
}
