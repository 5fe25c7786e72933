/// The sliding-window buckets of every user, packed into one slab of 4-byte slots.
///
/// A user's non-empty buckets are a short run of slots in `storage`. The run's first slot
/// is its base, a minute; each bucket after it is one slot,
/// `counter | bucket offset | value` (widths from `Layout`), the offset counted in that
/// counter's buckets from the base. A value too large for its field (how large depends on
/// the rules: a count over 524,286 or a sum beyond ±2,621.43 for the reference playbook)
/// takes a second slot holding it whole, so values keep the full 32-bit range with 4 bytes
/// in the common case. Runs come in size classes 2, 3, 4, 6, 8, 12, ... with free lists: a
/// full run moves up a class, and a sweep that leaves a run far below its class moves it
/// down. Users grow and shrink without a heap allocation each, and the slab holds about
/// what current activity needs rather than every user's busiest stretch. It never returns
/// slots: free lists hand them out again, a larger free run split for a class that has none.
///
/// Offsets stay small because a run only ever holds buckets that were inside their windows
/// together: before a bucket is added, the engine drops those that left their window, so a
/// run spans at most the longest window plus a bucket (`Layout` sizes the offset for that).
/// When a bucket falls outside the base's reach, the run is rebased on its oldest bucket.
///
/// The run also holds the user's last firing of each trigger while it still matters (see
/// `PartitionEngine`): three slots, `firings | trigger | 0` and the time's two halves, under
/// a counter number of its own, ahead of the buckets. Most users have none, so they cost
/// nothing in the record.
struct BucketStore: Sendable {
    /// How a slot's 32 bits are split, from the rules' counters.
    struct Layout: Sendable {
        let counterBits: Int
        let offsetBits: Int
        let valueBits: Int
        /// Each counter's bucket width and window in milliseconds.
        let resolutions: [Int64]
        let windows: [Int64]
        /// Bit `c` set: counter `c`'s values are signed (sums).
        let signedMask: UInt64
        /// Per counter, a multiplier and shift that divide a time by the resolution without a
        /// division instruction (exact for times below 2^48 ms): bucket numbers are computed
        /// for every bucket of every event, and a 64-bit division costs tens of cycles.
        private let reciprocals: [(multiplier: UInt64, shift: Int)]

        /// The counter number that marks a firing entry (one past the counters).
        let firings: Int
        let triggers: Int

        /// The widest span of bucket offsets a run can need: the longest window in the
        /// finest counter's buckets, plus the base's rounding to a minute and a bucket.
        init?(resolutions: [Int64], windows: [Int64], signed: [Bool], triggers: Int) {
            firings = resolutions.count
            self.triggers = triggers
            counterBits = Int.bitWidth - firings.leadingZeroBitCount
            let span = (windows.max() ?? 0) + 2 * (resolutions.max() ?? 0) + 2 * Millis.minute
            let largestOffset = max(span / max(resolutions.min() ?? 1, 1) + 2, Int64(triggers - 1))
            offsetBits = Int.bitWidth - largestOffset.leadingZeroBitCount
            valueBits = 32 - counterBits - offsetBits
            guard valueBits >= 4 else { return nil }
            self.resolutions = resolutions
            self.windows = windows
            signedMask = signed.enumerated().reduce(0) { $1.element ? $0 | 1 << UInt64($1.offset) : $0 }
            reciprocals = resolutions.map { resolution in
                let divisor = UInt64(max(resolution, 1))
                let shift = 48 + (UInt64.bitWidth - (divisor - 1).leadingZeroBitCount)
                // ceil(2^shift / divisor), below 2^64 since 2^(shift - 48) >= divisor.
                let (quotient, remainder) = divisor.dividingFullWidth(Self.power(shift))
                return (quotient + (remainder == 0 ? 0 : 1), shift)
            }
        }

        /// 2^exponent as a 128-bit (high, low) pair.
        private static func power(_ exponent: Int) -> (high: UInt64, low: UInt64) {
            exponent >= 64 ? (1 << UInt64(exponent - 64), 0) : (0, 1 << UInt64(exponent))
        }

