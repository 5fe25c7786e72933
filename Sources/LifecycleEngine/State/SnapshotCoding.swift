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

    /// The bytes written, handed over without a copy.
    public consuming func finish() -> [UInt8] { bytes }

    public var count: Int { bytes.count }

    /// Appends raw bytes (no count).
    public mutating func write(bytes raw: [UInt8]) { bytes.append(contentsOf: raw) }

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
        array.withUnsafeBytes { bytes.append(contentsOf: $0) }
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

public struct SnapshotReader {
    private let bytes: [UInt8]
    private var position = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { position == bytes.count }

    private mutating func take(_ count: Int, _ what: String) throws(SnapshotError) -> Range<Int> {
        guard count >= 0, bytes.count - position >= count else {
            throw SnapshotError("truncated while reading \(what) at byte \(position)")
        }
        defer { position += count }
        return position..<(position + count)
    }

    public mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(SnapshotError) -> T {
        let range = try take(MemoryLayout<T>.size, what)
        return bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: range.lowerBound, as: T.self)) }
    }

    public mutating func readString(_ what: String) throws(SnapshotError) -> String {
        let count = Int(try read(UInt32.self, what))
        let range = try take(count, what)
        return String(decoding: bytes[range], as: UTF8.self)
    }

    public mutating func readArray<T: BitwiseCopyable>(_: T.Type, _ what: String) throws(SnapshotError) -> [T] {
        let count = try read(UInt64.self, what)
        let size = MemoryLayout<T>.stride
        guard count <= UInt64((bytes.count - position) / max(size, 1)) else {
            throw SnapshotError("truncated while reading \(what): \(count) elements announced at byte \(position)")
        }
        let range = try take(Int(count) * size, what)
        return [T](unsafeUninitializedCapacity: Int(count)) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[range]))
            }
            initialized = Int(count)
        }
    }
}
