import LifecycleConfig
import LifecycleEngine
import LifecycleKafka
import Logging
import Synchronization

/// A processing thread: consumes the partitions routed to its queue, runs their tasks, and
/// produces their triggers with its own producer.
///
/// Everything per event stays on this thread: decoding, the engine, encoding, producing, and
/// the delivery reports that say what Kafka acknowledged. The coordinator talks to it through
/// its mailbox (partitions to adopt or release, commit cycles, rules reloads, user lookups);
/// it reports through the coordinator's inbox and, for checkpoints, through the writer.
/// A commit cycle costs it one snapshot copy per changed partition, one partition per step,
/// into memory the writer prepared, and the changelog records of the users who changed, a
/// slice per step; writing, syncing and waiting for acknowledgements happen elsewhere.
final class PartitionWorker {
    /// How often the worker publishes its status for the coordinator (and the HTTP port).
    static let publishIntervalMicroseconds = 20_000
    /// Changelog records produced per step: a slice costs about a millisecond, so a cycle
    /// that changed a partition's every user never holds the others up for long.
    static let changelogRecordsPerStep = 1024
    /// Messages the worker may have unacknowledged before it produces another changelog
    /// slice. librdkafka holds a copy of each until Kafka acknowledges it: unbounded, a cut of
    /// 77k users (11 MB) held 10–15 MiB more for about a second in the soak benchmark.
    static let changelogRecordsInFlight = 4 * changelogRecordsPerStep
    /// How long it sleeps when idle: it wakes at once for messages, reports or commands.
    static let idleWaitMilliseconds: Int32 = 100

    let handle: WorkerHandle
    private let output: PartitionOutput
    private var tasks: [TopicPartition: PartitionTask] = [:]
    /// The last message's partition and task, so a run of messages finds its task once.
    private var lastTask: (topic: OpaquePointer, partition: Int32, task: PartitionTask)?
    private var config: LoadedConfig
    private let writer: CheckpointWriter
    private let reports: Mailbox<CoordinatorEvent>
    private let watermark = DeliveryWatermark()
    private let buffers = SnapshotBuffers()
    private let wallClock: @Sendable () -> Int64
    private let brokersReachable: SharedFlag
    private let observer: (any PipelineObserver)?
    private let logger: Logger
    /// This commit cycle's partitions still to snapshot.
    private var snapshotsDue: [TopicPartition] = []
    /// Checkpoints taken whose changelog records are still being produced, oldest first; each
    /// goes to the writer once its last record is produced.
    private var changelogsDue: [CheckpointTaken] = []
    /// Reloaded rules, from their checks until the coordinator's decision. Meanwhile nothing
    /// is consumed and no time advances, so the checkpoints taken under the running rules
    /// stay exactly the state the new rules take over.
    private var pendingRules: PendingRules?
    private var stopped = false
    private var lastPublished = 0
    private var wakeups: Wakeups

    init(
        handle: WorkerHandle, config: LoadedConfig, output: PartitionOutput, writer: CheckpointWriter,
        reports: Mailbox<CoordinatorEvent>, wallClock: @escaping @Sendable () -> Int64, brokersReachable: SharedFlag,
        observer: (any PipelineObserver)?, logger: Logger
    ) {
        self.handle = handle
        self.config = config
        self.output = output
        self.writer = writer
        self.reports = reports
        self.wallClock = wallClock
        self.brokersReachable = brokersReachable
        self.observer = observer
        self.logger = logger
        wakeups = Wakeups([handle.queue, output.producer, handle.mailbox])
    }

    /// The thread's body: steps until told to stop; a failure is reported to the coordinator.
    func run(onStarted: () -> Void) {
        // Without it the first message to each topic waits for a metadata refresh (~0.5 s).
        for (topic, error) in output.producer.prepare(topics: output.topics, timeoutMilliseconds: 5_000) {
            logger.warning("output topic '\(topic)' not usable yet (\(error)); what goes there waits until it is")
        }
        publishStatus(force: true)
        onStarted()
        do {
            while !stopped { try step() }
        } catch {
            reports.post(.workerFailed(worker: handle.index, error))
        }
        publishStatus(force: true)
    }

