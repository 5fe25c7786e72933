import LifecycleKafka
import Testing

@testable import LifecycleDaemon

@Suite("A SIGHUP during a restore")
struct PendingReloadTests {
    let restoring = [TopicPartition(topic: "user-events", partition: 3)]

    @Test("waits for the restore, says so once, then reloads once; a second SIGHUP meanwhile is the same reload")
    func waitsForRestore() {
        var pending = PendingReload()
        #expect(pending.next(requested: false, restoring: restoring) == .none)
        #expect(pending.next(requested: true, restoring: restoring) == .wait(restoring))
        #expect(pending.next(requested: false, restoring: restoring) == .none)
        #expect(pending.next(requested: true, restoring: restoring) == .none)
        #expect(pending.next(requested: false, restoring: []) == .reload)
        #expect(pending.next(requested: false, restoring: []) == .none)
    }

    @Test("with nothing restoring, each SIGHUP reloads at once; a later wait is announced again")
    func reloadsAtOnce() {
        var pending = PendingReload()
        #expect(pending.next(requested: true, restoring: []) == .reload)
        #expect(pending.next(requested: true, restoring: []) == .reload)
        #expect(pending.next(requested: true, restoring: restoring) == .wait(restoring))
        #expect(pending.next(requested: false, restoring: []) == .reload)
        #expect(pending.next(requested: true, restoring: restoring) == .wait(restoring))
    }
}
