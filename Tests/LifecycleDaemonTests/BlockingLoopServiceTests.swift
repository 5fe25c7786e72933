import Foundation
import LifecycleDaemon
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@Suite("Blocking loop as a service")
struct BlockingLoopServiceTests {
    /// What the loop did, seen from the test's task.
    final class Journal: Sendable {
        let steps = Atomic<Int>(0)
        private let stopped = Atomic<Bool>(false)
        var stoppedCleanly: Bool { stopped.load(ordering: .relaxed) }
        func markStopped() { stopped.store(true, ordering: .relaxed) }
    }

    @Test("graceful shutdown raises the stop flag, and the service ends only after the loop's own stop")
    func gracefulShutdownWaitsForTheLoop() async throws {
        let journal = Journal()
        let loop = BlockingLoopService(name: "test-loop") { stop in
            while !stop.isRequested {
                journal.steps.add(1, ordering: .relaxed)
                usleep(1_000)
            }
            usleep(200_000)  // a slow final flush
            journal.markStopped()
        }
        let group = ServiceGroup(services: [loop], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            while journal.steps.load(ordering: .relaxed) < 5 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(!journal.stoppedCleanly)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(journal.stoppedCleanly)
    }

    struct LoopFailed: Error, Equatable {}

    @Test("an error thrown by the loop ends the group with that error")
    func loopErrorsPropagate() async {
        let loop = BlockingLoopService(name: "failing-loop") { _ in throw LoopFailed() }
        let group = ServiceGroup(services: [loop], logger: Logger(label: "test"))
        await #expect(throws: LoopFailed.self) { try await group.run() }
    }
}

extension BlockingLoopServiceTests {
    @Test("a loop that overruns the graceful shutdown deadline is abandoned with an error, not waited on forever")
    func overrunningStopIsAbandoned() async {
        let release = Atomic<Bool>(false)
        let loop = BlockingLoopService(name: "stuck-loop") { _ in
            // Ignores the stop flag, like a flush that hangs; let go at the end of the test.
            while !release.load(ordering: .relaxed) { usleep(1_000) }
        }
        var configuration = ServiceGroupConfiguration(services: [.init(service: loop)], logger: Logger(label: "test"))
        configuration.maximumGracefulShutdownDuration = .milliseconds(100)
        let group = ServiceGroup(configuration: configuration)
        await #expect(throws: BlockingLoopService.Abandoned.self) {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try await Task.sleep(for: .milliseconds(50))
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
        release.store(true, ordering: .relaxed)
    }
}
