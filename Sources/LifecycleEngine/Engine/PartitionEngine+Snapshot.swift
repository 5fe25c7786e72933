/// Snapshots: the whole state of one partition's engine as bytes, for checkpoints.
///
/// The format is versioned and names the rules it was written under; restoring under
/// different rules, a different format version, or damaged bytes fails with a reason
/// instead of silently starting from nothing. Version 3 packs window buckets in 4-byte
/// slots; older snapshots are refused, and the daemon restores from the changelog instead.
extension PartitionEngine {
    static let snapshotMagic: UInt64 = 0x5450_4b43_4359_434c  // "LCYCKCPT", little-endian
    static let snapshotVersion: UInt32 = 3
    static let oldestReadableSnapshotVersion: UInt32 = 3
    static let byteOrderMark: UInt32 = 0x0102_0304

    public func snapshot() -> [UInt8] {
        var writer = SnapshotWriter()
        writer.reserve(snapshotBytes)
        snapshot(into: &writer)
        return writer.finish()
    }

    /// At least the size of a snapshot (the columns, plus room for the small fields), so its
    /// buffer is allocated once instead of growing by copies.
    public var snapshotBytes: Int {
        let columns = ids.snapshotBytes + users.words.count * 8 + buckets.snapshotBytes + timers.count * 12
            + attributeValues.reduce(0) { $0 + $1.snapshotBytes }
        return columns + 4_096 + rules.stateSignature.utf8.count + rules.configVersion.utf8.count + armTotals.count * 64
    }

    /// Appends the snapshot to `writer`: into a buffer whose memory is already in use, it
    /// costs about a copy of the state (no page faults), which is what a checkpoint taken on
    /// the processing thread can afford.
    public func snapshot(into writer: inout SnapshotWriter) {
        writer.write(Self.snapshotMagic)
        writer.write(Self.snapshotVersion)
        writer.write(Self.byteOrderMark.bigEndian)  // reads back differently on the other byte order
        writer.write(rules.stateSignature)
        writer.write(rules.configVersion)
        writer.write(streamTime)
        writer.write(eventTime)
        ids.write(to: &writer)
        users.write(to: &writer)
        buckets.write(to: &writer)
        timers.write(to: &writer)
        for table in attributeValues { table.write(to: &writer) }
        writer.write(usersPerStage.map(Int64.init))
        writer.write(armTotals.flatMap { totals in
            Arm.allCases.flatMap { [Int64(totals[$0].fired), Int64(totals[$0].converted)] }
        })
    }

    /// An engine in exactly the state `snapshot()` captured.
    public init(rules: CompiledRules, snapshot bytes: [UInt8]) throws(SnapshotError) {
        try self.init(rules: rules, snapshot: bytes[...])
    }

    /// An engine from a snapshot inside a larger buffer (a checkpoint file's bytes), read in place.
    public init(rules: CompiledRules, snapshot bytes: ArraySlice<UInt8>) throws(SnapshotError) {
        self.init(rules: rules)
        var reader = SnapshotReader(bytes)
        guard try reader.read(UInt64.self, "header") == Self.snapshotMagic else {
            throw SnapshotError("not a lifecycled engine snapshot")
        }
        let version = try reader.read(UInt32.self, "format version")
        guard (Self.oldestReadableSnapshotVersion...Self.snapshotVersion).contains(version) else {
            throw SnapshotError(
                "snapshot format version \(version); this build reads version \(Self.snapshotVersion)",
                isOutdatedFormat: version < Self.oldestReadableSnapshotVersion)
        }
        guard try reader.read(UInt32.self, "byte order").bigEndian == Self.byteOrderMark else {
            throw SnapshotError("snapshot written on a machine of another byte order")
        }
        let signature = try reader.readString("rules signature")
        guard signature == rules.stateSignature else {
            throw SnapshotError("snapshot written under different rules (counters, attributes, stages or triggers changed)")
        }
        let writtenUnder = try reader.readString("config version")
        streamTime = try reader.read(Int64.self, "stream time")
        eventTime = try reader.read(Int64.self, "event time")
        ids = try ByteInterner(from: &reader, "user ids")
        users = try UserRecords(
            from: &reader, attributeCount: rules.attributes.count, triggerCount: rules.triggers.count)
        buckets = try BucketStore(from: &reader, layout: rules.bucketLayout, firingLifetimes: rules.firingLifetimes)
        timers = try TimerQueue(from: &reader)
        attributeValues = try rules.attributes.map { (attribute) throws(SnapshotError) in
            try ByteInterner(from: &reader, "values of attribute '\(attribute.name)'")
        }
        usersPerStage = try reader.readArray(Int64.self, "users per stage").map(Int.init)
        armTotals = try Self.readArmTotals(&reader, triggers: rules.triggers.count)
        guard reader.isAtEnd else { throw SnapshotError("unexpected bytes after the end of the snapshot") }
        let stages = rules.stageNames.count
        guard users.count == ids.capacity, usersPerStage.count == stages,
              (0..<users.count).allSatisfy({ Int(users[stage: $0]) < stages && buckets.isValid(users[run: $0]) })
        else { throw SnapshotError("inconsistent state: user columns do not match the rules or the slab") }
        if writtenUnder != rules.configVersion { rescheduleAllTimers() }
    }

