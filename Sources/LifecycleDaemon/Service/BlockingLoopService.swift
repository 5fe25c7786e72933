import Foundation
import ServiceLifecycle

/// A loop that blocks (in librdkafka calls, in `poll`) run as a `Service` on a thread of its
/// own, so it never occupies the cooperative pool and its Kafka handles have one owner.
///
/// Graceful shutdown and cancellation both raise the loop's stop flag; the service finishes
/// when the loop has done its own stop (flush, checkpoint, commit), never by abandoning it.
/// The group's `maximumGracefulShutdownDuration` is what bounds a stop that hangs.
public struct BlockingLoopService: Service, CustomStringConvertible {
    public let description: String
    private let loop: @Sendable (SignalFlag) throws -> Void

    /// - Parameters:
    ///   - name: the thread's name (shown by `top -H`, in logs and in the group's errors).
    ///   - loop: runs until the flag is requested, then stops cleanly and returns.
    public init(name: String, loop: @escaping @Sendable (SignalFlag) throws -> Void) {
        description = name
        self.loop = loop
    }

    public func run() async throws {
        let stop = SignalFlag()
        let loop = self.loop
        let name = description
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (finished: CheckedContinuation<Void, any Error>) in
                let thread = Thread {
                    // Named from inside: on Linux, naming a thread not yet started does not stick.
                    Thread.current.name = name
                    do {
                        try loop(stop)
                        finished.resume()
                    } catch {
                        finished.resume(throwing: error)
                    }
                }
                thread.start()
            }
        } onCancelOrGracefulShutdown: {
            stop.request()
        }
    }
}
