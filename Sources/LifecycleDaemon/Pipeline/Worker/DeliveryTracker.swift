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
        /// A changelog record, to the changelog topic numbered `topic`.
        case changelog(topic: Int)
    }

    enum Outcome: Equatable {
        /// A trigger caused by an event, acknowledged this long after the event was consumed.
        case acknowledged(latencyMicroseconds: Int?)
        case changelogAcknowledged(topic: Int)
        case deadLetterLost
        /// Kafka refused a trigger or a changelog record: nothing after it may be committed.
        case lost
    }

    /// Per slot: a trigger's consume time (≥ 0), -1 for a dead letter, -2 - n for changelog topic n.
    private var tags = [Int](repeating: 0, count: capacity)
    private var done = [Bool](repeating: true, count: capacity)
    /// The number the next message gets.
    private(set) var produced = 0
    private(set) var acknowledgedBelow = 0

    /// Messages produced and not yet known to be acknowledged (an upper bound on those in flight).
    var unacknowledged: Int { produced - acknowledgedBelow }
    var isFull: Bool { unacknowledged >= Self.capacity }

    /// Numbers a message about to be produced; the number is its delivery ticket.
    mutating func register(_ kind: Kind) -> Int {
        precondition(!isFull, "more messages in flight than the delivery ring holds")
        let sequence = produced
        let slot = sequence & Self.mask
        switch kind {
        case .trigger(let at): tags[slot] = at
        case .deadLetter: tags[slot] = -1
        case .changelog(let topic): tags[slot] = -2 - topic
        }
        done[slot] = false
        produced += 1
        return sequence
    }

    /// Records a delivery report. A refused trigger or changelog record is never marked done,
    /// so the watermark stops before it for good.
    mutating func complete(_ sequence: Int, failed: Bool, now: Int) -> Outcome {
        let slot = sequence & Self.mask
        let tag = tags[slot]
        if failed && tag != -1 { return .lost }
        done[slot] = true
        while acknowledgedBelow < produced && done[acknowledgedBelow & Self.mask] { acknowledgedBelow += 1 }
        switch tag {
        case -1: return failed ? .deadLetterLost : .acknowledged(latencyMicroseconds: nil)
        case ..<(-1): return .changelogAcknowledged(topic: -2 - tag)
        default: return .acknowledged(latencyMicroseconds: tag > 0 ? now - tag : nil)
        }
    }
}
