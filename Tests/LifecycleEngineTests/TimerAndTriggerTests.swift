import LifecycleEngine
import Testing

@Suite("Timers, edges and cooldowns")
struct TimerAndTriggerTests {
    typealias F = Fixture

    func inactivityRules(cooldown: Int64 = 0) throws -> CompiledRules {
        try F.rules(
            stages: ["active", "at_risk"],
            transitions: [
                F.transition(["active"], "at_risk", when: "inactive_for >= 7d"),
                F.transition(["at_risk"], "active"),
            ],
            triggers: [TriggerRule(name: "churn_risk", fire: .onEnter(Located("at_risk")), cooldown: cooldown)])
    }

    @Test("a silent user's timer fires at exactly its deadline, with fired_at = deadline")
    func timerAtDeadline() throws {
        var h = Harness(try inactivityRules())
        h.send("u", "login", at: F.t0 + 123)
        h.advance(to: F.t0 + 123 + 7 * F.day - 1)
        #expect(h.fired("churn_risk").isEmpty)
        h.advance(to: F.t0 + 123 + 7 * F.day)
        let trigger = try #require(h.fired("churn_risk").first)
        #expect(trigger.firedAt == F.t0 + 123 + 7 * F.day)
        #expect(trigger.transition == StageChange(from: "active", to: "at_risk"))
        #expect(trigger.evidence.contains(Evidence("inactive_for", .integer(7 * F.day))))
        #expect(trigger.evidence.contains(Evidence("last_seen", .integer(F.t0 + 123))))
    }

    @Test("another user's event moving stream time past a deadline fires it at the deadline")
    func timerFiredByOtherUsersEvent() throws {
        var h = Harness(try inactivityRules())
        h.send("quiet", "login", at: F.t0)
        h.send("busy", "login", at: F.t0 + 9 * F.day)
        #expect(h.fired("churn_risk").map(\.userID) == ["quiet"])
        #expect(h.fired("churn_risk").first?.firedAt == F.t0 + 7 * F.day)
        #expect(h.stage(of: "busy") == "active")
    }

    @Test("activity pushes the deadline out; the old one fires nothing")
    func activityMovesDeadline() throws {
        var h = Harness(try inactivityRules())
        h.send("u", "login", at: F.t0)
        h.send("u", "login", at: F.t0 + 5 * F.day)
        h.advance(to: F.t0 + 12 * F.day - 1)
        #expect(h.fired("churn_risk").isEmpty)
        h.advance(to: F.t0 + 12 * F.day)
        #expect(h.fired("churn_risk").map(\.firedAt) == [F.t0 + 12 * F.day])
    }

    @Test("an event exactly at the deadline sees the timer fire first")
    func eventAtDeadline() throws {
        var h = Harness(try inactivityRules())
        h.send("u", "login", at: F.t0)
        h.send("u", "login", at: F.t0 + 7 * F.day)
        #expect(h.fired("churn_risk").map(\.firedAt) == [F.t0 + 7 * F.day])
        #expect(h.stage(of: "u") == "active")  // then activity brings the user back
    }

    @Test("a condition that stays true fires once")
    func edgeTriggered() throws {
        var h = Harness(try F.rules(
            counters: [CounterRule(name: "c", events: F.names("x"), window: F.day)],
            triggers: [TriggerRule(name: "busy", fire: .when(Located("c >= 2")))]))
        for i in 0..<10 { h.send("u", "x", at: F.t0 + Int64(i) * F.minute) }
        #expect(h.fired("busy").count == 1)
        #expect(h.fired("busy").first?.firedAt == F.t0 + F.minute)
        #expect(h.fired("busy").first?.evidence.first == Evidence("c", .integer(2)))
    }

    @Test("a condition that turns false and true again fires again")
    func edgeRearms() throws {
        var h = Harness(try F.rules(
            counters: [CounterRule(name: "c", events: F.names("x"), window: F.hour, resolution: F.minute)],
            triggers: [TriggerRule(name: "busy", fire: .when(Located("c >= 2")))]))
        h.send("u", "x", at: F.t0)
        h.send("u", "x", at: F.t0 + 1)
        h.send("u", "x", at: F.t0 + 3 * F.hour)  // the window emptied in between: c is 1 now
        #expect(h.fired("busy").count == 1)
        h.send("u", "x", at: F.t0 + 3 * F.hour + 1)
        #expect(h.fired("busy").map(\.firedAt) == [F.t0 + 1, F.t0 + 3 * F.hour + 1])
    }

