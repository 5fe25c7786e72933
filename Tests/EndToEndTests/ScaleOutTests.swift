import Foundation
import LifecycleConfig
import LifecycleKafka
import LifecycleTestSupport
import Testing

/// Several `lifecycled run` processes in one consumer group on a mock cluster hosted by the
/// test: a partition's state moves with it through the changelog topic, so whatever
/// instances come and go (even killed, their state directory gone), the triggers, taken
/// together and de-duplicated by id, are exactly `replay` of each partition.
@Suite("Scale-out: state moves with its partitions", .serialized)
struct ScaleOutTests {
    static let partitions: Int32 = 12

    /// One instance: its process, HTTP port and state directory.
    struct Instance {
        let process: Process
        let port: Int
        let state: String
    }

    /// The sample's users eight times over (c0-alice … c7-erin), a year ahead of the wall
    /// clock, in time order: every partition gets events and the timers of none fire early.
    static func stream() throws -> [String] {
        try RunCommandTests.shiftedSample().flatMap { line in
            (0..<8).map { line.replacingOccurrences(of: #""user_id":""#, with: #""user_id":"c\#($0)-"#) }
        }
    }

    /// A mock cluster with the input, changelog, trigger and dead-letter topics.
    static func cluster() throws -> MockCluster {
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: partitions)
        try cluster.createTopic("lifecycled.user-events.changelog", partitions: partitions)
        try StreamFixtures.createOutputTopics(cluster: cluster, partitions: 1)
        return cluster
    }

    /// The reference playbook for one instance of the group.
    static func config(cluster: MockCluster, state: String, port: Int, sessionTimeout: Int = 6_000) throws -> String {
        try RunCommandTests.playbook(cluster: cluster, state: state, port: port, sessionTimeout: sessionTimeout, threads: 2)
    }

    static func start(_ name: String, cluster: MockCluster, directory: String, sessionTimeout: Int = 6_000) throws -> Instance {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let port = BinaryRunner.freePort()
        let state = "\(directory)/\(name)"
        let path = try BinaryRunner.temporaryFile(
            try config(cluster: cluster, state: state, port: port, sessionTimeout: sessionTimeout), name: "\(name).yaml")
        return Instance(process: try RunCommandTests.start(config: path, log: "\(directory)/\(name).log"), port: port, state: state)
    }

    /// Waits until every trigger `replay` gives for what the topic holds now has arrived.
    static func expectAll(cluster: MockCluster, produced: Int, seconds: Double = 120, _ comment: String) throws -> Set<String> {
        let config = try ConfigLoader.load(text: try Self.config(cluster: cluster, state: "/unused", port: 0), file: "expected.yaml")
        let expected = try RunCommandTests.expected(cluster: cluster, count: produced, config: config).ids
        let seen = Set(try RunCommandTests.triggerIDs(cluster: cluster, until: expected, seconds: seconds))
        #expect(expected.isSubset(of: seen), "\(comment): \(expected.subtracting(seen).count) of \(expected.count) triggers missing")
        return seen
    }

    /// How many changelog records each restore in `log` read ("restored … (N changelog records)").
    static func changelogRecordsRestored(_ log: String) -> [Int] {
        log.split(separator: "\n").compactMap { line in
            guard line.contains("restored user-events["), let open = line.range(of: " (") ,
                  let close = line.range(of: " changelog records)") else { return nil }
            return Int(line[open.upperBound..<close.lowerBound])
        }
    }

    /// The partitions an instance's `/readyz` lists (none while it is not ready).
    static func owned(_ instance: Instance) -> [Substring] {
        RunCommandTests.get(instance.port, "/readyz").body.split(separator: " ").filter { $0.hasPrefix("user-events[") }
    }

    /// Stops them all at once (SIGTERM to each, then waits for each).
    static func stop(_ instances: [Instance]) {
        for instance in instances { instance.process.terminate() }
        for instance in instances {
            let stopped = RunCommandTests.wait(instance.process, seconds: 40)
            #expect(stopped && instance.process.terminationStatus == 0, "a clean stop exits 0")
            if !stopped { kill(instance.process.processIdentifier, SIGKILL) }
        }
    }

    static func stop(_ instance: Instance) { stop([instance]) }

    @Test("three instances over 12 partitions; one is killed with kill -9 and its state directory deleted: the survivors restore its partitions from the changelog and nothing is lost or different")
    func killOne() throws {
        let cluster = try Self.cluster()
        let directory = TestDirectory.path("scale")
        let events = try Self.stream()
        let third = events.count / 3
        try StreamFixtures.produce(Array(events.prefix(third)), cluster: cluster)
        var instances = try (0..<3).map { try Self.start("instance\($0)", cluster: cluster, directory: directory) }
        _ = try Self.expectAll(cluster: cluster, produced: third, "three instances")
        Thread.sleep(forTimeInterval: 2)  // a commit cycle: the changelog holds what was consumed

        let killed = instances.remove(at: 1)
        kill(killed.process.processIdentifier, SIGKILL)
        #expect(RunCommandTests.wait(killed.process, seconds: 10))
        try FileManager.default.removeItem(atPath: killed.state)  // a replaced machine
        try StreamFixtures.produce(Array(events[third..<(2 * third)]), cluster: cluster)
        _ = try Self.expectAll(cluster: cluster, produced: 2 * third, seconds: 150, "after the kill")
        try StreamFixtures.produce(Array(events.dropFirst(2 * third)), cluster: cluster)
        let seen = try Self.expectAll(cluster: cluster, produced: events.count, "the whole stream")

        // Nothing else either: every id is one replay gives.
        let config = try ConfigLoader.load(text: try Self.config(cluster: cluster, state: "/unused", port: 0), file: "expected.yaml")
        let expected = try RunCommandTests.expected(cluster: cluster, count: events.count, config: config)
        #expect(seen == expected.ids)
        // The per-arm totals moved with their partitions: the survivors' add up to replay's.
        var totals: [String: Int] = [:]
        for instance in instances { totals.merge(RunCommandTests.firedTotals(port: instance.port), uniquingKeysWith: +) }
        #expect(totals == expected.fired)
        // An erased user stays erased wherever their partition went.
        for copy in 0..<8 {
            for instance in instances { #expect(RunCommandTests.get(instance.port, "/v1/users/c\(copy)-erin").status == 404) }
        }
        let owned = instances.flatMap(Self.owned)
        #expect(owned.count == Int(Self.partitions), "the survivors own every partition: \(owned)")
        for instance in instances { Self.stop(instance) }
        let survivors = try ["instance0", "instance2"].map { try String(contentsOfFile: "\(directory)/\($0).log", encoding: .utf8) }
        #expect(survivors.flatMap(Self.changelogRecordsRestored).contains { $0 > 0 }, "the killed instance's partitions came from the changelog")
    }

    @Test("scaling 1 → 3 → 1: partitions move with their state each way, and an instance that stops hands its partitions over at once")
    func scaleUpAndDown() throws {
        let cluster = try Self.cluster()
        let directory = TestDirectory.path("scale")
        let events = try Self.stream()
        let third = events.count / 3
        // The mock completes every rebalance after the session timeout less a second (a broker
        // completes it once every member has rejoined): a leaving instance is handed over in one
        // or two such rounds (two when the leaves straddle a round), one that does not leave
        // only after its session expired as well. Too close to tell apart by time alone, so the
        // leaving instances' logs say they left.
        let session = 10_000
        try StreamFixtures.produce(Array(events.prefix(third)), cluster: cluster)
        let first = try Self.start("first", cluster: cluster, directory: directory, sessionTimeout: session)
        _ = try Self.expectAll(cluster: cluster, produced: third, "one instance")
        Thread.sleep(forTimeInterval: 2)

        let added = try (0..<2).map { try Self.start("added\($0)", cluster: cluster, directory: directory, sessionTimeout: session) }
        let joining = Date()
        while !added.allSatisfy({ !Self.owned($0).isEmpty }) && Date().timeIntervalSince(joining) < 90 { Thread.sleep(forTimeInterval: 0.5) }
        #expect(added.allSatisfy { !Self.owned($0).isEmpty }, "the new instances took partitions over")
        try StreamFixtures.produce(Array(events[third..<(2 * third)]), cluster: cluster)
        _ = try Self.expectAll(cluster: cluster, produced: 2 * third, seconds: 150, "three instances")
        Thread.sleep(forTimeInterval: 2)

        let stopping = Date()
        // Scaled down together, as an operator would: both leave within one rebalance.
        Self.stop(added)
        while Self.owned(first).count < Int(Self.partitions) && Date().timeIntervalSince(stopping) < 60 { Thread.sleep(forTimeInterval: 0.2) }
        let handover = Date().timeIntervalSince(stopping)
        #expect(Self.owned(first).count == Int(Self.partitions))
        #expect(handover < 2.5 * Double(session) / 1000, "handed over in \(handover) s")
        try StreamFixtures.produce(Array(events.dropFirst(2 * third)), cluster: cluster)
        let seen = try Self.expectAll(cluster: cluster, produced: events.count, "back to one")
        let config = try ConfigLoader.load(text: try Self.config(cluster: cluster, state: "/unused", port: 0), file: "expected.yaml")
        #expect(seen == (try RunCommandTests.expected(cluster: cluster, count: events.count, config: config).ids))
        Self.stop(first)
        let log = try String(contentsOfFile: "\(directory)/first.log", encoding: .utf8)
        #expect(log.contains("(cooperative)"), "cooperative rebalancing: only what changes owner moves")
        #expect(Self.changelogRecordsRestored(log).contains { $0 > 0 }, "partitions came back with the state the others left in the changelog")
        let addedLogs = try (0..<2).map { try String(contentsOfFile: "\(directory)/added\($0).log", encoding: .utf8) }
        #expect(addedLogs.flatMap(Self.changelogRecordsRestored).contains { $0 > 0 }, "partitions went out with their state")
        #expect(addedLogs.allSatisfy { $0.contains("left consumer group") }, "the stopped instances left the group, not waiting out a session")
    }
}
