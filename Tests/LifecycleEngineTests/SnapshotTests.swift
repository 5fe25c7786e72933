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
}
