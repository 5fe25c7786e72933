/// Per-user state, one fixed-size record per interned user index, records back to back.
///
/// An event touches most of its user's fields, so keeping them in one record (one or two
/// cache lines) instead of one array per field saves a cache miss per field on the hot
/// path. The record's shape depends on the rules (how many triggers and attributes), so it
/// is laid out in 64-bit words at run time:
///
///     word 0 last seen · 1 stage since · 2 scheduled timer · 3 bucket run
///     then bytes: stage, trigger flags (2 bits per trigger), attributes (UInt16 each)
///
/// Last firings live in the bucket run, and only while they matter: most users have none.
struct UserRecords: Sendable {

    enum Field: Int {
        case lastSeen = 0, stageSince, scheduled
    }

    let attributeCount: Int
    let triggerCount: Int
    /// Two bits per trigger: condition was true at the last evaluation, goal already converted.
    let flagBytes: Int
    let strideWords: Int
    private let smallFieldsByte: Int
    private(set) var words: [UInt64] = []

    init(attributeCount: Int, triggerCount: Int) {
        self.attributeCount = attributeCount
        self.triggerCount = triggerCount
        flagBytes = (triggerCount * 2 + 7) / 8
        smallFieldsByte = 4 * 8
        let smallBytes = 1 + flagBytes + attributeCount * 2
        strideWords = 4 + (smallBytes + 7) / 8
    }

    var count: Int { words.count / strideWords }

    // Record offsets use wrapping arithmetic: user indices come from the interner, below
    // `count`, and an overflow check per operation on every field access costs a branch
    // each. The word accessors are bounds-checked by the array; the byte accessors read
    // raw buffers, unchecked in release builds whether or not the offset was.

    @inline(__always) subscript(user: Int, field: Field) -> Int64 {
        get { Int64(bitPattern: words[user &* strideWords &+ field.rawValue]) }
        set { words[user &* strideWords &+ field.rawValue] = UInt64(bitPattern: newValue) }
    }

    /// The user's window buckets (see `BucketStore.Run`).
    @inline(__always) subscript(run user: Int) -> BucketStore.Run {
        get { words[user &* strideWords &+ 3] }
        set { words[user &* strideWords &+ 3] = newValue }
    }

    @inline(__always) private func byteOffset(_ user: Int, _ offset: Int) -> Int {
        user &* strideWords &* 8 &+ smallFieldsByte &+ offset
    }

    @inline(__always) subscript(stage user: Int) -> UInt8 {
        get { words.withUnsafeBytes { $0[byteOffset(user, 0)] } }
        set {
            let offset = byteOffset(user, 0)
            words.withUnsafeMutableBytes { $0[offset] = newValue }
        }
    }

    @inline(__always) subscript(attribute user: Int, index: Int) -> UInt16 {
        get { words.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: byteOffset(user, 1 + flagBytes + index * 2), as: UInt16.self) } }
        set {
            let offset = byteOffset(user, 1 + flagBytes + index * 2)
            words.withUnsafeMutableBytes { $0.storeBytes(of: newValue, toByteOffset: offset, as: UInt16.self) }
        }
    }

    @inline(__always) func flag(_ user: Int, _ bit: Int) -> Bool {
        words.withUnsafeBytes { $0[byteOffset(user, 1 + bit >> 3)] & (1 << UInt8(bit & 7)) != 0 }
    }

    @inline(__always) mutating func setFlag(_ user: Int, _ bit: Int, _ value: Bool) {
        let offset = byteOffset(user, 1 + bit >> 3)
        let mask: UInt8 = 1 << UInt8(bit & 7)
        words.withUnsafeMutableBytes { $0[offset] = value ? $0[offset] | mask : $0[offset] & ~mask }
    }

    /// Whether any trigger's condition bit is set: the even bits of the flag bytes.
    @inline(__always) func hasConditionFlags(_ user: Int) -> Bool {
        let start = byteOffset(user, 1)
        return words.withUnsafeBytes { bytes in
            (start..<(start &+ flagBytes)).contains { bytes[$0] & 0x55 != 0 }
        }
    }

    @inline(__always) static func conditionBit(_ trigger: Int) -> Int { trigger * 2 }
    @inline(__always) static func convertedBit(_ trigger: Int) -> Int { trigger * 2 + 1 }

    /// Sets up a new user at `index` (appending a record when it is a fresh index).
    mutating func reset(_ index: Int, stage initial: UInt8, at time: Int64) {
        if index == count {
            words.append(contentsOf: repeatElement(0, count: strideWords))
        } else {
            clear(index)
        }
        self[index, .lastSeen] = time
        self[index, .stageSince] = time
        self[index, .scheduled] = .max
        self[stage: index] = initial
    }

    /// Zeroes a record (an erased user leaves no values behind).
    mutating func clear(_ index: Int) {
        for word in (index * strideWords)..<((index + 1) * strideWords) { words[word] = 0 }
    }

    var allocatedBytes: Int { words.capacity * 8 }
}

extension UserRecords {
    func write(to writer: inout SnapshotWriter) {
        writer.write(UInt32(strideWords))
        writer.write(words)
    }

    init(from reader: inout SnapshotReader, attributeCount: Int, triggerCount: Int) throws(SnapshotError) {
        self.init(attributeCount: attributeCount, triggerCount: triggerCount)
        let stride = Int(try reader.read(UInt32.self, "user record size"))
        guard stride == strideWords else { throw SnapshotError("user records of \(stride) words, expected \(strideWords)") }
        words = try reader.readArray(UInt64.self, "user records", growing: true)
        guard words.count % strideWords == 0 else { throw SnapshotError("user records end in the middle of a record") }
    }
}