    private func step() throws {
        wakeups.arm()
        var worked = try handleCommands()
        worked += try consumeBatch()
        worked += output.serveDeliveries()
        // Messages waiting do not count while a reload pauses consumption: it waits for the
        // coordinator's word (the mailbox wakes it) instead of spinning.
        let consumable = handle.queue.hasQueued && pendingRules == nil
        if worked == 0 && !consumable && !stopped {
            // Checkpoint work left waits for the writer's buffers or Kafka's acknowledgements
            // (which wake it too): look again soon rather than spin.
            let checkpointing = !snapshotsDue.isEmpty || !changelogsDue.isEmpty
            wakeups.wait(timeoutMilliseconds: checkpointing ? 1 : Self.idleWaitMilliseconds)
            try handleCommands()
            try consumeBatch()
            output.serveDeliveries()
        }
        watermark.publish(output.acknowledgedBelow)
        if let failure = output.deliveryFailure { throw failure }
        if pendingRules == nil { try advanceLivePartitions() }
        try writeChangelogSlice()
        try snapshotNextDue()
        reportRulesPreparedIfCheckpointed()
        publishStatus(force: false)
    }

    // MARK: - Consuming

    @discardableResult
    private func consumeBatch() throws -> Int {
        guard pendingRules == nil else { return 0 }
        let now = WallClock.milliseconds()
        return try handle.queue.poll(timeoutMilliseconds: 0, onEndOfPartition: { tasks[$0]?.reachedEnd() }) { message in
            guard let task = try task(for: message) else { return }
            try task.consume(message, wallClock: now, into: output)
        }
    }

    private func task(for message: KafkaMessage) throws -> PartitionTask? {
        if let last = lastTask, last.topic == message.topicHandle, last.partition == message.partition { return last.task }
        let partition = TopicPartition(topic: message.topic, partition: message.partition)
        // Adopted partitions are announced before their messages are routed here, but the
        // announcement may still be in the mailbox.
        if tasks[partition] == nil { try handleCommands() }
        guard let task = tasks[partition] else { return nil }  // released: its messages are not ours
        lastTask = (message.topicHandle, message.partition, task)
        return task
    }

    /// A live partition moves its stream time with the wall clock, so quiet users' timers
    /// fire; one catching up does not, so a restart never fires them early. It trails the
    /// wall clock by the allowed lateness, the delay events are allowed anyway. Nothing
    /// advances while the brokers are down: events may be waiting there.
    private func advanceLivePartitions() throws {
        guard brokersReachable.isSet else { return }
        let now = wallClock() - config.rules.events.allowedLateness
        for task in tasks.values where task.phase == .live {
            try task.advance(to: now, into: output)
        }
    }

    // MARK: - Commands

    @discardableResult
    private func handleCommands() throws -> Int {
        let commands = handle.mailbox.take()
        for command in commands {
            switch command {
            case .adopt(let task):
                task.start()
                tasks[task.partition] = task
                // The status board shows a new partition (its state, totals) at once, not 20 ms later.
                lastPublished = 0
            case .release(let partitions):
                try release(partitions)
            case .checkpoint:
                scheduleSnapshotsOfChangedPartitions()
            case .prepareRules(let loaded, let reload):
                prepareRules(loaded, reload: reload)
            case .commitRules:
                try commitRules()
            case .abortRules:
                pendingRules = nil
            case .lookUp(let userID, let reply):
                reply.answer(tasks.values.lazy.compactMap { $0.engine.report(userID: userID) }.first)
            case .stop:
                stopped = true
            }
        }
        return commands.count
    }

    private func release(_ partitions: [TopicPartition]) throws {
        lastTask = nil
        snapshotsDue.removeAll { partitions.contains($0) }
        for partition in partitions {
            if let task = tasks.removeValue(forKey: partition) {
                task.beginRevoking()
                try finishChangelog(of: task)
                if task.needsSnapshot { try submitSnapshot(of: task, mayAllocate: true) }
            }
            writer.submit(.flush([partition], then: .released(partition)))
        }
    }

