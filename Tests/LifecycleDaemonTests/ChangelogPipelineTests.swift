import Foundation
import LifecycleConfig
@testable import LifecycleDaemon
import LifecycleEngine
import LifecycleKafka
import LifecycleTestSupport
import Logging
import Synchronization
import Testing

/// State kept in the changelog topic survives what the input topic does not keep.
@Suite("Changelog on the mock cluster", .serialized)
struct ChangelogPipelineTests {
    /// A user's month: purchases (revenue_30d) and core actions (core_actions_7d) over 20 days.
    static let month: [String] = (0..<20).flatMap { day -> [String] in
        let time = 1_795_392_000_000 + Int64(day) * Millis.day
        return [#"{"user_id":"x","event":"purchase","ts":\#(time),"props":{"amount":12.5}}"#,
                #"{"user_id":"x","event":"core_action","ts":\#(time + 60_000)}"#]
    }
    static let lastTime: Int64 = 1_795_392_000_000 + 19 * Millis.day + 60_000

    /// Runs a pipeline until it has consumed `count` events, asks it about `user`, stops it.
    static func run(_ config: LoadedConfig, until count: Int, user: String) throws -> UserReport? {
        let pipeline = try PipelineCoordinator(config: config, logger: PipelineTests.logger, wallClock: { 0 })
        let board = StatusBoard()
        let deadline = Date().addingTimeInterval(60)
        while pipeline.counters.eventsConsumed < count && Date() < deadline { try pipeline.step() }
        let answer = Mutex<UserReport??>(nil)
        board.lookUp(userID: user) { report in answer.withLock { $0 = .some(report) } }
        while answer.withLock({ $0 == nil }) && Date() < deadline {
            try pipeline.step(timeoutMilliseconds: 10)
            pipeline.publish(to: board, now: 0)
        }
        try pipeline.stop()
        return answer.withLock { $0 ?? nil }
    }

    /// A mock cluster whose one-partition input topic holds `month`.
    static func clusterWithMonth() throws -> MockCluster {
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 1)
        for name in PipelineTests.triggerNames { try cluster.createTopic("lifecycled.\(name)", partitions: 1) }
        try StreamFixtures.produce(month, cluster: cluster)
        return cluster
    }

    static func counters(_ report: UserReport?) -> [String] { report?.counters.map { "\($0.name)=\($0.value)" } ?? [] }