    @Test("cooldown suppresses a new edge until it expires, then a new edge fires")
    func cooldown() throws {
        var h = Harness(try F.rules(
            counters: [CounterRule(name: "c", events: F.names("x"), window: F.hour, resolution: F.minute)],
            triggers: [TriggerRule(name: "busy", fire: .when(Located("c >= 1")), cooldown: F.day)]))
        h.send("u", "x", at: F.t0)                   // fires
        h.send("u", "x", at: F.t0 + 2 * F.hour)      // new edge, in cooldown: suppressed
        h.send("u", "x", at: F.t0 + F.day - 1)       // new edge, 1 ms before expiry: suppressed
        h.send("u", "x", at: F.t0 + 2 * F.day)       // new edge after expiry: fires
        #expect(h.fired("busy").map(\.firedAt) == [F.t0, F.t0 + 2 * F.day])
        #expect(h.engine.stats.suppressedByCooldown == [2])
    }

    @Test("cooldown applies exactly at its boundary")
    func cooldownBoundary() throws {
        var h = Harness(try inactivityRules(cooldown: 10 * F.day))
        h.send("u", "login", at: F.t0)                       // at_risk at +7d: fires
        h.send("u", "login", at: F.t0 + 8 * F.day)           // back to active
        h.advance(to: F.t0 + 17 * F.day)                     // at_risk again at +15d: in cooldown
        h.send("u", "login", at: F.t0 + 17 * F.day)
        h.advance(to: F.t0 + 24 * F.day)                     // at_risk at +24d = 17d after the first fire
        #expect(h.fired("churn_risk").map(\.firedAt) == [F.t0 + 7 * F.day, F.t0 + 24 * F.day])
    }

    @Test("in_stage_for timers fire for a user who never comes back")
    func inStageTimer() throws {
        var h = Harness(try Fixture.playbook())
        h.send("u", "signup", at: F.t0 + 5)
        h.advance(to: F.t0 + 40 * F.day)
        #expect(h.fired("activation_nudge").map(\.firedAt) == [F.t0 + 5 + 3 * F.day])
        #expect(h.stage(of: "u") == "dormant")
    }

    @Test("the same trigger, user, time and config version give the same id; anything else differs")
    func deterministicIDs() throws {
        var a = Harness(try inactivityRules())
        var b = Harness(try inactivityRules())
        for h in [0, 1] {
            var harness = h == 0 ? a : b
            harness.send("u", "login", at: F.t0)
            harness.send("v", "login", at: F.t0)
            harness.advance(to: F.t0 + 8 * F.day)
            if h == 0 { a = harness } else { b = harness }
        }
        #expect(a.triggers == b.triggers)
        #expect(a.triggers.count == 2)
        #expect(Set(a.triggers.map(\.id)).count == 2)
        #expect(a.triggers.allSatisfy { $0.id.count == 32 && $0.configVersion == "test" })
    }
}

@Suite("Erase, goals and the reference playbook")
struct PlaybookTests {
    typealias F = Fixture

    @Test("erase drops all of a user's state and pending timers")
    func erase() throws {
        var h = Harness(try Fixture.playbook())
        h.send("u", "signup", at: F.t0)
        h.send("u", "core_action", at: F.t0 + 1)
        #expect(h.engine.userCount == 1)
        #expect(h.send("u", "user_deleted", at: F.t0 + 2) == .erased)
        #expect(h.engine.userCount == 0)
        #expect(h.engine.report(userID: "u") == nil)
        #expect(h.engine.usersPerStage.reduce(0, +) == 0)
        h.advance(to: F.t0 + 60 * F.day)
        #expect(h.triggers.isEmpty)  // no nudge, no dormancy for an erased user
        // The id starts from scratch when it comes back.
        h.send("u", "core_action", at: F.t0 + 60 * F.day)
        #expect(h.counter("core_actions_7d", of: "u") == 1)
        #expect(h.stage(of: "u") == "new")
    }

