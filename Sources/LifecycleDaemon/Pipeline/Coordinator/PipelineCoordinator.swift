import Dispatch
import LifecycleConfig
import LifecycleEngine
import LifecycleKafka
import Logging
import Metrics

/// The daemon's pipeline: Kafka in, one engine per assigned partition, triggers out, spread
/// over `processing.threads` workers.
///
/// The coordinator (the thread that calls `step`) owns the group consumer: it serves
/// rebalances, decides which worker takes each partition, runs the commit cycle and
/// publishes status. It never touches an event. Each worker (`PartitionWorker`) consumes its
/// partitions from a queue of its own (librdkafka routes each partition's messages there),
/// runs their engines and produces their triggers with its own producer, so nothing per
/// event crosses threads. The decisions are `CoordinatorStateMachine`'s, tested without a
/// broker; this class carries them out.
///
/// The commit cycle, every `checkpoint_interval`: each worker snapshots its changed
/// partitions, one per step; the checkpoint writer writes and syncs them off the processing
/// threads and publishes each once Kafka has acknowledged every trigger its worker produced
/// before the snapshot; each published checkpoint's offset is then committed. So an offset is
/// committed only after the triggers its events caused are acknowledged and the state that
/// saw them is on disk (at-least-once, and a replayed trigger carries the same id). A
/// partition resumes at its checkpoint's offset (or the earliest retained one without a
/// checkpoint), restored in the background while its messages wait in a queue of their own.
public final class PipelineCoordinator {
    public static let deadLetterReasonHeader = PartitionOutput.deadLetterReasonHeader
    /// How long a partition that leaves (revoked, or on stop) waits for Kafka to acknowledge
    /// its triggers before it leaves with its older checkpoint.
    static let releaseTimeoutMilliseconds: Int64 = 30_000

    private var config: LoadedConfig
    private let logger: Logger
    private let store: CheckpointStore
    /// Held from start to stop: no other instance writes this state directory meanwhile.
    private let stateLock: StateDirectoryLock
    private var consumer: KafkaConsumer!
    private var workers: [WorkerHandle] = []
    private let writer: CheckpointWriter
    private let inbox: Mailbox<CoordinatorEvent>
    private var restorer: PartitionRestorer!
    private var changelogs = ChangelogTopics.none
    /// Partitions assigned without a start offset: their state comes from the changelog, and
    /// where it ends is where they start (`activate`).
    private var startingLater: Set<TopicPartition> = []
    private var machine: CoordinatorStateMachine
    /// Offsets to commit once the member is not rejoining its group (`KafkaConsumer.rejoining`).
    private var pendingCommits: [TopicPartition: Int64] = [:]
    /// Each assigned partition's own queue: its messages wait there while its state is
    /// restored, then it is forwarded to its worker's queue. It lives as long as the
    /// partition is routed through it: a destroyed queue drops what still reaches it.
    private var holding: [TopicPartition: MessageQueue] = [:]
    /// When each partition's last checkpoint was published (wall ms), and how long the last took.
    private var lastCheckpoints: [TopicPartition: Int64] = [:]
    private var lastCheckpointSeconds = 0.0
    private let brokersReachable = SharedFlag(true)
    /// The coordinator's own counts (rebalances, checkpoints, the consumer's errors).
    private var own = PipelineCounters()
    private var failure: (any Error)?
    private var reload = ReloadRound()
    private let metrics: DaemonMetrics
    private let alerts: AlertMonitor
    private var stopped = false
    private var wakeups: Wakeups
    private var trimmer: MemoryTrimmer

