/// The lifecycle engine for one input partition: events and "time is now T" in, triggers
/// and conversions out. It never reads a clock, a file or a socket, so `replay` and the
/// daemon run exactly the same code, and the same input always gives the same output.
///
/// Stream time is the largest event time seen, or a later time passed to `advance(to:)`
/// (`replay --until`, or the wall clock for a caught-up partition in `run`): timers fire up
/// to it and lateness is measured from it. Events are evaluated at the largest *event* time
/// seen, so the triggers they cause carry event times whatever the wall clock did.
/// Each user is evaluated when one of their events arrives and when one of their timers
/// falls due; timers are only set where a rule's truth can change without an event
/// (`inactive_for`, `in_stage_for`, and counters falling when a rule needs that).
public struct PartitionEngine: Sendable {
    public let rules: CompiledRules
    public internal(set) var streamTime: Int64 = .min
    /// The largest event time seen.
    public internal(set) var eventTime: Int64 = .min
    public private(set) var stats: EngineStats
    /// Users currently in each stage, indexed like `rules.stageNames`.
    public internal(set) var usersPerStage: [Int]
    /// Each trigger's firings and conversions per arm since the state began, indexed like
    /// `rules.triggerNames`: kept with the state, so they survive restarts and moves.
    public internal(set) var armTotals: [ArmTotals]

    // The state (internal so that snapshots, in their own file, can read and rebuild it).
    var ids = ByteInterner()
    var users: UserRecords
    var buckets: BucketStore
    var timers = TimerQueue()
    private var eventNames: ByteInterner
    var attributeValues: [ByteInterner]
    /// Counter values of the user being evaluated, at the evaluation time.
    private var counterValues: [Double]
    /// Users changed since the changelog last took them; nil unless `trackChanges()`.
    var changes: ChangeSet?
    /// The changelog records of a commit cycle still being written; see `beginChangelogCut`.
    var cut: ChangelogCut?

    /// Largest event time the bucket layout can represent (about the year 2097).
    public static let maxEventTime: Int64 = BucketStore.maxBucketNumber * Millis.minute

    public init(rules: CompiledRules) {
        self.rules = rules
        stats = EngineStats(triggerCount: rules.triggers.count)
        usersPerStage = Array(repeating: 0, count: rules.stageNames.count)
        armTotals = Array(repeating: ArmTotals(), count: rules.triggers.count)
        users = UserRecords(attributeCount: rules.attributes.count, triggerCount: rules.triggers.count)
        buckets = BucketStore(layout: rules.bucketLayout, firingLifetimes: rules.firingLifetimes)
        counterValues = Array(repeating: 0, count: rules.counters.count)
        eventNames = Self.interner(rules.eventNames)
        attributeValues = rules.attributes.map { Self.interner($0.values) }
    }

    /// Runs under `newRules` from now on, keeping the state where it is: a reload costs no
    /// copy of it. Refused when the state's shape differs. Under another config version every
    /// timer is re-timed, exactly as restoring a snapshot under the new rules would; returns
    /// whether they were (every user's record then changed).
    @discardableResult
    public mutating func replaceRules(with newRules: CompiledRules) throws(StateShapeChanged) -> Bool {
        if let change = newRules.stateShapeChange(from: rules) { throw StateShapeChanged(change: change) }
        let retimed = newRules.configVersion != rules.configVersion
        self = PartitionEngine(rules: newRules, keepingStateOf: self)
        if retimed { rescheduleAllTimers() }
        return retimed
    }

    /// `old`'s state under `rules`, which derive the rest (event ids, firing lifetimes).
    /// Nothing is copied: the state's arrays are shared with `old` only until it is dropped,
    /// before anything writes to them.
    private init(rules: CompiledRules, keepingStateOf old: consuming PartitionEngine) {
        self.init(rules: rules)
        streamTime = old.streamTime
        eventTime = old.eventTime
        stats = old.stats
        usersPerStage = old.usersPerStage
        armTotals = old.armTotals
        ids = old.ids
        users = old.users
        buckets = old.buckets
        buckets.firingLifetimes = rules.firingLifetimes
        timers = old.timers
        attributeValues = old.attributeValues
        changes = old.changes
        cut = old.cut
    }