        /// `time / resolutions[counter]` for a time in [0, 2^48).
        @inline(__always) func bucket(of time: Int64, counter: Int) -> Int64 {
            let (multiplier, shift) = reciprocals[counter]
            let (high, low) = UInt64(time).multipliedFullWidth(by: multiplier)
            let quotient = shift >= 64 ? high &>> UInt64(shift - 64) : high &<< UInt64(64 - shift) | low &>> UInt64(shift)
            return Int64(quotient)
        }

        var valueMask: UInt32 { (1 << valueBits) - 1 }
        var offsetLimit: Int64 { 1 << offsetBits }
    }

    /// A user's run: `offset (32) | slots used after the base (24) | size class (8)`; 0 means no run.
    typealias Run = UInt64

    /// Bucket numbers are `time / resolution`; event times end where this allows at the
    /// 1-minute minimum resolution (beyond the year 2090).
    static let maxBucketNumber: Int64 = (1 << 26) - 1

    let layout: Layout
    private let format: SlotFormat
    /// How long the sweep keeps each trigger's last firing (`CompiledTrigger.firingLifetime`).
    /// Held here rather than passed per sweep: an array passed from the engine was retained
    /// and released around every call.
    var firingLifetimes: [Int64]
    /// Slot 0 is never handed out, so no run is 0, the value that means "no run".
    private(set) var storage: [UInt32] = [0]
    private var freeRuns: [[UInt32]] = Array(repeating: [], count: Self.sizeClasses)
    /// What the sweep learned of each counter's entries in `hintRun`, the run swept last:
    /// an event adds to the bucket of the moment, its counter's newest entry or a new one
    /// past the largest offset, found here without a scan. Any change that moves slots of
    /// that run, or rewrites its offsets, forgets it.
    private var hints: [CounterHint]
    private var hintRun: Run = 0
    /// Each counter's sweep state as a sweep starts, but for `firstKept` (which moves with
    /// the time): copied whole rather than built field by field, counter by counter.
    private let sweepStarts: [CounterSweep]

    private struct CounterHint {
        /// Where the counter's newest entry starts (-1: none).
        var newest = -1
        /// The largest offset among its entries (-1: none).
        var largestOffset: Int64 = -1
    }

    init(layout: Layout, firingLifetimes: [Int64]) {
        self.layout = layout
        self.firingLifetimes = firingLifetimes
        format = SlotFormat(layout)
        hints = Array(repeating: CounterHint(), count: layout.resolutions.count)
        sweepStarts = layout.resolutions.indices.map { [format] counter in
            CounterSweep(firstKept: 0, wideMarker: format.wideMarker(counter), signShift: format.signShift(counter))
        }
    }

    static let sizeClasses = 36
    /// Runs below this class (8 slots) stay where they are: a few slots are not worth a move.
    static let smallestShrinking = 4
    @inline(__always) static func used(_ run: Run) -> Int { Int((run >> 8) & 0xFF_FFFF) }
    @inline(__always) static func offset(_ run: Run) -> Int { Int(run >> 32) }
    @inline(__always) static func sizeClass(_ run: Run) -> Int { Int(run & 0xFF) }
    /// Slots of a class, base included: 2, 3, 4, 6, 8, 12, ... (about 17 % slack on average).
    @inline(__always) static func capacity(ofClass sizeClass: Int) -> Int { (2 + sizeClass & 1) << (sizeClass >> 1) }
    @inline(__always) private static func makeRun(offset: Int, used: Int, sizeClass: Int) -> Run {
        UInt64(offset) << 32 | UInt64(used) << 8 | UInt64(sizeClass)
    }

    // MARK: Slots

