import Glibc
import LifecycleConfig
import LifecycleKafka
import Logging
import Metrics
import Synchronization

/// A request to the processing loop from another thread (stop on graceful shutdown, reload
/// on SIGHUP): a flag the loop checks between steps. One atomic, so any thread may set it.
public final class SignalFlag: Sendable {
    private let requested = Atomic<Bool>(false)
    public init() {}
    public func request() { requested.store(true, ordering: .relaxed) }
    public var isRequested: Bool { requested.load(ordering: .relaxed) }
    /// Whether it was requested since the last call.
    public func consume() -> Bool { requested.exchange(false, ordering: .relaxed) }
}

/// `lifecycled run`: the pipeline's coordinator loop with systemd notifications and a clean
/// stop (its workers run on threads of their own).
///
/// Stopping finishes the batches in hand, waits for Kafka to acknowledge every trigger, writes
/// the checkpoints, commits the offsets and leaves the group (SPEC section 4).
public struct Daemon: Sendable {
    public let config: LoadedConfig
    public let logger: Logger
    public let notifier: SystemdNotifier
    /// Where the pipeline's metrics go (the HTTP port's registry).
    public let metrics: any MetricsFactory

    public init(config: LoadedConfig, logger: Logger, notifier: SystemdNotifier, metrics: any MetricsFactory) {
        self.config = config
        self.logger = logger
        self.notifier = notifier
        self.metrics = metrics
    }

    /// Runs until `stop` is requested, posting the loop's state to `board` after every step.
    /// When `reload` is requested, the rules are read again from `configPath`: a config that
    /// validates and keeps the state's shape replaces the rules, state kept; anything else is
    /// logged and ignored.
    public func run(until stop: SignalFlag, reload: SignalFlag, configPath: String, board: StatusBoard) throws {
        // Before the pipeline's threads allocate anything.
        MallocPolicy.apply()
        let pipeline = try PipelineCoordinator(config: config, logger: logger, wallClock: WallClock.milliseconds, metrics: metrics)
        pipeline.publish(to: board, now: WallClock.milliseconds())
        notifier.notify("READY=1\nSTATUS=consuming \(config.settings.kafka.inputTopics.joined(separator: ", "))")
        logger.info("lifecycled running: brokers \(config.settings.kafka.brokers), group \(config.settings.kafka.groupID), config \(config.configVersion)")
        var lastWatchdog = WallClock.milliseconds()
        var pendingReload = PendingReload()
        while !stop.isRequested {
            switch pendingReload.next(requested: reload.consume(), restoring: pipeline.restoringPartitions) {
            case .reload: reloadRules(pipeline, from: configPath)
            case .wait(let partitions):
                logger.notice("SIGHUP: the reload waits until \(partitions.map(\.description).joined(separator: ", ")) are restored")
            case .none: break
            }
            try pipeline.step()
            let now = WallClock.milliseconds()
            pipeline.publish(to: board, now: now)
            // Petted only while every worker steps: a stuck one gets the service restarted.
            if let interval = notifier.watchdogInterval, now - lastWatchdog >= interval,
               pipeline.workersStepped(within: interval, now: now) {
                let counters = pipeline.counters
                notifier.notify("WATCHDOG=1\nSTATUS=\(pipeline.assignedPartitions.count) partitions, \(counters.eventsConsumed) events, \(counters.triggersProduced) triggers")
                lastWatchdog = now
            }
        }
        board.publish { $0.ready = false; $0.notReadyReason = "stopping" }
        notifier.notify("STOPPING=1\nSTATUS=checkpointing and committing")
        logger.info("stopping: final checkpoint and commit")
        try pipeline.stop()
        let counters = pipeline.counters
        logger.info("stopped cleanly after \(counters.eventsConsumed) events, \(counters.triggersProduced) triggers, \(counters.checkpoints) checkpoints")
    }

    private func reloadRules(_ pipeline: PipelineCoordinator, from path: String) {
        do {
            let loaded = try ConfigLoader.load(path: path)
            let started = MonotonicClock.microseconds()
            try pipeline.replaceRules(with: loaded)
            // Consumption stops for this long (the checkpoints' writes and acknowledgements): worth seeing.
            let paused = (MonotonicClock.microseconds() - started) / 1000
            if loaded.settings != config.settings {
                logger.warning("SIGHUP: rules reloaded; changes to kafka, http or state settings take effect on restart")
            }
            logger.info("SIGHUP: rules reloaded (config \(loaded.configVersion)), state kept; input paused \(paused) ms")
            notifier.notify("STATUS=rules reloaded (config \(loaded.configVersion))")
        } catch {
            logger.error("SIGHUP: rules not reloaded, the running rules stay: \(error)")
        }
    }
}

/// A SIGHUP's reload, held while partitions are restored: their state is not in the workers
/// yet, so it could not take the new rules. The file is read when the reload runs.
struct PendingReload {
    enum Step: Equatable {
        case none
        case reload
        /// Said once per request: these partitions are still restoring.
        case wait([TopicPartition])
    }

    private var requested = false
    private var announced = false

    /// `restoring` is asked only while a reload is requested: the loop calls this every step.
    mutating func next(requested signal: Bool, restoring: @autoclosure () -> [TopicPartition]) -> Step {
        if signal { requested = true }
        guard requested else { return .none }
        let partitions = restoring()
        guard partitions.isEmpty else {
            defer { announced = true }
            return announced ? .none : .wait(partitions)
        }
        requested = false
        announced = false
        return .reload
    }
}