    /// An interner holding `strings` at indices 0, 1, ... (ids the compiled rules rely on).
    private static func interner(_ strings: [String]) -> ByteInterner {
        var table = ByteInterner()
        for string in strings {
            var bytes = Array(string.utf8)
            _ = bytes.withUnsafeMutableBytes { table.intern(UnsafeRawBufferPointer($0)) }
        }
        return table
    }

    public var userCount: Int { ids.count }

    // MARK: - Input

    /// The latest event time to accept, `ahead` (default `events.max_future`) after
    /// `reference`: the wall clock in `run`; stream time in `replay`, which has no clock (no
    /// limit before the first event).
    public func futureLimit(from reference: Int64, ahead: Int64? = nil) -> Int64 {
        guard reference != .min else { return .max }
        let (limit, overflow) = reference.addingReportingOverflow(ahead ?? rules.rules.events.maxFuture)
        return overflow ? .max : limit
    }

    /// Applies one event. Due timers up to the event's time fire first, so output order
    /// follows stream time. An event after `notAfter` (see `futureLimit(from:)`) is refused
    /// as `.tooFarAhead` and moves nothing: one bad clock must not fire every pending timer.
    @discardableResult
    public mutating func ingest(
        _ event: EventInput, into output: inout EngineOutput, notAfter: Int64 = .max
    ) -> IngestOutcome {
        guard event.time >= 0, event.time <= Self.maxEventTime else {
            stats.eventsOutOfRange += 1
            return .outOfRange
        }
        guard !event.userID.isEmpty, event.userID.count <= ByteInterner.maxKeyLength else {
            stats.eventsInvalidUser += 1
            return .invalidUser
        }
        let tooFarAhead = event.time > notAfter
        if event.time > streamTime, !tooFarAhead { advance(to: event.time, into: &output) }
        let eventID = eventNames.find(event.name).map(Int.init) ?? rules.eventNames.count
        // A privacy request is honoured whatever its time.
        if rules.eventErases[eventID] {
            if let user = ids.find(event.userID) { erase(Int(user)) }
            stats.eventsErasing += 1
            return .erased
        }
        if tooFarAhead {
            stats.eventsTooFarAhead += 1
            return .tooFarAhead
        }
        if event.time < streamTime - rules.rules.events.allowedLateness {
            stats.eventsLate += 1
            return .late
        }
        eventTime = max(eventTime, event.time)
        let now = eventTime
        let (index, inserted) = ids.intern(event.userID)
        let user = Int(index)
        keepForCut(user)
        if inserted {
            users.reset(user, stage: rules.initialStage, at: event.time)
            usersPerStage[Int(rules.initialStage)] += 1
        }
        // One pass over the user's buckets per event: counters are computed before the event
        // (to re-arm conditions that went false) and then updated by what the event adds.
        computeCounters(user, now: now)
        rearmConditions(user, now: now)
        apply(event, eventID: eventID, to: user, now: now)
        checkGoals(eventID: eventID, event: event, user: user, into: &output)
        evaluate(user, now: now, activity: true, into: &output)
        schedule(user, after: now)
        changes?.mark(user)
        stats.eventsApplied += 1
        // Stream time may be ahead of the events (a later erase, the wall clock in `run`):
        // a timer this event set that is already due fires now, not at the next advance.
        if users[user, .scheduled] <= streamTime { advance(to: streamTime, into: &output) }
        return .applied
    }

