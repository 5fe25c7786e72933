import Foundation
import Glibc
import LifecycleConfig
import LifecycleEngine
import LifecycleKafka
import Logging
import Synchronization

/// The `lifecycled run` binary for a long stretch against a mock cluster hosted here, fed a
/// steady stream, with a SIGHUP every `hupSeconds` and a `kill -9` every `killSeconds`
/// (restarted at once, as systemd would). Reports the daemon's resident memory over the run
/// and compares the trigger ids that reached the output topics with `lifecycled replay` of
/// each partition's events, which the producer also wrote to files.
///
/// The events run ahead of the wall clock (the population starts tomorrow and its days pass
/// in seconds), so no caught-up partition moves its stream time with the wall clock and the
/// run must equal replay per partition exactly.
struct SoakBenchmark {
    let binary: String
    let config: String
    let users: Int
    let rate: Int
    let seconds: Double
    let partitions: Int32
    let hupSeconds: Double
    let killSeconds: Double
    /// RSS samples before this (and in each life's first `lifeWarmUp`) are not judged.
    let warmUpSeconds: Double
    let directory: String

    static let lifeWarmUp = 60.0
    static let inputTopic = "user-events"
    let logger = Logger(label: "soak")

    func run() throws {
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cluster = try MockCluster()
        let port = try Self.freePort()
        let configPath = "\(directory)/lifecycled.yaml"
        let outputs = try prepare(cluster: cluster, configPath: configPath, port: port)

        let collector = TriggerCollector(bootstrap: cluster.bootstrapServers, topics: outputs)
        let collecting = Thread { collector.run() }
        collecting.start()
        let start = Date()
        let dayStart = (Int64(start.timeIntervalSince1970 * 1000) / Millis.day + 1) * Millis.day
        let producer = SoakProducer(
            bootstrap: cluster.bootstrapServers, topic: Self.inputTopic, partitions: partitions,
            population: Population(users: users, start: dayStart), rate: rate, seconds: seconds, directory: directory)
        let producing = Thread { producer.run() }
        producing.start()

        let daemon = try supervise(configPath: configPath, port: port, start: start)
        producer.waitUntilDone()
        note("soak: \(producer.sent) events produced; waiting for the daemon to catch up\n")
        let caughtUp = waitForNoLag(port: port, timeout: 300)
        let exit = daemon.stop()
        collector.drain()
        while !collector.finished { Thread.sleep(forTimeInterval: 0.2) }

        let expected = try replayIDs(configPath: configPath)
        // Gigabytes; the logs and memory samples stay.
        for partition in 0..<partitions { try? FileManager.default.removeItem(atPath: SoakProducer.eventsFile(directory, partition)) }
        try? FileManager.default.removeItem(atPath: "\(directory)/state")
        report(ReportInput(
            elapsed: Date().timeIntervalSince(start), producer: producer, collector: collector, expected: expected,
            daemon: daemon, caughtUp: caughtUp, exit: exit))
    }

    /// Topics, and the reference playbook pointed at the mock with its state here; returns
    /// the topics triggers go to.
    private func prepare(cluster: MockCluster, configPath: String, port: Int) throws -> [String] {
        let loaded = try ConfigLoader.load(path: config)
        let kafka = loaded.settings.kafka
        try cluster.createTopic(Self.inputTopic, partitions: partitions)
        try cluster.createTopic(kafka.changelogTopic(for: Self.inputTopic), partitions: partitions)
        let outputs = Array(Set(kafka.triggerTopics.values).union([kafka.holdoutTopic])).sorted()
        for topic in outputs { try cluster.createTopic(topic, partitions: 4) }
        for topic in [kafka.deadLetterTopic, kafka.alertsTopic] { try cluster.createTopic(topic, partitions: 1) }
        var text = try String(contentsOfFile: config, encoding: .utf8)
        for (key, value) in [
            ("brokers", "\"\(cluster.bootstrapServers)\""), ("dir", "\(directory)/state"),
            ("listen", "\"127.0.0.1:\(port)\""), ("max_future", "3650d"),
            // A killed member leaves the mock's group after this, and the restarted one joins.
            ("properties", "{session.timeout.ms: \"6000\"}"),
        ] {
            guard let range = text.range(of: #"(?m)^( +)\#(key):[^#\n]*"#, options: .regularExpression) else {
                throw BenchmarkFailure("\(config): no '\(key):' line to point at the soak's cluster")
            }
            let indent = text[range].prefix { $0 == " " }
            text.replaceSubrange(range, with: "\(indent)\(key): \(value) ")
        }
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        return outputs
    }

