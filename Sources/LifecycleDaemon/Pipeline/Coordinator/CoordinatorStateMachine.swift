import LifecycleKafka

/// What the coordinator decides, apart from doing it: which worker takes a partition, when a
/// commit cycle is due, which offsets to commit, and when a revocation or a stop may finish.
///
/// Inputs in (a rebalance, a restore or a checkpoint done, time passing, a stop), actions
/// out; no Kafka, threads or clock, so every rebalance and commit sequence is unit-tested
/// without a broker. The rules it keeps:
/// - an offset is committed only from a published checkpoint (its triggers acknowledged,
///   its state on disk), only while the partition is ours, and never backwards;
/// - a partition leaves (revoked, or on stop) only after its final checkpoint is published,
///   or, if its acknowledgements do not come within `releaseTimeout`, with its older
///   checkpoint kept (the next owner replays from there and re-sends the same ids);
/// - each final checkpoint is taken once: a partition released by a stop is not saved again
///   by the revocation that leaving the group causes.
struct CoordinatorStateMachine {
    struct Partition: Equatable {
        enum Phase: Equatable {
            /// Its state is being read in the background.
            case restoring
            /// Its worker consumes it.
            case active
            /// Its worker stopped consuming it; its final checkpoint is under way.
            case releasing
            /// Its final checkpoint is being dropped (acknowledgements too late).
            case abandoning
        }

        var worker: Int
        var phase: Phase
    }

    enum Input: Equatable {
        case assigned([TopicPartition])
        case restored(TopicPartition)
        case revoked([TopicPartition])
        /// A checkpoint was published.
        case checkpointed(TopicPartition, nextOffset: Int64)
        /// The checkpoint writer has finished with a partition being released.
        case released(TopicPartition)
        case tick
        case stop
    }

    enum Action: Equatable {
        /// Read the partition's state in the background, for `worker`.
        case restore(TopicPartition, worker: Int)
        /// Hand the restored partition to its worker and route its messages there.
        case activate(TopicPartition, worker: Int)
        /// A restore finished for a partition that is no longer ours.
        case discard(TopicPartition)
        /// A commit cycle on one worker: it snapshots every partition that changed.
        case checkpoint(worker: Int)
        /// Stop consuming these partitions and take their final checkpoints.
        case release([TopicPartition], worker: Int)
        /// Drop these partitions' final checkpoints still waiting for acknowledgements.
        case abandon([TopicPartition])
        case commit([TopicPartition: Int64], synchronous: Bool)
        /// The revocation of these partitions is complete: the rebalance may go on.
        case revocationComplete([TopicPartition])
        /// Everything is released: leave the group.
        case leaveGroup
    }

    let workers: Int
    let checkpointInterval: Int64
    let releaseTimeout: Int64
    private(set) var partitions: [TopicPartition: Partition] = [:]
    /// Partitions released without a final checkpoint, their older one kept.
    private(set) var abandoned: [TopicPartition] = []
    private(set) var stopping = false
    private(set) var leftGroup = false
    /// The offset last committed per partition owned.
    private var committed: [TopicPartition: Int64] = [:]
    private var nextCycle: Int64
    private var releaseDeadline: Int64?
    /// The revocation being completed, and which of its partitions are still being released.
    private var revocation: (partitions: [TopicPartition], pending: Set<TopicPartition>)?

    init(workers: Int, checkpointInterval: Int64, releaseTimeout: Int64, now: Int64) {
        precondition(workers > 0)
        self.workers = workers
        self.checkpointInterval = checkpointInterval
        self.releaseTimeout = releaseTimeout
        nextCycle = now + checkpointInterval
    }

    /// Whether a revocation is waiting for final checkpoints.
    var isRevoking: Bool { revocation != nil }

    func partitions(in phase: Partition.Phase) -> [TopicPartition] {
        partitions.filter { $0.value.phase == phase }.keys.sorted(by: Self.order)
    }

