import Glibc
import LifecycleEngine

/// One partition's saved state: the engine as it was after consuming every message before
/// `nextOffset`, under the rules of `configVersion`.
public struct Checkpoint: Sendable, Equatable {
    public var nextOffset: Int64
    /// Where in the partition's changelog a restore reads on from to bring this state up to
    /// date (every record before it is in the state); nil without a changelog.
    public var changelogPosition: Int64?
    public var configVersion: String
    /// A slice of the file's bytes when read: the engine reads its columns from it in place.
    public var engineSnapshot: ArraySlice<UInt8>

    public init(nextOffset: Int64, changelogPosition: Int64? = nil, configVersion: String, engineSnapshot: ArraySlice<UInt8>) {
        self.nextOffset = nextOffset
        self.changelogPosition = changelogPosition
        self.configVersion = configVersion
        self.engineSnapshot = engineSnapshot
    }

    public init(nextOffset: Int64, changelogPosition: Int64? = nil, configVersion: String, engineSnapshot: [UInt8]) {
        self.init(nextOffset: nextOffset, changelogPosition: changelogPosition, configVersion: configVersion, engineSnapshot: engineSnapshot[...])
    }
}

/// What a checkpoint's first bytes say: where its partition resumes, and whose state it is.
public struct CheckpointHeader: Sendable, Equatable {
    public var nextOffset: Int64
    public var changelogPosition: Int64?
    public var configVersion: String
    /// The partition it was taken of and the Kafka cluster's id then (nil: a file from
    /// before format 3, or a cluster whose id was unknown).
    public var topic: String?
    public var partition: Int32?
    public var clusterID: String?
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
/// so a crash at any moment leaves either the old or the new checkpoint, whole. The steps
/// are separate calls because the daemon publishes a checkpoint only once Kafka has
/// acknowledged the triggers its events caused (`CheckpointWriter`).
///
/// File layout (little-endian): magic `LCYCCKPT`, format version, next offset, changelog
/// position, config version, topic, partition, cluster id, engine snapshot, and a CRC-32 of
/// everything before it.
public struct CheckpointStore: Sendable {
    public let directory: String
    /// The Kafka cluster's id (nil: unknown). Checkpoints record it; one taken on another
    /// cluster is refused, since its offsets mean nothing here.
    public var clusterID: String?
    static let magic: UInt64 = 0x5450_4b43_4359_434c
    /// 2 added the changelog position, 3 the topic, partition and cluster id; older files
    /// are still read (what they lack is unknown, and not checked).
    static let formatVersion: UInt32 = 3

    public init(directory: String, clusterID: String? = nil) {
        self.directory = directory
        self.clusterID = clusterID
    }

    /// `<topic>.<partition>.checkpoint`; topic names cannot contain `/` in Kafka.
    public func path(topic: String, partition: Int32) -> String {
        "\(directory)/\(topic).\(partition).checkpoint"
    }

    /// Creates the state directory (and its parents) if needed and locks it for this process
    /// (held while the returned lock is); errors say which and why.
    @discardableResult
    public func prepare() throws(CheckpointError) -> StateDirectoryLock {
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
        let lock = try StateDirectoryLock(directory: directory)
        // Only once locked: another instance's temporary files are not stale.
        removeStaleTemporaries()
        return lock
    }

    /// Temporary files a crash left half-written (never published, never read).
    private func removeStaleTemporaries() {
        guard let stream = opendir(directory) else { return }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.contains(".checkpoint.tmp") { unlink("\(directory)/\(name)") }
        }
    }

    /// Writes a whole checkpoint at once (the processing path writes in steps: `encode` on
    /// its thread, then `seal`, `writeTemporary` and `publish` elsewhere).
    public func write(_ checkpoint: Checkpoint, topic: String, partition: Int32) throws(CheckpointError) {
        var writer = SnapshotWriter()
        let header = CheckpointHeader(
            nextOffset: checkpoint.nextOffset, changelogPosition: checkpoint.changelogPosition, configVersion: checkpoint.configVersion,
            topic: topic, partition: partition, clusterID: clusterID)
        Self.encode(header, into: &writer) {
            $0.write(bytes: checkpoint.engineSnapshot)
        }
        let temporary = try writeTemporary(writer.finish(), topic: topic, partition: partition, attempt: 0)
        try publish(temporary, topic: topic, partition: partition)
    }

