/// The sliding-window buckets of every user, packed into one slab of 4-byte slots.
///
/// A user's non-empty buckets are a short run of slots in `storage`. The run's first slot
/// is its base, a minute; each bucket after it is one slot,
/// `counter | bucket offset | value` (widths from `Layout`), the offset counted in that
/// counter's buckets from the base. A value too large for its field (a count in the
/// thousands, a big sum) takes a second slot holding it whole, so values keep the full
/// 32-bit range with 4 bytes in the common case. Runs come in size classes 2, 3, 4, 6, 8, 12,
/// ... with free lists, so users grow and shrink without a heap allocation each.
///
/// Offsets stay small because a run only ever holds buckets that were inside their windows
/// together: before a bucket is added, the engine drops those that left their window, so a
/// run spans at most the longest window plus a bucket (`Layout` sizes the offset for that).
/// When a bucket falls outside the base's reach, the run is rebased on its oldest bucket.
struct BucketStore: Sendable {
    /// How a slot's 32 bits are split, from the rules' counters.
    struct Layout: Sendable, Equatable {
        let counterBits: Int
        let offsetBits: Int
        let valueBits: Int
        /// Each counter's bucket width in milliseconds.
        let resolutions: [Int64]
        /// Whether a counter's values are signed (sums).
        let signed: [Bool]

        /// The widest span of bucket offsets a run can need: the longest window in the
        /// finest counter's buckets, plus the base's rounding to a minute and a bucket.
        init?(resolutions: [Int64], windows: [Int64], signed: [Bool]) {
            let counters = max(resolutions.count, 1)
            counterBits = counters <= 1 ? 0 : Int.bitWidth - (counters - 1).leadingZeroBitCount
            let span = (windows.max() ?? 0) + 2 * (resolutions.max() ?? 0) + 2 * Millis.minute
            let largestOffset = span / max(resolutions.min() ?? 1, 1) + 2
            offsetBits = Int.bitWidth - largestOffset.leadingZeroBitCount
            valueBits = 32 - counterBits - offsetBits
            guard valueBits >= 4 else { return nil }
            self.resolutions = resolutions
            self.signed = signed
        }

        var valueMask: UInt32 { (1 << valueBits) - 1 }
        var offsetLimit: Int64 { 1 << offsetBits }
        /// The value field that says "the value is in the next slot": all ones for counts,
        /// the most negative field value for sums (so -1 stays inline).
        @inline(__always) func wideMarker(_ counter: Int) -> UInt32 { signed[counter] ? 1 << (valueBits - 1) : valueMask }
    }

    /// A user's run: `offset (32) | slots used after the base (24) | size class (8)`; 0 means no run.
    typealias Run = UInt64

    /// Bucket numbers are `time / resolution`; event times end where this allows at the
    /// 1-minute minimum resolution (beyond the year 2090).
    static let maxBucketNumber: Int64 = (1 << 26) - 1

    let layout: Layout
    private(set) var storage: [UInt32] = []
    private var freeRuns: [[UInt32]] = Array(repeating: [], count: Self.sizeClasses)

    init(layout: Layout) { self.layout = layout }

    static let sizeClasses = 36
    @inline(__always) static func used(_ run: Run) -> Int { Int((run >> 8) & 0xFF_FFFF) }
    @inline(__always) static func offset(_ run: Run) -> Int { Int(run >> 32) }
    @inline(__always) static func sizeClass(_ run: Run) -> Int { Int(run & 0xFF) }
    /// Slots of a class, base included: 2, 3, 4, 6, 8, 12, ... (about 17 % slack on average).
    @inline(__always) static func capacity(ofClass sizeClass: Int) -> Int { (2 + sizeClass & 1) << (sizeClass >> 1) }
    @inline(__always) private static func makeRun(offset: Int, used: Int, sizeClass: Int) -> Run {
        UInt64(offset) << 32 | UInt64(used) << 8 | UInt64(sizeClass)
    }