    /// - Parameters:
    ///   - wallClock: epoch milliseconds now; used only to let live partitions' timers fire
    ///     (the engine itself never reads a clock).
    ///   - metrics: makes the metrics' handles; by default they go nowhere.
    ///   - observer: sees triggers, acknowledgements and snapshots as they happen (tools only).
    public init(
        config: LoadedConfig, logger: Logger, wallClock: @escaping @Sendable () -> Int64,
        metrics factory: any MetricsFactory = NOOPMetricsHandler.instance, observer: (any PipelineObserver)? = nil
    ) throws {
        self.config = config
        self.logger = logger
        let rules = config.compiled
        metrics = DaemonMetrics(
            factory: factory,
            triggers: rules.triggerNames.indices.flatMap { trigger in
                (rules.hasHoldout(trigger) ? Arm.allCases : [.treatment]).map { TriggerArm(rules.triggerNames[trigger], $0) }
            },
            stages: rules.stageNames)
        var store = CheckpointStore(directory: config.settings.state.directory)
        stateLock = try store.prepare()
        store.clusterID = Self.clusterID(config.settings.kafka, logger: logger)
        self.store = store
        inbox = try Mailbox()
        let threads = config.settings.processing.threads ?? AvailableCores.count()
        machine = CoordinatorStateMachine(
            workers: threads, checkpointInterval: config.settings.state.checkpointInterval,
            releaseTimeout: Self.releaseTimeoutMilliseconds, now: Self.monotonicMilliseconds())
        trimmer = MemoryTrimmer(intervalMilliseconds: MemoryTrimmer.defaultIntervalMilliseconds, now: Self.monotonicMilliseconds())
        writer = try CheckpointWriter(store: store, reports: inbox)
        wakeups = Wakeups([inbox])

        let kafka = config.settings.kafka
        var common = kafka.properties
        common["bootstrap.servers"] = kafka.brokers
        var producerProperties = common
        // A trigger is worth more sooner than in a bigger batch (librdkafka 2.0 waits 5 ms).
        producerProperties["linger.ms"] = common["linger.ms"] ?? "1"
        var consumerProperties = common
        consumerProperties["group.id"] = kafka.groupID
        // A checkpoint's offset the topic no longer (or never) had stops the daemon instead
        // of librdkafka silently re-reading from the start or skipping to the end.
        consumerProperties["auto.offset.reset"] = common["auto.offset.reset"] ?? "error"
        // Members joining or leaving move only the partitions that change owner.
        consumerProperties["partition.assignment.strategy"] = common["partition.assignment.strategy"] ?? "cooperative-sticky"
        alerts = AlertMonitor(config: config, producerProperties: producerProperties, logger: logger)
        do {
            changelogs = try ChangelogTopics.prepare(config.settings, clientProperties: common, inbox: inbox, logger: logger)
            restorer = PartitionRestorer(store: store, readerProperties: common, inbox: inbox, logger: logger, observer: observer)
            consumer = try KafkaConsumer(properties: consumerProperties, logger: logger) { [unowned self] rebalance in
                try self.rebalance(rebalance)
            }
            var made: [(WorkerHandle, PartitionWorker)] = []
            for index in 0..<threads {
                let handle = try WorkerHandle(index: index, queue: try MessageQueue(consumer: consumer, wakeable: true))
                let output = try PartitionOutput(
                    config: config, changelogTopics: changelogs.names, producerProperties: producerProperties, logger: logger,
                    latency: metrics.latency, observer: observer)
                made.append((handle, PartitionWorker(
                    handle: handle, config: config, output: output, writer: writer, reports: inbox, wallClock: wallClock,
                    brokersReachable: brokersReachable, observer: observer, logger: logger)))
            }
            try consumer.subscribe(kafka.inputTopics)
            wakeups = Wakeups([consumer, inbox])
            for (handle, worker) in made { handle.start(worker) }
            workers = made.map(\.0)
            for handle in workers { handle.waitUntilStarted() }
        } catch {
            // Once: `deinit` runs too, and the writer's thread stops only once.
            shutDownThreads()
            throw error
        }
        logger.info("processing on \(threads) worker thread\(threads == 1 ? "" : "s")")
    }

    deinit {
        if !stopped { shutDownThreads() }
    }