    /// Fired and converted per arm (in `Arm.allCases` order) per trigger.
    private static func readArmTotals(_ reader: inout SnapshotReader, triggers: Int) throws(SnapshotError) -> [ArmTotals] {
        let values = try reader.readArray(Int64.self, "per-arm totals").map(Int.init)
        let perTrigger = Arm.allCases.count * 2
        guard values.count == triggers * perTrigger else {
            throw SnapshotError("per-arm totals for \(values.count / perTrigger) triggers, expected \(triggers)")
        }
        return (0..<triggers).map { trigger in
            var totals = ArmTotals()
            for (index, arm) in Arm.allCases.enumerated() {
                let base = trigger * perTrigger + index * 2
                totals[arm] = ArmCount(fired: values[base], converted: values[base + 1])
            }
            return totals
        }
    }

    /// After a rules change that keeps the state's shape (a threshold, a new timed
    /// transition), pending timers may point at the wrong instants. Every user is scheduled
    /// again from their earliest possible wake-up; those already past fire at the next
    /// advance, at their exact deadlines, as if the new rules had always applied.
    mutating func rescheduleAllTimers() {
        timers.removeAll()
        for user in 0..<users.count where ids.isLive(UInt32(user)) {
            users[user, .scheduled] = .max
            let wake = nextWake(user, from: .min, inclusive: true)
            guard wake != .max else { continue }
            users[user, .scheduled] = wake
            timers.push(.init(deadline: wake, user: UInt32(user)))
        }
    }
}

extension CompiledRules {
    /// What the state layout depends on: names and shapes of counters, attributes (with the
    /// values ids were assigned at compile time), stages and triggers.
    var stateSignature: String { stateShape.map(\.signature).joined(separator: "\n") }

    /// The state's shape in parts, each named for an operator and with its line of the
    /// signature (whose text snapshots and changelogs carry, so it must not change).
    private var stateShape: [(name: String, signature: String)] {
        var parts = [("the stages", "stages:" + stageNames.joined(separator: ","))]
        for (name, counter) in zip(counterNames, counters) {
            parts.append(("counter '\(name)'", "counter:\(name):\(counter.kind):\(counter.window):\(counter.resolution)"))
        }
        for attribute in attributes {
            parts.append(("attribute '\(attribute.name)'", "attribute:\(attribute.name):\(attribute.values.joined(separator: ","))"))
        }
        parts.append(("the triggers", "triggers:" + triggerNames.joined(separator: ",")))
        return parts
    }

    /// How state kept under `running` would not fit these rules, in words ("counter 'x'
    /// added, ..."), or nil when it fits as it is.
    public func stateShapeChange(from running: CompiledRules) -> String? {
        let new = stateShape, old = running.stateShape
        guard new.map(\.signature) != old.map(\.signature) else { return nil }
        let oldByName = Dictionary(old.map { ($0.name, $0.signature) }, uniquingKeysWith: { first, _ in first })
        let newNames = Set(new.map(\.name))
        var changes: [String] = []
        for part in new {
            switch oldByName[part.name] {
            case nil: changes.append("\(part.name) added")
            case part.signature: break
            default: changes.append("\(part.name) changed")
            }
        }
        changes += old.filter { !newNames.contains($0.name) }.map { "\($0.name) removed" }
        // Same parts, another order (counters or attributes reordered).
        if changes.isEmpty { changes.append("counters or attributes reordered") }
        return changes.joined(separator: ", ")
    }
}
