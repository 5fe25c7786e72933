import LifecycleEngine

/// The engine's documented semantics (SPEC section 3, README "Semantics") written as plainly
/// as possible, to check the engine against. Slow on purpose: users in a dictionary, every
/// counted event kept until its bucket leaves the window, counters recomputed by scanning,
/// and every user evaluated at every instant where a rule could change truth without an
/// event (more instants than the engine's timers, which must make no difference).
struct ReferenceEngine {
    struct Output {
        var triggers: [Trigger] = []
        var conversions: [Conversion] = []
    }

    let rules: GeneratedRules
    private(set) var users: [String: ReferenceUser] = [:]
    /// Each user's next instant to be evaluated at without an event.
    private var wakes: [String: Int64] = [:]
    private var streamTime = Int64.min
    private var eventTime = Int64.min
    /// What the transitions' and `when:` triggers' conditions read: when they can change.
    private let timedComparisons: [(base: Condition.Elapsed, threshold: Int64)]
    private let readCounters: [Bool]

    init(rules: GeneratedRules) {
        self.rules = rules
        let conditions = rules.transitions.compactMap(\.when) + rules.triggers.compactMap { trigger in
            if case .when(let condition) = trigger.fire { condition } else { nil }
        }
        timedComparisons = conditions.flatMap(\.elapsedComparisons)
        let names = Set(conditions.flatMap(\.names))
        readCounters = rules.counters.map { names.contains($0.name) }
    }

    mutating func ingest(_ event: EventRecord, into output: inout Output) -> IngestOutcome {
        if event.time > streamTime { advance(to: event.time, into: &output) }
        if rules.eraseOn.contains(event.name) {
            users[event.userID] = nil
            wakes[event.userID] = nil
            return .erased
        }
        if event.time < streamTime - rules.lateness { return .late }
        eventTime = max(eventTime, event.time)
        // A new user is in the initial stage from the time of their first event. (Taken out
        // of the dictionary while changed, so that its arrays are not copied.)
        var user = users.removeValue(forKey: event.userID) ?? ReferenceUser(id: event.userID, rules: rules, at: event.time)
        user.apply(event, rules: rules)
        user.checkGoals(event, now: eventTime, rules: rules, into: &output)
        user.evaluate(at: eventTime, activity: true, rules: rules, into: &output)
        wakes[event.userID] = user.wake(timedComparisons, readCounters, rules: rules)
        users[event.userID] = user
        return .applied
    }

    /// Evaluates users at each of their instants up to `time`, earliest first.
    mutating func advance(to time: Int64, into output: inout Output) {
        while true {
            var dueTime = Int64.max, dueUser: String?
            for (user, wake) in wakes where wake < dueTime || (wake == dueTime && user < dueUser!) {
                dueTime = wake
                dueUser = user
            }
            guard let user = dueUser, dueTime <= time else { break }
            users[user]!.evaluate(at: dueTime, activity: false, rules: rules, into: &output)
            wakes[user] = users[user]!.wake(timedComparisons, readCounters, rules: rules)
        }
        streamTime = max(streamTime, time)
    }
}

struct ReferenceUser {
    struct Counted {
        var time: Int64
        /// Hundredths for a sum.
        var amount: Int64
    }

    let id: String
    var stage: String
    var stageSince: Int64
    var lastSeen: Int64
    var attributes: [String: String]
    /// Per counter, oldest first, every event it counted whose bucket is still in the window.
    var counted: [[Counted]]
    var lastFired: [String: Int64] = [:]
    /// `when:` triggers whose condition held at the last evaluation.
    var held: Set<String> = []
    var converted: Set<String> = []
    var evaluatedAt: Int64

    init(id: String, rules: GeneratedRules, at time: Int64) {
        self.id = id
        stage = rules.stages[0]
        stageSince = time
        lastSeen = time
        attributes = Dictionary(uniqueKeysWithValues: rules.attributes.map { ($0.name, $0.defaultValue) })
        counted = rules.counters.map { _ in [] }
        evaluatedAt = time
    }

