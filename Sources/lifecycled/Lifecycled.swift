import ArgumentParser
import Glibc
import LifecycleConfig

/// The one executable: `lifecycled <command>`.
@main
struct Lifecycled: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "lifecycled",
        abstract: "Real-time lifecycle triggers from a stream of user behaviour events.",
        discussion: """
            Exit codes: 0 success, 1 invalid config or usage, 2 runtime failure.
            """,
        version: version,
        subcommands: [DemoCommand.self, RunCommand.self, CheckCommand.self, ReplayCommand.self, DiffCommand.self]
    )

    /// Maps argument errors to the documented exit codes (usage errors exit 1, not 64).
    static func main() async {
        // A closed stdout (`replay ... | head`) must be a write error that says so, not a
        // silent death by signal.
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                Glibc.exit(0)
            }
            if !message.isEmpty { StandardError.write(message + "\n") }
            Glibc.exit(code == .validationFailure ? ExitStatus.usage : code.rawValue)
        }
    }
}

enum ExitStatus {
    static let usage: Int32 = 1
    static let runtime: Int32 = 2
}

/// Failing a command: the message goes to standard error, the status to the shell.
enum CommandFailure {
    /// Prints `message` to standard error and returns the exit to throw.
    static func report(_ message: String, status: Int32) -> ExitCode {
        StandardError.write(message.hasSuffix("\n") ? message : message + "\n")
        return ExitCode(status)
    }
}

/// Loads and validates a config, or explains why not on standard error and exits 1.
func loadConfig(_ path: String) throws -> LoadedConfig {
    do {
        return try ConfigLoader.load(path: path)
    } catch {
        throw CommandFailure.report(error.description, status: ExitStatus.usage)
    }
}
