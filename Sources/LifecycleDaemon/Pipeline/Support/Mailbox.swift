import LifecycleKafka
import Synchronization

/// Messages from other threads to one thread that also sleeps on Kafka queues: a locked
/// list plus a pipe that wakes the owner's `Wakeups` when something is posted.
///
/// Only control traffic goes through it (assignments, checkpoint requests, reports), never
/// per-event work, so its lock is never on the hot path.
final class Mailbox<Message: Sendable>: Sendable {
    private let messages = Mutex<[Message]>([])
    private let doorbell: WakeupPipe

    init() throws(KafkaError) {
        doorbell = try WakeupPipe()
    }

    func post(_ message: Message) {
        messages.withLock { $0.append(message) }
        doorbell.ring()
    }

    /// Everything posted so far, oldest first.
    func take() -> [Message] {
        messages.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
    }
}

extension Mailbox: Wakeable {
    var wakeupDescriptor: Int32 { doorbell.readEnd }
    func drainWakeups() { doorbell.drain() }
}

/// Moves a value that is not `Sendable` to the thread that owns it from then on (a
/// partition's task to its worker, a worker to its thread). The sender keeps no reference.
struct Handover<Value>: @unchecked Sendable {
    let value: Value
}

/// A yes/no one thread sets and others read (whether the brokers answer).
final class SharedFlag: Sendable {
    private let value: Atomic<Bool>
    init(_ initial: Bool) { value = Atomic(initial) }
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set(_ newValue: Bool) { value.store(newValue, ordering: .relaxed) }
}
