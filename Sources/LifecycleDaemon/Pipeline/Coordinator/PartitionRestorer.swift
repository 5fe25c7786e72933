import Dispatch
import LifecycleEngine
import LifecycleKafka
import Logging
import Synchronization

/// Rebuilds assigned partitions' state in the background, one partition at a time, while
/// the other partitions go on being processed: the local checkpoint first (if there is one),
/// then every changelog record written after it, which brings the state up to the last
/// complete commit cycle, wherever that cycle ran. Reports each finished partition to the
/// coordinator, and its progress as it goes.
///
/// A changelog ends, after a crash, with the records of a cycle that never wrote its
/// position record: they describe state beyond any input offset, so they are not applied;
/// their users are written again at the next cycle instead, superseding them.
final class PartitionRestorer: Sendable {
    struct Progress: Sendable {
        var records = 0
        var total = 0
        /// Monotonic µs; nil while it waits for the partitions before it.
        var startedAt: Int?
        var users = 0
    }

    /// How often progress is logged during a long restore.
    static let logIntervalMicroseconds = 5_000_000

    private let queue = DispatchQueue(label: "lifecycled.restore")
    private let store: CheckpointStore
    private let reader: ReaderBox
    private let inbox: Mailbox<CoordinatorEvent>
    private let logger: Logger
    private let progress = Mutex<[TopicPartition: Progress]>([:])
    private let observer: (any PipelineObserver)?

    init(
        store: CheckpointStore, readerProperties: [String: String], inbox: Mailbox<CoordinatorEvent>, logger: Logger,
        observer: (any PipelineObserver)?
    ) {
        self.observer = observer
        self.store = store
        reader = ReaderBox(properties: readerProperties, logger: logger)
        self.inbox = inbox
        self.logger = logger
    }

    /// Partitions being restored and how far each has come.
    var current: [TopicPartition: Progress] { progress.withLock { $0 } }

    /// Restores `partition` in the background; the result arrives in the inbox as `.restored`
    /// or `.restoreFailed`. `header` is what its checkpoint said when it was assigned.
    func restore(
        _ partition: TopicPartition, rules: CompiledRules, header: CheckpointHeader?, changelog: (index: Int, topic: String)?
    ) {
        progress.withLock { $0[partition] = Progress() }
        queue.async { [self] in
            do {
                let startedAt = MonotonicClock.microseconds()
                progress.withLock { $0[partition]?.startedAt = startedAt }
                let task = try rebuild(partition, rules: rules, header: header, changelog: changelog)
                let done = progress.withLock { $0[partition] ?? Progress() }
                observer?.partitionRestored(
                    partition, changelogRecords: done.records, users: task.engine.userCount,
                    microseconds: MonotonicClock.microseconds() - startedAt)
                inbox.post(.restored(task, changelogRecords: done.records))
            } catch {
                inbox.post(.restoreFailed(partition, error))
            }
            progress.withLock { $0[partition] = nil }
        }
    }

    private func rebuild(
        _ partition: TopicPartition, rules: CompiledRules, header: CheckpointHeader?, changelog: (index: Int, topic: String)?
    ) throws -> PartitionTask {
        let path = store.path(topic: partition.topic, partition: partition.partition)
        var engine = PartitionEngine(rules: rules)
        var nextOffset: Int64 = -1
        var position: Int64?
        if let checkpoint = try store.read(topic: partition.topic, partition: partition.partition) {
            guard checkpoint.nextOffset == header?.nextOffset else {
                throw CheckpointError(path: path, reason: "changed while the partition was being restored (another process writing this state directory?)")
            }
            do {
                engine = try PartitionEngine(rules: rules, snapshot: checkpoint.engineSnapshot)
                nextOffset = checkpoint.nextOffset
                position = checkpoint.changelogPosition
            } catch where error.isOutdatedFormat && changelog != nil {
                // An upgrade changed the state's layout: the changelog holds the same state portably.
                logger.notice("\(path): \(error.reason); restoring \(partition) from its changelog alone")
            } catch {
                throw CheckpointError.unusable(path, error.reason)
            }
        } else if header != nil {
            throw CheckpointError(path: path, reason: "disappeared while the partition was being restored")
        }
        guard let changelog else {
            return PartitionTask(
                partition: partition, engine: engine, nextOffset: nextOffset, changelog: nil, changelogPosition: nil, clusterID: store.clusterID)
        }
        let source = TopicPartition(topic: changelog.topic, partition: partition.partition)
        let (low, high) = try reader.use { try $0.watermarks(source, timeoutMilliseconds: 10_000) }
        let from = max(position ?? low, low)
        // Offsets, not records: a compacted changelog has gaps, so progress may end short of 100 %.
        var cycle = OpenCycle()
        var read = 0
        var lastLog = MonotonicClock.microseconds()
        progress.withLock { $0[partition]?.total = Int(high - from) }
        try reader.use { reader in
            try reader.read(source, from: from, to: high) { message in
                if PartitionEngine.isChangelogPosition(message.key) {
                    do {
                        try engine.checkChangelogPosition(message.value)
                        try cycle.apply(to: &engine)
                        nextOffset = try engine.apply(changelogPosition: message.value)
                    } catch let error as SnapshotError {
                        throw ChangelogRestoreError(partition: partition, changelog: source, offset: message.offset, reason: error.reason)
                    }
                } else {
                    cycle.append(key: message.key, value: message.value.isEmpty ? nil : message.value)
                }
                read += 1
                guard read % 4096 == 0 else { return }
                let users = engine.userCount
                progress.withLock { $0[partition]?.records = read; $0[partition]?.users = users }
                let now = MonotonicClock.microseconds()
                if now - lastLog >= Self.logIntervalMicroseconds {
                    lastLog = now
                    logger.info("restoring \(partition) from \(changelog.topic): \(describe(partition, now: now))")
                }
            }
        }
        let users = engine.userCount
        progress.withLock { $0[partition]?.records = read; $0[partition]?.users = users }
        engine.trackChanges()
        cycle.markChanged(in: &engine)
        return PartitionTask(
            partition: partition, engine: engine, nextOffset: nextOffset, changelog: changelog.index, changelogPosition: high,
            clusterID: store.clusterID)
    }

