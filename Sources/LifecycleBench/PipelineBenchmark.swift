import Foundation
import LifecycleCodec
import LifecycleConfig
import LifecycleDaemon
import LifecycleEngine
import LifecycleKafka
import Logging
import Synchronization

/// The daemon's pipeline against the mock cluster: throughput on a preloaded topic compared
/// with a bare librdkafka consumer reading the same topic in the same run (with 1 and 2
/// workers), event-to-trigger latency at a steady produce rate, and how long a commit cycle
/// pauses the processing threads with a million users.
struct PipelineBenchmark {
    let config: String
    let population: Population
    let days: Int
    let rate: Int
    let seconds: Int
    /// `throughput`, `latency`, `pause`, in any combination.
    let phases: Set<String>
    /// Worker counts to compare in the throughput phase; the latency phase uses the last.
    let workers: [Int]
    /// Users of the pause phase's topic.
    let pauseUsers: Int
    /// Added to the pipeline's and the bare consumer's Kafka properties.
    let kafkaProperties: [String: String]
    let logger: Logger = { var logger = Logger(label: "bench"); if ProcessInfo.processInfo.environment["BENCH_DEBUG"] != nil { logger.logLevel = .debug }; return logger }()
    /// For the consumers of the mock cluster. The mock answers a fetch that finds no data only
    /// after the whole `fetch.wait.max.ms` (500 ms by default), even when data arrives meanwhile
    /// (librdkafka's rdkafka_mock_handlers.c); a broker answers as soon as there is data. With the
    /// default, the steady stream reached the pipeline in ~0.5 s bursts (events' age when
    /// consumed: p50 ~270 ms, p99 ~500 ms) and the bursts' triggers made the latency tail.
    static let mockConsumerProperties = ["session.timeout.ms": "6000", "fetch.wait.max.ms": "2"]

    func run() throws {
        let cluster = try MockCluster()
        // The synthetic population's days run past today's wall clock: no future limit.
        let text = try String(contentsOfFile: config, encoding: .utf8)
        var loaded = try ConfigLoader.load(text: text.replacingOccurrences(of: "max_future: 1h", with: "max_future: 3650d"), file: config)
        precondition(loaded.rules.events.maxFuture > Millis.day, "\(config): set events.max_future: 3650d for the benchmark")
        for topic in Set(loaded.settings.kafka.triggerTopics.values).union([loaded.settings.kafka.deadLetterTopic]) {
            try cluster.createTopic(topic, partitions: 1)
        }
        loaded.settings.kafka.brokers = cluster.bootstrapServers
        loaded.settings.kafka.properties = Self.mockConsumerProperties.merging(kafkaProperties) { $1 }
        // Every phase's state directory is beside this one, and all go when the run ends.
        let scratch = NSTemporaryDirectory() + "lifecycled-bench-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        loaded.settings.state.directory = scratch + "/state"

        if !phases.isDisjoint(with: ["throughput", "latency", "rebalance"]) {
            try cluster.createTopic("user-events", partitions: 8)
            loaded.settings.kafka.inputTopics = ["user-events"]
            // The population's days, compressed (the mock keeps ~5 MB per partition).
            var dayEvents: [(time: Int64, user: UInt32, name: UInt8)] = []
            let total = try preload(cluster: cluster, topic: "user-events") { emit in
                for day in 0..<days {
                    population.day(day, into: &dayEvents)
                    for event in dayEvents { try emit(event.time, event.user, event.name) }
                }
            }
            note("preloaded \(total) events of \(population.users) users into 8 partitions\n")
            if phases.contains("throughput") { try throughput(loaded, cluster: cluster, expected: total) }
            if phases.contains("latency") { try steadyLatency(loaded, cluster: cluster, backlog: total) }
            if phases.contains("rebalance") {
                for strategy in ["cooperative-sticky", "range"] { try rebalancePause(loaded, cluster: cluster, strategy: strategy) }
            }
        }
        if phases.contains("pause") { try commitPause(loaded, cluster: cluster) }
    }

