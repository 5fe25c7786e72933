@testable import LifecycleDaemon
import LifecycleKafka
import Testing

/// The coordinator's decisions, without a broker or threads: inputs in, actions out.
@Suite("Coordinator state machine")
struct CoordinatorStateMachineTests {
    static let p0 = TopicPartition(topic: "events", partition: 0)
    static let p1 = TopicPartition(topic: "events", partition: 1)
    static let p2 = TopicPartition(topic: "events", partition: 2)
    static let p3 = TopicPartition(topic: "events", partition: 3)

    typealias Machine = CoordinatorStateMachine

    /// Two workers, 30 s for final checkpoints; p0..p3 assigned at t=0 and restored.
    func running(checkpointInterval: Int64 = 10_000) -> Machine {
        var machine = Machine(workers: 2, checkpointInterval: checkpointInterval, releaseTimeout: 30_000, now: 0)
        _ = machine.handle(.assigned([Self.p0, Self.p1, Self.p2, Self.p3]), now: 0)
        for partition in [Self.p0, Self.p1, Self.p2, Self.p3] { _ = machine.handle(.restored(partition), now: 0) }
        return machine
    }

    @Test("assigned partitions are spread evenly over the workers and restored before they are handed over")
    func assignment() {
        var machine = Machine(workers: 2, checkpointInterval: 10_000, releaseTimeout: 30_000, now: 0)
        let actions = machine.handle(.assigned([Self.p2, Self.p0, Self.p1]), now: 0)
        #expect(actions == [.restore(Self.p0, worker: 0), .restore(Self.p1, worker: 1), .restore(Self.p2, worker: 0)])
        #expect(machine.handle(.restored(Self.p1), now: 5) == [.activate(Self.p1, worker: 1)])
        #expect(machine.partitions(in: .restoring) == [Self.p0, Self.p2])
        // A restore of a partition that is not (or no longer) ours is dropped.
        #expect(machine.handle(.restored(Self.p3), now: 5) == [.discard(Self.p3)])
    }

    @Test("a commit cycle asks each busy worker for checkpoints; published ones are committed, never backwards")
    func commitCycle() {
        var machine = running()
        #expect(machine.handle(.tick, now: 9_999).isEmpty)
        #expect(machine.handle(.tick, now: 10_000) == [.checkpoint(worker: 0), .checkpoint(worker: 1)])
        #expect(machine.handle(.tick, now: 10_001).isEmpty, "one cycle per interval")
        #expect(machine.handle(.checkpointed(Self.p0, nextOffset: 40), now: 10_100) == [.commit([Self.p0: 40], synchronous: false)])
        #expect(machine.handle(.checkpointed(Self.p0, nextOffset: 40), now: 10_200).isEmpty, "nothing new")
        #expect(machine.handle(.checkpointed(Self.p0, nextOffset: 35), now: 10_300).isEmpty, "never backwards")
    }

    @Test("assign during a commit cycle: the new partition joins the next cycle, and nothing of it is committed before its own checkpoint")
    func assignDuringCycle() {
        var machine = Machine(workers: 2, checkpointInterval: 10_000, releaseTimeout: 30_000, now: 0)
        _ = machine.handle(.assigned([Self.p0]), now: 0)
        _ = machine.handle(.restored(Self.p0), now: 0)
        #expect(machine.handle(.tick, now: 10_000) == [.checkpoint(worker: 0)])
        // The cycle is under way (p0's checkpoint not yet published) when p1 arrives.
        #expect(machine.handle(.assigned([Self.p1]), now: 10_050) == [.restore(Self.p1, worker: 1)])
        #expect(machine.handle(.checkpointed(Self.p1, nextOffset: 7), now: 10_060).isEmpty, "a restoring partition commits nothing")
        #expect(machine.handle(.checkpointed(Self.p0, nextOffset: 100), now: 10_100) == [.commit([Self.p0: 100], synchronous: false)])
        #expect(machine.handle(.restored(Self.p1), now: 10_200) == [.activate(Self.p1, worker: 1)])
        #expect(machine.handle(.tick, now: 20_000) == [.checkpoint(worker: 0), .checkpoint(worker: 1)])
        #expect(machine.handle(.checkpointed(Self.p1, nextOffset: 9), now: 20_100) == [.commit([Self.p1: 9], synchronous: false)])
    }

