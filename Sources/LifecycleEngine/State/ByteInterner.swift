/// Maps byte strings (user ids, attribute values) to dense `UInt32` indices.
///
/// Keys live back to back in one byte arena and the hash table holds only indices, so a
/// lookup hashes borrowed bytes and allocates nothing; a tracked id costs its length plus
/// about 10 bytes. Removed keys are zeroed at once (erasure is a privacy feature) and their
/// indices reused; the arena is compacted when most of it is dead.
struct ByteInterner: Sendable {
    private var arena: [UInt8] = []
    private var offsets: [UInt32] = []
    private var lengths: [UInt8] = []
    /// Open addressing with linear probing; 0 is empty, `tombstone` a removed entry, else index + 1.
    private var table: [UInt32] = Array(repeating: 0, count: 16)
    private var tableUsed = 0
    private var freeIndices: [UInt32] = []
    private var deadBytes = 0
    private(set) var count = 0

    private static let tombstone = UInt32.max
    static let maxKeyLength = Int(UInt8.max)

    /// Indices ever handed out (live or free); per-index columns are sized to this.
    var capacity: Int { offsets.count }

    func find(_ key: UnsafeRawBufferPointer) -> UInt32? {
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
        while true {
            let entry = table[slot]
            if entry == 0 { return nil }
            if entry != Self.tombstone, equals(Int(entry - 1), key) { return entry - 1 }
            slot = (slot + 1) & mask
        }
    }

    /// The index of `key`, inserting it if absent; `inserted` tells which.
    /// Keys must be at most `maxKeyLength` bytes (callers reject longer ones).
    mutating func intern(_ key: UnsafeRawBufferPointer) -> (index: UInt32, inserted: Bool) {
        if let index = find(key) { return (index, false) }
        if (tableUsed + 1) * 4 > table.count * 3 { rehash(to: count * 2 >= table.count / 2 ? table.count * 2 : table.count) }
        let index: UInt32
        let offset = UInt32(arena.count)
        arena.append(contentsOf: key)
        if let reused = freeIndices.popLast() {
            index = reused
            offsets[Int(index)] = offset
            lengths[Int(index)] = UInt8(key.count)
        } else {
            index = UInt32(offsets.count)
            offsets.append(offset)
            lengths.append(UInt8(key.count))
        }
        insertIntoTable(index, hash: Self.hash(key))
        tableUsed += 1
        count += 1
        return (index, true)
    }

    mutating func remove(_ index: UInt32) {
        let i = Int(index)
        let start = Int(offsets[i])
        let length = Int(lengths[i])
        let hash = arena.withUnsafeBytes { Self.hash(UnsafeRawBufferPointer(rebasing: $0[start..<(start + length)])) }
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while table[slot] != index + 1 { slot = (slot + 1) & mask }
        table[slot] = Self.tombstone
        for position in start..<(start + length) { arena[position] = 0 }
        lengths[i] = 0
        deadBytes += length
        freeIndices.append(index)
        count -= 1
        if deadBytes > 1 << 20, deadBytes * 2 > arena.count { compact() }
    }