    /// Partitions assigned to this instance (restored or not).
    public var assignedPartitions: [TopicPartition] { machine.partitions.keys.sorted(by: CoordinatorStateMachine.order) }

    /// Assigned partitions whose state is still being restored (`replaceRules` waits for them).
    public var restoringPartitions: [TopicPartition] { machine.partitions(in: .restoring) }

    /// Everything counted so far, over all workers (as they last published).
    public var counters: PipelineCounters {
        var total = own
        for worker in workers { total += worker.status.counters }
        return total
    }

    /// Serves the group (rebalances), the workers' reports and the commit cycle, waiting up to
    /// `timeoutMilliseconds` for something to do. Throws on what must stop the daemon: an
    /// unusable checkpoint, a trigger Kafka refused, a worker's failure.
    public func step(timeoutMilliseconds: Int32 = 100) throws {
        wakeups.arm()
        var worked = try pollConsumer() + handleEvents()
        perform(machine.handle(.tick, now: Self.monotonicMilliseconds()))
        if worked == 0 {
            wakeups.wait(timeoutMilliseconds: timeoutMilliseconds)
            worked = try pollConsumer() + handleEvents()
        }
        commitPending()
        if let microseconds = trimmer.trimIfDue(now: Self.monotonicMilliseconds()) {
            logger.debug("free memory returned to the kernel in \(microseconds) µs")
        }
        // Probed once per step: while the brokers are down each probe can wait 200 ms.
        brokersReachable.set(consumer.brokersReachable)
        alerts.serveDeliveries()
        own.kafkaErrors += consumer.takeErrorsReported() + alerts.takeErrors()
        if let failure { throw failure }
    }

    /// Final checkpoints of every partition, their offsets committed, then leaves the group and
    /// stops the workers. Throws if Kafka did not acknowledge some partition's triggers in
    /// time: that partition's state stays at its previous checkpoint, and a restart re-sends
    /// them with the same ids.
    public func stop() throws {
        guard !stopped else { return }
        defer { shutDownThreads() }
        perform(machine.handle(.stop, now: Self.monotonicMilliseconds()))
        while !machine.leftGroup {
            try waitForEvents()
            perform(machine.handle(.tick, now: Self.monotonicMilliseconds()))
        }
        // The revocation this causes finds nothing left to save.
        try consumer.close()
        alerts.flush()
        // Said, so an operator sees the others did not have to wait for a session timeout.
        logger.info("left consumer group '\(config.settings.kafka.groupID)': its other members take the partitions over now")
        if !machine.abandoned.isEmpty {
            throw KafkaError(
                kind: .unacknowledged,
                message: "stopping: the triggers of \(machine.abandoned.map(\.description).joined(separator: ", ")) were not "
                    + "acknowledged within \(Self.releaseTimeoutMilliseconds / 1000) s; their state stays at the last checkpoint")
        }
    }

    /// Swaps in new rules on every worker or on none, keeping every partition's state in
    /// place: each worker pauses and checkpoints its partitions under the running rules, and
    /// once all have, each takes the new rules (timers re-timed under a new config version).
    /// Rules that change the state's shape (counters, attributes, stages or triggers added,
    /// removed or redefined) are refused with the reason, and the running rules stay. Kafka,
    /// HTTP and state settings are not changed.
    public func replaceRules(with loaded: LoadedConfig) throws {
        let restoring = restoringPartitions
        guard restoring.isEmpty else {
            throw ReloadRefused(reason: "\(restoring.map(\.description).joined(separator: ", ")) still restoring; try the reload again")
        }
        reload = ReloadRound(number: reload.number + 1, underWay: true)
        for worker in workers { worker.mailbox.post(.prepareRules(loaded, reload: reload.number)) }
        let deadline = Self.monotonicMilliseconds() + Self.releaseTimeoutMilliseconds
        while reload.replies.count < workers.count && Self.monotonicMilliseconds() < deadline {
            try waitForEvents()
        }
        reload.underWay = false
        resumeHeldInput()
        let failures = reload.replies.values.compactMap { $0 }
        guard reload.replies.count == workers.count, failures.isEmpty else {
            for worker in workers { worker.mailbox.post(.abortRules) }
            throw ReloadRefused(reason: failures.first
                ?? "the checkpoints under the running rules were not acknowledged within \(Self.releaseTimeoutMilliseconds / 1000) s; try the reload again")
        }
        for worker in workers { worker.mailbox.post(.commitRules) }
        config.rules = loaded.rules
        config.compiled = loaded.compiled
        config.configVersion = loaded.configVersion
        alerts.rulesChanged(loaded)
    }

