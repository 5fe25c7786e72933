import Glibc

/// An exclusive lock on the state directory while a daemon runs there: two instances sharing
/// one would overwrite each other's checkpoints. The kernel drops the lock when the process
/// ends, however it ends (`kill -9` included), so a crash never leaves a stale one behind.
public final class StateDirectoryLock {
    static let fileName = "lifecycled.lock"
    private var descriptor: Int32

    /// Takes the lock of `directory` (which exists), or throws naming the directory and the
    /// process that holds it.
    init(directory: String) throws(CheckpointError) {
        let path = "\(directory)/\(Self.fileName)"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw CheckpointError(path: path, reason: "cannot open the state directory's lock file: \(CheckpointStore.systemError())")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            let reason = busy
                ? "the state directory is in use by another lifecycled\(Self.holder(descriptor).map { " (process \($0))" } ?? "")"
                : "cannot lock the state directory (\(path)): \(CheckpointStore.systemError())"
            // Closed here, and marked so: `deinit` runs for an init that throws, and a second
            // close could hit a descriptor another thread has opened since.
            release()
            throw CheckpointError(
                path: directory, reason: reason,
                advice: busy ? "Each instance needs a state directory of its own (state.directory): two sharing one would "
                    + "overwrite each other's checkpoints. Stop the other instance, or point this one at another directory" : nil)
        }
        // Who holds it, for the message another instance prints.
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(descriptor, 0) == 0 { _ = pwrite(descriptor, pid, pid.count, 0) }
    }

    /// Lets another instance use the directory (also when this lock is dropped).
    public func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }

    private static func holder(_ descriptor: Int32) -> String? {
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = pread(descriptor, &bytes, bytes.count, 0)
        guard count > 0 else { return nil }
        let digits = bytes[..<count].filter { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        return digits.isEmpty ? nil : String(decoding: digits, as: UTF8.self)
    }
}
