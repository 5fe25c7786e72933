import ArgumentParser
import Foundation
import Glibc
import LifecycleDaemon
import LifecycleHTTP
import Logging
import Prometheus

/// Process-wide requests, set from signal handlers.
private let stopSignal = SignalFlag()
private let reloadSignal = SignalFlag()

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon: Kafka in, triggers out, checkpoints in the state directory.",
        discussion: """
            SIGTERM or SIGINT stops it cleanly: in-flight triggers are acknowledged, every \
            partition is checkpointed and its offset committed, and it exits 0. SIGHUP reloads \
            the rules if the file validates and keeps the state's shape (state kept); otherwise \
            the error is logged and the running rules stay. Under systemd (Type=notify) it \
            reports READY, WATCHDOG and STOPPING.
            """
    )

    @Option(name: .shortAndLong, help: "The config file (YAML).")
    var config: String

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() throws {
        let loaded = try loadConfig(config)
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // Create the flags now: a signal handler must not be the first to touch a lazy global.
        _ = (stopSignal, reloadSignal)
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber) { _ in stopSignal.request() }
        }
        signal(SIGHUP) { _ in reloadSignal.request() }
        // A parent may have spawned us with these signals blocked (the mask is inherited).
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGHUP)
        sigprocmask(SIG_UNBLOCK, &stopSignals, nil)
        let logger = Logger(label: "lifecycled")
        let registry = PrometheusCollectorRegistry()
        let daemon = Daemon(
            config: loaded, logger: logger, notifier: SystemdNotifier(environment: ProcessInfo.processInfo.environment),
            metrics: DaemonMetrics.prometheusFactory(registry: registry))
        let board = StatusBoard()
        let http = loaded.settings.http
        let server: StatusServer
        do {
            server = try StatusServer(host: http.host, port: http.port, board: board, registry: registry, clock: Daemon.wallClockMillis)
        } catch {
            throw CommandFailure.report("lifecycled run: cannot listen on http.listen \(http.listen): \(error)", status: ExitStatus.runtime)
        }
        logger.info("HTTP on \(http.host):\(server.port): /healthz /readyz /metrics /v1/segments /v1/users/{id}")
        defer { server.close() }
        do {
            try daemon.run(until: stopSignal, reload: reloadSignal, configPath: config, board: board)
        } catch {
            throw CommandFailure.report("lifecycled run: \(error)", status: ExitStatus.runtime)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
