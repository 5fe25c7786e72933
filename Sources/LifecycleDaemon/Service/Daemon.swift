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

/// `lifecycled run`: the pipeline's loop with systemd notifications and a clean stop.
///
/// Stopping finishes the batch in hand, waits for Kafka to acknowledge every trigger, writes
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

    public static func wallClockMillis() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Runs until `stop` is requested, posting the loop's state to `board` after every step.
    /// When `reload` is requested, the rules are read again from `configPath`: a config that
    /// validates and keeps the state's shape replaces the rules, state kept; anything else is
    /// logged and ignored.
    public func run(until stop: SignalFlag, reload: SignalFlag, configPath: String, board: StatusBoard) throws {
        let pipeline = try TriggerPipeline(config: config, logger: logger, wallClock: Self.wallClockMillis, metrics: metrics)
        pipeline.publish(to: board, now: Self.wallClockMillis())
        notifier.notify("READY=1\nSTATUS=consuming \(config.settings.kafka.inputTopics.joined(separator: ", "))")
        logger.info("lifecycled running: brokers \(config.settings.kafka.brokers), group \(config.settings.kafka.groupID), config \(config.configVersion)")
        var lastWatchdog = Self.wallClockMillis()
        while !stop.isRequested {
            if reload.consume() { reloadRules(pipeline, from: configPath) }
            try pipeline.step()
            pipeline.publish(to: board, now: Self.wallClockMillis())
            if let interval = notifier.watchdogInterval, Self.wallClockMillis() - lastWatchdog >= interval {
                notifier.notify("WATCHDOG=1\nSTATUS=\(pipeline.assignedPartitions.count) partitions, \(pipeline.counters.eventsConsumed) events, \(pipeline.counters.triggersProduced) triggers")
                lastWatchdog = Self.wallClockMillis()
            }
        }
        board.publish { $0.ready = false; $0.notReadyReason = "stopping" }
        notifier.notify("STOPPING=1\nSTATUS=checkpointing and committing")
        logger.info("stopping: final checkpoint and commit")
        try pipeline.stop()
        logger.info("stopped cleanly after \(pipeline.counters.eventsConsumed) events, \(pipeline.counters.triggersProduced) triggers, \(pipeline.counters.checkpoints) checkpoints")
    }

    private func reloadRules(_ pipeline: TriggerPipeline, from path: String) {
        do {
            let loaded = try ConfigLoader.load(path: path)
            try pipeline.replaceRules(with: loaded)
            if loaded.settings != config.settings {
                logger.warning("SIGHUP: rules reloaded; changes to kafka, http or state settings take effect on restart")
            }
            logger.info("SIGHUP: rules reloaded (config \(loaded.configVersion)), state kept")
            notifier.notify("STATUS=rules reloaded (config \(loaded.configVersion))")
        } catch {
            logger.error("SIGHUP: rules not reloaded, the running rules stay: \(error)")
        }
    }
}