    /// Moves stream time forward to `time`, firing every timer due by then in deadline order.
    /// Earlier times are ignored: stream time never goes back.
    public mutating func advance(to time: Int64, into output: inout EngineOutput) {
        while let next = timers.first, next.deadline <= time {
            _ = timers.popFirst()
            let user = Int(next.user)
            guard user < users.count, users[user, .scheduled] == next.deadline else { continue }
            stats.timersDue += 1
            keepForCut(user)
            changes?.mark(user)
            users[user, .scheduled] = .max
            streamTime = max(streamTime, next.deadline)
            let due = nextWake(user, from: next.deadline, inclusive: true)
            if due == next.deadline {
                computeCounters(user, now: due)
                evaluate(user, now: due, activity: false, into: &output)
                schedule(user, after: due)
            } else if due != .max {
                users[user, .scheduled] = due
                timers.push(.init(deadline: due, user: next.user))
            }
        }
        streamTime = max(streamTime, time)
    }

    // MARK: - State changes

    private mutating func apply(_ event: EventInput, eventID: Int, to user: Int, now: Int64) {
        users[user, .lastSeen] = max(users[user, .lastSeen], event.time)
        for item in rules.eventCounters.range(of: eventID) {
            let counterIndex = rules.eventCounters[item: item]
            let counter = rules.counters[counterIndex]
            // A multiply, not a division (tens of cycles): `ingest` keeps times in [0, maxEventTime].
            let bucket = buckets.layout.bucket(of: event.time, counter: counterIndex)
            // A bucket already out of its window can never count again.
            guard (bucket + 1) * counter.resolution > now - counter.window else { continue }
            // Keep `counterValues` equal to what a fresh `computeCounters` would give.
            switch counter.kind {
            case .count:
                let change = buckets.add(to: &users[run: user], counter: counterIndex, bucket: bucket) { old in
                    let (sum, overflow) = (old ?? 0).addingReportingOverflow(1)
                    return overflow ? .max : sum
                }
                counterValues[counterIndex] += Double(change.new) - Double(change.old ?? 0)
            case .distinctDays:
                let change = buckets.add(to: &users[run: user], counter: counterIndex, bucket: bucket) { _ in 1 }
                if change.old == nil { counterValues[counterIndex] += 1 }
            case .sum(let slot):
                let property = event.properties[slot]
                guard property.kind == .number, property.number.isFinite else { continue }
                let hundredths = (property.number * counter.scale).rounded()
                let change = buckets.add(to: &users[run: user], counter: counterIndex, bucket: bucket) { old in
                    let total = Double(Int32(bitPattern: old ?? 0)) + hundredths
                    return UInt32(bitPattern: Int32(max(Double(Int32.min), min(Double(Int32.max), total))))
                }
                counterValues[counterIndex] +=
                    Double(Int32(bitPattern: change.new)) - Double(Int32(bitPattern: change.old ?? 0))
            }
        }
        for item in rules.eventAttributes.range(of: eventID) {
            let attributeIndex = rules.eventAttributes[item: item]
            let property = event.properties[rules.attributes[attributeIndex].propertySlot]
            guard property.kind == .string else { continue }
            guard let value = internAttribute(attributeIndex, property.string) else {
                stats.attributeValuesDropped += 1
                continue
            }
            users[attribute: user, attributeIndex] = value
        }
    }

    mutating func internAttribute(_ attribute: Int, _ bytes: UnsafeRawBufferPointer) -> UInt16? {
        if let known = attributeValues[attribute].find(bytes) { return UInt16(known) }
        guard attributeValues[attribute].count <= Int(UInt16.max), bytes.count <= ByteInterner.maxKeyLength else {
            return nil
        }
        return UInt16(attributeValues[attribute].intern(bytes).index)
    }

    mutating func erase(_ user: Int) {
        keepForCut(user)
        if changes != nil { changes!.erase(user, id: ids.withKey(UInt32(user)) { Array($0) }) }
        usersPerStage[Int(users[stage: user])] -= 1
        buckets.clear(&users[run: user])
        users.clear(user)
        users[user, .scheduled] = .max
        ids.remove(UInt32(user))
        stats.usersErased += 1
    }

    // MARK: - Evaluation

