import Foundation
@testable import LifecycleDaemon
import LifecycleEngine
import LifecycleKafka
import LifecycleTestSupport
import Testing

/// The writer publishes a checkpoint only once the triggers produced before it are acknowledged.
@Suite("Checkpoint writer")
struct CheckpointWriterTests {
    static let partition = TopicPartition(topic: "events", partition: 2)

    struct Setup {
        let store: CheckpointStore
        let reports: Mailbox<CoordinatorEvent>
        let writer: CheckpointWriter
        let watermark = DeliveryWatermark()
        let buffers = SnapshotBuffers()

        init() throws {
            let directory = TestDirectory.path("writer")
            store = CheckpointStore(directory: directory)
            try store.prepare()
            reports = try Mailbox()
            writer = try CheckpointWriter(store: store, reports: reports)
        }

        /// A checkpoint of `offset` (engine bytes: the offset, repeated) to publish after `publishAt` acknowledgements.
        func submit(offset: Int64, publishAt: Int) {
            var bytes = SnapshotWriter()
            CheckpointStore.encode(CheckpointHeader(nextOffset: offset, changelogPosition: nil, configVersion: "v1"), into: &bytes) { $0.write(offset) }
            let publication = PendingCheckpoint.Publication(
                partition: CheckpointWriterTests.partition, nextOffset: offset, publishAt: publishAt, acknowledged: watermark,
                takenAt: MonotonicClock.microseconds())
            writer.submit(.write(PendingCheckpoint(publication: publication, buffer: SnapshotBuffer(bytes: bytes.finish(), pool: buffers), buffers: buffers)))
        }

        var published: Int64? { (try? store.read(topic: partition.topic, partition: partition.partition))?.nextOffset }
        var partition: TopicPartition { CheckpointWriterTests.partition }

        /// Reports posted within `seconds`, as text.
        func reportsHeard(within seconds: Double = 1) -> [String] {
            var heard: [String] = []
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                for event in reports.take() {
                    switch event {
                    case .checkpointed(let partition, let offset, _): heard.append("checkpointed \(partition) \(offset)")
                    case .released(let partition): heard.append("released \(partition)")
                    default: heard.append("\(event)")
                    }
                }
                Thread.sleep(forTimeInterval: 0.01)
            }
            return heard
        }

        var temporaryFiles: [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: store.directory)) ?? []).filter { $0.contains(".tmp") }
        }
    }

    @Test("not published while its triggers are unacknowledged; published, reported and its buffer returned once they are")
    func waitsForAcknowledgements() throws {
        let setup = try Setup()
        defer { setup.writer.stop() }
        setup.submit(offset: 10, publishAt: 5)
        setup.watermark.publish(4)
        #expect(setup.reportsHeard(within: 0.3).isEmpty)
        #expect(setup.published == nil, "one trigger before the snapshot is still in flight")
        #expect(setup.temporaryFiles.count == 1, "written and synced meanwhile")
        setup.watermark.publish(5)
        #expect(setup.reportsHeard() == ["checkpointed events[2] 10"])
        #expect(setup.published == 10)
        #expect(setup.temporaryFiles.isEmpty)
        #expect(setup.buffers.take(capacity: 1) != nil, "the buffer came back for the next snapshot")
    }

    @Test("a newer snapshot supersedes one still waiting; a flush waits for both to be done")
    func supersedes() throws {
        let setup = try Setup()
        defer { setup.writer.stop() }
        setup.submit(offset: 10, publishAt: 5)
        setup.submit(offset: 20, publishAt: 8)
        setup.writer.submit(.flush([setup.partition], then: .released(setup.partition)))
        #expect(setup.reportsHeard(within: 0.3).isEmpty)
        #expect(setup.temporaryFiles.count == 1, "the older temporary file is gone")
        setup.watermark.publish(8)
        #expect(setup.reportsHeard() == ["checkpointed events[2] 20", "released events[2]"])
        #expect(setup.published == 20)
    }

    @Test("abandoned: the waiting snapshot is dropped, the older checkpoint stays, and a flush reports at once")
    func abandons() throws {
        let setup = try Setup()
        defer { setup.writer.stop() }
        try setup.store.write(Checkpoint(nextOffset: 3, configVersion: "v1", engineSnapshot: [1, 2, 3]), topic: "events", partition: 2)
        setup.submit(offset: 10, publishAt: 5)
        setup.writer.submit(.flush([setup.partition], then: .released(setup.partition)))
        setup.writer.submit(.abandon([setup.partition]))
        #expect(setup.reportsHeard() == ["released events[2]"])
        setup.watermark.publish(5)
        #expect(setup.reportsHeard(within: 0.3).isEmpty, "never published after being dropped")
        #expect(setup.published == 3)
        #expect(setup.temporaryFiles.isEmpty)
    }

    @Test("snapshot buffers: at most two alive per pool; a ready one too small is let go for a larger; one dropped elsewhere frees its place")
    func bufferPool() {
        let pool = SnapshotBuffers()
        #expect(pool.shouldPrepare())
        #expect(!pool.shouldPrepare(), "one is being made")
        pool.put(SnapshotBuffer(bytes: [UInt8](repeating: 0, count: 100), pool: pool))
        #expect(pool.shouldPrepare())
        pool.put(SnapshotBuffer(bytes: [UInt8](repeating: 0, count: 200), pool: pool))
        #expect(!pool.shouldPrepare(), "two alive")

        var first = pool.take(capacity: 150)
        #expect(first.map { $0.bytes.capacity >= 150 } == true)
        #expect(pool.take(capacity: 150) == nil, "the other is too small, and a third may not be made")
        #expect(pool.shouldPrepare(), "the small one was let go: a larger may be made")
        pool.put(SnapshotBuffer(bytes: [UInt8](repeating: 0, count: 300), pool: pool))
        #expect(!pool.shouldPrepare())

        first = nil  // dropped by its user, not put back
        #expect(pool.shouldPrepare(), "its place is free again")
        pool.put(SnapshotBuffer(bytes: [], pool: nil))
        #expect(pool.take(capacity: 0)?.bytes.capacity ?? 0 >= 300, "a buffer of no pool is not kept")
    }
}