    /// Produces what `events` emits (time, user, event name index) to `topic`, lz4-compressed;
    /// returns how many.
    private func preload(
        cluster: MockCluster, topic: String,
        _ events: ((Int64, UInt32, UInt8) throws -> Void) throws -> Void
    ) throws -> Int {
        let producer = try KafkaProducer(
            properties: ["bootstrap.servers": cluster.bootstrapServers, "compression.codec": "lz4", "linger.ms": "20",
                         "batch.num.messages": "10000", "queue.buffering.max.messages": "1000000"],
            logger: logger) { _ in }
        let writer = EventWriter()
        var line: [UInt8] = []
        var total = 0
        try events { time, user, name in
            line.removeAll(keepingCapacity: true)
            writer.write(time: time, user: user, name: name, into: &line)
            try producer.produce(topic: topic, key: Array("u\(user)".utf8), value: line, ticket: 0)
            total += 1
            if total % 10_000 == 0 { producer.poll() }
        }
        try producer.flush(timeoutMilliseconds: 120_000)
        return total
    }

    private func throughput(_ loaded: LoadedConfig, cluster: MockCluster, expected: Int) throws {
        let bare = try bareConsumerRate(cluster: cluster, expected: expected)
        var header = "| events | bare consumer (events/s) |"
        var rule = "|---:|---:|"
        var row = "| \(expected) | \(Int(bare.rate)) |"
        for count in workers {
            let rate = try pipelineRate(loaded, cluster: cluster, workers: count, expected: expected)
            header += " pipeline, \(count) worker\(count == 1 ? "" : "s") (events/s) | ratio |"
            rule += "---:|---:|"
            row += " \(Int(rate)) | \(String(format: "%.2f", rate / bare.rate)) |"
        }
        print(header)
        print(rule)
        print(row)
        if bare.count != expected { print("\nwarning: the bare consumer saw \(bare.count) of \(expected) events (mock cluster retention)") }
    }

    /// Messages per second from the first message to the last, group join excluded.
    private func bareConsumerRate(cluster: MockCluster, expected: Int) throws -> (rate: Double, count: Int) {
        let consumer = try KafkaConsumer(
            properties: ["bootstrap.servers": cluster.bootstrapServers, "group.id": "bench-bare"]
                .merging(Self.mockConsumerProperties) { $1 }.merging(kafkaProperties) { $1 },
            logger: logger) { _ in [:] }
        try consumer.subscribe(["user-events"])
        var count = 0
        var bytes = 0
        var first: Date?
        var last = Date()
        var idleSince = Date()
        while count < expected && Date().timeIntervalSince(idleSince) < 10 {
            let got = try consumer.poll(timeoutMilliseconds: 100) { message in bytes &+= message.value.count }
            if got > 0 {
                if first == nil { first = Date() }
                count += got
                last = Date()
                idleSince = last
            }
        }
        try consumer.close()
        return (Double(count) / max(last.timeIntervalSince(first ?? last), 0.001), count)
    }