    @inline(__always) private func key(counter: Int, offset: Int64) -> UInt32 { format.key(counter: counter, offset: offset) }
    @inline(__always) private func key(ofSlot slot: UInt32) -> UInt32 { format.key(ofSlot: slot) }
    @inline(__always) private func counter(ofKey key: UInt32) -> Int { format.counter(ofKey: key) }
    @inline(__always) private func offset(ofKey key: UInt32) -> Int64 { format.offset(ofKey: key) }
    @inline(__always) private func isFiring(_ slot: UInt32) -> Bool { format.counter(ofKey: format.key(ofSlot: slot)) == format.firings }
    @inline(__always) private func width(_ slot: UInt32) -> Int { format.width(slot) }
    @inline(__always) private func value(at index: Int) -> UInt32 { format.value(storage[index], next: storage[index + 1]) }
    private var firings: Int { format.firings }
    private var offsetLimit: Int64 { layout.offsetLimit }

    @inline(__always) private func baseBucket(_ run: Run, counter: Int) -> Int64 {
        layout.bucket(of: Int64(storage[Self.offset(run)]) * Millis.minute, counter: counter)
    }

    // MARK: Reading

    /// Visits each entry as (counter, bucket number, value); values are counts, or sums in
    /// hundredths as an `Int32` bit pattern.
    func forEach(_ run: Run, _ body: (_ counter: Int, _ bucket: Int64, _ value: UInt32) -> Void) {
        guard run != 0 else { return }
        let start = Self.offset(run) + 1
        var index = start
        while index < start + Self.used(run) {
            let slot = storage[index]
            if !isFiring(slot) {
                let counter = counter(ofKey: key(ofSlot: slot))
                body(counter, baseBucket(run, counter: counter) + offset(ofKey: key(ofSlot: slot)), value(at: index))
            }
            index += width(slot)
        }
    }

    /// Visits each firing entry as (trigger, time).
    func forEachFiring(_ run: Run, _ body: (_ trigger: Int, _ time: Int64) -> Void) {
        guard run != 0 else { return }
        let start = Self.offset(run) + 1
        var index = start
        while index < start + Self.used(run) {
            let slot = storage[index]
            if isFiring(slot) { body(Int(offset(ofKey: key(ofSlot: slot))), firingTime(at: index)) }
            index += width(slot)
        }
    }

    @inline(__always) private func firingTime(at index: Int) -> Int64 {
        SlotFormat.time(low: storage[index + 1], high: storage[index + 2])
    }

    /// Whether the run keeps any firing: they lead it, so its first entry tells.
    func hasFirings(_ run: Run) -> Bool {
        run != 0 && Self.used(run) > 0 && isFiring(storage[Self.offset(run) + 1])
    }

    /// The time `trigger` last fired, if the run keeps it. Firings lead the run, so a user
    /// without any costs one slot read.
    func lastFiring(_ run: Run, trigger: Int) -> Int64? {
        guard run != 0 else { return nil }
        let wanted = key(counter: firings, offset: Int64(trigger))
        let start = Self.offset(run) + 1
        var index = start
        while index < start + Self.used(run), isFiring(storage[index]) {
            if key(ofSlot: storage[index]) == wanted { return firingTime(at: index) }
            index += 3
        }
        return nil
    }

    /// Records that `trigger` fired at `time` (replacing its earlier firing).
    mutating func setFiring(_ run: inout Run, trigger: Int, time: Int64) {
        if run == 0 { run = allocate(sizeClass: 0, used: 0, base: UInt32(clamping: max(time, 0) / Millis.minute)) }
        let wanted = key(counter: firings, offset: Int64(trigger))
        let start = Self.offset(run) + 1
        var index = start
        while index < start + Self.used(run), isFiring(storage[index]), key(ofSlot: storage[index]) != wanted { index += 3 }
        if index == start + Self.used(run) || key(ofSlot: storage[index]) != wanted {
            for slot in 0..<3 { index = insertSlot(in: &run, at: index + slot) - slot }
            storage[index] = wanted &<< format.valueBits
        }
        let bits = UInt64(bitPattern: time)
        storage[index + 1] = UInt32(truncatingIfNeeded: bits)
        storage[index + 2] = UInt32(truncatingIfNeeded: bits >> 32)
    }