    /// Stops fetching a paused worker's partitions while the reload waits for checkpoints:
    /// left fetching, librdkafka would prefetch their input for as long as the checkpoints
    /// take (up to `queued.max.messages.kbytes` per worker). A partition its worker never
    /// consumed has no offset to resume from and is left fetching; a failed hold only costs
    /// that memory.
    private func holdInput(_ positions: [TopicPartition: Int64]) {
        let held = positions.filter { $0.value >= 0 && machine.partitions[$0.key]?.phase == .active }
        do {
            try consumer.hold(Array(held.keys))
            reload.held.merge(held) { $1 }
        } catch {
            logger.warning("reload: input not held while checkpointing (\(error)); librdkafka prefetches it meanwhile")
        }
    }

    /// Fetches what the reload held again, each partition from the offset its worker consumes
    /// next. Not resuming would stop those partitions for good, so a failure stops the daemon.
    private func resumeHeldInput() {
        guard !reload.held.isEmpty else { return }
        do {
            try consumer.resume(at: reload.held)
        } catch {
            failure = failure ?? error
        }
        reload.held = [:]
    }

    /// Posts what the HTTP port shows (metrics included), and passes on the user lookups it queued.
    public func publish(to board: StatusBoard, now: Int64) {
        let statuses = workers.map(\.status)
        var total = own
        var users = 0
        var stateBytes = 0
        var perStage = [Int](repeating: 0, count: config.compiled.stageNames.count)
        var armTotals = [ArmTotals](repeating: ArmTotals(), count: config.compiled.triggerNames.count)
        var progress: [TopicPartition: WorkerStatus.PartitionProgress] = [:]
        var heartbeat = now
        for status in statuses {
            total += status.counters
            users += status.users
            stateBytes += status.stateBytes
            for (stage, count) in status.usersPerStage.enumerated() where stage < perStage.count { perStage[stage] += count }
            for (trigger, totals) in status.armTotals.enumerated() where trigger < armTotals.count { armTotals[trigger] += totals }
            progress.merge(status.partitions) { $1 }
            heartbeat = min(heartbeat, status.heartbeat)
        }
        let assigned = assignedPartitions
        let restores = restorer.current
        var lag: [(partition: String, messages: Int64)] = []
        var partitions: [StatusBoard.PartitionStatus] = []
        for partition in assigned {
            guard let entry = machine.partitions[partition] else { continue }
            let task = progress[partition]
            var behind: Int64?
            if let high = consumer.highWatermark(partition), let next = task?.nextOffset {
                behind = max(0, high - max(next, 0))
                lag.append((partition.description, behind!))
            }
            partitions.append(.init(
                name: partition.description, worker: entry.worker,
                phase: entry.phase == .restoring ? PartitionTask.Phase.restoring.rawValue : (task?.phase ?? .restoring).rawValue,
                nextOffset: task?.nextOffset ?? -1, lag: behind,
                restore: restores[partition].map { .init(records: $0.records, total: $0.total, users: $0.users) }))
        }
        let restoring = machine.partitions(in: .restoring)
        let reachable = brokersReachable.isSet
        // Restored but not yet reported by its worker: its state is not on the board yet.
        let starting = machine.partitions(in: .active).filter { progress[$0] == nil }
        let ready = !assigned.isEmpty && reachable && restoring.isEmpty && starting.isEmpty
        let stages = zip(config.compiled.stageNames, perStage).map { (stage: $0, users: $1) }
        let rules = config.compiled
        let triggers = rules.triggerNames.indices.map { trigger in
            StatusBoard.TriggerStatus(
                name: rules.triggerNames[trigger], reason: rules.reason(ofTrigger: trigger),
                hasHoldout: rules.hasHoldout(trigger), controlShare: rules.controlShare(ofTrigger: trigger),
                hasGoal: rules.rules.triggers[trigger].goal != nil, totals: armTotals[trigger])
        }
        let oldestCheckpoint = assigned.compactMap { lastCheckpoints[$0] }.min()
        // From the sums above, here on the coordinator's thread: the workers do nothing for alerts.
        alerts.sample(counters: total, usersPerStage: perStage, lag: lag.map(\.messages), now: now)
        let alertStatuses = alerts.statuses
        metrics.setAlerts(alertStatuses)
        metrics.update(total)
        metrics.set(
            usersTracked: users, stateBytes: stateBytes, usersPerStage: stages, lag: lag, assigned: Set(assigned.map(\.description)),
            restoring: restores.map { ($0.key.description, max(0, $0.value.total - $0.value.records)) },
            lastCheckpoint: oldestCheckpoint.map { ($0, lastCheckpointSeconds) }, now: now, ready: ready)
        board.publish { snapshot in
            snapshot.heartbeat = heartbeat
            snapshot.assignedPartitions = assigned.map(\.description)
            snapshot.partitions = partitions
            snapshot.ready = ready
            snapshot.notReadyReason = !reachable ? "Kafka brokers unreachable; reconnecting"
                : assigned.isEmpty ? "no partitions assigned yet (joining the group)"
                : !restoring.isEmpty ? "restoring " + restoring.map { "\($0) (\(restorer.describe($0)))" }.joined(separator: "; ")
                : "starting " + starting.map(\.description).joined(separator: ", ") + " on their workers"
            snapshot.counters = total
            snapshot.triggers = triggers
            snapshot.usersPerStage = stages
            snapshot.usersTracked = users
            snapshot.alerts = alertStatuses
        }
        for lookup in board.takeLookups() {
            let reply = LookupReply(workers: workers.count, reply: lookup.reply)
            for worker in workers { worker.mailbox.post(.lookUp(lookup.userID, reply)) }
        }
    }

