import Foundation
import LifecycleConfig
import LifecycleDaemon
import LifecycleEngine
import LifecycleKafka
import LifecycleTestSupport
import Synchronization
import Testing

/// The pipeline with several processing threads on the mock cluster: per partition, exactly
/// what `replay` of that partition gives, whatever the number of workers.
@Suite("Pipeline workers on the mock cluster", .serialized)
struct WorkerPipelineTests {
    /// The sample's users six times over (alice-0 … erin-5), in time order, so that the 8
    /// partitions all get events and every trigger of the playbook fires on several of them.
    static let population: [String] = PipelineTests.sample.flatMap { line in
        (0..<6).map { copy in
            line.replacingOccurrences(of: #""user_id":""#, with: #""user_id":"c\#(copy)-"#)
        }
    }

    /// Everything a pipeline produced and what the HTTP port would show.
    final class Heard: PipelineObserver {
        private let triggers = Mutex<[Trigger]>([])
        var all: [Trigger] { triggers.withLock { $0 } }
        func triggerProduced(_ trigger: Trigger) { triggers.withLock { $0.append(trigger) } }
    }

    static func pipeline(
        cluster: MockCluster, workers: Int, group: String, state: String = PipelineTests.temporaryDirectory(), heard: Heard
    ) throws -> (PipelineCoordinator, LoadedConfig) {
        var config = try PipelineTests.config(cluster: cluster, group: group, stateDirectory: state, partitions: 8)
        config.settings.processing.threads = workers
        return (try PipelineCoordinator(config: config, logger: PipelineTests.logger, wallClock: { 0 }, observer: heard), config)
    }

    static func cluster() throws -> MockCluster {
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 8)
        try StreamFixtures.createOutputTopics(cluster: cluster, partitions: 2)
        try cluster.createTopic("lifecycled.dlq", partitions: 1)
        return cluster
    }

    static func step(_ pipeline: PipelineCoordinator, board: StatusBoard = StatusBoard(), until done: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(40)
        while !done() && Date() < deadline {
            try pipeline.step(timeoutMilliseconds: 20)
            pipeline.publish(to: board, now: WallClock.milliseconds())
        }
    }