    /// A pipeline of `workers` threads reading the whole topic under a group of its own.
    private func pipelineRate(_ config: LoadedConfig, cluster: MockCluster, workers: Int, expected: Int) throws -> Double {
        var settings = config
        settings.settings.kafka.groupID = "bench-pipeline-\(workers)"
        try Self.createChangelog(settings, cluster: cluster, partitions: 8)
        settings.settings.state.directory += "-\(workers)"
        settings.settings.processing.threads = workers
        let pipeline = try PipelineCoordinator(config: settings, logger: logger, wallClock: { 0 })
        let cpuBefore = Self.processCPUSeconds()
        var first: Date?
        var last = Date()
        var idleSince = Date()
        var consumed = 0
        while consumed < expected && Date().timeIntervalSince(idleSince) < 10 {
            try pipeline.step(timeoutMilliseconds: 10)
            let now = pipeline.counters.eventsConsumed
            if now > consumed {
                if first == nil { first = Date() }
                consumed = now
                last = Date()
                idleSince = last
            }
        }
        let cpu = Self.processCPUSeconds() - cpuBefore
        try pipeline.stop()
        let seconds = last.timeIntervalSince(first ?? last)
        note("pipeline, \(workers) worker(s): \(pipeline.counters.eventsConsumed) events, \(pipeline.counters.triggersProduced) triggers in \(String(format: "%.2f", seconds)) s, the process busy \(String(format: "%.2f", cpu)) CPU-s meanwhile (broker included)\n")
        return Double(consumed) / max(seconds, 0.001)
    }

    /// The mock cannot create topics on request: each pipeline's changelog is made here.
    static func createChangelog(_ config: LoadedConfig, cluster: MockCluster, partitions: Int32) throws {
        for topic in config.settings.kafka.inputTopics {
            try cluster.createTopic(config.settings.kafka.changelogTopic(for: topic), partitions: partitions)
        }
    }