    /// Whether every worker has stepped within the last `milliseconds` (for the watchdog).
    public func workersStepped(within milliseconds: Int64, now: Int64) -> Bool {
        workers.allSatisfy { now - $0.status.heartbeat <= milliseconds }
    }

    // MARK: - Events and actions

    private func pollConsumer() throws -> Int {
        do {
            // Every partition is routed to a worker or a holding queue: only rebalances and
            // errors arrive here.
            return try consumer.poll(timeoutMilliseconds: 0) { message in
                logger.warning("message of \(message.topic)[\(message.partition)] reached the coordinator; skipped")
            }
        } catch let error as KafkaError where error.isOffsetOutOfRange {
            throw offsetOutOfRange(error)
        }
    }

    @discardableResult
    private func handleEvents() throws -> Int {
        let events = inbox.take()
        for event in events {
            switch event {
            case .restored(let task, let records):
                own.restores += 1
                own.restoredRecords += records
                let actions = machine.handle(.restored(task.partition), now: Self.monotonicMilliseconds())
                for case .activate(let partition, let worker) in actions {
                    try activate(task, on: worker)
                    logger.info("restored \(partition) at offset \(task.nextOffset) (\(records) changelog records): \(task.engine.userCount) users, on worker \(worker)")
                }
                perform(actions)
            case .restoreFailed(_, let error), .checkpointFailed(let error), .changelogUnusable(let error):
                failure = failure ?? error
            case .workerFailed(_, let error):
                failure = failure ?? ((error as? KafkaError).map { $0.isOffsetOutOfRange ? offsetOutOfRange($0) : $0 } ?? error)
            case .checkpointed(let partition, let nextOffset, let seconds):
                own.checkpoints += 1
                lastCheckpoints[partition] = WallClock.milliseconds()
                lastCheckpointSeconds = seconds
                perform(machine.handle(.checkpointed(partition, nextOffset: nextOffset), now: Self.monotonicMilliseconds()))
            case .released(let partition):
                perform(machine.handle(.released(partition), now: Self.monotonicMilliseconds()))
            case .inputHeld(let number, let positions):
                if number == reload.number && reload.underWay { holdInput(positions) }
            case .rulesPrepared(let worker, let number, let failure):
                if number == reload.number { reload.replies[worker] = failure }
            }
        }
        if let failure { throw failure }
        return events.count
    }

