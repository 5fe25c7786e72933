import LifecycleEngine
import Testing

@Suite("Snapshots")
struct SnapshotTests {
    typealias F = Fixture

    @Test("stopping at any point, snapshotting and restoring gives the same triggers as never stopping", arguments: [100, 1_500, 2_999])
    func restoreMidStream(cut: Int) throws {
        let rules = try Fixture.playbook()
        let events = DeterminismTests.stream(seed: 21, users: 50, count: 3_000)
        let whole = Harness.straightThrough(events, rules: rules, until: F.t0 + 200 * F.day)

        var first = Harness(rules)
        for event in events[..<cut] { first.engine.ingest(event, into: &first.output) }
        let bytes = first.engine.snapshot()
        var second = Harness(rules)
        second.engine = try PartitionEngine(rules: rules, snapshot: bytes)
        second.output = first.output
        for event in events[cut...] { second.engine.ingest(event, into: &second.output) }
        second.advance(to: F.t0 + 200 * F.day)

        #expect(whole.triggers.count > 50)
        #expect(second.triggers == whole.triggers)
        #expect(second.output.conversions == whole.output.conversions)
        #expect(second.engine.usersPerStage == whole.engine.usersPerStage)
        #expect(second.engine.snapshot() == whole.engine.snapshot())
        // The buffer is sized once: the announced size bounds the snapshot.
        #expect(whole.engine.snapshot().count <= whole.engine.snapshotBytes)
        #expect(second.engine.snapshotBytes - second.engine.snapshot().count < 8_192)
    }

    @Test("erased users stay erased across a snapshot")
    func erasedStayErased() throws {
        var h = Harness(try Fixture.playbook())
        h.send("u", "core_action", at: F.t0)
        h.send("v", "core_action", at: F.t0)
        h.send("u", "user_deleted", at: F.t0 + 1)
        let restored = try PartitionEngine(rules: h.engine.rules, snapshot: h.engine.snapshot())
        #expect(restored.report(userID: "u") == nil)
        #expect(restored.report(userID: "v")?.counters.first?.value == 1)
        #expect(restored.userCount == 1)
    }

    @Test("damaged, foreign or other-rules snapshots are refused with a reason")
    func refusals() throws {
        var h = Harness(try Fixture.playbook())
        for i in 0..<20 { h.send("u\(i)", "core_action", at: F.t0 + Int64(i)) }
        let bytes = h.engine.snapshot()
        let rules = h.engine.rules
        func refusal(_ bytes: [UInt8], _ rules: CompiledRules) -> String? {
            do {
                _ = try PartitionEngine(rules: rules, snapshot: bytes)
                return nil
            } catch {
                return error.reason
            }
        }
        #expect(refusal(Array(bytes.prefix(bytes.count / 2)), rules)?.contains("truncated") == true)
        #expect(refusal(Array("hello world, not a snapshot".utf8), rules)?.contains("not a lifecycled") == true)
        #expect(refusal(bytes + [0], rules)?.contains("unexpected bytes") == true)
        let other = try F.rules(counters: [CounterRule(name: "c", events: .any, window: F.day)])
        #expect(refusal(bytes, other)?.contains("different rules") == true)
    }

    @Test("a restored engine has room to grow: a few percent more users and buckets move no column")
    func restoredColumnsHaveRoom() throws {
        var h = Harness(try Fixture.playbook())
        for user in 0..<2_000 {
            for day in 0..<3 { h.send("u\(user)", "core_action", at: F.t0 + Int64(day) * F.day + Int64(user)) }
        }
        var restored = Harness(h.engine.rules)
        restored.engine = try PartitionEngine(rules: h.engine.rules, snapshot: h.engine.snapshot())
        func columns(_ engine: PartitionEngine) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: engine.memoryBreakdown.filter { $0.part != "user ids" && $0.part != "attribute values" })
        }
        let sized = columns(restored.engine)
        for user in 2_000..<2_100 { restored.send("u\(user)", "core_action", at: F.t0 + 3 * F.day + Int64(user)) }
        #expect(restored.engine.userCount == 2_100)
        // Restored exactly sized, the first new user's record would copy the column into twice the room.
        #expect(columns(restored.engine) == sized)
    }

    @Test("new rules of the same shape taken in place give what restoring the state under them gives", arguments: [500, 2_000])
    func replaceRulesInPlace(cut: Int) throws {
        let running = try Fixture.playbook()
        // Another version (timers re-timed), a threshold, and a goal naming an event the running rules never name.
        let reloaded = try Fixture.playbook(version: "reloaded", coreActionsToActivate: 2, churnGoal: F.names("login"))
        let events = DeterminismTests.stream(seed: 33, users: 50, count: 3_000)
        var inPlace = Harness(running)
        for event in events[..<cut] { inPlace.engine.ingest(event, into: &inPlace.output) }
        var restored = Harness(reloaded)
        restored.engine = try PartitionEngine(rules: reloaded, snapshot: inPlace.engine.snapshot())
        restored.output = inPlace.output
        #expect(try inPlace.engine.replaceRules(with: reloaded), "a new config version re-times the timers")
        #expect(inPlace.engine.rules === reloaded)

        func finish(_ h: inout Harness) {
            for event in events[cut...] { h.engine.ingest(event, into: &h.output) }
            h.advance(to: F.t0 + 200 * F.day)
        }
        finish(&inPlace)
        finish(&restored)
        #expect(inPlace.triggers.count > 50)
        #expect(inPlace.triggers == restored.triggers)
        #expect(inPlace.output.conversions == restored.output.conversions)
        #expect(inPlace.output.conversions.count > 0)
        #expect(inPlace.engine.snapshot() == restored.engine.snapshot())
        // The new rules apply: the straight run under the running rules differs.
        let neverReloaded = Harness.straightThrough(events, rules: running, until: F.t0 + 200 * F.day)
        #expect(neverReloaded.triggers.map(\.id) != inPlace.triggers.map(\.id))
    }

    @Test("rules of another state shape are refused in place, naming what changed; the running rules stay")
    func replaceRulesRefused() throws {
        func counter(_ name: String, days: Int64 = 1) -> CounterRule { CounterRule(name: name, events: .any, window: days * F.day) }
        func rules(_ counters: [CounterRule], stages: [String] = ["new"]) throws -> CompiledRules {
            try F.rules(counters: counters, stages: stages)
        }
        var h = Harness(try rules([counter("c"), counter("d")]))
        h.send("u", "core_action", at: F.t0)
        let before = h.engine.snapshot()
        func refusal(_ new: CompiledRules) -> String? {
            do {
                try h.engine.replaceRules(with: new)
                return nil
            } catch {
                return error.change
            }
        }
        #expect(refusal(try rules([counter("c", days: 2), counter("d")])) == "counter 'c' changed")
        #expect(refusal(try rules([counter("c")])) == "counter 'd' removed")
        #expect(refusal(try rules([counter("c"), counter("d"), counter("e")])) == "counter 'e' added")
        #expect(refusal(try rules([counter("d"), counter("c")])) == "counters or attributes reordered")
        #expect(refusal(try rules([counter("c"), counter("d")], stages: ["first"])) == "the stages changed")
        #expect(h.engine.snapshot() == before)
        #expect(try !h.engine.replaceRules(with: try rules([counter("c"), counter("d")])), "the same config version: timers stay as they are")
    }
}