    /// SIGHUPs and kills until `seconds` have passed, sampling the resident memory.
    private func supervise(configPath: String, port: Int, start: Date) throws -> SupervisedDaemon {
        let daemon = try SupervisedDaemon(binary: binary, config: configPath, directory: directory)
        var nextHup = hupSeconds
        var nextKill = killSeconds
        var nextSample = 0.0
        var nextProgress = 60.0
        while true {
            let now = Date().timeIntervalSince(start)
            if now >= seconds { break }
            if now >= nextKill {
                try daemon.killAndRestart(at: now)
                nextKill += killSeconds
            }
            if now >= nextHup {
                // Only once the HTTP port answers: the reload handler is in place by then.
                if Self.get(port: port, path: "/healthz") != nil { daemon.hangUp() }
                nextHup += hupSeconds
            }
            if now >= nextSample {
                daemon.sample(at: now, stateBytes: Self.stateBytes(port: port))
                nextSample += 5
            }
            if now >= nextProgress {
                note("soak: \(Int(now)) s, life \(daemon.lives), RSS \(daemon.samples.last.map { $0.kilobytes / 1024 } ?? 0) MiB\n")
                nextProgress += 60
            }
            try daemon.checkAlive()
            Thread.sleep(forTimeInterval: 0.2)
        }
        return daemon
    }

