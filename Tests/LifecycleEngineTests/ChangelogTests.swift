import LifecycleEngine
import Testing

/// The changelog's per-user records carry a partition's state to another engine exactly.
@Suite("Changelog records")
struct ChangelogTests {
    typealias F = Fixture

    /// What a changelog topic would hold, in order: (key, value) with nil for tombstones and
    /// an empty key for position records.
    struct Log {
        var records: [(key: [UInt8], value: [UInt8]?)] = []

        /// A commit cycle: the erased users, the changed ones, then the position.
        mutating func cycle(_ engine: inout PartitionEngine, nextOffset: Int64) {
            engine.beginChangelogCut(nextOffset: nextOffset)
            #expect(write(&engine, maxRecords: .max))
        }

        /// Appends up to `maxRecords` of the cut being written; true once it is all written.
        mutating func write(_ engine: inout PartitionEngine, maxRecords: Int) -> Bool {
            engine.continueChangelogCut(maxRecords: maxRecords) { key, value in
                records.append((PartitionEngine.isChangelogPosition(key) ? [] : Array(key), value.map { Array($0) }))
            }
        }

        /// A fresh engine with every record applied; returns it with the last position's offset.
        func restore(_ rules: CompiledRules) throws -> (PartitionEngine, Int64?) {
            var engine = PartitionEngine(rules: rules)
            var offset: Int64?
            for (key, value) in records {
                if key.isEmpty {
                    offset = try value!.withUnsafeBytes { try engine.apply(changelogPosition: $0) }
                } else {
                    try key.withUnsafeBytes { key in
                        guard let value else { return try engine.apply(changelogKey: key, value: nil) }
                        try value.withUnsafeBytes { try engine.apply(changelogKey: key, value: $0) }
                    }
                }
            }
            return (engine, offset)
        }
    }

    /// Everything a report says about a user, comparable.
    static func describe(_ report: UserReport?) -> String {
        guard let report else { return "none" }
        return "\(report.stage) \(report.stageSince) \(report.lastSeen) \(report.counters.map { "\($0.name)=\($0.value)" }) "
            + "\(report.attributes.map { "\($0.name)=\($0.value)" }) \(String(describing: report.nextTimer)) "
            + "\(report.lastFired.map { "\($0.trigger)@\($0.at)" })"
    }