    /// Appends a checkpoint's header and the engine snapshot `snapshot` writes (no checksum
    /// yet: `writeTemporary` adds it, off the processing thread).
    public static func encode(_ header: CheckpointHeader, into writer: inout SnapshotWriter, snapshot: (inout SnapshotWriter) -> Void) {
        writer.write(magic)
        writer.write(formatVersion)
        writer.write(header.nextOffset)
        writer.write(header.changelogPosition ?? -1)
        writer.write(header.configVersion)
        writer.write(header.topic ?? "")
        writer.write(header.partition ?? -1)
        writer.write(header.clusterID ?? "")
        let length = writer.reserveLength()
        snapshot(&writer)
        writer.patchLength(at: length)
    }

    /// Writes `bytes` and their CRC-32 to a temporary file beside the partition's checkpoint
    /// and syncs it to disk; returns its path. Nothing is left behind if that fails.
    public func writeTemporary(
        _ bytes: [UInt8], topic: String, partition: Int32, attempt: Int
    ) throws(CheckpointError) -> String {
        let temporary = path(topic: topic, partition: partition) + ".tmp-\(attempt)"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw CheckpointError(path: temporary, reason: "cannot create: \(Self.systemError())") }
        func fail(_ what: String) -> CheckpointError {
            let error = CheckpointError(path: temporary, reason: "\(what): \(Self.systemError())")
            close(descriptor)
            unlink(temporary)
            return error
        }
        let crc = (bytes.withUnsafeBytes { CRC32.checksum($0) }).littleEndian
        let trailer = withUnsafeBytes(of: crc) { Array($0) }
        for part in [bytes, trailer] {
            var written = 0
            while written < part.count {
                let result = part.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written) }
                if result < 0 && errno == EINTR { continue }
                guard result > 0 else { throw fail("cannot write") }
                written += result
            }
        }
        guard fsync(descriptor) == 0 else { throw fail("cannot sync to disk") }
        close(descriptor)
        return temporary
    }

    /// Makes a synced temporary file the partition's checkpoint: renamed over the old one,
    /// then the directory synced so the rename itself survives a crash.
    public func publish(_ temporary: String, topic: String, partition: Int32) throws(CheckpointError) {
        let target = path(topic: topic, partition: partition)
        guard rename(temporary, target) == 0 else {
            let error = CheckpointError(path: target, reason: "cannot replace with \(temporary): \(Self.systemError())")
            unlink(temporary)
            throw error
        }
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryDescriptor >= 0 else {
            throw CheckpointError(path: directory, reason: "cannot open the state directory to sync it: \(Self.systemError())")
        }
        defer { close(directoryDescriptor) }
        guard fsync(directoryDescriptor) == 0 else {
            throw CheckpointError(path: directory, reason: "cannot sync the state directory: \(Self.systemError())")
        }
    }

    /// Removes a temporary file that will not be published.
    public func discard(_ temporary: String) { unlink(temporary) }

    /// A checkpoint's next offset and config version, read from its first bytes only: where
    /// an assigned partition starts, known before its state is read in the background.
    public func readHeader(topic: String, partition: Int32) throws(CheckpointError) -> CheckpointHeader? {
        // Magic, format, offsets and a config version of up to 4 KiB.
        // Magic, format, offsets, then four strings of up to 4 KiB each (config version, topic,
        // cluster id) and a partition.
        guard let (target, bytes) = try contents(topic: topic, partition: partition, upTo: 40 + 3 * 4096) else { return nil }
        var reader = SnapshotReader(bytes)
        let header = try Self.decodeHeader(&reader, path: target)
        try verify(header, topic: topic, partition: partition, path: target)
        return header
    }

    /// Refuses a checkpoint of another partition (a file renamed or copied by hand) or taken
    /// on another Kafka cluster (a copied state directory, a cluster recreated with the same
    /// topic names): resuming from its offset would skip or repeat unrelated events.
    private func verify(_ header: CheckpointHeader, topic: String, partition: Int32, path: String) throws(CheckpointError) {
        if let taken = header.topic, taken != topic || header.partition != partition {
            throw CheckpointError(
                path: path, reason: "holds the state of \(taken)[\(header.partition ?? -1)], not of \(topic)[\(partition)]",
                advice: "A checkpoint file was renamed or copied by hand. Put it back under its own name, or move it out of "
                    + "the state directory and restart (the partition's state then comes from its changelog or the topic)")
        }
        if let taken = header.clusterID, let current = clusterID, taken != current {
            throw CheckpointError(
                path: path, reason: "taken on Kafka cluster \(taken), but the brokers now are cluster \(current)",
                advice: "Its offsets belong to another cluster's topic (a state directory copied from another cluster, or a "
                    + "cluster recreated with the same topic names) and cannot be resumed here. Move the checkpoint files out "
                    + "of the state directory (or point state.directory at an empty one) and restart: the state then comes "
                    + "from this cluster's changelog, or from the topic")
        }
    }

    /// The partition's checkpoint, nil if there is none; a damaged or foreign file throws.
    public func read(topic: String, partition: Int32) throws(CheckpointError) -> Checkpoint? {
        guard let (target, bytes) = try contents(topic: topic, partition: partition) else { return nil }
        let (header, checkpoint) = try Self.decode(bytes, path: target)
        try verify(header, topic: topic, partition: partition, path: target)
        return checkpoint
    }

    /// The first `limit` bytes of the partition's checkpoint file (nil if there is none), and its path.
    private func contents(topic: String, partition: Int32, upTo limit: Int = .max) throws(CheckpointError) -> (String, [UInt8])? {
        let target = path(topic: topic, partition: partition)
        let descriptor = open(target, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            if errno == ENOENT { return nil }
            throw CheckpointError(path: target, reason: "cannot open: \(Self.systemError())")
        }
        defer { close(descriptor) }
        // Read straight into one buffer of the file's size: a large partition's checkpoint
        // is never held twice.
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw CheckpointError(path: target, reason: "cannot stat: \(Self.systemError())") }
        let size = min(Int(status.st_size), limit)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            while initialized < size {
                let count = Glibc.read(descriptor, buffer.baseAddress! + initialized, size - initialized)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 {
                    failure = count < 0 ? errno : 0
                    break
                }
                initialized += count
            }
        }
        guard failure == 0 else { throw CheckpointError(path: target, reason: "cannot read: \(String(cString: strerror(failure)))") }
        return (target, bytes)
    }

    static func decode(_ bytes: [UInt8], path: String) throws(CheckpointError) -> (CheckpointHeader, Checkpoint) {
        func fail(_ reason: String) -> CheckpointError { .unusable(path, reason) }
        guard bytes.count >= 16 else { throw fail("too short to be a checkpoint (\(bytes.count) bytes)") }
        let stored = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self)) }
        let computed = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count - 4)])) }
        var reader = SnapshotReader(bytes[0..<(bytes.count - 4)])
        // The header first: a foreign file is reported as such, not as damaged.
        let header = try decodeHeader(&reader, path: path, checksumMatches: stored == computed)
        do {
            let checkpoint = Checkpoint(
                nextOffset: header.nextOffset, changelogPosition: header.changelogPosition, configVersion: header.configVersion,
                engineSnapshot: try reader.readSlice("engine snapshot"))
            guard reader.isAtEnd else { throw fail("damaged: unexpected bytes after the engine snapshot") }
            return (header, checkpoint)
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw fail("damaged: \(error)")
        }
    }

    /// Reads magic, format version, next offset, changelog position, config version and (from
    /// format 3) topic, partition and cluster id. `checksumMatches`: false
    /// when the whole file was read and its checksum is wrong (checked after the magic).
    private static func decodeHeader(
        _ reader: inout SnapshotReader, path: String, checksumMatches: Bool = true
    ) throws(CheckpointError) -> CheckpointHeader {
        func fail(_ reason: String) -> CheckpointError { .unusable(path, reason) }
        do {
            guard try reader.read(UInt64.self, "header") == magic else { throw fail("not a lifecycled checkpoint") }
            guard checksumMatches else { throw fail("damaged: its checksum does not match its contents") }
            let version = try reader.read(UInt32.self, "format version")
            guard (1...formatVersion).contains(version) else {
                throw fail("written in checkpoint format \(version); this build reads formats 1 to \(formatVersion)")
            }
            let nextOffset = try reader.read(Int64.self, "next offset")
            let position = version >= 2 ? try reader.read(Int64.self, "changelog position") : -1
            var header = CheckpointHeader(
                nextOffset: nextOffset, changelogPosition: position >= 0 ? position : nil, configVersion: try reader.readString("config version"))
            if version >= 3 {
                let topic = try reader.readString("topic")
                let partition = try reader.read(Int32.self, "partition")
                let cluster = try reader.readString("cluster id")
                if !topic.isEmpty && partition >= 0 { (header.topic, header.partition) = (topic, partition) }
                if !cluster.isEmpty { header.clusterID = cluster }
            }
            return header
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw fail("damaged: \(error)")
        }
    }

    static func systemError() -> String { String(cString: strerror(errno)) }
}