    /// "N of M records, U users, R users/s, about S s left".
    func describe(_ partition: TopicPartition, now: Int = MonotonicClock.microseconds()) -> String {
        guard let state = current[partition] else { return "done" }
        guard let startedAt = state.startedAt else { return "waiting for the partitions before it" }
        let seconds = max(Double(now - startedAt) / 1_000_000, 0.001)
        let rate = Double(state.records) / seconds
        let left = rate > 0 ? Int((Double(state.total - state.records) / rate).rounded(.up)) : nil
        return "\(state.records) of \(state.total) records, \(state.users) users, \(Int(Double(state.users) / seconds)) users/s"
            + (left.map { ", about \($0) s left" } ?? "")
    }
}

/// A changelog record this build cannot apply to the partition's state.
public struct ChangelogRestoreError: Error, CustomStringConvertible {
    public let partition: TopicPartition
    public let changelog: TopicPartition
    /// Of the position record closing the cycle the record belongs to.
    public let offset: Int64
    public let reason: String

    public var description: String {
        "restoring \(partition) from \(changelog), the cycle closed at offset \(offset): \(reason). Its state cannot be restored "
            + "from this changelog. If the rules changed shape (counters, attributes, stages or triggers), the state must be "
            + "rebuilt: stop every instance, delete the changelog topic (or name a new one in kafka.changelog_topics) and the "
            + "state directories; the partitions are then read from their earliest retained offsets"
    }
}

/// The records of a commit cycle not yet closed by its position record, copied into one
/// buffer (no allocation per record).
private struct OpenCycle {
    private var bytes: [UInt8] = []
    /// Key start and length, value start and length (-1: a tombstone).
    private var spans: [(key: Int, keyLength: Int, value: Int, valueLength: Int)] = []

    mutating func append(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer?) {
        let keyStart = bytes.count
        bytes.append(contentsOf: key)
        let valueStart = bytes.count
        if let value { bytes.append(contentsOf: value) }
        spans.append((keyStart, key.count, valueStart, value?.count ?? -1))
    }

    /// The cycle is complete: its records go into the engine, in order.
    mutating func apply(to engine: inout PartitionEngine) throws {
        try bytes.withUnsafeBytes { raw in
            for span in spans {
                let key = UnsafeRawBufferPointer(rebasing: raw[span.key..<(span.key + span.keyLength)])
                let value = span.valueLength < 0 ? nil : UnsafeRawBufferPointer(rebasing: raw[span.value..<(span.value + span.valueLength)])
                try engine.apply(changelogKey: key, value: value)
            }
        }
        bytes.removeAll(keepingCapacity: true)
        spans.removeAll(keepingCapacity: true)
    }

    /// The changelog ended before this cycle's position: its users' records are written again.
    func markChanged(in engine: inout PartitionEngine) {
        bytes.withUnsafeBytes { raw in
            for span in spans { engine.markChanged(userID: UnsafeRawBufferPointer(rebasing: raw[span.key..<(span.key + span.keyLength)])) }
        }
    }
}

/// The restorer's reader: made when first needed, used only on the restore queue.
private final class ReaderBox: @unchecked Sendable {
    private let properties: [String: String]
    private let logger: Logger
    private var reader: PartitionReader?

    init(properties: [String: String], logger: Logger) {
        self.properties = properties
        self.logger = logger
    }

    func use<T>(_ body: (PartitionReader) throws -> T) throws -> T {
        if reader == nil { reader = try PartitionReader(properties: properties, logger: logger) }
        return try body(reader!)
    }
}