    /// Fills `counterValues` for `user` at `now`, dropping buckets that left their window.
    private mutating func computeCounters(_ user: Int, now: Int64) {
        counterValues.withUnsafeMutableBufferPointer { sums in
            buckets.sweep(&users[run: user], now: now, into: sums)
        }
    }

    /// What a bucket adds to its counter at `now`, or nil once it has left the window.
    @inline(__always)
    private static func contribution(bucket: Int64, raw: UInt32, _ counter: CompiledCounter, now: Int64) -> Double? {
        let end = (bucket + 1) * counter.resolution
        guard end > now - counter.window else { return nil }
        switch counter.kind {
        case .count, .distinctDays: return Double(raw)
        case .sum: return Double(Int32(bitPattern: raw))
        }
    }

    /// Before an event changes a user, forget condition edges that turned false since the
    /// last evaluation (a window emptied), so the condition can fire again when it returns.
    /// `counterValues` must be current for `user` at `now`.
    private mutating func rearmConditions(_ user: Int, now: Int64) {
        // Most users have no condition that held: one look at their flags instead of one per trigger.
        guard users.hasConditionFlags(user) else { return }
        // By index: a for-in loop would retain the rules' array for its duration, per event.
        for position in 0..<rules.conditionTriggers.count {
            let trigger = rules.conditionTriggers[position].trigger, condition = rules.conditionTriggers[position].condition
            guard users.flag(user, UserRecords.conditionBit(trigger)) else { continue }
            if !holds(condition, user, now: now) { users.setFlag(user, UserRecords.conditionBit(trigger), false) }
        }
    }

    private mutating func checkGoals(eventID: Int, event: EventInput, user: Int, into output: inout EngineOutput) {
        // A goal counts only after its trigger fired: a user without firings has none to reach.
        guard buckets.hasFirings(users[run: user]) else { return }
        for item in rules.eventGoals.range(of: eventID) {
            let trigger = rules.eventGoals[item: item]
            guard let firedAt = buckets.lastFiring(users[run: user], trigger: trigger),
                !users.flag(user, UserRecords.convertedBit(trigger)),
                let goal = rules.triggers[trigger].goal,
                event.time >= firedAt, event.time - firedAt <= goal.within
            else { continue }
            if let condition = goal.condition, !holds(condition, user, now: eventTime) { continue }
            users.setFlag(user, UserRecords.convertedBit(trigger), true)
            let (id, arm) = ids.withKey(UInt32(user)) { userID in
                (triggerID(trigger, userID: userID, firedAt: firedAt), rules.arm(ofTrigger: trigger, userID: userID))
            }
            armTotals[trigger][arm ?? .treatment].converted += 1
            output.conversions.append(Conversion(
                trigger: rules.triggers[trigger].name, triggerID: id.description, userID: ids.string(UInt32(user)),
                firedAt: firedAt, convertedAt: event.time, arm: arm))
        }
    }

    /// Runs the stage machine to rest, then the condition triggers; `counterValues` must be
    /// current for `user` at `now`.
    private mutating func evaluate(_ user: Int, now: Int64, activity: Bool, into output: inout EngineOutput) {
        var activityUnused = activity
        // Each step enters a new stage; a cycle of always-true transitions stops after one lap.
        for _ in 0..<rules.stageNames.count {
            let from = users[stage: user]
            // A loop, not `first(where:)`: from its closure, `holds` was called out of line
            // with a copy of the whole engine.
            var taken: Int?
            for item in rules.transitionsFrom.range(of: Int(from)) {
                let fires = if let condition = rules.transitionsFrom[item: item].condition { holds(condition, user, now: now) } else { activityUnused }
                if fires {
                    taken = item
                    break
                }
            }
            guard let item = taken else { break }
            let to = rules.transitionsFrom[item: item].to
            if rules.transitionsFrom[item: item].condition == nil { activityUnused = false }
            usersPerStage[Int(from)] -= 1
            usersPerStage[Int(to)] += 1
            users[stage: user] = to
            users[user, .stageSince] = now
            for triggerItem in rules.onEnterTriggers.range(of: Int(to)) {
                fire(rules.onEnterTriggers[item: triggerItem], user, now: now, transition: item, into: &output)
            }
        }
        for position in 0..<rules.conditionTriggers.count {
            let trigger = rules.conditionTriggers[position].trigger, condition = rules.conditionTriggers[position].condition
            let isTrue = holds(condition, user, now: now)
            let bit = UserRecords.conditionBit(trigger)
            // Written only when it changes: a write checks that the records are not shared.
            guard isTrue != users.flag(user, bit) else { continue }
            if isTrue { fire(trigger, user, now: now, transition: nil, into: &output) }
            users.setFlag(user, bit, isTrue)
        }
    }