    /// CPU time of the whole process (user and system).
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(0), &usage)  // RUSAGE_SELF
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    static let warmUpSeconds = 3.0

    /// A producer thread sends `rate` events/s for `seconds` while the pipeline keeps up;
    /// latency is from consuming an event to Kafka acknowledging a trigger it caused.
    private func steadyLatency(_ config: LoadedConfig, cluster: MockCluster, backlog: Int) throws {
        var settings = config
        settings.settings.kafka.groupID = "bench-latency"
        try Self.createChangelog(settings, cluster: cluster, partitions: 8)
        // Its own state: restoring the throughput phase's checkpoints would skip the backlog.
        settings.settings.state.directory += "-latency"
        settings.settings.processing.threads = workers.last ?? 1
        let samples = Samples()
        let pipeline = try PipelineCoordinator(config: settings, logger: logger, wallClock: { 0 }, observer: samples)
        // Join the group and read the preloaded backlog (what the mock retained of it: nothing
        // new for 2 s) before measuring.
        let deadline = Date().addingTimeInterval(120)
        var lastProgress = Date()
        var read = 0
        while read < backlog && Date() < deadline
            && (pipeline.assignedPartitions.isEmpty || read == 0 || Date().timeIntervalSince(lastProgress) < 2) {
            try pipeline.step(timeoutMilliseconds: 50)
            if pipeline.counters.eventsConsumed > read {
                read = pipeline.counters.eventsConsumed
                lastProgress = Date()
            }
        }
        let backlog = pipeline.counters.eventsConsumed
        let steady = SteadyProducer(cluster: cluster, topic: "user-events", population: population, rate: rate, seconds: seconds, startDay: days)
        let thread = Thread { steady.run() }
        samples.record(true)
        thread.start()
        // The daemon's own step. The first seconds are reported apart: the stream time jumps
        // from the backlog's last event to the steady stream's first, and the timers due in
        // between fire at once (a burst, not the steady state).
        let warmUp = Date().addingTimeInterval(Self.warmUpSeconds)
        while Date() < warmUp { try pipeline.step() }
        let warmUpSamples = samples.take().latencies
        let atSteady = pipeline.counters
        let end = Date().addingTimeInterval(Double(seconds) - Self.warmUpSeconds + 5)
        while Date() < end { try pipeline.step() }
        let measured = samples.take()
        let afterSteady = pipeline.counters
        try pipeline.stop()
        let latencies = measured.latencies.sorted()
        guard !latencies.isEmpty else {
            print("\nno triggers during the steady phase")
            return
        }
        func percentile(_ values: [Double], _ p: Double) -> Double { values[min(values.count - 1, Int(Double(values.count) * p))] }
        func row(_ window: String, _ values: [Double]) -> String {
            "| \(window) | \(values.count) | \(String(format: "%.2f", percentile(values, 0.5))) | \(String(format: "%.2f", percentile(values, 0.99))) | \(String(format: "%.2f", values.last!)) |"
        }
        let consumed = pipeline.counters.eventsConsumed - backlog
        print("\n\(consumed) events consumed at a steady \(rate)/s for \(seconds) s by \(settings.settings.processing.threads!) worker(s)\n")
        print("| window | triggers measured | p50 (ms) | p99 (ms) | max (ms) |")
        print("|---|---:|---:|---:|---:|")
        if !warmUpSamples.isEmpty { print(row("first \(Int(Self.warmUpSeconds)) s (timer burst)", warmUpSamples.sorted())) }
        print(row("steady, after \(Int(Self.warmUpSeconds)) s", latencies))
        // Not in the latency above, which starts at consumption: the producer's linger, the
        // broker and the fetch. A tail here is a tail end to end, whatever the table says.
        let ages = measured.ages.sorted()
        if !ages.isEmpty {
            print("\nevents' age when consumed (Kafka timestamp to consumption, ms resolution): p50 \(Int(percentile(ages, 0.5))) ms, p99 \(Int(percentile(ages, 0.99))) ms, max \(Int(ages.last!)) ms")
        }
        // The changelog's cost in the steady stream: what its commit cycles wrote, and how long
        // a partition's snapshot copy and each slice of its changelog records held its worker.
        let checkpoints = afterSteady.checkpoints - atSteady.checkpoints
        let cycles = max(1, checkpoints / 8)
        let records = afterSteady.changelogRecords - atSteady.changelogRecords
        let bytes = afterSteady.changelogBytes - atSteady.changelogBytes
        print("\nchangelog in the steady stream: \(records) records, \(bytes) bytes of keys and values in \(checkpoints) partition checkpoints (~\(cycles) commit cycles of \(settings.settings.state.checkpointInterval / 1000) s): ~\(bytes / cycles) bytes and ~\(records / cycles) records per cycle")
        for (what, pauses) in [("snapshot copy", measured.snapshots.map(\.microseconds)), ("changelog slice", measured.changelogSlices.map(\.microseconds))] {
            let sorted = pauses.map { Double($0) / 1000 }.sorted()
            guard let longest = sorted.last else { continue }
            print("a \(what) held its worker: p50 \(String(format: "%.2f", percentile(sorted, 0.5))) ms, max \(String(format: "%.2f", longest)) ms (\(sorted.count) of them)")
        }
    }

    /// How long the partitions that stay with an instance stop while another instance joins
    /// its group and takes some over: the longest gap between two events of each kept
    /// partition while the group rebalances, beside the longest gap before, with a steady
    /// stream flowing.
    private func rebalancePause(_ config: LoadedConfig, cluster: MockCluster, strategy: String) throws {
        // A topic of its own, empty at first: the mock's 5 MB per partition would soon drop
        // what a slower member still has to read of a shared one.
        let topic = "rebalance-\(strategy)"
        try cluster.createTopic(topic, partitions: 8)
        var settings = config
        settings.settings.kafka.inputTopics = [topic]
        settings.settings.kafka.groupID = "bench-rebalance-\(strategy)"
        settings.settings.kafka.properties["partition.assignment.strategy"] = strategy
        // The mock completes a rebalance a second before the session timeout; members that
        // learn of it by heartbeat need that long to rejoin.
        settings.settings.kafka.properties["session.timeout.ms"] = "10000"
        settings.settings.processing.threads = workers.last ?? 1
        try Self.createChangelog(settings, cluster: cluster, partitions: 8)
        let gaps = ConsumeGaps()
        var first = settings
        first.settings.state.directory += "-rebalance-\(strategy)-a"
        let a = try PipelineCoordinator(config: first, logger: logger, wallClock: { 0 }, observer: gaps)
        let deadline = Date().addingTimeInterval(120)
        while a.assignedPartitions.count < 8 && Date() < deadline { try a.step(timeoutMilliseconds: 10) }
        let steady = SteadyProducer(
            cluster: cluster, topic: topic, population: population, rate: min(rate, 20_000), seconds: seconds, startDay: days)
        Thread { steady.run() }.start()
        let calm = Date().addingTimeInterval(3)
        while Date() < calm { try a.step(timeoutMilliseconds: 10) }
        _ = gaps.takeLongest()
        let quiet = Date().addingTimeInterval(3)
        while Date() < quiet { try a.step(timeoutMilliseconds: 10) }
        let before = gaps.takeLongest().gaps

        var second = settings
        second.settings.state.directory += "-rebalance-\(strategy)-b"
        let joined = Date()
        let joinedAt = MonotonicMicroseconds.now()
        // The second member steps on a thread of its own, as another instance would.
        let member = SecondMember(config: second, logger: logger)
        Thread { member.run() }.start()
        while !member.running && Date() < deadline { try a.step(timeoutMilliseconds: 10) }
        let took = Date().timeIntervalSince(joined)
        let settle = Date().addingTimeInterval(2)
        while Date() < settle { try a.step(timeoutMilliseconds: 10) }
        let (during, longestEnded) = gaps.takeLongest()
        note("\(strategy): the longest gap ended \(String(format: "%.1f", Double(longestEnded - joinedAt) / 1_000_000)) s after the second member started\n")
        let kept = a.assignedPartitions
        member.stop()
        try a.stop()
        let pausedDuring = kept.compactMap { during[$0] }.max() ?? 0
        let pausedBefore = kept.compactMap { before[$0] }.max() ?? 0
        print("\n| strategy | rebalance until the new member runs (s) | partitions kept | longest gap of a kept partition during it (ms) | longest gap in the 3 s before (ms) |")
        print("|---|---:|---:|---:|---:|")
        print("| \(strategy) | \(String(format: "%.1f", took)) | \(kept.count) of 8 | \(String(format: "%.1f", Double(pausedDuring) / 1000)) | \(String(format: "%.1f", Double(pausedBefore) / 1000)) |")
    }

    /// How long the processing threads stop for a commit cycle: `pauseUsers` users with two
    /// events each in 8 partitions, consumed with a checkpoint every second; every snapshot
    /// copy and changelog slice (the parts of a cycle on a processing thread) is timed.
    private func commitPause(_ config: LoadedConfig, cluster: MockCluster) throws {
        try cluster.createTopic("pause-events", partitions: 8)
        let start: Int64 = 1_795_392_000_000
        let total = try preload(cluster: cluster, topic: "pause-events") { emit in
            for user in 0..<pauseUsers { try emit(start + Int64(user), UInt32(user), 0) }
            for user in 0..<pauseUsers { try emit(start + Int64(pauseUsers + user), UInt32(user), 1) }
        }
        note("preloaded \(total) events of \(pauseUsers) users into 8 partitions\n")
        var settings = config
        settings.settings.kafka.inputTopics = ["pause-events"]
        settings.settings.kafka.groupID = "bench-pause"
        try Self.createChangelog(settings, cluster: cluster, partitions: 8)
        settings.settings.state.directory += "-pause"
        settings.settings.state.checkpointInterval = 1_000
        // Compressed, so each partition's changelog stays under the mock's 5 MB.
        settings.settings.kafka.properties["compression.codec"] = "lz4"
        settings.settings.processing.threads = workers.last ?? 1
        let samples = Samples()
        samples.record(true)
        let pipeline = try PipelineCoordinator(config: settings, logger: logger, wallClock: { 0 }, observer: samples)
        var consumed = 0
        var idleSince = Date()
        let deadline = Date().addingTimeInterval(300)
        // Join the group, consume everything, then give the last commit cycle time to run.
        while (consumed == 0 || Date().timeIntervalSince(idleSince) < 3) && Date() < deadline {
            try pipeline.step(timeoutMilliseconds: 10)
            if pipeline.counters.eventsConsumed > consumed {
                consumed = pipeline.counters.eventsConsumed
                idleSince = Date()
            }
        }
        let board = StatusBoard()
        pipeline.publish(to: board, now: 0)
        try pipeline.stop()
        let taken = samples.take()
        let snapshots = taken.snapshots
        let largest = snapshots.max { $0.bytes < $1.bytes }
        let pauses = snapshots.map { Double($0.microseconds) / 1000 }.sorted()
        let slices = taken.changelogSlices.map { Double($0.microseconds) / 1000 }.sorted()
        note("snapshots (MiB, ms): " + snapshots.map { String(format: "%.1f/%.2f", Double($0.bytes) / 1_048_576, Double($0.microseconds) / 1000) }.joined(separator: " ") + "\n")
        print("\n\(consumed) of \(total) events consumed, \(board.current.usersTracked) users tracked by \(settings.settings.processing.threads!) worker(s); \(snapshots.count) snapshots taken, the largest \(((largest?.bytes ?? 0) + (1 << 19)) >> 20) MiB\n")
        let before = try loopCommitCycle(config, users: pauseUsers, start: start)
        print("| snapshots | copy p50 (ms) | copy max (ms) | changelog slices | slice p50 (ms) | slice max (ms) | largest snapshot (MiB) | before: one thread's commit cycle, same state (ms) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        if let longest = pauses.last {
            let slice = (p50: slices.isEmpty ? 0 : slices[slices.count / 2], max: slices.last ?? 0)
            print("| \(pauses.count) | \(String(format: "%.2f", pauses[pauses.count / 2])) | \(String(format: "%.2f", longest)) | \(slices.count) | \(String(format: "%.2f", slice.p50)) | \(String(format: "%.2f", slice.max)) | \(String(format: "%.1f", Double(largest!.bytes) / 1_048_576)) | \(String(format: "%.0f", before)) |")
        }
        try restoreFromChangelog(settings, users: board.current.usersTracked)
    }

    /// A new instance with no state directory takes the pause phase's partitions over: their
    /// state comes from the changelog alone, one partition after another.
    private func restoreFromChangelog(_ config: LoadedConfig, users: Int) throws {
        var settings = config
        settings.settings.state.directory += "-restored"
        let samples = Samples()
        let pipeline = try PipelineCoordinator(config: settings, logger: logger, wallClock: { 0 }, observer: samples)
        let deadline = Date().addingTimeInterval(300)
        while samples.restoredCount < 8 && Date() < deadline { try pipeline.step(timeoutMilliseconds: 10) }
        try pipeline.stop()
        let restores = samples.take().restores
        let restored = restores.reduce(0) { $0 + $1.users }
        let records = restores.reduce(0) { $0 + $1.records }
        let seconds = Double(restores.reduce(0) { $0 + $1.microseconds }) / 1_000_000
        let slowest = restores.max { Double($0.users) / Double($0.microseconds) > Double($1.users) / Double($1.microseconds) }
        print("\nrestore from the changelog, no local state: \(restores.count) partitions, \(restored) of \(users) users, \(records) records\n")
        print("| partitions | users | records | restore time, one after another (s) | users/s | slowest partition: users, s |")
        print("|---:|---:|---:|---:|---:|---:|")
        if let slowest {
            print("| \(restores.count) | \(restored) | \(records) | \(String(format: "%.2f", seconds)) | \(Int(Double(restored) / max(seconds, 0.001))) | \(slowest.users), \(String(format: "%.2f", Double(slowest.microseconds) / 1_000_000)) |")
        }
    }

    /// What the single processing loop before the split paused for, on the same state: every
    /// partition's snapshot into fresh memory, written and synced, one after another (the
    /// users spread over 8 engines by user number, the events as the pipeline saw them).
    private func loopCommitCycle(_ config: LoadedConfig, users: Int, start: Int64) throws -> Double {
        var engines = (0..<8).map { _ in PartitionEngine(rules: config.compiled) }
        var decoder = EventDecoder(fields: config.rules.events, propertyPaths: config.compiled.propertyPaths)
        var output = EngineOutput()
        let writer = EventWriter()
        var line: [UInt8] = []
        for (time, name) in [(start, UInt8(0)), (start + Int64(users), UInt8(1))] {
            for user in 0..<users {
                line.removeAll(keepingCapacity: true)
                writer.write(time: time + Int64(user), user: UInt32(user), name: name, into: &line)
                line.withUnsafeBytes { bytes in
                    _ = decoder.decode(bytes, fallbackTime: nil) { engines[user % 8].ingest($0, into: &output) }
                }
                output.removeAll()
            }
        }
        let store = CheckpointStore(directory: config.settings.state.directory + "-loop")
        try store.prepare()
        return try Benchmark.measure {
            for (partition, engine) in engines.enumerated() {
                try store.write(
                    Checkpoint(nextOffset: 1, configVersion: config.configVersion, engineSnapshot: engine.snapshot()),
                    topic: "pause-events", partition: Int32(partition))
            }
        } * 1000
    }
}