    @Test("a partition whose input retention dropped old events restores its 30-day counters from the changelog; rebuilding from the topic cannot")
    func retentionDroppedInput() throws {
        let cluster = try Self.clusterWithMonth()
        let first = try PipelineTests.config(cluster: cluster, group: "retained", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 1)
        let before = try Self.run(first, until: Self.month.count, user: "x")
        #expect(Self.counters(before).contains("revenue_30d=250.0"), "\(Self.counters(before))")

        // Past the mock's 5 MB per partition: its oldest batches, the user's month, are deleted.
        let filler = (0..<70_000).map { #"{"user_id":"f\#($0 % 20)","event":"page_view","ts":\#(Self.lastTime),"props":{"pad":"\#(String(repeating: "p", count: 40))"}}"# }
        try StreamFixtures.produce(filler, cluster: cluster)
        let reader = try PartitionReader(properties: ["bootstrap.servers": cluster.bootstrapServers], logger: PipelineTests.logger)
        let (low, _) = try reader.watermarks(TopicPartition(topic: "user-events", partition: 0), timeoutMilliseconds: 5_000)
        try #require(low > Int64(Self.month.count), "the month is gone from the input topic (first offset \(low))")

        // A new machine: no state directory, the same group (so the same changelog). It goes on
        // from the earliest offset left where its state's offset is gone.
        var moved = try PipelineTests.config(cluster: cluster, group: "retained", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 1)
        moved.settings.kafka.properties["auto.offset.reset"] = "earliest"
        let after = try Self.run(moved, until: 1, user: "x")
        #expect(Self.counters(after) == Self.counters(before))
        #expect(after?.stage == before?.stage && after?.lastSeen == before?.lastSeen)

        // Without the changelog the state is rebuilt from what the topic still holds: nothing of x.
        var rebuilt = try PipelineTests.config(cluster: cluster, group: "rebuilt", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 1)
        rebuilt.settings.state.changelog = false
        #expect(try Self.run(rebuilt, until: 1, user: "x") == nil)
    }

    @Test("a checkpoint an older build wrote in a format this one no longer reads is set aside: the partition restores from the changelog alone")
    func outdatedCheckpointFormat() throws {
        let cluster = try Self.clusterWithMonth()
        let directory = PipelineTests.temporaryDirectory()
        let config = try PipelineTests.config(cluster: cluster, group: "upgraded", stateDirectory: directory, partitions: 1)
        let before = try Self.run(config, until: Self.month.count, user: "x")
        #expect(Self.counters(before).contains("revenue_30d=250.0"), "\(Self.counters(before))")

        // What an older build left: the same checkpoint, its snapshot in format 2.
        let header = try #require(try CheckpointStore(directory: directory).readHeader(topic: "user-events", partition: 0))
        let store = CheckpointStore(directory: directory, clusterID: header.clusterID)
        var checkpoint = try #require(try store.read(topic: "user-events", partition: 0))
        let version = checkpoint.engineSnapshot.startIndex + 8  // a slice of the file: indices start where it does
        checkpoint.engineSnapshot.replaceSubrange(version..<(version + 4), with: [2, 0, 0, 0])
        try store.write(checkpoint, topic: "user-events", partition: 0)

        try StreamFixtures.produce([#"{"user_id":"y","event":"login","ts":\#(Self.lastTime)}"#], cluster: cluster)
        let after = try Self.run(config, until: 1, user: "x")
        #expect(Self.counters(after) == Self.counters(before))
        #expect(after?.stage == before?.stage && after?.lastSeen == before?.lastSeen)
    }

    @Test("a changelog topic with another partition count than its input stops the start, naming both counts and what to do")
    func changelogOfOtherPartitionCount() throws {
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 2)
        try cluster.createTopic("miscounted.user-events.changelog", partitions: 3)
        let config = try PipelineTests.config(cluster: cluster, group: "miscounted", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 2)
        #expect {
            _ = try PipelineCoordinator(config: config, logger: PipelineTests.logger, wallClock: { 0 })
        } throws: { error in
            guard let error = error as? KafkaError else { return false }
            return error.kind == .topicMismatch
                && error.message.contains("changelog topic 'miscounted.user-events.changelog' has 3 partitions but its input topic 'user-events' has 2")
                && error.message.contains("Recreate it with 2 partitions")
        }
    }

    @Test("a changelog written under rules of another shape stops the restore, naming the partition, the changelog and what to do")
    func changelogOfOtherRules() throws {
        let cluster = try Self.clusterWithMonth()
        let first = try PipelineTests.config(cluster: cluster, group: "reshaped", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 1)
        #expect(try PipelineTests.run(first, until: Self.month.count).eventsConsumed == Self.month.count)

        // Another machine with one counter more: the state's shape differs from the changelog's.
        let reshaped = try PipelineTests.config(
            cluster: cluster, group: "reshaped", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 1
        ) { $0.replacingOccurrences(of: "counters:\n", with: "counters:\n  signups_7d: {events: [signup], window: 7d}\n") }
        #expect(reshaped.compiled.counterNames.contains("signups_7d"))
        let pipeline = try PipelineCoordinator(config: reshaped, logger: PipelineTests.logger, wallClock: { 0 })
        let deadline = Date().addingTimeInterval(30)
        var failure: Error?
        while failure == nil && Date() < deadline {
            do { try pipeline.step() } catch { failure = error }
        }
        let error = try #require(failure as? ChangelogRestoreError)
        #expect(error.partition == TopicPartition(topic: "user-events", partition: 0))
        #expect(error.description.contains("reshaped.user-events.changelog[0]"), "\(error)")
        #expect(error.description.contains("different rules") && error.description.contains("delete the changelog topic"), "\(error)")
        #expect(pipeline.counters.eventsConsumed == 0, "nothing consumed on top of state it could not restore")
    }

    @Test("a checkpoint whose offset retention deleted, with a newer changelog: the partition fetches nothing until restored and goes on from the changelog's offset")
    func staleCheckpointNewerChangelog() throws {
        let cluster = try Self.clusterWithMonth()
        let old = PipelineTests.temporaryDirectory()
        let config = try PipelineTests.config(cluster: cluster, group: "stale", stateDirectory: old, partitions: 1)
        #expect(try PipelineTests.run(config, until: Self.month.count).eventsConsumed == Self.month.count)
        // Another instance goes on past the mock's 5 MB, so the old checkpoint's offset is deleted.
        let filler = (0..<70_000).map { #"{"user_id":"f\#($0 % 20)","event":"page_view","ts":\#(Self.lastTime),"props":{"pad":"\#(String(repeating: "p", count: 40))"}}"# }
        try StreamFixtures.produce(filler, cluster: cluster)
        var other = config
        other.settings.state.directory = PipelineTests.temporaryDirectory()
        other.settings.kafka.properties["auto.offset.reset"] = "earliest"
        _ = try PipelineTests.run(other, until: 10_000, seconds: 60)
        let reader = try PartitionReader(properties: ["bootstrap.servers": cluster.bootstrapServers], logger: PipelineTests.logger)
        let (low, _) = try reader.watermarks(TopicPartition(topic: "user-events", partition: 0), timeoutMilliseconds: 5_000)
        try #require(low > Int64(Self.month.count), "the old checkpoint's offset is gone from the input topic (first offset \(low))")

        // Back on the old state directory: its checkpoint is stale, the changelog is newer.
        try StreamFixtures.produce([#"{"user_id":"x","event":"core_action","ts":\#(Self.lastTime + 1)}"#], cluster: cluster)
        let pipeline = try PipelineCoordinator(config: config, logger: PipelineTests.logger, wallClock: { 0 })
        let deadline = Date().addingTimeInterval(60)
        var consumedBefore = -1
        while Date() < deadline {
            try pipeline.step()
            let consumed = pipeline.counters.eventsConsumed
            if consumed > 0 && consumed == consumedBefore { break }
            consumedBefore = consumed
        }
        let consumed = pipeline.counters.eventsConsumed
        try pipeline.stop()
        // What the other instance had not consumed yet, and the new event: never the deleted stretch.
        #expect(consumed >= 1 && consumed <= 70_001 - 10_000, "\(consumed)")
    }

    /// What each changelog slice left waiting for Kafka's acknowledgement.
    final class Slices: PipelineObserver {
        private let seen = Mutex((records: 0, mostUnacknowledged: 0))
        var records: Int { seen.withLock { $0.records } }
        var mostUnacknowledged: Int { seen.withLock { $0.mostUnacknowledged } }
        func changelogWritten(_ partition: String, records: Int, microseconds: Int, unacknowledged: Int) {
            seen.withLock { $0 = ($0.records + records, max($0.mostUnacknowledged, unacknowledged)) }
        }
    }

    @Test("a commit cycle's changelog cut keeps a bounded number of records waiting for Kafka, however many users changed")
    func changelogInFlightBounded() throws {
        let users = 12_000
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 1)
        try StreamFixtures.createOutputTopics(cluster: cluster, partitions: 1)
        try StreamFixtures.produce((0..<users).map { #"{"user_id":"u\#($0)","event":"core_action","ts":\#(Self.lastTime)}"# }, cluster: cluster)
        // Acknowledgements take 100 ms: a cut produced without a bound has all its records waiting.
        try cluster.setRoundTrip(milliseconds: 100)
        let config = try PipelineTests.config(cluster: cluster, group: "in-flight", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 1) {
            $0.replacingOccurrences(of: "checkpoint_interval: 10s", with: "checkpoint_interval: 1s")
        }
        let slices = Slices()
        let pipeline = try PipelineCoordinator(config: config, logger: PipelineTests.logger, wallClock: { 0 }, observer: slices)
        let deadline = Date().addingTimeInterval(60)
        while (pipeline.counters.eventsConsumed < users || slices.records < users) && Date() < deadline { try pipeline.step() }
        try pipeline.stop()
        #expect(slices.records >= users, "every user's record went out in slices")
        #expect(slices.mostUnacknowledged <= PartitionWorker.changelogRecordsInFlight + PartitionWorker.changelogRecordsPerStep)
        #expect(slices.mostUnacknowledged >= PartitionWorker.changelogRecordsInFlight, "the bound was reached")
    }
}