    /// Records a firing of `trigger` for `user` (by `transition`, an item of `transitionsFrom`;
    /// nil for a condition trigger) unless its cooldown holds it back. Allocates nothing: the
    /// output keeps its buffers.
    private mutating func fire(_ trigger: Int, _ user: Int, now: Int64, transition: Int?, into output: inout EngineOutput) {
        if let last = buckets.lastFiring(users[run: user], trigger: trigger), now - last < rules.triggers[trigger].cooldown {
            stats.suppressedByCooldown[trigger] += 1
            return
        }
        buckets.setFiring(&users[run: user], trigger: trigger, time: now)
        users.setFlag(user, UserRecords.convertedBit(trigger), false)
        let (id, arm, userIDRange) = ids.withKey(UInt32(user)) { userID in
            // Hashed only here, as a trigger fires: the control arm is evaluated exactly as the other.
            (triggerID(trigger, userID: userID, firedAt: now), rules.arm(ofTrigger: trigger, userID: userID),
             output.appendBytes(userID))
        }
        armTotals[trigger][arm ?? .treatment].fired += 1
        let evidenceStart = output.evidenceCount
        for source in rules.evidence(ofTrigger: trigger, transition: transition).sources {
            let value = evidenceValue(source, user, now: now, into: &output)
            output.appendEvidence(value)
        }
        output.triggers.append(FiredTrigger(
            trigger: trigger, id: id, firedAt: now, arm: arm, transition: transition, userIDRange: userIDRange,
            evidenceRange: evidenceStart..<output.evidenceCount))
    }

    @inline(__always)
    private func triggerID(_ trigger: Int, userID: UnsafeRawBufferPointer, firedAt: Int64) -> TriggerID {
        var hash = rules.triggerIDSeeds[trigger]
        hash.combine(userID)
        hash.combine(firedAt)
        hash.combine(rules.configVersion)
        return TriggerID(hash)
    }

    /// One evidence value of `user` at `now`; text goes into the output's bytes.
    @inline(__always)
    private func evidenceValue(_ source: EvidenceSource, _ user: Int, now: Int64, into output: inout EngineOutput) -> EvidenceValue {
        switch source {
        case .counter(let index):
            let counter = rules.counters[index]
            let value = counterValues[index] / counter.scale
            return counter.isIntegral ? .integer(Int64(value)) : .number(value)
        case .attribute(let index):
            return .text(attributeValues[index].withKey(UInt32(users[attribute: user, index])) { output.appendBytes($0) })
        case .stage:
            return .text(output.appendBytes(rules.stageNames[Int(users[stage: user])].utf8))
        case .elapsed(let base):
            return .integer(now - baseTime(base, user))
        case .lastSeen:
            return .integer(users[user, .lastSeen])
        }
    }

    private func attributeText(_ user: Int, _ attribute: Int) -> String {
        attributeValues[attribute].string(UInt32(users[attribute: user, attribute]))
    }

    @inline(__always)
    private func baseTime(_ base: TimeBase, _ user: Int) -> Int64 {
        base == .lastSeen ? users[user, .lastSeen] : users[user, .stageSince]
    }

