import ArgumentParser
import Foundation
import LifecycleConfig
import LifecycleDaemon
import LifecycleEngine
import LifecycleHTTP
import LifecycleKafka
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Try it out: an embedded broker, a synthetic population and the real pipeline.",
        discussion: """
            Starts librdkafka's in-process mock cluster (for trying out only, never for production), \
            a population of engaged, fading, returning, limit-hitting and never-activating users \
            producing events on a compressed clock, and the daemon's pipeline with the config. \
            Shows a live summary and serves the HTTP port. Stops on Ctrl-C or after --duration.
            """
    )

    @Option(name: .shortAndLong, help: "The rules (YAML); its kafka and state sections are replaced.")
    var config = "config/lifecycled.yaml"

    @Option(help: "Users in the synthetic population.")
    var users = 2_000

    @Option(help: "Simulated days per real second.")
    var speed = 0.75

    @Option(help: "Stop after this many seconds (0: run until Ctrl-C).")
    var duration = 0.0

    @Option(help: "Where to serve the HTTP port.")
    var listen = "127.0.0.1:9464"

    func validate() throws {
        guard users > 0 else { throw ValidationError("--users must be at least 1") }
        guard speed > 0 else { throw ValidationError("--speed must be above 0") }
        guard duration >= 0 else { throw ValidationError("--duration must not be negative") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        unblockStopSignals()
        print("lifecycled demo — the embedded broker is librdkafka's mock cluster: for trying out, not for production.")
        let registry = PrometheusCollectorRegistry()
        let board = StatusBoard()
        var http = DaemonSettings.HTTP()
        http.listen = listen
        let server: StatusServer
        do {
            server = try StatusServer(host: http.host, port: http.port, board: board, registry: registry, clock: WallClock.milliseconds)
        } catch {
            throw CommandFailure.report("lifecycled demo: cannot listen on --listen \(listen): \(error)", status: ExitStatus.runtime)
        }
        let options = self
        let address = "http://\(http.host):\(server.port)"
        let loop = BlockingLoopService(name: "lifecycled-demo") { stop in
            var session = try DemoSession(options: options, board: board, registry: registry, address: address)
            // Its checkpoints belong to the embedded broker, which ends with the process.
            defer { try? FileManager.default.removeItem(atPath: session.config.settings.state.directory) }
            try session.run(until: stop)
        }
        do {
            try await ServiceGroup.lifecycled(loop: loop, around: [server], logger: Logger(label: "demo")).run()
        } catch {
            throw CommandFailure.report("lifecycled demo: \(error)", status: ExitStatus.runtime)
        }
    }
}

/// One demo run: the cluster, the population's producer, the pipeline, the summary.
struct DemoSession {
    let options: DemoCommand
    let cluster: MockCluster
    let config: LoadedConfig
    let producer: KafkaProducer
    let pipeline: PipelineCoordinator
    let board: StatusBoard
    var population: DemoPopulation
    let recent = RecentTriggers()
    let simulatedStart: Int64

    /// Posts to `board` and `registry`, which the HTTP port at `address` serves.
    init(options: DemoCommand, board: StatusBoard, registry: PrometheusCollectorRegistry, address: String) throws {
        self.options = options
        self.board = board
        cluster = try MockCluster()
        try cluster.createTopic("user-events", partitions: 4)
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("lifecycled-demo-\(UUID().uuidString)").path
        var loaded = try ConfigLoader.load(path: options.config)
        // The simulated clock runs days ahead of the wall clock, which events.max_future would
        // refuse as a wrong producer clock: the demo's events may be any time ahead.
        loaded.rules.events.maxFuture = 3650 * Millis.day
        loaded.compiled = try CompiledRules(loaded.rules, configVersion: loaded.configVersion)
        // The rules are otherwise the file's; where to read and write is the demo's.
        var settings = loaded.settings
        settings.kafka.brokers = cluster.bootstrapServers
        settings.kafka.groupID = "lifecycled-demo"
        settings.kafka.inputTopics = ["user-events"]
        settings.kafka.properties = ["session.timeout.ms": "6000"]
        settings.state.directory = state
        settings.state.checkpointInterval = 5 * Millis.second
        loaded.settings = settings
        config = loaded
        for topic in Set(settings.kafka.triggerTopics.values).union([settings.kafka.deadLetterTopic, settings.kafka.holdoutTopic, settings.kafka.alertsTopic]) {
            try cluster.createTopic(topic, partitions: 1)
        }
        // The mock cannot create topics on request: the changelog, like the input, is made here.
        try cluster.createTopic(settings.kafka.changelogTopic(for: "user-events"), partitions: 4)
        producer = try KafkaProducer(properties: ["bootstrap.servers": cluster.bootstrapServers], logger: Logger(label: "demo")) { _ in }
        pipeline = try PipelineCoordinator(
            config: config, logger: Logger(label: "lifecycled"), wallClock: WallClock.milliseconds,
            metrics: DaemonMetrics.prometheusFactory(registry: registry), observer: recent)
        // Simulated time runs ahead of the wall clock, so real time never fires a timer early.
        simulatedStart = (WallClock.milliseconds() / Millis.day + 1) * Millis.day
        population = DemoPopulation(users: options.users, start: simulatedStart)
        print("population: \(options.users) users over simulated days at \(options.speed) days/s; HTTP on \(address)/metrics")
    }