/// What the benchmark hears from the pipeline's threads.
final class Samples: PipelineObserver {
    struct Taken {
        var latencies: [Double] = []  // ms
        var ages: [Double] = []  // ms
        var snapshots: [(bytes: Int, microseconds: Int)] = []
        var changelogSlices: [(records: Int, microseconds: Int)] = []
        var restores: [(users: Int, records: Int, microseconds: Int)] = []
    }

    private let recording = Atomic(false)
    private let taken = Mutex(Taken())

    func record(_ on: Bool) { recording.store(on, ordering: .relaxed) }

    /// What was heard since the last call.
    func take() -> Taken {
        taken.withLock { taken in
            defer { taken = Taken() }
            return taken
        }
    }

    func triggerAcknowledged(afterMicroseconds latency: Int) {
        guard recording.load(ordering: .relaxed) else { return }
        taken.withLock { $0.latencies.append(Double(latency) / 1000) }
    }

    func eventConsumed(_ partition: TopicPartition, ageMilliseconds age: Int64?) {
        guard recording.load(ordering: .relaxed), let age else { return }
        taken.withLock { $0.ages.append(Double(age)) }
    }

    func snapshotTaken(_ partition: String, bytes: Int, microseconds: Int) {
        taken.withLock { $0.snapshots.append((bytes, microseconds)) }
    }