    @Test("an erase request older than the allowed lateness still erases: it is never dropped as late")
    func lateErase() throws {
        var h = Harness(try Fixture.playbook())
        h.send("u", "signup", at: F.t0)
        h.send("other", "core_action", at: F.t0 + F.day)
        #expect(h.send("u", "core_action", at: F.t0 + 1) == .late)
        #expect(h.send("u", "user_deleted", at: F.t0 + 2) == .erased)
        #expect(h.engine.report(userID: "u") == nil)
        #expect(h.engine.userCount == 1)
        #expect(h.engine.stats.eventsLate == 1 && h.engine.stats.usersErased == 1)
        h.advance(to: F.t0 + 60 * F.day)
        #expect(h.fired("activation_nudge", user: "u").isEmpty)
    }

    @Test("an event further than max_future ahead is refused and moves nothing; the limit follows its reference")
    func tooFarAhead() throws {
        var h = Harness(try Fixture.playbook())
        #expect(h.engine.futureLimit(from: h.engine.streamTime) == .max)  // nothing to compare the first event with
        h.send("u", "signup", at: F.t0)
        let limit = h.engine.futureLimit(from: h.engine.streamTime)
        #expect(limit == F.t0 + F.hour)  // the default events.max_future
        let year2089: Int64 = 3_786_393_600_000
        #expect(h.engine.ingest(EventRecord(userID: "u", name: "core_action", time: year2089), into: &h.output, notAfter: limit) == .tooFarAhead)
        #expect(h.engine.streamTime == F.t0)
        #expect(h.engine.stats.eventsTooFarAhead == 1)
        #expect(h.counter("core_actions_7d", of: "u") == 0)
        #expect(h.triggers.isEmpty)  // no timer fired early
        // Real events after it are neither late nor lost.
        #expect(h.send("u", "core_action", at: F.t0 + F.minute) == .applied)
        // With the wall clock as the reference (as `run` would), an hour ahead of it is the limit.
        let wallClock = F.t0 + F.day
        let ahead = EventRecord(userID: "v", name: "signup", time: wallClock + F.hour + 1)
        #expect(h.engine.ingest(ahead, into: &h.output, notAfter: h.engine.futureLimit(from: wallClock)) == .tooFarAhead)
        let justInTime = EventRecord(userID: "v", name: "signup", time: wallClock + F.hour)
        #expect(h.engine.ingest(justInTime, into: &h.output, notAfter: h.engine.futureLimit(from: wallClock)) == .applied)
        // An erase request is honoured whatever its time, without moving stream time.
        let erase = EventRecord(userID: "u", name: "user_deleted", time: year2089)
        #expect(h.engine.ingest(erase, into: &h.output, notAfter: h.engine.futureLimit(from: h.engine.streamTime)) == .erased)
        #expect(h.engine.report(userID: "u") == nil)
        #expect(h.engine.streamTime == wallClock + F.hour)
    }

    @Test("the playbook's stage machine: new → activated → engaged → at_risk → dormant → reactivated")
    func stageMachine() throws {
        var h = Harness(try Fixture.playbook())
        h.send("u", "signup", at: F.t0)
        for i in 0..<3 { h.send("u", "core_action", at: F.t0 + Int64(i) * F.hour) }
        #expect(h.stage(of: "u") == "activated")
        for d in 1...3 { h.send("u", "login", at: F.t0 + Int64(d) * F.day) }
        #expect(h.stage(of: "u") == "engaged")  // 4 active days in 14d
        let lastSeen = F.t0 + 3 * F.day
        h.advance(to: lastSeen + 7 * F.day)
        #expect(h.stage(of: "u") == "at_risk")
        h.advance(to: lastSeen + 30 * F.day)
        #expect(h.stage(of: "u") == "dormant")
        h.send("u", "login", at: lastSeen + 40 * F.day)
        #expect(h.stage(of: "u") == "reactivated")
        #expect(h.triggers.map(\.name) == ["churn_risk", "win_back"])
        let churn = try #require(h.fired("churn_risk").first)
        #expect(churn.firedAt == lastSeen + 7 * F.day)
        #expect(churn.reason == "entered at_risk: inactive_for >= 7d")
        let winBack = try #require(h.fired("win_back").first)
        #expect(winBack.transition == StageChange(from: "dormant", to: "reactivated"))
        #expect(h.engine.usersPerStage[h.engine.rules.stageNames.firstIndex(of: "reactivated")!] == 1)
    }

