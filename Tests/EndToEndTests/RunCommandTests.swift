import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LifecycleCodec
import LifecycleConfig
import LifecycleEngine
import LifecycleKafka
import LifecycleTestSupport
import Logging
import Testing

/// `lifecycled run` as a process against a mock cluster hosted by the test: crash it with
/// kill -9 mid-stream, start it again, stop it with SIGTERM.
@Suite("lifecycled run", .serialized)
struct RunCommandTests {
    static let logger = Logger(label: "test.run")

    /// The sample events moved a year ahead of the wall clock, so a caught-up partition
    /// following the wall clock fires no timer early and run matches an offline replay.
    static func shiftedSample() throws -> [String] {
        let lines = try String(contentsOfFile: BinaryRunner.path("config/examples/sample-events.ndjson"), encoding: .utf8)
            .split(separator: "\n")
        let first: Int64 = 1_795_392_000_000
        let shift = (Int64(Date().timeIntervalSince1970 * 1000) + 365 * Millis.day - first) / Millis.day * Millis.day
        return try lines.map { line in
            var object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            object["ts"] = (object["ts"] as! Int64) + shift
            return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }
    }

    /// Trigger ids on the output topics (all of them, by a new consumer group), read until
    /// every id in `expected` was seen or `seconds` pass.
    static func triggerIDs(cluster: MockCluster, until expected: Set<String>, seconds: Double) throws -> [String] {
        let consumer = try KafkaConsumer(
            properties: ["bootstrap.servers": cluster.bootstrapServers, "group.id": "reader-\(UUID().uuidString)",
                         "session.timeout.ms": "6000"],
            logger: logger) { _ in [:] }
        try consumer.subscribe(StreamFixtures.outputTopics)
        var ids: [String] = []
        let deadline = Date().addingTimeInterval(seconds)
        while !expected.isSubset(of: Set(ids)) && Date() < deadline {
            try consumer.poll(timeoutMilliseconds: 100) { message in
                if let object = try? JSONSerialization.jsonObject(with: Data(message.value)) as? [String: Any],
                   let id = object["id"] as? String { ids.append(id) }
            }
        }
        try consumer.close()
        return ids
    }

    /// GET `path` from the daemon's HTTP port: status code and body (0 if nothing answered).
    /// The reference playbook for a daemon on `cluster`: its state in `state`, its HTTP port
    /// `port`, a checkpoint every second, and events up to ten years ahead of the wall clock
    /// accepted (the test streams run ahead of it; see `shiftedSample`).
    static func playbook(cluster: MockCluster, state: String, port: Int, sessionTimeout: Int, threads: Int) throws -> String {
        let text = try String(contentsOfFile: BinaryRunner.path("config/lifecycled.yaml"), encoding: .utf8)
        return text.replacingOccurrences(of: "brokers: \"localhost:9092\"", with: "brokers: \"\(cluster.bootstrapServers)\"")
            .replacingOccurrences(of: "dir: /var/lib/lifecycled", with: "dir: \(state)")
            .replacingOccurrences(of: "checkpoint_interval: 10s", with: "checkpoint_interval: 1s")
            .replacingOccurrences(of: "properties: {}", with: "properties: {session.timeout.ms: \"\(sessionTimeout)\"}")
            .replacingOccurrences(of: "listen: \"127.0.0.1:9464\"", with: "listen: \"127.0.0.1:\(port)\"")
            .replacingOccurrences(of: "max_future: 1h", with: "max_future: 3650d")
            + "\nprocessing: {threads: \(threads)}\n"
    }

    static func get(_ port: Int, _ path: String) -> (status: Int, body: String) {
        nonisolated(unsafe) var result = (status: 0, body: "")
        let done = DispatchSemaphore(value: 0)
        let url = URL(string: "http://127.0.0.1:\(port)\(path)")!
        URLSession.shared.dataTask(with: url) { data, response, _ in
            result = ((response as? HTTPURLResponse)?.statusCode ?? 0, data.map { String(decoding: $0, as: UTF8.self) } ?? "")
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + 10)
        return result
    }

