/// The changelog: each user's whole state as one small record that any instance running the
/// same rules can read (attribute values as text, not this engine's interned ids), so a
/// partition's state can move between instances through a compacted Kafka topic.
///
/// A commit cycle writes a record per user changed since the last cycle, a tombstone per user
/// erased, then a position record (the input offset the state reflects, stream time). Records
/// are whole states, not deltas: applying one twice, or an older one before a newer one,
/// leaves the newer state. Restoring applies records in log order.
///
/// User record (little-endian): format, stage, last seen, stage entry time, pending timer,
/// condition and goal flags, the triggers' last firings (those that ever fired), attribute
/// values as text, and the window buckets as (counter, bucket number, value).
extension PartitionEngine {
    static let changelogFormat: UInt8 = 1
    /// The key of position records: longer than any user id can be (255 bytes), so it never
    /// collides with one, and kept by compaction like any key (the last one wins).
    public static let changelogPositionKey: [UInt8] = Array(("lifecycled:position:" + String(repeating: "-", count: 236)).utf8)

    /// Whether `key` is a position record's.
    public static func isChangelogPosition(_ key: UnsafeRawBufferPointer) -> Bool {
        key.count == changelogPositionKey.count && key.elementsEqual(changelogPositionKey)
    }
    static let positionMagic: UInt32 = 0x4C43_5053  // "SPCL"

    /// From now on, note which users change, for `beginChangelogCut`.
    public mutating func trackChanges() {
        if changes == nil { changes = ChangeSet() }
    }

    /// Users changed or erased since the last `beginChangelogCut`.
    public var pendingChanges: Int { (changes?.changed.count ?? 0) + (changes?.erased.count ?? 0) }

    /// Marks every user as changed: after a rules reload re-timed every timer, the next
    /// `beginChangelogCut` rewrites the whole partition.
    public mutating func markAllChanged() {
        guard changes != nil else { return }
        for user in 0..<users.count where ids.isLive(UInt32(user)) { changes!.mark(user) }
    }

    /// Marks a user as changed (if known), so the next `beginChangelogCut` writes their record again.
    public mutating func markChanged(userID key: UnsafeRawBufferPointer) {
        if let user = ids.find(key) { changes?.mark(Int(user)) }
    }

    /// Cuts this commit cycle's changelog: the users changed or erased since the last cut, as
    /// they are now, closed by a position record naming `nextOffset` (the input offset the
    /// state reflects). `continueChangelogCut` writes the records a slice at a time while
    /// events go on changing users; a user about to change whose record is still unwritten
    /// has it encoded first, so every record is the user's state at the cut.
    public mutating func beginChangelogCut(nextOffset: Int64) {
        precondition(cut == nil, "the last changelog cut is still being written")
        guard let taken = changes else { return }
        cut = ChangelogCut(users: taken, position: changelogPosition(nextOffset: nextOffset))
        changes = ChangeSet()
    }

    /// Whether a cut's records are still being written.
    public var isCuttingChangelog: Bool { cut != nil }