    @Test("with 1, 2 and 4 workers the trigger ids equal replay of each partition, and every worker gets partitions", arguments: [1, 2, 4])
    func matchesReplay(workers: Int) throws {
        let cluster = try Self.cluster()
        try StreamFixtures.produce(Self.population, cluster: cluster)
        let heard = Heard()
        let (pipeline, config) = try Self.pipeline(cluster: cluster, workers: workers, group: "workers-\(workers)", heard: heard)
        let board = StatusBoard()
        try Self.step(pipeline, board: board) { pipeline.counters.eventsConsumed == Self.population.count }
        pipeline.publish(to: board, now: WallClock.milliseconds())
        let spread = Dictionary(grouping: board.current.partitions, by: \.worker).mapValues(\.count)
        try pipeline.stop()

        #expect(pipeline.counters.eventsConsumed == Self.population.count)
        #expect(spread.count == workers && spread.values.allSatisfy { $0 == 8 / workers }, "8 partitions spread evenly: \(spread)")
        let lines = try StreamFixtures.inputByPartition(cluster: cluster, count: Self.population.count)
        #expect(lines.count == 8, "every partition has events")
        let expected = StreamFixtures.replayIDs(config, Array(lines.values))
        #expect(expected.count >= 30)
        let produced = heard.all.map(\.id)
        #expect(produced.count == Set(produced).count, "no trigger produced twice")
        #expect(Set(produced) == expected)
        // And what reached Kafka is exactly that.
        let delivered = try PipelineTests.read(StreamFixtures.outputTopics, expecting: expected.count, cluster: cluster)
        let deliveredIDs = try delivered.map { try #require(JSONSerialization.jsonObject(with: Data($0.value.utf8)) as? [String: Any])["id"] as? String }
        #expect(Set(deliveredIDs) == expected)
    }

    @Test("held-out users' triggers go to the holdout topic and never to an action topic; run and replay give the same ids and arms")
    func holdoutRouting() throws {
        let cluster = try Self.cluster()
        try StreamFixtures.produce(Self.population, cluster: cluster)
        let heard = Heard()
        var config = try PipelineTests.config(cluster: cluster, group: "holdouts", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 8) {
            $0.replacingOccurrences(of: "# global: 5%", with: "global: 25%")
        }
        #expect(config.compiled.rules.holdout.global.value == 2_500)
        config.settings.processing.threads = 2
        let pipeline = try PipelineCoordinator(config: config, logger: PipelineTests.logger, wallClock: { 0 }, observer: heard)
        try Self.step(pipeline) { pipeline.counters.eventsConsumed == Self.population.count }
        try pipeline.stop()

        let lines = try StreamFixtures.inputByPartition(cluster: cluster, count: Self.population.count)
        let replayed = StreamFixtures.replay(config, Array(lines.values)).triggers
        let expectedArms = Dictionary(uniqueKeysWithValues: replayed.map { ($0.id, $0.arm?.rawValue) })
        #expect(Set(expectedArms.values) == ["treatment", "control"], "with a global holdout every trigger has arms, both drawn")
        #expect(Dictionary(uniqueKeysWithValues: heard.all.map { ($0.id, $0.arm?.rawValue) }) == expectedArms)

        let delivered = try PipelineTests.read(StreamFixtures.outputTopics, expecting: replayed.count, cluster: cluster)
        #expect(delivered.count == replayed.count)
        var seen: [String: String?] = [:]
        for message in delivered {
            let object = try #require(JSONSerialization.jsonObject(with: Data(message.value.utf8)) as? [String: Any])
            let id = try #require(object["id"] as? String), name = try #require(object["trigger"] as? String)
            let arm = object["arm"] as? String
            seen[id] = arm
            if arm == "control" {
                #expect(message.topic == StreamFixtures.holdoutTopic, "\(name) for \(message.key)")
            } else {
                #expect(arm == "treatment" && message.topic == "lifecycled.\(name)", "\(name) for \(message.key) on \(message.topic)")
            }
        }
        #expect(seen == expectedArms, "the same ids, each in the same arm")
    }

    @Test("a rules reload with 4 workers swaps on every worker at once; rules that change the state's shape are refused on all")
    func reloadOnAll() throws {
        let cluster = try Self.cluster()
        let half = Self.population.count / 2
        try StreamFixtures.produce(Array(Self.population.prefix(half)), cluster: cluster)
        let heard = Heard()
        let (pipeline, config) = try Self.pipeline(cluster: cluster, workers: 4, group: "reload", heard: heard)
        try Self.step(pipeline) { pipeline.counters.eventsConsumed == half }
        let before = heard.all.count
        #expect(before > 0 && heard.all.allSatisfy { $0.configVersion == config.configVersion })

        // A new counter changes the state's shape: refused, and every worker keeps its rules.
        var text = try String(contentsOf: PipelineTests.repository.appendingPathComponent("config/lifecycled.yaml"), encoding: .utf8)
        let shapeChange = text.replacingOccurrences(of: "counters:\n", with: "counters:\n  extra_7d: {events: [login], window: 7d}\n")
        #expect(shapeChange != text)
        let refused = #expect(throws: ReloadRefused.self) { try pipeline.replaceRules(with: try ConfigLoader.load(text: shapeChange, file: "new.yaml")) }
        #expect(refused?.reason.contains("counter 'extra_7d' added") == true, "\(String(describing: refused))")

        // A new threshold and reason under a new version: taken by all.
        text = text.replacingOccurrences(of: "version: ", with: "version: reloaded-")
        let reloaded = try ConfigLoader.load(text: text, file: "new.yaml")
        #expect(reloaded.configVersion != config.configVersion)
        try pipeline.replaceRules(with: reloaded)
        let atReload = heard.all.count
        try StreamFixtures.produce(Array(Self.population.dropFirst(half)), cluster: cluster)
        try Self.step(pipeline) { pipeline.counters.eventsConsumed == Self.population.count }
        try pipeline.stop()

        let after = heard.all.dropFirst(atReload)
        #expect(after.count > 0)
        #expect(after.allSatisfy { $0.configVersion == reloaded.configVersion }, "nothing fired under the old rules after the reload")
        let users = Set(after.map { $0.userID.split(separator: "-").first ?? "" })
        #expect(users.count >= 3, "fired for the copies on several partitions: \(users.sorted())")
    }

    /// Blocks the processing thread that produces a given user's first trigger until released.
    final class Blocker: PipelineObserver {
        let user: String
        let release = DispatchSemaphore(value: 0)
        private let blockedOnce = Atomic(false)
        init(user: String) { self.user = user }
        var blocked: Bool { blockedOnce.load(ordering: .relaxed) }
        func triggerProduced(_ trigger: Trigger) {
            guard trigger.userID == user, !blockedOnce.exchange(true, ordering: .relaxed) else { return }
            release.wait()
        }
    }

    @Test("a stuck worker shows: the heartbeat the health check reads stops while the coordinator goes on, and the watchdog is not petted")
    func stuckWorker() throws {
        let cluster = try Self.cluster()
        try StreamFixtures.produce(Self.population, cluster: cluster)
        let blocker = Blocker(user: "c0-carol")
        var config = try PipelineTests.config(cluster: cluster, group: "stuck", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 8)
        config.settings.processing.threads = 2
        let pipeline = try PipelineCoordinator(config: config, logger: PipelineTests.logger, wallClock: { 0 }, observer: blocker)
        let board = StatusBoard()
        try Self.step(pipeline, board: board) { blocker.blocked }
        try #require(blocker.blocked)
        let stuckSince = WallClock.milliseconds()
        try Self.step(pipeline, board: board) { WallClock.milliseconds() - stuckSince > 1_500 }
        let now = WallClock.milliseconds()
        #expect(now - board.current.heartbeat >= 1_400, "the oldest worker heartbeat: \(now - board.current.heartbeat) ms ago")
        #expect(!pipeline.workersStepped(within: 1_000, now: now))

        blocker.release.signal()
        try Self.step(pipeline, board: board) {
            pipeline.counters.eventsConsumed == Self.population.count && WallClock.milliseconds() - board.current.heartbeat < 500
        }
        #expect(WallClock.milliseconds() - board.current.heartbeat < 500, "it steps again")
        #expect(pipeline.workersStepped(within: 1_000, now: WallClock.milliseconds()))
        try pipeline.stop()
    }
}
