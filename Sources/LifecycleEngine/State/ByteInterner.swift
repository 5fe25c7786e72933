/// Maps byte strings (user ids, attribute values) to dense `UInt32` indices.
///
/// Each key has one 8-byte span: keys of up to 7 bytes live inside it (`u123456` costs
/// nothing more), longer ones in a shared byte arena. The hash table holds only indices,
/// so a lookup hashes borrowed bytes, allocates nothing and usually touches two cache lines.
/// Removed keys are zeroed at once (erasure is a privacy feature) and their indices reused;
/// the arena is compacted when most of it is dead. Inline keys assume a little-endian
/// machine, as the engine's snapshots do.
struct ByteInterner: Sendable {
    /// `length (8 bits) | inline bytes (56 bits)` for short keys, `length | arena offset` otherwise.
    private var spans: [UInt64] = []
    private var arena: [UInt8] = []
    /// Open addressing with linear probing; 0 is empty, `tombstone` a removed entry, else index + 1.
    private var table: [UInt32] = Array(repeating: 0, count: 16)
    private var tableUsed = 0
    private var freeIndices: [UInt32] = []
    private var deadBytes = 0
    private(set) var count = 0

    private static let tombstone = UInt32.max
    private static let inlineLimit = 7
    static let maxKeyLength = Int(UInt8.max)

    /// Indices ever handed out (live or free); per-index records are sized to this.
    var capacity: Int { spans.count }

    func find(_ key: UnsafeRawBufferPointer) -> UInt32? {
        // A short key (every lookup of an event, as a rule) is read once and then compared as
        // a whole span.
        if key.count <= Self.inlineLimit {
            let bytes = Self.inlineBytes(key)
            let span = Self.inlineSpan(bytes, count: key.count)
            return probe(Self.finishHash(Self.hashSeed(key.count), tail: bytes)) { spans[$0] == span }
        }
        return probe(Self.hash(key)) { equalsLongKey($0, key) }
    }

