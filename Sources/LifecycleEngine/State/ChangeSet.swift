/// Which users changed since the changelog last took them, and which were erased: what the
/// next changelog records must carry. One bit per user index, plus the list of indices
/// marked, so taking the changes costs what changed, not every user.
struct ChangeSet: Sendable {
    private var marked: [UInt64] = []
    private(set) var changed: [UInt32] = []
    /// Ids of users erased since, in order.
    private(set) var erased: [[UInt8]] = []

    @inline(__always) mutating func mark(_ user: Int) {
        let word = user >> 6
        if word >= marked.count { marked.append(contentsOf: repeatElement(0, count: word - marked.count + 1)) }
        let bit: UInt64 = 1 << UInt64(user & 63)
        guard marked[word] & bit == 0 else { return }
        marked[word] |= bit
        changed.append(UInt32(user))
    }

    func isMarked(_ user: Int) -> Bool {
        let word = user >> 6
        return word < marked.count && marked[word] & (1 << UInt64(user & 63)) != 0
    }

    mutating func unmark(_ user: Int) {
        if isMarked(user) { marked[user >> 6] &= ~(1 << UInt64(user & 63)) }
    }

    /// The user at `index` is gone (its index may be reused): it leaves a tombstone instead.
    mutating func erase(_ user: Int, id: [UInt8]) {
        unmark(user)
        erased.append(id)
    }

    mutating func removeAll() {
        for user in changed { marked[Int(user) >> 6] = 0 }
        changed.removeAll(keepingCapacity: true)
        erased.removeAll()
    }
}