    /// Until every input partition reports lag 0 for 3 s in a row (false if `timeout` passes first).
    private func waitForNoLag(port: Int, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var quietSince: Date?
        while Date() < deadline {
            let lags = Self.metricValues(port: port, prefix: "lifecycled_consumer_lag{")
            if lags.count == Int(partitions) && lags.allSatisfy({ $0 == 0 }) {
                if let since = quietSince, Date().timeIntervalSince(since) >= 3 { return true }
                quietSince = quietSince ?? Date()
            } else {
                quietSince = nil
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        return false
    }

    /// The ids `lifecycled replay` fires for each partition's events.
    private func replayIDs(configPath: String) throws -> (ids: Set<String>, lines: Int) {
        var ids = Set<String>()
        var lines = 0
        for partition in 0..<partitions {
            note("soak: replaying partition \(partition)\n")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["replay", "--config", configPath, "--input", SoakProducer.eventsFile(directory, partition)]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            var pending: [UInt8] = []
            while case let data = output.fileHandleForReading.availableData, !data.isEmpty {
                pending.append(contentsOf: data)
                var lineStart = 0
                while let end = pending[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
                    pending[lineStart..<end].withUnsafeBytes { if let id = triggerID($0) { ids.insert(id) } }
                    lines += 1
                    lineStart = end + 1
                }
                pending.removeFirst(lineStart)
            }
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw BenchmarkFailure("replay of partition \(partition) exited \(process.terminationStatus)")
            }
        }
        return (ids, lines)
    }

    struct ReportInput {
        var elapsed: Double
        var producer: SoakProducer
        var collector: TriggerCollector
        var expected: (ids: Set<String>, lines: Int)
        var daemon: SupervisedDaemon
        var caughtUp: Bool
        var exit: Int32
    }

    private func report(_ run: ReportInput) {
        let seen = run.collector.ids
        let missing = run.expected.ids.subtracting(seen)
        let unexpected = seen.subtracting(run.expected.ids)
        let logs = run.daemon.logs()
        let reloaded = logs.components(separatedBy: "SIGHUP: rules reloaded").count - 1
        // Input waits while a reload checkpoints: how long, per reload.
        let pauses = logs.matches(of: /input paused (\d+) ms/).compactMap { Int($0.output.1) }.sorted()
        let pauseSummary = pauses.isEmpty ? "" : ", input paused \(pauses[pauses.count / 2]) ms (median), \(pauses.last!) ms (longest)"
        print("\nsoak of `lifecycled run`: \(String(format: "%.1f", run.elapsed / 60)) min, \(run.producer.sent) events (\(Int(Double(run.producer.sent) / seconds))/s) of \(users) users into \(partitions) partitions; \(run.daemon.hangUps) SIGHUPs sent (\(reloaded) reloads logged\(pauseSummary)), \(run.daemon.lives - 1) kill -9 and restarts; caught up at the end: \(run.caughtUp), SIGTERM exit status \(run.exit)\n")
        print("| triggers by replay of each partition | distinct ids on the output topics | messages on the output topics (repeats) | missing | not in replay | events not acknowledged by the mock |")
        print("|---:|---:|---:|---:|---:|---:|")
        print("| \(run.expected.ids.count) | \(seen.count) | \(run.collector.messages) (\(run.collector.messages - seen.count)) | \(missing.count) | \(unexpected.count) | \(run.producer.failed) |")
        if let example = missing.first { print("\nmissing, e.g. \(example)") }
        if let example = unexpected.first { print("not in replay, e.g. \(example)") }

        let samples = run.daemon.samples
        print("\n| life | started (s) | RSS at \(Int(Self.lifeWarmUp)) s (MiB) | RSS at its end (MiB) | largest (MiB) | engine state at its end (MiB) |")
        print("|---:|---:|---:|---:|---:|---:|")
        for life in 1...run.daemon.lives {
            let own = samples.filter { $0.life == life }
            guard let first = own.first, let last = own.last else { continue }
            let settled = own.first { $0.age >= Self.lifeWarmUp } ?? last
            let state = own.last { $0.stateKilobytes != nil }?.stateKilobytes.map(mebibytes) ?? "-"
            print("| \(life) | \(Int(first.time - first.age)) | \(mebibytes(settled.kilobytes)) | \(mebibytes(last.kilobytes)) | \(mebibytes(own.map(\.kilobytes).max()!)) | \(state) |")
        }
        let judged = samples.filter { $0.time >= warmUpSeconds && $0.age >= Self.lifeWarmUp }
        // Each minute's largest sample: the envelope over the commit cycles' rise and fall.
        let minutes = Dictionary(grouping: judged) { Int($0.time / 60) }.values.map { $0.map(\.kilobytes).max()! }
        // The state moves with the workload; what the process holds beyond it should not.
        let states = judged.compactMap(\.stateKilobytes)
        let overheads = judged.compactMap { sample in sample.stateKilobytes.map { sample.kilobytes - $0 } }
        for (what, values) in [
            ("samples: RSS", judged.map(\.kilobytes)), ("minutes' largest samples: RSS", minutes),
            ("samples: engine state", states), ("samples: RSS beyond the engine state", overheads),
        ] {
            guard let low = values.min(), let high = values.max() else { continue }
            print("\nafter warm-up (from \(Int(warmUpSeconds)) s, each life's first \(Int(Self.lifeWarmUp)) s left out), \(values.count) \(what) \(mebibytes(low))–\(mebibytes(high)) MiB, spread \(String(format: "%.1f", Double(high - low) / Double(low) * 100)) %")
        }
        print("\nsamples (s, life, RSS KiB, engine state KiB) in \(directory)/rss.tsv; the daemon's logs in \(directory)/daemon-*.log")
        let table = samples.map { "\(Int($0.time))\t\($0.life)\t\($0.kilobytes)\t\($0.stateKilobytes.map(String.init) ?? "-")" }.joined(separator: "\n")
        try? (table + "\n").write(toFile: "\(directory)/rss.tsv", atomically: true, encoding: .utf8)
        if !missing.isEmpty || !unexpected.isEmpty || run.exit != 0 || run.producer.failed > 0 { exit(1) }
    }

    private func mebibytes(_ kilobytes: Int) -> String { String(format: "%.1f", Double(kilobytes) / 1024) }

    /// The daemon's `lifecycled_state_bytes`: the engines' heap, the part of RSS that is state.
    private static func stateBytes(port: Int) -> Int? {
        metricValues(port: port, prefix: "lifecycled_state_bytes ").first.map { Int($0) }
    }

    /// The values of the daemon's metric lines starting with `prefix` (none if the port does
    /// not answer).
    private static func metricValues(port: Int, prefix: String) -> [Double] {
        guard let metrics = get(port: port, path: "/metrics") else { return [] }
        return metrics.split(separator: "\n").filter { $0.hasPrefix(prefix) }.compactMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// GET `path` from the daemon's HTTP port: the body of a 200 answer, nil otherwise.
    static func get(port: Int, path: String) -> String? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard send(descriptor, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return nil }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while case let count = recv(descriptor, &chunk, chunk.count, 0), count > 0 { response += chunk[..<count] }
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 200"), let body = text.range(of: "\r\n\r\n") else { return nil }
        return String(text[body.upperBound...])
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// A port nothing listens on, from the kernel.
    private static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let found = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard found else { throw BenchmarkFailure("no free port for the daemon's HTTP listener") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// The id of a trigger's JSON (`{"id":"…",…}`), read without parsing the rest.
func triggerID(_ bytes: UnsafeRawBufferPointer) -> String? {
    let prefix = Array(#"{"id":""#.utf8)
    guard bytes.count > prefix.count, zip(bytes, prefix).allSatisfy({ $0 == $1 }),
          let end = bytes[prefix.count...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
    return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[prefix.count..<end]), as: UTF8.self)
}

/// The `lifecycled run` process of the soak, restarted after each kill.
final class SupervisedDaemon {
    struct Sample {
        var time: Double
        var life: Int
        /// Seconds since this life started.
        var age: Double
        var kilobytes: Int
        /// The engines' heap (`lifecycled_state_bytes`) in KiB, when the port answered.
        var stateKilobytes: Int?
    }

    private let binary: String
    private let config: String
    private let directory: String
    private var process: Process
    private var started = Date()
    private(set) var lives = 1
    private(set) var hangUps = 0
    private(set) var samples: [Sample] = []

    init(binary: String, config: String, directory: String) throws {
        self.binary = binary
        self.config = config
        self.directory = directory
        process = try Self.launch(binary: binary, config: config, log: "\(directory)/daemon-1.log")
    }

    private static func launch(binary: String, config: String, log: String) throws -> Process {
        guard FileManager.default.createFile(atPath: log, contents: nil), let output = FileHandle(forWritingAtPath: log) else {
            throw BenchmarkFailure("cannot write \(log)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["run", "--config", config]
        (process.standardOutput, process.standardError) = (output, output)
        try process.run()
        return process
    }

    func hangUp() {
        kill(process.processIdentifier, SIGHUP)
        hangUps += 1
    }

    func killAndRestart(at time: Double) throws {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        lives += 1
        note("soak: kill -9 at \(Int(time)) s; life \(lives) starts\n")
        process = try Self.launch(binary: binary, config: config, log: "\(directory)/daemon-\(lives).log")
        started = Date()
    }

    /// Fails when the daemon ended on its own.
    func checkAlive() throws {
        guard !process.isRunning else { return }
        throw BenchmarkFailure("life \(lives) of the daemon ended by itself (status \(process.terminationStatus), reason \(process.terminationReason.rawValue)); see \(directory)/daemon-\(lives).log")
    }

    func sample(at time: Double, stateBytes: Int?) {
        guard let kilobytes = Benchmark.statusKilobytes("VmRSS", of: "\(process.processIdentifier)") else { return }
        samples.append(Sample(
            time: time, life: lives, age: Date().timeIntervalSince(started), kilobytes: kilobytes, stateKilobytes: stateBytes.map { $0 / 1024 }))
    }

    /// SIGTERM, and its exit status (-1 if it took longer than a minute, then killed).
    func stop() -> Int32 {
        process.terminate()
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        guard !process.isRunning else {
            kill(process.processIdentifier, SIGKILL)
            return -1
        }
        return process.terminationStatus
    }

    func logs() -> String {
        (1...lives).map { (try? String(contentsOfFile: "\(directory)/daemon-\($0).log", encoding: .utf8)) ?? "" }.joined()
    }
}

/// Produces the population's days at a steady rate from its own thread, each user to one
/// partition, and writes each partition's events to a file in the order produced.
final class SoakProducer: @unchecked Sendable {
    private let bootstrap: String
    private let topic: String
    private let partitions: Int32
    private let population: Population
    private let rate: Int
    private let seconds: Double
    private let directory: String
    private let progress = Mutex((sent: 0, failed: 0, done: false))

    init(bootstrap: String, topic: String, partitions: Int32, population: Population, rate: Int, seconds: Double, directory: String) {
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.population = population
        self.rate = rate
        self.seconds = seconds
        self.directory = directory
    }

    static func eventsFile(_ directory: String, _ partition: Int32) -> String { "\(directory)/events-\(partition).ndjson" }

    var sent: Int { progress.withLock { $0.sent } }
    /// Events the mock did not acknowledge.
    var failed: Int { progress.withLock { $0.failed } }

    func waitUntilDone() {
        while !progress.withLock({ $0.done }) { Thread.sleep(forTimeInterval: 0.1) }
    }

    func run() {
        defer { progress.withLock { $0.done = true } }
        do {
            try produce()
        } catch {
            note("soak producer: \(error)\n")
        }
    }

    private func produce() throws {
        // Compressed and idempotent: the mock keeps ~5 MB per partition, and a retry must not
        // reorder a partition (its file is the order replay sees).
        let producer = try KafkaProducer(
            properties: ["bootstrap.servers": bootstrap, "compression.codec": "lz4", "enable.idempotence": "true"],
            logger: Logger(label: "soak-producer")) { [self] delivery in
                if delivery.error != nil { progress.withLock { $0.failed += 1 } }
            }
        let files = try (0..<partitions).map { partition in
            guard let file = fopen(Self.eventsFile(directory, partition), "w") else {
                throw BenchmarkFailure("cannot write \(Self.eventsFile(directory, partition)): \(String(cString: strerror(errno)))")
            }
            return file
        }
        defer { files.forEach { fclose($0) } }
        let writer = EventWriter()
        var line: [UInt8] = []
        var events: [(time: Int64, user: UInt32, name: UInt8)] = []
        var sent = 0
        let start = Date()
        let total = Int(Double(rate) * seconds)
        var day = 0
        while sent < total {
            population.day(day, into: &events)
            day += 1
            for event in events.prefix(total - sent) {
                let wait = start.addingTimeInterval(Double(sent) / Double(rate)).timeIntervalSinceNow
                if wait > 0.001 { Thread.sleep(forTimeInterval: wait) }
                line.removeAll(keepingCapacity: true)
                writer.write(time: event.time, user: event.user, name: event.name, into: &line)
                let partition = Int32(event.user % UInt32(partitions))
                try producer.produce(topic: topic, partition: partition, key: Array("u\(event.user)".utf8), value: line, ticket: 0)
                line.append(UInt8(ascii: "\n"))
                fwrite(line, 1, line.count, files[Int(partition)])
                sent += 1
                if sent % 1000 == 0 {
                    producer.poll()
                    progress.withLock { $0.sent = sent }
                }
            }
        }
        try producer.flush(timeoutMilliseconds: 60_000)
        progress.withLock { $0.sent = sent }
    }
}

/// Reads every output topic from its own thread for the whole soak and keeps the ids seen.
final class TriggerCollector: @unchecked Sendable {
    private let bootstrap: String
    private let topics: [String]
    private let state = Mutex((ids: Set<String>(), messages: 0, draining: false, finished: false))

    init(bootstrap: String, topics: [String]) {
        self.bootstrap = bootstrap
        self.topics = topics
    }

    var ids: Set<String> { state.withLock { $0.ids } }
    var messages: Int { state.withLock { $0.messages } }
    var finished: Bool { state.withLock { $0.finished } }

    /// Stop once nothing new arrives for 5 s.
    func drain() { state.withLock { $0.draining = true } }

    func run() {
        defer { state.withLock { $0.finished = true } }
        do {
            let consumer = try KafkaConsumer(
                properties: ["bootstrap.servers": bootstrap, "group.id": "soak-reader", "session.timeout.ms": "6000"],
                logger: Logger(label: "soak-reader")) { _ in [:] }
            try consumer.subscribe(topics)
            var idleSince = Date()
            var batch: [String] = []
            while !(state.withLock { $0.draining } && Date().timeIntervalSince(idleSince) > 5) {
                batch.removeAll(keepingCapacity: true)
                try consumer.poll(timeoutMilliseconds: 100) { message in
                    if let id = triggerID(message.value) { batch.append(id) }
                }
                guard !batch.isEmpty else { continue }
                idleSince = Date()
                state.withLock { state in
                    state.messages += batch.count
                    state.ids.formUnion(batch)
                }
            }
            try consumer.close()
        } catch {
            note("soak trigger reader: \(error)\n")
        }
    }
}
