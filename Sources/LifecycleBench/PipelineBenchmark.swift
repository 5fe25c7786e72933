import Foundation
import LifecycleConfig
import LifecycleDaemon
import LifecycleKafka
import Logging

/// The daemon's pipeline against the mock cluster (issue 3): throughput on a preloaded topic
/// compared with a bare librdkafka consumer reading the same topic in the same run, then
/// event-to-trigger latency at a steady produce rate.
struct PipelineBenchmark {
    let config: String
    let population: Population
    let days: Int
    let rate: Int
    let seconds: Int
    /// `throughput`, `latency` or both.
    let phases: Set<String>
    /// Added to the pipeline's and the bare consumer's Kafka properties.
    let kafkaProperties: [String: String]
    let logger = Logger(label: "bench")
    /// For the consumers of the mock cluster. The mock answers a fetch that finds no data only
    /// after the whole `fetch.wait.max.ms` (500 ms by default), even when data arrives meanwhile
    /// (librdkafka's rdkafka_mock_handlers.c); a broker answers as soon as there is data. With the
    /// default, the steady stream reached the pipeline in ~0.5 s bursts (events' age when
    /// consumed: p50 ~270 ms, p99 ~500 ms) and the bursts' triggers made the latency tail.
    static let mockConsumerProperties = ["session.timeout.ms": "6000", "fetch.wait.max.ms": "2"]

    func run() throws {
        let cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 8)
        var loaded = try ConfigLoader.load(path: config)
        for topic in Set(loaded.settings.kafka.triggerTopics.values).union([loaded.settings.kafka.deadLetterTopic]) {
            try cluster.createTopic(topic, partitions: 1)
        }
        loaded.settings.kafka.brokers = cluster.bootstrapServers
        loaded.settings.kafka.inputTopics = ["user-events"]
        loaded.settings.kafka.properties = Self.mockConsumerProperties.merging(kafkaProperties) { $1 }
        loaded.settings.state.directory = NSTemporaryDirectory() + "lifecycled-bench-\(UUID().uuidString)"

        // Preload: the population's month, compressed (the mock keeps ~5 MB per partition).
        let producer = try KafkaProducer(
            properties: ["bootstrap.servers": cluster.bootstrapServers, "compression.codec": "lz4", "linger.ms": "20",
                         "batch.num.messages": "10000", "queue.buffering.max.messages": "1000000"],
            logger: logger) { _, _ in }
        var dayEvents: [(time: Int64, user: UInt32, name: UInt8)] = []
        let writer = EventWriter()
        var line: [UInt8] = []
        var total = 0
        for day in 0..<days {
            population.day(day, into: &dayEvents)
            for event in dayEvents {
                line.removeAll(keepingCapacity: true)
                writer.write(time: event.time, user: event.user, name: event.name, into: &line)
                try producer.produce(topic: "user-events", key: Array("u\(event.user)".utf8), value: line, ticket: 0)
                total += 1
                if total % 10_000 == 0 { producer.poll() }
            }
        }
        try producer.flush(timeoutMilliseconds: 120_000)
        note("preloaded \(total) events of \(population.users) users into 8 partitions\n")

        if phases.contains("throughput") {
            let bare = try bareConsumerRate(cluster: cluster, expected: total)
            let pipelineRate = try pipelineRate(loaded, group: "bench-pipeline", expected: total)
            print("| events | bare consumer (events/s) | lifecycled pipeline (events/s) | ratio |")
            print("|---:|---:|---:|---:|")
            print("| \(total) | \(Int(bare.rate)) | \(Int(pipelineRate)) | \(String(format: "%.2f", pipelineRate / bare.rate)) |")
            if bare.count != total { print("\nwarning: the bare consumer saw \(bare.count) of \(total) events (mock cluster retention)") }
        }
        if phases.contains("latency") { try steadyLatency(loaded, cluster: cluster, backlog: total) }
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

    private func pipelineRate(_ config: LoadedConfig, group: String, expected: Int) throws -> Double {
        var settings = config
        settings.settings.kafka.groupID = group
        let pipeline = try TriggerPipeline(config: settings, logger: logger, wallClock: { 0 })
        let cpuBefore = Self.threadCPUSeconds()
        var first: Date?
        var last = Date()
        var idleSince = Date()
        while pipeline.counters.eventsConsumed < expected && Date().timeIntervalSince(idleSince) < 10 {
            let before = pipeline.counters.eventsConsumed
            try pipeline.step(timeoutMilliseconds: 100)
            if pipeline.counters.eventsConsumed > before {
                if first == nil { first = Date() }
                last = Date()
                idleSince = last
            }
        }
        let cpu = Self.threadCPUSeconds() - cpuBefore
        try pipeline.stop()
        note("pipeline: \(pipeline.counters.eventsConsumed) events, \(pipeline.counters.triggersProduced) triggers in \(String(format: "%.2f", last.timeIntervalSince(first ?? last))) s, the loop thread busy \(String(format: "%.2f", cpu)) s of it\n")
        return Double(pipeline.counters.eventsConsumed) / max(last.timeIntervalSince(first ?? last), 0.001)
    }

