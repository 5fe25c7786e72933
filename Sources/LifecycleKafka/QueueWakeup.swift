import CRdKafka
import Glibc

/// A pipe that librdkafka writes to when a queue goes from empty to non-empty, so one thread
/// can sleep on several clients at once and wake the moment either has work.
///
/// Without it the loop sleeps inside one client's call (waiting for messages) while the
/// other's events (delivery reports) sit unserved until that call times out.
final class QueueWakeup {
    /// Borrowed: the owner destroys the queue, after calling `close`.
    private let queue: OpaquePointer
    let readEnd: Int32
    private let writeEnd: Int32

    init(queue: OpaquePointer) throws(KafkaError) {
        var ends: (Int32, Int32) = (-1, -1)
        let created = withUnsafeMutableBytes(of: &ends) { pipe($0.baseAddress!.assumingMemoryBound(to: Int32.self)) }
        guard created == 0 else {
            throw KafkaError(code: -1, message: "creating a wakeup pipe: \(String(cString: strerror(errno)))")
        }
        (readEnd, writeEnd) = ends
        // Non-blocking both ways (librdkafka requires it of the write end), not inherited by children.
        for end in [readEnd, writeEnd] {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        self.queue = queue
        var signal: UInt8 = 1
        rd_kafka_queue_io_event_enable(queue, writeEnd, &signal, 1)
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
    func drain() {
        var buffer: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        while withUnsafeMutableBytes(of: &buffer, { read(readEnd, $0.baseAddress, $0.count) }) > 0 {}
    }

    /// Stops the writes and closes the pipe; must come before the queue is destroyed.
    func close() {
        rd_kafka_queue_io_event_enable(queue, -1, nil, 0)
        Glibc.close(readEnd)
        Glibc.close(writeEnd)
    }
}

/// Waiting on a consumer and a producer together, for a loop that owns both.
public enum KafkaWakeups {
    /// Call before looking at the clients' queues; then `wait` returns as soon as anything
    /// reached either queue since this call.
    public static func arm(_ consumer: KafkaConsumer, _ producer: KafkaProducer) {
        consumer.wakeup.drain()
        producer.wakeup.drain()
    }

    /// Sleeps until the consumer has messages or events, the producer has delivery reports,
    /// or `timeoutMilliseconds` pass.
    public static func wait(_ consumer: KafkaConsumer, _ producer: KafkaProducer, timeoutMilliseconds: Int32) {
        var descriptors = (
            pollfd(fd: consumer.wakeup.readEnd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: producer.wakeup.readEnd, events: Int16(POLLIN), revents: 0))
        _ = withUnsafeMutableBytes(of: &descriptors) { poll($0.baseAddress!.assumingMemoryBound(to: pollfd.self), 2, timeoutMilliseconds) }
    }
}
