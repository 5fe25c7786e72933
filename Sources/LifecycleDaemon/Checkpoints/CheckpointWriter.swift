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
    /// The pool that counts it, if any: it is counted from here to its end, wherever that is.
    private let pool: SnapshotBuffers?

    init(bytes: [UInt8], pool: SnapshotBuffers? = nil) {
        self.bytes = bytes
        self.pool = pool
        pool?.counted(+1)
    }

    deinit { pool?.counted(-1) }

    var isPooled: Bool { pool != nil }
}

/// A worker's reusable snapshot buffers, at most `limit` of them alive at once.
///
/// Copying a partition into memory already in use costs a memcpy; into fresh memory it costs
/// page faults, several times more (BENCHMARKS.md), so buffers are made and touched by the
/// writer and come back here after each write. The limit bounds what snapshots hold beyond
/// the state (two partitions' worth per worker), and keeps a commit cycle from making and
/// freeing a buffer per partition: with one buffer per partition in flight, resident memory
/// rose and fell by most of the state's size every cycle (the soak benchmark).
final class SnapshotBuffers: Sendable {
    static let limit = 2
    private struct State {
        var ready: [SnapshotBuffer] = []
        /// Buffers of this pool alive anywhere: ready, being filled, or with the writer.
        var alive = 0
        var preparing = false
    }

    private let state = Mutex(State())

    /// A buffer of at least `capacity`, if one is ready. When none is large enough and no
    /// other may be made, the smallest ready one is let go, so that a larger one can be.
    func take(capacity: Int) -> SnapshotBuffer? {
        let (found, released) = state.withLock { state -> (SnapshotBuffer?, SnapshotBuffer?) in
            if let index = state.ready.firstIndex(where: { $0.bytes.capacity >= capacity }) {
                return (state.ready.remove(at: index), nil)
            }
            guard state.alive >= Self.limit, let smallest = state.ready.indices.min(by: {
                state.ready[$0].bytes.capacity < state.ready[$1].bytes.capacity
            }) else { return (nil, nil) }
            return (nil, state.ready.remove(at: smallest))
        }
        _ = released  // freed here, outside the lock its end takes
        return found
    }

    /// Back from the writer, or newly made by it. A buffer of no pool is let go.
    func put(_ buffer: SnapshotBuffer) {
        guard buffer.isPooled else { return }
        state.withLock { state in
            state.preparing = false
            state.ready.append(buffer)
        }
    }

    /// Whether a new buffer should be asked for: none is being made and the limit allows one.
    func shouldPrepare() -> Bool {
        state.withLock { state in
            guard !state.preparing, state.alive < Self.limit else { return false }
            state.preparing = true
            return true
        }
    }

    fileprivate func counted(_ change: Int) { state.withLock { $0.alive += change } }
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
                case .prepareBuffer(let capacity, let pool): pool.put(Self.touchedBuffer(capacity: capacity, pool: pool))
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

    private static func touchedBuffer(capacity: Int, pool: SnapshotBuffers) -> SnapshotBuffer {
        var bytes = [UInt8](repeating: 0, count: capacity)
        bytes.removeAll(keepingCapacity: true)
        return SnapshotBuffer(bytes: bytes, pool: pool)
    }
}