    /// Runs a condition's steps from its entry until one decides it. Inlined, like the
    /// other read-only helpers of the per-event paths, and mutating though it changes
    /// nothing: called out of line from a mutating method, a non-mutating one was given a
    /// copy of the whole engine (552 bytes) as `self` at each call.
    @inline(__always)
    private mutating func holds(_ program: ConditionProgram, _ user: Int, now: Int64) -> Bool {
        var next = program.entry
        while next >= 0 {
            let step = rules.steps[Int(next)]
            let value: Bool
            switch step.test {
            case .counter(let counter, let op, let threshold): value = op.holds(counterValues[counter], threshold)
            case .counters(let lhs, let lhsScale, let op, let rhs, let rhsScale):
                value = op.holds(counterValues[lhs] * lhsScale, counterValues[rhs] * rhsScale)
            case .attribute(let attribute, let equal, let wanted):
                value = (users[attribute: user, attribute] == wanted) == equal
            case .stage(let equal, let stage): value = (users[stage: user] == stage) == equal
            case .elapsed(let base, let op, let threshold): value = op.holds(now - baseTime(base, user), threshold)
            }
            next = value ? step.ifTrue : step.ifFalse
        }
        return next == ConditionProgram.holds
    }

    // MARK: - Timers

    /// The earliest time after (or at, if `inclusive`) `time` at which a rule that matters in
    /// the user's stage can change truth without an event; `Int64.max` if none.
    /// Mutating, though it changes nothing, so that the per-event callers pass the engine in
    /// place to `earliestBucketExpiry`.
    @inline(__always)
    mutating func nextWake(_ user: Int, from time: Int64, inclusive: Bool) -> Int64 {
        var best = Int64.max
        @inline(__always) func consider(_ candidate: Int64) {
            if candidate < best, inclusive ? candidate >= time : candidate > time { best = candidate }
        }
        for item in rules.timeAtomsByStage.range(of: Int(users[stage: user])) {
            let atom = rules.timeAtomsByStage[item: item]
            let (deadline, overflow) = baseTime(atom.base, user).addingReportingOverflow(atom.threshold)
            guard !overflow, deadline < .max else { continue }
            let changes = atom.changes(at: deadline)
            consider(changes.first)
            if let second = changes.second { consider(second) }
        }
        if rules.wakesOnCounterExpiry {
            best = min(best, earliestBucketExpiry(user, after: time, inclusive: inclusive))
        }
        return best
    }

    /// Out of line and mutating: inlined into `nextWake`'s callers, reading `buckets` copied
    /// the whole store onto the stack on every call (0.6 % of an event's instructions), even
    /// with rules that never get here.
    @inline(never)
    private mutating func earliestBucketExpiry(_ user: Int, after time: Int64, inclusive: Bool) -> Int64 {
        buckets.earliestExpiry(users[run: user], after: time, inclusive: inclusive)
    }

    private mutating func schedule(_ user: Int, after time: Int64) {
        let wake = nextWake(user, from: time, inclusive: false)
        // An earlier pending entry stays; when it pops, the user is rescheduled from there.
        guard wake < users[user, .scheduled] else { return }
        users[user, .scheduled] = wake
        timers.push(.init(deadline: wake, user: UInt32(user)))
    }

    // MARK: - Inspection

    /// Everything the engine knows about one user, for "why did this user get that trigger?".
    public func report(userID: String) -> UserReport? {
        var key = Array(userID.utf8)
        guard let index = key.withUnsafeMutableBytes({ ids.find(UnsafeRawBufferPointer($0)) }) else { return nil }
        let user = Int(index)
        let now = streamTime
        var values = Array(repeating: 0.0, count: rules.counters.count)
        buckets.forEach(users[run: user]) { counterIndex, bucket, raw in
            if let value = Self.contribution(bucket: bucket, raw: raw, rules.counters[counterIndex], now: now) { values[counterIndex] += value }
        }
        var engine = self  // shares the state: `nextWake` only reads it
        let wake = engine.nextWake(user, from: now, inclusive: false)
        return UserReport(
            userID: userID,
            stage: rules.stageNames[Int(users[stage: user])],
            stageSince: users[user, .stageSince],
            lastSeen: users[user, .lastSeen],
            counters: rules.counterNames.indices.map { (rules.counterNames[$0], values[$0] / rules.counters[$0].scale) },
            attributes: rules.attributeNames.indices.map { (rules.attributeNames[$0], attributeText(user, $0)) },
            nextTimer: wake == .max ? nil : wake,
            lastFired: lastFirings(user).map { (rules.triggerNames[$0.trigger], $0.time) },
            streamTime: now)
    }