    mutating func apply(_ event: EventRecord, rules: GeneratedRules) {
        lastSeen = max(lastSeen, event.time)
        for (index, counter) in rules.counters.enumerated() where counter.events?.contains(event.name) ?? true {
            var amount: Int64 = 1
            if counter.kind == .sum {
                guard case .number(let number) = event.properties[GeneratedRules.amountPath] else { continue }
                amount = Int64((number * 100).rounded())
            }
            let position = counted[index].lastIndex { $0.time <= event.time }.map { $0 + 1 } ?? 0
            counted[index].insert(Counted(time: event.time, amount: amount), at: position)
        }
        for attribute in rules.attributes where attribute.on?.contains(event.name) ?? true {
            if case .string(let value) = event.properties[attribute.path] { attributes[attribute.name] = value }
        }
    }

    func counterValues(at now: Int64, rules: GeneratedRules) -> [String: Double] {
        var values: [String: Double] = [:]
        for (index, counter) in rules.counters.enumerated() {
            var total: Int64 = 0
            var lastDay: Int64?
            for event in counted[index] where counter.counts(event.time, at: now) {
                switch counter.kind {
                case .count: total += 1
                case .sum: total += event.amount
                case .distinctDays:
                    if event.time / Millis.day != lastDay { total += 1 }
                    lastDay = event.time / Millis.day
                }
            }
            values[counter.name] = counter.kind == .sum ? Double(total) / 100 : Double(total)
        }
        return values
    }

    mutating func checkGoals(_ event: EventRecord, now: Int64, rules: GeneratedRules, into output: inout ReferenceEngine.Output) {
        for trigger in rules.triggers {
            guard let goal = trigger.goal, goal.event?.contains(event.name) ?? true,
                  let firedAt = lastFired[trigger.name], !converted.contains(trigger.name),
                  event.time >= firedAt, event.time - firedAt <= goal.within,
                  goal.condition.map({ holds($0, counterValues(at: now, rules: rules), now: now) }) ?? true
            else { continue }
            converted.insert(trigger.name)
            output.conversions.append(Conversion(
                trigger: trigger.name, triggerID: Self.triggerID(trigger.name, userID: id, firedAt: firedAt, rules: rules),
                userID: id, firedAt: firedAt, convertedAt: event.time))
        }
    }

    /// Runs the stage machine to rest (at most a lap of stages), then the `when:` triggers.
    mutating func evaluate(at now: Int64, activity: Bool, rules: GeneratedRules, into output: inout ReferenceEngine.Output) {
        for (index, counter) in rules.counters.enumerated() {
            counted[index].removeFirst(counted[index].prefix { !counter.counts($0.time, at: now) }.count)
        }
        let counters = counterValues(at: now, rules: rules)
        var activityUnused = activity
        for _ in rules.stages {
            guard let transition = rules.transitions.first(where: { transition in
                transition.from.contains(stage) && (transition.when.map { holds($0, counters, now: now) } ?? activityUnused)
            }) else { break }
            if transition.when == nil { activityUnused = false }
            let change = StageChange(from: stage, to: transition.to)
            stage = transition.to
            stageSince = now
            for trigger in rules.triggers {
                guard case .onEnter(transition.to) = trigger.fire else { continue }
                let detail = transition.when.map { ": \($0.text)" } ?? " on activity"
                fire(trigger, reason: trigger.reason ?? "entered \(transition.to)\(detail)",
                     evidence: transition.when?.names ?? [], change: change, counters, now: now, rules: rules, into: &output)
            }
        }
        for trigger in rules.triggers {
            guard case .when(let condition) = trigger.fire else { continue }
            let isTrue = holds(condition, counters, now: now)
            if isTrue, !held.contains(trigger.name) {
                fire(trigger, reason: trigger.reason ?? condition.text, evidence: condition.names, change: nil, counters,
                     now: now, rules: rules, into: &output)
            }
            if isTrue { held.insert(trigger.name) } else { held.remove(trigger.name) }
        }
        evaluatedAt = now
    }

