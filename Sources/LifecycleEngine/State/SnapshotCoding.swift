/// A minimal binary writer/reader for engine snapshots and the files that hold them:
/// little-endian scalars and arrays of trivial values written as raw bytes with their
/// count, so a whole column is one copy.
public struct SnapshotWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// Writes into `storage`'s memory (its contents are dropped, its capacity kept).
    public init(reusing storage: consuming [UInt8]) {
        // Moved, not copied: a second reference would make `removeAll` allocate anew.
        bytes = consume storage
        bytes.removeAll(keepingCapacity: true)
    }

    /// Makes room for `count` more bytes at once.
    public mutating func reserve(_ count: Int) { bytes.reserveCapacity(bytes.count + count) }

    /// The bytes written, handed over without a copy.
    public consuming func finish() -> [UInt8] { bytes }

    public var count: Int { bytes.count }

    /// Appends raw bytes (no count).
    public mutating func write(bytes raw: some Collection<UInt8>) { bytes.append(contentsOf: raw) }

    /// Writes a placeholder for a length that is known only after what follows is written.
    public mutating func reserveLength() -> Int {
        defer { write(UInt64(0)) }
        return bytes.count
    }

    /// Fills the placeholder at `position` with the number of bytes written after it.
    public mutating func patchLength(at position: Int) {
        let length = UInt64(bytes.count - position - 8).littleEndian
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: length, toByteOffset: position, as: UInt64.self) }
    }

    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ string: String) {
        write(UInt32(string.utf8.count))
        bytes.append(contentsOf: string.utf8)
    }

    /// Raw element bytes: snapshots are read back on a machine of the same byte order
    /// (checked through the header's byte-order mark).
    public mutating func write<T: BitwiseCopyable>(_ array: [T]) {
        write(UInt64(array.count))
        // As typed bytes, so the append is one memcpy rather than a byte-at-a-time copy.
        array.withUnsafeBytes { raw in bytes.append(contentsOf: raw.assumingMemoryBound(to: UInt8.self)) }
    }
}

/// The snapshot is damaged or was written by something else; `reason` says what.
public struct SnapshotError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    /// Written by an older build in a format this one no longer reads: the state is sound,
    /// only its layout changed, so it can be rebuilt from the changelog.
    public var isOutdatedFormat = false
    public init(_ reason: String, isOutdatedFormat: Bool = false) {
        self.reason = reason
        self.isOutdatedFormat = isOutdatedFormat
    }
    public var description: String { reason }
}

/// Reads what `SnapshotWriter` wrote. It reads a slice of a larger buffer in place (a
/// checkpoint file's bytes): a snapshot is never copied whole before its columns are.
public struct SnapshotReader {
    private let bytes: ArraySlice<UInt8>
    private var position: Int

    public init(_ bytes: [UInt8]) { self.init(bytes[...]) }

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    public var isAtEnd: Bool { position == bytes.endIndex }

    /// The bytes read so far, for error messages.
    private var offset: Int { position - bytes.startIndex }

    private mutating func take(_ count: Int, _ what: String) throws(SnapshotError) -> Range<Int> {
        guard count >= 0, bytes.endIndex - position >= count else {
            throw SnapshotError("truncated while reading \(what) at byte \(offset)")
        }
        defer { position += count }
        return position..<(position + count)
    }

    public mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(SnapshotError) -> T {
        let range = try take(MemoryLayout<T>.size, what)
        return bytes.withUnsafeBytes {
            T(littleEndian: $0.loadUnaligned(fromByteOffset: range.lowerBound - bytes.startIndex, as: T.self))
        }
    }

    public mutating func readString(_ what: String) throws(SnapshotError) -> String {
        let count = Int(try read(UInt32.self, what))
        let range = try take(count, what)
        return String(decoding: bytes[range], as: UTF8.self)
    }

    /// The next `count`-prefixed run of bytes, as a slice of the same buffer (no copy).
    public mutating func readSlice(_ what: String) throws(SnapshotError) -> ArraySlice<UInt8> {
        let count = try read(UInt64.self, what)
        guard count <= UInt64(bytes.endIndex - position) else {
            throw SnapshotError("truncated while reading \(what): \(count) bytes announced at byte \(offset)")
        }
        return bytes[try take(Int(count), what)]
    }

    /// Room for a restored state column: a quarter more than it holds.
    static func capacityToGrow(holding count: Int) -> Int { count + count / 4 }

    /// An array as `write` wrote it. `growing`: a state column that is appended to as the
    /// partition runs, given room to grow (`capacityToGrow`). Read back exactly sized, its
    /// first append would copy it into twice the room, so a restored process would grow in
    /// steps for minutes and settle at a size that depends on which columns happened to
    /// cross their capacity.
    public mutating func readArray<T: BitwiseCopyable>(_: T.Type, _ what: String, growing: Bool = false) throws(SnapshotError) -> [T] {
        let count = try read(UInt64.self, what)
        let size = MemoryLayout<T>.stride
        guard count <= UInt64((bytes.endIndex - position) / max(size, 1)) else {
            throw SnapshotError("truncated while reading \(what): \(count) elements announced at byte \(offset)")
        }
        let range = try take(Int(count) * size, what)
        return [T](unsafeUninitializedCapacity: growing ? Self.capacityToGrow(holding: Int(count)) : Int(count)) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                let start = range.lowerBound - bytes.startIndex
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[start..<(start + range.count)]))
            }
            initialized = Int(count)
        }
    }
}