    /// Waits briefly for the other threads' reports and handles them (while the group is not
    /// being polled: inside a revocation, a stop or a reload).
    private func waitForEvents() throws {
        var inboxOnly = Wakeups([inbox])
        inboxOnly.arm()
        if try handleEvents() == 0 {
            inboxOnly.wait(timeoutMilliseconds: 10)
            try handleEvents()
        }
    }

    private func perform(_ actions: [CoordinatorStateMachine.Action]) {
        for action in actions {
            switch action {
            case .restore, .activate:
                break  // done where the input came from (the rebalance handler, `handleEvents`)
            case .discard(let partition):
                logger.info("restored \(partition), but it is no longer assigned here; dropped")
            case .checkpoint(let worker):
                workers[worker].mailbox.post(.checkpoint)
            case .release(let partitions, let worker):
                workers[worker].mailbox.post(.release(partitions))
            case .abandon(let partitions):
                logger.warning("\(partitions.map(\.description).joined(separator: ", ")): triggers not acknowledged within \(Self.releaseTimeoutMilliseconds / 1000) s; leaving with the previous checkpoint")
                writer.submit(.abandon(partitions))
            case .commit(let offsets, let synchronous):
                if synchronous {
                    commit(offsets, wait: true)
                } else {
                    pendingCommits.merge(offsets) { max($0, $1) }
                }
            case .revocationComplete(let partitions):
                for partition in partitions {
                    pendingCommits[partition] = nil
                    consumer.unroute(partition)
                    holding[partition] = nil
                    startingLater.remove(partition)
                }
            case .leaveGroup:
                break  // `stop` goes on to close the consumer
            }
        }
    }

    /// Where a partition resumes comes from its checkpoint, so committed offsets serve lag
    /// monitoring and other tools: a refused commit is not fatal.
    private func commit(_ offsets: [TopicPartition: Int64], wait: Bool) {
        do {
            try consumer.commit(offsets, wait: wait)
        } catch {
            own.kafkaErrors += 1
            logger.warning("offsets not committed (\(error)); the checkpoints hold them")
        }
    }

    private func commitPending() {
        guard !pendingCommits.isEmpty, !consumer.rejoining else { return }
        commit(pendingCommits, wait: false)
        pendingCommits.removeAll()
    }

    private func activate(_ task: PartitionTask, on worker: Int) throws {
        let partition = task.partition
        if startingLater.remove(partition) != nil {
            try consumer.start(partition, at: task.nextOffset >= 0 ? task.nextOffset : KafkaConsumer.earliestOffset)
        }
        // Announced first: the worker looks in its mailbox when a partition it does not know
        // sends it a message.
        workers[worker].mailbox.post(.adopt(task))
        holding[partition]?.forward(to: workers[worker].queue)
    }

    // MARK: - Rebalances