    private mutating func fire(
        _ trigger: GeneratedRules.Trigger, reason: String, evidence names: [String], change: StageChange?,
        _ counters: [String: Double], now: Int64, rules: GeneratedRules, into output: inout ReferenceEngine.Output
    ) {
        if let last = lastFired[trigger.name], now - last < trigger.cooldown { return }
        lastFired[trigger.name] = now
        converted.remove(trigger.name)
        let evidence = names.map { name -> Evidence in
            if let counter = rules.counters.first(where: { $0.name == name }) {
                let value = counters[name]!
                return Evidence(name, counter.kind == .sum ? .number(value) : .integer(Int64(value)))
            }
            switch name {
            case "stage": return Evidence(name, .text(stage))
            case Condition.Elapsed.inactiveFor.rawValue: return Evidence(name, .integer(now - lastSeen))
            case Condition.Elapsed.inStageFor.rawValue: return Evidence(name, .integer(now - stageSince))
            default: return Evidence(name, .text(attributes[name]!))
            }
        }
        output.triggers.append(Trigger(
            id: Self.triggerID(trigger.name, userID: id, firedAt: now, rules: rules), name: trigger.name, userID: id,
            firedAt: now, transition: change, reason: reason, evidence: evidence + [Evidence("last_seen", .integer(lastSeen))],
            configVersion: rules.version))
    }

    /// SPEC: derived from trigger, user, fired_at and config version.
    private static func triggerID(_ trigger: String, userID: String, firedAt: Int64, rules: GeneratedRules) -> String {
        var hash = StableHash()
        hash.combine(trigger)
        hash.combine(userID)
        hash.combine(firedAt)
        hash.combine(rules.version)
        let (high, low) = hash.value128
        return [high, low].map { half in
            let digits = String(half, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }.joined()
    }

    func holds(_ condition: Condition, _ counters: [String: Double], now: Int64) -> Bool {
        switch condition {
        case .counter(let name, let op, let value): op.holds(counters[name]!, value)
        case .counters(let lhs, let op, let rhs): op.holds(counters[lhs]!, counters[rhs]!)
        case .attribute(let name, let equal, let value): (attributes[name] == value) == equal
        case .stage(let equal, let name): (stage == name) == equal
        case .elapsed(.inactiveFor, let op, let threshold): op.holds(now - lastSeen, threshold)
        case .elapsed(.inStageFor, let op, let threshold): op.holds(now - stageSince, threshold)
        case .not(let inner): !holds(inner, counters, now: now)
        case .and(let lhs, let rhs): holds(lhs, counters, now: now) && holds(rhs, counters, now: now)
        case .or(let lhs, let rhs): holds(lhs, counters, now: now) || holds(rhs, counters, now: now)
        }
    }

    /// The next instant after the last evaluation where a condition could change truth with
    /// no event: an `inactive_for` / `in_stage_for` comparison's deadline or a millisecond
    /// after it, or a bucket of a counter a condition reads leaving its window. Nil if none.
    func wake(
        _ timedComparisons: [(base: Condition.Elapsed, threshold: Int64)], _ readCounters: [Bool], rules: GeneratedRules
    ) -> Int64? {
        var next: Int64?
        func consider(_ instant: Int64) {
            if instant > evaluatedAt, instant < next ?? .max { next = instant }
        }
        for comparison in timedComparisons {
            let deadline = (comparison.base == .inactiveFor ? lastSeen : stageSince) + comparison.threshold
            consider(deadline)
            consider(deadline + 1)
        }
        // Oldest first: the first event's bucket is the next to leave its window.
        for (index, counter) in rules.counters.enumerated() where readCounters[index] {
            if let oldest = counted[index].first { consider(counter.leavesWindow(oldest.time)) }
        }
        return next
    }
}

extension GeneratedRules.Counter {
    /// README "Windows": at `now`, a counter holds the events of buckets whose end is after
    /// `now - window`, so at most one bucket's worth more than the exact window.
    func counts(_ time: Int64, at now: Int64) -> Bool { bucketEnd(time) > now - window }

    /// The first instant at which an event at `time` no longer counts.
    func leavesWindow(_ time: Int64) -> Int64 { bucketEnd(time) + window }

    private func bucketEnd(_ time: Int64) -> Int64 { (time / bucketWidth + 1) * bucketWidth }
}