    // MARK: Slots

    @inline(__always) private func key(counter: Int, offset: Int64) -> UInt32 {
        UInt32(counter) << layout.offsetBits | UInt32(offset)
    }
    @inline(__always) private func key(ofSlot slot: UInt32) -> UInt32 { slot >> layout.valueBits }
    @inline(__always) private func counter(ofKey key: UInt32) -> Int { Int(key >> layout.offsetBits) }
    @inline(__always) private func offset(ofKey key: UInt32) -> Int64 { Int64(key & UInt32(layout.offsetLimit - 1)) }
    @inline(__always) private func isWide(_ slot: UInt32) -> Bool {
        slot & layout.valueMask == layout.wideMarker(counter(ofKey: key(ofSlot: slot)))
    }

    /// The inline field for `value`, or nil if it needs a wide slot.
    @inline(__always) private func field(_ value: UInt32, counter: Int) -> UInt32? {
        if layout.signed[counter] {
            let limit = Int32(1) << (layout.valueBits - 1)
            let signedValue = Int32(bitPattern: value)
            guard signedValue > -limit, signedValue < limit else { return nil }
            return value & layout.valueMask
        }
        return value < layout.valueMask ? value : nil
    }

    /// The value of the entry starting at `index` (an inline field sign-extended for sums).
    @inline(__always) private func value(at index: Int) -> UInt32 {
        let slot = storage[index]
        if isWide(slot) { return storage[index + 1] }
        let field = slot & layout.valueMask
        guard layout.signed[counter(ofKey: key(ofSlot: slot))] else { return field }
        let shift = UInt32(32 - layout.valueBits)
        return UInt32(bitPattern: Int32(bitPattern: field << shift) >> Int32(shift))
    }

    @inline(__always) private func baseBucket(_ run: Run, counter: Int) -> Int64 {
        Int64(storage[Self.offset(run)]) * Millis.minute / layout.resolutions[counter]
    }

    // MARK: Reading

    /// Visits each entry as (counter, bucket number, value); values are counts, or sums in
    /// hundredths as an `Int32` bit pattern.
    func forEach(_ run: Run, _ body: (_ counter: Int, _ bucket: Int64, _ value: UInt32) -> Void) {
        guard run != 0 else { return }
        let start = Self.offset(run) + 1
        var index = start
        while index < start + Self.used(run) {
            let key = key(ofSlot: storage[index])
            let counter = counter(ofKey: key)
            body(counter, baseBucket(run, counter: counter) + offset(ofKey: key), value(at: index))
            index += isWide(storage[index]) ? 2 : 1
        }
    }

    /// Entries in the run (a wide entry counts once).
    func entryCount(_ run: Run) -> Int {
        var entries = 0
        forEach(run) { _, _, _ in entries += 1 }
        return entries
    }

    // MARK: Changing

    /// Combines a value into the (counter, bucket) entry of a run, creating it if needed;
    /// returns the entry's value before (nil if it is new) and after.
    @discardableResult
    mutating func add(
        to run: inout Run, counter: Int, bucket: Int64, combine: (UInt32?) -> UInt32
    ) -> (old: UInt32?, new: UInt32) {
        if run == 0 { run = allocate(sizeClass: 0, used: 0, base: baseMinute(of: bucket, counter: counter)) }
        var offset = bucket - baseBucket(run, counter: counter)
        if offset < 0 || offset >= layout.offsetLimit {
            rebase(&run, including: (counter, bucket))
            offset = bucket - baseBucket(run, counter: counter)
        }
        let wanted = key(counter: counter, offset: offset)
        let start = Self.offset(run) + 1
        var index = start
        while index < start + Self.used(run) {
            let slot = storage[index]
            let wide = isWide(slot)
            if key(ofSlot: slot) == wanted {
                let old = value(at: index)
                let new = combine(old)
                if wide {
                    storage[index + 1] = new
                } else if let field = field(new, counter: counter) {
                    storage[index] = wanted << layout.valueBits | field
                } else {
                    let valueSlot = insertSlot(in: &run, at: index + 1)
                    storage[valueSlot - 1] = wanted << layout.valueBits | layout.wideMarker(counter)
                    storage[valueSlot] = new
                }
                return (old, new)
            }
            index += wide ? 2 : 1
        }
        let new = combine(nil)
        if let field = field(new, counter: counter) {
            let slot = insertSlot(in: &run, at: index)
            storage[slot] = wanted << layout.valueBits | field
        } else {
            let slot = insertSlot(in: &run, at: index)
            let valueSlot = insertSlot(in: &run, at: slot + 1)
            storage[valueSlot - 1] = wanted << layout.valueBits | layout.wideMarker(counter)
            storage[valueSlot] = new
        }
        return (nil, new)
    }