    /// Bucket entries in the run (a wide entry counts once; firings do not count).
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
        if run == 0 { run = allocate(sizeClass: 0, used: 0, base: startMinute(of: bucket, counter: counter)) }
        var offset = bucket - baseBucket(run, counter: counter)
        if offset < 0 || offset >= offsetLimit {
            rebase(&run, including: (counter, bucket))
            offset = bucket - baseBucket(run, counter: counter)
        }
        let wanted = key(counter: counter, offset: offset)
        let format = format
        let end = Self.offset(run) + 1 + Self.used(run)
        let hint = run == hintRun ? hints[counter] : CounterHint(newest: -1, largestOffset: .max)
        let index =
            if hint.newest >= 0 && format.key(ofSlot: storage[hint.newest]) == wanted { hint.newest }
            else if offset > hint.largestOffset { end }  // newer than all the counter's entries
            else { find(wanted, in: run) }
        let valueBits = format.valueBits
        if index < end {
            let old = value(at: index)
            let new = combine(old)
            if format.isWide(storage[index]) {
                storage[index + 1] = new
            } else if let field = format.field(new, counter: counter) {
                storage[index] = wanted &<< valueBits | field
            } else {
                let valueSlot = insertSlot(in: &run, at: index + 1)
                storage[valueSlot - 1] = wanted &<< valueBits | format.wideMarker(counter)
                storage[valueSlot] = new
            }
            return (old, new)
        }
        let new = combine(nil)
        if let field = format.field(new, counter: counter) {
            let hinted = run == hintRun
            let slot = insertSlot(in: &run, at: index)
            storage[slot] = wanted &<< valueBits | field
            // Appended in place: the other entries kept their positions, and this is now the
            // counter's newest.
            if hinted && slot == index {
                hintRun = run
                hints[counter] = CounterHint(newest: slot, largestOffset: max(hint.largestOffset, offset))
            }
        } else {
            let slot = insertSlot(in: &run, at: index)
            let valueSlot = insertSlot(in: &run, at: slot + 1)
            storage[valueSlot - 1] = wanted &<< valueBits | format.wideMarker(counter)
            storage[valueSlot] = new
        }
        return (nil, new)
    }

    /// Where the entry with key `wanted` starts in the run, or the run's end.
    @inline(__always) private func find(_ wanted: UInt32, in run: Run) -> Int {
        let format = format
        let start = Self.offset(run) + 1
        let end = start + Self.used(run)
        return storage.withUnsafeBufferPointer { slots in
            var index = start
            while index < end {
                let slot = slots[index]
                if format.key(ofSlot: slot) == wanted { return index }
                index += format.width(slot)
            }
            return end
        }
    }

    /// Whether `bucket` sits within the layout's reach of a base at `minute` (for buckets read
    /// from elsewhere, checked before they are added; what the engine adds always fits).
    func fits(_ bucket: Int64, counter: Int, under minute: UInt32) -> Bool {
        let offset = bucket - layout.bucket(of: Int64(minute) * Millis.minute, counter: counter)
        return offset >= 0 && offset < offsetLimit
    }

    /// Drops the run's buckets that left their window by `now` and its firings older than
    /// their trigger's `firingLifetimes`, and sets `sums[counter]` to the total of the kept
    /// buckets' values (sums in hundredths). A bucket is in its window while its end is after
    /// `now - window`. One pass with no closure: it runs for every event.
    mutating func sweep(
        _ run: inout Run, now: Int64, into sums: UnsafeMutableBufferPointer<Double>
    ) {
        guard run != 0 else {
            sums.update(repeating: 0)
            return
        }
        let counters = layout.resolutions.count
        let start = Self.offset(run) + 1
        let end = start + Self.used(run)
        let write = withUnsafeTemporaryAllocation(of: CounterSweep.self, capacity: max(counters, 1)) { sweeps in
            let base = Int64(storage[start - 1]) * Millis.minute
            _ = sweepStarts.withUnsafeBufferPointer { sweeps.initialize(fromContentsOf: $0) }
            for counter in 0..<counters {
                let horizon = now - layout.windows[counter]
                sweeps[counter].firstKept = horizon < 0
                    ? .min : layout.bucket(of: horizon, counter: counter) - layout.bucket(of: base, counter: counter)
            }
            let format = format
            let write = storage.withUnsafeMutableBufferPointer { slots in
                var read = start
                var write = start
                // Firings lead the run, so the loop over buckets need not look for them.
                while read < end, format.counter(ofKey: format.key(ofSlot: slots[read])) == format.firings {
                    let time = SlotFormat.time(low: slots[read &+ 1], high: slots[read &+ 2])
                    if now - time < firingLifetimes[Int(format.offset(ofKey: format.key(ofSlot: slots[read])))] {
                        if write != read { for index in 0..<3 { slots[write &+ index] = slots[read &+ index] } }
                        write &+= 3
                    }
                    read &+= 3
                }
                while read < end {
                    let slot = slots[read]
                    let key = format.key(ofSlot: slot)
                    let counter = format.counter(ofKey: key)
                    let offset = format.offset(ofKey: key)
                    let field = slot & format.valueMask
                    // A wide value is the next slot whole; an inline one is its field,
                    // sign-extended for sums. Inline is the common case, so it has its own branch.
                    let isWide = field == sweeps[counter].wideMarker
                    let width = isWide ? 2 : 1
                    if offset >= sweeps[counter].firstKept {
                        let shift = sweeps[counter].signShift
                        if !isWide {
                            sweeps[counter].total &+= Int64(Int32(bitPattern: SlotFormat.inlineValue(field, signShift: shift)))
                            if write != read { slots[write] = slot }
                        } else {
                            let value = slots[read &+ 1]
                            sweeps[counter].total &+= shift == 0 ? Int64(value) : Int64(Int32(bitPattern: value))
                            if write != read {
                                slots[write] = slot
                                slots[write &+ 1] = value
                            }
                        }
                        sweeps[counter].hint.newest = write
                        sweeps[counter].hint.largestOffset = max(sweeps[counter].hint.largestOffset, offset)
                        write &+= width
                    }
                    read &+= width
                }
                for index in write..<read { slots[index] = 0 }
                return write
            }
            hints.withUnsafeMutableBufferPointer { hints in
                for counter in 0..<counters {
                    // Exact: a bucket holds at most 32 bits and a run at most 2^16 of them.
                    sums[counter] = Double(sweeps[counter].total)
                    hints[counter] = sweeps[counter].hint
                }
            }
            return write
        }
        var moved = false
        if write != end {
            if write == start {
                clear(&run)
            } else {
                run = Self.makeRun(offset: Self.offset(run), used: write - start, sizeClass: Self.sizeClass(run))
                moved = shrinkIfSparse(&run)
            }
        }
        // The hints point into where the run was; a moved run's next add scans it instead.
        hintRun = moved ? 0 : run
    }

    /// Moves a run of 8 slots or more that fits three size classes down into the class two
    /// above its tight fit; returns whether it moved. Without this a run kept the class of
    /// its user's busiest stretch, and the slab the sum of every user's peak. The gap keeps
    /// a run whose entries come and go between sweeps from moving each time: it moves back
    /// up only once it has about doubled, and down again once it has halved that.
    private mutating func shrinkIfSparse(_ run: inout Run) -> Bool {
        let slots = Self.used(run) + 1
        let sizeClass = Self.sizeClass(run)
        guard sizeClass >= Self.smallestShrinking, slots <= Self.capacity(ofClass: sizeClass - 3) else { return false }
        var tight = 0
        while Self.capacity(ofClass: tight) < slots { tight += 1 }
        move(&run, toClass: tight + 2)
        return true
    }

    /// One counter's part of a sweep: its window's first offset, the total of its kept
    /// buckets (in integers, exact, and a short chain from one entry to the next), its hint,
    /// and how its inline values read.
    private struct CounterSweep {
        /// The first offset still in the window: (b + 1) * r > now - w exactly when
        /// b >= (now - w) / r, for now - w >= 0.
        var firstKept: Int64
        var total: Int64 = 0
        var hint = CounterHint()
        var wideMarker: UInt32
        /// `SlotFormat.signShift` of the counter.
        var signShift: UInt32
    }

    /// The earliest instant after `time` (or at it, if `inclusive`) when one of the run's
    /// buckets leaves its window, or `Int64.max`.
    func earliestExpiry(_ run: Run, after time: Int64, inclusive: Bool) -> Int64 {
        var earliest = Int64.max
        forEach(run) { counter, bucket, _ in
            let expiry = (bucket + 1) * layout.resolutions[counter] + layout.windows[counter]
            if expiry < earliest, inclusive ? expiry >= time : expiry > time { earliest = expiry }
        }
        return earliest
    }

    /// Frees a run, zeroing its slots (an erased user's activity must not linger).
    mutating func clear(_ run: inout Run) {
        guard run != 0 else { return }
        let offset = Self.offset(run)
        for index in offset...(offset + Self.used(run)) { storage[index] = 0 }
        freeRuns[Self.sizeClass(run)].append(UInt32(offset))
        if run == hintRun { hintRun = 0 }
        run = 0
    }

    /// Where the slab's slots are, for `runs` (every user's): what a memory report needs
    /// to tell the runs' room and the free lists from the entries.
    func slabUse(of runs: some Sequence<Run>) -> BucketSlabUse {
        var inRuns = 0
        var holdingEntries = 0
        for run in runs where run != 0 {
            inRuns += Self.capacity(ofClass: Self.sizeClass(run))
            holdingEntries += Self.used(run) + 1
        }
        let free = freeRuns.indices.reduce(0) { $0 + freeRuns[$1].count * Self.capacity(ofClass: $1) }
        return BucketSlabUse(slots: storage.count, inRuns: inRuns, holdingEntries: holdingEntries, free: free)
    }

    var allocatedBytes: Int { storage.capacity * 4 + freeRuns.reduce(0) { $0 + $1.capacity * 4 } }
    /// Bytes `write` writes.
    var snapshotBytes: Int { 12 + storage.count * 4 + freeRuns.reduce(0) { $0 + 8 + $1.count * 4 } }

    // MARK: Layout of a run

    /// The minute `bucket` of `counter` starts in.
    func startMinute(of bucket: Int64, counter: Int) -> UInt32 {
        UInt32(bucket * layout.resolutions[counter] / Millis.minute)
    }

    /// Moves the base to the oldest of the run's buckets and `extra`, rewriting every offset.
    private mutating func rebase(_ run: inout Run, including extra: (counter: Int, bucket: Int64)) {
        var oldest = startMinute(of: extra.bucket, counter: extra.counter)
        forEach(run) { counter, bucket, _ in oldest = min(oldest, startMinute(of: bucket, counter: counter)) }
        let start = Self.offset(run) + 1
        let oldBase = storage[start - 1]
        var index = start
        while index < start + Self.used(run) {
            let slot = storage[index]
            let counter = counter(ofKey: key(ofSlot: slot))
            if counter != firings {
                let bucket = layout.bucket(of: Int64(oldBase) * Millis.minute, counter: counter) + offset(ofKey: key(ofSlot: slot))
                let offset = bucket - layout.bucket(of: Int64(oldest) * Millis.minute, counter: counter)
                // Within the layout's span by construction (see the type's comment).
                assert(offset >= 0 && offset < offsetLimit, "a run spans more than its layout allows")
                storage[index] = key(counter: counter, offset: offset) &<< format.valueBits | slot & format.valueMask
            }
            index += width(slot)
        }
        storage[start - 1] = oldest
        if run == hintRun { hintRun = 0 }
    }

    /// Opens a zero slot at `index` (at most the run's end), moving the run to the next
    /// size class first when it is full; returns where the slot is now.
    private mutating func insertSlot(in run: inout Run, at index: Int) -> Int {
        if run == hintRun { hintRun = 0 }
        var index = index
        if Self.used(run) + 1 == Self.capacity(ofClass: Self.sizeClass(run)) {
            index += move(&run, toClass: Self.sizeClass(run) + 1)
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

    /// Moves `run` into a run of `sizeClass` with the same base and entries, and zeroes and
    /// frees where it was; returns how far its slots moved.
    @discardableResult
    private mutating func move(_ run: inout Run, toClass sizeClass: Int) -> Int {
        let old = run
        run = allocate(sizeClass: sizeClass, used: Self.used(old), base: storage[Self.offset(old)])
        let from = Self.offset(old)
        let to = Self.offset(run)
        let entries = Self.used(old)
        storage.withUnsafeMutableBufferPointer { slots in
            precondition(from != to && max(from, to) + entries < slots.count, "a run moves within the slab")
            (slots.baseAddress! + to + 1).update(from: slots.baseAddress! + from + 1, count: entries)
            (slots.baseAddress! + from).update(repeating: 0, count: entries + 1)
        }
        freeRuns[Self.sizeClass(old)].append(UInt32(from))
        return to - from
    }

    private mutating func allocate(sizeClass: Int, used: Int, base: UInt32) -> Run {
        let offset: Int
        if let free = freeRuns[sizeClass].popLast() {
            offset = Int(free)
        } else if let free = splitFreeRun(into: sizeClass) {
            offset = free
        } else {
            offset = storage.count
            storage.append(contentsOf: repeatElement(0, count: Self.capacity(ofClass: sizeClass)))
        }
        storage[offset] = base
        return Self.makeRun(offset: offset, used: used, sizeClass: sizeClass)
    }

    /// Takes the smallest free run of a class 2k above `sizeClass` (2^k times its size),
    /// keeps its first piece for the caller and frees the others in `sizeClass`; nil if there
    /// is none. Demand moves between classes as users' activity does (in the benchmark, from
    /// runs of 8 and 24 slots to runs of 12), and without this the slab grew for the new
    /// class while the old one's runs waited on their free list.
    private mutating func splitFreeRun(into sizeClass: Int) -> Int? {
        for larger in stride(from: sizeClass + 2, to: Self.sizeClasses, by: 2) {
            guard let free = freeRuns[larger].popLast() else { continue }
            let piece = Self.capacity(ofClass: sizeClass)
            for index in 1..<(Self.capacity(ofClass: larger) / piece) {
                freeRuns[sizeClass].append(free + UInt32(index * piece))
            }
            return Int(free)
        }
        return nil
    }
}

extension BucketStore {
    func write(to writer: inout SnapshotWriter) {
        writer.write(storage)
        writer.write(UInt32(freeRuns.count))
        for runs in freeRuns { writer.write(runs) }
    }

    init(from reader: inout SnapshotReader, layout: Layout, firingLifetimes: [Int64]) throws(SnapshotError) {
        self.init(layout: layout, firingLifetimes: firingLifetimes)
        storage = try reader.readArray(UInt32.self, "bucket slab", growing: true)
        guard !storage.isEmpty else { throw SnapshotError("bucket slab without its reserved first slot") }
        let classes = Int(try reader.read(UInt32.self, "bucket size classes"))
        guard classes == freeRuns.count else { throw SnapshotError("bucket slab: \(classes) size classes, expected \(freeRuns.count)") }
        for index in 0..<classes { freeRuns[index] = try reader.readArray(UInt32.self, "bucket free list") }
    }

    /// Whether a run read from a snapshot lies inside the slab, in a size class that exists.
    /// The slots themselves are not walked: that would be a random read per user, most of
    /// the time a large partition's restore takes, and a checkpoint's bytes are covered by
    /// its checksum.
    func isValid(_ run: Run) -> Bool {
        guard run != 0 else { return true }
        guard Self.sizeClass(run) < freeRuns.count else { return false }
        let capacity = Self.capacity(ofClass: Self.sizeClass(run))
        return Self.used(run) < capacity && Self.offset(run) >= 1 && Self.offset(run) + capacity <= storage.count
    }
}

/// The bucket slab's slots: in all, in runs (their size classes), holding a run's base or
/// entries, and on the free lists. The rest of `slots` is slot 0, which is never handed out.
public struct BucketSlabUse: Sendable, Equatable {
    public let slots: Int
    public let inRuns: Int
    public let holdingEntries: Int
    public let free: Int
}

/// How one 4-byte slot reads, as plain scalars: copied into a local, the loops over a run
/// can use it while they hold the slab's memory.
private struct SlotFormat {
    let valueBits: UInt32
    let valueMask: UInt32
    let offsetBits: UInt32
    let offsetMask: UInt32
    let firings: Int
    let triggers: Int
    let signedMask: UInt64

    init(_ layout: BucketStore.Layout) {
        valueBits = UInt32(layout.valueBits)
        valueMask = layout.valueMask
        offsetBits = UInt32(layout.offsetBits)
        offsetMask = UInt32(layout.offsetLimit - 1)
        firings = layout.firings
        triggers = layout.triggers
        signedMask = layout.signedMask
    }

    @inline(__always) func key(counter: Int, offset: Int64) -> UInt32 { UInt32(counter) &<< offsetBits | UInt32(offset) }
    @inline(__always) func key(ofSlot slot: UInt32) -> UInt32 { slot &>> valueBits }
    @inline(__always) func counter(ofKey key: UInt32) -> Int { Int(key &>> offsetBits) }
    @inline(__always) func offset(ofKey key: UInt32) -> Int64 { Int64(key & offsetMask) }
    @inline(__always) func isSigned(_ counter: Int) -> Bool { counter < 64 && (signedMask &>> UInt64(counter)) & 1 == 1 }
    /// The value field that says "the value is in the next slot": all ones for counts, the
    /// most negative field value for sums (so -1 stays inline).
    @inline(__always) func wideMarker(_ counter: Int) -> UInt32 { isSigned(counter) ? 1 &<< (valueBits &- 1) : valueMask }
    @inline(__always) func isWide(_ slot: UInt32) -> Bool { slot & valueMask == wideMarker(counter(ofKey: key(ofSlot: slot))) }
    /// How far an inline field is shifted to sign-extend it: 32 - value bits for sums, 0 for
    /// counts (read as they are).
    @inline(__always) func signShift(_ counter: Int) -> UInt32 { isSigned(counter) ? 32 &- valueBits : 0 }
    /// An inline field as its value's 32 bits, sign-extended by `signShift`.
    @inline(__always) static func inlineValue(_ field: UInt32, signShift shift: UInt32) -> UInt32 {
        UInt32(bitPattern: Int32(bitPattern: field &<< shift) &>> Int32(bitPattern: shift))
    }
    /// Slots taken by the entry starting with `slot`.
    @inline(__always) func width(_ slot: UInt32) -> Int {
        counter(ofKey: key(ofSlot: slot)) == firings ? 3 : isWide(slot) ? 2 : 1
    }

    /// The inline field for `value`, or nil if it needs a wide slot.
    @inline(__always) func field(_ value: UInt32, counter: Int) -> UInt32? {
        if isSigned(counter) {
            let limit = Int32(1) &<< Int32(valueBits &- 1)
            let signedValue = Int32(bitPattern: value)
            guard signedValue > -limit, signedValue < limit else { return nil }
            return value & valueMask
        }
        return value < valueMask ? value : nil
    }

    /// A firing's time from its two slots.
    @inline(__always) static func time(low: UInt32, high: UInt32) -> Int64 {
        Int64(bitPattern: UInt64(high) << 32 | UInt64(low))
    }

    /// The value of a bucket entry whose first slot is `slot` and whose next is `next` (an
    /// inline field sign-extended for sums).
    @inline(__always) func value(_ slot: UInt32, next: @autoclosure () -> UInt32) -> UInt32 {
        if isWide(slot) { return next() }
        return Self.inlineValue(slot & valueMask, signShift: signShift(counter(ofKey: key(ofSlot: slot))))
    }
}
