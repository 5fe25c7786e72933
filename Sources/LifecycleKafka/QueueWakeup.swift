import CRdKafka
import Glibc

/// A pipe that librdkafka writes to when a queue goes from empty to non-empty, so one thread
/// can sleep on several clients at once and wake the moment either has work.
///
/// Without it the loop sleeps inside one client's call (waiting for messages) while the
/// other's events (delivery reports) sit unserved until that call times out.
/// The pipe closes when the wakeup goes; `close` must come before the queue is destroyed.
final class QueueWakeup {
    /// Borrowed: the owner destroys the queue, after calling `close`.
    private let queue: OpaquePointer
    private let pipe: WakeupPipe
    var readEnd: Int32 { pipe.readEnd }

    init(queue: OpaquePointer) throws(KafkaError) {
        pipe = try WakeupPipe()
        self.queue = queue
        var signal: UInt8 = 1
        rd_kafka_queue_io_event_enable(queue, pipe.writeEnd, &signal, 1)
    }

    /// A wakeup for `queue` of a client still being built; if it cannot be made, the queue
    /// and the client are destroyed and the client's context released before the error is
    /// rethrown, as the client's failing initialiser must.
    static func forNewClient(
        queue: OpaquePointer, handle: OpaquePointer, context: Unmanaged<HandleContext>
    ) throws(KafkaError) -> QueueWakeup {
        do {
            return try QueueWakeup(queue: queue)
        } catch {
            rd_kafka_queue_destroy(queue)
            rd_kafka_destroy(handle)
            context.release()
            throw error
        }
    }

    /// Empties the pipe. Called before looking at the queue: whatever is enqueued after the
    /// look makes the pipe readable again.
    func drain() { pipe.drain() }

    /// Stops the writes; must come before the queue is destroyed.
    func close() {
        rd_kafka_queue_io_event_enable(queue, -1, nil, 0)
    }
}

/// A non-blocking pipe used as a doorbell: written to when there is work, read empty before
/// looking for it, slept on with `poll(2)`.
public final class WakeupPipe: Sendable {
    public let readEnd: Int32
    public let writeEnd: Int32

    public init() throws(KafkaError) {
        var ends: (Int32, Int32) = (-1, -1)
        let created = withUnsafeMutableBytes(of: &ends) { Glibc.pipe($0.baseAddress!.assumingMemoryBound(to: Int32.self)) }
        guard created == 0 else {
            throw KafkaError(kind: .system(errno), message: "creating a wakeup pipe: \(String(cString: strerror(errno)))")
        }
        (readEnd, writeEnd) = ends
        // Non-blocking both ways (librdkafka requires it of the write end), not inherited by children.
        for end in [readEnd, writeEnd] {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
    }

    deinit {
        Glibc.close(readEnd)
        Glibc.close(writeEnd)
    }

    /// Makes the read end readable. A full pipe already is, so a write that does not fit loses nothing.
    public func ring() {
        var signal: UInt8 = 1
        _ = write(writeEnd, &signal, 1)
    }

    public func drain() {
        var buffer: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        while withUnsafeMutableBytes(of: &buffer, { read(readEnd, $0.baseAddress, $0.count) }) > 0 {}
    }
}

/// Something a thread can sleep on: a descriptor that becomes readable when it has work.
public protocol Wakeable {
    /// Readable when there is work; -1 if this one never wakes anyone.
    var wakeupDescriptor: Int32 { get }
    /// Empties the descriptor. Called before looking for work: whatever arrives after the
    /// look makes it readable again, so a `wait` that follows cannot miss it.
    func drainWakeups()
}

extension KafkaConsumer: Wakeable {
    public var wakeupDescriptor: Int32 { wakeup.readEnd }
    public func drainWakeups() { wakeup.drain() }
}

extension KafkaProducer: Wakeable {
    public var wakeupDescriptor: Int32 { wakeup.readEnd }
    public func drainWakeups() { wakeup.drain() }
}

/// Sleeping on several sources at once (a thread that owns a consumer's queue, a producer and
/// a mailbox wakes for whichever has work first).
public struct Wakeups {
    private let sources: [any Wakeable]
    private var descriptors: [pollfd]

    public init(_ sources: [any Wakeable]) {
        self.sources = sources
        descriptors = sources.map { pollfd(fd: $0.wakeupDescriptor, events: Int16(POLLIN), revents: 0) }
    }

    /// Call before looking for work; then `wait` returns as soon as anything arrived since.
    public func arm() {
        for source in sources { source.drainWakeups() }
    }

    /// Sleeps until a source has work or `timeoutMilliseconds` pass.
    public mutating func wait(timeoutMilliseconds: Int32) {
        _ = descriptors.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeoutMilliseconds) }
    }
}
