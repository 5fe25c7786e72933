/// Per-user state as parallel arrays indexed by the interned user index.
///
/// Struct-of-arrays keeps each field contiguous (a user costs the sum of the element
/// sizes, no object headers or pointers) and lets a whole column be written to a checkpoint.
struct UserColumns: Sendable {
    static let never = Int64.min

    let attributeCount: Int
    let triggerCount: Int
    /// Two bits per trigger: condition was true at the last evaluation, goal already converted.
    let flagBytes: Int

    var lastSeen: [Int64] = []
    var stageSince: [Int64] = []
    var stage: [UInt8] = []
    /// Deadline of the user's pending timer entry, `Int64.max` if none.
    var scheduled: [Int64] = []
    var buckets: [BucketStore.Run] = []
    var attributes: [UInt16] = []
    var lastFired: [Int64] = []
    var flags: [UInt8] = []

    init(attributeCount: Int, triggerCount: Int) {
        self.attributeCount = attributeCount
        self.triggerCount = triggerCount
        flagBytes = (triggerCount * 2 + 7) / 8
    }

    /// Sets up a new user at `index` (appending when it is a fresh index).
    mutating func reset(_ index: Int, stage initial: UInt8, at time: Int64) {
        if index == lastSeen.count {
            lastSeen.append(time)
            stageSince.append(time)
            stage.append(initial)
            scheduled.append(.max)
            buckets.append(0)
            attributes.append(contentsOf: repeatElement(0, count: attributeCount))
            lastFired.append(contentsOf: repeatElement(Self.never, count: triggerCount))
            flags.append(contentsOf: repeatElement(0, count: flagBytes))
            return
        }
        lastSeen[index] = time
        stageSince[index] = time
        stage[index] = initial
        scheduled[index] = .max
        buckets[index] = 0
        for i in 0..<attributeCount { attributes[index * attributeCount + i] = 0 }
        for i in 0..<triggerCount { lastFired[index * triggerCount + i] = Self.never }
        for i in 0..<flagBytes { flags[index * flagBytes + i] = 0 }
    }

    @inline(__always) func flag(_ user: Int, _ bit: Int) -> Bool {
        flags[user * flagBytes + (bit >> 3)] & (1 << UInt8(bit & 7)) != 0
    }

    @inline(__always) mutating func setFlag(_ user: Int, _ bit: Int, _ value: Bool) {
        let index = user * flagBytes + (bit >> 3)
        let mask: UInt8 = 1 << UInt8(bit & 7)
        flags[index] = value ? flags[index] | mask : flags[index] & ~mask
    }

    @inline(__always) static func conditionBit(_ trigger: Int) -> Int { trigger * 2 }
    @inline(__always) static func convertedBit(_ trigger: Int) -> Int { trigger * 2 + 1 }

    var allocatedBytes: Int {
        (lastSeen.capacity + stageSince.capacity + scheduled.capacity + buckets.capacity + lastFired.capacity) * 8
            + stage.capacity + attributes.capacity * 2 + flags.capacity
    }
}

extension UserColumns {
    func write(to writer: inout SnapshotWriter) {
        writer.write(lastSeen)
        writer.write(stageSince)
        writer.write(stage)
        writer.write(scheduled)
        writer.write(buckets)
        writer.write(attributes)
        writer.write(lastFired)
        writer.write(flags)
    }

    init(from reader: inout SnapshotReader, attributeCount: Int, triggerCount: Int) throws(SnapshotError) {
        self.init(attributeCount: attributeCount, triggerCount: triggerCount)
        lastSeen = try reader.readArray(Int64.self, "last seen")
        stageSince = try reader.readArray(Int64.self, "stage since")
        stage = try reader.readArray(UInt8.self, "stage")
        scheduled = try reader.readArray(Int64.self, "timers")
        buckets = try reader.readArray(UInt64.self, "bucket runs")
        attributes = try reader.readArray(UInt16.self, "attributes")
        lastFired = try reader.readArray(Int64.self, "last fired")
        flags = try reader.readArray(UInt8.self, "trigger flags")
        let users = lastSeen.count
        guard [stageSince.count, stage.count, scheduled.count, buckets.count].allSatisfy({ $0 == users }),
              attributes.count == users * attributeCount, lastFired.count == users * triggerCount,
              flags.count == users * flagBytes
        else { throw SnapshotError("user columns have different lengths") }
    }
}
