import Foundation
import ServiceLifecycle
import Synchronization

/// A loop that blocks (in librdkafka calls, in `poll`) run as a `Service` on a thread of its
/// own, so it never occupies the cooperative pool and its Kafka handles have one owner.
///
/// Graceful shutdown raises the loop's stop flag, and the service finishes when the loop has
/// done its own stop (flush, checkpoint, commit). Only cancellation — the group's
/// `maximumGracefulShutdownDuration` passing — makes it stop waiting: it then throws
/// `Abandoned` and leaves the thread to die with the process. Nothing is lost that way: a
/// stop that did not finish committed nothing, so a restart resumes from the last checkpoint.
public struct BlockingLoopService: Service, CustomStringConvertible {
    public struct Abandoned: Error, CustomStringConvertible {
        public let name: String
        public var description: String {
            "\(name) did not finish stopping in time; its state stays at the last checkpoint"
        }
    }

    public let description: String
    private let loop: @Sendable (SignalFlag) throws -> Void

    /// - Parameters:
    ///   - name: the thread's name (its first 15 bytes, shown by `top -H`) and the service's.
    ///   - loop: runs until the flag is requested, then stops cleanly and returns.
    public init(name: String, loop: @escaping @Sendable (SignalFlag) throws -> Void) {
        description = name
        self.loop = loop
    }

    public func run() async throws {
        let stop = SignalFlag()
        let waiter = Waiter()
        let loop = self.loop
        let name = description
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (finished: CheckedContinuation<Void, any Error>) in
                    guard waiter.wait(with: finished) else {
                        return finished.resume(throwing: Abandoned(name: name))
                    }
                    let thread = Thread {
                        // Named from inside (naming a thread not yet started does not stick on Linux),
                        // and to 15 bytes: Linux refuses a longer name whole.
                        Thread.current.name = String(decoding: name.utf8.prefix(15), as: UTF8.self)
                        do {
                            try loop(stop)
                            waiter.finish(.success(()))
                        } catch {
                            waiter.finish(.failure(error))
                        }
                    }
                    thread.start()
                }
            } onCancel: {
                stop.request()
                waiter.finish(.failure(Abandoned(name: name)))
            }
        } onGracefulShutdown: {
            stop.request()
        }
    }

    /// Resumes the waiting task exactly once: with the loop's outcome or, if cancelled first,
    /// with `Abandoned`.
    private final class Waiter: Sendable {
        private enum State {
            case idle
            case waiting(CheckedContinuation<Void, any Error>)
            case finished
        }

        private let state = Mutex(State.idle)

        /// False if the task was cancelled before the loop could start.
        func wait(with continuation: CheckedContinuation<Void, any Error>) -> Bool {
            state.withLock { state in
                guard case .idle = state else { return false }
                state = .waiting(continuation)
                return true
            }
        }

        func finish(_ outcome: Result<Void, any Error>) {
            let continuation: CheckedContinuation<Void, any Error>? = state.withLock { state in
                defer { state = .finished }
                if case .waiting(let continuation) = state { return continuation }
                return nil
            }
            continuation?.resume(with: outcome)
        }
    }
}