    @Test("revoke with triggers unacknowledged: the revocation waits for the final checkpoints, then leaves with the older ones")
    func revokeUnacknowledged() {
        var machine = running(checkpointInterval: 100_000)
        let actions = machine.handle(.revoked([Self.p0, Self.p1]), now: 1_000)
        #expect(actions == [.release([Self.p0], worker: 0), .release([Self.p1], worker: 1)])
        #expect(machine.isRevoking)
        // p1's final checkpoint is published (its triggers acknowledged): committed at once.
        #expect(machine.handle(.checkpointed(Self.p1, nextOffset: 12), now: 2_000) == [.commit([Self.p1: 12], synchronous: true)])
        #expect(machine.handle(.released(Self.p1), now: 2_000).isEmpty, "p0 still pending")
        // p0's triggers are never acknowledged: at the deadline its checkpoint is dropped.
        #expect(machine.handle(.tick, now: 30_999).isEmpty)
        #expect(machine.handle(.tick, now: 31_000) == [.abandon([Self.p0])])
        #expect(machine.isRevoking, "until the writer has dropped it")
        #expect(machine.handle(.checkpointed(Self.p0, nextOffset: 50), now: 31_001) == [.commit([Self.p0: 50], synchronous: true)],
                "one published just before the drop still counts")
        #expect(machine.handle(.released(Self.p0), now: 31_002) == [.revocationComplete([Self.p0, Self.p1])])
        #expect(!machine.isRevoking)
        #expect(machine.abandoned == [Self.p0])
        #expect(machine.handle(.checkpointed(Self.p0, nextOffset: 60), now: 31_003).isEmpty, "no longer ours: never committed")
        #expect(Set(machine.partitions.keys) == [Self.p2, Self.p3])
    }

    @Test("a revoked partition that is still restoring is dropped at once; its restore is discarded when it finishes")
    func revokeDuringRestore() {
        var machine = Machine(workers: 1, checkpointInterval: 10_000, releaseTimeout: 30_000, now: 0)
        _ = machine.handle(.assigned([Self.p0]), now: 0)
        #expect(machine.handle(.revoked([Self.p0]), now: 10) == [.revocationComplete([Self.p0])])
        #expect(machine.handle(.restored(Self.p0), now: 20) == [.discard(Self.p0)])
    }

    @Test("stop during restore: restoring partitions are dropped (nothing consumed), active ones released; then the group is left, and the revocation that causes saves nothing twice")
    func stopDuringRestore() {
        var machine = Machine(workers: 2, checkpointInterval: 10_000, releaseTimeout: 30_000, now: 0)
        _ = machine.handle(.assigned([Self.p0, Self.p1]), now: 0)
        _ = machine.handle(.restored(Self.p0), now: 0)
        #expect(machine.handle(.stop, now: 100) == [.release([Self.p0], worker: 0)])
        #expect(machine.handle(.tick, now: 10_000).isEmpty, "no commit cycle while stopping")
        #expect(machine.handle(.restored(Self.p1), now: 200) == [.discard(Self.p1)])
        #expect(machine.handle(.checkpointed(Self.p0, nextOffset: 3), now: 300) == [.commit([Self.p0: 3], synchronous: true)])
        #expect(machine.handle(.released(Self.p0), now: 300) == [.leaveGroup])
        #expect(machine.leftGroup)
        // Leaving the group revokes what the group still thinks is ours: nothing left to save.
        #expect(machine.handle(.revoked([Self.p0, Self.p1]), now: 400) == [.revocationComplete([Self.p0, Self.p1])])
        #expect(machine.abandoned.isEmpty)
    }

    @Test("acknowledgement timeout on stop: partitions still waiting are abandoned at the deadline and the stop completes")
    func stopAcknowledgementTimeout() {
        var machine = running()
        #expect(machine.handle(.stop, now: 0) == [.release([Self.p0, Self.p2], worker: 0), .release([Self.p1, Self.p3], worker: 1)])
        for partition in [Self.p0, Self.p1, Self.p2] { _ = machine.handle(.released(partition), now: 1_000) }
        #expect(!machine.leftGroup)
        #expect(machine.handle(.tick, now: 29_999).isEmpty)
        #expect(machine.handle(.tick, now: 30_000) == [.abandon([Self.p3])])
        #expect(machine.handle(.released(Self.p3), now: 30_001) == [.leaveGroup])
        #expect(machine.abandoned == [Self.p3])
    }

    @Test("a stop with nothing assigned leaves the group at once")
    func stopIdle() {
        var machine = Machine(workers: 4, checkpointInterval: 10_000, releaseTimeout: 30_000, now: 0)
        #expect(machine.handle(.stop, now: 0) == [.leaveGroup])
    }
}
