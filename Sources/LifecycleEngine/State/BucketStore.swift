/// The sliding-window buckets of every user, packed into one slab.
///
/// A user's non-empty buckets are a short run of 8-byte entries in `storage`:
/// `counter (6 bits) | bucket number (26 bits) | value (32 bits)`, where the value is a
/// count, or a sum in hundredths (`Int32`). Runs come in power-of-two size classes with free lists, so
/// users grow and shrink without a heap allocation each, and empty buckets cost nothing.
/// A bucket number is `time / resolution`; 26 bits at the 1-minute minimum resolution
/// reach beyond the year 2090.
struct BucketStore: Sendable {
    private(set) var storage: [UInt64] = []
    private var freeRuns: [[UInt32]] = Array(repeating: [], count: 17)

    /// A user's run: `offset (32) | count (16) | size class (8)`; 0 means no run.
    typealias Run = UInt64

    static let maxBucketNumber: Int64 = (1 << 26) - 1

    @inline(__always) static func count(_ run: Run) -> Int { Int((run >> 16) & 0xFFFF) }
    @inline(__always) static func offset(_ run: Run) -> Int { Int(run >> 32) }
    @inline(__always) static func sizeClass(_ run: Run) -> Int { Int(run & 0xFF) }
    @inline(__always) static func capacity(ofClass sizeClass: Int) -> Int { 1 << sizeClass }
    @inline(__always) private static func makeRun(offset: Int, count: Int, sizeClass: Int) -> Run {
        UInt64(offset) << 32 | UInt64(count) << 16 | UInt64(sizeClass)
    }

    @inline(__always) static func entry(counter: Int, bucket: Int64, value: UInt32) -> UInt64 {
        UInt64(counter) << 58 | UInt64(bucket) << 32 | UInt64(value)
    }
    @inline(__always) static func counter(_ entry: UInt64) -> Int { Int(entry >> 58) }
    @inline(__always) static func bucket(_ entry: UInt64) -> Int64 { Int64((entry >> 32) & 0x3FF_FFFF) }
    @inline(__always) static func value(_ entry: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: entry) }
    /// The key part (counter and bucket) of an entry.
    @inline(__always) static func key(_ entry: UInt64) -> UInt64 { entry >> 32 }

    /// Combines a value into the (counter, bucket) entry of a run, creating it if needed;
    /// returns the entry's value before (nil if it is new) and after.
    @discardableResult
    mutating func add(
        to run: inout Run, counter: Int, bucket: Int64, combine: (UInt32?) -> UInt32
    ) -> (old: UInt32?, new: UInt32) {
        let key = UInt64(counter) << 26 | UInt64(bucket)
        let count = Self.count(run)
        let offset = Self.offset(run)
        // Newest buckets are appended last and events are mostly in order: search backwards.
        var index = offset + count - 1
        while index >= offset && count > 0 {
            if Self.key(storage[index]) == key {
                let old = Self.value(storage[index])
                let new = combine(old)
                storage[index] = Self.entry(counter: counter, bucket: bucket, value: new)
                return (old, new)
            }
            index -= 1
        }
        let value = combine(nil)
        let entry = Self.entry(counter: counter, bucket: bucket, value: value)
        defer { run = appended(entry, to: run) }
        return (nil, value)
    }

    /// The run with `entry` appended, moved to the next size class when full.
    private mutating func appended(_ entry: UInt64, to run: Run) -> Run {
        let count = Self.count(run)
        let offset = Self.offset(run)
        if run == 0 {
            let newOffset = allocate(sizeClass: 0)
            storage[newOffset] = entry
            return Self.makeRun(offset: newOffset, count: 1, sizeClass: 0)
        }
        let sizeClass = Self.sizeClass(run)
        if count < Self.capacity(ofClass: sizeClass) {
            storage[offset + count] = entry
            return Self.makeRun(offset: offset, count: count + 1, sizeClass: sizeClass)
        }
        let newOffset = allocate(sizeClass: sizeClass + 1)
        for i in 0..<count { storage[newOffset + i] = storage[offset + i] }
        storage[newOffset + count] = entry
        release(offset: offset, sizeClass: sizeClass)
        return Self.makeRun(offset: newOffset, count: count + 1, sizeClass: sizeClass + 1)
    }

    /// Visits each entry; entries for which `keep` returns false are removed.
    mutating func filter(_ run: inout Run, keep: (UInt64) -> Bool) {
        guard run != 0 else { return }
        let offset = Self.offset(run)
        let count = Self.count(run)
        var kept = 0
        for i in 0..<count {
            let entry = storage[offset + i]
            if keep(entry) {
                storage[offset + kept] = entry
                kept += 1
            }
        }
        guard kept != count else { return }
        if kept == 0 {
            clear(&run)
        } else {
            run = Self.makeRun(offset: offset, count: kept, sizeClass: Self.sizeClass(run))
        }
    }

    func forEach(_ run: Run, _ body: (UInt64) -> Void) {
        guard run != 0 else { return }
        let offset = Self.offset(run)
        for i in offset..<(offset + Self.count(run)) { body(storage[i]) }
    }

    /// Frees a run, zeroing its entries (an erased user's activity must not linger).
    mutating func clear(_ run: inout Run) {
        guard run != 0 else { return }
        let offset = Self.offset(run)
        for index in offset..<(offset + Self.count(run)) { storage[index] = 0 }
        release(offset: offset, sizeClass: Self.sizeClass(run))
        run = 0
    }

    var allocatedBytes: Int { storage.capacity * 8 + freeRuns.reduce(0) { $0 + $1.capacity * 4 } }

    private mutating func allocate(sizeClass: Int) -> Int {
        if let offset = freeRuns[sizeClass].popLast() { return Int(offset) }
        let offset = storage.count
        storage.append(contentsOf: repeatElement(0, count: Self.capacity(ofClass: sizeClass)))
        return offset
    }

    private mutating func release(offset: Int, sizeClass: Int) {
        freeRuns[sizeClass].append(UInt32(offset))
    }
}

extension BucketStore {
    func write(to writer: inout SnapshotWriter) {
        writer.write(storage)
        writer.write(UInt32(freeRuns.count))
        for runs in freeRuns { writer.write(runs) }
    }

    init(from reader: inout SnapshotReader) throws(SnapshotError) {
        storage = try reader.readArray(UInt64.self, "bucket slab")
        let classes = Int(try reader.read(UInt32.self, "bucket size classes"))
        guard classes == freeRuns.count else { throw SnapshotError("bucket slab: \(classes) size classes, expected \(freeRuns.count)") }
        for index in 0..<classes { freeRuns[index] = try reader.readArray(UInt32.self, "bucket free list") }
    }

    /// Whether a run read from a snapshot lies inside the slab and its entries name counters
    /// that exist.
    func isValid(_ run: Run, counters: Int) -> Bool {
        guard run != 0 else { return true }
        guard Self.sizeClass(run) < freeRuns.count,
              Self.count(run) <= Self.capacity(ofClass: Self.sizeClass(run)),
              Self.offset(run) + Self.capacity(ofClass: Self.sizeClass(run)) <= storage.count
        else { return false }
        let offset = Self.offset(run)
        return storage[offset..<(offset + Self.count(run))].allSatisfy { Self.counter($0) < counters }
    }
}
