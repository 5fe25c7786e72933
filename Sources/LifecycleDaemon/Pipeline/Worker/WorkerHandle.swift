import Foundation
import LifecycleConfig
import LifecycleEngine
import LifecycleKafka
import Synchronization

/// What the coordinator asks of a worker.
enum WorkerCommand: Sendable {
    /// A restored partition: consume it from now on (its messages are routed here next).
    case adopt(PartitionTask)
    /// Stop consuming these partitions, take their final checkpoints, and drop them.
    case release([TopicPartition])
    /// A commit cycle: snapshot every partition that changed since its last checkpoint.
    case checkpoint
    /// Rules reload, first half: check that the new rules fit every partition's state,
    /// pause (saying where each partition stopped: `inputHeld`), checkpoint every partition
    /// under the running rules, and report (`rulesPrepared`).
    case prepareRules(LoadedConfig, reload: Int)
    /// Second half: run under the new rules, or keep the running ones, and resume.
    case commitRules
    case abortRules
    case lookUp(String, LookupReply)
    case stop
}

/// What a worker last published about itself (a few times a second, and when it stops).
struct WorkerStatus: Sendable {
    struct PartitionProgress: Sendable {
        var phase: PartitionTask.Phase
        var nextOffset: Int64
    }

    var counters = PipelineCounters()
    /// Indexed like the rules' stage names.
    var usersPerStage: [Int] = []
    /// Its partitions' per-arm totals, indexed like the rules' trigger names.
    var armTotals: [ArmTotals] = []
    var users = 0
    /// Heap bytes of its partitions' engine state.
    var stateBytes = 0
    var partitions: [TopicPartition: PartitionProgress] = [:]
    /// Wall-clock milliseconds of the worker's last step; 0 before the first.
    var heartbeat: Int64 = 0
}

/// The coordinator's side of a worker: how to reach it and what it publishes. The worker
/// itself (`PartitionWorker`) lives on its own thread and is touched only there.
final class WorkerHandle: Sendable {
    let index: Int
    let mailbox: Mailbox<WorkerCommand>
    /// The queue its partitions are routed to.
    let queue: MessageQueue
    private let published = Mutex(WorkerStatus())
    private let started = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(index: Int, queue: MessageQueue) throws(KafkaError) {
        mailbox = try Mailbox()
        self.index = index
        self.queue = queue
    }

    var status: WorkerStatus { published.withLock { $0 } }
    func publish(_ status: WorkerStatus) { published.withLock { $0 = status } }

    /// Runs `worker` on a thread of its own until it is told to stop or fails.
    func start(_ worker: PartitionWorker) {
        let handover = Handover(value: worker)
        let started = started
        let finished = finished
        let thread = Thread {
            handover.value.run(onStarted: { started.signal() })
            finished.signal()
        }
        thread.name = "lifecycled-w\(index)"
        thread.start()
    }

    /// Waits until the worker has prepared its producer and steps.
    func waitUntilStarted() { started.wait() }

    /// Waits until the worker's thread has ended (after `stop`, or a failure).
    func join() { finished.wait() }
}

/// Answers a user lookup from whichever worker holds the user: the first report found, or
/// nil once every worker has answered without one.
final class LookupReply: Sendable {
    private let state: Mutex<(remaining: Int, answered: Bool)>
    private let reply: @Sendable (UserReport?) -> Void

    init(workers: Int, reply: @escaping @Sendable (UserReport?) -> Void) {
        state = Mutex((workers, false))
        self.reply = reply
    }

    func answer(_ report: UserReport?) {
        let send = state.withLock { state -> Bool in
            state.remaining -= 1
            guard !state.answered, report != nil || state.remaining == 0 else { return false }
            state.answered = true
            return true
        }
        if send { reply(report) }
    }
}