    // MARK: - Checkpoints

    /// Queues a snapshot of every partition changed since its last checkpoint (a commit
    /// cycle, or a reload's checkpoints under the running rules).
    private func scheduleSnapshotsOfChangedPartitions() {
        let due = tasks.values.filter(\.needsSnapshot).map(\.partition).sorted(by: CoordinatorStateMachine.order)
        snapshotsDue += due.filter { !snapshotsDue.contains($0) }
    }

    /// One snapshot per step, so a commit cycle over many partitions never holds the others
    /// up for long.
    private func snapshotNextDue() throws {
        while let partition = snapshotsDue.first {
            guard let task = tasks[partition], task.needsSnapshot else {
                snapshotsDue.removeFirst()
                continue
            }
            // The last cycle's records first: a cut starts once the one before is written.
            if task.engine.isCuttingChangelog { return }
            if try submitSnapshot(of: task, mayAllocate: false) { snapshotsDue.removeFirst() }
            return
        }
    }

    /// Copies `task`'s state into a buffer for the writer and cuts its changelog records; the
    /// checkpoint goes to the writer once they are produced (at once without a changelog),
    /// to be published once Kafka has acknowledged everything this worker produced by then.
    /// Without a ready buffer it asks the writer for one and returns false, unless
    /// `mayAllocate` (a final checkpoint, which cannot wait and writes its records at once).
    @discardableResult
    private func submitSnapshot(of task: PartitionTask, mayAllocate: Bool) throws -> Bool {
        let buffer: SnapshotBuffer
        if let ready = buffers.take(capacity: task.snapshotCapacity) {
            buffer = ready
        } else if mayAllocate {
            buffer = SnapshotBuffer(bytes: [])
        } else {
            if buffers.shouldPrepare() { writer.submit(.prepareBuffer(capacity: task.snapshotCapacity, pool: buffers)) }
            return false
        }
        let started = MonotonicClock.microseconds()
        var snapshot = SnapshotWriter(reusing: buffer.takeBytes())
        task.snapshot(into: &snapshot, out: output)
        buffer.bytes = snapshot.finish()
        observer?.snapshotTaken(task.partition.description, bytes: buffer.bytes.count, microseconds: MonotonicClock.microseconds() - started)
        changelogsDue.append(CheckpointTaken(task: task, buffer: buffer, nextOffset: task.nextOffset, takenAt: started))
        if mayAllocate || task.changelog == nil { try finishChangelog(of: task) }
        return true
    }

    /// Produces the next slice of the oldest cut's changelog records, unless too many
    /// messages still wait for Kafka's acknowledgement; its checkpoint goes to the writer once
    /// they are all produced.
    private func writeChangelogSlice() throws {
        guard let taken = changelogsDue.first,
              output.unacknowledged < Self.changelogRecordsInFlight else { return }
        let started = MonotonicClock.microseconds()
        let before = output.counters.changelogRecords
        let done = try taken.task.writeChangelog(maxRecords: Self.changelogRecordsPerStep, out: output)
        observer?.changelogWritten(
            taken.task.partition.description, records: output.counters.changelogRecords - before, microseconds: MonotonicClock.microseconds() - started,
            unacknowledged: output.unacknowledged)
        if done {
            changelogsDue.removeFirst()
            submit(taken)
        }
    }

    /// Produces what is left of `task`'s cut at once (it is leaving, or its rules change) and
    /// hands its checkpoint to the writer.
    private func finishChangelog(of task: PartitionTask) throws {
        guard let index = changelogsDue.firstIndex(where: { $0.task === task }) else { return }
        while try !task.writeChangelog(maxRecords: .max, out: output) {}
        submit(changelogsDue.remove(at: index))
    }