    @Test("upgrade_ready needs the free plan; its goal converts on a paid plan change within 14d")
    func upgradeAndConversion() throws {
        var h = Harness(try Fixture.playbook())
        h.send("u", "signup", at: F.t0, ["props.plan": .string("free")])
        h.send("p", "signup", at: F.t0, ["props.plan": .string("pro")])
        for user in ["u", "p"] {
            for i in 1...3 { h.send(user, "quota_exceeded", at: F.t0 + Int64(i) * F.hour) }
            for i in 4...5 { h.send(user, "premium_feature_viewed", at: F.t0 + Int64(i) * F.hour) }
        }
        let upgrade = try #require(h.fired("upgrade_ready").first)
        #expect(h.fired("upgrade_ready").map(\.userID) == ["u"])
        #expect(upgrade.evidence.map(\.name) == ["plan", "quota_hits_7d", "premium_views_14d", "last_seen"])
        // Changing to another free-like value is not the goal; a paid plan within 14d is.
        h.send("u", "plan_changed", at: F.t0 + 2 * F.day, ["props.plan": .string("free")])
        #expect(h.output.conversions.isEmpty)
        h.send("u", "plan_changed", at: F.t0 + 3 * F.day, ["props.plan": .string("pro")])
        #expect(h.output.conversions.map(\.triggerID) == [upgrade.id])
        h.send("u", "plan_changed", at: F.t0 + 4 * F.day, ["props.plan": .string("team")])
        #expect(h.output.conversions.count == 1)  // one conversion per firing
        #expect(h.engine.armTotals[h.engine.rules.triggerNames.firstIndex(of: "upgrade_ready")!].converted == 1)
    }

    @Test("a goal event after the goal window does not convert")
    func goalWindow() throws {
        var h = Harness(try Fixture.playbook())
        h.send("u", "login", at: F.t0)
        h.advance(to: F.t0 + 30 * F.day + 1)  // dormant (new → dormant): no churn_risk from new
        h.send("v", "core_action", at: F.t0 + 30 * F.day)
        for i in 0..<3 { h.send("w", "core_action", at: F.t0 + 30 * F.day + Int64(i)) }  // w activated
        h.advance(to: F.t0 + 37 * F.day + 2)  // w at_risk
        let churn = try #require(h.fired("churn_risk", user: "w").first)
        h.send("w", "login", at: churn.firedAt + 7 * F.day + 1)
        #expect(h.output.conversions.isEmpty)
    }

    @Test("power_user fires at the 50th core action in 7 days, once per cooldown")
    func powerUser() throws {
        var h = Harness(try Fixture.playbook())
        for i in 0..<60 { h.send("u", "core_action", at: F.t0 + Int64(i) * F.minute) }
        #expect(h.fired("power_user").map(\.firedAt) == [F.t0 + 49 * F.minute])
    }
}

@Suite("Determinism")
struct DeterminismTests {
    typealias F = Fixture

    static func stream(seed: UInt64, users: Int, count: Int) -> [EventRecord] {
        var rng = SplitMix64(seed: seed)
        let names = ["login", "core_action", "quota_exceeded", "premium_feature_viewed", "purchase", "signup", "plan_changed"]
        var time = F.t0
        return (0..<count).map { _ in
            time += Int64(rng.next() % UInt64(2 * F.hour))
            let name = names[Int(rng.next() % UInt64(names.count))]
            let plan = rng.next() % 4 == 0 ? "pro" : "free"
            // Some events arrive a little late, within the 10 minute allowance.
            let jitter = Int64(rng.next() % UInt64(5 * F.minute))
            return EventRecord(
                userID: "u\(rng.next() % UInt64(users))", name: name, time: time - jitter,
                properties: ["props.amount": .number(Double(rng.next() % 100)), "props.plan": .string(plan)])
        }
    }

    @Test("splitting the input and advancing time in between changes nothing", arguments: [11, 12, 13])
    func batchBoundaries(seed: UInt64) throws {
        let events = Self.stream(seed: seed, users: 40, count: 3_000)
        var whole = Harness(try Fixture.playbook())
        for event in events { whole.engine.ingest(event, into: &whole.output) }
        var split = Harness(try Fixture.playbook())
        var rng = SplitMix64(seed: seed ^ 0xff)
        for event in events {
            split.engine.ingest(event, into: &split.output)
            // Advancing to a stream time already reached must be a no-op.
            if rng.next() % 7 == 0 { split.advance(to: split.engine.streamTime) }
        }
        #expect(whole.triggers.count > 20)
        #expect(whole.triggers == split.triggers)
        #expect(whole.output.conversions == split.output.conversions)
        #expect(Set(whole.triggers.map(\.name)).count >= 4)
    }
}
