import ArgumentParser
import Foundation
import Glibc
import LifecycleDaemon
import Logging

/// The process-wide stop request, set from signal handlers.
private let stopSignal = StopSignal()

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon: Kafka in, triggers out, checkpoints in the state directory.",
        discussion: """
            SIGTERM or SIGINT stops it cleanly: in-flight triggers are acknowledged, every \
            partition is checkpointed and its offset committed, and it exits 0. Under systemd \
            (Type=notify) it reports READY, WATCHDOG and STOPPING.
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
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber) { _ in stopSignal.request() }
        }
        // A parent may have spawned us with these signals blocked (the mask is inherited).
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        sigprocmask(SIG_UNBLOCK, &stopSignals, nil)
        let daemon = Daemon(
            config: loaded, logger: Logger(label: "lifecycled"),
            notifier: SystemdNotifier(environment: ProcessInfo.processInfo.environment))
        do {
            try daemon.run(until: stopSignal)
        } catch {
            throw CommandFailure.report("lifecycled run: \(error)", status: ExitStatus.runtime)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