    /// The index the table holds for `hash` whose key `matches`.
    @inline(__always) private func probe(_ hash: UInt64, _ matches: (Int) -> Bool) -> UInt32? {
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = table[slot]
            if entry == 0 { return nil }
            if entry != Self.tombstone, matches(Int(entry - 1)) { return entry - 1 }
            slot = (slot + 1) & mask
        }
    }

    /// The index of `key`, inserting it if absent; `inserted` tells which.
    /// Keys must be at most `maxKeyLength` bytes (callers reject longer ones).
    mutating func intern(_ key: UnsafeRawBufferPointer) -> (index: UInt32, inserted: Bool) {
        if let index = find(key) { return (index, false) }
        if (tableUsed + 1) * 4 > table.count * 3 { rehash(to: count * 2 >= table.count / 2 ? table.count * 2 : table.count) }
        let span: UInt64
        if key.count <= Self.inlineLimit {
            span = Self.inlineSpan(Self.inlineBytes(key), count: key.count)
        } else {
            span = UInt64(arena.count) << 8 | UInt64(key.count)
            arena.append(contentsOf: key)
        }
        let index: UInt32
        if let reused = freeIndices.popLast() {
            index = reused
            spans[Int(index)] = span
        } else {
            index = UInt32(spans.count)
            spans.append(span)
        }
        insertIntoTable(index, hash: Self.hash(key))
        tableUsed += 1
        count += 1
        return (index, true)
    }

    mutating func remove(_ index: UInt32) {
        let hash = withKey(index) { Self.hash($0) }
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while table[slot] != index + 1 { slot = (slot + 1) & mask }
        table[slot] = Self.tombstone
        let span = spans[Int(index)]
        let length = Int(span & 0xFF)
        if length > Self.inlineLimit {
            let start = Int(span >> 8)
            for position in start..<(start + length) { arena[position] = 0 }
            deadBytes += length
        }
        spans[Int(index)] = 0
        freeIndices.append(index)
        count -= 1
        if deadBytes > 1 << 20, deadBytes * 2 > arena.count { compact() }
    }

    func withKey<R>(_ index: UInt32, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let span = spans[Int(index)]
        let length = Int(span & 0xFF)
        if length <= Self.inlineLimit {
            return withUnsafeBytes(of: span >> 8) { body(UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
        }
        let start = Int(span >> 8)
        return arena.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start..<(start + length)])) }
    }

    /// Whether `index` holds a key (for indices below `capacity`), in an interner that never
    /// stores an empty key (user ids): only removed keys have an all-zero span.
    func isLive(_ index: UInt32) -> Bool { spans[Int(index)] != 0 }

    func string(_ index: UInt32) -> String {
        withKey(index) { String(decoding: $0, as: UTF8.self) }
    }

    /// Heap bytes held, for memory reporting.
    var allocatedBytes: Int {
        spans.capacity * 8 + arena.capacity + table.capacity * 4 + freeIndices.capacity * 4
    }

    /// The span of a key of at most `inlineLimit` bytes: its bytes (from `inlineBytes`),
    /// then its length.
    @inline(__always)
    private static func inlineSpan(_ bytes: UInt64, count: Int) -> UInt64 { bytes << 8 | UInt64(count) }

    /// Up to 7 bytes, little-endian, zero-padded.
    @inline(__always)
    private static func inlineBytes(_ key: UnsafeRawBufferPointer) -> UInt64 {
        littleEndian(key, from: 0, count: key.count)
    }

    /// `count` (below 8) bytes from `start` as a little-endian number, zero-padded: two
    /// overlapping loads instead of a step per byte.
    @inline(__always)
    private static func littleEndian(_ bytes: UnsafeRawBufferPointer, from start: Int, count: Int) -> UInt64 {
        switch count {
        case 4...7:
            let low = UInt64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
            let high = UInt64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start + count - 4, as: UInt32.self)))
            return low | high << UInt64(8 * (count - 4))
        case 2...3:
            let low = UInt64(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt16.self)))
            let high = UInt64(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: start + count - 2, as: UInt16.self)))
            return low | high << UInt64(8 * (count - 2))
        case 1: return UInt64(bytes[start])
        default: return 0
        }
    }

    private func equalsLongKey(_ index: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let span = spans[index]
        let length = Int(span & 0xFF)
        guard length == key.count, length > Self.inlineLimit else { return false }
        let start = Int(span >> 8)
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

    /// Rewrites the arena without the zeroed bytes of removed keys.
    private mutating func compact() {
        var packed: [UInt8] = []
        packed.reserveCapacity(arena.count - deadBytes)
        for index in spans.indices where Int(spans[index] & 0xFF) > Self.inlineLimit {
            let length = Int(spans[index] & 0xFF)
            let start = Int(spans[index] >> 8)
            spans[index] = UInt64(packed.count) << 8 | UInt64(length)
            packed.append(contentsOf: arena[start..<(start + length)])
        }
        arena = packed
        deadBytes = 0
    }

    /// A fast non-cryptographic hash of a short byte string (8 bytes per step).
    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var h = hashSeed(key.count)
        var index = 0
        while index + 8 <= key.count {
            let word = key.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            h = (h ^ word) &* 0xbf58_476d_1ce4_e5b9
            h ^= h >> 29
            index += 8
        }
        return finishHash(h, tail: littleEndian(key, from: index, count: key.count - index))
    }

    @inline(__always) private static func hashSeed(_ count: Int) -> UInt64 { 0x9e37_79b9_7f4a_7c15 ^ UInt64(count) }

    /// Mixes in the last (up to 7) bytes, `tail` as from `littleEndian`.
    @inline(__always) private static func finishHash(_ state: UInt64, tail: UInt64) -> UInt64 {
        var h = (state ^ tail) &* 0x94d0_49bb_1331_11eb
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
    /// The hash table is written too: rebuilding it would hash every key again, the
    /// slowest part of reading a large partition.
    func write(to writer: inout SnapshotWriter) {
        writer.write(spans)
        writer.write(arena)
        writer.write(freeIndices)
        writer.write(UInt64(deadBytes))
        writer.write(table)
        writer.write(UInt64(tableUsed))
    }

    /// Bytes `write` writes.
    var snapshotBytes: Int { 56 + spans.count * 8 + arena.count + freeIndices.count * 4 + table.count * 4 }

    init(from reader: inout SnapshotReader, _ what: String) throws(SnapshotError) {
        spans = try reader.readArray(UInt64.self, "\(what) spans", growing: true)
        arena = try reader.readArray(UInt8.self, "\(what) bytes", growing: true)
        freeIndices = try reader.readArray(UInt32.self, "\(what) free list")
        deadBytes = Int(try reader.read(UInt64.self, "\(what) dead bytes"))
        table = try reader.readArray(UInt32.self, "\(what) table")
        tableUsed = Int(try reader.read(UInt64.self, "\(what) table use"))
        count = spans.count - freeIndices.count
        guard freeIndices.allSatisfy({ Int($0) < spans.count }) else { throw SnapshotError("\(what): free list out of range") }
        for span in spans where Int(span & 0xFF) > Self.inlineLimit && Int(span >> 8) + Int(span & 0xFF) > arena.count {
            throw SnapshotError("\(what): a key lies outside its arena")
        }
        // Every lookup must end at an empty slot and land on an index that exists.
        let limit = UInt32(spans.count)
        guard table.count >= 16, table.count & (table.count - 1) == 0, tableUsed >= count, tableUsed < table.count,
              table.allSatisfy({ $0 == Self.tombstone || $0 <= limit }),
              table.lazy.filter({ $0 != 0 && $0 != Self.tombstone }).count == count
        else { throw SnapshotError("\(what): inconsistent hash table") }
    }
}