    /// Whether `bucket` can join the run: together with its buckets it spans no more than
    /// the layout allows (always true for what the engine adds; a record read from elsewhere
    /// is checked with this first).
    func accepts(_ run: Run, counter: Int, bucket: Int64) -> Bool {
        var oldest = baseMinute(of: bucket, counter: counter)
        forEach(run) { counter, bucket, _ in oldest = min(oldest, baseMinute(of: bucket, counter: counter)) }
        var fits = bucket - Int64(oldest) * Millis.minute / layout.resolutions[counter] < layout.offsetLimit
        forEach(run) { counter, bucket, _ in
            fits = fits && bucket - Int64(oldest) * Millis.minute / layout.resolutions[counter] < layout.offsetLimit
        }
        return fits
    }

    /// Visits each entry; entries for which `keep` returns false are removed.
    mutating func filter(_ run: inout Run, keep: (_ counter: Int, _ bucket: Int64, _ value: UInt32) -> Bool) {
        guard run != 0 else { return }
        let start = Self.offset(run) + 1
        let used = Self.used(run)
        var read = start
        var write = start
        while read < start + used {
            let slot = storage[read]
            let width = isWide(slot) ? 2 : 1
            let key = key(ofSlot: slot)
            let counter = counter(ofKey: key)
            if keep(counter, baseBucket(run, counter: counter) + offset(ofKey: key), value(at: read)) {
                if write != read {
                    storage[write] = slot
                    if width == 2 { storage[write + 1] = storage[read + 1] }
                }
                write += width
            }
            read += width
        }
        guard write != read else { return }
        if write == start {
            clear(&run)
        } else {
            for index in write..<read { storage[index] = 0 }
            run = Self.makeRun(offset: Self.offset(run), used: write - start, sizeClass: Self.sizeClass(run))
        }
    }

    /// Frees a run, zeroing its slots (an erased user's activity must not linger).
    mutating func clear(_ run: inout Run) {
        guard run != 0 else { return }
        let offset = Self.offset(run)
        for index in offset...(offset + Self.used(run)) { storage[index] = 0 }
        freeRuns[Self.sizeClass(run)].append(UInt32(offset))
        run = 0
    }

    var allocatedBytes: Int { storage.capacity * 4 + freeRuns.reduce(0) { $0 + $1.capacity * 4 } }

    // MARK: Layout of a run

    private func baseMinute(of bucket: Int64, counter: Int) -> UInt32 {
        UInt32(bucket * layout.resolutions[counter] / Millis.minute)
    }

