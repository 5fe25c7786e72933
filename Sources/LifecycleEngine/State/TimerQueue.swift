/// A binary min-heap of (deadline, user) wake-ups, ordered by deadline then user index so
/// that users due at the same instant are processed in a deterministic order.
///
/// Entries are never removed in place: the engine keeps each user's scheduled deadline and
/// ignores entries that no longer match it, which makes rescheduling O(log n) and avoids
/// scanning users to find who is due.
struct TimerQueue: Sendable {
    /// 12 bytes: the deadline in two halves keeps the entry 4-byte aligned (an `Int64`
    /// field would pad it to 16), and a partition has one entry per user with a timer.
    struct Entry: Sendable {
        private var deadlineLow: UInt32
        private var deadlineHigh: UInt32
        var user: UInt32

        init(deadline: Int64, user: UInt32) {
            let bits = UInt64(bitPattern: deadline)
            deadlineLow = UInt32(truncatingIfNeeded: bits)
            deadlineHigh = UInt32(truncatingIfNeeded: bits >> 32)
            self.user = user
        }

        var deadline: Int64 { Int64(bitPattern: UInt64(deadlineHigh) << 32 | UInt64(deadlineLow)) }

        @inline(__always) func precedes(_ other: Entry) -> Bool {
            let (mine, theirs) = (deadline, other.deadline)
            return mine < theirs || (mine == theirs && user < other.user)
        }
    }

    private var heap: [Entry] = []

    var count: Int { heap.count }
    var first: Entry? { heap.first }
    var allocatedBytes: Int { heap.capacity * MemoryLayout<Entry>.stride }

    // Both sifts move entries into a hole instead of swapping pairs, and work on the heap's
    // buffer: each step is then a load and a store, with no bounds or uniqueness checks. The
    // heap ends up exactly as with swaps (a snapshot writes it as it is).

    mutating func push(_ entry: Entry) {
        heap.append(entry)
        heap.withUnsafeMutableBufferPointer { heap in
            var hole = heap.count - 1
            while hole > 0 {
                let parent = (hole - 1) / 2
                guard entry.precedes(heap[parent]) else { break }
                heap[hole] = heap[parent]
                hole = parent
            }
            heap[hole] = entry
        }
    }

    mutating func popFirst() -> Entry? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        heap.withUnsafeMutableBufferPointer { heap in
            guard !heap.isEmpty else { return }
            var hole = 0
            while true {
                let left = 2 * hole + 1
                guard left < heap.count else { break }
                let right = left + 1
                let child = right < heap.count && heap[right].precedes(heap[left]) ? right : left
                guard heap[child].precedes(last) else { break }
                heap[hole] = heap[child]
                hole = child
            }
            heap[hole] = last
        }
        return top
    }
}

extension TimerQueue {
    /// Deadlines and users as two arrays, independent of the entry's in-memory layout.
    func write(to writer: inout SnapshotWriter) {
        writer.write(heap.map(\.deadline))
        writer.write(heap.map(\.user))
    }

    init(from reader: inout SnapshotReader) throws(SnapshotError) {
        let deadlines = try reader.readArray(Int64.self, "timer deadlines")
        let users = try reader.readArray(UInt32.self, "timer users")
        guard deadlines.count == users.count else { throw SnapshotError("timer heap: \(deadlines.count) deadlines for \(users.count) users") }
        heap.reserveCapacity(SnapshotReader.capacityToGrow(holding: deadlines.count))
        heap.append(contentsOf: zip(deadlines, users).lazy.map { Entry(deadline: $0, user: $1) })
        for child in heap.indices.dropFirst() where heap[child].precedes(heap[(child - 1) / 2]) {
            throw SnapshotError("timer heap out of order")
        }
    }

    /// Empties the queue (timers are rebuilt from user state).
    mutating func removeAll() { heap.removeAll() }
}
