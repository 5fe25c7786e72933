import LifecycleEngine
import Testing

/// Semantics a code review found missing, each pinned by a test.
@Suite("Stream time, sums, re-arming, rules changes, erasure")
struct ReviewRegressionTests {
    typealias F = Fixture

    @Test("after stream time is advanced past the events (the wall clock in run), triggers caused by events carry event time")
    func eventTimeAfterAdvance() throws {
        var h = Harness(try F.rules(
            counters: [CounterRule(name: "c", events: F.names("x"), window: F.day)],
            triggers: [TriggerRule(name: "busy", fire: .when(Located("c >= 2")))]))
        h.send("u", "x", at: F.t0)
        h.advance(to: F.t0 + 5 * F.minute)
        #expect(h.send("u", "x", at: F.t0 + F.minute) == .applied)  // within the 10m lateness
        #expect(h.fired("busy").map(\.firedAt) == [F.t0 + F.minute])
        #expect(h.engine.eventTime == F.t0 + F.minute)
        #expect(h.engine.streamTime == F.t0 + 5 * F.minute)
    }

    @Test("sums are exact to the hundredth: 9.99 >= 9.99, and evidence shows 9.99")
    func exactSums() throws {
        var h = Harness(try F.rules(
            counters: [CounterRule(name: "revenue", events: F.names("purchase"), window: F.day, aggregation: .sum(path: "props.amount"))],
            triggers: [TriggerRule(name: "spender", fire: .when(Located("revenue >= 9.99")))]))
        h.send("u", "purchase", at: F.t0, ["props.amount": .number(9.99)])
        let trigger = try #require(h.fired("spender").first)
        #expect(trigger.evidence.first == Evidence("revenue", .number(9.99)))
        h.send("v", "purchase", at: F.t0, ["props.amount": .number(4.99)])
        h.send("v", "purchase", at: F.t0 + 1, ["props.amount": .number(5.00)])
        #expect(h.fired("spender").map(\.userID) == ["u", "v"])
    }

    @Test("a sum that rises when a negative bucket leaves its window wakes the user")
    func negativeSumExpiry() throws {
        var h = Harness(try F.rules(
            counters: [CounterRule(name: "net", events: F.names("purchase", "refund"), window: F.day, aggregation: .sum(path: "props.amount"), resolution: F.hour)],
            triggers: [TriggerRule(name: "net_positive", fire: .when(Located("net >= 50")))]))
        h.send("u", "refund", at: F.t0 + 10 * F.minute, ["props.amount": .number(-80)])
        h.send("u", "purchase", at: F.t0 + 2 * F.hour, ["props.amount": .number(100)])
        #expect(h.fired("net_positive").isEmpty)  // net = 20
        h.advance(to: F.t0 + 30 * F.hour)
        #expect(h.fired("net_positive").map(\.firedAt) == [F.t0 + 25 * F.hour])  // the refund's bucket left at 1h + 1d
    }

    @Test("a condition that goes false as a window slides and true again on a timer fires again")
    func rearmThenTimer() throws {
        var h = Harness(try F.rules(
            counters: [CounterRule(name: "c", events: F.names("y"), window: F.hour, resolution: F.minute)],
            stages: ["a", "b"],
            transitions: [F.transition(["a"], "b", when: "c >= 1 and inactive_for < 1d")],
            triggers: [TriggerRule(name: "t", fire: .when(Located("c >= 2 or in_stage_for >= 3d")))]))
        h.send("u", "y", at: F.t0)
        h.send("u", "y", at: F.t0 + 1)  // t fires; the user is in b since t0
        h.advance(to: F.t0 + 5 * F.day)
        #expect(h.fired("t").map(\.firedAt) == [F.t0 + 1, F.t0 + 3 * F.day])
    }

    @Test("restoring under changed rules of the same shape re-times every user's timers")
    func rulesChangeRetimes() throws {
        func rules(_ days: Int, version: String) throws -> CompiledRules {
            try CompiledRules(Rules(
                lifecycle: LifecycleRule(
                    stages: [Located("active"), Located("at_risk")], initial: Located("active"),
                    transitions: [F.transition(["active"], "at_risk", when: "inactive_for >= \(days)d")]),
                triggers: [TriggerRule(name: "churn_risk", fire: .onEnter(Located("at_risk")))]),
                configVersion: version)
        }
        var old = Harness(try rules(7, version: "old"))
        old.send("u", "login", at: F.t0)
        old.send("w", "login", at: F.t0 + 6 * F.day)
        var new = Harness(try rules(5, version: "new"))
        new.engine = try PartitionEngine(rules: new.engine.rules, snapshot: old.engine.snapshot())
        new.advance(to: F.t0 + 6 * F.day + 1)
        #expect(new.fired("churn_risk").map(\.firedAt) == [F.t0 + 5 * F.day])  // u's new deadline, already past
        new.advance(to: F.t0 + 11 * F.day)
        #expect(new.fired("churn_risk").map(\.userID) == ["u", "w"])
    }

    @Test("an erased user's times and activity are gone from the snapshot, not just the id")
    func erasureLeavesNoValues() throws {
        var h = Harness(try Fixture.playbook())
        let distinctive: Int64 = F.t0 + 123_456_789
        h.send("zed", "core_action", at: distinctive)
        h.send("amy", "login", at: distinctive + 1)
        h.send("zed", "user_deleted", at: distinctive + 2)
        let bytes = h.engine.snapshot()
        let needle = withUnsafeBytes(of: distinctive.littleEndian) { Array($0) }
        let found = bytes.indices.dropLast(7).contains { Array(bytes[$0..<($0 + 8)]) == needle }
        #expect(!found)
        #expect(!String(decoding: bytes, as: UTF8.self).contains("zed"))
    }

    @Test("an event name longer than 255 bytes is a config error")
    func longEventName() {
        let long = String(repeating: "e", count: 256)
        #expect(throws: RuleErrors.self) {
            try F.rules(counters: [CounterRule(name: "c", events: F.names(long), window: F.day)])
        }
    }
}
