@testable import LifecycleDaemon
import Testing

@Suite("Delivery tracker")
struct DeliveryTrackerTests {
    @Test("the watermark passes only what every earlier message has: acknowledgements out of order")
    func outOfOrder() {
        var tracker = DeliveryTracker()
        let first = tracker.register(.trigger(consumedAt: 1_000))
        let second = tracker.register(.trigger(consumedAt: 0))
        let third = tracker.register(.deadLetter)
        #expect((first, second, third) == (0, 1, 2))
        #expect(tracker.complete(third, failed: false, now: 5_000) == .acknowledged(latencyMicroseconds: nil))
        #expect(tracker.complete(second, failed: false, now: 5_000) == .acknowledged(latencyMicroseconds: nil), "a timer's trigger has no event to time")
        #expect(tracker.acknowledgedBelow == 0, "the first is still in flight")
        #expect(tracker.complete(first, failed: false, now: 5_000) == .acknowledged(latencyMicroseconds: 4_000))
        #expect(tracker.acknowledgedBelow == 3)
    }

    @Test("a refused trigger stops the watermark for good; a lost dead letter does not")
    func failures() {
        var tracker = DeliveryTracker()
        let letter = tracker.register(.deadLetter)
        let trigger = tracker.register(.trigger(consumedAt: 10))
        let later = tracker.register(.trigger(consumedAt: 20))
        #expect(tracker.complete(letter, failed: true, now: 30) == .deadLetterLost)
        #expect(tracker.acknowledgedBelow == 1)
        #expect(tracker.complete(trigger, failed: true, now: 30) == .lost)
        #expect(tracker.complete(later, failed: false, now: 30) == .acknowledged(latencyMicroseconds: 10))
        #expect(tracker.acknowledgedBelow == 1, "nothing after a lost trigger may count as safe")
    }

    @Test("changelog records count like triggers, say which changelog they went to, and a refused one is fatal too")
    func changelog() {
        var tracker = DeliveryTracker()
        let first = tracker.register(.changelog(topic: 0))
        let second = tracker.register(.changelog(topic: 3))
        #expect(tracker.complete(second, failed: false, now: 1) == .changelogAcknowledged(topic: 3))
        #expect(tracker.acknowledgedBelow == 0)
        #expect(tracker.complete(first, failed: true, now: 1) == .lost)
        #expect(tracker.acknowledgedBelow == 0)
    }

    @Test("the ring wraps around: numbers keep growing while slots are reused")
    func wraps() {
        var tracker = DeliveryTracker()
        for _ in 0..<(3 * DeliveryTracker.capacity) {
            let number = tracker.register(.trigger(consumedAt: 1))
            #expect(!tracker.isFull)
            _ = tracker.complete(number, failed: false, now: 2)
        }
        #expect(tracker.acknowledgedBelow == 3 * DeliveryTracker.capacity)
        for _ in 0..<DeliveryTracker.capacity { _ = tracker.register(.deadLetter) }
        #expect(tracker.isFull)
    }
}