    mutating func handle(_ input: Input, now: Int64) -> [Action] {
        switch input {
        case .assigned(let assigned):
            return assigned.sorted(by: Self.order).compactMap { partition in
                guard partitions[partition] == nil else { return nil }
                let worker = leastLoadedWorker()
                partitions[partition] = Partition(worker: worker, phase: .restoring)
                committed[partition] = nil
                return .restore(partition, worker: worker)
            }
        case .restored(let partition):
            guard var entry = partitions[partition], entry.phase == .restoring else { return [.discard(partition)] }
            entry.phase = .active
            partitions[partition] = entry
            return [.activate(partition, worker: entry.worker)]
        case .revoked(let revoked):
            var actions = release(revoked, now: now)
            let pending = Set(revoked.filter { partitions[$0] != nil })
            if pending.isEmpty {
                actions.append(.revocationComplete(revoked))
            } else {
                revocation = (revoked, pending)
            }
            return actions
        case .checkpointed(let partition, let nextOffset):
            guard let entry = partitions[partition], entry.phase != .restoring, nextOffset > committed[partition] ?? .min else { return [] }
            committed[partition] = nextOffset
            return [.commit([partition: nextOffset], synchronous: entry.phase != .active)]
        case .released(let partition):
            guard let entry = partitions[partition], entry.phase == .releasing || entry.phase == .abandoning else { return [] }
            if entry.phase == .abandoning { abandoned.append(partition) }
            partitions[partition] = nil
            committed[partition] = nil
            return completions(after: partition)
        case .tick:
            var actions: [Action] = []
            if let deadline = releaseDeadline, now >= deadline {
                releaseDeadline = nil
                let late = partitions(in: .releasing)
                for partition in late { partitions[partition]!.phase = .abandoning }
                if !late.isEmpty { actions.append(.abandon(late)) }
            }
            if !stopping && now >= nextCycle {
                nextCycle = now + checkpointInterval
                let busy = Set(partitions.values.filter { $0.phase == .active }.map(\.worker))
                actions += busy.sorted().map { .checkpoint(worker: $0) }
            }
            return actions
        case .stop:
            guard !stopping else { return [] }
            stopping = true
            // A partition still restoring has consumed nothing: nothing to save.
            for partition in partitions(in: .restoring) { partitions[partition] = nil }
            return release(partitions(in: .active), now: now) + completions(after: nil)
        }
    }

    /// Asks the workers to release `which` (those active), grouped by worker.
    private mutating func release(_ which: [TopicPartition], now: Int64) -> [Action] {
        var byWorker: [Int: [TopicPartition]] = [:]
        for partition in which.sorted(by: Self.order) {
            guard let entry = partitions[partition] else { continue }
            switch entry.phase {
            case .restoring:
                partitions[partition] = nil  // its restore is discarded when it finishes
            case .active:
                partitions[partition]!.phase = .releasing
                byWorker[entry.worker, default: []].append(partition)
            case .releasing, .abandoning:
                break  // already leaving (a stop)
            }
        }
        if !byWorker.isEmpty && releaseDeadline == nil { releaseDeadline = now + releaseTimeout }
        return byWorker.keys.sorted().map { .release(byWorker[$0]!, worker: $0) }
    }

    private mutating func completions(after partition: TopicPartition?) -> [Action] {
        var actions: [Action] = []
        if let partition, var current = revocation {
            current.pending.remove(partition)
            revocation = current.pending.isEmpty ? nil : current
            if current.pending.isEmpty { actions.append(.revocationComplete(current.partitions)) }
        }
        if !partitions.values.contains(where: { $0.phase == .releasing }) { releaseDeadline = nil }
        if stopping && partitions.isEmpty && !leftGroup {
            leftGroup = true
            actions.append(.leaveGroup)
        }
        return actions
    }

    /// The worker with the fewest partitions (the lowest index among equals).
    private func leastLoadedWorker() -> Int {
        var load = [Int](repeating: 0, count: workers)
        for entry in partitions.values { load[entry.worker] += 1 }
        return load.indices.min { (load[$0], $0) < (load[$1], $1) }!
    }

    static func order(_ a: TopicPartition, _ b: TopicPartition) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
}