    /// Hands over up to `maxRecords` of the cut's records (key: the user id; nil value: a
    /// tombstone), tombstones first, and at the end the position record. Returns true once
    /// the position record has been handed over (or there was no cut).
    public mutating func continueChangelogCut(
        maxRecords: Int, _ emit: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer?) throws -> Void
    ) rethrows -> Bool {
        guard var writing = cut else { return true }
        // Taken out while writing, so that encoding can read the engine; put back unless done.
        cut = nil
        defer { if writing.position != nil { cut = writing } }
        var written = 0
        while writing.tombstonesWritten < writing.users.erased.count, written < maxRecords {
            try writing.users.erased[writing.tombstonesWritten].withUnsafeBytes { try emit($0, nil) }
            writing.tombstonesWritten += 1
            written += 1
        }
        written += try writing.writeKept(limit: maxRecords - written, emit)
        var key: [UInt8] = []
        var value: [UInt8] = []
        while written < maxRecords, writing.nextUser < writing.users.changed.count {
            let user = writing.users.changed[writing.nextUser]
            writing.nextUser += 1
            guard writing.users.isMarked(Int(user)), ids.isLive(user) else { continue }
            encodeRecord(Int(user), key: &key, value: &value)
            try key.withUnsafeBytes { key in try value.withUnsafeBytes { try emit(key, $0) } }
            written += 1
        }
        guard written < maxRecords, let position = writing.position else { return false }
        try Self.changelogPositionKey.withUnsafeBytes { key in try position.withUnsafeBytes { try emit(key, $0) } }
        writing.position = nil
        return true
    }

    /// Before `user` changes: if the cut being written still owes their record, encodes it now.
    @inline(__always) mutating func keepForCut(_ user: Int) {
        if cut?.users.isMarked(user) == true { keepRecord(user) }
    }

    private mutating func keepRecord(_ user: Int) {
        var key: [UInt8] = []
        var value: [UInt8] = []
        encodeRecord(user, key: &key, value: &value)
        cut!.keep(key: key, value: value)
        cut!.users.unmark(user)
    }

    private func encodeRecord(_ user: Int, key: inout [UInt8], value: inout [UInt8]) {
        key.removeAll(keepingCapacity: true)
        ids.withKey(UInt32(user)) { key.append(contentsOf: $0) }
        value.removeAll(keepingCapacity: true)
        encodeUser(user, into: &value)
    }

    /// The position record closing a commit cycle's cut: the rules it was written under, the input
    /// offset the state reflects, stream and event time, and the partition's per-arm totals
    /// of firings and conversions (which move with it, like its users).
    func changelogPosition(nextOffset: Int64) -> [UInt8] {
        var writer = SnapshotWriter()
        writer.write(Self.positionMagic)
        writer.write(Self.changelogFormat)
        writer.write(Self.signatureHash(rules))
        writer.write(nextOffset)
        writer.write(streamTime)
        writer.write(eventTime)
        writer.write(UInt32(armTotals.count))
        for totals in armTotals {
            for arm in Arm.allCases {
                writer.write(Int64(totals[arm].fired))
                writer.write(Int64(totals[arm].converted))
            }
        }
        writer.write(rules.configVersion)
        return writer.finish()
    }

    /// Applies a position record: stream and event time move to it, the per-arm totals become
    /// its. Returns the input offset it names. Throws if it was written under rules of
    /// another shape.
    @discardableResult
    public mutating func apply(changelogPosition bytes: UnsafeRawBufferPointer) throws(SnapshotError) -> Int64 {
        var reader = try positionReader(bytes)
        let nextOffset = try reader.read(Int64.self)
        streamTime = max(streamTime, try reader.read(Int64.self))
        eventTime = max(eventTime, try reader.read(Int64.self))
        guard Int(try reader.read(UInt32.self)) == armTotals.count else { throw SnapshotError("changelog position with totals of another trigger count") }
        for trigger in armTotals.indices {
            for arm in Arm.allCases {
                armTotals[trigger][arm] = ArmCount(fired: Int(try reader.read(Int64.self)), converted: Int(try reader.read(Int64.self)))
            }
        }
        return nextOffset
    }

    /// Checks that a position record is one, in this build's format, written under rules of
    /// this shape: before the cycle it closes is applied, so records of other rules are
    /// reported as such rather than as damaged.
    public func checkChangelogPosition(_ bytes: UnsafeRawBufferPointer) throws(SnapshotError) {
        _ = try positionReader(bytes)
    }

    /// A reader past the position record's header, which it checks.
    private func positionReader(_ bytes: UnsafeRawBufferPointer) throws(SnapshotError) -> RecordReader {
        var reader = RecordReader(bytes)
        guard try reader.read(UInt32.self) == Self.positionMagic else { throw SnapshotError("not a changelog position record") }
        let format = try reader.read(UInt8.self)
        guard format == Self.changelogFormat else {
            throw SnapshotError("changelog format \(format); this build reads format \(Self.changelogFormat)")
        }
        guard try reader.read(UInt64.self) == Self.signatureHash(rules) else {
            throw SnapshotError("changelog written under different rules (counters, attributes, stages or triggers changed)")
        }
        return reader
    }

    /// Applies a user's record (their whole state replaces what is known of them) or, with a
    /// nil value, erases them.
    public mutating func apply(changelogKey key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer?) throws(SnapshotError) {
        guard !key.isEmpty, key.count <= ByteInterner.maxKeyLength else { throw SnapshotError("changelog record with a user id of \(key.count) bytes") }
        guard let value else {
            if let user = ids.find(key) { erase(Int(user)) }
            return
        }
        var reader = RecordReader(value)
        let format = try reader.read(UInt8.self)
        guard format == Self.changelogFormat else {
            throw SnapshotError("changelog format \(format); this build reads format \(Self.changelogFormat)")
        }
        let stage = try reader.read(UInt8.self)
        guard Int(stage) < rules.stageNames.count else { throw SnapshotError("changelog record with stage \(stage) of \(rules.stageNames.count)") }
        let (index, inserted) = ids.intern(key)
        let user = Int(index)
        if inserted {
            users.reset(user, stage: stage, at: 0)
        } else {
            usersPerStage[Int(users[stage: user])] -= 1
            buckets.clear(&users[run: user])
            users.reset(user, stage: stage, at: 0)
        }
        usersPerStage[Int(stage)] += 1
        users[user, .lastSeen] = try reader.read(Int64.self)
        users[user, .stageSince] = try reader.read(Int64.self)
        let scheduled = try reader.read(Int64.self)
        let flags = try reader.bytes(count: (rules.triggers.count * 2 + 7) / 8)
        for bit in 0..<(rules.triggers.count * 2) where flags[bit >> 3] & (1 << UInt8(bit & 7)) != 0 { users.setFlag(user, bit, true) }
        for _ in 0..<Int(try reader.read(UInt8.self)) {
            let trigger = Int(try reader.read(UInt8.self))
            guard trigger < rules.triggers.count else { throw SnapshotError("changelog record with trigger \(trigger) of \(rules.triggers.count)") }
            buckets.setFiring(&users[run: user], trigger: trigger, time: try reader.read(Int64.self))
        }
        for attribute in rules.attributes.indices {
            let text = try reader.bytes(count: Int(try reader.read(UInt8.self)))
            // A value this engine cannot hold (too many distinct ones) keeps the default.
            users[attribute: user, attribute] = internAttribute(attribute, text) ?? 0
        }
        // The record's buckets are the user's whole run: a first pass finds the minute the
        // oldest starts in, so each can be checked to fit the layout under it before it is added.
        let entries = Int(try reader.read(UInt16.self))
        var scan = reader
        var oldest = UInt32.max
        for _ in 0..<entries {
            let (counter, bucket) = try readBucket(&scan)
            _ = try scan.read(UInt32.self)
            oldest = min(oldest, buckets.startMinute(of: bucket, counter: counter))
        }
        for _ in 0..<entries {
            let (counter, bucket) = try readBucket(&reader)
            let count = try reader.read(UInt32.self)
            guard buckets.fits(bucket, counter: counter, under: oldest) else {
                throw SnapshotError("changelog record with buckets of counter \(counter) further apart than the rules' windows")
            }
            buckets.add(to: &users[run: user], counter: counter, bucket: bucket) { _ in count }
        }
        guard reader.isAtEnd else { throw SnapshotError("changelog record with unexpected bytes at its end") }
        users[user, .scheduled] = scheduled
        if scheduled != .max { timers.push(.init(deadline: scheduled, user: index)) }
    }

    /// A bucket entry's counter and number (its value is left to read), checked against the rules.
    private func readBucket(_ reader: inout RecordReader) throws(SnapshotError) -> (counter: Int, bucket: Int64) {
        let counter = Int(try reader.read(UInt8.self))
        let bucket = Int64(try reader.read(UInt32.self))
        guard counter < rules.counters.count, bucket <= BucketStore.maxBucketNumber else {
            throw SnapshotError("changelog record with bucket \(bucket) of counter \(counter)")
        }
        return (counter, bucket)
    }

    private func encodeUser(_ user: Int, into out: inout [UInt8]) {
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        put(Self.changelogFormat)
        put(users[stage: user])
        put(users[user, .lastSeen])
        put(users[user, .stageSince])
        put(users[user, .scheduled])
        // Built in place: the cut encodes every changed user on a processing thread, so no
        // temporary arrays per user.
        let flagBits = rules.triggers.count * 2
        for byte in 0..<((flagBits + 7) / 8) {
            var bits: UInt8 = 0
            for bit in (byte * 8)..<min(byte * 8 + 8, flagBits) where users.flag(user, bit) { bits |= 1 << UInt8(bit & 7) }
            out.append(bits)
        }
        var fired: UInt8 = 0
        buckets.forEachFiring(users[run: user]) { _, _ in fired += 1 }
        put(fired)
        buckets.forEachFiring(users[run: user]) { trigger, time in
            put(UInt8(trigger))
            put(time)
        }
        for attribute in rules.attributes.indices {
            attributeValues[attribute].withKey(UInt32(users[attribute: user, attribute])) { text in
                put(UInt8(text.count))
                out.append(contentsOf: text)
            }
        }
        put(UInt16(buckets.entryCount(users[run: user])))
        buckets.forEach(users[run: user]) { counter, bucket, value in
            put(UInt8(counter))
            put(UInt32(bucket))
            put(value)
        }
    }

    static func signatureHash(_ rules: CompiledRules) -> UInt64 {
        var hash = StableHash()
        hash.combine(rules.stateSignature)
        return hash.value64
    }
}