    /// Moves the base to the oldest of the run's buckets and `extra`, rewriting every offset.
    private mutating func rebase(_ run: inout Run, including extra: (counter: Int, bucket: Int64)) {
        var oldest = baseMinute(of: extra.bucket, counter: extra.counter)
        forEach(run) { counter, bucket, _ in oldest = min(oldest, baseMinute(of: bucket, counter: counter)) }
        let start = Self.offset(run) + 1
        let oldBase = storage[start - 1]
        var index = start
        while index < start + Self.used(run) {
            let slot = storage[index]
            let counter = counter(ofKey: key(ofSlot: slot))
            let resolution = layout.resolutions[counter]
            let bucket = Int64(oldBase) * Millis.minute / resolution + offset(ofKey: key(ofSlot: slot))
            let offset = bucket - Int64(oldest) * Millis.minute / resolution
            // Within the layout's span by construction (see the type's comment).
            assert(offset >= 0 && offset < layout.offsetLimit, "a run spans more than its layout allows")
            storage[index] = key(counter: counter, offset: offset) << layout.valueBits | slot & layout.valueMask
            index += isWide(slot) ? 2 : 1
        }
        storage[start - 1] = oldest
    }

    /// Opens a zero slot at `index` (at most the run's end), moving the run to the next
    /// size class first when it is full; returns where the slot is now.
    private mutating func insertSlot(in run: inout Run, at index: Int) -> Int {
        var index = index
        if Self.used(run) + 1 == Self.capacity(ofClass: Self.sizeClass(run)) {
            let old = run
            run = allocate(sizeClass: Self.sizeClass(old) + 1, used: Self.used(old), base: storage[Self.offset(old)])
            let from = Self.offset(old)
            let to = Self.offset(run)
            for slot in 1...Self.used(old) { storage[to + slot] = storage[from + slot] }
            for slot in 0...Self.used(old) { storage[from + slot] = 0 }
            freeRuns[Self.sizeClass(old)].append(UInt32(from))
            index += to - from
        }
        let end = Self.offset(run) + Self.used(run) + 1
        var slot = end
        while slot > index {
            storage[slot] = storage[slot - 1]
            slot -= 1
        }
        storage[index] = 0
        run = Self.makeRun(offset: Self.offset(run), used: Self.used(run) + 1, sizeClass: Self.sizeClass(run))
        return index
    }

    private mutating func allocate(sizeClass: Int, used: Int, base: UInt32) -> Run {
        let offset: Int
        if let free = freeRuns[sizeClass].popLast() {
            offset = Int(free)
        } else {
            offset = storage.count
            storage.append(contentsOf: repeatElement(0, count: Self.capacity(ofClass: sizeClass)))
        }
        storage[offset] = base
        return Self.makeRun(offset: offset, used: used, sizeClass: sizeClass)
    }
}

extension BucketStore {
    func write(to writer: inout SnapshotWriter) {
        writer.write(storage)
        writer.write(UInt32(freeRuns.count))
        for runs in freeRuns { writer.write(runs) }
    }

    init(from reader: inout SnapshotReader, layout: Layout) throws(SnapshotError) {
        self.init(layout: layout)
        storage = try reader.readArray(UInt32.self, "bucket slab")
        let classes = Int(try reader.read(UInt32.self, "bucket size classes"))
        guard classes == freeRuns.count else { throw SnapshotError("bucket slab: \(classes) size classes, expected \(freeRuns.count)") }
        for index in 0..<classes { freeRuns[index] = try reader.readArray(UInt32.self, "bucket free list") }
    }

    /// Whether a run read from a snapshot lies inside the slab, its entries name counters
    /// that exist, and no wide entry is cut off at its end.
    func isValid(_ run: Run) -> Bool {
        guard run != 0 else { return true }
        let capacity = Self.capacity(ofClass: Self.sizeClass(run))
        guard Self.sizeClass(run) < freeRuns.count, Self.used(run) < capacity,
              Self.offset(run) + capacity <= storage.count
        else { return false }
        let start = Self.offset(run) + 1
        var index = start
        while index < start + Self.used(run) {
            guard counter(ofKey: key(ofSlot: storage[index])) < layout.resolutions.count else { return false }
            index += isWide(storage[index]) ? 2 : 1
        }
        return index == start + Self.used(run)
    }
}