    private func submit(_ taken: CheckpointTaken) {
        let publication = PendingCheckpoint.Publication(
            partition: taken.task.partition, nextOffset: taken.nextOffset, publishAt: output.produced, acknowledged: watermark,
            takenAt: taken.takenAt)
        writer.submit(.write(PendingCheckpoint(publication: publication, buffer: taken.buffer, buffers: buffers)))
    }

    // MARK: - Rules reload

    /// Checks that the new rules fit every partition's state, then pauses and checkpoints
    /// every changed partition under the running rules (a crash right after the swap must
    /// replay the stretch before it under the rules and config version it ran with), in the
    /// pooled buffers like any commit cycle: a reload copies no state beyond them. Where each
    /// partition stopped goes to the coordinator at once, which stops fetching them meanwhile.
    private func prepareRules(_ loaded: LoadedConfig, reload: Int) {
        for task in tasks.values.sorted(by: { CoordinatorStateMachine.order($0.partition, $1.partition) }) {
            if let change = loaded.compiled.stateShapeChange(from: task.engine.rules) {
                let failure = "\(task.partition): the new rules do not fit the running state (\(change)); restart to apply them"
                reports.post(.rulesPrepared(worker: handle.index, reload: reload, failure: failure))
                return
            }
        }
        pendingRules = PendingRules(config: loaded, reload: reload)
        reports.post(.inputHeld(reload: reload, positions: tasks.mapValues(\.nextOffset)))
        scheduleSnapshotsOfChangedPartitions()
    }

    /// Once the reload's checkpoints are all taken, asks the writer to report when they are
    /// published (Kafka acknowledged what they reflect).
    private func reportRulesPreparedIfCheckpointed() {
        guard let pending = pendingRules, !pending.checkpointed, snapshotsDue.isEmpty, changelogsDue.isEmpty else { return }
        pendingRules?.checkpointed = true
        writer.submit(.flush(Set(tasks.keys), then: .rulesPrepared(worker: handle.index, reload: pending.reload, failure: nil)))
    }

    private func commitRules() throws {
        guard let pending = pendingRules else { return }
        pendingRules = nil
        for task in tasks.values { try task.replaceRules(with: pending.config.compiled) }
        config = pending.config
        output.rulesChanged(pending.config)
    }

    // MARK: - Status

    private func publishStatus(force: Bool) {
        let now = MonotonicClock.microseconds()
        guard force || now - lastPublished >= Self.publishIntervalMicroseconds else { return }
        lastPublished = now
        var status = WorkerStatus()
        status.counters = output.counters
        status.usersPerStage = Array(repeating: 0, count: config.compiled.stageNames.count)
        status.armTotals = Array(repeating: ArmTotals(), count: config.compiled.triggerNames.count)
        for task in tasks.values {
            status.users += task.engine.userCount
            status.stateBytes += task.engine.allocatedBytes
            for (stage, users) in task.engine.usersPerStage.enumerated() { status.usersPerStage[stage] += users }
            for (trigger, totals) in task.engine.armTotals.enumerated() { status.armTotals[trigger] += totals }
            status.partitions[task.partition] = .init(phase: task.phase, nextOffset: task.nextOffset)
        }
        status.heartbeat = WallClock.milliseconds()
        handle.publish(status)
    }
}

/// A rules reload between its checks and the coordinator's decision.
private struct PendingRules {
    let config: LoadedConfig
    let reload: Int
    /// Every partition's checkpoint under the running rules is taken and handed on.
    var checkpointed = false
}

/// A checkpoint copied on a processing thread, waiting for its changelog records.
private struct CheckpointTaken {
    let task: PartitionTask
    let buffer: SnapshotBuffer
    /// The offset the checkpoint's state reflects (the task has moved on since).
    let nextOffset: Int64
    let takenAt: Int
}

extension SnapshotBuffer {
    /// The bytes, moved out (the buffer is empty until they are put back), so that writing
    /// into them does not copy.
    func takeBytes() -> [UInt8] {
        defer { bytes = [] }
        return bytes
    }
}