    /// The user's kept firings, in the rules' trigger order.
    func lastFirings(_ user: Int) -> [(trigger: Int, time: Int64)] {
        var firings: [(trigger: Int, time: Int64)] = []
        buckets.forEachFiring(users[run: user]) { firings.append(($0, $1)) }
        return firings.sorted { $0.trigger < $1.trigger }
    }

    /// Heap bytes held by each part of the engine's state (capacity, not just use).
    public var memoryBreakdown: [(part: String, bytes: Int)] {
        [
            ("user ids", ids.allocatedBytes),
            ("user records", users.allocatedBytes),
            ("window buckets", buckets.allocatedBytes),
            ("timers", timers.allocatedBytes),
            ("attribute values", attributeValues.reduce(0) { $0 + $1.allocatedBytes }),
        ]
    }

    /// How the window buckets' slab is used (walks every user: for reports, not for metrics).
    public var bucketSlabUse: BucketSlabUse {
        buckets.slabUse(of: (0..<users.count).lazy.map { users[run: $0] })
    }

    /// The sum of `memoryBreakdown`, without building it: the daemon publishes it often.
    public var allocatedBytes: Int {
        ids.allocatedBytes + users.allocatedBytes + buckets.allocatedBytes + timers.allocatedBytes
            + attributeValues.reduce(0) { $0 + $1.allocatedBytes }
    }
}

public enum IngestOutcome: Sendable, Equatable {
    case applied
    /// Older than stream time minus the allowed lateness: counted and dropped.
    case late
    /// An `erase_on` event, late or not: the user's state is gone.
    case erased
    /// Later than the limit given to `ingest` (`events.max_future` ahead): counted and dropped.
    case tooFarAhead
    /// Event time before 1970 or beyond the representable range.
    case outOfRange
    /// Empty or longer than 255 bytes.
    case invalidUser
}

public struct EngineStats: Sendable, Equatable {
    public var eventsApplied = 0
    public var eventsLate = 0
    public var eventsTooFarAhead = 0
    public var eventsOutOfRange = 0
    public var eventsInvalidUser = 0
    public var eventsErasing = 0
    public var usersErased = 0
    public var attributeValuesDropped = 0
    /// Timers that fell due (a user re-evaluated or re-scheduled without an event): with
    /// `eventsApplied`, tells whether the state changed since it was last saved.
    public var timersDue = 0
    /// Indexed like `CompiledRules.triggerNames` (firings and conversions: `PartitionEngine.armTotals`).
    public var suppressedByCooldown: [Int]

    public init(triggerCount: Int) {
        suppressedByCooldown = Array(repeating: 0, count: triggerCount)
    }
}

public struct UserReport: Sendable {
    public var userID: String
    public var stage: String
    public var stageSince: Int64
    public var lastSeen: Int64
    public var counters: [(name: String, value: Double)]
    public var attributes: [(name: String, value: String)]
    public var nextTimer: Int64?
    public var lastFired: [(trigger: String, at: Int64)]
    public var streamTime: Int64
}

/// New rules whose state would not fit the running state: counters, attributes, stages or
/// triggers added, removed or redefined. Such a change needs every instance stopped and the
/// state started afresh.
public struct StateShapeChanged: Error, Sendable, CustomStringConvertible {
    /// What differs, e.g. "counter 'logins_7d' added".
    public let change: String
    public var description: String { "the state's shape changed (\(change))" }
}