    func withKey<R>(_ index: UInt32, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let start = Int(offsets[Int(index)])
        let length = Int(lengths[Int(index)])
        return arena.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start..<(start + length)])) }
    }

    func string(_ index: UInt32) -> String {
        withKey(index) { String(decoding: $0, as: UTF8.self) }
    }

    /// Heap bytes held, for memory reporting.
    var allocatedBytes: Int {
        arena.capacity + offsets.capacity * 4 + lengths.capacity + table.capacity * 4 + freeIndices.capacity * 4
    }

    private func equals(_ index: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let length = Int(lengths[index])
        guard length == key.count else { return false }
        if length == 0 { return true }
        let start = Int(offsets[index])
        return arena.withUnsafeBytes { memcmpEqual($0.baseAddress! + start, key.baseAddress!, length) }
    }

    private mutating func insertIntoTable(_ index: UInt32, hash: UInt64) {
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while table[slot] != 0 && table[slot] != Self.tombstone { slot = (slot + 1) & mask }
        table[slot] = index + 1
    }

    /// Rebuilds the table from its live entries (dropping tombstones), at `size` slots.
    private mutating func rehash(to size: Int) {
        let old = table
        table = Array(repeating: 0, count: size)
        tableUsed = 0
        for entry in old where entry != 0 && entry != Self.tombstone {
            let hash = withKey(entry - 1) { Self.hash($0) }
            insertIntoTable(entry - 1, hash: hash)
            tableUsed += 1
        }
    }

    /// Rewrites the arena without the zeroed bytes of removed keys (their length is 0).
    private mutating func compact() {
        var packed: [UInt8] = []
        packed.reserveCapacity(arena.count - deadBytes)
        for index in offsets.indices {
            let start = Int(offsets[index])
            offsets[index] = UInt32(packed.count)
            packed.append(contentsOf: arena[start..<(start + Int(lengths[index]))])
        }
        arena = packed
        deadBytes = 0
    }

    /// A fast non-cryptographic hash of a short byte string (8 bytes per step).
    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9e37_79b9_7f4a_7c15 ^ UInt64(key.count)
        var index = 0
        while index + 8 <= key.count {
            let word = key.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            h = (h ^ word) &* 0xbf58_476d_1ce4_e5b9
            h ^= h >> 29
            index += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while index < key.count {
            tail |= UInt64(key[index]) << shift
            shift += 8
            index += 1
        }
        h = (h ^ tail) &* 0x94d0_49bb_1331_11eb
        h ^= h >> 31
        h = h &* 0xbf58_476d_1ce4_e5b9
        return h ^ (h >> 32)
    }
}

@inline(__always)
private func memcmpEqual(_ lhs: UnsafeRawPointer, _ rhs: UnsafeRawPointer, _ count: Int) -> Bool {
    var index = 0
    while index + 8 <= count {
        if lhs.loadUnaligned(fromByteOffset: index, as: UInt64.self) != rhs.loadUnaligned(fromByteOffset: index, as: UInt64.self) {
            return false
        }
        index += 8
    }
    while index < count {
        if lhs.load(fromByteOffset: index, as: UInt8.self) != rhs.load(fromByteOffset: index, as: UInt8.self) { return false }
        index += 1
    }
    return true
}

extension ByteInterner {
    func write(to writer: inout SnapshotWriter) {
        writer.write(arena)
        writer.write(offsets)
        writer.write(lengths)
        writer.write(freeIndices)
        writer.write(UInt64(deadBytes))
    }

    /// Reads what `write` wrote; the hash table is rebuilt rather than stored.
    init(from reader: inout SnapshotReader, _ what: String) throws(SnapshotError) {
        arena = try reader.readArray(UInt8.self, "\(what) bytes")
        offsets = try reader.readArray(UInt32.self, "\(what) offsets")
        lengths = try reader.readArray(UInt8.self, "\(what) lengths")
        freeIndices = try reader.readArray(UInt32.self, "\(what) free list")
        deadBytes = Int(try reader.read(UInt64.self, "\(what) dead bytes"))
        guard offsets.count == lengths.count, freeIndices.allSatisfy({ Int($0) < offsets.count }) else {
            throw SnapshotError("\(what): inconsistent index columns")
        }
        for index in offsets.indices where Int(offsets[index]) + Int(lengths[index]) > arena.count {
            throw SnapshotError("\(what): key \(index) lies outside its arena")
        }
        count = offsets.count - freeIndices.count
        var size = 16
        while size * 3 < count * 4 * 2 { size *= 2 }
        table = Array(repeating: 0, count: size)
        var free = Array(repeating: false, count: offsets.count)
        for index in freeIndices { free[Int(index)] = true }
        for index in offsets.indices where !free[index] {
            let hash = withKey(UInt32(index)) { Self.hash($0) }
            insertIntoTable(UInt32(index), hash: hash)
        }
        tableUsed = count
    }
}