    @Test("restoring from the changelog at any point gives the same users and the same later triggers as never moving",
          arguments: [300, 1_700, 2_999])
    func restoreMidStream(cut: Int) throws {
        let rules = try Fixture.playbook()
        let events = DeterminismTests.stream(seed: 33, users: 60, count: 3_000)
        let whole = Harness.straightThrough(events, rules: rules, until: F.t0 + 200 * F.day)

        // The first owner: commit cycles every 250 events, the last one at the cut.
        var first = Harness(rules)
        first.engine.trackChanges()
        var log = Log()
        for (index, event) in events[..<cut].enumerated() {
            first.engine.ingest(event, into: &first.output)
            if (index + 1) % 250 == 0 { log.cycle(&first.engine, nextOffset: Int64(index + 1)) }
        }
        log.cycle(&first.engine, nextOffset: Int64(cut))
        #expect(first.engine.pendingChanges == 0)

        let (restored, offset) = try log.restore(rules)
        #expect(offset == Int64(cut))
        #expect(restored.userCount == first.engine.userCount)
        #expect(restored.usersPerStage == first.engine.usersPerStage)
        for user in 0..<60 {
            #expect(Self.describe(restored.report(userID: "u\(user)")) == Self.describe(first.engine.report(userID: "u\(user)")), "u\(user)")
        }

        var second = Harness(rules)
        second.engine = restored
        for event in events[cut...] { second.engine.ingest(event, into: &second.output) }
        second.advance(to: F.t0 + 200 * F.day)
        let moved = (first.triggers + second.triggers).map(\.id).sorted()
        #expect(whole.triggers.count > 50)
        // Timers due at the same instant may fire in another order (users are numbered anew).
        #expect(moved == whole.triggers.map(\.id).sorted())
        #expect((first.output.conversions + second.output.conversions).map(\.triggerID).sorted()
            == whole.output.conversions.map(\.triggerID).sorted())
        #expect(second.engine.usersPerStage == whole.engine.usersPerStage)
        #expect(restored.armTotals == first.engine.armTotals, "the per-arm totals move with the partition")
        #expect(second.engine.armTotals == whole.engine.armTotals)
    }

    @Test("a cut written a slice at a time, while events, timers and an erasure change its users, holds every user as at the cut")
    func slicedCut() throws {
        let rules = try Fixture.playbook()
        let events = DeterminismTests.stream(seed: 41, users: 60, count: 2_000)
        var live = Harness(rules)
        live.engine.trackChanges()
        for event in events[..<1_500] { live.engine.ingest(event, into: &live.output) }
        let atCut = live.engine
        var log = Log()
        live.engine.beginChangelogCut(nextOffset: 1_500)
        var later = events[1_500...].makeIterator()
        var slices = 0
        while !log.write(&live.engine, maxRecords: 2) {
            slices += 1
            if let event = later.next() { live.engine.ingest(event, into: &live.output) }
            if slices == 5 { live.send("u7", "user_deleted", at: events[1_499].time) }
            if slices == 9 { live.advance(to: events[1_499].time + 40 * F.day) }
        }
        #expect(slices > 20, "the cut was written in many slices")
        #expect(live.engine.report(userID: "u7") == nil)

        let (restored, offset) = try log.restore(rules)
        #expect(offset == 1_500)
        #expect(restored.userCount == atCut.userCount)
        #expect(restored.usersPerStage == atCut.usersPerStage)
        for user in 0..<60 {
            #expect(Self.describe(restored.report(userID: "u\(user)")) == Self.describe(atCut.report(userID: "u\(user)")), "u\(user)")
        }
        #expect(live.engine.pendingChanges > 0, "what changed while the cut was written goes to the next one")
    }

    @Test("an erased user leaves a tombstone: gone after a restore, even with older records of theirs earlier in the log")
    func tombstones() throws {
        var h = Harness(try Fixture.playbook())
        h.engine.trackChanges()
        var log = Log()
        h.send("u", "core_action", at: F.t0)
        h.send("v", "core_action", at: F.t0)
        log.cycle(&h.engine, nextOffset: 2)
        h.send("u", "user_deleted", at: F.t0 + 1)
        log.cycle(&h.engine, nextOffset: 3)
        #expect(log.records.filter { $0.value == nil }.map { String(decoding: $0.key, as: UTF8.self) } == ["u"])
        let (restored, _) = try log.restore(h.engine.rules)
        #expect(restored.report(userID: "u") == nil)
        #expect(restored.report(userID: "v")?.counters.first?.value == 1)
        #expect(restored.userCount == 1)
    }

    @Test("only what changed since the last cycle is written")
    func incremental() throws {
        var h = Harness(try Fixture.playbook())
        h.engine.trackChanges()
        for user in 0..<10 { h.send("u\(user)", "login", at: F.t0 + Int64(user)) }
        var log = Log()
        log.cycle(&h.engine, nextOffset: 10)
        #expect(log.records.count == 11)
        h.send("u3", "core_action", at: F.t0 + 20)
        log = Log()
        log.cycle(&h.engine, nextOffset: 11)
        #expect(log.records.map { String(decoding: $0.key, as: UTF8.self) } == ["u3", ""])
    }

    @Test("records of other rules, or damaged ones, are refused with a reason instead of read")
    func refused() throws {
        var h = Harness(try Fixture.playbook())
        h.engine.trackChanges()
        h.send("u", "core_action", at: F.t0)
        var log = Log()
        log.cycle(&h.engine, nextOffset: 1)
        let other = try Fixture.rules(counters: [CounterRule(name: "x_1d", events: .any, window: F.day)])
        var stranger = PartitionEngine(rules: other)
        #expect(throws: SnapshotError.self) { try log.records[1].value!.withUnsafeBytes { try stranger.apply(changelogPosition: $0) } }
        var engine = PartitionEngine(rules: h.engine.rules)
        let record = log.records[0]
        for cut in [1, 5, record.value!.count - 1] {
            #expect(throws: SnapshotError.self, "cut at \(cut)") {
                try record.key.withUnsafeBytes { key in
                    try Array(record.value!.prefix(cut)).withUnsafeBytes { try engine.apply(changelogKey: key, value: $0) }
                }
            }
        }
    }

    @Test("a record whose buckets lie further apart than any window is refused, not packed")
    func bucketsTooFarApart() throws {
        var h = Harness(try Fixture.playbook())
        h.engine.trackChanges()
        h.send("u", "core_action", at: F.t0)
        h.send("u", "core_action", at: F.t0 + F.hour)
        var log = Log()
        log.cycle(&h.engine, nextOffset: 2)
        let record = log.records[0]
        var value = record.value!
        // The last entry is `counter (1) | bucket (4) | value (4)`: move its bucket a million buckets on.
        let at = value.count - 8
        let bucket = value[at..<(at + 4)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) } + 1_000_000
        value.replaceSubrange(at..<(at + 4), with: withUnsafeBytes(of: bucket.littleEndian) { Array($0) })
        var engine = PartitionEngine(rules: h.engine.rules)
        let error = #expect(throws: SnapshotError.self) {
            try record.key.withUnsafeBytes { key in try value.withUnsafeBytes { try engine.apply(changelogKey: key, value: $0) } }
        }
        #expect(error?.reason.contains("further apart than the rules' windows") == true, "\(String(describing: error))")
        var untouched = PartitionEngine(rules: h.engine.rules)
        try record.key.withUnsafeBytes { key in try record.value!.withUnsafeBytes { try untouched.apply(changelogKey: key, value: $0) } }
        _ = try log.records[1].value!.withUnsafeBytes { try untouched.apply(changelogPosition: $0) }
        #expect(untouched.report(userID: "u")?.counters.map(\.value) == h.engine.report(userID: "u")?.counters.map(\.value))
    }
}
