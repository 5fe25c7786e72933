import Foundation
import LifecycleKafka
import Synchronization

/// Writes checkpoints off the processing threads, and publishes each one only once Kafka has
/// acknowledged every message its partition's worker produced before it was taken.
///
/// A worker copies a partition's state into a buffer (about a memory copy) and hands it
/// over; here it is checksummed, written to a temporary file and synced, while the worker
/// goes on. The temporary file becomes the checkpoint (renamed over the old one) when the
/// worker's delivery watermark passes the snapshot: so a checkpoint never covers an event
/// whose trigger Kafka might still lose, and a restart from it re-sends nothing missing.
/// A newer snapshot of a partition supersedes one still waiting. Each published checkpoint
/// is reported to the coordinator, which then commits its offset.
final class CheckpointWriter: Sendable {
    enum Job: Sendable {
        case write(PendingCheckpoint)
        /// Post `event` to the coordinator once no write of these partitions handed over
        /// before is still waiting (published, superseded or abandoned).
        case flush(Set<TopicPartition>, then: CoordinatorEvent)
        /// Drop the partitions' waiting writes (their acknowledgements did not come in time):
        /// their older checkpoints stay.
        case abandon([TopicPartition])
        /// Make a buffer of at least this capacity, its memory touched, for `pool`.
        case prepareBuffer(capacity: Int, pool: SnapshotBuffers)
        case stop
    }

    private let mailbox: Mailbox<Job>
    private let finished = DispatchSemaphore(value: 0)

    init(store: CheckpointStore, reports: Mailbox<CoordinatorEvent>) throws(KafkaError) {
        let mailbox = try Mailbox<Job>()
        self.mailbox = mailbox
        let finished = finished
        let thread = Thread {
            var loop = WriterLoop(store: store, jobs: mailbox, reports: reports)
            loop.run()
            finished.signal()
        }
        thread.name = "lifecycled-ckpt"
        thread.start()
    }

    func submit(_ job: Job) { mailbox.post(job) }

    /// Stops the thread once the jobs before are done, and waits for it.
    func stop() {
        mailbox.post(.stop)
        finished.wait()
    }
}

/// A snapshot handed to the writer: the checkpoint's bytes (without their checksum) in a
/// buffer that goes back to `buffers`, and when it may be published.
struct PendingCheckpoint: Sendable {
    struct Publication: Sendable {
        var partition: TopicPartition
        var nextOffset: Int64
        /// Publish once `acknowledged.value` (the worker's delivery watermark) reaches this.
        var publishAt: Int
        var acknowledged: DeliveryWatermark
        /// When the snapshot was taken (monotonic µs), for the checkpoint duration metric.
        var takenAt: Int
    }

    var publication: Publication
    var buffer: SnapshotBuffer
    var buffers: SnapshotBuffers
}

/// A worker's delivery watermark, published for the writer: every message it produced
/// numbered below `value` is acknowledged.
final class DeliveryWatermark: Sendable {
    private let acknowledgedBelow = Atomic<Int>(0)
    var value: Int { acknowledgedBelow.load(ordering: .acquiring) }
    func publish(_ value: Int) { acknowledgedBelow.store(value, ordering: .releasing) }
}

/// Memory a snapshot is copied into, owned by one thread at a time (the worker filling it,
/// then the writer). Its array is referenced from here only, so refilling it never copies.
final class SnapshotBuffer: @unchecked Sendable {
    var bytes: [UInt8]
    init(bytes: [UInt8]) { self.bytes = bytes }
}

/// A worker's reusable snapshot buffers. Copying a partition into memory already in use costs
/// a memcpy; into fresh memory it costs page faults, several times more (BENCHMARKS.md), so
/// buffers are made and touched by the writer, and come back to the pool after each write.
final class SnapshotBuffers: Sendable {
    static let kept = 2
    private let state = Mutex<(buffers: [SnapshotBuffer], preparing: Bool)>(([], false))

    /// A buffer of at least `capacity`, if one is ready.
    func take(capacity: Int) -> SnapshotBuffer? {
        state.withLock { state in
            guard let index = state.buffers.firstIndex(where: { $0.bytes.capacity >= capacity }) else { return nil }
            return state.buffers.remove(at: index)
        }
    }