    /// Runs until `stop` is requested or --duration passes, then drains and stops the pipeline.
    mutating func run(until stop: SignalFlag) throws {
        let started = WallClock.milliseconds()
        var nextHour = 0
        var lastSummary = started
        var events: [(user: Int, name: String, plan: String?, time: Int64)] = []
        var produced = 0
        var lastProduced = 0
        while !stop.isRequested {
            let elapsed = Double(WallClock.milliseconds() - started) / 1000
            if options.duration > 0 && elapsed >= options.duration { break }
            let simulatedHours = Int(elapsed * options.speed * 24)
            events.removeAll(keepingCapacity: true)
            // Users reached since the last round respond (or not) from the next simulated hour on.
            for reach in recent.takeReached() { population.reached(reach.user, by: reach.trigger, after: nextHour) }
            while nextHour <= simulatedHours {
                population.hour(nextHour, into: &events)
                nextHour += 1
            }
            for event in events.sorted(by: { $0.time < $1.time }) {
                try produce(event)
                produced += 1
            }
            try pipeline.step(timeoutMilliseconds: 20)
            pipeline.publish(to: board, now: WallClock.milliseconds())
            let now = WallClock.milliseconds()
            if now - lastSummary >= 2_000 {
                printSummary(day: nextHour / 24, rate: Double(produced - lastProduced) / (Double(now - lastSummary) / 1000))
                lastSummary = now
                lastProduced = produced
            }
        }
        try producer.flush(timeoutMilliseconds: 10_000)
        // Let the pipeline drain what was produced before stopping.
        let drainUntil = WallClock.milliseconds() + 5_000
        while pipeline.counters.eventsConsumed < produced && WallClock.milliseconds() < drainUntil {
            try pipeline.step(timeoutMilliseconds: 50)
        }
        pipeline.publish(to: board, now: WallClock.milliseconds())
        try pipeline.stop()
        printSummary(day: nextHour / 24, rate: nil)
        let triggers = board.current.triggers
        let missing = triggers.filter { $0.totals.fired == 0 }.map(\.name)
        print(missing.isEmpty
            ? "every trigger of the playbook fired: \(triggers.map { "\($0.name) \($0.totals.fired)" }.joined(separator: ", "))"
            : "not fired yet: \(missing.joined(separator: ", ")) (run longer, or raise --speed)")
    }

    private func produce(_ event: (user: Int, name: String, plan: String?, time: Int64)) throws {
        let userID = "demo-\(event.user)"
        var json = #"{"user_id":"\#(userID)","event":"\#(event.name)","ts":\#(event.time)"#
        if let plan = event.plan {
            json += #","props":{"plan":"\#(plan)"}}"#
        } else if event.name == "purchase" {
            json += #","props":{"amount":19.99}}"#
        } else {
            json += "}"
        }
        try producer.produce(topic: "user-events", key: Array(userID.utf8), value: Array(json.utf8), ticket: 0)
        producer.poll()
    }

    private func printSummary(day: Int, rate: Double?) {
        let snapshot = board.current
        var lines = ["— simulated day \(day)" + (rate.map { String(format: ", %.0f events/s", $0) } ?? "")
            + ", \(snapshot.counters.eventsConsumed) events consumed, \(snapshot.usersTracked) users"]
        lines.append("  stages:   " + snapshot.usersPerStage.map { "\($0.stage) \($0.users)" }.joined(separator: ", "))
        lines.append("  triggers: " + snapshot.triggers.map { "\($0.name) \($0.totals.fired)" }.joined(separator: ", "))
        lines.append("  converted: " + snapshot.triggers.map { "\($0.name) \($0.totals.converted)" }.joined(separator: ", "))
        lines += UpliftReport.lines(rules: config.compiled, totals: snapshot.triggers.map(\.totals), indent: "  ")
        if !snapshot.alerts.isEmpty {
            lines.append("  alerts:   " + snapshot.alerts.map { alert in
                alert.name + " " + alert.state.rawValue + (alert.level.map { " \($0.rawValue)" } ?? "")
                    + (alert.value.map { " (\(AlertReplay.display($0)))" } ?? alert.reason.map { " (\($0))" } ?? "")
            }.joined(separator: ", "))
        }
        for trigger in recent.latest {
            lines.append("  e.g. \(trigger.name) for \(trigger.userID): \(trigger.reason)")
        }
        print(lines.joined(separator: "\n"))
    }
}

/// The last few triggers, for the summary, and the users reached (every trigger but the
/// control arm's), for the population to respond to; heard from the processing threads.
final class RecentTriggers: PipelineObserver {
    private let triggers = Mutex<[Trigger]>([])
    private let reached = Mutex<[(user: Int, trigger: String)]>([])

    var latest: [Trigger] { triggers.withLock { $0 } }

    /// The users reached since the last call.
    func takeReached() -> [(user: Int, trigger: String)] {
        reached.withLock { list in
            defer { list.removeAll() }
            return list
        }
    }

    func triggerProduced(_ trigger: Trigger) {
        triggers.withLock { latest in
            latest.removeAll { $0.name == trigger.name }
            latest.append(trigger)
            if latest.count > 3 { latest.removeFirst() }
        }
        if trigger.arm != .control, let user = DemoPopulation.user(trigger.userID) {
            reached.withLock { $0.append((user, trigger.name)) }
        }
    }
}