    private func rebalance(_ event: KafkaConsumer.Rebalance) throws -> [TopicPartition: Int64] {
        own.rebalances += 1
        switch event {
        case .assigned(let assigned):
            var starts: [TopicPartition: Int64] = [:]
            for action in machine.handle(.assigned(assigned), now: Self.monotonicMilliseconds()) {
                if case .restore(let partition, _) = action { starts[partition] = try startRestore(partition) }
            }
            return starts
        case .revoked(let revoked):
            // The partitions leave when this returns (and librdkafka holds every fetch until
            // then), so their final checkpoints are waited for here.
            let started = Self.monotonicMilliseconds()
            perform(machine.handle(.revoked(revoked), now: started))
            while machine.isRevoking {
                try waitForEvents()
                perform(machine.handle(.tick, now: Self.monotonicMilliseconds()))
            }
            logger.info("released \(revoked.map(\.description).joined(separator: ", ")) in \(Self.monotonicMilliseconds() - started) ms")
            return [:]
        }
    }

    /// Routes the partition's messages to a queue of their own and reads its state in the
    /// background; returns where it starts: its local checkpoint's offset, or the earliest
    /// retained one without a checkpoint — or, with a changelog, where the restored state
    /// ends, known only once it is restored (`activate`).
    private func startRestore(_ partition: TopicPartition) throws -> Int64 {
        let header = try store.readHeader(topic: partition.topic, partition: partition.partition)
        let queue = try MessageQueue(consumer: consumer, wakeable: false)
        try consumer.route(partition, to: queue)
        holding[partition] = queue
        let changelog = changelogs.changelog(of: partition.topic)
        restorer.restore(partition, rules: config.compiled, header: header, changelog: changelog)
        if changelog != nil {
            startingLater.insert(partition)
            return KafkaConsumer.startLater
        }
        guard let header else {
            logger.notice("no checkpoint for \(partition): rebuilding its state from the earliest retained offset")
            return KafkaConsumer.earliestOffset
        }
        try consumer.checkWithinEnd(partition, offset: header.nextOffset)
        return header.nextOffset
    }

    private func offsetOutOfRange(_ error: KafkaError) -> KafkaError {
        KafkaError(
            kind: error.kind,
            message: "\(error.message). The topic no longer holds the offset the partition's checkpoint (or "
                + "its last position) resumes from: events were deleted by retention before they were read, or "
                + "the topic was recreated, so the saved state cannot simply go on. To go on from the "
                + "earliest retained offset with the saved state, set kafka.properties auto.offset.reset: earliest "
                + "and restart; to rebuild the partition's state from the topic, move its checkpoint file out of "
                + "\(config.settings.state.directory) and restart.")
    }

    // MARK: - Threads

    private func shutDownThreads() {
        stopped = true
        for worker in workers { worker.mailbox.post(.stop) }
        for worker in workers { worker.join() }
        writer.stop()
        stateLock.release()
    }

    /// The Kafka cluster's id, which checkpoints record so that one taken on another cluster
    /// is refused; nil (and not checked) if no broker answers within a few seconds.
    private static func clusterID(_ kafka: DaemonSettings.Kafka, logger: Logger) -> String? {
        var properties = kafka.properties
        properties["bootstrap.servers"] = kafka.brokers
        let id = (try? KafkaAdmin(properties: properties, logger: logger))?.clusterID(timeoutMilliseconds: 5_000)
        if id == nil { logger.warning("the Kafka cluster's id is unknown (no broker answered in 5 s): checkpoints are not checked against it") }
        return id
    }

    private static func monotonicMilliseconds() -> Int64 { Int64(MonotonicClock.microseconds() / 1000) }
}

/// A rules reload that did not happen; the running rules stay.
public struct ReloadRefused: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// One rules reload's progress: which workers replied (with a failure or nil), and the
/// partitions held meanwhile with the offsets their workers consume next.
private struct ReloadRound {
    var number = 0
    /// From the workers being asked until their replies are in (or late).
    var underWay = false
    var replies: [Int: String?] = [:]
    var held: [TopicPartition: Int64] = [:]
}