    /// CPU time of the calling thread (user and system), to tell work from waiting.
    static func threadCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(1), &usage)  // RUSAGE_THREAD
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    static let warmUpSeconds = 3.0

    /// A producer thread sends `rate` events/s for `seconds` while the pipeline keeps up;
    /// latency is from consuming an event to Kafka acknowledging a trigger it caused.
    private func steadyLatency(_ config: LoadedConfig, cluster: MockCluster, backlog: Int) throws {
        var settings = config
        settings.settings.kafka.groupID = "bench-latency"
        // Its own state: restoring the throughput phase's checkpoints would skip the backlog.
        settings.settings.state.directory += "-latency"
        let pipeline = try TriggerPipeline(config: settings, logger: logger, wallClock: { 0 })
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
        pipeline.latencySamples = []
        let steady = SteadyProducer(cluster: cluster, population: population, rate: rate, seconds: seconds, startDay: days)
        let thread = Thread { steady.run() }
        thread.start()
        // The daemon's own step, with its default wait. The first seconds are not measured:
        // the stream time jumps from the backlog's last event to the steady stream's first,
        // and the timers due in between fire at once (a burst, not the steady state).
        let warmUp = Date().addingTimeInterval(Self.warmUpSeconds)
        while Date() < warmUp { try pipeline.step() }
        let warmUpSamples = pipeline.latencySamples ?? []
        pipeline.latencySamples = []
        pipeline.consumeAgeSamples = []
        let end = Date().addingTimeInterval(Double(seconds) - Self.warmUpSeconds + 5)
        while Date() < end { try pipeline.step() }
        try pipeline.stop()
        let samples = (pipeline.latencySamples ?? []).sorted()
        guard !samples.isEmpty else {
            print("\nno triggers during the steady phase")
            return
        }
        func row(_ window: String, _ samples: [Double]) -> String {
            func percentile(_ p: Double) -> String {
                String(format: "%.2f", samples[min(samples.count - 1, Int(Double(samples.count) * p))] * 1000)
            }
            return "| \(window) | \(samples.count) | \(percentile(0.5)) | \(percentile(0.99)) | \(String(format: "%.2f", samples.last! * 1000)) |"
        }
        let consumed = pipeline.counters.eventsConsumed - backlog
        print("\n\(consumed) events consumed at a steady \(rate)/s for \(seconds) s\n")
        print("| window | triggers measured | p50 (ms) | p99 (ms) | max (ms) |")
        print("|---|---:|---:|---:|---:|")
        if !warmUpSamples.isEmpty { print(row("first \(Int(Self.warmUpSeconds)) s (timer burst)", warmUpSamples.sorted())) }
        print(row("steady, after \(Int(Self.warmUpSeconds)) s", samples))
        // Not in the latency above, which starts at consumption: the producer's linger, the
        // broker and the fetch. A tail here is a tail end to end, whatever the table says.
        let ages = (pipeline.consumeAgeSamples ?? []).sorted()
        if !ages.isEmpty {
            func age(_ p: Double) -> String { String(format: "%.0f", ages[min(ages.count - 1, Int(Double(ages.count) * p))] * 1000) }
            print("\nevents' age when consumed (Kafka timestamp to consumption, ms resolution): p50 \(age(0.5)) ms, p99 \(age(0.99)) ms, max \(age(1)) ms")
        }
    }
}

/// Produces the population's following days at a fixed rate from its own thread.
final class SteadyProducer: @unchecked Sendable {
    let cluster: MockCluster
    var population: Population
    let rate: Int
    let seconds: Int
    let startDay: Int

    init(cluster: MockCluster, population: Population, rate: Int, seconds: Int, startDay: Int) {
        self.cluster = cluster
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
                logger: Logger(label: "steady"), onDelivery: { _, _ in })
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
            try? producer.produce(topic: "user-events", key: Array("u\(event.user)".utf8), value: line, ticket: 0)
            if sent % 1000 == 0 { producer.poll() }
        }
        try? producer.flush(timeoutMilliseconds: 10_000)
    }
}
