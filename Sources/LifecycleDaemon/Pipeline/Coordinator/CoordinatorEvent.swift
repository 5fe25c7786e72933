import LifecycleKafka

/// What the coordinator hears from the other threads: the restorer, the workers and the
/// checkpoint writer. Posted to its inbox, handled between its steps.
enum CoordinatorEvent: Sendable {
    /// A partition's state was read (with this many changelog records); the task is ready
    /// for its worker.
    case restored(PartitionTask, changelogRecords: Int)
    case restoreFailed(TopicPartition, any Error)
    /// A checkpoint was published: its offset may be committed.
    case checkpointed(TopicPartition, nextOffset: Int64, seconds: Double)
    case checkpointFailed(any Error)
    /// A partition being released has nothing left waiting in the writer.
    case released(TopicPartition)
    /// A worker stopped consuming for a reload; the offsets its partitions consume next.
    case inputHeld(reload: Int, positions: [TopicPartition: Int64])
    /// A worker checkpointed its partitions under the running rules and built them under the
    /// new ones (or could not: `failure`).
    case rulesPrepared(worker: Int, reload: Int, failure: String?)
    case workerFailed(worker: Int, any Error)
    /// A changelog topic cannot keep state (not compacted).
    case changelogUnusable(any Error)
}
