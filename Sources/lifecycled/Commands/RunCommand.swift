import ArgumentParser
import Foundation
import Glibc
import LifecycleDaemon
import LifecycleHTTP
import Logging
import Prometheus
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand {
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

    func run() async throws {
        let loaded = try loadConfig(config)
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        unblockStopSignals()
        let logger = Logger(label: "lifecycled")
        let registry = PrometheusCollectorRegistry()
        let daemon = Daemon(
            config: loaded, logger: logger, notifier: SystemdNotifier(environment: ProcessInfo.processInfo.environment),
            metrics: DaemonMetrics.prometheusFactory(registry: registry))
        let board = StatusBoard()
        let http = loaded.settings.http
        let server: StatusServer
        do {
            server = try StatusServer(host: http.host, port: http.port, board: board, registry: registry, clock: WallClock.milliseconds)
        } catch {
            throw CommandFailure.report("lifecycled run: cannot listen on http.listen \(http.listen): \(error)", status: ExitStatus.runtime)
        }
        logger.info("HTTP on \(http.host):\(server.port): /healthz /readyz /metrics /v1/segments /v1/users/{id}")
        let reload = SignalFlag()
        let configPath = config
        let loop = BlockingLoopService(name: "lifecycled-loop") { stop in
            try daemon.run(until: stop, reload: reload, configPath: configPath, board: board)
        }
        do {
            try await ServiceGroup.lifecycled(
                loop: loop, around: [server, SignalForwardingService(signal: .sighup, to: reload)], logger: logger
            ).run()
        } catch {
            throw CommandFailure.report("lifecycled run: \(error)", status: ExitStatus.runtime)
        }
    }
}

extension ServiceGroup {
    /// The processing loop and the services around it (the HTTP port, signal forwarding).
    /// SIGTERM and SIGINT stop the loop first, then the rest; the loop returning on its own
    /// (demo's --duration) does the same. A stop is bounded below systemd's TimeoutStopSec
    /// (90 s), so a hung flush ends in an error exit rather than a SIGKILL.
    static func lifecycled(loop: BlockingLoopService, around others: [any Service], logger: Logger) -> ServiceGroup {
        let services = others.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
            + [.init(service: loop, successTerminationBehavior: .gracefullyShutdownGroup)]
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(75)
        configuration.maximumCancellationDuration = .seconds(5)
        return ServiceGroup(configuration: configuration)
    }
}

/// A parent may have spawned us with the stop and reload signals blocked (the mask is
/// inherited); blocked, they would never reach the service group.
func unblockStopSignals() {
    var signals = sigset_t()
    sigemptyset(&signals)
    for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
    sigprocmask(SIG_UNBLOCK, &signals, nil)
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