    func changelogWritten(_ partition: String, records: Int, microseconds: Int, unacknowledged: Int) {
        taken.withLock { $0.changelogSlices.append((records, microseconds)) }
    }

    func partitionRestored(_ partition: TopicPartition, changelogRecords: Int, users: Int, microseconds: Int) {
        taken.withLock { $0.restores.append((users, changelogRecords, microseconds)) }
    }

    var restoredCount: Int { taken.withLock { $0.restores.count } }
}

/// The longest wait between two events of each partition, per window of time: how long a
/// partition stopped.
final class ConsumeGaps: PipelineObserver {
    private struct State {
        var last: [TopicPartition: Int] = [:]
        var longest: [TopicPartition: Int] = [:]
        /// When the longest gap of all ended (monotonic µs).
        var longestEnded = 0
    }

    private let state = Mutex(State())

    func eventConsumed(_ partition: TopicPartition, ageMilliseconds age: Int64?) {
        let now = MonotonicMicroseconds.now()
        state.withLock { state in
            if let last = state.last[partition] {
                if now - last > (state.longest.values.max() ?? 0) { state.longestEnded = now }
                state.longest[partition] = max(state.longest[partition] ?? 0, now - last)
            }
            state.last[partition] = now
        }
    }

    /// The longest gap per partition since the last call (µs), which starts a new window, and
    /// when the longest of them ended.
    func takeLongest() -> (gaps: [TopicPartition: Int], ended: Int) {
        state.withLock { state in
            defer { state.longest = [:] }
            return (state.longest, state.longestEnded)
        }
    }
}

