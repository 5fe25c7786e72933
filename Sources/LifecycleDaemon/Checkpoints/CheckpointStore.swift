import Glibc
import LifecycleEngine

/// One partition's saved state: the engine as it was after consuming every message before
/// `nextOffset`, under the rules of `configVersion`.
public struct Checkpoint: Sendable, Equatable {
    public var nextOffset: Int64
    public var configVersion: String
    public var engineSnapshot: [UInt8]

    public init(nextOffset: Int64, configVersion: String, engineSnapshot: [UInt8]) {
        self.nextOffset = nextOffset
        self.configVersion = configVersion
        self.engineSnapshot = engineSnapshot
    }
}

/// A checkpoint that cannot be written or used. The daemon stops rather than silently
/// starting over: the message names the file and, for an unusable checkpoint, what to do.
public struct CheckpointError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    /// What the operator can do about it.
    public var advice: String?

    public init(path: String, reason: String, advice: String? = nil) {
        self.path = path
        self.reason = reason
        self.advice = advice
    }

    /// A checkpoint that exists but cannot be restored.
    static func unusable(_ path: String, _ reason: String) -> CheckpointError {
        CheckpointError(
            path: path, reason: reason,
            advice: "The partition's state cannot be restored from it. To rebuild the state from the topic instead, "
                + "move the file out of the state directory and restart (the partition is then read from its earliest "
                + "retained offset; triggers seen before are re-sent with the same ids).")
    }

    public var description: String { "\(path): \(reason)" + (advice.map { ". \($0)" } ?? "") }
}

/// Per-partition checkpoint files in the state directory, written atomically: a temporary
/// file is written and fsynced, then renamed over the old one, and the directory is synced,
/// so a crash at any moment leaves either the old or the new checkpoint, whole.
///
/// File layout (little-endian): magic `LCYCCKPT`, format version, next offset, config
/// version, engine snapshot, and a CRC-32 of everything before it.
public struct CheckpointStore: Sendable {
    public let directory: String
    static let magic: UInt64 = 0x5450_4b43_4359_434c
    static let formatVersion: UInt32 = 1

    public init(directory: String) {
        self.directory = directory
    }

    /// `<topic>.<partition>.checkpoint`; topic names cannot contain `/` in Kafka.
    public func path(topic: String, partition: Int32) -> String {
        "\(directory)/\(topic).\(partition).checkpoint"
    }

    /// Creates the state directory (and its parents) if needed; errors say which and why.
    public func prepare() throws(CheckpointError) {
        var path = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            path += "/" + component
            if mkdir(path, 0o750) != 0 && errno != EEXIST {
                throw CheckpointError(path: directory, reason: "cannot create the state directory (\(path)): \(Self.systemError())")
            }
        }
        guard access(directory, W_OK) == 0 else {
            throw CheckpointError(path: directory, reason: "the state directory is not writable: \(Self.systemError())")
        }
    }

    public func write(_ checkpoint: Checkpoint, topic: String, partition: Int32) throws(CheckpointError) {
        let target = path(topic: topic, partition: partition)
        var writer = SnapshotWriter()
        writer.write(Self.magic)
        writer.write(Self.formatVersion)
        writer.write(checkpoint.nextOffset)
        writer.write(checkpoint.configVersion)
        writer.write(checkpoint.engineSnapshot)
        var bytes = writer.bytes
        let crc = bytes.withUnsafeBytes { CRC32.checksum($0) }
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }

        let temporary = target + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw CheckpointError(path: temporary, reason: "cannot create: \(Self.systemError())") }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                let reason = Self.systemError()
                close(descriptor)
                throw CheckpointError(path: temporary, reason: "cannot write: \(reason)")
            }
            written += result
        }
        guard fsync(descriptor) == 0 else {
            let reason = Self.systemError()
            close(descriptor)
            throw CheckpointError(path: temporary, reason: "cannot sync to disk: \(reason)")
        }
        close(descriptor)
        guard rename(temporary, target) == 0 else {
            throw CheckpointError(path: target, reason: "cannot replace with \(temporary): \(Self.systemError())")
        }
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// The partition's checkpoint, nil if there is none; a damaged or foreign file throws.
    public func read(topic: String, partition: Int32) throws(CheckpointError) -> Checkpoint? {
        let target = path(topic: topic, partition: partition)
        let descriptor = open(target, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            if errno == ENOENT { return nil }
            throw CheckpointError(path: target, reason: "cannot open: \(Self.systemError())")
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw CheckpointError(path: target, reason: "cannot read: \(Self.systemError())") }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return try Self.decode(bytes, path: target)
    }

    static func decode(_ bytes: [UInt8], path: String) throws(CheckpointError) -> Checkpoint {
        func fail(_ reason: String) -> CheckpointError { .unusable(path, reason) }
        guard bytes.count >= 16 else { throw fail("too short to be a checkpoint (\(bytes.count) bytes)") }
        var reader = SnapshotReader(Array(bytes[0..<(bytes.count - 4)]))
        do {
            guard try reader.read(UInt64.self, "header") == magic else { throw fail("not a lifecycled checkpoint") }
            let stored = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self)) }
            let computed = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count - 4)])) }
            guard stored == computed else { throw fail("damaged: its checksum does not match its contents") }
            let version = try reader.read(UInt32.self, "format version")
            guard version == formatVersion else {
                throw fail("written in checkpoint format \(version); this build reads format \(formatVersion)")
            }
            let checkpoint = Checkpoint(
                nextOffset: try reader.read(Int64.self, "next offset"),
                configVersion: try reader.readString("config version"),
                engineSnapshot: try reader.readArray(UInt8.self, "engine snapshot"))
            guard reader.isAtEnd else { throw fail("damaged: unexpected bytes after the engine snapshot") }
            return checkpoint
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw fail("damaged: \(error)")
        }
    }

    private static func systemError() -> String { String(cString: strerror(errno)) }
}