    func put(_ buffer: SnapshotBuffer) {
        state.withLock { state in
            state.preparing = false
            state.buffers.append(buffer)
            // Keep the largest ones.
            if state.buffers.count > Self.kept {
                state.buffers.sort { $0.bytes.capacity > $1.bytes.capacity }
                state.buffers.removeLast(state.buffers.count - Self.kept)
            }
        }
    }

    /// Whether a buffer should be asked for (one is not already being made).
    func shouldPrepare() -> Bool {
        state.withLock { state in
            defer { state.preparing = true }
            return !state.preparing
        }
    }
}

/// The writer thread's own state.
private struct WriterLoop {
    struct Written {
        var publication: PendingCheckpoint.Publication
        var temporary: String
        var partition: TopicPartition { publication.partition }
    }

    let store: CheckpointStore
    let jobs: Mailbox<CheckpointWriter.Job>
    let reports: Mailbox<CoordinatorEvent>
    /// Written and synced, waiting for acknowledgements, oldest first.
    private var waiting: [Written] = []
    /// Events to post once nothing of their partitions is waiting.
    private var flushes: [(partitions: Set<TopicPartition>, event: CoordinatorEvent)] = []
    private var attempts = 0

    init(store: CheckpointStore, jobs: Mailbox<CheckpointWriter.Job>, reports: Mailbox<CoordinatorEvent>) {
        self.store = store
        self.jobs = jobs
        self.reports = reports
    }

    mutating func run() {
        var wakeups = Wakeups([jobs])
        while true {
            wakeups.arm()
            for job in jobs.take() {
                switch job {
                case .write(let pending): write(pending)
                case .flush(let partitions, let event): flushes.append((partitions, event))
                case .abandon(let partitions): abandon(partitions)
                case .prepareBuffer(let capacity, let pool): pool.put(Self.touchedBuffer(capacity: capacity))
                case .stop:
                    for written in waiting { store.discard(written.temporary) }
                    return
                }
            }
            publishAcknowledged()
            postFlushes()
            // Acknowledgements are not announced: look again soon while something waits for them.
            wakeups.wait(timeoutMilliseconds: waiting.isEmpty ? 1_000 : 1)
        }
    }

    private mutating func write(_ pending: PendingCheckpoint) {
        attempts += 1
        let partition = pending.publication.partition
        do {
            let temporary = try store.writeTemporary(
                pending.buffer.bytes, topic: partition.topic, partition: partition.partition, attempt: attempts)
            // A newer snapshot of the partition makes an older one still waiting pointless.
            for older in waiting where older.partition == partition { store.discard(older.temporary) }
            waiting.removeAll { $0.partition == partition }
            waiting.append(Written(publication: pending.publication, temporary: temporary))
        } catch {
            reports.post(.checkpointFailed(error))
        }
        pending.buffers.put(pending.buffer)
    }

    private mutating func abandon(_ partitions: [TopicPartition]) {
        for written in waiting where partitions.contains(written.partition) { store.discard(written.temporary) }
        waiting.removeAll { partitions.contains($0.partition) }
    }

    private mutating func postFlushes() {
        guard !flushes.isEmpty else { return }
        let waitingPartitions = Set(waiting.map(\.partition))
        for flush in flushes where flush.partitions.isDisjoint(with: waitingPartitions) { reports.post(flush.event) }
        flushes.removeAll { $0.partitions.isDisjoint(with: waitingPartitions) }
    }

    private mutating func publishAcknowledged() {
        var index = 0
        while index < waiting.count {
            let written = waiting[index]
            let publication = written.publication
            guard publication.acknowledged.value >= publication.publishAt else {
                index += 1
                continue
            }
            waiting.remove(at: index)
            let partition = written.partition
            do {
                try store.publish(written.temporary, topic: partition.topic, partition: partition.partition)
                let seconds = Double(MonotonicClock.microseconds() - publication.takenAt) / 1_000_000
                reports.post(.checkpointed(partition, nextOffset: publication.nextOffset, seconds: seconds))
            } catch {
                reports.post(.checkpointFailed(error))
            }
        }
    }

    private static func touchedBuffer(capacity: Int) -> SnapshotBuffer {
        var bytes = [UInt8](repeating: 0, count: capacity)
        bytes.removeAll(keepingCapacity: true)
        return SnapshotBuffer(bytes: bytes)
    }
}
