import LifecycleEngine
import LifecycleKafka

/// Sees what the pipeline does as it happens, for tools around it (`demo`'s recent triggers,
/// the benchmarks' exact percentiles). Called on the processing threads, so implementations
/// must be thread-safe and quick; production runs without one.
public protocol PipelineObserver: Sendable {
    /// A trigger was handed to Kafka (made into owned values only when there is an observer).
    func triggerProduced(_ trigger: Trigger)
    /// Kafka acknowledged a trigger that an event caused, this long after the event was consumed.
    func triggerAcknowledged(afterMicroseconds latency: Int)
    /// An event of `partition` was consumed; `age` is the wall clock minus its Kafka timestamp
    /// (milliseconds), if it has one.
    func eventConsumed(_ partition: TopicPartition, ageMilliseconds age: Int64?)
    /// A partition's state was copied for a checkpoint on its processing thread, which
    /// paused the partitions of that thread for `microseconds`.
    func snapshotTaken(_ partition: String, bytes: Int, microseconds: Int)
    /// A slice of a commit cycle's changelog records of `partition` was produced on its
    /// processing thread, which paused the partitions of that thread for `microseconds`;
    /// `unacknowledged` of the thread's messages then waited for Kafka's acknowledgement.
    func changelogWritten(_ partition: String, records: Int, microseconds: Int, unacknowledged: Int)
    /// A partition's state was rebuilt (checkpoint and changelog) in `microseconds`.
    func partitionRestored(_ partition: TopicPartition, changelogRecords: Int, users: Int, microseconds: Int)
}

extension PipelineObserver {
    public func triggerProduced(_ trigger: Trigger) {}
    public func triggerAcknowledged(afterMicroseconds latency: Int) {}
    public func eventConsumed(_ partition: TopicPartition, ageMilliseconds age: Int64?) {}
    public func snapshotTaken(_ partition: String, bytes: Int, microseconds: Int) {}
    public func changelogWritten(_ partition: String, records: Int, microseconds: Int, unacknowledged: Int) {}
    public func partitionRestored(_ partition: TopicPartition, changelogRecords: Int, users: Int, microseconds: Int) {}
}
