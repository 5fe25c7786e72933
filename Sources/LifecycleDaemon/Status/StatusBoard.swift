import LifecycleEngine
import Synchronization

/// What the processing loop publishes for the HTTP port to read (metrics aside: they go to
/// the metrics factory), and the user lookups the port asks the loop to answer. The loop
/// owns the engines; other threads only ever see copies posted here, so no engine is read
/// while it changes.
public final class StatusBoard: Sendable {
    /// An assigned partition, as the HTTP port shows it.
    public struct PartitionStatus: Sendable, Equatable {
        public var name: String
        /// The processing thread that runs it.
        public var worker: Int
        /// restoring, catching up, live or revoking.
        public var phase: String
        /// The offset of the next message to read; -1 before any.
        public var nextOffset: Int64
        /// Messages behind the partition's end, when the end is known.
        public var lag: Int64?
        /// While its state is restored from the changelog.
        public var restore: RestoreProgress?
    }

    /// A changelog restore so far: offsets read of those to read, and the users restored.
    public struct RestoreProgress: Sendable, Equatable {
        public var records: Int
        public var total: Int
        public var users: Int
    }

    /// A trigger's arms, as `/v1/triggers` shows them.
    public struct TriggerStatus: Sendable, Equatable {
        public var name: String
        /// What its firings say (the rule's `reason`, or one derived from the rule).
        public var reason: String
        /// Whether its firings are split into arms (its own holdout or the global one).
        public var hasHoldout: Bool
        /// The share of users expected in its control arm (0 to 1).
        public var controlShare: Double
        /// Without a goal there are no conversions to compare.
        public var hasGoal: Bool
        /// Over the assigned partitions, since each one's state began (kept with the state).
        public var totals: ArmTotals
    }

    public struct Snapshot: Sendable {
        public var ready = false
        public var notReadyReason = "starting: joining the consumer group"
        /// Wall-clock milliseconds of the loop's last step (for /healthz).
        public var heartbeat: Int64 = 0
        public var assignedPartitions: [String] = []
        public var partitions: [PartitionStatus] = []
        public var counters = PipelineCounters()
        public var triggers: [TriggerStatus] = []
        public var usersPerStage: [(stage: String, users: Int)] = []
        public var usersTracked = 0
        /// Each alert's state as of the coordinator's last sample.
        public var alerts: [AlertStatus] = []
        public init() {}
    }

    private let snapshot = Mutex(Snapshot())
    private let lookups = Mutex<[(userID: String, reply: @Sendable (UserReport?) -> Void)]>([])

    public init() {}

    public var current: Snapshot { snapshot.withLock { $0 } }

    public func publish(_ update: (inout Snapshot) -> Void) {
        snapshot.withLock { update(&$0) }
    }

    /// Asks the pipeline for a user's report; `reply` is called from a processing thread.
    public func lookUp(userID: String, reply: @escaping @Sendable (UserReport?) -> Void) {
        lookups.withLock { $0.append((userID, reply)) }
    }

    /// The lookups asked for since the last call; the pipeline passes them to its workers.
    func takeLookups() -> [(userID: String, reply: @Sendable (UserReport?) -> Void)] {
        lookups.withLock { queue in
            defer { queue.removeAll() }
            return queue
        }
    }
}
