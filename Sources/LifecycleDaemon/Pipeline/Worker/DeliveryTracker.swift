import LifecycleKafka

/// Which of a producer's messages Kafka has acknowledged, as one number: every message
/// numbered below `acknowledgedBelow` is acknowledged.
///
/// Messages are numbered in the order they are produced (the number is their delivery
/// ticket), but acknowledgements arrive in any order across topics and partitions. A ring
/// of flags, as long as the most messages ever in flight, moves the watermark forward in
/// amortised O(1) per report. A checkpoint taken after message N may be published once
/// `acknowledgedBelow > N`: every trigger its events caused is then safe in Kafka.
struct DeliveryTracker {
    /// Above librdkafka's default `queue.buffering.max.messages` (100,000): the producer
    /// refuses more in flight long before the ring fills.
    static let capacity = 1 << 17
    private static let mask = capacity - 1

    enum Kind {
        /// A trigger; `consumedAt` is when its event was consumed (monotonic µs), 0 for a timer's.
        case trigger(consumedAt: Int)
        /// A dead letter: losing one is counted, not fatal.
        case deadLetter
    }

    enum Outcome: Equatable {
        /// A trigger caused by an event, acknowledged this long after the event was consumed.
        case acknowledged(latencyMicroseconds: Int?)
        case deadLetterLost
        /// Kafka refused a trigger: nothing after it may be committed.
        case triggerLost
    }

    private var consumedAt = [Int](repeating: 0, count: capacity)
    private var done = [Bool](repeating: true, count: capacity)
    /// The number the next message gets.
    private(set) var produced = 0
    private(set) var acknowledgedBelow = 0

    var isFull: Bool { produced - acknowledgedBelow >= Self.capacity }

    /// Numbers a message about to be produced; the number is its delivery ticket.
    mutating func register(_ kind: Kind) -> Int {
        precondition(!isFull, "more messages in flight than the delivery ring holds")
        let sequence = produced
        let slot = sequence & Self.mask
        switch kind {
        case .trigger(let at): consumedAt[slot] = at
        case .deadLetter: consumedAt[slot] = -1
        }
        done[slot] = false
        produced += 1
        return sequence
    }

    /// Records a delivery report. A refused trigger is never marked done, so the watermark
    /// stops before it for good.
    mutating func complete(_ sequence: Int, failed: Bool, now: Int) -> Outcome {
        let slot = sequence & Self.mask
        let at = consumedAt[slot]
        if failed && at >= 0 { return .triggerLost }
        done[slot] = true
        while acknowledgedBelow < produced && done[acknowledgedBelow & Self.mask] { acknowledgedBelow += 1 }
        if at < 0 { return failed ? .deadLetterLost : .acknowledged(latencyMicroseconds: nil) }
        return .acknowledged(latencyMicroseconds: at > 0 ? now - at : nil)
    }
}