enum MonotonicMicroseconds {
    static func now() -> Int {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int(time.tv_sec) * 1_000_000 + Int(time.tv_nsec) / 1000
    }
}

/// Another instance of the group, stepping on its own thread until told to stop.
final class SecondMember: @unchecked Sendable {
    private let config: LoadedConfig
    private let logger: Logger
    private let state = Mutex((running: false, stopping: false, stopped: false))

    init(config: LoadedConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    /// It owns partitions and their state is restored.
    var running: Bool { state.withLock { $0.running } }

    func run() {
        do {
            let pipeline = try PipelineCoordinator(config: config, logger: logger, wallClock: { 0 })
            let board = StatusBoard()
            while !state.withLock({ $0.stopping }) {
                try pipeline.step(timeoutMilliseconds: 10)
                pipeline.publish(to: board, now: 0)
                let ready = !pipeline.assignedPartitions.isEmpty && board.current.ready
                state.withLock { $0.running = ready }
            }
            try pipeline.stop()
        } catch {
            note("second member: \(error)\n")
        }
        state.withLock { $0.stopped = true }
    }

    func stop() {
        state.withLock { $0.stopping = true }
        while !state.withLock({ $0.stopped }) { Thread.sleep(forTimeInterval: 0.01) }
    }
}

/// Produces the population's following days at a fixed rate from its own thread.
final class SteadyProducer: @unchecked Sendable {
    let cluster: MockCluster
    let topic: String
    var population: Population
    let rate: Int
    let seconds: Int
    let startDay: Int

