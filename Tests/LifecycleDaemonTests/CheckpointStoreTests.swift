import Foundation
@testable import LifecycleDaemon
import Testing
import LifecycleTestSupport

@Suite("Checkpoint files")
struct CheckpointStoreTests {
    func store() throws -> CheckpointStore {
        let directory = TestDirectory.path("checkpoints")
        let store = CheckpointStore(directory: directory)
        try store.prepare()
        return store
    }

    let checkpoint = Checkpoint(nextOffset: 12_345, configVersion: "v1", engineSnapshot: Array(0..<200).map { UInt8($0) })

    @Test("a written checkpoint reads back whole; a missing one is nil")
    func roundTrip() throws {
        let store = try store()
        #expect(try store.read(topic: "events", partition: 3) == nil)
        try store.write(checkpoint, topic: "events", partition: 3)
        #expect(try store.read(topic: "events", partition: 3) == checkpoint)
        var newer = checkpoint
        newer.nextOffset = 99_999
        try store.write(newer, topic: "events", partition: 3)
        #expect(try store.read(topic: "events", partition: 3) == newer)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory).allSatisfy { !$0.contains(".tmp") })
    }

    @Test("a second instance on the same state directory is refused, naming the directory and the process that holds it; free again once released")
    func stateDirectoryLock() throws {
        let directory = TestDirectory.path("lock")
        let held = try CheckpointStore(directory: directory).prepare()
        #expect {
            try CheckpointStore(directory: directory).prepare()
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix(directory) && text.contains("in use by another lifecycled (process \(getpid()))")
                && text.contains("state.directory")
        }
        held.release()
        let again = try CheckpointStore(directory: directory).prepare()
        again.release()
    }

    @Test("a damaged file is refused with its path and what to do", arguments: [
        "flip", "truncate", "foreign", "empty",
    ])
    func damaged(kind: String) throws {
        let store = try store()
        try store.write(checkpoint, topic: "events", partition: 0)
        let path = store.path(topic: "events", partition: 0)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        switch kind {
        case "flip": bytes[40] ^= 0x01
        case "truncate": bytes.removeLast(30)
        case "foreign": bytes = Array("{\"this is\": \"json, not a checkpoint\"}".utf8)
        default: bytes = []
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            _ = try store.read(topic: "events", partition: 0)
            Issue.record("read a \(kind) checkpoint")
        } catch {
            #expect(error.description.hasPrefix(path))
            #expect(error.description.contains("move the file out of the state directory"))
        }
    }

    @Test("a checkpoint under another partition's name, or taken on another Kafka cluster, is refused with the file and what to do")
    func foreignCheckpoints() throws {
        var store = try store()
        store.clusterID = "cluster-a"
        try store.write(checkpoint, topic: "events", partition: 3)
        #expect(try store.readHeader(topic: "events", partition: 3)?.clusterID == "cluster-a")
        let copied = store.path(topic: "events", partition: 4)
        try FileManager.default.copyItem(atPath: store.path(topic: "events", partition: 3), toPath: copied)
        for read in [{ _ = try store.read(topic: "events", partition: 4) }, { _ = try store.readHeader(topic: "events", partition: 4) }] {
            #expect {
                try read()
            } throws: { error in
                "\(error)".hasPrefix(copied) && "\(error)".contains("holds the state of events[3], not of events[4]")
                    && "\(error)".contains("renamed or copied")
            }
        }

        var elsewhere = CheckpointStore(directory: store.directory, clusterID: "cluster-b")
        #expect {
            try elsewhere.read(topic: "events", partition: 3)
        } throws: { error in
            "\(error)".contains("taken on Kafka cluster cluster-a, but the brokers now are cluster cluster-b")
                && "\(error)".contains("point state.directory at an empty one")
        }
        // Where the cluster's id is unknown, nothing is checked against it.
        elsewhere.clusterID = nil
        #expect(try elsewhere.read(topic: "events", partition: 3) == checkpoint)
    }

    @Test("an unusable state directory is reported by name")
    func badDirectory() {
        let store = CheckpointStore(directory: "/proc/no-such-place/state")
        #expect {
            try store.prepare()
        } throws: { error in
            "\(error)".contains("/proc/no-such-place/state")
        }
    }
}

@Suite("CRC-32")
struct CRC32Tests {
    @Test("the standard check value, and every length across the 8-byte steps agrees with a byte at a time")
    func checkValues() {
        let check = Array("123456789".utf8)
        #expect(check.withUnsafeBytes { CRC32.checksum($0) } == 0xCBF4_3926)
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for length in 0...bytes.count {
            let prefix = Array(bytes.prefix(length))
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in prefix {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            #expect(prefix.withUnsafeBytes { CRC32.checksum($0) } == crc ^ 0xFFFF_FFFF, "length \(length)")
        }
    }
}