/// A commit cycle's changelog records while they are written: the users still owed a record
/// (marked in `users`), and the records of those who changed meanwhile, encoded before they did.
struct ChangelogCut {
    var users: ChangeSet
    /// The next index of `users.changed` to encode.
    var nextUser = 0
    var tombstonesWritten = 0
    /// Records kept before their user changed: key length (1 byte), key, value length
    /// (4 bytes), value.
    private var kept: [UInt8] = []
    private var keptRead = 0
    /// The closing position record; nil once handed over.
    var position: [UInt8]?

    init(users: ChangeSet, position: [UInt8]) {
        self.users = users
        self.position = position
    }

    mutating func keep(key: [UInt8], value: [UInt8]) {
        kept.append(UInt8(key.count))
        kept.append(contentsOf: key)
        withUnsafeBytes(of: UInt32(value.count).littleEndian) { kept.append(contentsOf: $0) }
        kept.append(contentsOf: value)
    }

    /// Hands over up to `limit` kept records not handed over yet; returns how many.
    mutating func writeKept(
        limit: Int, _ emit: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer?) throws -> Void
    ) rethrows -> Int {
        var written = 0
        var read = keptRead
        defer { keptRead = read }
        try kept.withUnsafeBytes { raw in
            while written < limit, read < raw.count {
                let keyLength = Int(raw[read])
                let keyStart = read + 1
                let valueStart = keyStart + keyLength + 4
                let valueLength = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: keyStart + keyLength, as: UInt32.self)))
                read = valueStart + valueLength
                try emit(UnsafeRawBufferPointer(rebasing: raw[keyStart..<(keyStart + keyLength)]), UnsafeRawBufferPointer(rebasing: raw[valueStart..<read]))
                written += 1
            }
        }
        return written
    }
}

/// Reads a changelog record in place, every read bounds-checked.
private struct RecordReader {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { position == bytes.count }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws(SnapshotError) -> T {
        let size = MemoryLayout<T>.size
        guard bytes.count - position >= size else { throw SnapshotError("changelog record truncated at byte \(position)") }
        defer { position += size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
    }

    mutating func bytes(count: Int) throws(SnapshotError) -> UnsafeRawBufferPointer {
        guard bytes.count - position >= count else { throw SnapshotError("changelog record truncated at byte \(position)") }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
    }
}