    init(cluster: MockCluster, topic: String, population: Population, rate: Int, seconds: Int, startDay: Int) {
        self.cluster = cluster
        self.topic = topic
        self.population = population
        self.rate = rate
        self.seconds = seconds
        self.startDay = startDay
    }

    func run() {
        let producer: KafkaProducer
        do {
            // librdkafka's default batching (linger 5 ms), like a typical event producer. With
            // 1 ms the mock broker's round trip grew over the run (p50 0.4 -> 5 ms).
            producer = try KafkaProducer(
                properties: ["bootstrap.servers": cluster.bootstrapServers],
                logger: Logger(label: "steady"), onDelivery: { _ in })
        } catch {
            note("steady producer: \(error)\n")
            return
        }
        // Generated before the clock starts: making a day's events takes long enough that
        // doing it on the way would send them in bursts, not at a steady rate.
        let total = rate * seconds
        var events: [(time: Int64, user: UInt32, name: UInt8)] = []
        var dayEvents: [(time: Int64, user: UInt32, name: UInt8)] = []
        var day = startDay
        while events.count < total {
            population.day(day, into: &dayEvents)
            events += dayEvents.prefix(total - events.count)
            day += 1
        }
        let writer = EventWriter()
        var line: [UInt8] = []
        let start = Date()
        for (sent, event) in events.enumerated() {
            // Pace: never ahead of `rate` events per second.
            let due = start.addingTimeInterval(Double(sent) / Double(rate))
            let wait = due.timeIntervalSinceNow
            if wait > 0.001 { Thread.sleep(forTimeInterval: wait) }
            line.removeAll(keepingCapacity: true)
            writer.write(time: event.time, user: event.user, name: event.name, into: &line)
            try? producer.produce(topic: topic, key: Array("u\(event.user)".utf8), value: line, ticket: 0)
            if sent % 1000 == 0 { producer.poll() }
        }
        try? producer.flush(timeoutMilliseconds: 10_000)
    }
}