    static func start(config path: String, log: String) throws -> Process {
        let process = Process()
        process.executableURL = BinaryRunner.binary
        process.arguments = ["run", "--config", path]
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    static func wait(_ process: Process, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return !process.isRunning
    }

    /// What replay of each partition fires, for the events the topic holds now: the ids, the
    /// partitions, and the fired totals per trigger and arm ("churn_risk/control").
    static func expected(cluster: MockCluster, count: Int, config: LoadedConfig)
        throws -> (ids: Set<String>, partitions: [Int32], fired: [String: Int])
    {
        let lines = try StreamFixtures.inputByPartition(cluster: cluster, count: count)
        let (triggers, totals) = StreamFixtures.replay(config, Array(lines.values))
        var fired: [String: Int] = [:]
        for (name, total) in zip(config.compiled.triggerNames, totals) {
            for arm in Arm.allCases { fired["\(name)/\(arm.rawValue)"] = total[arm].fired }
        }
        return (Set(triggers.map(\.id)), lines.keys.sorted(), fired)
    }

    /// `/v1/triggers` as fired totals per trigger and arm, as `expected` gives them.
    static func firedTotals(port: Int) -> [String: Int] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(get(port, "/v1/triggers").body.utf8)) as? [String: Any],
              let triggers = object["triggers"] as? [[String: Any]] else { return [:] }
        var fired: [String: Int] = [:]
        for trigger in triggers {
            let name = trigger["trigger"] as? String ?? ""
            for arm in Arm.allCases {
                fired["\(name)/\(arm.rawValue)"] = (trigger[arm.rawValue] as? [String: Any])?["fired"] as? Int
                    ?? (arm == .treatment ? trigger["fired"] as? Int : 0)
            }
        }
        return fired
    }

    @Test("kill -9 mid-stream and restart: every trigger arrives, repeats carry the same id; SIGTERM exits 0 with a checkpoint",
          arguments: [1, 4])
    func crashAndRestart(threads: Int) throws {
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 4)
        try cluster.createTopic("lifecycled.user-events.changelog", partitions: 4)
        try StreamFixtures.createOutputTopics(cluster: cluster, partitions: 1)
        let directory = TestDirectory.path("run")
        let port = BinaryRunner.freePort()
        let text = try Self.playbook(cluster: cluster, state: "\(directory)/state", port: port, sessionTimeout: 6_000, threads: threads)
        let configPath = try BinaryRunner.temporaryFile(text, name: "lifecycled.yaml")
        let config = try ConfigLoader.load(path: configPath)
        let events = try Self.shiftedSample()

        // First life: half the stream, then a crash.
        try StreamFixtures.produce(Array(events.prefix(events.count / 2)), cluster: cluster)
        let early = try Self.expected(cluster: cluster, count: events.count / 2, config: config).ids
        let first = try Self.start(config: configPath, log: "\(directory)-first.log")
        let firstIDs = try Self.triggerIDs(cluster: cluster, until: early, seconds: 40)
        #expect(early.isSubset(of: Set(firstIDs)), "first life's triggers")
        Thread.sleep(forTimeInterval: 1.5)  // let a checkpoint happen
        kill(first.processIdentifier, SIGKILL)
        #expect(Self.wait(first, seconds: 10), "kill -9 ends it")

        // Second life: the rest of the stream, then a clean stop.
        try StreamFixtures.produce(Array(events.dropFirst(events.count / 2)), cluster: cluster)
        let (expected, partitions, fired) = try Self.expected(cluster: cluster, count: events.count, config: config)
        #expect(expected.count >= 5)
        #expect(partitions.count >= 2, "the users spread over partitions")
        let second = try Self.start(config: configPath, log: "\(directory)-second.log")
        let ids = try Self.triggerIDs(cluster: cluster, until: expected, seconds: 40)

        // The HTTP port while it runs.
        #expect(Self.get(port, "/healthz").status == 200)
        let ready = Self.get(port, "/readyz")
        #expect(ready.status == 200 && ready.body.contains("user-events[0]"), "\(ready)")
        let metrics = Self.get(port, "/metrics").body
        #expect(metrics.contains("lifecycled_events_consumed_total"), "\(metrics)")
        #expect(metrics.contains("lifecycled_triggers_fired_total{trigger=\"churn_risk\",arm=\"treatment\"}"))
        #expect(metrics.contains("lifecycled_triggers_fired_total{trigger=\"churn_risk\",arm=\"control\"}"))
        // The per-arm totals came back with the state after kill -9: as replay of the whole stream gives them.
        let totalsDeadline = Date().addingTimeInterval(10)
        while Self.firedTotals(port: port) != fired && Date() < totalsDeadline { Thread.sleep(forTimeInterval: 0.2) }
        #expect(Self.firedTotals(port: port) == fired)
        #expect(fired.values.reduce(0, +) >= 5)
        #expect(metrics.contains("lifecycled_users{stage=\"reactivated\"}"))
        #expect(metrics.contains("lifecycled_consumer_lag{partition=\"user-events[\(partitions[0])]\"} 0"), "\(metrics)")
        let latencyCount = metrics.split(separator: "\n").first { $0.hasPrefix("lifecycled_event_to_trigger_seconds_count") }
        #expect(latencyCount.flatMap { Int($0.split(separator: " ").last ?? "") }.map { $0 > 0 } == true, "\(metrics)")
        let alice = Self.get(port, "/v1/users/alice")
        let user = try #require(try JSONSerialization.jsonObject(with: Data(alice.body.utf8)) as? [String: Any], "\(alice)")
        #expect(user["stage"] as? String != nil && (user["last_fired"] as? [String: Any])?["win_back"] != nil, "\(alice)")
        #expect(Self.get(port, "/v1/users/nobody").status == 404)
        let segments = try #require(try JSONSerialization.jsonObject(with: Data(Self.get(port, "/v1/segments").body.utf8)) as? [String: Any])
        #expect(segments["users"] as? Int == 4)
        let status = try #require(try JSONSerialization.jsonObject(with: Data(Self.get(port, "/v1/status").body.utf8)) as? [String: Any])
        let phases = (status["partitions"] as? [[String: Any]] ?? []).compactMap { $0["phase"] as? String }
        #expect(status["ready"] as? Bool == true && phases.count == 4 && !phases.contains("restoring"), "\(status)")
        // SIGHUP: a valid edit is taken, state kept; a broken file is refused and logged.
        try text.replacingOccurrences(of: "no activity for 7 days", with: "quiet for a week")
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        kill(second.processIdentifier, SIGHUP)
        Thread.sleep(forTimeInterval: 1)
        try "lifecycle: [not, a, mapping]\n".write(toFile: configPath, atomically: true, encoding: .utf8)
        kill(second.processIdentifier, SIGHUP)
        Thread.sleep(forTimeInterval: 1)
        #expect(Self.get(port, "/readyz").status == 200)
        #expect(Self.get(port, "/v1/segments").body.contains("\"users\":4"))
        #expect(Self.get(port, "/v1/triggers").body.contains("quiet for a week"), "the reloaded rules' reason")

        let checkpoint = "\(directory)/state/user-events.\(partitions[0]).checkpoint"
        let before = try FileManager.default.attributesOfItem(atPath: checkpoint)[.modificationDate] as? Date
        Thread.sleep(forTimeInterval: 0.2)
        second.terminate()  // SIGTERM
        let stopped = Self.wait(second, seconds: 30)
        #expect(stopped, "stops within the systemd stop timeout")
        if !stopped { kill(second.processIdentifier, SIGKILL) }
        #expect(!stopped || second.terminationStatus == 0)
        let log = (try? String(contentsOfFile: "\(directory)-second.log", encoding: .utf8)) ?? ""
        #expect(log.contains("stopped cleanly"), "\(log)")
        #expect(log.contains(/SIGHUP: rules reloaded \(config [^)]+\), state kept; input paused \d+ ms/), "\(log)")
        #expect(log.contains("SIGHUP: rules not reloaded"), "\(log)")
        let after = try FileManager.default.attributesOfItem(atPath: checkpoint)[.modificationDate] as? Date
        #expect(after != nil && after! >= before!, "final checkpoint written")

        #expect(Set(ids) == expected, "every expected trigger, nothing else")
        #expect(ids.count >= expected.count)
    }
}
